use std::process::ExitCode;

fn main() -> ExitCode {
    gateway_host::cli::main()
}
