//! The `[X-Fleet]` placement rules of a unit, with fleet's semantics.
//!
//! OWNER NOTE (remove when implemented): the struct is the shared contract
//! (its JSON field names are pinned by unitgen's records); parsing from a
//! `[X-Fleet]` section and the contradiction checks are to be implemented.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The parsed `[X-Fleet]` section of one unit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Constraints {
    /// `MachineID=`: a full machine ID or a unique prefix of one.
    pub machine_id: Option<String>,
    /// `MachineOf=`: run only where all these units run.
    pub machine_of: Vec<String>,
    /// `MachineMetadata=k=v`: values of one key OR'd, keys AND'd.
    pub machine_metadata: BTreeMap<String, Vec<String>>,
    /// `Conflicts=`: Go `path.Match` globs of units not to share a machine with.
    pub conflicts: Vec<String>,
    /// `Global=true`: run on every machine that qualifies.
    pub global: bool,
    /// `Replaces=`: globs of units whose machine this unit takes.
    pub replaces: Vec<String>,
}

impl Constraints {
    /// Reads the `[X-Fleet]` section of `unit` (specifiers already resolved)
    /// and checks it for the contradictions fleet rejected. Unknown keys are
    /// warnings; everything else wrong is an error at its line.
    ///
    /// OWNER NOTE: stub until implemented.
    #[must_use]
    pub fn from_unit(unit: &crate::unit::UnitFile) -> (Constraints, Vec<crate::diag::Diagnostic>) {
        let _ = unit;
        (Constraints::default(), Vec::new())
    }
}
