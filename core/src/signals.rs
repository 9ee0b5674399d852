//! The shutdown signals a long-running fleetkit tool reacts to.
//!
//! systemd stops a service with SIGTERM; a person at a terminal sends SIGINT;
//! SIGHUP is a closed terminal. Handlers are installed when [`Shutdown`] is
//! made, so a signal that arrives before anyone awaits it is not lost.

use std::io;

use tokio::signal::unix::{signal, Signal, SignalKind};

/// Which shutdown signal arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    Term,
    Int,
    Hup,
}

impl Received {
    /// The signal number, for 128 + n exit codes and for forwarding.
    #[must_use]
    pub fn number(self) -> i32 {
        match self {
            Self::Term => 15,
            Self::Int => 2,
            Self::Hup => 1,
        }
    }
}

/// Installed handlers for SIGTERM, SIGINT and SIGHUP.
#[derive(Debug)]
pub struct Shutdown {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Shutdown {
    /// Installs the handlers. Needs a running tokio runtime.
    ///
    /// # Errors
    /// When the handlers cannot be installed.
    pub fn install() -> io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for the next of the three signals.
    pub async fn recv(&mut self) -> Received {
        tokio::select! {
            _ = self.term.recv() => Received::Term,
            _ = self.int.recv() => Received::Int,
            _ = self.hup.recv() => Received::Hup,
        }
    }
}
