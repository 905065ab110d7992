//! The host side of the `context` interface: Cypher inside the migration's
//! transaction under the policy and limits, datasets, and logging.

use std::io::Read;
use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::{Resource, ResourceTable};

use super::host_batch::BatchWriter;
use wasmtime_wasi::WasiCtx;

use super::bindings::graphmig::migration::{context, types};
use super::limits::MemoryLimiter;
use super::values::{bolt_to_value, held_bytes, summarize_params, value_to_bolt};
use crate::config::MigrationSettings;
use crate::error::{FailedStatement, Limit};
use crate::graph::{GraphDb, GraphError, GraphErrorKind, GraphTxn};
use crate::journal::{
    BatchRecord, DatasetRead, GuestRecord, JournalEntry, RefactorStep, SchemaStep, StatementOutcome,
};
use crate::migration::Checksum;
use crate::reporter::{LogLevel, Reporter};
use crate::schema::Dialect;

/// Longest log line kept; longer ones are cut.
const MAX_LOG_LINE: usize = 8 * 1024;

/// A limit the guest hit inside a host call; it becomes a trap that stops it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{limit} limit exceeded: {detail}")]
pub struct LimitTrap {
    /// Which limit.
    pub limit: Limit,
    /// What was used or asked for.
    pub detail: String,
}

/// Per-instance state: WASI (granting nothing), limits, policy, the open
/// transaction, and what the guest did.
pub struct GuestState {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) limiter: MemoryLimiter,
    settings: MigrationSettings,
    pub(super) mode: super::Mode,
    pub(super) txn: Option<GraphTxn>,
    datasets: Option<Arc<cap_std::fs::Dir>>,
    db: Option<Arc<GraphDb>>,
    pub(super) doomed: Option<FailedStatement>,
    /// A tracked batch's chunk being written while the guest goes on.
    pub(super) chunk_in_flight: Option<super::host_batch::ChunkInFlight>,
    journal: Vec<JournalEntry>,
    pub(super) schema_steps: Vec<SchemaStep>,
    /// Schema steps waiting for the data to commit.
    pub(super) deferred: Vec<crate::journal::DeferredStep>,
    /// Whether a statement of the migration's open transaction wrote data: a
    /// schema step after it waits for the commit (it could not see the writes).
    pub(super) wrote_data: bool,
    /// `file:line` of the `.cypher` statement running, if one is.
    pub(super) location: Option<String>,
    /// A `.cypher` file in per-statement mode: each statement commits before
    /// the next runs, so no schema step waits for data.
    pub(super) per_statement: bool,
    pub(super) batches: Vec<BatchRecord>,
    pub(super) batch_prefix: Option<String>,
    pub(super) revertible_batches: Vec<String>,
    pub(super) deleted_batches: Vec<String>,
    /// The attempt's intent, and whether it is in the history database yet.
    pub(super) intent: Option<crate::graph::intent::IntentDraft>,
    intent_recorded: bool,
    /// The ledger file and target key, for backfill checkpoints.
    pub(super) ledger: Option<(std::path::PathBuf, String)>,
    /// Whether a backfill left checkpoints for the final transaction to clear.
    pub(super) progress_markers: bool,
    pub(super) refactor_steps: Vec<RefactorStep>,
    dataset_reads: Vec<DatasetRead>,
    logs: Vec<(String, String)>,
    log_bytes: u64,
    /// Bytes of journal, steps, batch records and dataset reads kept so far.
    kept_bytes: u64,
    /// A budget spent by work the guest did not wait for (a batch chunk
    /// collected later): the next host call, or the end of the step, stops it.
    pending_trap: Option<LimitTrap>,
    /// When the step's wall-clock time is up.
    deadline: Instant,
    rows_returned: u64,
    bytes_returned: u64,
    pub(super) reporter: Arc<dyn Reporter>,
    /// Set while the host runs a `.cypher` file: nobody reads the rows, so
    /// statements discard them (one round trip instead of two).
    discard_rows: bool,
    pub(super) label: String,
}

impl GuestState {
    /// Weighs every value one host call hands over, before any is converted:
    /// each must be a tree ([`super::values::check_tree`]; a malformed one is left
    /// for the conversion to refuse with its typed error), and together they
    /// stay under the per-call `value-nodes` and `value-mib` limits.
    pub(super) fn weigh_values<'a>(
        &self,
        values: impl IntoIterator<Item = (&'a str, &'a types::Value)> + Clone,
    ) -> wasmtime::Result<()> {
        let limits = &self.settings.limits;
        // Counted first, walked after: values past the cap are refused
        // without walking any of them.
        let listed: u64 = values
            .clone()
            .into_iter()
            .map(|(_, v)| v.nodes.len() as u64)
            .sum();
        if listed > limits.value_nodes {
            return Err(Self::limit(
                Limit::ValueNodes,
                format!(
                    "one call hands over {listed} value nodes; the limit is {}",
                    limits.value_nodes
                ),
            ));
        }
        let (mut nodes, mut bytes) = (0u64, 0u64);
        for (n, (name, value)) in values.into_iter().enumerate() {
            if n % 1024 == 0 {
                self.check_deadline()?;
            }
            let Ok(size) = super::values::check_tree(value) else {
                continue;
            };
            nodes += size.nodes as u64;
            // In the bytes the host holds them in, as wasmtime's hostcall fuel
            // counted them on the way in.
            bytes += (size.nodes * std::mem::size_of::<types::ValueNode>()
                + size.bytes
                + name.len()
                + std::mem::size_of::<(String, types::Value)>()) as u64;
            if nodes > limits.value_nodes {
                return Err(Self::limit(
                    Limit::ValueNodes,
                    format!(
                        "`{}` brings one call's values past {} nodes",
                        crate::journal::cut(name, 64),
                        limits.value_nodes
                    ),
                ));
            }
            if bytes > limits.value_bytes {
                return Err(Self::limit(
                    Limit::ValueBytes,
                    format!(
                        "`{}` brings one call's values past {} bytes",
                        crate::journal::cut(name, 64),
                        limits.value_bytes
                    ),
                ));
            }
        }
        Ok(())
    }

    /// [`Self::weigh_values`] over every field of `rows`.
    pub(super) fn weigh_rows(&self, rows: &[types::Params]) -> wasmtime::Result<()> {
        self.weigh_values(
            rows.iter()
                .flatten()
                .map(|(name, value)| (name.as_str(), value)),
        )
    }

    /// Records that statement `index` failed: the migration is doomed, later
    /// statements fail at once and the transaction rolls back. The first failure
    /// is the one reported.
    pub(super) fn doom(&mut self, index: u32, query: &str, code: &str, message: &str) {
        self.doomed.get_or_insert_with(|| FailedStatement {
            index,
            location: None,
            // Printed and stored: as bounded as the journal's copy.
            query: crate::journal::cut(query, 4 * 1024),
            code: crate::journal::cut(code, 256),
            message: crate::journal::cut(message, 4 * 1024),
        });
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        wasi: WasiCtx,
        table: ResourceTable,
        limiter: MemoryLimiter,
        settings: MigrationSettings,
        mode: super::Mode,
        txn: Option<GraphTxn>,
        env: super::StepEnv,
        reporter: Arc<dyn Reporter>,
        label: String,
    ) -> Self {
        let settings_deadline = settings.limits.deadline;
        GuestState {
            wasi,
            table,
            limiter,
            settings,
            mode,
            txn,
            datasets: env.datasets,
            batch_prefix: env.batch_prefix,
            revertible_batches: env.revertible_batches,
            deleted_batches: Vec::new(),
            intent: env.intent,
            intent_recorded: false,
            ledger: env.ledger,
            progress_markers: false,
            db: env.db,
            doomed: None,
            chunk_in_flight: None,
            journal: Vec::new(),
            schema_steps: Vec::new(),
            deferred: Vec::new(),
            wrote_data: false,
            location: None,
            per_statement: false,
            batches: Vec::new(),
            refactor_steps: Vec::new(),
            dataset_reads: Vec::new(),
            logs: Vec::new(),
            log_bytes: 0,
            kept_bytes: 0,
            pending_trap: None,
            deadline: Instant::now() + settings_deadline,
            rows_returned: 0,
            bytes_returned: 0,
            reporter,
            label,
            discard_rows: false,
        }
    }

    pub(super) fn take_txn(&mut self) -> Option<GraphTxn> {
        self.txn.take()
    }

    pub(super) fn doomed(&self) -> Option<&FailedStatement> {
        self.doomed.as_ref()
    }

    pub(super) fn statements(&self) -> u32 {
        self.journal.len() as u32
    }

    pub(super) fn take_record(&mut self) -> GuestRecord {
        GuestRecord {
            journal: std::mem::take(&mut self.journal),
            dataset_reads: std::mem::take(&mut self.dataset_reads),
            logs: std::mem::take(&mut self.logs),
            schema_steps: std::mem::take(&mut self.schema_steps),
            deferred: std::mem::take(&mut self.deferred),
            batches: std::mem::take(&mut self.batches),
            refactor_steps: std::mem::take(&mut self.refactor_steps),
            deleted_batches: std::mem::take(&mut self.deleted_batches),
            intent_recorded: self.intent_recorded,
            progress_markers: self.progress_markers,
        }
    }

    pub(super) fn push_refactor_step(&mut self, step: RefactorStep) {
        self.keep(step.undo.len() + step.finalize.len(), "refactor step");
        self.refactor_steps.push(step);
    }

    pub(super) fn refactor_count(&self) -> usize {
        self.refactor_steps.len()
    }

    pub(super) fn txn_mut(&mut self) -> Option<&mut GraphTxn> {
        self.txn.as_mut()
    }

    pub(super) fn settings(&self) -> &MigrationSettings {
        &self.settings
    }

    pub(super) fn is_dry_run(&self) -> bool {
        self.mode == super::Mode::DryRun
    }

    pub(super) fn db(&self) -> Option<Arc<GraphDb>> {
        self.db.clone()
    }

    pub(super) fn dialect(&self) -> Dialect {
        self.db.as_ref().map_or(Dialect::Neo4j5, |db| db.dialect())
    }

    /// The number of the next statement, within the statements limit.
    pub(super) fn next_statement(&self) -> wasmtime::Result<u32> {
        let index = self.journal.len() as u32 + 1;
        if index > self.settings.limits.statements {
            return Err(Self::limit(
                Limit::Statements,
                format!(
                    "statement #{index}; the limit is {}",
                    self.settings.limits.statements
                ),
            ));
        }
        Ok(index)
    }

    /// Tells the reporter how far batch `batch` (an id) got, by its name.
    pub(super) fn batch_progress(&self, batch: &str, done: u64, total: Option<u64>) {
        let name = self
            .batches
            .iter()
            .find(|b| b.id == batch)
            .map_or(batch, |b| b.name.as_str());
        self.reporter.batch_progress(&self.label, name, done, total);
    }

    /// Keeps a journal entry, charged to the `journal-kib` budget.
    pub(super) fn push_journal(&mut self, entry: JournalEntry) {
        let weight = entry.query.len()
            + entry.params.len()
            + entry.counters.len()
            + entry.code.as_ref().map_or(0, String::len)
            + entry.message.as_ref().map_or(0, String::len);
        self.keep(weight, "journal entry");
        self.journal.push(entry);
    }

    /// Keeps a schema step (always: its undo is needed), charged to the budget.
    pub(super) fn push_schema_step(&mut self, step: SchemaStep) {
        let weight = step.statement.len() + step.undo.as_ref().map_or(0, String::len);
        self.keep(weight, "schema step");
        self.schema_steps.push(step);
    }

    /// Charges `weight` bytes (plus a record's fixed cost) of what the host keeps
    /// for the ledger. Past the budget the record is still kept (undo
    /// statements must not be lost) and the guest is stopped at its next host
    /// call, so at most one record lands beyond the budget.
    pub(super) fn keep(&mut self, weight: usize, what: &str) {
        const RECORD_COST: u64 = 64;
        self.kept_bytes += weight as u64 + RECORD_COST;
        let budget = self.settings.limits.journal_bytes;
        if self.kept_bytes > budget && self.pending_trap.is_none() {
            self.pending_trap = Some(LimitTrap {
                limit: Limit::JournalBytes,
                detail: format!(
                    "a {what} brings what the host keeps of this migration to {} bytes; the limit is {budget}",
                    self.kept_bytes
                ),
            });
        }
    }

    /// Records the attempt's intent in the history database, once, before the
    /// first work of the step that commits on its own; then, with `step`, one
    /// statement that undoes (or finalizes) it. Nothing is recorded in a dry
    /// run, whose work is all rolled back. A failure here is the work's failure:
    /// it must not happen unrecorded.
    pub(super) async fn record_intent(
        &mut self,
        step: Option<(crate::graph::intent::IntentSteps, &str)>,
    ) -> Result<(), GraphError> {
        if self.is_dry_run() {
            return Ok(());
        }
        let (Some(intent), Some(db)) = (&self.intent, &self.db) else {
            return Ok(());
        };
        if !self.intent_recorded {
            db.record_intent(intent).await?;
            self.intent_recorded = true;
        }
        if let Some((steps, statement)) = step {
            db.add_intent_step(&intent.key, steps, statement).await?;
        }
        Ok(())
    }

    /// Every host call passes here first: past the deadline, or with a budget
    /// spent, the guest stops now rather than at its next instruction.
    pub(super) fn gate(&self) -> wasmtime::Result<()> {
        if let Some(trap) = &self.pending_trap {
            return Err(wasmtime::Error::from(trap.clone()));
        }
        self.check_deadline()
    }

    /// Stops the guest once its deadline has passed. Host calls check it on
    /// entry and host-side loops over guest data check it as they go, so no
    /// call outlives the deadline by more than one step of its loop.
    pub(super) fn check_deadline(&self) -> wasmtime::Result<()> {
        if crate::interrupt::requested() {
            return Err(wasmtime::Error::msg("stopped on request"));
        }
        past_deadline(self.deadline, self.settings.limits.deadline)
    }

    /// The step's deadline.
    pub(super) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// A budget the guest spent without a host call noticing: the step fails
    /// with it even if the guest returned `ok`.
    pub(super) fn pending_trap(&self) -> Option<&LimitTrap> {
        self.pending_trap.as_ref()
    }

    pub(super) fn host_error(
        code: &str,
        kind: types::GraphErrorKind,
        message: String,
    ) -> types::GraphError {
        types::GraphError {
            kind,
            code: code.to_string(),
            message,
        }
    }

    pub(super) fn limit(limit: Limit, detail: String) -> wasmtime::Error {
        wasmtime::Error::from(LimitTrap { limit, detail })
    }

    /// Counts result rows and bytes against the limits.
    fn charge(&mut self, rows: u64, bytes: u64) -> wasmtime::Result<()> {
        self.rows_returned += rows;
        self.bytes_returned += bytes;
        let limits = &self.settings.limits;
        if self.rows_returned > limits.rows {
            return Err(Self::limit(
                Limit::Rows,
                format!(
                    "{} rows returned; the limit is {}",
                    self.rows_returned, limits.rows
                ),
            ));
        }
        if self.bytes_returned > limits.result_bytes {
            return Err(Self::limit(
                Limit::ResultBytes,
                format!(
                    "{} bytes returned; the limit is {}",
                    self.bytes_returned, limits.result_bytes
                ),
            ));
        }
        Ok(())
    }
}

impl GuestState {
    /// `CALL { ... } IN TRANSACTIONS`: in an implicit transaction of its own,
    /// beside the migration's (which stays open), where the target can run
    /// the form given; never in a dry run, since what it commits stays.
    async fn run_in_transactions(
        &mut self,
        index: u32,
        query: &str,
        params: Vec<(String, neo4rs::BoltType)>,
        form: &crate::policy::InTransactions,
        mut entry: JournalEntry,
        started: Instant,
    ) -> wasmtime::Result<Result<types::QueryResult, types::GraphError>> {
        let Some(db) = self.db() else {
            let error = Self::host_error(
                "graphmig.NoTransaction",
                types::GraphErrorKind::Forbidden,
                "run-cypher is not available while the host reads metadata".into(),
            );
            self.push_journal(entry.failed(started, &error.code, &error.message));
            return Ok(Err(error));
        };
        let dialect = db.dialect();
        if let Some(why) = in_transactions_unsupported(dialect, form.on_error.as_deref()) {
            let error = Self::host_error("graphmig.Unsupported", types::GraphErrorKind::Other, why);
            self.doom(index, query, &error.code, &error.message);
            self.push_journal(entry.failed(started, &error.code, &error.message));
            return Ok(Err(error));
        }
        if self.mode == super::Mode::DryRun {
            self.push_journal(entry.finish(
                started,
                StatementOutcome::Skipped,
                Some("graphmig.DryRun"),
                Some("CALL { ... } IN TRANSACTIONS commits on its own: not run in a dry run"),
                0,
            ));
            return Ok(Ok(types::QueryResult { rows: Vec::new() }));
        }
        tracing::debug!(migration = %self.label, statement = index, "run-cypher in transactions (auto-commit)");
        let (deadline, allowed) = (self.deadline, self.settings.limits.deadline);
        let run = tokio::time::timeout_at(deadline.into(), db.run_autocommit(query, params));
        let outcome = match run.await {
            Ok(outcome) => outcome,
            Err(_elapsed) => return Err(deadline_trap(allowed)),
        };
        match outcome {
            Ok(counters) => {
                entry.counters = format!(
                    "{} (auto-commit: committed by the server as it ran)",
                    crate::graph::describe_counters(&counters)
                );
                self.push_journal(entry.finish(started, StatementOutcome::Ok, None, None, 0));
                Ok(Ok(types::QueryResult { rows: Vec::new() }))
            }
            Err(error) => {
                // Its inner transactions committed up to the failure and stay;
                // the migration fails, and the message says so.
                let message = format!(
                    "{} (the inner transactions committed before the failure stay: \
                     `IN TRANSACTIONS` commits as it goes)",
                    error.message
                );
                self.doom(index, query, &error.code, &message);
                self.push_journal(entry.failed(started, &error.code, &message));
                Ok(Err(types::GraphError {
                    message,
                    ..to_wit_error(&error)
                }))
            }
        }
    }

    /// Runs the statements of a Cypher migration in order, each the way a
    /// component's `run-cypher` would (schema statements as schema steps), and
    /// stops at the first that fails, naming its file and line.
    pub(super) async fn run_script(
        &mut self,
        script: &crate::cypher_script::CypherScript,
    ) -> wasmtime::Result<Result<(), crate::error::FailureCause>> {
        use crate::cypher_script::TransactionMode;
        self.discard_rows = true;
        // `[migration.V<n>] transaction` wins over the file's header.
        let mode = self.settings.transaction.unwrap_or(script.transaction);
        let per_statement = mode == TransactionMode::PerStatement;
        self.per_statement = per_statement;
        // What earlier attempts committed, statement by statement: read in the
        // migration's transaction, from the markers they committed with.
        let migration = self.intent.as_ref().map(|i| i.migration.clone());
        let committed = match (&migration, per_statement, self.txn.as_mut()) {
            (Some(migration), true, Some(txn)) => match txn.read_progress(migration).await {
                Ok(done) => done,
                Err(e) => {
                    return Ok(Err(crate::error::FailureCause::Statement(
                        FailedStatement {
                            index: 0,
                            location: Some(script.location(&script.statements[0])),
                            query: String::new(),
                            code: e.code,
                            message: e.message,
                        },
                    )));
                }
            },
            _ => Default::default(),
        };
        // Markers of an earlier attempt go with this one's success.
        if !committed.is_empty() {
            self.progress_markers = true;
        }
        for (number, statement) in (1u32..).zip(&script.statements) {
            let hash = statement_hash(&statement.text);
            if let Some(recorded) = committed.get(&number) {
                if *recorded != hash {
                    return Ok(Err(crate::error::FailureCause::Statement(
                        FailedStatement {
                            index: number,
                            location: Some(script.location(statement)),
                            query: statement.text.clone(),
                            code: "graphmig.EditedStatement".into(),
                            message: format!(
                                "statement {number} committed in an earlier attempt (per-statement \
                             mode) and has been edited since; put it back as it was, and write \
                             the change as a new statement or a new migration"
                            ),
                        },
                    )));
                }
                let mut entry = JournalEntry::new(number, &statement.text, String::new());
                self.push_journal(entry.finish(
                    Instant::now(),
                    StatementOutcome::Skipped,
                    Some("graphmig.Committed"),
                    Some("committed by an earlier attempt (per-statement mode)"),
                    0,
                ));
                continue;
            }
            let schema = crate::policy::classify(&statement.text)
                .is_ok_and(|c| c.classes.contains(&crate::policy::Class::Schema));
            self.location = Some(script.location(statement));
            let failure = if let Some(directive) = &statement.backfill {
                let spec = context::BackfillSpec {
                    name: format!("statement {number}"),
                    label: directive.label.clone(),
                    key: directive.key.clone(),
                    filter: directive.filter.clone(),
                    write: statement.text.clone(),
                    chunk_size: directive.chunk_size,
                };
                self.backfill_impl(spec)
                    .await?
                    .err()
                    .map(|e| (e.code, e.message))
            } else if schema {
                self.raw_schema_impl(statement.text.clone())
                    .await?
                    .err()
                    .map(|e| match e {
                        types::SchemaError::Graph(g) => (g.code, g.message),
                        types::SchemaError::Unsupported(m) => ("graphmig.Unsupported".into(), m),
                        types::SchemaError::Invalid(m) => ("graphmig.Invalid".into(), m),
                    })
            } else {
                context::Host::run_cypher(self, statement.text.clone(), Vec::new())
                    .await?
                    .err()
                    .map(|e| (e.code, e.message))
            };
            let failure = match failure {
                None if per_statement && self.mode == super::Mode::Apply => self
                    .commit_statement(migration.as_deref(), number, &hash)
                    .await
                    .err()
                    .map(|e| (e.code, e.message)),
                other => other,
            };
            if let Some((code, mut message)) = failure {
                if per_statement && number > 1 {
                    message.push_str(&format!(
                        " (per-statement mode: statements 1 to {} committed and stay; the next \
                         `graphmig run` resumes at statement {number})",
                        number - 1
                    ));
                }
                return Ok(Err(crate::error::FailureCause::Statement(
                    FailedStatement {
                        index: self.statements(),
                        location: Some(script.location(statement)),
                        query: statement.text.clone(),
                        code,
                        message,
                    },
                )));
            }
        }
        // The markers go with the transaction that records the migration
        // (the runner clears them there: `progress_markers`).
        Ok(Ok(()))
    }

    /// Per-statement mode: commits the statement that just ran with its
    /// marker, and opens the next transaction. Its schema steps become part of
    /// what committed: never undone when a later statement fails, and taken out
    /// of the attempt's intent first (a crash in between then leaves a step
    /// that is there without its marker, which the next run reports, rather
    /// than a marker whose step was undone).
    async fn commit_statement(
        &mut self,
        migration: Option<&str>,
        number: u32,
        hash: &str,
    ) -> Result<(), GraphError> {
        let (Some(migration), Some(db)) = (migration, self.db()) else {
            return Err(GraphError::from_code(
                "graphmig.NoTransaction",
                "per-statement mode needs the database",
            ));
        };
        let attempt = self.batch_prefix.clone().unwrap_or_default();
        if self.intent_recorded
            && let Some(intent) = &self.intent
        {
            db.drop_intent(&intent.key).await?;
            self.intent_recorded = false;
        }
        for step in &mut self.schema_steps {
            if step.outcome == "applied" {
                step.outcome = "committed".into();
            }
        }
        self.wrote_data = false;
        let Some(mut txn) = self.txn.take() else {
            return Err(GraphError::from_code(
                "graphmig.NoTransaction",
                "the migration's transaction was lost",
            ));
        };
        if let Err(e) = txn.write_progress(migration, number, hash, &attempt).await {
            let _ = txn.rollback().await;
            return Err(e);
        }
        txn.commit().await?;
        self.progress_markers = true;
        let next = db.begin().await.map_err(GraphError::database)?;
        self.txn = Some(next);
        Ok(())
    }
}

/// The hash a per-statement marker keeps of a statement's text.
fn statement_hash(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// Why `dialect` cannot run `CALL { ... } IN TRANSACTIONS` with `on_error`,
/// if it cannot. ArcadeDB (measured on 26.10) accepts `ON ERROR CONTINUE` and
/// `BREAK` but fails at the first error all the same: refused rather than
/// passed through; Neo4j 4.4 has no `ON ERROR` at all.
pub(super) fn in_transactions_unsupported(
    dialect: crate::schema::Dialect,
    on_error: Option<&str>,
) -> Option<String> {
    use crate::schema::Dialect;
    let mode = on_error?;
    let supported = match dialect {
        Dialect::Neo4j5 => true,
        Dialect::ArcadeDb => mode == "FAIL",
        Dialect::Neo4j44 => false,
    };
    (!supported).then(|| {
        format!(
            "the {} target does not carry out `IN TRANSACTIONS ... ON ERROR {mode}`; leave `ON ERROR` \
             out (the statement then stops at the first failure), or write the backfill \
             as graphmig's batch operations, which commit chunk by chunk and report each \
             failure",
            dialect.as_str()
        )
    })
}

/// The deadline trap, once `at` has passed; `limit` is the configured time.
pub(super) fn past_deadline(at: Instant, limit: std::time::Duration) -> wasmtime::Result<()> {
    if Instant::now() < at {
        return Ok(());
    }
    Err(deadline_trap(limit))
}

/// The trap that stops a guest whose deadline (`limit` long) has passed.
pub(super) fn deadline_trap(limit: std::time::Duration) -> wasmtime::Error {
    wasmtime::Error::from(LimitTrap {
        limit: Limit::Deadline,
        detail: format!("still running after {} s", limit.as_secs_f64()),
    })
}

/// The WIT form of a graph error; the one place the two kinds are mapped.
pub(super) fn to_wit_error(error: &GraphError) -> types::GraphError {
    types::GraphError {
        kind: match error.kind {
            GraphErrorKind::Syntax => types::GraphErrorKind::Syntax,
            GraphErrorKind::ConstraintViolation => types::GraphErrorKind::ConstraintViolation,
            GraphErrorKind::Transient => types::GraphErrorKind::Transient,
            GraphErrorKind::Forbidden => types::GraphErrorKind::Forbidden,
            GraphErrorKind::Other => types::GraphErrorKind::Other,
        },
        code: error.code.clone(),
        message: error.message.clone(),
    }
}

impl types::Host for GuestState {}

impl context::HostBatchWriter for GuestState {
    async fn expect_rows(
        &mut self,
        writer: Resource<BatchWriter>,
        rows: u64,
    ) -> wasmtime::Result<()> {
        self.gate()?;
        self.writer_expect_rows_impl(writer, rows)
    }

    async fn write(
        &mut self,
        writer: Resource<BatchWriter>,
        rows: Vec<types::Params>,
    ) -> wasmtime::Result<Result<(), types::GraphError>> {
        self.gate()?;
        self.weigh_rows(&rows)?;
        self.writer_write_impl(writer, rows).await
    }

    async fn finish(
        &mut self,
        writer: Resource<BatchWriter>,
    ) -> wasmtime::Result<Result<u64, types::GraphError>> {
        self.gate()?;
        self.writer_finish_impl(writer).await
    }

    async fn drop(&mut self, writer: Resource<BatchWriter>) -> wasmtime::Result<()> {
        self.writer_drop_impl(writer).await
    }
}

impl context::Host for GuestState {
    async fn run_cypher(
        &mut self,
        query: String,
        params: Vec<(String, types::Value)>,
    ) -> wasmtime::Result<Result<types::QueryResult, types::GraphError>> {
        self.gate()?;
        self.weigh_values(params.iter().map(|(name, value)| (name.as_str(), value)))?;
        self.collect_chunk().await;
        let index = self.journal.len() as u32 + 1;
        let limits = self.settings.limits;
        if index > limits.statements {
            return Err(Self::limit(
                Limit::Statements,
                format!("statement #{index}; the limit is {}", limits.statements),
            ));
        }
        if query.len() > limits.statement_bytes {
            return Err(Self::limit(
                Limit::StatementSize,
                format!(
                    "statement #{index} has {} bytes; the limit is {}",
                    query.len(),
                    limits.statement_bytes
                ),
            ));
        }
        let started = Instant::now();
        let mut entry = JournalEntry::new(index, &query, summarize_params(&params));

        if let Some(failed) = &self.doomed {
            let error = Self::host_error(
                "graphmig.TransactionDoomed",
                types::GraphErrorKind::Other,
                format!(
                    "statement #{} already failed ({}); the transaction will be rolled back",
                    failed.index, failed.code
                ),
            );
            self.push_journal(entry.finish(
                started,
                StatementOutcome::Skipped,
                Some(&error.code),
                Some(&error.message),
                0,
            ));
            return Ok(Err(error));
        }

        // The server keeps the last of two parameters with one name; the host would
        // have checked the first. One name, one value.
        let mut names = std::collections::HashSet::with_capacity(params.len());
        let mut bolt_params = Vec::with_capacity(params.len());
        let mut problem = None;
        for (name, value) in &params {
            self.check_deadline()?;
            if !names.insert(name.as_str()) {
                problem = Some((
                    "graphmig.DuplicateParameter",
                    format!("parameter `{name}` is given more than once"),
                ));
                break;
            }
            match value_to_bolt(value) {
                Ok(bolt) => bolt_params.push((name.clone(), bolt)),
                Err(e) => {
                    problem = Some((
                        "graphmig.InvalidParameter",
                        format!("parameter `{name}`: {e}"),
                    ));
                    break;
                }
            }
        }
        if let Some((code, message)) = problem {
            let error = Self::host_error(code, types::GraphErrorKind::Other, message);
            self.doom(index, &query, &error.code, &error.message);
            self.push_journal(entry.failed(started, &error.code, &error.message));
            return Ok(Err(error));
        }

        let classification = match self.settings.policy.check(&query) {
            Ok(classification) => classification,
            Err(denial) => {
                // A denied statement never reaches the database, so the transaction
                // stays usable; the guest decides, and the journal keeps the denial.
                // Text the policy cannot read is the exception: the server would
                // have failed it too (or read it some other way), so it dooms the
                // migration as a failed statement does.
                let error = Self::host_error(
                    &denial.code(),
                    types::GraphErrorKind::Forbidden,
                    denial.to_string(),
                );
                if matches!(denial.rule, "unparsed" | "unsupported") {
                    self.doom(index, &query, &error.code, &error.message);
                }
                tracing::warn!(migration = %self.label, statement = index, rule = denial.rule, "statement denied by policy");
                self.push_journal(entry.finish(
                    started,
                    StatementOutcome::Denied,
                    Some(&error.code),
                    Some(&error.message),
                    0,
                ));
                return Ok(Err(error));
            }
        };
        if self.mode == super::Mode::DryRun
            && classification
                .classes
                .contains(&crate::policy::Class::Schema)
        {
            // Schema changes survive a rollback on some servers (ArcadeDB): a dry
            // run records them and answers as if they had run.
            self.push_journal(entry.finish(
                started,
                StatementOutcome::Skipped,
                Some("graphmig.DryRun"),
                Some("schema statement recorded, not executed"),
                0,
            ));
            return Ok(Ok(types::QueryResult { rows: Vec::new() }));
        }

        if let Some(in_transactions) = &classification.in_transactions {
            return self
                .run_in_transactions(index, &query, bolt_params, in_transactions, entry, started)
                .await;
        }
        if classification.classes.iter().any(|c| {
            matches!(
                c,
                crate::policy::Class::Write | crate::policy::Class::LoadCsv
            )
        }) {
            self.wrote_data = true;
        }

        let Some(mut txn) = self.txn.take() else {
            let error = Self::host_error(
                "graphmig.NoTransaction",
                types::GraphErrorKind::Forbidden,
                "run-cypher is not available while the host reads metadata".into(),
            );
            self.push_journal(entry.finish(
                started,
                StatementOutcome::Denied,
                Some(&error.code),
                Some(&error.message),
                0,
            ));
            return Ok(Err(error));
        };
        tracing::debug!(migration = %self.label, statement = index, query = %query, "run-cypher");
        let limits = self.settings.limits;
        let budget = crate::graph::ResultBudget {
            rows: limits.rows.saturating_sub(self.rows_returned),
            bytes: limits.result_bytes.saturating_sub(self.bytes_returned),
        };
        // Reading a result recurses as deep as its values nest, and the guest
        // chooses how deep (a `reduce` that wraps a list in a list 3,000 times
        // overflowed the guest's fiber stack and aborted the host): the
        // statement runs, and its rows are decoded, converted and dropped, on a
        // runtime worker, whose stack the CLI sizes for it.
        let discard = self.discard_rows;
        let statement = query.clone();
        let (deadline, allowed) = (self.deadline, limits.deadline);
        let task = tokio::spawn(async move {
            // The deadline is kept here, where the transaction is, so that a
            // statement still running when time is up hands the transaction
            // back (given up, for the pool to reset) instead of taking it along.
            let read = async {
                if discard {
                    return txn
                        .run_discarding(&statement, bolt_params)
                        .await
                        .map(|counters| Ok((Vec::new(), counters, 0)));
                }
                // Each row is converted as it arrives and its driver form
                // dropped: what the host holds is what the guest will get,
                // weighed in the bytes it takes.
                let mut left = budget.bytes;
                txn.run_within(&statement, bolt_params, budget, move |row| {
                    let cost = super::values::ALLOCATION_COST;
                    let weight = (std::mem::size_of::<types::Row>()
                        + cost
                        + row.len() * std::mem::size_of::<(String, types::Value)>())
                        as u64
                        + row
                            .iter()
                            .map(|(name, value)| (name.len() + cost) as u64 + held_bytes(value))
                            .sum::<u64>();
                    // Past the budget the row is not converted: the stream stops.
                    if weight > left {
                        return (Vec::new(), weight);
                    }
                    left -= weight;
                    let row: Vec<(String, types::Value)> = row
                        .into_iter()
                        .map(|(name, value)| {
                            let value = bolt_to_value(&value);
                            (name, value)
                        })
                        .collect();
                    (row, weight)
                })
                .await
            };
            let converted = match tokio::time::timeout_at(deadline.into(), read).await {
                Ok(read) => read,
                Err(_elapsed) => {
                    txn.abandon();
                    return (txn, Err(deadline_trap(allowed)));
                }
            };
            (txn, Ok(converted))
        });
        let (txn, outcome) = task
            .await
            .map_err(|e| wasmtime::Error::msg(format!("the statement's task failed: {e}")))?;
        self.txn = Some(txn);
        let outcome = outcome?;
        let outcome = match outcome {
            Ok(Err(overrun)) => {
                // Stopped mid-stream: charged with what arrived, which is past
                // the limit, so the guest stops here with the limit and amount.
                let (rows, bytes) = match overrun {
                    crate::graph::Overrun::Rows(n) => (n, 0),
                    crate::graph::Overrun::Bytes(n) => (0, n),
                    crate::graph::Overrun::Undecoded(weight) => {
                        self.push_journal(entry.failed(
                            started,
                            "graphmig.LimitExceeded",
                            "the result passed a limit; graphmig stopped it before reading it",
                        ));
                        return Err(Self::limit(
                            Limit::ResultBytes,
                            format!(
                                "the server was sending records that would take {weight} bytes \
                                 or more to decode, and {} bytes of the limit remain; graphmig \
                                 stopped them before reading them (return fewer values per row, \
                                 or raise the limit)",
                                budget.bytes
                            ),
                        ));
                    }
                };
                self.push_journal(entry.failed(
                    started,
                    "graphmig.LimitExceeded",
                    "the result passed a limit; the host stopped reading it",
                ));
                // The budget was what the limits left, so this stops the guest.
                self.charge(rows, bytes)?;
                return Ok(Err(Self::host_error(
                    "graphmig.LimitExceeded",
                    types::GraphErrorKind::Other,
                    "the result passed a limit".into(),
                )));
            }
            Ok(Ok(read)) => Ok(read),
            Err(e) => Err(e),
        };
        match outcome {
            Ok((rows, counters, bytes)) => {
                entry.counters = crate::graph::describe_counters(&counters);
                self.push_journal(entry.finish(
                    started,
                    StatementOutcome::Ok,
                    None,
                    None,
                    rows.len() as u64,
                ));
                self.charge(rows.len() as u64, bytes)?;
                Ok(Ok(types::QueryResult { rows }))
            }
            Err(error) => {
                self.doom(index, &query, &error.code, &error.message);
                self.push_journal(entry.failed(started, &error.code, &error.message));
                Ok(Err(to_wit_error(&error)))
            }
        }
    }

    async fn log(&mut self, level: types::LogLevel, message: String) -> wasmtime::Result<()> {
        self.gate()?;
        if self.logs.len() as u32 >= self.settings.limits.log_lines {
            return Err(Self::limit(
                Limit::LogLines,
                format!("more than {} log lines", self.settings.limits.log_lines),
            ));
        }
        let level = match level {
            types::LogLevel::Debug => LogLevel::Debug,
            types::LogLevel::Info => LogLevel::Info,
            types::LogLevel::Warn => LogLevel::Warn,
            types::LogLevel::Error => LogLevel::Error,
        };
        let message = crate::journal::cut(&message, MAX_LOG_LINE);
        self.log_bytes += message.len() as u64;
        if self.log_bytes > self.settings.limits.log_bytes {
            return Err(Self::limit(
                Limit::LogBytes,
                format!(
                    "more than {} bytes of log; the limit is {}",
                    self.log_bytes - message.len() as u64,
                    self.settings.limits.log_bytes
                ),
            ));
        }
        self.reporter.guest_log(&self.label, level, &message);
        self.logs.push((level.as_str().to_string(), message));
        Ok(())
    }

    async fn create_constraint(
        &mut self,
        constraint: types::Constraint,
    ) -> wasmtime::Result<Result<String, types::SchemaError>> {
        self.gate()?;
        self.collect_chunk().await;
        self.create_constraint_impl(constraint).await
    }

    async fn drop_constraint(
        &mut self,
        name: String,
    ) -> wasmtime::Result<Result<(), types::SchemaError>> {
        self.gate()?;
        self.collect_chunk().await;
        self.drop_impl(name, true).await
    }

    async fn create_index(
        &mut self,
        index: types::Index,
    ) -> wasmtime::Result<Result<String, types::SchemaError>> {
        self.gate()?;
        self.collect_chunk().await;
        self.create_index_impl(index).await
    }

    async fn drop_index(
        &mut self,
        name: String,
    ) -> wasmtime::Result<Result<(), types::SchemaError>> {
        self.gate()?;
        self.collect_chunk().await;
        self.drop_impl(name, false).await
    }

    async fn schema(
        &mut self,
    ) -> wasmtime::Result<Result<Vec<types::SchemaElement>, types::SchemaError>> {
        self.gate()?;
        self.collect_chunk().await;
        self.schema_impl().await
    }

    async fn rename_label(
        &mut self,
        from: String,
        to: String,
    ) -> wasmtime::Result<Result<u64, types::GraphError>> {
        self.gate()?;
        self.collect_chunk().await;
        self.rename_label_impl(from, to).await
    }

    async fn rename_type(
        &mut self,
        from: String,
        to: String,
    ) -> wasmtime::Result<Result<u64, types::GraphError>> {
        self.gate()?;
        self.collect_chunk().await;
        self.rename_type_impl(from, to).await
    }

    async fn rename_property(
        &mut self,
        entity: types::Entity,
        label: String,
        from: String,
        to: String,
    ) -> wasmtime::Result<Result<u64, types::GraphError>> {
        self.gate()?;
        self.collect_chunk().await;
        self.rename_property_impl(entity, label, from, to).await
    }

    async fn add_property(
        &mut self,
        entity: types::Entity,
        label: String,
        name: String,
        default: types::Value,
    ) -> wasmtime::Result<Result<u64, types::GraphError>> {
        self.gate()?;
        self.collect_chunk().await;
        self.add_property_impl(entity, label, name, default).await
    }

    async fn remove_property(
        &mut self,
        entity: types::Entity,
        label: String,
        name: String,
    ) -> wasmtime::Result<Result<u64, types::GraphError>> {
        self.gate()?;
        self.collect_chunk().await;
        self.remove_property_impl(entity, label, name).await
    }

    async fn begin_batch(&mut self, name: String) -> wasmtime::Result<String> {
        self.gate()?;
        if self.batches.len() as u32 >= self.settings.limits.batches {
            return Err(Self::limit(
                Limit::Batches,
                format!("more than {} batches", self.settings.limits.batches),
            ));
        }
        Ok(self.begin_batch_impl(name))
    }

    async fn batch_create_nodes(
        &mut self,
        batch: String,
        label: String,
        rows: Vec<types::Params>,
    ) -> wasmtime::Result<Result<u64, types::GraphError>> {
        self.gate()?;
        self.weigh_rows(&rows)?;
        self.batch_create_nodes_impl(batch, label, rows).await
    }

    async fn batch_merge_nodes(
        &mut self,
        batch: String,
        label: String,
        key: Vec<String>,
        rows: Vec<types::Params>,
    ) -> wasmtime::Result<Result<u64, types::GraphError>> {
        self.gate()?;
        self.weigh_rows(&rows)?;
        self.batch_merge_nodes_impl(batch, label, key, rows).await
    }

    async fn batch_create_relationships(
        &mut self,
        batch: String,
        rel_type: String,
        from: types::Endpoint,
        to: types::Endpoint,
        rows: Vec<types::Params>,
    ) -> wasmtime::Result<Result<u64, types::GraphError>> {
        self.gate()?;
        self.weigh_rows(&rows)?;
        self.batch_create_relationships_impl(batch, rel_type, from, to, rows)
            .await
    }

    async fn open_create_nodes(
        &mut self,
        batch: String,
        label: String,
    ) -> wasmtime::Result<Result<Resource<BatchWriter>, types::GraphError>> {
        self.gate()?;
        self.open_create_nodes_impl(batch, label)
    }

    async fn open_merge_nodes(
        &mut self,
        batch: String,
        label: String,
        key: Vec<String>,
    ) -> wasmtime::Result<Result<Resource<BatchWriter>, types::GraphError>> {
        self.gate()?;
        self.open_merge_nodes_impl(batch, label, key)
    }

    async fn open_create_relationships(
        &mut self,
        batch: String,
        rel_type: String,
        from: types::Endpoint,
        to: types::Endpoint,
    ) -> wasmtime::Result<Result<Resource<BatchWriter>, types::GraphError>> {
        self.gate()?;
        self.open_create_relationships_impl(batch, rel_type, from, to)
    }

    async fn delete_batch(
        &mut self,
        batch: String,
    ) -> wasmtime::Result<Result<u64, types::GraphError>> {
        self.gate()?;
        self.delete_batch_impl(batch).await
    }

    async fn backfill(
        &mut self,
        spec: context::BackfillSpec,
    ) -> wasmtime::Result<Result<context::BackfillReport, types::GraphError>> {
        self.gate()?;
        self.backfill_impl(spec).await
    }

    async fn read_dataset(
        &mut self,
        path: String,
    ) -> wasmtime::Result<Result<Vec<u8>, types::DatasetError>> {
        self.gate()?;
        let Some(dir) = self.datasets.clone() else {
            return Ok(Err(types::DatasetError::Forbidden(
                "the project has no data folder".into(),
            )));
        };
        // cap-std resolves the path inside the folder and refuses `..`, absolute
        // paths and symbolic links that lead out of it.
        let file = match dir.open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Err(types::DatasetError::NotFound(e.to_string())));
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::PermissionDenied
                    || e.raw_os_error().is_none() =>
            {
                return Ok(Err(types::DatasetError::Forbidden(e.to_string())));
            }
            Err(e) => return Ok(Err(types::DatasetError::Io(e.to_string()))),
        };
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let remaining = self
            .settings
            .limits
            .result_bytes
            .saturating_sub(self.bytes_returned);
        if size > remaining {
            return Err(Self::limit(
                Limit::ResultBytes,
                format!(
                    "dataset {path} has {size} bytes; {remaining} bytes of the result limit remain"
                ),
            ));
        }
        // Read in pieces, minding the deadline between them: a large file on a
        // slow disk must not hold the guest past its time.
        let mut bytes = Vec::with_capacity(size as usize);
        let mut reader = file.into_std().take(remaining);
        loop {
            self.check_deadline()?;
            match (&mut reader).take(8 * 1024 * 1024).read_to_end(&mut bytes) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Ok(Err(types::DatasetError::Io(e.to_string()))),
            }
        }
        self.charge(0, bytes.len() as u64)?;
        self.keep(path.len(), "dataset read");
        self.dataset_reads.push(DatasetRead {
            path,
            sha256: Checksum::of(&bytes),
            bytes: bytes.len() as u64,
        });
        Ok(Ok(bytes))
    }
}
