//! dockrun's life cycle against the real engine: serve, stop, signals,
//! stale names, SIGKILL recovery, and many cycles leaving nothing behind.

mod support;

use std::time::{Duration, Instant};

use fleetkit_tests::docker::{
    busybox_image, container_state, docker, docker_ok, http_get, Containers, INDEX_HTML,
};
use fleetkit_tests::notify::NotifySocket;
use fleetkit_tests::port::free_port;
use fleetkit_tests::wait::wait_for;
use nix::sys::signal::Signal;
use support::{dockrun, run, Running, DEADLINE};

#[test]
fn serves_http_on_a_published_port_and_stops_cleanly_on_sigterm() {
    let guard = Containers::new("serve");
    let (image, label, name) = (busybox_image(), guard.label(), guard.name("web"));
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let addr = format!("127.0.0.1:{port}");
    let web = Running::spawn(dockrun(&[
        "--name",
        &name,
        "--label",
        &label,
        "--init",
        "--stop-timeout",
        "5",
        "-p",
        &publish,
        &image,
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ]));

    let (page, _) = wait_for("the page on the published port", DEADLINE, || http_get(&addr, "/"));
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.ends_with(INDEX_HTML), "{page}");

    let asked = Instant::now();
    web.signal(Signal::SIGTERM);
    let ended = web.wait(DEADLINE);
    assert_eq!(ended.code, Some(0), "stderr: {}", ended.stderr);
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "stopped within the stop timeout: {:?}",
        asked.elapsed()
    );
    assert_eq!(guard.count(), 0, "no container left");
}

#[test]
fn a_port_range_publishes_each_port() {
    let guard = Containers::new("range");
    let (image, label, name) = (busybox_image(), guard.label(), guard.name("web"));
    // Two free ports in a row on the host.
    let port = loop {
        let p = free_port();
        if p < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            break p;
        }
    };
    let publish = format!("127.0.0.1:{port}-{}:80-81", port + 1);
    let web = Running::spawn(dockrun(&[
        "--name",
        &name,
        "--label",
        &label,
        "--init",
        "-p",
        &publish,
        &image,
        "sh",
        "-c",
        "httpd -p 80 -h /www && exec httpd -f -p 81 -h /www",
    ]));
    for p in [port, port + 1] {
        let addr = format!("127.0.0.1:{p}");
        let (page, _) = wait_for("the page on each published port", DEADLINE, || http_get(&addr, "/"));
        assert!(page.starts_with("HTTP/1.1 200"), "{addr}: {page}");
    }
    web.signal(Signal::SIGTERM);
    let ended = web.wait(DEADLINE);
    assert_eq!(ended.code, Some(0), "stderr: {}", ended.stderr);
    assert_eq!(guard.count(), 0, "no container left");
}

#[test]
fn stop_uses_the_containers_stop_signal() {
    let guard = Containers::new("stopsignal");
    let (image, label, name) = (busybox_image(), guard.label(), guard.name("s"));
    let mut svc = Running::spawn(dockrun(&[
        "--name",
        &name,
        "--label",
        &label,
        "--stop-signal",
        "SIGUSR1",
        &image,
        "sh",
        "-c",
        "trap 'echo got-usr1; exit 0' USR1; echo up; while true; do sleep 0.05; done",
    ]));
    svc.wait_stdout("up");
    svc.signal(Signal::SIGINT);
    let ended = svc.wait(DEADLINE);
    assert_eq!(ended.code, Some(0), "stderr: {}", ended.stderr);
    assert!(ended.stdout.contains("got-usr1"), "stdout: {}", ended.stdout);
    assert_eq!(guard.count(), 0);
}

#[test]
fn sighup_is_passed_to_the_container() {
    let guard = Containers::new("hup");
    let (image, label, name) = (busybox_image(), guard.label(), guard.name("h"));
    let mut svc = Running::spawn(dockrun(&[
        "--name",
        &name,
        "--label",
        &label,
        &image,
        "sh",
        "-c",
        "trap 'echo got-hup' HUP; trap 'exit 0' TERM; echo up; while true; do sleep 0.05; done",
    ]));
    svc.wait_stdout("up");
    svc.signal(Signal::SIGHUP);
    svc.wait_stdout("got-hup");
    assert_eq!(container_state(&name).as_deref(), Some("running"), "SIGHUP does not stop it");
    svc.signal(Signal::SIGTERM);
    let ended = svc.wait(DEADLINE);
    assert_eq!(ended.code, Some(0), "stderr: {}", ended.stderr);
    assert_eq!(guard.count(), 0);
}

#[test]
fn a_stale_container_with_the_same_name_is_replaced_in_any_state() {
    let guard = Containers::new("stale");
    let (image, label) = (busybox_image(), guard.label());
    for state in ["created", "running", "exited"] {
        let name = guard.name(state);
        let old = match state {
            "created" => docker_ok(&["create", "--name", &name, "--label", &label, &image, "sleep", "600"]),
            "running" => {
                docker_ok(&["run", "-d", "--name", &name, "--label", &label, &image, "sleep", "600"])
            }
            _ => {
                docker_ok(&["run", "--name", &name, "--label", &label, &image, "true"]);
                docker_ok(&["inspect", "--format", "{{.Id}}", &name])
            }
        };
        assert_eq!(container_state(&name).as_deref(), Some(state));
        let ended = run(&["--name", &name, "--label", &label, &image, "echo", "fresh"]);
        assert_eq!(ended.code, Some(0), "{state}: stderr: {}", ended.stderr);
        assert_eq!(ended.stdout, "fresh\n", "{state}");
        assert!(!docker(&["inspect", &old]).status.success(), "{state}: the old container is gone");
    }
    assert_eq!(guard.count(), 0);
}

#[test]
fn after_dockrun_is_sigkilled_the_next_one_cleans_up() {
    let guard = Containers::new("sigkill");
    let (image, label, name) = (busybox_image(), guard.label(), guard.name("k"));
    let mut first = Running::spawn(dockrun(&[
        "--name",
        &name,
        "--label",
        &label,
        "--init",
        &image,
        "sh",
        "-c",
        "echo up; exec sleep 600",
    ]));
    first.wait_stdout("up");
    let old = docker_ok(&["inspect", "--format", "{{.Id}}", &name]);
    first.signal(Signal::SIGKILL);
    let _ = first.wait(DEADLINE);
    assert_eq!(container_state(&name).as_deref(), Some("running"), "SIGKILL leaves the container");

    let ended = run(&["--name", &name, "--label", &label, &image, "echo", "again"]);
    assert_eq!(ended.code, Some(0), "stderr: {}", ended.stderr);
    assert_eq!(ended.stdout, "again\n");
    assert!(!docker(&["inspect", &old]).status.success(), "the orphan is gone");
    assert_eq!(guard.count(), 0);
}

#[test]
fn keep_leaves_the_exited_container() {
    let guard = Containers::new("keep");
    let (image, label, name) = (busybox_image(), guard.label(), guard.name("kept"));
    let ended = run(&["--name", &name, "--label", &label, "--keep", &image, "true"]);
    assert_eq!(ended.code, Some(0), "stderr: {}", ended.stderr);
    assert_eq!(container_state(&name).as_deref(), Some("exited"));
}

#[test]
fn a_hundred_start_stop_cycles_leave_no_container() {
    // Four services cycling side by side, 25 times each: the engine, not
    // dockrun, takes most of a cycle, and side by side is how units run.
    let guard = Containers::new("cycles");
    let (image, label) = (busybox_image(), guard.label());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for worker in 0..4 {
            let (image, label, name) = (&image, &label, guard.name(&worker.to_string()));
            scope.spawn(move || {
                for cycle in 0..25 {
                    let notify = NotifySocket::new();
                    let mut cmd = dockrun(&[
                        "--name",
                        &name,
                        "--label",
                        label,
                        "--network",
                        "none",
                        "--init",
                        image,
                        "sleep",
                        "600",
                    ]);
                    cmd.env("NOTIFY_SOCKET", notify.path());
                    let svc = Running::spawn(cmd);
                    notify.wait_for("READY=1", DEADLINE);
                    svc.signal(Signal::SIGTERM);
                    let ended = svc.wait(DEADLINE);
                    assert_eq!(ended.code, Some(0), "{name} cycle {cycle}: stderr: {}", ended.stderr);
                }
            });
        }
    });
    eprintln!("100 cycles in {:?}", started.elapsed());
    assert_eq!(guard.count(), 0, "no container left after 100 cycles");
}

#[test]
fn a_container_ignoring_sigterm_is_killed_after_the_stop_timeout_and_dockrun_exits_0() {
    let guard = Containers::new("ignoreterm");
    let (image, label, name) = (busybox_image(), guard.label(), guard.name("i"));
    let mut svc = Running::spawn(dockrun(&[
        "--name",
        &name,
        "--label",
        &label,
        "--stop-timeout",
        "1",
        &image,
        "sh",
        "-c",
        "trap '' TERM; echo up; while true; do sleep 0.05; done",
    ]));
    svc.wait_stdout("up");
    let asked = Instant::now();
    svc.signal(Signal::SIGTERM);
    let ended = svc.wait(DEADLINE);
    assert_eq!(ended.code, Some(0), "stderr: {}", ended.stderr);
    let took = asked.elapsed();
    assert!(took >= Duration::from_secs(1), "the engine waited the stop timeout: {took:?}");
    assert_eq!(guard.count(), 0);
}

#[test]
fn a_second_sigterm_kills_at_once() {
    let guard = Containers::new("secondterm");
    let (image, label, name) = (busybox_image(), guard.label(), guard.name("s"));
    let notify = NotifySocket::new();
    let mut cmd = dockrun(&[
        "--name",
        &name,
        "--label",
        &label,
        "--stop-timeout",
        "60",
        &image,
        "sh",
        "-c",
        "trap '' TERM; echo up; while true; do sleep 0.05; done",
    ]);
    cmd.env("NOTIFY_SOCKET", notify.path());
    let mut svc = Running::spawn(cmd);
    svc.wait_stdout("up");
    let asked = Instant::now();
    svc.signal(Signal::SIGTERM);
    notify.wait_for("STOPPING=1", DEADLINE);
    svc.signal(Signal::SIGTERM);
    let ended = svc.wait(DEADLINE);
    assert_eq!(ended.code, Some(0), "stderr: {}", ended.stderr);
    assert!(
        asked.elapsed() < Duration::from_secs(30),
        "did not wait the 60 s stop timeout: {:?}",
        asked.elapsed()
    );
    assert_eq!(guard.count(), 0);
}
