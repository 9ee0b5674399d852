//! What a hostile but realistic user, or a corrupted etcd, can present:
//! bad records, bad desired values, machine records that are not machines,
//! bad prefixes, oversized units, verbs on units that are not there. Each
//! test here failed before the fix it pins.

mod common;

use std::time::Duration;

use common::Env;
use fleetkit_tests::wait::wait_until;

fn code(out: &std::process::Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn one_unreadable_unit_record_is_skipped_with_a_warning_and_the_rest_keeps_working() {
    let env = Env::new();
    env.submit_tutorial();
    let _machines = env.machines(3, 30);
    env.ok(&["start", "--no-block", "node-etcd@1.service", "node-etcd@2.service"]);
    env.ok(&["schedule"]);
    let before = env.machine_of("node-etcd@2.service").unwrap();
    env.put("/fleetkit/units/x.service", "garbage", None);
    // node-etcd@2's record turns unreadable too: it keeps its machine.
    env.put("/fleetkit/units/node-etcd@2.service", "{\"name\":", None);

    for verb in [&["list-unit-files"][..], &["list-units"], &["list-machines"]] {
        let out = env.ctl(verb);
        assert_eq!(code(&out), 0, "{verb:?}: {}", stderr(&out));
        let err = stderr(&out);
        // list-units and list-machines do not read unit records.
        if verb[0] == "list-unit-files" {
            assert!(
                err.contains("/fleetkit/units/x.service is not a unit record"),
                "{err} / {}",
                String::from_utf8_lossy(&out.stdout)
            );
            assert!(err.contains("clusterctl destroy x.service"), "{err}");
            assert_eq!(err.matches("units/x.service").count(), 1, "one warning per key: {err}");
        }
    }
    let out = env.ctl(&["start", "--no-block", "node-etcd@3.service"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = env.ctl(&["schedule"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("units/x.service is not a unit record"), "{}", stderr(&out));
    assert!(env.machine_of("node-etcd@3.service").is_some(), "the round placed the new unit");
    assert_eq!(env.machine_of("node-etcd@2.service"), Some(before), "the unreadable one kept its machine");
    env.ok(&["destroy", "x.service"]);
    assert!(!stderr(&env.ctl(&["list-unit-files"])).contains("x.service"));
}

#[test]
fn a_bad_desired_state_is_reported_and_the_unit_keeps_what_it_has() {
    let env = Env::new();
    let web = env.unit_file("web@.service", "[Service]\nExecStart=/bin/true\n");
    env.ok(&["submit", &web]);
    let _machines = env.machines(3, 30);
    env.ok(&["start", "--no-block", "web@1.service", "web@2.service"]);
    env.ok(&["schedule"]);
    let before = env.assignments();
    env.put("/fleetkit/desired/web@2.service", "LAUNCHED ", None);
    let out = env.ctl(&["schedule"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("0 assigned, 0 removed"), "{said}");
    assert!(stderr(&out).contains("desired/web@2.service is \"LAUNCHED \""), "{}", stderr(&out));
    assert_eq!(env.assignments(), before, "nothing moved, nothing was removed");
    let table = env.ok(&["list-unit-files", "--no-legend", "--fields", "unit,dstate"]);
    assert!(table.contains("web@2.service\tlaunched"), "shown with the state it keeps: {table}");
}

#[test]
fn a_machine_record_that_does_not_parse_or_has_no_lease_is_not_a_machine() {
    let env = Env::new();
    let web = env.unit_file("web@.service", "[Service]\nExecStart=/bin/true\n");
    env.ok(&["submit", &web]);
    let _machine = env.machine(1, 30);
    env.put("/fleetkit/machines/m3junk", "garbage", None);
    let id = "2c1eed63a5e84b4ebbf1b9c3d4f6e002";
    env.put(
        &format!("/fleetkit/machines/{id}"),
        &format!(r#"{{"id":"{id}","ip":"10.9.9.9","metadata":{{}}}}"#),
        None,
    );

    let out = env.ctl(&["list-machines", "--no-legend", "--full"]);
    assert_eq!(code(&out), 0);
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(table.lines().count(), 1, "only the machine with a lease: {table}");
    assert!(stderr(&out).contains("machines/m3junk is not a machine record"), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("machines/{id} has no lease")), "{}", stderr(&out));

    env.ok(&["start", "--no-block", "web@1.service", "web@2.service", "web@3.service"]);
    let _ = env.ctl(&["schedule"]);
    for (unit, machines) in env.assignments() {
        assert!(machines.iter().all(|m| m.starts_with('1')), "{unit} placed on {machines:?}");
    }
}

#[test]
fn prefixes_that_are_empty_or_not_absolute_are_refused() {
    let env = Env::new();
    for (prefix, says) in [("", "the prefix is empty"), ("fleetkit", "give /fleetkit")] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_clusterctl"))
            .args(env.etcd.client_args())
            .args(["--prefix", prefix, "list-units"])
            .output()
            .unwrap();
        assert_eq!(code(&out), 2, "{prefix:?}");
        assert!(stderr(&out).contains(says), "{prefix:?}: {}", stderr(&out));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_clusterctl"))
            .args(env.etcd.client_args())
            .env("FLEETKIT_PREFIX", prefix)
            .arg("list-units")
            .output()
            .unwrap();
        assert_eq!(code(&out), 2, "FLEETKIT_PREFIX={prefix:?}");
    }
    let keys = env.etcd.etcdctl().args(["get", "", "--prefix", "--keys-only"]).output().unwrap();
    assert!(String::from_utf8_lossy(&keys.stdout).trim().is_empty(), "nothing was written");
}

#[test]
fn not_submitted_is_exit_2_from_every_verb_and_stop_never_creates_an_instance() {
    let env = Env::new();
    let web = env.unit_file("web@.service", "[Service]\nExecStart=/bin/true\n");
    env.ok(&["submit", &web]);
    let _machine = env.machine(1, 30);
    for verb in [
        &["cat", "nope.service"][..],
        &["destroy", "nope.service"],
        &["start", "nope.service"],
        &["stop", "nope.service"],
        &["unload", "nope.service"],
    ] {
        let out = env.ctl(verb);
        assert_eq!(code(&out), 2, "{verb:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("nope.service"), "{verb:?}: {}", stderr(&out));
    }
    let out = env.ctl(&["stop", "web@7.service"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("web@7.service is not loaded: nothing to stop"), "{}", stderr(&out));
    assert!(env.etcd.get("/fleetkit/units/web@7.service").is_none(), "stop created the instance");
    assert!(env.etcd.get("/fleetkit/desired/web@7.service").is_none());
}

#[test]
fn an_oversized_unit_names_its_file_and_etcds_limit() {
    let env = Env::new();
    // Eleven lines under systemd's 1 MiB line limit: 10 MB for etcd.
    let mut big = String::from("[Service]\nExecStart=/bin/true\n");
    for i in 0..11 {
        big.push_str(&format!("Environment=X{i}={}\n", "x".repeat(900 << 10)));
    }
    let file = env.unit_file("big.service", &big);
    let out = env.ctl(&["submit", &file]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("big.service") && err.contains(&file), "{err}");
    assert!(err.contains("--max-request-bytes"), "{err}");
    assert!(!err.contains("metadata") && !err.contains("MetadataMap"), "no gRPC dump: {err}");
}

#[test]
fn etcd_that_cannot_be_reached_is_exit_75() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_clusterctl"))
        .args(["--endpoints", "127.0.0.1:9", "list-units"])
        .env_remove("ETCDCTL_ENDPOINTS")
        .output()
        .unwrap();
    assert_eq!(code(&out), 75, "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot reach etcd at 127.0.0.1:9"), "{}", stderr(&out));
}

#[test]
fn a_member_killed_under_a_watching_scheduler_goes_unnoticed() {
    let mut env = Env::three();
    env.submit_tutorial();
    // Presence keys kept by etcdctl, on leases long enough to ride out the
    // election that follows the leader kill (only the killed machine goes).
    let mut machines = env.machines(4, 8);
    let scheduler = env.spawn(&["schedule", "--watch", "--ttl", "3"]);
    env.wait_for_leader(Duration::from_secs(10));
    env.ok(&["start", "--block-attempts", "40", "node-etcd@1.service", "node-etcd@2.service"]);
    let leader = env.etcd.wait_leader(None, Duration::from_secs(10));
    env.etcd.member(leader).kill();
    let first = env.machine_of("node-etcd@1.service").unwrap();
    machines.iter_mut().find(|m| m.id == first).unwrap().kill();
    wait_until("node-etcd@1 to move off the dead machine", Duration::from_secs(40), || {
        env.machine_of("node-etcd@1.service").is_some_and(|m| m != first)
    });
    env.ok(&["start", "--block-attempts", "40", "node-etcd@3.service"]);
    drop(scheduler);
}

#[test]
fn units_systemd_would_refuse_to_run_are_not_submitted() {
    let env = Env::new();
    let empty = env.unit_file("empty.service", "");
    let no_exec = env.unit_file("noexec.service", "[Unit]\nDescription=x\n[Service]\nType=simple\n");
    for (file, says) in [(&empty, "the file is empty"), (&no_exec, "Service has no ExecStart=")] {
        let out = env.ctl(&["submit", file]);
        assert_eq!(code(&out), 2, "{file}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{file}: {}", stderr(&out));
    }
    assert!(env.ok(&["list-unit-files", "--no-legend"]).is_empty(), "nothing was stored");
}
