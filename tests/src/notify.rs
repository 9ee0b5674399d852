//! An sd_notify socket for tests: what systemd would hear from a service.
//!
//! announce and dockrun tell systemd `READY=1` and `STATUS=...` through the
//! datagram socket named by `NOTIFY_SOCKET`. A test cannot run systemd as PID
//! 1, so it binds the socket itself in a temp dir, passes [`NotifySocket::path`]
//! to the tool under test as `NOTIFY_SOCKET`, and reads what arrives. Every
//! datagram received is kept, in order, so a test can check the whole story
//! (`STATUS=` before `READY=1`, say) as well as wait for one line.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// A bound notify socket in its own temp dir; removed on drop.
pub struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
    seen: Mutex<Vec<String>>,
    _dir: TempDir,
}

impl std::fmt::Debug for NotifySocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifySocket").field("path", &self.path).finish_non_exhaustive()
    }
}

impl NotifySocket {
    /// Binds a fresh socket. The path is short (sun_path holds 108 bytes).
    ///
    /// # Panics
    /// When no temp dir or socket can be made: the test cannot run at all.
    #[must_use]
    pub fn new() -> Self {
        let dir =
            tempfile::Builder::new().prefix("fk-notify").tempdir().expect("temp dir for a notify socket");
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        Self { socket, path, seen: Mutex::new(Vec::new()), _dir: dir }
    }

    /// The value to give the tool under test as `NOTIFY_SOCKET`.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every datagram received so far (each may hold several `KEY=VALUE`
    /// lines), without waiting.
    #[must_use]
    pub fn messages(&self) -> Vec<String> {
        let mut seen = self.lock();
        self.drain(&mut seen, None);
        seen.clone()
    }

    /// Waits until a datagram has a line equal to `line` (or, when `line`
    /// ends in `=`, a line starting with it: `"STATUS="` matches any status)
    /// and returns every datagram received so far, the matching one last
    /// or earlier.
    ///
    /// # Panics
    /// After `timeout` with no match, listing what did arrive.
    pub fn wait_for(&self, line: &str, timeout: Duration) -> Vec<String> {
        match self.try_wait_for(line, timeout) {
            Ok(seen) => seen,
            Err(seen) => {
                panic!("timed out after {timeout:?} waiting for sd_notify {line:?}; received: {seen:?}")
            }
        }
    }

    /// Like [`NotifySocket::wait_for`] without the panic: `Err` holds what
    /// arrived when the deadline passed.
    ///
    /// # Errors
    /// The datagrams received, when none matched before `timeout`.
    pub fn try_wait_for(&self, line: &str, timeout: Duration) -> Result<Vec<String>, Vec<String>> {
        let deadline = Instant::now() + timeout;
        let mut seen = self.lock();
        loop {
            if seen.iter().any(|m| has_line(m, line)) {
                return Ok(seen.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(seen.clone());
            }
            self.drain(&mut seen, Some(deadline - now));
        }
    }

    /// Reads what is queued; with `wait`, blocks up to that long for the
    /// first datagram.
    fn drain(&self, seen: &mut Vec<String>, wait: Option<Duration>) {
        let mut buf = vec![0u8; 64 * 1024];
        let mut wait = wait;
        loop {
            let blocking = wait.is_some_and(|w| !w.is_zero());
            if self.socket.set_nonblocking(!blocking).is_err() {
                return;
            }
            if blocking && self.socket.set_read_timeout(wait).is_err() {
                return;
            }
            match self.socket.recv(&mut buf) {
                Ok(n) => seen.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
                Err(_) => return,
            }
            wait = None;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Default for NotifySocket {
    fn default() -> Self {
        Self::new()
    }
}

fn has_line(message: &str, line: &str) -> bool {
    message.lines().any(|l| if line.ends_with('=') { l.starts_with(line) } else { l == line })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receives_and_matches_lines() {
        let n = NotifySocket::new();
        let tx = UnixDatagram::unbound().unwrap();
        tx.send_to(b"STATUS=starting", n.path()).unwrap();
        tx.send_to(b"READY=1\nSTATUS=running", n.path()).unwrap();
        let seen = n.wait_for("READY=1", Duration::from_secs(5));
        assert_eq!(seen, ["STATUS=starting", "READY=1\nSTATUS=running"]);
        assert!(n.try_wait_for("STOPPING=1", Duration::from_millis(50)).is_err());
        assert!(n.try_wait_for("STATUS=", Duration::ZERO).is_ok());
        assert!(n.try_wait_for("READY=", Duration::ZERO).is_ok());
        assert!(n.try_wait_for("READY", Duration::ZERO).is_err());
    }

    #[test]
    fn waits_for_a_message_from_another_thread() {
        let n = NotifySocket::new();
        let path = n.path().to_path_buf();
        let sender = std::thread::spawn(move || {
            UnixDatagram::unbound().unwrap().send_to(b"READY=1", path).unwrap();
        });
        let seen = n.wait_for("READY=1", Duration::from_secs(10));
        assert_eq!(seen, ["READY=1"]);
        sender.join().unwrap();
    }
}
