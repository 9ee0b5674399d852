//! From records to [`Rules`]: checking the input and numbering everything.
//!
//! Three passes, each shaped by what a million units cost:
//! 1. the records in the order given, which is the order they lie in
//!    memory (reading them in name order instead costs more than all the
//!    planning): names copied out, globs interned, rules checked,
//!    `MachineMetadata=` requirements turned into classes of machines;
//! 2. by name, through a 16-byte prefix key, so that most comparisons end
//!    without reading the names; duplicates show up here;
//! 3. in name order: the patterns that match each name, and the units
//!    that `MachineOf=` and `MachineID=` point at.
//!
//! Numbers must not depend on the input's order, or the words of a reason
//! would: patterns are renumbered by first use in name order, and of
//! several bad units the first by name is reported.

use std::collections::BTreeMap;

use fleetkit_core::constraints::Constraints;
use fleetkit_core::records::MachineRecord;

use crate::error::PlaceError;
use crate::fxhash::FxMap;
use crate::ids::{ClassNo, PatternNo, UnitNo};
use crate::index::{Intern, Patterns};
use crate::lists::{name_key, Full, Lists, Names};
use crate::reason::format_req;
use crate::rules::{Info, Rules};
use crate::state::{resolve_machine_id, Class, State};
use crate::Unit;

/// The rules of `units` on `machines`, and a state with nothing placed.
///
/// # Errors
/// A duplicate unit or machine, an empty name, a malformed glob,
/// contradictory `[X-Fleet]` rules, or more input than one plan holds.
pub fn build<'a, H>(
    units: &'a [Unit<H>],
    machines: &'a [MachineRecord],
) -> Result<(Rules<'a>, State), PlaceError> {
    let mut machines: Vec<&MachineRecord> = machines.iter().collect();
    machines.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    for w in machines.windows(2) {
        if w[0].id == w[1].id {
            return Err(PlaceError::Duplicate { what: "machine", name: w[0].id.clone() });
        }
    }
    if machines.first().is_some_and(|m| m.id.is_empty()) {
        return Err(PlaceError::Empty { what: "machine", field: "id" });
    }
    let n = units.len();
    let m = machines.len();
    let name_bytes: usize = units.iter().map(|u| u.name.len()).sum();
    if m >= u32::MAX as usize {
        return Err(PlaceError::TooBig { what: format!("{m} machines"), limit: "under 2^32" });
    }
    if n >= u32::MAX as usize || u32::try_from(name_bytes).is_err() {
        return Err(PlaceError::TooBig {
            what: format!("{n} units with {name_bytes} bytes of names"),
            limit: "under 2^32 units and 4 GiB of names",
        });
    }
    let too_big = |Full| PlaceError::TooBig {
        what: format!("{n} units whose rules name more than 2^32 patterns, peers and trie nodes in all"),
        limit: "under 2^32 of each",
    };

    // 1. In the order given.
    let mut names_given = Names::with_capacity(n, name_bytes);
    let mut anti_given = Lists::with_capacity(n, n);
    let mut info_given = Vec::with_capacity(n);
    let mut patterns = Patterns::default();
    let mut classes = vec![Class::new(vec![true; m])];
    let mut labels = vec![String::new()];
    let mut class_ids: FxMap<Vec<(&str, Vec<&str>)>, ClassNo> = FxMap::default();
    let mut last_class: Option<(&BTreeMap<String, Vec<String>>, ClassNo)> = None;
    let mut last_glob: Option<(&str, PatternNo)> = None;
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
        names_given.push(&r.name).map_err(too_big)?;
        let simple = c.machine_id.is_none() && !c.global && c.machine_metadata.is_empty();
        let plain = simple && (c.machine_of.is_empty() || c.conflicts.is_empty()) && c.replaces.is_empty();
        // Globs are checked when they are interned below.
        if !plain {
            if let Some(problem) = c.problems().into_iter().next() {
                note(&r.name, PlaceError::Rules { unit: r.name.clone(), problem });
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
                        Err(Intern::Bad(err)) => {
                            note(&r.name, PlaceError::BadGlob { unit: r.name.clone(), key, err });
                            continue;
                        }
                        Err(Intern::Full) => return Err(too_big(Full)),
                    },
                };
                last_glob = Some((g.as_str(), id));
                anti.push(id);
            }
        }
        anti_given.push(&anti).map_err(too_big)?;
        let class = if c.machine_metadata.is_empty() {
            ClassNo::new(0)
        } else if let Some((_, class)) = last_class.filter(|(last, _)| *last == &c.machine_metadata) {
            class
        } else {
            let req = requirement(c);
            let next = ClassNo::new(classes.len());
            let class = *class_ids.entry(req).or_insert_with_key(|req| {
                let (member, label) = class_of(req, &machines);
                classes.push(Class::new(member));
                labels.push(label);
                next
            });
            // Instances of one template come together and share their rules.
            last_class = Some((&c.machine_metadata, class));
            class
        };
        info_given.push(Info {
            class,
            n_conflicts: u32::try_from(c.conflicts.len()).unwrap_or(u32::MAX),
            global: c.global,
            follows: !c.machine_of.is_empty(),
            pinned: c.machine_id.is_some(),
        });
    }

    // 2. By name.
    let mut keyed: Vec<(u128, UnitNo)> = UnitNo::all(n).map(|i| (name_key(names_given.get(i)), i)).collect();
    keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| names_given.get(a.1).cmp(names_given.get(b.1))));
    let mut names = Names::with_capacity(n, names_given.bytes());
    let mut anti = Lists::with_capacity(n, n);
    let mut info = Vec::with_capacity(n);
    let mut constraints = Vec::with_capacity(n);
    for &(_, i) in &keyed {
        let name = names_given.get(i);
        if names.last() == Some(name) {
            return Err(PlaceError::Duplicate { what: "unit", name: name.to_owned() });
        }
        names.push(name).map_err(too_big)?;
        anti.push(anti_given.get(i)).map_err(too_big)?;
        info.push(info_given[i.ix()]);
        constraints.push(&units[i.ix()].constraints);
    }
    drop((keyed, names_given, anti_given, info_given));
    if names.len() > 0 && names.get(UnitNo::new(0)).is_empty() {
        return Err(PlaceError::Empty { what: "unit", field: "name" });
    }
    if let Some((_, e)) = first_error {
        return Err(e);
    }
    // Patterns numbered by first use in name order, as if interned in
    // that order: which rule a reason names must not depend on the order
    // the units were given in.
    let mut new_of: Vec<Option<PatternNo>> = vec![None; patterns.len()];
    let mut next = 0;
    for p in anti.items_mut() {
        *p = *new_of[p.ix()].get_or_insert_with(|| {
            next += 1;
            PatternNo::new(next - 1)
        });
    }
    // Every pattern was interned for some unit's list, so each has one.
    let new_of: Vec<PatternNo> =
        new_of.iter().enumerate().map(|(old, p)| p.unwrap_or(PatternNo::new(old))).collect();
    patterns.renumber(&new_of);

    // 3. In name order.
    let mut is_replace = vec![false; patterns.len()];
    for u in UnitNo::all(n) {
        for &p in &anti.get(u)[info[u.ix()].n_conflicts as usize..] {
            is_replace[p.ix()] = true;
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
    for u in UnitNo::all(n) {
        patterns.matching(names.get(u), &mut scratch);
        for &p in &scratch {
            if is_replace[p.ix()] {
                matching_units[p.ix()].push(u);
            }
        }
        matched_by.push(&scratch).map_err(too_big)?;
        let c: &Constraints = constraints[u.ix()];
        found.clear();
        if info[u.ix()].follows {
            for (k, peer) in c.machine_of.iter().enumerate() {
                match names.find_near(peer, u) {
                    Some(j) if !found.contains(&j) => found.push(j),
                    Some(_) => {}
                    None => {
                        missing_peer.entry(u).or_insert(k);
                    }
                }
            }
            for &j in &found {
                if !info[j.ix()].global {
                    follow_pairs.push((j, u));
                }
            }
        }
        peers.push(&found).map_err(too_big)?;
        if let Some(id) = &c.machine_id {
            targets.insert(u, resolve_machine_id(id, &machines, &[]));
            pinned.push(u);
        }
    }
    let followers = Lists::from_pairs(n, &follow_pairs).map_err(too_big)?;
    let rules = Rules {
        names,
        constraints,
        machines,
        patterns,
        info,
        anti,
        matched_by,
        peers,
        followers,
        missing_peer,
        matching_units,
        labels,
        pinned,
    };
    let state = State::new(&rules, classes, targets);
    Ok((rules, state))
}

/// `MachineMetadata=` in one spelling: keys and values sorted, values
/// deduplicated, so units that ask the same in other words share a class.
fn requirement(c: &Constraints) -> Vec<(&str, Vec<&str>)> {
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
    req
}

/// Which machines satisfy `req`, and `req` in words.
fn class_of(req: &[(&str, Vec<&str>)], machines: &[&MachineRecord]) -> (Vec<bool>, String) {
    let member: Vec<bool> = machines
        .iter()
        .map(|m| req.iter().all(|(k, vs)| m.metadata.get(*k).is_some_and(|v| vs.contains(&v.as_str()))))
        .collect();
    let label = req
        .iter()
        .map(|(k, vs)| if vs.len() > 1 { format!("({})", format_req(k, vs)) } else { format_req(k, vs) })
        .collect::<Vec<_>>()
        .join(" and ");
    (member, label)
}
