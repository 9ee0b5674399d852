fn main() -> std::process::ExitCode {
    fleetkit_core::exit::main("unitgen", unitgen::run(std::env::args_os()))
}
