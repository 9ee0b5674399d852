//! Turning a unit file (a template plus an instance, or a plain unit) into
//! the unit record every other tool works with.
//!
//! OWNER NOTE: stub until implemented. Contract:
//! `pub fn expand(name: &str, text: &str, instance: Option<&str>)
//!     -> Result<(UnitRecord, Vec<Diagnostic>), Vec<Diagnostic>>`
//! `name` is the file's unit name (`node-etcd@.service` or `web.service`);
//! `instance` is required for a template and refused for a plain unit.
