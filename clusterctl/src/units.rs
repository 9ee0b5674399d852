//! Unit names as users type them, and the unit records clusterctl stores.
//!
//! fleetctl accepted `foo` for `foo.service` and instantiated `foo@1.service`
//! from a submitted `foo@.service`; clusterctl does the same. A template is
//! stored as submitted (its specifiers unresolved, no constraints); an
//! instance is expanded from it when it is first loaded or started, and is
//! stored under its own name so every later reader sees the same record.
//! `start` also pulls along the units that `Requires=`, `Wants=` and
//! `BindsTo=` name, which is what the tutorial promised and fleet never did.

use std::collections::BTreeMap;

use fleetkit_core::constraints::Constraints;
use fleetkit_core::diag::{Diagnostic, Severity};
use fleetkit_core::expand::{expand as core_expand, hex_sha256, Source};
use fleetkit_core::name::{has_type_suffix, Kind, UnitName};
use fleetkit_core::records::UnitRecord;
use fleetkit_core::unit::UnitFile;

/// `foo` means `foo.service`, as in fleetctl; a name with any of systemd's
/// unit types keeps it.
#[must_use]
pub fn canonical(name: &str) -> String {
    if has_type_suffix(name) {
        name.to_string()
    } else {
        format!("{name}.service")
    }
}

/// True for `foo@.service`: a template, never placed itself.
#[must_use]
pub fn is_template(name: &str) -> bool {
    UnitName::parse(name).is_ok_and(|n| n.kind == Kind::Template)
}

/// `foo@1.service` → (`foo@.service`, `1`); None for plain units and templates.
#[must_use]
pub fn split_instance(name: &str) -> Option<(String, String)> {
    let n = UnitName::parse(name).ok()?;
    if n.kind != Kind::Instance {
        return None;
    }
    Some((n.template()?, n.instance?.to_string()))
}

/// Checks a unit file name as systemd would.
///
/// # Errors
/// A message naming the rule the name breaks.
pub fn check_name(name: &str) -> Result<(), String> {
    UnitName::parse(name).map(|_| ())
}

fn diagnostics(name: &str, diags: &[Diagnostic]) -> String {
    let lines: Vec<String> =
        diags.iter().filter(|d| d.severity == Severity::Error).map(|d| d.display(name).to_string()).collect();
    lines.join("\n")
}

/// Why systemd would refuse to run `name` (an empty file, a service with
/// no `ExecStart=`, ...), in systemd's words: such a unit is not stored.
///
/// # Errors
/// The refusals as `NAME: message` lines.
pub fn check_runnable(name: &str, text: &str) -> Result<(), String> {
    let src = Source::parse(name, text.as_bytes()).map_err(|d| diagnostics(name, &d))?;
    let refused: Vec<String> = src.refusals().iter().map(|d| d.display(name).to_string()).collect();
    if refused.is_empty() {
        Ok(())
    } else {
        Err(refused.join("\n"))
    }
}

/// The record of a submitted template: its text as written (specifiers
/// unresolved, no constraints), hashed in canonical form.
///
/// # Errors
/// The file's syntax errors as `NAME:LINE: message`.
pub fn template_record(name: &str, text: &str) -> Result<UnitRecord, String> {
    // Checks the name, the syntax and the specifiers before anything is stored.
    Source::parse(name, text.as_bytes()).map_err(|d| diagnostics(name, &d))?;
    let unit = UnitFile::parse(text).map_err(|d| diagnostics(name, &d))?;
    let canonical = unit.to_text();
    Ok(UnitRecord {
        name: name.to_string(),
        template: None,
        instance: None,
        hash: hex_sha256(canonical.as_bytes()),
        constraints: Constraints::default(),
        text: canonical,
    })
}

/// The record of a plain unit file, or of template `name` instantiated as
/// `instance`: the same record unitgen makes (name specifiers resolved,
/// `[X-Fleet]` read, canonical text hashed).
///
/// # Errors
/// The unit's problems as `NAME:LINE: message`.
pub fn expand(name: &str, text: &str, instance: Option<&str>) -> Result<UnitRecord, String> {
    core_expand(name, text, instance).map(|(r, _)| r).map_err(|d| diagnostics(name, &d))
}

/// The units a unit's `[Unit]` section says must come along:
/// `Requires=`, `Wants=` and `BindsTo=`, in file order.
#[must_use]
pub fn dependencies(text: &str) -> Vec<String> {
    let Ok(unit) = UnitFile::parse(text) else { return Vec::new() };
    let mut out = Vec::new();
    for section in unit.sections.iter().filter(|s| s.name == "Unit") {
        for e in &section.entries {
            if matches!(e.key.as_str(), "Requires" | "Wants" | "BindsTo") {
                out.extend(e.value.split_whitespace().map(str::to_string));
            }
        }
    }
    out
}

/// What `start`/`load` resolve a list of names to: the records that already
/// exist, the instances to create, and the names nobody submitted.
#[derive(Debug, Default)]
pub struct Resolved {
    /// Every unit to act on, in the order first named.
    pub names: Vec<String>,
    /// Instances expanded now from a submitted template, to be stored.
    pub created: BTreeMap<String, UnitRecord>,
}

/// Resolves `names` against the submitted units, instantiating templates
/// and (with `follow`) pulling in dependencies that are submitted.
///
/// # Errors
/// A name that is neither submitted nor an instance of a submitted template,
/// or an instance whose expansion fails.
pub fn resolve(
    names: &[String],
    units: &BTreeMap<String, UnitRecord>,
    follow: bool,
) -> Result<Resolved, String> {
    let mut out = Resolved::default();
    let mut queue: Vec<(String, bool)> = names.iter().map(|n| (canonical(n), true)).collect();
    queue.reverse();
    while let Some((name, asked)) = queue.pop() {
        if out.names.contains(&name) {
            continue;
        }
        let record = if let Some(r) = units.get(&name).or_else(|| out.created.get(&name)) {
            r.clone()
        } else if let Some((template, instance)) = split_instance(&name) {
            match units.get(&template) {
                Some(t) => {
                    let r = expand(&t.name, &t.text, Some(&instance))?;
                    out.created.insert(name.clone(), r.clone());
                    r
                }
                None if asked => {
                    return Err(format!(
                        "{name}: neither it nor its template {template} is submitted: run 'clusterctl submit {template}' first"
                    ))
                }
                None => continue,
            }
        } else if asked {
            if is_template(&name) {
                return Err(format!(
                    "{name} is a template: start an instance of it, e.g. {}",
                    name.replacen("@.", "@1.", 1)
                ));
            }
            return Err(format!("{name} is not submitted: run 'clusterctl submit FILE' first"));
        } else {
            // A host unit such as docker.service: not fleetkit's to start.
            continue;
        };
        if is_template(&name) {
            if asked {
                return Err(format!(
                    "{name} is a template: start an instance of it, e.g. {}",
                    name.replacen("@.", "@1.", 1)
                ));
            }
            continue;
        }
        out.names.push(name);
        if follow {
            let deps = dependencies(&record.text);
            for d in deps.into_iter().rev() {
                queue.push((canonical(&d), false));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = "[Unit]\nRequires=node-etcd-discovery@%i.service\nAfter=docker.service\n\
        [Service]\nExecStart=/bin/true node-etcd%i\n[X-Fleet]\nConflicts=node-etcd@*.service\n";
    const SIDEKICK: &str =
        "[Unit]\nBindsTo=node-etcd@%i.service\n[X-Fleet]\nMachineOf=node-etcd@%i.service\n";

    #[test]
    fn names() {
        assert_eq!(canonical("foo"), "foo.service");
        assert_eq!(canonical("foo@1.service"), "foo@1.service");
        assert_eq!(canonical("backup.timer"), "backup.timer");
        assert_eq!(canonical("a.b"), "a.b.service");
        assert!(is_template("foo@.service"));
        assert!(!is_template("foo@1.service"));
        assert_eq!(split_instance("foo@1.service"), Some(("foo@.service".into(), "1".into())));
        assert_eq!(split_instance("foo.service"), None);
        assert_eq!(split_instance("foo@.service"), None);
        assert!(check_name("a b.service").is_err());
        assert!(check_name("ab").is_err());
        assert!(check_name("node-etcd@.service").is_ok());
    }

    #[test]
    fn instance_resolves_specifiers_and_constraints() {
        let r = expand("node-etcd-discovery@.service", SIDEKICK, Some("2")).unwrap();
        assert_eq!(r.name, "node-etcd-discovery@2.service");
        assert_eq!(r.template.as_deref(), Some("node-etcd-discovery@.service"));
        assert_eq!(r.constraints.machine_of, vec!["node-etcd@2.service"]);
        assert!(r.text.contains("BindsTo=node-etcd@2.service"));
        assert_eq!(r.hash.len(), 64);
    }

    #[test]
    fn start_pulls_submitted_dependencies_along() {
        let mut units = BTreeMap::new();
        units.insert(
            "node-etcd@.service".to_string(),
            template_record("node-etcd@.service", TEMPLATE).unwrap(),
        );
        units.insert(
            "node-etcd-discovery@.service".to_string(),
            template_record("node-etcd-discovery@.service", SIDEKICK).unwrap(),
        );
        let r = resolve(&["node-etcd@1.service".into()], &units, true).unwrap();
        assert_eq!(r.names, vec!["node-etcd@1.service", "node-etcd-discovery@1.service"]);
        assert_eq!(r.created.len(), 2);
        let r = resolve(&["node-etcd@1.service".into()], &units, false).unwrap();
        assert_eq!(r.names, vec!["node-etcd@1.service"]);
        assert!(resolve(&["nope@1.service".into()], &units, true).unwrap_err().contains("submit"));
        assert!(resolve(&["node-etcd@.service".into()], &units, true).unwrap_err().contains("template"));
    }

    #[test]
    fn continuation_lines_join() {
        let deps = dependencies("[Unit]\nRequires=a.service \\\n  b.service\nWants=c.service\n");
        assert_eq!(deps, vec!["a.service", "b.service", "c.service"]);
    }
}
