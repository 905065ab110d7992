//! Attempts in flight, kept in the history database: what any runner needs to
//! finish or undo an attempt whose work partly committed on its own (batch
//! chunks, refactoring chunks, schema steps), written before that work.
//!
//! An intent names the attempt (its key, which every batch it writes carries as
//! a prefix), the migration, and the statements that undo its refactorings and
//! schema steps or drop its refactoring tags. The runner that made it removes
//! it once the attempt committed and finished, or failed and was compensated; a
//! later runner that finds one under the lock finishes the work: it finalizes
//! an attempt whose commit record exists and compensates any other.

use neo4rs::{BoltList, BoltString, BoltType};

use super::{GraphDb, GraphError};
use crate::error::Error;

/// The label of intent nodes.
pub const INTENT_LABEL: &str = "__GraphmigAttempt";

/// What is recorded before an attempt's first work that commits on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentDraft {
    /// The attempt key (prefix of every batch id it writes).
    pub key: String,
    /// The target (`uri/database`), so that one history database can serve several.
    pub target: String,
    /// The migration's key (`V2`).
    pub migration: String,
    /// Its description.
    pub description: String,
    /// The artifact's checksum, as hex.
    pub checksum: String,
    /// `up` or `down`.
    pub action: String,
    /// Who runs it (`user@host`).
    pub runner: String,
    /// When it started (RFC 3339).
    pub started_at: String,
}

/// A list of statements an intent keeps, in the order they were added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntentSteps {
    /// Undo statements of refactorings (run newest first, each until it changes
    /// less than a chunk).
    RefactorUndo,
    /// Statements that drop refactoring tags once the attempt committed.
    RefactorFinalize,
    /// Undo statements of schema steps that ran (newest first).
    SchemaUndo,
    /// Schema steps held back until the data commits, in order: a runner that
    /// finds the data committed runs those not yet done.
    SchemaDeferred,
    /// The deferred schema steps done so far (the first ones, in order).
    SchemaDeferredDone,
}

impl IntentSteps {
    fn property(self) -> &'static str {
        match self {
            IntentSteps::RefactorUndo => "refactor_undo",
            IntentSteps::RefactorFinalize => "refactor_finalize",
            IntentSteps::SchemaUndo => "schema_undo",
            IntentSteps::SchemaDeferred => "schema_deferred",
            IntentSteps::SchemaDeferredDone => "schema_deferred_done",
        }
    }
}

/// An intent as found in the history database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    /// What was recorded first.
    pub draft: IntentDraft,
    /// Refactoring undo statements, oldest first.
    pub refactor_undo: Vec<String>,
    /// Refactoring finalize statements, oldest first.
    pub refactor_finalize: Vec<String>,
    /// Schema undo statements, oldest first.
    pub schema_undo: Vec<String>,
    /// Deferred schema steps, in order.
    pub schema_deferred: Vec<String>,
    /// Deferred schema steps done, in order.
    pub schema_deferred_done: Vec<String>,
}

impl Intent {
    /// The deferred schema steps still to run once the data committed.
    pub fn deferred_pending(&self) -> &[String] {
        let done = self
            .schema_deferred_done
            .len()
            .min(self.schema_deferred.len());
        &self.schema_deferred[done..]
    }
}

fn s(text: &str) -> BoltType {
    BoltType::String(BoltString::new(text))
}

impl GraphDb {
    /// Records `draft` (once; a second call changes nothing), as the owner, in
    /// the history database, and commits.
    pub async fn record_intent(&self, draft: &IntentDraft) -> Result<(), GraphError> {
        let mut txn = self.begin_history().await.map_err(GraphError::database)?;
        txn.run(
            &format!(
                "MERGE (a:{INTENT_LABEL} {{key: $key}}) ON CREATE SET a.target = $target, \
                 a.migration = $migration, a.description = $description, a.checksum = $checksum, \
                 a.action = $action, a.runner = $runner, a.started_at = $started_at, \
                 a.refactor_undo = [], a.refactor_finalize = [], a.schema_undo = [], \
                 a.schema_deferred = [], a.schema_deferred_done = []"
            ),
            vec![
                ("key".into(), s(&draft.key)),
                ("target".into(), s(&draft.target)),
                ("migration".into(), s(&draft.migration)),
                ("description".into(), s(&draft.description)),
                ("checksum".into(), s(&draft.checksum)),
                ("action".into(), s(&draft.action)),
                ("runner".into(), s(&draft.runner)),
                ("started_at".into(), s(&draft.started_at)),
            ],
        )
        .await?;
        txn.commit().await
    }

    /// Adds `statement` to the `steps` list of the intent `key`, and commits.
    pub async fn add_intent_step(
        &self,
        key: &str,
        steps: IntentSteps,
        statement: &str,
    ) -> Result<(), GraphError> {
        let property = steps.property();
        let mut txn = self.begin_history().await.map_err(GraphError::database)?;
        let rows = txn
            .run(
                &format!(
                    "MATCH (a:{INTENT_LABEL} {{key: $key}}) SET a.{property} = coalesce(a.{property}, []) + [$statement] RETURN a.key AS key"
                ),
                vec![("key".into(), s(key)), ("statement".into(), s(statement))],
            )
            .await?;
        if rows.is_empty() {
            let _ = txn.rollback().await;
            return Err(GraphError::database(self.database_error(format!(
                "the intent of attempt {key} is missing from the history database"
            ))));
        }
        txn.commit().await
    }

    /// Removes the intent `key` (absence is not an error).
    pub async fn drop_intent(&self, key: &str) -> Result<(), GraphError> {
        let mut txn = self.begin_history().await.map_err(GraphError::database)?;
        txn.run(
            &format!("MATCH (a:{INTENT_LABEL} {{key: $key}}) DELETE a"),
            vec![("key".into(), s(key))],
        )
        .await?;
        txn.commit().await
    }

    /// Every intent recorded for `target`, oldest first.
    pub async fn read_intents(&self, target: &str) -> Result<Vec<Intent>, Error> {
        let mut txn = self.begin_history().await?;
        let rows = txn
            .run(
                &format!(
                    "MATCH (a:{INTENT_LABEL}) WHERE a.target = $target RETURN a.key AS key, \
                     a.migration AS migration, a.description AS description, a.checksum AS checksum, \
                     a.action AS action, a.runner AS runner, a.started_at AS started_at, \
                     a.refactor_undo AS refactor_undo, a.refactor_finalize AS refactor_finalize, \
                     a.schema_undo AS schema_undo, a.schema_deferred AS schema_deferred, \
                     a.schema_deferred_done AS schema_deferred_done ORDER BY a.started_at"
                ),
                vec![("target".into(), s(target))],
            )
            .await
            .map_err(|e| self.database_error(format!("reading attempts in flight: {e}")))?;
        let _ = txn.rollback().await;
        let text = |row: &[(String, BoltType)], name: &str| {
            row.iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| match v {
                    BoltType::String(s) => Some(s.value.clone()),
                    _ => None,
                })
                .unwrap_or_default()
        };
        let list = |row: &[(String, BoltType)], name: &str| {
            row.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| match v {
                    BoltType::List(BoltList { value }) => value
                        .iter()
                        .filter_map(|item| match item {
                            BoltType::String(s) => Some(s.value.clone()),
                            _ => None,
                        })
                        .collect(),
                    _ => Vec::new(),
                })
                .unwrap_or_default()
        };
        Ok(rows
            .iter()
            .map(|row| Intent {
                draft: IntentDraft {
                    key: text(row, "key"),
                    target: target.to_string(),
                    migration: text(row, "migration"),
                    description: text(row, "description"),
                    checksum: text(row, "checksum"),
                    action: text(row, "action"),
                    runner: text(row, "runner"),
                    started_at: text(row, "started_at"),
                },
                refactor_undo: list(row, "refactor_undo"),
                refactor_finalize: list(row, "refactor_finalize"),
                schema_undo: list(row, "schema_undo"),
                schema_deferred: list(row, "schema_deferred"),
                schema_deferred_done: list(row, "schema_deferred_done"),
            })
            .collect())
    }
}
