//! Reading unit records lean: place needs a unit's name and rules, never
//! its text, hash, template or instance, and at a million units those four
//! strings are a third of the memory. [`read_units`] checks them exactly as
//! `UnitRecord` would (same fields, same types, same errors) but does not
//! keep them, and reuses one line buffer instead of a string per line.
//!
//! The checking is the `place` binary's contract (its input is unitgen's
//! records, and a malformed one is an error there), not the planner's:
//! so the strict form is this file's own, and what it keeps is a [`Unit`].

use std::fmt;
use std::io::BufRead;

use fleetkit_core::constraints::Constraints;
use fleetkit_core::records::RecordError;
use serde::de::{self, Deserializer, IgnoredAny, Visitor};
use serde::Deserialize;

use crate::Unit;

/// A string field that is checked and dropped.
struct Dropped;

impl<'de> Deserialize<'de> for Dropped {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dropped;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Dropped, E> {
                Ok(Dropped)
            }
        }
        d.deserialize_str(V)
    }
}

/// `UnitRecord`'s wire form, keeping only what planning uses.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LeanUnit {
    name: String,
    #[allow(dead_code)]
    template: Option<Dropped>,
    #[allow(dead_code)]
    instance: Option<Dropped>,
    #[allow(dead_code)]
    hash: Dropped,
    constraints: Constraints,
    #[allow(dead_code)]
    text: Dropped,
}

/// Reads unit records as `read_records` does (same checks, same
/// `SOURCE:LINE: message` errors, blank lines skipped), keeping what
/// [`crate::plan`] reads of each.
///
/// # Errors
/// [`RecordError`] for unreadable input or a malformed record.
pub fn read_units<R: BufRead>(mut input: R, source: &str) -> Result<Vec<Unit>, RecordError> {
    let mut out = Vec::new();
    let mut line = String::new();
    let mut number = 0usize;
    loop {
        line.clear();
        let n =
            input.read_line(&mut line).map_err(|err| RecordError::Read { input: source.to_owned(), err })?;
        if n == 0 {
            break;
        }
        number += 1;
        let text = line.strip_suffix('\n').map_or(line.as_str(), |l| l.strip_suffix('\r').unwrap_or(l));
        if text.trim().is_empty() {
            continue;
        }
        let u: LeanUnit = serde_json::from_str(text).map_err(|err| RecordError::Malformed {
            input: source.to_owned(),
            line: number,
            err,
        })?;
        out.push(Unit { name: u.name, hash: IgnoredAny, constraints: u.constraints });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetkit_core::records::{read_records, UnitRecord};

    #[test]
    fn same_records_and_errors_as_read_records() {
        let good = r#"{"name":"a@1.service","template":"a@.service","instance":"1","hash":"ab","constraints":{"machine_id":null,"machine_of":[],"machine_metadata":{"r":["x"]},"conflicts":["a@*.service"],"global":false,"replaces":[]},"text":"[Service]\n"}"#;
        let full: Vec<UnitRecord> = read_records(format!("{good}\r\n\n").as_bytes(), "u").unwrap();
        let lean = read_units(format!("{good}\r\n\n").as_bytes(), "u").unwrap();
        assert_eq!(lean.len(), 1);
        assert_eq!((&lean[0].name, &lean[0].constraints), (&full[0].name, &full[0].constraints));
        let bad = [
            good.replace(r#""hash":"ab","#, ""),
            good.replace(r#""text":"[Service]\n""#, r#""text":3"#),
            good.replace(r#""template":"a@.service""#, r#""template":[]"#),
            good.replace(r#""hash""#, r#""extra":1,"hash""#),
            good.replace(r#","template":"a@.service","instance":"1""#, ""),
            "{".to_owned(),
        ];
        for b in bad {
            let input = format!("\n{b}\n");
            let want = read_records::<UnitRecord, _>(input.as_bytes(), "u").map(|v| v.len());
            let got = read_units(input.as_bytes(), "u").map(|v| v.len());
            assert_eq!(got.map_err(|e| e.describe()), want.map_err(|e| e.describe()), "{b}");
        }
    }
}
