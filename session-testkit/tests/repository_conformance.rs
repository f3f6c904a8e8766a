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

/// A repository with one deliberate defect, to prove the suite catches it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Flaw {
    /// No defect: the control, which must pass.
    None,
    /// Written before `lock_session` existed: the trait's default, which
    /// locks nothing.
    NoSessionLocks,
    /// Last write wins: an update with a stale revision overwrites.
    UpdateIgnoresRevision,
    /// Delete ignores the expected revision.
    DeleteIgnoresRevision,
    /// Fields this version does not know are dropped on insert.
    DropsUnknownFields,
    /// List returns the newest first.
    ListsNewestFirst,
}

#[derive(Debug)]
struct Flawed {
    inner: InMemoryWorkspace,
    flaw: Flaw,
}

#[async_trait::async_trait]
impl WorkspaceRepository for Flawed {
    async fn list(&self) -> session_core::Result<Vec<session_core::Session>> {
        let mut sessions = self.inner.list().await?;
        if self.flaw == Flaw::ListsNewestFirst {
            sessions.reverse();
        }
        Ok(sessions)
    }
    async fn get(
        &self,
        id: session_core::SessionId,
    ) -> session_core::Result<session_core::Session> {
        self.inner.get(id).await
    }
    async fn insert(
        &self,
        mut session: session_core::Session,
    ) -> session_core::Result<session_core::Session> {
        if self.flaw == Flaw::DropsUnknownFields {
            session.extra.clear();
        }
        self.inner.insert(session).await
    }
    async fn update(
        &self,
        session: session_core::Session,
    ) -> session_core::Result<session_core::Session> {
        if self.flaw != Flaw::UpdateIgnoresRevision {
            return self.inner.update(session).await;
        }
        // Rebase the write on whatever is stored now.
        let current = self.inner.get(session.session_id).await?;
        let mut json = serde_json::to_value(&session).expect("encode");
        json["revision"] = current.revision().into();
        self.inner
            .update(serde_json::from_value(json).expect("decode"))
            .await
    }
    async fn delete(
        &self,
        id: session_core::SessionId,
        expected: Option<u64>,
    ) -> session_core::Result<session_core::Session> {
        let expected = expected.filter(|_| self.flaw != Flaw::DeleteIgnoresRevision);
        self.inner.delete(id, expected).await
    }
    async fn lock_session(
        &self,
        id: session_core::SessionId,
    ) -> session_core::Result<session_core::SessionLock> {
        if self.flaw == Flaw::NoSessionLocks {
            // What the trait's default does.
            return Ok(session_core::SessionLock::new(()));
        }
        self.inner.lock_session(id).await
    }
}

#[tokio::test]
async fn the_suite_catches_each_flaw() {
    eprintln!("the_suite_catches_each_flaw: the panics printed below are expected");
    repository_conformance(&Flawed {
        inner: InMemoryWorkspace::new(),
        flaw: Flaw::None,
    })
    .await;
    for (flaw, expected) in [
        (Flaw::NoSessionLocks, "lock_session must wait"),
        (
            Flaw::UpdateIgnoresRevision,
            "a stale update must be Conflict",
        ),
        (
            Flaw::DeleteIgnoresRevision,
            "delete with a wrong revision is Conflict",
        ),
        (Flaw::DropsUnknownFields, "unknown"),
        (Flaw::ListsNewestFirst, "list keeps insertion order"),
    ] {
        let repo = Flawed {
            inner: InMemoryWorkspace::new(),
            flaw,
        };
        let message = session_testkit::suites::failure_of(
            async move { repository_conformance(&repo).await },
            &format!("a repository with {flaw:?}"),
        )
        .await;
        assert!(
            message.contains(expected),
            "{flaw:?}: unexpected failure: {message}"
        );
    }
}
