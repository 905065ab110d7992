//! A request to stop, from SIGINT or SIGTERM: the running migration is stopped
//! where it stands (guest code, a host call or a wait on the database), rolled
//! back and cleaned up, the lock is released, and no further migration starts.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Asks the running work to stop.
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Resolves once a stop is asked for (checked every 20 ms).
pub async fn wait() {
    while !requested() {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
