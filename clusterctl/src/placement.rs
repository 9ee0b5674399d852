//! The one door to the placement rules: `start`'s fail-fast check and the
//! scheduler both come through here, so both give the same answer.
//!
//! INTERIM: until the `place` crate's library lands in the workspace this
//! module carries a small placer with fleet's rules for `Conflicts=`,
//! `MachineOf=`, `MachineID=`, `MachineMetadata=` and `Global=`, least
//! loaded machine first, ties by machine ID. It is replaced by a call to
//! `place::plan` with the same signature.

use std::collections::{BTreeMap, BTreeSet};

use fleetkit_core::records::{MachineRecord, Placement, UnitRecord};

/// Where every unit goes, keeping current placements that still hold.
///
/// # Errors
/// A unit whose rules contradict each other.
pub fn plan(
    units: &[UnitRecord],
    machines: &[MachineRecord],
    current: &[Placement],
) -> Result<Vec<Placement>, String> {
    let alive: BTreeMap<&str, &MachineRecord> = machines.iter().map(|m| (m.id.as_str(), m)).collect();
    let mut on: BTreeMap<&str, BTreeSet<&str>> = alive.keys().map(|m| (*m, BTreeSet::new())).collect();
    let by_name: BTreeMap<&str, &UnitRecord> = units.iter().map(|u| (u.name.as_str(), u)).collect();
    let mut placed: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut reasons: BTreeMap<&str, String> = BTreeMap::new();

    // Keep what is placed on a live machine.
    let mut kept: Vec<&Placement> = current.iter().collect();
    kept.sort_by_key(|p| by_name.get(p.unit.as_str()).is_some_and(|u| !u.constraints.machine_of.is_empty()));
    for p in kept {
        let (Some(u), Some(m)) = (by_name.get(p.unit.as_str()), p.machine.as_deref()) else { continue };
        if let Some((id, _)) = alive.get_key_value(m) {
            if fits(u, alive[id], &on, &by_name, &placed) {
                on.entry(id).or_default().insert(u.name.as_str());
                placed.entry(u.name.as_str()).or_default().push(id);
            }
        }
    }

    // Units without MachineOf= first, then those that follow a peer.
    let mut order: Vec<&UnitRecord> = units.iter().collect();
    order.sort_by_key(|u| (!u.constraints.machine_of.is_empty(), u.name.as_str()));
    for u in order {
        if placed.contains_key(u.name.as_str()) && !u.constraints.global {
            continue;
        }
        if u.constraints.global {
            for (id, m) in &alive {
                let here = on.get(id).is_some_and(|s| s.contains(u.name.as_str()));
                if !here && fits(u, m, &on, &by_name, &placed) {
                    on.entry(id).or_default().insert(u.name.as_str());
                    placed.entry(u.name.as_str()).or_default().push(id);
                }
            }
            continue;
        }
        if let Some(peer) = u.constraints.machine_of.iter().find(|p| !placed.contains_key(p.as_str())) {
            reasons.insert(u.name.as_str(), format!("MachineOf={peer}: {peer} is not placed"));
            continue;
        }
        let best = alive
            .iter()
            .filter(|(_, m)| fits(u, m, &on, &by_name, &placed))
            .min_by_key(|(id, _)| (on.get(*id).map_or(0, BTreeSet::len), **id));
        match best {
            Some((id, _)) => {
                on.entry(id).or_default().insert(u.name.as_str());
                placed.entry(u.name.as_str()).or_default().push(id);
            }
            None => {
                reasons.insert(u.name.as_str(), why_not(u, machines.len()));
            }
        }
    }

    let mut out = Vec::new();
    for u in units {
        match placed.get(u.name.as_str()) {
            Some(ms) => out.extend(ms.iter().map(|m| Placement {
                unit: u.name.clone(),
                machine: Some((*m).to_string()),
                reason: None,
            })),
            None if u.constraints.global => {}
            None => out.push(Placement {
                unit: u.name.clone(),
                machine: None,
                reason: Some(reasons.remove(u.name.as_str()).unwrap_or_else(|| why_not(u, machines.len()))),
            }),
        }
    }
    Ok(out)
}

fn why_not(u: &UnitRecord, machines: usize) -> String {
    if machines == 0 {
        return "no machines are present in the cluster".to_string();
    }
    let c = &u.constraints;
    let mut rules = Vec::new();
    if !c.conflicts.is_empty() {
        rules.push(format!("Conflicts={}", c.conflicts.join(" ")));
    }
    if let Some(id) = &c.machine_id {
        rules.push(format!("MachineID={id}"));
    }
    for (k, vs) in &c.machine_metadata {
        rules.push(format!("MachineMetadata={k}={}", vs.join("|")));
    }
    if rules.is_empty() {
        format!("none of the {machines} machines can take it")
    } else {
        format!("none of the {machines} machines satisfies {}", rules.join(", "))
    }
}

fn fits(
    u: &UnitRecord,
    m: &MachineRecord,
    on: &BTreeMap<&str, BTreeSet<&str>>,
    by_name: &BTreeMap<&str, &UnitRecord>,
    placed: &BTreeMap<&str, Vec<&str>>,
) -> bool {
    let c = &u.constraints;
    if let Some(id) = &c.machine_id {
        if !m.id.starts_with(id.as_str()) {
            return false;
        }
    }
    for (k, vs) in &c.machine_metadata {
        if !m.metadata.get(k).is_some_and(|v| vs.contains(v)) {
            return false;
        }
    }
    for peer in &c.machine_of {
        if !placed.get(peer.as_str()).is_some_and(|ms| ms.contains(&m.id.as_str())) {
            return false;
        }
    }
    let here = on.get(m.id.as_str());
    for other in here.into_iter().flatten() {
        if *other == u.name.as_str() {
            continue;
        }
        if c.conflicts.iter().any(|g| glob(g, other)) {
            return false;
        }
        if by_name.get(other).is_some_and(|o| o.constraints.conflicts.iter().any(|g| glob(g, &u.name))) {
            return false;
        }
    }
    true
}

/// `*` and `?` as Go's `path.Match` treats them within one name.
fn glob(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::expand;

    fn machine(id: &str) -> MachineRecord {
        MachineRecord { id: id.into(), ip: String::new(), metadata: BTreeMap::new() }
    }

    #[test]
    fn tutorial_spreads_instances_and_keeps_sidekicks_beside_them() {
        let t = "[X-Fleet]\nConflicts=node-etcd@*.service\n";
        let s = "[X-Fleet]\nMachineOf=node-etcd@%i.service\n";
        let mut units = Vec::new();
        for i in ["1", "2", "3", "4", "5"] {
            units.push(expand("node-etcd@.service", t, Some(i)).unwrap());
            units.push(expand("d@.service", s, Some(i)).unwrap());
        }
        let machines: Vec<_> = ["m1", "m2", "m3", "m4"].iter().map(|m| machine(m)).collect();
        let plan = plan(&units, &machines, &[]).unwrap();
        let at = |u: &str| plan.iter().find(|p| p.unit == u).unwrap().machine.clone();
        for i in 1..=4 {
            assert!(at(&format!("node-etcd@{i}.service")).is_some());
            assert_eq!(at(&format!("node-etcd@{i}.service")), at(&format!("d@{i}.service")));
        }
        assert_eq!(at("node-etcd@5.service"), None);
        assert!(glob("node-etcd@*.service", "node-etcd@1.service"));
        assert!(!glob("node-etcd@*.service", "d@1.service"));
    }
}
