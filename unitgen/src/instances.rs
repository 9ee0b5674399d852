//! The `-i` instance lists: `1..3`, `{1..3}`, `01..10`, `3..1`, `a,b,c`,
//! and `-` for one per line on stdin.
//!
//! Ranges stay lazy so `-i 1..100000` costs nothing before the first record
//! is written; literal instances are checked (or escaped, with `--escape`)
//! before any output, so a bad one stops the run before it starts.

use fleetkit_core::name;

/// One item of an instance list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Literal(String),
    /// `from..to` inclusive, either direction, zero padded to `width`.
    Range {
        from: u64,
        to: u64,
        width: usize,
    },
}

/// Every instance given with `-i`, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Instances {
    items: Vec<Item>,
}

impl Instances {
    /// Adds one `-i LIST`. `stdin_lines` are the lines read for `-`.
    ///
    /// # Errors
    /// An empty item, or an instance systemd would not accept in a unit
    /// name (unless `escape`).
    pub fn add(&mut self, list: &str, escape: bool, stdin_lines: Option<&str>) -> Result<(), String> {
        if list == "-" {
            let lines = stdin_lines.unwrap_or("");
            for line in lines.lines().map(str::trim).filter(|l| !l.is_empty()) {
                self.items.push(Item::Literal(literal(line, escape)?));
            }
            return Ok(());
        }
        let inner = list.strip_prefix('{').and_then(|l| l.strip_suffix('}')).unwrap_or(list);
        for part in inner.split(',') {
            if part.is_empty() {
                return Err(format!("-i '{list}': empty instance (write a,b,c or 1..3)"));
            }
            match range(part) {
                Some(r) => self.items.push(r),
                None => self.items.push(Item::Literal(literal(part, escape)?)),
            }
        }
        Ok(())
    }

    /// True when no instance was given.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The first instance, if any (what `--check` expands templates with).
    #[must_use]
    pub fn first(&self) -> Option<String> {
        self.iter().next()
    }

    /// All instances in order.
    pub fn iter(&self) -> impl Iterator<Item = String> + '_ {
        self.items.iter().flat_map(|item| -> Box<dyn Iterator<Item = String>> {
            match item {
                Item::Literal(s) => Box::new(std::iter::once(s.clone())),
                Item::Range { from, to, width } => {
                    let width = *width;
                    let numbers: Box<dyn Iterator<Item = u64>> =
                        if from <= to { Box::new(*from..=*to) } else { Box::new((*to..=*from).rev()) };
                    Box::new(numbers.map(move |n| decimal(n, width)))
                }
            }
        })
    }
}

/// `format!("{n:0width$}")` without the formatting machinery, which is a
/// good part of the cost of a small unit when there are 100,000 of them.
fn decimal(mut n: u64, width: usize) -> String {
    let mut digits = [b'0'; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        // A digit, 0..=9.
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let len = digits.len() - start;
    let mut out = String::with_capacity(len.max(width));
    for _ in len..width {
        out.push('0');
    }
    out.extend(digits[start..].iter().map(|&d| char::from(d)));
    out
}

fn literal(s: &str, escape: bool) -> Result<String, String> {
    let s = if escape { name::escape(s) } else { s.to_owned() };
    name::check_instance(&s)?;
    Ok(s)
}

/// `A..B` with decimal A and B; zero padded (to the longer one) as bash
/// pads when either starts with `0`.
fn range(part: &str) -> Option<Item> {
    let (a, b) = part.split_once("..")?;
    let digits = |s: &str| !s.is_empty() && s.len() <= 19 && s.bytes().all(|c| c.is_ascii_digit());
    if !digits(a) || !digits(b) {
        return None;
    }
    let padded = |s: &str| s.len() > 1 && s.starts_with('0');
    let width = if padded(a) || padded(b) { a.len().max(b.len()) } else { 0 };
    Some(Item::Range { from: a.parse().ok()?, to: b.parse().ok()?, width })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(args: &[&str], escape: bool) -> Result<Vec<String>, String> {
        let mut i = Instances::default();
        for a in args {
            i.add(a, escape, Some("x\n\n y \r\n"))?;
        }
        Ok(i.iter().collect())
    }

    #[test]
    fn forms() {
        assert_eq!(list(&["1..3"], false).unwrap(), ["1", "2", "3"]);
        assert_eq!(list(&["{1..3}"], false).unwrap(), ["1", "2", "3"]);
        assert_eq!(list(&["3..1"], false).unwrap(), ["3", "2", "1"]);
        assert_eq!(list(&["08..10"], false).unwrap(), ["08", "09", "10"]);
        assert_eq!(list(&["9..010"], false).unwrap(), ["009", "010"]);
        assert_eq!(list(&["a,b,c", "{d,1..2}"], false).unwrap(), ["a", "b", "c", "d", "1", "2"]);
        assert_eq!(list(&["-"], false).unwrap(), ["x", "y"]);
        assert_eq!(list(&["a..b"], false).unwrap(), ["a..b"]);
    }

    #[test]
    fn decimal_is_format() {
        for n in [0, 1, 9, 10, 99, 100, 12345, u64::MAX - 1, u64::MAX] {
            for width in [0, 1, 2, 5, 20, 25] {
                assert_eq!(decimal(n, width), format!("{n:0width$}"));
            }
        }
    }

    #[test]
    fn bad_instances_are_named_or_escaped() {
        let err = list(&["10.0.0.1/24"], false).unwrap_err();
        assert!(err.contains("10.0.0.1/24") && err.contains("--escape"), "{err}");
        assert_eq!(list(&["10.0.0.1/24"], true).unwrap(), ["10.0.0.1-24"]);
        assert!(list(&["a,,b"], false).is_err());
    }
}
