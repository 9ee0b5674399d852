//! The one thing planning is given per unit, whoever reads the records.
//!
//! The rules read a unit's name and its `[X-Fleet]` section, nothing else:
//! not its text (most of a record's bytes), template or instance. The
//! `place` binary (see [`crate::read_units`]) and clusterctl's scheduler
//! both read records straight into [`Unit`], so neither keeps what the
//! rules never look at, and neither has to invent it to call [`crate::plan`].

use fleetkit_core::constraints::Constraints;
use fleetkit_core::records::UnitRecord;
use serde::de::IgnoredAny;
use serde::Deserialize;

/// A unit as planning takes it.
///
/// `hash` is not read by the rules: it rides along for a caller that needs
/// it beside the answer. clusterctl's scheduler reads `Unit<String>`, since
/// every `assign/` key it writes holds the hash it planned; place has no
/// use for it, and its [`IgnoredAny`] costs nothing. Records deserialize
/// into either with other fields (the text above all) skipped unread.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Unit<H = IgnoredAny> {
    /// Full unit name, e.g. `node-etcd@1.service`.
    pub name: String,
    pub hash: H,
    /// The parsed `[X-Fleet]` section, specifiers resolved.
    pub constraints: Constraints,
}

impl Unit {
    /// A unit that carries no hash.
    #[must_use]
    pub fn new(name: impl Into<String>, constraints: Constraints) -> Self {
        Unit { name: name.into(), hash: IgnoredAny, constraints }
    }
}

/// What planning reads of a whole record (clusterctl's `start` holds whole
/// records, since it expands templates from their text).
impl From<&UnitRecord> for Unit {
    fn from(r: &UnitRecord) -> Self {
        Unit::new(r.name.clone(), r.constraints.clone())
    }
}
