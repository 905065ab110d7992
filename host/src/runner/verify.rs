//! `verify`: the chain on disk against the ledger and the graph's history, and the
//! pending migrations a run would apply.

use super::{RunOptions, Runner, chain_action};
use crate::chain::Chain;
use crate::error::Error;
use crate::graph::GraphDb;
use crate::graph::history::HistoryEntry;
use crate::ledger::{
    Attempt, CHAIN_ORIGIN, HISTORY_FORMAT, SqliteLedger, State, chain_hash, fold_state, folded_for,
    group_by_migration,
};
use crate::migration::{Checksum, Migration, MigrationId};

impl Runner {
    /// Checks files, the ledger's hash chain and its agreement with the graph.
    /// Returns every problem found, each with its way out.
    pub async fn verify(&self) -> Result<Vec<String>, Error> {
        let chain = Chain::discover(&self.config.migrations_dir)?;
        let ledger = SqliteLedger::open(&self.config.ledger_path)?;
        let db = std::sync::Arc::new(GraphDb::connect(&self.config.database).await?);
        if let Err(e) = self.finish_pending_compensation(&db).await {
            self.reporter.warning(&e.to_string());
        }
        let history = match db.read_history().await {
            Ok(history) => history,
            // Nodes that are not graphmig's entries are problems to report, not a
            // failure of the command.
            Err(Error::VerifyFailed { problems }) => return Ok(problems),
            Err(other) => return Err(other),
        };
        let attempts = ledger.attempts(&self.target())?;
        let mut problems = self.problems(&chain, &attempts, &history);
        problems.extend(self.foreign_batch_tags(&db, &attempts, &history).await?);
        Ok(problems)
    }

    pub(super) fn problems(
        &self,
        chain: &Chain,
        attempts: &[Attempt],
        history: &[HistoryEntry],
    ) -> Vec<String> {
        let mut problems = Vec::new();
        let grouped = group_by_migration(attempts);
        for (id, events) in &grouped {
            let folded = fold_state(events.iter().copied());
            if folded.state != State::Applied {
                continue;
            }
            let recorded = folded
                .checksum
                .clone()
                .unwrap_or_else(|| Checksum::from_hex(""));
            match chain.find(id) {
                None => problems.push(format!(
                    "{id} is applied but its artifact is missing from {}: restore it",
                    self.config.migrations_dir.display()
                )),
                // A repeatable migration with a new checksum is simply pending again.
                Some(m) if m.is_repeatable() => {}
                Some(m) if m.checksum() != &recorded => problems.push(format!(
                    "{} changed since it was applied: applied with checksum {recorded}, the file now has {}. Restore the applied file, or accept the change with `graphmig repair`",
                    m.path().display(),
                    m.checksum()
                )),
                Some(_) => {}
            }
        }

        // The ledger's own chain: contiguous and each hash recomputable.
        let mut links: Vec<&Attempt> = attempts.iter().filter(|a| a.chain.is_some()).collect();
        links.sort_by_key(|a| a.chain.as_ref().map_or(0, |c| c.seq));
        let mut previous = CHAIN_ORIGIN.to_string();
        let mut expected_seq = 1;
        for attempt in &links {
            let Some(link) = &attempt.chain else { continue };
            if link.seq != expected_seq {
                if link.seq > expected_seq {
                    // Entries missing from the ledger are reported below, against the graph.
                    if let Some(entry) = history.iter().find(|h| h.chain.seq == link.seq - 1) {
                        previous = entry.chain.hash.clone();
                    }
                } else {
                    problems.push(format!(
                        "ledger row {} repeats chain position {}: the ledger was edited",
                        attempt.id, link.seq
                    ));
                }
            }
            let key = attempt
                .migration
                .as_ref()
                .map(MigrationId::key)
                .unwrap_or_default();
            // A format-2 entry's hash covers fields the ledger does not keep: the
            // row is checked against the graph's entry instead, field by field.
            if let Some(entry) = history
                .iter()
                .find(|h| h.chain.seq == link.seq && h.format >= HISTORY_FORMAT)
            {
                let differs = [
                    (chain_action(attempt.action) != entry.action, "action"),
                    (key != entry.key, "migration"),
                    (attempt.checksum != entry.checksum, "checksum"),
                    (link.hash != entry.chain.hash, "hash"),
                ];
                if let Some((_, field)) = differs.iter().find(|(d, _)| *d) {
                    problems.push(format!(
                        "ledger row {} ({key}) breaks the hash chain at position {}: its {field} differs from the graph's entry; the ledger was edited. Rebuild it from the graph: move it away and run `graphmig sync`",
                        attempt.id, link.seq
                    ));
                }
                previous = link.hash.clone();
                expected_seq = link.seq + 1;
                continue;
            }
            let hash = chain_hash(
                &previous,
                chain_action(attempt.action),
                &key,
                &attempt.checksum,
            );
            if hash != link.hash {
                problems.push(format!(
                    "ledger row {} ({key}) breaks the hash chain at position {}: recorded {}, computed {hash}; the ledger was edited. Rebuild it from the graph: move it away and run `graphmig sync`",
                    attempt.id, link.seq, link.hash
                ));
            }
            previous = link.hash.clone();
            expected_seq = link.seq + 1;
        }

        // The graph's chain, and the two against each other.
        let mut previous = CHAIN_ORIGIN.to_string();
        let mut newest_format = 1;
        for entry in history {
            let hash = entry.expected_hash();
            if hash != entry.chain.hash || entry.previous != previous {
                problems.push(format!(
                    "history node {} ({}) in the graph breaks the hash chain: recorded {}, computed {hash}; the graph's history was edited or forged (`graphmig repair` sets aside entries no ledger row has)",
                    entry.chain.seq, entry.key, entry.chain.hash
                ));
            }
            if entry.format < newest_format {
                problems.push(format!(
                    "history node {} ({}) has format {} after an entry of format {newest_format}: formats never go back, so it was rewritten to escape the hash over all its fields",
                    entry.chain.seq, entry.key, entry.format
                ));
            }
            newest_format = newest_format.max(entry.format);
            previous = entry.chain.hash.clone();
            match links.iter().find(|a| a.chain.as_ref().is_some_and(|c| c.seq == entry.chain.seq)) {
                None => problems.push(format!(
                    "the ledger lags the graph: entry {} ({} {} by {} at {}) is not in the ledger; run `graphmig sync`",
                    entry.chain.seq,
                    entry.action.as_str(),
                    entry.key,
                    entry.applied_by,
                    entry.applied_at
                )),
                Some(row) if row.chain.as_ref().is_some_and(|c| c.hash != entry.chain.hash) => {
                    problems.push(format!(
                        "entry {} differs: the ledger has hash {}, the graph {}",
                        entry.chain.seq,
                        row.chain.as_ref().map_or("", |c| c.hash.as_str()),
                        entry.chain.hash
                    ))
                }
                Some(_) => {}
            }
        }
        for attempt in &links {
            let Some(link) = &attempt.chain else { continue };
            if !history.iter().any(|h| h.chain.seq == link.seq) {
                problems.push(format!(
                    "ledger row {} records chain entry {} ({}), which the graph's history lacks: the history in the graph was deleted or this ledger belongs to another database",
                    attempt.id,
                    link.seq,
                    attempt.description
                ));
            }
        }
        problems
    }

    /// What is pending, checked against what is applied.
    pub(super) fn pending(
        &self,
        chain: &Chain,
        attempts: &[Attempt],
        options: &RunOptions,
    ) -> Result<Vec<Migration>, Error> {
        let grouped = group_by_migration(attempts);
        let head = grouped
            .iter()
            .filter(|(id, events)| {
                id.version().is_some() && fold_state(events.iter().copied()).state == State::Applied
            })
            .filter_map(|(id, _)| id.version())
            .max()
            .cloned();
        let mut pending = Vec::new();
        for migration in chain.migrations() {
            let folded = folded_for(&grouped, migration.id());
            match migration.id() {
                MigrationId::Versioned(version) => {
                    if folded.state == State::Applied {
                        continue;
                    }
                    if options.target.as_ref().is_some_and(|t| version > t) {
                        continue;
                    }
                    if let Some(head) = &head
                        && version < head
                        && !options.out_of_order
                    {
                        return Err(Error::OutOfOrder {
                            version: version.to_string(),
                            head: head.to_string(),
                        });
                    }
                }
                MigrationId::Repeatable(_) => {
                    if options.target.is_some() {
                        continue;
                    }
                    if folded.state == State::Applied
                        && folded.checksum.as_ref() == Some(migration.checksum())
                    {
                        continue;
                    }
                }
            }
            pending.push(migration.clone());
        }
        Ok(pending)
    }
}
