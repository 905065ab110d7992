//! Bench guest: ingests 100,000 rows through one tracked batch (the bench
//! compares its rows per second with raw neo4rs UNWIND into the same database).

use graphmig_sdk::{Context, Error, Result, params};

/// Rows ingested; the raw side of the bench sends the same rows.
pub const ROWS: i64 = 100_000;

graphmig_sdk::migration! { description: "ingest 100,000 rows", up: up }

fn up(ctx: &Context) -> Result<()> {
    let rows = (0..ROWS).map(|i| params! { "id" => i, "name" => format!("row {i}"), "score" => i as f64 * 0.5 });
    let created = ctx.begin_batch("bench").create_nodes("BenchRow", rows)?;
    if created != ROWS as u64 {
        return Err(Error::msg(format!("created {created} of {ROWS} rows")));
    }
    Ok(())
}
