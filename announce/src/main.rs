fn main() -> std::process::ExitCode {
    fleetkit_core::exit::main("announce", announce::run(std::env::args_os()))
}
