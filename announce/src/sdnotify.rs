//! Telling systemd how announce is doing (sd_notify(3)), in a few lines.
//!
//! A `Type=notify` unit starts when announce says `READY=1`, which it does
//! after the first put, so units ordered after the announcer find the key.
//! The protocol is one datagram to the socket named by `NOTIFY_SOCKET` (a
//! path, or `@name` for an abstract socket); without it, nothing is sent.

use std::os::unix::net::{SocketAddr, UnixDatagram};

/// The notify socket, when systemd gave one.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`; an unusable value means no notifications.
    #[must_use]
    pub fn from_env() -> Self {
        let target = std::env::var_os("NOTIFY_SOCKET").and_then(|path| {
            let path = path.to_string_lossy().into_owned();
            let addr = if let Some(name) = path.strip_prefix('@') {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name.as_bytes()).ok()?
            } else {
                SocketAddr::from_pathname(&path).ok()?
            };
            Some((UnixDatagram::unbound().ok()?, addr))
        });
        Self { target }
    }

    /// Sends `KEY=VALUE` lines; a lost notification is not worth failing for.
    pub fn send(&self, message: &str) {
        if let Some((socket, addr)) = &self.target {
            let _ = socket.send_to_addr(message.as_bytes(), addr);
        }
    }
}
