//! What the placement rules are given, built from a snapshot one way for
//! both the scheduler's round and `start`'s fail-fast check: so `start`
//! refuses exactly the units the scheduler would leave unplaced, and both
//! answer as the `place` tool would for the same records.

use std::collections::BTreeSet;

use fleetkit_core::constraints::Constraints;
use fleetkit_core::records::{MachineRecord, Placement};
use place::{PlaceError, Unit};

use crate::cluster::Snapshot;
use crate::units;

/// A cluster as place sees it.
#[derive(Debug)]
pub struct Input<H> {
    /// The units that want a machine.
    pub units: Vec<Unit<H>>,
    pub machines: Vec<MachineRecord>,
    /// Where those units are assigned now: place keeps what still holds,
    /// so nothing moves without a reason.
    pub current: Vec<Placement>,
}

/// The input for `snap`'s cluster with `units` as its unit records: of
/// them, those that want a machine (not templates, and loaded or launched
/// in `snap`), and those named in `starting`, which are about to.
///
/// A unit the snapshot could not read (`snap.as_is`) stays where it is
/// assigned, as a unit without rules, so that what follows it stays too;
/// on a machine that is gone it holds no place.
pub fn input<U, H: Default>(
    snap: &Snapshot<U>,
    units: impl IntoIterator<Item = Unit<H>>,
    starting: &BTreeSet<&str>,
) -> Input<H> {
    let mut units: Vec<Unit<H>> = units
        .into_iter()
        .filter(|u| {
            starting.contains(u.name.as_str())
                || (!units::is_template(&u.name) && snap.desired_of(&u.name).wants_machine())
        })
        .collect();
    let held = snap
        .as_is
        .iter()
        .filter(|n| snap.assign.keys().any(|(m, u)| u == *n && snap.machines.contains_key(m)));
    units.extend(held.map(|name| Unit {
        name: name.clone(),
        hash: H::default(),
        constraints: Constraints::default(),
    }));
    let names: BTreeSet<&str> = units.iter().map(|u| u.name.as_str()).collect();
    let current = snap
        .assign
        .keys()
        .filter(|(_, u)| names.contains(u.as_str()))
        .map(|(m, u)| Placement { unit: u.clone(), machine: Some(m.clone()), reason: None })
        .collect();
    drop(names);
    Input { units, machines: snap.machines.values().cloned().collect(), current }
}

impl<H> Input<H> {
    /// Where every unit goes; a unit that cannot be placed comes back with
    /// `machine: None` and a reason.
    ///
    /// # Errors
    /// A unit whose rules contradict each other, as place words it.
    pub fn plan(&self) -> Result<Vec<Placement>, PlaceError> {
        place::plan(&self.units, &self.machines, &self.current)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use fleetkit_core::records::UnitRecord;

    use super::*;
    use crate::cluster::Desired;
    use crate::units::{expand, template_record};

    fn machine(id: &str) -> MachineRecord {
        MachineRecord { id: id.into(), ip: String::new(), metadata: BTreeMap::new(), agent: None }
    }

    fn snapshot(units: Vec<UnitRecord>, machines: &[&str]) -> Snapshot {
        let mut snap = Snapshot::default();
        for u in units {
            snap.desired.insert(u.name.clone(), Desired::Launched);
            snap.units.insert(u.name.clone(), u);
        }
        snap.machines = machines.iter().map(|m| ((*m).to_owned(), machine(m))).collect();
        snap
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
        let snap = snapshot(units, &["m1", "m2", "m3", "m4"]);
        let plan = input(&snap, snap.units.values().map(Unit::from), &BTreeSet::new()).plan().unwrap();
        let at = |u: &str| plan.iter().find(|p| p.unit == u).unwrap().machine.clone();
        for i in 1..=4 {
            assert!(at(&format!("node-etcd@{i}.service")).is_some());
            assert_eq!(at(&format!("node-etcd@{i}.service")), at(&format!("d@{i}.service")));
        }
        assert_eq!(at("node-etcd@5.service"), None);
        let why = plan.iter().find(|p| p.unit == "node-etcd@5.service").unwrap().reason.clone().unwrap();
        assert!(!why.is_empty());
    }

    #[test]
    fn only_units_that_want_a_machine_with_their_assignments() {
        let units = vec![
            expand("a.service", "", None).unwrap(),
            expand("b.service", "", None).unwrap(),
            expand("c.service", "", None).unwrap(),
            expand("t@.service", "", Some("1")).unwrap(),
        ];
        let mut snap = snapshot(units, &["m1"]);
        snap.desired.insert("b.service".into(), Desired::Inactive);
        snap.desired.remove("c.service");
        let template = template_record("t@.service", "").unwrap();
        snap.units.insert(template.name.clone(), template);
        snap.desired.insert("t@.service".into(), Desired::Launched);
        snap.assign.insert(("m1".into(), "a.service".into()), "h".into());
        snap.assign.insert(("m1".into(), "b.service".into()), "h".into());
        let starting = BTreeSet::from(["c.service"]);
        let got = input(&snap, snap.units.values().map(Unit::from), &starting);
        let names: Vec<&str> = got.units.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["a.service", "c.service", "t@1.service"]);
        assert_eq!(
            got.current,
            [Placement { unit: "a.service".into(), machine: Some("m1".into()), reason: None }]
        );
        assert_eq!(got.machines, [machine("m1")]);
    }
}
