//! The lease lock in the graph: one `__GraphmigLock` node with an owner, an expiry
//! refreshed by a heartbeat, and a generation that fences out a runner whose lease
//! was taken over.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use neo4rs::BoltType;

use super::GraphDb;
use super::history::{Fence, HeadHint, LOCK_LABEL, int, text};
use crate::error::Error;

pub use crate::config::LockSettings;

/// A held lock. Its heartbeat stops and the lock is released by [`HeldLock::release`];
/// a runner that dies leaves it to expire.
pub struct HeldLock {
    fence: Fence,
    lost: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for HeldLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldLock")
            .field("fence", &self.fence)
            .finish_non_exhaustive()
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// RFC 3339 of milliseconds since the epoch.
pub fn ms_to_rfc3339(ms: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

fn s(value: &str) -> BoltType {
    BoltType::String(neo4rs::BoltString::new(value))
}

fn i(value: i64) -> BoltType {
    BoltType::Integer(neo4rs::BoltInteger::new(value))
}

/// Who holds a lock, as read from the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    /// The owner string (`user@host:pid/nonce`).
    pub owner: String,
    /// When it was acquired (ms since the epoch).
    pub acquired_at: i64,
    /// When it expires unless refreshed.
    pub expires_at: i64,
    /// Its generation.
    pub generation: i64,
}

enum Attempt {
    Acquired(Fence),
    Held(LockHolder),
    Conflict,
}

impl GraphDb {
    async fn try_lock(&self, owner: &str, ttl: Duration) -> Result<Attempt, Error> {
        let now = now_ms();
        let expires = now + ttl.as_millis() as i64;
        let mut txn = self.begin_history().await?;
        let rows = match txn
            .run(
                &format!(
                    "MERGE (l:{LOCK_LABEL} {{id: 'graphmig'}})
                     ON CREATE SET l.owner = $owner, l.acquired_at = $now, l.expires_at = $expires, l.generation = 1
                     RETURN l.owner AS owner, l.acquired_at AS acquired_at, l.expires_at AS expires_at,
                            l.generation AS generation"
                ),
                vec![("owner".into(), s(owner)), ("now".into(), i(now)), ("expires".into(), i(expires))],
            )
            .await
        {
            Ok(rows) => rows,
            Err(e) if e.kind == super::GraphErrorKind::Transient => return Ok(Attempt::Conflict),
            Err(e) => return Err(self.database_error(format!("taking the lock: {e}"))),
        };
        let Some(row) = rows.first() else {
            return Err(self.database_error("taking the lock: MERGE returned nothing".into()));
        };
        let holder = LockHolder {
            owner: text(row, "owner").unwrap_or_default(),
            acquired_at: int(row, "acquired_at").unwrap_or(0),
            expires_at: int(row, "expires_at").unwrap_or(0),
            generation: int(row, "generation").unwrap_or(0),
        };
        let fence = if holder.owner == owner {
            Fence {
                owner: owner.to_string(),
                generation: holder.generation,
                head: HeadHint::default(),
            }
        } else if holder.expires_at < now {
            // The holder stopped refreshing: take the lease over, bumping the
            // generation so that its writes are fenced out should it wake up.
            let generation = holder.generation + 1;
            let taken = txn
                .run(
                    &format!(
                        "MATCH (l:{LOCK_LABEL} {{id: 'graphmig'}}) WHERE l.owner = $old AND l.generation = $old_generation
                         SET l.owner = $owner, l.acquired_at = $now, l.expires_at = $expires, l.generation = $generation
                         RETURN l.owner AS owner"
                    ),
                    vec![
                        ("old".into(), s(&holder.owner)),
                        ("old_generation".into(), i(holder.generation)),
                        ("owner".into(), s(owner)),
                        ("now".into(), i(now)),
                        ("expires".into(), i(expires)),
                        ("generation".into(), i(generation)),
                    ],
                )
                .await;
            match taken {
                Ok(rows) if !rows.is_empty() => Fence {
                    owner: owner.to_string(),
                    generation,
                    head: HeadHint::default(),
                },
                _ => {
                    let _ = txn.rollback().await;
                    return Ok(Attempt::Conflict);
                }
            }
        } else {
            let _ = txn.rollback().await;
            return Ok(Attempt::Held(holder));
        };
        match txn.commit().await {
            Ok(()) => Ok(Attempt::Acquired(fence)),
            // Another runner created or took the lock at the same moment.
            Err(_) => Ok(Attempt::Conflict),
        }
    }

    /// Takes the lock, waiting up to `settings.wait` for another holder; then
    /// keeps it alive with a heartbeat until released.
    pub async fn acquire_lock(
        self: &Arc<Self>,
        owner: &str,
        settings: LockSettings,
        on_wait: &(dyn Fn(&LockHolder) + Send + Sync),
    ) -> Result<HeldLock, Error> {
        let deadline = Instant::now() + settings.wait;
        let mut told = false;
        let fence = loop {
            match self.try_lock(owner, settings.ttl).await? {
                Attempt::Acquired(fence) => break fence,
                Attempt::Held(holder) => {
                    if Instant::now() >= deadline {
                        return Err(Error::Locked {
                            owner: holder.owner,
                            since: ms_to_rfc3339(holder.acquired_at),
                            expires: ms_to_rfc3339(holder.expires_at),
                            waited_secs: settings.wait.as_secs(),
                        });
                    }
                    if !told {
                        on_wait(&holder);
                        told = true;
                    }
                }
                Attempt::Conflict => {}
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };

        let lost = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let heartbeat = {
            let db = Arc::clone(self);
            let fence = fence.clone();
            let (lost, stop) = (lost.clone(), stop.clone());
            let every = (settings.ttl / 3).max(Duration::from_millis(200));
            tokio::spawn(async move {
                let mut expires_at = now_ms() + settings.ttl.as_millis() as i64;
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(every).await;
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    // A refresh waits no longer than the lease has left: a runner
                    // that cannot reach the database does not hold on past it.
                    let left = Duration::from_millis((expires_at - now_ms()).max(0) as u64);
                    let refreshed = tokio::time::timeout(
                        left.max(every),
                        db.refresh_lock(&fence, settings.ttl),
                    )
                    .await
                    .unwrap_or_else(|_| {
                        Err(db.database_error("refreshing the lock: no answer".into()))
                    });
                    match refreshed {
                        Ok(true) => expires_at = now_ms() + settings.ttl.as_millis() as i64,
                        Ok(false) => {
                            lost.store(true, Ordering::Relaxed);
                            break;
                        }
                        // A missed beat is fine while the lease still runs.
                        Err(_) if now_ms() < expires_at => {}
                        Err(_) => {
                            lost.store(true, Ordering::Relaxed);
                            break;
                        }
                    }
                }
            })
        };
        Ok(HeldLock {
            fence,
            lost,
            stop,
            heartbeat,
        })
    }

    async fn refresh_lock(&self, fence: &Fence, ttl: Duration) -> Result<bool, Error> {
        let mut txn = self.begin_history().await?;
        let rows = txn
            .run(
                &format!(
                    "MATCH (l:{LOCK_LABEL} {{id: 'graphmig'}}) WHERE l.owner = $owner AND l.generation = $generation
                     SET l.expires_at = $expires RETURN l.owner AS owner"
                ),
                vec![
                    ("owner".into(), s(&fence.owner)),
                    ("generation".into(), i(fence.generation)),
                    ("expires".into(), i(now_ms() + ttl.as_millis() as i64)),
                ],
            )
            .await
            .map_err(|e| self.database_error(format!("refreshing the lock: {e}")))?;
        txn.commit()
            .await
            .map_err(|e| self.database_error(format!("refreshing the lock: {e}")))?;
        Ok(!rows.is_empty())
    }

    /// Who holds the lock now, if anyone.
    pub async fn lock_holder(&self) -> Result<Option<LockHolder>, Error> {
        let mut txn = self.begin_history().await?;
        let rows = txn
            .run(
                &format!(
                    "MATCH (l:{LOCK_LABEL} {{id: 'graphmig'}}) RETURN l.owner AS owner, l.acquired_at AS acquired_at,
                     l.expires_at AS expires_at, l.generation AS generation"
                ),
                Vec::new(),
            )
            .await
            .map_err(|e| self.database_error(format!("reading the lock: {e}")))?;
        let _ = txn.rollback().await;
        Ok(rows.first().map(|row| LockHolder {
            owner: text(row, "owner").unwrap_or_default(),
            acquired_at: int(row, "acquired_at").unwrap_or(0),
            expires_at: int(row, "expires_at").unwrap_or(0),
            generation: int(row, "generation").unwrap_or(0),
        }))
    }

    /// Removes the lock whoever holds it (`graphmig unlock`); returns who held it.
    pub async fn force_unlock(&self) -> Result<Option<LockHolder>, Error> {
        let holder = self.lock_holder().await?;
        if holder.is_some() {
            let mut txn = self.begin_history().await?;
            txn.run(
                &format!("MATCH (l:{LOCK_LABEL} {{id: 'graphmig'}}) DELETE l"),
                Vec::new(),
            )
            .await
            .map_err(|e| self.database_error(format!("removing the lock: {e}")))?;
            txn.commit()
                .await
                .map_err(|e| self.database_error(format!("removing the lock: {e}")))?;
        }
        Ok(holder)
    }
}

impl HeldLock {
    /// The fence to write history with.
    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    /// Whether the heartbeat found the lease taken over.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// Stops the heartbeat and deletes the lock if this runner still holds it.
    pub async fn release(self, db: &GraphDb) -> Result<(), Error> {
        self.stop.store(true, Ordering::Relaxed);
        self.heartbeat.abort();
        // Without an answer within the grace, the lease ends on its own.
        let grace = db.grace();
        match tokio::time::timeout(grace, self.delete(db)).await {
            Ok(released) => released,
            Err(_elapsed) => Err(db.database_error(format!(
                "releasing the lock got no answer within {} s; the lease expires by itself",
                grace.as_secs()
            ))),
        }
    }

    async fn delete(&self, db: &GraphDb) -> Result<(), Error> {
        let mut txn = db.begin_history().await?;
        txn.run(
            &format!(
                "MATCH (l:{LOCK_LABEL} {{id: 'graphmig'}}) WHERE l.owner = $owner AND l.generation = $generation DELETE l"
            ),
            vec![
                ("owner".into(), s(&self.fence.owner)),
                ("generation".into(), i(self.fence.generation)),
            ],
        )
        .await
        .map_err(|e| db.database_error(format!("releasing the lock: {e}")))?;
        txn.commit()
            .await
            .map_err(|e| db.database_error(format!("releasing the lock: {e}")))
    }
}
