//! Which machine each unit gets, in fleet's order of preference.
//!
//! Globals first, on every machine of their class where nothing conflicts;
//! then current placements that still hold ([`State::keep`]); then every
//! other unit in [`State::order`] (by name, each follower right after its
//! last peer): a follower beside its peers, a `MachineID=` unit on its
//! machine, a `Replaces=` unit on a replaced unit's machine (that unit
//! moves, with its followers), the rest on the least loaded machine of
//! their class that takes them, ties by ID. A unit that gets no machine is
//! left with a reason, or a [`Deferred`] one worded at the end.

use std::collections::BTreeSet;

use fleetkit_core::records::Placement;

use crate::fxhash::FxMap;
use crate::ids::{MachineNo, UnitNo};
use crate::reason::{qualifier, Deferred};
use crate::rules::Rules;
use crate::state::{State, Target, UNORDERED};

impl State {
    /// Each global unit on every machine of its class where nothing blocks
    /// it. Globals go first: only a global can keep a global off a machine,
    /// and the other units then see them when they choose.
    pub fn place_globals(&mut self, r: &Rules) {
        for u in UnitNo::all(r.units()) {
            if !r.is_global(u) {
                continue;
            }
            let class = r.info(u).class.ix();
            for i in 0..self.classes[class].members.len() {
                let m = self.classes[class].members[i];
                if self.blocker(r, u, m).is_none() {
                    self.add(r, u, m);
                }
            }
            if !self.global_machines.contains_key(&u) {
                self.deferred.insert(u, Deferred::Scan);
            }
        }
    }

    /// Non-global units by name, each follower moved to just after its last
    /// peer. Units caught in a MachineOf cycle are left out, with a reason.
    pub fn order(&mut self, r: &Rules) -> Vec<UnitNo> {
        let n = r.units();
        let mut waiting: Vec<u32> = UnitNo::all(n)
            .map(|u| {
                let peers = r.peers.get(u).iter().filter(|&&p| !r.is_global(p)).count();
                u32::try_from(peers).unwrap_or(u32::MAX)
            })
            .collect();
        let mut order = Vec::with_capacity(n);
        let mut stack = Vec::new();
        for u in UnitNo::all(n) {
            if r.is_global(u) || waiting[u.ix()] != 0 || self.position[u.ix()] != UNORDERED {
                continue;
            }
            stack.push(u);
            while let Some(x) = stack.pop() {
                self.position[x.ix()] = u32::try_from(order.len()).unwrap_or(UNORDERED);
                order.push(x);
                for &f in r.followers.get(x).iter().rev() {
                    waiting[f.ix()] -= 1;
                    if waiting[f.ix()] == 0 {
                        stack.push(f);
                    }
                }
            }
        }
        let stuck: Vec<UnitNo> =
            UnitNo::all(n).filter(|&u| !r.is_global(u) && self.position[u.ix()] == UNORDERED).collect();
        if !stuck.is_empty() {
            let names: Vec<&str> = stuck.iter().take(5).map(|&u| r.names.get(u)).collect();
            let more = if stuck.len() > 5 { ", …" } else { "" };
            let reason = format!(
                "MachineOf cycle among {}{more}: each waits for another to be placed; make one of them not follow the others",
                names.join(", ")
            );
            for u in stuck {
                self.reasons.insert(u, reason.clone());
            }
        }
        order
    }

    /// Keeps every current placement whose machine is alive and whose rules
    /// still hold, in `order` so followers are judged after their peers.
    pub fn keep(&mut self, r: &Rules, current: &[Placement], order: &[UnitNo]) {
        if current.is_empty() {
            return;
        }
        let by_id: FxMap<&str, MachineNo> =
            r.machines.iter().enumerate().map(|(i, m)| (m.id.as_str(), MachineNo::new(i))).collect();
        let mut wanted: Vec<Option<MachineNo>> = vec![None; r.units()];
        for p in current {
            let (Some(u), Some(mid)) = (r.names.find_near(&p.unit, UnitNo::new(0)), p.machine.as_deref())
            else {
                continue;
            };
            if let Some(&m) = by_id.get(mid) {
                // A unit listed on several machines: the lowest machine ID counts.
                let w = &mut wanted[u.ix()];
                *w = Some(w.map_or(m, |w| w.min(m)));
            }
        }
        for &u in order {
            if let Some(m) = wanted[u.ix()] {
                if self.fits(r, u, m) {
                    self.add(r, u, m);
                }
            }
        }
    }

    /// Places every unit of `order` that has no machine, in that order.
    pub fn place_rest(&mut self, r: &Rules, order: &[UnitNo]) {
        let mut todo: Vec<UnitNo> = order.iter().copied().filter(|&u| self.assigned(u).is_none()).collect();
        loop {
            let before = self.evictions;
            let mut placed = 0;
            for &u in &todo {
                if self.assigned(u).is_none() {
                    self.place_one(r, u);
                    placed += usize::from(self.assigned(u).is_some());
                }
            }
            // Units moved by Replaces= and not yet placed again are waiting too.
            todo = order.iter().copied().filter(|&u| self.assigned(u).is_none()).collect();
            // Another pass only when it can change something: a move made
            // room, or units placed since a Replaces= unit failed may now be
            // replaced. Each unit moves others at most once, so this ends.
            let retry_replaces = placed > 0 && todo.iter().any(|&u| !r.replaces(u).is_empty());
            if self.evictions == before && !retry_replaces {
                break;
            }
        }
    }

    fn place_one(&mut self, r: &Rules, u: UnitNo) {
        self.reasons.remove(&u);
        self.deferred.remove(&u);
        let c = r.constraints[u.ix()];
        if let Some(k) = r.missing_peer(u) {
            let peer = &c.machine_of[k];
            self.reasons
                .insert(u, format!("MachineOf {peer}, which is not placed (no unit of that name was given)"));
            return;
        }
        if !r.peers.get(u).is_empty() {
            self.place_follower(r, u);
            return;
        }
        let id = c.machine_id.as_deref().unwrap_or_default();
        match self.target(r, u) {
            Target::Any => {}
            Target::One(m) => {
                if self.fits(r, u, m) {
                    self.add(r, u, m);
                } else {
                    let lead = format!("MachineID={id} is machine {}", r.machine_id(m));
                    self.deferred.insert(u, Deferred::On { lead, m });
                }
                return;
            }
            Target::NoMatch => {
                self.reasons.insert(
                    u,
                    format!("MachineID={id} matches no machine; check the ID against the machine list"),
                );
                return;
            }
            Target::Ambiguous(ms) => {
                let ids: Vec<&str> = ms.iter().take(3).map(|&m| r.machine_id(m)).collect();
                self.reasons.insert(
                    u,
                    format!(
                        "MachineID={id} is a prefix of {} machines ({}{}); give more of the ID",
                        ms.len(),
                        ids.join(", "),
                        if ms.len() > 3 { ", …" } else { "" }
                    ),
                );
                return;
            }
        }
        // Each move places a unit that wins over the ones it moves, so moves
        // end; the budget only guards against globs that replace in a circle.
        let budget = 2 * r.units() + 16;
        if !r.replaces(u).is_empty() && self.evictions < budget && self.try_replace(r, u) {
            return;
        }
        match self.class(r, u).order.first(|m| self.blocker(r, u, m).is_none()) {
            Some(m) => self.add(r, u, m),
            None => {
                self.deferred.insert(u, Deferred::Scan);
            }
        }
    }

    fn place_follower(&mut self, r: &Rules, u: UnitNo) {
        let mut fixed: Option<(UnitNo, MachineNo)> = None;
        for &p in r.peers.get(u) {
            if r.is_global(p) {
                continue;
            }
            let Some(m) = self.assigned(p) else {
                self.reasons.insert(u, format!("MachineOf {}, which is not placed", r.names.get(p)));
                return;
            };
            match fixed {
                None => fixed = Some((p, m)),
                Some((q, mq)) if mq != m => {
                    self.reasons.insert(u, format!(
                        "MachineOf {} and {}, which run on different machines ({} and {}); it cannot be beside both",
                        r.names.get(q),
                        r.names.get(p),
                        r.machine_id(mq),
                        r.machine_id(m)
                    ));
                    return;
                }
                Some(_) => {}
            }
        }
        if let Some((p, m)) = fixed {
            if self.fits(r, u, m) {
                self.add(r, u, m);
            } else {
                let lead = format!("MachineOf {} puts it on {}", r.names.get(p), r.machine_id(m));
                self.deferred.insert(u, Deferred::On { lead, m });
            }
            return;
        }
        // Every peer is global: any machine that runs all of them will do.
        match self.class(r, u).order.first(|m| self.fits(r, u, m)) {
            Some(m) => self.add(r, u, m),
            None => {
                let peers: Vec<&str> = r.peers.get(u).iter().map(|&p| r.names.get(p)).collect();
                let reason = format!(
                    "MachineOf {}: no machine{} that runs {} takes it{}",
                    peers.join(" "),
                    qualifier(r.label(r.info(u).class)),
                    if peers.len() > 1 { "all of them" } else { "it" },
                    r.constraints[u.ix()]
                        .conflicts
                        .first()
                        .map(|g| format!(" (Conflicts={g})"))
                        .unwrap_or_default()
                );
                self.reasons.insert(u, reason);
            }
        }
    }

    /// `Replaces=`: take the machine of a unit it replaces, and move that
    /// unit (and whatever follows it) elsewhere. Returns false when no
    /// replaced unit's machine can take it; the caller places it normally.
    fn try_replace(&mut self, r: &Rules, u: UnitNo) -> bool {
        // By (load, machine), the least loaded first.
        let mut candidates: BTreeSet<(u32, MachineNo)> = BTreeSet::new();
        for &p in r.replaces(u) {
            for &x in &r.matching_units[p.ix()] {
                if let Some(m) = self.assigned(x).filter(|_| x != u) {
                    candidates.insert((self.load[m.ix()], m));
                }
            }
        }
        for (_, m) in candidates {
            if !self.class(r, u).member[m.ix()] {
                continue;
            }
            let leaving = self.leaving(r, u, m);
            // Units that replace each other stay put, as fleet had it:
            // otherwise each run would swap them back.
            let mutual =
                leaving.iter().any(|&x| r.replaces(x).iter().any(|p| r.matched_by.get(u).contains(p)));
            if mutual || !self.fits_without(r, u, m, &leaving) {
                continue;
            }
            for &x in &leaving {
                self.remove(r, x, m);
            }
            self.evictions += 1;
            self.add(r, u, m);
            let mut leaving = leaving;
            leaving.sort_unstable_by_key(|&x| self.position[x.ix()]);
            for x in leaving {
                self.place_one(r, x);
            }
            return true;
        }
        false
    }

    /// The non-global units on `m` that `u` replaces, and their followers.
    fn leaving(&self, r: &Rules, u: UnitNo, m: MachineNo) -> Vec<UnitNo> {
        let replaces = r.replaces(u);
        let mut out: Vec<UnitNo> = self.residents[m.ix()]
            .iter()
            .copied()
            .filter(|&x| !r.is_global(x) && r.matched_by.get(x).iter().any(|p| replaces.contains(p)))
            .collect();
        let mut i = 0;
        while i < out.len() {
            for &f in r.followers.get(out[i]) {
                if self.assigned(f) == Some(m) && !out.contains(&f) {
                    out.push(f);
                }
            }
            i += 1;
        }
        out
    }
}
