//! The `dockrun` binary. Everything it does is in the library (`dockrun::run`), so
//! the man page and the completions are generated from the same command;
//! `main` only prints an error as `dockrun: message` and returns the exit code.

fn main() -> std::process::ExitCode {
    fleetkit_core::exit::main("dockrun", dockrun::run(std::env::args_os()))
}
