//! The `announce` binary. Everything it does is in the library (`announce::run`), so
//! the man page and the completions are generated from the same command;
//! `main` only prints an error as `announce: message` and returns the exit code.

fn main() -> std::process::ExitCode {
    fleetkit_core::exit::main("announce", announce::run(std::env::args_os()))
}
