//! Coverage-guided fuzzing of place's planner: clusters built from the
//! fuzzer's bytes (odd globs, duplicate names and machines, MachineID
//! prefixes, MachineOf chains, Replaces, current placements) must be planned
//! or refused with an error, never panic; so must losing a machine.
#![no_main]

use std::collections::BTreeMap;

use fleetkit_core::constraints::Constraints;
use fleetkit_core::records::{MachineRecord, Placement};
use libfuzzer_sys::fuzz_target;

const NAMES: &[&str] = &[
    "a@1.service",
    "a@2.service",
    "a@3.service",
    "b@1.service",
    "c.service",
    "side@1.service",
    "node-etcd-discovery@1.service",
    "node-etcd-discovery@2.service",
    "node-etcd@1.service",
    "",
];
const GLOBS: &[&str] = &["a@*.service", "*", "c.service", "side@[12].service", "node-etcd@*", "[", "\\", "b@?.service"];

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.iter().copied();
    let mut next = move || bytes.next().unwrap_or(0);
    let pick = |b: u8, items: &[&str]| items[usize::from(b) % items.len()].to_owned();

    let machines: Vec<MachineRecord> = (0..next() % 6)
        .map(|_| {
            let mut metadata = BTreeMap::new();
            if next() % 2 == 0 {
                metadata.insert("region".to_owned(), pick(next(), &["eu", "us"]));
            }
            MachineRecord { id: pick(next(), &["m1", "m10", "m2", "n5", "m1", ""]), ip: String::new(), metadata }
        })
        .collect();
    let mut units = Vec::new();
    for _ in 0..next() % 12 {
        let name = pick(next(), NAMES);
        let flags = next();
        let mut glob = || {
            let b = next();
            if b < 200 {
                pick(b, GLOBS)
            } else {
                // A glob of raw bytes, often malformed.
                (0..b % 4).map(|_| char::from(next() % 128)).collect()
            }
        };
        let mut c = Constraints::default();
        if flags & 1 != 0 {
            c.conflicts.push(glob());
        }
        if flags & 2 != 0 {
            c.replaces.push(glob());
        }
        if flags & 4 != 0 {
            c.machine_of.push(pick(next(), NAMES));
        }
        if flags & 8 != 0 {
            c.global = true;
        }
        if flags & 16 != 0 {
            c.machine_id = Some(pick(next(), &["m", "m1", "n", "zz", ""]));
        }
        if flags & 32 != 0 {
            c.machine_metadata.insert("region".to_owned(), vec![pick(next(), &["eu", "us", "mars"])]);
        }
        units.push(place::Unit::new(name, c));
    }
    let current: Vec<Placement> = (0..next() % 6)
        .map(|_| Placement {
            unit: pick(next(), NAMES),
            machine: Some(pick(next(), &["m1", "m10", "m2", "gone"])),
            reason: None,
        })
        .collect();
    let lost = pick(next(), &["m1", "m10", "m2", "n5"]);
    if let Ok(mut plan) = place::Plan::new(&units, &machines, &current) {
        let _ = plan.placements();
        let _ = plan.remove_machine(&lost);
        let _ = plan.placements();
    }
});
