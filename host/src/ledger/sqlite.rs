//! The SQLite form of the ledger.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rusqlite::{Connection, OptionalExtension, params};

use super::{Action, Attempt, ChainLink, Finish, Outcome};
use crate::error::Error;
use crate::journal::{BackfillCheckpoint, GuestRecord};
use crate::migration::{Checksum, Migration, MigrationId};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS ledger_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS attempts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    target        TEXT    NOT NULL,
    action        TEXT    NOT NULL
                  CHECK (action IN ('up', 'down', 'baseline', 'repair', 'sync', 'unlock')),
    migration     TEXT    NOT NULL,
    description   TEXT    NOT NULL,
    checksum      TEXT    NOT NULL,
    chain_seq     INTEGER,
    chain_hash    TEXT,
    attempt_key   TEXT    NOT NULL,
    actor         TEXT    NOT NULL,
    started_at    TEXT    NOT NULL,
    finished_at   TEXT,
    duration_ms   INTEGER,
    fuel_consumed INTEGER,
    statements    INTEGER,
    outcome       TEXT    NOT NULL CHECK (outcome IN ('running', 'applied', 'failed')),
    error         TEXT
);
CREATE INDEX IF NOT EXISTS attempts_by_target ON attempts (target, id);
CREATE TABLE IF NOT EXISTS statements (
    attempt_id  INTEGER NOT NULL REFERENCES attempts (id),
    seq         INTEGER NOT NULL,
    query       TEXT    NOT NULL,
    params      TEXT    NOT NULL,
    duration_us INTEGER NOT NULL,
    rows        INTEGER NOT NULL,
    counters    TEXT    NOT NULL,
    outcome     TEXT    NOT NULL CHECK (outcome IN ('ok', 'error', 'denied', 'skipped')),
    code        TEXT,
    message     TEXT,
    PRIMARY KEY (attempt_id, seq)
);
CREATE TABLE IF NOT EXISTS backfills (
    target     TEXT    NOT NULL,
    migration  TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    attempt    TEXT    NOT NULL,
    cursor     TEXT    NOT NULL,
    rows       INTEGER NOT NULL,
    chunks     INTEGER NOT NULL,
    total      INTEGER NOT NULL,
    done       INTEGER NOT NULL,
    updated_at TEXT    NOT NULL,
    PRIMARY KEY (target, migration, name)
);
CREATE TABLE IF NOT EXISTS batches (
    attempt_id    INTEGER NOT NULL REFERENCES attempts (id),
    batch_id      TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    nodes         INTEGER NOT NULL,
    relationships INTEGER NOT NULL,
    outcome       TEXT    NOT NULL,
    PRIMARY KEY (attempt_id, batch_id)
);
CREATE TABLE IF NOT EXISTS schema_ops (
    attempt_id INTEGER NOT NULL REFERENCES attempts (id),
    seq        INTEGER NOT NULL,
    statement  TEXT    NOT NULL,
    undo       TEXT,
    outcome    TEXT    NOT NULL,
    PRIMARY KEY (attempt_id, seq)
);
CREATE TABLE IF NOT EXISTS dataset_reads (
    attempt_id INTEGER NOT NULL REFERENCES attempts (id),
    seq        INTEGER NOT NULL,
    path       TEXT    NOT NULL,
    sha256     TEXT    NOT NULL,
    bytes      INTEGER NOT NULL,
    PRIMARY KEY (attempt_id, seq)
);
CREATE TABLE IF NOT EXISTS guest_logs (
    attempt_id INTEGER NOT NULL REFERENCES attempts (id),
    seq        INTEGER NOT NULL,
    level      TEXT    NOT NULL,
    message    TEXT    NOT NULL,
    PRIMARY KEY (attempt_id, seq)
);
";

const SCHEMA_VERSION: &str = "1";

/// A batch an applied attempt wrote and kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptBatch {
    /// The batch id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Nodes it created.
    pub nodes: u64,
    /// Relationships it created.
    pub relationships: u64,
}

/// One journaled statement, as read back from the ledger.
#[derive(Debug, Clone)]
pub struct JournalRow {
    /// Position among the attempt's statements.
    pub seq: u32,
    /// Its text.
    pub query: String,
    /// Parameter names and shapes.
    pub params: String,
    /// Duration in microseconds.
    pub duration_us: u64,
    /// Rows returned.
    pub rows: u64,
    /// What it changed.
    pub counters: String,
    /// ok, error, denied or skipped.
    pub outcome: String,
    /// Error code, if any.
    pub code: Option<String>,
    /// Error message, if any.
    pub message: Option<String>,
}

/// The ledger in a SQLite file.
#[derive(Debug)]
pub struct SqliteLedger {
    /// Behind a mutex only so that the ledger is `Sync` and the runner's
    /// futures can move between threads; one runner uses it at a time.
    conn: std::sync::Mutex<Connection>,
    path: PathBuf,
}

/// The current time as RFC 3339 with milliseconds, UTC.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

impl SqliteLedger {
    /// Opens (creating it and its folder if needed) the ledger at `path`.
    pub fn open(path: &Path) -> Result<SqliteLedger, Error> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::ledger(path, e))?;
        }
        let conn = Connection::open(path).map_err(|e| Error::ledger(path, e))?;
        let ledger = SqliteLedger {
            conn: std::sync::Mutex::new(conn),
            path: path.to_path_buf(),
        };
        ledger.init()?;
        Ok(ledger)
    }

    /// The connection. A poisoned lock only means a panic elsewhere: SQLite
    /// keeps its own consistency, so the connection is still usable.
    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Opens an existing ledger without creating anything; `None` if there is none.
    pub fn open_existing(path: &Path) -> Result<Option<SqliteLedger>, Error> {
        if !path.exists() {
            return Ok(None);
        }
        SqliteLedger::open(path).map(Some)
    }

    fn init(&self) -> Result<(), Error> {
        // A second runner may hold the file briefly; wait rather than fail.
        self.conn()
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| self.err(e))?;
        // WAL with synchronous=NORMAL: a commit survives a crash of graphmig,
        // and skips the fsync that would make every migration pay milliseconds
        // twice. A power loss can drop the last rows; the graph's history,
        // written in the migration's own transaction, is the truth they are
        // settled from on the next run.
        self.conn()
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
            )
            .map_err(|e| self.err(e))?;
        self.conn().execute_batch(SCHEMA).map_err(|e| self.err(e))?;
        let version: Option<String> = self
            .conn()
            .query_row(
                "SELECT value FROM ledger_meta WHERE key = 'schema_version'",
                [],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        match version.as_deref() {
            None => {
                self.conn()
                    .execute(
                        "INSERT INTO ledger_meta (key, value) VALUES ('schema_version', ?1)",
                        [SCHEMA_VERSION],
                    )
                    .map_err(|e| self.err(e))?;
            }
            Some(SCHEMA_VERSION) => {}
            Some(other) => {
                return Err(self.err(format!(
                    "ledger schema version {other} is not known to this graphmig (it knows {SCHEMA_VERSION}); use a newer graphmig"
                )));
            }
        }
        Ok(())
    }

    fn err(&self, e: impl std::fmt::Display) -> Error {
        Error::ledger(&self.path, e)
    }

    /// The ledger file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records that `action` on `migration` is starting against `target`.
    pub fn begin_attempt(
        &self,
        target: &str,
        migration: &Migration,
        action: Action,
        attempt_key: &str,
        actor: &str,
    ) -> Result<i64, Error> {
        // Cached statements: a chain of many migrations prepares each once.
        self.conn()
            .prepare_cached(
                "INSERT INTO attempts (target, action, migration, description, checksum, attempt_key, actor, started_at, outcome)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'running')",
            )
            .and_then(|mut insert| insert.execute(params![
                    target,
                    action.as_str(),
                    migration.id().key(),
                    migration.description(),
                    migration.checksum().as_str(),
                    attempt_key,
                    actor,
                    now_rfc3339(),
                ]))
            .map_err(|e| self.err(e))?;
        Ok(self.conn().last_insert_rowid())
    }

    /// Records a backfill's checkpoint after one of its chunks committed
    /// (the graph's checkpoint, committed with the chunk, is the one resumed
    /// from; this copy is for reading without the database).
    #[allow(clippy::too_many_arguments)]
    pub fn record_backfill(
        &self,
        target: &str,
        migration: &str,
        name: &str,
        attempt: &str,
        cursor: &str,
        rows: u64,
        chunks: u32,
        total: u64,
        done: bool,
    ) -> Result<(), Error> {
        self.conn()
            .execute(
                "INSERT INTO backfills (target, migration, name, attempt, cursor, rows, chunks, total, done, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (target, migration, name) DO UPDATE SET
                   attempt = ?4, cursor = ?5, rows = ?6, chunks = ?7, total = ?8, done = ?9, updated_at = ?10",
                params![
                    target,
                    migration,
                    name,
                    attempt,
                    cursor,
                    rows as i64,
                    chunks,
                    total as i64,
                    done,
                    now_rfc3339()
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The backfill checkpoints kept for `target`.
    pub fn backfills(&self, target: &str) -> Result<Vec<BackfillCheckpoint>, Error> {
        let conn = self.conn();
        let mut statement = conn
            .prepare(
                "SELECT migration, name, rows, total, chunks, done FROM backfills WHERE target = ?1
                 ORDER BY migration, name",
            )
            .map_err(|e| self.err(e))?;
        let rows = statement
            .query_map(params![target], |r| {
                Ok(BackfillCheckpoint {
                    migration: r.get(0)?,
                    name: r.get(1)?,
                    rows: r.get::<_, i64>(2)? as u64,
                    total: r.get::<_, i64>(3)? as u64,
                    chunks: r.get(4)?,
                    done: r.get(5)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Records a finished audit entry (baseline, repair, sync, unlock).
    #[allow(clippy::too_many_arguments)]
    pub fn record_event(
        &self,
        target: &str,
        action: Action,
        migration: Option<&MigrationId>,
        description: &str,
        checksum: &Checksum,
        chain: Option<&ChainLink>,
        attempt_key: &str,
        actor: &str,
        note: &str,
    ) -> Result<i64, Error> {
        let now = now_rfc3339();
        self.conn()
            .execute(
                "INSERT INTO attempts (target, action, migration, description, checksum, chain_seq, chain_hash,
                                       attempt_key, actor, started_at, finished_at, duration_ms, outcome, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, 0, 'applied', ?11)",
                params![
                    target,
                    action.as_str(),
                    migration.map(MigrationId::key).unwrap_or_default(),
                    description,
                    checksum.as_str(),
                    chain.map(|c| c.seq),
                    chain.map(|c| c.hash.as_str()),
                    attempt_key,
                    actor,
                    now,
                    note,
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn().last_insert_rowid())
    }

    /// Settles an attempt that never finished: committed (with its chain link, as
    /// found in the graph) or not.
    pub fn resolve_interrupted(&self, id: i64, committed: Option<&ChainLink>) -> Result<(), Error> {
        let (outcome, note) = match committed {
            Some(_) => ("applied", None),
            None => (
                "failed",
                Some("interrupted before its transaction committed; nothing of it was applied"),
            ),
        };
        self.conn()
            .execute(
                "UPDATE attempts SET outcome = ?2, finished_at = ?3, chain_seq = ?4, chain_hash = ?5,
                        error = coalesce(?6, error)
                 WHERE id = ?1 AND outcome = 'running'",
                params![
                    id,
                    outcome,
                    now_rfc3339(),
                    committed.map(|c| c.seq),
                    committed.map(|c| c.hash.as_str()),
                    note
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records how attempt `id` ended, with what the guest did.
    pub fn finish_attempt(
        &mut self,
        id: i64,
        finish: &Finish,
        record: &GuestRecord,
    ) -> Result<(), Error> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| Error::ledger(&path, e);
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(err)?;
        tx.prepare_cached(
            "UPDATE attempts SET finished_at = ?2, duration_ms = ?3, fuel_consumed = ?4,
                 statements = ?5, outcome = ?6, error = ?7, chain_seq = ?8, chain_hash = ?9
             WHERE id = ?1",
        )
        .and_then(|mut update| {
            update.execute(params![
                id,
                now_rfc3339(),
                finish.duration_ms as i64,
                finish.fuel_consumed as i64,
                finish.statements,
                finish.outcome.as_str(),
                finish.error,
                finish.chain.as_ref().map(|c| c.seq),
                finish.chain.as_ref().map(|c| c.hash.as_str()),
            ])
        })
        .map_err(err)?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO guest_logs (attempt_id, seq, level, message) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(err)?;
            for (seq, (level, message)) in record.logs.iter().enumerate() {
                insert
                    .execute(params![id, seq as i64, level, message])
                    .map_err(err)?;
            }
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO statements (attempt_id, seq, query, params, duration_us, rows, counters, outcome, code, message)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .map_err(err)?;
            for entry in &record.journal {
                insert
                    .execute(params![
                        id,
                        entry.seq,
                        entry.query,
                        entry.params,
                        entry.duration_us as i64,
                        entry.rows as i64,
                        entry.counters,
                        entry.outcome.as_str(),
                        entry.code,
                        entry.message,
                    ])
                    .map_err(err)?;
            }
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO batches (attempt_id, batch_id, name, nodes, relationships, outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(err)?;
            for batch in &record.batches {
                insert
                    .execute(params![
                        id,
                        batch.id,
                        batch.name,
                        batch.nodes as i64,
                        batch.relationships as i64,
                        batch.outcome
                    ])
                    .map_err(err)?;
            }
            // Batches of earlier attempts the step deleted are gone whatever its
            // outcome: their records say so, and `down` no longer looks for them.
            let mut mark = tx
                .prepare_cached(
                    "UPDATE batches SET outcome = ?2 WHERE batch_id = ?1 AND outcome = 'kept'",
                )
                .map_err(err)?;
            for batch in &record.deleted_batches {
                mark.execute(params![batch, format!("deleted by attempt {id}")])
                    .map_err(err)?;
            }
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO schema_ops (attempt_id, seq, statement, undo, outcome) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(err)?;
            for (seq, step) in record.schema_steps.iter().enumerate() {
                insert
                    .execute(params![
                        id,
                        seq as i64,
                        step.statement,
                        step.undo,
                        step.outcome
                    ])
                    .map_err(err)?;
            }
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO dataset_reads (attempt_id, seq, path, sha256, bytes) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(err)?;
            for (seq, read) in record.dataset_reads.iter().enumerate() {
                insert
                    .execute(params![
                        id,
                        seq as i64,
                        read.path,
                        read.sha256.as_str(),
                        read.bytes as i64
                    ])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Every event against `target`, oldest first.
    pub fn attempts(&self, target: &str) -> Result<Vec<Attempt>, Error> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT id, action, migration, description, checksum, chain_seq, chain_hash, attempt_key,
                        actor, started_at, finished_at, duration_ms, fuel_consumed, statements, outcome, error
                 FROM attempts WHERE target = ?1 ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([target], |row| {
                let action: String = row.get(1)?;
                let migration: String = row.get(2)?;
                let seq: Option<i64> = row.get(5)?;
                let hash: Option<String> = row.get(6)?;
                let outcome: String = row.get(14)?;
                Ok((
                    action,
                    migration,
                    Attempt {
                        id: row.get(0)?,
                        // Both are replaced below; rusqlite closures cannot fail
                        // with our error type.
                        action: Action::Unlock,
                        migration: None,
                        description: row.get(3)?,
                        checksum: Checksum::from_hex(row.get::<_, String>(4)?),
                        chain: seq.zip(hash).map(|(seq, hash)| ChainLink { seq, hash }),
                        attempt_key: row.get(7)?,
                        actor: row.get(8)?,
                        started_at: row.get(9)?,
                        finished_at: row.get(10)?,
                        duration_ms: row.get::<_, Option<i64>>(11)?.map(|v| v as u64),
                        fuel_consumed: row.get::<_, Option<i64>>(12)?.map(|v| v as u64),
                        statements: row.get(13)?,
                        outcome: Outcome::parse(&outcome),
                        error: row.get(15)?,
                    },
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut attempts = Vec::new();
        for row in rows {
            let (action, migration, mut attempt) = row.map_err(|e| self.err(e))?;
            attempt.action = Action::parse(&action).ok_or_else(|| {
                self.err(format!("unknown action `{action}` in row {}", attempt.id))
            })?;
            attempt.migration = if migration.is_empty() {
                None
            } else {
                Some(MigrationId::parse_key(&migration).ok_or_else(|| {
                    self.err(format!(
                        "corrupt migration `{migration}` in row {}",
                        attempt.id
                    ))
                })?)
            };
            attempts.push(attempt);
        }
        Ok(attempts)
    }

    /// The statement journal of attempt `id`.
    pub fn statements(&self, id: i64) -> Result<Vec<JournalRow>, Error> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT seq, query, params, duration_us, rows, counters, outcome, code, message
                 FROM statements WHERE attempt_id = ?1 ORDER BY seq",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([id], |r| {
                Ok(JournalRow {
                    seq: r.get(0)?,
                    query: r.get(1)?,
                    params: r.get(2)?,
                    duration_us: r.get::<_, i64>(3)? as u64,
                    rows: r.get::<_, i64>(4)? as u64,
                    counters: r.get(5)?,
                    outcome: r.get(6)?,
                    code: r.get(7)?,
                    message: r.get(8)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// The batches attempt `id` wrote and kept.
    pub fn batches(&self, id: i64) -> Result<Vec<KeptBatch>, Error> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT batch_id, name, nodes, relationships FROM batches
                 WHERE attempt_id = ?1 AND outcome = 'kept' ORDER BY rowid",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([id], |r| {
                Ok(KeptBatch {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    nodes: r.get::<_, i64>(2)? as u64,
                    relationships: r.get::<_, i64>(3)? as u64,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// The dataset reads of attempt `id`: path, sha256, bytes.
    pub fn dataset_reads(&self, id: i64) -> Result<Vec<(String, String, u64)>, Error> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT path, sha256, bytes FROM dataset_reads WHERE attempt_id = ?1 ORDER BY seq",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// The guest log lines of attempt `id`, in order.
    pub fn logs(&self, id: i64) -> Result<Vec<(String, String)>, Error> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT level, message FROM guest_logs WHERE attempt_id = ?1 ORDER BY seq")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([id], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }
}
