//! What a migration did, statement by statement: the journal kept in the ledger.

use std::time::Instant;

use crate::migration::Checksum;

/// Longest statement text kept in the journal; longer ones are cut and marked.
const MAX_JOURNAL_QUERY: usize = 4 * 1024;

/// `text` cut to at most `max` bytes (on a character boundary) and marked with
/// how much went, `… (N more bytes)`. The kept part is a copy, so the guest's
/// whole buffer is freed rather than kept behind a short string.
pub fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)", &text[..end], text.len() - end)
}

/// Longest parameter summary, error code and message kept in the journal.
const MAX_JOURNAL_PARAMS: usize = 4 * 1024;
const MAX_JOURNAL_CODE: usize = 256;
const MAX_JOURNAL_MESSAGE: usize = 4 * 1024;

/// How a statement ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementOutcome {
    /// Ran.
    Ok,
    /// The database refused it.
    Error,
    /// The policy refused it; it never reached the database.
    Denied,
    /// Not sent: an earlier statement had already doomed the transaction.
    Skipped,
}

impl StatementOutcome {
    /// Lowercase name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            StatementOutcome::Ok => "ok",
            StatementOutcome::Error => "error",
            StatementOutcome::Denied => "denied",
            StatementOutcome::Skipped => "skipped",
        }
    }
}

/// One statement of a migration.
#[derive(Debug, Clone)]
pub struct JournalEntry {
    /// Position among the migration's statements, from 1.
    pub seq: u32,
    /// Its text (cut to 4 KiB, marked `… (N more bytes)`).
    pub query: String,
    /// Parameter names and shapes, never their values.
    pub params: String,
    /// Time it took.
    pub duration_us: u64,
    /// Rows it returned.
    pub rows: u64,
    /// What it changed, as the server counted it (`+2 node(s), 4 propert(ies) set`).
    pub counters: String,
    /// How it ended.
    pub outcome: StatementOutcome,
    /// The error code, if any.
    pub code: Option<String>,
    /// The error message, if any.
    pub message: Option<String>,
}

impl JournalEntry {
    /// Starts an entry for statement `seq`.
    pub fn new(seq: u32, query: &str, params: String) -> JournalEntry {
        JournalEntry {
            seq,
            query: cut(query, MAX_JOURNAL_QUERY),
            params: cut(&params, MAX_JOURNAL_PARAMS),
            duration_us: 0,
            rows: 0,
            counters: String::new(),
            outcome: StatementOutcome::Ok,
            code: None,
            message: None,
        }
    }

    /// Completes the entry.
    pub fn finish(
        &mut self,
        started: Instant,
        outcome: StatementOutcome,
        code: Option<&str>,
        message: Option<&str>,
        rows: u64,
    ) -> JournalEntry {
        self.duration_us = started.elapsed().as_micros() as u64;
        self.outcome = outcome;
        self.code = code.map(|c| cut(c, MAX_JOURNAL_CODE));
        self.message = message.map(|m| cut(m, MAX_JOURNAL_MESSAGE));
        self.rows = rows;
        self.clone()
    }

    /// Completes the entry as a statement that failed with `code` and `message`.
    pub fn failed(&mut self, started: Instant, code: &str, message: &str) -> JournalEntry {
        self.finish(
            started,
            StatementOutcome::Error,
            Some(code),
            Some(message),
            0,
        )
    }
}

/// What a finished guest leaves behind for the ledger.
#[derive(Debug, Default)]
pub struct GuestRecord {
    /// Every statement, allowed or denied.
    pub journal: Vec<JournalEntry>,
    /// Every dataset read.
    pub dataset_reads: Vec<DatasetRead>,
    /// Log lines: level and message.
    pub logs: Vec<(String, String)>,
    /// Schema operations, in order, with their undo statements.
    pub schema_steps: Vec<SchemaStep>,
    /// The schema steps that wait for the data to commit, in order.
    pub deferred: Vec<DeferredStep>,
    /// Tracked batches, with what they wrote.
    pub batches: Vec<BatchRecord>,
    /// Refactorings, with how to walk them back or finalize them.
    pub refactor_steps: Vec<RefactorStep>,
    /// Batches of earlier attempts this step deleted (committed, whatever the
    /// step's outcome): their ledger records are marked deleted.
    pub deleted_batches: Vec<String>,
    /// Whether the attempt's intent was recorded in the history database.
    pub intent_recorded: bool,
    /// Whether the step left progress markers (backfill checkpoints) that go
    /// in the transaction recording the migration applied.
    pub progress_markers: bool,
}

/// Where one backfill stands, as its checkpoint says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillCheckpoint {
    /// The migration's key.
    pub migration: String,
    /// The backfill's name.
    pub name: String,
    /// Nodes written.
    pub rows: u64,
    /// Nodes counted when it began.
    pub total: u64,
    /// Chunks committed.
    pub chunks: u32,
    /// Whether it finished.
    pub done: bool,
}

/// A dataset file a migration read.
#[derive(Debug, Clone)]
pub struct DatasetRead {
    /// Its path under the data folder.
    pub path: String,
    /// SHA-256 of what was read.
    pub sha256: Checksum,
    /// Its size.
    pub bytes: u64,
}

/// A schema operation a migration performed outside its data transaction, and
/// how to undo it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStep {
    /// The statement that ran.
    pub statement: String,
    /// The statement that undoes it; `None` when there is nothing to undo (the
    /// element already existed, or was already absent).
    pub undo: Option<String>,
    /// `applied`, `unchanged`, `recorded` (dry run), then possibly `undone` or
    /// `undo failed: ...`.
    pub outcome: String,
}

/// A schema step held back until the migration's data commits (it came after
/// the migration's writes, which a schema operation cannot see while their
/// transaction is open): an index into [`GuestRecord::schema_steps`], whose
/// outcome is `deferred` until it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeferredStep {
    /// Which schema step.
    pub step: usize,
    /// Its statement number in the journal.
    pub index: u32,
    /// `file:line` for a statement of a `.cypher` migration.
    pub location: Option<String>,
}

/// A tracked batch a migration began.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRecord {
    /// Its id, also on every node and relationship it wrote.
    pub id: String,
    /// The name the migration gave it.
    pub name: String,
    /// Nodes it created.
    pub nodes: u64,
    /// Relationships it created.
    pub relationships: u64,
    /// `kept`, `deleted` (the migration failed) or `delete failed: ...`.
    pub outcome: String,
}

/// A refactoring a migration ran in committed chunks, with the statements that
/// walk it back (if the migration fails) or drop its tags (if it succeeds). Each
/// returns `count(*) AS n` and is repeated until it changes less than a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefactorStep {
    /// Restores what the refactoring changed.
    pub undo: String,
    /// Removes the tags once the migration committed.
    pub finalize: String,
    /// `applied`, then `undone`, `finalized` or the error.
    pub outcome: String,
}

/// A key unique to one attempt, shared by its ledger row and history entry.
pub fn new_attempt_key() -> String {
    use std::hash::{BuildHasher, RandomState};
    let a = RandomState::new().hash_one((
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    ));
    let b = RandomState::new().hash_one(a);
    format!("{a:016x}{b:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_text_says_how_much_went_and_keeps_whole_characters() {
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut("abcdef", 4), "abcd… (2 more bytes)");
        assert_eq!(cut("ééé", 3), "é… (4 more bytes)");
        let big = "x".repeat(1 << 20);
        let kept = cut(&big, 8);
        assert!(kept.capacity() < 64, "a copy, not the guest's buffer");
    }
}
