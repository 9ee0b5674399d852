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

/// Reads JSON Lines from `input`, naming `source` and the line in errors.
/// Blank lines are skipped.
///
/// # Errors
/// `SOURCE:LINE: message` for unreadable input or a malformed record.
pub fn read_records<T, R>(input: R, source: &str) -> Result<Vec<T>, String>
where
    T: for<'de> Deserialize<'de>,
    R: io::BufRead,
{
    let mut out = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line.map_err(|e| format!("{source}: {e}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str(&line).map_err(|e| format!("{source}:{}: {e}", i + 1))?;
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
        assert!(err.starts_with("machines.json:3: "), "{err}");
    }
}
