//! A workspace that lives only in memory.

use std::sync::Mutex;

use super::{SessionLock, SessionSet, TaskLocks, WorkspaceRepository};
use crate::{Result, Session, SessionId};

/// A [`WorkspaceRepository`] in memory: for tests, and for embedding tools
/// that persist sessions themselves. Same rules as [`FsWorkspace`](super::FsWorkspace).
///
/// ```
/// use session_core::{InMemoryWorkspace, Session, SessionType, WorkspaceRepository};
/// # tokio_test_block(async {
/// let repo = InMemoryWorkspace::new();
/// let stored = repo.insert(Session::new("dev", SessionType::AwsIamUser)?).await?;
/// assert_eq!(stored.revision(), 1);
/// assert_eq!(repo.list().await?.len(), 1);
/// # Ok::<(), session_core::Error>(())
/// # }).unwrap();
/// # fn tokio_test_block<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Default)]
pub struct InMemoryWorkspace {
    set: Mutex<SessionSet>,
    locks: TaskLocks,
}

impl InMemoryWorkspace {
    /// An empty workspace.
    pub fn new() -> Self {
        Self::default()
    }

    fn with_set<T>(&self, f: impl FnOnce(&mut SessionSet) -> Result<T>) -> Result<T> {
        // A panic while holding the lock cannot leave the set half-changed:
        // every SessionSet method checks before it mutates.
        let mut set = self.set.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut set)
    }
}

#[async_trait::async_trait]
impl WorkspaceRepository for InMemoryWorkspace {
    async fn list(&self) -> Result<Vec<Session>> {
        self.with_set(|set| Ok(set.sessions().to_vec()))
    }

    async fn get(&self, id: SessionId) -> Result<Session> {
        self.with_set(|set| set.get(id).cloned())
    }

    async fn insert(&self, session: Session) -> Result<Session> {
        self.with_set(|set| set.insert(session))
    }

    async fn update(&self, session: Session) -> Result<Session> {
        self.with_set(|set| set.update(session))
    }

    async fn delete(&self, id: SessionId, expected_revision: Option<u64>) -> Result<Session> {
        self.with_set(|set| set.delete(id, expected_revision))
    }

    /// A task lock: the sessions live in this process only.
    async fn lock_session(&self, id: SessionId) -> Result<SessionLock> {
        Ok(self.locks.lock(id).await)
    }
}
