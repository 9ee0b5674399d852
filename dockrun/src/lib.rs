//! dockrun: one Docker container as a proper systemd service.
//!
//! fleet's users ran containers with `docker run` in `ExecStart=` and
//! `KillMode=none`, so systemd supervised a docker client instead of the
//! container, stops exited 143, and a dead client left the container running.
//! dockrun is one process whose life is the container's life: `cli` holds the
//! flags (docker run's names), `spec` turns them into the engine's config,
//! `engine` connects and gives every call its deadline, `error` holds the
//! failures and docker run's exit code for each, `pull` gets
//! the image, `supervise` runs the life cycle, `output` passes the
//! container's output on to the journal and [`SYSTEMD`] its readiness on to
//! systemd.

pub mod cli;
pub mod engine;
pub mod error;
pub mod output;
pub mod pull;
pub mod spec;
pub mod supervise;

use std::ffi::OsString;

use clap::{CommandFactory, Parser};
use fleetkit_core::notify::Notifier;
use fleetkit_core::{Exit, ToolError};

use crate::cli::Cli;
use crate::error::{shown, Error, ENGINE_FAILED};

/// Where dockrun tells systemd `READY=1` and `STATUS=` lines.
pub const SYSTEMD: Notifier = Notifier::new("dockrun");

/// The clap definition, for `--help` and the man page.
#[must_use]
pub fn command() -> clap::Command {
    Cli::command()
}

/// Runs dockrun with `args` (program name first).
///
/// # Errors
/// 125 for a bad flag or an engine failure, 126/127 when the container's
/// command cannot start (as `docker run`).
pub fn run(args: impl IntoIterator<Item = OsString>) -> Result<Exit, ToolError> {
    // docker run exits 125 on a bad flag, and units written for it expect that.
    let cli = Cli::try_parse_from(args).map_err(|e| ToolError::Clap(escape_clap(e), ENGINE_FAILED))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("cannot start the async runtime: {e}")))?;
    Ok(runtime.block_on(supervise::supervise(cli))?)
}

/// clap echoes a rejected value or argument as given; one with control
/// bytes (an escape sequence, a newline) is shown escaped instead.
fn escape_clap(e: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue};
    let text = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    let has_control = |s: &Option<String>| s.as_deref().is_some_and(|s| s.chars().any(char::is_control));
    let (value, arg) = (text(ContextKind::InvalidValue), text(ContextKind::InvalidArg));
    let message = if has_control(&value) {
        let why = std::error::Error::source(&e).map(|s| format!(": {s}")).unwrap_or_default();
        format!(
            "invalid value '{}' for '{}'{why}",
            shown(value.as_deref().unwrap_or_default()),
            shown(arg.as_deref().unwrap_or_default())
        )
    } else if has_control(&arg) {
        format!("unexpected argument '{}' found", shown(arg.as_deref().unwrap_or_default()))
    } else {
        return e;
    };
    clap::Error::raw(e.kind(), format!("{message}\n\nFor more information, try '--help'.\n"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_consistent() {
        super::command().debug_assert();
    }
}
