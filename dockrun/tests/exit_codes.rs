//! Output and exit codes as `docker run` gives them: the container's streams
//! and code pass through, 126/127 when its command cannot start, 125 when
//! the engine or a flag is at fault.

mod support;

use fleetkit_tests::docker::{busybox_image, Containers};
use fleetkit_tests::port::free_port;
use support::{dockrun, run, Running, DEADLINE};

#[test]
fn stdout_and_stderr_go_to_their_own_streams_and_the_code_passes_through() {
    let guard = Containers::new("streams");
    let ended = run(&[
        "--label",
        &guard.label(),
        &busybox_image(),
        "sh",
        "-c",
        "echo out1; echo err1 >&2; echo out2; exit 3",
    ]);
    assert_eq!(ended.code, Some(3), "stderr: {}", ended.stderr);
    assert_eq!(ended.stdout, "out1\nout2\n");
    assert_eq!(ended.stderr, "err1\n");
    assert_eq!(guard.count(), 0, "removed after exiting by itself");
}

#[test]
fn no_output_is_lost_at_exit() {
    let guard = Containers::new("volume");
    let ended = run(&["--label", &guard.label(), &busybox_image(), "seq", "1", "20000"]);
    assert_eq!(ended.code, Some(0), "stderr: {}", ended.stderr);
    let lines: Vec<&str> = ended.stdout.lines().collect();
    assert_eq!(lines.len(), 20000);
    assert_eq!(lines.last(), Some(&"20000"));
}

#[test]
fn env_workdir_user_and_entrypoint_reach_the_container() {
    let guard = Containers::new("flags");
    let dir = tempfile::tempdir().expect("temp dir");
    let env_file = dir.path().join("env");
    std::fs::write(&env_file, "# comment\nFROM_FILE=yes\n").expect("write env file");
    let env_file = env_file.to_str().expect("utf-8 path");
    let ended = run(&[
        "--label",
        &guard.label(),
        "-e",
        "A=1",
        "--env-file",
        env_file,
        "-w",
        "/tmp",
        "-u",
        "65534",
        "--entrypoint",
        "sh",
        &busybox_image(),
        "-c",
        "echo $A $FROM_FILE $(pwd) $(id -u)",
    ]);
    assert_eq!(ended.code, Some(0), "stderr: {}", ended.stderr);
    assert_eq!(ended.stdout, "1 yes /tmp 65534\n");
}

#[test]
fn a_missing_command_gives_127() {
    let guard = Containers::new("notfound");
    let ended = run(&["--label", &guard.label(), &busybox_image(), "no-such-command"]);
    assert_eq!(ended.code, Some(127), "stderr: {}", ended.stderr);
    assert!(ended.stderr.contains("dockrun: cannot start container"), "{}", ended.stderr);
    assert!(ended.stderr.contains("check that the command exists"), "{}", ended.stderr);
    assert_eq!(guard.count(), 0, "the failed container is removed");
}

#[test]
fn a_non_executable_command_gives_126() {
    let guard = Containers::new("noexec");
    let ended = run(&["--label", &guard.label(), &busybox_image(), "/etc/not-executable"]);
    assert_eq!(ended.code, Some(126), "stderr: {}", ended.stderr);
    assert!(ended.stderr.contains("permission denied"), "{}", ended.stderr);
    assert_eq!(guard.count(), 0);
}

#[test]
fn an_unreachable_engine_gives_125_and_says_what_to_check() {
    for host in ["unix:///nonexistent/docker.sock".to_owned(), format!("tcp://127.0.0.1:{}", free_port())] {
        let mut cmd = dockrun(&[&busybox_image(), "true"]);
        cmd.env("DOCKER_HOST", &host);
        let ended = Running::spawn(cmd).wait(DEADLINE);
        assert_eq!(ended.code, Some(125), "{host}: stderr: {}", ended.stderr);
        assert!(ended.stderr.starts_with("dockrun: cannot reach the Docker engine"), "{}", ended.stderr);
        assert!(
            ended.stderr.contains(&format!("is the Docker engine running? DOCKER_HOST={host}")),
            "{}",
            ended.stderr
        );
    }
}

#[test]
fn bad_flags_give_125() {
    let ended = run(&["--no-such-flag", "img"]);
    assert_eq!(ended.code, Some(125), "stderr: {}", ended.stderr);
    let ended = run(&["-p", "http", &busybox_image()]);
    assert_eq!(ended.code, Some(125), "stderr: {}", ended.stderr);
    assert!(ended.stderr.contains("-p \"http\""), "{}", ended.stderr);
}

#[test]
fn help_and_version_exit_0() {
    let ended = run(&["--help"]);
    assert_eq!(ended.code, Some(0));
    assert!(ended.stdout.contains("EXAMPLES"), "{}", ended.stdout);
    let ended = run(&["--version"]);
    assert_eq!(ended.code, Some(0));
    assert!(ended.stdout.starts_with("dockrun "), "{}", ended.stdout);
}

#[test]
fn an_empty_or_invalid_name_is_refused_with_the_rule() {
    for name in ["", "a", "-x", "web/1", "bad\u{1b}[31mname"] {
        let ended = run(&[&format!("--name={name}"), &busybox_image(), "true"]);
        assert_eq!(ended.code, Some(125), "{name:?}: stderr: {}", ended.stderr);
        assert!(ended.stderr.contains("--name"), "{name:?}: {}", ended.stderr);
        assert!(ended.stderr.contains("[a-zA-Z0-9][a-zA-Z0-9_.-]"), "{name:?}: {}", ended.stderr);
        assert!(!ended.stderr.contains('\u{1b}'), "control bytes are escaped: {:?}", ended.stderr);
    }
}

#[test]
fn control_bytes_in_flags_are_escaped_in_messages() {
    let image = busybox_image();
    let cases: [&[&str]; 4] = [
        &["-p", "80\u{1b}[2J", &image],
        &["--memory", "1\u{7}g", &image],
        &["-e", "A\nB=1", &image],
        // Goes to the engine, whose message and dockrun's both name the image.
        &["--pull", "never", "no\u{1b}[2Jsuch\nimage"],
    ];
    for args in cases {
        let ended = run(args);
        assert_eq!(ended.code, Some(125), "{args:?}: stderr: {}", ended.stderr);
        assert!(!ended.stderr.chars().any(|c| c.is_control() && c != '\n'), "{args:?}: {:?}", ended.stderr);
        assert!(!ended.stderr.contains("such\nimage"), "a newline cannot start a line: {:?}", ended.stderr);
    }
}
