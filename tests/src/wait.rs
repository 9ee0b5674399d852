//! Waiting on a condition with a deadline: the only way tests wait.

use std::time::{Duration, Instant};

/// Polls `check` every 20 ms until it returns `Some`, or panics with `what`
/// after `timeout`. Returns the value and how long it took.
///
/// # Panics
/// When the deadline passes first: the test has failed.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> (T, Duration) {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return (v, start.elapsed());
        }
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::park_timeout(Duration::from_millis(20));
    }
}

/// Like [`wait_for`] for a boolean condition.
///
/// # Panics
/// When the deadline passes first.
pub fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) -> Duration {
    wait_for(what, timeout, || check().then_some(())).1
}
