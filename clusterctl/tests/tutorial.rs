//! The tutorial's scenario, end to end against a real etcd: submit the two
//! templates, four machines, start three instances, one schedule round.

mod common;

use std::time::{Duration, Instant};

use common::{tutorial_units, Env};

#[test]
fn tutorial_places_three_instances_on_three_machines_with_their_sidekicks() {
    let env = Env::new();
    env.submit_tutorial();
    let _machines = env.machines(4, 30);

    let out =
        env.ok(&["start", "--no-block", "node-etcd@1.service", "node-etcd@2.service", "node-etcd@3.service"]);
    // Each instance and the sidekick its Requires= names are created.
    for u in tutorial_units() {
        assert!(out.contains(&format!("Unit {u} inactive")), "{out}");
    }

    let round = env.ok(&["schedule"]);
    assert!(round.contains("6 assigned"), "{round}");

    let assign = env.assignments();
    let mut used = std::collections::BTreeSet::new();
    for i in 1..=3 {
        let m = env.machine_of(&format!("node-etcd@{i}.service")).expect("instance placed");
        assert_eq!(assign[&format!("node-etcd@{i}.service")].len(), 1);
        assert_eq!(
            env.machine_of(&format!("node-etcd-discovery@{i}.service")),
            Some(m.clone()),
            "sidekick beside its unit"
        );
        used.insert(m);
    }
    assert_eq!(used.len(), 3, "three instances on three different machines");

    let files = env.ok(&["list-unit-files", "--no-legend", "--fields", "unit,dstate"]);
    for u in tutorial_units() {
        assert!(
            files.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == [u.as_str(), "launched"]),
            "{files}"
        );
    }
    // A second round changes nothing.
    assert!(env.ok(&["schedule"]).contains("0 assigned, 0 removed"));
}

#[test]
fn starting_more_instances_than_machines_fails_fast_with_the_reason() {
    let env = Env::new();
    env.submit_tutorial();
    let _machines = env.machines(4, 30);
    env.ok(&["start", "--no-block", "node-etcd@1.service", "node-etcd@2.service", "node-etcd@3.service"]);
    env.ok(&["schedule"]);

    let t = Instant::now();
    // Blocking start: without the fail-fast check this would wait for ever.
    let out = env.ctl(&["start", "node-etcd@4.service", "node-etcd@5.service"]);
    let took = t.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(err.contains("cannot place node-etcd@5.service: "), "{err}");
    assert!(err.contains("node-etcd@*.service"), "reason names the rule: {err}");
    assert!(err.contains("nothing was started"), "says the others were not started: {err}");
    // Nothing was written: node-etcd@4 was not started either.
    let files = env.ok(&["list-unit-files", "--no-legend", "--fields", "unit"]);
    assert!(!files.contains("node-etcd@4.service"), "{files}");
}

#[test]
fn blocking_start_says_when_no_scheduler_runs_and_gives_up_after_attempts() {
    let env = Env::new();
    env.submit_tutorial();
    let _machines = env.machines(2, 30);
    let out = env.ctl(&["start", "--block-attempts", "4", "node-etcd@1.service"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no scheduler is running"), "{err}");
    assert!(err.contains("gave up after 4 attempts"), "{err}");
}

#[test]
fn start_blocks_until_the_scheduler_places_units_then_stop_unload_destroy() {
    let env = Env::new();
    env.submit_tutorial();
    let _machines = env.machines(4, 30);
    let _scheduler = env.spawn(&["schedule", "--watch", "--ttl", "3"]);
    env.wait_for_leader(Duration::from_secs(10));

    let out = env.ok(&["start", "--block-attempts", "40", "node-etcd@1.service"]);
    assert!(out.contains("Unit node-etcd@1.service launched on 1c1eed63.../172.17.8.101"), "{out}");
    // A one-shot round leaves the work to the running leader.
    assert!(env.ok(&["schedule"]).contains("nothing to do"));
    assert!(out.contains("Unit node-etcd-discovery@1.service launched on 1c1eed63.../172.17.8.101"), "{out}");

    let out = env.ok(&["stop", "--block-attempts", "40", "node-etcd@1.service"]);
    assert!(out.contains("Unit node-etcd@1.service loaded on"), "{out}");
    let out =
        env.ok(&["unload", "--block-attempts", "40", "node-etcd@1.service", "node-etcd-discovery@1.service"]);
    assert!(out.contains("Unit node-etcd@1.service inactive"), "{out}");
    assert!(env.machine_of("node-etcd@1.service").is_none());

    let out = env.ok(&["destroy", "node-etcd@1.service"]);
    assert_eq!(out, "Destroyed node-etcd@1.service\n");
    assert_eq!(
        env.ctl(&["destroy", "node-etcd@1.service"]).status.code(),
        Some(2),
        "not submitted is bad input, as from every verb"
    );
    let cat = env.ok(&["cat", "node-etcd@7.service"]);
    assert!(cat.contains("Requires=node-etcd-discovery@7.service"), "{cat}");
}

#[test]
fn submit_refuses_other_contents_under_a_submitted_name_and_bad_names() {
    let env = Env::new();
    env.submit_tutorial();
    // The same contents again: fine.
    let a = env.unit_file("node-etcd@.service", common::NODE_ETCD);
    env.ok(&["submit", &a]);
    let changed =
        env.unit_file("node-etcd@.service", &format!("{}\n[Service]\nUser=app\n", common::NODE_ETCD));
    let out = env.ctl(&["submit", &changed]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("clusterctl destroy node-etcd@.service"));
    let bad = env.unit_file("no suffix", "[Unit]\n");
    assert_eq!(env.ctl(&["submit", &bad]).status.code(), Some(2));
    let out = env.ctl(&["start", "--no-block", "missing@1.service"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("submit"));
}

#[test]
fn assignments_carry_the_desired_state_and_an_earlier_layout_is_rewritten() {
    let env = Env::new();
    env.submit_tutorial();
    let _machines = env.machines(2, 30);
    env.ok(&["start", "--no-block", "node-etcd@1.service"]);
    env.ok(&["schedule"]);
    let m = env.machine_of("node-etcd@1.service").expect("placed");
    let key = format!("{}/assign/{m}/node-etcd@1.service", env.prefix);
    let value = || {
        let out = env.etcd.etcdctl().args(["get", "--print-value-only", &key]).output().unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout).ok()
    };
    let hash = env
        .ok(&["list-unit-files", "--json"])
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["unit"] == "node-etcd@1.service")
        .and_then(|v| v["hash"].as_str().map(str::to_owned))
        .expect("the unit's hash");
    assert_eq!(value(), Some(serde_json::json!({"hash": hash, "state": "launched"})));

    // A stop changes the state in the same key: only that machine hears of it.
    env.ok(&["stop", "--no-block", "node-etcd@1.service"]);
    env.ok(&["schedule"]);
    assert_eq!(value(), Some(serde_json::json!({"hash": hash, "state": "loaded"})));

    // An earlier fleetkit's value (the bare hash) is rewritten, and nothing moves.
    env.put(&key, &hash, None);
    env.ok(&["schedule"]);
    assert_eq!(value(), Some(serde_json::json!({"hash": hash, "state": "loaded"})));
    assert_eq!(env.machine_of("node-etcd@1.service"), Some(m));
}
