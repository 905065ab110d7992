//! A backfill over 1,000,000 nodes through graphmig's backfill operation (a
//! `.cypher` migration with the `backfill` directive: keyset pages, a checkpoint
//! committed with every chunk, the ledger's and the journal's records) against
//! the same keyset loop written by hand with neo4rs (page, write, commit; no
//! checkpoint), in chunks of the same size, on the same ArcadeDB database.
//! Needs the server and the empty database `backfill_bench` that
//! scripts/bench.sh sets up (GRAPHMIG_BENCH_BOLT_PORT, GRAPHMIG_BENCH_PASSWORD);
//! GRAPHMIG_BENCH_BACKFILL_ROWS sets another number of nodes.

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use graphmig::{Config, DownOptions, RunOptions, Runner, SilentReporter};
use neo4rs::{BoltType, ConfigBuilder, Graph, query};

/// Keys per chunk on both sides (graphmig's default `[backfill] chunk-size`).
const CHUNK: i64 = 5_000;
const DATABASE: &str = "backfill_bench";
/// The write both sides run on each chunk.
const WRITE: &str = "UNWIND $batch AS k MATCH (n:BenchItem {id: k}) SET n.v = coalesce(n.v, 0) + 1";

fn rows() -> i64 {
    std::env::var("GRAPHMIG_BENCH_BACKFILL_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn bolt_port() -> u16 {
    std::env::var("GRAPHMIG_BENCH_BOLT_PORT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7696)
}

fn password() -> String {
    std::env::var("GRAPHMIG_BENCH_PASSWORD").unwrap_or_else(|_| "graphmig-dev-pw".into())
}

/// A project whose chain is the backfill alone (with an undo script, so that
/// `down` makes it pending again).
fn project(dir: &Path) -> Config {
    let migrations = dir.join("migrations");
    std::fs::create_dir_all(&migrations).expect("migrations");
    std::fs::write(
        migrations.join("V1__backfill.cypher"),
        format!(
            "// graphmig: backfill label = BenchItem, key = id, chunk-size = {CHUNK}\n{WRITE};\n"
        ),
    )
    .expect("V1");
    std::fs::write(migrations.join("U1__backfill.cypher"), "RETURN 1;\n").expect("U1");
    std::fs::write(
        dir.join("graphmig.toml"),
        format!(
            "[database]\nuri = \"bolt://127.0.0.1:{}\"\nuser = \"root\"\nname = \"{DATABASE}\"\n[limits]\ndeadline-secs = 3600\n",
            bolt_port()
        ),
    )
    .expect("config");
    let mut config = Config::load(&dir.join("graphmig.toml")).expect("config");
    config.database.password = graphmig::config::Secret::new(password().as_str());
    config
}

/// The nodes, indexed by key, created once before either side runs.
async fn seed(graph: &Graph, rows: i64) {
    let mut existing = graph
        .execute(query("MATCH (n:BenchItem) RETURN count(n) AS n"))
        .await
        .expect("count");
    let have: i64 = match existing.next().await.expect("row") {
        Some(row) => row.get("n").unwrap_or(0),
        None => 0,
    };
    if have == rows {
        return;
    }
    graph
        .run(query("MATCH (n:BenchItem) DETACH DELETE n"))
        .await
        .expect("clear");
    graph
        .run(query(
            "CREATE INDEX bench_item_id IF NOT EXISTS FOR (n:BenchItem) ON (n.id)",
        ))
        .await
        .expect("index");
    let mut start = 1;
    while start <= rows {
        let end = (start + 49_999).min(rows);
        graph
            .run(
                query("UNWIND range($start, $end) AS i CREATE (:BenchItem {id: i})")
                    .param("start", start)
                    .param("end", end),
            )
            .await
            .expect("seed");
        start = end + 1;
    }
}

/// The same keyset loop, by hand: the largest key, then page, write and
/// commit until a page is short.
async fn hand_written(graph: &Graph) {
    let mut census = graph
        .execute(query("MATCH (n:BenchItem) RETURN max(n.id) AS upper"))
        .await
        .expect("census");
    let upper: i64 = match census.next().await.expect("row") {
        Some(row) => row.get("upper").unwrap_or(0),
        None => 0,
    };
    let mut cursor: Option<i64> = None;
    loop {
        let mut txn = graph.start_txn().await.expect("begin");
        let page = match cursor {
            None => query(
                "MATCH (n:BenchItem) WHERE n.id <= $upper RETURN n.id AS key ORDER BY key LIMIT $size",
            ),
            Some(c) => query(
                "MATCH (n:BenchItem) WHERE n.id <= $upper AND n.id > $cursor RETURN n.id AS key ORDER BY key LIMIT $size",
            )
            .param("cursor", c),
        }
        .param("upper", upper)
        .param("size", CHUNK);
        let mut stream = txn.execute(page).await.expect("page");
        let mut keys = Vec::new();
        while let Some(row) = stream.next(txn.handle()).await.expect("row") {
            keys.push(row.get::<i64>("key").expect("key"));
        }
        let Some(&last) = keys.last() else {
            txn.commit().await.expect("commit");
            break;
        };
        let short = (keys.len() as i64) < CHUNK;
        let batch: Vec<BoltType> = keys
            .into_iter()
            .map(|k| BoltType::Integer(k.into()))
            .collect();
        txn.run(query(WRITE).param("batch", batch))
            .await
            .expect("write");
        txn.commit().await.expect("commit");
        cursor = Some(last);
        if short {
            break;
        }
    }
}

fn backfill(c: &mut Criterion) {
    let rows = rows();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let runner = Arc::new(Runner::new(project(dir.path()), Arc::new(SilentReporter)));
    let graph = rt.block_on(async {
        let config = ConfigBuilder::default()
            .uri(format!("127.0.0.1:{}", bolt_port()))
            .user("root")
            .password(password().as_str())
            .db(DATABASE)
            .build()
            .expect("neo4rs config");
        Graph::connect(config).expect("connect")
    });
    rt.block_on(seed(&graph, rows));

    let mut group = c.benchmark_group(format!("backfill {rows} nodes"));
    group.throughput(Throughput::Elements(rows as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(60));
    // Each iteration runs both, in alternating order, each timing its own, so
    // that both see the database equally used.
    let hand_once = || {
        let started = Instant::now();
        rt.block_on(hand_written(&graph));
        started.elapsed()
    };
    let graphmig_once = || {
        let started = Instant::now();
        let run = Arc::clone(&runner);
        let task = rt.spawn(async move { run.run(&RunOptions::default()).await });
        rt.block_on(task).expect("task").expect("run");
        let spent = started.elapsed();
        rt.block_on(runner.down(&DownOptions::default()))
            .expect("down");
        spent
    };
    let pairs = std::cell::RefCell::new(Vec::new());
    let both = || {
        let turn = pairs.borrow().len();
        let pair = if turn % 2 == 0 {
            let hand = hand_once();
            (hand, graphmig_once())
        } else {
            let ours = graphmig_once();
            (hand_once(), ours)
        };
        pairs.borrow_mut().push(pair);
        pair
    };
    group.bench_function("hand-written keyset loop (neo4rs)", |b| {
        b.iter_custom(|iterations| (0..iterations).map(|_| both().0).sum())
    });
    group.bench_function("graphmig backfill (checkpoints on)", |b| {
        b.iter_custom(|iterations| (0..iterations).map(|_| both().1).sum())
    });
    group.finish();
    let mut ratios: Vec<f64> = pairs
        .into_inner()
        .iter()
        .map(|(hand, ours)| hand.as_secs_f64() / ours.as_secs_f64())
        .collect();
    ratios.sort_by(f64::total_cmp);
    if let (Some(low), Some(high)) = (ratios.first(), ratios.last()) {
        let n = ratios.len();
        let median = (ratios[(n - 1) / 2] + ratios[n / 2]) / 2.0;
        println!(
            "graphmig's backfill rows/s as a share of the hand-written loop's, median of {n} \
             iterations: {:.1} % (from {:.1} to {:.1} %); target at least 90 %: {}",
            100.0 * median,
            100.0 * low,
            100.0 * high,
            if median >= 0.9 { "MET" } else { "MISSED" }
        );
    }
}

criterion_group!(benches, backfill);
criterion_main!(benches);
