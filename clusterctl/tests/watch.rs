//! The leader of `schedule --watch` against a real etcd: it reads the
//! cluster once, then answers each change from memory. These tests check
//! what that must never cost: a machine's loss rewrites only what that
//! machine held, and every other kind of change (a start, a stop, a key
//! deleted by hand, a record no plan can follow) is answered as a full
//! round would answer it.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Env, Running};
use fleetkit_tests::wait::{wait_for, wait_until};

/// Every `assign/` key with its mod revision.
fn revisions(env: &Env) -> BTreeMap<String, i64> {
    let dir = format!("{}/assign/", env.prefix);
    let out = env.etcd.etcdctl().args(["get", "--prefix", "--write-out=fields", &dir]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let mut map = BTreeMap::new();
    let mut key = None;
    for line in text.lines() {
        if let Some(k) = line.strip_prefix("\"Key\" : ") {
            key = Some(k.trim_matches('"').to_owned());
        } else if let Some(rev) = line.strip_prefix("\"ModRevision\" : ") {
            if let Some(k) = key.take() {
                map.insert(k, rev.trim().parse().unwrap());
            }
        }
    }
    map
}

fn leader(env: &Env) -> Running {
    let s = env.spawn(&["schedule", "--watch", "--ttl", "3"]);
    env.wait_for_leader(Duration::from_secs(10));
    s
}

#[test]
fn a_lost_machine_rewrites_only_what_it_held() {
    let env = Env::new();
    let web = env.unit_file("web@.service", "[Service]\nExecStart=/bin/true\n");
    env.ok(&["submit", &web]);
    let mut machines = env.machines(4, 3);
    let scheduler = leader(&env);
    let names: Vec<String> = (1..=12).map(|i| format!("web@{i}.service")).collect();
    let mut args = vec!["start", "--no-block"];
    args.extend(names.iter().map(String::as_str));
    env.ok(&args);
    wait_until("12 units placed", Duration::from_secs(10), || env.assignments().len() == 12);
    let before = revisions(&env);

    let dying = machines[1].id.clone();
    let held: Vec<String> =
        env.assignments().into_iter().filter(|(_, ms)| ms.contains(&dying)).map(|(u, _)| u).collect();
    assert_eq!(held.len(), 3, "12 units on 4 machines: {:?}", env.assignments());
    machines[1].kill();
    wait_for("the lost machine's units placed elsewhere", Duration::from_secs(15), || {
        let a = env.assignments();
        (a.len() == 12 && a.values().all(|ms| ms.len() == 1 && !ms.contains(&dying))).then_some(())
    });
    let after = revisions(&env);
    for (key, rev) in &before {
        if !key.contains(&dying) {
            assert_eq!(after.get(key), Some(rev), "{key} was rewritten, yet its machine lives");
        }
    }
    let written: Vec<&String> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    assert_eq!(written.len(), held.len(), "exactly the lost machine's units were written: {written:?}");
    wait_until("the leader to say what it did", Duration::from_secs(5), || {
        scheduler.stderr().contains(&format!("machine {dying} gone at revision"))
    });
    let said = scheduler.stderr();
    assert!(said.contains("3 assigned, 3 removed"), "{said}");
}

#[test]
fn starts_stops_destroys_and_keys_deleted_by_hand_are_answered_from_memory() {
    let env = Env::new();
    let web = env.unit_file("web@.service", "[Service]\nExecStart=/bin/true\n");
    env.ok(&["submit", &web]);
    let _machines = env.machines(2, 30);
    let _scheduler = leader(&env);
    let key_of = |unit: &str| {
        let m = env.machine_of(unit).unwrap_or_else(|| panic!("{unit} is not assigned"));
        format!("{}/assign/{m}/{unit}", env.prefix)
    };
    let value_of = |key: &str| {
        let out = env.etcd.etcdctl().args(["get", "--print-value-only", key]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };

    env.ok(&["start", "--no-block", "web@1.service", "web@2.service"]);
    wait_until("both placed", Duration::from_secs(10), || env.assignments().len() == 2);
    let key = key_of("web@1.service");
    wait_until("launched", Duration::from_secs(5), || value_of(&key).contains("\"launched\""));

    env.ok(&["stop", "--no-block", "web@1.service"]);
    wait_until("the assignment to say loaded", Duration::from_secs(5), || {
        value_of(&key).contains("\"loaded\"")
    });

    // An operator deletes an assignment: the leader puts it back.
    let other = key_of("web@2.service");
    let del = env.etcd.etcdctl().args(["del", &other]).output().unwrap();
    assert!(del.status.success());
    wait_until("the deleted assignment restored", Duration::from_secs(5), || {
        env.machine_of("web@2.service").is_some()
    });

    env.ok(&["destroy", "web@1.service"]);
    wait_until("the destroyed unit's assignment gone", Duration::from_secs(5), || {
        env.machine_of("web@1.service").is_none()
    });
    assert!(env.machine_of("web@2.service").is_some());
}

#[test]
fn a_unit_record_no_plan_can_follow_is_skipped_and_the_rest_is_placed() {
    let env = Env::new();
    let web = env.unit_file("web@.service", "[Service]\nExecStart=/bin/true\n");
    env.ok(&["submit", &web]);
    let _machines = env.machines(2, 30);
    let scheduler = leader(&env);
    // Written past `submit`, which refuses it: it must run beside
    // web@1.service and may not.
    let bad = r#"{"name":"bad.service","template":null,"instance":null,"hash":"ab","text":"[Service]\nExecStart=/bin/true\n","constraints":{"machine_id":null,"machine_of":["web@1.service"],"machine_metadata":{},"conflicts":["web@*.service"],"global":false,"replaces":[]}}"#;
    env.put("/fleetkit/units/bad.service", bad, None);
    env.put("/fleetkit/desired/bad.service", "launched", None);
    wait_until("the leader to warn", Duration::from_secs(5), || {
        scheduler.stderr().contains("units/bad.service has rules no plan can follow")
    });
    env.ok(&["start", "--no-block", "web@1.service"]);
    wait_until("web@1 placed all the same", Duration::from_secs(5), || {
        env.machine_of("web@1.service").is_some()
    });
    assert_eq!(env.machine_of("bad.service"), None);
    drop(scheduler);
    wait_until("the election key gone", Duration::from_secs(10), || {
        let dir = format!("{}/election/", env.prefix);
        let out = env.etcd.etcdctl().args(["get", "--prefix", "--keys-only", &dir]).output().unwrap();
        out.stdout.iter().all(u8::is_ascii_whitespace)
    });
    let out = env.ok(&["schedule"]);
    assert!(out.contains("0 assigned, 0 removed"), "a full round finds nothing to change: {out}");
}
