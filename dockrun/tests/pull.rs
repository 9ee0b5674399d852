//! Pull policies against a registry on loopback, and an image that does not exist.

mod support;

use fleetkit_tests::docker::{busybox_image, docker, Containers, Registry};
use support::run;

fn present(image: &str) -> bool {
    docker(&["image", "inspect", image]).status.success()
}

#[test]
fn each_pull_policy_against_a_local_registry() {
    let registry = Registry::start();
    let guard = Containers::new("pull");
    let label = guard.label();
    let image = registry.push_with_new_layer(&busybox_image(), "dockrun/pull");
    assert!(!present(&image));

    // never: not present, so an error that says what to do.
    let ended = run(&["--label", &label, "--pull", "never", &image, "echo", "hi"]);
    assert_eq!(ended.code, Some(125), "stderr: {}", ended.stderr);
    assert!(ended.stderr.contains("--pull never"), "{}", ended.stderr);
    assert!(!present(&image));

    // missing (the default): pulls, one line per layer when stderr is not a TTY.
    let ended = run(&["--label", &label, &image, "echo", "hi"]);
    assert_eq!(ended.code, Some(0), "stderr: {}", ended.stderr);
    assert_eq!(ended.stdout, "hi\n");
    assert!(ended.stderr.contains(&format!("dockrun: pulling {image}")), "{}", ended.stderr);
    assert!(ended.stderr.contains(": Pull complete"), "{}", ended.stderr);
    assert!(present(&image));

    // missing again: present, so no pull.
    let ended = run(&["--label", &label, "--pull", "missing", &image, "echo", "hi"]);
    assert_eq!(ended.code, Some(0), "stderr: {}", ended.stderr);
    assert_eq!(ended.stderr, "", "no pull when present");

    // never with the image present: runs.
    let ended = run(&["--label", &label, "--pull", "never", &image, "echo", "hi"]);
    assert_eq!(ended.code, Some(0), "stderr: {}", ended.stderr);

    // always: pulls even when present.
    let ended = run(&["--label", &label, "--pull", "always", &image, "echo", "hi"]);
    assert_eq!(ended.code, Some(0), "stderr: {}", ended.stderr);
    assert!(ended.stderr.contains(&format!("dockrun: pulling {image}")), "{}", ended.stderr);
    assert_eq!(guard.count(), 0);
}

#[test]
fn an_image_that_does_not_exist_gives_125_and_a_clear_message() {
    let registry = Registry::start();
    let image = format!("{}/dockrun/no-such-image:1", registry.addr());
    for policy in ["missing", "always"] {
        let ended = run(&["--pull", policy, &image, "true"]);
        assert_eq!(ended.code, Some(125), "stderr: {}", ended.stderr);
        assert!(ended.stderr.contains(&format!("dockrun: cannot pull image {image}")), "{}", ended.stderr);
        assert!(ended.stderr.contains("check the image name and tag"), "{}", ended.stderr);
    }
}

#[test]
fn on_a_terminal_layers_get_progress_bars() {
    let registry = Registry::start();
    let guard = Containers::new("pull-tty");
    let image = registry.push_with_new_layer(&busybox_image(), "dockrun/pull-tty");
    // script(1) gives dockrun a pseudo-terminal for stdout and stderr.
    let line = format!("{} --label {} {image} echo hi", env!("CARGO_BIN_EXE_dockrun"), guard.label());
    let out = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run script(1)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains(&format!("pulling {image}")), "{text}");
    assert!(!text.contains("dockrun: pulling"), "no plain log lines on a terminal: {text}");
    assert!(text.contains("Pull complete") && text.contains("] "), "a finished bar: {text}");
    assert!(text.contains("hi"), "{text}");
    assert_eq!(guard.count(), 0);
}
