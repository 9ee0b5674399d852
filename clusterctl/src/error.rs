//! clusterctl's errors: what failed, with its cause kept, and the kind
//! that decides the exit code (etcd unreachable is 75, "try later"; a unit
//! whose rules contradict each other is 2, "fix the unit").

use fleetkit_core::etcd::EtcdError;
use fleetkit_core::exit::{Classify, Kind};
use fleetkit_core::ToolError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    /// The placement rules of some unit cannot hold together.
    #[error(transparent)]
    Place(#[from] place::PlaceError),
    /// The machine's systemd: unreachable, or it refused a call.
    #[error(transparent)]
    Systemd(#[from] crate::agent::systemd::SystemdError),
}

impl Classify for Error {
    fn kind(&self) -> Kind {
        match self {
            Self::Etcd(e) => e.kind(),
            Self::Place(_) => Kind::Usage,
            Self::Systemd(crate::agent::systemd::SystemdError::Bus(_)) => Kind::Unavailable,
            Self::Systemd(_) => Kind::Negative,
        }
    }
}

impl From<crate::agent::systemd::SystemdError> for ToolError {
    fn from(e: crate::agent::systemd::SystemdError) -> Self {
        Error::from(e).into()
    }
}

impl From<Error> for ToolError {
    fn from(e: Error) -> Self {
        Self::from_error(&e)
    }
}
