//! fleetkit-core: the pieces every fleetkit tool shares, and nothing more.
//!
//! Unit files and their names follow systemd's rules exactly (`unit`, `name`,
//! `specifier`, and `service` for what systemd refuses to run);
//! `[X-Fleet]` placement rules follow fleet's (`constraints`,
//! `glob`); the JSON Lines records are the contract between tools (`records`);
//! `exit` owns exit codes and the one place errors are printed; `duration` is
//! the one duration syntax every flag takes; `log` and `notify` are how the
//! long-running tools tell the journal and systemd what they do. The etcd
//! connection options (`etcd`) and the shutdown-signal helper (`signals`) sit
//! behind features so the pure tools stay free of an async runtime.

pub mod constraints;
pub mod diag;
pub mod duration;
pub mod exit;
pub mod expand;
pub mod glob;
pub mod log;
pub mod name;
pub mod notify;
pub mod records;
pub mod service;
pub mod specifier;
pub mod unit;

#[cfg(feature = "etcd")]
pub mod etcd;
#[cfg(feature = "signals")]
pub mod signals;

pub use exit::{Exit, ToolError};
