//! The JSON Lines records that fleetkit's tools exchange through pipes.
//!
//! These types are the wire contract: field names are stable and documented
//! in each tool's man page, and tests pin them with `deny_unknown_fields`.
//! One object per line; [`write_record`] flushes after each so a pipe sees
//! every record as soon as it exists.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use crate::constraints::Constraints;
use crate::diag::escaped;

/// One unit, as unitgen emits it and place, clusterctl read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitRecord {
    /// Full unit name, e.g. `node-etcd@1.service`.
    pub name: String,
    /// The template it was expanded from (`node-etcd@.service`), or null.
    pub template: Option<String>,
    /// The instance string (`1`), or null for a plain unit.
    pub instance: Option<String>,
    /// Hex SHA-256 of the canonical unit text.
    pub hash: String,
    /// The parsed `[X-Fleet]` section, specifiers resolved.
    pub constraints: Constraints,
    /// The expanded unit file.
    pub text: String,
}

/// One machine of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineRecord {
    /// Machine ID (as in /etc/machine-id).
    pub id: String,
    /// Address shown in tables (`172.17.8.101`).
    #[serde(default)]
    pub ip: String,
    /// Metadata matched by `MachineMetadata=` (`region=eu`).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// The version of the fleetkit agent that runs the machine's units and
    /// reports their states; absent for a machine that only announces
    /// itself (then a unit placed there counts as started once placed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// Where one unit runs, or why it cannot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    pub unit: String,
    /// The machine ID, or null when the unit cannot be placed.
    pub machine: Option<String>,
    /// Why the unit cannot be placed; absent when it is placed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Writes `record` as one JSON line and flushes, so readers see it at once.
///
/// # Errors
/// The writer's error (a broken pipe among them).
pub fn write_record<W: Write, T: Serialize>(out: &mut W, record: &T) -> io::Result<()> {
    serde_json::to_writer(&mut *out, record)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// A JSON Lines input that cannot be read: which input, which line, and
/// the reader's or the JSON parser's own error as the source.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The input itself failed (a directory given as a file, an I/O error).
    #[error("{}", escaped(.input))]
    Read {
        input: String,
        #[source]
        err: io::Error,
    },
    /// Line `line` is not a valid record.
    #[error("{}:{line}", escaped(.input))]
    Malformed {
        input: String,
        line: usize,
        #[source]
        err: serde_json::Error,
    },
}

impl RecordError {
    /// `INPUT:LINE: why` (or `INPUT: why`) on one line, control bytes of
    /// the input escaped: for callers that print it without
    /// [`crate::ToolError::from_error`].
    #[must_use]
    pub fn describe(&self) -> String {
        let why = match self {
            Self::Read { err, .. } => err.to_string(),
            Self::Malformed { err, .. } => err.to_string(),
        };
        format!("{self}: {}", escaped(&why))
    }
}

impl crate::exit::Classify for RecordError {
    /// Unreadable or malformed input is the user's to fix.
    fn kind(&self) -> crate::exit::Kind {
        crate::exit::Kind::Usage
    }
}

/// Reads JSON Lines from `input`, naming `source` and the line in errors.
/// Blank lines are skipped.
///
/// # Errors
/// [`RecordError`] for unreadable input or a malformed record.
pub fn read_records<T, R>(input: R, source: &str) -> Result<Vec<T>, RecordError>
where
    T: for<'de> Deserialize<'de>,
    R: io::BufRead,
{
    let mut out = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line.map_err(|err| RecordError::Read { input: source.to_owned(), err })?;
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str(&line).map_err(|err| RecordError::Malformed {
            input: source.to_owned(),
            line: i + 1,
            err,
        })?;
        out.push(record);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unplaced_placement_has_null_machine_and_reason() {
        let p = Placement { unit: "a.service".into(), machine: None, reason: Some("no machine".into()) };
        let s = serde_json::to_string(&p).unwrap();
        assert_eq!(s, r#"{"unit":"a.service","machine":null,"reason":"no machine"}"#);
        let placed = Placement { unit: "a.service".into(), machine: Some("m1".into()), reason: None };
        assert_eq!(serde_json::to_string(&placed).unwrap(), r#"{"unit":"a.service","machine":"m1"}"#);
    }

    #[test]
    fn read_records_names_the_bad_line() {
        let input = "{\"id\":\"m1\"}\n\n{\"id\":3}\n";
        let err = read_records::<MachineRecord, _>(input.as_bytes(), "machines.json").unwrap_err();
        assert!(err.describe().starts_with("machines.json:3: invalid type"), "{}", err.describe());
        let e = crate::ToolError::from_error(&err);
        assert_eq!(e.to_string(), err.describe());
        let bad = read_records::<MachineRecord, _>("{\"\x1b\":1}".as_bytes(), "m\x1b").unwrap_err();
        assert!(!crate::ToolError::from_error(&bad).to_string().contains('\x1b'), "{}", bad.describe());
    }
}
