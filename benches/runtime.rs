//! Benchmarks of the sandbox without a database: instantiating a component
//! (pooled and on demand), a guest-to-host call, and fuel metering on and off
//! on a CPU-bound guest. The guests are in benches/guests (`graphmig build`).

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use graphmig::config::MigrationSettings;
use graphmig::{Sandbox, SandboxOptions, SilentReporter};

/// Calls one `describe` of the host-calls guest makes (its `CALLS`).
const HOST_CALLS: u32 = 10_000;

fn guest(name: &str) -> (PathBuf, Vec<u8>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../benches/guests/migrations")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; build the bench guests first: scripts/bench.sh does, or `graphmig build` in benches/guests",
            path.display()
        )
    });
    (path, bytes)
}

fn sandbox(pooled: bool, fuel: bool) -> Sandbox {
    Sandbox::with_options(SandboxOptions {
        pool_memory_bytes: pooled.then_some(MigrationSettings::default().limits.memory_bytes),
        fuel,
    })
    .expect("sandbox")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn instantiate(c: &mut Criterion) {
    let rt = runtime();
    let settings = MigrationSettings::default();
    let (path, bytes) = guest("V3__ingest.wasm");
    for (name, pooled) in [("pooled", true), ("on demand", false)] {
        let sandbox = sandbox(pooled, true);
        let loaded = sandbox.load(&path, &bytes).expect("load");
        c.bench_function(
            &format!("instantiate + describe a Rust guest, {name}"),
            |b| {
                b.iter(|| {
                    rt.block_on(sandbox.describe(&loaded, &settings, Arc::new(SilentReporter)))
                        .expect("describe")
                })
            },
        );
    }
}

fn host_calls(c: &mut Criterion) {
    let rt = runtime();
    let settings = MigrationSettings::default();
    let (path, bytes) = guest("V1__host_calls.wasm");
    let sandbox = sandbox(true, true);
    let loaded = sandbox.load(&path, &bytes).expect("load");
    let mut group = c.benchmark_group("guest-to-host call");
    // Reported per call: one iteration is one instance making HOST_CALLS calls.
    group.throughput(criterion::Throughput::Elements(u64::from(HOST_CALLS)));
    group.bench_function("log, 10,000 calls per instance", |b| {
        b.iter(|| {
            rt.block_on(sandbox.describe(&loaded, &settings, Arc::new(SilentReporter)))
                .expect("describe")
        })
    });
    group.finish();
}

fn fuel(c: &mut Criterion) {
    let rt = runtime();
    let settings = MigrationSettings::default();
    let (path, bytes) = guest("V2__cpu_bound.wasm");
    let mut group = c.benchmark_group("CPU-bound guest");
    for (name, metered) in [("fuel on", true), ("fuel off", false)] {
        let sandbox = sandbox(true, metered);
        let loaded = sandbox.load(&path, &bytes).expect("load");
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(sandbox.describe(&loaded, &settings, Arc::new(SilentReporter)))
                    .expect("describe")
            })
        });
    }
    group.finish();
}

/// The host's own work for one migration, without the database: the ledger's
/// `running` row and its completion, loading the compiled component from the
/// cache, and instantiating it to read its metadata. (Running a step adds one
/// more instantiation and the guest's own calls.)
fn per_migration(c: &mut Criterion) {
    use graphmig::ledger::{Action, Finish, Outcome};
    let rt = runtime();
    let settings = MigrationSettings::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let migrations = dir.path().join("migrations");
    std::fs::create_dir_all(&migrations).expect("migrations");
    let (path, bytes) = guest("V3__ingest.wasm");
    std::fs::write(migrations.join("V1__one.wasm"), &bytes).expect("copy");
    let chain = graphmig::Chain::discover(&migrations).expect("chain");
    let migration = &chain.migrations()[0];
    let mut ledger = graphmig::SqliteLedger::open(&dir.path().join("ledger.db")).expect("ledger");
    let sandbox = sandbox(true, true).with_cache(&dir.path().join("cache"));
    sandbox.load(&path, &bytes).expect("fill the cache");
    c.bench_function(
        "host work per migration (ledger rows, cached load, instantiate)",
        |b| {
            b.iter(|| {
                let id = ledger
                    .begin_attempt("bench", migration, Action::Up, "attempt", "bench@host")
                    .expect("begin");
                let loaded = sandbox.load(&path, &bytes).expect("load");
                rt.block_on(sandbox.describe(&loaded, &settings, Arc::new(SilentReporter)))
                    .expect("describe");
                let finish = Finish {
                    outcome: Outcome::Applied,
                    duration_ms: 1,
                    fuel_consumed: 1,
                    statements: 1,
                    error: None,
                    chain: None,
                };
                ledger
                    .finish_attempt(id, &finish, &Default::default())
                    .expect("finish");
            })
        },
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = instantiate, host_calls, fuel, per_migration
}
criterion_main!(benches);
