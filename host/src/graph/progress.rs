//! Progress markers: what part of a migration committed on its own, kept in the target database in the same transaction as the work.
//!
//! A `.cypher` migration in per-statement mode commits each statement with a
//! `__GraphmigProgress` node naming the migration, the statement's number and
//! the hash of its text, in the statement's own transaction; a backfill
//! commits each chunk with its `__GraphmigBackfill` checkpoint (cursor, rows,
//! chunks). Whatever runner takes the migration up next knows exactly what
//! committed, and that it is what the migration still asks for. The markers
//! go in the transaction that records the migration as applied.

use std::collections::BTreeMap;

use neo4rs::BoltType;

use super::{GraphError, GraphTxn};
use crate::journal::BackfillCheckpoint;

/// The label of progress markers (reserved: guests cannot name it).
pub const PROGRESS_LABEL: &str = "__GraphmigProgress";

/// The label of backfill checkpoints (reserved too).
pub const BACKFILL_LABEL: &str = "__GraphmigBackfill";

/// A backfill's checkpoint: where it stands after its last committed chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct BackfillMark {
    /// The hash of what it pages through and writes (label, key, filter,
    /// write): a later attempt that asks for another backfill of the same
    /// name is refused rather than resumed.
    pub hash: String,
    /// The largest key when it began: nodes above it are not its work.
    pub upper: BoltType,
    /// The nodes it counted when it began.
    pub total: u64,
    /// The last key of the last committed chunk (null before the first).
    pub cursor: BoltType,
    /// Nodes written.
    pub rows: u64,
    /// Chunks committed.
    pub chunks: u32,
    /// Whether the last page came back empty.
    pub done: bool,
}

fn int(value: i64) -> BoltType {
    BoltType::Integer(neo4rs::BoltInteger::new(value))
}

fn text(value: &str) -> BoltType {
    BoltType::String(neo4rs::BoltString::new(value))
}

impl GraphTxn {
    /// The statements of `migration` that committed, by number, with the hash
    /// of the text each had.
    pub async fn read_progress(
        &mut self,
        migration: &str,
    ) -> Result<BTreeMap<u32, String>, GraphError> {
        let rows = self
            .run(
                &format!(
                    "MATCH (p:{PROGRESS_LABEL}) WHERE p.migration = $migration \
                     RETURN p.statement AS statement, p.hash AS hash"
                ),
                vec![("migration".into(), text(migration))],
            )
            .await?;
        let mut done = BTreeMap::new();
        for row in rows {
            let field = |name: &str| row.iter().find(|(k, _)| k == name).map(|(_, v)| v);
            match (field("statement"), field("hash")) {
                (Some(BoltType::Integer(n)), Some(BoltType::String(hash))) => {
                    let n = u32::try_from(n.value).map_err(|_| corrupt(migration))?;
                    done.insert(n, hash.value.clone());
                }
                // A marker the host did not write this way is not guessed at.
                _ => return Err(corrupt(migration)),
            }
        }
        Ok(done)
    }

    /// Records, in this transaction, that statement `statement` of
    /// `migration`, whose text hashes to `hash`, committed.
    pub async fn write_progress(
        &mut self,
        migration: &str,
        statement: u32,
        hash: &str,
        attempt: &str,
    ) -> Result<(), GraphError> {
        self.run(
            &format!(
                "CREATE (:{PROGRESS_LABEL} {{migration: $migration, statement: $statement, \
                 hash: $hash, attempt: $attempt}})"
            ),
            vec![
                ("migration".into(), text(migration)),
                (
                    "statement".into(),
                    BoltType::Integer(neo4rs::BoltInteger::new(i64::from(statement))),
                ),
                ("hash".into(), text(hash)),
                ("attempt".into(), text(attempt)),
            ],
        )
        .await
        .map(|_| ())
    }

    /// Removes `migration`'s markers and checkpoints, in this transaction
    /// (the one that records it applied).
    pub async fn clear_progress(&mut self, migration: &str) -> Result<(), GraphError> {
        for label in [PROGRESS_LABEL, BACKFILL_LABEL] {
            self.run(
                &format!("MATCH (p:{label}) WHERE p.migration = $migration DELETE p"),
                vec![("migration".into(), text(migration))],
            )
            .await?;
        }
        Ok(())
    }

    /// The checkpoint of backfill `name` of `migration`, if a chunk of it
    /// committed.
    pub async fn read_backfill(
        &mut self,
        migration: &str,
        name: &str,
    ) -> Result<Option<BackfillMark>, GraphError> {
        let rows = self
            .run(
                &format!(
                    "MATCH (b:{BACKFILL_LABEL}) WHERE b.migration = $migration AND b.name = $name \
                     RETURN b.hash AS hash, b.upper AS upper, b.total AS total, \
                     b.cursor AS cursor, b.rows AS rows, b.chunks AS chunks, b.done AS done"
                ),
                vec![
                    ("migration".into(), text(migration)),
                    ("name".into(), text(name)),
                ],
            )
            .await?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(None);
        };
        let field = |name: &str| {
            row.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or(BoltType::Null(neo4rs::BoltNull))
        };
        let number = |name: &str| match field(name) {
            BoltType::Integer(n) => u64::try_from(n.value).ok(),
            _ => None,
        };
        let (
            BoltType::String(hash),
            Some(total),
            Some(rows),
            Some(chunks),
            BoltType::Boolean(done),
        ) = (
            field("hash"),
            number("total"),
            number("rows"),
            number("chunks"),
            field("done"),
        )
        else {
            return Err(corrupt(migration));
        };
        Ok(Some(BackfillMark {
            hash: hash.value,
            upper: field("upper"),
            total,
            cursor: field("cursor"),
            rows,
            chunks: u32::try_from(chunks).map_err(|_| corrupt(migration))?,
            done: done.value,
        }))
    }

    /// Writes backfill `name`'s checkpoint in this transaction (the chunk's).
    pub async fn write_backfill(
        &mut self,
        migration: &str,
        name: &str,
        mark: &BackfillMark,
        attempt: &str,
    ) -> Result<(), GraphError> {
        let count = |n: u64| int(i64::try_from(n).unwrap_or(i64::MAX));
        self.run(
            &format!(
                "MERGE (b:{BACKFILL_LABEL} {{migration: $migration, name: $name}}) \
                 SET b.hash = $hash, b.upper = $upper, b.total = $total, b.cursor = $cursor, \
                 b.rows = $rows, b.chunks = $chunks, b.done = $done, b.attempt = $attempt"
            ),
            vec![
                ("migration".into(), text(migration)),
                ("name".into(), text(name)),
                ("hash".into(), text(&mark.hash)),
                ("upper".into(), mark.upper.clone()),
                ("total".into(), count(mark.total)),
                ("cursor".into(), mark.cursor.clone()),
                ("rows".into(), count(mark.rows)),
                ("chunks".into(), int(i64::from(mark.chunks))),
                (
                    "done".into(),
                    BoltType::Boolean(neo4rs::BoltBoolean::new(mark.done)),
                ),
                ("attempt".into(), text(attempt)),
            ],
        )
        .await
        .map(|_| ())
    }

    /// Every backfill checkpoint in this database, for `status`.
    pub async fn list_backfills(&mut self) -> Result<Vec<BackfillCheckpoint>, GraphError> {
        let rows = self
            .run(
                &format!(
                    "MATCH (b:{BACKFILL_LABEL}) RETURN b.migration AS migration, b.name AS name, \
                     b.rows AS rows, b.total AS total, b.chunks AS chunks, b.done AS done"
                ),
                Vec::new(),
            )
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let field = |name: &str| row.iter().find(|(k, _)| k == name).map(|(_, v)| v);
                let number = |name: &str| match field(name) {
                    Some(BoltType::Integer(n)) => u64::try_from(n.value).ok(),
                    _ => None,
                };
                match (field("migration"), field("name"), field("done")) {
                    (
                        Some(BoltType::String(m)),
                        Some(BoltType::String(n)),
                        Some(BoltType::Boolean(d)),
                    ) => Some(BackfillCheckpoint {
                        migration: m.value.clone(),
                        name: n.value.clone(),
                        rows: number("rows")?,
                        total: number("total")?,
                        chunks: u32::try_from(number("chunks")?).ok()?,
                        done: d.value,
                    }),
                    _ => None,
                }
            })
            .collect())
    }
}

fn corrupt(migration: &str) -> GraphError {
    GraphError {
        kind: super::GraphErrorKind::Other,
        code: "graphmig.Progress".into(),
        message: format!(
            "a {PROGRESS_LABEL} marker of {migration} is not one graphmig wrote; remove it \
             by hand once you know which statements committed"
        ),
    }
}
