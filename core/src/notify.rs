//! Telling systemd how a service is doing (sd_notify(3)): the one
//! implementation for every tool that runs as a `Type=notify` service
//! (announce, dockrun).
//!
//! The protocol is one datagram of `KEY=VALUE` lines to the socket that
//! `NOTIFY_SOCKET` names: a path, or `@name` for an abstract socket (which
//! the sd-notify crate cannot reach, hence these few lines). Without
//! `NOTIFY_SOCKET` every call is a no-op. A lost notification must not stop
//! the service, so a failure is reported on stderr as `TOOL: cannot notify
//! systemd ...` and otherwise ignored.

use std::ffi::OsStr;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Sends notifications for one tool, named in its failure messages.
#[derive(Debug, Clone, Copy)]
pub struct Notifier {
    tool: &'static str,
}

impl Notifier {
    /// A notifier for `tool` (`dockrun`, `announce`).
    #[must_use]
    pub const fn new(tool: &'static str) -> Self {
        Self { tool }
    }

    /// `READY=1` with a status line: the service is up.
    pub fn ready(self, status: &str) {
        self.send(&["READY=1", &format!("STATUS={status}")]);
    }

    /// A `STATUS=` line for `systemctl status`.
    pub fn status(self, status: &str) {
        self.send(&[&format!("STATUS={status}")]);
    }

    /// `STOPPING=1` with a status line: the stop was seen and is under way.
    pub fn stopping(self, status: &str) {
        self.send(&["STOPPING=1", &format!("STATUS={status}")]);
    }

    fn send(self, lines: &[&str]) {
        let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else { return };
        if let Err(e) = send_to(&socket, lines.join("\n").as_bytes()) {
            eprintln!(
                "{}: cannot notify systemd on NOTIFY_SOCKET={}: {e}",
                self.tool,
                socket.to_string_lossy()
            );
        }
    }
}

/// One datagram to `socket`, a path or `@` and an abstract name.
fn send_to(socket: &OsStr, message: &[u8]) -> std::io::Result<()> {
    let addr = match socket.as_bytes().strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)?,
        None => SocketAddr::from_pathname(socket)?,
    };
    UnixDatagram::unbound()?.send_to_addr(message, &addr)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn reaches_a_path_and_an_abstract_socket() {
        let path = std::env::temp_dir().join(format!("fleetkit-notify-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let at_path = UnixDatagram::bind(&path).unwrap();
        send_to(path.as_os_str(), b"READY=1\nSTATUS=up").unwrap();
        assert_eq!(received(&at_path), "READY=1\nSTATUS=up");
        let _ = std::fs::remove_file(&path);

        let name = format!("fleetkit-notify-{}", std::process::id());
        let abstract_addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let at_name = UnixDatagram::bind_addr(&abstract_addr).unwrap();
        send_to(OsStr::new(&format!("@{name}")), b"STATUS=x").unwrap();
        assert_eq!(received(&at_name), "STATUS=x");
    }

    #[test]
    fn a_missing_socket_is_an_error() {
        assert!(send_to(OsStr::new("/nonexistent/notify"), b"READY=1").is_err());
    }
}
