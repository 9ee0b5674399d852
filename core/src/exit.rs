//! Exit codes and the one place where a tool's error reaches the user.
//!
//! Every fleetkit tool's library returns `Result<Exit, ToolError>`; its
//! `main.rs` hands that to [`main`], which prints `TOOL: message` on stderr and
//! turns the outcome into the process exit code. A closed stdout (a pipe into
//! `head`) is not an error: the reader has what it wanted.
//!
//! The exit code follows from the kind of failure ([`Kind`]), the same in
//! every tool: 0 done, 1 a clean negative answer, 2 bad usage or input, 75
//! the cluster (etcd, the Docker engine) cannot be reached now, so a cron
//! script or systemd can tell "retry later" from "your input is wrong".
//! A crate's own error type says its kind through [`Classify`].

use std::fmt;
use std::io::{self, Write};
use std::process::{ExitCode, ExitStatus};

/// A process exit code with fleetkit's meanings for the common ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit(pub u8);

impl Exit {
    /// Done.
    pub const SUCCESS: Exit = Exit(0);
    /// A clean negative answer: a unit could not be placed, a check failed.
    pub const NEGATIVE: Exit = Exit(1);
    /// Bad usage or bad input.
    pub const USAGE: Exit = Exit(2);
    /// etcd or the engine cannot be reached now: try again later
    /// (sysexits' `EX_TEMPFAIL`).
    pub const UNAVAILABLE: Exit = Exit(75);

    /// The exit code for a child that ended with `status`: its own code, or
    /// 128 + n when signal n killed it (as shells report it).
    #[must_use]
    pub fn from_status(status: ExitStatus) -> Exit {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => Exit(u8::try_from(code & 0xff).unwrap_or(1)),
            (None, Some(sig)) => Exit(u8::try_from(128 + (sig & 0x7f)).unwrap_or(1)),
            (None, None) => Exit(1),
        }
    }
}

/// What kind of failure an error is; decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A clean negative answer: cannot place, a check failed, a wait gave up.
    Negative,
    /// Bad usage or bad input: the user has to change something.
    Usage,
    /// etcd or the engine cannot be reached or is not answering now.
    Unavailable,
}

impl Kind {
    #[must_use]
    pub fn exit(self) -> Exit {
        match self {
            Self::Negative => Exit::NEGATIVE,
            Self::Usage => Exit::USAGE,
            Self::Unavailable => Exit::UNAVAILABLE,
        }
    }
}

/// A crate's error type says which [`Kind`] each of its cases is; the tool
/// turns it into a [`ToolError`] with [`ToolError::from_error`].
pub trait Classify: std::error::Error {
    fn kind(&self) -> Kind;
}

/// Why a tool stopped short. Carries the exit code it implies.
#[derive(Debug)]
pub enum ToolError {
    /// Command-line parsing failed or asked for help/version; clap prints it.
    /// The second field is the exit code used for a usage error.
    Clap(clap::Error, u8),
    /// A message for the user (one or more lines, each printed as
    /// `TOOL: line`) and the exit code that goes with it.
    Message { code: Exit, message: String },
    /// stdout was closed by its reader.
    BrokenPipe,
}

impl ToolError {
    /// Bad usage or bad input (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::Message { code: Exit::USAGE, message: message.into() }
    }

    /// A clean negative answer (exit 1).
    pub fn negative(message: impl Into<String>) -> Self {
        Self::Message { code: Exit::NEGATIVE, message: message.into() }
    }

    /// etcd or the engine cannot be reached now (exit 75).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Message { code: Exit::UNAVAILABLE, message: message.into() }
    }

    /// Several problems at once, one line each (exit by `kind`).
    pub fn lines(kind: Kind, lines: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let lines: Vec<String> = lines.into_iter().map(Into::into).collect();
        Self::Message { code: kind.exit(), message: lines.join("\n") }
    }

    /// A crate's typed error: its message followed by its sources, and the
    /// exit code of its kind. The sources' texts (an I/O error, a JSON
    /// parser's, etcd's) often quote input, so their control bytes are
    /// escaped ([`crate::diag::escaped`]).
    pub fn from_error<E: Classify>(err: &E) -> Self {
        let mut message = err.to_string();
        let mut source = err.source();
        while let Some(s) = source {
            let text = crate::diag::escaped(&s.to_string()).into_owned();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = s.source();
        }
        Self::Message { code: err.kind().exit(), message }
    }

    /// An error with a specific exit code (dockrun's 125/126/127, say).
    pub fn with_code(code: u8, message: impl Into<String>) -> Self {
        Self::Message { code: Exit(code), message: message.into() }
    }

    /// The exit code this error ends the process with.
    #[must_use]
    pub fn exit(&self) -> Exit {
        match self {
            Self::Clap(e, usage) => {
                if e.use_stderr() {
                    Exit(*usage)
                } else {
                    Exit::SUCCESS
                }
            }
            Self::Message { code, .. } => *code,
            Self::BrokenPipe => Exit::SUCCESS,
        }
    }

    /// Wraps an I/O error on `what` (a file name, "stdout") into a message;
    /// control bytes in `what` are escaped.
    pub fn io(what: &str, err: &io::Error) -> Self {
        if err.kind() == io::ErrorKind::BrokenPipe {
            return Self::BrokenPipe;
        }
        let what = crate::diag::escaped(what);
        Self::Message { code: Exit::USAGE, message: format!("{what}: {err}") }
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Clap(e, _) => write!(f, "{e}"),
            Self::Message { message, .. } => f.write_str(message),
            Self::BrokenPipe => f.write_str("broken pipe"),
        }
    }
}

impl std::error::Error for ToolError {}

impl From<clap::Error> for ToolError {
    fn from(e: clap::Error) -> Self {
        Self::Clap(e, Exit::USAGE.0)
    }
}

impl From<io::Error> for ToolError {
    /// Writing records to stdout is the common I/O in every tool; a broken
    /// pipe there means the reader is done, anything else is worth telling.
    fn from(e: io::Error) -> Self {
        Self::io("stdout", &e)
    }
}

/// Prints the outcome of a tool's `run` and returns the process exit code.
/// This is the only place a fleetkit tool writes an error.
pub fn main(tool: &str, result: Result<Exit, ToolError>) -> ExitCode {
    let exit = match result {
        Ok(exit) => exit,
        Err(ToolError::Clap(e, usage)) => {
            // clap formats help, version and usage errors itself.
            let _ = e.print();
            if e.use_stderr() {
                Exit(usage)
            } else {
                Exit::SUCCESS
            }
        }
        Err(e @ ToolError::BrokenPipe) => e.exit(),
        Err(e) => {
            let text = e.to_string();
            let mut err = io::stderr().lock();
            for line in text.lines() {
                let _ = writeln!(err, "{tool}: {line}");
            }
            e.exit()
        }
    };
    ExitCode::from(exit.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_pipe_is_success() {
        let e = ToolError::from(io::Error::from(io::ErrorKind::BrokenPipe));
        assert_eq!(e.exit(), Exit::SUCCESS);
    }

    #[test]
    fn other_io_errors_are_reported() {
        let e = ToolError::io("units.json", &io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(e.exit(), Exit::USAGE);
        assert!(e.to_string().starts_with("units.json: "));
    }

    #[derive(Debug, thiserror::Error)]
    #[error("reading units")]
    struct Outer(#[source] io::Error);

    impl Classify for Outer {
        fn kind(&self) -> Kind {
            Kind::Unavailable
        }
    }

    #[test]
    fn a_typed_error_keeps_its_source_and_its_kind() {
        let e = ToolError::from_error(&Outer(io::Error::other("connection refused")));
        assert_eq!(e.exit(), Exit::UNAVAILABLE);
        assert_eq!(e.to_string(), "reading units: connection refused");
    }

    #[test]
    fn lines_are_one_message_per_line() {
        let e = ToolError::lines(Kind::Negative, ["a cannot go", "b cannot go"]);
        assert_eq!(e.exit(), Exit::NEGATIVE);
        assert_eq!(e.to_string().lines().count(), 2);
    }

    #[test]
    fn signal_death_maps_to_128_plus_n() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(Exit::from_status(ExitStatus::from_raw(15)), Exit(143));
        assert_eq!(Exit::from_status(ExitStatus::from_raw(3 << 8)), Exit(3));
    }
}
