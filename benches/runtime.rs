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

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = instantiate, host_calls, fuel
}
criterion_main!(benches);
