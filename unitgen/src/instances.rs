//! The `-i` instance lists: `1..3`, `{1..3}`, `01..10`, `3..1`, `a,b,c`,
//! and `-` for one per line on stdin.
//!
//! Ranges stay lazy so `-i 1..100000` costs nothing before the first record
//! is written; literal instances are checked (or escaped, with `--escape`)
//! before any output, so a bad one stops the run before it starts. An item
//! made only of digits, dots and minus signs is meant as a range, so one
//! that is not a valid range (`1..`, `..3`, `1...3`, `-5..3`, `1..2..9`, an
//! end past [`MAX_END`]) is refused rather than taken as one instance
//! called `1...3`. A range's length is not limited: it streams, like `seq`.

use fleetkit_core::diag::escaped;
use fleetkit_core::name;

/// The largest end of a range (a `u64`).
pub const MAX_END: u64 = u64::MAX;

/// A `-i` list that gives no usable instances.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error("-i '{}': empty instance (write a,b,c or 1..3)", escaped(.list))]
    Empty { list: String },
    /// An instance systemd would not accept in a unit name; core's words.
    #[error("{reason}")]
    Invalid { reason: String },
    #[error(
        "-i '{}': {} is negative; a range counts whole numbers from 0 to {MAX_END} (e.g. 0..3)",
        escaped(.list),
        escaped(.end)
    )]
    Negative { list: String, end: String },
    #[error(
        "-i '{}': {} is out of range; a range's ends are whole numbers from 0 to {MAX_END}",
        escaped(.list),
        escaped(.end)
    )]
    OutOfRange { list: String, end: String },
    #[error(
        "-i '{}': '{}' is not a range: write FROM..TO with two whole numbers (1..3, 01..10, 3..1)",
        escaped(.list),
        escaped(.part)
    )]
    Malformed { list: String, part: String },
}

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
    /// An empty item, a malformed or out-of-range range, or an instance
    /// systemd would not accept in a unit name (unless `escape`).
    pub fn add(&mut self, list: &str, escape: bool, stdin_lines: Option<&str>) -> Result<(), InstanceError> {
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
                return Err(InstanceError::Empty { list: list.to_owned() });
            }
            match range(list, part)? {
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

fn literal(s: &str, escape: bool) -> Result<String, InstanceError> {
    let s = if escape { name::escape(s) } else { s.to_owned() };
    name::check_instance(&s).map_err(|reason| InstanceError::Invalid { reason })?;
    Ok(s)
}

/// `A..B` with decimal A and B; zero padded (to the longer one) as bash
/// pads when either starts with `0`. `None` for text that is no range
/// (`a..b`, `web`); an error for one that tries to be and fails.
fn range(list: &str, part: &str) -> Result<Option<Item>, InstanceError> {
    if !part.contains("..") || !part.bytes().all(|c| c.is_ascii_digit() || c == b'.' || c == b'-') {
        return Ok(None);
    }
    let malformed = || InstanceError::Malformed { list: list.to_owned(), part: part.to_owned() };
    let (a, b) = part.split_once("..").ok_or_else(malformed)?;
    let end = |s: &str| -> Result<u64, InstanceError> {
        if let Some(digits) = s.strip_prefix('-') {
            if !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()) {
                return Err(InstanceError::Negative { list: list.to_owned(), end: s.to_owned() });
            }
        }
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(malformed());
        }
        s.parse().map_err(|_| InstanceError::OutOfRange { list: list.to_owned(), end: s.to_owned() })
    };
    let (from, to) = (end(a)?, end(b)?);
    let padded = |s: &str| s.len() > 1 && s.starts_with('0');
    let width = if padded(a) || padded(b) { a.len().max(b.len()) } else { 0 };
    Ok(Some(Item::Range { from, to, width }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(args: &[&str], escape: bool) -> Result<Vec<String>, InstanceError> {
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
        let err = list(&["10.0.0.1/24"], false).unwrap_err().to_string();
        assert!(err.contains("10.0.0.1/24") && err.contains("--escape"), "{err}");
        assert_eq!(list(&["10.0.0.1/24"], true).unwrap(), ["10.0.0.1-24"]);
        assert!(list(&["a,,b"], false).is_err());
    }

    #[test]
    fn malformed_negative_and_huge_ranges_are_refused_naming_input_and_limits() {
        let cases: &[(&str, &str)] = &[
            ("1..100000000000000000000", "100000000000000000000 is out of range; a range's ends are whole numbers from 0 to 18446744073709551615"),
            ("-5..3", "-5 is negative"),
            ("3..-5", "-5 is negative"),
            ("1..", "'1..' is not a range"),
            ("..3", "'..3' is not a range"),
            ("1...3", "'1...3' is not a range"),
            ("1..2..9", "'1..2..9' is not a range"),
            ("1.5..3", "'1.5..3' is not a range"),
            ("{1..3,..}", "'..' is not a range"),
            ("1..18446744073709551616", "18446744073709551616 is out of range"),
        ];
        for (input, want) in cases {
            let err = list(&[input], false).unwrap_err().to_string();
            assert!(err.starts_with(&format!("-i '{input}': ")) && err.contains(want), "{input}: {err}");
        }
        assert_eq!(list(&["18446744073709551615..18446744073709551614"], false).unwrap().len(), 2);
        assert_eq!(list(&["v1..2", "a..b"], false).unwrap(), ["v1..2", "a..b"], "not ranges: literal names");
    }

    #[test]
    fn control_bytes_in_lists_are_escaped_in_messages() {
        let err = list(&["a\x1b[31mX"], false).unwrap_err().to_string();
        assert!(!err.contains('\x1b') && err.contains("a\\x1b[31mX"), "{err}");
        let err = list(&[",\x1b"], false).unwrap_err().to_string();
        assert!(err.starts_with("-i ',\\x1b': empty instance"), "{err}");
    }
}
