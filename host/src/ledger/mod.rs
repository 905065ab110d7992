//! The local ledger: one row per event (an attempt to run a migration, or an audit
//! entry such as a baseline, repair, sync or unlock), in SQLite.

mod sqlite;

pub use sqlite::{JournalRow, KeptBatch, SqliteLedger, now_rfc3339};

use std::collections::BTreeMap;

use crate::migration::{Checksum, MigrationId};

/// What an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Ran `up`.
    Up,
    /// Ran `down`.
    Down,
    /// Marked as applied without running (`graphmig baseline`).
    Baseline,
    /// Accepted a changed checksum or cleared a failed attempt (`graphmig repair`).
    Repair,
    /// Copied from the graph's history (`graphmig sync`).
    Sync,
    /// Removed a lock (`graphmig unlock`).
    Unlock,
}

impl Action {
    /// Lowercase name, as stored in the ledger and the graph.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Up => "up",
            Action::Down => "down",
            Action::Baseline => "baseline",
            Action::Repair => "repair",
            Action::Sync => "sync",
            Action::Unlock => "unlock",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Action> {
        Some(match text {
            "up" => Action::Up,
            "down" => Action::Down,
            "baseline" => Action::Baseline,
            "repair" => Action::Repair,
            "sync" => Action::Sync,
            "unlock" => Action::Unlock,
            _ => return None,
        })
    }
}

/// How an event ended (or that it has not).
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

/// A link of the hash chain, as recorded in the graph's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainLink {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// The chain hash of this entry.
    pub hash: String,
}

/// One recorded event.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// Row id, increasing.
    pub id: i64,
    /// What it did.
    pub action: Action,
    /// The migration (none for an unlock).
    pub migration: Option<MigrationId>,
    /// Description from its file name.
    pub description: String,
    /// Checksum of the artifact concerned.
    pub checksum: Checksum,
    /// Its link in the hash chain, for applied entries.
    pub chain: Option<ChainLink>,
    /// A unique key, also written to the graph with the migration's data.
    pub attempt_key: String,
    /// Who ran it (`user@host`).
    pub actor: String,
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
    /// The error of a failed attempt, or the note of an audit entry.
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
    /// The chain link the graph gave the committed entry.
    pub chain: Option<ChainLink>,
}

/// The state of one migration according to its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Applied (by `up`, baseline or sync) and not reverted.
    Applied,
    /// Never applied, or reverted.
    Pending,
    /// Not applied and its latest attempt failed.
    Failed,
    /// Its latest attempt never finished.
    Interrupted,
    /// An attempt failed or was cut off, and undoing what it committed on its
    /// own is not finished (its intent is still in the history database).
    CompensationPending,
}

impl State {
    /// The lowercase name used in output and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Applied => "applied",
            State::Pending => "pending",
            State::Failed => "failed",
            State::Interrupted => "interrupted",
            State::CompensationPending => "compensation pending",
        }
    }
}

/// One migration's state, folded from its events.
#[derive(Debug, Clone)]
pub struct Folded<'a> {
    /// The state.
    pub state: State,
    /// The event that applied it, when applied.
    pub applied: Option<&'a Attempt>,
    /// The checksum it is applied with (a repair may have changed it).
    pub checksum: Option<Checksum>,
    /// Its latest event.
    pub last: Option<&'a Attempt>,
}

/// Folds one migration's events (oldest first) into its state.
pub fn fold_state<'a>(attempts: impl IntoIterator<Item = &'a Attempt>) -> Folded<'a> {
    let mut folded = Folded {
        state: State::Pending,
        applied: None,
        checksum: None,
        last: None,
    };
    for attempt in attempts {
        folded.last = Some(attempt);
        match (attempt.action, attempt.outcome) {
            (Action::Up | Action::Baseline | Action::Sync, Outcome::Applied) => {
                folded.state = State::Applied;
                folded.applied = Some(attempt);
                folded.checksum = Some(attempt.checksum.clone());
            }
            (Action::Down, Outcome::Applied) => {
                folded.state = State::Pending;
                folded.applied = None;
                folded.checksum = None;
            }
            (Action::Repair, Outcome::Applied) => {
                if folded.applied.is_some() {
                    folded.state = State::Applied;
                    folded.checksum = Some(attempt.checksum.clone());
                } else {
                    folded.state = State::Pending;
                }
            }
            (_, Outcome::Running) => folded.state = State::Interrupted,
            (_, Outcome::Failed) => {
                folded.state = if folded.applied.is_some() {
                    State::Applied
                } else {
                    State::Failed
                };
            }
            (Action::Unlock, _) => {}
        }
    }
    folded
}

/// The chain hash of an entry: SHA-256 over the previous hash, the action, the
/// migration key and the checksum.
pub fn chain_hash(previous: &str, action: Action, key: &str, checksum: &Checksum) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in [previous, action.as_str(), key, checksum.as_str()] {
        hasher.update(part.as_bytes());
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())
}

/// The format of history entries this version writes: their chain hash covers
/// every stored field ([`entry_hash`]). Format 1 entries (earlier versions) hash
/// the action, key and checksum only ([`chain_hash`]).
pub const HISTORY_FORMAT: i64 = 2;

/// The stored fields of a history entry, as its format-2 hash covers them.
#[derive(Debug, Clone, Copy)]
pub struct EntryFields<'a> {
    /// Position in the chain.
    pub seq: i64,
    /// The hash of the entry before it.
    pub previous: &'a str,
    /// What happened.
    pub action: Action,
    /// Migration key (also stored as `version`).
    pub key: &'a str,
    /// Description.
    pub description: &'a str,
    /// Checksum of the artifact.
    pub checksum: &'a Checksum,
    /// Attempt key.
    pub attempt: &'a str,
    /// When.
    pub applied_at: &'a str,
    /// Who.
    pub applied_by: &'a str,
}

/// The format-2 chain hash: SHA-256 over every stored field of the entry, each
/// length-prefixed so that no two entries share an encoding. A rewritten
/// description, time or author breaks the chain as a rewritten checksum does.
pub fn entry_hash(fields: &EntryFields<'_>) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let seq = fields.seq.to_string();
    for part in [
        "graphmig-history-2",
        seq.as_str(),
        fields.previous,
        fields.action.as_str(),
        fields.key,
        fields.description,
        fields.checksum.as_str(),
        fields.attempt,
        fields.applied_at,
        fields.applied_by,
    ] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// The hash the first entry of a chain links to.
pub const CHAIN_ORIGIN: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Attempts by migration, each migration's in ledger order.
pub fn group_by_migration(attempts: &[Attempt]) -> BTreeMap<MigrationId, Vec<&Attempt>> {
    let mut grouped: BTreeMap<MigrationId, Vec<&Attempt>> = BTreeMap::new();
    for attempt in attempts {
        if let Some(id) = &attempt.migration {
            grouped.entry(id.clone()).or_default().push(attempt);
        }
    }
    grouped
}

/// The folded state of migration `id` among `grouped` attempts.
pub fn folded_for<'a>(
    grouped: &'a BTreeMap<MigrationId, Vec<&'a Attempt>>,
    id: &MigrationId,
) -> Folded<'a> {
    fold_state(grouped.get(id).into_iter().flatten().copied())
}
