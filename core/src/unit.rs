//! Unit files, parsed and written exactly as systemd reads them
//! (systemd.syntax(7), and systemd 252's `config_parse()` where the manual is
//! silent).
//!
//! Everything fleetkit knows about a unit starts here, so the rules are
//! systemd's to the byte: lines end at `\n`, `\r`, `\0` or a run mixing them
//! (systemd's `read_line()`); a line whose first non-blank byte is `#` or `;`
//! is a comment even inside a continuation, where it is dropped; an odd number
//! of trailing backslashes continues the line (the last backslash becomes a
//! space, the next line is appended as is); the first UTF-8 byte order mark is
//! skipped; keys and values are trimmed of space, tab, CR and LF only.
//! What systemd refuses (a bad section header, text that is not UTF-8 clean)
//! is an error; what it ignores with a warning (an assignment outside any
//! section, a line without `=`) is a warning and the line is dropped, as
//! systemd drops it. Sections systemd does not know (`[X-Fleet]`) are kept.

use crate::diag::{escaped, Diagnostic};

/// A parsed unit file: its sections in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnitFile {
    pub sections: Vec<Section>,
}

/// One `[Name]` section with its entries in file order (repeated keys kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    /// 1-based line of the `[Name]` header.
    pub line: usize,
    pub entries: Vec<Entry>,
}

/// One `Key=Value` assignment, continuation lines already joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    /// 1-based line where the assignment starts.
    pub line: usize,
}

/// systemd's `WHITESPACE`: what `strstrip()` trims. Not Unicode whitespace.
const WHITESPACE: &[u8] = b" \t\n\r";
/// systemd's `LONG_LINE_MAX`: longer lines (joined or not) are refused.
pub const LONG_LINE_MAX: usize = 1024 * 1024;
const BOM: &[u8] = b"\xef\xbb\xbf";

impl UnitFile {
    /// Parses unit-file text; errors are everything systemd would refuse the
    /// unit for. Warnings (lines systemd ignores) are dropped here; use
    /// [`UnitFile::parse_bytes`] to see them.
    ///
    /// # Errors
    /// Every line systemd would refuse, in file order.
    pub fn parse(text: &str) -> Result<UnitFile, Vec<Diagnostic>> {
        Self::parse_bytes(text.as_bytes()).map(|(unit, _)| unit)
    }

    /// Parses raw file contents, which need not be UTF-8: systemd only
    /// insists on UTF-8 in lines it interprets, not in comments. Returns the
    /// unit and the warnings for lines systemd would ignore.
    ///
    /// # Errors
    /// Every line systemd would refuse, in file order. Parsing goes on after
    /// an error so that one run reports them all.
    pub fn parse_bytes(bytes: &[u8]) -> Result<(UnitFile, Vec<Diagnostic>), Vec<Diagnostic>> {
        let mut parser = Parser::default();
        let mut continuation: Option<(Vec<u8>, usize)> = None;
        let mut bom_seen = false;
        for (index, raw) in physical_lines(bytes).enumerate() {
            let line_no = index + 1;
            let first = raw.iter().position(|b| !WHITESPACE.contains(b));
            if first.is_some_and(|i| matches!(raw[i], b'#' | b';')) {
                continue;
            }
            let mut line = raw;
            if !bom_seen {
                if let Some(rest) = line.strip_prefix(BOM) {
                    line = rest;
                    bom_seen = true;
                }
            }
            if raw.len() > LONG_LINE_MAX {
                parser
                    .errors
                    .push(Diagnostic::error(line_no, "line too long (systemd refuses lines over 1 MiB)"));
                continuation = None;
                continue;
            }
            let (mut joined, start) = match continuation.take() {
                Some((mut text, start)) => {
                    if text.len() + line.len() > LONG_LINE_MAX {
                        parser.errors.push(Diagnostic::error(
                            start,
                            "continuation line too long (systemd refuses lines over 1 MiB)",
                        ));
                        continue;
                    }
                    text.extend_from_slice(line);
                    (text, start)
                }
                None => (line.to_vec(), line_no),
            };
            if ends_escaped(line) {
                if let Some(last) = joined.last_mut() {
                    *last = b' ';
                }
                continuation = Some((joined, start));
                continue;
            }
            parser.line(&mut joined, start);
        }
        if let Some((mut joined, start)) = continuation {
            parser.line(&mut joined, start);
        }
        if parser.errors.is_empty() {
            Ok((parser.unit, parser.warnings))
        } else {
            Err(parser.errors)
        }
    }

    /// The canonical text: `[Name]` headers, `Key=Value` lines, a blank line
    /// between sections, no comments, no continuations (a value ending in an
    /// odd backslash gets one trailing blank, which parsing trims). Parsing it gives the
    /// same unit back (with [`UnitFile::renumber`]'s line numbers), and its
    /// SHA-256 is the unit's hash.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (i, section) in self.sections.iter().enumerate() {
            push_header(&mut out, &section.name, i == 0);
            for entry in &section.entries {
                push_entry(&mut out, &entry.key, &entry.value);
            }
        }
        out
    }

    /// Sets every line number to where [`UnitFile::to_text`] puts the item.
    pub fn renumber(&mut self) {
        let mut line = 0;
        for (i, section) in self.sections.iter_mut().enumerate() {
            line += if i > 0 { 2 } else { 1 };
            section.line = line;
            for entry in &mut section.entries {
                line += 1;
                entry.line = line;
            }
        }
    }

    /// The first section called `name`, if any.
    #[must_use]
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// Every entry `key` of every section called `section`, in file order
    /// (systemd merges repeated sections).
    pub fn values<'a>(&'a self, section: &'a str, key: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.sections
            .iter()
            .filter(move |s| s.name == section)
            .flat_map(|s| s.entries.iter())
            .filter(move |e| e.key == key)
    }
}

/// Appends a section header to canonical text (after a blank line unless
/// it is the first), as [`UnitFile::to_text`] writes it.
pub fn push_header(out: &mut String, name: &str, first: bool) {
    if !first {
        out.push('\n');
    }
    out.push('[');
    out.push_str(name);
    out.push_str("]\n");
}

/// Appends `key=value` to canonical text, as [`UnitFile::to_text`] writes it.
/// A value ending in an odd backslash gets one trailing blank (`A=x\ `
/// parses to `x\`); without it the backslash would continue the line.
pub fn push_entry(out: &mut String, key: &str, value: &str) {
    out.push_str(key);
    out.push('=');
    out.push_str(value);
    if ends_escaped(value.as_bytes()) {
        out.push(' ');
    }
    out.push('\n');
}

/// True when `line` ends in an odd number of backslashes, counted as systemd
/// does (each backslash escapes the next byte).
pub(crate) fn ends_escaped(line: &[u8]) -> bool {
    // Whatever came before, the byte ahead of the final run of backslashes
    // leaves the scan unescaped, so only that run's length matters.
    line.iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1
}

/// Splits like systemd's `read_line()`: a line ends at EOF or at a run of
/// `\n`, `\r`, `\0` in which no kind repeats and nothing follows a `\0`
/// (`\r\n`, `\n\r`, `\n\0` are one end; `\n\n` is two). An end at EOF does
/// not start another line.
fn physical_lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest.iter().position(|b| matches!(b, b'\n' | b'\r' | 0)).unwrap_or(rest.len());
        let line = &rest[..end];
        let mut i = end;
        let (mut nl, mut cr) = (false, false);
        while i < rest.len() {
            let seen = match rest[i] {
                b'\n' => &mut nl,
                b'\r' => &mut cr,
                0 => {
                    i += 1;
                    break;
                }
                _ => break,
            };
            if *seen {
                break;
            }
            *seen = true;
            i += 1;
        }
        rest = &rest[i..];
        Some(line)
    })
}

/// Trims systemd's `WHITESPACE` from both ends.
fn strstrip(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !WHITESPACE.contains(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !WHITESPACE.contains(b)).map_or(start, |i| i + 1);
    &s[start..end.max(start)]
}

/// systemd's `utf8_is_valid()`: valid UTF-8 without surrogates or the
/// noncharacters U+FDD0..U+FDEF and U+xFFFE/U+xFFFF.
fn utf8_clean(bytes: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(bytes).ok()?;
    let bad = |c: char| {
        let c = u32::from(c);
        (0xFDD0..=0xFDEF).contains(&c) || (c & 0xFFFE) == 0xFFFE
    };
    (!s.chars().any(bad)).then_some(s)
}

/// systemd's `string_is_safe()` for section names.
fn section_name_is_safe(name: &str) -> bool {
    !name.bytes().any(|b| b < b' ' || matches!(b, b'"' | b'\'' | b'\\' | 0x7f))
}

#[derive(Default)]
struct Parser {
    unit: UnitFile,
    /// Whether assignments go somewhere: false before the first section and
    /// after a header systemd refused.
    in_section: bool,
    /// A refused header was seen; systemd stops there, we keep reporting.
    after_bad_header: bool,
    warnings: Vec<Diagnostic>,
    errors: Vec<Diagnostic>,
}

impl Parser {
    /// systemd's `parse_line()` for one logical line starting at `line`.
    fn line(&mut self, joined: &mut [u8], line: usize) {
        let l = strstrip(joined);
        if l.is_empty() {
            return;
        }
        let Some(l) = utf8_clean(l) else {
            self.errors.push(Diagnostic::error(
                line,
                "text is not UTF-8 clean (systemd refuses it); re-save the file as UTF-8",
            ));
            return;
        };
        if let Some(inner) = l.strip_prefix('[') {
            let Some(name) = inner.strip_suffix(']') else {
                self.errors.push(Diagnostic::error(
                    line,
                    format!(
                        "invalid section header '{}': a header is '[Name]' alone on its line",
                        escaped(l)
                    ),
                ));
                self.in_section = false;
                self.after_bad_header = true;
                return;
            };
            if !section_name_is_safe(name) {
                self.errors.push(Diagnostic::error(
                    line,
                    format!(
                        "bad characters in section header '{}': no quotes, backslashes or control characters",
                        escaped(l)
                    ),
                ));
                self.in_section = false;
                self.after_bad_header = true;
                return;
            }
            self.unit.sections.push(Section { name: name.to_owned(), line, entries: Vec::new() });
            self.in_section = true;
            return;
        }
        if !self.in_section {
            if !self.after_bad_header {
                self.warnings.push(Diagnostic::warning(
                    line,
                    "assignment outside of any section; systemd ignores it: move it under a [Section] header",
                ));
            }
            return;
        }
        let Some((key, value)) = l.split_once('=') else {
            self.warnings.push(Diagnostic::warning(line, "missing '='; systemd ignores this line"));
            return;
        };
        if key.is_empty() {
            self.warnings
                .push(Diagnostic::warning(line, "missing key name before '='; systemd ignores this line"));
            return;
        }
        let key = trim(key);
        let value = trim(value);
        if key.starts_with(['\u{feff}', '#', ';']) {
            // Only reachable through byte order marks (the first one is
            // skipped, later ones are text). No systemd setting has such a
            // name, so systemd ignores it, and no canonical text could
            // carry it.
            self.warnings.push(Diagnostic::warning(
                line,
                format!("unknown key '{}' (a stray byte order mark?); ignored", escaped(key)),
            ));
            return;
        }
        if let Some(section) = self.unit.sections.last_mut() {
            section.entries.push(Entry { key: key.to_owned(), value: value.to_owned(), line });
        }
    }
}

/// [`strstrip`] for text already known to be UTF-8 (the trimmed bytes are
/// ASCII, so the cut stays on a character boundary).
fn trim(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_ascii() && WHITESPACE.contains(&(c as u8)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> UnitFile {
        match UnitFile::parse(text) {
            Ok(u) => u,
            Err(e) => panic!("{text:?} failed: {e:?}"),
        }
    }

    fn entries(u: &UnitFile) -> Vec<(String, String, usize)> {
        u.sections
            .iter()
            .flat_map(|s| s.entries.iter().map(|e| (e.key.clone(), e.value.clone(), e.line)))
            .collect()
    }

    #[test]
    fn continuation_joins_with_a_space_and_drops_comment_lines() {
        let u = parse_ok("[Service]\nExecStart=/bin/echo a \\\n# comment\n; other\n   b\\\nc\n");
        assert_eq!(entries(&u), vec![("ExecStart".into(), "/bin/echo a     b c".into(), 2)]);
    }

    #[test]
    fn even_backslashes_do_not_continue() {
        let u = parse_ok("[S]\nA=x\\\\\nB=y\n");
        assert_eq!(entries(&u), vec![("A".into(), "x\\\\".into(), 2), ("B".into(), "y".into(), 3)]);
    }

    #[test]
    fn empty_line_ends_a_continuation() {
        let u = parse_ok("[S]\nA=x \\\n\nB=y\n");
        assert_eq!(entries(&u), vec![("A".into(), "x".into(), 2), ("B".into(), "y".into(), 4)]);
    }

    #[test]
    fn continuation_at_eof_is_parsed() {
        let u = parse_ok("[S]\nA=x\\");
        assert_eq!(entries(&u), vec![("A".into(), "x".into(), 2)]);
    }

    #[test]
    fn repeated_keys_and_empty_values_are_kept_in_order() {
        let u = parse_ok("[S]\nA=1\n A = 2 \nA=\n\tB\t=\t3\n");
        assert_eq!(
            entries(&u),
            vec![
                ("A".into(), "1".into(), 2),
                ("A".into(), "2".into(), 3),
                ("A".into(), String::new(), 4),
                ("B".into(), "3".into(), 5)
            ]
        );
    }

    #[test]
    fn line_ends_follow_read_line() {
        let lines: Vec<&[u8]> = physical_lines(b"a\r\nb\n\rc\n\nd\0\ne\n").collect();
        assert_eq!(lines, vec![&b"a"[..], b"b", b"c", b"", b"d", b"", b"e"]);
    }

    #[test]
    fn bad_headers_are_errors() {
        let err = UnitFile::parse("[Unit\nA=b\n[Ser\"vice]\n").unwrap_err();
        assert_eq!(err.len(), 2);
        assert_eq!(err[0].line, 1);
        assert_eq!(err[1].line, 3);
    }

    #[test]
    fn ignored_lines_are_warnings() {
        let (u, w) = UnitFile::parse_bytes(b"A=b\n[S]\nnoequals\n=x\n").unwrap();
        assert_eq!(w.iter().map(|d| d.line).collect::<Vec<_>>(), vec![1, 3, 4]);
        assert!(u.sections[0].entries.is_empty());
    }

    #[test]
    fn noncharacters_are_not_utf8_clean() {
        assert!(UnitFile::parse("[S]\nA=\u{fffe}\n").is_err());
        assert!(UnitFile::parse_bytes(b"[S]\nA=\xff\n").is_err());
        assert!(UnitFile::parse_bytes(b"[S]\n# \xff\nA=b\n").is_ok());
    }

    #[test]
    fn first_bom_is_skipped_after_the_comment_check() {
        let u = parse_ok("\u{feff}[S]\nA=b\n");
        assert_eq!(u.sections[0].name, "S");
        let (_, w) = UnitFile::parse_bytes("[S]\n\u{feff}# x\n".as_bytes()).unwrap();
        assert_eq!(w.len(), 1, "a BOM hides the comment from systemd's comment check");
    }

    #[test]
    fn a_value_ending_in_a_backslash_round_trips() {
        let mut u = parse_ok("[S]\nA=x\\ \nB=y\n");
        assert_eq!(u.sections[0].entries[0].value, "x\\");
        u.renumber();
        assert_eq!(parse_ok(&u.to_text()), u);
    }

    #[test]
    fn to_text_round_trips() {
        let mut u = parse_ok("# c\n[Unit]\nDescription=x  y\n\n[X-Fleet]\nConflicts=a*\nConflicts=\n[]\n");
        let text = u.to_text();
        assert_eq!(text, "[Unit]\nDescription=x  y\n\n[X-Fleet]\nConflicts=a*\nConflicts=\n\n[]\n");
        u.renumber();
        assert_eq!(parse_ok(&text), u);
    }
}
