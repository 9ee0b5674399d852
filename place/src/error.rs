//! The one error place's library gives: input that cannot be planned.
//!
//! Its message names the unit or machine at fault and what to change, and
//! is what both the `place` binary and clusterctl print, so it is the
//! whole error: there is nothing for a caller to match on.

use std::fmt;

/// Input that cannot be planned: it names the unit or machine at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceError {
    message: String,
}

impl PlaceError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self { message: message.into() }
    }
}

impl fmt::Display for PlaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PlaceError {}
