//! Turning a unit file (a template plus an instance, or a plain unit) into
//! the unit record every other tool works with.
//!
//! This is where the parts meet: the file is parsed once ([`Source`]), then
//! each instance gets its name checked, its name specifiers resolved in every
//! value (`[X-Fleet]` included), its canonical text hashed and its
//! `[X-Fleet]` rules read. unitgen runs it for every `-i` instance, clusterctl
//! for `start foo@1.service`; both must produce the same record for the same
//! input, so both go through [`expand`] or [`Source`].

use sha2::{Digest, Sha256};

use crate::constraints::Constraints;
use crate::diag::{escaped, has_errors, Diagnostic};
use crate::name::{Kind, UnitName};
use crate::records::UnitRecord;
use crate::specifier::{self, Compiled, Specifiers};
use crate::unit::{ends_escaped, push_entry, push_header, UnitFile};

/// A parsed unit file ready to be expanded, possibly many times.
#[derive(Debug, Clone)]
pub struct Source {
    name: String,
    kind: Kind,
    unit: UnitFile,
    /// Length of the canonical text before expansion (a capacity hint).
    text_len: usize,
    /// Warnings about the file itself (ignored lines, `KillMode=none`).
    warnings: Vec<Diagnostic>,
    /// The `[X-Fleet]` rules and their diagnostics when no value there
    /// holds a `%`: then they are the same for every instance, and reading
    /// them once saves most of the per-instance work besides the text.
    fixed_fleet: Option<(Constraints, Vec<Diagnostic>)>,
    /// Each entry's specifiers, in file order, found once.
    compiled: Vec<Compiled>,
    /// Why systemd would refuse to run the unit although it parses
    /// ([`crate::service::refusals`]).
    refusals: Vec<Diagnostic>,
}

impl Source {
    /// Parses `bytes` as the unit file called `name` and checks what does
    /// not depend on an instance: the name, the syntax, unknown specifiers.
    ///
    /// # Errors
    /// Every problem found, warnings included, when any is an error.
    pub fn parse(name: &str, bytes: &[u8]) -> Result<Source, Vec<Diagnostic>> {
        let mut diags = Vec::new();
        let kind = match UnitName::parse(name) {
            Ok(n) => Some(n.kind),
            Err(e) => {
                diags.push(Diagnostic::error(0, e));
                None
            }
        };
        let unit = match UnitFile::parse_bytes(bytes) {
            Ok((unit, warnings)) => {
                diags.extend(warnings);
                Some(unit)
            }
            Err(errors) => {
                diags.extend(errors);
                None
            }
        };
        if let Some(unit) = &unit {
            for section in &unit.sections {
                for entry in &section.entries {
                    if let Err(e) = specifier::check(&entry.value) {
                        diags.push(Diagnostic::error(entry.line, format!("{}= {e}", escaped(&entry.key))));
                    }
                }
            }
            for entry in unit.values("Service", "KillMode") {
                if entry.value == "none" {
                    diags.push(Diagnostic::warning(
                        entry.line,
                        "KillMode=none leaves the container running when systemd stops the unit; \
                         run it with dockrun in ExecStart= and drop KillMode=none",
                    ));
                }
            }
        }
        match (kind, unit) {
            (Some(kind), Some(unit)) if !has_errors(&diags) => {
                let text_len = unit.to_text().len();
                let fleet = || unit.sections.iter().filter(|s| s.name == "X-Fleet");
                let fixed_fleet = fleet()
                    .all(|s| s.entries.iter().all(|e| !e.value.contains('%')))
                    .then(|| Constraints::from_unit(&UnitFile { sections: fleet().cloned().collect() }));
                let compiled =
                    unit.sections.iter().flat_map(|s| &s.entries).map(|e| Compiled::new(&e.value)).collect();
                let refusals = crate::service::refusals(name, bytes, &unit);
                Ok(Source {
                    name: name.to_owned(),
                    kind,
                    unit,
                    text_len,
                    warnings: diags,
                    fixed_fleet,
                    compiled,
                    refusals,
                })
            }
            _ => {
                sort(&mut diags);
                Err(diags)
            }
        }
    }

    /// The unit name the file was given.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this is a template (`foo@.service`) that needs instances.
    #[must_use]
    pub fn is_template(&self) -> bool {
        self.kind == Kind::Template
    }

    /// Warnings found while parsing (the per-instance ones come with each
    /// record).
    #[must_use]
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// Why systemd would refuse to run this unit although every line
    /// parses: an empty file, a service without the commands it needs
    /// ([`crate::service`]). Not part of [`Source::parse`]'s errors, so a
    /// caller decides; `unitgen` reports them as errors.
    #[must_use]
    pub fn refusals(&self) -> &[Diagnostic] {
        &self.refusals
    }

    /// The record for `instance` of a template, or for the unit itself when
    /// `instance` is `None` and this is no template.
    ///
    /// # Errors
    /// A template without instance or a plain unit with one, a bad
    /// instance, a specifier systemd cannot resolve for this name, or
    /// contradictory `[X-Fleet]` rules.
    pub fn instantiate(
        &self,
        instance: Option<&str>,
    ) -> Result<(UnitRecord, Vec<Diagnostic>), Vec<Diagnostic>> {
        let one = |m: String| vec![Diagnostic::error(0, m)];
        let parsed = UnitName::parse(&self.name).map_err(one)?;
        let (name, template) = match (self.kind, instance) {
            (Kind::Template, Some(i)) => (parsed.instantiate(i).map_err(one)?, Some(self.name.clone())),
            (Kind::Template, None) => {
                return Err(one(format!(
                    "{} is a template: give instances (e.g. -i 1..3)",
                    escaped(&self.name)
                )));
            }
            (_, Some(i)) => {
                return Err(one(format!(
                    "{} is not a template (foo@.service), so it takes no instance (got '{}')",
                    escaped(&self.name),
                    escaped(i)
                )));
            }
            // A file already named `foo@1.service` is that instance of `foo@.service`.
            (_, None) => (self.name.clone(), parsed.template()),
        };
        let unit_name = UnitName::parse(&name).map_err(one)?;
        let specs = Specifiers::new(&unit_name);
        let mut errors = Vec::new();
        // Written straight into canonical text: no copy of the unit per
        // instance (unitgen makes 100,000 of them in well under a second).
        let mut text = String::with_capacity(self.text_len + 256);
        let mut fleet_unit = UnitFile { sections: Vec::new() };
        let mut compiled = self.compiled.iter();
        for (i, section) in self.unit.sections.iter().enumerate() {
            push_header(&mut text, &section.name, i == 0);
            let mut fleet_section =
                (self.fixed_fleet.is_none() && section.name == "X-Fleet").then(|| section.clone());
            for ((k, entry), compiled) in section.entries.iter().enumerate().zip(&mut compiled) {
                if compiled.is_literal() {
                    // Rewriting it would give it back as it is, but `%%`
                    // still resolves to `%` for the rules.
                    push_entry(&mut text, &entry.key, &entry.value);
                    if let Some(fs) = fleet_section.as_mut().filter(|_| entry.value.contains('%')) {
                        fs.entries[k].value = specs.resolve(&entry.value).unwrap_or_default();
                    }
                    continue;
                }
                // As push_entry, with the value rewritten in place.
                let start = text.len();
                text.push_str(&entry.key);
                text.push('=');
                let value_start = text.len();
                match specs.rewrite_compiled(&entry.value, compiled, &mut text) {
                    Ok(()) => {
                        if let Some(fs) = &mut fleet_section {
                            fs.entries[k].value = specs.resolve(&entry.value).unwrap_or_default();
                        }
                        if ends_escaped(&text.as_bytes()[value_start..]) {
                            text.push(' ');
                        }
                        text.push('\n');
                    }
                    Err(e) => {
                        text.truncate(start);
                        errors.push(Diagnostic::error(entry.line, format!("{}= {e}", escaped(&entry.key))));
                    }
                }
            }
            fleet_unit.sections.extend(fleet_section);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let hash = hex_sha256(text.as_bytes());
        let (constraints, mut diags) = match &self.fixed_fleet {
            Some((constraints, diags)) => (constraints.clone(), diags.clone()),
            None => Constraints::from_unit(&fleet_unit),
        };
        if has_errors(&diags) {
            sort(&mut diags);
            return Err(diags);
        }
        let instance = unit_name.instance.filter(|i| !i.is_empty()).map(str::to_owned);
        Ok((UnitRecord { name, template, instance, hash, constraints, text }, diags))
    }
}

/// Expands the unit file `text` called `name` for `instance` (required for a
/// template, refused for a plain unit). Warnings (ignored lines,
/// `KillMode=none`, unknown `[X-Fleet]` keys) come with the record.
///
/// # Errors
/// Every problem found, when any is an error.
pub fn expand(
    name: &str,
    text: &str,
    instance: Option<&str>,
) -> Result<(UnitRecord, Vec<Diagnostic>), Vec<Diagnostic>> {
    let source = Source::parse(name, text.as_bytes())?;
    let (record, mut diags) = source.instantiate(instance)?;
    let mut all = source.warnings;
    all.append(&mut diags);
    sort(&mut all);
    Ok((record, all))
}

fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by_key(|d| d.line);
}

/// Lower-case hex SHA-256 of `bytes`.
#[must_use]
pub fn hex_sha256(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DISCOVERY: &str =
        "[Unit]\nDescription=Announce node-etcd@%i service\nBindsTo=node-etcd@%i.service\n\
        [Service]\nExecStart=/bin/sh -c \"etcdctl set /announce/services/node-etcd%i x\"\n\
        [X-Fleet]\nMachineOf=node-etcd@%i.service\n";

    #[test]
    fn expands_every_value_including_x_fleet() {
        let (r, w) = expand("node-etcd-discovery@.service", DISCOVERY, Some("2")).unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(r.name, "node-etcd-discovery@2.service");
        assert_eq!(r.template.as_deref(), Some("node-etcd-discovery@.service"));
        assert_eq!(r.instance.as_deref(), Some("2"));
        assert!(r.text.contains("BindsTo=node-etcd@2.service\n"));
        assert!(r.text.contains("/announce/services/node-etcd2 "));
        assert!(r.text.contains("[X-Fleet]\nMachineOf=node-etcd@2.service\n"));
        assert_eq!(r.hash, hex_sha256(r.text.as_bytes()));
    }

    #[test]
    fn templates_need_instances_and_plain_units_refuse_them() {
        assert!(expand("a@.service", "[Unit]\n", None).is_err());
        assert!(expand("a.service", "[Unit]\n", Some("1")).is_err());
        let (r, _) = expand("a.service", "[Unit]\nDescription=%n\n", None).unwrap();
        assert_eq!((r.template, r.instance), (None, None));
        assert!(r.text.contains("Description=a.service"));
    }

    #[test]
    fn unknown_specifiers_and_kill_mode_none() {
        let err = expand("a@.service", "[Service]\nKillMode=none\nExecStart=/bin/x node%1\n", Some("1"))
            .unwrap_err();
        assert_eq!(err.len(), 2);
        assert_eq!(err[1].line, 3);
        assert!(err[1].message.contains("%1"), "{}", err[1].message);
        let (_, w) = expand("a@.service", "[Service]\nKillMode=none\n", Some("1")).unwrap();
        assert!(w[0].message.contains("dockrun"));
    }

    #[test]
    fn an_instance_file_names_its_template() {
        let (r, _) = expand("web@3.service", "[Unit]\nDescription=%i\n", None).unwrap();
        assert_eq!((r.template.as_deref(), r.instance.as_deref()), (Some("web@.service"), Some("3")));
        assert!(r.text.contains("Description=3\n"));
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(hex_sha256(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
