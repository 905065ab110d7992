//! Runs the chain: resolve, check the ledger, load every pending component, then
//! apply each in its own transaction and journal the attempt.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use crate::chain::Chain;
use crate::config::Config;
use crate::error::{Error, FailureCause, MigrationFailure};
use crate::graph::{GraphDb, target_key};
use crate::ledger::{Attempt, Direction, Finish, Outcome, SqliteLedger, State, fold_state};
use crate::migration::{Checksum, Migration, Version};
use crate::reporter::{AppliedSummary, Reporter};
use crate::wasm::{GuestRecord, LoadedComponent, Sandbox, Step};

/// Options of `graphmig run`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Apply migrations up to and including this version only.
    pub target: Option<Version>,
}

/// A migration that a run applied.
#[derive(Debug, Clone)]
pub struct AppliedMigration {
    /// Version.
    pub version: Version,
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
}

/// One migration's line in `graphmig status`.
#[derive(Debug, Clone)]
pub struct StatusEntry {
    /// Version.
    pub version: Version,
    /// Description.
    pub description: String,
    /// Applied, pending, failed or interrupted.
    pub state: State,
    /// Checksum of the artifact on disk, or (for an applied one that is gone) in
    /// the ledger.
    pub checksum: Checksum,
    /// When it was applied.
    pub applied_at: Option<String>,
    /// How long applying took.
    pub duration_ms: Option<u64>,
    /// Fuel it consumed.
    pub fuel_consumed: Option<u64>,
    /// Statements it ran.
    pub statements: Option<u32>,
    /// The latest error, for failed migrations.
    pub error: Option<String>,
    /// Whether the artifact on disk differs from the applied one.
    pub checksum_changed: bool,
    /// Whether the artifact is missing from the migrations folder.
    pub missing: bool,
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

fn group_by_version(attempts: &[Attempt]) -> BTreeMap<Version, Vec<&Attempt>> {
    let mut grouped: BTreeMap<Version, Vec<&Attempt>> = BTreeMap::new();
    for attempt in attempts {
        grouped
            .entry(attempt.version.clone())
            .or_default()
            .push(attempt);
    }
    grouped
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

    /// The state of every migration on disk or in the ledger. Needs no database.
    pub fn status(&self) -> Result<Vec<StatusEntry>, Error> {
        let chain = Chain::discover(&self.config.migrations_dir)?;
        let attempts = match SqliteLedger::open_existing(&self.config.ledger_path)? {
            Some(ledger) => ledger.attempts(&target_key(&self.config.database))?,
            None => Vec::new(),
        };
        let grouped = group_by_version(&attempts);
        let mut entries: BTreeMap<Version, StatusEntry> = BTreeMap::new();
        for migration in chain.migrations() {
            let history = grouped.get(migration.version());
            let (state, applied) =
                history.map_or((State::Pending, None), |h| fold_state(h.iter().copied()));
            let last = history.and_then(|h| h.last());
            entries.insert(
                migration.version().clone(),
                StatusEntry {
                    version: migration.version().clone(),
                    description: migration.description().to_string(),
                    state,
                    checksum: migration.checksum().clone(),
                    applied_at: applied.and_then(|a| a.finished_at.clone()),
                    duration_ms: applied.and_then(|a| a.duration_ms),
                    fuel_consumed: applied.and_then(|a| a.fuel_consumed),
                    statements: applied.and_then(|a| a.statements),
                    error: match state {
                        State::Failed => last.and_then(|a| a.error.clone()),
                        _ => None,
                    },
                    checksum_changed: applied.is_some_and(|a| &a.checksum != migration.checksum()),
                    missing: false,
                },
            );
        }
        for (version, history) in &grouped {
            if entries.contains_key(version) {
                continue;
            }
            let (state, applied) = fold_state(history.iter().copied());
            if let Some(applied) = applied {
                entries.insert(
                    version.clone(),
                    StatusEntry {
                        version: version.clone(),
                        description: applied.description.clone(),
                        state,
                        checksum: applied.checksum.clone(),
                        applied_at: applied.finished_at.clone(),
                        duration_ms: applied.duration_ms,
                        fuel_consumed: applied.fuel_consumed,
                        statements: applied.statements,
                        error: None,
                        checksum_changed: false,
                        missing: true,
                    },
                );
            }
        }
        Ok(entries.into_values().collect())
    }

    /// Applies every pending migration (up to `options.target`), stopping at the
    /// first failure, which is rolled back and returned as
    /// [`Error::MigrationFailed`].
    pub async fn run(&self, options: &RunOptions) -> Result<Report, Error> {
        let chain = Chain::discover(&self.config.migrations_dir)?;
        let mut ledger = SqliteLedger::open(&self.config.ledger_path)?;
        let target = target_key(&self.config.database);
        let attempts = ledger.attempts(&target)?;
        let pending = self.pending(&chain, &attempts, options)?;
        let applied_count = chain.len() - pending.len();
        if pending.is_empty() {
            self.reporter.up_to_date(applied_count);
            return Ok(Report::default());
        }

        // Every pending artifact is compiled and checked before the database is
        // touched, so a bad file late in the chain stops the run before it starts.
        let sandbox = Sandbox::new()?;
        let mut loaded = Vec::with_capacity(pending.len());
        for migration in &pending {
            let bytes = std::fs::read(migration.path()).map_err(|source| Error::ReadArtifact {
                path: migration.path().to_path_buf(),
                source,
            })?;
            if Checksum::of(&bytes) != *migration.checksum() {
                return Err(Error::ReadArtifact {
                    path: migration.path().to_path_buf(),
                    source: std::io::Error::other("the file changed while graphmig was reading it"),
                });
            }
            let component = sandbox.load(migration.path(), &bytes)?;
            sandbox
                .describe(
                    &component,
                    self.config.settings_for(migration.version()),
                    self.reporter.clone(),
                )
                .await?;
            loaded.push(component);
        }

        let datasets = self.open_datasets()?;
        let db = GraphDb::connect(&self.config.database).await?;
        self.reporter.connected(&target, db.agent());
        self.reporter.plan(&pending);
        let interrupted = group_by_version(&attempts);

        let mut report = Report::default();
        for (migration, component) in pending.iter().zip(&loaded) {
            if interrupted
                .get(migration.version())
                .is_some_and(|h| fold_state(h.iter().copied()).0 == State::Interrupted)
            {
                self.reporter.retrying_interrupted(migration);
            }
            let applied = self
                .apply(
                    &db,
                    &sandbox,
                    &mut ledger,
                    &target,
                    migration,
                    component,
                    datasets.clone(),
                )
                .await?;
            report.applied.push(applied);
        }
        Ok(report)
    }

    /// Checks applied migrations against the files and returns the pending ones.
    fn pending(
        &self,
        chain: &Chain,
        attempts: &[Attempt],
        options: &RunOptions,
    ) -> Result<Vec<Migration>, Error> {
        let grouped = group_by_version(attempts);
        let mut head: Option<&Version> = None;
        for (version, history) in &grouped {
            let (state, applied) = fold_state(history.iter().copied());
            let Some(applied) = applied.filter(|_| state == State::Applied) else {
                continue;
            };
            let Some(migration) = chain.find(version) else {
                return Err(Error::AppliedMigrationMissing {
                    version: version.to_string(),
                    description: applied.description.clone(),
                    dir: self.config.migrations_dir.clone(),
                });
            };
            if migration.checksum() != &applied.checksum {
                return Err(Error::ChecksumMismatch {
                    version: version.to_string(),
                    path: migration.path().to_path_buf(),
                    recorded: applied.checksum.to_string(),
                    found: migration.checksum().to_string(),
                });
            }
            head = Some(version);
        }
        let mut pending = Vec::new();
        for migration in chain.migrations() {
            let state = grouped
                .get(migration.version())
                .map_or(State::Pending, |h| fold_state(h.iter().copied()).0);
            if state == State::Applied {
                continue;
            }
            if options
                .target
                .as_ref()
                .is_some_and(|target| migration.version() > target)
            {
                break;
            }
            if let Some(head) = head
                && migration.version() < head
            {
                return Err(Error::OutOfOrder {
                    version: migration.version().to_string(),
                    head: head.to_string(),
                });
            }
            pending.push(migration.clone());
        }
        Ok(pending)
    }

    /// The data folder as a capability, if the project has one.
    fn open_datasets(&self) -> Result<Option<Arc<cap_std::fs::Dir>>, Error> {
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

    #[allow(clippy::too_many_arguments)]
    async fn apply(
        &self,
        db: &GraphDb,
        sandbox: &Sandbox,
        ledger: &mut SqliteLedger,
        target: &str,
        migration: &Migration,
        component: &LoadedComponent,
        datasets: Option<Arc<cap_std::fs::Dir>>,
    ) -> Result<AppliedMigration, Error> {
        self.reporter.migration_started(migration);
        let started = Instant::now();
        let attempt = ledger.begin_attempt(target, migration, Direction::Up)?;
        let failed = |cause: FailureCause| MigrationFailure {
            migration: migration.label(),
            path: migration.path().to_path_buf(),
            cause,
        };

        let txn = match db.begin().await {
            Ok(txn) => txn,
            Err(e) => {
                let finish = Finish {
                    outcome: Outcome::Failed,
                    duration_ms: started.elapsed().as_millis() as u64,
                    fuel_consumed: 0,
                    statements: 0,
                    error: Some(e.to_string()),
                };
                ledger.finish_attempt(attempt, &finish, &GuestRecord::default())?;
                return Err(e);
            }
        };
        let run = match sandbox
            .run_step(
                component,
                Step::Up,
                txn,
                self.config.settings_for(migration.version()),
                datasets,
                self.reporter.clone(),
                migration.label(),
            )
            .await
        {
            Ok(run) => run,
            Err(e) => {
                let finish = Finish {
                    outcome: Outcome::Failed,
                    duration_ms: started.elapsed().as_millis() as u64,
                    fuel_consumed: 0,
                    statements: 0,
                    error: Some(e.to_string()),
                };
                ledger.finish_attempt(attempt, &finish, &GuestRecord::default())?;
                return Err(e);
            }
        };

        let outcome = match (run.result, run.txn) {
            (Ok(()), Some(txn)) => txn.commit().await.map_err(|e| FailureCause::Commit {
                code: e.code,
                message: e.message,
            }),
            (Ok(()), None) => Err(FailureCause::Trap {
                message: "the transaction was lost".into(),
            }),
            (Err(cause), txn) => {
                if let Some(txn) = txn {
                    // The server drops the transaction with the connection anyway;
                    // a failed rollback changes nothing for the outcome.
                    if let Err(e) = txn.rollback().await {
                        tracing::warn!(migration = %migration.label(), error = %e, "rollback failed");
                    }
                }
                Err(cause)
            }
        };
        let duration_ms = started.elapsed().as_millis() as u64;
        let finish = Finish {
            outcome: if outcome.is_ok() {
                Outcome::Applied
            } else {
                Outcome::Failed
            },
            duration_ms,
            fuel_consumed: run.fuel_consumed,
            statements: run.statements,
            error: outcome.as_ref().err().map(|cause| cause.to_string()),
        };
        ledger.finish_attempt(attempt, &finish, &run.record)?;
        match outcome {
            Ok(()) => {
                let summary = AppliedSummary {
                    elapsed: started.elapsed(),
                    statements: run.statements,
                    fuel_consumed: run.fuel_consumed,
                };
                self.reporter.migration_applied(migration, &summary);
                Ok(AppliedMigration {
                    version: migration.version().clone(),
                    description: migration.description().to_string(),
                    checksum: migration.checksum().clone(),
                    summary,
                })
            }
            Err(cause) => {
                let failure = failed(cause);
                self.reporter.migration_failed(migration, &failure);
                Err(Error::MigrationFailed(Box::new(failure)))
            }
        }
    }
}
