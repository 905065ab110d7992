//! The SQLite form of the ledger.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rusqlite::{Connection, OptionalExtension, params};

use super::{Attempt, Direction, Finish, Outcome};
use crate::error::Error;
use crate::migration::{Checksum, Migration, Version};
use crate::wasm::GuestRecord;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS ledger_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS attempts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    target        TEXT    NOT NULL,
    version       TEXT    NOT NULL,
    description   TEXT    NOT NULL,
    direction     TEXT    NOT NULL CHECK (direction IN ('up', 'down')),
    checksum      TEXT    NOT NULL,
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
    outcome     TEXT    NOT NULL CHECK (outcome IN ('ok', 'error', 'denied', 'skipped')),
    code        TEXT,
    message     TEXT,
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

/// The ledger in a SQLite file.
#[derive(Debug)]
pub struct SqliteLedger {
    conn: Connection,
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
            conn,
            path: path.to_path_buf(),
        };
        ledger.init()?;
        Ok(ledger)
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
        self.conn
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| self.err(e))?;
        self.conn
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;")
            .map_err(|e| self.err(e))?;
        self.conn.execute_batch(SCHEMA).map_err(|e| self.err(e))?;
        let version: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM ledger_meta WHERE key = 'schema_version'",
                [],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        match version.as_deref() {
            None => {
                self.conn
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

    /// Records that `migration`'s `direction` step is starting against `target`.
    pub fn begin_attempt(
        &self,
        target: &str,
        migration: &Migration,
        direction: Direction,
    ) -> Result<i64, Error> {
        self.conn
            .execute(
                "INSERT INTO attempts (target, version, description, direction, checksum, started_at, outcome)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running')",
                params![
                    target,
                    migration.version().as_str(),
                    migration.description(),
                    direction.as_str(),
                    migration.checksum().as_str(),
                    now_rfc3339(),
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
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
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute(
            "UPDATE attempts SET finished_at = ?2, duration_ms = ?3, fuel_consumed = ?4,
                 statements = ?5, outcome = ?6, error = ?7
             WHERE id = ?1",
            params![
                id,
                now_rfc3339(),
                finish.duration_ms as i64,
                finish.fuel_consumed as i64,
                finish.statements,
                finish.outcome.as_str(),
                finish.error,
            ],
        )
        .map_err(err)?;
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO guest_logs (attempt_id, seq, level, message) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(err)?;
            for (seq, (level, message)) in record.logs.iter().enumerate() {
                insert
                    .execute(params![id, seq as i64, level, message])
                    .map_err(err)?;
            }
            let mut insert = tx
                .prepare(
                    "INSERT INTO statements (attempt_id, seq, query, params, duration_us, rows, outcome, code, message)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
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
                        entry.outcome.as_str(),
                        entry.code,
                        entry.message,
                    ])
                    .map_err(err)?;
            }
            let mut insert = tx
                .prepare(
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

    /// Every attempt against `target`, oldest first.
    pub fn attempts(&self, target: &str) -> Result<Vec<Attempt>, Error> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, version, description, direction, checksum, started_at, finished_at,
                        duration_ms, fuel_consumed, statements, outcome, error
                 FROM attempts WHERE target = ?1 ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([target], |row| {
                let version: String = row.get(1)?;
                let direction: String = row.get(3)?;
                let outcome: String = row.get(10)?;
                Ok((
                    version,
                    Attempt {
                        id: row.get(0)?,
                        // Replaced below; rusqlite closures cannot fail with our error.
                        version: Version::parse("0").expect("0 is a version"),
                        description: row.get(2)?,
                        direction: if direction == "down" {
                            Direction::Down
                        } else {
                            Direction::Up
                        },
                        checksum: Checksum::from_hex(row.get::<_, String>(4)?),
                        started_at: row.get(5)?,
                        finished_at: row.get(6)?,
                        duration_ms: row.get::<_, Option<i64>>(7)?.map(|v| v as u64),
                        fuel_consumed: row.get::<_, Option<i64>>(8)?.map(|v| v as u64),
                        statements: row.get(9)?,
                        outcome: Outcome::parse(&outcome),
                        error: row.get(11)?,
                    },
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut attempts = Vec::new();
        for row in rows {
            let (version, mut attempt) = row.map_err(|e| self.err(e))?;
            attempt.version = Version::parse(&version).ok_or_else(|| {
                self.err(format!("corrupt version `{version}` in row {}", attempt.id))
            })?;
            attempts.push(attempt);
        }
        Ok(attempts)
    }

    /// The guest log lines of attempt `id`, in order.
    pub fn logs(&self, id: i64) -> Result<Vec<(String, String)>, Error> {
        let mut stmt = self
            .conn
            .prepare("SELECT level, message FROM guest_logs WHERE attempt_id = ?1 ORDER BY seq")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([id], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }
}
