//! The `backfill` host call: a keyset-paginated loop the host drives, each chunk committed on its own with its checkpoint, resumed by the next attempt.

use std::time::{Duration, Instant};

use neo4rs::{BoltList, BoltType};

use super::bindings::graphmig::migration::{context, types};
use super::host_context::{GuestState, deadline_trap};
use crate::graph::progress::BackfillMark;
use crate::graph::{GraphError, GraphTxn};
use crate::journal::{JournalEntry, StatementOutcome};

/// What one backfill asks for, checked and rendered.
struct Plan {
    name: String,
    /// The page queries: the first keys up to `$upper`, and the next ones
    /// after `$cursor` (two forms, so that neither has an `OR` in the way of
    /// the key's index).
    first_page: String,
    next_page: String,
    /// The census: the largest key and how many nodes, when it begins.
    census: String,
    write: String,
    chunk: u32,
    hash: String,
}

fn refused(code: &str, message: String) -> types::GraphError {
    GuestState::host_error(code, types::GraphErrorKind::Other, message)
}

fn bolt_int(value: i64) -> BoltType {
    BoltType::Integer(neo4rs::BoltInteger::new(value))
}

fn null() -> BoltType {
    BoltType::Null(neo4rs::BoltNull)
}

/// A key as the ledger keeps it.
fn key_text(key: &BoltType) -> String {
    match key {
        BoltType::Integer(n) => n.value.to_string(),
        BoltType::String(s) => format!("{:?}", crate::journal::cut(&s.value, 256)),
        BoltType::Float(f) => f.value.to_string(),
        BoltType::Null(_) => "null".into(),
        _ => "?".into(),
    }
}

impl GuestState {
    fn plan_backfill(&self, spec: &context::BackfillSpec) -> Result<Plan, types::GraphError> {
        let identifier = |what: &str, name: &str| {
            if name.is_empty()
                || name.len() > 128
                || name.starts_with("__Graphmig")
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(refused(
                    "graphmig.InvalidName",
                    format!(
                        "backfill {what} `{name}`: use 1 to 128 letters, digits and underscores"
                    ),
                ));
            }
            Ok(())
        };
        if spec.name.is_empty() || spec.name.len() > 256 {
            return Err(refused(
                "graphmig.InvalidName",
                "a backfill needs a name of 1 to 256 bytes (a later attempt resumes it by name)"
                    .into(),
            ));
        }
        identifier("label", &spec.label)?;
        identifier("key", &spec.key)?;
        let (label, key) = (
            crate::schema::quote(&spec.label),
            crate::schema::quote(&spec.key),
        );
        let filter = match spec.filter.trim() {
            "" => String::new(),
            f => format!(" AND ({f})"),
        };
        let page = |after: &str| {
            format!(
                "MATCH (n:{label}) WHERE n.{key} <= $upper{after}{filter} \
                 RETURN n.{key} AS key ORDER BY key LIMIT $size"
            )
        };
        let (first_page, next_page) = (page(""), page(&format!(" AND n.{key} > $cursor")));
        let census = format!(
            "MATCH (n:{label}) WHERE n.{key} IS NOT NULL{filter} \
             RETURN max(n.{key}) AS upper, count(n) AS total"
        );
        // Both are guest Cypher (the filter and the write), policed as any.
        let policy = &self.settings().policy;
        for statement in [&next_page, &spec.write] {
            let classification = policy.check(statement).map_err(|denial| {
                GuestState::host_error(
                    &denial.code(),
                    types::GraphErrorKind::Forbidden,
                    format!("backfill `{}`: {denial}", spec.name),
                )
            })?;
            if classification.in_transactions.is_some()
                || classification
                    .classes
                    .contains(&crate::policy::Class::Schema)
            {
                return Err(refused(
                    "graphmig.Invalid",
                    format!(
                        "backfill `{}`: the write must be a plain data statement (no schema, no \
                         IN TRANSACTIONS): the host commits each chunk itself",
                        spec.name
                    ),
                ));
            }
        }
        let chunk = match spec.chunk_size {
            0 => self.settings().backfill.chunk_size,
            n => n,
        };
        use sha2::Digest;
        let hash = hex::encode(sha2::Sha256::digest(
            format!(
                "{}\0{}\0{}\0{}",
                spec.label, spec.key, spec.filter, spec.write
            )
            .as_bytes(),
        ));
        Ok(Plan {
            name: spec.name.clone(),
            first_page,
            next_page,
            census,
            write: spec.write.clone(),
            chunk,
            hash,
        })
    }

    fn journal_chunk(
        &mut self,
        plan: &Plan,
        started: Instant,
        outcome: Result<String, &GraphError>,
    ) {
        let index = self.statements() + 1;
        let mut entry = JournalEntry::new(index, &plan.write, "$batch, $cursor".into());
        let entry = match outcome {
            Ok(counters) => {
                entry.counters = counters;
                entry.finish(started, StatementOutcome::Ok, None, None, 0)
            }
            Err(e) => entry.failed(started, &e.code, &e.message),
        };
        self.push_journal(entry);
    }

    /// `backfill`: see the WIT. Checks the plan, then pages, writes and
    /// checkpoints chunk by chunk until a page comes back empty.
    pub(super) async fn backfill_impl(
        &mut self,
        spec: context::BackfillSpec,
    ) -> wasmtime::Result<Result<context::BackfillReport, types::GraphError>> {
        self.collect_chunk().await;
        let plan = match self.plan_backfill(&spec) {
            Ok(plan) => plan,
            Err(e) => return Ok(Err(e)),
        };
        if let Some(failed) = self.doomed() {
            return Ok(Err(refused(
                "graphmig.TransactionDoomed",
                format!(
                    "statement #{} already failed; no backfill runs",
                    failed.index
                ),
            )));
        }
        if self.mode == super::Mode::DryRun {
            return self.backfill_dry_run(&plan).await;
        }
        let (Some(db), Some(migration)) =
            (self.db(), self.intent.as_ref().map(|i| i.migration.clone()))
        else {
            return Ok(Err(refused(
                "graphmig.NoTransaction",
                "backfills are not available while the host reads metadata".into(),
            )));
        };
        let attempt = self.batch_prefix.clone().unwrap_or_default();
        let graph_err = |e: crate::error::Error| GraphError::database(e);

        // Where it stands: the checkpoint its last committed chunk left.
        let deadline = self.deadline();
        let allowed = self.settings().limits.deadline;
        let start = async {
            let mut txn = db.begin().await.map_err(graph_err)?;
            let mark = txn.read_backfill(&migration, &plan.name).await;
            let mark = match mark {
                Ok(Some(mark)) => Some(mark),
                Ok(None) => None,
                Err(e) => {
                    let _ = txn.rollback().await;
                    return Err(e);
                }
            };
            let mark = match mark {
                Some(mark) => mark,
                None => {
                    let counted = census(&mut txn, &plan).await;
                    let _ = txn.rollback().await;
                    let (upper, total) = counted?;
                    BackfillMark {
                        hash: plan.hash.clone(),
                        upper,
                        total,
                        cursor: null(),
                        rows: 0,
                        chunks: 0,
                        done: total == 0,
                    }
                }
            };
            Ok::<_, GraphError>(mark)
        };
        let mut mark = match tokio::time::timeout_at(deadline.into(), start).await {
            Err(_) => return Err(deadline_trap(allowed)),
            Ok(Err(e)) => return Ok(Err(super::host_context::to_wit_error(&e))),
            Ok(Ok(mark)) => mark,
        };
        if mark.chunks > 0 || mark.done {
            // An earlier attempt's checkpoint: it goes with this attempt's
            // success, even if no chunk is left to write.
            self.progress_markers = true;
        }
        if mark.hash != plan.hash {
            return Ok(Err(refused(
                "graphmig.EditedBackfill",
                format!(
                    "backfill `{}` was begun by an earlier attempt with another label, key, filter \
                     or write, and {} chunk(s) of it committed; put it back as it was to finish \
                     it, or give the new one another name",
                    plan.name, mark.chunks
                ),
            )));
        }
        // Without an index on the key every page, and a write that matches
        // by key, scans every node of the label: say so before it drags on.
        if !mark.done
            && let Ok((constraints, indexes)) = db.list_schema().await
        {
            let key = [spec.key.clone()];
            let indexed = constraints
                .iter()
                .any(|c| c.label == spec.label && c.properties.first() == key.first())
                || indexes
                    .iter()
                    .any(|i| i.labels.contains(&spec.label) && i.properties.first() == key.first());
            if !indexed {
                self.reporter.warning(&format!(
                    "{}: backfill `{}`: no index on :{}({}), so every chunk scans all {} nodes; \
                     create one in an earlier migration",
                    self.label, plan.name, spec.label, spec.key, spec.label
                ));
            }
        }
        let resumed_after = mark.chunks;
        if resumed_after > 0 && !mark.done {
            self.reporter.warning(&format!(
                "{}: backfill `{}` resumes after chunk {} ({} of {} rows done)",
                self.label, plan.name, mark.chunks, mark.rows, mark.total
            ));
        }
        let report = |mark: &BackfillMark| context::BackfillReport {
            rows: mark.rows,
            chunks: mark.chunks,
            resumed_after,
            total: mark.total,
        };
        let ledger = self.ledger.as_ref().and_then(|(path, target)| {
            Some((
                crate::ledger::SqliteLedger::open(path).ok()?,
                target.clone(),
            ))
        });
        let pacing = self.settings().backfill;
        let began = Instant::now();
        let rows_at_start = mark.rows;
        let progress_label = format!("{} (backfill)", plan.name);
        while !mark.done {
            self.check_deadline()?;
            if self.statements() >= self.settings().limits.statements {
                return Err(Self::limit(
                    crate::error::Limit::Statements,
                    format!(
                        "backfill `{}` at chunk {}; the limit is {} statements",
                        plan.name,
                        mark.chunks + 1,
                        self.settings().limits.statements
                    ),
                ));
            }
            let started = Instant::now();
            let chunk = write_chunk(&db, &plan, &migration, &attempt, &mark);
            // Given up before COMMIT, the chunk's transaction goes back to the
            // pool unfinished and the server drops it: nothing of it commits.
            let (next, counters) = match tokio::time::timeout_at(deadline.into(), chunk).await {
                Err(_) => return Err(deadline_trap(allowed)),
                Ok(Err(e)) => {
                    self.journal_chunk(&plan, started, Err(&e));
                    self.doom(self.statements(), &plan.write, &e.code, &e.message);
                    let mut error = super::host_context::to_wit_error(&e);
                    error.message = format!(
                        "backfill `{}`, chunk {}: {} ({} chunk(s) committed stay; the next \
                         `graphmig run` resumes after them)",
                        plan.name,
                        mark.chunks + 1,
                        error.message,
                        mark.chunks
                    );
                    return Ok(Err(error));
                }
                Ok(Ok(done)) => done,
            };
            mark = next;
            self.progress_markers = true;
            self.journal_chunk(&plan, started, Ok(counters));
            if let Some((ledger, target)) = &ledger {
                let _ = ledger.record_backfill(
                    target,
                    &migration,
                    &plan.name,
                    &attempt,
                    &key_text(&mark.cursor),
                    mark.rows,
                    mark.chunks,
                    mark.total,
                    mark.done,
                );
            }
            if db.history_is_separate()
                && let Err(e) = db
                    .mirror_backfill(&migration, &plan.name, &mark, &attempt)
                    .await
            {
                tracing::warn!(migration = %self.label, error = %e, "mirroring a backfill checkpoint failed");
            }
            self.reporter.batch_progress(
                &self.label,
                &progress_label,
                mark.rows.min(mark.total),
                Some(mark.total.max(1)),
            );
            if mark.done {
                break;
            }
            // Pacing: a pause after each chunk, and no more rows a second
            // (over this attempt) than allowed.
            let mut pause = pacing.delay;
            if pacing.max_rows_per_sec > 0 {
                let due = Duration::from_secs_f64(
                    (mark.rows - rows_at_start) as f64 / pacing.max_rows_per_sec as f64,
                );
                pause = pause.max(due.saturating_sub(began.elapsed()));
            }
            if !pause.is_zero() {
                let until = (Instant::now() + pause).min(deadline);
                tokio::time::sleep_until(until.into()).await;
            }
        }
        self.reporter.batch_progress(
            &self.label,
            &progress_label,
            mark.total.max(1),
            Some(mark.total.max(1)),
        );
        Ok(Ok(report(&mark)))
    }

    /// In a dry run: the first chunk only, in the migration's transaction
    /// (rolled back with it), and the estimate.
    async fn backfill_dry_run(
        &mut self,
        plan: &Plan,
    ) -> wasmtime::Result<Result<context::BackfillReport, types::GraphError>> {
        let Some(mut txn) = self.txn.take() else {
            return Ok(Err(refused(
                "graphmig.NoTransaction",
                "no transaction".into(),
            )));
        };
        let started = Instant::now();
        let deadline = self.deadline();
        let allowed = self.settings().limits.deadline;
        let work = async {
            let (upper, total) = census(&mut txn, plan).await?;
            let keys = page(&mut txn, plan, &upper, &null()).await?;
            let counters = txn
                .run_discarding(
                    &plan.write,
                    vec![
                        ("batch".into(), BoltType::List(BoltList::from(keys.clone()))),
                        ("cursor".into(), null()),
                    ],
                )
                .await?;
            Ok::<_, GraphError>((total, keys.len() as u64, counters))
        };
        let outcome = tokio::time::timeout_at(deadline.into(), work).await;
        self.txn = Some(txn);
        let (total, rows, counters) = match outcome {
            Err(_) => return Err(deadline_trap(allowed)),
            Ok(Err(e)) => {
                self.journal_chunk(plan, started, Err(&e));
                self.doom(self.statements(), &plan.write, &e.code, &e.message);
                return Ok(Err(super::host_context::to_wit_error(&e)));
            }
            Ok(Ok(done)) => done,
        };
        self.journal_chunk(
            plan,
            started,
            Ok(format!(
                "{} (dry run: the first chunk only)",
                crate::graph::describe_counters(&counters)
            )),
        );
        let chunks = total.div_ceil(u64::from(plan.chunk.max(1)));
        self.reporter.warning(&format!(
            "{}: dry run of backfill `{}`: the first chunk wrote {rows} node(s); about {total} in \
             {chunks} chunk(s) of {}",
            self.label, plan.name, plan.chunk
        ));
        Ok(Ok(context::BackfillReport {
            rows,
            chunks: u32::from(rows > 0),
            resumed_after: 0,
            total,
        }))
    }
}

/// The largest key and the number of nodes the backfill covers, now.
async fn census(txn: &mut GraphTxn, plan: &Plan) -> Result<(BoltType, u64), GraphError> {
    let rows = txn.run(&plan.census, Vec::new()).await?;
    let row = rows.into_iter().next().unwrap_or_default();
    let field = |name: &str| {
        row.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(null)
    };
    let total = match field("total") {
        BoltType::Integer(n) => u64::try_from(n.value).unwrap_or(0),
        _ => 0,
    };
    Ok((field("upper"), total))
}

/// The next page of keys after `cursor`, up to `upper`.
async fn page(
    txn: &mut GraphTxn,
    plan: &Plan,
    upper: &BoltType,
    cursor: &BoltType,
) -> Result<Vec<BoltType>, GraphError> {
    let mut params = vec![
        ("upper".into(), upper.clone()),
        ("size".into(), bolt_int(i64::from(plan.chunk))),
    ];
    let query = match cursor {
        BoltType::Null(_) => &plan.first_page,
        cursor => {
            params.push(("cursor".into(), cursor.clone()));
            &plan.next_page
        }
    };
    let rows = txn.run(query, params).await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| row.into_iter().find(|(k, _)| k == "key").map(|(_, v)| v))
        .collect())
}

/// One chunk in a transaction of its own: the page, the write, the
/// checkpoint, the commit. Returns the new checkpoint and the counters.
async fn write_chunk(
    db: &crate::graph::GraphDb,
    plan: &Plan,
    migration: &str,
    attempt: &str,
    mark: &BackfillMark,
) -> Result<(BackfillMark, String), GraphError> {
    let mut txn = db.begin().await.map_err(GraphError::database)?;
    let result = async {
        let keys = page(&mut txn, plan, &mark.upper, &mark.cursor).await?;
        let mut next = mark.clone();
        let mut counters = String::from("(last page empty: done)");
        match keys.last() {
            None => next.done = true,
            Some(last) => {
                let last = last.clone();
                let written = txn
                    .run_discarding(
                        &plan.write,
                        vec![
                            ("batch".into(), BoltType::List(BoltList::from(keys.clone()))),
                            ("cursor".into(), mark.cursor.clone()),
                        ],
                    )
                    .await?;
                counters = format!(
                    "chunk {}: {} key(s) up to {}; {}",
                    mark.chunks + 1,
                    keys.len(),
                    key_text(&last),
                    crate::graph::describe_counters(&written)
                );
                next.rows += keys.len() as u64;
                next.chunks += 1;
                next.cursor = last;
                // A short page is the last one.
                next.done = (keys.len() as u64) < u64::from(plan.chunk);
            }
        }
        txn.write_backfill(migration, &plan.name, &next, attempt)
            .await?;
        Ok::<_, GraphError>((next, counters))
    }
    .await;
    match result {
        Ok(done) => {
            txn.commit().await?;
            Ok(done)
        }
        Err(e) => {
            let _ = txn.rollback().await;
            Err(e)
        }
    }
}
