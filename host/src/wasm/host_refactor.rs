//! Refactorings of the `context` interface: renames and property changes run in
//! chunks that commit on their own, so big graphs need no giant transaction. What
//! each chunk changes is tagged, so a failed migration can walk it back exactly,
//! and a successful one drops the tags.

use std::time::Instant;

use neo4rs::BoltType;

use super::bindings::graphmig::migration::types as wit;
use super::host_context::GuestState;
use super::values::value_to_bolt;
use crate::graph::GraphErrorKind;
use crate::graph::intent::IntentSteps;
use crate::journal::{JournalEntry, RefactorStep, StatementOutcome};
use crate::policy::Class;
use crate::schema::quote;

fn invalid(message: String) -> wit::GraphError {
    wit::GraphError {
        kind: wit::GraphErrorKind::Other,
        code: "graphmig.InvalidRefactoring".into(),
        message,
    }
}

fn check(names: &[&str]) -> Result<(), wit::GraphError> {
    for name in names {
        if name.is_empty() || name.to_ascii_lowercase().starts_with("__graphmig") {
            return Err(invalid(format!("`{name}` cannot be used here")));
        }
    }
    Ok(())
}

fn pattern(entity: wit::Entity, label: &str) -> String {
    match entity {
        wit::Entity::Node => format!("MATCH (x:{})", quote(label)),
        wit::Entity::Relationship => format!("MATCH ()-[x:{}]->()", quote(label)),
    }
}

/// A refactoring as statements: `apply` changes one chunk and tags what it
/// changed with `tag`; `undo` and `finalize` walk the tagged elements back, or just
/// drop the tags. Each returns `count(*) AS n` and is repeated until a run changes
/// fewer than a chunk.
struct Plan {
    apply: String,
    undo: String,
    finalize: String,
    params: Vec<(String, BoltType)>,
}

fn plain(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl GuestState {
    /// Runs a plan: chunk by chunk, each committing on its own (in a dry run,
    /// inside the rolled-back data transaction), journaled; remembers how to undo
    /// and finalize it. Returns how many elements changed.
    async fn refactor(&mut self, plan: Plan) -> wasmtime::Result<Result<u64, wit::GraphError>> {
        if !self
            .settings()
            .policy
            .allowed_classes()
            .contains(&Class::Write)
        {
            return Ok(Err(wit::GraphError {
                kind: wit::GraphErrorKind::Forbidden,
                code: "graphmig.Policy.Write".into(),
                message: "denied by the `write` rule: this migration may not write".into(),
            }));
        }
        let chunk = self.settings().batch_chunk.max(1) as u64;
        // Its chunks commit on their own: how to walk them back (and to drop
        // their tags) is in the history database first, for any runner.
        for (steps, statement) in [
            (IntentSteps::RefactorUndo, &plan.undo),
            (IntentSteps::RefactorFinalize, &plan.finalize),
        ] {
            if let Err(e) = self.record_intent(Some((steps, statement))).await {
                return Ok(Err(super::host_context::to_wit_error(&e)));
            }
        }
        let mut total = 0u64;
        loop {
            self.check_deadline()?;
            let index = self.next_statement()?;
            let started = Instant::now();
            let mut entry = JournalEntry::new(index, &plan.apply, String::new());
            let result = if self.is_dry_run() {
                match self.txn_mut() {
                    Some(txn) => txn.run_counted(&plan.apply, plan.params.clone()).await,
                    None => return Ok(Err(invalid("no transaction".into()))),
                }
            } else {
                let Some(db) = self.db() else {
                    return Ok(Err(invalid(
                        "refactorings are not available while the host reads metadata".into(),
                    )));
                };
                async {
                    let mut txn = db.begin().await.map_err(|e| crate::graph::GraphError {
                        kind: GraphErrorKind::Other,
                        code: "graphmig.Database".into(),
                        message: e.to_string(),
                    })?;
                    let out = txn.run_counted(&plan.apply, plan.params.clone()).await?;
                    txn.commit().await?;
                    Ok(out)
                }
                .await
            };
            match result {
                Ok((rows, counters)) => {
                    let n = rows
                        .first()
                        .and_then(|row| crate::graph::history::int(row, "n"))
                        .unwrap_or(0)
                        .max(0) as u64;
                    entry.counters = crate::graph::describe_counters(&counters);
                    self.push_journal(entry.finish(
                        started,
                        StatementOutcome::Ok,
                        None,
                        None,
                        rows.len() as u64,
                    ));
                    total += n;
                    if n < chunk {
                        break;
                    }
                }
                Err(e) => {
                    self.push_journal(entry.failed(started, &e.code, &e.message));
                    // What the earlier chunks changed is undone with the rest.
                    self.push_refactor_step(RefactorStep {
                        undo: plan.undo,
                        finalize: plan.finalize,
                        outcome: "applied".into(),
                    });
                    return Ok(Err(super::host_context::to_wit_error(&e)));
                }
            }
        }
        if !self.is_dry_run() {
            self.push_refactor_step(RefactorStep {
                undo: plan.undo,
                finalize: plan.finalize,
                outcome: "applied".into(),
            });
        }
        Ok(Ok(total))
    }

    /// A tag property unique to this refactoring of this attempt: it carries the
    /// attempt key (random; nothing of the process or the host), so that every
    /// element the attempt changed names the attempt, as its batches do.
    fn tag(&self) -> String {
        let key = self
            .batch_prefix
            .clone()
            .unwrap_or_else(crate::journal::new_attempt_key);
        format!(
            "_graphmig_r{}_{}",
            &key[..key.len().min(32)],
            self.refactor_count() + 1
        )
    }

    fn chunk(&self) -> usize {
        self.settings().batch_chunk.max(1)
    }

    pub(super) async fn rename_label_impl(
        &mut self,
        from: String,
        to: String,
    ) -> wasmtime::Result<Result<u64, wit::GraphError>> {
        if let Err(e) = check(&[&from, &to]) {
            return Ok(Err(e));
        }
        if from == to {
            return Ok(Err(invalid("the new label is the old one".into())));
        }
        let (a, b, t, c) = (quote(&from), quote(&to), self.tag(), self.chunk());
        self.refactor(Plan {
            apply: format!("MATCH (x:{a}) WITH x LIMIT {c} SET x:{b}, x.{t} = true REMOVE x:{a} RETURN count(*) AS n"),
            undo: format!("MATCH (x:{b}) WHERE x.{t} = true WITH x LIMIT {c} SET x:{a} REMOVE x:{b}, x.{t} RETURN count(*) AS n"),
            finalize: format!("MATCH (x:{b}) WHERE x.{t} = true WITH x LIMIT {c} REMOVE x.{t} RETURN count(*) AS n"),
            params: Vec::new(),
        })
        .await
    }

    pub(super) async fn rename_type_impl(
        &mut self,
        from: String,
        to: String,
    ) -> wasmtime::Result<Result<u64, wit::GraphError>> {
        if let Err(e) = check(&[&from, &to]) {
            return Ok(Err(e));
        }
        if from == to {
            return Ok(Err(invalid("the new type is the old one".into())));
        }
        let (a, b, t, c) = (quote(&from), quote(&to), self.tag(), self.chunk());
        self.refactor(Plan {
            apply: format!("MATCH (p)-[r:{a}]->(q) WITH p, r, q LIMIT {c} CREATE (p)-[s:{b}]->(q) SET s = properties(r), s.{t} = true DELETE r RETURN count(*) AS n"),
            undo: format!("MATCH (p)-[s:{b}]->(q) WHERE s.{t} = true WITH p, s, q LIMIT {c} CREATE (p)-[r:{a}]->(q) SET r = properties(s) REMOVE r.{t} DELETE s RETURN count(*) AS n"),
            finalize: format!("MATCH ()-[s:{b}]->() WHERE s.{t} = true WITH s LIMIT {c} REMOVE s.{t} RETURN count(*) AS n"),
            params: Vec::new(),
        })
        .await
    }

    pub(super) async fn rename_property_impl(
        &mut self,
        entity: wit::Entity,
        label: String,
        from: String,
        to: String,
    ) -> wasmtime::Result<Result<u64, wit::GraphError>> {
        if let Err(e) = check(&[&label, &from, &to]) {
            return Ok(Err(e));
        }
        if from == to {
            return Ok(Err(invalid("the new property name is the old one".into())));
        }
        if !plain(&from) || !plain(&to) {
            return Ok(Err(invalid(
                "refactorings take property names of letters, digits and underscores".into(),
            )));
        }
        let (m, t, c) = (pattern(entity, &label), self.tag(), self.chunk());
        self.refactor(Plan {
            apply: format!("{m} WHERE x.{from} IS NOT NULL WITH x LIMIT {c} SET x.{to} = x.{from}, x.{t} = true REMOVE x.{from} RETURN count(*) AS n"),
            undo: format!("{m} WHERE x.{t} = true WITH x LIMIT {c} SET x.{from} = x.{to} REMOVE x.{to}, x.{t} RETURN count(*) AS n"),
            finalize: format!("{m} WHERE x.{t} = true WITH x LIMIT {c} REMOVE x.{t} RETURN count(*) AS n"),
            params: Vec::new(),
        })
        .await
    }

    pub(super) async fn add_property_impl(
        &mut self,
        entity: wit::Entity,
        label: String,
        name: String,
        default: wit::Value,
    ) -> wasmtime::Result<Result<u64, wit::GraphError>> {
        if let Err(e) = check(&[&label, &name]) {
            return Ok(Err(e));
        }
        if !plain(&name) {
            return Ok(Err(invalid(
                "refactorings take property names of letters, digits and underscores".into(),
            )));
        }
        self.weigh_values([(name.as_str(), &default)])?;
        let default = match value_to_bolt(&default) {
            Ok(BoltType::Null(_)) => {
                return Ok(Err(invalid(
                    "the default of an added property may not be null".into(),
                )));
            }
            Ok(value) => value,
            Err(e) => return Ok(Err(invalid(format!("default: {e}")))),
        };
        let (m, t, c) = (pattern(entity, &label), self.tag(), self.chunk());
        self.refactor(Plan {
            apply: format!("{m} WHERE x.{name} IS NULL WITH x LIMIT {c} SET x.{name} = $default, x.{t} = true RETURN count(*) AS n"),
            undo: format!("{m} WHERE x.{t} = true WITH x LIMIT {c} REMOVE x.{name}, x.{t} RETURN count(*) AS n"),
            finalize: format!("{m} WHERE x.{t} = true WITH x LIMIT {c} REMOVE x.{t} RETURN count(*) AS n"),
            params: vec![("default".into(), default)],
        })
        .await
    }

    pub(super) async fn remove_property_impl(
        &mut self,
        entity: wit::Entity,
        label: String,
        name: String,
    ) -> wasmtime::Result<Result<u64, wit::GraphError>> {
        if let Err(e) = check(&[&label, &name]) {
            return Ok(Err(e));
        }
        if !plain(&name) {
            return Ok(Err(invalid(
                "refactorings take property names of letters, digits and underscores".into(),
            )));
        }
        // The tag keeps the removed value until the migration succeeds.
        let (m, t, c) = (pattern(entity, &label), self.tag(), self.chunk());
        self.refactor(Plan {
            apply: format!("{m} WHERE x.{name} IS NOT NULL WITH x LIMIT {c} SET x.{t} = x.{name} REMOVE x.{name} RETURN count(*) AS n"),
            undo: format!("{m} WHERE x.{t} IS NOT NULL WITH x LIMIT {c} SET x.{name} = x.{t} REMOVE x.{t} RETURN count(*) AS n"),
            finalize: format!("{m} WHERE x.{t} IS NOT NULL WITH x LIMIT {c} REMOVE x.{t} RETURN count(*) AS n"),
            params: Vec::new(),
        })
        .await
    }
}
