//! State-change log lines on stderr, shaped for the journal.
//!
//! announce logs once per state change (announced, lost etcd, re-announced,
//! withdrawn, stopped), never per renewal. Under systemd, when stderr is the
//! journal (`JOURNAL_STREAM` names stderr's device and inode), each line starts
//! with a syslog priority (`<4>`) so `journalctl -p warning` finds the trouble
//! and the journal adds the tool name and time itself; on a terminal or in a
//! pipe, lines start with `announce: ` instead.

use std::io::Write;

/// How much a line matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Warning,
    Notice,
    Info,
}

impl Level {
    fn priority(self) -> u8 {
        match self {
            Self::Warning => 4,
            Self::Notice => 5,
            Self::Info => 6,
        }
    }
}

/// Where log lines go and how they are prefixed.
#[derive(Debug, Clone, Copy)]
pub struct Log {
    journal: bool,
}

impl Log {
    /// Looks at `JOURNAL_STREAM` and stderr once.
    #[must_use]
    pub fn detect() -> Self {
        Self { journal: stderr_is_journal() }
    }

    /// Writes one line.
    pub fn line(self, level: Level, message: &str) {
        let mut err = std::io::stderr().lock();
        let _ = if self.journal {
            writeln!(err, "<{}>{message}", level.priority())
        } else {
            writeln!(err, "announce: {message}")
        };
    }
}

fn stderr_is_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else { return false };
    let stream = stream.to_string_lossy().into_owned();
    let Some((dev, ino)) = stream.split_once(':') else { return false };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else { return false };
    let Ok(meta) = std::fs::File::from(fd).metadata() else { return false };
    dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino())
}
