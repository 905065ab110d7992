//! Tracked batches of the `context` interface: rows written through UNWIND in
//! chunks that commit on their own, every node and relationship tagged with the
//! batch id, counted, and deleted again if the migration fails.

use std::time::Instant;

use neo4rs::{BoltMap, BoltString, BoltType};

use super::bindings::graphmig::migration::types as wit;
use super::host_context::GuestState;
use super::values::value_into_bolt;
use crate::graph::batch::BATCH_TAG;
use crate::graph::{Counters, GraphError, GraphErrorKind};
use crate::journal::{BatchRecord, JournalEntry, StatementOutcome};
use crate::policy::Class;
use crate::schema::{quote, remove_key};

fn error(code: &str, kind: wit::GraphErrorKind, message: String) -> wit::GraphError {
    wit::GraphError {
        kind,
        code: code.into(),
        message,
    }
}

use super::host_context::to_wit_error as to_wit;

/// Turns the guest's rows into Bolt maps, moving names and strings rather than
/// copying them: a large ingest holds one copy of its rows, not two.
fn rows_to_bolt(rows: Vec<wit::Params>) -> Result<Vec<BoltType>, wit::GraphError> {
    rows_to_bolt_tagged(rows, None)
}

/// As [`rows_to_bolt`], adding the batch tag to every row, so that the node's
/// properties are set in one `SET n = row` (a second `SET` costs the database
/// a second update of every node).
fn rows_to_bolt_tagged(
    rows: Vec<wit::Params>,
    tag: Option<&str>,
) -> Result<Vec<BoltType>, wit::GraphError> {
    rows.into_iter()
        .enumerate()
        .map(|(i, row)| {
            let mut map = BoltMap::with_capacity(row.len());
            for (name, value) in row {
                let value = value_into_bolt(value).map_err(|e| {
                    error(
                        "graphmig.InvalidParameter",
                        wit::GraphErrorKind::Other,
                        format!("row {i}, field `{name}`: {e}"),
                    )
                })?;
                map.put(BoltString { value: name }, value);
            }
            if let Some(tag) = tag {
                map.put(
                    BoltString::new(BATCH_TAG),
                    BoltType::String(BoltString::new(tag)),
                );
            }
            Ok(BoltType::Map(map))
        })
        .collect()
}

fn valid_name(name: &str) -> Result<(), wit::GraphError> {
    if name.is_empty() || name.starts_with("__Graphmig") || name == BATCH_TAG {
        return Err(error(
            "graphmig.InvalidName",
            wit::GraphErrorKind::Other,
            format!("`{name}` cannot be used here"),
        ));
    }
    Ok(())
}

impl GuestState {
    pub(super) fn begin_batch_impl(&mut self, name: String) -> String {
        use std::hash::{BuildHasher, RandomState};
        let prefix = self.batch_prefix.clone().unwrap_or_else(|| {
            format!(
                "{:016x}",
                RandomState::new().hash_one((&name, std::process::id()))
            )
        });
        let id = format!("{prefix}-{}", self.batches.len() + 1);
        self.batches.push(BatchRecord {
            id: id.clone(),
            name,
            nodes: 0,
            relationships: 0,
            outcome: "kept".into(),
        });
        id
    }

    /// Runs `statement` over `rows` in chunks, each in its own transaction (in a
    /// dry run, in the migration's own, which is rolled back).
    async fn write_chunks(
        &mut self,
        batch: &str,
        statement: String,
        rows: Vec<BoltType>,
    ) -> wasmtime::Result<Result<Counters, wit::GraphError>> {
        if !self.batches.iter().any(|b| b.id == batch) {
            return Ok(Err(error(
                "graphmig.UnknownBatch",
                wit::GraphErrorKind::Other,
                format!("no batch `{batch}` was begun by this migration"),
            )));
        }
        if !self
            .settings()
            .policy
            .allowed_classes()
            .contains(&Class::Write)
        {
            return Ok(Err(error(
                "graphmig.Policy.Write",
                wit::GraphErrorKind::Forbidden,
                "denied by the `write` rule: this migration may not write".into(),
            )));
        }
        let chunk_size = self.settings().batch_chunk.max(1);
        let total_rows = rows.len() as u64;
        let mut written = 0u64;
        let mut total = Counters::default();
        if total_rows > chunk_size as u64 {
            self.batch_progress(batch, 0, total_rows);
        }
        let mut rows = rows.into_iter();
        loop {
            // Each chunk moves out of the rows into its statement's parameters.
            let chunk: Vec<BoltType> = rows.by_ref().take(chunk_size).collect();
            if chunk.is_empty() {
                break;
            }
            let chunk_rows = chunk.len() as u64;
            let index = self.next_statement()?;
            let started = Instant::now();
            let mut entry = JournalEntry::new(
                index,
                &statement,
                format!("rows: list({}), batch: string", chunk.len()),
            );
            let params = vec![
                (
                    "rows".to_string(),
                    BoltType::List(neo4rs::BoltList { value: chunk }),
                ),
                (
                    "batch".to_string(),
                    BoltType::String(BoltString::new(batch)),
                ),
            ];
            let result = if self.is_dry_run() {
                match self.txn_mut() {
                    Some(txn) => txn.run_discarding(&statement, params).await,
                    None => Err(GraphError {
                        kind: GraphErrorKind::Other,
                        code: "graphmig.NoTransaction".into(),
                        message: "no transaction".into(),
                    }),
                }
            } else {
                match self.db() {
                    Some(db) => {
                        async {
                            let mut txn = db.begin().await.map_err(|e| GraphError {
                                kind: GraphErrorKind::Other,
                                code: "graphmig.Database".into(),
                                message: e.to_string(),
                            })?;
                            let counters = txn.run_discarding(&statement, params).await?;
                            txn.commit().await?;
                            Ok(counters)
                        }
                        .await
                    }
                    None => Err(GraphError {
                        kind: GraphErrorKind::Other,
                        code: "graphmig.NoTransaction".into(),
                        message: "batches are not available while the host reads metadata".into(),
                    }),
                }
            };
            match result {
                Ok(counters) => {
                    entry.counters = crate::graph::describe_counters(&counters);
                    self.push_journal(entry.finish(started, StatementOutcome::Ok, None, None, 0));
                    total += &counters;
                    if let Some(record) = self.batches.iter_mut().find(|b| b.id == batch) {
                        record.nodes += counters.nodes_created;
                        record.relationships += counters.relationships_created;
                    }
                    written += chunk_rows;
                    self.batch_progress(batch, written, total_rows);
                }
                Err(e) => {
                    self.push_journal(entry.failed(started, &e.code, &e.message));
                    return Ok(Err(to_wit(&e)));
                }
            }
        }
        Ok(Ok(total))
    }

    pub(super) async fn batch_create_nodes_impl(
        &mut self,
        batch: String,
        label: String,
        rows: Vec<wit::Params>,
    ) -> wasmtime::Result<Result<u64, wit::GraphError>> {
        if let Err(e) = valid_name(&label) {
            return Ok(Err(e));
        }
        let rows = match rows_to_bolt_tagged(rows, Some(&batch)) {
            Ok(rows) => rows,
            Err(e) => return Ok(Err(e)),
        };
        let statement = format!(
            "UNWIND $rows AS row CREATE (n:{}) SET n = row",
            quote(&label)
        );
        Ok(self
            .write_chunks(&batch, statement, rows)
            .await?
            .map(|c| c.nodes_created))
    }

    pub(super) async fn batch_merge_nodes_impl(
        &mut self,
        batch: String,
        label: String,
        key: Vec<String>,
        rows: Vec<wit::Params>,
    ) -> wasmtime::Result<Result<u64, wit::GraphError>> {
        if let Err(e) = valid_name(&label).and_then(|()| key.iter().try_for_each(|k| valid_name(k)))
        {
            return Ok(Err(e));
        }
        if key.is_empty() {
            return Ok(Err(error(
                "graphmig.InvalidName",
                wit::GraphErrorKind::Other,
                "merge needs at least one key property".into(),
            )));
        }
        let rows = match rows_to_bolt(rows) {
            Ok(rows) => rows,
            Err(e) => return Ok(Err(e)),
        };
        let key = key
            .iter()
            .map(|k| format!("{0}: row.{0}", quote(k)))
            .collect::<Vec<_>>()
            .join(", ");
        let statement = format!(
            "UNWIND $rows AS row MERGE (n:{} {{{key}}}) ON CREATE SET n += row, n.{BATCH_TAG} = $batch ON MATCH SET n += row",
            quote(&label)
        );
        Ok(self
            .write_chunks(&batch, statement, rows)
            .await?
            .map(|c| c.nodes_created))
    }

    pub(super) async fn batch_create_relationships_impl(
        &mut self,
        batch: String,
        rel_type: String,
        from: wit::Endpoint,
        to: wit::Endpoint,
        rows: Vec<wit::Params>,
    ) -> wasmtime::Result<Result<u64, wit::GraphError>> {
        for name in [
            &rel_type,
            &from.label,
            &from.key,
            &from.field,
            &to.label,
            &to.key,
            &to.field,
        ] {
            if let Err(e) = valid_name(name) {
                return Ok(Err(e));
            }
        }
        let rows = match rows_to_bolt(rows) {
            Ok(rows) => rows,
            Err(e) => return Ok(Err(e)),
        };
        let statement = format!(
            "UNWIND $rows AS row MATCH (a:{} {{{}: row.{}}}) MATCH (b:{} {{{}: row.{}}}) \
             CREATE (a)-[r:{}]->(b) SET r = row, r.{BATCH_TAG} = $batch REMOVE r.{}, r.{}",
            quote(&from.label),
            quote(&from.key),
            quote(&from.field),
            quote(&to.label),
            quote(&to.key),
            quote(&to.field),
            quote(&rel_type),
            remove_key(&from.field),
            remove_key(&to.field),
        );
        Ok(self
            .write_chunks(&batch, statement, rows)
            .await?
            .map(|c| c.relationships_created))
    }

    pub(super) async fn delete_batch_impl(
        &mut self,
        batch: String,
    ) -> wasmtime::Result<Result<u64, wit::GraphError>> {
        let index = self.next_statement()?;
        let started = Instant::now();
        let mut entry = JournalEntry::new(index, &format!("delete batch {batch}"), String::new());
        if self.is_dry_run() {
            self.push_journal(entry.finish(
                started,
                StatementOutcome::Skipped,
                Some("graphmig.DryRun"),
                Some("batch deletion recorded, not executed"),
                0,
            ));
            return Ok(Ok(0));
        }
        let Some(db) = self.db() else {
            return Ok(Ok(0));
        };
        let chunk = self.settings().batch_chunk.max(1);
        match db.delete_batch(&batch, chunk).await {
            Ok(n) => {
                entry.counters = format!("-{n} node(s) and relationship(s)");
                self.push_journal(entry.finish(started, StatementOutcome::Ok, None, None, 0));
                Ok(Ok(n))
            }
            Err(e) => {
                self.push_journal(entry.failed(started, &e.code, &e.message));
                Ok(Err(to_wit(&e)))
            }
        }
    }
}
