//! An engine that accepts connections and never answers must not hang
//! dockrun: every engine call has a deadline (`--engine-timeout`), SIGTERM
//! and SIGINT end dockrun at every step, and a container that was already
//! created is removed on the way out.

mod support;

use std::time::{Duration, Instant};

use fleetkit_tests::docker::{busybox_image, Containers};
use nix::sys::signal::Signal;
use support::{dockrun, HoldingProxy, Running, SilentEngine, DEADLINE};

/// How soon a signalled dockrun must be gone: a few seconds, far less than any timeout.
const PROMPTLY: Duration = Duration::from_secs(5);

#[test]
fn a_silent_engine_fails_after_the_engine_timeout_and_names_docker_host() {
    let engine = SilentEngine::start();
    let mut cmd = dockrun(&["--engine-timeout", "1s", &busybox_image(), "true"]);
    cmd.env("DOCKER_HOST", engine.host());
    let started = Instant::now();
    let ended = Running::spawn(cmd).wait(DEADLINE);
    assert_eq!(ended.code, Some(125), "stderr: {}", ended.stderr);
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    let stderr = &ended.stderr;
    assert!(stderr.contains("did not answer within 1s"), "{stderr}");
    assert!(stderr.contains(&format!("DOCKER_HOST={}", engine.host())), "{stderr}");
    assert!(stderr.contains("--engine-timeout"), "says what to change: {stderr}");
}

#[test]
fn sigterm_while_the_engine_does_not_answer_ends_dockrun_at_once() {
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        let engine = SilentEngine::start();
        let mut cmd = dockrun(&[&busybox_image(), "true"]);
        cmd.env("DOCKER_HOST", engine.host());
        let run = Running::spawn(cmd);
        engine.wait_connected();
        let asked = Instant::now();
        run.signal(signal);
        let ended = run.wait(DEADLINE);
        assert!(asked.elapsed() < PROMPTLY, "{signal}: took {:?}", asked.elapsed());
        assert_eq!(ended.code, Some(0), "{signal}: stderr: {}", ended.stderr);
    }
}

#[test]
fn sigterm_while_the_start_hangs_removes_the_created_container() {
    let guard = Containers::new("hung-start");
    let proxy = HoldingProxy::start("/start ");
    let mut cmd =
        dockrun(&["--name", &guard.name("s"), "--label", &guard.label(), &busybox_image(), "sleep", "600"]);
    cmd.env("DOCKER_HOST", proxy.host());
    let run = Running::spawn(cmd);
    proxy.wait_held();
    assert_eq!(guard.count(), 1, "the container was created before the start hung");
    let asked = Instant::now();
    run.signal(Signal::SIGTERM);
    let ended = run.wait(DEADLINE);
    assert!(asked.elapsed() < PROMPTLY, "took {:?}", asked.elapsed());
    assert_eq!(ended.code, Some(0), "stderr: {}", ended.stderr);
    assert_eq!(guard.count(), 0, "the created container is removed");
}

#[test]
fn a_start_that_is_never_answered_fails_after_the_engine_timeout_and_leaves_nothing() {
    let guard = Containers::new("timed-start");
    let proxy = HoldingProxy::start("/start ");
    let mut cmd =
        dockrun(&["--engine-timeout", "2s", "--label", &guard.label(), &busybox_image(), "sleep", "600"]);
    cmd.env("DOCKER_HOST", proxy.host());
    let ended = Running::spawn(cmd).wait(DEADLINE);
    assert_eq!(ended.code, Some(125), "stderr: {}", ended.stderr);
    assert!(ended.stderr.contains("cannot start container"), "{}", ended.stderr);
    assert!(ended.stderr.contains("did not answer within 2s"), "{}", ended.stderr);
    assert!(ended.stderr.contains(&format!("DOCKER_HOST={}", proxy.host())), "{}", ended.stderr);
    assert_eq!(guard.count(), 0, "the created container is removed");
}

#[test]
fn a_pull_that_makes_no_progress_fails_after_the_engine_timeout() {
    // The engine pulls from a "registry" that accepts and never answers.
    let registry = SilentEngine::start();
    let image = format!("{}/dockrun/stalled:1", registry.addr());
    let ended = Running::spawn(dockrun(&["--engine-timeout", "2s", "--pull", "always", &image, "true"]))
        .wait(DEADLINE);
    assert_eq!(ended.code, Some(125), "stderr: {}", ended.stderr);
    assert!(ended.stderr.contains(&format!("cannot pull image {image}")), "{}", ended.stderr);
    assert!(ended.stderr.contains("no progress for 2s"), "{}", ended.stderr);
}
