//! READY=1 reaches systemd only once the container runs, or with
//! `--notify healthy` only once its health check passes.

mod support;

use fleetkit_tests::docker::{busybox_image, container_state, docker_ok, Containers};
use fleetkit_tests::notify::NotifySocket;
use fleetkit_tests::wait::wait_until;
use nix::sys::signal::Signal;
use support::{dockrun, Running, DEADLINE};

fn has_ready(messages: &[String]) -> bool {
    messages.iter().any(|m| m.lines().any(|l| l == "READY=1"))
}

#[test]
fn ready_comes_once_the_container_runs() {
    let guard = Containers::new("ready");
    let (image, label, name) = (busybox_image(), guard.label(), guard.name("r"));
    let notify = NotifySocket::new();
    let mut cmd = dockrun(&["--name", &name, "--label", &label, "--init", &image, "sleep", "600"]);
    cmd.env("NOTIFY_SOCKET", notify.path());
    let svc = Running::spawn(cmd);
    let messages = notify.wait_for("READY=1", DEADLINE);
    assert_eq!(container_state(&name).as_deref(), Some("running"), "running when READY=1 arrived");
    assert!(messages.iter().any(|m| m.contains("STATUS=container ")), "{messages:?}");
    svc.signal(Signal::SIGTERM);
    let ended = svc.wait(DEADLINE);
    assert_eq!(ended.code, Some(0), "stderr: {}", ended.stderr);
    assert!(notify.messages().iter().any(|m| m.contains("STOPPING=1")));
}

#[test]
fn with_notify_healthy_ready_waits_for_the_health_check() {
    let guard = Containers::new("healthy");
    let (image, label, name) = (busybox_image(), guard.label(), guard.name("h"));
    let notify = NotifySocket::new();
    let mut cmd = dockrun(&[
        "--name",
        &name,
        "--label",
        &label,
        "--init",
        "--notify",
        "healthy",
        "--health-cmd",
        "test -f /tmp/healthy",
        "--health-interval",
        "100ms",
        "--health-retries",
        "1",
        &image,
        "sleep",
        "600",
    ]);
    cmd.env("NOTIFY_SOCKET", notify.path());
    let svc = Running::spawn(cmd);

    // The check has run and failed a few times: still no READY=1.
    let streak = || docker_ok(&["inspect", "--format", "{{.State.Health.FailingStreak}}", &name]);
    wait_until("three failed health checks", DEADLINE, || {
        container_state(&name).as_deref() == Some("running") && streak().parse::<u32>().is_ok_and(|n| n >= 3)
    });
    assert!(!has_ready(&notify.messages()), "no READY=1 while unhealthy: {:?}", notify.messages());

    docker_ok(&["exec", &name, "touch", "/tmp/healthy"]);
    notify.wait_for("READY=1", DEADLINE);
    let health = docker_ok(&["inspect", "--format", "{{.State.Health.Status}}", &name]);
    assert_eq!(health, "healthy");

    svc.signal(Signal::SIGTERM);
    let ended = svc.wait(DEADLINE);
    assert_eq!(ended.code, Some(0), "stderr: {}", ended.stderr);
    assert_eq!(guard.count(), 0);
}

#[test]
fn notify_healthy_without_a_health_check_is_an_error() {
    let guard = Containers::new("nohealth");
    let ended = support::run(&["--label", &guard.label(), "--notify", "healthy", &busybox_image(), "true"]);
    assert_eq!(ended.code, Some(125), "stderr: {}", ended.stderr);
    assert!(ended.stderr.contains("add --health-cmd"), "{}", ended.stderr);
    assert_eq!(guard.count(), 0);
}
