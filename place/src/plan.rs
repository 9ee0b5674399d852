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

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::hash::BuildHasherDefault;

use fleetkit_core::constraints::Constraints;
use fleetkit_core::records::{MachineRecord, Placement};

use crate::index::{Count, Counts, FxHasher, FxMap, Lists, LoadOrder, Names, Patterns};
use crate::Unit;

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

/// The rules of a unit that fit in a few words; its lists of ids are
/// [`Lists`] in the planner, its `MachineID=` target in a map (few units
/// have one).
#[derive(Debug, Clone, Copy)]
struct Info {
    class: u32,
    /// How many of its `anti` patterns are `Conflicts=` globs; the rest
    /// are `Replaces=` globs.
    n_conflicts: u32,
    global: bool,
    /// It has `MachineOf=`.
    follows: bool,
    /// It has `MachineID=`.
    pinned: bool,
}

/// Machines whose metadata satisfies one `MachineMetadata=` requirement.
#[derive(Debug)]
struct Class {
    /// The live members, by rank.
    members: Vec<u32>,
    member: Vec<bool>,
    /// Every member ever, the least loaded first.
    order: LoadOrder,
    /// `region=eu and disk=ssd`, empty for the class of all machines.
    label: String,
}

impl Class {
    fn new(member: Vec<bool>, label: String) -> Self {
        let members: Vec<u32> = member.iter().enumerate().filter(|(_, &b)| b).map(|(i, _)| idx(i)).collect();
        Class { order: LoadOrder::new(&members), members, member, label }
    }
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

fn key(unit: u32, rank: u32) -> u64 {
    (u64::from(unit) << 32) | u64::from(rank)
}

/// Units are numbered by name, machines (ranks) by ID.
struct Planner<'a> {
    /// Each unit's `[X-Fleet]` section, by number.
    constraints: Vec<&'a Constraints>,
    /// Unit names, by number.
    names: Names,
    machines: Vec<&'a MachineRecord>,
    patterns: Patterns,
    info: Vec<Info>,
    /// Pattern ids of each unit's `Conflicts=` globs, then of its `Replaces=` globs.
    anti: Lists,
    /// Pattern ids (of any unit) that match each unit's name.
    matched_by: Lists,
    /// Each unit's known `MachineOf=` peers.
    peers: Lists,
    /// The units that follow each non-global unit.
    followers: Lists,
    /// `MachineID=` targets, by unit.
    targets: FxMap<u32, Target>,
    /// A `MachineOf=` name that no given unit has (its index), by unit.
    missing_peer: FxMap<u32, usize>,
    /// Units matched by each pattern (for `Replaces=`).
    matching_units: Vec<Vec<u32>>,
    classes: Vec<Class>,
    /// (class, slot in its order) of each machine.
    machine_classes: Vec<Vec<(u32, u32)>>,
    load: Vec<u32>,
    counts: Counts,
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
pub fn plan<H>(
    units: &[Unit<H>],
    machines: &[MachineRecord],
    current: &[Placement],
) -> Result<Vec<Placement>, PlaceError> {
    Ok(Plan::new(units, machines, current)?.placements())
}

/// One line of the answer, borrowed from a [`Plan`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlacementRef<'c> {
    pub unit: &'c str,
    /// The machine ID, or none when the unit cannot be placed.
    pub machine: Option<&'c str>,
    /// Why the unit cannot be placed; none when it is placed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A placement held in memory, for a scheduler that reacts to one change
/// at a time: losing a machine re-places only that machine's units, in
/// far less time than planning everything again. The result is what
/// [`plan`] would give with the machine removed and the current placements
/// as `current` (the words of other units' reasons aside).
pub struct Plan<'a> {
    planner: Planner<'a>,
}

impl fmt::Debug for Plan<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plan")
            .field("units", &self.planner.info.len())
            .field("machines", &self.planner.machines.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Plan<'a> {
    /// Plans `units` on `machines`, keeping `current` where it holds.
    ///
    /// # Errors
    /// As [`plan`].
    pub fn new<H>(
        units: &'a [Unit<H>],
        machines: &'a [MachineRecord],
        current: &[Placement],
    ) -> Result<Self, PlaceError> {
        let mut p = Planner::new(units, machines)?;
        p.place_globals();
        let order = p.order();
        p.keep(current, &order);
        p.place_rest(&order);
        Ok(Plan { planner: p })
    }

    /// Every placement, as [`plan`] returns them.
    #[must_use]
    pub fn placements(&self) -> Vec<Placement> {
        let mut out = Vec::with_capacity(self.planner.info.len());
        let pushed = self.for_each(|p| {
            out.push(Placement {
                unit: p.unit.to_owned(),
                machine: p.machine.map(str::to_owned),
                reason: p.reason,
            });
            Ok::<(), std::convert::Infallible>(())
        });
        if let Err(never) = pushed {
            match never {}
        }
        out
    }

    /// Calls `f` with every placement in the order [`Plan::placements`]
    /// lists them, borrowed: no list of a million placements is built.
    ///
    /// # Errors
    /// The first error `f` returns, which ends the walk.
    pub fn for_each<E>(&self, mut f: impl FnMut(PlacementRef<'_>) -> Result<(), E>) -> Result<(), E> {
        let p = &self.planner;
        let mut on = Vec::new();
        for u in 0..idx(p.info.len()) {
            let unit = p.names.get(u);
            on.clear();
            if p.info[u as usize].global {
                on.extend(p.global_machines.get(&u).into_iter().flatten().copied());
                on.sort_unstable();
            } else if p.assigned[u as usize] != NONE {
                on.push(p.assigned[u as usize]);
            }
            if on.is_empty() {
                f(PlacementRef { unit, machine: None, reason: Some(p.reason_text(u)) })?;
            }
            for &m in &on {
                f(PlacementRef { unit, machine: Some(&p.machines[m as usize].id), reason: None })?;
            }
        }
        Ok(())
    }

    /// Writes every placement as [`Plan::placements`] lists them, one
    /// JSON line each, without building the list; returns how many units
    /// have no machine.
    ///
    /// # Errors
    /// The writer's error.
    pub fn write_json<W: std::io::Write>(&self, out: &mut W) -> std::io::Result<usize> {
        let mut unplaced = 0;
        self.for_each(|p| {
            unplaced += usize::from(p.machine.is_none());
            serde_json::to_writer(&mut *out, &p)?;
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
            p.residents[rank].iter().copied().filter(|&u| !p.info[u as usize].global).collect();
        for &u in &lost {
            p.remove(u, m);
        }
        p.dead[rank] = true;
        p.alive -= 1;
        for (c, slot) in std::mem::take(&mut p.machine_classes[rank]) {
            let class = &mut p.classes[c as usize];
            class.order.set(slot, m, None);
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
            let Some(id) = &p.constraints[u as usize].machine_id else { continue };
            let target = resolve_machine_id(id, &p.machines, &p.dead);
            p.targets.insert(u, target);
            if p.assigned[u as usize] == NONE && !p.info[u as usize].global && !lost.contains(&u) {
                lost.push(u);
            }
        }
        // Followers that waited on a lost unit may fit where it goes now.
        let mut i = 0;
        while i < lost.len() {
            for &f in p.followers.get(lost[i]) {
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
    fn new<H>(units: &'a [Unit<H>], machines: &'a [MachineRecord]) -> Result<Self, PlaceError> {
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
        let n = units.len();
        let m = machines.len();

        // First the records in the order given, which is the order they lie
        // in memory: at a million units, reading them in name order instead
        // costs more than all the planning. Names are copied out, globs
        // interned, metadata requirements turned into machine classes.
        let name_bytes: usize = units.iter().map(|u| u.name.len()).sum();
        if n >= NONE as usize || u32::try_from(name_bytes).is_err() {
            return Err(PlaceError::new(format!(
                "{n} units with {name_bytes} bytes of names are more than one plan holds \
                 (under 2^32 units and 4 GiB of names); plan them in parts"
            )));
        }
        let mut names_given = Names::with_capacity(n, name_bytes);
        let mut anti_given = Lists::with_capacity(n, n);
        let mut info_given = Vec::with_capacity(n);
        let mut patterns = Patterns::default();
        let mut classes = vec![Class::new(vec![true; m], String::new())];
        let mut class_ids: FxMap<Vec<(&str, Vec<&str>)>, u32> = FxMap::default();
        let mut last_class: Option<(&BTreeMap<String, Vec<String>>, u32)> = None;
        let mut last_glob: Option<(&str, u32)> = None;
        // Of bad units, the first by name is reported, whatever the input order.
        let mut first_error: Option<(&str, PlaceError)> = None;
        let mut note = |name: &'a str, e: PlaceError| {
            if first_error.as_ref().is_none_or(|(first, _)| name < *first) {
                first_error = Some((name, e));
            }
        };
        let mut anti = Vec::new();
        for r in units {
            let c = &r.constraints;
            names_given.push(&r.name);
            let simple = c.machine_id.is_none() && !c.global && c.machine_metadata.is_empty();
            let plain =
                simple && (c.machine_of.is_empty() || c.conflicts.is_empty()) && c.replaces.is_empty();
            // Globs are checked when they are interned below.
            if !plain {
                if let Some(problem) = c.problems().into_iter().next() {
                    note(&r.name, PlaceError::new(format!("{}: {problem}", r.name)));
                }
            }
            anti.clear();
            for (key, globs) in [("Conflicts=", &c.conflicts), ("Replaces=", &c.replaces)] {
                for g in globs {
                    // Instances of one template come together with the same globs.
                    let id = match last_glob {
                        Some((last, id)) if last == g.as_str() => id,
                        _ => match patterns.intern(g) {
                            Ok(id) => id,
                            Err(e) => {
                                note(&r.name, PlaceError::new(format!("{}: [X-Fleet] {key}{e}", r.name)));
                                continue;
                            }
                        },
                    };
                    last_glob = Some((g.as_str(), id));
                    anti.push(id);
                }
            }
            anti_given.push(&anti);
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
            info_given.push(Info {
                class,
                n_conflicts: idx(c.conflicts.len()),
                global: c.global,
                follows: !c.machine_of.is_empty(),
                pinned: c.machine_id.is_some(),
            });
        }

        // Then by name, through a 16-byte prefix key: most comparisons end
        // there, without reading the names.
        let mut keyed: Vec<(u128, u32)> = (0..idx(n)).map(|i| (name_key(names_given.get(i)), i)).collect();
        keyed.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0).then_with(|| names_given.get(a.1).cmp(names_given.get(b.1)))
        });
        let mut names = Names::with_capacity(n, names_given.bytes());
        let mut anti = Lists::with_capacity(n, n);
        let mut info = Vec::with_capacity(n);
        let mut constraints = Vec::with_capacity(n);
        for &(_, i) in &keyed {
            let name = names_given.get(i);
            if names.len() > 0 && names.get(idx(names.len() - 1)) == name {
                return Err(PlaceError::new(format!("unit {name} is listed twice; give each unit once")));
            }
            names.push(name);
            anti.push(anti_given.get(i));
            info.push(info_given[i as usize]);
            constraints.push(&units[i as usize].constraints);
        }
        drop((keyed, names_given, anti_given, info_given));
        if names.len() > 0 && names.get(0).is_empty() {
            return Err(PlaceError::new("a unit record has an empty name"));
        }
        if let Some((_, e)) = first_error {
            return Err(e);
        }
        // Patterns numbered by first use in name order, as if interned in
        // that order: which rule a reason names must not depend on the
        // order the units were given in.
        let mut new_of = vec![NONE; patterns.len()];
        let mut next = 0;
        for p in anti.items_mut() {
            if new_of[*p as usize] == NONE {
                new_of[*p as usize] = next;
                next += 1;
            }
            *p = new_of[*p as usize];
        }
        patterns.renumber(&new_of);

        // Last, in name order: the patterns that match each name, and the
        // units that MachineOf= and MachineID= point at.
        let mut is_replace = vec![false; patterns.len()];
        for u in 0..idx(n) {
            for &p in &anti.get(u)[info[u as usize].n_conflicts as usize..] {
                is_replace[p as usize] = true;
            }
        }
        let mut matching_units = vec![Vec::new(); patterns.len()];
        let mut matched_by = Lists::with_capacity(n, n);
        let mut peers = Lists::with_capacity(n, n / 2);
        let mut follow_pairs = Vec::new();
        let mut targets = FxMap::default();
        let mut missing_peer = FxMap::default();
        let mut pinned = Vec::new();
        let mut scratch = Vec::new();
        let mut found = Vec::new();
        for u in 0..idx(n) {
            patterns.matching(names.get(u), &mut scratch);
            for &p in &scratch {
                if is_replace[p as usize] {
                    matching_units[p as usize].push(u);
                }
            }
            matched_by.push(&scratch);
            let c: &Constraints = constraints[u as usize];
            found.clear();
            if info[u as usize].follows {
                for (k, peer) in c.machine_of.iter().enumerate() {
                    match find_near(&names, peer, u) {
                        Some(j) if !found.contains(&j) => found.push(j),
                        Some(_) => {}
                        None => {
                            missing_peer.entry(u).or_insert(k);
                        }
                    }
                }
                for &j in &found {
                    if !info[j as usize].global {
                        follow_pairs.push((j, u));
                    }
                }
            }
            peers.push(&found);
            if let Some(id) = &c.machine_id {
                targets.insert(u, resolve_machine_id(id, &machines, &[]));
                pinned.push(u);
            }
        }
        let followers = Lists::from_pairs(n, &follow_pairs);
        let mut machine_classes = vec![Vec::new(); m];
        for (ci, class) in classes.iter().enumerate() {
            for (slot, &r) in class.members.iter().enumerate() {
                machine_classes[r as usize].push((idx(ci), idx(slot)));
            }
        }
        let n_patterns = patterns.len();
        Ok(Planner {
            constraints,
            names,
            machines,
            patterns,
            info,
            anti,
            matched_by,
            peers,
            followers,
            targets,
            missing_peer,
            matching_units,
            classes,
            machine_classes,
            load: vec![0; m],
            counts: Counts::new(n_patterns),
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

    /// `Replaces=` pattern ids of unit `u`.
    fn replaces(&self, u: u32) -> &[u32] {
        &self.anti.get(u)[self.info[u as usize].n_conflicts as usize..]
    }

    /// Where `MachineID=` of unit `u` points.
    fn target(&self, u: u32) -> Target {
        if !self.info[u as usize].pinned {
            return Target::Any;
        }
        self.targets.get(&u).cloned().unwrap_or(Target::Any)
    }

    fn missing_peer(&self, u: u32) -> Option<usize> {
        if !self.info[u as usize].follows {
            return None;
        }
        self.missing_peer.get(&u).copied()
    }

    /// The first rule that keeps unit `u` off machine `m`, if any.
    fn blocker(&self, u: u32, m: u32) -> Option<Block> {
        for &p in self.anti.get(u) {
            if self.counts.get(p, m, Count::Hits) > 0 {
                return Some(Block { mine: true, pattern: p });
            }
        }
        for &p in self.matched_by.get(u) {
            if self.counts.get(p, m, Count::Holds) > 0 {
                return Some(Block { mine: false, pattern: p });
            }
        }
        None
    }

    fn set_load(&mut self, m: u32, load: u32) {
        self.load[m as usize] = load;
        for &(c, slot) in &self.machine_classes[m as usize] {
            self.classes[c as usize].order.set(slot, m, Some(load));
        }
    }

    fn add(&mut self, u: u32, m: u32) {
        for &p in self.matched_by.get(u) {
            self.counts.add(p, m, Count::Hits);
        }
        for &p in self.anti.get(u) {
            self.counts.add(p, m, Count::Holds);
        }
        self.residents[m as usize].push(u);
        if self.info[u as usize].global {
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
        for &p in self.matched_by.get(u) {
            self.counts.sub(p, m, Count::Hits);
        }
        for &p in self.anti.get(u) {
            self.counts.sub(p, m, Count::Holds);
        }
        let res = &mut self.residents[m as usize];
        if let Some(i) = res.iter().position(|&x| x == u) {
            res.swap_remove(i);
        }
        self.assigned[u as usize] = NONE;
        self.set_load(m, self.load[m as usize] - 1);
    }

    fn place_globals(&mut self) {
        for u in 0..idx(self.info.len()) {
            if !self.info[u as usize].global {
                continue;
            }
            let class = self.info[u as usize].class as usize;
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
        let n = self.info.len();
        let mut waiting: Vec<u32> = (0..idx(n))
            .map(|u| idx(self.peers.get(u).iter().filter(|&&p| !self.info[p as usize].global).count()))
            .collect();
        let mut order = Vec::with_capacity(n);
        let mut stack = Vec::new();
        for u in 0..idx(n) {
            if self.info[u as usize].global || waiting[u as usize] != 0 || self.position[u as usize] != NONE {
                continue;
            }
            stack.push(u);
            while let Some(x) = stack.pop() {
                self.position[x as usize] = idx(order.len());
                order.push(x);
                for &f in self.followers.get(x).iter().rev() {
                    waiting[f as usize] -= 1;
                    if waiting[f as usize] == 0 {
                        stack.push(f);
                    }
                }
            }
        }
        let stuck: Vec<u32> = (0..idx(n))
            .filter(|&u| !self.info[u as usize].global && self.position[u as usize] == NONE)
            .collect();
        if !stuck.is_empty() {
            let names: Vec<&str> = stuck.iter().take(5).map(|&u| self.names.get(u)).collect();
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
        let by_name = |name: &str| find_near(&self.names, name, 0);
        let by_id: FxMap<&str, u32> =
            self.machines.iter().enumerate().map(|(i, m)| (m.id.as_str(), idx(i))).collect();
        let mut wanted = vec![NONE; self.info.len()];
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
        let target_ok = match self.target(u) {
            Target::Any => true,
            Target::One(t) => t == m,
            Target::NoMatch | Target::Ambiguous(_) => false,
        };
        target_ok
            && self.missing_peer(u).is_none()
            && self.classes[self.info[u as usize].class as usize].member[m as usize]
            && self.peers.get(u).iter().all(|&p| self.peer_on(p, m))
            && self.blocker(u, m).is_none()
    }

    fn peer_on(&self, p: u32, m: u32) -> bool {
        if self.info[p as usize].global {
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
            let retry_replaces = placed > 0 && todo.iter().any(|&u| !self.replaces(u).is_empty());
            if self.evictions == before && !retry_replaces {
                break;
            }
        }
    }

    fn place_one(&mut self, u: u32) {
        self.reasons.remove(&u);
        self.deferred.remove(&u);
        let c = self.constraints[u as usize];
        if let Some(k) = self.missing_peer(u) {
            let peer = &c.machine_of[k];
            self.reasons
                .insert(u, format!("MachineOf {peer}, which is not placed (no unit of that name was given)"));
            return;
        }
        if !self.peers.get(u).is_empty() {
            self.place_follower(u);
            return;
        }
        match self.target(u) {
            Target::Any => {}
            Target::One(m) => {
                let id = c.machine_id.as_deref().unwrap_or_default();
                if self.fits(u, m) {
                    self.add(u, m);
                } else {
                    let lead = format!("MachineID={id} is machine {}", self.machines[m as usize].id);
                    self.deferred.insert(u, Deferred::On { lead, m });
                }
                return;
            }
            Target::NoMatch => {
                let id = c.machine_id.as_deref().unwrap_or_default();
                self.reasons.insert(
                    u,
                    format!("MachineID={id} matches no machine; check the ID against the machine list"),
                );
                return;
            }
            Target::Ambiguous(ms) => {
                let id = c.machine_id.as_deref().unwrap_or_default();
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
        let class = self.info[u as usize].class as usize;
        // Each move places a unit that wins over the ones it moves, so moves
        // end; the budget only guards against globs that replace in a circle.
        let budget = 2 * self.info.len() + 16;
        if !self.replaces(u).is_empty() && self.evictions < budget && self.try_replace(u) {
            return;
        }
        let found = self.classes[class].order.first(|m| self.blocker(u, m).is_none());
        match found {
            Some(m) => self.add(u, m),
            None => {
                self.deferred.insert(u, Deferred::Scan);
            }
        }
    }

    fn place_follower(&mut self, u: u32) {
        let c = self.constraints[u as usize];
        let mut fixed: Option<(u32, u32)> = None;
        for &p in self.peers.get(u) {
            if self.info[p as usize].global {
                continue;
            }
            let m = self.assigned[p as usize];
            if m == NONE {
                let peer = self.names.get(p);
                self.reasons.insert(u, format!("MachineOf {peer}, which is not placed"));
                return;
            }
            match fixed {
                None => fixed = Some((p, m)),
                Some((q, mq)) if mq != m => {
                    self.reasons.insert(u, format!(
                        "MachineOf {} and {}, which run on different machines ({} and {}); it cannot be beside both",
                        self.names.get(q),
                        self.names.get(p),
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
                let lead =
                    format!("MachineOf {} puts it on {}", self.names.get(p), self.machines[m as usize].id);
                self.deferred.insert(u, Deferred::On { lead, m });
            }
            return;
        }
        // Every peer is global: any machine that runs all of them will do.
        let class = self.info[u as usize].class as usize;
        let found = self.classes[class].order.first(|m| self.fits(u, m));
        match found {
            Some(m) => self.add(u, m),
            None => {
                let peers: Vec<&str> = self.peers.get(u).iter().map(|&p| self.names.get(p)).collect();
                self.reasons.insert(
                    u,
                    format!(
                        "MachineOf {}: no machine{} that runs {} takes it{}",
                        peers.join(" "),
                        qualifier(&self.classes[class].label),
                        if peers.len() > 1 { "all of them" } else { "it" },
                        c.conflicts.first().map(|g| format!(" (Conflicts={g})")).unwrap_or_default()
                    ),
                );
            }
        }
    }

    /// `Replaces=`: take the machine of a unit it replaces, and move that
    /// unit (and whatever follows it) elsewhere. Returns false when no
    /// replaced unit's machine can take it; the caller places it normally.
    fn try_replace(&mut self, u: u32) -> bool {
        let mut candidates: BTreeSet<u64> = BTreeSet::new();
        for &p in self.replaces(u) {
            for &x in &self.matching_units[p as usize] {
                let m = self.assigned[x as usize];
                if x != u && m != NONE {
                    candidates.insert((u64::from(self.load[m as usize]) << 32) | u64::from(m));
                }
            }
        }
        for e in candidates {
            let m = (e & 0xffff_ffff) as u32;
            if !self.classes[self.info[u as usize].class as usize].member[m as usize] {
                continue;
            }
            let leaving = self.leaving(u, m);
            // Units that replace each other stay put, as fleet had it:
            // otherwise each run would swap them back.
            let mutual =
                leaving.iter().any(|&x| self.replaces(x).iter().any(|p| self.matched_by.get(u).contains(p)));
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
        let replaces = self.replaces(u);
        let mut out: Vec<u32> = self.residents[m as usize]
            .iter()
            .copied()
            .filter(|&x| {
                !self.info[x as usize].global && self.matched_by.get(x).iter().any(|p| replaces.contains(p))
            })
            .collect();
        let mut i = 0;
        while i < out.len() {
            for &f in self.followers.get(out[i]) {
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
        let hits_ok = self.anti.get(u).iter().all(|&p| {
            let gone = leaving.iter().filter(|&&x| self.matched_by.get(x).contains(&p)).count();
            self.counts.get(p, m, Count::Hits) as usize == gone
        });
        let holds_ok = self.matched_by.get(u).iter().all(|&p| {
            let gone = leaving.iter().filter(|&&x| self.anti.get(x).contains(&p)).count();
            self.counts.get(p, m, Count::Holds) as usize == gone
        });
        hits_ok && holds_ok
    }

    /// Why `u` cannot go on `m`, as the end of a sentence naming `m`.
    fn why_not_on(&self, u: u32, m: u32) -> String {
        let class = &self.classes[self.info[u as usize].class as usize];
        if self.dead[m as usize] {
            return "which is gone".to_owned();
        }
        if !class.member[m as usize] {
            return format!("which lacks {}", class.label);
        }
        for &p in self.peers.get(u) {
            if !self.peer_on(p, m) {
                return format!("where {} does not run", self.names.get(p));
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
            .filter(|&x| self.anti.get(x).contains(&b.pattern))
            .min();
        match holder {
            Some(x) if self.is_conflict_of(x, b.pattern) => {
                format!("is excluded by Conflicts={glob} of units there (e.g. {})", self.names.get(x))
            }
            Some(x) => {
                format!("would be replaced by Replaces={glob} of units there (e.g. {})", self.names.get(x))
            }
            None => format!("is excluded by {glob}"),
        }
    }

    fn is_conflict_of(&self, u: u32, pattern: u32) -> bool {
        self.anti.get(u)[..self.info[u as usize].n_conflicts as usize].contains(&pattern)
    }

    /// Why no machine of `u`'s class takes it (every one was tried).
    fn scan_reason(&self, u: u32) -> String {
        let class = &self.classes[self.info[u as usize].class as usize];
        if self.alive == 0 {
            return "no machines were given".to_owned();
        }
        if class.members.is_empty() {
            let alive: Vec<&MachineRecord> =
                self.machines.iter().zip(&self.dead).filter(|(_, &d)| !d).map(|(m, _)| *m).collect();
            return metadata_reason(&self.constraints[u as usize].machine_metadata, &alive);
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
        let unit = self.names.get(u).to_owned();
        match self.assigned[u as usize] {
            NONE => Placement { unit, machine: None, reason: Some(self.reason_text(u)) },
            m => Placement { unit, machine: Some(self.machines[m as usize].id.clone()), reason: None },
        }
    }

    fn reason_text(&self, u: u32) -> String {
        match self.deferred.get(&u) {
            Some(Deferred::Scan) => self.scan_reason(u),
            Some(Deferred::On { lead, m }) => format!("{lead}, {}", self.why_not_on(u, *m)),
            None => self.reasons.get(&u).cloned().unwrap_or_else(|| "not placed".to_owned()),
        }
    }
}

/// The first 16 bytes of `name`, zero-padded, as a big-endian number: it
/// orders names as their bytes do, except that equal keys need a full look.
fn name_key(name: &str) -> u128 {
    let mut b = [0u8; 16];
    let n = name.len().min(16);
    b[..n].copy_from_slice(&name.as_bytes()[..n]);
    u128::from_be_bytes(b)
}

/// The unit called `name` in `names` (sorted), searched outward from unit
/// `from`: a `MachineOf=` peer is nearly always a close neighbour by name
/// (`app-side@1.service` beside `app@1.service`).
fn find_near(names: &Names, name: &str, from: u32) -> Option<u32> {
    let len = names.len();
    let from = from as usize;
    if from >= len {
        return None;
    }
    let cmp = |i: usize| names.get(idx(i)).cmp(name);
    let (lo, hi) = match cmp(from) {
        Ordering::Equal => return Some(idx(from)),
        Ordering::Less => {
            // The name is after `from`: double the step until past it.
            let mut step = 1;
            while from + step < len && cmp(from + step).is_lt() {
                step *= 2;
            }
            (from + step / 2 + 1, (from + step + 1).min(len))
        }
        Ordering::Greater => {
            let mut step = 1;
            while step <= from && cmp(from - step).is_gt() {
                step *= 2;
            }
            (from.saturating_sub(step), from - step / 2)
        }
    };
    let (mut lo, mut hi) = (lo, hi);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match cmp(mid) {
            Ordering::Less => lo = mid + 1,
            Ordering::Greater => hi = mid,
            Ordering::Equal => return Some(idx(mid)),
        }
    }
    None
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
    let label = req
        .iter()
        .map(|(k, vs)| if vs.len() > 1 { format!("({})", format_req(k, vs)) } else { format_req(k, vs) })
        .collect::<Vec<_>>()
        .join(" and ");
    Class::new(member, label)
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
