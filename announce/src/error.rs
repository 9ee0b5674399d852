//! announce's failures, each of one kind (and so one exit code, as core
//! documents them), and how input is shown in any message.
//!
//! A key, a value or a check argument comes from the command line and may
//! hold control bytes (ESC, BEL, a newline): printed raw they would drive the
//! operator's terminal or forge a log line, so every message shows input
//! through [`shown`].

use fleetkit_core::etcd::EtcdError;
use fleetkit_core::exit::{Classify, Kind};

/// Why announce stopped short.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad usage or input, found before etcd is touched (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A request etcd refused (its size, its arguments, the credentials:
    /// exit 2) or, for `--once`, could not answer (exit 75).
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    /// No connection to etcd: core's words and kind.
    #[error("{message}")]
    Connect { message: String, kind: Kind },
    /// `--once` found etcd unavailable (exit 75).
    #[error("cannot announce {key}: etcd at {at} is unavailable: {reason}")]
    Unavailable { key: String, at: String, reason: String },
    /// etcd gave no answer in time (exit 75).
    #[error("{0}")]
    NoAnswer(String),
    /// `--once` found the key held by another lease (exit 1).
    #[error("{key} is held by {owner}; not overwritten (--force takes it over)")]
    Held { key: String, owner: String },
    /// `--once` with a check that failed (exit 1).
    #[error("check failed: {reason}; {key} not announced")]
    CheckFailed { key: String, reason: String },
    /// The process could not set itself up (exit 1).
    #[error("cannot {what}: {source}")]
    Setup { what: &'static str, source: std::io::Error },
}

impl Classify for Error {
    fn kind(&self) -> Kind {
        match self {
            Self::Usage(_) => Kind::Usage,
            Self::Etcd(e) => e.kind(),
            Self::Connect { kind, .. } => *kind,
            Self::Unavailable { .. } | Self::NoAnswer(_) => Kind::Unavailable,
            Self::Held { .. } | Self::CheckFailed { .. } | Self::Setup { .. } => Kind::Negative,
        }
    }
}

impl From<Error> for fleetkit_core::ToolError {
    fn from(e: Error) -> Self {
        Self::from_error(&e)
    }
}

/// `text` as core's [`fleetkit_core::diag::escaped`] shows it in every
/// tool's messages: control characters escaped as systemd prints them
/// (`\x1b`, `\n`), everything else as given.
#[must_use]
pub fn shown(text: &str) -> String {
    fleetkit_core::diag::escaped(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(shown("/a/\x1b[2J\n\0\x07"), r"/a/\x1b[2J\n\x00\x07");
        assert_eq!(shown("/services/web'1\"é"), "/services/web'1\"é");
    }
}
