//! Go's `path.Match`, byte for byte, because fleet matched `Conflicts=` and
//! `Replaces=` with it and users' unit files rely on its exact rules.
//!
//! `*` matches any run of characters except `/`, `?` one character except
//! `/`, `[a-z]`/`[^x]` a class (non-empty; `\` escapes inside), `\c` the
//! character c. No braces, no `**`. A malformed pattern is [`BadPattern`],
//! and, as in Go since 1.16, it is reported even when the mismatch is found
//! before the malformed part. [`Glob`] checks a pattern once and then matches
//! without errors; it also exposes the literal prefix so callers can index.

use std::fmt;

/// Go's `ErrBadPattern`: the pattern is malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPattern {
    pub pattern: String,
}

impl fmt::Display for BadPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed glob \"{}\" (a `[` class must be closed and non-empty, `-` and `]` inside it need `\\`, and a pattern cannot end in `\\`)",
            crate::diag::escaped(&self.pattern)
        )
    }
}

impl std::error::Error for BadPattern {}

/// Go's `path.Match(pattern, name)`.
///
/// # Errors
/// [`BadPattern`] when `pattern` is malformed, whatever `name` is.
pub fn match_glob(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    go_match(pattern.as_bytes(), name.as_bytes()).map_err(|()| BadPattern { pattern: pattern.to_owned() })
}

/// Checks `pattern` as Go's `path.Match` would, without matching anything.
///
/// # Errors
/// [`BadPattern`] when the pattern is malformed.
pub fn check(pattern: &str) -> Result<(), BadPattern> {
    validate(pattern.as_bytes()).map_err(|()| BadPattern { pattern: pattern.to_owned() })
}

/// A pattern checked once, matched many times (a unit's `Conflicts=` globs
/// are matched against every unit name of a cluster).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Glob {
    pattern: String,
    literal_prefix_len: usize,
    is_literal: bool,
}

impl Glob {
    /// Checks `pattern` as Go does.
    ///
    /// # Errors
    /// [`BadPattern`] when Go's `path.Match` would report `ErrBadPattern`.
    pub fn new(pattern: &str) -> Result<Glob, BadPattern> {
        validate(pattern.as_bytes()).map_err(|()| BadPattern { pattern: pattern.to_owned() })?;
        let bytes = pattern.as_bytes();
        let literal_prefix_len =
            bytes.iter().position(|b| matches!(b, b'*' | b'?' | b'[' | b'\\')).unwrap_or(bytes.len());
        Ok(Glob {
            pattern: pattern.to_owned(),
            literal_prefix_len,
            is_literal: literal_prefix_len == bytes.len(),
        })
    }

    /// True when `name` matches.
    #[must_use]
    pub fn matches(&self, name: &str) -> bool {
        if self.is_literal {
            return self.pattern == name;
        }
        if !name.as_bytes().starts_with(&self.pattern.as_bytes()[..self.literal_prefix_len]) {
            return false;
        }
        // Validated in `new`, so Go's algorithm cannot report an error here.
        go_match(self.pattern.as_bytes(), name.as_bytes()).unwrap_or(false)
    }

    /// The pattern text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// The part before the first `*`, `?`, `[` or `\`: every matching name
    /// starts with it, so a caller can index patterns by it.
    #[must_use]
    pub fn literal_prefix(&self) -> &str {
        // Metacharacters are ASCII, so this is a char boundary.
        &self.pattern[..self.literal_prefix_len]
    }

    /// True when the pattern has no metacharacters: it matches only itself.
    #[must_use]
    pub fn is_literal(&self) -> bool {
        self.is_literal
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

/// Checks every chunk of `pattern` as Go's `Match` does on its way out.
fn validate(mut pattern: &[u8]) -> Result<(), ()> {
    while !pattern.is_empty() {
        let (_, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        match_chunk(chunk, b"")?;
    }
    Ok(())
}

fn go_match(mut pattern: &[u8], mut name: &[u8]) -> Result<bool, ()> {
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // Trailing * matches the rest of the string unless it has a /.
            return Ok(!name.contains(&b'/'));
        }
        // Look for a match at the current position.
        let res = match_chunk(chunk, name);
        if let Ok(Some(t)) = res {
            // The last chunk must exhaust the name; otherwise a star may still match.
            if t.is_empty() || !pattern.is_empty() {
                name = t;
                continue;
            }
        }
        res?;
        if star {
            // Look for a match skipping i+1 bytes; a star cannot skip a /.
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                if let Some(t) = match_chunk(chunk, &name[i + 1..])? {
                    if pattern.is_empty() && !t.is_empty() {
                        i += 1;
                        continue;
                    }
                    name = t;
                    continue 'pattern;
                }
                i += 1;
            }
        }
        // Before answering false, check the rest of the pattern is well formed.
        validate(pattern)?;
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// The next chunk: a run of non-star terms, maybe preceded by stars.
fn scan_chunk(mut pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut star = false;
    while let [b'*', rest @ ..] = pattern {
        pattern = rest;
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => return (star, &pattern[..i], &pattern[i..]),
            _ => {}
        }
        i += 1;
    }
    (star, pattern, &[])
}

/// Whether `chunk` matches the start of `s`: `Ok(Some(rest))`, `Ok(None)`,
/// or `Err` for a malformed chunk (checked to its end even after a mismatch).
fn match_chunk<'s>(mut chunk: &[u8], mut s: &'s [u8]) -> Result<Option<&'s [u8]>, ()> {
    let mut failed = false;
    while let Some(&c) = chunk.first() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match c {
            b'[' => {
                let mut r = 0u32;
                if !failed {
                    let (rune, n) = decode_rune(s);
                    r = rune;
                    s = &s[n..];
                }
                chunk = &chunk[1..];
                let mut negated = false;
                if let [b'^', rest @ ..] = chunk {
                    negated = true;
                    chunk = rest;
                }
                let mut matched = false;
                let mut nrange = 0;
                loop {
                    if let [b']', rest @ ..] = chunk {
                        if nrange > 0 {
                            chunk = rest;
                            break;
                        }
                    }
                    let (lo, rest) = get_esc(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if chunk[0] == b'-' {
                        let (h, rest) = get_esc(&chunk[1..])?;
                        hi = h;
                        chunk = rest;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    nrange += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            b'?' => {
                if !failed {
                    if s[0] == b'/' {
                        failed = true;
                    }
                    let (_, n) = decode_rune(s);
                    s = &s[n..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                if c == b'\\' {
                    chunk = &chunk[1..];
                    if chunk.is_empty() {
                        return Err(());
                    }
                }
                if !failed {
                    if chunk[0] != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    Ok(if failed { None } else { Some(s) })
}

/// A possibly escaped character of a class; the rest must not be empty
/// (a class always needs its closing `]`).
fn get_esc(mut chunk: &[u8]) -> Result<(u32, &[u8]), ()> {
    match chunk.first() {
        None | Some(b'-' | b']') => return Err(()),
        Some(b'\\') => {
            chunk = &chunk[1..];
            if chunk.is_empty() {
                return Err(());
            }
        }
        Some(_) => {}
    }
    let (r, n) = decode_rune(chunk);
    if r == RUNE_ERROR && n == 1 {
        return Err(());
    }
    let rest = &chunk[n..];
    if rest.is_empty() {
        return Err(());
    }
    Ok((r, rest))
}

const RUNE_ERROR: u32 = 0xFFFD;

/// Go's `utf8.DecodeRuneInString`: the first rune and its width, or
/// (RuneError, 1) for an invalid byte. `s` must not be empty.
fn decode_rune(s: &[u8]) -> (u32, usize) {
    let width = match s[0] {
        0x00..=0x7F => return (u32::from(s[0]), 1),
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return (RUNE_ERROR, 1),
    };
    match s.get(..width).and_then(|b| std::str::from_utf8(b).ok()).and_then(|t| t.chars().next()) {
        Some(ch) => (u32::from(ch), width),
        None => (RUNE_ERROR, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go's own table, src/path/match_test.go (`None` = ErrBadPattern).
    const GO_TABLE: &[(&str, &str, Option<bool>)] = &[
        ("abc", "abc", Some(true)),
        ("*", "abc", Some(true)),
        ("*c", "abc", Some(true)),
        ("a*", "a", Some(true)),
        ("a*", "abc", Some(true)),
        ("a*", "ab/c", Some(false)),
        ("a*/b", "abc/b", Some(true)),
        ("a*/b", "a/c/b", Some(false)),
        ("a*b*c*d*e*/f", "axbxcxdxe/f", Some(true)),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Some(true)),
        ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Some(false)),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Some(false)),
        ("a*b?c*x", "abxbbxdbxebxczzx", Some(true)),
        ("a*b?c*x", "abxbbxdbxebxczzy", Some(false)),
        ("ab[c]", "abc", Some(true)),
        ("ab[b-d]", "abc", Some(true)),
        ("ab[e-g]", "abc", Some(false)),
        ("ab[^c]", "abc", Some(false)),
        ("ab[^b-d]", "abc", Some(false)),
        ("ab[^e-g]", "abc", Some(true)),
        ("a\\*b", "a*b", Some(true)),
        ("a\\*b", "ab", Some(false)),
        ("a?b", "a☺b", Some(true)),
        ("a[^a]b", "a☺b", Some(true)),
        ("a???b", "a☺b", Some(false)),
        ("a[^a][^a][^a]b", "a☺b", Some(false)),
        ("[a-ζ]*", "α", Some(true)),
        ("*[a-ζ]", "A", Some(false)),
        ("a?b", "a/b", Some(false)),
        ("a*b", "a/b", Some(false)),
        ("[\\]a]", "]", Some(true)),
        ("[\\-]", "-", Some(true)),
        ("[x\\-]", "x", Some(true)),
        ("[x\\-]", "-", Some(true)),
        ("[x\\-]", "z", Some(false)),
        ("[\\-x]", "x", Some(true)),
        ("[\\-x]", "-", Some(true)),
        ("[\\-x]", "a", Some(false)),
        ("[]a]", "]", None),
        ("[-]", "-", None),
        ("[x-]", "x", None),
        ("[x-]", "-", None),
        ("[x-]", "z", None),
        ("[-x]", "x", None),
        ("[-x]", "-", None),
        ("[-x]", "a", None),
        ("\\", "a", None),
        ("[a-b-c]", "a", None),
        ("[", "a", None),
        ("[^", "a", None),
        ("[^bc", "a", None),
        ("a[", "a", None),
        ("a[", "ab", None),
        ("a[", "x", None),
        ("a/b[", "x", None),
        ("*x", "xxx", Some(true)),
    ];

    #[test]
    fn go_table() {
        for &(pattern, name, want) in GO_TABLE {
            let got = match_glob(pattern, name).ok();
            assert_eq!(check(pattern).is_ok(), want.is_some(), "check({pattern:?})");
            assert_eq!(got, want, "Match({pattern:?}, {name:?})");
            match (Glob::new(pattern), want) {
                (Ok(g), Some(m)) => assert_eq!(g.matches(name), m, "Glob({pattern:?}).matches({name:?})"),
                (Err(_), None) => {}
                (g, w) => panic!("Glob::new({pattern:?}) = {g:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn fleet_style_patterns() {
        let g = Glob::new("node-etcd@*.service").unwrap();
        assert!(g.matches("node-etcd@1.service"));
        assert!(g.matches("node-etcd@.service"));
        assert!(!g.matches("node-etcd-discovery@1.service"));
        assert_eq!(g.literal_prefix(), "node-etcd@");
        assert!(!g.is_literal());
        let lit = Glob::new("web.service").unwrap();
        assert!(lit.is_literal() && lit.matches("web.service") && !lit.matches("web.services"));
        // Braces are not special in Go's globs.
        assert!(match_glob("{a,b}.service", "{a,b}.service").unwrap());
    }

    #[test]
    fn malformed_tail_is_reported_even_after_a_mismatch() {
        assert!(match_glob("x*[", "abc").is_err());
        assert!(match_glob("b[", "abc").is_err());
        let e = Glob::new("web@[.service").unwrap_err();
        assert!(e.to_string().contains("web@[.service"), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_glob_agrees(pattern in "[a-c*?\\[\\]^\\\\/-]{0,8}", name in "[a-c/-]{0,8}") {
            let direct = match_glob(&pattern, &name);
            match Glob::new(&pattern) {
                Ok(g) => proptest::prop_assert_eq!(direct, Ok(g.matches(&name))),
                Err(_) => proptest::prop_assert!(direct.is_err()),
            }
        }

        #[test]
        fn literal_patterns_match_only_themselves(name in "[a-z@.0-9-]{0,12}", other in "[a-z@.0-9-]{0,12}") {
            proptest::prop_assert!(match_glob(&name, &name).unwrap());
            proptest::prop_assert_eq!(match_glob(&name, &other).unwrap(), name == other);
        }
    }
}
