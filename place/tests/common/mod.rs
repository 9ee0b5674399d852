//! Builders for the records place reads, so each test reads as its cluster.

#![allow(dead_code)]

use std::collections::BTreeMap;

use fleetkit_core::constraints::Constraints;
use fleetkit_core::records::{MachineRecord, Placement, UnitRecord};
use place::Unit;

pub fn unit(name: &str, c: Constraints) -> Unit {
    Unit::new(name, c)
}

/// The whole record of `u`, as unitgen would write it, for the binary.
pub fn record(u: &Unit) -> UnitRecord {
    let name = u.name.as_str();
    let (template, instance) = match name.split_once('@') {
        Some((prefix, rest)) => {
            let (inst, suffix) = rest.rsplit_once('.').unwrap_or((rest, "service"));
            (Some(format!("{prefix}@.{suffix}")), Some(inst.to_owned()))
        }
        None => (None, None),
    };
    UnitRecord {
        name: name.to_owned(),
        template,
        instance,
        hash: "0".repeat(64),
        constraints: u.constraints.clone(),
        text: String::new(),
    }
}

pub fn records(units: &[Unit]) -> Vec<UnitRecord> {
    units.iter().map(record).collect()
}

pub fn plain(name: &str) -> Unit {
    unit(name, Constraints::default())
}

pub fn conflicts(name: &str, globs: &[&str]) -> Unit {
    unit(
        name,
        Constraints { conflicts: globs.iter().map(|g| (*g).to_owned()).collect(), ..Default::default() },
    )
}

pub fn machine_of(name: &str, peers: &[&str]) -> Unit {
    unit(
        name,
        Constraints { machine_of: peers.iter().map(|g| (*g).to_owned()).collect(), ..Default::default() },
    )
}

pub fn metadata(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in pairs {
        m.entry((*k).to_owned()).or_default().push((*v).to_owned());
    }
    m
}

pub fn machine(id: &str) -> MachineRecord {
    MachineRecord {
        id: id.to_owned(),
        ip: format!("10.0.0.{}", id.len()),
        metadata: BTreeMap::new(),
        agent: None,
    }
}

pub fn machine_with(id: &str, meta: &[(&str, &str)]) -> MachineRecord {
    MachineRecord {
        id: id.to_owned(),
        ip: String::new(),
        metadata: meta.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        agent: None,
    }
}

pub fn machines(ids: &[&str]) -> Vec<MachineRecord> {
    ids.iter().map(|id| machine(id)).collect()
}

/// The tutorial's units: `node-etcd@N` (Conflicts=node-etcd@*.service) and
/// `node-etcd-discovery@N` (MachineOf=node-etcd@N.service), N in 1..=n.
pub fn tutorial(n: usize) -> Vec<Unit> {
    let mut out = Vec::new();
    for i in 1..=n {
        out.push(conflicts(&format!("node-etcd@{i}.service"), &["node-etcd@*.service"]));
        out.push(machine_of(
            &format!("node-etcd-discovery@{i}.service"),
            &[&format!("node-etcd@{i}.service")],
        ));
    }
    out
}

/// unit -> machine for placed units (non-global).
pub fn where_(placements: &[Placement]) -> BTreeMap<String, String> {
    placements.iter().filter_map(|p| Some((p.unit.clone(), p.machine.clone()?))).collect()
}

pub fn reason_of<'a>(placements: &'a [Placement], unit: &str) -> &'a str {
    placements
        .iter()
        .find(|p| p.unit == unit)
        .and_then(|p| p.reason.as_deref())
        .unwrap_or_else(|| panic!("{unit} has no reason in {placements:?}"))
}

pub fn placed(name: &str, m: &str) -> Placement {
    Placement { unit: name.to_owned(), machine: Some(m.to_owned()), reason: None }
}
