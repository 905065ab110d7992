//! Command-line interface: argument parsing, output and exit codes.

/// `println!` for results on stdout, which a closed pipe (`status | head`,
/// quitting `less`) does not turn into a panic: see [`output::write_stdout`].
macro_rules! outln {
    () => { $crate::graphmig_cli::output::write_stdout(format_args!("\n")) };
    ($($arg:tt)*) => {
        $crate::graphmig_cli::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` for results on stdout, as [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => { $crate::graphmig_cli::output::write_stdout(format_args!($($arg)*)) };
}

mod output;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use graphmig::config::CONFIG_FILE;
use graphmig::migration::MigrationId;
use graphmig::{Config, Error, FailureCause, RunOptions, Runner, Version};
use output::ConsoleReporter;

/// Exit codes, documented in the README.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// A migration failed and was rolled back.
    pub const MIGRATION_FAILED: u8 = 1;
    /// Bad input: configuration, migration files, arguments.
    pub const BAD_INPUT: u8 = 2;
    /// The database could not be reached or refused the login.
    pub const DATABASE: u8 = 3;
    /// A migration hit a resource limit.
    pub const LIMIT: u8 = 4;
    /// The ledger could not be read or written.
    pub const LEDGER: u8 = 5;
    /// `verify` found problems (and `run` refused to start).
    pub const VERIFY: u8 = 6;
    /// Another runner held the lock for longer than the wait, or took it over.
    pub const LOCKED: u8 = 7;
    /// Stopped by SIGINT or SIGTERM: the running migration was rolled back.
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Debug, Parser)]
#[command(
    name = "graphmig",
    version,
    about = "Schema and data migrations for Neo4j-style graph databases, each migration a sandboxed WebAssembly component",
    after_help = "Settings come from graphmig.toml; GRAPHMIG_URI, GRAPHMIG_USER, GRAPHMIG_DATABASE override it and GRAPHMIG_PASSWORD supplies the password.\nLogging: GRAPHMIG_LOG=debug. Exit codes: 0 ok, 1 migration failed, 2 bad input, 3 database unreachable, 4 limit exceeded, 5 ledger error, 6 verify problems, 7 locked."
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
    /// Create a project: graphmig.toml, migrations/, data/ and a .gitignore.
    Init(InitArgs),
    /// Create the next migration, with a working up and down, in any language.
    New(NewArgs),
    /// Build migration sources (Rust, JavaScript, Python or Go folders named V<version>__<description>) into components.
    Build,
    /// Apply pending migrations, each in its own transaction.
    #[command(visible_alias = "migrate")]
    Run(RunArgs),
    /// Revert applied migrations with their `down` step: the latest, or all above --target.
    #[command(visible_alias = "undo")]
    Down(DownArgs),
    /// Show every migration as applied, pending, failed or interrupted.
    #[command(visible_alias = "info")]
    Status(JsonArgs),
    /// Check files, the ledger's hash chain and its agreement with the graph.
    #[command(visible_alias = "validate")]
    Verify(JsonArgs),
    /// List every event of the ledger; --verbose VERSION adds statements, logs and datasets.
    History(HistoryArgs),
    /// Mark the migrations up to VERSION as applied without running them (adopt an existing graph).
    Baseline(BaselineArgs),
    /// Accept changed checksums of applied migrations and clear failed attempts, as audit entries.
    Repair,
    /// Copy history entries applied by other runners from the graph into the local ledger.
    Sync,
    /// Remove the lock, whoever holds it, and record who did.
    Unlock,
    /// Report which dangerous operations the server itself refuses the migration user, and which rest on the Cypher policy alone.
    Doctor(JsonArgs),
    /// Print the role, grants and user (Neo4j) or group and user (ArcadeDB) an administrator sets up for the migration user.
    Privileges(PrivilegesArgs),
}

#[derive(Debug, Args)]
struct PrivilegesArgs {
    /// The server: neo4j-5, neo4j-4.4 or arcadedb (default: database.dialect, else neo4j-5).
    #[arg(long, value_parser = parse_dialect)]
    dialect: Option<graphmig::schema::Dialect>,
}

fn parse_dialect(text: &str) -> Result<graphmig::schema::Dialect, String> {
    graphmig::schema::Dialect::parse(text)
        .ok_or_else(|| format!("`{text}`: use neo4j-5, neo4j-4.4 or arcadedb"))
}

#[derive(Debug, Args)]
struct InitArgs {
    /// The project folder (created if missing).
    #[arg(default_value = ".")]
    dir: PathBuf,
}

#[derive(Debug, Args)]
struct NewArgs {
    /// What the migration does; becomes its name (`V3__Add_email_index`).
    description: String,
    /// The language: rust, js, python, go or cypher.
    #[arg(long, short = 'l', default_value = "cypher", value_parser = parse_language)]
    lang: graphmig::builder::Language,
}

fn parse_language(text: &str) -> Result<graphmig::builder::Language, String> {
    graphmig::builder::Language::parse(text).ok_or_else(|| {
        format!("`{text}` is not a language graphmig builds: use rust, js, python, go or cypher")
    })
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Apply versioned migrations up to and including this version only.
    #[arg(long, value_parser = parse_version)]
    target: Option<Version>,
    /// Allow pending versions below the highest applied one.
    #[arg(long)]
    out_of_order: bool,
    /// Run the migrations for real in a transaction that is always rolled back; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print JSON instead of progress lines.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct DownArgs {
    /// Revert every applied migration above this version (0 reverts all).
    #[arg(long, value_parser = parse_version)]
    target: Option<Version>,
    /// Run `down` even of migrations that declare themselves irreversible.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
struct JsonArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct HistoryArgs {
    /// Show the statements, logs and dataset reads of this migration's attempts.
    #[arg(long, value_name = "VERSION")]
    verbose: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct BaselineArgs {
    /// The highest version to mark as applied.
    #[arg(long, value_parser = parse_version)]
    version: Version,
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

/// The first SIGINT or SIGTERM asks the work to stop cleanly (the migration
/// is rolled back and cleaned up, the lock released); a second one ends the
/// process at once, as the default action would.
async fn stop_on_signals() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    eprintln!(
        "graphmig: stopping: rolling back and cleaning up the running migration (again to stop at once)"
    );
    graphmig::interrupt::request();
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    std::process::exit(i32::from(exit::INTERRUPTED));
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
            FailureCause::Interrupted => exit::INTERRUPTED,
            _ => exit::MIGRATION_FAILED,
        },
        Some(Error::Connect { .. } | Error::Database { .. }) => exit::DATABASE,
        Some(Error::Ledger { .. }) => exit::LEDGER,
        Some(Error::VerifyFailed { .. }) => exit::VERIFY,
        Some(Error::Locked { .. } | Error::LockLost) => exit::LOCKED,
        Some(Error::Interrupted { .. }) => exit::INTERRUPTED,
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
    if let Command::Init(args) = &cli.command {
        let created = graphmig::scaffold::init(&args.dir)?;
        for path in &created.paths {
            outln!("Created {}", path.display());
        }
        for path in &created.updated {
            outln!("Added .graphmig/ to {}", path.display());
        }
        outln!(
            "Next: set [database] and [history] in {} (create the history database first), then `graphmig new \"first migration\" --lang cypher`",
            args.dir.join(CONFIG_FILE).display()
        );
        return Ok(exit::OK);
    }
    let config = load_config(&cli.global.config)?;
    if let Command::New(args) = &cli.command {
        let created = graphmig::scaffold::new_migration(&config, &args.description, args.lang)?;
        for path in &created.paths {
            outln!("Created {}", path.display());
        }
        if args.lang != graphmig::builder::Language::Cypher {
            outln!("Next: `graphmig build`, then `graphmig run`");
        }
        return Ok(exit::OK);
    }
    if let Command::Privileges(args) = &cli.command {
        use graphmig::privileges::{PrivilegeRequest, PrivilegeTarget, render};
        use graphmig::schema::Dialect;
        let target = match args
            .dialect
            .or(config.database.dialect)
            .unwrap_or(Dialect::Neo4j5)
        {
            Dialect::Neo4j5 => PrivilegeTarget::Neo4j5,
            Dialect::Neo4j44 => PrivilegeTarget::Neo4j44,
            Dialect::ArcadeDb => PrivilegeTarget::ArcadeDb,
        };
        let request = PrivilegeRequest {
            migration_user: config
                .database
                .migration_user
                .as_ref()
                .map_or_else(|| "graphmig_migrator".to_string(), |m| m.user.clone()),
            owner_user: config.database.user.clone(),
            database: config.database.database.clone(),
            history_database: config.database.history_database.clone(),
        };
        out!("{}", render(target, &request));
        return Ok(exit::OK);
    }
    let json = match &cli.command {
        Command::Run(a) => a.json,
        Command::Status(a) | Command::Verify(a) | Command::Doctor(a) => a.json,
        Command::History(a) => a.json,
        _ => false,
    };
    let reporter = Arc::new(ConsoleReporter::new(json));
    if let Command::Build = cli.command {
        let built = graphmig::builder::build_all(&config, reporter.as_ref())?;
        if built.is_empty() {
            outln!(
                "No migration sources in {} (folders named V<version>__<description> holding a Cargo.toml, migration.js, migration.py or go.mod)",
                config.migrations_dir.display()
            );
        }
        return Ok(exit::OK);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Results are decoded on the workers, recursing as deep as their values
        // nest: room for the deepest a server sends (reserved, not committed).
        .thread_stack_size(graphmig::WORKER_STACK_BYTES)
        .build()?;
    let runner = Runner::new(config, reporter.clone());
    let work = async move {
        match cli.command {
            Command::Build | Command::Init(_) | Command::New(_) | Command::Privileges(_) => {
                Ok(exit::OK)
            }
            Command::Run(args) => {
                let options = RunOptions {
                    target: args.target,
                    out_of_order: args.out_of_order,
                };
                if args.dry_run {
                    let results = runner.dry_run(&options).await?;
                    output::print_dry_run(&results, args.json)?;
                    let failed = results.iter().any(|r| r.failure.is_some());
                    return Ok(if failed {
                        exit::MIGRATION_FAILED
                    } else {
                        exit::OK
                    });
                }
                match runner.run(&options).await {
                    Ok(report) => {
                        if args.json {
                            output::print_run_json(&report, None)?;
                        }
                        Ok(exit::OK)
                    }
                    Err(error) => {
                        if args.json {
                            output::print_run_json(&Default::default(), Some(&error))?;
                        }
                        Err(error.into())
                    }
                }
            }
            Command::Down(args) => {
                let options = graphmig::DownOptions {
                    target: args.target,
                    force: args.force,
                };
                let reverted = runner.down(&options).await?;
                outln!("Reverted {} migration(s)", reverted.len());
                Ok(exit::OK)
            }
            Command::Status(args) => {
                let entries = runner.status().await?;
                if args.json {
                    output::print_status_json(&entries)?;
                } else {
                    output::print_status(&entries);
                }
                Ok(exit::OK)
            }
            Command::Verify(args) => {
                let problems = runner.verify().await?;
                output::print_verify(&problems, args.json)?;
                Ok(if problems.is_empty() {
                    exit::OK
                } else {
                    exit::VERIFY
                })
            }
            Command::History(args) => {
                let (ledger, attempts) = runner.history()?;
                let verbose = match &args.verbose {
                    Some(text) => Some(MigrationId::parse_key(text).ok_or_else(|| {
                        anyhow::anyhow!(
                            "`{text}` is not a migration version (V3) or repeatable (R__name)"
                        )
                    })?),
                    None => None,
                };
                output::print_history(&ledger, &attempts, verbose.as_ref(), args.json)?;
                Ok(exit::OK)
            }
            Command::Baseline(args) => {
                let marked = runner.baseline(&args.version).await?;
                outln!(
                    "Baselined {} migration(s) up to V{}",
                    marked.len(),
                    args.version
                );
                Ok(exit::OK)
            }
            Command::Repair => {
                let repaired = runner.repair().await?;
                if repaired.is_empty() {
                    outln!("Nothing to repair");
                }
                Ok(exit::OK)
            }
            Command::Sync => {
                let synced = runner.sync().await?;
                outln!(
                    "Synced {synced} entr{} from the graph",
                    if synced == 1 { "y" } else { "ies" }
                );
                Ok(exit::OK)
            }
            Command::Doctor(args) => {
                let findings = runner.doctor().await?;
                output::print_doctor(&findings, args.json)?;
                Ok(exit::OK)
            }
            Command::Unlock => {
                match runner.unlock().await? {
                    Some(holder) => outln!("Removed the lock of {}", holder.owner),
                    None => outln!("No lock was held"),
                }
                Ok(exit::OK)
            }
        }
    };
    // The work runs as a task on a worker thread, not on this one: a worker
    // drives the sockets itself, so each answer from the database resumes the
    // migration without a hand-over between threads (one per round trip).
    runtime.block_on(async {
        tokio::spawn(stop_on_signals());
        match tokio::spawn(work).await {
            Ok(result) => result,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    })
}
