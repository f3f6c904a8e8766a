//! Manager interactions checked with a mockall provider.

use std::sync::Arc;

use mockall::mock;
use session_core::{
    ActionContext, Capabilities, Error, InMemoryWorkspace, Result, Session, SessionAction,
    SessionManager, SessionStatus, SessionType, WorkspaceRepository,
};

mock! {
    #[derive(Debug)]
    pub Provider {}
    #[async_trait::async_trait]
    impl SessionAction for Provider {
        fn session_type(&self) -> SessionType;
        fn capabilities(&self) -> Capabilities;
        async fn start(&self, ctx: &ActionContext, session: &Session) -> Result<Session>;
        async fn stop(&self, ctx: &ActionContext, session: &Session) -> Result<Session>;
        async fn rotate(&self, ctx: &ActionContext, session: &Session) -> Result<Session>;
    }
}

fn base_mock() -> MockProvider {
    let mut mock = MockProvider::new();
    mock.expect_session_type()
        .returning(|| SessionType::Boundary);
    mock
}

/// What a working provider's start returns: the session, now active.
fn activated(s: &Session) -> Result<Session> {
    let mut s = s.clone();
    s.transition(
        SessionStatus::Active,
        time::macros::datetime!(2030-01-01 0:00 UTC),
    )?;
    Ok(s)
}

fn start_active(mock: &mut MockProvider) {
    mock.expect_start().returning(|_, s| activated(s));
}

async fn manager_with(mock: MockProvider) -> (SessionManager, Arc<InMemoryWorkspace>, Session) {
    let repo = Arc::new(InMemoryWorkspace::new());
    let manager = SessionManager::builder()
        .repository(repo.clone())
        .provider(Arc::new(mock))
        .build()
        .expect("manager");
    let session = manager
        .add(Session::new("tunnel", SessionType::Boundary).expect("s"))
        .await
        .expect("add");
    (manager, repo, session)
}

#[tokio::test]
async fn rotate_without_the_capability_never_reaches_the_provider() {
    let mut mock = base_mock();
    mock.expect_capabilities().returning(Capabilities::none);
    mock.expect_start().times(1).returning(|_, s| activated(s));
    mock.expect_rotate().never();
    let (manager, repo, session) = manager_with(mock).await;
    manager.start("tunnel").await.expect("start");
    match manager.rotate("tunnel").await {
        Err(e @ Error::Unsupported { .. }) => {
            assert!(e.to_string().contains("stop and start"), "{e}")
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
    assert_eq!(
        repo.get(session.session_id).await.expect("get").status(),
        SessionStatus::Active
    );
}

#[tokio::test]
async fn a_provider_breaking_the_contract_is_an_error_and_the_session_stays_consistent() {
    let mut mock = base_mock();
    // Every start asks whether the provider is live.
    mock.expect_capabilities().returning(Capabilities::none);
    // Returns the session still pending instead of active.
    mock.expect_start().times(1).returning(|_, s| Ok(s.clone()));
    mock.expect_stop().never();
    let (manager, repo, session) = manager_with(mock).await;
    let err = manager.start("tunnel").await.expect_err("contract broken");
    assert!(matches!(err, Error::Provider { .. }), "{err:?}");
    assert!(err.to_string().contains("contract"), "{err}");
    let stored = repo.get(session.session_id).await.expect("get");
    assert_eq!(stored.status(), SessionStatus::Inactive);
    assert_eq!(stored.last_error.expect("recorded").category, "provider");
    // Stopping an inactive session calls nobody (`never` above).
    manager.stop("tunnel").await.expect("stop");
}

#[tokio::test]
async fn a_failed_stop_keeps_the_session_live() {
    let mut mock = base_mock();
    mock.expect_capabilities().returning(Capabilities::none);
    start_active(&mut mock);
    mock.expect_stop().times(1).returning(|_, s| {
        Err(Error::Unavailable {
            target: s.label(),
            message: "controller down".into(),
            source: None,
        })
    });
    let (manager, repo, session) = manager_with(mock).await;
    manager.start("tunnel").await.expect("start");
    manager.stop("tunnel").await.expect_err("stop fails");
    let stored = repo.get(session.session_id).await.expect("get");
    assert_eq!(
        stored.status(),
        SessionStatus::Active,
        "still live, so still active"
    );
    assert_eq!(stored.last_error.expect("recorded").operation, "stop");
}

fn rotate_unauthenticated(mock: &mut MockProvider) {
    mock.expect_rotate().times(1).returning(|_, s| {
        Err(Error::Unauthenticated {
            target: s.label(),
            message: "invalid_grant: the refresh token has expired".into(),
        })
    });
}

#[tokio::test]
async fn an_unauthenticated_rotate_ends_the_session_when_the_provider_says_so() {
    let mut mock = base_mock();
    mock.expect_capabilities().returning(|| {
        Capabilities::none()
            .with_rotate(true)
            .with_rotate_unauthenticated_ends_session(true)
    });
    start_active(&mut mock);
    rotate_unauthenticated(&mut mock);
    let (manager, repo, session) = manager_with(mock).await;
    manager.start("tunnel").await.expect("start");
    let err = manager.rotate("tunnel").await.expect_err("rotate fails");
    assert_eq!(err.category(), "unauthenticated");
    let stored = repo.get(session.session_id).await.expect("get");
    assert_eq!(stored.status(), SessionStatus::Inactive);
    assert!(stored.expiration.is_none());
    let recorded = stored.last_error.expect("recorded");
    assert_eq!(recorded.operation, "rotate");
    assert_eq!(recorded.category, "unauthenticated");
}

#[tokio::test]
async fn without_the_capability_an_unauthenticated_rotate_keeps_the_session_active() {
    let mut mock = base_mock();
    mock.expect_capabilities()
        .returning(|| Capabilities::none().with_rotate(true));
    start_active(&mut mock);
    rotate_unauthenticated(&mut mock);
    let (manager, repo, session) = manager_with(mock).await;
    manager.start("tunnel").await.expect("start");
    manager.rotate("tunnel").await.expect_err("rotate fails");
    let stored = repo.get(session.session_id).await.expect("get");
    assert_eq!(stored.status(), SessionStatus::Active);
    assert_eq!(stored.last_error.expect("recorded").operation, "rotate");
}
