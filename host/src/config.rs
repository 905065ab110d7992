//! Project configuration: `graphmig.toml` plus `GRAPHMIG_*` environment overrides.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::Error;

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
    /// Database name, always sent with every transaction.
    pub database: String,
    /// How long connecting (and logging in) may take.
    pub connect_timeout: Duration,
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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 10_000_000_000,
            memory_bytes: 512 * 1024 * 1024,
            deadline: Duration::from_secs(300),
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
    /// Default limits for every migration.
    pub limits: Limits,
    /// Cargo's target folder for building Rust migrations.
    pub build_target_dir: PathBuf,
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
    limits: FileLimits,
    #[serde(default)]
    build: FileBuild,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileDatabase {
    uri: Option<String>,
    user: Option<String>,
    name: Option<String>,
    // Accepted only to refuse it with a clear message: passwords do not belong in files.
    password: Option<toml::Value>,
    connect_timeout_secs: Option<u64>,
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
struct FileLimits {
    fuel: Option<u64>,
    memory_mib: Option<u64>,
    deadline_secs: Option<u64>,
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
        let connect_timeout =
            Duration::from_secs(file.database.connect_timeout_secs.unwrap_or(10).max(1));

        let defaults = Limits::default();
        let memory_mib = file
            .limits
            .memory_mib
            .unwrap_or((defaults.memory_bytes / (1024 * 1024)) as u64);
        if memory_mib == 0 || memory_mib > 4096 {
            return Err(invalid(format!(
                "limits.memory-mib must be between 1 and 4096, not {memory_mib}"
            )));
        }
        let limits = Limits {
            fuel: file.limits.fuel.unwrap_or(defaults.fuel),
            memory_bytes: (memory_mib as usize) * 1024 * 1024,
            deadline: file
                .limits
                .deadline_secs
                .map_or(defaults.deadline, Duration::from_secs),
        };
        if limits.fuel == 0 || limits.deadline.is_zero() {
            return Err(invalid(
                "limits.fuel and limits.deadline-secs must be above zero".into(),
            ));
        }

        let anchor = |p: PathBuf| if p.is_absolute() { p } else { root.join(p) };
        Ok(Config {
            root: root.to_path_buf(),
            database: DatabaseSettings {
                uri,
                user,
                password,
                database,
                connect_timeout,
            },
            migrations_dir: anchor(file.migrations.dir.unwrap_or_else(|| "migrations".into())),
            ledger_path: anchor(
                file.ledger
                    .path
                    .unwrap_or_else(|| ".graphmig/ledger.db".into()),
            ),
            limits,
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
        assert_eq!(config.limits, Limits::default());
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
    fn requires_a_database_name() {
        let err = parse("", &[]).expect_err("no name");
        assert!(err.to_string().contains("GRAPHMIG_DATABASE"), "{err}");
    }
}
