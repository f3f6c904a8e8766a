//! Both repositories pass the same suite, directly and through `dyn`.

use std::sync::Arc;

use session_core::{FsWorkspace, InMemoryWorkspace, WorkspaceRepository};
use session_testkit::suites::repository_conformance;

#[tokio::test]
async fn in_memory_direct() {
    repository_conformance(&InMemoryWorkspace::new()).await;
}

#[tokio::test]
async fn in_memory_boxed() {
    let repo: Box<dyn WorkspaceRepository> = Box::new(InMemoryWorkspace::new());
    repository_conformance(&repo).await;
}

#[tokio::test]
async fn in_memory_arc() {
    let repo: Arc<dyn WorkspaceRepository> = Arc::new(InMemoryWorkspace::new());
    repository_conformance(&repo).await;
}

fn fs_workspace() -> (tempfile::TempDir, FsWorkspace) {
    let dir = tempfile::tempdir().expect("temp dir");
    let ws = FsWorkspace::open(dir.path().join("nested/dir/workspace.json")).expect("build");
    (dir, ws)
}

#[tokio::test]
async fn fs_direct() {
    let (_dir, ws) = fs_workspace();
    repository_conformance(&ws).await;
}

#[tokio::test]
async fn fs_boxed() {
    let (_dir, ws) = fs_workspace();
    let repo: Box<dyn WorkspaceRepository> = Box::new(ws);
    repository_conformance(&repo).await;
}

#[tokio::test]
async fn fs_arc() {
    let (_dir, ws) = fs_workspace();
    let repo: Arc<dyn WorkspaceRepository> = Arc::new(ws);
    repository_conformance(&repo).await;
}

/// Two handles on one file (as two processes would have) see each other's
/// writes and cannot overwrite each other.
#[tokio::test]
async fn fs_two_handles_share_the_file() {
    use session_core::{Error, Session, SessionType};
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ws.json");
    let a = FsWorkspace::open(&path).expect("a");
    let b = FsWorkspace::open(&path).expect("b");
    let stored = a
        .insert(Session::new("shared", SessionType::Redfish).expect("session"))
        .await
        .expect("insert via a");
    let seen = b.get(stored.session_id).await.expect("b sees a's insert");
    let mut via_b = seen.clone();
    via_b.region = Some("b".into());
    b.update(via_b).await.expect("update via b");
    let mut via_a = stored.clone();
    via_a.region = Some("a".into());
    assert!(
        matches!(a.update(via_a).await, Err(Error::Conflict { .. })),
        "a's stale copy must not overwrite b's write"
    );
    assert_eq!(
        a.get(stored.session_id)
            .await
            .expect("get")
            .region
            .as_deref(),
        Some("b")
    );
}

/// A repository written before `lock_session` existed (the trait's
/// default, which locks nothing) fails the suite: the lock check is real.
#[tokio::test]
#[should_panic(expected = "lock_session must wait")]
async fn a_repository_without_session_locks_fails_the_suite() {
    use session_core::{Result, Session, SessionId};

    #[derive(Debug, Default)]
    struct NoLocks(InMemoryWorkspace);

    #[async_trait::async_trait]
    impl WorkspaceRepository for NoLocks {
        async fn list(&self) -> Result<Vec<Session>> {
            self.0.list().await
        }
        async fn get(&self, id: SessionId) -> Result<Session> {
            self.0.get(id).await
        }
        async fn insert(&self, session: Session) -> Result<Session> {
            self.0.insert(session).await
        }
        async fn update(&self, session: Session) -> Result<Session> {
            self.0.update(session).await
        }
        async fn delete(&self, id: SessionId, expected: Option<u64>) -> Result<Session> {
            self.0.delete(id, expected).await
        }
    }

    repository_conformance(&NoLocks::default()).await;
}
