//! May this unit go on this machine? Every rule, as a few lookups.
//!
//! Conflicts both ways are two sweeps over the unit's own short pattern
//! lists against the pattern counters of the machine, whatever it runs
//! already; the other rules are a membership bit or a comparison. The
//! choosing code asks only these questions, and the reasons ask them again
//! to say which rule said no.

use crate::ids::{MachineNo, PatternNo, UnitNo};
use crate::index::Count;
use crate::rules::Rules;
use crate::state::{key, State, Target};

/// Why a machine cannot take a unit: a pattern on one side or the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Block {
    /// True when the unit's own glob matches a resident; false when a
    /// resident's glob matches the unit.
    pub mine: bool,
    pub pattern: PatternNo,
}

impl State {
    /// Where `MachineID=` of unit `u` points.
    pub fn target(&self, r: &Rules, u: UnitNo) -> Target {
        if !r.info(u).pinned {
            return Target::Any;
        }
        self.targets.get(&u).cloned().unwrap_or(Target::Any)
    }

    /// The first rule that keeps unit `u` off machine `m`, if any.
    pub fn blocker(&self, r: &Rules, u: UnitNo, m: MachineNo) -> Option<Block> {
        for &p in r.anti.get(u) {
            if self.counts.get(p, m, Count::Hits) > 0 {
                return Some(Block { mine: true, pattern: p });
            }
        }
        for &p in r.matched_by.get(u) {
            if self.counts.get(p, m, Count::Holds) > 0 {
                return Some(Block { mine: false, pattern: p });
            }
        }
        None
    }

    /// Every rule of `u` holds on machine `m`.
    pub fn fits(&self, r: &Rules, u: UnitNo, m: MachineNo) -> bool {
        let target_ok = match self.target(r, u) {
            Target::Any => true,
            Target::One(t) => t == m,
            Target::NoMatch | Target::Ambiguous(_) => false,
        };
        target_ok
            && r.missing_peer(u).is_none()
            && self.class(r, u).member[m.ix()]
            && r.peers.get(u).iter().all(|&p| self.peer_on(r, p, m))
            && self.blocker(r, u, m).is_none()
    }

    /// Whether `u` could go on `m` once `leaving` has left it.
    pub fn fits_without(&self, r: &Rules, u: UnitNo, m: MachineNo, leaving: &[UnitNo]) -> bool {
        let hits_ok = r.anti.get(u).iter().all(|&p| {
            let gone = leaving.iter().filter(|&&x| r.matched_by.get(x).contains(&p)).count();
            self.counts.get(p, m, Count::Hits) as usize == gone
        });
        let holds_ok = r.matched_by.get(u).iter().all(|&p| {
            let gone = leaving.iter().filter(|&&x| r.anti.get(x).contains(&p)).count();
            self.counts.get(p, m, Count::Holds) as usize == gone
        });
        hits_ok && holds_ok
    }

    /// Peer `p` of a follower runs on `m`.
    pub fn peer_on(&self, r: &Rules, p: UnitNo, m: MachineNo) -> bool {
        if r.is_global(p) {
            self.global_on.contains(&key(p, m))
        } else {
            self.assigned(p) == Some(m)
        }
    }
}
