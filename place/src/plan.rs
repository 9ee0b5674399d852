//! The library's answer: [`plan`] for one computation, [`Plan`] for a
//! placement kept in memory and changed one lost machine at a time.
//!
//! The order of work is fixed, each step deterministic (units by name,
//! machines by ID): check and number the input ([`crate::build`]); place
//! the global units; keep the current placements that still hold; place
//! every other unit ([`crate::choose`]); word the reasons of the units
//! left over when the answer is read ([`crate::reason`]).
//!
//! Load is the number of non-global units on a machine (fleet did not count
//! global units either). Each metadata class of machines keeps its machines
//! ordered by (load, ID), so the least loaded candidate is the first entry
//! and a machine that cannot take the unit is skipped in O(1) through the
//! pattern counters of [`crate::index`] ([`crate::fit`]).

use std::fmt;

use fleetkit_core::records::{MachineRecord, Placement};

use crate::build::build;
use crate::error::PlaceError;
use crate::ids::{MachineNo, UnitNo};
use crate::rules::Rules;
use crate::state::State;
use crate::Unit;

/// Computes where every unit runs, keeping `current` placements that still
/// hold; the output is sorted by unit name, then machine ID.
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
    rules: Rules<'a>,
    state: State,
}

impl fmt::Debug for Plan<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plan")
            .field("units", &self.rules.units())
            .field("machines", &self.rules.machines.len())
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
        let (rules, mut state) = build(units, machines)?;
        state.place_globals(&rules);
        let order = state.order(&rules);
        state.keep(&rules, current, &order);
        state.place_rest(&rules, &order);
        Ok(Plan { rules, state })
    }

    /// Every placement, as [`plan`] returns them.
    #[must_use]
    pub fn placements(&self) -> Vec<Placement> {
        let mut out = Vec::with_capacity(self.rules.units());
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
        let (r, s) = (&self.rules, &self.state);
        let mut on = Vec::new();
        for u in UnitNo::all(r.units()) {
            let unit = r.names.get(u);
            on.clear();
            if r.is_global(u) {
                on.extend(s.global_machines.get(&u).into_iter().flatten().copied());
                on.sort_unstable();
            } else if let Some(m) = s.assigned(u) {
                on.push(m);
            }
            if on.is_empty() {
                f(PlacementRef { unit, machine: None, reason: Some(s.reason_text(r, u)) })?;
            }
            for &m in &on {
                f(PlacementRef { unit, machine: Some(r.machine_id(m)), reason: None })?;
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
    /// fits nowhere now), of each global unit that ran there and now runs
    /// nowhere (with its reason), and of waiting units tried again —
    /// followers of those units, `MachineID=` units whose prefix may have
    /// become unique — sorted by unit name; empty for an unknown ID.
    ///
    /// The rules stay as they were built: only the state changes.
    pub fn remove_machine(&mut self, id: &str) -> Vec<Placement> {
        self.remove_machines(&[id])
    }

    /// [`Plan::remove_machine`] for machines that went together: all are
    /// forgotten before their units are placed again, so the answer is
    /// what [`plan`] would give without them, whatever their order here.
    pub fn remove_machines(&mut self, ids: &[&str]) -> Vec<Placement> {
        let (r, s) = (&self.rules, &mut self.state);
        let mut lost = Vec::new();
        let mut globals = Vec::new();
        for id in ids {
            let Ok(rank) = r.machines.binary_search_by(|m| m.id.as_str().cmp(id)) else { continue };
            if s.dead[rank] {
                continue;
            }
            globals.extend(s.residents[rank].iter().copied().filter(|&u| r.is_global(u)));
            lost.extend(s.forget(r, MachineNo::new(rank)));
        }
        lost.sort_unstable();
        lost.dedup();
        lost.sort_unstable_by_key(|&u| s.position[u.ix()]);
        s.place_rest(r, &lost);
        // A global unit that ran there alone now runs nowhere.
        lost.extend(globals.into_iter().filter(|g| s.global_machines.get(g).is_none_or(Vec::is_empty)));
        lost.sort_unstable();
        lost.dedup();
        lost.iter()
            .map(|&u| {
                let unit = r.names.get(u).to_owned();
                match s.assigned(u) {
                    None => Placement { unit, machine: None, reason: Some(s.reason_text(r, u)) },
                    Some(m) => Placement { unit, machine: Some(r.machine_id(m).to_owned()), reason: None },
                }
            })
            .collect()
    }
}
