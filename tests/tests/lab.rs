//! The machine lab is what the agent, failover and partition tests stand on:
//! machines that boot systemd at their own addresses with their own Docker
//! engines and sshd, run units that pull from the lab registry, reach a
//! three-member etcd that survives its leader, lose it when cut off, and
//! leave nothing behind, even after a panic or a killed run.

use std::collections::HashSet;
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use fleetkit_tests::docker::{docker, http_get, INDEX_HTML};
use fleetkit_tests::lab::{Lab, Machine, LABEL};
use fleetkit_tests::wait::wait_until;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// What the engine still holds with `label`: containers, networks, volumes.
fn left_with(label: &str) -> Vec<String> {
    let filter = format!("label={label}");
    let mut left = Vec::new();
    for what in [&["ps", "-aq"][..], &["network", "ls", "-q"], &["volume", "ls", "-q"]] {
        let mut args = what.to_vec();
        args.extend(["--filter", &filter]);
        left.extend(stdout(&docker(&args)).lines().map(|l| format!("{} {l}", what[0])));
    }
    left
}

fn reachable(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

/// A unit on `m` that runs the test image from the lab registry with
/// dockrun, publishing port 3000 as the tutorial's app does.
fn start_web_unit(lab: &Lab, m: &Machine) {
    let unit = format!(
        "[Service]\nType=notify\nNotifyAccess=main\n\
         ExecStart=/usr/local/bin/dockrun --name web -p 3000:3000 --pull always {} httpd -f -p 3000 -h /www\n",
        lab.image()
    );
    let script = format!(
        "cat > /run/systemd/system/lab-web.service <<'EOF'\n{unit}EOF\nsystemctl daemon-reload && systemctl start lab-web.service"
    );
    let out = m.sh(&script);
    assert!(
        out.status.success(),
        "start lab-web.service on {}: {}\n{}",
        m.hostname(),
        String::from_utf8_lossy(&out.stderr),
        m.journal(&["-u", "lab-web.service"])
    );
}

#[test]
fn four_machines_boot_with_their_own_address_engine_and_sshd_and_run_units_from_the_registry() {
    let lab = Lab::new().machines(4).etcd(3).start();
    let machines = lab.machines();
    assert_eq!(machines.len(), 4);

    let mut engines = HashSet::new();
    let mut ips = HashSet::new();
    for m in machines {
        // Booted with no failed unit: nothing is expected to fail in a lab machine.
        assert_eq!(
            m.system_state(),
            "running",
            "{}: {}",
            m.hostname(),
            stdout(&m.exec(&["systemctl", "--failed"]))
        );
        assert_eq!(stdout(&m.exec(&["cat", "/etc/machine-id"])), m.id());
        let eth0 = stdout(&m.exec(&["ip", "-4", "-br", "addr", "show", "dev", "eth0"]));
        assert!(eth0.contains(&format!(" {}/24", m.ip())), "{}: {eth0}", m.hostname());
        assert!(ips.insert(m.ip()), "{} shares its IP", m.hostname());
        let engine = stdout(&m.exec(&["docker", "info", "--format", "{{.ID}}"]));
        assert!(!engine.is_empty() && engines.insert(engine), "{} has an engine of its own", m.hostname());
        let env = stdout(&m.exec(&["cat", "/etc/environment"]));
        assert!(env.contains(&format!("COREOS_PUBLIC_IPV4={}", m.ip())), "{env}");
        assert!(env.contains(&format!("COREOS_PRIVATE_IPV4={}", m.ip())), "{env}");

        // From the host, at its own address, with the lab's key.
        let out = lab.ssh(m).args(["cat", "/etc/machine-id"]).output().expect("run ssh");
        assert!(out.status.success(), "ssh to {}: {}", m.ip(), String::from_utf8_lossy(&out.stderr));
        assert_eq!(stdout(&out), m.id());
        // fleetkit's binaries are on PATH, read-only.
        let out = m.exec(&["dockrun", "--version"]);
        assert!(out.status.success() && stdout(&out).starts_with("dockrun "), "{out:?}");
        assert!(!m.exec(&["touch", "/opt/fleetkit/bin/dockrun"]).status.success(), "binaries are read-only");
    }

    for m in machines {
        start_web_unit(&lab, m);
    }
    for m in machines {
        let addr = format!("{}:3000", m.ip());
        let page = http_get(&addr, "/").unwrap_or_else(|| panic!("nothing answers on {addr}"));
        assert!(page.starts_with("HTTP/1.1 200") && page.ends_with(INDEX_HTML), "{addr}: {page}");
        // Pulled from the lab registry by this machine's own engine.
        let images = stdout(&m.exec(&["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"]));
        assert_eq!(images, lab.image(), "{}", m.hostname());
        assert_eq!(stdout(&m.exec(&["docker", "ps", "-q"])).lines().count(), 1);
    }
}

#[test]
fn etcd_keeps_quorum_without_its_leader_and_a_cut_off_machine_loses_it() {
    let lab = Lab::new().machines(2).etcd(3).start();
    let health = lab.etcdctl().args(["endpoint", "health"]).output().expect("etcdctl");
    assert!(health.status.success(), "{}", String::from_utf8_lossy(&health.stderr));
    for m in lab.machines() {
        // With the endpoints /etc/environment gives, as units would.
        let out = m.sh("etcdctl endpoint health && etcdctl put /lab/from-$(hostname) yes");
        assert!(out.status.success(), "etcd from {}: {}", m.hostname(), String::from_utf8_lossy(&out.stderr));
    }

    let leader = lab.wait_leader(None, Duration::from_secs(10));
    lab.etcd()[leader].kill();
    let put_works =
        || lab.etcdctl().args(["put", "/lab/after-leader", "yes"]).output().is_ok_and(|o| o.status.success());
    wait_until("a put after the leader was killed", Duration::from_secs(10), put_works);
    let new_leader = lab.wait_leader(Some(leader), Duration::from_secs(10));
    assert_ne!(new_leader, leader);

    // A paused member (a hung host) does not stop the quorum either.
    let other = (0..3).find(|i| *i != leader && *i != new_leader).expect("a third member");
    lab.etcd()[other].pause();
    lab.etcd()[other].unpause();
    lab.etcd()[leader].start();
    wait_until("all three members healthy again", Duration::from_secs(20), || {
        lab.etcdctl().args(["endpoint", "health"]).output().is_ok_and(|o| o.status.success())
    });

    // Cut off: the machine reaches no etcd and the host does not reach it.
    let m = &lab.machines()[0];
    let ssh = SocketAddr::from((m.ip(), 22));
    assert!(reachable(ssh));
    m.disconnect();
    let out = m.sh("etcdctl --dial-timeout=1s --command-timeout=2s put /lab/cut-off yes");
    assert!(!out.status.success(), "a disconnected machine still reaches etcd");
    assert!(!reachable(ssh), "the host still reaches a disconnected machine");
    assert!(m.is_running(), "disconnecting does not stop the machine");
    m.reconnect();
    wait_until("the reconnected machine to reach etcd", Duration::from_secs(10), || {
        m.sh("etcdctl --dial-timeout=1s --command-timeout=2s put /lab/back yes").status.success()
    });
    assert!(reachable(ssh));

    // Killed and started again: a fresh boot at the same address.
    m.kill();
    assert!(!m.is_running());
    m.start();
    assert_eq!(m.system_state(), "running");
    assert!(m.sh("etcdctl get /lab/back --print-value-only").status.success());
}

#[test]
fn a_panicking_test_leaves_nothing_of_its_lab() {
    let (tx, rx) = std::sync::mpsc::channel();
    let panicked = std::thread::spawn(move || {
        let lab = Lab::new().start();
        tx.send(lab.label()).expect("send the label");
        panic!("a test that fails with a lab up");
    })
    .join();
    assert!(panicked.is_err());
    let label = rx.recv().expect("the lab started");
    assert_eq!(left_with(&label), Vec::<String>::new());
}

#[test]
fn a_lab_left_by_a_killed_run_is_removed_by_the_next_and_down_removes_one() {
    let cli = env!("CARGO_BIN_EXE_fleetkit-lab");
    let up = |owner: u32| {
        let out = Command::new(cli)
            .args(["up", "--machines", "1", "--etcd", "1", "--owner", &owner.to_string()])
            .arg("--bin")
            .arg(fleetkit_tests::bin::dir())
            .stdin(Stdio::null())
            .output()
            .expect("run fleetkit-lab up");
        assert!(out.status.success(), "fleetkit-lab up: {}", String::from_utf8_lossy(&out.stderr));
        let text = stdout(&out);
        let name = text.lines().find_map(|l| l.strip_prefix("LAB=")).expect("LAB= line").to_owned();
        assert!(text.contains("ETCDCTL_ENDPOINTS=http://"), "{text}");
        format!("{LABEL}={name}")
    };

    // A run whose owner is alive, removed by `down`.
    let kept = up(std::process::id());
    assert!(!left_with(&kept).is_empty());
    let name = kept.trim_start_matches(&format!("{LABEL}="));
    assert!(Command::new(cli).args(["down", name]).status().expect("fleetkit-lab down").success());
    assert_eq!(left_with(&kept), Vec::<String>::new());

    // A run whose owner dies without cleaning up.
    let mut owner = Command::new("sleep").arg("600").spawn().expect("start an owner process");
    let orphan = up(owner.id());
    assert!(!left_with(&orphan).is_empty());
    let _ = owner.kill();
    let _ = owner.wait();
    let next = Lab::new().start();
    assert_eq!(left_with(&orphan), Vec::<String>::new(), "the next lab removed the leftover");
    assert!(!left_with(&next.label()).is_empty());
}
