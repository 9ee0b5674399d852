//! The built fleetkit binaries, for tests that run more than one tool.
//!
//! A crate's own tests find its binary through `CARGO_BIN_EXE_*`; the
//! cross-tool tests in this crate find the others beside the test executable
//! (`target/debug/`), where `cargo test --workspace` builds them.

use std::path::PathBuf;

/// Where the built binaries are: `target/debug/` (or the profile's dir),
/// found from the running executable, a test (`target/debug/deps/TEST-HASH`)
/// or one of this crate's binaries (`target/debug/NAME`).
///
/// # Panics
/// When the running executable's path cannot be known.
#[must_use]
pub fn dir() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the running executable");
    let parent = exe.parent().expect("executable in a directory");
    let dir = if parent.file_name().is_some_and(|n| n == "deps") { parent.parent() } else { Some(parent) };
    dir.expect("executable under target/").to_path_buf()
}

/// Path of the built binary `name` (`unitgen`, `place`, ...).
///
/// # Panics
/// When it has not been built: run the tests with `cargo test --workspace`.
#[must_use]
pub fn tool(name: &str) -> PathBuf {
    let path = dir().join(name);
    assert!(
        path.is_file(),
        "{} is not built: run `cargo test --workspace` (or `cargo build --workspace`)",
        path.display()
    );
    path
}
