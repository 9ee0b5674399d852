//! The `place` binary: all of it is `place::run`, so that the man page,
//! the tests and the binary share one CLI definition.

fn main() -> std::process::ExitCode {
    fleetkit_core::exit::main("place", place::run(std::env::args_os()))
}
