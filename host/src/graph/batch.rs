//! Tracked batches on the database side: chunked deletion of exactly what a batch
//! wrote, by the `_graphmig_batch` tag.

use neo4rs::BoltType;

use super::{GraphDb, GraphError};

/// The property that tags everything a batch writes.
pub const BATCH_TAG: &str = "_graphmig_batch";

impl GraphDb {
    /// Deletes everything tagged with a batch id starting with `prefix` (an
    /// attempt's key): the batches of an attempt that never committed.
    pub async fn delete_batch_prefix(&self, prefix: &str, chunk: usize) -> Result<u64, GraphError> {
        self.delete_tagged("STARTS WITH", &format!("{prefix}-"), chunk)
            .await
    }

    /// Deletes the relationships, then the nodes, tagged with `batch`, `chunk` at
    /// a time, each chunk in its own transaction. Nodes that other relationships
    /// still use are not detached: the deletion fails instead, so that nothing
    /// the batch did not write is removed. Returns how many went.
    pub async fn delete_batch(&self, batch: &str, chunk: usize) -> Result<u64, GraphError> {
        self.delete_tagged("=", batch, chunk).await
    }

    /// Deletes relationships, then nodes, whose batch tag satisfies
    /// `tag <comparison> $tag`, chunk by chunk, each chunk committing on its own.
    async fn delete_tagged(
        &self,
        comparison: &str,
        tag: &str,
        chunk: usize,
    ) -> Result<u64, GraphError> {
        let mut deleted = 0;
        for statement in [
            format!(
                "MATCH ()-[r]->() WHERE r.{BATCH_TAG} {comparison} $tag WITH r LIMIT {chunk} DELETE r"
            ),
            format!(
                "MATCH (n) WHERE n.{BATCH_TAG} {comparison} $tag WITH n LIMIT {chunk} DELETE n"
            ),
        ] {
            loop {
                let mut txn = self.begin().await.map_err(|e| GraphError {
                    kind: super::GraphErrorKind::Other,
                    code: "graphmig.Database".into(),
                    message: e.to_string(),
                })?;
                let counters = txn
                    .run_discarding(
                        &statement,
                        vec![("tag".into(), BoltType::String(neo4rs::BoltString::new(tag)))],
                    )
                    .await?;
                txn.commit().await?;
                let n = counters.nodes_deleted + counters.relationships_deleted;
                deleted += n;
                if n == 0 {
                    break;
                }
            }
        }
        Ok(deleted)
    }
}
