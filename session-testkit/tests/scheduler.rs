//! The rotation scheduler, driven by a manual clock: no test sleeps for the
//! lifetimes involved.

use std::sync::Arc;
use std::time::Duration;

use session_core::{
    Clock, InMemorySecretStore, InMemoryWorkspace, ManualClock, RotationPolicy, RotationScheduler,
    Session, SessionEventKind, SessionManager, SessionStatus, SessionType, WorkspaceRepository,
};
use session_testkit::doubles::{TokenConfig, TokenProvider};

const T0: time::OffsetDateTime = time::macros::datetime!(2030-01-01 0:00 UTC);

fn setup(
    lifetime: Duration,
) -> (
    SessionManager,
    Arc<TokenProvider>,
    Arc<ManualClock>,
    Arc<InMemoryWorkspace>,
) {
    let provider = Arc::new(TokenProvider::new(
        SessionType::Other("test".into()),
        lifetime,
    ));
    let clock = Arc::new(ManualClock::new(T0));
    let repo = Arc::new(InMemoryWorkspace::new());
    let manager = SessionManager::builder()
        .repository(repo.clone())
        .secrets(Arc::new(InMemorySecretStore::new()))
        .clock(clock.clone())
        .provider(provider.clone())
        .build()
        .expect("manager");
    (manager, provider, clock, repo)
}

/// Waits until the scheduler has done what is due and is asleep on the
/// clock until a time still ahead: an event, not a grace period.
async fn until_asleep(clock: &ManualClock) {
    for _ in 0..2500 {
        if clock.sleepers_ahead() > 0 {
            return;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("the scheduler never went to sleep");
}

fn policy() -> RotationPolicy {
    RotationPolicy::default()
        .with_window(Duration::from_secs(300))
        .with_jitter(Duration::ZERO)
        .with_rescan(Duration::from_secs(3600 * 24))
}

#[tokio::test]
async fn rotates_at_expiration_minus_window() {
    let (manager, provider, clock, repo) = setup(Duration::from_secs(3600));
    let session = manager
        .add(Session::new("rotating", SessionType::Other("test".into())).expect("s"))
        .await
        .expect("add");
    manager.start("rotating").await.expect("start");
    let mut events = manager.subscribe();
    let scheduler = RotationScheduler::spawn(manager.clone(), policy());

    until_asleep(&clock).await;
    clock.advance(Duration::from_secs(54 * 60 + 59));
    until_asleep(&clock).await;
    assert_eq!(
        provider.calls.get().2,
        0,
        "not due before expiration - window"
    );

    clock.advance(Duration::from_secs(1));
    let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("a rotation within 5 s of real time")
        .expect("event");
    assert!(matches!(event.kind, SessionEventKind::Rotated), "{event:?}");
    assert_eq!(provider.calls.get().2, 1);
    let stored = repo.get(session.session_id).await.expect("get");
    assert_eq!(stored.status(), SessionStatus::Active);
    assert_eq!(
        stored.expiration,
        Some(clock.now() + Duration::from_secs(3600)),
        "new expiry from the rotation time"
    );

    until_asleep(&clock).await;
    assert_eq!(
        provider.calls.get().2,
        1,
        "no second rotation right after the first"
    );
    scheduler.shutdown().await;
}

#[tokio::test]
async fn short_lived_credentials_rotate_at_a_quarter_left_and_failures_back_off_exponentially() {
    let (manager, provider, clock, repo) = setup(Duration::from_secs(240));
    let session = manager
        .add(Session::new("short", SessionType::Other("test".into())).expect("s"))
        .await
        .expect("add");
    manager.start("short").await.expect("start");
    let scheduler = RotationScheduler::spawn(
        manager.clone(),
        policy().with_retry_after(Duration::from_secs(60)),
    );
    until_asleep(&clock).await;
    // 4-minute credentials, 5-minute window: due when 1 minute is left.
    clock.advance(Duration::from_secs(179));
    until_asleep(&clock).await;
    assert_eq!(
        provider.calls.get().2,
        0,
        "not due with more than a quarter left"
    );

    // Make rotation fail, then let it fall due.
    let mut stored = repo.get(session.session_id).await.expect("get");
    stored
        .config
        .set(&TokenConfig {
            fail_rotate: true,
            ..Default::default()
        })
        .expect("config");
    repo.update(stored).await.expect("update");
    clock.advance(Duration::from_secs(1));
    until_asleep(&clock).await;
    wait_for_calls(&provider, 1).await;
    clock.advance(Duration::from_secs(30));
    until_asleep(&clock).await;
    assert_eq!(provider.calls.get().2, 1, "no retry before retry_after");
    clock.advance(Duration::from_secs(30));
    wait_for_calls(&provider, 2).await;
    // A second failure in a row doubles the wait: 120 s, not 60 s.
    until_asleep(&clock).await;
    clock.advance(Duration::from_secs(61));
    until_asleep(&clock).await;
    assert_eq!(provider.calls.get().2, 2, "backed off past retry_after");
    clock.advance(Duration::from_secs(60));
    wait_for_calls(&provider, 3).await;
    scheduler.shutdown().await;
}

/// A scheduler started after the session was last rotated (a restarted
/// process) knows the credentials' lifetime from the session's `issuedAt`,
/// not from its start long before: 4-minute credentials issued at 180 s
/// are due at a quarter left (360 s), not at once.
#[tokio::test]
async fn a_scheduler_started_later_reads_the_lifetime_from_issued_at() {
    let (manager, provider, clock, repo) = setup(Duration::from_secs(240));
    let session = manager
        .add(Session::new("restarted", SessionType::Other("test".into())).expect("s"))
        .await
        .expect("add");
    manager.start("restarted").await.expect("start");
    clock.advance(Duration::from_secs(180));
    manager.rotate("restarted").await.expect("rotate by hand");
    let rotated = repo.get(session.session_id).await.expect("get");
    assert_eq!(rotated.issued_at, Some(clock.now()), "recorded");
    assert_eq!(rotated.start_date_time, Some(T0), "started long before");

    let scheduler = RotationScheduler::spawn(manager.clone(), policy());
    until_asleep(&clock).await;
    clock.advance(Duration::from_secs(179));
    until_asleep(&clock).await;
    assert_eq!(
        provider.calls.get().2,
        1,
        "not due with more than a quarter left"
    );
    clock.advance(Duration::from_secs(1));
    wait_for_calls(&provider, 2).await;
    scheduler.shutdown().await;
}

async fn wait_for_calls(provider: &TokenProvider, rotations: usize) {
    for _ in 0..1000 {
        if provider.calls.get().2 >= rotations {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!(
        "expected {rotations} rotations, saw {}",
        provider.calls.get().2
    );
}

#[tokio::test]
async fn shutdown_is_prompt_and_clean() {
    let (manager, _provider, clock, _repo) = setup(Duration::from_secs(3600));
    let scheduler = RotationScheduler::spawn(manager, RotationPolicy::default());
    until_asleep(&clock).await;
    tokio::time::timeout(Duration::from_secs(2), scheduler.shutdown())
        .await
        .expect("shutdown returns while the scheduler sleeps");
    assert_eq!(clock.sleepers(), 0, "the task no longer waits on the clock");
}

#[test]
fn jitter_stays_within_bounds_and_is_deterministic() {
    let policy = RotationPolicy::default()
        .with_window(Duration::from_secs(300))
        .with_jitter(Duration::from_secs(60));
    let expiration = T0 + Duration::from_secs(3600);
    let mut distinct = std::collections::HashSet::new();
    for _ in 0..200 {
        let mut s = Session::new("j", SessionType::Other("test".into())).expect("s");
        s.transition(SessionStatus::Pending, T0).expect("t");
        s.transition(SessionStatus::Active, T0).expect("t");
        s.expiration = Some(expiration);
        let due = policy.due_at(&s, None).expect("due");
        assert!(
            due <= expiration - Duration::from_secs(300),
            "never later than the window"
        );
        assert!(
            due > expiration - Duration::from_secs(360),
            "at most the jitter earlier"
        );
        assert_eq!(policy.due_at(&s, None), Some(due), "deterministic");
        distinct.insert(due);
    }
    assert!(
        distinct.len() > 50,
        "sessions are spread out ({} distinct times)",
        distinct.len()
    );
}

#[tokio::test]
async fn a_scheduler_for_some_sessions_leaves_the_others_alone() {
    let (manager, provider, clock, repo) = setup(Duration::from_secs(3600));
    let mut ids = Vec::new();
    for name in ["mine", "theirs"] {
        let session = Session::new(name, SessionType::Other("test".into())).expect("s");
        ids.push(manager.add(session).await.expect("add").session_id);
        manager.start(name).await.expect("start");
    }
    let mut events = manager.subscribe();
    let scheduler = RotationScheduler::spawn_for(manager.clone(), policy(), [ids[0]]);
    until_asleep(&clock).await;
    clock.advance(Duration::from_secs(55 * 60));
    let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("a rotation within 5 s of real time")
        .expect("event");
    assert!(matches!(event.kind, SessionEventKind::Rotated), "{event:?}");
    assert_eq!(event.session_id, ids[0]);
    until_asleep(&clock).await;
    assert_eq!(provider.calls.get().2, 1, "only the listed session rotated");
    let theirs = repo.get(ids[1]).await.expect("get");
    assert_eq!(
        theirs.expiration,
        Some(T0 + Duration::from_secs(3600)),
        "the other session keeps its credentials"
    );
    scheduler.shutdown().await;
}
