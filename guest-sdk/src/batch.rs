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

/// Rows handed to the host per `write`: the guest holds no more than this many
/// at a time, and the host writes one chunk while the guest builds the next.
const ROWS_PER_WRITE: usize = 1_000;

/// Streams `rows` through `writer` and returns what they created. The rows
/// move into the wire format: nothing is copied.
fn stream(
    writer: std::result::Result<context::BatchWriter, wit::GraphError>,
    rows: impl IntoIterator<Item = Params>,
) -> Result<u64> {
    let writer = writer.map_err(wire::graph_error)?;
    let rows = rows.into_iter();
    if let (known, Some(upper)) = rows.size_hint()
        && known == upper
    {
        writer.expect_rows(known as u64);
    }
    let mut piece = Vec::with_capacity(ROWS_PER_WRITE);
    for row in rows {
        piece.push(
            row.0
                .into_iter()
                .map(|(k, v)| (k, wire::into_wit(v)))
                .collect::<Vec<_>>(),
        );
        if piece.len() == ROWS_PER_WRITE {
            writer.write(&piece).map_err(wire::graph_error)?;
            piece.clear();
        }
    }
    if !piece.is_empty() {
        writer.write(&piece).map_err(wire::graph_error)?;
    }
    Ok(writer.finish().map_err(wire::graph_error)?)
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
    ///
    /// Rows are taken from the iterator as they are written, a thousand at a
    /// time, so an ingest of any size fits in the guest's memory, and the
    /// host writes each chunk while the next is being built. A failed chunk
    /// fails the migration.
    pub fn create_nodes(&self, label: &str, rows: impl IntoIterator<Item = Params>) -> Result<u64> {
        stream(context::open_create_nodes(&self.id, label), rows)
    }

    /// Merges one `label` node per row on the `key` properties; returns how many
    /// were created (existing nodes are updated, not tagged). Streams its rows
    /// as [`Batch::create_nodes`] does.
    pub fn merge_nodes(
        &self,
        label: &str,
        key: &[&str],
        rows: impl IntoIterator<Item = Params>,
    ) -> Result<u64> {
        let key: Vec<String> = key.iter().map(|k| k.to_string()).collect();
        stream(context::open_merge_nodes(&self.id, label, &key), rows)
    }

    /// Creates one `rel_type` relationship per row between the nodes `from` and
    /// `to` find; the row's other fields become its properties. Streams its
    /// rows as [`Batch::create_nodes`] does.
    pub fn create_relationships(
        &self,
        rel_type: &str,
        from: &Endpoint,
        to: &Endpoint,
        rows: impl IntoIterator<Item = Params>,
    ) -> Result<u64> {
        stream(
            context::open_create_relationships(&self.id, rel_type, &from.0, &to.0),
            rows,
        )
    }
}
