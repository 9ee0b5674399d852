//! `%` specifiers that depend only on a unit's name, resolved as systemd 252
//! resolves them (`unit_full_printf()` and `specifier_printf()`).
//!
//! unitgen and clusterctl expand templates away from the machine that runs
//! them, so only `%n %N %p %P %i %I %f %j %J` and `%%` can be known; the host
//! ones (`%H %m %b %u %t` …) must reach systemd on the target untouched. An
//! unknown letter or digit (`%1` in the tutorial's unit) is refused, because
//! systemd 252 refuses it; any other byte after `%` is kept as it is, and so is
//! a `%` at the end of a value.
//!
//! Two outputs: [`Specifiers::resolve`] gives the final value (what systemd
//! would make of it, host specifiers left as written) for fleetkit's own use,
//! e.g. `[X-Fleet]` rules; [`Specifiers::rewrite`] gives text for a unit file
//! that systemd will read again, so every `%` in it that must stay literal is
//! written `%%`. systemd resolving the rewritten value under the same unit name
//! gives exactly what it gives for the original.

use std::cell::OnceCell;
use std::fmt;

use crate::name::{self, UnitName};

/// Letters systemd 252 resolves from the host or the manager at run time.
/// Measured with `systemd-analyze verify` on every letter and digit
/// (`known_specifier_letters_are_systemds` in core/tests/systemd_oracle.rs).
pub const HOST_SPECIFIERS: &str = "abcdghlmoqrstuvwyABCEGHLMRSTUVWY";

/// Letters fleetkit resolves from the unit name.
pub const NAME_SPECIFIERS: &str = "nNpPiIfjJ";

/// Why a value cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecifierError {
    /// `%c` for a letter or digit systemd 252 does not know.
    Unknown(char),
    /// A specifier whose value systemd cannot compute for this name (`%f`
    /// of an instance that is no path, `%I` with a bad `\` escape).
    Failed(char, String),
    /// The resolved value is not UTF-8 (e.g. `%I` of `\xff`).
    NotUtf8(char),
}

impl fmt::Display for SpecifierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(c) => write!(
                f,
                "unknown specifier '%{c}' (systemd 252 refuses the unit); write '%i' for the instance, or '%%{c}' for a literal '%{c}'"
            ),
            Self::Failed(c, why) => write!(f, "cannot resolve '%{c}': {why}"),
            Self::NotUtf8(c) => write!(f, "'%{c}' resolves to bytes that are not UTF-8"),
        }
    }
}

impl std::error::Error for SpecifierError {}

/// The name-derived specifier values of one unit.
///
/// `%n %N %p %i %j` are parts of the name, so they are borrowed from it;
/// `%P %I %J %f` need unescaping, which can fail, so each is computed the
/// first time it is used (most units use only `%i`, and unitgen makes one
/// `Specifiers` per instance).
#[derive(Debug, Clone)]
pub struct Specifiers<'a> {
    /// `%n %N %p %i %j`.
    parts: [&'a str; 5],
    /// `%f` unescapes the instance when there is one, else the prefix.
    f_source: &'a str,
    /// `%P %I %J %f`, once used.
    unescaped: [OnceCell<Result<String, SpecifierError>>; 4],
}

impl<'a> Specifiers<'a> {
    /// The values for the unit called `name` (a template has instance "").
    #[must_use]
    pub fn new(name: &UnitName<'a>) -> Self {
        let full = name.full;
        let n_stem = &full[..full.len() - name.suffix.len() - 1];
        let instance = name.instance.unwrap_or("");
        let prefix = name.prefix;
        let j = prefix.rfind('-').map_or(prefix, |d| &prefix[d + 1..]);
        let f_source = if name.instance.is_some_and(|i| !i.is_empty()) { instance } else { prefix };
        Specifiers { parts: [full, n_stem, prefix, instance, j], f_source, unescaped: Default::default() }
    }

    /// The value of `%c` for a name specifier letter, `None` for any other.
    fn lookup(&self, c: u8) -> Option<Result<&str, &SpecifierError>> {
        let (slot, source, c) = match c {
            b'n' => return Some(Ok(self.parts[0])),
            b'N' => return Some(Ok(self.parts[1])),
            b'p' => return Some(Ok(self.parts[2])),
            b'i' => return Some(Ok(self.parts[3])),
            b'j' => return Some(Ok(self.parts[4])),
            b'P' => (0, self.parts[2], 'P'),
            b'I' => (1, self.parts[3], 'I'),
            b'J' => (2, self.parts[4], 'J'),
            b'f' => (3, self.f_source, 'f'),
            _ => return None,
        };
        let value = self.unescaped[slot].get_or_init(|| {
            let bytes = if c == 'f' { name::path_unescape(source) } else { name::unescape(source) };
            let bytes = bytes.map_err(|e| SpecifierError::Failed(c, e))?;
            String::from_utf8(bytes).map_err(|_| SpecifierError::NotUtf8(c))
        });
        Some(value.as_ref().map(String::as_str))
    }

    /// The value as systemd would resolve it, host specifiers kept as written.
    ///
    /// # Errors
    /// An unknown specifier, or one systemd cannot compute for this name.
    pub fn resolve(&self, value: &str) -> Result<String, SpecifierError> {
        let mut out = String::with_capacity(value.len() + 32);
        self.expand_into(value, false, &mut out)?;
        Ok(out)
    }

    /// The value for a unit file systemd will read again: name specifiers
    /// replaced (with any `%` in them doubled), `%%` and host specifiers kept.
    /// When the result cannot be written on a unit-file line as it is (a
    /// line break, a NUL, blanks at either end, an odd trailing backslash
    /// that would continue the line: `%I` of `\x0a` or `\x5c`), the value is
    /// kept as written, for systemd to resolve under the same name.
    ///
    /// # Errors
    /// As [`Specifiers::resolve`].
    pub fn rewrite(&self, value: &str) -> Result<String, SpecifierError> {
        let mut out = String::with_capacity(value.len() + 32);
        self.rewrite_into(value, &mut out)?;
        Ok(out)
    }

    /// [`Specifiers::rewrite`], appended to `out` (the unit text being
    /// built) without a string of its own. On error, `out` holds part of
    /// the value.
    ///
    /// # Errors
    /// As [`Specifiers::resolve`].
    pub fn rewrite_into(&self, value: &str, out: &mut String) -> Result<(), SpecifierError> {
        let start = out.len();
        self.expand_into(value, true, out)?;
        if !line_safe(&out[start..]) {
            out.truncate(start);
            out.push_str(value);
        }
        Ok(())
    }

    /// [`Specifiers::rewrite_into`] for a value whose specifiers were found
    /// already (`compiled` must be `Compiled::new(value)`).
    ///
    /// # Errors
    /// As [`Specifiers::resolve`].
    pub fn rewrite_compiled(
        &self,
        value: &str,
        compiled: &Compiled,
        out: &mut String,
    ) -> Result<(), SpecifierError> {
        let start = out.len();
        let mut breaks = compiled.breaks;
        let mut rest = 0;
        for &(at, s) in &compiled.at {
            out.push_str(&value[rest..at]);
            let v = match self.lookup(s) {
                Some(v) => v.map_err(Clone::clone)?,
                None => return Err(SpecifierError::Unknown(char::from(s))),
            };
            if v.contains('%') {
                out.push_str(&v.replace('%', "%%"));
            } else {
                out.push_str(v);
            }
            // Only unescaped values (%P %I %J %f) can hold such bytes.
            breaks |=
                matches!(s, b'P' | b'I' | b'J' | b'f') && v.bytes().any(|b| matches!(b, b'\n' | b'\r' | 0));
            rest = at + 2;
        }
        out.push_str(&value[rest..]);
        if breaks || !ends_line_safe(&out[start..]) {
            out.truncate(start);
            out.push_str(value);
        }
        Ok(())
    }

    fn expand_into(&self, value: &str, for_file: bool, out: &mut String) -> Result<(), SpecifierError> {
        let bytes = value.as_bytes();
        let mut rest = 0;
        while let Some(off) = bytes[rest..].iter().position(|&b| b == b'%') {
            let at = rest + off;
            out.push_str(&value[rest..at]);
            let Some(&s) = bytes.get(at + 1) else {
                // A stray '%' at the end stays (and stays stray for systemd).
                out.push('%');
                return Ok(());
            };
            if !s.is_ascii() {
                // '%' before a non-ASCII character: both kept as written.
                out.push('%');
                rest = at + 1;
                continue;
            }
            if s == b'%' {
                out.push_str(if for_file { "%%" } else { "%" });
            } else if let Some(v) = self.lookup(s) {
                let v = v.map_err(Clone::clone)?;
                if for_file && v.contains('%') {
                    out.push_str(&v.replace('%', "%%"));
                } else {
                    out.push_str(v);
                }
            } else if s.is_ascii_alphanumeric() && !HOST_SPECIFIERS.as_bytes().contains(&s) {
                return Err(SpecifierError::Unknown(char::from(s)));
            } else {
                out.push('%');
                out.push(char::from(s));
            }
            rest = at + 2;
        }
        out.push_str(&value[rest..]);
        Ok(())
    }
}

/// Where a value's name specifiers are, found once so that a template's
/// values need not be scanned again for every instance
/// ([`Specifiers::rewrite_compiled`]).
///
/// In a rewritten value everything but the name specifiers stays as written
/// (`%%`, host specifiers, a stray `%`), so the value is its text with each
/// listed `%X` replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    /// Byte offset of each `%` that starts a name specifier (or an unknown
    /// one, which is an error when used), and the letter after it.
    at: Vec<(usize, u8)>,
    /// The value holds a line break or a NUL of its own.
    breaks: bool,
}

impl Compiled {
    /// Finds the specifiers of `value` as [`Specifiers::rewrite`] reads them.
    #[must_use]
    pub fn new(value: &str) -> Self {
        let bytes = value.as_bytes();
        let mut at = Vec::new();
        let mut rest = 0;
        while let Some(off) = bytes[rest..].iter().position(|&b| b == b'%') {
            let i = rest + off;
            let Some(&s) = bytes.get(i + 1) else { break };
            if !s.is_ascii() {
                rest = i + 1;
                continue;
            }
            if NAME_SPECIFIERS.as_bytes().contains(&s)
                || (s.is_ascii_alphanumeric() && !HOST_SPECIFIERS.as_bytes().contains(&s))
            {
                at.push((i, s));
            }
            rest = i + 2;
        }
        Compiled { at, breaks: bytes.iter().any(|&b| matches!(b, b'\n' | b'\r' | 0)) }
    }

    /// Whether the value holds any specifier to replace.
    #[must_use]
    pub fn is_literal(&self) -> bool {
        self.at.is_empty()
    }
}

/// Whether `value` survives a trip through a unit-file line unchanged.
fn line_safe(value: &str) -> bool {
    !value.bytes().any(|b| matches!(b, b'\n' | b'\r' | 0)) && ends_line_safe(value)
}

/// The rest of [`line_safe`]: no blank at either end (parsing would trim
/// it), no odd trailing backslash (it would continue the line).
fn ends_line_safe(value: &str) -> bool {
    let blank = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r');
    let trailing_backslashes = value.bytes().rev().take_while(|&b| b == b'\\').count();
    !value.starts_with(blank) && !value.ends_with(blank) && trailing_backslashes % 2 == 0
}

/// Checks `value` for specifiers systemd 252 does not know, without a name.
///
/// # Errors
/// The first unknown specifier.
pub fn check(value: &str) -> Result<(), SpecifierError> {
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.next() {
                Some(s)
                    if s.is_ascii_alphanumeric()
                        && !HOST_SPECIFIERS.contains(s)
                        && !NAME_SPECIFIERS.contains(s) =>
                {
                    return Err(SpecifierError::Unknown(s));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(name: &str) -> Specifiers<'_> {
        Specifiers::new(&UnitName::parse(name).unwrap())
    }

    #[test]
    fn name_specifiers() {
        let s = specs("my-web\\x2dapp@a\\x20b.service");
        let r = s.resolve("%n|%N|%p|%P|%i|%I|%f|%j|%J|%%").unwrap();
        assert_eq!(r, "my-web\\x2dapp@a\\x20b.service|my-web\\x2dapp@a\\x20b|my-web\\x2dapp|my/web-app|a\\x20b|a b|/a b|web\\x2dapp|web-app|%");
    }

    #[test]
    fn host_specifiers_and_odd_bytes_stay() {
        let s = specs("foo@1.service");
        assert_eq!(s.resolve("%H %m %-%! 100%").unwrap(), "%H %m %-%! 100%");
        assert_eq!(s.rewrite("%i%%%H").unwrap(), "1%%%H");
        assert_eq!(s.resolve("x%1"), Err(SpecifierError::Unknown('1')));
        assert!(check("node-etcd%1").is_err());
        assert!(check("%i %H %%1").is_ok());
    }

    #[test]
    fn percent_in_a_resolved_value_is_doubled_for_files() {
        let s = specs("foo@a\\x25i.service");
        assert_eq!(s.resolve("%I").unwrap(), "a%i");
        assert_eq!(s.rewrite("%I").unwrap(), "a%%i");
    }

    #[test]
    fn values_a_line_cannot_hold_stay_unresolved() {
        let s = specs("foo@\\x5c.service");
        assert_eq!(s.resolve("x%I").unwrap(), "x\\");
        assert_eq!(s.rewrite("x%I").unwrap(), "x%I");
        assert_eq!(s.rewrite("%I.").unwrap(), "\\.");
        let s = specs("foo@\\x20a.service");
        assert_eq!(s.rewrite("%I").unwrap(), "%I");
    }

    #[test]
    fn compiled_rewrite_is_rewrite() {
        let values = [
            "",
            "%",
            "x%",
            "%%",
            "%%i",
            "%i%",
            "%é%i",
            "a%-%!%H%m%1%%%n",
            "%n|%N|%p|%P|%i|%I|%f|%j|%J",
            "x%I",
            "%I.",
            " %i",
            "%I ",
            "a\\",
            "%i\\",
            "%I\\\\",
            "a\nb%i",
            "%Ié%%%",
        ];
        for name in [
            "foo@1.service",
            "my-web\\x2dapp@a\\x20b.service",
            "foo@\\x5c.service",
            "foo@\\x0a.service",
            "foo@a\\x25i.service",
            "foo@a-.service",
            "foo@\\x20a.service",
            "a-b.service",
            "foo@\\xff.service",
        ] {
            let s = specs(name);
            for v in values {
                let mut out = String::from("keep");
                let compiled =
                    s.rewrite_compiled(v, &Compiled::new(v), &mut out).map(|()| out[4..].to_owned());
                assert_eq!(compiled, s.rewrite(v), "{name} {v:?}");
            }
        }
    }

    #[test]
    fn f_fails_only_when_used() {
        let s = specs("foo@a-.service");
        assert!(s.resolve("%i").is_ok());
        assert!(matches!(s.resolve("%f"), Err(SpecifierError::Failed('f', _))));
    }
}
