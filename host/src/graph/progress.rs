//! Progress markers: what part of a migration committed on its own, kept in the target database in the same transaction as the work.
//!
//! A `.cypher` migration in per-statement mode commits each statement with a
//! `__GraphmigProgress` node naming the migration, the statement's number and
//! the hash of its text, in the statement's own transaction: whatever runner
//! takes the migration up next knows exactly which statements committed, and
//! that they are the statements the file still holds. The markers go in the
//! transaction that records the migration as applied.

use std::collections::BTreeMap;

use neo4rs::BoltType;

use super::{GraphError, GraphTxn};

/// The label of progress markers (reserved: guests cannot name it).
pub const PROGRESS_LABEL: &str = "__GraphmigProgress";

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

    /// Removes `migration`'s markers, in this transaction (the one that
    /// records it applied).
    pub async fn clear_progress(&mut self, migration: &str) -> Result<(), GraphError> {
        self.run(
            &format!("MATCH (p:{PROGRESS_LABEL}) WHERE p.migration = $migration DELETE p"),
            vec![("migration".into(), text(migration))],
        )
        .await
        .map(|_| ())
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
