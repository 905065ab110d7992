//! Tracked batches of the `context` interface: rows written through UNWIND in
//! chunks that commit on their own, every node and relationship tagged with the
//! batch id, counted, and deleted again if the migration fails. One chunk is
//! written while the next is prepared (the guest building rows, the host
//! converting them), so an ingest goes at the database's pace; rows whose
//! fields agree travel as lists of values, which the server reads faster.

use std::time::{Duration, Instant};

use neo4rs::{BoltList, BoltMap, BoltString, BoltType};
use tokio::task::JoinHandle;
use wasmtime::component::Resource;

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

/// Which counter a batch statement's result is read from.
#[derive(Debug, Clone, Copy)]
enum Counts {
    Nodes,
    Relationships,
}

impl Counts {
    fn of(self, counters: &Counters) -> u64 {
        match self {
            Counts::Nodes => counters.nodes_created,
            Counts::Relationships => counters.relationships_created,
        }
    }
}

/// What a batch statement writes.
#[derive(Debug, Clone)]
enum Shape {
    CreateNodes {
        label: String,
    },
    MergeNodes {
        label: String,
        key: Vec<String>,
    },
    CreateRelationships {
        rel_type: String,
        from: wit::Endpoint,
        to: wit::Endpoint,
    },
}

/// One batch statement: the batch it writes for (`$batch`) and what its Cypher
/// over `$rows` does; the Cypher itself depends on how a chunk's rows travel
/// (see [`ChunkRows`]).
#[derive(Debug, Clone)]
pub(super) struct BatchStatement {
    batch: String,
    shape: Shape,
    counts: Counts,
}

impl BatchStatement {
    fn create_nodes(batch: String, label: &str) -> Result<Self, wit::GraphError> {
        valid_name(label)?;
        Ok(BatchStatement {
            batch,
            shape: Shape::CreateNodes {
                label: label.to_string(),
            },
            counts: Counts::Nodes,
        })
    }

    fn merge_nodes(batch: String, label: &str, key: &[String]) -> Result<Self, wit::GraphError> {
        valid_name(label)?;
        key.iter().try_for_each(|k| valid_name(k))?;
        if key.is_empty() {
            return Err(error(
                "graphmig.InvalidName",
                wit::GraphErrorKind::Other,
                "merge needs at least one key property".into(),
            ));
        }
        Ok(BatchStatement {
            batch,
            shape: Shape::MergeNodes {
                label: label.to_string(),
                key: key.to_vec(),
            },
            counts: Counts::Nodes,
        })
    }

    fn create_relationships(
        batch: String,
        rel_type: &str,
        from: &wit::Endpoint,
        to: &wit::Endpoint,
    ) -> Result<Self, wit::GraphError> {
        for name in [
            rel_type,
            &from.label,
            &from.key,
            &from.field,
            &to.label,
            &to.key,
            &to.field,
        ] {
            valid_name(name)?;
        }
        Ok(BatchStatement {
            batch,
            shape: Shape::CreateRelationships {
                rel_type: rel_type.to_string(),
                from: from.clone(),
                to: to.clone(),
            },
            counts: Counts::Relationships,
        })
    }

    /// The statement for a chunk whose rows are maps (`columns` is `None`) or
    /// lists of the values of `columns`, in that order.
    fn cypher(&self, columns: Option<&[String]>) -> String {
        // A row's field: `row.name` of a map, `row[i]` of a list (null when a
        // list has no such column, as `row.name` is for a map without it).
        let field = |name: &str| match columns {
            None => format!("row.{}", quote(name)),
            Some(columns) => match columns.iter().position(|c| c == name) {
                Some(i) => format!("row[{i}]"),
                None => "null".to_string(),
            },
        };
        // `SET` items for every column but `skip`, on the entity `var`.
        let set_columns = |var: &str, skip: &[&str]| -> Vec<String> {
            columns
                .unwrap_or_default()
                .iter()
                .enumerate()
                .filter(|(_, c)| !skip.contains(&c.as_str()))
                .map(|(i, c)| format!("{var}.{} = row[{i}]", quote(c)))
                .collect()
        };
        match &self.shape {
            Shape::CreateNodes { label } => {
                // The tag is set as the node is created, from one parameter:
                // measured on ArcadeDB, as fast as no tag at all, while a tag
                // inside every row costs about a tenth more.
                let head = format!(
                    "UNWIND $rows AS row CREATE (n:{} {{{BATCH_TAG}: $batch}})",
                    quote(label)
                );
                match columns {
                    None => format!("{head} SET n += row"),
                    Some(_) => {
                        let sets = set_columns("n", &[]);
                        if sets.is_empty() {
                            head
                        } else {
                            format!("{head} SET {}", sets.join(", "))
                        }
                    }
                }
            }
            Shape::MergeNodes { label, key } => {
                let key = key
                    .iter()
                    .map(|k| format!("{}: {}", quote(k), field(k)))
                    .collect::<Vec<_>>()
                    .join(", ");
                let head = format!("UNWIND $rows AS row MERGE (n:{} {{{key}}})", quote(label));
                match columns {
                    None => format!(
                        "{head} ON CREATE SET n += row, n.{BATCH_TAG} = $batch ON MATCH SET n += row"
                    ),
                    Some(_) => {
                        let sets = set_columns("n", &[]);
                        let on_create = sets
                            .iter()
                            .cloned()
                            .chain([format!("n.{BATCH_TAG} = $batch")])
                            .collect::<Vec<_>>()
                            .join(", ");
                        if sets.is_empty() {
                            format!("{head} ON CREATE SET {on_create}")
                        } else {
                            format!(
                                "{head} ON CREATE SET {on_create} ON MATCH SET {}",
                                sets.join(", ")
                            )
                        }
                    }
                }
            }
            Shape::CreateRelationships { rel_type, from, to } => {
                let head = format!(
                    "UNWIND $rows AS row MATCH (a:{} {{{}: {}}}) MATCH (b:{} {{{}: {}}}) CREATE (a)-[r:{}]->(b)",
                    quote(&from.label),
                    quote(&from.key),
                    field(&from.field),
                    quote(&to.label),
                    quote(&to.key),
                    field(&to.field),
                    quote(rel_type),
                );
                match columns {
                    None => format!(
                        "{head} SET r = row, r.{BATCH_TAG} = $batch REMOVE r.{}, r.{}",
                        remove_key(&from.field),
                        remove_key(&to.field),
                    ),
                    Some(_) => {
                        let sets = set_columns("r", &[&from.field, &to.field])
                            .into_iter()
                            .chain([format!("r.{BATCH_TAG} = $batch")])
                            .collect::<Vec<_>>();
                        format!("{head} SET {}", sets.join(", "))
                    }
                }
            }
        }
    }
}

/// One guest row checked and converted: its field names and Bolt values. A
/// row may not carry the batch tag: it would let a migration claim nodes for
/// another batch. Names and strings are moved, not copied.
fn convert_row(
    index: usize,
    row: wit::Params,
) -> Result<(Vec<String>, Vec<BoltType>), wit::GraphError> {
    let mut names = Vec::with_capacity(row.len());
    let mut values = Vec::with_capacity(row.len());
    for (name, value) in row {
        if name == BATCH_TAG {
            return Err(error(
                "graphmig.InvalidName",
                wit::GraphErrorKind::Other,
                format!("row {index}: the field `{BATCH_TAG}` is the host's batch tag"),
            ));
        }
        let value = value_into_bolt(value).map_err(|e| {
            error(
                "graphmig.InvalidParameter",
                wit::GraphErrorKind::Other,
                format!("row {index}, field `{name}`: {e}"),
            )
        })?;
        names.push(name);
        values.push(value);
    }
    Ok((names, values))
}

fn bolt_map(names: impl IntoIterator<Item = String>, values: Vec<BoltType>) -> BoltType {
    let mut map = BoltMap::with_capacity(values.len());
    for (name, value) in names.into_iter().zip(values) {
        map.put(BoltString { value: name }, value);
    }
    BoltType::Map(map)
}

/// The rows of one chunk on their way to the database. While every row has
/// the same fields in the same order (what the SDKs send), rows travel as
/// lists of values under one set of column names: measured on ArcadeDB,
/// 100,000 rows as lists take half the server's time of the same rows as
/// maps, and the host builds no map per row. A row with other fields turns
/// the chunk into maps, as any row may be.
#[derive(Debug, Default)]
enum ChunkRows {
    #[default]
    Empty,
    Columns {
        names: Vec<String>,
        rows: Vec<BoltType>,
    },
    Maps(Vec<BoltType>),
}

impl ChunkRows {
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn len(&self) -> usize {
        match self {
            ChunkRows::Empty => 0,
            ChunkRows::Columns { rows, .. } | ChunkRows::Maps(rows) => rows.len(),
        }
    }

    fn push(&mut self, index: usize, row: wit::Params) -> Result<(), wit::GraphError> {
        let (names, values) = convert_row(index, row)?;
        match self {
            ChunkRows::Empty => {
                let distinct = names
                    .iter()
                    .enumerate()
                    .all(|(i, n)| !names[..i].contains(n));
                // A repeated field name keeps its last value, as in a map.
                *self = if distinct {
                    ChunkRows::Columns {
                        names,
                        rows: vec![BoltType::List(BoltList { value: values })],
                    }
                } else {
                    ChunkRows::Maps(vec![bolt_map(names, values)])
                };
            }
            ChunkRows::Columns {
                names: columns,
                rows,
            } if *columns == names => rows.push(BoltType::List(BoltList { value: values })),
            ChunkRows::Columns { .. } => {
                let ChunkRows::Columns {
                    names: columns,
                    rows,
                } = std::mem::take(self)
                else {
                    unreachable!("matched above")
                };
                let mut maps: Vec<BoltType> = rows
                    .into_iter()
                    .map(|row| match row {
                        BoltType::List(list) => bolt_map(columns.iter().cloned(), list.value),
                        other => other,
                    })
                    .collect();
                maps.push(bolt_map(names, values));
                *self = ChunkRows::Maps(maps);
            }
            ChunkRows::Maps(rows) => rows.push(bolt_map(names, values)),
        }
        Ok(())
    }

    /// The rows as the `$rows` parameter, and the column names when they are
    /// lists.
    fn into_parameter(self) -> (BoltType, Option<Vec<String>>) {
        let (rows, columns) = match self {
            ChunkRows::Empty => (Vec::new(), None),
            ChunkRows::Columns { names, rows } => (rows, Some(names)),
            ChunkRows::Maps(rows) => (rows, None),
        };
        (BoltType::List(BoltList { value: rows }), columns)
    }
}

/// The host side of a `batch-writer`; the host's own batch functions write
/// through one too, which the guest never sees.
#[derive(Debug)]
pub struct BatchWriter {
    statement: BatchStatement,
    /// Converted rows not sent yet: always fewer than a chunk.
    unsent: ChunkRows,
    /// Rows handed to the database so far.
    sent: u64,
    /// Rows the writer will get in all, when known (for the progress bar).
    total: Option<u64>,
    /// What the collected chunks created.
    created: u64,
    /// The first failure; the writer sends nothing after it.
    error: Option<wit::GraphError>,
    finished: bool,
    /// A guest's writer learns of a failed chunk late, maybe never: its
    /// failure fails the migration. The host's batch functions hand the
    /// failure straight back instead, and the guest may go on.
    fails_migration: bool,
}

impl BatchWriter {
    fn new(statement: BatchStatement, fails_migration: bool) -> Self {
        BatchWriter {
            statement,
            unsent: ChunkRows::Empty,
            sent: 0,
            total: None,
            created: 0,
            error: None,
            finished: false,
            fails_migration,
        }
    }
}

/// How long past the deadline the host waits for a batch chunk in flight.
pub(super) const SETTLE_GRACE: Duration = Duration::from_millis(250);

/// How long the host waits for the answer to a chunk's COMMIT sent just before
/// its cut-off.
const COMMIT_PATIENCE: Duration = Duration::from_secs(10);

/// A chunk handed to the database whose outcome nobody has collected yet: at
/// most one at a time, so chunks (a merge's above all) apply in order.
#[derive(Debug)]
pub(super) struct ChunkInFlight {
    /// The writer it came from (its resource index).
    writer: u32,
    entry: JournalEntry,
    /// Rows of its writer sent up to and including this chunk.
    sent: u64,
    task: JoinHandle<(Result<Counters, GraphError>, Duration)>,
}

impl GuestState {
    pub(super) fn begin_batch_impl(&mut self, name: String) -> String {
        // A name is for people: kept short, whatever the guest sent.
        let name = crate::journal::cut(&name, 256);
        use std::hash::{BuildHasher, RandomState};
        let prefix = self.batch_prefix.clone().unwrap_or_else(|| {
            format!(
                "{:016x}",
                RandomState::new().hash_one((&name, std::process::id()))
            )
        });
        let id = format!("{prefix}-{}", self.batches.len() + 1);
        self.keep(id.len() + name.len(), "batch record");
        self.batches.push(BatchRecord {
            id: id.clone(),
            name,
            nodes: 0,
            relationships: 0,
            outcome: "kept".into(),
        });
        id
    }

    /// Refuses writes to a batch this migration did not begin, and writes by a
    /// migration whose policy forbids them.
    fn check_batch_write(&self, batch: &str) -> Result<(), wit::GraphError> {
        if !self.batches.iter().any(|b| b.id == batch) {
            return Err(error(
                "graphmig.UnknownBatch",
                wit::GraphErrorKind::Other,
                format!("no batch `{batch}` was begun by this migration"),
            ));
        }
        if !self
            .settings()
            .policy
            .allowed_classes()
            .contains(&Class::Write)
        {
            return Err(error(
                "graphmig.Policy.Write",
                wit::GraphErrorKind::Forbidden,
                "denied by the `write` rule: this migration may not write".into(),
            ));
        }
        Ok(())
    }

    /// Waits for the chunk in flight, if any, and records its outcome: journal,
    /// batch counts, progress, and its writer's count or error. Every host
    /// call that touches the database first comes here, so nothing of the
    /// migration runs beside a chunk.
    pub(super) async fn collect_chunk(&mut self) {
        let Some(chunk) = self.chunk_in_flight.as_mut() else {
            return;
        };
        let joined = (&mut chunk.task).await;
        let Some(mut chunk) = self.chunk_in_flight.take() else {
            return;
        };
        let (result, took) = joined.unwrap_or_else(|e| {
            (
                Err(GraphError {
                    kind: GraphErrorKind::Other,
                    code: "graphmig.Database".into(),
                    message: format!("the chunk's task ended without an answer: {e}"),
                }),
                Duration::ZERO,
            )
        });
        let handle = Resource::<BatchWriter>::new_borrow(chunk.writer);
        let writer = self.table.get_mut(&handle).ok();
        let (batch, counts, total, fails_migration) = match &writer {
            Some(w) => (
                w.statement.batch.clone(),
                Some(w.statement.counts),
                w.total,
                w.fails_migration,
            ),
            None => (String::new(), None, None, true),
        };
        match result {
            Ok(counters) => {
                if let (Some(w), Some(counts)) = (writer, counts) {
                    w.created += counts.of(&counters);
                }
                chunk.entry.counters = crate::graph::describe_counters(&counters);
                let mut entry =
                    chunk
                        .entry
                        .finish(Instant::now(), StatementOutcome::Ok, None, None, 0);
                entry.duration_us = took.as_micros() as u64;
                self.push_journal(entry);
                if let Some(record) = self.batches.iter_mut().find(|b| b.id == batch) {
                    record.nodes += counters.nodes_created;
                    record.relationships += counters.relationships_created;
                }
                self.batch_progress(&batch, chunk.sent, total);
            }
            Err(e) => {
                if let Some(w) = writer {
                    w.error.get_or_insert_with(|| to_wit(&e));
                }
                let mut entry = chunk.entry.failed(Instant::now(), &e.code, &e.message);
                entry.duration_us = took.as_micros() as u64;
                if fails_migration {
                    self.doom(entry.seq, &entry.query, &e.code, &e.message);
                }
                self.push_journal(entry);
            }
        }
    }

    /// After the guest's call, however it ended: waits for the chunk still in
    /// flight, so that its rows are counted in its batch before anything is
    /// kept or deleted. A chunk gives itself up at the deadline and
    /// [`SETTLE_GRACE`] after it unless its COMMIT went out before; then its
    /// answer is waited for, up to [`COMMIT_PATIENCE`] more: deleting the batch
    /// before a COMMIT lands would leave the chunk's rows behind. Only a server
    /// that answers nothing that long is given up on.
    pub(super) async fn settle_batches(&mut self) {
        let patience = self.deadline().saturating_duration_since(Instant::now())
            + SETTLE_GRACE
            + COMMIT_PATIENCE;
        if tokio::time::timeout(patience, self.collect_chunk())
            .await
            .is_err()
            && let Some(chunk) = self.chunk_in_flight.take()
        {
            chunk.task.abort();
            self.doom(
                chunk.entry.seq,
                &chunk.entry.query,
                "graphmig.Database",
                "a batch chunk was still being written long after the migration ended",
            );
        }
    }

    /// Sends one chunk of `writer`'s rows: in a dry run inside the migration's
    /// own transaction, at once; otherwise in a transaction of its own on a
    /// task of its own, once the chunk before it is collected. Returns the
    /// writer's error if it has one by then.
    async fn send_chunk(
        &mut self,
        writer: &Resource<BatchWriter>,
        chunk: ChunkRows,
    ) -> wasmtime::Result<Result<(), wit::GraphError>> {
        self.collect_chunk().await;
        let w = self.table.get_mut(writer)?;
        if let Some(e) = &w.error {
            return Ok(Err(e.clone()));
        }
        let rows = chunk.len();
        w.sent += rows as u64;
        let sent = w.sent;
        let batch = w.statement.batch.clone();
        let (chunk, columns) = chunk.into_parameter();
        let cypher = w.statement.cypher(columns.as_deref());
        let index = self.next_statement()?;
        let entry = JournalEntry::new(
            index,
            &cypher,
            format!(
                "rows: list({rows}) of {}, batch: string",
                if columns.is_some() { "lists" } else { "maps" }
            ),
        );
        let params = vec![
            ("rows".to_string(), chunk),
            (
                "batch".to_string(),
                BoltType::String(BoltString::new(&batch)),
            ),
        ];
        let task = if self.is_dry_run() {
            let started = Instant::now();
            let result = match self.txn_mut() {
                Some(txn) => txn.run_discarding(&cypher, params).await,
                None => Err(GraphError {
                    kind: GraphErrorKind::Other,
                    code: "graphmig.NoTransaction".into(),
                    message: "no transaction".into(),
                }),
            };
            let took = started.elapsed();
            tokio::spawn(async move { (result, took) })
        } else {
            let Some(db) = self.db() else {
                return Ok(Err(error(
                    "graphmig.NoTransaction",
                    wit::GraphErrorKind::Other,
                    "batches are not available while the host reads metadata".into(),
                )));
            };
            // The chunk commits on its own: the attempt is in the history
            // database first, so that any runner can delete what it wrote.
            if let Err(e) = self.record_intent(None).await {
                self.doom(entry.seq, &entry.query, &e.code, &e.message);
                let e = to_wit(&e);
                self.table
                    .get_mut(writer)?
                    .error
                    .get_or_insert_with(|| e.clone());
                return Ok(Err(e));
            }
            // The chunk decides by itself whether it may still commit: a COMMIT
            // sent is a COMMIT the server may carry out whatever the host does
            // next, so none goes out past the cut-off, and the host waits for
            // one that went out before it deletes the batch.
            let cutoff = self.deadline() + SETTLE_GRACE;
            tokio::spawn(async move {
                let started = Instant::now();
                let late = || GraphError {
                    kind: GraphErrorKind::Other,
                    code: "graphmig.Deadline".into(),
                    message: "the chunk was still being written at the deadline; it was not \
                              committed"
                        .into(),
                };
                let result = async {
                    let write = async {
                        let mut txn = db.begin().await.map_err(|e| GraphError {
                            kind: GraphErrorKind::Other,
                            code: "graphmig.Database".into(),
                            message: e.to_string(),
                        })?;
                        let counters = txn.run_discarding(&cypher, params).await?;
                        Ok::<_, GraphError>((txn, counters))
                    };
                    // Given up before COMMIT, the transaction goes back to
                    // the pool unfinished, which resets it: nothing commits.
                    let (txn, counters) = tokio::time::timeout_at(cutoff.into(), write)
                        .await
                        .map_err(|_| late())??;
                    if Instant::now() >= cutoff {
                        let _ = txn.rollback().await;
                        return Err(late());
                    }
                    txn.commit().await?;
                    Ok(counters)
                }
                .await;
                (result, started.elapsed())
            })
        };
        self.chunk_in_flight = Some(ChunkInFlight {
            writer: writer.rep(),
            entry,
            sent,
            task,
        });
        // A task spawned from a runtime worker waits in that worker's own slot,
        // which no other worker takes, until the current task yields; the guest
        // would run on and the chunk would only be sent at the next collect.
        // Yielding once lets the chunk go out now.
        tokio::task::yield_now().await;
        Ok(Ok(()))
    }

    /// Converts `rows` onto `writer`'s unsent rows and sends every full chunk,
    /// and with `flush` the rest too. A chunk is converted while the one
    /// before it is being written.
    async fn feed_writer(
        &mut self,
        writer: &Resource<BatchWriter>,
        rows: Vec<wit::Params>,
        flush: bool,
    ) -> wasmtime::Result<Result<(), wit::GraphError>> {
        let chunk_size = self.settings().batch_chunk.max(1);
        let w = self.table.get_mut(writer)?;
        if let Some(e) = &w.error {
            return Ok(Err(e.clone()));
        }
        if w.finished {
            return Ok(Err(error(
                "graphmig.WriterFinished",
                wit::GraphErrorKind::Other,
                "this batch writer is finished".into(),
            )));
        }
        let mut unsent = std::mem::take(&mut w.unsent);
        let mut rows = rows.into_iter().enumerate();
        loop {
            while unsent.len() < chunk_size {
                let Some((index, row)) = rows.next() else {
                    break;
                };
                if index % 1024 == 0
                    && let Err(trap) = self.check_deadline()
                {
                    self.table.get_mut(writer)?.unsent = unsent;
                    return Err(trap);
                }
                if let Err(e) = unsent.push(index, row) {
                    // The rows before the bad one stay, to be sent.
                    self.table.get_mut(writer)?.unsent = unsent;
                    return Ok(Err(e));
                }
            }
            // A partial chunk waits for more rows, unless this is the flush.
            let partial_waits = !flush || unsent.is_empty();
            if unsent.len() < chunk_size && partial_waits {
                self.table.get_mut(writer)?.unsent = unsent;
                return Ok(Ok(()));
            }
            let chunk = std::mem::take(&mut unsent);
            if let Err(e) = self.send_chunk(writer, chunk).await? {
                return Ok(Err(e));
            }
        }
    }

    /// Sends what `writer` still holds, waits for it, and returns what all of
    /// the writer's rows created.
    async fn finish_writer(
        &mut self,
        writer: &Resource<BatchWriter>,
    ) -> wasmtime::Result<Result<u64, wit::GraphError>> {
        if let Err(e) = self.feed_writer(writer, Vec::new(), true).await? {
            return Ok(Err(e));
        }
        self.collect_chunk().await;
        let w = self.table.get_mut(writer)?;
        w.finished = true;
        let (batch, sent, created, failure) = (
            w.statement.batch.clone(),
            w.sent,
            w.created,
            w.error.clone(),
        );
        if sent > 0 {
            // Closes the bar, also when fewer rows came than the guest expected.
            self.batch_progress(&batch, sent, Some(sent));
        }
        Ok(match failure {
            Some(e) => Err(e),
            None => Ok(created),
        })
    }

    /// The batch functions: all rows at once, through a writer of the host's.
    async fn write_all(
        &mut self,
        statement: Result<BatchStatement, wit::GraphError>,
        rows: Vec<wit::Params>,
    ) -> wasmtime::Result<Result<u64, wit::GraphError>> {
        let writer = match self.open_writer(statement, false)? {
            Ok(writer) => writer,
            Err(e) => return Ok(Err(e)),
        };
        self.expect_rows(&writer, rows.len() as u64)?;
        let result = match self.feed_writer(&writer, rows, false).await? {
            Ok(()) => self.finish_writer(&writer).await?,
            Err(e) => Err(e),
        };
        // A chunk may still be in flight after a bad row.
        self.collect_chunk().await;
        self.table.delete(writer)?;
        Ok(result)
    }

    /// Opens a writer: a guest's (whose failed chunk fails the migration), or
    /// the host's own for the batch functions.
    fn open_writer(
        &mut self,
        statement: Result<BatchStatement, wit::GraphError>,
        fails_migration: bool,
    ) -> wasmtime::Result<Result<Resource<BatchWriter>, wit::GraphError>> {
        let statement = match statement {
            Ok(statement) => statement,
            Err(e) => return Ok(Err(e)),
        };
        if let Err(e) = self.check_batch_write(&statement.batch) {
            return Ok(Err(e));
        }
        Ok(Ok(self
            .table
            .push(BatchWriter::new(statement, fails_migration))?))
    }

    pub(super) fn open_create_nodes_impl(
        &mut self,
        batch: String,
        label: String,
    ) -> wasmtime::Result<Result<Resource<BatchWriter>, wit::GraphError>> {
        self.open_writer(BatchStatement::create_nodes(batch, &label), true)
    }

    pub(super) fn open_merge_nodes_impl(
        &mut self,
        batch: String,
        label: String,
        key: Vec<String>,
    ) -> wasmtime::Result<Result<Resource<BatchWriter>, wit::GraphError>> {
        self.open_writer(BatchStatement::merge_nodes(batch, &label, &key), true)
    }

    pub(super) fn open_create_relationships_impl(
        &mut self,
        batch: String,
        rel_type: String,
        from: wit::Endpoint,
        to: wit::Endpoint,
    ) -> wasmtime::Result<Result<Resource<BatchWriter>, wit::GraphError>> {
        self.open_writer(
            BatchStatement::create_relationships(batch, &rel_type, &from, &to),
            true,
        )
    }

    pub(super) fn writer_expect_rows_impl(
        &mut self,
        writer: Resource<BatchWriter>,
        rows: u64,
    ) -> wasmtime::Result<()> {
        self.expect_rows(&writer, rows)
    }

    /// Sets how many rows `writer` will get, and starts the progress bar when
    /// they make several chunks.
    fn expect_rows(&mut self, writer: &Resource<BatchWriter>, rows: u64) -> wasmtime::Result<()> {
        let chunk_size = self.settings().batch_chunk.max(1) as u64;
        let w = self.table.get_mut(writer)?;
        if w.sent > 0 || w.finished {
            // Too late to start a bar from zero; the counter goes on.
            return Ok(());
        }
        w.total = Some(rows);
        let batch = w.statement.batch.clone();
        if rows > chunk_size {
            self.batch_progress(&batch, 0, Some(rows));
        }
        Ok(())
    }

    pub(super) async fn writer_write_impl(
        &mut self,
        writer: Resource<BatchWriter>,
        rows: Vec<wit::Params>,
    ) -> wasmtime::Result<Result<(), wit::GraphError>> {
        self.feed_writer(&writer, rows, false).await
    }

    pub(super) async fn writer_finish_impl(
        &mut self,
        writer: Resource<BatchWriter>,
    ) -> wasmtime::Result<Result<u64, wit::GraphError>> {
        self.finish_writer(&writer).await
    }

    /// The guest dropped its writer: rows it did not send are discarded; a
    /// chunk still in flight is collected first, so its outcome is recorded.
    pub(super) async fn writer_drop_impl(
        &mut self,
        writer: Resource<BatchWriter>,
    ) -> wasmtime::Result<()> {
        if self
            .chunk_in_flight
            .as_ref()
            .is_some_and(|c| c.writer == writer.rep())
        {
            self.collect_chunk().await;
        }
        self.table.delete(writer)?;
        Ok(())
    }

    pub(super) async fn batch_create_nodes_impl(
        &mut self,
        batch: String,
        label: String,
        rows: Vec<wit::Params>,
    ) -> wasmtime::Result<Result<u64, wit::GraphError>> {
        self.write_all(BatchStatement::create_nodes(batch, &label), rows)
            .await
    }

    pub(super) async fn batch_merge_nodes_impl(
        &mut self,
        batch: String,
        label: String,
        key: Vec<String>,
        rows: Vec<wit::Params>,
    ) -> wasmtime::Result<Result<u64, wit::GraphError>> {
        self.write_all(BatchStatement::merge_nodes(batch, &label, &key), rows)
            .await
    }

    pub(super) async fn batch_create_relationships_impl(
        &mut self,
        batch: String,
        rel_type: String,
        from: wit::Endpoint,
        to: wit::Endpoint,
        rows: Vec<wit::Params>,
    ) -> wasmtime::Result<Result<u64, wit::GraphError>> {
        self.write_all(
            BatchStatement::create_relationships(batch, &rel_type, &from, &to),
            rows,
        )
        .await
    }

    pub(super) async fn delete_batch_impl(
        &mut self,
        batch: String,
    ) -> wasmtime::Result<Result<u64, wit::GraphError>> {
        self.collect_chunk().await;
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
        // A deletion commits on its own, outside the migration's transaction: it
        // is bounded to what this step may undo.
        let refusal = if !self
            .settings()
            .policy
            .allowed_classes()
            .contains(&Class::Write)
        {
            Some((
                "graphmig.Policy.Write",
                "delete-batch writes; this migration may not write".to_string(),
            ))
        } else if !self.batches.iter().any(|b| b.id == batch)
            && !self.revertible_batches.contains(&batch)
            && !self.settings().grants.delete_batches
        {
            Some((
                "graphmig.Policy.DeleteBatch",
                format!(
                    "batch `{batch}` was not created by this attempt; deleting another migration's batch needs `grants = [\"delete-batches\"]`"
                ),
            ))
        } else {
            None
        };
        if let Some((code, message)) = refusal {
            let error = wit::GraphError {
                kind: wit::GraphErrorKind::Forbidden,
                code: code.into(),
                message,
            };
            self.push_journal(entry.finish(
                started,
                StatementOutcome::Denied,
                Some(&error.code),
                Some(&error.message),
                0,
            ));
            return Ok(Err(error));
        }
        let Some(db) = self.db() else {
            return Ok(Ok(0));
        };
        let chunk = self.settings().batch_chunk.max(1);
        match db.delete_batch(&batch, chunk).await {
            Ok(n) => {
                entry.counters = format!("-{n} node(s) and relationship(s)");
                self.push_journal(entry.finish(started, StatementOutcome::Ok, None, None, 0));
                match self.batches.iter_mut().find(|b| b.id == batch) {
                    Some(own) => own.outcome = "deleted by the migration".into(),
                    None => self.deleted_batches.push(batch),
                }
                Ok(Ok(n))
            }
            Err(e) => {
                self.push_journal(entry.failed(started, &e.code, &e.message));
                Ok(Err(to_wit(&e)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::values::bolt_to_value;
    use super::*;

    fn row(fields: &[(&str, i64)]) -> wit::Params {
        fields
            .iter()
            .map(|(name, v)| {
                (
                    name.to_string(),
                    bolt_to_value(&BoltType::Integer((*v).into())),
                )
            })
            .collect()
    }

    fn int(v: i64) -> BoltType {
        BoltType::Integer(v.into())
    }

    fn map(fields: &[(&str, i64)]) -> BoltType {
        bolt_map(
            fields.iter().map(|(n, _)| n.to_string()),
            fields.iter().map(|(_, v)| int(*v)).collect(),
        )
    }

    #[test]
    fn rows_with_the_same_fields_travel_as_lists() {
        let mut chunk = ChunkRows::default();
        chunk.push(0, row(&[("id", 1), ("n", 10)])).expect("row");
        chunk.push(1, row(&[("id", 2), ("n", 20)])).expect("row");
        assert_eq!(chunk.len(), 2);
        let (rows, columns) = chunk.into_parameter();
        assert_eq!(columns, Some(vec!["id".to_string(), "n".to_string()]));
        let list = |a, b| {
            BoltType::List(BoltList {
                value: vec![int(a), int(b)],
            })
        };
        assert_eq!(
            rows,
            BoltType::List(BoltList {
                value: vec![list(1, 10), list(2, 20)]
            })
        );
    }

    #[test]
    fn a_row_with_other_fields_turns_the_chunk_into_maps() {
        let mut chunk = ChunkRows::default();
        chunk.push(0, row(&[("id", 1), ("n", 10)])).expect("row");
        // Same names, another order: not the same columns.
        chunk.push(1, row(&[("n", 20), ("id", 2)])).expect("row");
        chunk.push(2, row(&[("id", 3)])).expect("row");
        let (rows, columns) = chunk.into_parameter();
        assert_eq!(columns, None);
        assert_eq!(
            rows,
            BoltType::List(BoltList {
                value: vec![
                    map(&[("id", 1), ("n", 10)]),
                    map(&[("n", 20), ("id", 2)]),
                    map(&[("id", 3)]),
                ]
            })
        );
    }

    #[test]
    fn a_repeated_field_keeps_its_last_value_as_in_a_map() {
        let mut chunk = ChunkRows::default();
        chunk.push(0, row(&[("id", 1), ("id", 2)])).expect("row");
        let (rows, columns) = chunk.into_parameter();
        assert_eq!(columns, None);
        assert_eq!(
            rows,
            BoltType::List(BoltList {
                value: vec![map(&[("id", 2)])]
            })
        );
    }

    #[test]
    fn a_row_with_the_batch_tag_is_refused_and_changes_nothing() {
        let mut chunk = ChunkRows::default();
        chunk.push(0, row(&[("id", 1)])).expect("row");
        let error = chunk
            .push(1, row(&[(BATCH_TAG, 7)]))
            .expect_err("the tag is the host's");
        assert_eq!(error.code, "graphmig.InvalidName");
        assert!(error.message.starts_with("row 1:"), "{}", error.message);
        assert_eq!(chunk.len(), 1);
        assert_eq!(chunk.into_parameter().1, Some(vec!["id".to_string()]));
    }

    #[test]
    fn statements_over_lists_and_over_maps() {
        let columns = ["id".to_string(), "name".to_string(), "boss".to_string()];
        let create = BatchStatement::create_nodes("b".into(), "Person").expect("create");
        assert_eq!(
            create.cypher(Some(&columns)),
            "UNWIND $rows AS row CREATE (n:`Person` {_graphmig_batch: $batch}) SET n.`id` = row[0], n.`name` = row[1], n.`boss` = row[2]"
        );
        assert_eq!(
            create.cypher(None),
            "UNWIND $rows AS row CREATE (n:`Person` {_graphmig_batch: $batch}) SET n += row"
        );
        assert_eq!(
            create.cypher(Some(&[])),
            "UNWIND $rows AS row CREATE (n:`Person` {_graphmig_batch: $batch})"
        );

        let merge =
            BatchStatement::merge_nodes("b".into(), "Person", &["id".into()]).expect("merge");
        assert_eq!(
            merge.cypher(Some(&columns)),
            "UNWIND $rows AS row MERGE (n:`Person` {`id`: row[0]}) ON CREATE SET n.`id` = row[0], n.`name` = row[1], n.`boss` = row[2], n._graphmig_batch = $batch ON MATCH SET n.`id` = row[0], n.`name` = row[1], n.`boss` = row[2]"
        );
        assert_eq!(
            merge.cypher(None),
            "UNWIND $rows AS row MERGE (n:`Person` {`id`: row.`id`}) ON CREATE SET n += row, n._graphmig_batch = $batch ON MATCH SET n += row"
        );
        // A key the rows lack is null, as `row.key` is for a map without it:
        // the server refuses to merge on it.
        let by_email =
            BatchStatement::merge_nodes("b".into(), "Person", &["email".into()]).expect("merge");
        assert!(
            by_email
                .cypher(Some(&columns))
                .starts_with("UNWIND $rows AS row MERGE (n:`Person` {`email`: null})")
        );

        let endpoint = |label: &str, field: &str| wit::Endpoint {
            label: label.into(),
            key: "id".into(),
            field: field.into(),
        };
        let reports = BatchStatement::create_relationships(
            "b".into(),
            "REPORTS_TO",
            &endpoint("Person", "id"),
            &endpoint("Person", "boss"),
        )
        .expect("relationships");
        assert_eq!(
            reports.cypher(Some(&columns)),
            "UNWIND $rows AS row MATCH (a:`Person` {`id`: row[0]}) MATCH (b:`Person` {`id`: row[2]}) CREATE (a)-[r:`REPORTS_TO`]->(b) SET r.`name` = row[1], r._graphmig_batch = $batch"
        );
        assert_eq!(
            reports.cypher(None),
            "UNWIND $rows AS row MATCH (a:`Person` {`id`: row.`id`}) MATCH (b:`Person` {`id`: row.`boss`}) CREATE (a)-[r:`REPORTS_TO`]->(b) SET r = row, r._graphmig_batch = $batch REMOVE r.id, r.boss"
        );
    }
}
