//! Runs the chain: resolve it, take the lock, bring the ledger level with the
//! graph's history, verify, load every pending component, then apply each in its
//! own transaction together with its history entry, and journal the attempt.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use crate::chain::Chain;
use crate::config::Config;
use crate::error::{Error, FailureCause, MigrationFailure};
use crate::graph::history::{Fence, HistoryDraft, HistoryEntry};
use crate::graph::lock::{HeldLock, LockHolder, now_ms};
use crate::graph::{GraphDb, GraphTxn, target_key};
use crate::journal::JournalEntry;
use crate::ledger::{
    Action, Attempt, CHAIN_ORIGIN, ChainLink, Finish, Folded, HISTORY_FORMAT, KeptBatch, Outcome,
    SqliteLedger, State, chain_hash, fold_state, now_rfc3339,
};
use crate::migration::{Checksum, Migration, MigrationId, Version};
use crate::reporter::{AppliedSummary, Reporter};
use crate::wasm::{GuestRecord, LoadedComponent, Mode, Sandbox, Step, StepEnv};

/// Options of `graphmig run`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Apply versioned migrations up to and including this version only (and no
    /// repeatable ones).
    pub target: Option<Version>,
    /// Allow pending versions below the highest applied one.
    pub out_of_order: bool,
}

/// Options of `graphmig down`.
#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    /// Revert every applied migration above this version (`0`: all of them);
    /// without it, only the latest.
    pub target: Option<Version>,
    /// Run `down` even of migrations that declare themselves irreversible.
    pub force: bool,
}

/// A migration that a run applied.
#[derive(Debug, Clone)]
pub struct AppliedMigration {
    /// Its identity.
    pub id: MigrationId,
    /// Description.
    pub description: String,
    /// Checksum of the artifact.
    pub checksum: Checksum,
    /// What it measured.
    pub summary: AppliedSummary,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Migrations applied by this run, in order.
    pub applied: Vec<AppliedMigration>,
    /// History entries copied from the graph into the ledger first.
    pub synced: usize,
}

/// What a dry run found for one migration.
#[derive(Debug, Clone)]
pub struct DryRunMigration {
    /// Its identity.
    pub id: MigrationId,
    /// Description.
    pub description: String,
    /// Every statement it sent, with outcome, rows and duration.
    pub statements: Vec<JournalEntry>,
    /// Fuel consumed.
    pub fuel_consumed: u64,
    /// Nodes per label and relationships per type it would add (or remove).
    pub changes: Vec<(String, i64)>,
    /// Why it would fail, if it would.
    pub failure: Option<String>,
}

/// One migration's line in `graphmig status`.
#[derive(Debug, Clone)]
pub struct StatusEntry {
    /// Its identity.
    pub id: MigrationId,
    /// Description.
    pub description: String,
    /// Applied, pending, failed or interrupted.
    pub state: State,
    /// Checksum of the artifact on disk, or (for an applied one that is gone) in
    /// the ledger.
    pub checksum: Checksum,
    /// When it was applied.
    pub applied_at: Option<String>,
    /// How long applying took.
    pub duration_ms: Option<u64>,
    /// Fuel it consumed.
    pub fuel_consumed: Option<u64>,
    /// Statements it ran.
    pub statements: Option<u32>,
    /// The latest error, for failed migrations.
    pub error: Option<String>,
    /// Whether the artifact on disk differs from the applied one.
    pub checksum_changed: bool,
    /// Whether the artifact is missing from the migrations folder.
    pub missing: bool,
}

/// Applies and inspects a project's chain.
pub struct Runner {
    config: Config,
    reporter: Arc<dyn Reporter>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn group(attempts: &[Attempt]) -> BTreeMap<MigrationId, Vec<&Attempt>> {
    let mut grouped: BTreeMap<MigrationId, Vec<&Attempt>> = BTreeMap::new();
    for attempt in attempts {
        if let Some(id) = &attempt.migration {
            grouped.entry(id.clone()).or_default().push(attempt);
        }
    }
    grouped
}

fn folded<'a>(
    grouped: &'a BTreeMap<MigrationId, Vec<&'a Attempt>>,
    id: &MigrationId,
) -> Folded<'a> {
    fold_state(grouped.get(id).into_iter().flatten().copied())
}

/// What bringing the ledger level with the graph found.
struct Synced {
    /// History entries copied into the ledger.
    copied: usize,
    /// The graph's history, as it stands afterwards.
    history: Vec<HistoryEntry>,
}

/// `user@host`, for the ledger and the graph's history; read once per process.
pub fn actor() -> String {
    static ACTOR: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ACTOR.get_or_init(read_actor).clone()
}

fn read_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    format!("{user}@{host}")
}

/// A key unique to one attempt, shared by its ledger row and history entry.
pub(crate) fn new_attempt_key() -> String {
    use std::hash::{BuildHasher, RandomState};
    let a = RandomState::new().hash_one((std::process::id(), now_ms()));
    let b = RandomState::new().hash_one(a);
    format!("{a:016x}{b:016x}")
}

/// Test hook: `GRAPHMIG_TEST_CRASH=before-commit|after-commit` kills the process
/// at that point, to prove crash recovery. Never set it in production.
fn crash_point(point: &str) {
    if std::env::var("GRAPHMIG_TEST_CRASH").is_ok_and(|p| p == point) {
        std::process::abort();
    }
}

/// The hash action a ledger row stands for in the chain (a synced `up` is an `up`).
fn chain_action(action: Action) -> Action {
    match action {
        Action::Sync => Action::Up,
        other => other,
    }
}

impl Runner {
    /// A runner for `config` reporting to `reporter`.
    pub fn new(config: Config, reporter: Arc<dyn Reporter>) -> Self {
        Runner { config, reporter }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn target(&self) -> String {
        target_key(&self.config.database)
    }

    async fn connect(&self) -> Result<Arc<GraphDb>, Error> {
        let db = GraphDb::connect(&self.config.database).await?;
        self.reporter.connected(&self.target(), db.agent());
        db.ensure_history_schema().await?;
        Ok(Arc::new(db))
    }

    async fn lock(&self, db: &Arc<GraphDb>) -> Result<HeldLock, Error> {
        let owner = format!(
            "{}:{}/{}",
            actor(),
            std::process::id(),
            &new_attempt_key()[..8]
        );
        let reporter = self.reporter.clone();
        db.acquire_lock(&owner, self.config.lock, &move |holder: &LockHolder| {
            reporter.waiting_for_lock(&holder.owner)
        })
        .await
    }

    /// The state of every migration on disk, in the ledger and in the graph's
    /// history. Reads the graph when it can be reached (the history is the
    /// shared truth: entries other runners applied show as applied, and history
    /// nodes graphmig did not write fail the command as verify problems); settles
    /// attempts that never finished. Without the database, the ledger alone.
    pub async fn status(&self) -> Result<Vec<StatusEntry>, Error> {
        let chain = Chain::discover(&self.config.migrations_dir)?;
        let ledger = SqliteLedger::open_existing(&self.config.ledger_path)?;
        let mut attempts = match &ledger {
            Some(ledger) => ledger.attempts(&self.target())?,
            None => Vec::new(),
        };
        let db = match GraphDb::connect(&self.config.database).await {
            Ok(db) => db,
            Err(e) => {
                self.reporter.warning(&format!(
                    "cannot reach the database, so this is the local ledger alone: {e}"
                ));
                return Ok(status_entries(&chain, &attempts));
            }
        };
        let history = db.read_history().await?;
        if let Some(ledger) = &ledger
            && attempts.iter().any(|a| a.outcome == Outcome::Running)
        {
            let live = db.lock_holder().await?.filter(|h| h.expires_at > now_ms());
            // A live lock means a runner may be at work: its row is left alone
            // until the lease ends.
            if let Some(holder) = live {
                self.reporter.warning(&format!(
                    "{} holds the lock until {}; unfinished attempts are settled once it is released or expires",
                    holder.owner,
                    crate::graph::lock::ms_to_rfc3339(holder.expires_at)
                ));
            } else {
                self.resolve_interrupted(&db, None, ledger, &attempts, &history)
                    .await?;
                attempts = ledger.attempts(&self.target())?;
            }
        }
        Ok(status_entries(
            &chain,
            &with_graph_history(attempts, &history),
        ))
    }

    /// Every event of the ledger, oldest first (no database needed).
    pub fn history(&self) -> Result<(SqliteLedger, Vec<Attempt>), Error> {
        let ledger = SqliteLedger::open(&self.config.ledger_path)?;
        let attempts = ledger.attempts(&self.target())?;
        Ok((ledger, attempts))
    }

    /// Settles ledger rows that never finished from the graph's history: a row
    /// whose attempt key is in the history committed; any other did not. With the
    /// history in a database of its own, the attempt's marker in the target
    /// database decides, and (holding the lock, `fence`) the missing history
    /// entry is written now. Returns whether it wrote any history entry (the
    /// caller's copy of the history is then stale).
    async fn resolve_interrupted(
        &self,
        db: &GraphDb,
        fence: Option<&Fence>,
        ledger: &SqliteLedger,
        attempts: &[Attempt],
        history: &[HistoryEntry],
    ) -> Result<bool, Error> {
        let mut wrote_history = false;
        for attempt in attempts.iter().filter(|a| a.outcome == Outcome::Running) {
            let mut committed = history
                .iter()
                .find(|h| h.attempt_key == attempt.attempt_key)
                .map(|h| h.chain.clone());
            if committed.is_none()
                && db.history_written_apart()
                && db.marker_exists(&attempt.attempt_key).await?
            {
                let Some(fence) = fence else {
                    self.reporter.warning(&format!(
                        "`{}` committed but its history entry is missing; the next `graphmig run` records it",
                        attempt.description
                    ));
                    continue;
                };
                let draft = HistoryDraft {
                    action: attempt.action,
                    key: attempt
                        .migration
                        .as_ref()
                        .map(MigrationId::key)
                        .unwrap_or_default(),
                    description: attempt.description.clone(),
                    checksum: attempt.checksum.clone(),
                    attempt_key: attempt.attempt_key.clone(),
                    applied_at: attempt.started_at.clone(),
                    applied_by: attempt.actor.clone(),
                };
                let mut txn = db.begin_history().await?;
                let entry = txn
                    .append_history(fence, &draft)
                    .await
                    .map_err(|e| db.database_error(format!("recording the history: {e}")))?;
                txn.commit()
                    .await
                    .map_err(|e| db.database_error(format!("recording the history: {e}")))?;
                committed = Some(entry.chain);
                wrote_history = true;
            }
            if committed.is_none() {
                // Batch chunks commit on their own: an attempt that never committed
                // may have left some, tagged with its key. Only the lock holder may
                // delete them; without the lock the attempt stays interrupted.
                if fence.is_none() {
                    continue;
                }
                let chunk = self.config.defaults.batch_chunk;
                let deleted = db
                    .delete_batch_prefix(&attempt.attempt_key, chunk)
                    .await
                    .map_err(|e| {
                        db.database_error(format!(
                            "deleting the batches of an interrupted attempt: {e}"
                        ))
                    })?;
                if deleted > 0 {
                    self.reporter.warning(&format!(
                        "deleted {deleted} nodes and relationships that the interrupted attempt of `{}` had written through batches",
                        attempt.description
                    ));
                }
            }
            ledger.resolve_interrupted(attempt.id, committed.as_ref())?;
            self.reporter
                .resolved_interrupted(&attempt.description, committed.is_some());
        }
        Ok(wrote_history)
    }

    /// Copies history entries the ledger lacks (applied by other runners) into
    /// it, after settling interrupted attempts; returns how many, and the history.
    async fn sync_ledger(
        &self,
        db: &GraphDb,
        fence: &Fence,
        ledger: &SqliteLedger,
    ) -> Result<Synced, Error> {
        let target = self.target();
        let attempts = ledger.attempts(&target)?;
        let mut history = db.read_history().await?;
        if self
            .resolve_interrupted(db, Some(fence), ledger, &attempts, &history)
            .await?
        {
            history = db.read_history().await?;
        }
        let attempts = ledger.attempts(&target)?;
        let mut synced = 0;
        for entry in &history {
            if attempts.iter().any(|a| a.attempt_key == entry.attempt_key) {
                continue;
            }
            let id = MigrationId::parse_key(&entry.key);
            let action = if entry.action == Action::Up {
                Action::Sync
            } else {
                entry.action
            };
            ledger.record_event(
                &target,
                action,
                id.as_ref(),
                &entry.description,
                &entry.checksum,
                Some(&entry.chain),
                &entry.attempt_key,
                &entry.applied_by,
                &format!(
                    "synced from the graph: {} by {} at {}",
                    entry.action.as_str(),
                    entry.applied_by,
                    entry.applied_at
                ),
            )?;
            synced += 1;
        }
        if synced > 0 {
            self.reporter.synced(synced);
        }
        Ok(Synced {
            copied: synced,
            history,
        })
    }

    /// Brings the ledger level with the graph (`graphmig sync`).
    pub async fn sync(&self) -> Result<usize, Error> {
        let ledger = SqliteLedger::open(&self.config.ledger_path)?;
        let db = self.connect().await?;
        let lock = self.lock(&db).await?;
        let result = self
            .sync_ledger(&db, lock.fence(), &ledger)
            .await
            .map(|synced| synced.copied);
        settle(result, lock.release(&db).await)
    }

    /// Sets aside history nodes graphmig did not write: malformed ones, and
    /// entries that break the hash chain and that no ledger row knows (forged).
    /// Returns their element ids.
    async fn set_aside_foreign_history(
        &self,
        db: &GraphDb,
        ledger: &SqliteLedger,
    ) -> Result<Vec<String>, Error> {
        let (entries, malformed) = db.read_history_nodes().await?;
        let known: std::collections::HashSet<String> = ledger
            .attempts(&self.target())?
            .into_iter()
            .map(|a| a.attempt_key)
            .collect();
        let mut aside: Vec<String> = malformed.into_iter().map(|(id, _)| id).collect();
        let mut previous = CHAIN_ORIGIN.to_string();
        for entry in &entries {
            let breaks = entry.expected_hash() != entry.chain.hash || entry.previous != previous;
            if breaks && !known.contains(&entry.attempt_key) {
                aside.push(entry.node.clone());
            } else {
                previous = entry.chain.hash.clone();
            }
        }
        db.set_aside_history_nodes(&aside).await?;
        Ok(aside)
    }

    /// Batch tags in the target that no attempt made: a migration forged them, or
    /// copied them from elements of another batch.
    async fn foreign_batch_tags(
        &self,
        db: &GraphDb,
        attempts: &[Attempt],
        history: &[HistoryEntry],
    ) -> Result<Vec<String>, Error> {
        let known: std::collections::HashSet<&str> = attempts
            .iter()
            .map(|a| a.attempt_key.as_str())
            .chain(history.iter().map(|h| h.attempt_key.as_str()))
            .collect();
        let tag = crate::graph::batch::BATCH_TAG;
        let mut problems = Vec::new();
        for (what, pattern) in [("node", "(e)"), ("relationship", "()-[e]->()")] {
            let mut txn = db.begin().await?;
            let rows = txn
                .run(
                    &format!(
                        "MATCH {pattern} WHERE e.{tag} IS NOT NULL WITH toString(e.{tag}) AS tag, count(*) AS n RETURN tag, n"
                    ),
                    Vec::new(),
                )
                .await
                .map_err(|e| db.database_error(format!("reading batch tags: {e}")))?;
            let _ = txn.rollback().await;
            for row in rows {
                let value = crate::graph::history::text(&row, "tag").unwrap_or_default();
                let count = crate::graph::history::int(&row, "n").unwrap_or(0);
                // A batch id is `<attempt key>-<n>`.
                let owner = value.rsplit_once('-').map_or("", |(attempt, _)| attempt);
                if !known.contains(owner) {
                    problems.push(format!(
                        "{count} {what}(s) carry the batch tag `{value}`, which no attempt made: a migration forged or copied it (find them with MATCH {pattern} WHERE e.{tag} = '{value}' RETURN e)"
                    ));
                }
            }
        }
        Ok(problems)
    }

    /// Checks files, the ledger's hash chain and its agreement with the graph.
    /// Returns every problem found, each with its way out.
    pub async fn verify(&self) -> Result<Vec<String>, Error> {
        let chain = Chain::discover(&self.config.migrations_dir)?;
        let ledger = SqliteLedger::open(&self.config.ledger_path)?;
        let db = GraphDb::connect(&self.config.database).await?;
        let history = match db.read_history().await {
            Ok(history) => history,
            // Nodes that are not graphmig's entries are problems to report, not a
            // failure of the command.
            Err(Error::VerifyFailed { problems }) => return Ok(problems),
            Err(other) => return Err(other),
        };
        let attempts = ledger.attempts(&self.target())?;
        let mut problems = self.problems(&chain, &attempts, &history);
        problems.extend(self.foreign_batch_tags(&db, &attempts, &history).await?);
        Ok(problems)
    }

    fn problems(
        &self,
        chain: &Chain,
        attempts: &[Attempt],
        history: &[HistoryEntry],
    ) -> Vec<String> {
        let mut problems = Vec::new();
        let grouped = group(attempts);
        for (id, events) in &grouped {
            let folded = fold_state(events.iter().copied());
            if folded.state != State::Applied {
                continue;
            }
            let recorded = folded
                .checksum
                .clone()
                .unwrap_or_else(|| Checksum::from_hex(""));
            match chain.find(id) {
                None => problems.push(format!(
                    "{id} is applied but its artifact is missing from {}: restore it",
                    self.config.migrations_dir.display()
                )),
                // A repeatable migration with a new checksum is simply pending again.
                Some(m) if m.is_repeatable() => {}
                Some(m) if m.checksum() != &recorded => problems.push(format!(
                    "{} changed since it was applied: applied with checksum {recorded}, the file now has {}. Restore the applied file, or accept the change with `graphmig repair`",
                    m.path().display(),
                    m.checksum()
                )),
                Some(_) => {}
            }
        }

        // The ledger's own chain: contiguous and each hash recomputable.
        let mut links: Vec<&Attempt> = attempts.iter().filter(|a| a.chain.is_some()).collect();
        links.sort_by_key(|a| a.chain.as_ref().map_or(0, |c| c.seq));
        let mut previous = CHAIN_ORIGIN.to_string();
        let mut expected_seq = 1;
        for attempt in &links {
            let Some(link) = &attempt.chain else { continue };
            if link.seq != expected_seq {
                if link.seq > expected_seq {
                    // Entries missing from the ledger are reported below, against the graph.
                    if let Some(entry) = history.iter().find(|h| h.chain.seq == link.seq - 1) {
                        previous = entry.chain.hash.clone();
                    }
                } else {
                    problems.push(format!(
                        "ledger row {} repeats chain position {}: the ledger was edited",
                        attempt.id, link.seq
                    ));
                }
            }
            let key = attempt
                .migration
                .as_ref()
                .map(MigrationId::key)
                .unwrap_or_default();
            // A format-2 entry's hash covers fields the ledger does not keep: the
            // row is checked against the graph's entry instead, field by field.
            if let Some(entry) = history
                .iter()
                .find(|h| h.chain.seq == link.seq && h.format >= HISTORY_FORMAT)
            {
                let differs = [
                    (chain_action(attempt.action) != entry.action, "action"),
                    (key != entry.key, "migration"),
                    (attempt.checksum != entry.checksum, "checksum"),
                    (link.hash != entry.chain.hash, "hash"),
                ];
                if let Some((_, field)) = differs.iter().find(|(d, _)| *d) {
                    problems.push(format!(
                        "ledger row {} ({key}) breaks the hash chain at position {}: its {field} differs from the graph's entry; the ledger was edited. Rebuild it from the graph: move it away and run `graphmig sync`",
                        attempt.id, link.seq
                    ));
                }
                previous = link.hash.clone();
                expected_seq = link.seq + 1;
                continue;
            }
            let hash = chain_hash(
                &previous,
                chain_action(attempt.action),
                &key,
                &attempt.checksum,
            );
            if hash != link.hash {
                problems.push(format!(
                    "ledger row {} ({key}) breaks the hash chain at position {}: recorded {}, computed {hash}; the ledger was edited. Rebuild it from the graph: move it away and run `graphmig sync`",
                    attempt.id, link.seq, link.hash
                ));
            }
            previous = link.hash.clone();
            expected_seq = link.seq + 1;
        }

        // The graph's chain, and the two against each other.
        let mut previous = CHAIN_ORIGIN.to_string();
        let mut newest_format = 1;
        for entry in history {
            let hash = entry.expected_hash();
            if hash != entry.chain.hash || entry.previous != previous {
                problems.push(format!(
                    "history node {} ({}) in the graph breaks the hash chain: recorded {}, computed {hash}; the graph's history was edited or forged (`graphmig repair` sets aside entries no ledger row has)",
                    entry.chain.seq, entry.key, entry.chain.hash
                ));
            }
            if entry.format < newest_format {
                problems.push(format!(
                    "history node {} ({}) has format {} after an entry of format {newest_format}: formats never go back, so it was rewritten to escape the hash over all its fields",
                    entry.chain.seq, entry.key, entry.format
                ));
            }
            newest_format = newest_format.max(entry.format);
            previous = entry.chain.hash.clone();
            match links.iter().find(|a| a.chain.as_ref().is_some_and(|c| c.seq == entry.chain.seq)) {
                None => problems.push(format!(
                    "the ledger lags the graph: entry {} ({} {} by {} at {}) is not in the ledger; run `graphmig sync`",
                    entry.chain.seq,
                    entry.action.as_str(),
                    entry.key,
                    entry.applied_by,
                    entry.applied_at
                )),
                Some(row) if row.chain.as_ref().is_some_and(|c| c.hash != entry.chain.hash) => {
                    problems.push(format!(
                        "entry {} differs: the ledger has hash {}, the graph {}",
                        entry.chain.seq,
                        row.chain.as_ref().map_or("", |c| c.hash.as_str()),
                        entry.chain.hash
                    ))
                }
                Some(_) => {}
            }
        }
        for attempt in &links {
            let Some(link) = &attempt.chain else { continue };
            if !history.iter().any(|h| h.chain.seq == link.seq) {
                problems.push(format!(
                    "ledger row {} records chain entry {} ({}), which the graph's history lacks: the history in the graph was deleted or this ledger belongs to another database",
                    attempt.id,
                    link.seq,
                    attempt.description
                ));
            }
        }
        problems
    }

    /// What is pending, checked against what is applied.
    fn pending(
        &self,
        chain: &Chain,
        attempts: &[Attempt],
        options: &RunOptions,
    ) -> Result<Vec<Migration>, Error> {
        let grouped = group(attempts);
        let head = grouped
            .iter()
            .filter(|(id, events)| {
                id.version().is_some() && fold_state(events.iter().copied()).state == State::Applied
            })
            .filter_map(|(id, _)| id.version())
            .max()
            .cloned();
        let mut pending = Vec::new();
        for migration in chain.migrations() {
            let folded = folded(&grouped, migration.id());
            match migration.id() {
                MigrationId::Versioned(version) => {
                    if folded.state == State::Applied {
                        continue;
                    }
                    if options.target.as_ref().is_some_and(|t| version > t) {
                        continue;
                    }
                    if let Some(head) = &head
                        && version < head
                        && !options.out_of_order
                    {
                        return Err(Error::OutOfOrder {
                            version: version.to_string(),
                            head: head.to_string(),
                        });
                    }
                }
                MigrationId::Repeatable(_) => {
                    if options.target.is_some() {
                        continue;
                    }
                    if folded.state == State::Applied
                        && folded.checksum.as_ref() == Some(migration.checksum())
                    {
                        continue;
                    }
                }
            }
            pending.push(migration.clone());
        }
        Ok(pending)
    }

    /// The engine, with the project's compiled-component cache.
    fn sandbox(&self) -> Result<Sandbox, Error> {
        let ceiling = self
            .config
            .overrides
            .iter()
            .map(|(_, settings)| settings.limits.memory_bytes)
            .chain([self.config.defaults.limits.memory_bytes])
            .max()
            .unwrap_or_default();
        Ok(Sandbox::with_memory_ceiling(ceiling)?.with_cache(&self.config.cache_dir))
    }

    /// Reads, checks and compiles every migration, in parallel (each on a thread
    /// of its own; the cache makes later runs cheap), keeping their order.
    fn load_all(
        &self,
        sandbox: &Sandbox,
        pending: &[Migration],
    ) -> Result<Vec<LoadedComponent>, Error> {
        let load = |migration: &Migration| sandbox.load_migration(migration);
        std::thread::scope(|scope| {
            let handles: Vec<_> = pending
                .iter()
                .map(|migration| scope.spawn(move || load(migration)))
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|_| Err(Error::Engine("a compiler thread panicked".into())))
                })
                .collect()
        })
    }

    /// Applies every pending migration, stopping at the first failure, which is
    /// rolled back and returned as [`Error::MigrationFailed`].
    pub async fn run(&self, options: &RunOptions) -> Result<Report, Error> {
        crate::chain::check_built(&self.config.migrations_dir)?;
        let chain = Chain::discover(&self.config.migrations_dir)?;
        let ledger = SqliteLedger::open(&self.config.ledger_path)?;
        let target = self.target();

        // Every artifact that may run is compiled and checked before the database
        // is touched, so a bad file late in the chain stops the run before it starts.
        let sandbox = self.sandbox()?;
        let maybe_pending = self.pending(
            &chain,
            &ledger.attempts(&target)?,
            &RunOptions {
                out_of_order: true,
                ..options.clone()
            },
        )?;
        let loaded: Vec<(MigrationId, LoadedComponent)> = maybe_pending
            .iter()
            .map(|m| m.id().clone())
            .zip(self.load_all(&sandbox, &maybe_pending)?)
            .collect();
        for (migration, (_, component)) in maybe_pending.iter().zip(&loaded) {
            sandbox
                .describe(
                    component,
                    self.config.settings_for(migration.id()),
                    self.reporter.clone(),
                )
                .await?;
        }
        let datasets = self.open_datasets()?;

        let db = self.connect().await?;
        for risk in crate::doctor::configuration_risks(&self.config.database) {
            self.reporter.warning(&risk);
        }
        let lock = self.lock(&db).await?;
        let outcome = async {
            let Synced {
                copied: synced,
                history,
            } = self.sync_ledger(&db, lock.fence(), &ledger).await?;
            let attempts = ledger.attempts(&target)?;
            let problems = self.problems(&chain, &attempts, &history);
            if !problems.is_empty() {
                return Err(Error::VerifyFailed { problems });
            }
            let pending = self.pending(&chain, &attempts, options)?;
            if pending.is_empty() {
                let applied = group(&attempts)
                    .values()
                    .filter(|events| fold_state(events.iter().copied()).state == State::Applied)
                    .count();
                self.reporter.up_to_date(applied);
                return Ok(Report {
                    applied: Vec::new(),
                    synced,
                });
            }
            self.reporter.plan(&pending);
            let mut report = Report {
                applied: Vec::new(),
                synced,
            };
            let mut ledger = ledger;
            for migration in &pending {
                if lock.is_lost() {
                    return Err(Error::LockLost);
                }
                let component = loaded
                    .iter()
                    .find(|(id, _)| id == migration.id())
                    .map(|(_, c)| c)
                    .ok_or_else(|| {
                        Error::Engine(format!("{} was not loaded", migration.label()))
                    })?;
                let applied = self
                    .apply(
                        &db,
                        &sandbox,
                        &mut ledger,
                        lock.fence(),
                        Step::Up,
                        migration,
                        component,
                        StepEnv {
                            db: Some(db.clone()),
                            datasets: datasets.clone(),
                            batch_prefix: None,
                            revertible_batches: Vec::new(),
                        },
                    )
                    .await?;
                report.applied.push(applied);
            }
            Ok(report)
        }
        .await;
        settle(outcome, lock.release(&db).await)
    }

    /// Runs every pending migration for real inside one transaction that is always
    /// rolled back, and reports what each would do. Changes neither the graph nor
    /// the ledger.
    pub async fn dry_run(&self, options: &RunOptions) -> Result<Vec<DryRunMigration>, Error> {
        crate::chain::check_built(&self.config.migrations_dir)?;
        let chain = Chain::discover(&self.config.migrations_dir)?;
        let ledger_attempts = match SqliteLedger::open_existing(&self.config.ledger_path)? {
            Some(ledger) => ledger.attempts(&self.target())?,
            None => Vec::new(),
        };
        let sandbox = self.sandbox()?;
        let db = Arc::new(GraphDb::connect(&self.config.database).await?);
        self.reporter.connected(&self.target(), db.agent());
        // The graph's history is the truth about what is applied; a lagging local
        // ledger must not make a dry run replay what others applied.
        let history = db.read_history().await?;
        let attempts = with_graph_history(ledger_attempts, &history);
        let pending = self.pending(&chain, &attempts, options)?;
        let loaded = self.load_all(&sandbox, &pending)?;
        let datasets = self.open_datasets()?;
        self.reporter.plan(&pending);

        let mut results = Vec::new();
        let mut txn = Some(db.begin().await?);
        for (migration, component) in pending.iter().zip(&loaded) {
            let Some(mut current) = txn.take() else { break };
            let before = census(&mut current).await;
            let run = sandbox
                .run_step(
                    component,
                    Step::Up,
                    Mode::DryRun,
                    current,
                    self.config.settings_for(migration.id()),
                    StepEnv {
                        db: Some(db.clone()),
                        datasets: datasets.clone(),
                        batch_prefix: None,
                        revertible_batches: Vec::new(),
                    },
                    self.reporter.clone(),
                    migration.label(),
                )
                .await?;
            txn = run.txn;
            let changes = match (&before, txn.as_mut()) {
                (Some(before), Some(current)) if run.result.is_ok() => census(current)
                    .await
                    .map(|after| diff(before, &after))
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            let failure = run.result.as_ref().err().map(ToString::to_string);
            results.push(DryRunMigration {
                id: migration.id().clone(),
                description: migration.description().to_string(),
                statements: run.record.journal,
                fuel_consumed: run.fuel_consumed,
                changes,
                failure: failure.clone(),
            });
            if failure.is_some() {
                break;
            }
        }
        if let Some(txn) = txn {
            txn.rollback()
                .await
                .map_err(|e| db.database_error(format!("rolling back the dry run: {e}")))?;
        }
        Ok(results)
    }

    /// Reverts applied versioned migrations, newest first, each in its own
    /// transaction: the latest one, or every one above `options.target`.
    /// Irreversible migrations stop it unless `options.force`.
    pub async fn down(&self, options: &DownOptions) -> Result<Vec<AppliedMigration>, Error> {
        let chain = Chain::discover(&self.config.migrations_dir)?;
        let ledger = SqliteLedger::open(&self.config.ledger_path)?;
        let target = self.target();
        let sandbox = self.sandbox()?;
        let datasets = self.open_datasets()?;
        let db = self.connect().await?;
        let lock = self.lock(&db).await?;
        let outcome = async {
            let history = self.sync_ledger(&db, lock.fence(), &ledger).await?.history;
            let attempts = ledger.attempts(&target)?;
            let problems = self.problems(&chain, &attempts, &history);
            if !problems.is_empty() {
                return Err(Error::VerifyFailed { problems });
            }
            let grouped = group(&attempts);
            let mut applied: Vec<&Migration> = chain
                .migrations()
                .iter()
                .filter(|m| m.id().version().is_some())
                .filter(|m| folded(&grouped, m.id()).state == State::Applied)
                .collect();
            applied.sort_by(|a, b| b.id().cmp(a.id()));
            let to_revert: Vec<&Migration> = match &options.target {
                Some(target) => applied
                    .into_iter()
                    .filter(|m| m.id().version().is_some_and(|v| v > target))
                    .collect(),
                None => applied.into_iter().take(1).collect(),
            };
            if to_revert.is_empty() {
                self.reporter.audit("Nothing to revert");
                return Ok(Vec::new());
            }
            // Check every step before running any: an irreversible migration
            // half-way would otherwise leave the chain half reverted.
            let owned: Vec<Migration> = to_revert.iter().map(|m| (*m).clone()).collect();
            let loaded = self.load_all(&sandbox, &owned)?;
            // For a migration without a real down: the batches its applying attempt kept.
            let mut batch_reverts: Vec<Option<Vec<KeptBatch>>> = Vec::new();
            for (migration, component) in owned.iter().zip(&loaded) {
                let described = sandbox
                    .describe(
                        component,
                        self.config.settings_for(migration.id()),
                        self.reporter.clone(),
                    )
                    .await?;
                if !described.reversible && !options.force {
                    return Err(Error::Irreversible {
                        migration: migration.label(),
                        path: migration.path().to_path_buf(),
                    });
                }
                if described.has_down {
                    batch_reverts.push(None);
                    continue;
                }
                let applying = folded(&grouped, migration.id()).applied.map(|a| a.id);
                let batches = match applying {
                    Some(id) => ledger.batches(id)?,
                    None => Vec::new(),
                };
                if batches.is_empty() {
                    return Err(Error::NoDown {
                        migration: migration.label(),
                        path: migration.path().to_path_buf(),
                    });
                }
                batch_reverts.push(Some(batches));
            }
            let mut reverted = Vec::new();
            let mut ledger = ledger;
            for ((migration, component), batches) in owned.iter().zip(&loaded).zip(batch_reverts) {
                if lock.is_lost() {
                    return Err(Error::LockLost);
                }
                if let Some(batches) = batches {
                    reverted.push(
                        self.revert_batches(&db, lock.fence(), &ledger, migration, &batches)
                            .await?,
                    );
                    continue;
                }
                // A down step may delete what the up it reverts wrote.
                let revertible_batches = match folded(&grouped, migration.id()).applied {
                    Some(up) => ledger.batches(up.id)?.into_iter().map(|b| b.id).collect(),
                    None => Vec::new(),
                };
                reverted.push(
                    self.apply(
                        &db,
                        &sandbox,
                        &mut ledger,
                        lock.fence(),
                        Step::Down,
                        migration,
                        component,
                        StepEnv {
                            db: Some(db.clone()),
                            datasets: datasets.clone(),
                            batch_prefix: None,
                            revertible_batches,
                        },
                    )
                    .await?,
                );
            }
            Ok(reverted)
        }
        .await;
        settle(outcome, lock.release(&db).await)
    }

    /// Reverts a migration without a real down step by deleting the batches its
    /// `up` wrote, newest first, and records the revert.
    async fn revert_batches(
        &self,
        db: &GraphDb,
        fence: &Fence,
        ledger: &SqliteLedger,
        migration: &Migration,
        batches: &[KeptBatch],
    ) -> Result<AppliedMigration, Error> {
        self.reporter.migration_started(migration);
        let started = Instant::now();
        let chunk = self.config.settings_for(migration.id()).batch_chunk;
        let mut deleted = 0;
        for batch in batches.iter().rev() {
            deleted += db.delete_batch(&batch.id, chunk).await.map_err(|e| {
                db.database_error(format!(
                    "reverting {}: deleting batch `{}` ({}) failed: {e}",
                    migration.label(),
                    batch.name,
                    batch.id
                ))
            })?;
        }
        let names: Vec<&str> = batches.iter().map(|b| b.name.as_str()).collect();
        self.record_in_graph(
            db,
            fence,
            Action::Down,
            migration.id(),
            migration.description(),
            migration.checksum(),
            ledger,
            &format!(
                "reverted by deleting its batches {} ({deleted} nodes and relationships)",
                names.join(", ")
            ),
        )
        .await?;
        let summary = AppliedSummary {
            elapsed: started.elapsed(),
            statements: 0,
            fuel_consumed: 0,
        };
        self.reporter.migration_reverted(migration, &summary);
        Ok(AppliedMigration {
            id: migration.id().clone(),
            description: migration.description().to_string(),
            checksum: migration.checksum().clone(),
            summary,
        })
    }

    /// Marks every migration up to `version` as applied without running it.
    pub async fn baseline(&self, version: &Version) -> Result<Vec<MigrationId>, Error> {
        let chain = Chain::discover(&self.config.migrations_dir)?;
        let ledger = SqliteLedger::open(&self.config.ledger_path)?;
        let db = self.connect().await?;
        let lock = self.lock(&db).await?;
        let outcome = async {
            self.sync_ledger(&db, lock.fence(), &ledger).await?;
            let attempts = ledger.attempts(&self.target())?;
            let grouped = group(&attempts);
            let mut marked = Vec::new();
            for migration in chain.migrations() {
                let Some(v) = migration.id().version() else {
                    continue;
                };
                if v > version || folded(&grouped, migration.id()).state == State::Applied {
                    continue;
                }
                let link = self
                    .record_in_graph(
                        &db,
                        lock.fence(),
                        Action::Baseline,
                        migration.id(),
                        migration.description(),
                        migration.checksum(),
                        &ledger,
                        "baselined: marked as applied without running",
                    )
                    .await?;
                self.reporter
                    .audit(&format!("Baselined {} ({})", migration.label(), link.seq));
                marked.push(migration.id().clone());
            }
            Ok(marked)
        }
        .await;
        settle(outcome, lock.release(&db).await)
    }

    /// Accepts changed checksums of applied migrations and clears failed or
    /// interrupted attempts, recording each as an audit entry.
    pub async fn repair(&self) -> Result<Vec<String>, Error> {
        let chain = Chain::discover(&self.config.migrations_dir)?;
        let ledger = SqliteLedger::open(&self.config.ledger_path)?;
        let db = self.connect().await?;
        let lock = self.lock(&db).await?;
        let outcome = async {
            let mut done = Vec::new();
            let aside = self.set_aside_foreign_history(&db, &ledger).await?;
            if !aside.is_empty() {
                let note = format!(
                    "set aside {} history node(s) graphmig did not write, relabelled {}: {}",
                    aside.len(),
                    crate::graph::history::SET_ASIDE_LABEL,
                    aside.join(", ")
                );
                ledger.record_event(
                    &self.target(),
                    Action::Repair,
                    None,
                    "history",
                    &Checksum::from_hex(""),
                    None,
                    &new_attempt_key(),
                    &actor(),
                    &note,
                )?;
                self.reporter
                    .audit(&format!("Repaired the history: {note}"));
                done.push(note);
            }
            self.sync_ledger(&db, lock.fence(), &ledger).await?;
            let attempts = ledger.attempts(&self.target())?;
            let grouped = group(&attempts);
            for (id, events) in &grouped {
                let folded = fold_state(events.iter().copied());
                match folded.state {
                    State::Applied => {
                        let Some(migration) = chain.find(id) else {
                            continue;
                        };
                        if migration.is_repeatable()
                            || folded.checksum.as_ref() == Some(migration.checksum())
                        {
                            continue;
                        }
                        let note = format!(
                            "accepted checksum {} in place of {}",
                            migration.checksum(),
                            folded.checksum.as_ref().map_or("", |c| c.as_str())
                        );
                        self.record_in_graph(
                            &db,
                            lock.fence(),
                            Action::Repair,
                            id,
                            migration.description(),
                            migration.checksum(),
                            &ledger,
                            &note,
                        )
                        .await?;
                        done.push(format!("{id}: {note}"));
                    }
                    State::Failed | State::Interrupted => {
                        let last = folded
                            .last
                            .map(|a| a.checksum.clone())
                            .unwrap_or_else(|| Checksum::from_hex(""));
                        let note =
                            "cleared the failed attempt; it runs again on the next `graphmig run`";
                        ledger.record_event(
                            &self.target(),
                            Action::Repair,
                            Some(id),
                            &events[0].description,
                            &last,
                            None,
                            &new_attempt_key(),
                            &actor(),
                            note,
                        )?;
                        done.push(format!("{id}: {note}"));
                    }
                    State::Pending => {}
                }
            }
            for line in &done {
                self.reporter.audit(&format!("Repaired {line}"));
            }
            Ok(done)
        }
        .await;
        settle(outcome, lock.release(&db).await)
    }

    /// Connects as the owner and the migration user and reports which dangerous
    /// operations the server refuses the migration user (`graphmig doctor`).
    pub async fn doctor(&self) -> Result<Vec<crate::doctor::Finding>, Error> {
        let db = GraphDb::connect(&self.config.database).await?;
        self.reporter.connected(&self.target(), db.agent());
        Ok(crate::doctor::diagnose(&db, &self.config.database).await)
    }

    /// Removes the lock whoever holds it, and records who did.
    pub async fn unlock(&self) -> Result<Option<LockHolder>, Error> {
        let ledger = SqliteLedger::open(&self.config.ledger_path)?;
        let db = GraphDb::connect(&self.config.database).await?;
        let holder = db.force_unlock().await?;
        if let Some(holder) = &holder {
            ledger.record_event(
                &self.target(),
                Action::Unlock,
                None,
                "unlock",
                &Checksum::from_hex(""),
                None,
                &new_attempt_key(),
                &actor(),
                &format!(
                    "removed the lock of {} (acquired {})",
                    holder.owner,
                    crate::graph::lock::ms_to_rfc3339(holder.acquired_at)
                ),
            )?;
        }
        Ok(holder)
    }

    /// Writes an audit entry into the graph's history (in its own, fenced
    /// transaction) and the ledger.
    #[allow(clippy::too_many_arguments)]
    async fn record_in_graph(
        &self,
        db: &GraphDb,
        fence: &Fence,
        action: Action,
        id: &MigrationId,
        description: &str,
        checksum: &Checksum,
        ledger: &SqliteLedger,
        note: &str,
    ) -> Result<ChainLink, Error> {
        let attempt_key = new_attempt_key();
        let draft = HistoryDraft {
            action,
            key: id.key(),
            description: description.to_string(),
            checksum: checksum.clone(),
            attempt_key: attempt_key.clone(),
            applied_at: now_rfc3339(),
            applied_by: actor(),
        };
        // An audit entry belongs to the history alone: its database, as the owner.
        let mut txn = db.begin_history().await?;
        let entry = txn
            .append_history(fence, &draft)
            .await
            .map_err(|e| db.database_error(format!("writing the history: {e}")))?;
        txn.commit()
            .await
            .map_err(|e| db.database_error(format!("writing the history: {e}")))?;
        ledger.record_event(
            &self.target(),
            action,
            Some(id),
            description,
            checksum,
            Some(&entry.chain),
            &attempt_key,
            &actor(),
            note,
        )?;
        Ok(entry.chain)
    }

    /// The data folder as a capability, if the project has one.
    fn open_datasets(&self) -> Result<Option<Arc<cap_std::fs::Dir>>, Error> {
        if !self.config.data_dir.is_dir() {
            return Ok(None);
        }
        cap_std::fs::Dir::open_ambient_dir(&self.config.data_dir, cap_std::ambient_authority())
            .map(|dir| Some(Arc::new(dir)))
            .map_err(|e| Error::ConfigInvalid {
                path: self.config.data_dir.clone(),
                message: format!("cannot open the data folder: {e}"),
            })
    }

    #[allow(clippy::too_many_arguments)]
    async fn apply(
        &self,
        db: &GraphDb,
        sandbox: &Sandbox,
        ledger: &mut SqliteLedger,
        fence: &Fence,
        step: Step,
        migration: &Migration,
        component: &LoadedComponent,
        mut env: StepEnv,
    ) -> Result<AppliedMigration, Error> {
        let action = match step {
            Step::Up => Action::Up,
            Step::Down => Action::Down,
        };
        self.reporter.migration_started(migration);
        let started = Instant::now();
        let attempt_key = new_attempt_key();
        env.batch_prefix = Some(attempt_key.clone());
        let who = actor();
        // The ledger row is written while the server answers the transaction's
        // BEGIN (which changes nothing in the graph): BEGIN goes out first.
        let (began, attempt) = tokio::join!(db.begin(), async {
            ledger.begin_attempt(&self.target(), migration, action, &attempt_key, &who)
        });
        let attempt = attempt?;
        let fail_early = |ledger: &mut SqliteLedger, e: &Error| {
            let finish = Finish {
                outcome: Outcome::Failed,
                duration_ms: started.elapsed().as_millis() as u64,
                fuel_consumed: 0,
                statements: 0,
                error: Some(e.to_string()),
                chain: None,
            };
            ledger.finish_attempt(attempt, &finish, &GuestRecord::default())
        };

        let txn = match began {
            Ok(txn) => txn,
            Err(e) => {
                fail_early(ledger, &e)?;
                return Err(e);
            }
        };
        let mut run = match sandbox
            .run_step(
                component,
                step,
                Mode::Apply,
                txn,
                self.config.settings_for(migration.id()),
                env,
                self.reporter.clone(),
                migration.label(),
            )
            .await
        {
            Ok(run) => run,
            Err(e) => {
                fail_early(ledger, &e)?;
                return Err(e);
            }
        };

        let draft = HistoryDraft {
            action,
            key: migration.id().key(),
            description: migration.description().to_string(),
            checksum: migration.checksum().clone(),
            attempt_key,
            applied_at: now_rfc3339(),
            applied_by: who,
        };
        let outcome: Result<ChainLink, FailureCause> = match (run.result, run.txn) {
            (Ok(()), Some(txn)) if db.history_written_apart() => {
                match commit_then_record(db, txn, fence, &draft).await {
                    Ok(link) => Ok(link),
                    Err(Separate::BeforeCommit(cause)) => Err(cause),
                    Err(Separate::AfterCommit(message)) => {
                        // The data committed: the ledger row stays `running` so that
                        // the next run settles it from the marker, never re-running it.
                        return Err(db.database_error(format!(
                            "{} committed, but its history entry could not be written ({message}); the next `graphmig run` records it",
                            migration.label()
                        )));
                    }
                }
            }
            (Ok(()), Some(txn)) => commit_with_history(txn, fence, &draft).await,
            (Ok(()), None) => Err(FailureCause::Trap {
                message: "the transaction was lost".into(),
            }),
            (Err(cause), txn) => {
                if let Some(txn) = txn
                    && let Err(e) = txn.rollback().await
                {
                    // The server drops the transaction with the connection anyway.
                    tracing::warn!(migration = %migration.label(), error = %e, "rollback failed");
                }
                Err(cause)
            }
        };
        crash_point("after-commit");
        // Schema operations ran outside the transaction: undo them, newest first.
        let undo_note = if outcome.is_err() {
            let chunk = self.config.settings_for(migration.id()).batch_chunk;
            let refactors = walk_refactors(db, &mut run.record.refactor_steps, true).await;
            let batches = delete_batches(db, &mut run.record.batches, chunk).await;
            let schema = undo_schema(db, &mut run.record.schema_steps).await;
            match (refactors, batches, schema) {
                (None, None, None) => None,
                (a, b, c) => Some(format!(
                    "{}{}{}",
                    a.unwrap_or_default(),
                    b.unwrap_or_default(),
                    c.unwrap_or_default()
                )),
            }
        } else {
            if let Some(note) = walk_refactors(db, &mut run.record.refactor_steps, false).await {
                self.reporter
                    .warning(&format!("{}{note}", migration.label()));
            }
            None
        };
        let duration_ms = started.elapsed().as_millis() as u64;
        let finish = Finish {
            outcome: if outcome.is_ok() {
                Outcome::Applied
            } else {
                Outcome::Failed
            },
            duration_ms,
            fuel_consumed: run.fuel_consumed,
            statements: run.statements,
            error: outcome
                .as_ref()
                .err()
                .map(|cause| format!("{cause}{}", undo_note.clone().unwrap_or_default())),
            chain: outcome.as_ref().ok().cloned(),
        };
        ledger.finish_attempt(attempt, &finish, &run.record)?;
        match outcome {
            Ok(_) => {
                let summary = AppliedSummary {
                    elapsed: started.elapsed(),
                    statements: run.statements,
                    fuel_consumed: run.fuel_consumed,
                };
                match step {
                    Step::Up => self.reporter.migration_applied(migration, &summary),
                    Step::Down => self.reporter.migration_reverted(migration, &summary),
                }
                Ok(AppliedMigration {
                    id: migration.id().clone(),
                    description: migration.description().to_string(),
                    checksum: migration.checksum().clone(),
                    summary,
                })
            }
            Err(cause) => {
                let failure = MigrationFailure {
                    migration: migration.label(),
                    path: migration.path().to_path_buf(),
                    cause,
                    schema_undo: undo_note,
                };
                self.reporter.migration_failed(migration, &failure);
                Err(Error::MigrationFailed(Box::new(failure)))
            }
        }
    }
}

/// The outcome of work done under the lock, then the lock's release: the work's
/// error wins, so a failed release never hides why the work failed.
fn settle<T>(outcome: Result<T, Error>, released: Result<(), Error>) -> Result<T, Error> {
    let value = outcome?;
    released?;
    Ok(value)
}

/// Writes the history entry into the migration's transaction and commits both.
async fn commit_with_history(
    mut txn: GraphTxn,
    fence: &Fence,
    draft: &HistoryDraft,
) -> Result<ChainLink, FailureCause> {
    let entry = match txn.append_history(fence, draft).await {
        Ok(entry) => entry,
        Err(e) => {
            let _ = txn.rollback().await;
            return Err(FailureCause::Commit {
                code: e.code,
                message: e.message,
            });
        }
    };
    crash_point("before-commit");
    match txn.commit().await {
        Ok(()) => {
            fence.head.committed(&entry.chain);
            Ok(entry.chain)
        }
        Err(e) => {
            // Whether it committed is unknown: the next append reads the head.
            fence.head.forget();
            Err(FailureCause::Commit {
                code: e.code,
                message: e.message,
            })
        }
    }
}

/// Walks refactorings back (`undo`, newest first) or drops their tags; returns a
/// note for the error message (undo) or a warning (finalize), or `None`.
async fn walk_refactors(
    db: &GraphDb,
    steps: &mut [crate::journal::RefactorStep],
    undo: bool,
) -> Option<String> {
    let mut undone = 0;
    let mut failed = Vec::new();
    for step in steps.iter_mut().rev() {
        let statement = if undo { &step.undo } else { &step.finalize };
        let result = async {
            // Each pass handles a chunk; stop when a pass finds nothing, and never
            // loop without bound should the server misbehave.
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
        .await;
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
async fn delete_batches(
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
async fn undo_schema(db: &GraphDb, steps: &mut [crate::journal::SchemaStep]) -> Option<String> {
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

/// How committing with the history in another database can fail.
enum Separate {
    /// Nothing committed.
    BeforeCommit(FailureCause),
    /// The data committed; the history entry did not.
    AfterCommit(String),
}

/// Commits the data with a marker in the target database, then writes the
/// history entry in the history database. The lock is checked just before the
/// commit (it cannot share the transaction across databases).
async fn commit_then_record(
    db: &GraphDb,
    mut txn: GraphTxn,
    fence: &Fence,
    draft: &HistoryDraft,
) -> Result<ChainLink, Separate> {
    let holder = db.lock_holder().await.ok().flatten();
    if !holder.is_some_and(|h| h.owner == fence.owner && h.generation == fence.generation) {
        let _ = txn.rollback().await;
        return Err(Separate::BeforeCommit(FailureCause::Commit {
            code: "graphmig.LockLost".into(),
            message: "this runner no longer holds the lock; nothing was committed".into(),
        }));
    }
    if let Err(e) = txn.write_marker(draft).await {
        let _ = txn.rollback().await;
        return Err(Separate::BeforeCommit(FailureCause::Commit {
            code: e.code,
            message: e.message,
        }));
    }
    crash_point("before-commit");
    txn.commit().await.map_err(|e| {
        Separate::BeforeCommit(FailureCause::Commit {
            code: e.code,
            message: e.message,
        })
    })?;
    crash_point("after-data-commit");
    let record = async {
        let mut history = db.begin_history().await.map_err(|e| e.to_string())?;
        let entry = history
            .append_history(fence, draft)
            .await
            .map_err(|e| e.to_string())?;
        history.commit().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(entry.chain)
    };
    record.await.map_err(Separate::AfterCommit)
}

/// Nodes per label and relationships per type, graphmig's own left out.
async fn census(txn: &mut GraphTxn) -> Option<BTreeMap<String, i64>> {
    let mut counts = BTreeMap::new();
    let nodes = txn
        .run(
            "MATCH (n) UNWIND labels(n) AS label RETURN label, count(*) AS n",
            Vec::new(),
        )
        .await
        .ok()?;
    for row in nodes {
        let label = crate::graph::history::text(&row, "label")?;
        if !label.starts_with("__Graphmig") {
            counts.insert(
                format!("(:{label})"),
                crate::graph::history::int(&row, "n")?,
            );
        }
    }
    let rels = txn
        .run(
            "MATCH ()-[r]->() RETURN type(r) AS type, count(*) AS n",
            Vec::new(),
        )
        .await
        .ok()?;
    for row in rels {
        let kind = crate::graph::history::text(&row, "type")?;
        counts.insert(format!("[:{kind}]"), crate::graph::history::int(&row, "n")?);
    }
    Some(counts)
}

fn diff(before: &BTreeMap<String, i64>, after: &BTreeMap<String, i64>) -> Vec<(String, i64)> {
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let delta = after.get(k).copied().unwrap_or(0) - before.get(k).copied().unwrap_or(0);
            (delta != 0).then(|| (k.clone(), delta))
        })
        .collect()
}

/// The ledger's attempts plus, for every history entry the ledger lacks (applied
/// by another runner), an attempt that stands for it, so that what the graph
/// says is applied is shown and planned as applied.
fn with_graph_history(mut attempts: Vec<Attempt>, history: &[HistoryEntry]) -> Vec<Attempt> {
    for entry in history {
        if attempts.iter().any(|a| a.attempt_key == entry.attempt_key) {
            continue;
        }
        attempts.push(Attempt {
            id: i64::MAX,
            action: if entry.action == Action::Up {
                Action::Sync
            } else {
                entry.action
            },
            migration: MigrationId::parse_key(&entry.key),
            description: entry.description.clone(),
            checksum: entry.checksum.clone(),
            chain: Some(entry.chain.clone()),
            attempt_key: entry.attempt_key.clone(),
            actor: entry.applied_by.clone(),
            started_at: entry.applied_at.clone(),
            finished_at: Some(entry.applied_at.clone()),
            duration_ms: None,
            fuel_consumed: None,
            statements: None,
            outcome: Outcome::Applied,
            error: None,
        });
    }
    attempts
}

fn status_entries(chain: &Chain, attempts: &[Attempt]) -> Vec<StatusEntry> {
    let grouped = group(attempts);
    let mut entries: BTreeMap<MigrationId, StatusEntry> = BTreeMap::new();
    for migration in chain.migrations() {
        let folded = folded(&grouped, migration.id());
        let applied = folded.applied;
        let mut state = folded.state;
        let changed = folded
            .checksum
            .as_ref()
            .is_some_and(|c| c != migration.checksum());
        // A repeatable migration whose file changed is due to run again.
        if migration.is_repeatable() && changed {
            state = State::Pending;
        }
        entries.insert(
            migration.id().clone(),
            StatusEntry {
                id: migration.id().clone(),
                description: migration.description().to_string(),
                state,
                checksum: migration.checksum().clone(),
                applied_at: applied.and_then(|a| a.finished_at.clone()),
                duration_ms: applied.and_then(|a| a.duration_ms),
                fuel_consumed: applied.and_then(|a| a.fuel_consumed),
                statements: applied.and_then(|a| a.statements),
                error: match state {
                    State::Failed => folded.last.and_then(|a| a.error.clone()),
                    _ => None,
                },
                checksum_changed: changed && !migration.is_repeatable(),
                missing: false,
            },
        );
    }
    for (id, history) in &grouped {
        if entries.contains_key(id) {
            continue;
        }
        let folded = fold_state(history.iter().copied());
        if let Some(applied) = folded.applied.filter(|_| folded.state == State::Applied) {
            entries.insert(
                id.clone(),
                StatusEntry {
                    id: id.clone(),
                    description: applied.description.clone(),
                    state: folded.state,
                    checksum: applied.checksum.clone(),
                    applied_at: applied.finished_at.clone(),
                    duration_ms: applied.duration_ms,
                    fuel_consumed: applied.fuel_consumed,
                    statements: applied.statements,
                    error: None,
                    checksum_changed: false,
                    missing: true,
                },
            );
        }
    }
    entries.into_values().collect()
}
