//! Bringing the ledger level with the graph: interrupted attempts, synced history,
//! history nodes graphmig did not write, and `repair`.

use std::sync::Arc;

use super::compensation::{delete_attempt_batches, settle_intent};
use super::deferred::finish_deferred;
use super::{Runner, actor, settle};
use crate::chain::Chain;
use crate::config::LockSettings;
use crate::error::Error;
use crate::graph::GraphDb;
use crate::graph::history::{Fence, HistoryDraft, HistoryEntry};
use crate::graph::intent::Intent;
use crate::journal::new_attempt_key;
use crate::ledger::{
    Action, Attempt, CHAIN_ORIGIN, Outcome, SqliteLedger, State, fold_state, group_by_migration,
};
use crate::migration::{Checksum, MigrationId};

/// What bringing the ledger level with the graph found.
pub(super) struct Synced {
    /// History entries copied into the ledger.
    pub(super) copied: usize,
    /// The graph's history, as it stands afterwards.
    pub(super) history: Vec<HistoryEntry>,
}

impl Runner {
    /// Settles ledger rows that never finished from the graph's history: a row
    /// whose attempt key is in the history committed; any other did not. With the
    /// history in a database of its own, the attempt's marker in the target
    /// database decides, and (holding the lock, `fence`) the missing history
    /// entry is written now. Returns whether it wrote any history entry (the
    /// caller's copy of the history is then stale).
    pub(super) async fn resolve_interrupted(
        &self,
        db: &GraphDb,
        fence: Option<&Fence>,
        ledger: &SqliteLedger,
        attempts: &[Attempt],
        history: &[HistoryEntry],
    ) -> Result<bool, Error> {
        let mut wrote_history = false;
        let running: Vec<&Attempt> = attempts
            .iter()
            .filter(|a| a.outcome == Outcome::Running)
            .collect();
        // An attempt with deferred schema steps commits its data with a marker
        // and writes its history after them, wherever the history lives.
        let intents = match running.is_empty() {
            true => Vec::new(),
            false => db.read_intents(&self.target()).await?,
        };
        for attempt in running {
            let mut committed = history
                .iter()
                .find(|h| h.attempt_key == attempt.attempt_key)
                .map(|h| h.chain.clone());
            let intent = intents.iter().find(|i| i.draft.key == attempt.attempt_key);
            let deferred = intent.is_some_and(|i| !i.schema_deferred.is_empty());
            if committed.is_none()
                && (db.history_written_apart() || deferred)
                && db.marker_exists(&attempt.attempt_key).await?
            {
                let Some(fence) = fence else {
                    self.reporter.warning(&format!(
                        "`{}` committed but its history entry is missing; the next `graphmig run` records it",
                        attempt.description
                    ));
                    continue;
                };
                if let Some(intent) = intent {
                    self.finish_deferred_of(db, intent).await?;
                }
                let draft = HistoryDraft {
                    action: attempt.action,
                    key: attempt
                        .migration
                        .as_ref()
                        .map(MigrationId::key)
                        .unwrap_or_default(),
                    description: attempt.description.clone(),
                    checksum: attempt.checksum.clone(),
                    attempt_key: attempt.attempt_key.clone(),
                    applied_at: attempt.started_at.clone(),
                    applied_by: attempt.actor.clone(),
                };
                let mut txn = db.begin_history().await?;
                let entry = txn
                    .append_history(fence, &draft)
                    .await
                    .map_err(|e| db.database_error(format!("recording the history: {e}")))?;
                txn.commit()
                    .await
                    .map_err(|e| db.database_error(format!("recording the history: {e}")))?;
                committed = Some(entry.chain);
                wrote_history = true;
            }
            if committed.is_none() {
                // Batch chunks commit on their own: an attempt that never committed
                // may have left some, tagged with its key. Only the lock holder may
                // delete them; without the lock the attempt stays interrupted.
                if fence.is_none() {
                    continue;
                }
                let chunk = self.config.defaults.batch_chunk;
                let deleted = delete_attempt_batches(db, &attempt.attempt_key, chunk)
                    .await
                    .map_err(|e| {
                        db.database_error(format!(
                            "deleting the batches of an interrupted attempt: {e}"
                        ))
                    })?;
                if deleted > 0 {
                    self.reporter.warning(&format!(
                        "deleted {deleted} nodes and relationships that the interrupted attempt of `{}` had written through batches",
                        attempt.description
                    ));
                }
            }
            ledger.resolve_interrupted(attempt.id, committed.as_ref())?;
            self.reporter
                .resolved_interrupted(&attempt.description, committed.is_some());
        }
        Ok(wrote_history)
    }

    /// Copies history entries the ledger lacks (applied by other runners) into
    /// it, after settling interrupted attempts; returns how many, and the history.
    pub(super) async fn sync_ledger(
        &self,
        db: &GraphDb,
        fence: &Fence,
        ledger: &SqliteLedger,
    ) -> Result<Synced, Error> {
        let target = self.target();
        let attempts = ledger.attempts(&target)?;
        let mut history = db.read_history().await?;
        if self
            .resolve_interrupted(db, Some(fence), ledger, &attempts, &history)
            .await?
        {
            history = db.read_history().await?;
        }
        if self.settle_intents(db, fence, ledger, &history).await? {
            history = db.read_history().await?;
        }
        let attempts = ledger.attempts(&target)?;
        let mut synced = 0;
        for entry in &history {
            if attempts.iter().any(|a| a.attempt_key == entry.attempt_key) {
                continue;
            }
            let id = MigrationId::parse_key(&entry.key);
            let action = if entry.action == Action::Up {
                Action::Sync
            } else {
                entry.action
            };
            ledger.record_event(
                &target,
                action,
                id.as_ref(),
                &entry.description,
                &entry.checksum,
                Some(&entry.chain),
                &entry.attempt_key,
                &entry.applied_by,
                &format!(
                    "synced from the graph: {} by {} at {}",
                    entry.action.as_str(),
                    entry.applied_by,
                    entry.applied_at
                ),
            )?;
            synced += 1;
        }
        if synced > 0 {
            self.reporter.synced(synced);
        }
        Ok(Synced {
            copied: synced,
            history,
        })
    }

    /// Finishes the attempts whose intents other runs left in the history
    /// database (a runner killed, its ledger gone, or a clean-up that failed
    /// part-way): an attempt with a commit record (its history entry, or its
    /// marker) has its refactoring tags dropped; any other is compensated from
    /// the intent, and the compensation is recorded in the history and the
    /// ledger. An intent that cannot be settled now stays for the next run.
    /// Returns whether it wrote history.
    pub(super) async fn settle_intents(
        &self,
        db: &GraphDb,
        fence: &Fence,
        ledger: &SqliteLedger,
        history: &[HistoryEntry],
    ) -> Result<bool, Error> {
        let mut wrote_history = false;
        for intent in db.read_intents(&self.target()).await? {
            let key = &intent.draft.key;
            let committed = history.iter().any(|h| &h.attempt_key == key)
                || (db.history_written_apart() && db.marker_exists(key).await?);
            let chunk = self.config.defaults.batch_chunk;
            let label = format!(
                "{} {} (attempt {} by {} at {})",
                intent.draft.migration,
                intent.draft.description,
                &key[..key.len().min(12)],
                intent.draft.runner,
                intent.draft.started_at
            );
            if committed {
                self.finish_deferred_of(db, &intent).await?;
            }
            match settle_intent(db, &intent, committed, chunk).await {
                Ok(done) if committed => {
                    self.reporter
                        .warning(&format!("{label} had committed: {done}"));
                }
                Ok(done) => {
                    self.reporter
                        .warning(&format!("{label} never committed: {done}"));
                    if let Some(id) = MigrationId::parse_key(&intent.draft.migration) {
                        self.record_in_graph(
                            db,
                            fence,
                            Action::Repair,
                            &id,
                            &intent.draft.description,
                            &Checksum::from_hex(intent.draft.checksum.clone()),
                            ledger,
                            &format!("the attempt {key} by {}: {done}", intent.draft.runner),
                        )
                        .await?;
                        wrote_history = true;
                    }
                }
                Err(why) => {
                    return Err(db.database_error(format!(
                        "finishing the clean-up of {label} failed ({why}); the next `graphmig run` tries again"
                    )));
                }
            }
        }
        Ok(wrote_history)
    }

    /// Runs the deferred schema steps an attempt whose data committed left
    /// undone; a failure stops the run (the intent keeps them for the next).
    async fn finish_deferred_of(&self, db: &GraphDb, intent: &Intent) -> Result<(), Error> {
        if intent.deferred_pending().is_empty() {
            return Ok(());
        }
        match finish_deferred(db, intent).await {
            Ok(ran) => {
                if ran > 0 {
                    self.reporter.warning(&format!(
                        "{} {} had committed its data: ran the {ran} deferred schema step(s) it had left",
                        intent.draft.migration, intent.draft.description
                    ));
                }
                Ok(())
            }
            Err(why) => Err(db.database_error(format!(
                "{} {} committed its data, but {why}; fix the cause and run `graphmig run` again",
                intent.draft.migration, intent.draft.description
            ))),
        }
    }

    /// Finishes compensations left pending by other runs before a read-only
    /// command (`status`, `verify`) reports: when attempts' intents without a
    /// commit record are in the graph and the lock is free, takes it without
    /// waiting, settles them, and releases it. With the lock held (a runner may
    /// be at work on them), leaves them: `status` shows `compensation pending`.
    /// Returns the intents still left afterwards.
    pub(super) async fn finish_pending_compensation(
        &self,
        db: &Arc<GraphDb>,
    ) -> Result<Vec<Intent>, Error> {
        let intents = db.read_intents(&self.target()).await?;
        if intents.is_empty() {
            return Ok(intents);
        }
        let owner = format!("{}:{}/settle", actor(), std::process::id());
        let settings = LockSettings {
            wait: std::time::Duration::ZERO,
            ..self.config.lock
        };
        let Ok(lock) = db.acquire_lock(&owner, settings, &|_| {}).await else {
            return Ok(intents);
        };
        let outcome = async {
            let ledger = SqliteLedger::open(&self.config.ledger_path)?;
            let history = db.read_history().await?;
            self.settle_intents(db, lock.fence(), &ledger, &history)
                .await
        }
        .await;
        // Settled, every intent is gone (one that is not fails the call).
        settle(outcome, lock.release(db).await).map(|_| Vec::new())
    }

    /// Brings the ledger level with the graph (`graphmig sync`).
    pub async fn sync(&self) -> Result<usize, Error> {
        let ledger = SqliteLedger::open(&self.config.ledger_path)?;
        let db = self.connect().await?;
        let lock = self.lock(&db).await?;
        let result = self
            .sync_ledger(&db, lock.fence(), &ledger)
            .await
            .map(|synced| synced.copied);
        settle(result, lock.release(&db).await)
    }

    /// Sets aside history nodes graphmig did not write: malformed ones, and
    /// entries that break the hash chain and that no ledger row knows (forged).
    /// Returns their element ids.
    pub(super) async fn set_aside_foreign_history(
        &self,
        db: &GraphDb,
        ledger: &SqliteLedger,
    ) -> Result<Vec<String>, Error> {
        let (entries, malformed) = db.read_history_nodes().await?;
        let known: std::collections::HashSet<String> = ledger
            .attempts(&self.target())?
            .into_iter()
            .map(|a| a.attempt_key)
            .collect();
        let mut aside: Vec<String> = malformed.into_iter().map(|(id, _)| id).collect();
        let mut previous = CHAIN_ORIGIN.to_string();
        for entry in &entries {
            let breaks = entry.expected_hash() != entry.chain.hash || entry.previous != previous;
            if breaks && !known.contains(&entry.attempt_key) {
                aside.push(entry.node.clone());
            } else {
                previous = entry.chain.hash.clone();
            }
        }
        db.set_aside_history_nodes(&aside).await?;
        Ok(aside)
    }

    /// Batch tags in the target that no attempt made: a migration forged them, or
    /// copied them from elements of another batch.
    pub(super) async fn foreign_batch_tags(
        &self,
        db: &GraphDb,
        attempts: &[Attempt],
        history: &[HistoryEntry],
    ) -> Result<Vec<String>, Error> {
        let known: std::collections::HashSet<&str> = attempts
            .iter()
            .map(|a| a.attempt_key.as_str())
            .chain(history.iter().map(|h| h.attempt_key.as_str()))
            .collect();
        let tag = crate::graph::batch::BATCH_TAG;
        let mut problems = Vec::new();
        for (what, pattern) in [("node", "(e)"), ("relationship", "()-[e]->()")] {
            let mut txn = db.begin().await?;
            let rows = txn
                .run(
                    &format!(
                        "MATCH {pattern} WHERE e.{tag} IS NOT NULL WITH toString(e.{tag}) AS tag, count(*) AS n RETURN tag, n"
                    ),
                    Vec::new(),
                )
                .await
                .map_err(|e| db.database_error(format!("reading batch tags: {e}")))?;
            let _ = txn.rollback().await;
            for row in rows {
                let value = crate::graph::history::text(&row, "tag").unwrap_or_default();
                let count = crate::graph::history::int(&row, "n").unwrap_or(0);
                // A batch id is `<attempt key>-<n>`.
                let owner = value.rsplit_once('-').map_or("", |(attempt, _)| attempt);
                if !known.contains(owner) {
                    problems.push(format!(
                        "{count} {what}(s) carry the batch tag `{value}`, which no attempt made: a migration forged or copied it (find them with MATCH {pattern} WHERE e.{tag} = '{value}' RETURN e)"
                    ));
                }
            }
        }
        Ok(problems)
    }

    /// Accepts changed checksums of applied migrations and clears failed or
    /// interrupted attempts, recording each as an audit entry.
    pub async fn repair(&self) -> Result<Vec<String>, Error> {
        let chain = Chain::discover(&self.config.migrations_dir)?;
        let ledger = SqliteLedger::open(&self.config.ledger_path)?;
        let db = self.connect().await?;
        let lock = self.lock(&db).await?;
        let outcome = async {
            let mut done = Vec::new();
            let aside = self.set_aside_foreign_history(&db, &ledger).await?;
            if !aside.is_empty() {
                let note = format!(
                    "set aside {} history node(s) graphmig did not write, relabelled {}: {}",
                    aside.len(),
                    crate::graph::history::SET_ASIDE_LABEL,
                    aside.join(", ")
                );
                ledger.record_event(
                    &self.target(),
                    Action::Repair,
                    None,
                    "history",
                    &Checksum::from_hex(""),
                    None,
                    &new_attempt_key(),
                    &actor(),
                    &note,
                )?;
                self.reporter
                    .audit(&format!("Repaired the history: {note}"));
                done.push(note);
            }
            self.sync_ledger(&db, lock.fence(), &ledger).await?;
            let attempts = ledger.attempts(&self.target())?;
            let grouped = group_by_migration(&attempts);
            for (id, events) in &grouped {
                let folded = fold_state(events.iter().copied());
                match folded.state {
                    State::Applied => {
                        let Some(migration) = chain.find(id) else {
                            continue;
                        };
                        if migration.is_repeatable()
                            || folded.checksum.as_ref() == Some(migration.checksum())
                        {
                            continue;
                        }
                        let note = format!(
                            "accepted checksum {} in place of {}",
                            migration.checksum(),
                            folded.checksum.as_ref().map_or("", |c| c.as_str())
                        );
                        self.record_in_graph(
                            &db,
                            lock.fence(),
                            Action::Repair,
                            id,
                            migration.description(),
                            migration.checksum(),
                            &ledger,
                            &note,
                        )
                        .await?;
                        done.push(format!("{id}: {note}"));
                    }
                    State::Failed | State::Interrupted => {
                        let last = folded
                            .last
                            .map(|a| a.checksum.clone())
                            .unwrap_or_else(|| Checksum::from_hex(""));
                        let note =
                            "cleared the failed attempt; it runs again on the next `graphmig run`";
                        ledger.record_event(
                            &self.target(),
                            Action::Repair,
                            Some(id),
                            &events[0].description,
                            &last,
                            None,
                            &new_attempt_key(),
                            &actor(),
                            note,
                        )?;
                        done.push(format!("{id}: {note}"));
                    }
                    // Folding never says `compensation pending`; only `status` does.
                    State::Pending | State::CompensationPending => {}
                }
            }
            for line in &done {
                self.reporter.audit(&format!("Repaired {line}"));
            }
            Ok(done)
        }
        .await;
        settle(outcome, lock.release(&db).await)
    }
}
