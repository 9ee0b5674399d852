//! The record the agent writes for each of its units, `states/ID/NAME`:
//! what systemd says of it, and why when it failed. Its readers (`list-units`,
//! `start`'s wait) take it as `cluster::UnitState`.

use serde::Serialize;

/// `states/ID/NAME`: what systemd says of the unit on this machine.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    /// systemd's LoadState (`loaded`, `not-found`, `bad-setting`, `error` ...).
    pub load: &'a str,
    /// ActiveState (`active`, `inactive`, `activating`, `failed` ...).
    pub active: &'a str,
    /// SubState (`running`, `dead`, `exited` ...).
    pub sub: &'a str,
    /// Hash of the unit text the machine runs.
    pub hash: &'a str,
    /// When it failed: the service's Result (`exit-code`, `timeout` ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<&'a str>,
    /// When it failed: the last lines of its journal.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub journal: &'a [String],
    /// What the agent could not do (a missing record, a unit file that is not
    /// fleetkit's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
}
