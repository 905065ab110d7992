//! Command-line interface: argument parsing, output and exit codes.

mod output;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use graphmig::config::CONFIG_FILE;
use graphmig::{Config, Error, FailureCause, RunOptions, Runner, Version};
use output::{ConsoleReporter, print_status, print_status_json};

/// Exit codes, documented in the README.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// A migration failed and was rolled back.
    pub const MIGRATION_FAILED: u8 = 1;
    /// Bad input: configuration, migration files, checksums, arguments.
    pub const BAD_INPUT: u8 = 2;
    /// The database could not be reached or refused the login.
    pub const DATABASE: u8 = 3;
    /// A migration hit a resource limit.
    pub const LIMIT: u8 = 4;
    /// The ledger could not be read or written.
    pub const LEDGER: u8 = 5;
}

#[derive(Debug, Parser)]
#[command(
    name = "graphmig",
    version,
    about = "Schema and data migrations for Neo4j-style graph databases, each migration a sandboxed WebAssembly component",
    after_help = "Settings come from graphmig.toml; GRAPHMIG_URI, GRAPHMIG_USER, GRAPHMIG_DATABASE override it and GRAPHMIG_PASSWORD supplies the password.\nLogging: GRAPHMIG_LOG=debug."
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct GlobalArgs {
    /// The project's configuration file.
    #[arg(long, short = 'c', global = true, env = "GRAPHMIG_CONFIG", default_value = CONFIG_FILE)]
    config: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build migration sources (Rust crates named V<version>__<description>) into components.
    Build,
    /// Apply pending migrations, each in its own transaction.
    Run(RunArgs),
    /// Show every migration as applied, pending, failed or interrupted.
    Status(StatusArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Apply migrations up to and including this version only.
    #[arg(long, value_parser = parse_version)]
    target: Option<Version>,
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// Print JSON: an object with a `migrations` array.
    #[arg(long)]
    json: bool,
}

fn parse_version(text: &str) -> Result<Version, String> {
    let text = text.strip_prefix('V').unwrap_or(text);
    Version::parse(text)
        .ok_or_else(|| format!("`{text}` is not a version (digits separated by `_` or `.`)"))
}

/// Runs the CLI and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            output::print_error(&error);
            ExitCode::from(exit_code(&error))
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GRAPHMIG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn exit_code(error: &anyhow::Error) -> u8 {
    match error.downcast_ref::<Error>() {
        Some(Error::MigrationFailed(failure)) => match failure.cause {
            FailureCause::LimitExceeded { .. } => exit::LIMIT,
            _ => exit::MIGRATION_FAILED,
        },
        Some(Error::Connect { .. } | Error::Database { .. }) => exit::DATABASE,
        Some(Error::Ledger { .. }) => exit::LEDGER,
        _ => exit::BAD_INPUT,
    }
}

fn load_config(path: &std::path::Path) -> anyhow::Result<Config> {
    if !path.exists() {
        anyhow::bail!(
            "no {} at {}: run graphmig in a project folder, or pass --config",
            CONFIG_FILE,
            std::path::absolute(path)
                .unwrap_or_else(|_| path.to_path_buf())
                .display()
        );
    }
    Ok(Config::load(path)?)
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    let config = load_config(&cli.global.config)?;
    let reporter = Arc::new(ConsoleReporter::new());
    match cli.command {
        Command::Build => {
            let built = graphmig::builder::build_all(&config, reporter.as_ref())?;
            if built.is_empty() {
                println!(
                    "No migration sources in {} (folders named V<version>__<description> with a Cargo.toml)",
                    config.migrations_dir.display()
                );
            }
            Ok(exit::OK)
        }
        Command::Run(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let runner = Runner::new(config, reporter);
            let options = RunOptions {
                target: args.target,
            };
            runtime.block_on(runner.run(&options))?;
            Ok(exit::OK)
        }
        Command::Status(args) => {
            let runner = Runner::new(config, reporter);
            let entries = runner.status()?;
            if args.json {
                print_status_json(&entries)?;
            } else {
                print_status(&entries);
            }
            Ok(exit::OK)
        }
    }
}
