//! The history in the graph: one `__GraphmigMigration` node per applied event,
//! written inside the migration's own transaction, so that the graph itself says
//! whether a migration committed. Every runner, on any machine, sees the same truth.

use neo4rs::BoltType;

use super::{GraphDb, GraphError, GraphErrorKind, GraphTxn};
use crate::error::Error;
use crate::ledger::{
    Action, CHAIN_ORIGIN, ChainLink, EntryFields, HISTORY_FORMAT, chain_hash, entry_hash,
};
use crate::migration::Checksum;

/// The label of history nodes.
pub const HISTORY_LABEL: &str = "__GraphmigMigration";
/// The label of the lock node.
pub const LOCK_LABEL: &str = "__GraphmigLock";
/// The label history nodes that are not graphmig's are moved to by `repair`.
pub const SET_ASIDE_LABEL: &str = "__GraphmigSetAside";
/// The label of the markers a migration leaves in the target database when the
/// history lives in another one.
pub const MARKER_LABEL: &str = "__GraphmigApplied";

/// One event of the graph's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Its link in the hash chain.
    pub chain: ChainLink,
    /// The hash of the entry before it.
    pub previous: String,
    /// What happened.
    pub action: Action,
    /// The migration's key (version or `R__description`).
    pub key: String,
    /// Its description.
    pub description: String,
    /// Checksum of its artifact.
    pub checksum: Checksum,
    /// The attempt key the runner gave it (matches the ledger row).
    pub attempt_key: String,
    /// When (RFC 3339).
    pub applied_at: String,
    /// Who (`user@host`).
    pub applied_by: String,
    /// The entry's format: 2 (its hash covers every field) or 1 (earlier versions).
    pub format: i64,
    /// The node's element id, where the entry was read from the graph.
    pub node: String,
}

impl HistoryEntry {
    /// The chain hash this entry should have, by its format.
    pub fn expected_hash(&self) -> String {
        if self.format >= HISTORY_FORMAT {
            entry_hash(&EntryFields {
                seq: self.chain.seq,
                previous: &self.previous,
                action: self.action,
                key: &self.key,
                description: &self.description,
                checksum: &self.checksum,
                attempt: &self.attempt_key,
                applied_at: &self.applied_at,
                applied_by: &self.applied_by,
            })
        } else {
            chain_hash(&self.previous, self.action, &self.key, &self.checksum)
        }
    }
}

/// What a runner writes into the graph with a migration.
#[derive(Debug, Clone)]
pub struct HistoryDraft {
    /// What happened.
    pub action: Action,
    /// The migration's key.
    pub key: String,
    /// Its description.
    pub description: String,
    /// Checksum of its artifact.
    pub checksum: Checksum,
    /// The attempt key.
    pub attempt_key: String,
    /// When.
    pub applied_at: String,
    /// Who.
    pub applied_by: String,
}

/// Proof that the writer holds the lock: its owner string and generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The lock's owner.
    pub owner: String,
    /// The lock's generation, bumped by every take-over.
    pub generation: i64,
    /// The chain's head as this holder last committed it.
    pub head: HeadHint,
}

/// The history's head as the lock holder last committed it. While the lock is
/// held nobody else appends, so the next append needs neither to read the
/// head nor a second statement: it checks the fence and creates the entry at
/// once, and the unique `seq` constraint refuses it should the hint ever be
/// stale. Set only after a confirmed commit; cleared when a commit's outcome
/// is unknown.
#[derive(Debug, Clone, Default)]
pub struct HeadHint(std::sync::Arc<std::sync::Mutex<Option<ChainLink>>>);

impl HeadHint {
    /// Takes the hint: whoever appends sets it again only once that append
    /// committed, so an append by any other path leaves no stale hint.
    fn take(&self) -> Option<ChainLink> {
        self.0.lock().ok().and_then(|mut head| head.take())
    }

    /// Records `link` as the head, after its entry committed.
    pub fn committed(&self, link: &ChainLink) {
        if let Ok(mut head) = self.0.lock() {
            *head = Some(link.clone());
        }
    }

    /// Forgets the head: the next append reads it from the graph.
    pub fn forget(&self) {
        if let Ok(mut head) = self.0.lock() {
            *head = None;
        }
    }
}

/// A hint never makes two fences differ: a fence is its owner and generation.
impl PartialEq for HeadHint {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for HeadHint {}

pub(crate) fn text(row: &[(String, BoltType)], column: &str) -> Option<String> {
    row.iter()
        .find(|(k, _)| k == column)
        .and_then(|(_, v)| match v {
            BoltType::String(s) => Some(s.value.clone()),
            _ => None,
        })
}

/// The strings of a list column (`labelsOrTypes`, `properties`); empty when the
/// column is missing or no list.
pub(crate) fn strings(row: &[(String, BoltType)], column: &str) -> Vec<String> {
    match row.iter().find(|(k, _)| k == column).map(|(_, v)| v) {
        Some(BoltType::List(items)) => items
            .value
            .iter()
            .filter_map(|i| match i {
                BoltType::String(s) => Some(s.value.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

pub(crate) fn int(row: &[(String, BoltType)], column: &str) -> Option<i64> {
    row.iter()
        .find(|(k, _)| k == column)
        .and_then(|(_, v)| match v {
            BoltType::Integer(i) => Some(i.value),
            // Some servers hand back integers stored as text or float.
            BoltType::Float(f) => Some(f.value as i64),
            BoltType::String(s) => s.value.parse().ok(),
            _ => None,
        })
}

fn s(value: &str) -> BoltType {
    BoltType::String(neo4rs::BoltString::new(value))
}

fn i(value: i64) -> BoltType {
    BoltType::Integer(neo4rs::BoltInteger::new(value))
}

impl GraphDb {
    /// Creates the constraints the lock and history rely on, if missing. They
    /// are listed first: on every run but the first both exist, and one read
    /// costs less than two schema transactions (about 5 ms on ArcadeDB).
    pub async fn ensure_history_schema(&self) -> Result<(), Error> {
        if self.history_constraints_exist().await {
            return Ok(());
        }
        for statement in [
            format!(
                "CREATE CONSTRAINT graphmig_lock_id IF NOT EXISTS FOR (l:{LOCK_LABEL}) REQUIRE l.id IS UNIQUE"
            ),
            format!(
                "CREATE CONSTRAINT graphmig_history_seq IF NOT EXISTS FOR (h:{HISTORY_LABEL}) REQUIRE h.seq IS UNIQUE"
            ),
        ] {
            let mut txn = self.begin_history().await?;
            txn.run(&statement, Vec::new())
                .await
                .map_err(|e| self.database_error(format!("{statement}: {e}")))?;
            txn.commit()
                .await
                .map_err(|e| self.database_error(format!("{statement}: {e}")))?;
        }
        Ok(())
    }

    /// Whether the history database lists both constraints (uniqueness of the
    /// lock's `id` and of the entries' `seq`). Any failure to list them says
    /// no: the caller then creates them, `IF NOT EXISTS`.
    async fn history_constraints_exist(&self) -> bool {
        let Ok(mut txn) = self.begin_history().await else {
            return false;
        };
        let rows = txn.run("SHOW CONSTRAINTS", Vec::new()).await;
        let _ = txn.rollback().await;
        let Ok(rows) = rows else {
            return false;
        };
        let unique = |label: &str, property: &str| {
            rows.iter().any(|row| {
                // `UNIQUENESS` on Neo4j 4.4, early 5.x and ArcadeDB;
                // `NODE_PROPERTY_UNIQUENESS` on later 5.x.
                text(row, "type").is_some_and(|t| t.ends_with("UNIQUENESS"))
                    && strings(row, "labelsOrTypes") == [label]
                    && strings(row, "properties") == [property]
            })
        };
        unique(LOCK_LABEL, "id") && unique(HISTORY_LABEL, "seq")
    }

    /// The whole history, in chain order. A node that is not an entry graphmig
    /// wrote (a field missing or of the wrong type, a version that is not its key,
    /// an unknown format) fails the read as a verify problem naming the node and
    /// the way out, never as a database error.
    pub async fn read_history(&self) -> Result<Vec<HistoryEntry>, Error> {
        let (entries, malformed) = self.read_history_nodes().await?;
        if malformed.is_empty() {
            Ok(entries)
        } else {
            Err(Error::VerifyFailed {
                problems: malformed
                    .into_iter()
                    .map(|(id, why)| {
                        format!(
                            "history node {id} in `{}` is not an entry graphmig wrote ({why}): it was forged or edited; `graphmig repair` sets it aside",
                            self.history_database()
                        )
                    })
                    .collect(),
            })
        }
    }

    /// Every history node: the well-formed entries, in chain order, and the
    /// element ids of the malformed ones with what is wrong with each.
    pub async fn read_history_nodes(
        &self,
    ) -> Result<(Vec<HistoryEntry>, Vec<(String, String)>), Error> {
        let mut txn = self.begin_history().await?;
        let rows = txn
            .run(
                &format!(
                    "MATCH (h:{HISTORY_LABEL}) RETURN elementId(h) AS id, h.seq AS seq, h.chain_hash AS hash, h.previous AS previous,
                     h.action AS action, h.key AS key, h.version AS version, h.description AS description, h.checksum AS checksum,
                     h.attempt AS attempt, h.applied_at AS applied_at, h.applied_by AS applied_by, h.format AS format"
                ),
                Vec::new(),
            )
            .await
            .map_err(|e| self.database_error(format!("reading the history: {e}")))?;
        let _ = txn.rollback().await;
        let mut entries = Vec::with_capacity(rows.len());
        let mut malformed = Vec::new();
        for row in rows {
            let id = text(&row, "id").unwrap_or_else(|| "?".into());
            match parse_entry(&row) {
                Ok(entry) => entries.push(entry),
                Err(why) => malformed.push((id, why)),
            }
        }
        entries.sort_by_key(|e| e.chain.seq);
        Ok((entries, malformed))
    }

    /// Sets history nodes aside: relabels them `__GraphmigSetAside`, so that the
    /// evidence stays but no runner reads them as history. Returns how many.
    pub async fn set_aside_history_nodes(&self, ids: &[String]) -> Result<usize, Error> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut txn = self.begin_history().await?;
        let list = BoltType::List(neo4rs::BoltList::from(
            ids.iter().map(|id| s(id)).collect::<Vec<_>>(),
        ));
        let counters = txn
            .run_discarding(
                &format!(
                    "MATCH (h:{HISTORY_LABEL}) WHERE elementId(h) IN $ids REMOVE h:{HISTORY_LABEL} SET h:{SET_ASIDE_LABEL}"
                ),
                vec![("ids".into(), list)],
            )
            .await
            .map_err(|e| self.database_error(format!("setting history nodes aside: {e}")))?;
        txn.commit()
            .await
            .map_err(|e| self.database_error(format!("setting history nodes aside: {e}")))?;
        Ok(counters.labels_removed as usize)
    }

    /// Whether the target database holds the marker of `attempt_key`, that is,
    /// whether that attempt's transaction committed.
    pub async fn marker_exists(&self, attempt_key: &str) -> Result<bool, Error> {
        let mut txn = self.begin().await?;
        let rows = txn
            .run(
                &format!(
                    "MATCH (m:{MARKER_LABEL} {{attempt: $attempt}}) RETURN m.attempt AS attempt"
                ),
                vec![("attempt".into(), s(attempt_key))],
            )
            .await
            .map_err(|e| self.database_error(format!("reading markers: {e}")))?;
        let _ = txn.rollback().await;
        Ok(!rows.is_empty())
    }

    pub(crate) fn database_error(&self, message: String) -> Error {
        Error::Database {
            uri: self.settings.uri.clone(),
            message,
        }
    }
}

impl GraphTxn {
    /// Leaves the attempt's marker in this (target database) transaction.
    pub async fn write_marker(&mut self, draft: &HistoryDraft) -> Result<(), GraphError> {
        self.run(
            &format!(
                "CREATE (:{MARKER_LABEL} {{attempt: $attempt, key: $key, checksum: $checksum, applied_at: $at}})"
            ),
            vec![
                ("attempt".into(), s(&draft.attempt_key)),
                ("key".into(), s(&draft.key)),
                ("checksum".into(), s(draft.checksum.as_str())),
                ("at".into(), s(&draft.applied_at)),
            ],
        )
        .await
        .map(|_| ())
    }

    /// Appends an entry to the history inside this transaction, after checking
    /// that the writer still holds the lock (`fence`). Commits with the data or
    /// not at all.
    pub async fn append_history(
        &mut self,
        fence: &Fence,
        draft: &HistoryDraft,
    ) -> Result<HistoryEntry, GraphError> {
        let lock_lost = || {
            GraphError {
            kind: GraphErrorKind::Other,
            code: "graphmig.LockLost".into(),
            message: "this runner no longer holds the lock (it expired and was taken over); nothing was committed".into(),
        }
        };
        if let Some(head) = fence.head.take() {
            // The fence and the append in one statement.
            let entry = entry_after(head.seq, head.hash, draft);
            let mut params = entry_params(&entry);
            params.extend([
                ("owner".into(), s(&fence.owner)),
                ("generation".into(), i(fence.generation)),
            ]);
            let created = self
                .run_discarding(
                    &format!(
                        "MATCH (l:{LOCK_LABEL} {{id: 'graphmig'}}) WHERE l.owner = $owner AND l.generation = $generation
                         {CREATE_ENTRY}"
                    ),
                    params,
                )
                .await?;
            return match created.nodes_created {
                1 => Ok(entry),
                _ => Err(lock_lost()),
            };
        }
        // The fence and the chain's head in one round trip.
        let head = self
            .run(
                &format!(
                    "OPTIONAL MATCH (l:{LOCK_LABEL} {{id: 'graphmig'}}) WHERE l.owner = $owner AND l.generation = $generation
                     WITH l
                     OPTIONAL MATCH (h:{HISTORY_LABEL})
                     WITH l, h ORDER BY h.seq DESC LIMIT 1
                     RETURN l.owner AS owner, h.seq AS seq, h.chain_hash AS hash"
                ),
                vec![("owner".into(), s(&fence.owner)), ("generation".into(), i(fence.generation))],
            )
            .await?;
        if head.first().and_then(|row| text(row, "owner")).is_none() {
            return Err(lock_lost());
        }
        let (seq, previous) = head
            .first()
            .and_then(|row| Some((int(row, "seq")?, text(row, "hash")?)))
            .unwrap_or((0, CHAIN_ORIGIN.to_string()));
        let entry = entry_after(seq, previous, draft);
        self.run_discarding(CREATE_ENTRY, entry_params(&entry))
            .await?;
        Ok(entry)
    }
}

/// Reads one history row, or says what is wrong with it.
fn parse_entry(row: &[(String, BoltType)]) -> Result<HistoryEntry, String> {
    let seq = int(row, "seq").ok_or("no integer seq")?;
    let hash = text(row, "hash").ok_or("no chain_hash")?;
    let action = text(row, "action")
        .and_then(|a| Action::parse(&a))
        .ok_or("no known action")?;
    let field = |name: &str| text(row, name).ok_or(format!("no {name}"));
    let key = field("key")?;
    if text(row, "version").as_deref() != Some(key.as_str()) {
        return Err("its version is not its key".into());
    }
    let format = match row.iter().find(|(n, _)| n == "format").map(|(_, v)| v) {
        None | Some(BoltType::Null(_)) => 1,
        Some(BoltType::Integer(f)) if f.value == HISTORY_FORMAT => HISTORY_FORMAT,
        Some(other) => return Err(format!("unknown format {other:?}")),
    };
    Ok(HistoryEntry {
        chain: ChainLink { seq, hash },
        previous: field("previous")?,
        action,
        key,
        description: field("description")?,
        checksum: Checksum::from_hex(field("checksum")?),
        attempt_key: field("attempt")?,
        applied_at: field("applied_at")?,
        applied_by: field("applied_by")?,
        format,
        node: text(row, "id").unwrap_or_default(),
    })
}

/// Creates a history node from `$seq`, `$hash` and the entry's other parameters.
const CREATE_ENTRY: &str = "CREATE (:__GraphmigMigration {seq: $seq, chain_hash: $hash, previous: $previous, action: $action,
     key: $key, version: $key, description: $description, checksum: $checksum, attempt: $attempt,
     applied_at: $applied_at, applied_by: $applied_by, format: $format})";

/// The entry that follows head `seq`, whose hash is `previous`.
fn entry_after(seq: i64, previous: String, draft: &HistoryDraft) -> HistoryEntry {
    let mut entry = HistoryEntry {
        chain: ChainLink {
            seq: seq + 1,
            hash: String::new(),
        },
        previous,
        action: draft.action,
        key: draft.key.clone(),
        description: draft.description.clone(),
        checksum: draft.checksum.clone(),
        attempt_key: draft.attempt_key.clone(),
        applied_at: draft.applied_at.clone(),
        applied_by: draft.applied_by.clone(),
        format: HISTORY_FORMAT,
        node: String::new(),
    };
    entry.chain.hash = entry.expected_hash();
    entry
}

fn entry_params(entry: &HistoryEntry) -> Vec<(String, BoltType)> {
    vec![
        ("seq".into(), i(entry.chain.seq)),
        ("hash".into(), s(&entry.chain.hash)),
        ("previous".into(), s(&entry.previous)),
        ("action".into(), s(entry.action.as_str())),
        ("key".into(), s(&entry.key)),
        ("description".into(), s(&entry.description)),
        ("checksum".into(), s(entry.checksum.as_str())),
        ("attempt".into(), s(&entry.attempt_key)),
        ("applied_at".into(), s(&entry.applied_at)),
        ("applied_by".into(), s(&entry.applied_by)),
        ("format".into(), i(entry.format)),
    ]
}
