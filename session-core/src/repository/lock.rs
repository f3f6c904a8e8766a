//! [`SessionLock`]: exclusive use of one session across tasks and, for
//! repositories shared by processes, across processes.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use crate::SessionId;

/// Held while one operation runs on one session; released when dropped.
///
/// Returned by [`WorkspaceRepository::lock_session`](super::WorkspaceRepository::lock_session).
/// What it holds depends on the repository: a task lock for
/// [`InMemoryWorkspace`](super::InMemoryWorkspace), an advisory lock on a
/// per-session file for [`FsWorkspace`](super::FsWorkspace) (which the
/// operating system releases when the holding process dies, so a crashed
/// holder never blocks the others).
#[must_use = "the session is unlocked as soon as the lock is dropped"]
pub struct SessionLock {
    _held: Box<dyn Send + Sync>,
}

impl SessionLock {
    /// A lock that holds `guard` until it is dropped; for repository
    /// implementations.
    pub fn new(guard: impl Send + Sync + 'static) -> Self {
        Self {
            _held: Box::new(guard),
        }
    }
}

impl fmt::Debug for SessionLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLock").finish_non_exhaustive()
    }
}

/// One task lock per session id, for repositories whose sessions live in
/// one process.
#[derive(Debug, Default)]
pub(crate) struct TaskLocks {
    locks: Mutex<HashMap<SessionId, Arc<tokio::sync::Mutex<()>>>>,
}

impl TaskLocks {
    /// Waits until no other task holds `id`'s lock, then holds it.
    pub(crate) async fn lock(&self, id: SessionId) -> SessionLock {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            // Forget locks nobody holds or waits for, so the map stays as
            // small as the number of sessions in use.
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
            Arc::clone(locks.entry(id).or_default())
        };
        SessionLock::new(lock.lock_owned().await)
    }
}
