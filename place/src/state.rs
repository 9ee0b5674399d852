//! What changes while placing: where each unit is, what each machine
//! runs and how loaded it is, which machines are gone, and why units wait.
//!
//! [`State`] is kept apart from [`Rules`] so that every change is made
//! here with the rules only read: [`State::add`] and [`State::remove`] keep
//! loads, residents and pattern counters in step, and [`State::forget`]
//! is all that losing a machine does before the units it ran are placed
//! again.

use fleetkit_core::records::MachineRecord;

use crate::fxhash::{FxMap, FxSet};
use crate::ids::{ClassNo, MachineNo, MaybeMachine, UnitNo};
use crate::index::{Count, Counts, LoadOrder};
use crate::reason::Deferred;
use crate::rules::Rules;

/// Where `MachineID=` points.
#[derive(Debug, Clone)]
pub enum Target {
    Any,
    One(MachineNo),
    NoMatch,
    Ambiguous(Vec<MachineNo>),
}

/// The live machines of one class, the least loaded first.
#[derive(Debug)]
pub struct Class {
    /// The live members, by number.
    pub members: Vec<MachineNo>,
    /// Whether each machine is a live member.
    pub member: Vec<bool>,
    /// Every member ever, in (load, ID) order.
    pub order: LoadOrder,
}

impl Class {
    pub fn new(member: Vec<bool>) -> Self {
        let members: Vec<MachineNo> =
            member.iter().enumerate().filter(|(_, &b)| b).map(|(i, _)| MachineNo::new(i)).collect();
        Class { order: LoadOrder::new(&members), members, member }
    }
}

/// A unit's position in the order of placing, or none yet.
pub const UNORDERED: u32 = u32::MAX;

/// One `u64` per (global unit, machine): a set of pairs costs a hash of two.
pub fn key(u: UnitNo, m: MachineNo) -> u64 {
    (u64::from(u.raw()) << 32) | u64::from(m.raw())
}

/// The placement so far, with what makes its next question cheap: per
/// machine its load and pattern counters, per class its machines in load
/// order. Built empty by [`crate::build`], filled by [`crate::choose`].
pub struct State {
    pub classes: Vec<Class>,
    /// (class, slot in its order) of each live machine.
    pub machine_classes: Vec<Vec<(ClassNo, u32)>>,
    /// Non-global units on each machine.
    pub load: Vec<u32>,
    pub counts: Counts,
    /// Every unit on each machine, global or not.
    pub residents: Vec<Vec<UnitNo>>,
    /// The machine of each non-global unit.
    pub assigned: Vec<MaybeMachine>,
    /// (global unit, machine) pairs, by [`key`].
    pub global_on: FxSet<u64>,
    pub global_machines: FxMap<UnitNo, Vec<MachineNo>>,
    /// `MachineID=` targets, by unit.
    pub targets: FxMap<UnitNo, Target>,
    /// Why units are not placed (few, so kept by unit rather than per unit).
    pub reasons: FxMap<UnitNo, String>,
    pub deferred: FxMap<UnitNo, Deferred>,
    /// Each non-global unit's place in the order of placing.
    pub position: Vec<u32>,
    /// Units moved off their machine by `Replaces=`, so far.
    pub evictions: usize,
    pub dead: Vec<bool>,
    pub alive: usize,
}

impl State {
    /// Nothing placed yet, on `classes` of machines.
    pub fn new(r: &Rules, classes: Vec<Class>, targets: FxMap<UnitNo, Target>) -> Self {
        let (n, m) = (r.units(), r.machines.len());
        let mut machine_classes = vec![Vec::new(); m];
        for (ci, class) in classes.iter().enumerate() {
            for (slot, &mm) in class.members.iter().enumerate() {
                machine_classes[mm.ix()].push((ClassNo::new(ci), u32::try_from(slot).unwrap_or(u32::MAX)));
            }
        }
        State {
            classes,
            machine_classes,
            load: vec![0; m],
            counts: Counts::new(r.patterns.len()),
            residents: vec![Vec::new(); m],
            assigned: vec![MaybeMachine::NONE; n],
            global_on: FxSet::default(),
            global_machines: FxMap::default(),
            targets,
            reasons: FxMap::default(),
            deferred: FxMap::default(),
            position: vec![UNORDERED; n],
            evictions: 0,
            dead: vec![false; m],
            alive: m,
        }
    }

    pub fn assigned(&self, u: UnitNo) -> Option<MachineNo> {
        self.assigned[u.ix()].get()
    }

    pub fn class(&self, r: &Rules, u: UnitNo) -> &Class {
        &self.classes[r.info(u).class.ix()]
    }

    fn set_load(&mut self, m: MachineNo, load: u32) {
        self.load[m.ix()] = load;
        for &(c, slot) in &self.machine_classes[m.ix()] {
            self.classes[c.ix()].order.set(slot, m, Some(load));
        }
    }

    /// Puts `u` on `m`.
    pub fn add(&mut self, r: &Rules, u: UnitNo, m: MachineNo) {
        for &p in r.matched_by.get(u) {
            self.counts.add(p, m, Count::Hits);
        }
        for &p in r.anti.get(u) {
            self.counts.add(p, m, Count::Holds);
        }
        self.residents[m.ix()].push(u);
        if r.is_global(u) {
            self.global_on.insert(key(u, m));
            self.global_machines.entry(u).or_default().push(m);
        } else {
            self.assigned[u.ix()] = Some(m).into();
            self.reasons.remove(&u);
            self.deferred.remove(&u);
            self.set_load(m, self.load[m.ix()] + 1);
        }
    }

    /// Takes non-global unit `u` off `m`.
    pub fn remove(&mut self, r: &Rules, u: UnitNo, m: MachineNo) {
        for &p in r.matched_by.get(u) {
            self.counts.sub(p, m, Count::Hits);
        }
        for &p in r.anti.get(u) {
            self.counts.sub(p, m, Count::Holds);
        }
        let res = &mut self.residents[m.ix()];
        if let Some(i) = res.iter().position(|&x| x == u) {
            res.swap_remove(i);
        }
        self.assigned[u.ix()] = MaybeMachine::NONE;
        self.set_load(m, self.load[m.ix()] - 1);
    }

    /// Forgets live machine `m`: its units leave it, its classes and the
    /// `MachineID=` targets lose it. Returns the units to place again:
    /// the non-global ones it ran, the `MachineID=` units still waiting
    /// (their prefix may have become unique), and followers waiting on
    /// any of those.
    pub fn forget(&mut self, r: &Rules, m: MachineNo) -> Vec<UnitNo> {
        let mut lost: Vec<UnitNo> =
            self.residents[m.ix()].iter().copied().filter(|&u| !r.is_global(u)).collect();
        for &u in &lost {
            self.remove(r, u, m);
        }
        self.dead[m.ix()] = true;
        self.alive -= 1;
        for (c, slot) in std::mem::take(&mut self.machine_classes[m.ix()]) {
            let class = &mut self.classes[c.ix()];
            class.order.set(slot, m, None);
            class.member[m.ix()] = false;
            class.members.retain(|&x| x != m);
        }
        for g in std::mem::take(&mut self.residents[m.ix()]) {
            self.global_on.remove(&key(g, m));
            if let Some(ms) = self.global_machines.get_mut(&g) {
                ms.retain(|&x| x != m);
            }
        }
        for &u in &r.pinned {
            let Some(id) = &r.constraints[u.ix()].machine_id else { continue };
            self.targets.insert(u, resolve_machine_id(id, &r.machines, &self.dead));
            if self.assigned(u).is_none() && !r.is_global(u) && !lost.contains(&u) {
                lost.push(u);
            }
        }
        let mut i = 0;
        while i < lost.len() {
            for &f in r.followers.get(lost[i]) {
                if self.assigned(f).is_none() && self.position[f.ix()] != UNORDERED && !lost.contains(&f) {
                    lost.push(f);
                }
            }
            i += 1;
        }
        lost
    }
}

/// `MachineID=`'s machine among the live ones (`dead` may be empty).
pub fn resolve_machine_id(id: &str, machines: &[&MachineRecord], dead: &[bool]) -> Target {
    let start = machines.partition_point(|m| m.id.as_str() < id);
    let matches: Vec<MachineNo> = (start..machines.len())
        .take_while(|&i| machines[i].id.starts_with(id))
        .filter(|&i| !dead.get(i).copied().unwrap_or(false))
        .map(MachineNo::new)
        .collect();
    match matches.as_slice() {
        [] => Target::NoMatch,
        [one] => Target::One(*one),
        // A full ID wins over longer IDs it is a prefix of.
        [first, ..] if machines[first.ix()].id == id => Target::One(*first),
        _ => Target::Ambiguous(matches),
    }
}
