//! The `[X-Fleet]` placement rules of a unit, read as fleet read them.
//!
//! fleet (job/job.go, unit/unit.go) accepted `MachineID`, `MachineOf`,
//! `MachineMetadata`, `Conflicts`, `Global` and `Replaces`, plus the old
//! names `X-ConditionMachineID`, `X-ConditionMachineBootID`,
//! `X-ConditionMachineOf`, `X-ConditionMachineMetadata` and `X-Conflicts`.
//! A value is a list only when it starts and ends with `"`: then it splits
//! at spaces outside quotes and the quotes go (`MachineMetadata="a=1" "b=2"`);
//! otherwise the whole value is one item, spaces and all. `Conflicts` and
//! `X-Conflicts` then split every item again at whitespace (fleet's
//! `splitCombine`, since 0.13): `Conflicts=a.service b*.service` is two
//! globs. `MachineOf`, `Replaces` and `MachineID` are not split again, as in
//! fleet. Repeated keys add items. `Global` takes its last value,
//! `MachineID` its first. This module also owns the contradictions fleet
//! rejected, so unitgen, place and clusterctl refuse the same units with the
//! same words.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::diag::{escaped, Diagnostic};
use crate::glob::Glob;

/// The parsed `[X-Fleet]` section of one unit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Constraints {
    /// `MachineID=`: a full machine ID or a unique prefix of one.
    pub machine_id: Option<String>,
    /// `MachineOf=`: run only where all these units run.
    pub machine_of: Vec<String>,
    /// `MachineMetadata=k=v`: values of one key OR'd, keys AND'd.
    pub machine_metadata: BTreeMap<String, Vec<String>>,
    /// `Conflicts=`: Go `path.Match` globs of units not to share a machine with.
    pub conflicts: Vec<String>,
    /// `Global=true`: run on every machine that qualifies.
    pub global: bool,
    /// `Replaces=`: globs of units whose machine this unit takes.
    pub replaces: Vec<String>,
}

/// Which rule a key sets; contradictions are between rules, not key spellings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rule {
    MachineId,
    MachineOf,
    Metadata,
    Conflicts,
    Global,
    Replaces,
}

impl Rule {
    fn key(self) -> &'static str {
        match self {
            Rule::MachineId => "MachineID=",
            Rule::MachineOf => "MachineOf=",
            Rule::Metadata => "MachineMetadata=",
            Rule::Conflicts => "Conflicts=",
            Rule::Global => "Global=",
            Rule::Replaces => "Replaces=",
        }
    }

    /// The rule a key sets, and the modern name when the key is an old one.
    fn from_key(key: &str) -> Option<(Rule, Option<&'static str>)> {
        Some(match key {
            "MachineID" => (Rule::MachineId, None),
            "X-ConditionMachineID" | "X-ConditionMachineBootID" => (Rule::MachineId, Some("MachineID")),
            "MachineOf" => (Rule::MachineOf, None),
            "X-ConditionMachineOf" => (Rule::MachineOf, Some("MachineOf")),
            "MachineMetadata" => (Rule::Metadata, None),
            "X-ConditionMachineMetadata" => (Rule::Metadata, Some("MachineMetadata")),
            "Conflicts" => (Rule::Conflicts, None),
            "X-Conflicts" => (Rule::Conflicts, Some("Conflicts")),
            "Global" => (Rule::Global, None),
            "Replaces" => (Rule::Replaces, None),
            _ => return None,
        })
    }
}

/// Splits one `[X-Fleet]` value into items exactly as fleet's
/// `parseMultivalueLine` did.
#[must_use]
pub fn split_values(value: &str) -> Vec<String> {
    if !(value.starts_with('"') && value.ends_with('"')) {
        return vec![value.to_owned()];
    }
    let mut values = Vec::new();
    let mut current = Vec::new();
    let mut quoted = false;
    for &b in value.as_bytes() {
        match b {
            b'"' => quoted = !quoted,
            b' ' if !quoted => {
                values.push(String::from_utf8_lossy(&std::mem::take(&mut current)).into_owned());
            }
            _ => current.push(b),
        }
    }
    values.push(String::from_utf8_lossy(&current).into_owned());
    values
}

/// fleet's truthy values for `Global=`.
fn is_truthy(s: &str) -> bool {
    matches!(s.to_ascii_lowercase().as_str(), "true" | "yes" | "1" | "on" | "t")
}

fn is_falsy(s: &str) -> bool {
    matches!(s.to_ascii_lowercase().as_str(), "false" | "no" | "0" | "off" | "f" | "")
}

/// One contradiction: the two rules involved and what to do about it.
struct Contradiction {
    rules: (Rule, Rule),
    message: String,
}

impl Constraints {
    /// Reads the `[X-Fleet]` section of `unit` (specifiers already resolved)
    /// and checks it for the contradictions fleet rejected. Unknown keys are
    /// warnings; everything else wrong is an error at its line.
    #[must_use]
    pub fn from_unit(unit: &crate::unit::UnitFile) -> (Constraints, Vec<Diagnostic>) {
        let mut c = Constraints::default();
        let mut diags = Vec::new();
        // First line each rule was set on, to place contradiction errors.
        let mut lines: BTreeMap<Rule, usize> = BTreeMap::new();
        let mut global_line = 0;
        for section in unit.sections.iter().filter(|s| s.name == "X-Fleet") {
            for entry in &section.entries {
                let Some((rule, modern)) = Rule::from_key(&entry.key) else {
                    diags.push(Diagnostic::warning(
                        entry.line,
                        format!(
                            "[X-Fleet] unknown key {}= is ignored (known: MachineID, MachineOf, MachineMetadata, Conflicts, Global, Replaces)",
                            escaped(&entry.key)
                        ),
                    ));
                    continue;
                };
                if let Some(modern) = modern {
                    diags.push(Diagnostic::warning(
                        entry.line,
                        format!("[X-Fleet] {}= is fleet's old name; write {modern}=", entry.key),
                    ));
                }
                let raw = entry.value.trim();
                // fleet reads these as one item, spaces and all; no unit
                // name or machine ID has a space, so it is surely a slip.
                let one_item = matches!(rule, Rule::MachineId | Rule::MachineOf | Rule::Replaces);
                if one_item && !raw.starts_with('"') && raw.contains(char::is_whitespace) {
                    diags.push(Diagnostic::warning(
                        entry.line,
                        format!(
                            "[X-Fleet] {}{} is one item with spaces in it, as fleet read it; to give a list, quote each item: {}\"{}\"",
                            rule.key(),
                            escaped(raw),
                            rule.key(),
                            escaped(&raw.split_whitespace().collect::<Vec<_>>().join("\" \""))
                        ),
                    ));
                }
                let items: Vec<String> = if rule == Rule::Conflicts {
                    split_values(raw).iter().flat_map(|v| v.split_whitespace()).map(str::to_owned).collect()
                } else {
                    split_values(raw).into_iter().filter(|v| !v.is_empty()).collect()
                };
                if rule == Rule::Global {
                    if let Some(last) = items.last() {
                        c.global = is_truthy(last);
                        if !c.global && !is_falsy(last) {
                            diags.push(Diagnostic::warning(
                                entry.line,
                                format!(
                                    "[X-Fleet] Global={} reads as false; write Global=true or Global=false",
                                    escaped(last)
                                ),
                            ));
                        }
                        global_line = entry.line;
                    }
                    continue;
                }
                if items.is_empty() {
                    continue;
                }
                lines.entry(rule).or_insert(entry.line);
                match rule {
                    Rule::MachineId => {
                        if c.machine_id.is_some() || items.len() > 1 {
                            diags.push(Diagnostic::warning(
                                entry.line,
                                "[X-Fleet] MachineID= is given more than once; fleet used the first and so does fleetkit",
                            ));
                        }
                        c.machine_id.get_or_insert_with(|| items[0].clone());
                    }
                    Rule::MachineOf => c.machine_of.extend(items),
                    Rule::Metadata => {
                        for item in items {
                            match item.split_once('=') {
                                Some((k, v)) if !k.is_empty() && !v.is_empty() && !v.contains('=') => {
                                    let values = c.machine_metadata.entry(k.to_owned()).or_default();
                                    if !values.iter().any(|x| x == v) {
                                        values.push(v.to_owned());
                                    }
                                }
                                _ => diags.push(Diagnostic::error(
                                    entry.line,
                                    format!(
                                        "[X-Fleet] MachineMetadata={} must be KEY=VALUE (e.g. MachineMetadata=region=eu)",
                                        escaped(&item)
                                    ),
                                )),
                            }
                        }
                    }
                    Rule::Conflicts | Rule::Replaces => {
                        for item in items {
                            if let Err(e) = Glob::new(&item) {
                                diags.push(Diagnostic::error(
                                    entry.line,
                                    format!("[X-Fleet] {}{e}", rule.key()),
                                ));
                            }
                            if rule == Rule::Conflicts {
                                c.conflicts.push(item);
                            } else {
                                c.replaces.push(item);
                            }
                        }
                    }
                    Rule::Global => {}
                }
            }
        }
        if c.global {
            lines.insert(Rule::Global, global_line);
        }
        for contradiction in c.contradictions() {
            let (a, b) = contradiction.rules;
            let (la, lb) = (lines.get(&a).copied().unwrap_or(0), lines.get(&b).copied().unwrap_or(0));
            diags.push(Diagnostic::error(la.max(lb), contradiction.message));
        }
        (c, diags)
    }

    /// The contradictions fleet rejected, and malformed globs or metadata,
    /// for a unit read from a JSON record rather than a file: one message
    /// per problem, empty when the rules are usable.
    #[must_use]
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (key, globs) in [("Conflicts=", &self.conflicts), ("Replaces=", &self.replaces)] {
            for g in globs {
                if let Err(e) = crate::glob::check(g) {
                    out.push(format!("[X-Fleet] {key}{e}"));
                }
            }
        }
        for (k, values) in &self.machine_metadata {
            if k.is_empty() || k.contains('=') || values.iter().any(|v| v.is_empty() || v.contains('=')) {
                let values: Vec<String> = values.iter().map(|v| format!("'{}'", escaped(v))).collect();
                out.push(format!(
                    "[X-Fleet] MachineMetadata key '{}' with values [{}] must be KEY=VALUE",
                    escaped(k),
                    values.join(", ")
                ));
            }
        }
        out.extend(self.contradictions().into_iter().map(|c| c.message));
        out
    }

    fn contradictions(&self) -> Vec<Contradiction> {
        let mut out = Vec::new();
        let mut push = |a: Rule, b: Rule, why: &str| {
            out.push(Contradiction {
                rules: (a, b),
                message: format!("[X-Fleet] {} cannot be combined with {}: {why}", b.key(), a.key()),
            });
        };
        let has_id = self.machine_id.is_some();
        let has_of = !self.machine_of.is_empty();
        let has_conflicts = !self.conflicts.is_empty();
        let has_replaces = !self.replaces.is_empty();
        if has_id && has_of {
            push(
                Rule::MachineId,
                Rule::MachineOf,
                "a unit pinned to one machine cannot follow another unit; keep one",
            );
        }
        if has_id && has_conflicts {
            push(
                Rule::MachineId,
                Rule::Conflicts,
                "a unit pinned to one machine has no other place to go; keep one",
            );
        }
        if has_id && self.global {
            push(Rule::MachineId, Rule::Global, "a global unit runs on every machine; drop MachineID=");
        }
        if has_id && has_replaces {
            push(
                Rule::MachineId,
                Rule::Replaces,
                "a unit pinned to one machine cannot take another's; keep one",
            );
        }
        if self.global && has_of {
            push(Rule::Global, Rule::MachineOf, "a global unit runs on every machine; drop MachineOf=");
        }
        if self.global && has_replaces {
            push(Rule::Global, Rule::Replaces, "a global unit runs on every machine; drop Replaces=");
        }
        if has_conflicts && has_replaces {
            push(
                Rule::Conflicts,
                Rule::Replaces,
                "fleet rejects the pair; express the rule with one of them",
            );
        }
        for peer in &self.machine_of {
            for pattern in &self.conflicts {
                if Glob::new(pattern).is_ok_and(|g| g.matches(peer)) {
                    out.push(Contradiction {
                        rules: (Rule::MachineOf, Rule::Conflicts),
                        message: format!(
                            "[X-Fleet] Conflicts={} matches MachineOf={peer}: the unit must run beside {peer} and may not; narrow the glob",
                            escaped(pattern),
                            peer = escaped(peer)
                        ),
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Severity;
    use crate::unit::{Entry, Section, UnitFile};

    /// A unit with one `[X-Fleet]` section; entry i sits on line i + 2.
    fn unit(entries: &[(&str, &str)]) -> UnitFile {
        UnitFile {
            sections: vec![
                Section { name: "Service".into(), line: 1, entries: Vec::new() },
                Section {
                    name: "X-Fleet".into(),
                    line: 1,
                    entries: entries
                        .iter()
                        .enumerate()
                        .map(|(i, (k, v))| Entry { key: (*k).into(), value: (*v).into(), line: i + 2 })
                        .collect(),
                },
            ],
        }
    }

    fn errors(d: &[Diagnostic]) -> Vec<(usize, &str)> {
        d.iter().filter(|d| d.severity == Severity::Error).map(|d| (d.line, d.message.as_str())).collect()
    }

    #[test]
    fn splits_values_as_fleet_did() {
        assert_eq!(split_values(r#""foo=bar" "baz=qux""#), ["foo=bar", "baz=qux"]);
        assert_eq!(split_values("a* b*"), ["a* b*"]);
        assert_eq!(split_values(r#""a b" "c""#), ["a b", "c"]);
        assert_eq!(split_values(r#""a""#), ["a"]);
        assert_eq!(split_values("plain"), ["plain"]);
        assert_eq!(split_values(r#""a"  "b""#), ["a", "", "b"]);
    }

    #[test]
    fn tutorial_sections() {
        let (c, d) = Constraints::from_unit(&unit(&[("Conflicts", "node-etcd@*.service")]));
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(c.conflicts, ["node-etcd@*.service"]);
        let (c, d) = Constraints::from_unit(&unit(&[("MachineOf", "node-etcd@2.service")]));
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(c.machine_of, ["node-etcd@2.service"]);
    }

    #[test]
    fn every_key_and_old_names() {
        let (c, d) = Constraints::from_unit(&unit(&[
            ("MachineMetadata", r#""region=eu" "disk=ssd""#),
            ("X-ConditionMachineMetadata", "region=us"),
            ("X-Conflicts", "db@*.service"),
            ("Conflicts", r#""a*" "b*""#),
            ("Global", "false"),
        ]));
        assert!(errors(&d).is_empty(), "{d:?}");
        assert_eq!(d.len(), 2, "two old names warned: {d:?}");
        assert_eq!(c.machine_metadata["region"], ["eu", "us"]);
        assert_eq!(c.machine_metadata["disk"], ["ssd"]);
        assert_eq!(c.conflicts, ["db@*.service", "a*", "b*"]);
        let (c, d) = Constraints::from_unit(&unit(&[("X-ConditionMachineID", "abc"), ("MachineID", "def")]));
        assert_eq!(c.machine_id.as_deref(), Some("abc"));
        assert!(errors(&d).is_empty());
        let (c, _) = Constraints::from_unit(&unit(&[("Global", "true"), ("Global", "no")]));
        assert!(!c.global, "last value wins");
        let (c, _) = Constraints::from_unit(&unit(&[("Global", "on"), ("Replaces", "old@*.service")]));
        assert!(c.global && c.replaces == ["old@*.service"]);
    }

    #[test]
    fn conflicts_split_at_whitespace_as_fleet_does_and_nothing_else_does() {
        let (c, d) = Constraints::from_unit(&unit(&[
            ("Conflicts", "a.service b*.service"),
            ("X-Conflicts", "c*\td*"),
            ("Conflicts", r#""e* f*" "g*""#),
        ]));
        assert_eq!(c.conflicts, ["a.service", "b*.service", "c*", "d*", "e*", "f*", "g*"]);
        assert!(d.iter().all(|d| !d.message.contains("quote")), "no advice to quote: {d:?}");
        let (c, d) = Constraints::from_unit(&unit(&[
            ("MachineOf", "a.service b.service"),
            ("Replaces", "old@1.service old@2.service"),
            ("MachineID", "m1 m2"),
        ]));
        assert_eq!(c.machine_of, ["a.service b.service"]);
        assert_eq!(c.replaces, ["old@1.service old@2.service"]);
        assert_eq!(c.machine_id.as_deref(), Some("m1 m2"));
        assert_eq!(d.len(), 3 + 2, "three one-item warnings, two contradictions: {d:?}");
        assert!(d[0].message.contains(r#"MachineOf="a.service" "b.service""#), "{}", d[0].message);
    }

    #[test]
    fn unknown_keys_warn() {
        let (_, d) = Constraints::from_unit(&unit(&[("Weight", "3")]));
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].line, d[0].severity), (2, Severity::Warning));
    }

    #[test]
    fn messages_escape_control_characters() {
        let (_, d) = Constraints::from_unit(&unit(&[("W\x1b[2J", "3"), ("MachineMetadata", "x\x1by")]));
        assert!(d.iter().all(|d| !d.message.contains('\x1b')), "{d:?}");
        assert!(d[0].message.contains("W\\x1b[2J") && d[1].message.contains("x\\x1by"), "{d:?}");
        let c = Constraints { conflicts: vec!["[\x1b".into()], ..Default::default() };
        assert!(c.problems()[0].contains("[\\x1b"), "{:?}", c.problems());
    }

    #[test]
    fn contradictions_are_errors_at_the_later_line() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("MachineID", "m1"), ("MachineOf", "a.service")],
                "MachineOf= cannot be combined with MachineID=",
            ),
            (&[("MachineID", "m1"), ("Conflicts", "a*")], "Conflicts= cannot be combined with MachineID="),
            (&[("Global", "true"), ("MachineID", "m1")], "Global= cannot be combined with MachineID="),
            (&[("MachineID", "m1"), ("Replaces", "a*")], "Replaces= cannot be combined with MachineID="),
            (&[("MachineOf", "a.service"), ("Global", "yes")], "MachineOf= cannot be combined with Global="),
            (&[("Global", "1"), ("Replaces", "a*")], "Replaces= cannot be combined with Global="),
            (&[("Replaces", "a*"), ("Conflicts", "b*")], "Replaces= cannot be combined with Conflicts="),
            (
                &[("MachineOf", "web@1.service"), ("Conflicts", "web@*.service")],
                "matches MachineOf=web@1.service",
            ),
            (&[("Service", "x"), ("Conflicts", "web@[.service")], "malformed glob"),
            (&[("Service", "x"), ("MachineMetadata", "region")], "must be KEY=VALUE"),
        ];
        for (entries, want) in cases {
            let (c, d) = Constraints::from_unit(&unit(entries));
            let e = errors(&d);
            assert_eq!(e.len(), 1, "{entries:?}: {d:?}");
            assert_eq!(e[0].0, 3, "{entries:?}: {d:?}");
            assert!(e[0].1.contains(want), "{entries:?}: {}", e[0].1);
            if !want.contains("KEY=VALUE") {
                assert!(!c.problems().is_empty(), "{entries:?} problems() agrees");
            }
        }
    }

    #[test]
    fn problems_of_a_json_record() {
        let c = Constraints { machine_id: Some("m".into()), global: true, ..Default::default() };
        assert_eq!(c.problems().len(), 1);
        let c = Constraints { conflicts: vec!["[".into()], ..Default::default() };
        assert!(c.problems()[0].contains("malformed glob"));
        assert!(Constraints::default().problems().is_empty());
    }

    #[test]
    fn json_field_names_are_the_contract() {
        let json = serde_json::to_string(&Constraints::default()).unwrap();
        assert_eq!(
            json,
            r#"{"machine_id":null,"machine_of":[],"machine_metadata":{},"conflicts":[],"global":false,"replaces":[]}"#
        );
    }
}
