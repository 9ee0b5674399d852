//! Per-unit data in flat arrays: one short list of numbers per unit
//! ([`Lists`]) and every unit's name ([`Names`]), each in one allocation.
//!
//! At a million units an allocation per unit is more memory and more
//! time than the planning. The arrays index with `u32` ends, which is why
//! a push can fail ([`Full`]): input past 2^32 items is refused with an
//! error rather than a panic.

use std::cmp::Ordering;

use crate::ids::UnitNo;

/// One short list per unit, all in one array.
#[derive(Debug, Clone)]
pub struct Lists<T> {
    ends: Vec<u32>,
    items: Vec<T>,
}

/// An array of the planner's would pass 2^32 entries: the input is more
/// than one plan holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

fn end(len: usize) -> Result<u32, Full> {
    u32::try_from(len).map_err(|_| Full)
}

impl<T: Copy> Lists<T> {
    pub fn with_capacity(lists: usize, items: usize) -> Self {
        Lists { ends: Vec::with_capacity(lists), items: Vec::with_capacity(items) }
    }

    /// Appends the list of the next unit.
    pub fn push(&mut self, list: &[T]) -> Result<(), Full> {
        let e = end(self.items.len() + list.len())?;
        self.items.extend_from_slice(list);
        self.ends.push(e);
        Ok(())
    }

    pub fn get(&self, u: UnitNo) -> &[T] {
        let i = u.ix();
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.items[start..self.ends[i] as usize]
    }

    /// Every item of every list.
    pub fn items_mut(&mut self) -> &mut [T] {
        &mut self.items
    }
}

impl Lists<UnitNo> {
    /// `pairs` of (unit, item) gathered into `lists` lists, each in the
    /// order its items come in `pairs`.
    pub fn from_pairs(lists: usize, pairs: &[(UnitNo, UnitNo)]) -> Result<Self, Full> {
        end(pairs.len())?;
        let mut ends = vec![0u32; lists];
        for &(l, _) in pairs {
            ends[l.ix()] += 1;
        }
        let mut total = 0;
        for e in &mut ends {
            total += *e;
            *e = total;
        }
        // Filled back to front, so each list keeps its order.
        let mut items = vec![UnitNo::new(0); pairs.len()];
        let mut next = ends.clone();
        for &(l, item) in pairs.iter().rev() {
            next[l.ix()] -= 1;
            items[next[l.ix()] as usize] = item;
        }
        Ok(Lists { ends, items })
    }
}

/// Strings in one buffer, by unit.
#[derive(Debug, Clone)]
pub struct Names {
    ends: Vec<u32>,
    bytes: String,
}

impl Names {
    pub fn with_capacity(names: usize, bytes: usize) -> Self {
        Names { ends: Vec::with_capacity(names), bytes: String::with_capacity(bytes) }
    }

    pub fn push(&mut self, name: &str) -> Result<(), Full> {
        let e = end(self.bytes.len() + name.len())?;
        self.bytes.push_str(name);
        self.ends.push(e);
        Ok(())
    }

    pub fn get(&self, u: UnitNo) -> &str {
        let i = u.ix();
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.bytes[start..self.ends[i] as usize]
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// The last name pushed.
    pub fn last(&self) -> Option<&str> {
        self.len().checked_sub(1).map(|i| self.get(UnitNo::new(i)))
    }

    /// The bytes of all names together.
    pub fn bytes(&self) -> usize {
        self.bytes.len()
    }
}

/// The first 16 bytes of `name`, zero-padded, as a big-endian number: it
/// orders names as their bytes do, except that equal keys need a full look.
pub fn name_key(name: &str) -> u128 {
    let mut b = [0u8; 16];
    let n = name.len().min(16);
    b[..n].copy_from_slice(&name.as_bytes()[..n]);
    u128::from_be_bytes(b)
}

impl Names {
    /// The unit called `name` (the names being sorted), searched outward
    /// from unit `from`: a `MachineOf=` peer is nearly always a close
    /// neighbour by name (`app-side@1.service` beside `app@1.service`).
    pub fn find_near(&self, name: &str, from: UnitNo) -> Option<UnitNo> {
        let len = self.len();
        let from = from.ix();
        if from >= len {
            return None;
        }
        let cmp = |i: usize| self.get(UnitNo::new(i)).cmp(name);
        let (lo, hi) = match cmp(from) {
            Ordering::Equal => return Some(UnitNo::new(from)),
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
                Ordering::Equal => return Some(UnitNo::new(mid)),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_from_pairs_keep_order() {
        let u = UnitNo::new;
        let l = Lists::from_pairs(3, &[(u(2), u(7)), (u(0), u(1)), (u(2), u(5))]).unwrap();
        assert_eq!((l.get(u(0)), l.get(u(1)), l.get(u(2))), (&[u(1)][..], &[][..], &[u(7), u(5)][..]));
        let mut n = Names::with_capacity(2, 4);
        n.push("ab").unwrap();
        n.push("").unwrap();
        assert_eq!((n.get(u(0)), n.get(u(1)), n.len(), n.last()), ("ab", "", 2, Some("")));
    }

    #[test]
    fn finds_names_near_and_far() {
        let mut n = Names::with_capacity(5, 20);
        for name in ["a", "b", "c", "d", "e"] {
            n.push(name).unwrap();
        }
        for from in 0..5 {
            for (i, name) in ["a", "b", "c", "d", "e"].iter().enumerate() {
                assert_eq!(n.find_near(name, UnitNo::new(from)), Some(UnitNo::new(i)));
            }
            assert_eq!(n.find_near("bb", UnitNo::new(from)), None);
        }
        assert_eq!(n.find_near("a", UnitNo::new(5)), None);
        assert!(
            name_key("ab") < name_key("b") && name_key("a") == name_key("a\0"),
            "a full look is needed then"
        );
    }
}
