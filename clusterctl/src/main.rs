fn main() -> std::process::ExitCode {
    fleetkit_core::exit::main("clusterctl", clusterctl::run(std::env::args_os()))
}
