fn main() -> std::process::ExitCode {
    fleetkit_core::exit::main("place", place::run(std::env::args_os()))
}
