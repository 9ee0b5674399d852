//! The one door to the placement rules: `start`'s fail-fast check and the
//! scheduler both come through here, so both give the same answer as the
//! `place` tool does for the same input.

use fleetkit_core::records::{MachineRecord, Placement, UnitRecord};

/// Where every unit goes, keeping current placements that still hold; a
/// unit that cannot be placed comes back with `machine: None` and a reason.
///
/// # Errors
/// A unit whose rules contradict each other, as place words it.
pub fn plan(
    units: &[UnitRecord],
    machines: &[MachineRecord],
    current: &[Placement],
) -> Result<Vec<Placement>, String> {
    place::plan(units, machines, current).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

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
        let why = plan.iter().find(|p| p.unit == "node-etcd@5.service").unwrap().reason.clone().unwrap();
        assert!(!why.is_empty());
    }
}
