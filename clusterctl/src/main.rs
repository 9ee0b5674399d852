//! The `clusterctl` binary. Everything it does is in the library (`clusterctl::run`), so
//! the man page and the completions are generated from the same command;
//! `main` only prints an error as `clusterctl: message` and returns the exit code.

fn main() -> std::process::ExitCode {
    fleetkit_core::exit::main("clusterctl", clusterctl::run(std::env::args_os()))
}
