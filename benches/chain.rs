//! Benchmarks of the host without a database: resolving a chain and `status` over
//! 1,000 migrations, and loading a component cold (compile) and from the cache.

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use graphmig::ledger::{Action, Finish, Outcome};
use graphmig::{Chain, Config, Runner, Sandbox, SilentReporter, SqliteLedger};

const MIGRATIONS: usize = 1_000;

/// A project with 1,000 artifacts and a ledger in which all are applied.
fn project(dir: &Path) -> Config {
    let migrations = dir.join("migrations");
    std::fs::create_dir_all(&migrations).expect("migrations dir");
    for i in 1..=MIGRATIONS {
        std::fs::write(
            migrations.join(format!("V{i}__migration_number_{i}.wasm")),
            format!("artifact {i}"),
        )
        .expect("artifact");
    }
    // No server listens on port 1: status reads the ledger alone, after a refused connect.
    std::fs::write(
        dir.join("graphmig.toml"),
        "[database]\nuri = \"bolt://127.0.0.1:1\"\nname = \"bench\"\n",
    )
    .expect("config");
    let config = Config::load(&dir.join("graphmig.toml")).expect("config");
    let chain = Chain::discover(&config.migrations_dir).expect("chain");
    let mut ledger = SqliteLedger::open(&config.ledger_path).expect("ledger");
    let target = graphmig::graph::target_key(&config.database);
    for migration in chain.migrations() {
        let id = ledger
            .begin_attempt(&target, migration, Action::Up, "bench", "bench@host")
            .expect("begin");
        let finish = Finish {
            outcome: Outcome::Applied,
            duration_ms: 5,
            fuel_consumed: 1_000,
            statements: 3,
            error: None,
            chain: None,
        };
        ledger
            .finish_attempt(id, &finish, &Default::default())
            .expect("finish");
    }
    config
}

fn chain_and_status(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = project(dir.path());
    c.bench_function("chain resolution, 1000 migrations", |b| {
        b.iter(|| Chain::discover(&config.migrations_dir).expect("chain"))
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let runner = Runner::new(config.clone(), Arc::new(SilentReporter));
    c.bench_function("status, 1000 applied migrations", |b| {
        b.iter(|| runtime.block_on(runner.status()).expect("status"))
    });
}

fn component_loading(c: &mut Criterion) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/guests/migrations/V1__create_first.wasm");
    let Ok(bytes) = std::fs::read(&fixture) else {
        eprintln!(
            "skipping component loading: build the fixture guests first (scripts/test.sh, or graphmig build in tests/fixtures/guests)"
        );
        return;
    };
    let sandbox = Sandbox::new().expect("sandbox");
    c.bench_function("load a Rust guest, cold compile", |b| {
        b.iter(|| sandbox.load(&fixture, &bytes).expect("load"))
    });
    let cache = tempfile::tempdir().expect("cache dir");
    let cached = Sandbox::new().expect("sandbox").with_cache(cache.path());
    cached.load(&fixture, &bytes).expect("fill the cache");
    c.bench_function("load a Rust guest, from the cache (mmap)", |b| {
        b.iter(|| cached.load(&fixture, &bytes).expect("load"))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = chain_and_status, component_loading
}
criterion_main!(benches);
