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

/// The name-derived specifier values of one unit, computed once.
#[derive(Debug, Clone)]
pub struct Specifiers {
    /// `%n %N %p %P %i %I %j %J` in that order; `%f` separately since it
    /// may fail only when used.
    values: [Result<String, SpecifierError>; 8],
    f: Result<String, SpecifierError>,
}

const ORDER: &str = "nNpPiIjJ";

impl Specifiers {
    /// The values for the unit called `name` (a template has instance "").
    #[must_use]
    pub fn new(name: &UnitName<'_>) -> Self {
        let full = name.full;
        let n_stem = &full[..full.len() - name.suffix.len() - 1];
        let instance = name.instance.unwrap_or("");
        let prefix = name.prefix;
        let j = prefix.rfind('-').map_or(prefix, |d| &prefix[d + 1..]);
        let unesc = |c: char, s: &str| -> Result<String, SpecifierError> {
            let bytes = name::unescape(s).map_err(|e| SpecifierError::Failed(c, e))?;
            String::from_utf8(bytes).map_err(|_| SpecifierError::NotUtf8(c))
        };
        let f = if name.instance.is_some_and(|i| !i.is_empty()) {
            name::path_unescape(instance)
        } else {
            name::path_unescape(prefix)
        };
        let f = f
            .map_err(|e| SpecifierError::Failed('f', e))
            .and_then(|b| String::from_utf8(b).map_err(|_| SpecifierError::NotUtf8('f')));
        Specifiers {
            values: [
                Ok(full.to_owned()),
                Ok(n_stem.to_owned()),
                Ok(prefix.to_owned()),
                unesc('P', prefix),
                Ok(instance.to_owned()),
                unesc('I', instance),
                Ok(j.to_owned()),
                unesc('J', j),
            ],
            f,
        }
    }

    fn lookup(&self, c: char) -> Option<&Result<String, SpecifierError>> {
        if c == 'f' {
            return Some(&self.f);
        }
        ORDER.find(c).map(|i| &self.values[i])
    }

    /// The value as systemd would resolve it, host specifiers kept as written.
    ///
    /// # Errors
    /// An unknown specifier, or one systemd cannot compute for this name.
    pub fn resolve(&self, value: &str) -> Result<String, SpecifierError> {
        self.expand(value, false)
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
        let out = self.expand(value, true)?;
        Ok(if line_safe(&out) { out } else { value.to_owned() })
    }

    fn expand(&self, value: &str, for_file: bool) -> Result<String, SpecifierError> {
        let bytes = value.as_bytes();
        let mut out = String::with_capacity(value.len() + 32);
        let mut rest = 0;
        while let Some(off) = value[rest..].find('%') {
            let at = rest + off;
            out.push_str(&value[rest..at]);
            let Some(&s) = bytes.get(at + 1) else {
                // A stray '%' at the end stays (and stays stray for systemd).
                out.push('%');
                return Ok(out);
            };
            if !s.is_ascii() {
                // '%' before a non-ASCII character: both kept as written.
                out.push('%');
                rest = at + 1;
                continue;
            }
            let s = char::from(s);
            if s == '%' {
                out.push_str(if for_file { "%%" } else { "%" });
            } else if let Some(v) = self.lookup(s) {
                let v = v.as_ref().map_err(Clone::clone)?;
                if for_file && v.contains('%') {
                    out.push_str(&v.replace('%', "%%"));
                } else {
                    out.push_str(v);
                }
            } else if s.is_ascii_alphanumeric() && !HOST_SPECIFIERS.contains(s) {
                return Err(SpecifierError::Unknown(s));
            } else {
                out.push('%');
                out.push(s);
            }
            rest = at + 2;
        }
        out.push_str(&value[rest..]);
        Ok(out)
    }
}

/// Whether `value` survives a trip through a unit-file line unchanged.
fn line_safe(value: &str) -> bool {
    let blank = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r');
    let trailing_backslashes = value.bytes().rev().take_while(|&b| b == b'\\').count();
    !value.bytes().any(|b| matches!(b, b'\n' | b'\r' | 0))
        && !value.starts_with(blank)
        && !value.ends_with(blank)
        && trailing_backslashes % 2 == 0
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

    fn specs(name: &str) -> Specifiers {
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
    fn f_fails_only_when_used() {
        let s = specs("foo@a-.service");
        assert!(s.resolve("%i").is_ok());
        assert!(matches!(s.resolve("%f"), Err(SpecifierError::Failed('f', _))));
    }
}
