//! The Docker test support does what other tests rely on: the image builds
//! once and runs busybox applets, the registry takes a push and serves a
//! pull, and the label guard leaves no container behind.

use std::time::{Duration, Instant};

use fleetkit_tests::docker::{
    busybox_image, container_state, docker, docker_ok, Containers, Registry, INDEX_HTML,
};

#[test]
fn busybox_image_is_built_once_and_runs_applets() {
    let image = busybox_image();
    assert!(image.starts_with("fleetkit-busybox:"), "{image}");
    let started = Instant::now();
    assert_eq!(busybox_image(), image, "same content, same tag");
    assert!(started.elapsed() < Duration::from_secs(1), "second call is cached");

    let guard = Containers::new("support-applets");
    let label = guard.label();
    let out =
        docker_ok(&["run", "--rm", "--label", &label, &image, "sh", "-c", "echo hi; cat /www/index.html"]);
    assert_eq!(out, format!("hi\n{}", INDEX_HTML.trim_end()));
    let out = docker(&["run", "--rm", "--label", &label, &image, "/etc/not-executable"]);
    assert_eq!(out.status.code(), Some(126), "the non-executable file is not executable");
}

#[test]
fn registry_serves_what_was_pushed() {
    let registry = Registry::start();
    let name = registry.push(&busybox_image(), "support/pushed");
    assert!(name.starts_with(registry.addr()));
    assert!(!docker(&["image", "inspect", &name]).status.success(), "the local tag is gone after push");
    docker_ok(&["pull", &name]);
    let guard = Containers::new("support-registry");
    let out = docker_ok(&["run", "--rm", "--label", &guard.label(), &name, "echo", "pulled"]);
    assert_eq!(out, "pulled");
}

#[test]
fn container_guard_removes_its_containers_in_any_state() {
    let image = busybox_image();
    let name_running;
    {
        let guard = Containers::new("support-guard");
        let label = guard.label();
        name_running = guard.name("running");
        let name_created = guard.name("created");
        docker_ok(&["run", "-d", "--name", &name_running, "--label", &label, &image, "sleep", "600"]);
        docker_ok(&["create", "--name", &name_created, "--label", &label, &image]);
        assert_eq!(guard.count(), 2);
        assert_eq!(container_state(&name_running).as_deref(), Some("running"));
        assert_eq!(container_state(&name_created).as_deref(), Some("created"));
    }
    assert_eq!(container_state(&name_running), None, "removed on drop");
}
