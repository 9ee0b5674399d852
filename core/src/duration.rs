//! The one duration syntax every fleetkit flag takes: Go's
//! `time.ParseDuration` (what etcdctl and `docker run` accept), plus a bare
//! number meaning seconds.
//!
//! Users copy `--dial-timeout` from etcdctl and `--health-interval` from
//! `docker run`; both are Go programs, so `1m30s`, `500ms`, `1.5s` and
//! `10us` must mean the same here whichever tool reads them. A bare number
//! (`5`, `0.5`) is seconds, as etcdctl's environment variables are often
//! written. The value is summed in whole nanoseconds, as Go does, so
//! `1.1s` is exactly 1,100 ms, and is bounded by Go's limit (about 292
//! years) so that no value can overflow a timer.

use std::time::Duration;

/// The accepted forms, as the error message names them.
const SYNTAX: &str = "e.g. 500ms, 5s, 1m30s; a bare number is seconds";

/// Go's largest duration, `math.MaxInt64` nanoseconds.
const MAX_NANOS: u128 = i64::MAX as u128;

/// Parses `1m30s`, `500ms`, `1.5s`, `10us`, `2h`, or a bare number of seconds.
///
/// # Errors
/// A message naming the value and the accepted forms.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("'{s}' is not a duration: use {SYNTAX}");
    if s.is_empty() {
        return Err(bad());
    }
    let mut rest = s;
    let mut total: u128 = 0;
    let mut bare = true;
    while !rest.is_empty() {
        let (whole, frac, after) = number(rest).ok_or_else(bad)?;
        let unit_len = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let unit = &after[..unit_len];
        if unit.is_empty() && !(bare && unit_len == after.len()) {
            return Err(bad());
        }
        let nanos_per_unit: u128 = match unit {
            "" | "s" => 1_000_000_000,
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        total = total.checked_add(scaled(whole, frac, nanos_per_unit).ok_or_else(bad)?).ok_or_else(bad)?;
        if total > MAX_NANOS {
            return Err(bad());
        }
        bare = false;
        rest = &after[unit_len..];
    }
    u64::try_from(total).map(Duration::from_nanos).map_err(|_| bad())
}

/// Splits a leading `12`, `12.5`, `.5` or `12.` into its whole and
/// fractional digits and what follows; None when there is no digit.
fn number(s: &str) -> Option<(&str, &str, &str)> {
    let int_len = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (whole, after) = s.split_at(int_len);
    let (frac, after) = match after.strip_prefix('.') {
        Some(f) => f.split_at(f.find(|c: char| !c.is_ascii_digit()).unwrap_or(f.len())),
        None => ("", after),
    };
    (!whole.is_empty() || !frac.is_empty()).then_some((whole, frac, after))
}

/// `whole.frac` units in nanoseconds; digits past a nanosecond are dropped,
/// as Go drops them. None on overflow.
fn scaled(whole: &str, frac: &str, unit: u128) -> Option<u128> {
    let mut nanos: u128 = 0;
    for d in whole.bytes() {
        nanos = nanos.checked_mul(10)?.checked_add(u128::from(d - b'0') * unit)?;
        if nanos > MAX_NANOS * 10 {
            return None;
        }
    }
    let mut place = unit;
    for d in frac.bytes() {
        place /= 10;
        if place == 0 {
            break;
        }
        nanos += u128::from(d - b'0') * place;
    }
    Some(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Duration {
        parse_duration(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn go_spellings() {
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("5s"), Duration::from_secs(5));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("1.1s"), Duration::from_millis(1100));
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("1.s"), Duration::from_secs(1));
        assert_eq!(ok("10us"), Duration::from_micros(10));
        assert_eq!(ok("10µs"), Duration::from_micros(10));
        assert_eq!(ok("7ns"), Duration::from_nanos(7));
        assert_eq!(ok("2h45m"), Duration::from_secs(2 * 3600 + 45 * 60));
        assert_eq!(ok("1h1m1s1ms"), Duration::from_millis(3_661_001));
        assert_eq!(ok("1m"), Duration::from_secs(60));
    }

    #[test]
    fn bare_numbers_are_seconds() {
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("2"), Duration::from_secs(2));
        assert_eq!(ok("10"), Duration::from_secs(10));
        assert_eq!(ok("0.25"), Duration::from_millis(250));
    }

    #[test]
    fn refusals() {
        for bad in ["", "five", "5x", "s", ".", "1m30", "3 days", "-5s", "+5s", "5s ", "1..5s", "1e3s", "5S"]
        {
            assert!(parse_duration(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(
            parse_duration("5x").unwrap_err(),
            "'5x' is not a duration: use e.g. 500ms, 5s, 1m30s; a bare number is seconds"
        );
    }

    #[test]
    fn bounded_by_gos_limit() {
        assert_eq!(ok("2562047h"), Duration::from_secs(2_562_047 * 3600));
        assert!(parse_duration("2562048h").is_err());
        assert!(parse_duration("99999999999999999999999999999999999999999s").is_err());
        assert_eq!(ok("0.0000000001s"), Duration::ZERO);
    }
}
