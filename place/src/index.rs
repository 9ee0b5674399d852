//! The indexes that let place avoid fleet's scan of every unit on every
//! candidate machine against every glob.
//!
//! Globs are interned: a cluster has many units but few distinct patterns
//! (`node-etcd@*.service` is shared by every instance). Each unit name is
//! matched once against only the patterns whose literal prefix it starts
//! with, giving the list of patterns that match it. Per pattern the planner
//! then keeps two counters per machine — residents whose name the pattern
//! matches, residents that hold the pattern — so "may unit U go on machine
//! M" is a handful of lookups, whatever M already runs ([`Counts`]). Each
//! group of machines keeps them in (load, ID) order ([`LoadOrder`]).
//!
//! At a million units memory traffic is the cost, so the per-unit data is
//! flat arrays ([`crate::lists`]) rather than an allocation per unit.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use fleetkit_core::glob::Glob;

use crate::fxhash::FxMap;
use crate::ids::{MachineNo, PatternNo};

/// Interned globs, findable by the names they can match.
#[derive(Debug)]
pub struct Patterns {
    /// How many patterns, and trie nodes, there may be: what a `u32`
    /// numbers (smaller in tests, which cannot make four billion).
    limit: usize,
    globs: Vec<Glob>,
    ids: FxMap<String, PatternNo>,
    /// Literal patterns by their text.
    literal: FxMap<String, Vec<PatternNo>>,
    /// Other patterns in a byte trie of their literal prefixes: a name
    /// walks it once, meeting exactly the patterns whose prefix it has.
    trie: Vec<TrieNode>,
}

impl Default for Patterns {
    fn default() -> Self {
        Patterns::with_limit(u32::MAX as usize)
    }
}

impl Patterns {
    fn with_limit(limit: usize) -> Self {
        Patterns {
            limit,
            globs: Vec::new(),
            ids: FxMap::default(),
            literal: FxMap::default(),
            trie: Vec::new(),
        }
    }
}

#[derive(Debug, Default)]
struct TrieNode {
    /// (byte, child node), sorted by byte.
    children: Vec<(u8, u32)>,
    /// Patterns whose literal prefix ends here.
    patterns: Vec<PatternNo>,
}

/// Why a glob could not be interned.
#[derive(Debug)]
pub enum Intern {
    /// Go's `path.Match` refuses the pattern.
    Bad(fleetkit_core::glob::BadPattern),
    /// A pattern or trie node number would pass 2^32 (see [`crate::lists`]).
    Full,
}

impl Patterns {
    /// The id of `glob`, interning it on first sight.
    ///
    /// # Errors
    /// A malformed glob, or more patterns or trie nodes than `u32` numbers.
    pub fn intern(&mut self, glob: &str) -> Result<PatternNo, Intern> {
        if let Some(&id) = self.ids.get(glob) {
            return Ok(id);
        }
        let g = Glob::new(glob).map_err(Intern::Bad)?;
        let id = PatternNo::try_new(self.globs.len(), self.limit).ok_or(Intern::Full)?;
        if g.is_literal() {
            self.literal.entry(glob.to_owned()).or_default().push(id);
        } else {
            let prefix = g.literal_prefix().as_bytes();
            if self.trie.is_empty() {
                self.trie.push(TrieNode::default());
            }
            let mut node = 0usize;
            for &b in prefix {
                let children = &self.trie[node].children;
                node = match children.binary_search_by_key(&b, |&(c, _)| c) {
                    Ok(i) => children[i].1 as usize,
                    Err(i) => {
                        // Nodes a refused glob added hold no pattern, so
                        // they change no answer (and the plan fails anyway).
                        let child = self.trie.len();
                        let no =
                            u32::try_from(child).ok().filter(|_| child < self.limit).ok_or(Intern::Full)?;
                        self.trie[node].children.insert(i, (b, no));
                        self.trie.push(TrieNode::default());
                        child
                    }
                };
            }
            self.trie[node].patterns.push(id);
        }
        self.ids.insert(glob.to_owned(), id);
        self.globs.push(g);
        Ok(id)
    }

    /// Gives pattern `old` the number `new_of[old]` (a permutation).
    pub fn renumber(&mut self, new_of: &[PatternNo]) {
        let mut globs: Vec<(PatternNo, Glob)> = std::mem::take(&mut self.globs)
            .into_iter()
            .enumerate()
            .map(|(old, g)| (new_of[old], g))
            .collect();
        globs.sort_unstable_by_key(|g| g.0);
        self.globs = globs.into_iter().map(|g| g.1).collect();
        let ids = self.ids.values_mut();
        let literal = self.literal.values_mut().flatten();
        let trie = self.trie.iter_mut().flat_map(|node| node.patterns.iter_mut());
        for id in ids.chain(literal).chain(trie) {
            *id = new_of[id.ix()];
        }
    }

    pub fn glob(&self, id: PatternNo) -> &Glob {
        &self.globs[id.ix()]
    }

    pub fn len(&self) -> usize {
        self.globs.len()
    }

    /// Every pattern that matches `name`, ascending.
    pub fn matching(&self, name: &str, out: &mut Vec<PatternNo>) {
        out.clear();
        if let Some(ids) = self.literal.get(name) {
            out.extend_from_slice(ids);
        }
        let Some(mut node) = self.trie.first() else {
            out.sort_unstable();
            return;
        };
        let mut bytes = name.as_bytes().iter();
        loop {
            out.extend(node.patterns.iter().copied().filter(|&id| self.globs[id.ix()].matches(name)));
            let Some(&b) = bytes.next() else { break };
            match node.children.binary_search_by_key(&b, |&(c, _)| c) {
                Ok(i) => node = &self.trie[node.children[i].1 as usize],
                Err(_) => break,
            }
        }
        out.sort_unstable();
    }
}

/// Which of a pattern's two counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Residents whose name the pattern matches.
    Hits = 0,
    /// Residents that hold the pattern (in `Conflicts=` or `Replaces=`).
    Holds = 1,
}

/// A pattern's counters on the machines where they are not zero. Most
/// patterns belong to one template and sit on a few machines: a short list,
/// which stays in cache while that template's instances are placed one
/// after another. A pattern on many machines (`*`) turns into a map.
#[derive(Debug, Clone)]
enum Tally {
    Few(Vec<(MachineNo, [u32; 2])>),
    Many(FxMap<MachineNo, [u32; 2]>),
}

const FEW: usize = 32;

/// Both counters of every pattern on every machine.
#[derive(Debug, Clone)]
pub struct Counts {
    per: Vec<Tally>,
}

impl Counts {
    pub fn new(patterns: usize) -> Self {
        Counts { per: vec![Tally::Few(Vec::new()); patterns] }
    }

    pub fn get(&self, pattern: PatternNo, machine: MachineNo, which: Count) -> u32 {
        let n = match &self.per[pattern.ix()] {
            Tally::Few(v) => v.iter().find(|e| e.0 == machine).map(|e| e.1),
            Tally::Many(map) => map.get(&machine).copied(),
        };
        n.map_or(0, |n| n[which as usize])
    }

    pub fn add(&mut self, pattern: PatternNo, machine: MachineNo, which: Count) {
        let tally = &mut self.per[pattern.ix()];
        if let Tally::Few(v) = tally {
            if let Some(e) = v.iter_mut().find(|e| e.0 == machine) {
                e.1[which as usize] += 1;
                return;
            }
            if v.len() < FEW {
                let mut n = [0; 2];
                n[which as usize] = 1;
                v.push((machine, n));
                return;
            }
            *tally = Tally::Many(v.drain(..).collect());
        }
        if let Tally::Many(map) = tally {
            map.entry(machine).or_default()[which as usize] += 1;
        }
    }

    /// Undoes one [`Counts::add`].
    pub fn sub(&mut self, pattern: PatternNo, machine: MachineNo, which: Count) {
        match &mut self.per[pattern.ix()] {
            Tally::Few(v) => {
                if let Some(i) = v.iter().position(|e| e.0 == machine) {
                    v[i].1[which as usize] -= 1;
                    if v[i].1 == [0, 0] {
                        v.swap_remove(i);
                    }
                }
            }
            Tally::Many(map) => {
                if let Some(n) = map.get_mut(&machine) {
                    n[which as usize] -= 1;
                    if *n == [0, 0] {
                        map.remove(&machine);
                    }
                }
            }
        }
    }
}

/// A group of machines in (load, rank) order, as a tournament tree of the
/// keys `load << 32 | rank`: the least loaded is at the root, a change of
/// load costs one path to the root, and the machines come out in order,
/// each after a few steps down the tree.
#[derive(Debug, Clone)]
pub struct LoadOrder {
    leaves: usize,
    tree: Vec<u64>,
}

const GONE: u64 = u64::MAX;

impl LoadOrder {
    /// The machines of `ranks` (slot `i` holds `ranks[i]`), all at load 0.
    pub fn new(ranks: &[MachineNo]) -> Self {
        let leaves = ranks.len().next_power_of_two();
        let mut tree = vec![GONE; 2 * leaves];
        for (i, &r) in ranks.iter().enumerate() {
            tree[leaves + i] = u64::from(r.raw());
        }
        for i in (1..leaves).rev() {
            tree[i] = tree[2 * i].min(tree[2 * i + 1]);
        }
        LoadOrder { leaves, tree }
    }

    /// Puts the machine of `slot` at `load`, or takes it out (`None`).
    pub fn set(&mut self, slot: u32, rank: MachineNo, load: Option<u32>) {
        let mut i = self.leaves + slot as usize;
        self.tree[i] = load.map_or(GONE, |l| (u64::from(l) << 32) | u64::from(rank.raw()));
        while i > 1 {
            i /= 2;
            let k = self.tree[2 * i].min(self.tree[2 * i + 1]);
            if self.tree[i] == k {
                break;
            }
            self.tree[i] = k;
        }
    }

    /// The first machine in (load, rank) order that `ok` accepts.
    pub fn first(&self, mut ok: impl FnMut(MachineNo) -> bool) -> Option<MachineNo> {
        let rank = |k: u64| MachineNo::from_raw((k & 0xffff_ffff) as u32);
        let top = *self.tree.get(1)?;
        if top == GONE {
            return None;
        }
        // Nearly always the least loaded machine will do.
        if ok(rank(top)) {
            return Some(rank(top));
        }
        let mut heap = BinaryHeap::from([Reverse((top, 1usize))]);
        while let Some(Reverse((k, i))) = heap.pop() {
            if i >= self.leaves {
                if k != top && ok(rank(k)) {
                    return Some(rank(k));
                }
                continue;
            }
            for c in [2 * i, 2 * i + 1] {
                if self.tree[c] != GONE {
                    heap.push(Reverse((self.tree[c], c)));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ranks: &[usize]) -> Vec<MachineNo> {
        ranks.iter().map(|&r| MachineNo::new(r)).collect()
    }

    #[test]
    fn load_order_gives_machines_by_load_then_rank() {
        let m = MachineNo::new;
        let mut o = LoadOrder::new(&ms(&[3, 5, 8]));
        let order = |o: &LoadOrder| {
            let mut seen = Vec::new();
            o.first(|r| {
                seen.push(r);
                false
            });
            seen
        };
        assert_eq!(order(&o), ms(&[3, 5, 8]));
        o.set(0, m(3), Some(2));
        o.set(2, m(8), Some(1));
        assert_eq!(order(&o), ms(&[5, 8, 3]));
        assert_eq!(o.first(|r| r != m(5)), Some(m(8)));
        o.set(1, m(5), None);
        assert_eq!(order(&o), ms(&[8, 3]));
        assert_eq!(LoadOrder::new(&[]).first(|_| true), None);
    }

    #[test]
    fn counts_survive_the_switch_to_a_map() {
        let (p, m) = (PatternNo::new(0), MachineNo::new);
        let mut c = Counts::new(1);
        for i in 0..100 {
            c.add(p, m(i), Count::Hits);
        }
        c.add(p, m(7), Count::Holds);
        c.sub(p, m(8), Count::Hits);
        assert_eq!((c.get(p, m(7), Count::Hits), c.get(p, m(7), Count::Holds)), (1, 1));
        assert_eq!(c.get(p, m(8), Count::Hits), 0);
        assert_eq!(c.get(p, m(100), Count::Hits), 0);
    }

    #[test]
    fn finds_exactly_the_matching_patterns() {
        let mut p = Patterns::default();
        let all: Vec<&str> =
            vec!["node-etcd@*.service", "node-*", "*", "web.service", "node-etcd@1.service", "x?"];
        let ids: Vec<PatternNo> = all.iter().map(|g| p.intern(g).unwrap()).collect();
        assert_eq!(p.intern("node-*").unwrap(), ids[1], "interned once");
        let mut out = Vec::new();
        for name in ["node-etcd@1.service", "web.service", "xy", "a/b", "node-x"] {
            p.matching(name, &mut out);
            let want: Vec<PatternNo> = ids.iter().copied().filter(|&i| p.glob(i).matches(name)).collect();
            assert_eq!(out, want, "{name}");
        }
        assert!(matches!(p.intern("["), Err(Intern::Bad(_))));
    }

    #[test]
    fn past_the_numbers_is_an_error_not_a_panic() {
        let mut p = Patterns::with_limit(3);
        assert!(p.intern("a").is_ok() && p.intern("b").is_ok() && p.intern("c").is_ok());
        assert!(matches!(p.intern("d"), Err(Intern::Full)), "a fourth pattern number");
        assert!(p.intern("a").is_ok(), "known patterns still come back");
        let mut p = Patterns::with_limit(4);
        assert!(p.intern("ab*").is_ok(), "root and two nodes");
        assert!(p.intern("abc*").is_ok(), "a fourth node");
        assert!(matches!(p.intern("abd*"), Err(Intern::Full)), "a fifth trie node");
        assert!(p.intern("a*").is_ok(), "no node added");
        let mut out = Vec::new();
        p.matching("abd", &mut out);
        assert_eq!(out.len(), 2, "ab* and a*, not the refused glob: {out:?}");
    }
}
