//! Problems found in a unit file, each tied to the line a person must fix.
//!
//! Parsing, name checks, specifier resolution and `[X-Fleet]` checks all
//! report through this one type so `unitgen --check` and clusterctl print
//! them alike: `FILE:LINE: message`.

use std::fmt;

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
        if diag.line == 0 {
            write!(f, "{file}: ")?;
        } else {
            write!(f, "{file}:{}: ", diag.line)?;
        }
        if diag.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        f.write_str(&diag.message)
    }
}

/// True when any of `diags` is an error.
#[must_use]
pub fn has_errors(diags: &[Diagnostic]) -> bool {
    diags.iter().any(|d| d.severity == Severity::Error)
}
