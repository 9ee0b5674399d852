//! Talking to the Docker engine, and saying what to check when it fails.
//!
//! One place connects (DOCKER_HOST or the default socket, API version
//! negotiated so an older engine works) and one place turns bollard's errors
//! into docker run's exit codes: 125 for the engine, 126/127 when the
//! container's command cannot be started, decided from the OCI runtime's
//! message exactly as the docker client does.

use std::time::Duration;

use bollard::errors::Error;
use bollard::Docker;
use fleetkit_core::ToolError;

/// docker run's code when the engine or dockrun itself failed.
pub const ENGINE_FAILED: u8 = 125;
/// docker run's code when the command exists but cannot be invoked.
pub const CANNOT_INVOKE: u8 = 126;
/// docker run's code when the command does not exist.
pub const NOT_FOUND: u8 = 127;

const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Where dockrun looks for the engine, as a person would write it in DOCKER_HOST.
#[must_use]
pub fn host() -> String {
    std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| DEFAULT_HOST.to_owned())
}

/// What to check when the engine cannot be reached.
fn reach_hint() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if !h.is_empty() => format!("is the Docker engine running? DOCKER_HOST={h}"),
        _ => format!("is the Docker engine running? DOCKER_HOST is unset, so dockrun used {DEFAULT_HOST}"),
    }
}

/// Connects and negotiates the API version. `stop_timeout` stretches the
/// request timeout so a long graceful stop is not cut short by the client.
///
/// # Errors
/// 125 with the address and what to check.
pub async fn connect(stop_timeout: Option<u32>) -> Result<Docker, ToolError> {
    let host = host();
    let docker = Docker::connect_with_host(&host).map_err(|e| {
        ToolError::with_code(
            ENGINE_FAILED,
            format!("cannot reach the Docker engine at {host}: {e}: {}", reach_hint()),
        )
    })?;
    let timeout = Duration::from_secs(120.max(u64::from(stop_timeout.unwrap_or(0)) + 60));
    docker.with_timeout(timeout).negotiate_version().await.map_err(|e| {
        ToolError::with_code(
            ENGINE_FAILED,
            format!("cannot reach the Docker engine at {host}: {}: {}", message(&e), reach_hint()),
        )
    })
}

/// The engine's own words for an error, without bollard's wrapping.
#[must_use]
pub fn message(err: &Error) -> String {
    match err {
        Error::DockerResponseServerError { message, .. } => message.clone(),
        Error::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

/// The HTTP status the engine answered with, if it answered.
#[must_use]
pub fn status(err: &Error) -> Option<u16> {
    match err {
        Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// An engine failure while doing `what` (exit 125).
pub fn failed(what: &str, err: &Error) -> ToolError {
    let hint = if status(err).is_some() { String::new() } else { format!(": {}", reach_hint()) };
    ToolError::with_code(ENGINE_FAILED, format!("{what}: {}{hint}", message(err)))
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
