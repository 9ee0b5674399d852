//! Talking to the Docker engine: where it is, how long a call may take,
//! and what to check when it fails.
//!
//! One place connects (DOCKER_HOST or the default socket, API version
//! negotiated so an older engine works) and every request goes through
//! [`Engine::call`], which gives it `--engine-timeout` to answer: an engine
//! that accepts connections and never answers must not hold a unit in
//! `activating` for good. Streams that may rightly stay quiet (the
//! container's output, its wait) have no deadline; the pull's progress
//! has an idle deadline instead (`pull`). 126/127 are decided from the OCI
//! runtime's message exactly as the docker client does.

use std::future::Future;
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::Docker;

use crate::error::{shown, Error, CANNOT_INVOKE, ENGINE_FAILED, NOT_FOUND};

const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// bollard's own per-request timeout, set out of the way: it would cut a
/// graceful stop short, and [`Engine::call`] sets the real deadlines.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// Where dockrun looks for the engine, as a person would write it in DOCKER_HOST.
#[must_use]
pub fn host() -> String {
    std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| DEFAULT_HOST.to_owned())
}

/// Where dockrun looked, for messages: `DOCKER_HOST=VALUE`, or that it was unset.
#[must_use]
pub fn host_said() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if !h.is_empty() => format!("DOCKER_HOST={}", shown(&h)),
        _ => format!("DOCKER_HOST is unset, so dockrun used {DEFAULT_HOST}"),
    }
}

/// What to check when the engine cannot be reached.
#[must_use]
pub fn reach_hint() -> String {
    format!("is the Docker engine running? {}", host_said())
}

/// A connected engine and the deadline each of its calls gets.
#[derive(Clone)]
pub struct Engine {
    pub docker: Docker,
    /// `None`: `--engine-timeout 0`, no deadline.
    timeout: Option<Duration>,
}

impl Engine {
    /// Connects and negotiates the API version, within `timeout`.
    ///
    /// # Errors
    /// 125 with the address and what to check.
    pub async fn connect(timeout: Option<Duration>) -> Result<Self, Error> {
        let host = host();
        let what = format!("cannot reach the Docker engine at {}", shown(&host));
        let docker = Docker::connect_with_host(&host).map_err(|e| Error::engine(&what, e))?;
        let engine = Self { docker: docker.with_timeout(CLIENT_TIMEOUT), timeout };
        let docker = engine.call(&what, engine.docker.clone().negotiate_version()).await?;
        Ok(Self { docker, timeout })
    }

    /// The deadline of one call (`None`: no deadline).
    #[must_use]
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// `request`, given the engine timeout to answer; `what` says what it was for.
    ///
    /// # Errors
    /// The engine's error, or [`Error::NoAnswer`] when the deadline passed.
    pub async fn call<T>(
        &self,
        what: &str,
        request: impl Future<Output = Result<T, BollardError>>,
    ) -> Result<T, Error> {
        self.call_longer(Duration::ZERO, what, request).await
    }

    /// Like [`Engine::call`] for a request that takes `extra` by design (a
    /// graceful stop waits out the stop timeout before it answers).
    ///
    /// # Errors
    /// As [`Engine::call`].
    pub async fn call_longer<T>(
        &self,
        extra: Duration,
        what: &str,
        request: impl Future<Output = Result<T, BollardError>>,
    ) -> Result<T, Error> {
        let answered = match self.timeout {
            None => request.await,
            Some(t) => tokio::time::timeout(t + extra, request)
                .await
                .map_err(|_| Error::NoAnswer { what: what.to_owned(), after: t + extra })?,
        };
        answered.map_err(|e| Error::engine(what, e))
    }
}

/// The engine's own words for an error, without bollard's wrapping.
#[must_use]
pub fn message(err: &BollardError) -> String {
    match err {
        BollardError::DockerResponseServerError { message, .. } => message.clone(),
        BollardError::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

/// The HTTP status the engine answered with, if it answered.
#[must_use]
pub fn status(err: &BollardError) -> Option<u16> {
    match err {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// docker run's exit code for a failed container start, from the runtime's message.
#[must_use]
pub fn start_failure_code(message: &str) -> u8 {
    if message.contains("executable file not found")
        || message.contains("no such file or directory")
        || message.contains("system cannot find the file specified")
    {
        NOT_FOUND
    } else if message.contains("permission denied") {
        CANNOT_INVOKE
    } else {
        ENGINE_FAILED
    }
}

/// `name` with `:latest` added when it names neither a tag nor a digest, so
/// a pull fetches one image and never every tag of a repository.
#[must_use]
pub fn normalize_image(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if name.contains('@') || last.contains(':') {
        name.to_owned()
    } else {
        format!("{name}:latest")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_failures_map_like_docker_run() {
        let nf = r#"OCI runtime create failed: runc create failed: unable to start container process: exec: "nosuch": executable file not found in $PATH: unknown"#;
        assert_eq!(start_failure_code(nf), NOT_FOUND);
        assert_eq!(start_failure_code("exec: \"/x\": stat /x: no such file or directory"), NOT_FOUND);
        assert_eq!(start_failure_code("exec: \"/etc/passwd\": permission denied"), CANNOT_INVOKE);
        assert_eq!(start_failure_code("driver failed programming external connectivity"), ENGINE_FAILED);
    }

    #[test]
    fn images_get_a_tag() {
        assert_eq!(normalize_image("busybox"), "busybox:latest");
        assert_eq!(normalize_image("busybox:1.36"), "busybox:1.36");
        assert_eq!(normalize_image("127.0.0.1:5000/x"), "127.0.0.1:5000/x:latest");
        assert_eq!(normalize_image("127.0.0.1:5000/x:v1"), "127.0.0.1:5000/x:v1");
        assert_eq!(normalize_image("x@sha256:abc"), "x@sha256:abc");
    }
}
