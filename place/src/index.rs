//! The indexes that let place avoid fleet's scan of every unit on every
//! candidate machine against every glob.
//!
//! Globs are interned: a cluster has many units but few distinct patterns
//! (`node-etcd@*.service` is shared by every instance). Each unit name is
//! matched once against only the patterns whose literal prefix it starts
//! with, giving the list of patterns that match it. Per machine the planner
//! then keeps two counters per pattern — residents whose name the pattern
//! matches, residents that hold the pattern — so "may unit U go on machine
//! M" is a handful of hash lookups, whatever M already runs.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use fleetkit_core::glob::Glob;

/// The Fx hash (rustc's): fast for the small integer and short string keys
/// here, where SipHash's flood resistance buys nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

pub type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Interned globs, findable by the names they can match.
#[derive(Debug, Default)]
pub struct Patterns {
    globs: Vec<Glob>,
    ids: FxMap<String, u32>,
    /// Literal patterns by their text.
    literal: FxMap<String, Vec<u32>>,
    /// Other patterns in a byte trie of their literal prefixes: a name
    /// walks it once, meeting exactly the patterns whose prefix it has.
    trie: Vec<TrieNode>,
}

#[derive(Debug, Default)]
struct TrieNode {
    /// (byte, child node), sorted by byte.
    children: Vec<(u8, u32)>,
    /// Patterns whose literal prefix ends here.
    patterns: Vec<u32>,
}

impl Patterns {
    /// The id of `glob`, interning it on first sight.
    pub fn intern(&mut self, glob: &str) -> Result<u32, fleetkit_core::glob::BadPattern> {
        if let Some(&id) = self.ids.get(glob) {
            return Ok(id);
        }
        let g = Glob::new(glob)?;
        let id = u32::try_from(self.globs.len()).unwrap_or(u32::MAX);
        if g.is_literal() {
            self.literal.entry(glob.to_owned()).or_default().push(id);
        } else {
            if self.trie.is_empty() {
                self.trie.push(TrieNode::default());
            }
            let mut node = 0usize;
            for &b in g.literal_prefix().as_bytes() {
                let children = &self.trie[node].children;
                node = match children.binary_search_by_key(&b, |&(c, _)| c) {
                    Ok(i) => children[i].1 as usize,
                    Err(i) => {
                        let child = self.trie.len();
                        self.trie[node].children.insert(i, (b, u32::try_from(child).unwrap_or(u32::MAX)));
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

    pub fn glob(&self, id: u32) -> &Glob {
        &self.globs[id as usize]
    }

    pub fn len(&self) -> usize {
        self.globs.len()
    }

    /// Every pattern that matches `name`, ascending by id.
    pub fn matching(&self, name: &str, out: &mut Vec<u32>) {
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
            out.extend(node.patterns.iter().copied().filter(|&id| self.globs[id as usize].matches(name)));
            let Some(&b) = bytes.next() else { break };
            match node.children.binary_search_by_key(&b, |&(c, _)| c) {
                Ok(i) => node = &self.trie[node.children[i].1 as usize],
                Err(_) => break,
            }
        }
        out.sort_unstable();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_exactly_the_matching_patterns() {
        let mut p = Patterns::default();
        let all: Vec<&str> =
            vec!["node-etcd@*.service", "node-*", "*", "web.service", "node-etcd@1.service", "x?"];
        let ids: Vec<u32> = all.iter().map(|g| p.intern(g).unwrap()).collect();
        assert_eq!(p.intern("node-*").unwrap(), ids[1], "interned once");
        let mut out = Vec::new();
        for name in ["node-etcd@1.service", "web.service", "xy", "a/b", "node-x"] {
            p.matching(name, &mut out);
            let want: Vec<u32> = ids.iter().copied().filter(|&i| p.glob(i).matches(name)).collect::<Vec<_>>();
            assert_eq!(out, want, "{name}");
        }
        assert!(p.intern("[").is_err());
    }
}
