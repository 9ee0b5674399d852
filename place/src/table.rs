//! `--format table`: the placements for people, `UNIT MACHINE IP` as
//! fleetctl's tables looked, with `-` where a unit has no machine. It goes
//! to a terminal, so control bytes in names are escaped (`\x1b`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{self, Write};

use fleetkit_core::diag::escaped;
use fleetkit_core::records::{MachineRecord, Placement};

/// Writes the table with a header line and columns padded to fit.
///
/// # Errors
/// The writer's error.
pub fn write<W: Write>(out: &mut W, placements: &[Placement], machines: &[MachineRecord]) -> io::Result<()> {
    let ips: HashMap<&str, &str> = machines.iter().map(|m| (m.id.as_str(), m.ip.as_str())).collect();
    let rows: Vec<[Cow<'_, str>; 3]> = placements
        .iter()
        .map(|p| {
            let machine = p.machine.as_deref().unwrap_or("-");
            let ip = p.machine.as_deref().and_then(|m| ips.get(m).copied()).filter(|ip| !ip.is_empty());
            [escaped(&p.unit), escaped(machine), escaped(ip.unwrap_or("-"))]
        })
        .collect();
    let header = ["UNIT", "MACHINE", "IP"];
    let width = |col: usize| {
        rows.iter().map(|r| r[col].chars().count()).chain([header[col].len()]).max().unwrap_or(0)
    };
    let (w0, w1) = (width(0), width(1));
    writeln!(out, "{:<w0$}  {:<w1$}  {}", header[0], header[1], header[2])?;
    for r in &rows {
        writeln!(out, "{:<w0$}  {:<w1$}  {}", r[0], r[1], r[2])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_columns_and_marks_unplaced() {
        let machines = vec![MachineRecord {
            id: "m1".into(),
            ip: "10.0.0.1".into(),
            metadata: Default::default(),
            agent: None,
        }];
        let placements = vec![
            Placement { unit: "a.service".into(), machine: Some("m1".into()), reason: None },
            Placement { unit: "bb.service".into(), machine: None, reason: Some("no machines".into()) },
        ];
        let mut out = Vec::new();
        write(&mut out, &placements, &machines).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "UNIT        MACHINE  IP\na.service   m1       10.0.0.1\nbb.service  -        -\n"
        );
    }
}
