//! Tracked batches: bulk writes tagged with a batch id, so that exactly what a
//! batch created can be deleted again.

use crate::__private::bindings::graphmig::migration::{context, types as wit};
use crate::error::Result;
use crate::value::Params;
use crate::wire;

/// A tracked batch begun with [`crate::Context::begin_batch`].
#[derive(Debug, Clone)]
pub struct Batch {
    id: String,
}

/// How a relationship finds one of its ends: the node labelled `label` whose
/// property `key` equals the row's field `field`.
#[derive(Debug, Clone)]
pub struct Endpoint(wit::Endpoint);

impl Endpoint {
    /// The node labelled `label` whose `key` property equals the row's `field`.
    pub fn new(label: &str, key: &str, field: &str) -> Self {
        Endpoint(wit::Endpoint {
            label: label.to_string(),
            key: key.to_string(),
            field: field.to_string(),
        })
    }
}

fn rows(rows: impl IntoIterator<Item = Params>) -> Vec<Vec<(String, wit::Value)>> {
    rows.into_iter()
        .map(|p| {
            p.0.iter()
                .map(|(k, v)| (k.clone(), wire::to_wit(v)))
                .collect()
        })
        .collect()
}

impl Batch {
    pub(crate) fn new(id: String) -> Self {
        Batch { id }
    }

    /// The batch id, as recorded in the ledger and on everything it wrote.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Creates one `label` node per row; returns how many were created.
    pub fn create_nodes(
        &self,
        label: &str,
        rows_: impl IntoIterator<Item = Params>,
    ) -> Result<u64> {
        context::batch_create_nodes(&self.id, label, &rows(rows_))
            .map_err(|e| wire::graph_error(e).into())
    }

    /// Merges one `label` node per row on the `key` properties; returns how many
    /// were created (existing nodes are updated, not tagged).
    pub fn merge_nodes(
        &self,
        label: &str,
        key: &[&str],
        rows_: impl IntoIterator<Item = Params>,
    ) -> Result<u64> {
        let key: Vec<String> = key.iter().map(|k| k.to_string()).collect();
        context::batch_merge_nodes(&self.id, label, &key, &rows(rows_))
            .map_err(|e| wire::graph_error(e).into())
    }

    /// Creates one `rel_type` relationship per row between the nodes `from` and
    /// `to` find; the row's other fields become its properties.
    pub fn create_relationships(
        &self,
        rel_type: &str,
        from: &Endpoint,
        to: &Endpoint,
        rows_: impl IntoIterator<Item = Params>,
    ) -> Result<u64> {
        context::batch_create_relationships(&self.id, rel_type, &from.0, &to.0, &rows(rows_))
            .map_err(|e| wire::graph_error(e).into())
    }
}
