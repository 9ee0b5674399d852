//! The built fleetkit binaries, for tests that run more than one tool.
//!
//! A crate's own tests find its binary through `CARGO_BIN_EXE_*`; the
//! cross-tool tests in this crate find the others beside the test executable
//! (`target/debug/`), where `cargo test --workspace` builds them.

use std::path::PathBuf;

/// Path of the built binary `name` (`unitgen`, `place`, ...).
///
/// # Panics
/// When it has not been built: run the tests with `cargo test --workspace`.
#[must_use]
pub fn tool(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test executable");
    // target/debug/deps/TEST-HASH -> target/debug/NAME
    let dir = exe.parent().and_then(std::path::Path::parent).expect("test executable under target/");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is not built: run `cargo test --workspace` (or `cargo build --workspace`)",
        path.display()
    );
    path
}
