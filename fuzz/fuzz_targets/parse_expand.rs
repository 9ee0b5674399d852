//! Coverage-guided fuzzing of the unit-file parser and the expander: any
//! bytes must parse or be refused with diagnostics, never panic; a parsed
//! unit must survive its own canonical text; expanding it must not panic.
#![no_main]

use fleetkit_core::expand::Source;
use fleetkit_core::unit::UnitFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first line (if short) is the instance, the rest the unit file, so
    // the fuzzer explores odd instance names too.
    let (instance, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) if i < 64 => (std::str::from_utf8(&data[..i]).ok(), &data[i + 1..]),
        _ => (None, data),
    };
    if let Ok((mut unit, _)) = UnitFile::parse_bytes(body) {
        let text = unit.to_text();
        unit.renumber();
        assert_eq!(UnitFile::parse(&text).ok(), Some(unit), "canonical text must parse back");
    }
    for name in ["fuzz@.service", "a-b\\x2dc@.service", "plain.service"] {
        if let Ok(source) = Source::parse(name, body) {
            let inst = if source.is_template() { Some(instance.unwrap_or("x")) } else { None };
            if let Ok((record, _)) = source.instantiate(inst) {
                assert!(UnitFile::parse(&record.text).is_ok(), "expanded text must parse");
            }
        }
    }
});
