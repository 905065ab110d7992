//! `baseline`, `doctor` and `unlock`.

use super::{Runner, actor, settle};
use crate::chain::Chain;
use crate::error::Error;
use crate::graph::GraphDb;
use crate::graph::lock::LockHolder;
use crate::journal::new_attempt_key;
use crate::ledger::{Action, SqliteLedger, State, folded_for, group_by_migration};
use crate::migration::{Checksum, MigrationId, Version};

impl Runner {
    /// Marks every migration up to `version` as applied without running it.
    pub async fn baseline(&self, version: &Version) -> Result<Vec<MigrationId>, Error> {
        let chain = Chain::discover(&self.config.migrations_dir)?;
        let ledger = SqliteLedger::open(&self.config.ledger_path)?;
        let db = self.connect().await?;
        let lock = self.lock(&db).await?;
        let outcome = async {
            self.sync_ledger(&db, lock.fence(), &ledger).await?;
            let attempts = ledger.attempts(&self.target())?;
            let grouped = group_by_migration(&attempts);
            let mut marked = Vec::new();
            for migration in chain.migrations() {
                let Some(v) = migration.id().version() else {
                    continue;
                };
                if v > version || folded_for(&grouped, migration.id()).state == State::Applied {
                    continue;
                }
                let link = self
                    .record_in_graph(
                        &db,
                        lock.fence(),
                        Action::Baseline,
                        migration.id(),
                        migration.description(),
                        migration.checksum(),
                        &ledger,
                        "baselined: marked as applied without running",
                    )
                    .await?;
                self.reporter
                    .audit(&format!("Baselined {} ({})", migration.label(), link.seq));
                marked.push(migration.id().clone());
            }
            Ok(marked)
        }
        .await;
        settle(outcome, lock.release(&db).await)
    }

    /// Connects as the owner and the migration user and reports which dangerous
    /// operations the server refuses the migration user (`graphmig doctor`).
    pub async fn doctor(&self) -> Result<Vec<crate::doctor::Finding>, Error> {
        let db = GraphDb::connect(&self.config.database).await?;
        self.reporter.connected(&self.target(), db.agent());
        Ok(crate::doctor::diagnose(&db, &self.config.database).await)
    }

    /// Removes the lock whoever holds it, and records who did.
    pub async fn unlock(&self) -> Result<Option<LockHolder>, Error> {
        let ledger = SqliteLedger::open(&self.config.ledger_path)?;
        let db = GraphDb::connect(&self.config.database).await?;
        let holder = db.force_unlock().await?;
        if let Some(holder) = &holder {
            ledger.record_event(
                &self.target(),
                Action::Unlock,
                None,
                "unlock",
                &Checksum::from_hex(""),
                None,
                &new_attempt_key(),
                &actor(),
                &format!(
                    "removed the lock of {} (acquired {})",
                    holder.owner,
                    crate::graph::lock::ms_to_rfc3339(holder.acquired_at)
                ),
            )?;
        }
        Ok(holder)
    }
}
