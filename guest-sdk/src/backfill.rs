//! Backfills: a write over every node of a label, in chunks the host commits and resumes.

use crate::__private::bindings::graphmig::migration::context;
use crate::error::Result;
use crate::wire;

/// A backfill to run with [`crate::Context::backfill`]: the host pages through
/// the `label` nodes by `key`, bounded to those present when it begins, and
/// runs `write` on each chunk (`$batch`: the chunk's keys; `$cursor`: the last
/// key of the chunk before), each chunk committed on its own with a
/// checkpoint. A later attempt resumes at the last checkpoint: write nothing
/// of your own to resume it.
///
/// ```no_run
/// use graphmig_sdk::{Backfill, Context, Result};
///
/// fn up(ctx: &Context) -> Result<()> {
///     ctx.backfill(
///         Backfill::new("lowercase emails", "Person", "id",
///             "UNWIND $batch AS id MATCH (p:Person {id: id}) SET p.email_lower = toLower(p.email)")
///             .filter("n.email IS NOT NULL")
///             .chunk_size(2_000),
///     )?;
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Backfill {
    spec: context::BackfillSpec,
}

impl Backfill {
    /// A backfill named `name` (resumed by that name) over `label` nodes,
    /// paged by `key`, running `write` on each chunk.
    pub fn new(name: &str, label: &str, key: &str, write: &str) -> Backfill {
        Backfill {
            spec: context::BackfillSpec {
                name: name.into(),
                label: label.into(),
                key: key.into(),
                filter: String::new(),
                write: write.into(),
                chunk_size: 0,
            },
        }
    }

    /// Only the nodes `n` for which `condition` holds.
    pub fn filter(mut self, condition: &str) -> Backfill {
        self.spec.filter = condition.into();
        self
    }

    /// Keys per chunk (the default is `[backfill] chunk-size`).
    pub fn chunk_size(mut self, keys: u32) -> Backfill {
        self.spec.chunk_size = keys;
        self
    }
}

/// What a backfill did, this attempt and the earlier ones together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackfillReport {
    /// Nodes the write ran on.
    pub rows: u64,
    /// Chunks committed.
    pub chunks: u32,
    /// Chunks an earlier attempt had committed (0: it began afresh).
    pub resumed_after: u32,
    /// Nodes counted when it began.
    pub total: u64,
}

pub(crate) fn run(backfill: Backfill) -> Result<BackfillReport> {
    context::backfill(&backfill.spec)
        .map(|r| BackfillReport {
            rows: r.rows,
            chunks: r.chunks,
            resumed_after: r.resumed_after,
            total: r.total,
        })
        .map_err(|e| wire::graph_error(e).into())
}
