//! `down`: revert applied migrations, newest first, by their `down` step or by
//! deleting the batches their `up` wrote.

use std::time::Instant;

use super::compensation::revert_kept_batches;
use super::{AppliedMigration, DownOptions, Runner, settle};
use crate::chain::Chain;
use crate::error::Error;
use crate::graph::GraphDb;
use crate::graph::history::Fence;
use crate::ledger::{Action, KeptBatch, SqliteLedger, State, folded_for, group_by_migration};
use crate::migration::Migration;
use crate::reporter::AppliedSummary;
use crate::wasm::{Step, StepEnv};

impl Runner {
    /// Reverts applied versioned migrations, newest first, each in its own
    /// transaction: the latest one, or every one above `options.target`.
    /// Irreversible migrations stop it unless `options.force`.
    pub async fn down(&self, options: &DownOptions) -> Result<Vec<AppliedMigration>, Error> {
        let chain = Chain::discover(&self.config.migrations_dir)?;
        let ledger = SqliteLedger::open(&self.config.ledger_path)?;
        let target = self.target();
        let sandbox = self.sandbox()?;
        let datasets = self.open_datasets()?;
        let db = self.connect().await?;
        let lock = self.lock(&db).await?;
        let outcome = async {
            let history = self.sync_ledger(&db, lock.fence(), &ledger).await?.history;
            let attempts = ledger.attempts(&target)?;
            let problems = self.problems(&chain, &attempts, &history);
            if !problems.is_empty() {
                return Err(Error::VerifyFailed { problems });
            }
            let grouped = group_by_migration(&attempts);
            let mut applied: Vec<&Migration> = chain
                .migrations()
                .iter()
                .filter(|m| m.id().version().is_some())
                .filter(|m| folded_for(&grouped, m.id()).state == State::Applied)
                .collect();
            applied.sort_by(|a, b| b.id().cmp(a.id()));
            let to_revert: Vec<&Migration> = match &options.target {
                Some(target) => applied
                    .into_iter()
                    .filter(|m| m.id().version().is_some_and(|v| v > target))
                    .collect(),
                None => applied.into_iter().take(1).collect(),
            };
            if to_revert.is_empty() {
                self.reporter.audit("Nothing to revert");
                return Ok(Vec::new());
            }
            // Check every step before running any: an irreversible migration
            // half-way would otherwise leave the chain half reverted.
            let owned: Vec<Migration> = to_revert.iter().map(|m| (*m).clone()).collect();
            let loaded = self.load_all(&sandbox, &owned)?;
            // For a migration without a real down: the batches its applying attempt kept.
            let mut batch_reverts: Vec<Option<Vec<KeptBatch>>> = Vec::new();
            for (migration, component) in owned.iter().zip(&loaded) {
                let described = sandbox
                    .describe(
                        component,
                        self.config.settings_for(migration.id()),
                        self.reporter.clone(),
                    )
                    .await?;
                if !described.reversible && !options.force {
                    return Err(Error::Irreversible {
                        migration: migration.label(),
                        path: migration.path().to_path_buf(),
                    });
                }
                if described.has_down {
                    batch_reverts.push(None);
                    continue;
                }
                let applying = folded_for(&grouped, migration.id()).applied.map(|a| a.id);
                let batches = match applying {
                    Some(id) => ledger.batches(id)?,
                    None => Vec::new(),
                };
                if batches.is_empty() {
                    return Err(Error::NoDown {
                        migration: migration.label(),
                        path: migration.path().to_path_buf(),
                    });
                }
                batch_reverts.push(Some(batches));
            }
            let mut reverted = Vec::new();
            let mut ledger = ledger;
            for ((migration, component), batches) in owned.iter().zip(&loaded).zip(batch_reverts) {
                if lock.is_lost() {
                    return Err(Error::LockLost);
                }
                if let Some(batches) = batches {
                    reverted.push(
                        self.revert_batches(&db, lock.fence(), &ledger, migration, &batches)
                            .await?,
                    );
                    continue;
                }
                // A down step may delete what the up it reverts wrote.
                let revertible_batches = match folded_for(&grouped, migration.id()).applied {
                    Some(up) => ledger.batches(up.id)?.into_iter().map(|b| b.id).collect(),
                    None => Vec::new(),
                };
                reverted.push(
                    self.apply(
                        &db,
                        &sandbox,
                        &mut ledger,
                        lock.fence(),
                        Step::Down,
                        migration,
                        component,
                        StepEnv {
                            db: Some(db.clone()),
                            datasets: datasets.clone(),
                            revertible_batches,
                            ..StepEnv::default()
                        },
                    )
                    .await?,
                );
            }
            Ok(reverted)
        }
        .await;
        settle(outcome, lock.release(&db).await)
    }

    /// Reverts a migration without a real down step by deleting the batches its
    /// `up` wrote, newest first, and records the revert.
    pub(super) async fn revert_batches(
        &self,
        db: &GraphDb,
        fence: &Fence,
        ledger: &SqliteLedger,
        migration: &Migration,
        batches: &[KeptBatch],
    ) -> Result<AppliedMigration, Error> {
        self.reporter.migration_started(migration);
        let started = Instant::now();
        let chunk = self.config.settings_for(migration.id()).batch_chunk;
        let deleted = revert_kept_batches(db, batches, chunk)
            .await
            .map_err(|(batch, e)| {
                db.database_error(format!(
                    "reverting {}: deleting batch `{}` ({}) failed: {e}",
                    migration.label(),
                    batch.name,
                    batch.id
                ))
            })?;
        let names: Vec<&str> = batches.iter().map(|b| b.name.as_str()).collect();
        self.record_in_graph(
            db,
            fence,
            Action::Down,
            migration.id(),
            migration.description(),
            migration.checksum(),
            ledger,
            &format!(
                "reverted by deleting its batches {} ({deleted} nodes and relationships)",
                names.join(", ")
            ),
        )
        .await?;
        let summary = AppliedSummary {
            elapsed: started.elapsed(),
            statements: 0,
            fuel_consumed: 0,
        };
        self.reporter.migration_reverted(migration, &summary);
        Ok(AppliedMigration {
            id: migration.id().clone(),
            description: migration.description().to_string(),
            checksum: migration.checksum().clone(),
            summary,
        })
    }
}
