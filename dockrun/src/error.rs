//! dockrun's failures, typed, and the exit code `docker run` gives each.
//!
//! Units written for `docker run` tell failures apart by its codes: 125
//! the engine (or dockrun: a bad flag, an engine that cannot be reached or
//! does not answer), 126 the container's command cannot be invoked, 127 it
//! does not exist. Each case keeps the engine's error as its source, so the
//! printed message ends with the engine's own words; text that came from
//! the command line or the engine is shown with its control bytes escaped,
//! so a message cannot clear a terminal or forge a journal line.

use std::fmt;
use std::time::Duration;

use fleetkit_core::ToolError;

/// docker run's code when the engine or dockrun itself failed.
pub const ENGINE_FAILED: u8 = 125;
/// docker run's code when the command exists but cannot be invoked.
pub const CANNOT_INVOKE: u8 = 126;
/// docker run's code when the command does not exist.
pub const NOT_FOUND: u8 = 127;

/// A failure of dockrun or of the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag value the engine would reject or misread; the message names the flag.
    #[error("{0}")]
    Flag(String),
    /// The engine answered `what` with an error, or the connection to it failed.
    #[error("{what}: {}{}", shown(&crate::engine::message(source)), hint.as_deref().map(|h| format!(": {h}")).unwrap_or_default())]
    Engine {
        what: String,
        /// What to check, when there is something to say.
        hint: Option<String>,
        #[source]
        source: bollard::errors::Error,
    },
    /// The engine did not answer `what` within the deadline.
    #[error(
        "{what}: the Docker engine did not answer within {}: {}; \
         check that the engine runs and is not overloaded (`docker info`), \
         or give it longer with --engine-timeout",
        show_duration(*after),
        crate::engine::host_said()
    )]
    NoAnswer { what: String, after: Duration },
    /// The pull's progress stream went quiet.
    #[error(
        "cannot pull image {}: the engine sent no progress for {}: the registry may be slow or \
         unreachable from the engine, or the engine stopped answering ({}); \
         check `docker pull {}`, or give it longer with --engine-timeout",
        shown(image),
        show_duration(*after),
        crate::engine::host_said(),
        shown(image)
    )]
    PullStalled { image: String, after: Duration },
    /// The container's command could not be started (126 or 127).
    #[error("cannot start container {}: {}: {hint}", shown(label), shown(&crate::engine::message(source)))]
    Start {
        code: u8,
        label: String,
        hint: &'static str,
        #[source]
        source: bollard::errors::Error,
    },
    /// Anything else that ends dockrun with 125, said in full.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// The engine failed `what`; when it did not answer with an HTTP
    /// status (no connection), the hint says where dockrun looked for it.
    pub fn engine(what: impl Into<String>, source: bollard::errors::Error) -> Self {
        let hint = crate::engine::status(&source).is_none().then(crate::engine::reach_hint);
        Self::Engine { what: what.into(), hint, source }
    }

    /// docker run's exit code for this failure.
    #[must_use]
    pub fn code(&self) -> u8 {
        match self {
            Self::Start { code, .. } => *code,
            _ => ENGINE_FAILED,
        }
    }

    /// The HTTP status the engine answered with, if it answered.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Engine { source, .. } => crate::engine::status(source),
            _ => None,
        }
    }
}

impl From<Error> for ToolError {
    /// The message (the engine's own words included) with docker run's exit code.
    fn from(e: Error) -> Self {
        ToolError::with_code(e.code(), e.to_string())
    }
}

/// Why one value (a port spec, an env item, a size) is not valid; the
/// caller says which flag it came from.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// `text` as core's [`fleetkit_core::diag::escaped`] shows it in every
/// tool's messages: control characters escaped as systemd prints them
/// (`\x1b`, `\n`), everything else as given.
#[must_use]
pub fn shown(text: &str) -> String {
    fleetkit_core::diag::escaped(text).into_owned()
}

/// `--engine-timeout`'s value as a person wrote it: `30s`, `1.5s`, `500ms`.
fn show_duration(d: Duration) -> impl fmt::Display {
    struct Show(Duration);
    impl fmt::Display for Show {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let ms = self.0.as_millis();
            if ms.is_multiple_of(1000) {
                write!(f, "{}s", ms / 1000)
            } else if ms >= 1000 {
                write!(f, "{}s", self.0.as_secs_f64())
            } else {
                write!(f, "{ms}ms")
            }
        }
    }
    Show(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_bytes_are_escaped_and_the_rest_kept() {
        assert_eq!(shown("web\u{1b}[2J\nx"), "web\\x1b[2J\\nx");
        assert_eq!(shown("it's \"fine\" ü"), "it's \"fine\" ü");
    }

    #[test]
    fn durations_read_as_written() {
        assert_eq!(show_duration(Duration::from_secs(30)).to_string(), "30s");
        assert_eq!(show_duration(Duration::from_millis(1500)).to_string(), "1.5s");
        assert_eq!(show_duration(Duration::from_millis(200)).to_string(), "200ms");
    }

    #[test]
    fn codes_follow_docker_run() {
        assert_eq!(Error::Flag("x".into()).code(), 125);
        assert_eq!(Error::NoAnswer { what: "x".into(), after: Duration::from_secs(1) }.code(), 125);
        let source = bollard::errors::Error::DockerResponseServerError {
            status_code: 400,
            message: "exec: \"x\": executable file not found".into(),
        };
        let e = Error::Start { code: NOT_FOUND, label: "web".into(), hint: "check", source };
        assert_eq!(ToolError::from(e).exit().0, 127);
    }
}
