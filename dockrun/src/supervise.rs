//! The container's life, from stale-name cleanup to removal.
//!
//! This is the part that replaces the tutorial's five docker lines and
//! `KillMode=none`: dockrun lives exactly as long as its container, so systemd
//! supervises the container through it. Every path after the container is
//! created removes it (unless `--keep`); a dockrun killed with SIGKILL leaves
//! it behind, and the next dockrun with that name removes it first.

use std::time::Duration;

use bollard::errors::Error;
use bollard::models::{ContainerCreateBody, HealthStatusEnum};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, KillContainerOptionsBuilder,
    RemoveContainerOptionsBuilder, StartContainerOptions, StopContainerOptions, WaitContainerOptionsBuilder,
};
use bollard::Docker;
use fleetkit_core::signals::{Received, Shutdown};
use fleetkit_core::{Exit, ToolError};
use futures_util::StreamExt;

use crate::cli::{Cli, NotifyWhen};
use crate::engine::{self, ENGINE_FAILED};
use crate::spec::{self, BadFlag};
use crate::{output, pull, SYSTEMD};

/// How often a container waiting to become healthy is looked at.
const HEALTH_POLL: Duration = Duration::from_millis(200);
/// How long output may trail the container's exit before dockrun stops reading.
const OUTPUT_DRAIN: Duration = Duration::from_secs(2);

/// Runs the container described by `cli` to its end.
///
/// # Errors
/// 125 for engine and flag errors, 126/127 when the command cannot start.
pub async fn supervise(cli: Cli) -> Result<Exit, ToolError> {
    let mut shutdown = Shutdown::install()
        .map_err(|e| ToolError::with_code(ENGINE_FAILED, format!("cannot install signal handlers: {e}")))?;
    let image = engine::normalize_image(cli.image());
    let config = spec::container_config(&cli, &image, &|k| std::env::var(k).ok())
        .map_err(|BadFlag(m)| ToolError::with_code(ENGINE_FAILED, m))?;
    let docker = engine::connect(cli.stop_timeout).await?;

    if let Some(name) = &cli.name {
        remove_stale(&docker, name).await?;
    }
    // A pull can take minutes: a stop request must not wait for it.
    tokio::select! {
        pulled = pull::ensure_image(&docker, &image, cli.pull) => pulled?,
        () = stop_requested(&mut shutdown) => return Ok(Exit::SUCCESS),
    }

    let id = create(&docker, cli.name.as_deref(), config).await?;
    let label = cli.name.clone().unwrap_or_else(|| id.chars().take(12).collect());
    let outcome = run_created(&docker, &id, &label, &cli, &mut shutdown).await;
    if !cli.keep {
        remove(&docker, &id, &label).await;
    }
    outcome
}

/// Waits for SIGTERM or SIGINT; SIGHUP has no container to go to yet.
async fn stop_requested(shutdown: &mut Shutdown) {
    while shutdown.recv().await == Received::Hup {}
}

/// Removes whatever holds `name` (running, exited or only created), as the
/// tutorial's `docker kill` + `docker rm` did, waiting out a removal in progress.
async fn remove_stale(docker: &Docker, name: &str) -> Result<(), ToolError> {
    let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
    for attempt in 0..100u32 {
        match docker.remove_container(name, Some(options.clone())).await {
            Ok(()) => return Ok(()),
            Err(e) if engine::status(&e) == Some(404) => return Ok(()),
            // "removal of container ... is already in progress": wait for it to finish.
            Err(e) if engine::status(&e) == Some(409) => backoff(attempt).await,
            Err(e) => return Err(engine::failed(&format!("cannot remove the old container {name}"), &e)),
        }
    }
    Err(ToolError::with_code(
        ENGINE_FAILED,
        format!("the old container {name} is still being removed: check `docker ps -a --filter name={name}`"),
    ))
}

async fn backoff(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt.min(10) + 1))).await;
}

/// Creates the container. A name taken again between cleanup and create (a
/// second dockrun, a `docker run` by hand) is cleaned up once more.
async fn create(
    docker: &Docker,
    name: Option<&str>,
    config: ContainerCreateBody,
) -> Result<String, ToolError> {
    let what = name
        .map_or_else(|| "cannot create the container".to_owned(), |n| format!("cannot create container {n}"));
    for attempt in 0..20u32 {
        let options = name.map(|n| CreateContainerOptionsBuilder::default().name(n).build());
        match docker.create_container(options, config.clone()).await {
            Ok(created) => {
                for warning in created.warnings {
                    eprintln!("dockrun: engine warning: {warning}");
                }
                return Ok(created.id);
            }
            Err(e) if engine::status(&e) == Some(409) && name.is_some() => {
                remove_stale(docker, name.unwrap_or_default()).await?;
                backoff(attempt).await;
            }
            Err(e) => return Err(engine::failed(&what, &e)),
        }
    }
    Err(ToolError::with_code(
        ENGINE_FAILED,
        format!("{what}: the name is taken again and again: is another dockrun using it?"),
    ))
}

/// Attaches, starts, reports readiness, passes signals on and waits for the end.
async fn run_created(
    docker: &Docker,
    id: &str,
    label: &str,
    cli: &Cli,
    shutdown: &mut Shutdown,
) -> Result<Exit, ToolError> {
    if cli.notify == NotifyWhen::Healthy {
        require_healthcheck(docker, id, label).await?;
    }
    let attach = AttachContainerOptionsBuilder::default().stdout(true).stderr(true).stream(true).build();
    let mut output = docker
        .attach_container(id, Some(attach))
        .await
        .map_err(|e| engine::failed(&format!("cannot attach to container {label}"), &e))?
        .output;
    if let Err(e) = docker.start_container(id, None::<StartContainerOptions>).await {
        return Err(start_failed(label, &e));
    }

    let mut ready = cli.notify == NotifyWhen::Running;
    if ready {
        SYSTEMD.ready(&format!("container {label} running"));
    } else {
        SYSTEMD.status(&format!("container {label} started, waiting for its health check"));
    }
    let mut health = HealthWatch::default();
    let mut health_tick = tokio::time::interval(HEALTH_POLL);
    let wait_options = WaitContainerOptionsBuilder::default().condition("not-running").build();
    let mut wait = docker.wait_container(id, Some(wait_options));
    let mut output_open = true;
    let mut stopping = false;

    let code = loop {
        tokio::select! {
            chunk = output.next(), if output_open => match chunk {
                Some(Ok(chunk)) => output::write(&chunk),
                Some(Err(_)) | None => output_open = false,
            },
            ended = wait.next() => break exit_code(ended, label)?,
            signal = shutdown.recv() => match signal {
                Received::Hup => signal_container(docker, id, label, "SIGHUP").await,
                Received::Term | Received::Int if !stopping => {
                    stopping = true;
                    SYSTEMD.stopping(&format!("stopping container {label}"));
                    spawn_stop(docker, id, label);
                }
                Received::Term | Received::Int => signal_container(docker, id, label, "SIGKILL").await,
            },
            _ = health_tick.tick(), if !ready => {
                if health.check(docker, id, label).await {
                    ready = true;
                    SYSTEMD.ready(&format!("container {label} healthy"));
                }
            }
        }
    };

    // The exit can overtake the last output on the attach connection.
    let drain = tokio::time::sleep(OUTPUT_DRAIN);
    tokio::pin!(drain);
    while output_open {
        tokio::select! {
            chunk = output.next() => match chunk {
                Some(Ok(chunk)) => output::write(&chunk),
                Some(Err(_)) | None => output_open = false,
            },
            () = &mut drain => output_open = false,
        }
    }
    Ok(if stopping { Exit::SUCCESS } else { Exit(u8::try_from(code & 0xff).unwrap_or(1)) })
}

/// docker run's code for a start that failed: 126/127 when the runtime says
/// the command is not there or not executable, 125 otherwise.
fn start_failed(label: &str, err: &Error) -> ToolError {
    let message = engine::message(err);
    let code =
        if engine::status(err).is_some() { engine::start_failure_code(&message) } else { ENGINE_FAILED };
    let hint = match code {
        engine::NOT_FOUND => "check that the command exists in the image (and is on its PATH)",
        engine::CANNOT_INVOKE => "check that the command is an executable file and the user may run it",
        _ => return engine::failed(&format!("cannot start container {label}"), err),
    };
    ToolError::with_code(code, format!("cannot start container {label}: {message}: {hint}"))
}

/// `--notify healthy` with no health check would never be ready: say so now.
async fn require_healthcheck(docker: &Docker, id: &str, label: &str) -> Result<(), ToolError> {
    let inspected = docker
        .inspect_container(id, None)
        .await
        .map_err(|e| engine::failed(&format!("cannot inspect container {label}"), &e))?;
    let test = inspected.config.and_then(|c| c.healthcheck).and_then(|h| h.test).unwrap_or_default();
    if test.is_empty() || test.first().is_some_and(|t| t == "NONE") {
        return Err(ToolError::with_code(
            ENGINE_FAILED,
            format!(
                "--notify healthy needs a health check, and container {label} has none: \
                 add --health-cmd or use an image with a HEALTHCHECK"
            ),
        ));
    }
    Ok(())
}

/// The container's exit code from the wait stream.
fn exit_code(
    ended: Option<Result<bollard::models::ContainerWaitResponse, Error>>,
    label: &str,
) -> Result<i64, ToolError> {
    match ended {
        Some(Ok(response)) => Ok(response.status_code),
        Some(Err(Error::DockerContainerWaitError { code, .. })) => Ok(code),
        Some(Err(e)) => Err(engine::failed(&format!("lost track of container {label}"), &e)),
        None => Err(ToolError::with_code(
            ENGINE_FAILED,
            format!("lost track of container {label}: the engine ended the wait without an exit code"),
        )),
    }
}

/// Stops the container in the background so its last output keeps flowing;
/// the stop signal and timeout are the container's own (set at create).
fn spawn_stop(docker: &Docker, id: &str, label: &str) {
    let (docker, id, label) = (docker.clone(), id.to_owned(), label.to_owned());
    tokio::spawn(async move {
        match docker.stop_container(&id, None::<StopContainerOptions>).await {
            Ok(()) => {}
            Err(e) if matches!(engine::status(&e), Some(304 | 404)) => {}
            Err(e) => eprintln!("dockrun: {}", engine::failed(&format!("cannot stop container {label}"), &e)),
        }
    });
}

async fn signal_container(docker: &Docker, id: &str, label: &str, signal: &str) {
    let options = KillContainerOptionsBuilder::default().signal(signal).build();
    if let Err(e) = docker.kill_container(id, Some(options)).await {
        if !matches!(engine::status(&e), Some(404 | 409)) {
            eprintln!(
                "dockrun: {}",
                engine::failed(&format!("cannot send {signal} to container {label}"), &e)
            );
        }
    }
}

async fn remove(docker: &Docker, id: &str, label: &str) {
    let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
    match docker.remove_container(id, Some(options)).await {
        Ok(()) => {}
        Err(e) if matches!(engine::status(&e), Some(404 | 409)) => {}
        Err(e) => eprintln!(
            "dockrun: {}; remove it with `docker rm -f {label}`",
            engine::failed(&format!("cannot remove container {label}"), &e)
        ),
    }
}

/// The last health state seen, so `STATUS=` changes only when it does.
#[derive(Default)]
struct HealthWatch {
    last: Option<HealthStatusEnum>,
}

impl HealthWatch {
    /// True once the container is healthy.
    async fn check(&mut self, docker: &Docker, id: &str, label: &str) -> bool {
        let Ok(inspected) = docker.inspect_container(id, None).await else { return false };
        let status = inspected.state.and_then(|s| s.health).and_then(|h| h.status);
        if status == Some(HealthStatusEnum::HEALTHY) {
            return true;
        }
        if status != self.last {
            if status == Some(HealthStatusEnum::UNHEALTHY) {
                SYSTEMD.status(&format!("container {label} unhealthy, waiting for its health check to pass"));
            }
            self.last = status;
        }
        false
    }
}
