//! Progress events of a run; the library reports, the CLI decides how to show them.

use std::time::Duration;

use crate::error::MigrationFailure;
use crate::migration::Migration;

/// Severity of a guest log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Detail for debugging.
    Debug,
    /// Normal progress.
    Info,
    /// Worth a look.
    Warn,
    /// Something went wrong.
    Error,
}

impl LogLevel {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// What applying one migration measured.
#[derive(Debug, Clone)]
pub struct AppliedSummary {
    /// Wall-clock time, transaction included.
    pub elapsed: Duration,
    /// Statements the guest ran.
    pub statements: u32,
    /// Fuel consumed.
    pub fuel_consumed: u64,
}

/// Receives progress events. Every method has a no-op default.
pub trait Reporter: Send + Sync {
    /// Connected to the database; `agent` is what the server says it is.
    fn connected(&self, _target: &str, _agent: &str) {}
    /// These migrations are about to run, in this order.
    fn plan(&self, _pending: &[Migration]) {}
    /// Nothing to do.
    fn up_to_date(&self, _applied: usize) {}
    /// Another runner holds the lock; this one waits.
    fn waiting_for_lock(&self, _owner: &str) {}
    /// History entries applied by other runners were copied into the ledger.
    fn synced(&self, _entries: usize) {}
    /// An attempt that never finished was settled from the graph's history.
    fn resolved_interrupted(&self, _description: &str, _committed: bool) {}
    /// An audit entry was written (baseline, repair).
    fn audit(&self, _line: &str) {}
    /// Something worth knowing that is not an error.
    fn warning(&self, _message: &str) {}
    /// A migration is starting.
    fn migration_started(&self, _migration: &Migration) {}
    /// A migration committed.
    fn migration_applied(&self, _migration: &Migration, _summary: &AppliedSummary) {}
    /// A migration's `down` step committed.
    fn migration_reverted(&self, _migration: &Migration, _summary: &AppliedSummary) {}
    /// A migration failed and was rolled back.
    fn migration_failed(&self, _migration: &Migration, _failure: &MigrationFailure) {}
    /// A chunk of the tracked batch named `batch` committed: `done` of `total`
    /// rows written (first called with 0 when the batch has several chunks).
    /// A guest's batch writer does not say how many rows will come: `total`
    /// is `None` until it finishes, then `Some(done)`.
    fn batch_progress(&self, _migration: &str, _batch: &str, _done: u64, _total: Option<u64>) {}
    /// A guest wrote a log line.
    fn guest_log(&self, _migration: &str, _level: LogLevel, _message: &str) {}
    /// `graphmig build` starts building a migration source folder.
    fn building(&self, _source: &std::path::Path, _language: &str) {}
    /// A migration source was built into an artifact.
    fn built(&self, _source: &std::path::Path, _artifact: &std::path::Path, _bytes: u64) {}
}

/// A reporter that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct SilentReporter;

impl Reporter for SilentReporter {}
