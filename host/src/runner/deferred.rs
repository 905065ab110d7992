//! Schema steps deferred until a migration's data committed: run by the runner
//! right after the commit, or by a later runner from the attempt's intent when
//! the first died in between. History is written only once they are done.

use std::time::Instant;

use crate::graph::GraphDb;
use crate::graph::constraint_check::DataCheck;
use crate::graph::intent::{Intent, IntentSteps};
use crate::journal::{GuestRecord, JournalEntry, StatementOutcome};

/// Runs the deferred schema steps of `record` in order, after the data of
/// attempt `key` committed, marking each done in the attempt's intent. Each
/// step's journal entry and outcome are added to the record. Returns the step
/// that failed and why.
pub(super) async fn run_deferred(
    db: &GraphDb,
    key: &str,
    record: &mut GuestRecord,
) -> Result<(), String> {
    for deferred in record.deferred.clone() {
        let step = &record.schema_steps[deferred.step];
        let statement = step.statement.clone();
        let started = Instant::now();
        let mut entry =
            JournalEntry::new(record.journal.len() as u32 + 1, &statement, String::new());
        let outcome = db.run_schema(&statement).await;
        let step = &mut record.schema_steps[deferred.step];
        match outcome {
            Ok(counters) => {
                let added = counters.indexes_added + counters.constraints_added > 0;
                let conditional =
                    crate::policy::schema_command(&statement).is_some_and(|d| d.conditional);
                // An `IF NOT EXISTS` that found its element there must not
                // drop it when the migration is reverted.
                if conditional && !added {
                    step.undo = None;
                    step.outcome = "unchanged".into();
                } else {
                    step.outcome = "applied".into();
                }
                entry.counters = format!(
                    "{} (deferred: ran after the data committed)",
                    crate::graph::describe_counters(&counters)
                );
                record
                    .journal
                    .push(entry.finish(started, StatementOutcome::Ok, None, None, 0));
            }
            Err(e) => {
                step.outcome = format!("failed after the data committed: {e}");
                record
                    .journal
                    .push(entry.failed(started, &e.code, &e.message));
                return Err(describe(
                    &statement,
                    deferred.location.as_deref(),
                    &e.to_string(),
                ));
            }
        }
        if let Err(e) = db
            .add_intent_step(key, IntentSteps::SchemaDeferredDone, &statement)
            .await
        {
            // Harmless but for a repeat: a later runner finds the element there.
            tracing::warn!(error = %e, "recording a deferred schema step as done failed");
        }
    }
    Ok(())
}

/// Finishes the deferred schema steps an attempt whose data committed left
/// undone (its runner died after the commit): each not in the target yet is
/// checked against the data, so that a violation names its values, and run.
/// Returns how many ran.
pub(super) async fn finish_deferred(db: &GraphDb, intent: &Intent) -> Result<usize, String> {
    let mut ran = 0;
    for statement in intent.deferred_pending() {
        let command = crate::policy::schema_command(statement);
        if let Some(name) = command.as_ref().and_then(|d| d.name.as_deref())
            && present(db, name).await?
        {
            mark_done(db, &intent.draft.key, statement).await;
            continue;
        }
        if let Ok(Some(check)) = DataCheck::of(statement) {
            let mut txn = db.begin().await.map_err(|e| e.to_string())?;
            let violations = check.violations(&mut txn).await;
            let _ = txn.rollback().await;
            match violations {
                Ok(Some(violations)) => {
                    return Err(describe(
                        statement,
                        None,
                        &format!("the committed data breaks it: {violations}"),
                    ));
                }
                Ok(None) => {}
                Err(e) => return Err(describe(statement, None, &e.to_string())),
            }
        }
        db.run_schema(statement)
            .await
            .map_err(|e| describe(statement, None, &e.to_string()))?;
        mark_done(db, &intent.draft.key, statement).await;
        ran += 1;
    }
    Ok(ran)
}

async fn present(db: &GraphDb, name: &str) -> Result<bool, String> {
    let (constraints, indexes) = db.list_schema().await.map_err(|e| e.to_string())?;
    Ok(constraints.iter().any(|c| c.name.as_deref() == Some(name))
        || indexes.iter().any(|i| i.name.as_deref() == Some(name)))
}

async fn mark_done(db: &GraphDb, key: &str, statement: &str) {
    if let Err(e) = db
        .add_intent_step(key, IntentSteps::SchemaDeferredDone, statement)
        .await
    {
        tracing::warn!(error = %e, "recording a deferred schema step as done failed");
    }
}

fn describe(statement: &str, location: Option<&str>, why: &str) -> String {
    format!(
        "the deferred schema step `{}`{} failed: {why}",
        crate::journal::cut(statement, 512),
        location.map(|l| format!(" ({l})")).unwrap_or_default()
    )
}
