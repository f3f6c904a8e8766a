//! The manager's ordering promises, with the test provider held mid-call:
//! different operations on one session run one after another (a `stop`
//! issued during a `start` waits for it), concurrent calls of one operation
//! share one provider call, and a rotation scheduler sees sessions another
//! process started in a shared workspace file.

use std::sync::Arc;
use std::time::Duration;

use session_core::{
    Clock, FsWorkspace, InMemorySecretStore, InMemoryWorkspace, ManualClock, RotationPolicy,
    RotationScheduler, SecretStore, Session, SessionEventKind, SessionManager, SessionStatus,
    SessionType, WorkspaceRepository,
};
use session_testkit::doubles::{TokenConfig, TokenProvider};
use tokio::sync::Semaphore;

fn test_type() -> SessionType {
    SessionType::Other("test".into())
}

fn manager_with(
    provider: Arc<TokenProvider>,
    repository: Arc<dyn WorkspaceRepository>,
    secrets: Arc<dyn SecretStore>,
    clock: Arc<ManualClock>,
) -> SessionManager {
    SessionManager::builder()
        .repository(repository)
        .secrets(secrets)
        .clock(clock)
        .provider(provider)
        .build()
        .expect("manager")
}

fn manager(provider: Arc<TokenProvider>) -> SessionManager {
    manager_with(
        provider,
        Arc::new(InMemoryWorkspace::new()),
        Arc::new(InMemorySecretStore::new()),
        Arc::new(ManualClock::new(
            time::macros::datetime!(2030-01-01 0:00 UTC),
        )),
    )
}

async fn add(manager: &SessionManager, name: &str) -> Session {
    let session = Session::new(name, test_type())
        .expect("session")
        .with_config(&TokenConfig::default())
        .expect("config");
    manager.add(session).await.expect("add")
}

/// Polls `condition` (briefly, in real time) until it holds.
async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..2500 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("never happened: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_issued_during_a_start_runs_after_it() {
    let gate = Arc::new(Semaphore::new(0));
    let provider = Arc::new(
        TokenProvider::new(test_type(), Duration::from_secs(3600)).with_start_gate(gate.clone()),
    );
    let manager = manager(provider.clone());
    add(&manager, "s").await;
    let mut events = manager.subscribe();

    let starting = tokio::spawn({
        let manager = manager.clone();
        async move { manager.start("s").await }
    });
    until("the provider's start was called", || {
        provider.calls.get().0 == 1
    })
    .await;
    let stopping = tokio::spawn({
        let manager = manager.clone();
        async move { manager.stop("s").await }
    });
    // The stop waits for the start: the provider sees no stop meanwhile.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !stopping.is_finished(),
        "stop waits for the start in flight"
    );
    assert_eq!(provider.calls.get(), (1, 0, 0), "no stop while starting");

    gate.add_permits(1);
    let started = starting.await.expect("join").expect("start");
    assert_eq!(started.status(), SessionStatus::Active);
    let stopped = stopping.await.expect("join").expect("stop");
    assert_eq!(stopped.status(), SessionStatus::Inactive);
    assert_eq!(provider.calls.get(), (1, 1, 0), "one start, then one stop");
    let kinds: Vec<SessionEventKind> = [events.recv().await, events.recv().await]
        .into_iter()
        .map(|e| e.expect("event").kind)
        .filter(|k| matches!(k, SessionEventKind::Started | SessionEventKind::Stopped))
        .collect();
    assert!(
        matches!(
            kinds.as_slice(),
            [SessionEventKind::Started, SessionEventKind::Stopped]
        ),
        "started, then stopped: {kinds:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_rotates_share_one_call_and_so_do_concurrent_stops() {
    let rotate_gate = Arc::new(Semaphore::new(0));
    let stop_gate = Arc::new(Semaphore::new(0));
    let provider = Arc::new(
        TokenProvider::new(test_type(), Duration::from_secs(3600))
            .with_rotate_gate(rotate_gate.clone())
            .with_stop_gate(stop_gate.clone()),
    );
    let manager = manager(provider.clone());
    add(&manager, "s").await;
    manager.start("s").await.expect("start");

    for (operation, gate) in [("rotate", &rotate_gate), ("stop", &stop_gate)] {
        let callers: Vec<_> = (0..5)
            .map(|_| {
                let manager = manager.clone();
                tokio::spawn(async move {
                    match operation {
                        "rotate" => manager.rotate("s").await,
                        _ => manager.stop("s").await,
                    }
                })
            })
            .collect();
        let calls = |p: &TokenProvider| match operation {
            "rotate" => p.calls.get().2,
            _ => p.calls.get().1,
        };
        until("the provider was called", || calls(&provider) == 1).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            callers.iter().all(|c| !c.is_finished()),
            "{operation}: every caller waits for the one call"
        );
        gate.add_permits(5);
        let mut results = Vec::new();
        for caller in callers {
            results.push(caller.await.expect("join").expect(operation));
        }
        assert_eq!(calls(&provider), 1, "{operation}: five callers, one call");
        assert!(
            results.iter().all(|s| s == &results[0]),
            "{operation}: everyone gets the same result"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_rotates_a_session_another_process_started() {
    // Two managers on one workspace file and one secrets store, as two
    // processes are: the one with the scheduler never started the session.
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("w.json");
    let clock = Arc::new(ManualClock::new(
        time::macros::datetime!(2030-01-01 0:00 UTC),
    ));
    let secrets: Arc<dyn SecretStore> = Arc::new(InMemorySecretStore::new());
    let here = Arc::new(TokenProvider::new(test_type(), Duration::from_secs(3600)));
    let there = Arc::new(TokenProvider::new(test_type(), Duration::from_secs(3600)));
    let scheduling = manager_with(
        here.clone(),
        Arc::new(FsWorkspace::open(&path).expect("open")),
        secrets.clone(),
        clock.clone(),
    );
    let other_process = manager_with(
        there.clone(),
        Arc::new(FsWorkspace::open(&path).expect("open")),
        secrets,
        clock.clone(),
    );
    let scheduler = RotationScheduler::spawn(
        scheduling.clone(),
        RotationPolicy::default()
            .with_window(Duration::from_secs(300))
            .with_jitter(Duration::ZERO)
            .with_rescan(Duration::from_secs(60)),
    );
    until("the scheduler is asleep", || clock.sleepers_ahead() > 0).await;

    add(&other_process, "shared").await;
    let started = other_process.start("shared").await.expect("start");
    assert_eq!(there.calls.get().0, 1);
    let mut events = scheduling.subscribe();

    // The next rescan finds it; the rotation is due at expiry - window.
    clock.advance(Duration::from_secs(60));
    until("the rescan is done", || clock.sleepers_ahead() > 0).await;
    assert_eq!(here.calls.get().2, 0, "not due yet");
    let due = started.expiration.expect("expiry") - Duration::from_secs(300);
    clock.set(due);
    let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("a rotation within 10 s of real time")
        .expect("event");
    assert!(matches!(event.kind, SessionEventKind::Rotated), "{event:?}");
    assert_eq!(here.calls.get().2, 1, "rotated by the scheduling process");
    let seen_there = other_process.find("shared").await.expect("find");
    assert_eq!(seen_there.status(), SessionStatus::Active);
    assert_eq!(
        seen_there.expiration,
        Some(clock.now() + Duration::from_secs(3600)),
        "the other process reads the rotated expiry from the file"
    );
    scheduler.shutdown().await;
}
