//! `run --dry-run`: every pending migration in a transaction that is rolled back,
//! with what it would change.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::status::with_graph_history;
use super::{RunOptions, Runner};
use crate::chain::Chain;
use crate::error::Error;
use crate::graph::{GraphDb, GraphTxn};
use crate::journal::JournalEntry;
use crate::ledger::SqliteLedger;
use crate::migration::MigrationId;
use crate::wasm::{Mode, Step, StepEnv};

/// What a dry run found for one migration.
#[derive(Debug, Clone)]
pub struct DryRunMigration {
    /// Its identity.
    pub id: MigrationId,
    /// Description.
    pub description: String,
    /// Every statement it sent, with outcome, rows and duration.
    pub statements: Vec<JournalEntry>,
    /// Fuel consumed.
    pub fuel_consumed: u64,
    /// Nodes per label and relationships per type it would add (or remove).
    pub changes: Vec<(String, i64)>,
    /// Why it would fail, if it would.
    pub failure: Option<String>,
}

impl Runner {
    /// Runs every pending migration for real inside one transaction that is always
    /// rolled back, and reports what each would do. Changes neither the graph nor
    /// the ledger.
    pub async fn dry_run(&self, options: &RunOptions) -> Result<Vec<DryRunMigration>, Error> {
        crate::builder::check_built(&self.config.migrations_dir)?;
        let chain = Chain::discover(&self.config.migrations_dir)?;
        let ledger_attempts = match SqliteLedger::open_existing(&self.config.ledger_path)? {
            Some(ledger) => ledger.attempts(&self.target())?,
            None => Vec::new(),
        };
        let sandbox = self.sandbox()?;
        let db = Arc::new(GraphDb::connect(&self.config.database).await?);
        self.reporter.connected(&self.target(), db.agent());
        // The graph's history is the truth about what is applied; a lagging local
        // ledger must not make a dry run replay what others applied.
        let history = db.read_history().await?;
        let attempts = with_graph_history(ledger_attempts, &history);
        let pending = self.pending(&chain, &attempts, options)?;
        let loaded = self.load_all(&sandbox, &pending)?;
        let datasets = self.open_datasets()?;
        self.reporter.plan(&pending);

        let mut results = Vec::new();
        let mut txn = Some(db.begin().await?);
        for (migration, component) in pending.iter().zip(&loaded) {
            let Some(mut current) = txn.take() else { break };
            let before = census(&mut current).await;
            let run = sandbox
                .run_step(
                    component,
                    Step::Up,
                    Mode::DryRun,
                    current,
                    self.config.settings_for(migration.id()),
                    StepEnv {
                        db: Some(db.clone()),
                        datasets: datasets.clone(),
                        ..StepEnv::default()
                    },
                    self.reporter.clone(),
                    migration.label(),
                )
                .await?;
            txn = run.txn;
            let changes = match (&before, txn.as_mut()) {
                (Some(before), Some(current)) if run.result.is_ok() => census(current)
                    .await
                    .map(|after| diff(before, &after))
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            let failure = run.result.as_ref().err().map(ToString::to_string);
            results.push(DryRunMigration {
                id: migration.id().clone(),
                description: migration.description().to_string(),
                statements: run.record.journal,
                fuel_consumed: run.fuel_consumed,
                changes,
                failure: failure.clone(),
            });
            if failure.is_some() {
                break;
            }
        }
        if let Some(txn) = txn {
            txn.rollback()
                .await
                .map_err(|e| db.database_error(format!("rolling back the dry run: {e}")))?;
        }
        Ok(results)
    }
}

/// Nodes per label and relationships per type, graphmig's own left out.
pub(super) async fn census(txn: &mut GraphTxn) -> Option<BTreeMap<String, i64>> {
    let mut counts = BTreeMap::new();
    let nodes = txn
        .run(
            "MATCH (n) UNWIND labels(n) AS label RETURN label, count(*) AS n",
            Vec::new(),
        )
        .await
        .ok()?;
    for row in nodes {
        let label = crate::graph::history::text(&row, "label")?;
        if !label.starts_with("__Graphmig") {
            counts.insert(
                format!("(:{label})"),
                crate::graph::history::int(&row, "n")?,
            );
        }
    }
    let rels = txn
        .run(
            "MATCH ()-[r]->() RETURN type(r) AS type, count(*) AS n",
            Vec::new(),
        )
        .await
        .ok()?;
    for row in rels {
        let kind = crate::graph::history::text(&row, "type")?;
        counts.insert(format!("[:{kind}]"), crate::graph::history::int(&row, "n")?);
    }
    Some(counts)
}

pub(super) fn diff(
    before: &BTreeMap<String, i64>,
    after: &BTreeMap<String, i64>,
) -> Vec<(String, i64)> {
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let delta = after.get(k).copied().unwrap_or(0) - before.get(k).copied().unwrap_or(0);
            (delta != 0).then(|| (k.clone(), delta))
        })
        .collect()
}
