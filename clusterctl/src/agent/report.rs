//! The two records the agent reads and writes: an assignment
//! (`assign/ID/NAME`, written by the scheduler) and a report
//! (`states/ID/NAME`, written by the agent).

use serde::{Deserialize, Serialize};

/// What the scheduler wants of a unit on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// The file is there and loaded; the unit is not started.
    Loaded,
    /// The unit is started.
    Launched,
}

/// `assign/ID/NAME`: `{"hash","state"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    /// SHA-256 of the unit text to run (`units/NAME`'s hash).
    pub hash: String,
    pub state: Target,
}

impl Assignment {
    /// Parses an assignment value, or says why it cannot be acted on (the
    /// unit is then left as it is).
    ///
    /// # Errors
    /// A message naming what is wrong with the value.
    pub fn parse(value: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(value).map_err(|e| {
            let shown = String::from_utf8_lossy(&value[..value.len().min(80)]).escape_debug().to_string();
            format!(
                "assignment value {shown:?} is not {{\"hash\",\"state\"}} ({e}): leaving the unit as it is \
                 until the scheduler rewrites it"
            )
        })
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_parse_and_bad_ones_say_why() {
        let a = Assignment::parse(br#"{"hash":"ab","state":"launched"}"#).unwrap();
        assert_eq!(a, Assignment { hash: "ab".into(), state: Target::Launched });
        assert_eq!(Assignment::parse(br#"{"hash":"ab","state":"loaded"}"#).unwrap().state, Target::Loaded);
        for bad in [&b"abcdef"[..], br#"{"hash":"ab","state":"LAUNCHED "}"#, br#"{"hash":"ab"}"#, b"\x1b[31m"]
        {
            let e = Assignment::parse(bad).unwrap_err();
            assert!(e.contains("leaving the unit as it is"), "{e}");
            assert!(!e.contains('\x1b'), "control bytes are escaped: {e}");
        }
    }
}
