//! `status` and `history`: every migration's state, from the ledger and the graph's history.

use std::collections::BTreeMap;

use super::Runner;
use crate::chain::Chain;
use crate::error::Error;
use crate::graph::GraphDb;
use crate::graph::history::HistoryEntry;
use crate::graph::lock::now_ms;
use crate::ledger::{
    Action, Attempt, Outcome, SqliteLedger, State, fold_state, folded_for, group_by_migration,
};
use crate::migration::{Checksum, MigrationId};

/// One migration's line in `graphmig status`.
#[derive(Debug, Clone)]
pub struct StatusEntry {
    /// Its identity.
    pub id: MigrationId,
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
    /// A backfill of this (not yet applied) migration that committed part of
    /// its work: `(rows, total, chunks)`.
    pub backfill: Option<(u64, u64, u32)>,
}

impl StatusEntry {
    /// The state as `status` shows it: `in progress (38 %, chunk 412)` for a
    /// migration whose backfill committed part of its work.
    pub fn state_text(&self) -> String {
        match self.backfill {
            Some((rows, total, chunks)) if self.state != State::Applied => format!(
                "in progress ({} %, chunk {chunks})",
                (rows.saturating_mul(100) / total.max(1)).min(100)
            ),
            _ => self.state.as_str().to_string(),
        }
    }
}

/// Puts each unfinished backfill's checkpoint on its migration's entry.
fn with_backfills(entries: &mut [StatusEntry], checkpoints: &[crate::journal::BackfillCheckpoint]) {
    for checkpoint in checkpoints.iter().filter(|c| !c.done) {
        if let Some(entry) = entries
            .iter_mut()
            .find(|e| e.id.key() == checkpoint.migration && e.state != State::Applied)
        {
            entry.backfill = Some((checkpoint.rows, checkpoint.total, checkpoint.chunks));
        }
    }
}

impl Runner {
    /// The state of every migration on disk, in the ledger and in the graph's
    /// history. Reads the graph when it can be reached (the history is the
    /// shared truth: entries other runners applied show as applied, and history
    /// nodes graphmig did not write fail the command as verify problems); settles
    /// attempts that never finished. Without the database, the ledger alone.
    pub async fn status(&self) -> Result<Vec<StatusEntry>, Error> {
        let chain = Chain::discover(&self.config.migrations_dir)?;
        let ledger = SqliteLedger::open_existing(&self.config.ledger_path)?;
        let mut attempts = match &ledger {
            Some(ledger) => ledger.attempts(&self.target())?,
            None => Vec::new(),
        };
        let db = match GraphDb::connect(&self.config.database).await {
            Ok(db) => db,
            Err(e) => {
                self.reporter.warning(&format!(
                    "cannot reach the database, so this is the local ledger alone: {e}"
                ));
                let mut entries = status_entries(&chain, &attempts);
                if let Some(ledger) = &ledger {
                    with_backfills(&mut entries, &ledger.backfills(&self.target())?);
                }
                return Ok(entries);
            }
        };
        let db = std::sync::Arc::new(db);
        // A clean-up that fails again is shown, not fatal: status still reports.
        let pending = match self.finish_pending_compensation(&db).await {
            Ok(left) => left,
            Err(e) => {
                self.reporter.warning(&e.to_string());
                db.read_intents(&self.target()).await?
            }
        };
        if let Some(ledger) = &ledger {
            attempts = ledger.attempts(&self.target())?;
        }
        let history = db.read_history().await?;
        if let Some(ledger) = &ledger
            && attempts.iter().any(|a| a.outcome == Outcome::Running)
        {
            let live = db.lock_holder().await?.filter(|h| h.expires_at > now_ms());
            // A live lock means a runner may be at work: its row is left alone
            // until the lease ends.
            if let Some(holder) = live {
                self.reporter.warning(&format!(
                    "{} holds the lock until {}; unfinished attempts are settled once it is released or expires",
                    holder.owner,
                    crate::graph::lock::ms_to_rfc3339(holder.expires_at)
                ));
            } else {
                self.resolve_interrupted(&db, None, ledger, &attempts, &history)
                    .await?;
                attempts = ledger.attempts(&self.target())?;
            }
        }
        let mut entries = status_entries(&chain, &with_graph_history(attempts, &history));
        // The graph's checkpoints, committed with their chunks, are the truth.
        match db.backfill_checkpoints().await {
            Ok(checkpoints) => with_backfills(&mut entries, &checkpoints),
            Err(e) => self
                .reporter
                .warning(&format!("reading the backfill checkpoints: {e}")),
        }
        // An attempt whose intent is still in the graph without a commit record
        // has work that committed on its own and is not undone yet.
        for intent in pending {
            if history.iter().any(|h| h.attempt_key == intent.draft.key) {
                continue;
            }
            if let Some(entry) = entries
                .iter_mut()
                .find(|e| e.id.key() == intent.draft.migration && e.state != State::Applied)
            {
                entry.state = State::CompensationPending;
                entry.error = Some(format!(
                    "compensation pending: what the attempt by {} at {} committed on its own is not undone yet; the next `graphmig run` finishes it",
                    intent.draft.runner, intent.draft.started_at
                ));
            }
        }
        Ok(entries)
    }

    /// Every event of the ledger, oldest first (no database needed).
    pub fn history(&self) -> Result<(SqliteLedger, Vec<Attempt>), Error> {
        let ledger = SqliteLedger::open(&self.config.ledger_path)?;
        let attempts = ledger.attempts(&self.target())?;
        Ok((ledger, attempts))
    }
}

/// The ledger's attempts plus, for every history entry the ledger lacks (applied
/// by another runner), an attempt that stands for it, so that what the graph
/// says is applied is shown and planned as applied.
pub(super) fn with_graph_history(
    mut attempts: Vec<Attempt>,
    history: &[HistoryEntry],
) -> Vec<Attempt> {
    for entry in history {
        if attempts.iter().any(|a| a.attempt_key == entry.attempt_key) {
            continue;
        }
        attempts.push(Attempt {
            id: i64::MAX,
            action: if entry.action == Action::Up {
                Action::Sync
            } else {
                entry.action
            },
            migration: MigrationId::parse_key(&entry.key),
            description: entry.description.clone(),
            checksum: entry.checksum.clone(),
            chain: Some(entry.chain.clone()),
            attempt_key: entry.attempt_key.clone(),
            actor: entry.applied_by.clone(),
            started_at: entry.applied_at.clone(),
            finished_at: Some(entry.applied_at.clone()),
            duration_ms: None,
            fuel_consumed: None,
            statements: None,
            outcome: Outcome::Applied,
            error: None,
        });
    }
    attempts
}

pub(super) fn status_entries(chain: &Chain, attempts: &[Attempt]) -> Vec<StatusEntry> {
    let grouped = group_by_migration(attempts);
    let mut entries: BTreeMap<MigrationId, StatusEntry> = BTreeMap::new();
    for migration in chain.migrations() {
        let folded = folded_for(&grouped, migration.id());
        let applied = folded.applied;
        let mut state = folded.state;
        let changed = folded
            .checksum
            .as_ref()
            .is_some_and(|c| c != migration.checksum());
        // A repeatable migration whose file changed is due to run again.
        if migration.is_repeatable() && changed {
            state = State::Pending;
        }
        entries.insert(
            migration.id().clone(),
            StatusEntry {
                id: migration.id().clone(),
                description: migration.description().to_string(),
                state,
                checksum: migration.checksum().clone(),
                applied_at: applied.and_then(|a| a.finished_at.clone()),
                duration_ms: applied.and_then(|a| a.duration_ms),
                fuel_consumed: applied.and_then(|a| a.fuel_consumed),
                statements: applied.and_then(|a| a.statements),
                error: match state {
                    State::Failed => folded.last.and_then(|a| a.error.clone()),
                    _ => None,
                },
                checksum_changed: changed && !migration.is_repeatable(),
                missing: false,
                backfill: None,
            },
        );
    }
    for (id, history) in &grouped {
        if entries.contains_key(id) {
            continue;
        }
        let folded = fold_state(history.iter().copied());
        if let Some(applied) = folded.applied.filter(|_| folded.state == State::Applied) {
            entries.insert(
                id.clone(),
                StatusEntry {
                    id: id.clone(),
                    description: applied.description.clone(),
                    state: folded.state,
                    checksum: applied.checksum.clone(),
                    applied_at: applied.finished_at.clone(),
                    duration_ms: applied.duration_ms,
                    fuel_consumed: applied.fuel_consumed,
                    statements: applied.statements,
                    error: None,
                    checksum_changed: false,
                    missing: true,
                    backfill: None,
                },
            );
        }
    }
    entries.into_values().collect()
}
