//! Refactorings of the `context` interface: renames and property changes run as
//! statements inside the migration's transaction, so they roll back with it, and
//! report how many nodes or relationships changed.

use std::time::Instant;

use neo4rs::BoltType;

use super::bindings::graphmig::migration::types as wit;
use super::host_context::GuestState;
use super::values::value_to_bolt;
use crate::graph::GraphErrorKind;
use crate::journal::{JournalEntry, StatementOutcome};
use crate::policy::Class;
use crate::schema::{quote, remove_key};

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

impl GuestState {
    /// Runs `statement` (which must return `count(*) AS n`) in the data
    /// transaction, journaled, and returns the count.
    ///
    /// Not chunked: inside one transaction chunks would not make it smaller, and
    /// ArcadeDB re-reads rows that `SET ... REMOVE` changed earlier in the same
    /// transaction, so `WHERE ... LIMIT` chunking never finishes there.
    async fn refactor(
        &mut self,
        statement: String,
        params: Vec<(String, BoltType)>,
    ) -> wasmtime::Result<Result<u64, wit::GraphError>> {
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
        if let Some(failed) = self.doomed() {
            return Ok(Err(wit::GraphError {
                kind: wit::GraphErrorKind::Other,
                code: "graphmig.TransactionDoomed".into(),
                message: format!(
                    "statement #{} already failed ({}); the transaction will be rolled back",
                    failed.index, failed.code
                ),
            }));
        }
        let index = self.next_statement()?;
        {
            let started = Instant::now();
            let mut entry = JournalEntry::new(index, &statement, String::new());
            let Some(txn) = self.txn_mut() else {
                return Ok(Err(invalid(
                    "refactorings need the migration's transaction".into(),
                )));
            };
            match txn.run_counted(&statement, params.clone()).await {
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
                    Ok(Ok(n))
                }
                Err(e) => {
                    self.push_journal(entry.finish(
                        started,
                        StatementOutcome::Error,
                        Some(&e.code),
                        Some(&e.message),
                        0,
                    ));
                    self.doom(index, &statement, &e.code, &e.message);
                    let kind = match e.kind {
                        GraphErrorKind::Syntax => wit::GraphErrorKind::Syntax,
                        GraphErrorKind::ConstraintViolation => {
                            wit::GraphErrorKind::ConstraintViolation
                        }
                        GraphErrorKind::Transient => wit::GraphErrorKind::Transient,
                        GraphErrorKind::Forbidden => wit::GraphErrorKind::Forbidden,
                        GraphErrorKind::Other => wit::GraphErrorKind::Other,
                    };
                    Ok(Err(wit::GraphError {
                        kind,
                        code: e.code,
                        message: e.message,
                    }))
                }
            }
        }
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
        let statement = format!(
            "MATCH (x:{}) SET x:{} REMOVE x:{} RETURN count(*) AS n",
            quote(&from),
            quote(&to),
            quote(&from)
        );
        self.refactor(statement, Vec::new()).await
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
        let statement = format!(
            "MATCH (a)-[x:{}]->(b) CREATE (a)-[y:{}]->(b) SET y = properties(x) DELETE x RETURN count(*) AS n",
            quote(&from),
            quote(&to)
        );
        self.refactor(statement, Vec::new()).await
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
        let statement = format!(
            "{} WHERE x.{} IS NOT NULL SET x.{} = x.{} REMOVE x.{} RETURN count(*) AS n",
            pattern(entity, &label),
            quote(&from),
            quote(&to),
            quote(&from),
            remove_key(&from)
        );
        self.refactor(statement, Vec::new()).await
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
        let default = match value_to_bolt(&default) {
            Ok(BoltType::Null(_)) => {
                return Ok(Err(invalid(
                    "the default of an added property may not be null".into(),
                )));
            }
            Ok(value) => value,
            Err(e) => return Ok(Err(invalid(format!("default: {e}")))),
        };
        let statement = format!(
            "{} WHERE x.{} IS NULL SET x.{} = $default RETURN count(*) AS n",
            pattern(entity, &label),
            quote(&name),
            quote(&name)
        );
        self.refactor(statement, vec![("default".into(), default)])
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
        let statement = format!(
            "{} WHERE x.{} IS NOT NULL REMOVE x.{} RETURN count(*) AS n",
            pattern(entity, &label),
            quote(&name),
            remove_key(&name)
        );
        self.refactor(statement, Vec::new()).await
    }
}
