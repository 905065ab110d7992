//! The WebAssembly side: engine, limits, loading components and running their steps.

pub mod bindings;
pub mod cache;
mod host_backfill;
pub mod host_batch;
mod host_context;
mod host_refactor;
mod host_schema;
mod limits;
pub mod values;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::config::{Grants, Limits, MigrationSettings};
use crate::cypher_script::CypherScript;
use crate::error::{Error, FailureCause, Limit};
use crate::graph::GraphTxn;
pub use crate::journal::GuestRecord;
use crate::migration::{ArtifactKind, Migration};
use crate::reporter::Reporter;
use bindings::exports::graphmig::migration::lifecycle::{Metadata, RollbackPolicy};
use bindings::{Migration as MigrationWorld, MigrationPre};
pub use host_context::{GuestState, LimitTrap};
use limits::MemoryLimiter;

/// The export every migration component must have.
pub const LIFECYCLE_EXPORT: &str = "graphmig:migration/lifecycle@0.1.0";

/// How often the epoch advances; deadlines are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Bytes of guest stderr kept for error messages (a panic message lives there).
const STDERR_CAPTURE: usize = 64 * 1024;

/// Imports a migration may have: its context, and the WASI interfaces that the
/// guest languages' standard libraries import and that graphmig serves without
/// granting anything (no environment, no preopened folders, frozen clocks, and
/// sockets that refuse every operation: CPython links them whether or not a
/// migration uses them).
const ALLOWED_IMPORTS: &[&str] = &[
    "graphmig:migration/",
    "wasi:cli/environment@",
    "wasi:cli/exit@",
    "wasi:cli/stdin@",
    "wasi:cli/stdout@",
    "wasi:cli/stderr@",
    "wasi:cli/terminal-",
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:filesystem/",
    "wasi:sockets/",
];

/// Seconds since the Unix epoch that a migration without the clock grant sees:
/// 2020-01-01T00:00:00Z, always.
const FROZEN_WALL_CLOCK_SECS: u64 = 1_577_836_800;

struct FrozenWallClock;

impl wasmtime_wasi::HostWallClock for FrozenWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::from_secs(FROZEN_WALL_CLOCK_SECS)
    }
}

/// What a migration without the clock grant reads from the monotonic clock:
/// one second, always. Not zero, which Go's runtime refuses to start with.
const FROZEN_MONOTONIC_NANOS: u64 = 1_000_000_000;

struct FrozenMonotonicClock;

impl wasmtime_wasi::HostMonotonicClock for FrozenMonotonicClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        FROZEN_MONOTONIC_NANOS
    }
}

/// A fixed pseudo-random stream (xorshift), the same on every run; computed
/// once, as every instance gets a copy.
fn repeatable_random() -> wasmtime_wasi::Deterministic {
    static STREAM: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..8192)
            .flat_map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()
            })
            .collect()
    });
    wasmtime_wasi::Deterministic::new(STREAM.clone())
}

fn wasi_context(grants: Grants, stderr: &MemoryOutputPipe) -> WasiCtx {
    let mut builder = WasiCtx::builder();
    builder.stderr(stderr.clone());
    // No network, whatever the defaults of wasmtime-wasi become: no TCP, no UDP,
    // no name lookup, and no address passes the check.
    builder
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }));
    if !grants.clock {
        builder.wall_clock(FrozenWallClock);
        builder.monotonic_clock(FrozenMonotonicClock);
    }
    if !grants.random {
        builder.secure_random(repeatable_random());
        builder.insecure_random(repeatable_random());
        builder.insecure_random_seed(0x5eed);
    }
    builder.build()
}

/// How many component instances may be alive at once in one sandbox: a run
/// holds one or two (describe, then the step), benches and tests a few more.
const POOLED_COMPONENT_INSTANCES: u32 = 16;

/// The pooling allocator's slots, sized for the largest guests graphmig builds
/// (CPython and StarlingMonkey components hold dozens of core instances, large
/// function tables and several memories).
fn pooling_config(max_memory_bytes: usize) -> wasmtime::PoolingAllocationConfig {
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    pool.total_component_instances(POOLED_COMPONENT_INSTANCES)
        .max_component_instance_size(8 << 20)
        .total_core_instances(POOLED_COMPONENT_INSTANCES * 16)
        .max_core_instances_per_component(64)
        .max_core_instance_size(16 << 20)
        .total_memories(POOLED_COMPONENT_INSTANCES * 4)
        .max_memories_per_component(16)
        .max_memory_size(max_memory_bytes)
        .total_tables(POOLED_COMPONENT_INSTANCES * 8)
        .max_tables_per_component(32)
        .max_tables_per_module(4)
        .table_elements(100_000)
        .total_stacks(POOLED_COMPONENT_INSTANCES);
    pool
}

/// The WebAssembly engine and linker, shared by every migration of a run.
pub struct Sandbox {
    engine: Engine,
    linker: Linker<GuestState>,
    ticker_stop: Arc<AtomicBool>,
    cache: Option<cache::ComponentCache>,
    metered: bool,
}

/// How a [`Sandbox`]'s engine is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SandboxOptions {
    /// Pool slots for linear memories of up to this many bytes; `None`
    /// allocates every instance on demand.
    pub pool_memory_bytes: Option<usize>,
    /// Fuel metering.
    pub fuel: bool,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").finish_non_exhaustive()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// A migration ready to run: a compiled component checked to be of the
/// migration world, or a parsed Cypher file.
pub struct LoadedComponent {
    code: Code,
    path: PathBuf,
}

enum Code {
    /// Pre-instantiated: imports resolved and type-checked once, so that each
    /// instantiation only allocates (from the pool) and runs initializers.
    Component(MigrationPre<GuestState>),
    Cypher {
        up: CypherScript,
        down: Option<CypherScript>,
    },
}

/// Metadata a component reports about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    /// Its own description (may be empty).
    pub description: String,
    /// Whether `down` can undo `up`.
    pub reversible: bool,
    /// Whether it has a real `down` step (otherwise its batches are deleted).
    pub has_down: bool,
}

/// What a running step can reach besides its transaction.
#[derive(Clone, Default)]
pub struct StepEnv {
    /// The database, for schema operations in transactions of their own.
    pub db: Option<Arc<crate::graph::GraphDb>>,
    /// The data folder.
    pub datasets: Option<Arc<cap_std::fs::Dir>>,
    /// Batch ids start with this (the attempt's key), so that a crashed attempt's
    /// batches can be found and deleted.
    pub batch_prefix: Option<String>,
    /// Batches of earlier attempts this step may delete without a grant: those
    /// of the migration a `down` step reverts.
    pub revertible_batches: Vec<String>,
    /// The attempt, recorded in the history database before the step's first
    /// work that commits on its own (so any runner can finish or undo it).
    pub intent: Option<crate::graph::intent::IntentDraft>,
    /// The ledger file and the target's key in it, for backfill checkpoints.
    pub ledger: Option<(std::path::PathBuf, String)>,
}

/// Whether statements take effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Everything runs; the caller commits or rolls back.
    Apply,
    /// Data statements run in a transaction the caller always rolls back; schema
    /// statements (which some servers do not roll back) are journaled, not sent.
    DryRun,
}

/// Which exported step to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `up`.
    Up,
    /// `down`.
    Down,
}

/// What one step did, whatever its outcome.
#[derive(Debug)]
pub struct StepRun {
    /// `Ok` when the guest succeeded and no statement failed.
    pub result: Result<(), FailureCause>,
    /// The transaction, still open, for the caller to commit or roll back.
    pub txn: Option<GraphTxn>,
    /// Fuel consumed.
    pub fuel_consumed: u64,
    /// Statements the guest ran.
    pub statements: u32,
    /// The statement journal, dataset reads and log lines.
    pub record: GuestRecord,
    /// Wall-clock time of the call.
    pub elapsed: Duration,
}

impl Sandbox {
    /// Builds the engine (Cranelift, fuel, epochs, pooled instances whose
    /// memories may grow to the default limit) and the linker (WASI plus the
    /// graphmig context).
    pub fn new() -> Result<Sandbox, Error> {
        Sandbox::with_memory_ceiling(Limits::default().memory_bytes)
    }

    /// As [`Sandbox::new`], with pool slots for memories of up to
    /// `max_memory_bytes` (the largest memory limit of any migration). Falls back
    /// to allocating each instance on demand where the pool's address space
    /// cannot be reserved (a `ulimit -v`, say).
    pub fn with_memory_ceiling(max_memory_bytes: usize) -> Result<Sandbox, Error> {
        let pooled = SandboxOptions {
            pool_memory_bytes: Some(max_memory_bytes),
            fuel: true,
        };
        match Self::with_options(pooled) {
            Ok(sandbox) => Ok(sandbox),
            Err(error) => {
                tracing::warn!(%error, "pooling allocator unavailable; allocating instances on demand");
                Self::with_options(SandboxOptions {
                    pool_memory_bytes: None,
                    ..pooled
                })
            }
        }
    }

    /// A sandbox built exactly as `options` say, without fallback. Runs always
    /// meter fuel; turning it off is for measuring what metering costs.
    pub fn with_options(options: SandboxOptions) -> Result<Sandbox, Error> {
        let mut sandbox = Self::from_engine(Self::engine(options)?)?;
        sandbox.metered = options.fuel;
        Ok(sandbox)
    }

    fn engine(options: SandboxOptions) -> Result<Engine, Error> {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        config.consume_fuel(options.fuel);
        config.epoch_interruption(true);
        // Guests recurse; a bounded native stack turns runaway recursion into a
        // trap instead of a crash of the host.
        config.max_wasm_stack(1024 * 1024);
        if let Some(bytes) = options.pool_memory_bytes {
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(
                pooling_config(bytes),
            ));
        }
        Engine::new(&config).map_err(|e| Error::Engine(e.to_string()))
    }

    fn from_engine(engine: Engine) -> Result<Sandbox, Error> {
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| Error::Engine(e.to_string()))?;
        MigrationWorld::add_to_linker::<GuestState, HasSelf<GuestState>>(&mut linker, |s| s)
            .map_err(|e| Error::Engine(e.to_string()))?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let stop = ticker_stop.clone();
        std::thread::Builder::new()
            .name("graphmig-epoch".into())
            .spawn(move || {
                let mut interrupted = false;
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    let Some(engine) = weak.upgrade() else {
                        break;
                    };
                    engine.increment_epoch();
                    // A stop request ends guest code at once: every store's
                    // deadline (in ticks) is passed in one go.
                    if !interrupted && crate::interrupt::requested() {
                        interrupted = true;
                        for _ in 0..(u32::MAX >> 8) {
                            engine.increment_epoch();
                        }
                    }
                }
            })
            .map_err(|e| Error::Engine(e.to_string()))?;
        Ok(Sandbox {
            engine,
            linker,
            ticker_stop,
            cache: None,
            metered: true,
        })
    }

    /// Keeps compiled components in `dir` and loads them from there.
    pub fn with_cache(mut self, dir: &Path) -> Sandbox {
        self.cache = Some(cache::ComponentCache::new(dir, &self.engine));
        self
    }

    /// Compiles `bytes` (read from `path`), or loads them compiled from the cache,
    /// and checks that it is a migration component, so that a bad file is refused
    /// before anything runs.
    pub fn load(&self, path: &Path, bytes: &[u8]) -> Result<LoadedComponent, Error> {
        let invalid = |e: wasmtime::Error| Error::InvalidComponent {
            path: path.to_path_buf(),
            message: root_message(&e),
        };
        let component = match &self.cache {
            Some(cache) => {
                let checksum = crate::migration::Checksum::of(bytes);
                cache
                    .load(&self.engine, &checksum, bytes)
                    .map_err(invalid)?
                    .0
            }
            None => Component::new(&self.engine, bytes).map_err(invalid)?,
        };
        let ty = component.component_type();
        let forbidden: Vec<&str> = ty
            .imports(&self.engine)
            .map(|(name, _)| name)
            .filter(|name| {
                !ALLOWED_IMPORTS
                    .iter()
                    .any(|prefix| name.starts_with(prefix))
            })
            .collect();
        if !forbidden.is_empty() {
            return Err(Error::ForbiddenImports {
                path: path.to_path_buf(),
                imports: forbidden.join(", "),
            });
        }
        if ty.get_export(&self.engine, LIFECYCLE_EXPORT).is_none() {
            let found: Vec<&str> = ty.exports(&self.engine).map(|(name, _)| name).collect();
            return Err(Error::WrongWorld {
                path: path.to_path_buf(),
                expected: LIFECYCLE_EXPORT.into(),
                found: if found.is_empty() {
                    "nothing".into()
                } else {
                    found.join(", ")
                },
            });
        }
        let pre = self
            .linker
            .instantiate_pre(&component)
            .and_then(MigrationPre::new)
            .map_err(|e| Error::Instantiate {
                path: path.to_path_buf(),
                message: root_message(&e),
            })?;
        Ok(LoadedComponent {
            code: Code::Component(pre),
            path: path.to_path_buf(),
        })
    }

    /// Loads `migration` from disk, whatever its kind, after checking that its
    /// files still have the chain's checksum.
    pub fn load_migration(&self, migration: &Migration) -> Result<LoadedComponent, Error> {
        let bytes = crate::chain::reread(migration)?;
        match migration.kind() {
            ArtifactKind::Component => self.load(migration.path(), &bytes),
            ArtifactKind::Cypher => {
                let parse = |path: &Path, bytes: &[u8]| {
                    let text =
                        std::str::from_utf8(bytes).map_err(|e| Error::InvalidCypherFile {
                            path: path.to_path_buf(),
                            line: 1,
                            message: format!("not UTF-8 text: {e}"),
                        })?;
                    CypherScript::parse(path, text)
                };
                let up = parse(migration.path(), &bytes)?;
                let down = match migration.undo_path() {
                    Some(path) => {
                        let bytes = std::fs::read(path).map_err(|source| Error::ReadArtifact {
                            path: path.to_path_buf(),
                            source,
                        })?;
                        Some(parse(path, &bytes)?)
                    }
                    None => None,
                };
                Ok(LoadedComponent {
                    code: Code::Cypher { up, down },
                    path: migration.path().to_path_buf(),
                })
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn store(
        &self,
        settings: &MigrationSettings,
        mode: Mode,
        txn: Option<GraphTxn>,
        env: StepEnv,
        reporter: Arc<dyn Reporter>,
        label: String,
    ) -> Result<(Store<GuestState>, MemoryOutputPipe), Error> {
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE);
        // No environment, arguments, preopened folders or network: a migration
        // reaches the world only through the context interface.
        let wasi = wasi_context(settings.grants, &stderr);
        let limits = &settings.limits;
        let state = GuestState::new(
            wasi,
            ResourceTable::new(),
            MemoryLimiter::new(limits.memory_bytes),
            settings.clone(),
            mode,
            txn,
            env,
            reporter,
            label,
        );
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        if self.metered {
            store
                .set_fuel(limits.fuel)
                .map_err(|e| Error::Engine(e.to_string()))?;
        }
        // What one host call may hand over, counted by wasmtime as it copies
        // the call's arguments out of the guest (in the bytes the host holds
        // them in), so nothing larger is ever built.
        store.set_hostcall_fuel(limits.value_bytes.min(usize::MAX as u64) as usize);
        let ticks = (limits.deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        Ok((store, stderr))
    }

    /// Instantiates the component and reads its metadata.
    pub async fn describe(
        &self,
        loaded: &LoadedComponent,
        settings: &MigrationSettings,
        reporter: Arc<dyn Reporter>,
    ) -> Result<Described, Error> {
        let component = match &loaded.code {
            Code::Component(component) => component,
            Code::Cypher { down, .. } => {
                return Ok(Described {
                    description: String::new(),
                    reversible: down.is_some(),
                    has_down: down.is_some(),
                });
            }
        };
        let label = loaded.path.display().to_string();
        let limits = &settings.limits;
        let (mut store, stderr) = self.store(
            settings,
            Mode::Apply,
            None,
            StepEnv::default(),
            reporter,
            label,
        )?;
        let instance = self
            .instantiate(&mut store, component, &loaded.path)
            .await
            .map_err(|e| with_stderr(e, &stderr))?;
        let metadata: Metadata = instance
            .graphmig_migration_lifecycle()
            .call_describe(&mut store)
            .await
            .map_err(|e| Error::Instantiate {
                path: loaded.path.clone(),
                message: format!(
                    "describe() failed: {}",
                    classify_trap(&e, &store, limits, &stderr)
                ),
            })?;
        Ok(Described {
            description: crate::journal::cut(&metadata.description, 4 * 1024),
            reversible: matches!(metadata.rollback, RollbackPolicy::Reversible),
            has_down: metadata.has_down,
        })
    }

    async fn instantiate(
        &self,
        store: &mut Store<GuestState>,
        pre: &MigrationPre<GuestState>,
        path: &Path,
    ) -> Result<MigrationWorld, Error> {
        pre.instantiate_async(&mut *store)
            .await
            .map_err(|e| Error::Instantiate {
                path: path.to_path_buf(),
                message: root_message(&e),
            })
    }

    /// Runs `step` of the component with `txn` as its transaction, under the
    /// limits, policy and grants of `settings`.
    ///
    /// Never commits: the caller decides from `StepRun::result`.
    #[allow(clippy::too_many_arguments)]
    pub async fn run_step(
        &self,
        loaded: &LoadedComponent,
        step: Step,
        mode: Mode,
        txn: GraphTxn,
        settings: &MigrationSettings,
        env: StepEnv,
        reporter: Arc<dyn Reporter>,
        label: String,
    ) -> Result<StepRun, Error> {
        let started = Instant::now();
        let limits = &settings.limits;
        let (mut store, stderr) = self.store(settings, mode, Some(txn), env, reporter, label)?;
        let component = match &loaded.code {
            Code::Component(component) => component,
            Code::Cypher { up, down } => {
                let script = match step {
                    Step::Up => up,
                    Step::Down => down.as_ref().ok_or_else(|| {
                        Error::Engine(format!("{} has no undo script", loaded.path.display()))
                    })?,
                };
                return Ok(Self::run_script(store, script, limits, started).await);
            }
        };
        let instance = match self.instantiate(&mut store, component, &loaded.path).await {
            Ok(instance) => instance,
            Err(e) => {
                // The transaction is rolled back by the caller via the returned txn;
                // here nothing has run yet, so hand the error back directly.
                if let Some(txn) = store.data_mut().take_txn() {
                    let _ = txn.rollback().await;
                }
                return Err(with_stderr(e, &stderr));
            }
        };
        let lifecycle = instance.graphmig_migration_lifecycle();
        // The epoch deadline stops guest code; this timeout also covers time spent
        // waiting on the database inside host calls.
        let call = {
            let call = async {
                match step {
                    Step::Up => lifecycle.call_up(&mut store).await,
                    Step::Down => lifecycle.call_down(&mut store).await,
                }
            };
            // A stop request ends a wait on the database as well.
            let call = async {
                tokio::select! {
                    result = call => Some(result),
                    () = crate::interrupt::wait() => None,
                }
            };
            tokio::time::timeout(limits.deadline + EPOCH_TICK * 10, call).await
        };
        let call = match call {
            Ok(Some(call)) => call,
            Ok(None) => Err(wasmtime::Error::msg("stopped on request")),
            Err(_elapsed) => Err(wasmtime::Error::from(LimitTrap {
                limit: Limit::Deadline,
                detail: format!(
                    "still running after {} s (waiting on the database)",
                    limits.deadline.as_secs_f64()
                ),
            })),
        };
        // A batch writer's last chunk may still be in flight, however the call
        // ended: its rows must be counted in their batch before anything is
        // kept or deleted.
        store.data_mut().settle_batches().await;
        let fuel_consumed = match self.metered {
            true => limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0)),
            false => 0,
        };
        let pending = store.data().pending_trap().cloned();
        let result = match call {
            // A budget spent by work the guest did not wait for fails the step
            // even though the guest returned.
            Ok(_) if let Some(trap) = pending => Err(FailureCause::LimitExceeded {
                limit: trap.limit,
                detail: trap.detail,
            }),
            Ok(guest_result) => {
                let doomed = store.data().doomed().cloned();
                match (guest_result, doomed) {
                    (Ok(()), None) => Ok(()),
                    (Ok(()), Some(statement)) => Err(FailureCause::Statement(statement)),
                    // Printed, stored and shown by every `status`: bounded.
                    (Err(message), statement) => Err(FailureCause::Guest {
                        message: crate::journal::cut(&message, 64 * 1024),
                        statement,
                    }),
                }
            }
            Err(trap) => Err(classify_failure(&trap, &store, limits, &stderr)),
        };
        // Data that breaks a constraint waiting for the commit fails the step
        // now, while its transaction can still roll back.
        let result = match result {
            Ok(()) => store.data_mut().check_deferred().await,
            failed => failed,
        };
        let result = result.map_err(|cause| stopped_at(cause, started));
        let state = store.data_mut();
        Ok(StepRun {
            result,
            txn: state.take_txn(),
            fuel_consumed,
            statements: state.statements(),
            record: state.take_record(),
            elapsed: started.elapsed(),
        })
    }
}

impl Sandbox {
    /// Runs the statements of a Cypher migration through the same context a
    /// component's `run-cypher` goes through: policy, limits, journal.
    async fn run_script(
        mut store: Store<GuestState>,
        script: &CypherScript,
        limits: &Limits,
        started: Instant,
    ) -> StepRun {
        let state = store.data_mut();
        // Each statement keeps the deadline itself (and hands its transaction
        // back); this timeout is the net under it.
        let run =
            tokio::time::timeout(limits.deadline + EPOCH_TICK * 10, state.run_script(script)).await;
        let pending = state.pending_trap().cloned();
        let result = match run {
            Ok(Ok(_)) if let Some(trap) = pending => Err(FailureCause::LimitExceeded {
                limit: trap.limit,
                detail: trap.detail,
            }),
            Ok(Ok(outcome)) => outcome,
            Ok(Err(error)) => Err(match error.downcast_ref::<LimitTrap>() {
                Some(trap) => FailureCause::LimitExceeded {
                    limit: trap.limit,
                    detail: trap.detail.clone(),
                },
                None => FailureCause::Trap {
                    message: root_message(&error),
                },
            }),
            Err(_elapsed) => Err(FailureCause::LimitExceeded {
                limit: Limit::Deadline,
                detail: format!("still running after {} s", limits.deadline.as_secs_f64()),
            }),
        };
        let result = match result {
            Ok(()) => state.check_deferred().await,
            failed => failed,
        };
        StepRun {
            result: result.map_err(|cause| stopped_at(cause, started)),
            txn: state.take_txn(),
            fuel_consumed: 0,
            statements: state.statements(),
            record: state.take_record(),
            elapsed: started.elapsed(),
        }
    }
}

/// A deadline failure says when the step in fact stopped, so an operator (and
/// the deadline tests) can see how closely the deadline held.
fn stopped_at(cause: FailureCause, started: Instant) -> FailureCause {
    match cause {
        FailureCause::LimitExceeded {
            limit: Limit::Deadline,
            detail,
        } => FailureCause::LimitExceeded {
            limit: Limit::Deadline,
            detail: format!(
                "{detail}; stopped {:.2} s after the step began",
                started.elapsed().as_secs_f64()
            ),
        },
        other => other,
    }
}

impl LoadedComponent {
    /// The artifact it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The innermost message of a wasmtime error (its `Display` is only the outermost).
fn root_message(error: &wasmtime::Error) -> String {
    let mut parts: Vec<String> = error.chain().map(|c| c.to_string()).collect();
    parts.dedup();
    parts.join(": ")
}

/// Adds what the guest wrote to stderr (a language runtime's reason for
/// aborting while it started) to an instantiation error.
fn with_stderr(error: Error, stderr: &MemoryOutputPipe) -> Error {
    let output = stderr_tail(stderr);
    match error {
        Error::Instantiate { path, message } if !output.is_empty() => Error::Instantiate {
            path,
            message: format!("{message}; the guest wrote: {output}"),
        },
        other => other,
    }
}

fn stderr_tail(stderr: &MemoryOutputPipe) -> String {
    let bytes = stderr.contents();
    let text = String::from_utf8_lossy(&bytes);
    // Rust's panic hint about RUST_BACKTRACE means nothing inside the sandbox.
    let text: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("note: run with `RUST_BACKTRACE"))
        .collect();
    let text = text.join("\n");
    let text = text.trim();
    let start = text.char_indices().rev().nth(2000).map_or(0, |(at, _)| at);
    text[start..].to_string()
}

fn classify_failure(
    error: &wasmtime::Error,
    store: &Store<GuestState>,
    limits: &Limits,
    stderr: &MemoryOutputPipe,
) -> FailureCause {
    if crate::interrupt::requested() {
        return FailureCause::Interrupted;
    }
    if let Some(trap) = error.downcast_ref::<LimitTrap>() {
        return FailureCause::LimitExceeded {
            limit: trap.limit,
            detail: trap.detail.clone(),
        };
    }
    if let Some(denied) = store.data().limiter.denied() {
        return FailureCause::LimitExceeded {
            limit: Limit::Memory,
            detail: format!(
                "the guest asked for {} MiB of linear memory; the limit is {} MiB",
                denied.div_ceil(1024 * 1024),
                limits.memory_bytes / (1024 * 1024)
            ),
        };
    }
    // wasmtime's own message: its type is private.
    if error
        .chain()
        .any(|cause| cause.to_string().contains("fuel allocated for hostcalls"))
    {
        return FailureCause::LimitExceeded {
            limit: Limit::ValueBytes,
            detail: format!(
                "one host call handed over more than {} bytes (as the host holds them)",
                limits.value_bytes
            ),
        };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => FailureCause::LimitExceeded {
            limit: Limit::Fuel,
            detail: format!("used all {} units of fuel", limits.fuel),
        },
        Some(Trap::Interrupt) => FailureCause::LimitExceeded {
            limit: Limit::Deadline,
            detail: format!("still running after {} s", limits.deadline.as_secs_f64()),
        },
        _ => FailureCause::Trap {
            message: classify_trap(error, store, limits, stderr),
        },
    }
}

fn classify_trap(
    error: &wasmtime::Error,
    _store: &Store<GuestState>,
    _limits: &Limits,
    stderr: &MemoryOutputPipe,
) -> String {
    let trap = match error.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => root_message(error),
    };
    let output = stderr_tail(stderr);
    if output.is_empty() {
        trap
    } else {
        format!("{trap}; the guest wrote: {output}")
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
