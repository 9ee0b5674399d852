//! Unit names as systemd 252 judges them (`unit_name_is_valid()`), split into
//! prefix, instance and suffix, and systemd-escape's escaping.
//!
//! A unit is stored, placed and started by its name, so fleetkit accepts
//! exactly the names systemd would load and no others, and escapes instance
//! strings (`10.0.0.1/24` → `10.0.0.1-24`) byte for byte as `systemd-escape`
//! does so that `%I` and `%f` give back what the user meant.
//! Every message here quotes the name or text it refuses through
//! [`escaped`], so control bytes in it reach no terminal raw.

use crate::diag::escaped;

/// systemd's `UNIT_NAME_MAX` is 256 including the NUL: 255 bytes at most.
pub const UNIT_NAME_MAX: usize = 255;

/// The unit types systemd 252 knows (`unit_type_to_string`).
pub const SUFFIXES: [&str; 11] = [
    "service",
    "socket",
    "target",
    "device",
    "mount",
    "automount",
    "swap",
    "timer",
    "path",
    "slice",
    "scope",
];

/// True when `name` ends in `.` and one of [`SUFFIXES`] (`foo.service`,
/// `a.b.timer`), valid otherwise or not: what decides whether a name a user
/// typed already says its type.
#[must_use]
pub fn has_type_suffix(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(_, suffix)| SUFFIXES.contains(&suffix))
}

/// Which of the three shapes a valid unit name has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `foo.service`
    Plain,
    /// `foo@.service`
    Template,
    /// `foo@bar.service`
    Instance,
}

/// A valid unit name taken apart the way systemd takes it apart: the prefix
/// ends at the first `@` (or the suffix dot), the instance runs from there to
/// the last `.`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitName<'a> {
    pub full: &'a str,
    pub kind: Kind,
    /// `foo` in `foo@bar@baz.service`.
    pub prefix: &'a str,
    /// `bar@baz` in `foo@bar@baz.service`; `None` for plain units, `Some("")`
    /// for templates.
    pub instance: Option<&'a str>,
    /// `service`.
    pub suffix: &'a str,
}

/// Bytes systemd allows in a unit name besides `@` (`VALID_CHARS`).
#[must_use]
pub fn is_valid_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b':' | b'-' | b'_' | b'.' | b'\\')
}

impl<'a> UnitName<'a> {
    /// Takes `name` apart, or says in a sentence why systemd would refuse it.
    ///
    /// # Errors
    /// A message naming the name and the rule it breaks.
    pub fn parse(name: &'a str) -> Result<Self, String> {
        if name.is_empty() {
            return Err("empty unit name".into());
        }
        if name.len() > UNIT_NAME_MAX {
            return Err(format!(
                "unit name '{}…' is {} bytes long; systemd allows {UNIT_NAME_MAX} at most",
                escaped(truncate(name, 40)),
                name.len()
            ));
        }
        // Only on the way out: a valid name costs no scan.
        let shown = || escaped(name);
        let Some(dot) = name.rfind('.').filter(|&d| d > 0) else {
            return Err(format!("invalid unit name '{}': it needs a type suffix such as .service", shown()));
        };
        let suffix = &name[dot + 1..];
        if !SUFFIXES.contains(&suffix) {
            return Err(format!(
                "invalid unit name '{}': unknown unit type '.{}' (one of: {})",
                shown(),
                escaped(suffix),
                SUFFIXES.join(", ")
            ));
        }
        let stem = &name[..dot];
        if let Some(bad) = stem.bytes().find(|&b| b != b'@' && !is_valid_char(b)) {
            return Err(format!(
                "invalid unit name '{}': character {} is not allowed (only A-Z a-z 0-9 : - _ . \\ @; \
                 escape other text with systemd-escape or --escape)",
                shown(),
                describe_byte(bad)
            ));
        }
        let at = stem.find('@');
        if at == Some(0) {
            return Err(format!("invalid unit name '{}': it starts with '@'", shown()));
        }
        Ok(match at {
            None => UnitName { full: name, kind: Kind::Plain, prefix: stem, instance: None, suffix },
            Some(at) => {
                let instance = &stem[at + 1..];
                let kind = if instance.is_empty() { Kind::Template } else { Kind::Instance };
                UnitName { full: name, kind, prefix: &stem[..at], instance: Some(instance), suffix }
            }
        })
    }

    /// `foo@.service` for `foo@bar.service` (and for a template itself).
    #[must_use]
    pub fn template(&self) -> Option<String> {
        (self.kind != Kind::Plain).then(|| format!("{}@.{}", self.prefix, self.suffix))
    }

    /// The instance unit `prefix@instance.suffix` of a template, checked.
    ///
    /// # Errors
    /// When the instance is empty, holds bytes systemd refuses, or makes the
    /// name too long.
    pub fn instantiate(&self, instance: &str) -> Result<String, String> {
        check_instance(instance)?;
        let name = format!("{}@{instance}.{}", self.prefix, self.suffix);
        if name.len() > UNIT_NAME_MAX {
            return Err(format!(
                "instance '{}…' makes the unit name {} bytes long; systemd allows {UNIT_NAME_MAX} at most",
                escaped(truncate(instance, 40)),
                name.len()
            ));
        }
        Ok(name)
    }
}

/// Checks that `instance` can stand between `@` and `.` in a unit name.
///
/// # Errors
/// A message naming the instance and what to do.
pub fn check_instance(instance: &str) -> Result<(), String> {
    if instance.is_empty() {
        return Err("empty instance name".into());
    }
    if let Some(bad) = instance.bytes().find(|&b| b != b'@' && !is_valid_char(b)) {
        return Err(format!(
            "invalid instance '{}': character {} is not allowed in a unit name; \
             use --escape to escape it as systemd-escape does",
            escaped(instance),
            describe_byte(bad)
        ));
    }
    Ok(())
}

fn describe_byte(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        format!("0x{b:02x}")
    }
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `systemd-escape STRING` (`unit_name_escape()`): `/` becomes `-`, a leading
/// `.` and every byte outside the allowed set (and `-`, `\`) becomes `\xNN`.
#[must_use]
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let bytes = s.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if i == 0 && b == b'.' {
            push_hex(&mut out, b);
        } else if b == b'/' {
            out.push('-');
        } else if b == b'-' || b == b'\\' || !is_valid_char(b) {
            push_hex(&mut out, b);
        } else {
            out.push(b as char);
        }
    }
    out
}

fn push_hex(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('\\');
    out.push('x');
    out.push(HEX[usize::from(b >> 4)] as char);
    out.push(HEX[usize::from(b & 15)] as char);
}

/// `systemd-escape --unescape` (`unit_name_unescape()`): `-` becomes `/`,
/// `\xNN` the byte NN. The result is bytes: systemd does not insist on UTF-8.
/// A NUL byte ends the string, as it ends a C string.
///
/// # Errors
/// A `\` not followed by `x` and two hex digits (systemd's `-EINVAL`).
pub fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'-' => out.push(b'/'),
            b'\\' => {
                let hex = |j: usize| bytes.get(j).and_then(|&c| (c as char).to_digit(16));
                match (bytes.get(i + 1), hex(i + 2), hex(i + 3)) {
                    (Some(b'x'), Some(a), Some(b)) => {
                        // Both digits are below 16, so this fits a byte.
                        out.push(u8::try_from(a * 16 + b).unwrap_or(0));
                        i += 3;
                    }
                    _ => return Err(format!("'{}' has a '\\' that is not a \\xNN escape", escaped(s))),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    if let Some(nul) = out.iter().position(|&b| b == 0) {
        out.truncate(nul);
    }
    Ok(out)
}

/// `systemd-escape --path --unescape` (`unit_name_path_unescape()`): what
/// `%f` gives: `-` alone is `/`, else the unescaped text with a leading `/`,
/// refused when it starts or ends with `/` or is not a normalized path.
///
/// # Errors
/// Why systemd would refuse it.
pub fn path_unescape(s: &str) -> Result<Vec<u8>, String> {
    if s.is_empty() {
        return Err("an empty string is no escaped path".into());
    }
    if s == "-" {
        return Ok(b"/".to_vec());
    }
    let w = unescape(s)?;
    if w.first() == Some(&b'/') || w.last() == Some(&b'/') {
        return Err(format!("'{}' unescapes to a path with a leading or trailing '/'", escaped(s)));
    }
    let mut path = Vec::with_capacity(w.len() + 1);
    path.push(b'/');
    path.extend_from_slice(&w);
    if !path_is_normalized(&path) {
        return Err(format!(
            "'{}' unescapes to a path that is not normalized (empty, '.' or '..' parts)",
            escaped(s)
        ));
    }
    Ok(path)
}

/// `systemd-escape --path` (`unit_name_path_escape()`).
///
/// # Errors
/// A path with `..` parts or over-long parts, which systemd refuses.
pub fn path_escape(path: &str) -> Result<String, String> {
    let simple = path_simplify(path);
    if simple.is_empty() || simple.bytes().all(|b| b == b'/') {
        return Ok("-".into());
    }
    if !path_is_normalized(simple.as_bytes()) {
        return Err(format!("'{}' is not a normalized path ('..' parts are refused)", escaped(path)));
    }
    Ok(escape(simple.trim_matches('/')))
}

/// systemd's `path_simplify()`: repeated `/` collapse, `.` parts go, a
/// trailing `/` goes (a lone `.` stays).
fn path_simplify(path: &str) -> String {
    let absolute = path.starts_with('/');
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    let mut out = String::with_capacity(path.len());
    if absolute {
        out.push('/');
    }
    out.push_str(&parts.join("/"));
    if out.is_empty() && !path.is_empty() {
        out.push('.');
    }
    out
}

/// systemd's `path_is_normalized()`: valid (non-empty, each part at most
/// 255 bytes, at most PATH_MAX), no `..` part, no `.` part, no `//`.
fn path_is_normalized(p: &[u8]) -> bool {
    if p.is_empty() || p.len() >= 4096 {
        return false;
    }
    let mut parts = p.split(|&b| b == b'/');
    if parts.any(|c| c.len() > 255 || c == b".." || c == b".") {
        return false;
    }
    !p.windows(2).any(|w| w == b"//")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_as_systemd_splits_them() {
        let n = UnitName::parse("foo@bar@baz.service").unwrap();
        assert_eq!(
            (n.kind, n.prefix, n.instance, n.suffix),
            (Kind::Instance, "foo", Some("bar@baz"), "service")
        );
        assert_eq!(n.template().as_deref(), Some("foo@.service"));
        let t = UnitName::parse("node-etcd@.service").unwrap();
        assert_eq!(t.kind, Kind::Template);
        assert_eq!(t.instantiate("1").unwrap(), "node-etcd@1.service");
        let p = UnitName::parse("a.b.timer").unwrap();
        assert_eq!((p.kind, p.prefix), (Kind::Plain, "a.b"));
    }

    #[test]
    fn type_suffixes() {
        for name in ["foo.service", "a.b.timer", "x@1.socket", ".scope"] {
            assert!(has_type_suffix(name), "{name}");
        }
        for name in ["foo", "foo.services", "foo.", "service", "a.b"] {
            assert!(!has_type_suffix(name), "{name}");
        }
    }

    #[test]
    fn invalid_names_are_refused() {
        for bad in [
            "",
            ".service",
            "foo",
            "foo.txt",
            "@x.service",
            "a b.service",
            "ä.service",
            "foo.",
            "foo@x.Service",
        ] {
            assert!(UnitName::parse(bad).is_err(), "{bad}");
        }
        let long = format!("{}.service", "a".repeat(247));
        assert_eq!(long.len(), 255);
        assert!(UnitName::parse(&long).is_ok());
        assert!(UnitName::parse(&format!("a{long}")).is_err());
    }

    #[test]
    fn escape_matches_systemd_escape() {
        assert_eq!(escape("10.0.0.1/24"), "10.0.0.1-24");
        assert_eq!(escape(".start"), "\\x2estart");
        assert_eq!(escape("a-b c"), "a\\x2db\\x20c");
        assert_eq!(escape("ü"), "\\xc3\\xbc");
        assert_eq!(unescape("a\\x2db-c").unwrap(), b"a-b/c");
        assert!(unescape("a\\q").is_err());
        assert_eq!(path_unescape("-").unwrap(), b"/");
        assert_eq!(path_unescape("var-lib").unwrap(), b"/var/lib");
        assert!(path_unescape("a-").is_err());
        assert_eq!(path_escape("/var//lib/./x/").unwrap(), "var-lib-x");
        assert_eq!(path_escape("/").unwrap(), "-");
        assert!(path_escape("/a/../b").is_err());
    }
}
