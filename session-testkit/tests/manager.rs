//! The session manager with the test provider: persistence, single-flight,
//! failure handling, parents, removal and events.

use std::sync::Arc;
use std::time::Duration;

use session_core::{
    Error, InMemorySecretStore, InMemoryWorkspace, ManualClock, Operation, SecretKey, SecretStore,
    Session, SessionEventKind, SessionManager, SessionStatus, SessionType, WorkspaceRepository,
};
use session_testkit::doubles::{TOKEN_SECRET, TokenConfig, TokenProvider};
use tokio::sync::Semaphore;

fn test_type() -> SessionType {
    SessionType::Other("test".into())
}

struct Rig {
    manager: SessionManager,
    provider: Arc<TokenProvider>,
    repo: Arc<InMemoryWorkspace>,
    secrets: Arc<InMemorySecretStore>,
    clock: Arc<ManualClock>,
}

fn rig(provider: TokenProvider) -> Rig {
    let provider = Arc::new(provider);
    let repo = Arc::new(InMemoryWorkspace::new());
    let secrets = Arc::new(InMemorySecretStore::new());
    let clock = Arc::new(ManualClock::new(
        time::macros::datetime!(2030-01-01 0:00 UTC),
    ));
    let manager = SessionManager::builder()
        .repository(repo.clone())
        .secrets(secrets.clone())
        .clock(clock.clone())
        .provider(provider.clone())
        .build()
        .expect("manager");
    Rig {
        manager,
        provider,
        repo,
        secrets,
        clock,
    }
}

fn hour_provider() -> TokenProvider {
    TokenProvider::new(test_type(), Duration::from_secs(3600))
}

async fn add(rig: &Rig, name: &str, config: TokenConfig) -> Session {
    let session = Session::new(name, test_type())
        .expect("session")
        .with_config(&config)
        .expect("config");
    rig.manager.add(session).await.expect("add")
}

async fn token(rig: &Rig, session: &Session) -> Option<String> {
    let key = SecretKey::new(session.session_id, TOKEN_SECRET).expect("key");
    rig.secrets
        .get(&key)
        .await
        .expect("get")
        .map(|s| s.expose().to_owned())
}

#[tokio::test]
async fn start_rotate_stop_persist_and_publish() {
    let rig = rig(hour_provider());
    let mut events = rig.manager.subscribe();
    let session = add(&rig, "life", TokenConfig::default()).await;

    let started = rig.manager.start("life").await.expect("start");
    assert_eq!(started.status(), SessionStatus::Active);
    assert_eq!(
        started.start_date_time,
        Some(time::macros::datetime!(2030-01-01 0:00 UTC))
    );
    assert_eq!(
        started.expiration,
        Some(time::macros::datetime!(2030-01-01 1:00 UTC))
    );
    assert_eq!(
        rig.repo.get(session.session_id).await.expect("get"),
        started,
        "the result is persisted"
    );
    let first = token(&rig, &session).await.expect("a token after start");

    rig.clock.advance(Duration::from_secs(600));
    let rotated = rig
        .manager
        .rotate(&session.session_id.to_string())
        .await
        .expect("rotate");
    assert_eq!(rotated.status(), SessionStatus::Active);
    assert_eq!(
        rotated.expiration,
        Some(time::macros::datetime!(2030-01-01 1:10 UTC))
    );
    assert_eq!(
        rotated.start_date_time, started.start_date_time,
        "rotation keeps the start time"
    );
    assert_ne!(
        token(&rig, &session).await.expect("a token after rotate"),
        first
    );

    let stopped = rig.manager.stop("life").await.expect("stop");
    assert_eq!(stopped.status(), SessionStatus::Inactive);
    assert_eq!((stopped.start_date_time, stopped.expiration), (None, None));
    assert!(
        token(&rig, &session).await.is_none(),
        "stop removes the token"
    );
    let again = rig.manager.stop("life").await.expect("stop is idempotent");
    assert_eq!(again.status(), SessionStatus::Inactive);
    assert_eq!(
        rig.provider.calls.get(),
        (1, 1, 1),
        "a stop of an inactive session calls nobody"
    );

    let kinds: Vec<String> = std::iter::from_fn(|| events.try_recv().ok())
        .map(|e| format!("{:?}/{}", e.kind, e.status))
        .collect();
    assert_eq!(
        kinds,
        ["Started/active", "Rotated/active", "Stopped/inactive"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_starts_make_one_provider_call() {
    let gate = Arc::new(Semaphore::new(0));
    let rig = rig(hour_provider().with_start_gate(gate.clone()));
    let session = add(&rig, "busy", TokenConfig::default()).await;

    let callers: Vec<_> = (0..10)
        .map(|_| {
            let manager = rig.manager.clone();
            tokio::spawn(async move { manager.start("busy").await })
        })
        .collect();
    // While the provider is held, the session is persisted as pending.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while rig
        .repo
        .get(session.session_id)
        .await
        .expect("get")
        .status()
        != SessionStatus::Pending
    {
        assert!(
            std::time::Instant::now() < deadline,
            "pending was never persisted"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        callers.iter().all(|c| !c.is_finished()),
        "every caller waits for the one flight"
    );
    gate.add_permits(10);
    let mut results = Vec::new();
    for caller in callers {
        results.push(caller.await.expect("join").expect("start"));
    }
    assert_eq!(
        rig.provider.calls.get().0,
        1,
        "one provider call for ten starts"
    );
    assert!(
        results.iter().all(|s| s == &results[0]),
        "everyone gets the same result"
    );
    assert_eq!(results[0].status(), SessionStatus::Active);
}

#[tokio::test]
async fn failed_start_returns_to_inactive_with_the_error() {
    let rig = rig(hour_provider());
    let mut events = rig.manager.subscribe();
    let session = add(
        &rig,
        "refused",
        TokenConfig {
            fail_start: true,
            ..Default::default()
        },
    )
    .await;
    match rig.manager.start("refused").await {
        Err(e @ Error::Unauthenticated { .. }) => assert!(e.to_string().contains("refused"), "{e}"),
        other => panic!("expected Unauthenticated, got {other:?}"),
    }
    let stored = rig.repo.get(session.session_id).await.expect("get");
    assert_eq!(stored.status(), SessionStatus::Inactive);
    let last = stored.last_error.clone().expect("the error is recorded");
    assert_eq!(
        (last.operation.as_str(), last.category.as_str()),
        ("start", "unauthenticated")
    );
    let event = events.try_recv().expect("a failed event");
    assert!(matches!(
        event.kind,
        SessionEventKind::Failed {
            operation: Operation::Start,
            ..
        }
    ));

    // Fixing the config and starting again clears the error.
    let mut fixed = stored.clone();
    fixed.config.set(&TokenConfig::default()).expect("config");
    rig.repo.update(fixed).await.expect("update");
    let started = rig.manager.start("refused").await.expect("start");
    assert!(started.last_error.is_none(), "success clears last_error");
}

#[tokio::test]
async fn failed_rotate_keeps_valid_credentials_then_expires() {
    let rig = rig(hour_provider());
    let session = add(&rig, "flaky", TokenConfig::default()).await;
    rig.manager.start("flaky").await.expect("start");
    let first = token(&rig, &session).await;
    let mut broken = rig.repo.get(session.session_id).await.expect("get");
    broken
        .config
        .set(&TokenConfig {
            fail_rotate: true,
            ..Default::default()
        })
        .expect("config");
    rig.repo.update(broken).await.expect("update");

    let err = rig.manager.rotate("flaky").await.expect_err("rotate fails");
    assert!(err.is_retryable(), "Unavailable is retryable");
    let stored = rig.repo.get(session.session_id).await.expect("get");
    assert_eq!(
        stored.status(),
        SessionStatus::Active,
        "still valid: back to active"
    );
    assert_eq!(
        token(&rig, &session).await,
        first,
        "the old credentials are untouched"
    );
    assert_eq!(stored.last_error.expect("recorded").operation, "rotate");

    rig.clock.advance(Duration::from_secs(3601));
    rig.manager
        .rotate("flaky")
        .await
        .expect_err("rotate fails again");
    let stored = rig.repo.get(session.session_id).await.expect("get");
    assert_eq!(
        stored.status(),
        SessionStatus::Expired,
        "past expiry: expired"
    );
}

#[tokio::test]
async fn missing_provider_and_illegal_operations_change_nothing() {
    let rig = rig(hour_provider());
    let orphan = rig
        .manager
        .add(Session::new("bmc", SessionType::Redfish).expect("session"))
        .await
        .expect("add");
    match rig.manager.start("bmc").await {
        Err(e @ Error::Unsupported { .. }) => {
            let text = e.to_string();
            assert!(text.contains("redfish") && text.contains("bmc"), "{text}");
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
    assert_eq!(
        rig.repo.get(orphan.session_id).await.expect("get"),
        orphan,
        "nothing persisted"
    );

    add(&rig, "idle", TokenConfig::default()).await;
    match rig.manager.rotate("idle").await {
        Err(Error::InvalidTransition { from, to, .. }) => {
            assert_eq!(
                (from, to),
                (SessionStatus::Inactive, SessionStatus::Rotating)
            );
        }
        other => panic!("rotating an inactive session must be InvalidTransition, got {other:?}"),
    }
    assert_eq!(rig.provider.calls.get(), (0, 0, 0));
}

#[tokio::test]
async fn starting_a_child_starts_its_parent() {
    let rig = rig(hour_provider());
    let parent = add(&rig, "parent", TokenConfig::default()).await;
    let child = rig
        .manager
        .add(
            Session::new("child", test_type())
                .expect("session")
                .with_parent(parent.session_id),
        )
        .await
        .expect("add child");
    rig.manager.start("child").await.expect("start child");
    assert_eq!(
        rig.repo.get(parent.session_id).await.expect("get").status(),
        SessionStatus::Active
    );
    assert_eq!(
        rig.repo.get(child.session_id).await.expect("get").status(),
        SessionStatus::Active
    );
    assert_eq!(rig.provider.calls.get().0, 2);
    // Rotating the child hands the provider its parent too.
    rig.manager.rotate("child").await.expect("rotate child");
    assert_eq!(rig.provider.calls.get().2, 1);

    match rig.manager.remove("parent").await {
        Err(e @ Error::InvalidInput { .. }) => assert!(e.to_string().contains("child"), "{e}"),
        other => panic!("removing a parent must be refused, got {other:?}"),
    }
    let removed = rig.manager.remove("child").await.expect("remove child");
    assert_eq!(removed.session_id, child.session_id);
    assert!(
        token(&rig, &child).await.is_none(),
        "remove stops and deletes the secrets"
    );
    assert_eq!(
        rig.provider.calls.get().1,
        1,
        "remove stopped the live child"
    );
    rig.manager
        .remove("parent")
        .await
        .expect("now the parent can go");
    assert!(rig.repo.list().await.expect("list").is_empty());
}

#[tokio::test]
async fn builder_validates() {
    let err = SessionManager::builder()
        .build()
        .expect_err("no repository");
    assert!(err.to_string().contains("repository"), "{err}");
    let err = SessionManager::builder()
        .repository(Arc::new(InMemoryWorkspace::new()))
        .provider(Arc::new(hour_provider()))
        .provider(Arc::new(hour_provider()))
        .build()
        .expect_err("two providers for one type");
    assert!(err.to_string().contains("test"), "{err}");
}

#[tokio::test]
async fn start_of_an_active_session_past_its_expiry_starts_it_again() {
    let rig = rig(hour_provider());
    let parent = add(&rig, "stale-parent", TokenConfig::default()).await;
    rig.manager
        .add(
            Session::new("stale-child", test_type())
                .expect("session")
                .with_parent(parent.session_id),
        )
        .await
        .expect("add child");
    rig.manager.start("stale-child").await.expect("start");
    assert_eq!(rig.provider.calls.get().0, 2);

    // Nobody rotated for two hours: both are stored active but expired.
    rig.clock.advance(Duration::from_secs(7200));
    assert_eq!(
        rig.manager
            .start("stale-parent")
            .await
            .expect("start")
            .status(),
        SessionStatus::Active
    );
    assert_eq!(
        rig.provider.calls.get().0,
        3,
        "an expired 'active' session is started again"
    );
    let parent_now = rig.repo.get(parent.session_id).await.expect("get");
    assert_eq!(
        parent_now.expiration,
        Some(time::macros::datetime!(2030-01-01 3:00 UTC)),
        "fresh credentials"
    );
    rig.clock.advance(Duration::from_secs(7200));
    let restarted = rig.manager.start("stale-child").await.expect("start child");
    assert_eq!(
        restarted.expiration,
        Some(time::macros::datetime!(2030-01-01 5:00 UTC))
    );
    assert_eq!(
        rig.provider.calls.get().0,
        5,
        "the expired parent was started first"
    );
    assert_eq!(
        rig.repo
            .get(parent.session_id)
            .await
            .expect("get")
            .expiration,
        Some(time::macros::datetime!(2030-01-01 5:00 UTC))
    );
}
