//! The placement itself: fleet's rules and choice, computed from indexes.
//!
//! Order of work, each step deterministic (units by name, machines by ID):
//! 1. check the input (duplicates, malformed globs, contradictions);
//! 2. global units, on every machine whose metadata fits and where no
//!    global already there conflicts with them;
//! 3. current placements that still hold are kept (followers after their
//!    peers, so a follower stays only if its peer stayed beside it);
//! 4. every other unit, followers right after their last peer: MachineOf
//!    puts it beside its peers, MachineID on its machine, Replaces on the
//!    replaced unit's machine (which then moves, with its followers), and
//!    the rest on the least loaded machine that takes it, ties by ID.
//!
//! Load is the number of non-global units on a machine (fleet did not count
//! global units either). Each metadata class of machines keeps its machines
//! ordered by (load, ID), so the least loaded candidate is the first entry
//! and a machine that cannot take the unit is skipped in O(1) through the
//! pattern counters of [`crate::index`].

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::hash::BuildHasherDefault;

use fleetkit_core::records::{MachineRecord, Placement, UnitRecord};

use crate::index::{FxHasher, FxMap, Patterns};

type FxSet<T> = HashSet<T, BuildHasherDefault<FxHasher>>;

/// Input that cannot be planned: it names the unit or machine at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceError {
    message: String,
}

impl PlaceError {
    fn new(message: impl Into<String>) -> Self {
        Self { message: message.into() }
    }
}

impl fmt::Display for PlaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PlaceError {}

const NONE: u32 = u32::MAX;

/// Where `MachineID=` points.
#[derive(Debug, Clone)]
enum Target {
    Any,
    One(u32),
    NoMatch,
    Ambiguous(Vec<u32>),
}

/// A few pattern or unit ids. Nearly every unit has at most three of each
/// kind, kept inline: a million units then cost no allocation apiece.
#[derive(Debug, Clone)]
enum Ids {
    Inline(u8, [u32; 3]),
    Heap(Box<[u32]>),
}

impl From<&[u32]> for Ids {
    fn from(ids: &[u32]) -> Self {
        if ids.len() <= 3 {
            let mut a = [0; 3];
            a[..ids.len()].copy_from_slice(ids);
            Ids::Inline(u8::try_from(ids.len()).unwrap_or(3), a)
        } else {
            Ids::Heap(ids.into())
        }
    }
}

impl std::ops::Deref for Ids {
    type Target = [u32];
    fn deref(&self) -> &[u32] {
        match self {
            Ids::Inline(n, a) => &a[..usize::from(*n)],
            Ids::Heap(b) => b,
        }
    }
}

impl<'a> IntoIterator for &'a Ids {
    type Item = &'a u32;
    type IntoIter = std::slice::Iter<'a, u32>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// A unit's rules, resolved to indexes.
#[derive(Debug)]
struct Unit {
    /// Pattern ids of its `Conflicts=` globs, then of its `Replaces=` globs.
    anti: Ids,
    n_conflicts: usize,
    /// Pattern ids (of any unit) that match this unit's name.
    matched_by: Ids,
    /// Its known `MachineOf=` peers.
    peers: Ids,
    /// A `MachineOf=` name that no given unit has.
    missing_peer: Option<usize>,
    class: u32,
    target: Target,
    global: bool,
}

impl Unit {
    fn replaces(&self) -> &[u32] {
        &self.anti[self.n_conflicts..]
    }
}

/// Machines whose metadata satisfies one `MachineMetadata=` requirement.
#[derive(Debug)]
struct Class {
    members: Vec<u32>,
    member: Vec<bool>,
    /// `(load << 32) | rank` of every member: the least loaded first.
    order: BTreeSet<u64>,
    /// `region=eu and disk=ssd`, empty for the class of all machines.
    label: String,
}

/// A reason whose words depend on where the others end up: worded once
/// every unit is placed, so a re-run with the output as `--current` gives
/// the same words.
#[derive(Debug, Clone)]
enum Deferred {
    /// No machine of its class takes it.
    Scan,
    /// Its rules name machine `m`, which does not take it.
    On { lead: String, m: u32 },
}

/// Why a machine cannot take a unit: a pattern on one side or the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Block {
    /// True when the unit's own glob matches a resident; false when a
    /// resident's glob matches the unit.
    mine: bool,
    pattern: u32,
}

fn key(pattern: u32, rank: u32) -> u64 {
    (u64::from(pattern) << 32) | u64::from(rank)
}

struct Planner<'a> {
    recs: Vec<&'a UnitRecord>,
    machines: Vec<&'a MachineRecord>,
    patterns: Patterns,
    units: Vec<Unit>,
    /// Units matched by each pattern (for `Replaces=`).
    matching_units: Vec<Vec<u32>>,
    followers: Vec<Vec<u32>>,
    classes: Vec<Class>,
    machine_classes: Vec<Vec<u32>>,
    load: Vec<u32>,
    hits: FxMap<u64, u32>,
    holds: FxMap<u64, u32>,
    residents: Vec<Vec<u32>>,
    assigned: Vec<u32>,
    global_on: FxSet<u64>,
    global_machines: FxMap<u32, Vec<u32>>,
    /// Why units are not placed (few, so kept by unit rather than per unit).
    reasons: FxMap<u32, String>,
    deferred: FxMap<u32, Deferred>,
    position: Vec<u32>,
    evictions: usize,
    dead: Vec<bool>,
    alive: usize,
    /// Units with `MachineID=`, whose target can change when machines go.
    pinned: Vec<u32>,
}

/// Computes where every unit runs. See the module documentation for the
/// rules; the output is sorted by unit name, then machine ID.
///
/// # Errors
/// [`PlaceError`] for a duplicate unit or machine, an empty name, a
/// malformed glob or contradictory `[X-Fleet]` rules.
pub fn plan(
    units: &[UnitRecord],
    machines: &[MachineRecord],
    current: &[Placement],
) -> Result<Vec<Placement>, PlaceError> {
    Ok(Cluster::new(units, machines, current)?.placements())
}

/// A placement held in memory, for a scheduler that reacts to one change
/// at a time: losing a machine re-places only that machine's units, in
/// far less time than planning everything again. The result is what
/// [`plan`] would give with the machine removed and the current placements
/// as `current` (the words of other units' reasons aside).
pub struct Cluster<'a> {
    planner: Planner<'a>,
}

impl fmt::Debug for Cluster<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("units", &self.planner.recs.len())
            .field("machines", &self.planner.machines.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Cluster<'a> {
    /// Plans `units` on `machines`, keeping `current` where it holds.
    ///
    /// # Errors
    /// As [`plan`].
    pub fn new(
        units: &'a [UnitRecord],
        machines: &'a [MachineRecord],
        current: &[Placement],
    ) -> Result<Self, PlaceError> {
        let mut p = Planner::new(units, machines)?;
        p.place_globals();
        let order = p.order();
        p.keep(current, &order);
        p.place_rest(&order);
        Ok(Cluster { planner: p })
    }

    /// Every placement, as [`plan`] returns them.
    #[must_use]
    pub fn placements(&self) -> Vec<Placement> {
        self.planner.output()
    }

    /// Writes every placement as [`Cluster::placements`] lists them, one
    /// JSON line each, without building the list; returns how many units
    /// have no machine.
    ///
    /// # Errors
    /// The writer's error.
    pub fn write_json<W: std::io::Write>(&self, out: &mut W) -> std::io::Result<usize> {
        #[derive(serde::Serialize)]
        struct Line<'a> {
            unit: &'a str,
            machine: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            reason: Option<String>,
        }
        let mut unplaced = 0;
        self.planner.each_placement(|unit, machine, reason| {
            unplaced += usize::from(machine.is_none());
            serde_json::to_writer(&mut *out, &Line { unit, machine, reason })?;
            out.write_all(b"\n")
        })?;
        Ok(unplaced)
    }

    /// Forgets machine `id` and places its units again. Returns the new
    /// placement of each non-global unit that was on it (a reason when it
    /// fits nowhere now), and of waiting units tried again — followers of
    /// those units, `MachineID=` units whose prefix may have become unique —
    /// sorted by unit name; empty for an unknown ID.
    pub fn remove_machine(&mut self, id: &str) -> Vec<Placement> {
        let p = &mut self.planner;
        let Ok(rank) = p.machines.binary_search_by(|m| m.id.as_str().cmp(id)) else { return Vec::new() };
        let m = idx(rank);
        if p.dead[rank] {
            return Vec::new();
        }
        let mut lost: Vec<u32> =
            p.residents[rank].iter().copied().filter(|&u| !p.units[u as usize].global).collect();
        for &u in &lost {
            p.remove(u, m);
        }
        p.dead[rank] = true;
        p.alive -= 1;
        let entry = (u64::from(p.load[rank]) << 32) | u64::from(m);
        for c in std::mem::take(&mut p.machine_classes[rank]) {
            let class = &mut p.classes[c as usize];
            class.order.remove(&entry);
            class.member[rank] = false;
            class.members.retain(|&x| x != m);
        }
        for g in std::mem::take(&mut p.residents[rank]) {
            p.global_on.remove(&key(g, m));
            if let Some(ms) = p.global_machines.get_mut(&g) {
                ms.retain(|&x| x != m);
            }
        }
        // A MachineID= prefix may have become unique.
        for i in 0..p.pinned.len() {
            let u = p.pinned[i];
            let Some(id) = &p.recs[u as usize].constraints.machine_id else { continue };
            let target = resolve_machine_id(id, &p.machines, &p.dead);
            p.units[u as usize].target = target;
            if p.assigned[u as usize] == NONE && !p.units[u as usize].global && !lost.contains(&u) {
                lost.push(u);
            }
        }
        // Followers that waited on a lost unit may fit where it goes now.
        let mut i = 0;
        while i < lost.len() {
            for &f in &p.followers[lost[i] as usize] {
                if p.assigned[f as usize] == NONE && p.position[f as usize] != NONE && !lost.contains(&f) {
                    lost.push(f);
                }
            }
            i += 1;
        }
        lost.sort_unstable_by_key(|&u| p.position[u as usize]);
        p.place_rest(&lost);
        lost.sort_unstable();
        lost.iter().map(|&u| p.placement_of(u)).collect()
    }
}

impl<'a> Planner<'a> {
    fn new(units: &'a [UnitRecord], machines: &'a [MachineRecord]) -> Result<Self, PlaceError> {
        let mut machines: Vec<&MachineRecord> = machines.iter().collect();
        machines.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        for w in machines.windows(2) {
            if w[0].id == w[1].id {
                return Err(PlaceError::new(format!(
                    "machine {} is listed twice; give each machine once",
                    w[0].id
                )));
            }
        }
        if machines.first().is_some_and(|m| m.id.is_empty()) {
            return Err(PlaceError::new("a machine record has an empty id"));
        }
        // Sorted by name through an 8-byte prefix key kept beside each
        // record: most comparisons end there, without following pointers.
        let mut keyed: Vec<(u64, &UnitRecord)> = units.iter().map(|u| (name_key(&u.name), u)).collect();
        keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.name.cmp(&b.1.name)));
        let recs: Vec<&UnitRecord> = keyed.iter().map(|k| k.1).collect();
        for w in recs.windows(2) {
            if w[0].name == w[1].name {
                return Err(PlaceError::new(format!(
                    "unit {} is listed twice; give each unit once",
                    w[0].name
                )));
            }
        }
        if recs.first().is_some_and(|u| u.name.is_empty()) {
            return Err(PlaceError::new("a unit record has an empty name"));
        }
        for r in &recs {
            let c = &r.constraints;
            let simple = c.machine_id.is_none() && !c.global && c.machine_metadata.is_empty();
            let plain =
                simple && (c.machine_of.is_empty() || c.conflicts.is_empty()) && c.replaces.is_empty();
            // Globs are checked when they are interned below.
            if plain {
                continue;
            }
            if let Some(problem) = c.problems().into_iter().next() {
                return Err(PlaceError::new(format!("{}: {problem}", r.name)));
            }
        }
        let n = recs.len();
        let m = machines.len();
        // Units are sorted by name: a search outward from unit `from` finds
        // a peer, which is nearly always a close neighbour by name
        // (`app-side@1.service` beside `app@1.service`).
        let by_name = |name: &str, from: usize| {
            let k = name_key(name);
            let cmp = |e: &(u64, &UnitRecord)| e.0.cmp(&k).then_with(|| e.1.name.as_str().cmp(name));
            let len = keyed.len();
            let (lo, hi) = match cmp(&keyed[from]) {
                std::cmp::Ordering::Equal => return Some(idx(from)),
                std::cmp::Ordering::Less => {
                    // The peer is after `from`: double the step until past it.
                    let mut step = 1;
                    while from + step < len && cmp(&keyed[from + step]).is_lt() {
                        step *= 2;
                    }
                    (from + step / 2 + 1, (from + step + 1).min(len))
                }
                std::cmp::Ordering::Greater => {
                    let mut step = 1;
                    while step <= from && cmp(&keyed[from - step]).is_gt() {
                        step *= 2;
                    }
                    (from.saturating_sub(step), from - step / 2)
                }
            };
            keyed[lo..hi].binary_search_by(cmp).ok().map(|j| idx(lo + j))
        };

        let mut patterns = Patterns::default();
        let mut anti_all: Vec<Ids> = Vec::with_capacity(n);
        let mut anti = Vec::new();
        let mut last_glob: Option<(&str, u32)> = None;
        for r in &recs {
            let c = &r.constraints;
            anti.clear();
            for (key, globs) in [("Conflicts=", &c.conflicts), ("Replaces=", &c.replaces)] {
                for g in globs {
                    // Instances of one template come together with the same globs.
                    let id = match last_glob {
                        Some((last, id)) if last == g.as_str() => id,
                        _ => patterns
                            .intern(g)
                            .map_err(|e| PlaceError::new(format!("{}: [X-Fleet] {key}{e}", r.name)))?,
                    };
                    last_glob = Some((g.as_str(), id));
                    anti.push(id);
                }
            }
            anti_all.push(Ids::from(anti.as_slice()));
        }
        // Which units each Replaces= glob matches, to find what a unit replaces.
        let mut is_replace = vec![false; patterns.len()];
        for (r, anti) in recs.iter().zip(&anti_all) {
            for &p in &anti[r.constraints.conflicts.len()..] {
                is_replace[p as usize] = true;
            }
        }
        let mut matching_units = vec![Vec::new(); patterns.len()];
        let mut scratch = Vec::new();
        let mut classes = vec![Class {
            members: (0..idx(m)).collect(),
            member: vec![true; m],
            order: (0..idx(m)).map(u64::from).collect(),
            label: String::new(),
        }];
        let mut class_ids: FxMap<Vec<(&str, Vec<&str>)>, u32> = FxMap::default();
        let mut last_class: Option<(&BTreeMap<String, Vec<String>>, u32)> = None;
        let mut units_out = Vec::with_capacity(n);
        let mut followers = vec![Vec::new(); n];
        for (i, (r, anti)) in recs.iter().zip(anti_all).enumerate() {
            let c = &r.constraints;
            patterns.matching(&r.name, &mut scratch);
            for &p in &scratch {
                if is_replace[p as usize] {
                    matching_units[p as usize].push(idx(i));
                }
            }
            let mut peers = Vec::new();
            let mut missing_peer = None;
            for (k, peer) in c.machine_of.iter().enumerate() {
                match by_name(peer, i) {
                    Some(j) => {
                        if !peers.contains(&j) {
                            peers.push(j);
                        }
                    }
                    None => {
                        missing_peer.get_or_insert(k);
                    }
                }
            }
            for &j in &peers {
                if !recs[j as usize].constraints.global {
                    followers[j as usize].push(idx(i));
                }
            }
            let class = if c.machine_metadata.is_empty() {
                0
            } else if let Some((_, class)) = last_class.filter(|(last, _)| *last == &c.machine_metadata) {
                class
            } else {
                let mut req: Vec<(&str, Vec<&str>)> = c
                    .machine_metadata
                    .iter()
                    .map(|(k, vs)| {
                        let mut vs: Vec<&str> = vs.iter().map(String::as_str).collect();
                        vs.sort_unstable();
                        vs.dedup();
                        (k.as_str(), vs)
                    })
                    .collect();
                req.sort_unstable();
                let next = idx(classes.len());
                let class = *class_ids.entry(req).or_insert_with_key(|req| {
                    classes.push(build_class(req, &machines));
                    next
                });
                // Instances of one template come together and share their rules.
                last_class = Some((&c.machine_metadata, class));
                class
            };
            let target = match &c.machine_id {
                None => Target::Any,
                Some(id) => resolve_machine_id(id, &machines, &[]),
            };
            units_out.push(Unit {
                n_conflicts: c.conflicts.len(),
                anti,
                matched_by: Ids::from(scratch.as_slice()),
                peers: Ids::from(peers.as_slice()),
                missing_peer,
                class,
                target,
                global: c.global,
            });
        }
        let mut machine_classes = vec![Vec::new(); m];
        for (ci, class) in classes.iter().enumerate() {
            for &r in &class.members {
                machine_classes[r as usize].push(idx(ci));
            }
        }
        let pinned = (0..idx(n)).filter(|&u| recs[u as usize].constraints.machine_id.is_some()).collect();
        Ok(Planner {
            recs,
            machines,
            patterns,
            units: units_out,
            matching_units,
            followers,
            classes,
            machine_classes,
            load: vec![0; m],
            hits: FxMap::with_capacity_and_hasher(2 * n, BuildHasherDefault::default()),
            holds: FxMap::with_capacity_and_hasher(n, BuildHasherDefault::default()),
            residents: vec![Vec::new(); m],
            assigned: vec![NONE; n],
            global_on: FxSet::default(),
            global_machines: FxMap::default(),
            reasons: FxMap::default(),
            deferred: FxMap::default(),
            position: vec![NONE; n],
            evictions: 0,
            dead: vec![false; m],
            alive: m,
            pinned,
        })
    }

    /// The first rule that keeps unit `u` off machine `m`, if any.
    fn blocker(&self, u: u32, m: u32) -> Option<Block> {
        let unit = &self.units[u as usize];
        for &p in &unit.anti {
            if self.hits.get(&key(p, m)).is_some_and(|&c| c > 0) {
                return Some(Block { mine: true, pattern: p });
            }
        }
        for &p in &unit.matched_by {
            if self.holds.get(&key(p, m)).is_some_and(|&c| c > 0) {
                return Some(Block { mine: false, pattern: p });
            }
        }
        None
    }

    fn set_load(&mut self, m: u32, load: u32) {
        let old = self.load[m as usize];
        self.load[m as usize] = load;
        for &c in &self.machine_classes[m as usize] {
            let order = &mut self.classes[c as usize].order;
            order.remove(&((u64::from(old) << 32) | u64::from(m)));
            order.insert((u64::from(load) << 32) | u64::from(m));
        }
    }

    fn add(&mut self, u: u32, m: u32) {
        let unit = &self.units[u as usize];
        for &p in &unit.matched_by {
            *self.hits.entry(key(p, m)).or_default() += 1;
        }
        for &p in &unit.anti {
            *self.holds.entry(key(p, m)).or_default() += 1;
        }
        self.residents[m as usize].push(u);
        if unit.global {
            self.global_on.insert(key(u, m));
            self.global_machines.entry(u).or_default().push(m);
        } else {
            self.assigned[u as usize] = m;
            self.reasons.remove(&u);
            self.deferred.remove(&u);
            self.set_load(m, self.load[m as usize] + 1);
        }
    }

    fn remove(&mut self, u: u32, m: u32) {
        let unit = &self.units[u as usize];
        for &p in &unit.matched_by {
            if let Some(c) = self.hits.get_mut(&key(p, m)) {
                *c -= 1;
            }
        }
        for &p in &unit.anti {
            if let Some(c) = self.holds.get_mut(&key(p, m)) {
                *c -= 1;
            }
        }
        let res = &mut self.residents[m as usize];
        if let Some(i) = res.iter().position(|&x| x == u) {
            res.swap_remove(i);
        }
        self.assigned[u as usize] = NONE;
        self.set_load(m, self.load[m as usize] - 1);
    }

    fn place_globals(&mut self) {
        for u in 0..idx(self.units.len()) {
            if !self.units[u as usize].global {
                continue;
            }
            let class = self.units[u as usize].class as usize;
            for i in 0..self.classes[class].members.len() {
                let m = self.classes[class].members[i];
                if self.blocker(u, m).is_none() {
                    self.add(u, m);
                }
            }
            if !self.global_machines.contains_key(&u) {
                self.deferred.insert(u, Deferred::Scan);
            }
        }
    }

    /// Non-global units by name, each follower moved to just after its last
    /// peer. Units caught in a MachineOf cycle are left out, with a reason.
    fn order(&mut self) -> Vec<u32> {
        let n = self.units.len();
        let mut waiting: Vec<u32> = self
            .units
            .iter()
            .map(|u| idx(u.peers.iter().filter(|&&p| !self.units[p as usize].global).count()))
            .collect();
        let mut order = Vec::with_capacity(n);
        let mut stack = Vec::new();
        for u in 0..idx(n) {
            if self.units[u as usize].global || waiting[u as usize] != 0 || self.position[u as usize] != NONE
            {
                continue;
            }
            stack.push(u);
            while let Some(x) = stack.pop() {
                self.position[x as usize] = idx(order.len());
                order.push(x);
                for &f in self.followers[x as usize].iter().rev() {
                    waiting[f as usize] -= 1;
                    if waiting[f as usize] == 0 {
                        stack.push(f);
                    }
                }
            }
        }
        let stuck: Vec<u32> = (0..idx(n))
            .filter(|&u| !self.units[u as usize].global && self.position[u as usize] == NONE)
            .collect();
        if !stuck.is_empty() {
            let names: Vec<&str> =
                stuck.iter().take(5).map(|&u| self.recs[u as usize].name.as_str()).collect();
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
    fn keep(&mut self, current: &[Placement], order: &[u32]) {
        if current.is_empty() {
            return;
        }
        let by_name = |name: &str| self.recs.binary_search_by(|r| r.name.as_str().cmp(name)).ok().map(idx);
        let by_id: FxMap<&str, u32> =
            self.machines.iter().enumerate().map(|(i, m)| (m.id.as_str(), idx(i))).collect();
        let mut wanted = vec![NONE; self.units.len()];
        for p in current {
            let (Some(u), Some(mid)) = (by_name(&p.unit), p.machine.as_deref()) else {
                continue;
            };
            if let Some(&m) = by_id.get(mid) {
                // A unit listed on several machines: the lowest machine ID counts.
                wanted[u as usize] = wanted[u as usize].min(m);
            }
        }
        for &u in order {
            let m = wanted[u as usize];
            if m != NONE && self.fits(u, m) {
                self.add(u, m);
            }
        }
    }

    /// Every rule of `u` holds on machine `m`.
    fn fits(&self, u: u32, m: u32) -> bool {
        let unit = &self.units[u as usize];
        let target_ok = match unit.target {
            Target::Any => true,
            Target::One(t) => t == m,
            Target::NoMatch | Target::Ambiguous(_) => false,
        };
        target_ok
            && unit.missing_peer.is_none()
            && self.classes[unit.class as usize].member[m as usize]
            && unit.peers.iter().all(|&p| self.peer_on(p, m))
            && self.blocker(u, m).is_none()
    }

    fn peer_on(&self, p: u32, m: u32) -> bool {
        if self.units[p as usize].global {
            self.global_on.contains(&key(p, m))
        } else {
            self.assigned[p as usize] == m
        }
    }

    fn place_rest(&mut self, order: &[u32]) {
        let mut todo: Vec<u32> =
            order.iter().copied().filter(|&u| self.assigned[u as usize] == NONE).collect();
        loop {
            let before = self.evictions;
            let mut placed = 0;
            for &u in &todo {
                if self.assigned[u as usize] == NONE {
                    self.place_one(u);
                    placed += usize::from(self.assigned[u as usize] != NONE);
                }
            }
            // Units moved by Replaces= and not yet placed again are waiting too.
            todo = order.iter().copied().filter(|&u| self.assigned[u as usize] == NONE).collect();
            // Another pass only when it can change something: a move made
            // room, or units placed since a Replaces= unit failed may now be
            // replaced. Each unit moves others at most once, so this ends.
            let retry_replaces =
                placed > 0 && todo.iter().any(|&u| !self.units[u as usize].replaces().is_empty());
            if self.evictions == before && !retry_replaces {
                break;
            }
        }
    }

    fn place_one(&mut self, u: u32) {
        self.reasons.remove(&u);
        self.deferred.remove(&u);
        let unit = &self.units[u as usize];
        let rec = self.recs[u as usize];
        if let Some(k) = unit.missing_peer {
            let peer = &rec.constraints.machine_of[k];
            self.reasons
                .insert(u, format!("MachineOf {peer}, which is not placed (no unit of that name was given)"));
            return;
        }
        if !unit.peers.is_empty() {
            self.place_follower(u);
            return;
        }
        match unit.target.clone() {
            Target::Any => {}
            Target::One(m) => {
                let id = rec.constraints.machine_id.as_deref().unwrap_or_default();
                if self.fits(u, m) {
                    self.add(u, m);
                } else {
                    let lead = format!("MachineID={id} is machine {}", self.machines[m as usize].id);
                    self.deferred.insert(u, Deferred::On { lead, m });
                }
                return;
            }
            Target::NoMatch => {
                let id = rec.constraints.machine_id.as_deref().unwrap_or_default();
                self.reasons.insert(
                    u,
                    format!("MachineID={id} matches no machine; check the ID against the machine list"),
                );
                return;
            }
            Target::Ambiguous(ms) => {
                let id = rec.constraints.machine_id.as_deref().unwrap_or_default();
                let ids: Vec<&str> =
                    ms.iter().take(3).map(|&m| self.machines[m as usize].id.as_str()).collect();
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
        let class = unit.class as usize;
        // Each move places a unit that wins over the ones it moves, so moves
        // end; the budget only guards against globs that replace in a circle.
        let budget = 2 * self.units.len() + 16;
        if !unit.replaces().is_empty() && self.evictions < budget && self.try_replace(u) {
            return;
        }
        let found = self.classes[class]
            .order
            .iter()
            .map(|&e| (e & 0xffff_ffff) as u32)
            .find(|&m| self.blocker(u, m).is_none());
        match found {
            Some(m) => self.add(u, m),
            None => {
                self.deferred.insert(u, Deferred::Scan);
            }
        }
    }

    fn place_follower(&mut self, u: u32) {
        let unit = &self.units[u as usize];
        let rec = self.recs[u as usize];
        let mut fixed: Option<(u32, u32)> = None;
        for &p in &unit.peers {
            if self.units[p as usize].global {
                continue;
            }
            let m = self.assigned[p as usize];
            if m == NONE {
                let peer = &self.recs[p as usize].name;
                self.reasons.insert(u, format!("MachineOf {peer}, which is not placed"));
                return;
            }
            match fixed {
                None => fixed = Some((p, m)),
                Some((q, mq)) if mq != m => {
                    self.reasons.insert(u, format!(
                        "MachineOf {} and {}, which run on different machines ({} and {}); it cannot be beside both",
                        self.recs[q as usize].name,
                        self.recs[p as usize].name,
                        self.machines[mq as usize].id,
                        self.machines[m as usize].id
                    ));
                    return;
                }
                Some(_) => {}
            }
        }
        if let Some((p, m)) = fixed {
            if self.fits(u, m) {
                self.add(u, m);
            } else {
                let lead = format!(
                    "MachineOf {} puts it on {}",
                    self.recs[p as usize].name, self.machines[m as usize].id
                );
                self.deferred.insert(u, Deferred::On { lead, m });
            }
            return;
        }
        // Every peer is global: any machine that runs all of them will do.
        let class = unit.class as usize;
        let found =
            self.classes[class].order.iter().map(|&e| (e & 0xffff_ffff) as u32).find(|&m| self.fits(u, m));
        match found {
            Some(m) => self.add(u, m),
            None => {
                let peers: Vec<&str> =
                    unit.peers.iter().map(|&p| self.recs[p as usize].name.as_str()).collect();
                self.reasons.insert(
                    u,
                    format!(
                        "MachineOf {}: no machine{} that runs {} takes it{}",
                        peers.join(" "),
                        qualifier(&self.classes[class].label),
                        if peers.len() > 1 { "all of them" } else { "it" },
                        rec.constraints
                            .conflicts
                            .first()
                            .map(|g| format!(" (Conflicts={g})"))
                            .unwrap_or_default()
                    ),
                );
            }
        }
    }

    /// `Replaces=`: take the machine of a unit it replaces, and move that
    /// unit (and whatever follows it) elsewhere. Returns false when no
    /// replaced unit's machine can take it; the caller places it normally.
    fn try_replace(&mut self, u: u32) -> bool {
        let unit = &self.units[u as usize];
        let mut candidates: BTreeSet<u64> = BTreeSet::new();
        for &p in unit.replaces() {
            for &x in &self.matching_units[p as usize] {
                let m = self.assigned[x as usize];
                if x != u && m != NONE {
                    candidates.insert((u64::from(self.load[m as usize]) << 32) | u64::from(m));
                }
            }
        }
        for e in candidates {
            let m = (e & 0xffff_ffff) as u32;
            if !self.classes[unit.class as usize].member[m as usize] {
                continue;
            }
            let leaving = self.leaving(u, m);
            // Units that replace each other stay put, as fleet had it:
            // otherwise each run would swap them back.
            let mutual = leaving.iter().any(|&x| {
                self.units[x as usize]
                    .replaces()
                    .iter()
                    .any(|p| self.units[u as usize].matched_by.contains(p))
            });
            if mutual || !self.fits_without(u, m, &leaving) {
                continue;
            }
            for &x in &leaving {
                self.remove(x, m);
            }
            self.evictions += 1;
            self.add(u, m);
            let mut leaving = leaving;
            leaving.sort_unstable_by_key(|&x| self.position[x as usize]);
            for x in leaving {
                self.place_one(x);
            }
            return true;
        }
        false
    }

    /// The non-global units on `m` that `u` replaces, and their followers.
    fn leaving(&self, u: u32, m: u32) -> Vec<u32> {
        let replaces = self.units[u as usize].replaces();
        let mut out: Vec<u32> = self.residents[m as usize]
            .iter()
            .copied()
            .filter(|&x| {
                !self.units[x as usize].global
                    && self.units[x as usize].matched_by.iter().any(|p| replaces.contains(p))
            })
            .collect();
        let mut i = 0;
        while i < out.len() {
            for &f in &self.followers[out[i] as usize] {
                if self.assigned[f as usize] == m && !out.contains(&f) {
                    out.push(f);
                }
            }
            i += 1;
        }
        out
    }

    /// Whether `u` could go on `m` once `leaving` has left it.
    fn fits_without(&self, u: u32, m: u32, leaving: &[u32]) -> bool {
        let unit = &self.units[u as usize];
        let count = |map: &FxMap<u64, u32>, p: u32| map.get(&key(p, m)).copied().unwrap_or(0);
        let hits_ok = unit.anti.iter().all(|&p| {
            let gone = leaving.iter().filter(|&&x| self.units[x as usize].matched_by.contains(&p)).count();
            count(&self.hits, p) as usize == gone
        });
        let holds_ok = unit.matched_by.iter().all(|&p| {
            let gone = leaving.iter().filter(|&&x| self.units[x as usize].anti.contains(&p)).count();
            count(&self.holds, p) as usize == gone
        });
        hits_ok && holds_ok
    }

    /// Why `u` cannot go on `m`, as the end of a sentence naming `m`.
    fn why_not_on(&self, u: u32, m: u32) -> String {
        let unit = &self.units[u as usize];
        let class = &self.classes[unit.class as usize];
        if self.dead[m as usize] {
            return "which is gone".to_owned();
        }
        if !class.member[m as usize] {
            return format!("which lacks {}", class.label);
        }
        for &p in &unit.peers {
            if !self.peer_on(p, m) {
                return format!("where {} does not run", self.recs[p as usize].name);
            }
        }
        match self.blocker(u, m) {
            Some(b) => format!("where it {}", self.describe(u, b, m)),
            None => "which cannot take it".to_owned(),
        }
    }

    fn describe(&self, u: u32, b: Block, m: u32) -> String {
        let glob = self.patterns.glob(b.pattern);
        if b.mine {
            return if self.is_conflict_of(u, b.pattern) {
                format!("conflicts with {glob}")
            } else {
                format!("would run beside {glob}, which it replaces")
            };
        }
        // The first holder by name, so the words do not depend on arrival order.
        let holder = self.residents[m as usize]
            .iter()
            .copied()
            .filter(|&x| self.units[x as usize].anti.contains(&b.pattern))
            .min();
        match holder {
            Some(x) if self.is_conflict_of(x, b.pattern) => {
                format!(
                    "is excluded by Conflicts={glob} of units there (e.g. {})",
                    self.recs[x as usize].name
                )
            }
            Some(x) => format!(
                "would be replaced by Replaces={glob} of units there (e.g. {})",
                self.recs[x as usize].name
            ),
            None => format!("is excluded by {glob}"),
        }
    }

    fn is_conflict_of(&self, u: u32, pattern: u32) -> bool {
        let unit = &self.units[u as usize];
        unit.anti[..unit.n_conflicts].contains(&pattern)
    }

    /// Why no machine of `u`'s class takes it (every one was tried).
    fn scan_reason(&self, u: u32) -> String {
        let unit = &self.units[u as usize];
        let class = &self.classes[unit.class as usize];
        if self.alive == 0 {
            return "no machines were given".to_owned();
        }
        if class.members.is_empty() {
            let alive: Vec<&MachineRecord> =
                self.machines.iter().zip(&self.dead).filter(|(_, &d)| !d).map(|(m, _)| *m).collect();
            return metadata_reason(&self.recs[u as usize].constraints.machine_metadata, &alive);
        }
        let mut groups: BTreeMap<Block, (usize, u32)> = BTreeMap::new();
        for &m in &class.members {
            if let Some(b) = self.blocker(u, m) {
                groups.entry(b).or_insert((0, m)).0 += 1;
            }
        }
        let n = class.members.len();
        let qual = qualifier(&class.label);
        let all = if n == 1 {
            format!("on the only machine{}", qual.replace(" that have ", " that has "))
        } else {
            format!("on all {n} machines{qual}")
        };
        if let (1, Some((&b, &(_, m)))) = (groups.len(), groups.iter().next()) {
            return format!("{} {all}", self.describe(u, b, m));
        }
        let mut parts: Vec<(usize, String)> =
            groups.iter().map(|(&b, &(count, m))| (count, self.describe(u, b, m))).collect();
        parts.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let shown: Vec<String> = parts.iter().take(3).map(|(c, d)| format!("{d} on {c}")).collect();
        format!(
            "no machine{qual} takes it ({n} tried): {}{}",
            shown.join("; "),
            if parts.len() > 3 { "; …" } else { "" }
        )
    }

    /// The placement of non-global unit `u`.
    fn placement_of(&self, u: u32) -> Placement {
        let rec = self.recs[u as usize];
        match self.assigned[u as usize] {
            NONE => Placement { unit: rec.name.clone(), machine: None, reason: Some(self.reason_text(u)) },
            m => Placement {
                unit: rec.name.clone(),
                machine: Some(self.machines[m as usize].id.clone()),
                reason: None,
            },
        }
    }

    fn reason_text(&self, u: u32) -> String {
        match self.deferred.get(&u) {
            Some(Deferred::Scan) => self.scan_reason(u),
            Some(Deferred::On { lead, m }) => format!("{lead}, {}", self.why_not_on(u, *m)),
            None => self.reasons.get(&u).cloned().unwrap_or_else(|| "not placed".to_owned()),
        }
    }

    fn output(&self) -> Vec<Placement> {
        let mut out = Vec::with_capacity(self.recs.len());
        let pushed = self.each_placement(|unit, machine, reason| {
            out.push(Placement { unit: unit.to_owned(), machine: machine.map(str::to_owned), reason });
            Ok::<(), std::convert::Infallible>(())
        });
        if let Err(never) = pushed {
            match never {}
        }
        out
    }

    /// Every placement in output order, borrowed: `f` gets the unit name,
    /// the machine ID or none, and the reason when there is no machine.
    fn each_placement<E>(
        &self,
        mut f: impl FnMut(&str, Option<&str>, Option<String>) -> Result<(), E>,
    ) -> Result<(), E> {
        for (i, rec) in self.recs.iter().enumerate() {
            let u = idx(i);
            let placed: Vec<u32> = if self.units[i].global {
                let mut ms = self.global_machines.get(&u).cloned().unwrap_or_default();
                ms.sort_unstable();
                ms
            } else if self.assigned[i] != NONE {
                vec![self.assigned[i]]
            } else {
                Vec::new()
            };
            if placed.is_empty() {
                f(&rec.name, None, Some(self.reason_text(u)))?;
            }
            for m in placed {
                f(&rec.name, Some(&self.machines[m as usize].id), None)?;
            }
        }
        Ok(())
    }
}

/// The first 8 bytes of `name`, zero-padded, as a big-endian number: it
/// orders names as their bytes do, except that equal keys need a full look.
fn name_key(name: &str) -> u64 {
    let mut b = [0u8; 8];
    let n = name.len().min(8);
    b[..n].copy_from_slice(&name.as_bytes()[..n]);
    u64::from_be_bytes(b)
}

fn idx(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(NONE)
}

fn qualifier(label: &str) -> String {
    if label.is_empty() {
        String::new()
    } else {
        format!(" that have {label}")
    }
}

fn format_req(key: &str, values: &[impl AsRef<str>]) -> String {
    values.iter().map(|v| format!("{key}={}", v.as_ref())).collect::<Vec<_>>().join(" or ")
}

fn build_class(req: &[(&str, Vec<&str>)], machines: &[&MachineRecord]) -> Class {
    let member: Vec<bool> = machines
        .iter()
        .map(|m| req.iter().all(|(k, vs)| m.metadata.get(*k).is_some_and(|v| vs.contains(&v.as_str()))))
        .collect();
    let members: Vec<u32> = member.iter().enumerate().filter(|(_, &b)| b).map(|(i, _)| idx(i)).collect();
    let label = req
        .iter()
        .map(|(k, vs)| if vs.len() > 1 { format!("({})", format_req(k, vs)) } else { format_req(k, vs) })
        .collect::<Vec<_>>()
        .join(" and ");
    Class { order: members.iter().map(|&m| u64::from(m)).collect(), members, member, label }
}

/// `MachineID=`'s machine among the live ones (`dead` may be empty).
fn resolve_machine_id(id: &str, machines: &[&MachineRecord], dead: &[bool]) -> Target {
    let start = machines.partition_point(|m| m.id.as_str() < id);
    let matches: Vec<u32> = (start..machines.len())
        .take_while(|&i| machines[i].id.starts_with(id))
        .filter(|&i| !dead.get(i).copied().unwrap_or(false))
        .map(idx)
        .collect();
    match matches.as_slice() {
        [] => Target::NoMatch,
        [one] => Target::One(*one),
        // A full ID wins over longer IDs it is a prefix of.
        [first, ..] if machines[*first as usize].id == id => Target::One(*first),
        _ => Target::Ambiguous(matches),
    }
}

fn metadata_reason(req: &BTreeMap<String, Vec<String>>, machines: &[&MachineRecord]) -> String {
    let unsat: Vec<String> = req
        .iter()
        .filter(|(k, vs)| !machines.iter().any(|m| m.metadata.get(*k).is_some_and(|v| vs.contains(v))))
        .map(|(k, vs)| format_req(k, vs))
        .collect();
    if unsat.is_empty() {
        let all: Vec<String> = req.iter().map(|(k, vs)| format_req(k, vs)).collect();
        format!("no machine has all of {} at once", all.join(", "))
    } else {
        format!("no machine has {}", unsat.join(", and no machine has "))
    }
}
