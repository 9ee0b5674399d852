fn main() -> std::process::ExitCode {
    fleetkit_core::exit::main("dockrun", dockrun::run(std::env::args_os()))
}
