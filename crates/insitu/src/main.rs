//! `insitu`: see the library crate for the commands.

fn main() -> std::process::ExitCode {
    insitu::cli::main()
}
