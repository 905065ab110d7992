//! Runs the chain: resolve it, take the lock, bring the ledger level with the
//! graph's history, verify, load every pending component, then apply each in its
//! own transaction together with its history entry, and journal the attempt.
//!
//! One module per command family: `apply` (run), `dry_run`, `down`, `recovery`
//! (interrupted attempts, sync, repair), `verify`, `status` (and history),
//! `admin` (baseline, doctor, unlock); `compensation` undoes what a failed
//! attempt committed on its own, for run, down and recovery alike.

use std::sync::Arc;

use crate::config::Config;
use crate::error::Error;
use crate::graph::lock::{HeldLock, LockHolder};
use crate::graph::{GraphDb, target_key};
use crate::journal::new_attempt_key;
use crate::ledger::Action;
use crate::migration::{Checksum, Migration, MigrationId, Version};
use crate::reporter::{AppliedSummary, Reporter};
use crate::wasm::{LoadedComponent, Sandbox};

mod admin;
mod apply;
mod compensation;
mod deferred;
mod down;
mod dry_run;
mod recovery;
mod status;
mod verify;

pub use dry_run::DryRunMigration;
pub use status::StatusEntry;

/// Options of `graphmig run`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Apply versioned migrations up to and including this version only (and no
    /// repeatable ones).
    pub target: Option<Version>,
    /// Allow pending versions below the highest applied one.
    pub out_of_order: bool,
}

/// Options of `graphmig down`.
#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    /// Revert every applied migration above this version (`0`: all of them);
    /// without it, only the latest.
    pub target: Option<Version>,
    /// Run `down` even of migrations that declare themselves irreversible.
    pub force: bool,
}

/// A migration that a run applied.
#[derive(Debug, Clone)]
pub struct AppliedMigration {
    /// Its identity.
    pub id: MigrationId,
    /// Description.
    pub description: String,
    /// Checksum of the artifact.
    pub checksum: Checksum,
    /// What it measured.
    pub summary: AppliedSummary,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Migrations applied by this run, in order.
    pub applied: Vec<AppliedMigration>,
    /// History entries copied from the graph into the ledger first.
    pub synced: usize,
}

/// Applies and inspects a project's chain.
pub struct Runner {
    config: Config,
    reporter: Arc<dyn Reporter>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// `user@host`, for the ledger and the graph's history; read once per process.
pub fn actor() -> String {
    static ACTOR: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ACTOR.get_or_init(read_actor).clone()
}

fn read_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    format!("{user}@{host}")
}

/// Test hooks, never set in production: `GRAPHMIG_TEST_CRASH=POINT` kills the
/// process at that point (`before-commit`, `after-commit`, `after-data-commit`,
/// `during-compensation`), to prove crash recovery; `GRAPHMIG_TEST_PAUSE=POINT`
/// with `GRAPHMIG_TEST_PAUSE_FILE=PATH` stops there, writes `PATH.reached`, and
/// goes on once `PATH` is removed, so that a test can fail the database at
/// exactly that point.
pub(super) fn crash_point(point: &str) {
    if std::env::var("GRAPHMIG_TEST_CRASH").is_ok_and(|p| p == point) {
        std::process::abort();
    }
    if std::env::var("GRAPHMIG_TEST_PAUSE").is_ok_and(|p| p == point)
        && let Ok(file) = std::env::var("GRAPHMIG_TEST_PAUSE_FILE")
    {
        let _ = std::fs::write(format!("{file}.reached"), point);
        while std::path::Path::new(&file).exists() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// The hash action a ledger row stands for in the chain (a synced `up` is an `up`).
pub(super) fn chain_action(action: Action) -> Action {
    match action {
        Action::Sync => Action::Up,
        other => other,
    }
}

impl Runner {
    /// A runner for `config` reporting to `reporter`.
    pub fn new(config: Config, reporter: Arc<dyn Reporter>) -> Self {
        Runner { config, reporter }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    pub(super) fn target(&self) -> String {
        target_key(&self.config.database)
    }

    pub(super) async fn connect(&self) -> Result<Arc<GraphDb>, Error> {
        let db = GraphDb::connect(&self.config.database).await?;
        self.reporter.connected(&self.target(), db.agent());
        db.ensure_history_schema().await?;
        Ok(Arc::new(db))
    }

    pub(super) async fn lock(&self, db: &Arc<GraphDb>) -> Result<HeldLock, Error> {
        let owner = format!(
            "{}:{}/{}",
            actor(),
            std::process::id(),
            &new_attempt_key()[..8]
        );
        let reporter = self.reporter.clone();
        db.acquire_lock(&owner, self.config.lock, &move |holder: &LockHolder| {
            reporter.waiting_for_lock(&holder.owner)
        })
        .await
    }

    /// The engine, with the project's compiled-component cache.
    pub(super) fn sandbox(&self) -> Result<Sandbox, Error> {
        let ceiling = self
            .config
            .overrides
            .iter()
            .map(|(_, settings)| settings.limits.memory_bytes)
            .chain([self.config.defaults.limits.memory_bytes])
            .max()
            .unwrap_or_default();
        Ok(Sandbox::with_memory_ceiling(ceiling)?.with_cache(&self.config.cache_dir))
    }

    /// Reads, checks and compiles every migration, in parallel (each on a thread
    /// of its own; the cache makes later runs cheap), keeping their order.
    pub(super) fn load_all(
        &self,
        sandbox: &Sandbox,
        pending: &[Migration],
    ) -> Result<Vec<LoadedComponent>, Error> {
        let load = |migration: &Migration| sandbox.load_migration(migration);
        std::thread::scope(|scope| {
            let handles: Vec<_> = pending
                .iter()
                .map(|migration| scope.spawn(move || load(migration)))
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|_| Err(Error::Engine("a compiler thread panicked".into())))
                })
                .collect()
        })
    }

    /// The data folder as a capability, if the project has one.
    pub(super) fn open_datasets(&self) -> Result<Option<Arc<cap_std::fs::Dir>>, Error> {
        if !self.config.data_dir.is_dir() {
            return Ok(None);
        }
        cap_std::fs::Dir::open_ambient_dir(&self.config.data_dir, cap_std::ambient_authority())
            .map(|dir| Some(Arc::new(dir)))
            .map_err(|e| Error::ConfigInvalid {
                path: self.config.data_dir.clone(),
                message: format!("cannot open the data folder: {e}"),
            })
    }
}

/// The outcome of work done under the lock, then the lock's release: the work's
/// error wins, so a failed release never hides why the work failed.
pub(super) fn settle<T>(
    outcome: Result<T, Error>,
    released: Result<(), Error>,
) -> Result<T, Error> {
    let value = outcome?;
    released?;
    Ok(value)
}
