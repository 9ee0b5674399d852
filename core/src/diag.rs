//! Problems found in a unit file, each tied to the line a person must fix.
//!
//! Parsing, name checks, specifier resolution and `[X-Fleet]` checks all
//! report through this one type so `unitgen --check` and clusterctl print
//! them alike: `FILE:LINE: message`. Any text from the input that a message
//! quotes goes through [`escaped`] first, so a byte such as ESC in a file
//! name, a unit file or an argument reaches the terminal as `\x1b`, as
//! systemd prints it, and can neither recolour nor forge a line.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// How bad a problem is: errors make a unit unusable, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// One problem at one line (0 when it concerns the whole file, e.g. its name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub line: usize,
    pub severity: Severity,
    pub message: String,
}

impl Diagnostic {
    pub fn error(line: usize, message: impl Into<String>) -> Self {
        Self { line, severity: Severity::Error, message: message.into() }
    }

    pub fn warning(line: usize, message: impl Into<String>) -> Self {
        Self { line, severity: Severity::Warning, message: message.into() }
    }

    /// `FILE:LINE: message` (or `FILE: message` for line 0), warnings marked.
    #[must_use]
    pub fn display<'a>(&'a self, file: &'a str) -> impl fmt::Display + 'a {
        DisplayIn { diag: self, file }
    }
}

struct DisplayIn<'a> {
    diag: &'a Diagnostic,
    file: &'a str,
}

impl fmt::Display for DisplayIn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { diag, file } = self;
        // Escaping is idempotent (its output holds no control character),
        // so a message whose parts were escaped already comes out the same.
        let file = escaped(file);
        if diag.line == 0 {
            write!(f, "{file}: ")?;
        } else {
            write!(f, "{file}:{}: ", diag.line)?;
        }
        if diag.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        f.write_str(&escaped(&diag.message))
    }
}

/// `text` fit to quote in a message: control characters (C0, DEL, C1),
/// line and paragraph separators and bidirectional overrides are written as
/// escapes (`\t`, `\n`, `\r`, `\x1b`, `\u{2028}`), everything else as it
/// is. Borrowed when nothing needs escaping, which is nearly always.
/// Backslashes stay as they are: unit names carry systemd's own `\x2d`
/// escapes, and doubling them would show users names they never wrote.
#[must_use]
pub fn escaped(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) && u32::from(c) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// What [`escaped`] escapes: what a terminal acts on or shows misleadingly.
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// True when any of `diags` is an error.
#[must_use]
pub fn has_errors(diags: &[Diagnostic]) -> bool {
    diags.iter().any(|d| d.severity == Severity::Error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_plain_text_is_borrowed() {
        assert!(matches!(escaped("web@1.service a\\x2db é"), Cow::Borrowed(_)));
        assert_eq!(escaped("a\x1b[31mX\0\t\n\r\x7f"), "a\\x1b[31mX\\x00\\t\\n\\r\\x7f");
        assert_eq!(escaped("\u{9b}2J \u{2028} \u{202e}x"), "\\u{009b}2J \\u{2028} \\u{202e}x");
    }
}
