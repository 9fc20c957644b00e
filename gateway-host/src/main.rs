use std::process::ExitCode;

fn main() -> ExitCode {
    gateway_host::limit_malloc_arenas();
    gateway_host::cli::main()
}
