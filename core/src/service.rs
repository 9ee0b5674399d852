//! What systemd refuses when it loads a unit although every line parses: an
//! empty file (systemd loads it as masked, so it never starts) and a service
//! without the commands it needs (systemd 252's `service_verify()`, after
//! `service_add_extras()` picked the type).
//!
//! systemd's rules, checked in its order against `systemd-analyze verify`:
//! a service needs `ExecStart=`, `ExecStop=` or `SuccessAction=`; without
//! `ExecStart=` it must be `Type=oneshot` (which is also the type systemd
//! picks when `Type=` and `BusName=` are unset) and have
//! `RemainAfterExit=yes` or `SuccessAction=`; and only `Type=oneshot` may
//! have more than one `ExecStart=`. An empty `ExecStart=` or `ExecStop=`
//! clears the list; an empty or unparsable `Type=`, `RemainAfterExit=` or
//! `SuccessAction=` is ignored, as systemd ignores it.

use crate::diag::Diagnostic;
use crate::unit::{Entry, UnitFile};

/// The problems for which systemd would refuse to run `unit`, read from
/// `bytes`, called `name`. Line 0 for the file as a whole, as systemd
/// names the unit rather than a line.
#[must_use]
pub fn refusals(name: &str, bytes: &[u8], unit: &UnitFile) -> Vec<Diagnostic> {
    if bytes.is_empty() {
        return vec![Diagnostic::error(
            0,
            "the file is empty: systemd loads an empty unit file as masked and never starts it",
        )];
    }
    if !name.ends_with(".service") {
        return Vec::new();
    }
    let start = commands(unit.values("Service", "ExecStart"));
    let stop = commands(unit.values("Service", "ExecStop"));
    let success_action =
        last_parsed(unit.values("Unit", "SuccessAction"), |v| SUCCESS_ACTIONS.contains(&v).then_some(v))
            .is_some_and(|v| v != "none");
    let remain_after_exit =
        last_parsed(unit.values("Service", "RemainAfterExit"), parse_boolean).unwrap_or(false);
    let type_ = last_parsed(unit.values("Service", "Type"), |v| SERVICE_TYPES.contains(&v).then_some(v));
    let bus_name = unit.values("Service", "BusName").last().is_some_and(|e| !e.value.is_empty());
    let oneshot = match type_ {
        Some(t) => t == "oneshot",
        None => !bus_name && start.is_empty(),
    };
    let refuse = |line: usize, m: &str| vec![Diagnostic::error(line, m)];
    if start.is_empty() && stop.is_empty() && !success_action {
        return refuse(0, "Service has no ExecStart=, ExecStop=, or SuccessAction=. Refusing.");
    }
    if !oneshot && start.is_empty() {
        return refuse(
            0,
            "Service has no ExecStart= setting, which is only allowed for Type=oneshot services. Refusing.",
        );
    }
    if !remain_after_exit && start.is_empty() && !success_action {
        return refuse(
            0,
            "Service has no ExecStart= and no SuccessAction= settings and does not have RemainAfterExit=yes set. Refusing.",
        );
    }
    if !oneshot && start.len() > 1 {
        return refuse(
            start[1],
            "Service has more than one ExecStart= setting, which is only allowed for Type=oneshot services. Refusing.",
        );
    }
    Vec::new()
}

/// systemd 252's service types (`notify-reload` came in 253).
const SERVICE_TYPES: [&str; 7] = ["simple", "exec", "forking", "oneshot", "dbus", "notify", "idle"];

/// systemd 252's emergency actions, which `SuccessAction=` takes.
const SUCCESS_ACTIONS: [&str; 9] = [
    "none",
    "reboot",
    "reboot-force",
    "reboot-immediate",
    "poweroff",
    "poweroff-force",
    "poweroff-immediate",
    "exit",
    "exit-force",
];

/// The lines of the commands an `Exec*=` list ends up with: an empty value
/// clears it, a value with no program after its prefixes (`-`) is ignored.
fn commands<'a>(entries: impl Iterator<Item = &'a Entry>) -> Vec<usize> {
    let mut lines = Vec::new();
    for e in entries {
        let value = e.value.trim();
        if value.is_empty() {
            lines.clear();
        } else if !value.trim_start_matches(['-', '@', ':', '+', '!']).trim_start().is_empty() {
            lines.push(e.line);
        }
    }
    lines
}

/// The last value that `parse` accepts; systemd ignores the others.
fn last_parsed<'a, T>(
    entries: impl Iterator<Item = &'a Entry>,
    parse: impl Fn(&'a str) -> Option<T>,
) -> Option<T> {
    entries.filter_map(|e| parse(e.value.as_str())).last()
}

/// systemd's `parse_boolean()`.
fn parse_boolean(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "t" | "on" => Some(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Option<String> {
        let unit = UnitFile::parse(text).unwrap();
        refusals("a.service", text.as_bytes(), &unit).pop().map(|d| d.message)
    }

    /// Each case as `systemd-analyze verify` (systemd 252) judged it.
    #[test]
    fn as_systemd_252_judges_them() {
        let none = "Service has no ExecStart=, ExecStop=, or SuccessAction=. Refusing.";
        let only_oneshot =
            "Service has no ExecStart= setting, which is only allowed for Type=oneshot services. Refusing.";
        let no_remain = "Service has no ExecStart= and no SuccessAction= settings and does not have RemainAfterExit=yes set. Refusing.";
        let two = "Service has more than one ExecStart= setting, which is only allowed for Type=oneshot services. Refusing.";
        let cases: &[(&str, Option<&str>)] = &[
            ("\n", Some(none)),
            ("# only a comment\n", Some(none)),
            ("[Unit]\nDescription=x\n", Some(none)),
            ("[Service]\nType=simple\n", Some(none)),
            ("[Service]\nExecStart=/bin/true\nExecStart=\n", Some(none)),
            ("[Service]\nExecStart=  \n", Some(none)),
            ("[Service]\nExecStart=-\n", Some(none)),
            ("[Service]\nSuccessAction=exit\n", Some(none)),
            ("[Unit]\nSuccessAction=none\n[Service]\nType=oneshot\nRemainAfterExit=yes\n", Some(none)),
            ("[Service]\nType=oneshot\nExecStop=/bin/true\n", Some(no_remain)),
            ("[Service]\nExecStop=/bin/true\n", Some(no_remain)),
            ("[Service]\nType=oneshot\nRemainAfterExit=bogus\nExecStop=/bin/true\n", Some(no_remain)),
            ("[Service]\nType=simple\nRemainAfterExit=yes\nExecStop=/bin/true\n", Some(only_oneshot)),
            ("[Service]\nBusName=a.b\nRemainAfterExit=yes\nExecStop=/bin/true\n", Some(only_oneshot)),
            ("[Service]\nExecStart=/bin/true\nExecStart=/bin/true\n", Some(two)),
            ("[Service]\nExecStart=/bin/a\nExecStart=/bin/b\nType=oneshot\nType=simple\n", Some(two)),
            ("[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStop=/bin/true\n", None),
            ("[Service]\nRemainAfterExit=yes\nExecStop=/bin/true\n", None),
            ("[Service]\nType=\nRemainAfterExit=yes\nExecStop=/bin/true\n", None),
            ("[Service]\nType=oneshot\nRemainAfterExit=yes\nRemainAfterExit=\nExecStop=/bin/true\n", None),
            ("[Unit]\nSuccessAction=exit\n[Service]\n", None),
            ("[Unit]\nSuccessAction=exit\nSuccessAction=\n[Service]\n", None),
            ("[Unit]\nSuccessAction=kexec\n[Service]\n", Some(none)),
            ("[Service]\nExecStart=/bin/true\nExecStart=\nExecStart=/bin/true\n", None),
            ("[Service]\nType=oneshot\nExecStart=/bin/a\nExecStart=/bin/b\n", None),
        ];
        for (text, want) in cases {
            assert_eq!(check(text).as_deref(), *want, "{text:?}");
        }
    }

    #[test]
    fn empty_files_are_masked_and_other_types_need_no_command() {
        let empty = UnitFile::default();
        assert!(refusals("a.socket", b"", &empty)[0].message.contains("masked"));
        assert!(refusals("a.service", b"", &empty)[0].message.contains("masked"));
        assert!(refusals("a.target", b"[Unit]\n", &UnitFile::parse("[Unit]\n").unwrap()).is_empty());
    }
}
