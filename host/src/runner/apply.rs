//! `run`: apply each pending migration in its own transaction, with its history
//! entry, and journal the attempt.

use std::time::Instant;

use super::compensation::{compensation_failed, delete_batches, undo_schema, walk_refactors};
use super::recovery::Synced;
use super::{AppliedMigration, Report, RunOptions, Runner, actor, crash_point, settle};
use crate::chain::Chain;
use crate::error::{Error, FailureCause, MigrationFailure};
use crate::graph::history::{Fence, HistoryDraft};
use crate::graph::intent::IntentDraft;
use crate::graph::{GraphDb, GraphTxn};
use crate::journal::new_attempt_key;
use crate::ledger::{
    Action, ChainLink, Finish, Outcome, SqliteLedger, State, fold_state, group_by_migration,
    now_rfc3339,
};
use crate::migration::{Checksum, Migration, MigrationId};
use crate::reporter::AppliedSummary;
use crate::wasm::{GuestRecord, LoadedComponent, Mode, Sandbox, Step, StepEnv};

impl Runner {
    /// Applies every pending migration, stopping at the first failure, which is
    /// rolled back and returned as [`Error::MigrationFailed`].
    pub async fn run(&self, options: &RunOptions) -> Result<Report, Error> {
        crate::builder::check_built(&self.config.migrations_dir)?;
        let chain = Chain::discover(&self.config.migrations_dir)?;
        let ledger = SqliteLedger::open(&self.config.ledger_path)?;
        let target = self.target();

        // Every artifact that may run is compiled and checked before the database
        // is touched, so a bad file late in the chain stops the run before it starts.
        let sandbox = self.sandbox()?;
        let maybe_pending = self.pending(
            &chain,
            &ledger.attempts(&target)?,
            &RunOptions {
                out_of_order: true,
                ..options.clone()
            },
        )?;
        let loaded: Vec<(MigrationId, LoadedComponent)> = maybe_pending
            .iter()
            .map(|m| m.id().clone())
            .zip(self.load_all(&sandbox, &maybe_pending)?)
            .collect();
        for (migration, (_, component)) in maybe_pending.iter().zip(&loaded) {
            sandbox
                .describe(
                    component,
                    self.config.settings_for(migration.id()),
                    self.reporter.clone(),
                )
                .await?;
        }
        let datasets = self.open_datasets()?;

        let db = self.connect().await?;
        for risk in crate::doctor::configuration_risks(&self.config.database) {
            self.reporter.warning(&risk);
        }
        let lock = self.lock(&db).await?;
        let outcome = async {
            let Synced {
                copied: synced,
                history,
            } = self.sync_ledger(&db, lock.fence(), &ledger).await?;
            let attempts = ledger.attempts(&target)?;
            let problems = self.problems(&chain, &attempts, &history);
            if !problems.is_empty() {
                return Err(Error::VerifyFailed { problems });
            }
            let pending = self.pending(&chain, &attempts, options)?;
            if pending.is_empty() {
                let applied = group_by_migration(&attempts)
                    .values()
                    .filter(|events| fold_state(events.iter().copied()).state == State::Applied)
                    .count();
                self.reporter.up_to_date(applied);
                return Ok(Report {
                    applied: Vec::new(),
                    synced,
                });
            }
            self.reporter.plan(&pending);
            let mut report = Report {
                applied: Vec::new(),
                synced,
            };
            let mut ledger = ledger;
            for migration in &pending {
                if lock.is_lost() {
                    return Err(Error::LockLost);
                }
                let component = loaded
                    .iter()
                    .find(|(id, _)| id == migration.id())
                    .map(|(_, c)| c)
                    .ok_or_else(|| {
                        Error::Engine(format!("{} was not loaded", migration.label()))
                    })?;
                let applied = self
                    .apply(
                        &db,
                        &sandbox,
                        &mut ledger,
                        lock.fence(),
                        Step::Up,
                        migration,
                        component,
                        StepEnv {
                            db: Some(db.clone()),
                            datasets: datasets.clone(),
                            ledger: Some((self.config.ledger_path.clone(), self.target())),
                            ..StepEnv::default()
                        },
                    )
                    .await?;
                report.applied.push(applied);
            }
            Ok(report)
        }
        .await;
        settle(outcome, lock.release(&db).await)
    }

    /// Writes an audit entry into the graph's history (in its own, fenced
    /// transaction) and the ledger.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn record_in_graph(
        &self,
        db: &GraphDb,
        fence: &Fence,
        action: Action,
        id: &MigrationId,
        description: &str,
        checksum: &Checksum,
        ledger: &SqliteLedger,
        note: &str,
    ) -> Result<ChainLink, Error> {
        let attempt_key = new_attempt_key();
        let draft = HistoryDraft {
            action,
            key: id.key(),
            description: description.to_string(),
            checksum: checksum.clone(),
            attempt_key: attempt_key.clone(),
            applied_at: now_rfc3339(),
            applied_by: actor(),
        };
        // An audit entry belongs to the history alone: its database, as the owner.
        let mut txn = db.begin_history().await?;
        let entry = txn
            .append_history(fence, &draft)
            .await
            .map_err(|e| db.database_error(format!("writing the history: {e}")))?;
        txn.commit()
            .await
            .map_err(|e| db.database_error(format!("writing the history: {e}")))?;
        ledger.record_event(
            &self.target(),
            action,
            Some(id),
            description,
            checksum,
            Some(&entry.chain),
            &attempt_key,
            &actor(),
            note,
        )?;
        Ok(entry.chain)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn apply(
        &self,
        db: &GraphDb,
        sandbox: &Sandbox,
        ledger: &mut SqliteLedger,
        fence: &Fence,
        step: Step,
        migration: &Migration,
        component: &LoadedComponent,
        mut env: StepEnv,
    ) -> Result<AppliedMigration, Error> {
        let action = match step {
            Step::Up => Action::Up,
            Step::Down => Action::Down,
        };
        if crate::interrupt::requested() {
            return Err(Error::Interrupted {
                migration: migration.label(),
            });
        }
        self.reporter.migration_started(migration);
        let started = Instant::now();
        let attempt_key = new_attempt_key();
        env.batch_prefix = Some(attempt_key.clone());
        let who = actor();
        env.intent = Some(IntentDraft {
            key: attempt_key.clone(),
            target: self.target(),
            migration: migration.id().key(),
            description: migration.description().to_string(),
            checksum: migration.checksum().to_string(),
            action: action.as_str().to_string(),
            runner: who.clone(),
            started_at: now_rfc3339(),
        });
        // The ledger row is written while the server answers the transaction's
        // BEGIN (which changes nothing in the graph): BEGIN goes out first.
        let (began, attempt) = tokio::join!(db.begin(), async {
            ledger.begin_attempt(&self.target(), migration, action, &attempt_key, &who)
        });
        let attempt = attempt?;
        let fail_early = |ledger: &mut SqliteLedger, e: &Error| {
            let finish = Finish {
                outcome: Outcome::Failed,
                duration_ms: started.elapsed().as_millis() as u64,
                fuel_consumed: 0,
                statements: 0,
                error: Some(e.to_string()),
                chain: None,
            };
            ledger.finish_attempt(attempt, &finish, &GuestRecord::default())
        };

        let txn = match began {
            Ok(txn) => txn,
            Err(e) => {
                fail_early(ledger, &e)?;
                return Err(e);
            }
        };
        let mut run = match sandbox
            .run_step(
                component,
                step,
                Mode::Apply,
                txn,
                self.config.settings_for(migration.id()),
                env,
                self.reporter.clone(),
                migration.label(),
            )
            .await
        {
            Ok(run) => run,
            Err(e) => {
                fail_early(ledger, &e)?;
                return Err(e);
            }
        };

        let draft = HistoryDraft {
            action,
            key: migration.id().key(),
            description: migration.description().to_string(),
            checksum: migration.checksum().clone(),
            attempt_key,
            applied_at: now_rfc3339(),
            applied_by: who,
        };
        // A backfill's checkpoints go with the transaction that records the
        // migration: left behind, they would make a later `up` of it (after a
        // `down`) find its backfills finished.
        let mut result = run.result;
        if result.is_ok()
            && run.record.progress_markers
            && let Some(txn) = run.txn.as_mut()
            && let Err(e) = txn.clear_progress(&migration.id().key()).await
        {
            result = Err(FailureCause::Commit {
                code: e.code,
                message: format!("removing the backfill checkpoints: {}", e.message),
            });
        }
        // Schema steps that came after the migration's writes run once those
        // committed (with a marker), and the history entry is written last.
        let deferred = !run.record.deferred.is_empty();
        let outcome: Result<ChainLink, FailureCause> = match (result, run.txn) {
            (Ok(()), Some(txn)) if db.history_written_apart() || deferred => {
                let committed = match commit_with_marker(db, txn, fence, &draft).await {
                    Ok(()) if deferred => {
                        crash_point("before-deferred-schema");
                        super::deferred::run_deferred(db, &draft.attempt_key, &mut run.record)
                            .await
                            .map_err(Separate::Deferred)
                    }
                    other => other,
                };
                let recorded = match committed {
                    Ok(()) => record_history(db, fence, &draft)
                        .await
                        .map_err(Separate::AfterCommit),
                    Err(e) => Err(e),
                };
                match recorded {
                    Ok(link) => Ok(link),
                    Err(Separate::BeforeCommit(cause)) => Err(cause),
                    Err(Separate::Unknown(message)) => {
                        return Err(unknown_outcome(migration, &message, db));
                    }
                    Err(Separate::Deferred(message)) => {
                        // The data committed; the step and those after it are in the
                        // attempt's intent, and the ledger row stays `running`: the
                        // next run finishes them, then records the migration.
                        return Err(db.database_error(format!(
                            "{} committed its data, but {message}; the migration is not recorded \
                             as applied yet: fix the cause and run `graphmig run` again, which runs \
                             the deferred schema steps left and records it",
                            migration.label()
                        )));
                    }
                    Err(Separate::AfterCommit(message)) => {
                        // The data committed: the ledger row stays `running` so that
                        // the next run settles it from the marker, never re-running it.
                        return Err(db.database_error(format!(
                            "{} committed, but its history entry could not be written ({message}); the next `graphmig run` records it",
                            migration.label()
                        )));
                    }
                }
            }
            (Ok(()), Some(txn)) => match commit_with_history(db, txn, fence, &draft).await {
                Ok(link) => Ok(link),
                Err(Committing::Failed(cause)) => Err(cause),
                Err(Committing::Unknown(message)) => {
                    return Err(unknown_outcome(migration, &message, db));
                }
            },
            (Ok(()), None) => Err(FailureCause::Trap {
                message: "the transaction was lost".into(),
            }),
            (Err(cause), txn) => {
                if let Some(txn) = txn
                    && let Err(e) = tokio::time::timeout(db.grace(), txn.rollback())
                        .await
                        .unwrap_or_else(|_| {
                            Err(crate::graph::GraphError::from_code(
                                "graphmig.RollbackTimeout",
                                "no answer to ROLLBACK",
                            ))
                        })
                {
                    // The server drops the transaction with the connection anyway.
                    tracing::warn!(migration = %migration.label(), error = %e, "rollback failed");
                }
                Err(cause)
            }
        };
        crash_point("after-commit");
        if outcome.is_ok()
            && run.record.progress_markers
            && db.history_is_separate()
            && let Err(e) = db.clear_backfill_mirror(&migration.id().key()).await
        {
            // Only `status` reads the copy; the graph's checkpoints are gone.
            tracing::warn!(migration = %migration.label(), error = %e, "removing the backfill checkpoints' copy failed");
        }
        // Schema operations ran outside the transaction: undo them, newest first.
        // A clean-up that cannot finish within the grace (a stalled
        // connection) is left to the next run, from the attempt's intent.
        let mut cleanup_timed_out = false;
        let undo_note = if outcome.is_err() {
            let chunk = self.config.settings_for(migration.id()).batch_chunk;
            let record = &mut run.record;
            let cleanup = async {
                let refactors = walk_refactors(db, &mut record.refactor_steps, true).await;
                crash_point("during-compensation");
                let batches = delete_batches(db, &mut record.batches, chunk).await;
                let schema = undo_schema(db, &mut record.schema_steps).await;
                (refactors, batches, schema)
            };
            match tokio::time::timeout(db.grace(), cleanup).await {
                Ok((None, None, None)) => None,
                Ok((a, b, c)) => Some(format!(
                    "{}{}{}",
                    a.unwrap_or_default(),
                    b.unwrap_or_default(),
                    c.unwrap_or_default()
                )),
                Err(_elapsed) => {
                    cleanup_timed_out = true;
                    Some(format!(
                        "; the clean-up got no answer within {} s",
                        db.grace().as_secs()
                    ))
                }
            }
        } else {
            if let Some(note) = walk_refactors(db, &mut run.record.refactor_steps, false).await {
                self.reporter
                    .warning(&format!("{}{note}", migration.label()));
            }
            None
        };
        // The attempt's intent goes once nothing is left for another runner to
        // do; if the clean-up failed part-way, it stays, and the next run
        // finishes the clean-up from it.
        let cleanup_pending = outcome.is_err()
            && run.record.intent_recorded
            && (cleanup_timed_out || compensation_failed(&run.record));
        if run.record.intent_recorded
            && !cleanup_pending
            && let Err(e) = db.drop_intent(&draft.attempt_key).await
        {
            // Harmless: the next run finds the attempt settled and removes it.
            tracing::warn!(migration = %migration.label(), error = %e, "removing the attempt's intent failed");
        }
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
            error: outcome
                .as_ref()
                .err()
                .map(|cause| format!("{cause}{}", undo_note.clone().unwrap_or_default())),
            chain: outcome.as_ref().ok().cloned(),
        };
        ledger.finish_attempt(attempt, &finish, &run.record)?;
        match outcome {
            Ok(_) => {
                let summary = AppliedSummary {
                    elapsed: started.elapsed(),
                    statements: run.statements,
                    fuel_consumed: run.fuel_consumed,
                };
                match step {
                    Step::Up => self.reporter.migration_applied(migration, &summary),
                    Step::Down => self.reporter.migration_reverted(migration, &summary),
                }
                Ok(AppliedMigration {
                    id: migration.id().clone(),
                    description: migration.description().to_string(),
                    checksum: migration.checksum().clone(),
                    summary,
                })
            }
            Err(cause) => {
                let failure = MigrationFailure {
                    migration: migration.label(),
                    path: migration.path().to_path_buf(),
                    cause,
                    schema_undo: undo_note,
                    cleanup_pending,
                };
                self.reporter.migration_failed(migration, &failure);
                Err(Error::MigrationFailed(Box::new(failure)))
            }
        }
    }
}

/// How committing with the history in the migration's transaction can fail.
pub(super) enum Committing {
    /// Nothing committed.
    Failed(FailureCause),
    /// The answer to COMMIT was lost and the graph could not be read to tell.
    Unknown(String),
}

/// Whether a failed COMMIT may still have committed: the server did not answer
/// with a failure of its own (the connection dropped, the answer was lost).
fn ambiguous(error: &crate::graph::GraphError) -> bool {
    !error.code.starts_with("Neo.")
}

/// Commits, waiting at most the grace for the answer: a stalled connection
/// (nothing answered, nothing closed) ends like a lost answer, which the graph
/// then decides.
async fn commit_within_grace(
    txn: GraphTxn,
    grace: std::time::Duration,
) -> Result<(), crate::graph::GraphError> {
    match tokio::time::timeout(grace, txn.commit()).await {
        Ok(committed) => committed,
        Err(_elapsed) => Err(crate::graph::GraphError {
            kind: crate::graph::GraphErrorKind::Other,
            code: "graphmig.CommitTimeout".into(),
            message: format!("no answer to COMMIT within {} s", grace.as_secs()),
        }),
    }
}

/// The error of a migration whose commit's outcome is unknown: nothing is
/// compensated and its ledger row stays `running`, so the next run decides from
/// the graph (history entry or marker) and never both applies and undoes it.
fn unknown_outcome(migration: &Migration, message: &str, db: &GraphDb) -> Error {
    db.database_error(format!(
        "{}: the answer to its COMMIT was lost ({message}) and the graph could not be read to tell whether it committed; nothing was undone, and the next `graphmig run` settles it from the graph",
        migration.label()
    ))
}

/// Writes the history entry into the migration's transaction and commits both.
/// When the answer to COMMIT is lost, the history decides whether it committed.
pub(super) async fn commit_with_history(
    db: &GraphDb,
    mut txn: GraphTxn,
    fence: &Fence,
    draft: &HistoryDraft,
) -> Result<ChainLink, Committing> {
    let entry = match txn.append_history(fence, draft).await {
        Ok(entry) => entry,
        Err(e) => {
            let _ = txn.rollback().await;
            return Err(Committing::Failed(FailureCause::Commit {
                code: e.code,
                message: e.message,
            }));
        }
    };
    crash_point("before-commit");
    match commit_within_grace(txn, db.grace()).await {
        Ok(()) => {
            fence.head.committed(&entry.chain);
            Ok(entry.chain)
        }
        Err(e) => {
            // Whether it committed is unknown to the head: the next append reads it.
            fence.head.forget();
            if !ambiguous(&e) {
                return Err(Committing::Failed(FailureCause::Commit {
                    code: e.code,
                    message: e.message,
                }));
            }
            match db.read_history().await {
                Ok(history) if history.iter().any(|h| h.attempt_key == draft.attempt_key) => {
                    Ok(entry.chain)
                }
                Ok(_) => Err(Committing::Failed(FailureCause::Commit {
                    code: e.code,
                    message: format!("{} (the graph shows it did not commit)", e.message),
                })),
                Err(read) => Err(Committing::Unknown(format!(
                    "{e}; reading the history: {read}"
                ))),
            }
        }
    }
}

/// How committing with the history in another database can fail.
pub(super) enum Separate {
    /// Nothing committed.
    BeforeCommit(FailureCause),
    /// The data committed; a deferred schema step failed (history not written).
    Deferred(String),
    /// The data committed; the history entry did not.
    AfterCommit(String),
    /// The answer to COMMIT was lost and the marker could not be read to tell.
    Unknown(String),
}

/// Commits the data with the attempt's marker in the target database, after
/// checking the lock (it cannot share the transaction across databases); a
/// lost answer to COMMIT is decided by the marker. The history entry follows
/// ([`record_history`]).
pub(super) async fn commit_with_marker(
    db: &GraphDb,
    mut txn: GraphTxn,
    fence: &Fence,
    draft: &HistoryDraft,
) -> Result<(), Separate> {
    let holder = db.lock_holder().await.ok().flatten();
    if !holder.is_some_and(|h| h.owner == fence.owner && h.generation == fence.generation) {
        let _ = txn.rollback().await;
        return Err(Separate::BeforeCommit(FailureCause::Commit {
            code: "graphmig.LockLost".into(),
            message: "this runner no longer holds the lock; nothing was committed".into(),
        }));
    }
    if let Err(e) = txn.write_marker(draft).await {
        let _ = txn.rollback().await;
        return Err(Separate::BeforeCommit(FailureCause::Commit {
            code: e.code,
            message: e.message,
        }));
    }
    crash_point("before-commit");
    if let Err(e) = commit_within_grace(txn, db.grace()).await {
        // A lost answer is decided by the marker, written in the transaction.
        let committed = match ambiguous(&e) {
            false => false,
            true => db
                .marker_exists(&draft.attempt_key)
                .await
                .map_err(|read| Separate::Unknown(format!("{e}; reading the marker: {read}")))?,
        };
        if !committed {
            return Err(Separate::BeforeCommit(FailureCause::Commit {
                code: e.code,
                message: e.message,
            }));
        }
    }
    crash_point("after-data-commit");
    Ok(())
}

/// Writes the history entry of an attempt whose data committed with a marker.
pub(super) async fn record_history(
    db: &GraphDb,
    fence: &Fence,
    draft: &HistoryDraft,
) -> Result<ChainLink, String> {
    let mut history = db.begin_history().await.map_err(|e| e.to_string())?;
    let entry = history
        .append_history(fence, draft)
        .await
        .map_err(|e| e.to_string())?;
    history.commit().await.map_err(|e| e.to_string())?;
    Ok(entry.chain)
}
