//! The local ledger: one row per attempt to run a migration, in SQLite.

mod sqlite;

pub use sqlite::SqliteLedger;

use crate::migration::{Checksum, Version};

/// Which step of a migration an attempt ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `up`.
    Up,
    /// `down`.
    Down,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
}

/// How an attempt ended (or that it has not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Started and never finished: the runner died, or is still running.
    Running,
    /// Committed.
    Applied,
    /// Rolled back.
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Applied => "applied",
            Outcome::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Outcome {
        match text {
            "applied" => Outcome::Applied,
            "failed" => Outcome::Failed,
            _ => Outcome::Running,
        }
    }
}

/// One recorded attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// Row id, increasing.
    pub id: i64,
    /// Version of the migration.
    pub version: Version,
    /// Description from its file name.
    pub description: String,
    /// Which step ran.
    pub direction: Direction,
    /// Checksum of the artifact that ran.
    pub checksum: Checksum,
    /// When it started (RFC 3339, UTC).
    pub started_at: String,
    /// When it ended, if it did.
    pub finished_at: Option<String>,
    /// How long it took, in milliseconds.
    pub duration_ms: Option<u64>,
    /// Fuel the guest consumed.
    pub fuel_consumed: Option<u64>,
    /// Cypher statements the guest ran.
    pub statements: Option<u32>,
    /// How it ended.
    pub outcome: Outcome,
    /// The error, for failed attempts.
    pub error: Option<String>,
}

/// What an attempt measured and how it ended, written when it finishes.
#[derive(Debug, Clone)]
pub struct Finish {
    /// Applied or failed.
    pub outcome: Outcome,
    /// Wall-clock time.
    pub duration_ms: u64,
    /// Fuel consumed.
    pub fuel_consumed: u64,
    /// Statements run.
    pub statements: u32,
    /// The error text for failures.
    pub error: Option<String>,
}

/// The state of one version according to its attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Its latest successful step was `up`.
    Applied,
    /// Never applied, or reverted.
    Pending,
    /// Not applied and its latest attempt failed.
    Failed,
    /// Its latest attempt never finished.
    Interrupted,
}

impl State {
    /// The lowercase name used in output and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Applied => "applied",
            State::Pending => "pending",
            State::Failed => "failed",
            State::Interrupted => "interrupted",
        }
    }
}

/// Folds one version's attempts (oldest first) into its state and the attempt that
/// applied it, if it is applied.
pub fn fold_state<'a>(
    attempts: impl IntoIterator<Item = &'a Attempt>,
) -> (State, Option<&'a Attempt>) {
    let mut applied: Option<&Attempt> = None;
    let mut state = State::Pending;
    for attempt in attempts {
        match (attempt.direction, attempt.outcome) {
            (Direction::Up, Outcome::Applied) => {
                applied = Some(attempt);
                state = State::Applied;
            }
            (Direction::Down, Outcome::Applied) => {
                applied = None;
                state = State::Pending;
            }
            (_, Outcome::Failed) if applied.is_none() => state = State::Failed,
            (_, Outcome::Running) => state = State::Interrupted,
            (_, Outcome::Failed) => {}
        }
    }
    (state, applied)
}
