//! Why a unit has no machine, in words a person can act on.
//!
//! Most reasons are fixed when the unit fails ("MachineOf x, which is not
//! placed") and kept in the state as text. Those that depend on what runs
//! where ("conflicts with a@*.service on all 4 machines") are [`Deferred`]
//! and worded only when the answer is read, from the final state: so a
//! re-run with the output as `--current`, which gets there by another way,
//! gives the same words.

use std::collections::BTreeMap;

use fleetkit_core::records::MachineRecord;

use crate::fit::Block;
use crate::ids::{MachineNo, UnitNo};
use crate::rules::Rules;
use crate::state::State;

/// A reason whose words depend on where the others end up.
#[derive(Debug, Clone)]
pub enum Deferred {
    /// No machine of its class takes it.
    Scan,
    /// Its rules name machine `m`, which does not take it.
    On { lead: String, m: MachineNo },
}

impl State {
    /// Why unit `u` has no machine.
    pub fn reason_text(&self, r: &Rules, u: UnitNo) -> String {
        match self.deferred.get(&u) {
            Some(Deferred::Scan) => self.scan_reason(r, u),
            Some(Deferred::On { lead, m }) => format!("{lead}, {}", self.why_not_on(r, u, *m)),
            None => self.reasons.get(&u).cloned().unwrap_or_else(|| "not placed".to_owned()),
        }
    }

    /// Why `u` cannot go on `m`, as the end of a sentence naming `m`.
    fn why_not_on(&self, r: &Rules, u: UnitNo, m: MachineNo) -> String {
        if self.dead[m.ix()] {
            return "which is gone".to_owned();
        }
        if !self.class(r, u).member[m.ix()] {
            return format!("which lacks {}", r.label(r.info(u).class));
        }
        for &p in r.peers.get(u) {
            if !self.peer_on(r, p, m) {
                return format!("where {} does not run", r.names.get(p));
            }
        }
        match self.blocker(r, u, m) {
            Some(b) => format!("where it {}", self.describe(r, u, b, m)),
            None => "which cannot take it".to_owned(),
        }
    }

    fn describe(&self, r: &Rules, u: UnitNo, b: Block, m: MachineNo) -> String {
        let glob = r.patterns.glob(b.pattern);
        if b.mine {
            return if r.is_conflict_of(u, b.pattern) {
                format!("conflicts with {glob}")
            } else {
                format!("would run beside {glob}, which it replaces")
            };
        }
        // The first holder by name, so the words do not depend on arrival order.
        let holder =
            self.residents[m.ix()].iter().copied().filter(|&x| r.anti.get(x).contains(&b.pattern)).min();
        match holder {
            Some(x) if r.is_conflict_of(x, b.pattern) => {
                format!("is excluded by Conflicts={glob} of units there (e.g. {})", r.names.get(x))
            }
            Some(x) => {
                format!("would be replaced by Replaces={glob} of units there (e.g. {})", r.names.get(x))
            }
            None => format!("is excluded by {glob}"),
        }
    }

    /// Why no machine of `u`'s class takes it (every one was tried).
    fn scan_reason(&self, r: &Rules, u: UnitNo) -> String {
        let class = self.class(r, u);
        if self.alive == 0 {
            return "no machines were given".to_owned();
        }
        if class.members.is_empty() {
            let alive: Vec<&MachineRecord> =
                r.machines.iter().zip(&self.dead).filter(|(_, &d)| !d).map(|(m, _)| *m).collect();
            return metadata_reason(&r.constraints[u.ix()].machine_metadata, &alive);
        }
        let mut groups: BTreeMap<Block, (usize, MachineNo)> = BTreeMap::new();
        for &m in &class.members {
            if let Some(b) = self.blocker(r, u, m) {
                groups.entry(b).or_insert((0, m)).0 += 1;
            }
        }
        let n = class.members.len();
        let qual = qualifier(r.label(r.info(u).class));
        let all = if n == 1 {
            format!("on the only machine{}", qual.replace(" that have ", " that has "))
        } else {
            format!("on all {n} machines{qual}")
        };
        if let (1, Some((&b, &(_, m)))) = (groups.len(), groups.iter().next()) {
            return format!("{} {all}", self.describe(r, u, b, m));
        }
        let mut parts: Vec<(usize, String)> =
            groups.iter().map(|(&b, &(count, m))| (count, self.describe(r, u, b, m))).collect();
        parts.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let shown: Vec<String> = parts.iter().take(3).map(|(c, d)| format!("{d} on {c}")).collect();
        format!(
            "no machine{qual} takes it ({n} tried): {}{}",
            shown.join("; "),
            if parts.len() > 3 { "; …" } else { "" }
        )
    }
}

/// ` that have LABEL`, or nothing for the class of all machines.
pub fn qualifier(label: &str) -> String {
    if label.is_empty() {
        String::new()
    } else {
        format!(" that have {label}")
    }
}

/// `key=a or key=b`.
pub fn format_req(key: &str, values: &[impl AsRef<str>]) -> String {
    values.iter().map(|v| format!("{key}={}", v.as_ref())).collect::<Vec<_>>().join(" or ")
}

/// Why no live machine has the metadata `req` asks for.
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
