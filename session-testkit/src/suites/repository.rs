//! The conformance suite every [`WorkspaceRepository`] must pass.

use session_core::{
    Error, ProviderConfig, Session, SessionId, SessionStatus, SessionType, SystemClock,
    WorkspaceRepository, WorkspaceRepositoryExt,
};
use std::time::Duration;

use time::OffsetDateTime;

fn now() -> OffsetDateTime {
    use session_core::Clock;
    SystemClock.now()
}

fn new_session(name: &str) -> Session {
    Session::new(name, SessionType::AwsIamUser).expect("valid test session")
}

/// Runs every check below on an **empty** repository. Call it with the
/// concrete type, a `Box<dyn WorkspaceRepository>` and an
/// `Arc<dyn WorkspaceRepository>`.
pub async fn repository_conformance(repo: &dyn WorkspaceRepository) {
    starts_empty(repo).await;
    insert_get_list(repo).await;
    insert_refuses_duplicates_and_dangling_parents(repo).await;
    update_is_optimistic(repo).await;
    update_enforces_transitions(repo).await;
    update_refuses_type_change_and_cycles(repo).await;
    delete_rules(repo).await;
    unknown_fields_round_trip(repo).await;
    find_by_id_or_name(repo).await;
    session_lock_excludes(repo).await;
}

async fn starts_empty(repo: &dyn WorkspaceRepository) {
    let all = repo.list().await.expect("list an empty repository");
    assert!(
        all.is_empty(),
        "the suite needs an empty repository, found {}",
        all.len()
    );
    let missing = SessionId::new();
    assert!(
        matches!(repo.get(missing).await, Err(Error::NotFound { .. })),
        "get of a missing id must be NotFound"
    );
}

async fn insert_get_list(repo: &dyn WorkspaceRepository) {
    let a = repo
        .insert(new_session("order-a").with_region("eu-west-1"))
        .await
        .expect("insert a");
    let b = repo.insert(new_session("order-b")).await.expect("insert b");
    let c = repo.insert(new_session("order-c")).await.expect("insert c");
    assert_eq!(a.revision(), 1, "insert sets revision 1");
    let got = repo.get(a.session_id).await.expect("get a");
    assert_eq!(got, a, "get returns what insert stored");
    assert_eq!(got.region.as_deref(), Some("eu-west-1"));
    let ids: Vec<_> = repo
        .list()
        .await
        .expect("list")
        .iter()
        .map(|s| s.session_id)
        .collect();
    let pos = |id| ids.iter().position(|x| *x == id).expect("listed");
    assert!(
        pos(a.session_id) < pos(b.session_id) && pos(b.session_id) < pos(c.session_id),
        "list keeps insertion order"
    );
    for s in [a, b, c] {
        repo.delete(s.session_id, None).await.expect("clean up");
    }
}

async fn insert_refuses_duplicates_and_dangling_parents(repo: &dyn WorkspaceRepository) {
    let a = repo.insert(new_session("dup")).await.expect("insert");
    let mut again = a.clone();
    again.session_name = "dup-2".into();
    assert!(
        matches!(repo.insert(again).await, Err(Error::AlreadyExists { .. })),
        "a second insert with the same id must be AlreadyExists"
    );
    let orphan = new_session("orphan").with_parent(SessionId::new());
    match repo.insert(orphan).await {
        Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "parentSessionId"),
        other => panic!("a missing parent must be InvalidInput, got {other:?}"),
    }
    assert_eq!(
        repo.list().await.expect("list").len(),
        1,
        "failed inserts store nothing"
    );
    repo.delete(a.session_id, None).await.expect("clean up");
}

async fn update_is_optimistic(repo: &dyn WorkspaceRepository) {
    let stored = repo.insert(new_session("occ")).await.expect("insert");
    let mut first = stored.clone();
    first.region = Some("us-east-1".into());
    let first = repo
        .update(first)
        .await
        .expect("update with the current revision");
    assert_eq!(first.revision(), 2, "update bumps the revision");
    let mut stale = stored.clone();
    stale.region = Some("ap-south-1".into());
    match repo.update(stale).await {
        Err(Error::Conflict {
            expected, found, ..
        }) => {
            assert_eq!((expected, found), (1, 2), "Conflict reports both revisions");
        }
        other => panic!("a stale update must be Conflict, got {other:?}"),
    }
    let now = repo.get(stored.session_id).await.expect("get");
    assert_eq!(
        now.region.as_deref(),
        Some("us-east-1"),
        "a refused update changes nothing"
    );
    // Two writers racing from the same read: exactly one wins.
    let mut x = now.clone();
    x.region = Some("x".into());
    let mut y = now.clone();
    y.region = Some("y".into());
    let (rx, ry) = futures::future::join(repo.update(x), repo.update(y)).await;
    assert!(
        rx.is_ok() != ry.is_ok(),
        "exactly one of two racing updates wins: {rx:?} / {ry:?}"
    );
    repo.delete(stored.session_id, None)
        .await
        .expect("clean up");
}

async fn update_enforces_transitions(repo: &dyn WorkspaceRepository) {
    let stored = repo
        .insert(new_session("transitions"))
        .await
        .expect("insert");
    let mut jump = stored.clone();
    jump.restore_status(SessionStatus::Active);
    match repo.update(jump).await {
        Err(Error::InvalidTransition { from, to, .. }) => {
            assert_eq!((from, to), (SessionStatus::Inactive, SessionStatus::Active));
        }
        other => panic!("inactive -> active must be refused, got {other:?}"),
    }
    let mut current = repo.get(stored.session_id).await.expect("get");
    assert_eq!(
        current.status(),
        SessionStatus::Inactive,
        "a refused transition changes nothing"
    );
    for to in [
        SessionStatus::Pending,
        SessionStatus::Active,
        SessionStatus::Rotating,
        SessionStatus::Active,
        SessionStatus::Expired,
        SessionStatus::Stopping,
        SessionStatus::Inactive,
    ] {
        current.transition(to, now()).expect("legal in the table");
        current = repo
            .update(current)
            .await
            .unwrap_or_else(|e| panic!("legal transition to {to} refused: {e}"));
        assert_eq!(current.status(), to);
    }
    repo.delete(stored.session_id, None)
        .await
        .expect("clean up");
}

async fn update_refuses_type_change_and_cycles(repo: &dyn WorkspaceRepository) {
    let a = repo.insert(new_session("cycle-a")).await.expect("insert a");
    let b = repo
        .insert(new_session("cycle-b").with_parent(a.session_id))
        .await
        .expect("insert b");
    let mut loop_back = repo.get(a.session_id).await.expect("get a");
    loop_back.parent_session_id = Some(b.session_id);
    assert!(
        matches!(
            repo.update(loop_back).await,
            Err(Error::InvalidInput { .. })
        ),
        "a parent cycle must be refused"
    );
    let mut retyped = repo.get(a.session_id).await.expect("get a");
    retyped.session_type = SessionType::Redfish;
    assert!(
        matches!(repo.update(retyped).await, Err(Error::InvalidInput { .. })),
        "changing the type must be refused"
    );
    let mut deleted = repo.get(b.session_id).await.expect("get b");
    repo.delete(b.session_id, None).await.expect("delete b");
    deleted.region = Some("gone".into());
    assert!(
        matches!(repo.update(deleted).await, Err(Error::NotFound { .. })),
        "updating a deleted session must be NotFound"
    );
    repo.delete(a.session_id, None).await.expect("clean up");
}

async fn delete_rules(repo: &dyn WorkspaceRepository) {
    let parent = repo
        .insert(new_session("del-parent"))
        .await
        .expect("insert");
    let child = repo
        .insert(new_session("del-child").with_parent(parent.session_id))
        .await
        .expect("insert");
    assert!(
        matches!(
            repo.delete(parent.session_id, None).await,
            Err(Error::InvalidInput { .. })
        ),
        "a parent with children cannot be deleted"
    );
    assert!(
        matches!(
            repo.delete(child.session_id, Some(7)).await,
            Err(Error::Conflict { .. })
        ),
        "delete with a wrong revision is Conflict"
    );
    let removed = repo
        .delete(child.session_id, Some(child.revision()))
        .await
        .expect("delete child");
    assert_eq!(
        removed.session_id, child.session_id,
        "delete returns what was stored"
    );
    assert!(matches!(
        repo.get(child.session_id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(
        matches!(
            repo.delete(child.session_id, None).await,
            Err(Error::NotFound { .. })
        ),
        "deleting twice is NotFound"
    );
    repo.delete(parent.session_id, None)
        .await
        .expect("now the parent can go");
    assert!(repo.list().await.expect("list").is_empty());
}

async fn unknown_fields_round_trip(repo: &dyn WorkspaceRepository) {
    // A session as a newer version would write it: an unknown session type,
    // an unknown top-level field and an unknown config key.
    let id = SessionId::new();
    let json = serde_json::json!({
        "sessionId": id,
        "sessionName": "from-the-future",
        "sessionType": "gcpServiceAccount",
        "status": "inactive",
        "config": {"projectId": "p-1", "addedLater": {"nested": [1, 2]}},
        "revision": 0,
        "futureField": {"keep": true}
    });
    let session: Session = serde_json::from_value(json).expect("parse a newer session");
    assert_eq!(
        session.session_type,
        SessionType::Other("gcpServiceAccount".into())
    );
    repo.insert(session).await.expect("insert");
    let back = serde_json::to_value(repo.get(id).await.expect("get")).expect("serialize");
    assert_eq!(back["sessionType"], "gcpServiceAccount");
    assert_eq!(
        back["futureField"]["keep"], true,
        "unknown top-level fields survive"
    );
    assert_eq!(
        back["config"]["addedLater"]["nested"][1], 2,
        "unknown config keys survive"
    );
    let config: ProviderConfig = serde_json::from_value(back["config"].clone()).expect("config");
    assert_eq!(config.get_str("projectId"), Some("p-1"));
    repo.delete(id, None).await.expect("clean up");
}

async fn find_by_id_or_name(repo: &dyn WorkspaceRepository) {
    let one = repo
        .insert(new_session("unique-name"))
        .await
        .expect("insert");
    let twin_a = repo.insert(new_session("twin")).await.expect("insert");
    let twin_b = repo.insert(new_session("twin")).await.expect("insert");
    assert_eq!(
        repo.find("unique-name").await.expect("by name").session_id,
        one.session_id
    );
    assert_eq!(
        repo.find(&twin_a.session_id.to_string())
            .await
            .expect("by id")
            .session_id,
        twin_a.session_id
    );
    match repo.find("twin").await {
        Err(Error::InvalidInput { reason, .. }) => {
            assert!(reason.contains("use the id"), "{reason}")
        }
        other => panic!("an ambiguous name must be InvalidInput, got {other:?}"),
    }
    match repo.find("nobody").await {
        Err(e @ Error::NotFound { .. }) => assert!(e.to_string().contains("nobody"), "{e}"),
        other => panic!("an unknown name must be NotFound, got {other:?}"),
    }
    for s in [one, twin_a, twin_b] {
        repo.delete(s.session_id, None).await.expect("clean up");
    }
}

/// How long a second `lock_session` must stay pending while the first is
/// held (a repository that locks nothing returns at once).
const HELD_FOR: Duration = Duration::from_millis(300);

async fn session_lock_excludes(repo: &dyn WorkspaceRepository) {
    let a = repo.insert(new_session("lock-a")).await.expect("insert a");
    let b = repo.insert(new_session("lock-b")).await.expect("insert b");
    let held = repo.lock_session(a.session_id).await.expect("lock a");

    let mut second = std::pin::pin!(repo.lock_session(a.session_id));
    assert!(
        tokio::time::timeout(HELD_FOR, &mut second).await.is_err(),
        "lock_session must wait while another holder has the session's lock"
    );
    let other = tokio::time::timeout(Duration::from_secs(10), repo.lock_session(b.session_id))
        .await
        .expect("another session's lock is independent")
        .expect("lock b");
    drop(other);

    drop(held);
    let again = tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("the waiter gets the lock once it is released")
        .expect("lock a again");
    drop(again);
    for s in [a, b] {
        repo.delete(s.session_id, None).await.expect("clean up");
    }
}
