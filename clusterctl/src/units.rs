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
use fleetkit_core::records::UnitRecord;
use sha2::{Digest, Sha256};

/// The suffixes systemd knows; a name without one gets `.service`.
const SUFFIXES: &[&str] = &[
    ".service",
    ".socket",
    ".device",
    ".mount",
    ".automount",
    ".swap",
    ".target",
    ".path",
    ".timer",
    ".slice",
    ".scope",
];

/// `foo` means `foo.service`, as in fleetctl.
#[must_use]
pub fn canonical(name: &str) -> String {
    if SUFFIXES.iter().any(|s| name.ends_with(s)) {
        name.to_string()
    } else {
        format!("{name}.service")
    }
}

/// True for `foo@.service`: a template, never placed itself.
#[must_use]
pub fn is_template(name: &str) -> bool {
    name.find('@').is_some_and(|at| name[at + 1..].starts_with('.'))
}

/// `foo@1.service` → (`foo@.service`, `1`); None for plain units and templates.
#[must_use]
pub fn split_instance(name: &str) -> Option<(String, String)> {
    let at = name.find('@')?;
    let dot = name.rfind('.')?;
    if dot <= at + 1 {
        return None;
    }
    let template = format!("{}@{}", &name[..at], &name[dot..]);
    Some((template, name[at + 1..dot].to_string()))
}

/// Checks a unit file name the way a user needs to hear about it.
///
/// # Errors
/// A message naming the problem.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 {
        return Err(format!("'{name}' is not a unit name: 1 to 255 characters"));
    }
    if !SUFFIXES.iter().any(|s| name.ends_with(s)) {
        return Err(format!("'{name}' is not a unit name: it needs a suffix such as .service"));
    }
    let ok = |c: char| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c);
    if let Some(c) = name.chars().find(|&c| !ok(c)) {
        return Err(format!("'{name}' is not a unit name: '{c}' is not allowed (use systemd-escape)"));
    }
    if name.matches('@').count() > 1 {
        return Err(format!("'{name}' is not a unit name: more than one '@'"));
    }
    Ok(())
}

/// Hex SHA-256 of a unit's text: the HASH column and the assign/ value.
#[must_use]
pub fn hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The record of a submitted template: its text as written, nothing resolved.
#[must_use]
pub fn template_record(name: &str, text: &str) -> UnitRecord {
    UnitRecord {
        name: name.to_string(),
        template: None,
        instance: None,
        hash: hash(text),
        constraints: Constraints::default(),
        text: text.to_string(),
    }
}

/// The record of a plain unit file or of `template` instantiated as
/// `instance`: name-derived specifiers resolved, `[X-Fleet]` parsed.
///
/// # Errors
/// The unit's problems as `NAME:LINE: message` lines.
pub fn expand(name: &str, text: &str, instance: Option<&str>) -> Result<UnitRecord, String> {
    let full = match instance {
        Some(i) => name.replacen("@.", &format!("@{i}."), 1),
        None => name.to_string(),
    };
    let text = resolve_specifiers(&full, text);
    let constraints = parse_constraints(&full, &text)?;
    Ok(UnitRecord {
        name: full,
        template: instance.map(|_| name.to_string()),
        instance: instance.map(str::to_string),
        hash: hash(&text),
        constraints,
        text,
    })
}

/// `%n %N %p %P %i %I %f %j %J %%` depend only on the name; the rest are the
/// target host's and are left for systemd there.
fn resolve_specifiers(full: &str, text: &str) -> String {
    let stem = full.rfind('.').map_or(full, |d| &full[..d]);
    let (prefix, instance) = match stem.find('@') {
        Some(at) => (&stem[..at], &stem[at + 1..]),
        None => (stem, ""),
    };
    let prefix_j = prefix.rfind('-').map_or(prefix, |d| &prefix[..d]);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push_str(full),
            Some('N') => out.push_str(stem),
            Some('p' | 'P') => out.push_str(prefix),
            Some('i' | 'I') => out.push_str(instance),
            Some('f') => {
                out.push('/');
                out.push_str(if instance.is_empty() { prefix } else { instance });
            }
            Some('j' | 'J') => out.push_str(prefix_j),
            Some('%') => out.push_str("%%"),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// The `Key=Value` entries of section `name`, continuation lines joined.
fn section_entries(text: &str, name: &str) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    let mut inside = false;
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some((start, mut acc)) = pending.take() {
            if line.starts_with('#') || line.starts_with(';') {
                pending = Some((start, acc));
                continue;
            }
            acc.push(' ');
            acc.push_str(line);
            finish_line(&mut out, &mut pending, inside, start, acc);
            continue;
        }
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            inside = &line[1..line.len() - 1] == name;
            continue;
        }
        finish_line(&mut out, &mut pending, inside, i + 1, line.to_string());
    }
    if let Some((start, acc)) = pending {
        finish_line(&mut out, &mut None, inside, start, acc);
    }
    out
}

fn finish_line(
    out: &mut Vec<(usize, String, String)>,
    pending: &mut Option<(usize, String)>,
    inside: bool,
    start: usize,
    mut acc: String,
) {
    let trailing = acc.chars().rev().take_while(|&c| c == '\\').count();
    if trailing % 2 == 1 && pending.is_none() {
        acc.pop();
        *pending = Some((start, acc));
        return;
    }
    if inside {
        if let Some((k, v)) = acc.split_once('=') {
            out.push((start, k.trim().to_string(), v.trim().to_string()));
        }
    }
}

fn parse_constraints(name: &str, text: &str) -> Result<Constraints, String> {
    let mut c = Constraints::default();
    let words = |v: &str| v.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    for (line, key, value) in section_entries(text, "X-Fleet") {
        match key.as_str() {
            "Conflicts" | "X-Conflicts" => c.conflicts.extend(words(&value)),
            "MachineOf" | "X-ConditionMachineOf" => c.machine_of.extend(words(&value)),
            "MachineID" | "X-ConditionMachineID" => c.machine_id = Some(value),
            "Global" => c.global = matches!(value.as_str(), "true" | "yes" | "1" | "on"),
            "Replaces" => c.replaces.extend(words(&value)),
            "MachineMetadata" | "X-ConditionMachineMetadata" => {
                for pair in value.split_whitespace() {
                    let Some((k, v)) = pair.split_once('=') else {
                        return Err(format!("{name}:{line}: MachineMetadata= needs key=value, got '{pair}'"));
                    };
                    c.machine_metadata.entry(k.to_string()).or_default().push(v.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(c)
}

/// The units a unit's `[Unit]` section says must come along:
/// `Requires=`, `Wants=` and `BindsTo=`, in file order.
#[must_use]
pub fn dependencies(text: &str) -> Vec<String> {
    section_entries(text, "Unit")
        .into_iter()
        .filter(|(_, k, _)| matches!(k.as_str(), "Requires" | "Wants" | "BindsTo"))
        .flat_map(|(_, _, v)| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect()
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
        units.insert("node-etcd@.service".to_string(), template_record("node-etcd@.service", TEMPLATE));
        units.insert(
            "node-etcd-discovery@.service".to_string(),
            template_record("node-etcd-discovery@.service", SIDEKICK),
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
