//! Machines dying and schedulers dying, against a real etcd.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use common::{AssignWatch, Env};
use fleetkit_tests::wait::{wait_for, wait_until};

const MACHINE_TTL: u32 = 3;

#[test]
fn an_instance_and_its_sidekick_move_together_within_ttl_plus_two_seconds() {
    let env = Env::new();
    env.submit_tutorial();
    let mut machines = env.machines(4, MACHINE_TTL);
    let _scheduler = env.spawn(&["schedule", "--watch", "--ttl", "3"]);
    env.wait_for_leader(Duration::from_secs(10));
    env.ok(&[
        "start",
        "--block-attempts",
        "40",
        "node-etcd@1.service",
        "node-etcd@2.service",
        "node-etcd@3.service",
    ]);

    let before = env.machine_of("node-etcd@1.service").unwrap();
    let used: BTreeSet<String> =
        (1..=3).map(|i| env.machine_of(&format!("node-etcd@{i}.service")).unwrap()).collect();
    let free = machines.iter().map(|m| m.id.clone()).find(|id| !used.contains(id)).unwrap();

    let dying = machines.iter_mut().find(|m| m.id == before).unwrap();
    dying.kill();
    let ((), took) =
        wait_for("node-etcd@1 and its sidekick on the free machine", Duration::from_secs(15), || {
            let a = env.assignments();
            let on = |u: &str| a.get(u).cloned().unwrap_or_default();
            let want: BTreeSet<String> = [free.clone()].into();
            (on("node-etcd@1.service") == want && on("node-etcd-discovery@1.service") == want).then_some(())
        });
    assert!(
        took <= Duration::from_secs(u64::from(MACHINE_TTL) + 2),
        "moved after {took:?}, more than TTL + 2 s"
    );
    // The others stayed where they were.
    for i in 2..=3 {
        assert!(used.contains(&env.machine_of(&format!("node-etcd@{i}.service")).unwrap()));
    }
    let table = env.ok(&["list-units", "--no-legend", "--fields", "unit,machine"]);
    assert!(table.contains(&format!("node-etcd@1.service\t\t{}...", &free[..8])), "{table}");
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill").args([sig, &pid.to_string()]).status().unwrap().success();
    assert!(ok, "kill {sig} {pid}");
}

#[test]
fn a_follower_takes_over_and_no_unit_is_ever_on_two_machines() {
    let env = Env::new();
    env.submit_tutorial();
    let watch = AssignWatch::start(|| env.etcd.etcdctl(), &env.prefix);
    let mut machines = env.machines(4, MACHINE_TTL);

    let mut a = env.spawn(&["schedule", "--watch", "--ttl", "2"]);
    let leader = env.wait_for_leader(Duration::from_secs(10));
    assert!(leader.ends_with(&format!(":{}", a.pid())), "{leader}");
    let b = env.spawn(&["schedule", "--watch", "--ttl", "2"]);

    env.ok(&[
        "start",
        "--block-attempts",
        "40",
        "node-etcd@1.service",
        "node-etcd@2.service",
        "node-etcd@3.service",
    ]);
    let first = env.machine_of("node-etcd@1.service").unwrap();

    // The leader dies without resigning; the follower takes over when its
    // lease ends, and acts: machine of node-etcd@1 dies, the unit moves.
    a.kill();
    wait_until("the follower to lead", Duration::from_secs(10), || {
        env.wait_for_leader(Duration::from_secs(10)).ends_with(&format!(":{}", b.pid()))
    });
    machines.iter_mut().find(|m| m.id == first).unwrap().kill();
    wait_until("node-etcd@1 to move", Duration::from_secs(15), || {
        env.machine_of("node-etcd@1.service").is_some_and(|m| m != first)
            && env.machine_of("node-etcd-discovery@1.service") == env.machine_of("node-etcd@1.service")
    });
    assert!(b.stderr().contains("leads"), "{}", b.stderr());
    assert!(watch.events() > 10, "the watch saw 6 assignments and a move of 2");
    assert_eq!(watch.violations(), Vec::<String>::new());
}

#[test]
fn a_paused_leader_that_lost_its_lease_writes_nothing_when_it_wakes() {
    let env = Env::new();
    env.submit_tutorial();
    let watch = AssignWatch::start(|| env.etcd.etcdctl(), &env.prefix);
    let _machines = env.machines(4, 30);

    let a = env.spawn(&["schedule", "--watch", "--ttl", "2"]);
    env.wait_for_leader(Duration::from_secs(10));
    let b = env.spawn(&["schedule", "--watch", "--ttl", "2"]);
    env.ok(&["start", "--block-attempts", "40", "node-etcd@1.service"]);

    signal(a.pid(), "-STOP");
    wait_until("the follower to lead", Duration::from_secs(10), || {
        env.wait_for_leader(Duration::from_secs(10)).ends_with(&format!(":{}", b.pid()))
    });
    env.ok(&["start", "--block-attempts", "40", "node-etcd@2.service"]);
    signal(a.pid(), "-CONT");
    wait_until("the old leader to notice", Duration::from_secs(10), || a.stderr().contains("lost the lead"));
    env.ok(&["start", "--block-attempts", "40", "node-etcd@3.service"]);
    let assign = env.assignments();
    for i in 1..=3 {
        assert_eq!(assign[&format!("node-etcd@{i}.service")].len(), 1);
    }
    assert_eq!(watch.violations(), Vec::<String>::new());
}

#[test]
fn every_verb_works_with_a_dead_member_first_among_the_endpoints() {
    let mut etcd = fleetkit_tests::etcd::EtcdCluster::three();
    let endpoints = etcd.endpoints_arg();
    etcd.member(0).kill();
    for _ in 0..10 {
        let out = Command::new(fleetkit_tests::bin::tool("clusterctl"))
            .args(["--endpoints", &endpoints, "list-machines"])
            .output()
            .expect("run clusterctl");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn reads_and_writes_right_after_the_leader_member_dies_succeed() {
    // The requests meet the election that follows ("leader changed", "no
    // leader"), which is etcd being briefly unavailable, not a failure.
    let mut etcd = fleetkit_tests::etcd::EtcdCluster::three();
    let endpoints = etcd.endpoints_arg();
    let leader = etcd.wait_leader(None, Duration::from_secs(10));
    etcd.member(leader).kill();
    let unit = std::env::temp_dir().join(format!("fk-failover-{}.service", std::process::id()));
    std::fs::write(&unit, "[Service]\nExecStart=/bin/true\n").unwrap();
    for args in [
        vec!["list-machines"],
        vec!["submit", unit.to_str().unwrap()],
        vec!["list-unit-files"],
        vec!["destroy", unit.file_name().unwrap().to_str().unwrap()],
    ] {
        let out = Command::new(fleetkit_tests::bin::tool("clusterctl"))
            .args(["--endpoints", &endpoints, "--prefix", "/fk-failover"])
            .args(&args)
            .output()
            .expect("run clusterctl");
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let _ = std::fs::remove_file(&unit);
}
