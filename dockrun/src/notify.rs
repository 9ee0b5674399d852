//! Telling systemd how the service is doing (sd_notify).
//!
//! Only when systemd asked for it: without `NOTIFY_SOCKET` these are no-ops.
//! A lost notification must not stop the service, so failures are reported
//! on stderr once and otherwise ignored.

use sd_notify::NotifyState;

/// `READY=1` with a status line: the service is up.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A `STATUS=` line for `systemctl status`.
pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

/// `STOPPING=1`: the stop was seen and is under way.
pub fn stopping(status: &str) {
    send(&[NotifyState::Stopping, NotifyState::Status(status)]);
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        let socket = std::env::var("NOTIFY_SOCKET").unwrap_or_default();
        eprintln!("dockrun: cannot notify systemd on NOTIFY_SOCKET={socket}: {e}");
    }
}
