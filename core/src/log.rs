//! State-change log lines on stderr, shaped for the journal: how every
//! long-running fleetkit tool (announce, `clusterctl schedule --watch`, the
//! machine agent) says what happened.
//!
//! They log once per state change (announced, lost etcd, took the lead,
//! could not place a unit), never per renewal or round without news. Under
//! systemd, when stderr is the journal (`JOURNAL_STREAM` names stderr's
//! device and inode), each line starts with a syslog priority (`<4>`) so
//! `journalctl -p warning` finds the trouble, and the journal adds the tool
//! name and time itself; on a terminal or in a pipe, lines start with
//! `TOOL: ` instead, as every other message of a fleetkit tool does.

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
    tool: &'static str,
    journal: bool,
}

impl Log {
    /// The log of `tool` (`announce`, `clusterctl`); looks at
    /// `JOURNAL_STREAM` and stderr once.
    #[must_use]
    pub fn detect(tool: &'static str) -> Self {
        Self { tool, journal: stderr_is_journal() }
    }

    /// Writes one line on stderr.
    pub fn line(self, level: Level, message: &str) {
        let _ = self.write(&mut std::io::stderr().lock(), level, message);
    }

    fn write(self, out: &mut impl Write, level: Level, message: &str) -> std::io::Result<()> {
        if self.journal {
            writeln!(out, "<{}>{message}", level.priority())
        } else {
            writeln!(out, "{}: {message}", self.tool)
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn written(log: Log, level: Level, message: &str) -> String {
        let mut out = Vec::new();
        log.write(&mut out, level, message).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn journal_lines_carry_priorities_and_others_the_tool() {
        let journal = Log { tool: "clusterctl", journal: true };
        assert_eq!(written(journal, Level::Warning, "lost the lead"), "<4>lost the lead\n");
        assert_eq!(written(journal, Level::Notice, "leads"), "<5>leads\n");
        assert_eq!(written(journal, Level::Info, "round"), "<6>round\n");
        let plain = Log { tool: "clusterctl", journal: false };
        assert_eq!(written(plain, Level::Warning, "lost the lead"), "clusterctl: lost the lead\n");
    }
}
