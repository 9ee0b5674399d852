//! Property tests for the unit-file parser and the expander: no input makes
//! them panic, and the canonical text of a unit parses back to the same unit.

use fleetkit_core::expand::expand;
use fleetkit_core::name::{escape, unescape};
use fleetkit_core::unit::{Entry, Section, UnitFile};
use proptest::prelude::*;

/// Unit-file-like text: the bytes that matter to the parser, often.
fn unitish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"[Service]".to_vec()),
        Just(b"[X-Fleet]".to_vec()),
        Just(b"[".to_vec()),
        Just(b"]".to_vec()),
        Just(b"=".to_vec()),
        Just(b"\\".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\0".to_vec()),
        Just(b"#".to_vec()),
        Just(b";".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\t".to_vec()),
        Just(b"%i".to_vec()),
        Just(b"%".to_vec()),
        Just("\u{feff}".as_bytes().to_vec()),
        Just("\u{fffe}".as_bytes().to_vec()),
        Just(b"Key".to_vec()),
        any::<u8>().prop_map(|b| vec![b]),
    ];
    prop::collection::vec(piece, 0..60).prop_map(|v| v.concat())
}

/// Drops line numbers, which canonical text lays out afresh.
fn shape(u: &UnitFile) -> Vec<(String, Vec<(String, String)>)> {
    u.sections
        .iter()
        .map(|s| (s.name.clone(), s.entries.iter().map(|e| (e.key.clone(), e.value.clone())).collect()))
        .collect()
}

/// A key or section name or value made of parseable characters.
fn text(first: &'static str, rest: &'static str) -> impl Strategy<Value = String> {
    (first, rest).prop_map(|(a, b): (String, String)| a + &b)
}

fn is_nonchar(c: char) -> bool {
    let c = u32::from(c);
    (0xFDD0..=0xFDEF).contains(&c) || (c & 0xFFFE) == 0xFFFE
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        text("[A-Za-z]", "[A-Za-z0-9_.@-]{0,10}"),
        prop_oneof![Just(String::new()), text("[^ \t\r\n\0\\\\\u{feff}]", "[^\r\n\0]{0,20}[^ \t\r\n\0]"),],
    )
        .prop_filter("systemd refuses noncharacters", |(_, v)| !v.chars().any(is_nonchar))
        .prop_map(|(key, value)| Entry { key, value, line: 0 })
}

fn unit_file() -> impl Strategy<Value = UnitFile> {
    let section = (text("[A-Za-z]", "[A-Za-z0-9 _.-]{0,8}"), prop::collection::vec(entry(), 0..6))
        .prop_map(|(name, entries)| Section { name, line: 0, entries });
    prop::collection::vec(section, 0..5).prop_map(|sections| {
        let mut u = UnitFile { sections };
        u.renumber();
        u
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(800))]

    #[test]
    fn parser_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = UnitFile::parse_bytes(&bytes);
    }

    #[test]
    fn parser_never_panics_on_unitish_text(bytes in unitish()) {
        if let Ok((u, _)) = UnitFile::parse_bytes(&bytes) {
            // Whatever parsed, its canonical text parses to the same shape.
            let again = UnitFile::parse(&u.to_text());
            prop_assert!(again.is_ok(), "{:?}", u.to_text());
            prop_assert_eq!(shape(&again.unwrap()), shape(&u));
        }
    }

    #[test]
    fn canonical_text_round_trips(u in unit_file()) {
        prop_assert_eq!(UnitFile::parse(&u.to_text()), Ok(u));
    }

    #[test]
    fn expand_never_panics(bytes in unitish(), instance in "[A-Za-z0-9:_.\\\\@-]{1,12}") {
        let text = String::from_utf8_lossy(&bytes);
        if let Ok((record, _)) = expand("fuzz-me@.service", &text, Some(&instance)) {
            prop_assert!(UnitFile::parse(&record.text).is_ok());
        }
    }

    #[test]
    fn escape_then_unescape_is_identity(s in "[^\0]{0,30}") {
        let escaped = escape(&s);
        prop_assert!(escaped.bytes().all(|b| b.is_ascii_alphanumeric() || b":_.\\-".contains(&b)));
        prop_assert_eq!(unescape(&escaped).unwrap(), s.as_bytes().to_vec());
    }
}
