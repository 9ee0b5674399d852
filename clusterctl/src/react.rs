//! What the scheduler makes of the cluster and of each change to it, with
//! no etcd in sight, so that a full round and the leader's reactions to
//! watch events are one piece of code and a test can hold them to the same
//! answers.
//!
//! [`full`] plans every unit that wants a machine, keeping what holds
//! (nothing moves without a reason). A machine that goes costs only what it
//! held: [`lost`] asks the plan kept from the last full plan to re-place
//! that machine's units (place's `remove_machines`), which gives what a full
//! plan would with the machine gone and the current assignments kept; a
//! unit stopped or started again ([`restate`]) costs its assignments. All
//! change the snapshot's assignments in memory and note each change in
//! [`Changes`], whose net difference is what gets written. When that
//! changes what the rules read (a unit with a bad desired value keeps the
//! state of its assignments), the caller plans everything again.

use std::collections::{BTreeMap, BTreeSet};

use place::Plan;

use crate::cluster::{Assignment, Snapshot};
use crate::placement::{self, Input};

/// What the scheduler reads of a unit record: what the rules read, and the
/// hash that each `assign/` key it writes holds; not the text, which at
/// 100,000 units is most of the bytes and nothing the rules look at.
pub type Planned = place::Unit<String>;

/// The cluster as the scheduler holds it.
pub type Snap = Snapshot<Planned>;

/// `assign/` keys: (machine, unit).
pub type Key = (String, String);

/// The input of a full plan: every unit of `snap` that wants a machine.
#[must_use]
pub fn input(snap: &Snap) -> Input<String> {
    placement::input(snap, snap.units.values().cloned(), &BTreeSet::new())
}

/// The assignments changed in memory since the last write, each with what
/// it held before, so that what is written is the net difference: a unit
/// moved twice before a write is written once.
#[derive(Debug, Default)]
pub struct Changes {
    before: BTreeMap<Key, Option<String>>,
}

impl Changes {
    fn set(&mut self, snap: &mut Snap, key: Key, value: Option<String>) {
        let old = match value {
            Some(v) => snap.assign.insert(key.clone(), v),
            None => snap.assign.remove(&key),
        };
        self.before.entry(key).or_insert(old);
    }

    /// The keys to delete and the keys to write, in key order: what the
    /// changes amount to against what was there before.
    #[must_use]
    pub fn ops<'s>(&'s self, snap: &'s Snap) -> (Vec<&'s Key>, Vec<(&'s Key, &'s str)>) {
        let mut removals = Vec::new();
        let mut additions = Vec::new();
        for (key, before) in &self.before {
            match snap.assign.get_key_value(key) {
                None if before.is_some() => removals.push(key),
                Some((k, now)) if before.as_ref() != Some(now) => additions.push((k, now.as_str())),
                _ => {}
            }
        }
        (removals, additions)
    }

    /// Forgets the changes once written.
    pub fn clear(&mut self) {
        self.before.clear();
    }
}

/// The value of `unit`'s assignments: its record's hash and its desired state.
fn value_of(snap: &Snap, unit: &str) -> String {
    let hash = snap.units.get(unit).map(|u| u.hash.clone()).unwrap_or_default();
    Assignment { hash, state: snap.desired_of(unit) }.to_json()
}

/// Makes `snap`'s assignments what `plan` (built from [`input`] of `snap`)
/// says for every unit, and `unplaceable` the units it cannot place, with
/// place's reason. Units the snapshot could not read keep what they have.
pub fn full(
    plan: &Plan<'_>,
    snap: &mut Snap,
    changes: &mut Changes,
    unplaceable: &mut BTreeMap<String, String>,
) {
    let mut target: BTreeSet<Key> = BTreeSet::new();
    let mut writes = Vec::new();
    unplaceable.clear();
    let walked = plan.for_each(|p| {
        match p.machine {
            Some(m) => {
                let key = (m.to_owned(), p.unit.to_owned());
                if !snap.as_is.contains(p.unit) {
                    let value = value_of(snap, p.unit);
                    if snap.assign.get(&key) != Some(&value) {
                        writes.push((key.clone(), value));
                    }
                }
                target.insert(key);
            }
            None => {
                unplaceable.insert(p.unit.to_owned(), p.reason.unwrap_or_default());
            }
        }
        Ok::<(), std::convert::Infallible>(())
    });
    if let Err(never) = walked {
        match never {}
    }
    let gone: Vec<Key> =
        snap.assign.keys().filter(|k| !target.contains(*k) && !snap.as_is.contains(&k.1)).cloned().collect();
    for key in gone {
        changes.set(snap, key, None);
    }
    for (key, value) in writes {
        changes.set(snap, key, Some(value));
    }
}

/// Machines `ids` are gone: their assignments go, and `plan` places their
/// units again, with what follows them and what waited for them. Costs
/// what the machines held. `plan` must be the one [`full`] last used on
/// `snap`, with only machines gone since.
///
/// Returns false, having changed nothing, when a machine held a unit left
/// as it is (which then holds no place: the plan no longer fits), so that
/// the caller plans everything.
#[must_use]
pub fn lost(
    plan: &mut Plan<'_>,
    snap: &mut Snap,
    ids: &[&str],
    changes: &mut Changes,
    unplaceable: &mut BTreeMap<String, String>,
) -> bool {
    let holds_as_is = |id: &&str| {
        snap.assign
            .range((id.to_string(), String::new())..)
            .take_while(|((m, _), _)| m == id)
            .any(|((_, u), _)| snap.as_is.contains(u))
    };
    if ids.iter().any(holds_as_is) {
        return false;
    }
    for id in ids {
        let held: Vec<Key> = snap
            .assign
            .range((id.to_string(), String::new())..)
            .take_while(|((m, _), _)| m == id)
            .filter(|((_, u), _)| !snap.as_is.contains(u))
            .map(|(k, _)| k.clone())
            .collect();
        for key in held {
            changes.set(snap, key, None);
        }
    }
    for p in plan.remove_machines(ids) {
        match p.machine {
            Some(m) => {
                unplaceable.remove(&p.unit);
                if !snap.as_is.contains(&p.unit) {
                    let value = value_of(snap, &p.unit);
                    let key = (m, p.unit);
                    if snap.assign.get(&key) != Some(&value) {
                        changes.set(snap, key, Some(value));
                    }
                }
            }
            None => {
                unplaceable.insert(p.unit, p.reason.unwrap_or_default());
            }
        }
    }
    true
}

/// Unit `name`'s desired state changed between loaded and launched: its
/// assignments carry the new state, and nothing moves (a full plan would
/// place the same units alike).
pub fn restate(snap: &mut Snap, name: &str, changes: &mut Changes) {
    if snap.as_is.contains(name) {
        return;
    }
    let value = value_of(snap, name);
    let stale: Vec<Key> =
        snap.assign.iter().filter(|((_, u), v)| u == name && **v != value).map(|(k, _)| k.clone()).collect();
    for key in stale {
        changes.set(snap, key, Some(value.clone()));
    }
}

#[cfg(test)]
mod tests {
    //! The property the scheduler stands on: for any sequence of changes,
    //! the leader's reactions leave the assignments (and the units it
    //! cannot place) exactly as one full round from the same snapshot and
    //! the same current assignments would.

    use fleetkit_core::constraints::Constraints;
    use fleetkit_core::records::MachineRecord;
    use proptest::prelude::*;

    use super::*;
    use crate::cluster::{Change, Desired};
    use crate::keys::{Dir, Keys};

    /// One thing that can happen to a cluster.
    #[derive(Debug, Clone)]
    enum Event {
        /// Machine `n`'s key goes (its lease ended, or deleted).
        Lose(usize),
        /// Machine `n` (re)appears, with or without `disk=ssd`.
        Join(usize, bool),
        /// Unit `n` submitted with rules `rules`.
        Submit(usize, u8),
        Destroy(usize),
        Want(usize, u8),
        /// An operator deletes whatever `assign/` key sorts `n`th.
        DropAssignment(usize),
        /// A record or desired value that does not parse.
        Garbage(usize, bool),
    }

    const MACHINES: usize = 6;
    const UNITS: usize = 12;

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            4 => (0..MACHINES).prop_map(Event::Lose),
            2 => (0..MACHINES, any::<bool>()).prop_map(|(m, s)| Event::Join(m, s)),
            3 => (0..UNITS, any::<u8>()).prop_map(|(u, r)| Event::Submit(u, r)),
            1 => (0..UNITS).prop_map(Event::Destroy),
            2 => (0..UNITS, any::<u8>()).prop_map(|(u, d)| Event::Want(u, d)),
            1 => (0..40usize).prop_map(Event::DropAssignment),
            1 => (0..UNITS, any::<bool>()).prop_map(|(u, d)| Event::Garbage(u, d)),
        ]
    }

    fn unit_name(n: usize) -> String {
        if n < 6 {
            format!("app@{n}.service")
        } else {
            format!("side@{}.service", n - 6)
        }
    }

    /// A unit record with rules picked by `r`: conflicts among the apps,
    /// sidekicks beside their app, metadata, global units.
    fn record(n: usize, r: u8) -> String {
        let mut c = Constraints::default();
        if r & 1 == 1 {
            c.conflicts.push("app@*.service".into());
        }
        if n >= 6 && r & 2 == 2 {
            c.machine_of.push(unit_name(n - 6));
        }
        if r & 4 == 4 {
            c.machine_metadata.insert("disk".into(), vec!["ssd".into()]);
        }
        if r & 0x38 == 0x38 {
            c.global = true;
            c.machine_of.clear();
        }
        serde_json::json!({"name": unit_name(n), "hash": format!("h{r}"), "constraints": c}).to_string()
    }

    fn machine_id(n: usize) -> String {
        format!("m{n}")
    }

    fn machine(n: usize, ssd: bool) -> String {
        let metadata = if ssd { BTreeMap::from([("disk".into(), "ssd".into())]) } else { BTreeMap::new() };
        let rec = MachineRecord { id: machine_id(n), ip: format!("10.0.0.{n}"), metadata, agent: None };
        serde_json::to_string(&rec).unwrap()
    }

    /// Applies `e` to `snap`, as the watch would.
    fn apply(snap: &mut Snap, e: &Event) -> Vec<Change> {
        let desired = [Desired::Inactive, Desired::Loaded, Desired::Launched];
        let out: Vec<Change> = match e {
            Event::Lose(m) => vec![snap.apply(Dir::Machines, machine_id(*m), None)],
            Event::Join(m, ssd) => {
                vec![snap.apply(Dir::Machines, machine_id(*m), Some((machine(*m, *ssd).as_bytes(), 7)))]
            }
            Event::Submit(u, r) => vec![
                snap.apply(Dir::Units, unit_name(*u), Some((record(*u, *r).as_bytes(), 0))),
                snap.apply(Dir::Desired, unit_name(*u), Some((b"launched", 0))),
            ],
            Event::Destroy(u) => {
                vec![
                    snap.apply(Dir::Units, unit_name(*u), None),
                    snap.apply(Dir::Desired, unit_name(*u), None),
                ]
            }
            Event::Want(u, d) => {
                let d = desired[usize::from(*d) % 3].as_str();
                vec![snap.apply(Dir::Desired, unit_name(*u), Some((d.as_bytes(), 0)))]
            }
            Event::DropAssignment(i) => match snap.assign.keys().nth(*i).cloned() {
                Some((m, u)) => vec![snap.apply(Dir::Assign, format!("{m}/{u}"), None)],
                None => vec![],
            },
            Event::Garbage(u, true) => vec![snap.apply(Dir::Desired, unit_name(*u), Some((b"running", 0)))],
            Event::Garbage(u, false) => vec![snap.apply(Dir::Units, unit_name(*u), Some((b"{not json", 0)))],
        };
        let settled = snap.settle(&keys());
        out.into_iter().chain(settled.then_some(Change::Other)).collect()
    }

    fn keys() -> Keys {
        Keys::new("/fleetkit")
    }

    /// Full rounds on a copy of `snap` until they change nothing (a unit
    /// with a bad desired value keeps the state of its assignments, so one
    /// round can change what the next reads, and the leader plans again at
    /// once): the assignments and the unplaceable units then.
    fn full_rounds(snap: &Snap) -> (BTreeMap<Key, String>, BTreeSet<String>) {
        let mut copy = snap.clone();
        for _ in 0..4 {
            let input = input(&copy);
            let plan = Plan::new(&input.units, &input.machines, &input.current).unwrap();
            let mut unplaceable = BTreeMap::new();
            full(&plan, &mut copy, &mut Changes::default(), &mut unplaceable);
            if !copy.settle(&keys()) {
                return (copy.assign, unplaceable.into_keys().collect());
            }
        }
        panic!("full rounds did not settle");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]
        #[test]
        fn reactions_equal_full_rounds(
            start in proptest::collection::vec(event(), 0..20),
            events in proptest::collection::vec(proptest::collection::vec(event(), 1..4), 1..25),
        ) {
            let mut snap = Snap::default();
            for m in 0..MACHINES {
                apply(&mut snap, &Event::Join(m, m % 2 == 0));
            }
            for e in &start {
                apply(&mut snap, e);
            }
            let mut unplaceable = BTreeMap::new();
            let mut changes = Changes::default();
            let mut input = input(&snap);
            let mut plan = Plan::new(&input.units, &input.machines, &input.current).unwrap();
            full(&plan, &mut snap, &mut changes, &mut unplaceable);
            for batch in &events {
                let (mut gone, mut restated) = (Vec::new(), Vec::new());
                let mut dirty = false;
                for e in batch {
                    for c in apply(&mut snap, e) {
                        match c {
                            Change::None => {}
                            Change::MachineGone(id) => gone.push(id),
                            Change::State(name) => restated.push(name),
                            Change::Other => dirty = true,
                        }
                    }
                }
                let expected = full_rounds(&snap);
                if !dirty {
                    let gone: Vec<&str> = gone.iter().map(String::as_str).collect();
                    if lost(&mut plan, &mut snap, &gone, &mut changes, &mut unplaceable) {
                        for name in &restated {
                            restate(&mut snap, name, &mut changes);
                        }
                        // Moving units can change the state a unit with a bad
                        // desired value keeps: then it is planned again.
                        dirty = snap.settle(&keys());
                    } else {
                        dirty = true;
                    }
                }
                while dirty {
                    drop(plan);
                    input = super::input(&snap);
                    plan = Plan::new(&input.units, &input.machines, &input.current).unwrap();
                    full(&plan, &mut snap, &mut changes, &mut unplaceable);
                    dirty = snap.settle(&keys());
                }
                let got = (snap.assign.clone(), unplaceable.keys().cloned().collect::<BTreeSet<_>>());
                prop_assert_eq!(&got, &expected, "after {:?}", batch);
            }
        }
    }

    #[test]
    fn changes_write_the_net_difference() {
        let mut snap = Snap::default();
        snap.assign.insert(("m1".into(), "a".into()), "x".into());
        snap.assign.insert(("m1".into(), "b".into()), "x".into());
        let mut c = Changes::default();
        c.set(&mut snap, ("m1".into(), "a".into()), None);
        c.set(&mut snap, ("m2".into(), "a".into()), Some("x".into()));
        c.set(&mut snap, ("m2".into(), "a".into()), None);
        c.set(&mut snap, ("m1".into(), "a".into()), Some("x".into()));
        c.set(&mut snap, ("m1".into(), "b".into()), None);
        c.set(&mut snap, ("m3".into(), "b".into()), Some("x".into()));
        let (removals, additions) = c.ops(&snap);
        let b1 = ("m1".to_owned(), "b".to_owned());
        let b3 = ("m3".to_owned(), "b".to_owned());
        assert_eq!(removals, vec![&b1]);
        assert_eq!(additions, vec![(&b3, "x")]);
    }
}
