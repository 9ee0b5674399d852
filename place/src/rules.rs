//! What the input says, in the planner's numbers: fixed once built.
//!
//! [`Rules`] holds everything that is true of the units and machines
//! whatever goes where: names, globs, which patterns match which names,
//! who follows whom, metadata classes. Placing only reads it, and losing a
//! machine does not touch it (a machine's going is in [`crate::state`]),
//! so a reader of the choosing code can tell the two apart by type.

use fleetkit_core::constraints::Constraints;
use fleetkit_core::records::MachineRecord;

use crate::fxhash::FxMap;
use crate::ids::{ClassNo, MachineNo, PatternNo, UnitNo};
use crate::index::Patterns;
use crate::lists::{Lists, Names};

/// The rules of a unit that fit in a few words; its lists of numbers are
/// [`Lists`] in [`Rules`], its `MachineID=` target in the state (few units
/// have one, and it changes when machines go).
#[derive(Debug, Clone, Copy)]
pub struct Info {
    pub class: ClassNo,
    /// How many of its `anti` patterns are `Conflicts=` globs; the rest
    /// are `Replaces=` globs.
    pub n_conflicts: u32,
    pub global: bool,
    /// It has `MachineOf=`.
    pub follows: bool,
    /// It has `MachineID=`.
    pub pinned: bool,
}

/// The input, numbered: units by name and machines by ID, so that walking
/// the arrays in order gives the answer's order and ties break by ID.
pub struct Rules<'a> {
    /// Unit names, by number.
    pub names: Names,
    /// Each unit's `[X-Fleet]` section, for what the numbers leave out:
    /// the words of `MachineID=`, `MachineOf=` and `MachineMetadata=` in
    /// reasons.
    pub constraints: Vec<&'a Constraints>,
    pub machines: Vec<&'a MachineRecord>,
    pub patterns: Patterns,
    pub info: Vec<Info>,
    /// Each unit's `Conflicts=` patterns, then its `Replaces=` patterns.
    pub anti: Lists<PatternNo>,
    /// The patterns (of any unit) that match each unit's name.
    pub matched_by: Lists<PatternNo>,
    /// Each unit's known `MachineOf=` peers.
    pub peers: Lists<UnitNo>,
    /// The units that follow each non-global unit.
    pub followers: Lists<UnitNo>,
    /// A `MachineOf=` name that no given unit has (its index), by unit.
    pub missing_peer: FxMap<UnitNo, usize>,
    /// The units each pattern matches, for `Replaces=` patterns only.
    pub matching_units: Vec<Vec<UnitNo>>,
    /// Each class's requirement in words (`region=eu and disk=ssd`),
    /// empty for the class of all machines.
    pub labels: Vec<String>,
    /// Units with `MachineID=`, whose target can change when machines go.
    pub pinned: Vec<UnitNo>,
}

impl Rules<'_> {
    pub fn units(&self) -> usize {
        self.info.len()
    }

    pub fn info(&self, u: UnitNo) -> Info {
        self.info[u.ix()]
    }

    pub fn is_global(&self, u: UnitNo) -> bool {
        self.info[u.ix()].global
    }

    /// `Replaces=` patterns of unit `u`.
    pub fn replaces(&self, u: UnitNo) -> &[PatternNo] {
        &self.anti.get(u)[self.info(u).n_conflicts as usize..]
    }

    pub fn is_conflict_of(&self, u: UnitNo, pattern: PatternNo) -> bool {
        self.anti.get(u)[..self.info(u).n_conflicts as usize].contains(&pattern)
    }

    /// The index of a `MachineOf=` name of `u` that no given unit has.
    pub fn missing_peer(&self, u: UnitNo) -> Option<usize> {
        if !self.info(u).follows {
            return None;
        }
        self.missing_peer.get(&u).copied()
    }

    pub fn machine_id(&self, m: MachineNo) -> &str {
        &self.machines[m.ix()].id
    }

    pub fn label(&self, class: ClassNo) -> &str {
        &self.labels[class.ix()]
    }
}
