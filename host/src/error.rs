//! The library's error type: every failure names the file, migration or setting at fault.

use std::path::PathBuf;

/// Everything that can go wrong in graphmig.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration file could not be read.
    #[error("cannot read configuration {path}: {source}")]
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The configuration is not valid.
    #[error("invalid configuration {path}: {message}")]
    ConfigInvalid {
        /// The file (or the environment variable's name).
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The migrations folder could not be listed.
    #[error("cannot read migrations folder {path}: {source}")]
    MigrationsDir {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A `.wasm` or `.cypher` file whose name is not a migration's.
    #[error(
        "{path}: a migration must be named V<version>__<description>.wasm or .cypher (a version of digits separated by `_` or `.`), R__<description>.wasm or .cypher, or, for the undo script of a Cypher migration, U<version>__<description>.cypher"
    )]
    BadMigrationName {
        /// The file.
        path: PathBuf,
    },
    /// A migration source folder that was never built into a component.
    #[error("{} holds migration sources but {} does not exist: run `graphmig build` first", folder.display(), artifact.display())]
    Unbuilt {
        /// The source folder.
        folder: PathBuf,
        /// The component it should have become.
        artifact: PathBuf,
    },
    /// An undo script (`U<version>__….cypher`) without its Cypher migration.
    #[error("{path} undoes V{version}, but there is no V{version}__….cypher migration beside it")]
    OrphanUndo {
        /// The undo script.
        path: PathBuf,
        /// Its version.
        version: String,
    },
    /// An artifact could not be read.
    #[error("cannot read {path}: {source}")]
    ReadArtifact {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Two artifacts share a version.
    #[error("version {version} is used twice: {first} and {second}")]
    DuplicateVersion {
        /// The version.
        version: String,
        /// One file.
        first: PathBuf,
        /// The other.
        second: PathBuf,
    },
    /// An artifact is not a valid WebAssembly component.
    #[error("{path} is not a valid WebAssembly component: {message}")]
    InvalidComponent {
        /// The file.
        path: PathBuf,
        /// What wasmtime said.
        message: String,
    },
    /// A component does not implement the migration world.
    #[error(
        "{path} is a component of another world: it must export `{expected}` (world graphmig:migration/migration); it exports [{found}]"
    )]
    WrongWorld {
        /// The file.
        path: PathBuf,
        /// The export graphmig looks for.
        expected: String,
        /// What the component exports instead.
        found: String,
    },
    /// A component imports capabilities graphmig never grants.
    #[error(
        "{path} imports what no migration may use: {imports}; a migration may import only graphmig:migration/context and the WASI interfaces for stdio, clocks, random, exit, (empty) filesystem and environment, and (always refused) sockets"
    )]
    ForbiddenImports {
        /// The file.
        path: PathBuf,
        /// The offending imports, comma separated.
        imports: String,
    },
    /// A component could not be instantiated (an import the host does not offer).
    #[error("{path} cannot be instantiated: {message}")]
    Instantiate {
        /// The file.
        path: PathBuf,
        /// What wasmtime said.
        message: String,
    },
    /// The database did not answer, refused the connection, or refused the login.
    #[error("cannot connect to {uri} (database `{database}`): {message}")]
    Connect {
        /// The Bolt URI.
        uri: String,
        /// The database name.
        database: String,
        /// What went wrong, without the password.
        message: String,
    },
    /// A statement the host itself ran failed.
    #[error("database error on {uri}: {message}")]
    Database {
        /// The Bolt URI.
        uri: String,
        /// What went wrong.
        message: String,
    },
    /// The ledger could not be opened, read or written.
    #[error("ledger {path}: {message}")]
    Ledger {
        /// The ledger file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A pending migration has a lower version than one already applied.
    #[error(
        "V{version} is pending but V{head} is already applied; give it a version above V{head}, or run with --out-of-order"
    )]
    OutOfOrder {
        /// The pending version.
        version: String,
        /// The highest applied version.
        head: String,
    },
    /// Another runner holds the lock.
    #[error(
        "locked by {owner} since {since} (lease until {expires}); waited {waited_secs} s. If that runner is gone, the lock expires by itself, or remove it with `graphmig unlock`"
    )]
    Locked {
        /// The holder.
        owner: String,
        /// When it took the lock.
        since: String,
        /// When its lease runs out unless refreshed.
        expires: String,
        /// How long this runner waited.
        waited_secs: u64,
    },
    /// The runner lost its lock while running (its lease was taken over).
    #[error(
        "the lock was taken over by another runner while this one ran; stopped before the next migration"
    )]
    LockLost,
    /// SIGINT or SIGTERM arrived between migrations: the next did not start.
    #[error("stopped on request (SIGINT or SIGTERM) before {migration} started")]
    Interrupted {
        /// The migration that did not start.
        migration: String,
    },
    /// `verify` found problems; `run` refuses to start.
    #[error("verify found {} problem(s):\n{}", problems.len(), problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    VerifyFailed {
        /// Each problem, with the way out.
        problems: Vec<String>,
    },
    /// `down` reached a migration that declares itself irreversible.
    #[error(
        "{migration} ({path}) declares itself irreversible: its `up` cannot be undone by its `down`, so reverting through it is refused. Nothing was reverted. Pass --force to run its `down` anyway"
    )]
    Irreversible {
        /// `V<version> <description>`.
        migration: String,
        /// The artifact.
        path: PathBuf,
    },
    /// `down` reached a migration with no down step and no batches to delete.
    #[error(
        "{migration} ({path}) has no down step and wrote no tracked batches, so it cannot be reverted. Nothing was reverted. Give it a down step"
    )]
    NoDown {
        /// `V<version> <description>`.
        migration: String,
        /// The artifact.
        path: PathBuf,
    },
    /// A migration ran and failed; everything it did was rolled back.
    #[error("{0}")]
    MigrationFailed(Box<MigrationFailure>),
    /// A `.cypher` migration cannot be split into statements.
    #[error("{}:{line}: {message}", path.display())]
    InvalidCypherFile {
        /// The file.
        path: PathBuf,
        /// The line where the problem starts.
        line: u32,
        /// What is wrong.
        message: String,
    },
    /// A migration source folder could not be built.
    #[error("building {path} failed: {message}")]
    Build {
        /// The source folder.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// `graphmig init` or `graphmig new` could not write what it creates.
    #[error("{}: {message}", path.display())]
    Scaffold {
        /// The file or folder.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A tool that building needs is not installed.
    #[error("{tool} is not available: {hint}")]
    ToolMissing {
        /// The tool.
        tool: String,
        /// How to install it.
        hint: String,
    },
    /// The WebAssembly engine could not be set up.
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
}

/// A migration that failed, what it failed with, and that it was rolled back.
#[derive(Debug, Clone)]
pub struct MigrationFailure {
    /// `V<version> <description>`.
    pub migration: String,
    /// The artifact.
    pub path: PathBuf,
    /// Why it failed.
    pub cause: FailureCause,
    /// What undoing its schema changes did, if it had any.
    pub schema_undo: Option<String>,
    /// Whether undoing what it committed on its own is left to the next run
    /// (the clean-up failed part-way; the attempt's intent stays in the graph).
    pub cleanup_pending: bool,
}

impl std::fmt::Display for MigrationFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ended = if self.cleanup_pending {
            "failed; its transaction was rolled back, but cleaning up what it committed on its own did not finish (the next `graphmig run` finishes it)"
        } else {
            "failed and was rolled back"
        };
        write!(
            f,
            "migration {} ({}) {ended}: {}",
            self.migration,
            self.path.display(),
            self.cause,
        )?;
        match &self.schema_undo {
            // After a statement's text, a new line keeps the two apart.
            Some(undo) if matches!(self.cause, FailureCause::Statement(_)) => {
                write!(f, "\n  {}", undo.trim_start_matches("; "))
            }
            Some(undo) => f.write_str(undo),
            None => Ok(()),
        }
    }
}

/// Why a migration failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum FailureCause {
    /// The guest's `up` or `down` returned an error.
    #[error("the migration returned an error: {message}")]
    Guest {
        /// The guest's message.
        message: String,
        /// The statement that failed before, if any.
        statement: Option<FailedStatement>,
    },
    /// A statement failed and the migration carried on or returned `ok` anyway.
    #[error("{0}")]
    Statement(FailedStatement),
    /// The guest trapped (a panic, an abort, an invalid operation).
    #[error("the migration trapped: {message}")]
    Trap {
        /// The trap and what the guest wrote to stderr before it.
        message: String,
    },
    /// The operator asked graphmig to stop (SIGINT or SIGTERM).
    #[error("stopped on request (SIGINT or SIGTERM)")]
    Interrupted,
    /// The guest hit a resource limit.
    #[error("{limit} limit exceeded: {detail}")]
    LimitExceeded {
        /// Which limit.
        limit: Limit,
        /// What was used or asked for.
        detail: String,
    },
    /// The database refused the commit.
    #[error("commit failed: {code}: {message}")]
    Commit {
        /// The server's code.
        code: String,
        /// The server's message.
        message: String,
    },
}

/// A statement that failed inside a migration.
#[derive(Debug, Clone)]
pub struct FailedStatement {
    /// Its position among the migration's statements, from 1.
    pub index: u32,
    /// `file:line` for statements of a `.cypher` migration.
    pub location: Option<String>,
    /// Its text.
    pub query: String,
    /// The server's code.
    pub code: String,
    /// The server's message.
    pub message: String,
}

impl std::fmt::Display for FailedStatement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "statement #{}", self.index)?;
        if let Some(location) = &self.location {
            write!(f, " at {location}")?;
        }
        write!(
            f,
            " failed with {}: {}\n  statement: {}",
            self.code, self.message, self.query
        )
    }
}

impl std::error::Error for FailedStatement {}

/// A per-migration resource limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Instructions (wasmtime fuel).
    Fuel,
    /// Linear memory.
    Memory,
    /// Wall-clock time.
    Deadline,
    /// Number of Cypher statements.
    Statements,
    /// Result rows returned to the guest.
    Rows,
    /// Result bytes (rows and datasets) returned to the guest.
    ResultBytes,
    /// Size of one statement's text.
    StatementSize,
    /// Number of log lines.
    LogLines,
    /// Bytes of log kept.
    LogBytes,
    /// Bytes of journal and records kept.
    JournalBytes,
    /// Number of batches begun.
    Batches,
    /// Value nodes one host call took in.
    ValueNodes,
    /// Value bytes one host call took in.
    ValueBytes,
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Limit::Fuel => "fuel",
            Limit::Memory => "memory",
            Limit::Deadline => "deadline",
            Limit::Statements => "statements",
            Limit::Rows => "rows",
            Limit::ResultBytes => "result bytes",
            Limit::StatementSize => "statement size",
            Limit::LogLines => "log lines",
            Limit::LogBytes => "log bytes",
            Limit::JournalBytes => "journal bytes",
            Limit::Batches => "batches",
            Limit::ValueNodes => "value nodes",
            Limit::ValueBytes => "value bytes",
        })
    }
}

impl Error {
    pub(crate) fn ledger(path: &std::path::Path, error: impl std::fmt::Display) -> Error {
        Error::Ledger {
            path: path.to_path_buf(),
            message: error.to_string(),
        }
    }
}
