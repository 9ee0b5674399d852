//! place's errors: input that cannot be planned ([`PlaceError`], what the
//! library gives clusterctl too) and why the `place` binary stopped
//! ([`RunError`]).
//!
//! Every message names the unit, machine or file at fault and what to
//! change, with the input's control bytes escaped (`\x1b`); each kind maps
//! to an exit code through core's `Classify` (all of them are input the
//! user must fix: exit 2).

use std::io;

use fleetkit_core::diag::escaped;
use fleetkit_core::exit::{Classify, Kind};
use fleetkit_core::glob::BadPattern;
use fleetkit_core::records::RecordError;

/// Input that cannot be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    /// Two records of one unit or one machine.
    #[error("{what} {} is listed twice; give each {what} once", escaped(.name))]
    Duplicate { what: &'static str, name: String },
    /// A unit or machine record whose name or id is empty.
    #[error("a {what} record has an empty {field}")]
    Empty { what: &'static str, field: &'static str },
    /// A `Conflicts=` or `Replaces=` glob that Go's `path.Match` refuses.
    #[error("{}: [X-Fleet] {key}{err}", escaped(.unit))]
    BadGlob {
        unit: String,
        key: &'static str,
        #[source]
        err: BadPattern,
    },
    /// Contradictory or malformed `[X-Fleet]` rules, in core's words
    /// (already escaped there).
    #[error("{}: {problem}", escaped(.unit))]
    Rules { unit: String, problem: String },
    /// More input than the planner's 32-bit numbers can count.
    #[error("{what} are more than one plan holds ({limit}); plan them in parts")]
    TooBig { what: String, limit: &'static str },
}

impl Classify for PlaceError {
    fn kind(&self) -> Kind {
        Kind::Usage
    }
}

/// Why the `place` binary could not answer.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A file named on the command line cannot be opened.
    #[error("{}", escaped(.path))]
    Open {
        path: String,
        #[source]
        err: io::Error,
    },
    /// A unit, machine or placement record cannot be read.
    #[error(transparent)]
    Records(#[from] RecordError),
    /// The records cannot be planned.
    #[error(transparent)]
    Plan(#[from] PlaceError),
}

impl Classify for RunError {
    fn kind(&self) -> Kind {
        match self {
            Self::Open { .. } => Kind::Usage,
            Self::Records(e) => e.kind(),
            Self::Plan(e) => e.kind(),
        }
    }
}
