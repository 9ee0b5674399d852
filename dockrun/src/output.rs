//! The container's output, passed through to dockrun's own stdout and stderr.
//!
//! Under systemd both end up in the journal with the unit's name, the way a
//! plain process's output would. Each chunk is written and flushed as it
//! arrives, so lines appear at once and stdout/stderr keep their order. A
//! closed stdout (a reader that went away) must not stop the service, so
//! write errors are dropped.

use std::io::Write;

use bollard::container::LogOutput;

/// Writes one chunk of container output to the matching stream of dockrun.
pub fn write(chunk: &LogOutput) {
    match chunk {
        LogOutput::StdOut { message } | LogOutput::Console { message } => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(message);
            let _ = out.flush();
        }
        LogOutput::StdErr { message } => {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(message);
            let _ = err.flush();
        }
        LogOutput::StdIn { .. } => {}
    }
}
