//! Why unitgen stopped short, one case per cause, each naming the file or
//! argument at fault (control bytes escaped) and keeping the I/O error it
//! came from. Problems inside unit files are not here: they are the
//! findings of a run, printed as `FILE:LINE: message` diagnostics.

use std::io;

use fleetkit_core::diag::escaped;
use fleetkit_core::exit::{Classify, Kind};
use fleetkit_core::ToolError;

use crate::instances::InstanceError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("stdin cannot hold both instances (-i -) and a unit file (-)")]
    StdinTwice,
    #[error("stdin (-) can be read only once")]
    StdinOnce,
    #[error(transparent)]
    Instances(#[from] InstanceError),
    #[error("a unit read from stdin (-) needs its name: add --name NAME.service")]
    NeedsName,
    /// A unit file (or stdin) that cannot be read.
    #[error("{}", escaped(.path))]
    Read {
        path: String,
        #[source]
        err: io::Error,
    },
    #[error("{}: the file name must be the unit name (UTF-8)", escaped(.path))]
    NameNotUtf8 { path: String },
    #[error("{}: {} is a template: give instances with -i (e.g. -i 1..3)", escaped(.path), escaped(.name))]
    NeedsInstances { path: String, name: String },
    #[error("{}: cannot create the output directory", escaped(.dir))]
    CreateDir {
        dir: String,
        #[source]
        err: io::Error,
    },
    #[error("{}: exists with different contents; use --force to overwrite it", escaped(.path))]
    Exists { path: String },
    #[error("{}: cannot write", escaped(.path))]
    Write {
        path: String,
        #[source]
        err: io::Error,
    },
    /// Writing to stdout failed (a closed pipe is no failure: see
    /// [`Error::into_tool`]).
    #[error("stdout")]
    Stdout(#[source] io::Error),
}

impl Classify for Error {
    /// Everything here is for the user to fix: exit 2.
    fn kind(&self) -> Kind {
        Kind::Usage
    }
}

impl From<io::Error> for Error {
    /// The I/O that is not tied to a file is writing the records.
    fn from(err: io::Error) -> Self {
        Error::Stdout(err)
    }
}

impl Error {
    /// The error as the tool reports it; a closed stdout ends the run
    /// quietly with success, as the reader has what it wanted.
    #[must_use]
    pub fn into_tool(self) -> ToolError {
        match self {
            Error::Stdout(e) => ToolError::from(e),
            e => ToolError::from_error(&e),
        }
    }
}
