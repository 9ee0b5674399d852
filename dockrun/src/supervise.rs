//! The container's life, from stale-name cleanup to removal.
//!
//! This is the part that replaces the tutorial's five docker lines and
//! `KillMode=none`: dockrun lives exactly as long as its container, so systemd
//! supervises the container through it. Every path after the container is
//! created removes it (unless `--keep`); a dockrun killed with SIGKILL leaves
//! it behind, and the next dockrun with that name removes it first.

use std::future::Future;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HealthStatusEnum};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, KillContainerOptionsBuilder,
    RemoveContainerOptionsBuilder, StartContainerOptions, StopContainerOptions, WaitContainerOptionsBuilder,
};
use fleetkit_core::signals::{Received, Shutdown};
use fleetkit_core::Exit;
use futures_util::StreamExt;

use crate::cli::{Cli, NotifyWhen};
use crate::engine::{self, Engine};
use crate::error::{shown, Error, CANNOT_INVOKE, NOT_FOUND};
use crate::{output, pull, spec, SYSTEMD};

/// How often a container waiting to become healthy is looked at.
const HEALTH_POLL: Duration = Duration::from_millis(200);
/// How long output may trail the container's exit before dockrun stops reading.
const OUTPUT_DRAIN: Duration = Duration::from_secs(2);
/// The engine's stop timeout when neither `--stop-timeout` nor the image sets one.
const ENGINE_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the container described by `cli` to its end.
///
/// Every step before the container runs is given up at once on SIGTERM or
/// SIGINT (exit 0, as a stop of a running container): a unit stopped while
/// it is still activating must not wait for an engine that does not answer.
///
/// # Errors
/// 125 for engine and flag errors, 126/127 when the command cannot start.
pub async fn supervise(cli: Cli) -> Result<Exit, Error> {
    let mut shutdown =
        Shutdown::install().map_err(|e| Error::Other(format!("cannot install signal handlers: {e}")))?;
    let image = engine::normalize_image(cli.image());
    let config = spec::container_config(&cli, &image, &|k| std::env::var(k).ok())?;

    let Some(engine) = until_stopped(&mut shutdown, Engine::connect(cli.engine_timeout())).await? else {
        return Ok(Exit::SUCCESS);
    };
    if let Some(name) = &cli.name {
        if until_stopped(&mut shutdown, remove_stale(&engine, name)).await?.is_none() {
            return Ok(Exit::SUCCESS);
        }
    }
    // A pull can take minutes: a stop request must not wait for it.
    if until_stopped(&mut shutdown, pull::ensure_image(&engine, &image, cli.pull)).await?.is_none() {
        return Ok(Exit::SUCCESS);
    }

    let Some(id) = create(&engine, cli.name.as_deref(), config, &mut shutdown).await? else {
        return Ok(Exit::SUCCESS);
    };
    let label = cli.name.clone().unwrap_or_else(|| id.chars().take(12).collect());
    let outcome = run_created(&engine, &id, &label, &cli, &mut shutdown).await;
    if !cli.keep {
        remove(&engine, &id, &label).await;
    }
    outcome
}

/// `step`'s result, or `None` when SIGTERM or SIGINT came first (SIGHUP
/// has no container to go to yet). The step is dropped, which cancels its
/// request.
async fn until_stopped<T>(
    shutdown: &mut Shutdown,
    step: impl Future<Output = Result<T, Error>>,
) -> Result<Option<T>, Error> {
    tokio::pin!(step);
    loop {
        tokio::select! {
            done = &mut step => return done.map(Some),
            signal = shutdown.recv() => if signal != Received::Hup { return Ok(None) },
        }
    }
}

/// Removes whatever holds `name` (running, exited or only created), as the
/// tutorial's `docker kill` + `docker rm` did, waiting out a removal in progress.
async fn remove_stale(engine: &Engine, name: &str) -> Result<(), Error> {
    let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
    let what = format!("cannot remove the old container {}", shown(name));
    for attempt in 0..100u32 {
        match engine.call(&what, engine.docker.remove_container(name, Some(options.clone()))).await {
            Ok(()) => return Ok(()),
            Err(e) if e.status() == Some(404) => return Ok(()),
            // "removal of container ... is already in progress": wait for it to finish.
            Err(e) if e.status() == Some(409) => backoff(attempt).await,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Other(format!(
        "the old container {name} is still being removed: check `docker ps -a --filter name={name}`",
        name = shown(name)
    )))
}

async fn backoff(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt.min(10) + 1))).await;
}

/// Creates the container; `None` when a signal asked dockrun to stop.
///
/// A create that was sent may make a container even if dockrun stops
/// waiting, so a signal does not drop it: dockrun waits for the answer
/// (within the engine timeout) and removes what it made. A second signal
/// gives up at once, removing the container by name when it has one.
async fn create(
    engine: &Engine,
    name: Option<&str>,
    config: ContainerCreateBody,
    shutdown: &mut Shutdown,
) -> Result<Option<String>, Error> {
    let creating = create_named(engine, name, config);
    tokio::pin!(creating);
    let mut stopping = false;
    loop {
        tokio::select! {
            created = &mut creating => {
                let id = created?;
                if !stopping {
                    return Ok(Some(id));
                }
                let label = name.map_or_else(|| id.chars().take(12).collect(), str::to_owned);
                remove(engine, &id, &label).await;
                return Ok(None);
            }
            signal = shutdown.recv() => match signal {
                Received::Hup => {}
                Received::Term | Received::Int if !stopping => stopping = true,
                Received::Term | Received::Int => {
                    if let Some(name) = name {
                        remove(engine, name, name).await;
                    }
                    return Ok(None);
                }
            },
        }
    }
}

/// Creates the container. A name taken again between cleanup and create (a
/// second dockrun, a `docker run` by hand) is cleaned up once more.
async fn create_named(
    engine: &Engine,
    name: Option<&str>,
    config: ContainerCreateBody,
) -> Result<String, Error> {
    let what = name.map_or_else(
        || "cannot create the container".to_owned(),
        |n| format!("cannot create container {}", shown(n)),
    );
    for attempt in 0..20u32 {
        let options = name.map(|n| CreateContainerOptionsBuilder::default().name(n).build());
        match engine.call(&what, engine.docker.create_container(options, config.clone())).await {
            Ok(created) => {
                for warning in created.warnings {
                    eprintln!("dockrun: engine warning: {}", shown(&warning));
                }
                return Ok(created.id);
            }
            Err(e) if e.status() == Some(409) && name.is_some() => {
                remove_stale(engine, name.unwrap_or_default()).await?;
                backoff(attempt).await;
            }
            Err(e) => return Err(e),
        }
    }
    Err(Error::Other(format!("{what}: the name is taken again and again: is another dockrun using it?")))
}

/// Attaches, starts, reports readiness, passes signals on and waits for the end.
async fn run_created(
    engine: &Engine,
    id: &str,
    label: &str,
    cli: &Cli,
    shutdown: &mut Shutdown,
) -> Result<Exit, Error> {
    if cli.notify == NotifyWhen::Healthy
        && until_stopped(shutdown, require_healthcheck(engine, id, label)).await?.is_none()
    {
        return Ok(Exit::SUCCESS);
    }
    let attach = AttachContainerOptionsBuilder::default().stdout(true).stderr(true).stream(true).build();
    let what = format!("cannot attach to container {}", shown(label));
    let attaching = engine.call(&what, engine.docker.attach_container(id, Some(attach)));
    let Some(attached) = until_stopped(shutdown, attaching).await? else { return Ok(Exit::SUCCESS) };
    let mut output = attached.output;
    let what = format!("cannot start container {}", shown(label));
    let starting = async {
        let started = engine.docker.start_container(id, None::<StartContainerOptions>);
        engine.call(&what, started).await.map_err(|e| start_failed(label, e))
    };
    if until_stopped(shutdown, starting).await?.is_none() {
        return Ok(Exit::SUCCESS);
    }

    let mut ready = cli.notify == NotifyWhen::Running;
    if ready {
        SYSTEMD.ready(&format!("container {} running", shown(label)));
    } else {
        SYSTEMD.status(&format!("container {} started, waiting for its health check", shown(label)));
    }
    let mut health = HealthWatch::default();
    let mut health_tick = tokio::time::interval(HEALTH_POLL);
    let mut health_check: Option<tokio::task::JoinHandle<Option<HealthStatusEnum>>> = None;
    let wait_options = WaitContainerOptionsBuilder::default().condition("not-running").build();
    let mut wait = engine.docker.wait_container(id, Some(wait_options));
    let mut output_open = true;
    let mut stopping = false;
    // How long a requested stop may take before dockrun stops waiting for it.
    let stop_grace = engine.timeout().map(|t| t + cli.stop_timeout.map_or(ENGINE_STOP_TIMEOUT, stop_secs));
    let give_up = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(give_up);

    let code = loop {
        tokio::select! {
            chunk = output.next(), if output_open => match chunk {
                Some(Ok(chunk)) => output::write(&chunk),
                Some(Err(_)) | None => output_open = false,
            },
            ended = wait.next() => break exit_code(ended, label)?,
            signal = shutdown.recv() => match signal {
                Received::Hup => spawn_signal(engine, id, label, "SIGHUP"),
                Received::Term | Received::Int if !stopping => {
                    stopping = true;
                    SYSTEMD.stopping(&format!("stopping container {}", shown(label)));
                    spawn_stop(engine, id, label, cli.stop_timeout.map_or(ENGINE_STOP_TIMEOUT, stop_secs));
                    if let Some(grace) = stop_grace {
                        give_up.as_mut().reset(tokio::time::Instant::now() + grace);
                    }
                }
                Received::Term | Received::Int => spawn_signal(engine, id, label, "SIGKILL"),
            },
            () = &mut give_up, if stopping && stop_grace.is_some() => {
                return Err(Error::NoAnswer {
                    what: format!("cannot stop container {}", shown(label)),
                    after: stop_grace.unwrap_or_default(),
                });
            }
            _ = health_tick.tick(), if !ready && health_check.is_none() => {
                let (engine, id) = (engine.clone(), id.to_owned());
                health_check = Some(tokio::spawn(async move { health_of(&engine, &id).await }));
            }
            status = async { health_check.as_mut().expect("guarded by is_some").await }, if health_check.is_some() => {
                health_check = None;
                if health.seen(status.ok().flatten(), label) {
                    ready = true;
                    SYSTEMD.ready(&format!("container {} healthy", shown(label)));
                }
            }
        }
    };
    if let Some(check) = health_check {
        check.abort();
    }

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

fn stop_secs(secs: u32) -> Duration {
    Duration::from_secs(u64::from(secs))
}

/// docker run's code for a start that failed: 126/127 when the runtime says
/// the command is not there or not executable, 125 otherwise.
fn start_failed(label: &str, err: Error) -> Error {
    let Error::Engine { what, hint, source } = err else { return err };
    let code = match engine::status(&source) {
        Some(_) => engine::start_failure_code(&engine::message(&source)),
        None => crate::error::ENGINE_FAILED,
    };
    let hint = match code {
        NOT_FOUND => "check that the command exists in the image (and is on its PATH)",
        CANNOT_INVOKE => "check that the command is an executable file and the user may run it",
        _ => return Error::Engine { what, hint, source },
    };
    Error::Start { code, label: label.to_owned(), hint, source }
}

/// `--notify healthy` with no health check would never be ready: say so now.
async fn require_healthcheck(engine: &Engine, id: &str, label: &str) -> Result<(), Error> {
    let what = format!("cannot inspect container {}", shown(label));
    let inspected = engine.call(&what, engine.docker.inspect_container(id, None)).await?;
    let test = inspected.config.and_then(|c| c.healthcheck).and_then(|h| h.test).unwrap_or_default();
    if test.is_empty() || test.first().is_some_and(|t| t == "NONE") {
        return Err(Error::Other(format!(
            "--notify healthy needs a health check, and container {} has none: \
             add --health-cmd or use an image with a HEALTHCHECK",
            shown(label)
        )));
    }
    Ok(())
}

/// The container's exit code from the wait stream.
fn exit_code(
    ended: Option<Result<bollard::models::ContainerWaitResponse, bollard::errors::Error>>,
    label: &str,
) -> Result<i64, Error> {
    match ended {
        Some(Ok(response)) => Ok(response.status_code),
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
        Some(Err(e)) => Err(Error::engine(format!("lost track of container {}", shown(label)), e)),
        None => Err(Error::Other(format!(
            "lost track of container {}: the engine ended the wait without an exit code",
            shown(label)
        ))),
    }
}

/// Stops the container in the background so its last output keeps flowing;
/// the stop signal and timeout are the container's own (set at create), so
/// the engine answers after up to `stop_timeout`, and gets that on top of
/// the engine timeout.
fn spawn_stop(engine: &Engine, id: &str, label: &str, stop_timeout: Duration) {
    let (engine, id, label) = (engine.clone(), id.to_owned(), label.to_owned());
    tokio::spawn(async move {
        let what = format!("cannot stop container {}", shown(&label));
        let stop = engine.docker.stop_container(&id, None::<StopContainerOptions>);
        match engine.call_longer(stop_timeout, &what, stop).await {
            Ok(()) => {}
            Err(e) if matches!(e.status(), Some(304 | 404)) => {}
            Err(e) => eprintln!("dockrun: {e}"),
        }
    });
}

/// Sends `signal` to the container in the background, so a hanging engine
/// cannot hold up the next signal.
fn spawn_signal(engine: &Engine, id: &str, label: &str, signal: &'static str) {
    let (engine, id, label) = (engine.clone(), id.to_owned(), label.to_owned());
    tokio::spawn(async move {
        let options = KillContainerOptionsBuilder::default().signal(signal).build();
        let what = format!("cannot send {signal} to container {}", shown(&label));
        match engine.call(&what, engine.docker.kill_container(&id, Some(options))).await {
            Ok(()) => {}
            Err(e) if matches!(e.status(), Some(404 | 409)) => {}
            Err(e) => eprintln!("dockrun: {e}"),
        }
    });
}

/// Force-removes the container (`id` or name), within the engine timeout;
/// a failure is reported with the command that finishes the job.
async fn remove(engine: &Engine, id: &str, label: &str) {
    let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
    let what = format!("cannot remove container {}", shown(label));
    match engine.call(&what, engine.docker.remove_container(id, Some(options))).await {
        Ok(()) => {}
        Err(e) if matches!(e.status(), Some(404 | 409)) => {}
        Err(e) => eprintln!("dockrun: {e}; remove it with `docker rm -f {}`", shown(label)),
    }
}

/// The container's health status now; `None` when the engine did not say.
async fn health_of(engine: &Engine, id: &str) -> Option<HealthStatusEnum> {
    let inspected = engine.call("inspect", engine.docker.inspect_container(id, None)).await.ok()?;
    inspected.state.and_then(|s| s.health).and_then(|h| h.status)
}

/// The last health state seen, so `STATUS=` changes only when it does.
#[derive(Default)]
struct HealthWatch {
    last: Option<HealthStatusEnum>,
}

impl HealthWatch {
    /// True once the container is healthy.
    fn seen(&mut self, status: Option<HealthStatusEnum>, label: &str) -> bool {
        if status == Some(HealthStatusEnum::HEALTHY) {
            return true;
        }
        if status != self.last {
            if status == Some(HealthStatusEnum::UNHEALTHY) {
                SYSTEMD.status(&format!(
                    "container {} unhealthy, waiting for its health check to pass",
                    shown(label)
                ));
            }
            self.last = status;
        }
        false
    }
}
