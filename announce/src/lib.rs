//! announce: keep one key alive in etcd under a lease while a service runs.
//!
//! The tutorial's discovery unit rewrote its key every 45 s from a shell loop
//! and left it behind for up to a minute after a crash; announce holds the
//! key on an etcd v3 lease instead. `cli` checks the command line before etcd
//! is touched, `announcer` is the loop that keeps the lease and key and
//! survives etcd's restarts, `check` runs the optional health check,
//! `backoff` spaces out retries and `error` says what went wrong, with which
//! exit code; core's `log` and `notify` tell the
//! journal and systemd what is going on.

pub mod announcer;
pub mod backoff;
pub mod check;
pub mod cli;
pub mod error;

use std::ffi::OsString;
use std::io::Write;

use clap::{CommandFactory, Parser};
use fleetkit_core::log::Log;
use fleetkit_core::notify::Notifier;
use fleetkit_core::signals::Shutdown;
use fleetkit_core::{Exit, ToolError};

use crate::announcer::Announcer;
use crate::cli::Cli;
use crate::error::{shown, Error};

/// The clap definition, for the man page and completions.
#[must_use]
pub fn command() -> clap::Command {
    Cli::command()
}

/// Parses `args`, validates them, and runs announce until it is stopped.
///
/// # Errors
/// Bad usage or input, or a request etcd refuses for what it is (exit 2);
/// `--once` finding the key held or the check failing (exit 1), or etcd
/// unavailable (exit 75).
pub fn run(args: impl IntoIterator<Item = OsString>) -> Result<Exit, ToolError> {
    let cfg = Cli::try_parse_from(args)?.into_config()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Setup { what: "start the runtime", source })?;
    runtime.block_on(async move {
        let shutdown =
            Shutdown::install().map_err(|source| Error::Setup { what: "install signal handlers", source })?;
        let log = Log::detect("announce");
        let notify = Notifier::new("announce");
        if cfg.once {
            if let Some(check) = &cfg.check {
                check.run(cfg.check_interval).await.map_err(|reason| Error::CheckFailed {
                    key: shown(&cfg.key),
                    reason: reason.to_string(),
                })?;
            }
            let id = Announcer::new(&cfg, notify, log).once().await?;
            writeln!(std::io::stdout(), "{id:x}")?;
            return Ok(Exit::SUCCESS);
        }
        let health = cfg.check.clone().map(|check| {
            let (tx, rx) = tokio::sync::watch::channel(None);
            tokio::spawn(check::run_checks(check, cfg.check_interval, cfg.check_failures, tx));
            rx
        });
        Announcer::new(&cfg, notify, log).run(shutdown, health).await
    })
}
