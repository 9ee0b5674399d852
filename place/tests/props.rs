//! Property tests over random clusters: no output breaks a rule, the output
//! is deterministic, an unplaced unit truly has no machine that would take
//! it, and feeding the output back as `--current` changes nothing. The rule
//! checker here is written from DESIGN.md, independently of the planner.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use fleetkit_core::constraints::Constraints;
use fleetkit_core::glob::match_glob;
use fleetkit_core::records::{MachineRecord, Placement};
use place::{plan, Plan, Unit};
use proptest::prelude::*;

const NAMES: &[&str] = &[
    "a@1.service",
    "a@2.service",
    "a@3.service",
    "a@4.service",
    "b@1.service",
    "b@2.service",
    "c.service",
    "d.service",
    "side@1.service",
    "side@2.service",
    "g.service",
    "x1.service",
];
const GLOBS: &[&str] = &["a@*.service", "b@*", "*", "c.service", "x?.service", "side@[12].service", "d*"];
const META: &[(&str, &str)] = &[("region", "eu"), ("region", "us"), ("disk", "ssd")];
const IDS: &[&str] = &["m1", "m2", "m10", "n5", "m3"];

fn pick<T: Clone + std::fmt::Debug>(items: &'static [T]) -> impl Strategy<Value = T> {
    proptest::sample::select(items)
}

fn constraints() -> impl Strategy<Value = Constraints> {
    (
        prop::option::weighted(0.08, pick(&["m", "m1", "n", "m10", "zz"])),
        prop::collection::vec(pick(NAMES), 0..=1),
        prop::collection::vec(pick(META), 0..=2),
        prop::collection::vec(pick(GLOBS), 0..=2),
        prop::bool::weighted(0.1),
        prop::collection::vec(pick(GLOBS), 0..=1),
        0u8..10,
    )
        .prop_map(|(id, of, meta, conflicts, global, replaces, dice)| {
            let mut c = Constraints {
                machine_id: id.map(str::to_owned),
                machine_of: of.into_iter().map(str::to_owned).collect(),
                machine_metadata: metadata(&meta),
                conflicts: conflicts.into_iter().map(str::to_owned).collect(),
                global,
                replaces: if dice < 2 {
                    replaces.into_iter().map(str::to_owned).collect()
                } else {
                    Vec::new()
                },
            };
            // Keep most cases free of contradictions so the planner runs.
            if dice < 8 {
                if c.machine_id.is_some() {
                    c.machine_of.clear();
                    c.conflicts.clear();
                    c.global = false;
                    c.replaces.clear();
                }
                if c.global {
                    c.machine_of.clear();
                    c.replaces.clear();
                }
                if !c.replaces.is_empty() {
                    c.conflicts.clear();
                }
                let of = c.machine_of.clone();
                c.conflicts.retain(|g| !of.iter().any(|p| match_glob(g, p).unwrap_or(false)));
            }
            c
        })
}

fn cluster() -> impl Strategy<Value = (Vec<Unit>, Vec<MachineRecord>)> {
    let units = prop::collection::btree_map(pick(NAMES), constraints(), 0..=10)
        .prop_map(|m| m.into_iter().map(|(n, c)| unit(n, c)).collect::<Vec<_>>());
    let machines = prop::collection::btree_map(pick(IDS), prop::collection::vec(pick(META), 0..=2), 0..=4)
        .prop_map(|m| {
            m.into_iter()
                .map(|(id, meta)| {
                    let mut md = BTreeMap::new();
                    for (k, v) in meta {
                        md.insert(k.to_owned(), v.to_owned());
                    }
                    MachineRecord { id: id.to_owned(), ip: String::new(), metadata: md, agent: None }
                })
                .collect::<Vec<_>>()
        });
    (units, machines)
}

fn rec<'a>(units: &'a [Unit], name: &str) -> &'a Unit {
    units.iter().find(|u| u.name == name).expect("placed unit exists")
}

fn anti(c: &Constraints) -> impl Iterator<Item = &String> {
    c.conflicts.iter().chain(&c.replaces)
}

/// Whether unit `u` may sit on machine `m` beside `others` (unit names on m).
fn allowed(
    u: &Unit,
    m: &MachineRecord,
    machines: &[MachineRecord],
    units: &[Unit],
    others: &BTreeSet<String>,
    on: &BTreeMap<String, BTreeSet<String>>,
) -> bool {
    let c = &u.constraints;
    if let Some(id) = &c.machine_id {
        let matching: Vec<&MachineRecord> =
            machines.iter().filter(|x| x.id.starts_with(id.as_str())).collect();
        let target = if matching.iter().any(|x| &x.id == id) {
            Some(id.as_str())
        } else if matching.len() == 1 {
            Some(matching[0].id.as_str())
        } else {
            None
        };
        if target != Some(m.id.as_str()) {
            return false;
        }
    }
    for (k, vs) in &c.machine_metadata {
        if !m.metadata.get(k).is_some_and(|v| vs.contains(v)) {
            return false;
        }
    }
    for peer in &c.machine_of {
        if !on.get(peer).is_some_and(|ms| ms.contains(&m.id)) {
            return false;
        }
    }
    for other in others.iter().filter(|o| **o != u.name) {
        let o = rec(units, other);
        if anti(c).any(|g| match_glob(g, other).unwrap_or(false))
            || anti(&o.constraints).any(|g| match_glob(g, &u.name).unwrap_or(false))
        {
            return false;
        }
    }
    true
}

/// Whether `Replaces=` globs form a circle of units each winning over the
/// next (A replaces B replaces C replaces A): the one case where place gives
/// up moving units after a budget, so a re-run may differ.
fn replaces_in_a_circle(units: &[Unit]) -> bool {
    let wins = |r: &Unit, x: &Unit| {
        r.name != x.name
            && r.constraints.replaces.iter().any(|g| match_glob(g, &x.name).unwrap_or(false))
            && !x.constraints.replaces.iter().any(|g| match_glob(g, &r.name).unwrap_or(false))
    };
    // Floyd–Warshall on a dozen units.
    let n = units.len();
    let mut reach: Vec<Vec<bool>> =
        (0..n).map(|i| (0..n).map(|j| wins(&units[i], &units[j])).collect()).collect();
    for k in 0..n {
        for i in 0..n {
            for j in 0..n {
                if reach[i][k] && reach[k][j] {
                    reach[i][j] = true;
                }
            }
        }
    }
    (0..n).any(|i| reach[i][i])
}

fn check(units: &[Unit], machines: &[MachineRecord], out: &[Placement]) -> Result<(), TestCaseError> {
    let mut residents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut on: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in out {
        if let Some(m) = &p.machine {
            residents.entry(m.clone()).or_default().insert(p.unit.clone());
            on.entry(p.unit.clone()).or_default().insert(m.clone());
        } else {
            prop_assert!(
                p.reason.as_deref().is_some_and(|r| !r.is_empty()),
                "unplaced without reason: {p:?}"
            );
        }
    }
    let empty = BTreeSet::new();
    for u in units {
        let ms = on.get(&u.name).cloned().unwrap_or_default();
        prop_assert!(u.constraints.global || ms.len() <= 1, "{} placed twice", u.name);
        // No violation.
        for mid in &ms {
            let m = machines.iter().find(|x| &x.id == mid).expect("known machine");
            prop_assert!(
                allowed(u, m, machines, units, &residents[mid], &on),
                "{} on {mid} breaks a rule: {out:?}",
                u.name
            );
        }
        // Unplaced (or, for a global unit, absent from a machine) only when
        // that machine truly would not take it.
        for m in machines {
            if ms.contains(&m.id) || (!u.constraints.global && !ms.is_empty()) {
                continue;
            }
            let others = residents.get(&m.id).unwrap_or(&empty);
            prop_assert!(
                !allowed(u, m, machines, units, others, &on),
                "{} could go on {} but was left out: {out:?}",
                u.name,
                m.id
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 400,
        max_global_rejects: 1_000_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn placements_follow_every_rule((units, machines) in cluster()) {
        let bad = units.iter().any(|u| !u.constraints.problems().is_empty());
        let result = plan(&units, &machines, &[]);
        prop_assert_eq!(result.is_err(), bad, "{:?}", result);
        let out = match result {
            Ok(out) => out,
            Err(e) => {
                // The same unit is named whatever the input order.
                let mut ru = units.clone();
                ru.reverse();
                prop_assert_eq!(plan(&ru, &machines, &[]).unwrap_err().to_string(), e.to_string());
                return Ok(());
            }
        };
        check(&units, &machines, &out)?;
        prop_assume!(!replaces_in_a_circle(&units));

        // Deterministic, whatever the input order.
        let mut ru = units.clone();
        ru.reverse();
        let mut rm = machines.clone();
        rm.reverse();
        prop_assert_eq!(&plan(&ru, &rm, &[]).unwrap(), &out);

        // The output as --current changes nothing.
        prop_assert_eq!(&plan(&units, &machines, &out).unwrap(), &out);
    }

    #[test]
    fn replanning_after_a_machine_dies_follows_every_rule_and_keeps_the_rest((units, machines) in cluster(), dead in 0usize..4) {
        prop_assume!(units.iter().all(|u| u.constraints.problems().is_empty()) && !machines.is_empty());
        prop_assume!(!replaces_in_a_circle(&units));
        let first = plan(&units, &machines, &[]).unwrap();
        let dead_id = machines[dead % machines.len()].id.clone();
        let alive: Vec<MachineRecord> = machines.iter().filter(|m| m.id != dead_id).cloned().collect();
        let second = plan(&units, &alive, &first).unwrap();
        check(&units, &alive, &second)?;
        // A unit that only followed rules unaffected by the loss stays put.
        let before = where_(&first);
        let after = where_(&second);
        let replaces_any = units.iter().any(|u| !u.constraints.replaces.is_empty());
        for (u, m) in &before {
            let r = rec(&units, u);
            let simple = r.constraints.machine_of.is_empty() && !r.constraints.global;
            if m != &dead_id && simple && !replaces_any {
                prop_assert_eq!(after.get(u), Some(m), "{} moved off a live machine", u);
            }
        }
    }

    #[test]
    fn removing_a_machine_in_memory_matches_a_full_replan((units, machines) in cluster(), dead in 0usize..4) {
        prop_assume!(units.iter().all(|u| u.constraints.problems().is_empty()) && !machines.is_empty());
        prop_assume!(units.iter().all(|u| u.constraints.replaces.is_empty()));
        let mut in_memory = Plan::new(&units, &machines, &[]).unwrap();
        let first = in_memory.placements();
        let dead_id = machines[dead % machines.len()].id.clone();
        let moved = in_memory.remove_machine(&dead_id);
        let alive: Vec<MachineRecord> = machines.iter().filter(|m| m.id != dead_id).cloned().collect();
        let full = plan(&units, &alive, &first).unwrap();
        let incremental = in_memory.placements();
        let strip = |ps: &[Placement]| ps.iter().map(|p| (p.unit.clone(), p.machine.clone())).collect::<Vec<_>>();
        prop_assert_eq!(strip(&incremental), strip(&full));
        for p in &moved {
            let was_there = first.iter().any(|f| f.unit == p.unit && f.machine.as_deref() == Some(dead_id.as_str()));
            let c = &rec(&units, &p.unit).constraints;
            prop_assert!(was_there || c.machine_id.is_some() || !c.machine_of.is_empty(), "{:?}", p);
        }
    }
}
