//! Batch ingest of 100,000 rows through a guest (a tracked batch, chunked, tagged,
//! journaled) against the same rows sent straight through neo4rs with UNWIND, in
//! chunks of the same size, to the same ArcadeDB database: as maps (the target's
//! raw side) and as lists of values (the form graphmig sends rows whose fields
//! agree). Needs the server and
//! the empty database `ingest_bench` that scripts/bench.sh sets up
//! (GRAPHMIG_BENCH_BOLT_PORT, GRAPHMIG_BENCH_PASSWORD).

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use graphmig::{Config, DownOptions, RunOptions, Runner, SilentReporter};
use neo4rs::{BoltType, ConfigBuilder, Graph, query};

/// Rows of one ingest (the guest's `ROWS`).
const ROWS: i64 = 100_000;
/// Rows per chunk on both sides (graphmig's default `[batches] chunk-size`).
const CHUNK: usize = 5_000;
const DATABASE: &str = "ingest_bench";

struct Server {
    bolt: u16,
    password: String,
}

fn server() -> Server {
    let port = |name: &str, default: u16| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    Server {
        bolt: port("GRAPHMIG_BENCH_BOLT_PORT", 7696),
        password: std::env::var("GRAPHMIG_BENCH_PASSWORD")
            .unwrap_or_else(|_| "graphmig-dev-pw".into()),
    }
}

/// A project whose chain is the ingest guest alone, against the bench database.
fn project(dir: &Path, server: &Server) -> Config {
    let guest =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/guests/migrations/V3__ingest.wasm");
    let migrations = dir.join("migrations");
    std::fs::create_dir_all(&migrations).expect("migrations");
    std::fs::copy(&guest, migrations.join("V3__ingest.wasm")).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; build the bench guests first (scripts/bench.sh does)",
            guest.display()
        )
    });
    std::fs::write(
        dir.join("graphmig.toml"),
        format!(
            "[database]\nuri = \"bolt://127.0.0.1:{}\"\nuser = \"root\"\nname = \"{DATABASE}\"\n[batches]\nchunk-size = {CHUNK}\n",
            server.bolt
        ),
    )
    .expect("config");
    let mut config = Config::load(&dir.join("graphmig.toml")).expect("config");
    config.database.password = graphmig::config::Secret::new(server.password.as_str());
    config
}

/// How the raw side sends its rows.
#[derive(Clone, Copy)]
enum RawForm {
    /// Maps, as one writes `UNWIND $rows AS row ... SET n = row`.
    Maps,
    /// Lists of values under fixed columns, as graphmig sends rows whose
    /// fields agree.
    Lists,
}

impl RawForm {
    fn statement(self) -> &'static str {
        match self {
            RawForm::Maps => "UNWIND $rows AS row CREATE (n:BenchRaw) SET n = row",
            RawForm::Lists => {
                "UNWIND $rows AS row CREATE (n:BenchRaw) SET n.id = row[0], n.name = row[1], n.score = row[2]"
            }
        }
    }
}

/// The rows the guest writes, as Bolt maps.
fn rows() -> Vec<BoltType> {
    (0..ROWS)
        .map(|i| {
            let mut map = neo4rs::BoltMap::new();
            map.put("id".into(), BoltType::Integer(i.into()));
            map.put("name".into(), BoltType::String(format!("row {i}").into()));
            map.put(
                "score".into(),
                BoltType::Float(neo4rs::BoltFloat::new(i as f64 * 0.5)),
            );
            BoltType::Map(map)
        })
        .collect()
}

/// The rows as chunk parameters, built before the raw side's clock starts: its
/// time is the database's and the driver's alone.
fn raw_chunks(rows: &[BoltType], form: RawForm) -> Vec<BoltType> {
    let as_list = |row: &BoltType| match row {
        BoltType::Map(map) => BoltType::List(neo4rs::BoltList {
            value: ["id", "name", "score"]
                .iter()
                .map(|k| map.value[&neo4rs::BoltString::new(k)].clone())
                .collect(),
        }),
        other => other.clone(),
    };
    rows.chunks(CHUNK)
        .map(|chunk| {
            BoltType::List(neo4rs::BoltList {
                value: match form {
                    RawForm::Maps => chunk.to_vec(),
                    RawForm::Lists => chunk.iter().map(as_list).collect(),
                },
            })
        })
        .collect()
}

async fn raw_ingest(graph: &Graph, chunks: Vec<BoltType>, form: RawForm) {
    for chunk in chunks {
        let mut txn = graph.start_txn().await.expect("begin");
        txn.run(query(form.statement()).param("rows", chunk))
            .await
            .expect("unwind");
        txn.commit().await.expect("commit");
    }
}

async fn raw_cleanup(graph: &Graph) {
    loop {
        let mut result = graph
            .execute(query(
                "MATCH (n:BenchRaw) WITH n LIMIT 10000 DELETE n RETURN count(*) AS n",
            ))
            .await
            .expect("delete");
        let deleted: i64 = match result.next().await.expect("row") {
            Some(row) => row.get("n").unwrap_or(0),
            None => 0,
        };
        if deleted == 0 {
            break;
        }
    }
}

fn ingest(c: &mut Criterion) {
    let server = server();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let runner = Arc::new(Runner::new(
        project(dir.path(), &server),
        Arc::new(SilentReporter),
    ));
    let graph = rt.block_on(async {
        let config = ConfigBuilder::default()
            .uri(format!("127.0.0.1:{}", server.bolt))
            .user("root")
            .password(server.password.as_str())
            .db(DATABASE)
            .build()
            .expect("neo4rs config");
        Graph::connect(config).expect("connect")
    });
    let rows = rows();

    let mut group = c.benchmark_group("ingest 100,000 rows");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(60));
    // Every iteration of either side runs all three ingests (raw maps, raw
    // lists, guest) and times only its own: ArcadeDB slows as a database sees
    // more writes and deletes, so running all raw samples first and all guest
    // samples after would compare a fresh database with a used one. The order
    // rotates from one iteration to the next, so that no side always follows
    // the same one (and the server's garbage collection after it).
    let raw_once = |form: RawForm| {
        let chunks = raw_chunks(&rows, form);
        let started = Instant::now();
        rt.block_on(raw_ingest(&graph, chunks, form));
        let spent = started.elapsed();
        rt.block_on(raw_cleanup(&graph));
        spent
    };
    let guest_once = || {
        let started = Instant::now();
        // On a runtime worker, as the CLI runs it.
        let run = Arc::clone(&runner);
        let task = rt.spawn(async move { run.run(&RunOptions::default()).await });
        rt.block_on(task).expect("task").expect("run");
        let spent = started.elapsed();
        rt.block_on(runner.down(&DownOptions::default()))
            .expect("down");
        spent
    };
    // Every iteration's three times (raw maps, raw lists, guest), for the
    // paired ratios below.
    let triples = std::cell::RefCell::new(Vec::new());
    let all = || {
        let mut triple = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
        let turn = triples.borrow().len();
        for k in 0..3 {
            match (turn + k) % 3 {
                0 => triple.0 = raw_once(RawForm::Maps),
                1 => triple.1 = raw_once(RawForm::Lists),
                _ => triple.2 = guest_once(),
            }
        }
        triples.borrow_mut().push(triple);
        triple
    };
    // The lists side is timed in every iteration but has no estimate of its
    // own: a third bench function would add a third of the bench's time.
    group.bench_function("raw neo4rs UNWIND", |b| {
        b.iter_custom(|iterations| (0..iterations).map(|_| all().0).sum())
    });
    group.bench_function("through a guest (tracked batch)", |b| {
        b.iter_custom(|iterations| (0..iterations).map(|_| all().2).sum())
    });
    group.finish();
    let triples = triples.into_inner();
    report_paired_ratio(
        "raw rows as maps (the target)",
        triples.iter().map(|t| (t.0, t.2)),
        Some(0.9),
    );
    report_paired_ratio(
        "raw rows as lists (graphmig's own form)",
        triples.iter().map(|t| (t.1, t.2)),
        None,
    );
}

/// Prints the guest's rows per second as a share of a raw side's, as the
/// median of every iteration's own ratio: the ingests of an iteration run back
/// to back against one state of the server, which drifts over the minutes a
/// bench takes; criterion's estimates come from different minutes.
fn report_paired_ratio(
    against: &str,
    pairs: impl Iterator<Item = (Duration, Duration)>,
    target: Option<f64>,
) {
    let mut ratios: Vec<f64> = pairs
        .map(|(raw, guest)| raw.as_secs_f64() / guest.as_secs_f64())
        .collect();
    if ratios.is_empty() {
        return;
    }
    ratios.sort_by(f64::total_cmp);
    let n = ratios.len();
    let median = (ratios[(n - 1) / 2] + ratios[n / 2]) / 2.0;
    let verdict = match target {
        Some(t) => format!(
            "; target at least {:.0} %: {}",
            100.0 * t,
            if median >= t { "MET" } else { "MISSED" }
        ),
        None => String::new(),
    };
    println!(
        "guest rows/s as a share of {against}, median of {n} iterations: {:.1} % (from {:.1} to {:.1} %){verdict}",
        100.0 * median,
        100.0 * ratios[0],
        100.0 * ratios[n - 1],
    );
}

criterion_group!(benches, ingest);
criterion_main!(benches);
