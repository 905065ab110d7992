//! graphmig: schema and data migrations for Neo4j-style graph databases, where each
//! migration is a sandboxed WebAssembly component.
//!
//! The flow reads straight down: [`Config`] → [`Chain`] (discover and order the
//! artifacts) → [`SqliteLedger`] (what was applied) → [`Sandbox`] (compile, check the
//! world, limit) → [`GraphDb`] (one Bolt transaction per migration) → journal.
//! [`Runner`] ties them together; a [`Reporter`] receives progress, since the
//! library never prints.

pub mod builder;
pub mod chain;
pub mod config;
pub mod cypher_script;
pub mod doctor;
pub mod error;
pub mod graph;
pub mod interrupt;
pub mod journal;
pub mod ledger;
pub mod migration;
pub mod policy;
pub mod privileges;
pub mod reporter;
pub mod runner;
pub mod scaffold;
pub mod schema;
pub mod wasm;

pub use chain::Chain;
pub use config::{Config, Limits};
pub use error::{Error, FailureCause, Limit, MigrationFailure};
pub use graph::GraphDb;
pub use ledger::{SqliteLedger, State};
pub use migration::{Checksum, Migration, Version};
pub use reporter::{AppliedSummary, Reporter, SilentReporter};
pub use runner::{DownOptions, DryRunMigration, Report, RunOptions, Runner, StatusEntry};
pub use wasm::{Sandbox, SandboxOptions};

/// The stack a runtime worker that runs migrations should have: results are
/// decoded there, recursing as deep as their values nest (64 MiB, reserved
/// rather than committed; the CLI's runtime uses it).
pub const WORKER_STACK_BYTES: usize = 64 * 1024 * 1024;
