//! The `graphmig` binary: a thin shell over the library's CLI module.

fn main() -> std::process::ExitCode {
    graphmig_cli::main()
}

#[path = "cli/mod.rs"]
mod graphmig_cli;
