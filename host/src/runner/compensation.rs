//! Undoing what a failed attempt committed on its own: walking back its
//! refactorings, deleting its batches, undoing its schema steps. Shared by run,
//! down and recovery.

use crate::graph::intent::Intent;
use crate::graph::{GraphDb, GraphError};
use crate::journal::GuestRecord;
use crate::ledger::KeptBatch;

/// Walks refactorings back (`undo`, newest first) or drops their tags; returns a
/// note for the error message (undo) or a warning (finalize), or `None`.
pub(super) async fn walk_refactors(
    db: &GraphDb,
    steps: &mut [crate::journal::RefactorStep],
    undo: bool,
) -> Option<String> {
    let mut undone = 0;
    let mut failed = Vec::new();
    for step in steps.iter_mut().rev() {
        let statement = if undo { &step.undo } else { &step.finalize };
        let result = run_until_done(db, statement).await;
        match result {
            Ok(()) => {
                step.outcome = if undo { "undone" } else { "finalized" }.into();
                undone += 1;
            }
            Err(e) => {
                step.outcome = format!("failed: {e}");
                failed.push(format!("`{statement}`: {e}"));
            }
        }
    }
    match (undone, failed.is_empty(), undo) {
        (0, true, _) => None,
        (_, true, false) => None,
        (n, true, true) => Some(format!("; {n} refactoring(s) undone")),
        (n, false, true) => Some(format!(
            "; {n} refactoring(s) undone, but undoing failed for {}: fix them by hand",
            failed.join(", ")
        )),
        (_, false, false) => Some(format!(
            ": removing refactoring tags failed for {}; they are harmless, remove them by hand",
            failed.join(", ")
        )),
    }
}

/// Deletes what the failed migration's batches committed, newest first; returns
/// a note for the error message, or `None` when there were none.
pub(super) async fn delete_batches(
    db: &GraphDb,
    batches: &mut [crate::journal::BatchRecord],
    chunk: usize,
) -> Option<String> {
    let mut notes = Vec::new();
    for batch in batches.iter_mut().rev() {
        if batch.nodes + batch.relationships == 0 {
            continue;
        }
        match db.delete_batch(&batch.id, chunk.max(1)).await {
            Ok(n) => {
                batch.outcome = "deleted".into();
                notes.push(format!("batch `{}` deleted ({n} written)", batch.name));
            }
            Err(e) => {
                batch.outcome = format!("delete failed: {e}");
                notes.push(format!(
                    "deleting batch `{}` ({}) failed: {e}",
                    batch.name, batch.id
                ));
            }
        }
    }
    (!notes.is_empty()).then(|| format!("; {}", notes.join("; ")))
}

/// Undoes the applied schema steps in reverse order, marking each; returns a
/// note for the error message, or `None` when there was nothing to undo.
pub(super) async fn undo_schema(
    db: &GraphDb,
    steps: &mut [crate::journal::SchemaStep],
) -> Option<String> {
    let mut undone = 0;
    let mut failed = Vec::new();
    for step in steps.iter_mut().rev() {
        if step.outcome != "applied" {
            continue;
        }
        let Some(undo) = step.undo.clone() else {
            continue;
        };
        match db.run_schema(&undo).await {
            Ok(_) => {
                step.outcome = "undone".into();
                undone += 1;
            }
            Err(e) => {
                step.outcome = format!("undo failed: {e}");
                failed.push(format!("`{undo}`: {e}"));
            }
        }
    }
    match (undone, failed.is_empty()) {
        (0, true) => None,
        (n, true) => Some(format!("; {n} schema change(s) undone")),
        (n, false) => Some(format!(
            "; {n} schema change(s) undone, but undoing failed for {}: fix them by hand",
            failed.join(", ")
        )),
    }
}

/// Deletes what the kept batches of an applied migration wrote, newest first:
/// `down` of a migration without a `down` step. Returns how many nodes and
/// relationships went, or the batch whose deletion failed and why.
pub(super) async fn revert_kept_batches<'a>(
    db: &GraphDb,
    batches: &'a [KeptBatch],
    chunk: usize,
) -> Result<u64, (&'a KeptBatch, GraphError)> {
    let mut deleted = 0;
    for batch in batches.iter().rev() {
        deleted += db
            .delete_batch(&batch.id, chunk.max(1))
            .await
            .map_err(|e| (batch, e))?;
    }
    Ok(deleted)
}

/// Deletes everything an attempt that never committed wrote through batches:
/// every batch id starts with its attempt key. Returns how many went.
pub(super) async fn delete_attempt_batches(
    db: &GraphDb,
    attempt_key: &str,
    chunk: usize,
) -> Result<u64, GraphError> {
    db.delete_batch_prefix(attempt_key, chunk.max(1)).await
}

/// Runs a refactoring's undo or finalize statement, each pass in a transaction
/// of its own, until a pass changes nothing (each returns `count(*) AS n`).
async fn run_until_done(db: &GraphDb, statement: &str) -> Result<(), String> {
    // Never loop without bound should the server misbehave.
    for _ in 0..1_000_000 {
        let mut txn = db.begin().await.map_err(|e| e.to_string())?;
        let (rows, _) = txn
            .run_counted(statement, Vec::new())
            .await
            .map_err(|e| e.to_string())?;
        txn.commit().await.map_err(|e| e.to_string())?;
        let n = rows
            .first()
            .and_then(|row| crate::graph::history::int(row, "n"))
            .unwrap_or(0);
        if n == 0 {
            return Ok(());
        }
    }
    Err("did not finish".to_string())
}

/// Whether part of undoing what `record`'s attempt committed on its own failed.
pub(super) fn compensation_failed(record: &GuestRecord) -> bool {
    record
        .batches
        .iter()
        .any(|b| b.outcome.starts_with("delete failed"))
        || record
            .schema_steps
            .iter()
            .any(|s| s.outcome.starts_with("undo failed"))
        || record
            .refactor_steps
            .iter()
            .any(|r| r.outcome.starts_with("failed"))
}

/// Finishes the attempt of an intent another run left in the history database:
/// drops its refactoring tags when it `committed`; otherwise walks back its
/// refactorings, deletes its batches and undoes its schema steps, newest first.
/// Then removes the intent. Returns what it did, or why it stopped (the intent
/// then stays, for the next run).
pub(super) async fn settle_intent(
    db: &GraphDb,
    intent: &Intent,
    committed: bool,
    chunk: usize,
) -> Result<String, String> {
    let done = if committed {
        for statement in &intent.refactor_finalize {
            run_until_done(db, statement).await?;
        }
        "its refactoring tags removed".to_string()
    } else {
        for statement in intent.refactor_undo.iter().rev() {
            run_until_done(db, statement).await?;
        }
        let deleted = delete_attempt_batches(db, &intent.draft.key, chunk)
            .await
            .map_err(|e| format!("deleting its batches: {e}"))?;
        for statement in intent.schema_undo.iter().rev() {
            db.run_schema(statement)
                .await
                .map_err(|e| format!("`{statement}`: {e}"))?;
        }
        format!(
            "compensated: {deleted} nodes and relationships of its batches deleted, {} refactoring(s) walked back, {} schema change(s) undone",
            intent.refactor_undo.len(),
            intent.schema_undo.len()
        )
    };
    db.drop_intent(&intent.draft.key)
        .await
        .map_err(|e| format!("removing its intent: {e}"))?;
    Ok(done)
}
