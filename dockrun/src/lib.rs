//! dockrun: one Docker container as a proper systemd service.
//!
//! fleet's users ran containers with `docker run` in `ExecStart=` and
//! `KillMode=none`, so systemd supervised a docker client instead of the
//! container, stops exited 143, and a dead client left the container running.
//! dockrun is one process whose life is the container's life: `cli` holds the
//! flags (docker run's names), `spec` turns them into the engine's config,
//! `engine` connects and maps errors to docker run's exit codes, `pull` gets
//! the image, `supervise` runs the life cycle, `output` passes the
//! container's output on to the journal and [`SYSTEMD`] its readiness on to
//! systemd.

pub mod cli;
pub mod engine;
pub mod output;
pub mod pull;
pub mod spec;
pub mod supervise;

use std::ffi::OsString;

use clap::{CommandFactory, Parser};
use fleetkit_core::notify::Notifier;
use fleetkit_core::{Exit, ToolError};

use crate::cli::Cli;

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
    let cli = Cli::try_parse_from(args).map_err(|e| ToolError::Clap(e, engine::ENGINE_FAILED))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| {
        ToolError::with_code(engine::ENGINE_FAILED, format!("cannot start the async runtime: {e}"))
    })?;
    runtime.block_on(supervise::supervise(cli))
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_consistent() {
        super::command().debug_assert();
    }
}
