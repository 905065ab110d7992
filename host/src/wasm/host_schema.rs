//! The schema operations of the `context` interface: typed constraints and
//! indexes rendered for the target's dialect, run outside the data transaction,
//! and remembered so that a failed migration can be undone.

use std::collections::BTreeSet;
use std::time::Instant;

use super::bindings::graphmig::migration::types as wit;
use super::host_context::GuestState;
use crate::error::{FailedStatement, FailureCause};
use crate::graph::GraphDb;
use crate::graph::constraint_check::DataCheck;
use crate::graph::intent::IntentSteps;
use crate::journal::{DeferredStep, JournalEntry, SchemaStep, StatementOutcome};
use crate::policy::Class;
use crate::schema::{
    Constraint, ConstraintKind, Entity, Index, IndexKind, SchemaError, render_drop_constraint,
    render_drop_index,
};

fn entity_from(e: wit::Entity) -> Entity {
    match e {
        wit::Entity::Node => Entity::Node,
        wit::Entity::Relationship => Entity::Relationship,
    }
}

fn entity_to(e: Entity) -> wit::Entity {
    match e {
        Entity::Node => wit::Entity::Node,
        Entity::Relationship => wit::Entity::Relationship,
    }
}

pub(super) fn constraint_from(c: wit::Constraint) -> Constraint {
    Constraint {
        name: c.name,
        entity: entity_from(c.entity),
        label: c.label,
        properties: c.properties,
        kind: match c.kind {
            wit::ConstraintKind::Unique => ConstraintKind::Unique,
            wit::ConstraintKind::Key => ConstraintKind::Key,
            wit::ConstraintKind::Exists => ConstraintKind::Exists,
            wit::ConstraintKind::PropertyType(t) => ConstraintKind::PropertyType(t),
        },
    }
}

fn constraint_to(c: &Constraint) -> wit::Constraint {
    wit::Constraint {
        name: c.name.clone(),
        entity: entity_to(c.entity),
        label: c.label.clone(),
        properties: c.properties.clone(),
        kind: match &c.kind {
            ConstraintKind::Unique => wit::ConstraintKind::Unique,
            ConstraintKind::Key => wit::ConstraintKind::Key,
            ConstraintKind::Exists => wit::ConstraintKind::Exists,
            ConstraintKind::PropertyType(t) => wit::ConstraintKind::PropertyType(t.clone()),
        },
    }
}

pub(super) fn index_from(i: wit::Index) -> Index {
    Index {
        name: i.name,
        entity: entity_from(i.entity),
        labels: i.labels,
        properties: i.properties,
        kind: match i.kind {
            wit::IndexKind::Range => IndexKind::Range,
            wit::IndexKind::Text => IndexKind::Text,
            wit::IndexKind::Point => IndexKind::Point,
            wit::IndexKind::Fulltext => IndexKind::Fulltext,
            wit::IndexKind::Vector => IndexKind::Vector,
        },
        vector_dimensions: i.vector_dimensions,
        vector_similarity: i.vector_similarity,
    }
}

fn index_to(i: &Index) -> wit::Index {
    wit::Index {
        name: i.name.clone(),
        entity: entity_to(i.entity),
        labels: i.labels.clone(),
        properties: i.properties.clone(),
        kind: match i.kind {
            IndexKind::Range => wit::IndexKind::Range,
            IndexKind::Text => wit::IndexKind::Text,
            IndexKind::Point => wit::IndexKind::Point,
            IndexKind::Fulltext => wit::IndexKind::Fulltext,
            IndexKind::Vector => wit::IndexKind::Vector,
        },
        vector_dimensions: i.vector_dimensions,
        vector_similarity: i.vector_similarity.clone(),
    }
}

fn to_wit(e: SchemaError) -> wit::SchemaError {
    match e {
        SchemaError::Unsupported { .. } => wit::SchemaError::Unsupported(e.to_string()),
        SchemaError::Invalid(m) => wit::SchemaError::Invalid(m),
    }
}

fn graph_error(code: &str, kind: wit::GraphErrorKind, message: String) -> wit::SchemaError {
    wit::SchemaError::Graph(wit::GraphError {
        kind,
        code: code.into(),
        message,
    })
}

/// One element of the target's schema, whichever it is.
enum Element {
    Constraint(Constraint),
    Index(Index),
}

/// Drops the constraints and indexes that are live now and were not in
/// `before`: what a failed statement left behind. Says what it dropped (or
/// could not), to add to the statement's error.
async fn drop_residue(db: &GraphDb, before: &BTreeSet<(bool, String)>) -> String {
    let after = match db.schema_names().await {
        Ok(after) => after,
        Err(e) => {
            return format!(
                " (the schema could not be listed afterwards: {})",
                e.message
            );
        }
    };
    let mut notes = Vec::new();
    for (constraint, name) in after.difference(before) {
        let drop = match constraint {
            true => render_drop_constraint(name),
            false => render_drop_index(name),
        };
        let dropped = match drop {
            Ok(drop) => db
                .run_schema(&drop)
                .await
                .map(|_| ())
                .map_err(|e| e.message),
            Err(e) => Err(e.to_string()),
        };
        notes.push(match dropped {
            Ok(()) => format!("dropped `{name}`, which the server left behind"),
            Err(e) => format!("the server left `{name}` behind and dropping it failed: {e}"),
        });
    }
    match notes.is_empty() {
        true => String::new(),
        false => format!(" ({})", notes.join("; ")),
    }
}

impl GuestState {
    /// Checks policy and limits, then runs (or in a dry run, records) `statement`
    /// with `undo` as its inverse, unless `exists` says there is nothing to do.
    async fn schema_step(
        &mut self,
        statement: String,
        undo: Option<String>,
        unchanged: bool,
    ) -> wasmtime::Result<Result<(), wit::SchemaError>> {
        self.schema_step_counted(statement, undo, unchanged, false)
            .await
    }

    /// As `schema_step`; with `undo_if_added`, `undo` is kept only when the
    /// server's counters say the statement added an element (a `CREATE ... IF
    /// NOT EXISTS` that found one already there must not drop it on undo), so
    /// no listing of the schema is needed first.
    async fn schema_step_counted(
        &mut self,
        statement: String,
        undo: Option<String>,
        unchanged: bool,
        undo_if_added: bool,
    ) -> wasmtime::Result<Result<(), wit::SchemaError>> {
        let started = Instant::now();
        let mut entry = JournalEntry::new(self.next_statement()?, &statement, String::new());
        if !self
            .settings()
            .policy
            .allowed_classes()
            .contains(&Class::Schema)
        {
            let message =
                "denied by the `schema` rule: this migration may not run schema statements"
                    .to_string();
            self.push_journal(entry.finish(
                started,
                StatementOutcome::Denied,
                Some("graphmig.Policy.Schema"),
                Some(&message),
                0,
            ));
            return Ok(Err(graph_error(
                "graphmig.Policy.Schema",
                wit::GraphErrorKind::Forbidden,
                message,
            )));
        }
        if unchanged {
            self.push_journal(entry.finish(
                started,
                StatementOutcome::Skipped,
                Some("graphmig.Unchanged"),
                Some("already in the wanted state"),
                0,
            ));
            self.push_schema_step(SchemaStep {
                statement,
                undo: None,
                outcome: "unchanged".into(),
            });
            return Ok(Ok(()));
        }
        // After the migration's writes, a schema step waits for them to
        // commit (it would not see them), and every step after it keeps its
        // place behind it.
        let command = crate::policy::schema_command(&statement);
        let creates = command.as_ref().is_none_or(|d| d.create);
        // Work committed on its own (batches, backfill chunks, refactorings)
        // counts too: the check before the commit sees it.
        let wrote = !self.per_statement
            && (self.wrote_data
                || self.progress_markers
                || !self.batches.is_empty()
                || !self.refactor_steps.is_empty());
        if !self.deferred.is_empty() || (wrote && creates) {
            return Ok(self.defer_schema(statement, undo, entry, started).await);
        }
        if self.is_dry_run() {
            self.push_journal(entry.finish(
                started,
                StatementOutcome::Skipped,
                Some("graphmig.DryRun"),
                Some("schema statement recorded, not executed"),
                0,
            ));
            self.push_schema_step(SchemaStep {
                statement,
                undo,
                outcome: "recorded".into(),
            });
            return Ok(Ok(()));
        }
        let Some(db) = self.db() else {
            return Ok(Err(graph_error(
                "graphmig.NoTransaction",
                wit::GraphErrorKind::Forbidden,
                "schema operations are not available while the host reads metadata".into(),
            )));
        };
        // Per-statement mode: the data this constraint covers has committed
        // already, so it is checked first, and what breaks it is named.
        let (deadline, allowed) = (self.deadline(), self.settings().limits.deadline);
        if self.per_statement
            && let Ok(Some(check)) = DataCheck::of(&statement)
            && let Some(txn) = self.txn.as_mut()
        {
            let found = match tokio::time::timeout_at(deadline.into(), check.violations(txn)).await
            {
                Err(_elapsed) => {
                    return Err(super::host_context::deadline_trap(allowed));
                }
                Ok(found) => found,
            };
            let found = match found {
                Ok(Some(violations)) => Some((
                    "graphmig.ConstraintViolated",
                    wit::GraphErrorKind::ConstraintViolation,
                    format!("the data breaks the constraint, so it was not created: {violations}"),
                )),
                Ok(None) => None,
                Err(e) => Some((
                    "graphmig.Database",
                    wit::GraphErrorKind::Other,
                    format!("checking the data for this constraint: {}", e.message),
                )),
            };
            if let Some((code, kind, message)) = found {
                self.push_journal(entry.failed(started, code, &message));
                return Ok(Err(graph_error(code, kind, message)));
            }
        }
        // How to undo the step goes to the history database, for any runner,
        // before the step runs: when the host knows it will create something.
        // A statement that may find its element there already (a raw `IF NOT
        // EXISTS`) is recorded after it ran, once the server said it added one:
        // undoing it otherwise would drop what was there before.
        if let (Some(undo), false) = (&undo, undo_if_added)
            && let Err(e) = self
                .record_intent(Some((IntentSteps::SchemaUndo, undo)))
                .await
        {
            self.push_journal(entry.failed(started, &e.code, &e.message));
            return Ok(Err(wit::SchemaError::Graph(
                super::host_context::to_wit_error(&e),
            )));
        }
        // ArcadeDB leaves part of a constraint behind when creating it fails
        // (a unique one on duplicate data keeps a property type): what is
        // there afterwards that was not before is dropped again.
        let before = match command {
            Some(d) if d.create && d.constraint => db.schema_names().await.ok(),
            _ => None,
        };
        match db.run_schema(&statement).await {
            Ok(counters) => {
                entry.counters = crate::graph::describe_counters(&counters);
                self.push_journal(entry.finish(started, StatementOutcome::Ok, None, None, 0));
                let added = counters.indexes_added + counters.constraints_added > 0;
                let (undo, outcome) = match undo_if_added && !added {
                    true => (None, "unchanged"),
                    false => (undo, "applied"),
                };
                // If that fails, this runner undoes it with the rest.
                let recorded = match (&undo, undo_if_added) {
                    (Some(undo), true) => {
                        self.record_intent(Some((IntentSteps::SchemaUndo, undo)))
                            .await
                    }
                    _ => Ok(()),
                };
                self.push_schema_step(SchemaStep {
                    statement: statement.clone(),
                    undo,
                    outcome: outcome.into(),
                });
                if let Err(e) = recorded {
                    self.doom(self.statements(), &statement, &e.code, &e.message);
                    return Ok(Err(wit::SchemaError::Graph(
                        super::host_context::to_wit_error(&e),
                    )));
                }
                Ok(Ok(()))
            }
            Err(mut e) => {
                if let Some(before) = before {
                    e.message.push_str(&drop_residue(&db, &before).await);
                }
                self.push_journal(entry.failed(started, &e.code, &e.message));
                Ok(Err(wit::SchemaError::Graph(
                    super::host_context::to_wit_error(&e),
                )))
            }
        }
    }

    /// Holds a schema step back until the migration's data commits. A
    /// constraint must be one graphmig can check the data for: the check runs
    /// in the open transaction before the commit ([`Self::check_deferred`]), so
    /// that data breaking it is rolled back rather than committed without it.
    async fn defer_schema(
        &mut self,
        statement: String,
        undo: Option<String>,
        mut entry: JournalEntry,
        started: Instant,
    ) -> Result<(), wit::SchemaError> {
        if let Err(why) = DataCheck::of(&statement) {
            let message = format!(
                "{why}, and it comes after this migration's writes, so it would be created \
                 after they commit, unchecked; create it before the writes, or in a migration \
                 of its own"
            );
            self.push_journal(entry.failed(started, "graphmig.DeferredSchema", &message));
            self.doom(entry.seq, &statement, "graphmig.DeferredSchema", &message);
            return Err(graph_error(
                "graphmig.DeferredSchema",
                wit::GraphErrorKind::Forbidden,
                message,
            ));
        }
        if let Err(e) = self
            .record_intent(Some((IntentSteps::SchemaDeferred, &statement)))
            .await
        {
            self.push_journal(entry.failed(started, &e.code, &e.message));
            return Err(wit::SchemaError::Graph(super::host_context::to_wit_error(
                &e,
            )));
        }
        entry.counters = "deferred: runs once the migration's data has committed".into();
        let dry_run = self.is_dry_run();
        self.push_journal(entry.finish(
            started,
            StatementOutcome::Skipped,
            Some(if dry_run {
                "graphmig.DryRun"
            } else {
                "graphmig.Deferred"
            }),
            Some(if dry_run {
                "schema statement recorded, not executed (after the data: checked against it)"
            } else {
                "after the migration's writes: runs once they have committed"
            }),
            0,
        ));
        let index = entry.seq;
        self.push_schema_step(SchemaStep {
            statement,
            undo,
            outcome: if dry_run { "recorded" } else { "deferred" }.into(),
        });
        self.deferred.push(DeferredStep {
            step: self.schema_steps.len() - 1,
            index,
            location: self.location.clone(),
        });
        Ok(())
    }

    /// Checks, in the migration's open transaction, the data against every
    /// deferred constraint: data that breaks one fails the migration (its
    /// transaction rolls back) with the offending values, before anything of
    /// it commits.
    pub(super) async fn check_deferred(&mut self) -> Result<(), FailureCause> {
        if self.deferred.is_empty() {
            return Ok(());
        }
        let Some(mut txn) = self.take_txn() else {
            return Ok(());
        };
        let deadline = self.deadline();
        let allowed = self.settings().limits.deadline;
        let mut outcome = Ok(());
        for deferred in self.deferred.clone() {
            let statement = self.schema_steps[deferred.step].statement.clone();
            let Ok(Some(check)) = DataCheck::of(&statement) else {
                continue;
            };
            let failed = |code: &str, message: String| {
                FailureCause::Statement(FailedStatement {
                    index: deferred.index,
                    location: deferred.location.clone(),
                    query: statement.clone(),
                    code: code.into(),
                    message,
                })
            };
            match tokio::time::timeout_at(deadline.into(), check.violations(&mut txn)).await {
                Err(_elapsed) => {
                    txn.abandon();
                    outcome = Err(FailureCause::LimitExceeded {
                        limit: crate::error::Limit::Deadline,
                        detail: format!(
                            "checking the data for a deferred constraint, after {} s",
                            allowed.as_secs_f64()
                        ),
                    });
                }
                Ok(Err(e)) => {
                    outcome = Err(failed(
                        &e.code,
                        format!("checking the data for this constraint: {}", e.message),
                    ));
                }
                Ok(Ok(Some(violations))) => {
                    self.schema_steps[deferred.step].outcome = "not run: the data breaks it".into();
                    // Backfill chunks committed on their own and have no undo.
                    let backfilled = match self.progress_markers {
                        true => {
                            "; the chunks its backfills committed stay, with their \
                             checkpoints (fix the data or the write, then run again)"
                        }
                        false => "",
                    };
                    outcome = Err(failed(
                        "graphmig.ConstraintViolated",
                        format!(
                            "the data this migration leaves breaks the constraint, so it was \
                             not created and the migration's writes were rolled back: \
                             {violations}{backfilled}"
                        ),
                    ));
                }
                Ok(Ok(None)) => continue,
            }
            break;
        }
        self.txn = Some(txn);
        outcome
    }

    async fn find(
        db: Option<std::sync::Arc<crate::graph::GraphDb>>,
        name: &str,
    ) -> Result<Option<Element>, wit::SchemaError> {
        let Some(db) = db else { return Ok(None) };
        let (constraints, indexes) = db
            .list_schema()
            .await
            .map_err(|e| graph_error(&e.code, wit::GraphErrorKind::Other, e.message))?;
        if let Some(c) = constraints
            .into_iter()
            .find(|c| c.name.as_deref() == Some(name))
        {
            return Ok(Some(Element::Constraint(c)));
        }
        Ok(indexes
            .into_iter()
            .find(|i| i.name.as_deref() == Some(name))
            .map(Element::Index))
    }

    pub(super) async fn create_constraint_impl(
        &mut self,
        constraint: wit::Constraint,
    ) -> wasmtime::Result<Result<String, wit::SchemaError>> {
        let constraint = constraint_from(constraint);
        let name = constraint.effective_name();
        let statement = match constraint.render_create(self.dialect()) {
            Ok(s) => s,
            Err(e) => return Ok(Err(to_wit(e))),
        };
        let existing = match Self::find(self.db(), &name).await {
            Ok(existing) => existing,
            Err(e) => return Ok(Err(e)),
        };
        let undo = render_drop_constraint(&name).ok();
        Ok(self
            .schema_step(statement, undo, existing.is_some())
            .await?
            .map(|()| name))
    }

    pub(super) async fn create_index_impl(
        &mut self,
        index: wit::Index,
    ) -> wasmtime::Result<Result<String, wit::SchemaError>> {
        let index = index_from(index);
        let name = index.effective_name();
        let statement = match index.render_create(self.dialect()) {
            Ok(s) => s,
            Err(e) => return Ok(Err(to_wit(e))),
        };
        let existing = match Self::find(self.db(), &name).await {
            Ok(existing) => existing,
            Err(e) => return Ok(Err(e)),
        };
        let undo = render_drop_index(&name).ok();
        Ok(self
            .schema_step(statement, undo, existing.is_some())
            .await?
            .map(|()| name))
    }

    pub(super) async fn drop_impl(
        &mut self,
        name: String,
        constraint: bool,
    ) -> wasmtime::Result<Result<(), wit::SchemaError>> {
        let statement = match if constraint {
            render_drop_constraint(&name)
        } else {
            render_drop_index(&name)
        } {
            Ok(s) => s,
            Err(e) => return Ok(Err(to_wit(e))),
        };
        let existing = match Self::find(self.db(), &name).await {
            Ok(existing) => existing,
            Err(e) => return Ok(Err(e)),
        };
        // Undoing a drop recreates the element from its live definition.
        let undo = match &existing {
            Some(Element::Constraint(c)) if constraint => c.render_create(self.dialect()).ok(),
            Some(Element::Index(i)) if !constraint => i.render_create(self.dialect()).ok(),
            _ => None,
        };
        let absent = match existing {
            Some(Element::Constraint(_)) => !constraint,
            Some(Element::Index(_)) => constraint,
            None => true,
        };
        self.schema_step(statement, undo, absent).await
    }

    /// Runs a schema statement written by hand (a `.cypher` migration) as a
    /// schema step: outside the data transaction, with the inverse worked out
    /// from the element's name so that a failed migration can undo it.
    pub(super) async fn raw_schema_impl(
        &mut self,
        statement: String,
    ) -> wasmtime::Result<Result<(), wit::SchemaError>> {
        if let Err(denial) = self.settings().policy.check(&statement) {
            let started = Instant::now();
            let mut entry = JournalEntry::new(self.next_statement()?, &statement, String::new());
            let code = denial.code();
            let message = denial.to_string();
            self.push_journal(entry.finish(
                started,
                StatementOutcome::Denied,
                Some(&code),
                Some(&message),
                0,
            ));
            return Ok(Err(graph_error(
                &code,
                wit::GraphErrorKind::Forbidden,
                message,
            )));
        }
        let Some(raw) = crate::policy::schema_command(&statement) else {
            return self.schema_step(statement, None, false).await;
        };
        let name = match (raw.create, &raw.name) {
            // An unnamed element cannot be found again to undo it.
            (_, None) => return self.schema_step(statement, None, false).await,
            (true, Some(name)) => {
                let undo = if raw.constraint {
                    render_drop_constraint(name).ok()
                } else {
                    render_drop_index(name).ok()
                };
                return self
                    .schema_step_counted(statement, undo, false, raw.conditional)
                    .await;
            }
            (false, Some(name)) => name.clone(),
        };
        // Undoing a drop recreates the element from its live definition.
        let existing = match Self::find(self.db(), &name).await {
            Ok(existing) => existing,
            Err(e) => return Ok(Err(e)),
        };
        let (undo, unchanged) = match &existing {
            Some(Element::Constraint(c)) if raw.constraint => {
                (c.render_create(self.dialect()).ok(), false)
            }
            Some(Element::Index(i)) if !raw.constraint => {
                (i.render_create(self.dialect()).ok(), false)
            }
            _ => (None, raw.conditional),
        };
        self.schema_step(statement, undo, unchanged).await
    }

    pub(super) async fn schema_impl(
        &mut self,
    ) -> wasmtime::Result<Result<Vec<wit::SchemaElement>, wit::SchemaError>> {
        let Some(db) = self.db() else {
            return Ok(Ok(Vec::new()));
        };
        Ok(match db.list_schema().await {
            Ok((constraints, indexes)) => Ok(constraints
                .iter()
                .map(|c| wit::SchemaElement::Constraint(constraint_to(c)))
                .chain(
                    indexes
                        .iter()
                        .map(|i| wit::SchemaElement::Index(index_to(i))),
                )
                .collect()),
            Err(e) => Err(graph_error(&e.code, wit::GraphErrorKind::Other, e.message)),
        })
    }
}
