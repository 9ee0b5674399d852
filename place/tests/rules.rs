//! Every [X-Fleet] rule and every contradiction, through the library API
//! clusterctl's scheduler uses.

mod common;

use common::*;
use fleetkit_core::constraints::Constraints;
use fleetkit_core::records::Placement;
use place::plan;

#[test]
fn tutorial_three_instances_on_three_machines_sidekicks_beside() {
    let ms = machines(&["3781dfef", "767d4316", "9c1eed63"]);
    let out = plan(&tutorial(3), &ms, &[]).unwrap();
    let w = where_(&out);
    assert_eq!(w.len(), 6, "{out:?}");
    let mut hosts: Vec<&String> = (1..=3).map(|i| &w[&format!("node-etcd@{i}.service")]).collect();
    for i in 1..=3 {
        assert_eq!(w[&format!("node-etcd-discovery@{i}.service")], w[&format!("node-etcd@{i}.service")]);
    }
    hosts.sort();
    hosts.dedup();
    assert_eq!(hosts.len(), 3, "one instance per machine: {w:?}");
}

#[test]
fn tutorial_five_instances_on_four_machines() {
    let ms = machines(&["m1", "m2", "m3", "m4"]);
    let out = plan(&tutorial(5), &ms, &[]).unwrap();
    let unplaced: Vec<&Placement> = out.iter().filter(|p| p.machine.is_none()).collect();
    assert_eq!(out.len(), 10);
    assert_eq!(unplaced.len(), 2, "{out:?}");
    assert_eq!(
        reason_of(&out, "node-etcd@5.service"),
        "conflicts with node-etcd@*.service on all 4 machines"
    );
    assert_eq!(
        reason_of(&out, "node-etcd-discovery@5.service"),
        "MachineOf node-etcd@5.service, which is not placed"
    );
}

#[test]
fn conflicts_hold_both_ways() {
    // b has no rules of its own, but a's glob matches it.
    let units = vec![conflicts("a.service", &["b*"]), plain("b.service")];
    let out = plan(&units, &machines(&["m1", "m2"]), &[]).unwrap();
    let w = where_(&out);
    assert_ne!(w["a.service"], w["b.service"]);
    // One machine: b is kept off it by a's glob, and says so.
    let out = plan(&units, &machines(&["m1"]), &[]).unwrap();
    assert_eq!(where_(&out)["a.service"], "m1");
    assert_eq!(
        reason_of(&out, "b.service"),
        "is excluded by Conflicts=b* of units there (e.g. a.service) on the only machine"
    );
}

#[test]
fn a_unit_never_conflicts_with_itself() {
    let out = plan(&[conflicts("web@1.service", &["web@*.service"])], &machines(&["m1"]), &[]).unwrap();
    assert_eq!(where_(&out)["web@1.service"], "m1");
}

#[test]
fn least_loaded_then_machine_id() {
    let units: Vec<_> = ["a", "b", "c", "d", "e"].iter().map(|n| plain(&format!("{n}.service"))).collect();
    let out = plan(&units, &machines(&["m2", "m1", "m3"]), &[]).unwrap();
    let w = where_(&out);
    assert_eq!(
        [&w["a.service"], &w["b.service"], &w["c.service"], &w["d.service"], &w["e.service"]],
        ["m1", "m2", "m3", "m1", "m2"]
    );
    // Load counts current placements: m1 is busy, so the new unit goes to m2.
    let current = [placed("a.service", "m1"), placed("b.service", "m1")];
    let out = plan(&units[..3], &machines(&["m1", "m2"]), &current).unwrap();
    assert_eq!(where_(&out)["c.service"], "m2");
}

#[test]
fn machine_of_follows_whatever_the_input_order() {
    let units = vec![
        machine_of("a-side.service", &["z.service"]),
        plain("b.service"),
        plain("c.service"),
        plain("z.service"),
    ];
    let out = plan(&units, &machines(&["m1", "m2", "m3"]), &[]).unwrap();
    let w = where_(&out);
    assert_eq!(w["a-side.service"], w["z.service"]);
    // A follower of two peers that must differ cannot be placed.
    let units = vec![
        conflicts("x.service", &["y.service"]),
        plain("y.service"),
        machine_of("f.service", &["x.service", "y.service"]),
    ];
    let out = plan(&units, &machines(&["m1", "m2"]), &[]).unwrap();
    assert!(reason_of(&out, "f.service")
        .starts_with("MachineOf x.service and y.service, which run on different machines"));
}

#[test]
fn follower_moves_with_its_peer() {
    let units = tutorial(1);
    let current = [placed("node-etcd@1.service", "gone"), placed("node-etcd-discovery@1.service", "m1")];
    let out = plan(&units, &machines(&["m1", "m2"]), &current).unwrap();
    let w = where_(&out);
    // The peer lost its machine and lands on the least loaded (m2, since m1
    // still counts nothing... both 0: m1 by ID); the follower goes with it.
    assert_eq!(w["node-etcd@1.service"], w["node-etcd-discovery@1.service"]);
    let current = [placed("node-etcd@1.service", "m2"), placed("node-etcd-discovery@1.service", "m1")];
    let out = plan(&units, &machines(&["m1", "m2"]), &current).unwrap();
    let w = where_(&out);
    assert_eq!(w["node-etcd@1.service"], "m2", "peer kept");
    assert_eq!(w["node-etcd-discovery@1.service"], "m2", "follower moved to its peer");
}

#[test]
fn follower_blocked_on_its_peers_machine_says_where() {
    let units = vec![
        plain("db.service"),
        conflicts("web.service", &["cache*"]),
        plain("cache.service"),
        machine_of("side.service", &["web.service"]),
        unit(
            "cache-side.service",
            Constraints {
                machine_of: vec!["cache.service".into()],
                machine_metadata: metadata(&[("disk", "ssd")]),
                ..Default::default()
            },
        ),
    ];
    let out = plan(&units, &machines(&["m1", "m2", "m3"]), &[]).unwrap();
    let r = reason_of(&out, "cache-side.service");
    assert!(
        r.starts_with("MachineOf cache.service puts it on m") && r.ends_with("which lacks disk=ssd"),
        "{r}"
    );
    let out = plan(&[machine_of("s.service", &["nope.service"])], &machines(&["m1"]), &[]).unwrap();
    assert!(reason_of(&out, "s.service").starts_with("MachineOf nope.service, which is not placed"));
}

#[test]
fn machine_of_cycle_is_reported() {
    let units = vec![machine_of("a.service", &["b.service"]), machine_of("b.service", &["a.service"])];
    let out = plan(&units, &machines(&["m1"]), &[]).unwrap();
    assert!(reason_of(&out, "a.service").starts_with("MachineOf cycle among a.service, b.service"));
}

#[test]
fn machine_id_full_or_unique_prefix() {
    let ms = machines(&["abc123", "abd999", "abc"]);
    let pin = |id: &str| unit("p.service", Constraints { machine_id: Some(id.into()), ..Default::default() });
    assert_eq!(where_(&plan(&[pin("abd")], &ms, &[]).unwrap())["p.service"], "abd999");
    assert_eq!(where_(&plan(&[pin("abc123")], &ms, &[]).unwrap())["p.service"], "abc123");
    assert_eq!(where_(&plan(&[pin("abc")], &ms, &[]).unwrap())["p.service"], "abc", "a full ID wins");
    let out = plan(&[pin("ab")], &ms, &[]).unwrap();
    assert_eq!(
        reason_of(&out, "p.service"),
        "MachineID=ab is a prefix of 3 machines (abc, abc123, abd999); give more of the ID"
    );
    let out = plan(&[pin("zz")], &ms, &[]).unwrap();
    assert!(reason_of(&out, "p.service").starts_with("MachineID=zz matches no machine"));
    // Pinned, and another unit's Conflicts keeps it off its machine.
    let out = plan(&[pin("abd"), conflicts("q.service", &["p.*"])], &machines(&["abd999"]), &[]).unwrap();
    let (a, b) = (out[0].reason.as_deref(), out[1].reason.as_deref());
    assert!(a.is_some() != b.is_some(), "exactly one of them fits: {out:?}");
}

#[test]
fn metadata_or_within_a_key_and_across_keys() {
    let ms = vec![
        machine_with("m1", &[("region", "us"), ("disk", "hdd")]),
        machine_with("m2", &[("region", "eu"), ("disk", "hdd")]),
        machine_with("m3", &[("region", "ap"), ("disk", "ssd")]),
    ];
    let u = |name: &str, pairs: &[(&str, &str)]| {
        unit(name, Constraints { machine_metadata: metadata(pairs), ..Default::default() })
    };
    let units = vec![
        u("or.service", &[("region", "eu"), ("region", "ap")]),
        u("and.service", &[("region", "ap"), ("disk", "ssd")]),
        u("none.service", &[("region", "mars")]),
        u("never.service", &[("region", "us"), ("disk", "ssd")]),
    ];
    let out = plan(&units, &ms, &[]).unwrap();
    let w = where_(&out);
    assert!(w["or.service"] == "m2" || w["or.service"] == "m3");
    assert_eq!(w["and.service"], "m3");
    assert_eq!(reason_of(&out, "none.service"), "no machine has region=mars");
    assert_eq!(reason_of(&out, "never.service"), "no machine has all of disk=ssd, region=us at once");
}

#[test]
fn global_units_one_line_per_machine() {
    let ms =
        vec![machine_with("m1", &[("role", "web")]), machine_with("m2", &[("role", "web")]), machine("m3")];
    let units = vec![
        unit("log.service", Constraints { global: true, ..Default::default() }),
        unit(
            "web-agent.service",
            Constraints {
                global: true,
                machine_metadata: metadata(&[("role", "web")]),
                ..Default::default()
            },
        ),
        unit(
            "nolog.service",
            Constraints { global: true, conflicts: vec!["log.service".into()], ..Default::default() },
        ),
    ];
    let out = plan(&units, &ms, &[]).unwrap();
    let lines = |name: &str| {
        out.iter().filter(|p| p.unit == name).filter_map(|p| p.machine.clone()).collect::<Vec<_>>()
    };
    assert_eq!(lines("log.service"), ["m1", "m2", "m3"]);
    assert_eq!(lines("web-agent.service"), ["m1", "m2"]);
    assert_eq!(reason_of(&out, "nolog.service"), "conflicts with log.service on all 3 machines");
}

#[test]
fn replaces_takes_the_machine_and_the_replaced_unit_moves() {
    let units = vec![
        plain("old.service"),
        machine_of("old-side.service", &["old.service"]),
        unit("new.service", Constraints { replaces: vec!["old.service".into()], ..Default::default() }),
    ];
    let current = [placed("old.service", "m2"), placed("old-side.service", "m2")];
    let out = plan(&units, &machines(&["m1", "m2"]), &current).unwrap();
    let w = where_(&out);
    assert_eq!(w["new.service"], "m2");
    assert_eq!(w["old.service"], "m1");
    assert_eq!(w["old-side.service"], "m1", "the follower moved with the replaced unit");
    // Re-running with that output changes nothing.
    assert_eq!(plan(&units, &machines(&["m1", "m2"]), &out).unwrap(), out);
}

#[test]
fn stability_keeps_what_still_holds_and_replaces_what_does_not() {
    let units = tutorial(3);
    let ms = machines(&["m1", "m2", "m3", "m4"]);
    let first = plan(&units, &ms, &[]).unwrap();
    assert_eq!(plan(&units, &ms, &first).unwrap(), first, "re-run changes nothing");
    // m2 dies: only its units move, to the free machine m4.
    let w = where_(&first);
    let alive: Vec<_> = ms.iter().filter(|m| m.id != "m2").cloned().collect();
    let second = plan(&units, &alive, &first).unwrap();
    let w2 = where_(&second);
    for (unit, m) in &w {
        if m == "m2" {
            assert_eq!(w2[unit], "m4", "{unit}");
        } else {
            assert_eq!(&w2[unit], m, "{unit} kept");
        }
    }
    // A current placement that breaks a rule is redone.
    let bad = [placed("node-etcd@1.service", "m1"), placed("node-etcd@2.service", "m1")];
    let out = plan(&units, &ms, &bad).unwrap();
    let w = where_(&out);
    assert_eq!(w["node-etcd@1.service"], "m1");
    assert_ne!(w["node-etcd@2.service"], "m1");
}

#[test]
fn output_is_sorted_and_independent_of_input_order() {
    let mut units = tutorial(4);
    let mut ms = machines(&["m3", "m1", "m2"]);
    let a = plan(&units, &ms, &[]).unwrap();
    units.reverse();
    ms.reverse();
    let b = plan(&units, &ms, &[]).unwrap();
    assert_eq!(a, b);
    let names: Vec<&str> = a.iter().map(|p| p.unit.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
}

#[test]
fn bad_input_is_an_error_naming_the_culprit() {
    let ms = machines(&["m1"]);
    let err = |units: &[place::Unit], ms: &[fleetkit_core::records::MachineRecord]| {
        plan(units, ms, &[]).unwrap_err().to_string()
    };
    assert!(err(&[plain("a.service"), plain("a.service")], &ms).contains("unit a.service is listed twice"));
    assert!(err(&[plain("a.service")], &machines(&["m1", "m1"])).contains("machine m1 is listed twice"));
    let e = err(&[conflicts("a.service", &["web@[.service"])], &ms);
    assert!(e.starts_with("a.service: [X-Fleet] Conflicts=malformed glob"), "{e}");
    let contradictions = [
        Constraints { machine_id: Some("m1".into()), machine_of: vec!["b".into()], ..Default::default() },
        Constraints { machine_id: Some("m1".into()), conflicts: vec!["b".into()], ..Default::default() },
        Constraints { machine_id: Some("m1".into()), global: true, ..Default::default() },
        Constraints { machine_id: Some("m1".into()), replaces: vec!["b".into()], ..Default::default() },
        Constraints { global: true, machine_of: vec!["b".into()], ..Default::default() },
        Constraints { global: true, replaces: vec!["b".into()], ..Default::default() },
        Constraints { conflicts: vec!["b".into()], replaces: vec!["c".into()], ..Default::default() },
        Constraints {
            machine_of: vec!["web@1.service".into()],
            conflicts: vec!["web@*".into()],
            ..Default::default()
        },
    ];
    for c in contradictions {
        let e = err(&[unit("x.service", c.clone())], &ms);
        assert!(
            e.starts_with("x.service: [X-Fleet] ") && e.contains("cannot") || e.contains("matches MachineOf"),
            "{c:?}: {e}"
        );
    }
}

#[test]
fn no_machines_is_a_reason_not_an_error() {
    let out = plan(&[plain("a.service")], &[], &[]).unwrap();
    assert_eq!(reason_of(&out, "a.service"), "no machines were given");
}
