//! The `unitgen` binary. Everything it does is in the library (`unitgen::run`), so
//! the man page and the completions are generated from the same command;
//! `main` only prints an error as `unitgen: message` and returns the exit code.

fn main() -> std::process::ExitCode {
    fleetkit_core::exit::main("unitgen", unitgen::run(std::env::args_os()))
}
