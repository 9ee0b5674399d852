//! The agent and the scheduler under the roles `grant-machine` and
//! `grant-scheduler` create, on the machine lab with etcd auth on: each
//! machine logs in as itself, and everything still works.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use fleetkit_tests::bin::tool;
use fleetkit_tests::lab::Lab;
use fleetkit_tests::wait::wait_until;

const AGENT_UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/units/fleetkit-agent.service");
const ROOT: &str = "root:lab-root-secret";

fn clusterctl(lab: &Lab, user: &str, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(tool("clusterctl"))
        .args(["--endpoints", &lab.endpoints(), "--user", user])
        .args(args)
        .env_remove("ETCDCTL_ENDPOINTS")
        .env_remove("FLEETKIT_PREFIX")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run clusterctl");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    child.wait_with_output().expect("wait for clusterctl")
}

fn ok(lab: &Lab, user: &str, args: &[&str], stdin: &str) -> String {
    let out = clusterctl(lab, user, args, stdin);
    assert!(out.status.success(), "clusterctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn agents_and_the_scheduler_work_under_their_own_roles_alone() {
    let lab = Lab::new().machines(2).etcd(1).start();
    let password = ROOT.split_once(':').map(|(_, p)| p).unwrap_or_default();
    for step in [
        vec!["user", "add", &*format!("root:{password}"), "--interactive=false"],
        vec!["user", "grant-role", "root", "root"],
        vec!["auth", "enable"],
    ] {
        let out = lab.etcdctl().args(&step).output().expect("etcdctl");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() || err.contains("already"), "etcdctl {step:?}: {err}");
    }
    for m in lab.machines() {
        let pw = format!("pw-{}", &m.id()[..8]);
        ok(&lab, ROOT, &["grant-machine", m.id(), "--password-stdin"], &format!("{pw}\n"));
        let dropin = format!(
            "mkdir -p /etc/systemd/system/fleetkit-agent.service.d && printf \
             '[Service]\\nEnvironment=ETCDCTL_USER=fleetkit-machine-{}:{pw}\\n' > \
             /etc/systemd/system/fleetkit-agent.service.d/login.conf",
            m.id()
        );
        assert!(m.sh(&dropin).status.success());
        m.install_unit(Path::new(AGENT_UNIT));
        m.systemctl(&["daemon-reload"]);
        m.systemctl(&["enable", "--now", "fleetkit-agent.service"]);
    }
    ok(&lab, ROOT, &["grant-scheduler", "host", "--password-stdin"], "pw-sched\n");
    let mut scheduler = Command::new(tool("clusterctl"))
        .args(["--endpoints", &lab.endpoints(), "--user", "fleetkit-scheduler-host:pw-sched"])
        .args(["schedule", "--watch", "--ttl", "3"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the scheduler");
    wait_until("both agents' records", Duration::from_secs(30), || {
        ok(&lab, ROOT, &["list-machines", "--no-legend"], "").lines().count() == 2
    });

    let dir = tempfile::tempdir().expect("temp dir");
    let unit = dir.path().join("solo.service");
    std::fs::write(&unit, "[Service]\nExecStart=/bin/sleep infinity\n").expect("write");
    let out = ok(&lab, ROOT, &["start", unit.to_str().expect("utf-8")], "");
    assert!(out.contains("Unit solo.service launched on"), "{out}");
    let table = ok(&lab, ROOT, &["list-units", "--no-legend", "--full"], "");
    let first = lab.machines().iter().find(|m| table.contains(m.id())).expect("solo on a machine").clone();
    assert!(table.contains("active\trunning"), "the machine reported under its role: {table}");

    // Its machine dies: the scheduler, under its role, moves it; the other
    // agent, under its own, runs it.
    first.kill();
    wait_until("solo active on the other machine", Duration::from_secs(40), || {
        let t = ok(&lab, ROOT, &["list-units", "--no-legend", "--full"], "");
        t.contains("active\trunning") && !t.contains(first.id())
    });
    for m in lab.machines().iter().filter(|m| m.id() != first.id()) {
        let log = m.journal(&["-u", "fleetkit-agent.service"]);
        assert!(!log.contains("permission denied"), "the agent met a refusal: {log}");
    }
    let _ = scheduler.kill();
    let _ = scheduler.wait();
}
