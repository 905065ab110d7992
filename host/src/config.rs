//! Project configuration: `graphmig.toml` plus `GRAPHMIG_*` environment overrides.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cypher_script::TransactionMode;
use crate::error::Error;
use crate::migration::MigrationId;
use crate::policy::{Class, Policy};

/// The configuration file's name.
pub const CONFIG_FILE: &str = "graphmig.toml";

/// A secret that never prints.
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; call only where it is handed to the driver.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where and how to reach the graph database.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// Bolt URI, such as `bolt://127.0.0.1:7687`.
    pub uri: String,
    /// User name.
    pub user: String,
    /// Password, only ever from `GRAPHMIG_PASSWORD`.
    pub password: Secret,
    /// The user migrations' own statements, batches and refactorings run as, if
    /// configured; bookkeeping (history, lock) stays with `user`.
    pub migration_user: Option<MigrationUser>,
    /// Database name, always sent with every transaction.
    pub database: String,
    /// How long connecting (and logging in) may take.
    pub connect_timeout: Duration,
    /// A separate database for the history and the lock, if configured.
    pub history_database: Option<String>,
    /// The Cypher dialect, when set instead of detected.
    pub dialect: Option<crate::schema::Dialect>,
    /// How long the driver waits for any one answer of the server before it
    /// gives the connection up: the longest migration deadline plus the grace,
    /// so that a statement may run as long as its deadline allows, and a
    /// stalled connection (nothing answered, nothing closed) is given up too.
    pub read_timeout: Duration,
    /// How long COMMIT, ROLLBACK, a failed migration's clean-up and the lock's
    /// release may wait for the server (`grace-secs`, 30 by default).
    pub grace: Duration,
}

/// The default of `[database] grace-secs`.
pub const READ_GRACE: Duration = Duration::from_secs(30);

/// The separate, least-privileged user migrations connect as.
#[derive(Debug, Clone)]
pub struct MigrationUser {
    /// User name (`[database] migration-user`).
    pub user: String,
    /// Password, only ever from `GRAPHMIG_MIGRATION_PASSWORD` (empty when unset:
    /// connecting then fails, naming the variable).
    pub password: Secret,
}

/// How the lock behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockSettings {
    /// How long a lease lasts without a heartbeat.
    pub ttl: Duration,
    /// How long to wait for another runner's lock.
    pub wait: Duration,
}

impl Default for LockSettings {
    fn default() -> Self {
        LockSettings {
            ttl: Duration::from_secs(30),
            wait: Duration::from_secs(60),
        }
    }
}

/// Resource limits for one migration run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Fuel (about one unit per WebAssembly instruction).
    pub fuel: u64,
    /// Largest linear memory, in bytes.
    pub memory_bytes: usize,
    /// Wall-clock time for one `up` or `down` call, database time included.
    pub deadline: Duration,
    /// Cypher statements one call may run.
    pub statements: u32,
    /// Result rows returned to the guest, in total.
    pub rows: u64,
    /// Bytes of results returned to the guest, in total.
    pub result_bytes: u64,
    /// Size of one statement's text.
    pub statement_bytes: usize,
    /// Log lines one call may write.
    pub log_lines: u32,
    /// Bytes of log the host keeps of one call (each line cut at 8 KiB).
    pub log_bytes: u64,
    /// Bytes the host keeps of one call for the ledger: statement texts,
    /// parameter summaries, refusal messages, schema and refactoring steps,
    /// batch records and dataset reads (each text cut at 4 KiB).
    pub journal_bytes: u64,
    /// Batches one call may begin.
    pub batches: u32,
    /// Value nodes one host call may take in (parameters, rows, a default).
    pub value_nodes: u64,
    /// Bytes one host call may take in, as the host holds them (wasmtime's
    /// hostcall fuel counts them while it copies the arguments).
    pub value_bytes: u64,
}

impl Default for MigrationSettings {
    fn default() -> Self {
        MigrationSettings {
            limits: Limits::default(),
            policy: Policy::default(),
            grants: Grants::default(),
            batch_chunk: 5_000,
            backfill: BackfillSettings::default(),
            transaction: None,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 10_000_000_000,
            memory_bytes: 512 * 1024 * 1024,
            deadline: Duration::from_secs(300),
            statements: 100_000,
            rows: 10_000_000,
            result_bytes: 1024 * 1024 * 1024,
            statement_bytes: 1024 * 1024,
            log_lines: 100_000,
            log_bytes: 8 * 1024 * 1024,
            journal_bytes: 8 * 1024 * 1024,
            batches: 10_000,
            value_nodes: 250_000,
            value_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Capabilities a migration gets only when its configuration grants them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Grants {
    /// The real wall and monotonic clocks (otherwise both are frozen).
    pub clock: bool,
    /// Real randomness (otherwise a fixed, repeatable stream).
    pub random: bool,
    /// `delete-batch` of batches earlier migrations created (otherwise only the
    /// step's own, and, in `down`, those of the migration it reverts).
    pub delete_batches: bool,
}

/// Everything that governs one migration's run: limits, Cypher policy, grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationSettings {
    /// Resource limits.
    pub limits: Limits,
    /// What its Cypher may do.
    pub policy: Policy,
    /// Extra capabilities.
    pub grants: Grants,
    /// Rows per chunk of a tracked batch (and per deletion step).
    pub batch_chunk: usize,
    /// How backfills page and pace themselves.
    pub backfill: BackfillSettings,
    /// `[migration.V<n>] transaction`: how a `.cypher` migration's statements
    /// commit, over its header's directive.
    pub transaction: Option<TransactionMode>,
}

/// `[backfill]`: the defaults of every backfill's chunking and throttling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackfillSettings {
    /// Elements per chunk, unless the backfill names its own.
    pub chunk_size: u32,
    /// A pause after every chunk.
    pub delay: Duration,
    /// At most this many elements a second, averaged over the backfill's run
    /// (0: no cap).
    pub max_rows_per_sec: u64,
}

impl Default for BackfillSettings {
    fn default() -> Self {
        BackfillSettings {
            chunk_size: 5_000,
            delay: Duration::ZERO,
            max_rows_per_sec: 0,
        }
    }
}

/// A loaded project configuration with paths made absolute.
#[derive(Debug, Clone)]
pub struct Config {
    /// The folder holding `graphmig.toml`; relative paths start here.
    pub root: PathBuf,
    /// The database.
    pub database: DatabaseSettings,
    /// The folder of migration artifacts and sources.
    pub migrations_dir: PathBuf,
    /// The SQLite ledger file.
    pub ledger_path: PathBuf,
    /// The folder migrations may read datasets from.
    pub data_dir: PathBuf,
    /// Limits, policy and grants of every migration without an override.
    pub defaults: MigrationSettings,
    /// Per-migration overrides.
    pub overrides: Vec<(MigrationId, MigrationSettings)>,
    /// The lease lock's timings.
    pub lock: LockSettings,
    /// Cargo's target folder for building Rust migrations.
    pub build_target_dir: PathBuf,
    /// Where compiled components are cached.
    pub cache_dir: PathBuf,
    /// Work folders of `graphmig build` for JavaScript, Python and Go sources.
    pub build_dir: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    #[serde(default)]
    database: FileDatabase,
    #[serde(default)]
    migrations: FileMigrations,
    #[serde(default)]
    ledger: FileLedger,
    #[serde(default)]
    datasets: FileDatasets,
    #[serde(default)]
    limits: FileLimits,
    #[serde(default)]
    policy: FilePolicy,
    #[serde(default)]
    migration: std::collections::BTreeMap<String, FileOverride>,
    #[serde(default)]
    lock: FileLock,
    #[serde(default)]
    history: FileHistory,
    #[serde(default)]
    batches: FileBatches,
    #[serde(default)]
    backfill: FileBackfill,
    #[serde(default)]
    build: FileBuild,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileBatches {
    chunk_size: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileBackfill {
    chunk_size: Option<u32>,
    delay_ms: Option<u64>,
    max_rows_per_sec: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileHistory {
    database: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileLock {
    ttl_secs: Option<u64>,
    wait_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileDatabase {
    uri: Option<String>,
    user: Option<String>,
    name: Option<String>,
    // Accepted only to refuse it with a clear message: passwords do not belong in files.
    password: Option<toml::Value>,
    migration_user: Option<String>,
    // Refused like `password`.
    migration_password: Option<toml::Value>,
    connect_timeout_secs: Option<u64>,
    grace_secs: Option<u64>,
    dialect: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileMigrations {
    dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileLedger {
    path: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileDatasets {
    dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileLimits {
    fuel: Option<u64>,
    memory_mib: Option<u64>,
    deadline_secs: Option<u64>,
    statements: Option<u32>,
    rows: Option<u64>,
    result_mib: Option<u64>,
    statement_kib: Option<u64>,
    log_lines: Option<u32>,
    log_kib: Option<u64>,
    journal_kib: Option<u64>,
    batches: Option<u32>,
    value_nodes: Option<u64>,
    value_mib: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FilePolicy {
    allow: Option<Vec<String>>,
    #[serde(default)]
    procedures: Vec<String>,
    #[serde(default)]
    deny_procedures: Vec<String>,
    load_csv: Option<Vec<String>>,
    grants: Option<Vec<String>>,
}

/// `[migration.V<version>]`: the keys of `[limits]` and `[policy]` for one migration.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileOverride {
    fuel: Option<u64>,
    memory_mib: Option<u64>,
    deadline_secs: Option<u64>,
    statements: Option<u32>,
    rows: Option<u64>,
    result_mib: Option<u64>,
    statement_kib: Option<u64>,
    log_lines: Option<u32>,
    log_kib: Option<u64>,
    journal_kib: Option<u64>,
    batches: Option<u32>,
    value_nodes: Option<u64>,
    value_mib: Option<u64>,
    allow: Option<Vec<String>>,
    #[serde(default)]
    procedures: Vec<String>,
    #[serde(default)]
    deny_procedures: Vec<String>,
    load_csv: Option<Vec<String>>,
    grants: Option<Vec<String>>,
    /// `per-migration` or `per-statement`, for a `.cypher` migration.
    transaction: Option<String>,
}

impl FileOverride {
    fn split(self) -> (FileLimits, FilePolicy) {
        (
            FileLimits {
                fuel: self.fuel,
                memory_mib: self.memory_mib,
                deadline_secs: self.deadline_secs,
                statements: self.statements,
                rows: self.rows,
                result_mib: self.result_mib,
                statement_kib: self.statement_kib,
                log_lines: self.log_lines,
                log_kib: self.log_kib,
                journal_kib: self.journal_kib,
                batches: self.batches,
                value_nodes: self.value_nodes,
                value_mib: self.value_mib,
            },
            FilePolicy {
                allow: self.allow,
                procedures: self.procedures,
                deny_procedures: self.deny_procedures,
                load_csv: self.load_csv,
                grants: self.grants,
            },
        )
    }
}

impl FileLimits {
    /// These limits on top of `base`.
    fn apply(&self, base: Limits) -> Result<Limits, String> {
        const MIB: u64 = 1024 * 1024;
        let memory_mib = self.memory_mib.unwrap_or(base.memory_bytes as u64 / MIB);
        if memory_mib == 0 || memory_mib > 4096 {
            return Err(format!(
                "memory-mib must be between 1 and 4096, not {memory_mib}"
            ));
        }
        let limits = Limits {
            fuel: self.fuel.unwrap_or(base.fuel),
            memory_bytes: (memory_mib * MIB) as usize,
            deadline: self
                .deadline_secs
                .map_or(base.deadline, Duration::from_secs),
            statements: self.statements.unwrap_or(base.statements),
            rows: self.rows.unwrap_or(base.rows),
            result_bytes: self.result_mib.map_or(base.result_bytes, |m| m * MIB),
            statement_bytes: self
                .statement_kib
                .map_or(base.statement_bytes, |k| (k * 1024) as usize),
            log_lines: self.log_lines.unwrap_or(base.log_lines),
            log_bytes: self.log_kib.map_or(base.log_bytes, |k| k * 1024),
            journal_bytes: self.journal_kib.map_or(base.journal_bytes, |k| k * 1024),
            batches: self.batches.unwrap_or(base.batches),
            value_nodes: self.value_nodes.unwrap_or(base.value_nodes),
            value_bytes: self.value_mib.map_or(base.value_bytes, |m| m * MIB),
        };
        if limits.fuel == 0
            || limits.deadline.is_zero()
            || limits.statements == 0
            || limits.statement_bytes == 0
        {
            return Err(
                "fuel, deadline-secs, statements and statement-kib must be above zero".into(),
            );
        }
        Ok(limits)
    }
}

impl FilePolicy {
    /// This policy section on top of `base`.
    fn apply(&self, base: &MigrationSettings) -> Result<(Policy, Grants), String> {
        let allow = match &self.allow {
            Some(names) => names
                .iter()
                .map(|n| {
                    Class::parse(n).ok_or_else(|| {
                        format!(
                            "unknown class `{n}` in allow (use read, write, schema, load-csv, admin)"
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => base.policy.allowed_classes().iter().copied().collect(),
        };
        let mut policy = base
            .policy
            .extended(allow, &self.procedures, &self.deny_procedures);
        if let Some(prefixes) = &self.load_csv {
            if let Some(bad) = prefixes
                .iter()
                .find(|p| p.contains("..") || !p.contains(':') || p.ends_with(':'))
            {
                return Err(format!(
                    "load-csv prefix `{bad}` must be a URL prefix such as \"file:///import/\" \
                     (no `..`)"
                ));
            }
            policy = policy.with_load_csv_prefixes(prefixes.clone());
        }
        let grants = match &self.grants {
            Some(names) => {
                let mut grants = Grants::default();
                for name in names {
                    match name.as_str() {
                        "clock" => grants.clock = true,
                        "random" => grants.random = true,
                        "delete-batches" => grants.delete_batches = true,
                        other => {
                            return Err(format!(
                                "unknown grant `{other}` (use clock, random, delete-batches)"
                            ));
                        }
                    }
                }
                grants
            }
            None => base.grants,
        };
        Ok((policy, grants))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileBuild {
    target_dir: Option<PathBuf>,
}

/// The environment a configuration is resolved against (a seam for tests).
pub trait Environment {
    /// The variable's value, if set and not empty.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl Config {
    /// The limits, policy and grants of the migration `id`.
    pub fn settings_for(&self, id: &MigrationId) -> &MigrationSettings {
        self.overrides
            .iter()
            .find(|(v, _)| v == id)
            .map_or(&self.defaults, |(_, settings)| settings)
    }

    /// Loads `path` (a `graphmig.toml`) and applies the process environment.
    pub fn load(path: &Path) -> Result<Config, Error> {
        Config::load_with(path, &ProcessEnvironment)
    }

    /// Loads `path` and applies overrides from `env`.
    pub fn load_with(path: &Path, env: &dyn Environment) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ConfigRead {
            path: path.to_path_buf(),
            source,
        })?;
        let root = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let root = if root.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            root
        };
        let root = std::path::absolute(&root).map_err(|source| Error::ConfigRead {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path, &root, env)
    }

    /// Parses configuration text; `root` anchors relative paths.
    pub fn parse(
        text: &str,
        path: &Path,
        root: &Path,
        env: &dyn Environment,
    ) -> Result<Config, Error> {
        let invalid = |message: String| Error::ConfigInvalid {
            path: path.to_path_buf(),
            message,
        };
        let file: FileConfig = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if file.database.password.is_some() {
            return Err(invalid(
                "`database.password` is not allowed in the file; set GRAPHMIG_PASSWORD instead"
                    .into(),
            ));
        }
        let uri = env
            .var("GRAPHMIG_URI")
            .or(file.database.uri)
            .unwrap_or_else(|| "bolt://127.0.0.1:7687".into());
        if ![
            "bolt://",
            "bolt+s://",
            "bolt+ssc://",
            "neo4j://",
            "neo4j+s://",
            "neo4j+ssc://",
        ]
        .iter()
        .any(|scheme| uri.starts_with(scheme))
        {
            return Err(invalid(format!(
                "database URI `{uri}` must start with bolt://, bolt+s://, neo4j:// or neo4j+s://"
            )));
        }
        let user = env
            .var("GRAPHMIG_USER")
            .or(file.database.user)
            .unwrap_or_else(|| "neo4j".into());
        let database = env
            .var("GRAPHMIG_DATABASE")
            .or(file.database.name)
            .ok_or_else(|| {
                invalid("no database name: set `database.name` or GRAPHMIG_DATABASE".into())
            })?;
        let password = Secret::new(env.var("GRAPHMIG_PASSWORD").unwrap_or_default());
        if file.database.migration_password.is_some() {
            return Err(invalid(
                "`database.migration-password` is not allowed in the file; set \
                 GRAPHMIG_MIGRATION_PASSWORD instead"
                    .into(),
            ));
        }
        let migration_user = match env
            .var("GRAPHMIG_MIGRATION_USER")
            .or(file.database.migration_user)
        {
            None => None,
            Some(name) if name == user => {
                return Err(invalid(format!(
                    "database.migration-user `{name}` is the owner user: give migrations a user \
                     of their own (see `graphmig privileges`)"
                )));
            }
            // The password is needed only to connect (checked there), so that
            // `build` and `new` work without it.
            Some(name) => Some(MigrationUser {
                user: name,
                password: Secret::new(env.var("GRAPHMIG_MIGRATION_PASSWORD").unwrap_or_default()),
            }),
        };
        let dialect = match file.database.dialect.as_deref() {
            None | Some("auto") => None,
            Some(name) => Some(crate::schema::Dialect::parse(name).ok_or_else(|| {
                invalid(format!(
                    "database.dialect `{name}`: use auto, neo4j-5, neo4j-4.4 or arcadedb"
                ))
            })?),
        };
        let connect_timeout =
            Duration::from_secs(file.database.connect_timeout_secs.unwrap_or(10).max(1));

        let base = MigrationSettings::default();
        let limits = file
            .limits
            .apply(base.limits)
            .map_err(|m| invalid(format!("[limits]: {m}")))?;
        let (policy, grants) = file
            .policy
            .apply(&base)
            .map_err(|m| invalid(format!("[policy]: {m}")))?;
        let batch_chunk = file.batches.chunk_size.unwrap_or(base.batch_chunk);
        if batch_chunk == 0 {
            return Err(invalid("batches.chunk-size must be above zero".into()));
        }
        let backfill = BackfillSettings {
            chunk_size: file.backfill.chunk_size.unwrap_or(base.backfill.chunk_size),
            delay: file
                .backfill
                .delay_ms
                .map_or(base.backfill.delay, Duration::from_millis),
            max_rows_per_sec: file
                .backfill
                .max_rows_per_sec
                .unwrap_or(base.backfill.max_rows_per_sec),
        };
        if backfill.chunk_size == 0 {
            return Err(invalid("backfill.chunk-size must be above zero".into()));
        }
        let defaults = MigrationSettings {
            limits,
            policy,
            grants,
            batch_chunk,
            backfill,
            transaction: None,
        };
        let mut overrides = Vec::new();
        for (key, section) in file.migration {
            let version = (key.starts_with('V') || key.starts_with("R__"))
                .then(|| MigrationId::parse_key(&key))
                .flatten()
                .ok_or_else(|| {
                    invalid(format!(
                        "[migration.{key}]: the key must be V<version> or R__<description>, such as V3 or V1_2"
                    ))
                })?;
            let transaction = match section.transaction.as_deref() {
                None => None,
                Some("per-migration") => Some(TransactionMode::PerMigration),
                Some("per-statement") => Some(TransactionMode::PerStatement),
                Some(other) => {
                    return Err(invalid(format!(
                        "[migration.{key}]: transaction = `{other}`: use per-migration or per-statement"
                    )));
                }
            };
            let (limits, policy) = section.split();
            let settings_limits = limits
                .apply(defaults.limits)
                .map_err(|m| invalid(format!("[migration.{key}]: {m}")))?;
            let (policy, grants) = policy
                .apply(&defaults)
                .map_err(|m| invalid(format!("[migration.{key}]: {m}")))?;
            overrides.push((
                version,
                MigrationSettings {
                    limits: settings_limits,
                    policy,
                    grants,
                    batch_chunk,
                    backfill,
                    transaction,
                },
            ));
        }

        let anchor = |p: PathBuf| if p.is_absolute() { p } else { root.join(p) };
        let grace = file
            .database
            .grace_secs
            .map_or(READ_GRACE, |s| Duration::from_secs(s.max(1)));
        let longest_deadline = overrides
            .iter()
            .map(|(_, s)| s.limits.deadline)
            .chain([defaults.limits.deadline])
            .max()
            .unwrap_or_default();
        Ok(Config {
            root: root.to_path_buf(),
            database: DatabaseSettings {
                uri,
                user,
                password,
                migration_user,
                database,
                connect_timeout,
                history_database: env
                    .var("GRAPHMIG_HISTORY_DATABASE")
                    .or(file.history.database)
                    .filter(|d| !d.is_empty()),
                dialect,
                read_timeout: longest_deadline + grace,
                grace,
            },
            migrations_dir: anchor(file.migrations.dir.unwrap_or_else(|| "migrations".into())),
            ledger_path: anchor(
                file.ledger
                    .path
                    .unwrap_or_else(|| ".graphmig/ledger.db".into()),
            ),
            lock: {
                let defaults = LockSettings::default();
                let lock = LockSettings {
                    ttl: file.lock.ttl_secs.map_or(defaults.ttl, Duration::from_secs),
                    wait: file
                        .lock
                        .wait_secs
                        .map_or(defaults.wait, Duration::from_secs),
                };
                if lock.ttl.is_zero() {
                    return Err(invalid("lock.ttl-secs must be above zero".into()));
                }
                lock
            },
            data_dir: anchor(file.datasets.dir.unwrap_or_else(|| "data".into())),
            defaults,
            overrides,
            cache_dir: anchor(
                env.var("GRAPHMIG_CACHE_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| ".graphmig/cache".into()),
            ),
            build_dir: anchor(PathBuf::from(".graphmig/build")),
            build_target_dir: anchor(
                env.var("GRAPHMIG_BUILD_TARGET_DIR")
                    .map(PathBuf::from)
                    .or(file.build.target_dir)
                    .unwrap_or_else(|| ".graphmig/target".into()),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct FakeEnv(HashMap<&'static str, &'static str>);

    impl Environment for FakeEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|v| v.to_string())
        }
    }

    fn parse(text: &str, env: &[(&'static str, &'static str)]) -> Result<Config, Error> {
        Config::parse(
            text,
            Path::new("graphmig.toml"),
            Path::new("/project"),
            &FakeEnv(env.iter().copied().collect()),
        )
    }

    #[test]
    fn environment_overrides_the_file() {
        let config = parse(
            "[database]\nuri = \"bolt://db:7687\"\nuser = \"a\"\nname = \"one\"\n",
            &[
                ("GRAPHMIG_URI", "bolt://other:7687"),
                ("GRAPHMIG_USER", "b"),
                ("GRAPHMIG_DATABASE", "two"),
                ("GRAPHMIG_PASSWORD", "hunter22"),
            ],
        )
        .expect("valid");
        assert_eq!(config.database.uri, "bolt://other:7687");
        assert_eq!(config.database.user, "b");
        assert_eq!(config.database.database, "two");
        assert_eq!(config.database.password.expose(), "hunter22");
        assert!(!format!("{config:?}").contains("hunter22"));
    }

    #[test]
    fn paths_are_relative_to_the_file_and_defaults_apply() {
        let config = parse("[database]\nname = \"db\"\n", &[]).expect("valid");
        assert_eq!(config.migrations_dir, Path::new("/project/migrations"));
        assert_eq!(
            config.ledger_path,
            Path::new("/project/.graphmig/ledger.db")
        );
        assert_eq!(config.defaults, MigrationSettings::default());
    }

    #[test]
    fn refuses_a_password_in_the_file() {
        let err = parse("[database]\nname = \"db\"\npassword = \"x\"\n", &[]).expect_err("no");
        assert!(err.to_string().contains("GRAPHMIG_PASSWORD"), "{err}");
    }

    #[test]
    fn refuses_unknown_keys_and_bad_uris() {
        let err = parse("[database]\nname = \"db\"\nhost = \"x\"\n", &[]).expect_err("unknown");
        assert!(err.to_string().contains("host"), "{err}");
        let err = parse("[database]\nname = \"db\"\nuri = \"http://x\"\n", &[]).expect_err("uri");
        assert!(err.to_string().contains("bolt://"), "{err}");
    }

    #[test]
    fn per_migration_sections_override_limits_policy_and_grants() {
        let config = parse(
            "[database]\nname = \"db\"\n[limits]\nfuel = 1000\nstatements = 5\n\
             [policy]\nprocedures = [\"apoc.periodic.iterate\"]\n\
             [migration.V3]\nfuel = 99\nallow = [\"read\"]\ngrants = [\"clock\"]\n",
            &[],
        )
        .expect("valid");
        let v = |s| MigrationId::parse_key(s).expect("version");
        let default = config.settings_for(&v("1"));
        assert_eq!((default.limits.fuel, default.limits.statements), (1000, 5));
        assert!(default.policy.procedure_allowed("apoc.periodic.iterate"));
        let third = config.settings_for(&v("3"));
        assert_eq!((third.limits.fuel, third.limits.statements), (99, 5));
        assert!(third.grants.clock && !third.grants.random);
        assert_eq!(third.policy.allowed_classes().len(), 1);
        assert!(
            third.policy.procedure_allowed("apoc.periodic.iterate"),
            "inherits [policy]"
        );

        let err = parse(
            "[database]\nname = \"db\"\n[migration.three]\nfuel = 1\n",
            &[],
        )
        .expect_err("bad key");
        assert!(err.to_string().contains("V<version>"), "{err}");
        assert!(config.lock.ttl.as_secs() > 0);
        let err = parse(
            "[database]\nname = \"db\"\n[policy]\nallow = [\"everything\"]\n",
            &[],
        )
        .expect_err("bad class");
        assert!(err.to_string().contains("everything"), "{err}");
    }

    #[test]
    fn requires_a_database_name() {
        let err = parse("", &[]).expect_err("no name");
        assert!(err.to_string().contains("GRAPHMIG_DATABASE"), "{err}");
    }
}
