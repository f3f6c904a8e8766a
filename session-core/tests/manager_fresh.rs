//! `SessionManager::ensure_active`, `lease` and lazily built providers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use session_core::{
    ActionContext, Capabilities, Clock, Error, InMemoryWorkspace, ManualClock, Result, Session,
    SessionAction, SessionManager, SessionStatus, SessionType,
};

/// Issues credentials valid for one hour (or `lifetime`); counts its calls.
#[derive(Debug)]
struct Hourly {
    session_type: SessionType,
    rotate: bool,
    lifetime: Duration,
    starts: AtomicUsize,
    rotates: AtomicUsize,
}

impl Hourly {
    fn new(session_type: SessionType, rotate: bool) -> Arc<Self> {
        Self::lasting(session_type, rotate, Duration::from_secs(3600))
    }

    fn lasting(session_type: SessionType, rotate: bool, lifetime: Duration) -> Arc<Self> {
        Arc::new(Self {
            session_type,
            rotate,
            lifetime,
            starts: AtomicUsize::new(0),
            rotates: AtomicUsize::new(0),
        })
    }

    fn issued(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        let mut active = session.clone();
        active.expiration = Some(ctx.clock.now() + self.lifetime);
        active.transition(SessionStatus::Active, ctx.clock.now())?;
        Ok(active)
    }
}

#[async_trait::async_trait]
impl SessionAction for Hourly {
    fn session_type(&self) -> SessionType {
        self.session_type.clone()
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::none().with_rotate(self.rotate)
    }
    async fn start(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        self.starts.fetch_add(1, Ordering::SeqCst);
        self.issued(ctx, session)
    }
    async fn stop(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        let mut inactive = session.clone();
        inactive.expiration = None;
        inactive.transition(SessionStatus::Inactive, ctx.clock.now())?;
        Ok(inactive)
    }
    async fn rotate(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        self.rotates.fetch_add(1, Ordering::SeqCst);
        self.issued(ctx, session)
    }
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        time::macros::datetime!(2030-01-01 0:00 UTC),
    ))
}

/// A manager on `clock` with `provider` and one session `name` of its type.
async fn manager_with(
    clock: &Arc<ManualClock>,
    provider: &Arc<Hourly>,
    name: &str,
) -> SessionManager {
    let manager = SessionManager::builder()
        .repository(Arc::new(InMemoryWorkspace::new()))
        .clock(clock.clone())
        .provider(provider.clone())
        .build()
        .unwrap();
    manager
        .add(Session::new(name, provider.session_type.clone()).unwrap())
        .await
        .unwrap();
    manager
}

#[tokio::test]
async fn ensure_active_starts_then_serves_then_rotates_inside_the_window() {
    let clock = clock();
    let provider = Hourly::new(SessionType::Redfish, true);
    let manager = manager_with(&clock, &provider, "bmc").await;
    let min_ttl = Duration::from_secs(600);

    let first = manager.ensure_active("bmc", min_ttl).await.unwrap();
    assert_eq!(first.status(), SessionStatus::Active);
    assert_eq!(provider.starts.load(Ordering::SeqCst), 1);

    // 40 min later: 20 min left, more than 10: served as is.
    clock.advance(Duration::from_secs(40 * 60));
    let served = manager.ensure_active("bmc", min_ttl).await.unwrap();
    assert_eq!(served.expiration, first.expiration);
    assert_eq!(provider.rotates.load(Ordering::SeqCst), 0);

    // 55 min: 5 min left, less than 10: rotated.
    clock.advance(Duration::from_secs(15 * 60));
    let rotated = manager.ensure_active("bmc", min_ttl).await.unwrap();
    assert_eq!(provider.rotates.load(Ordering::SeqCst), 1);
    assert_eq!(
        rotated.expiration,
        Some(clock.now() + Duration::from_secs(3600))
    );
    assert_eq!(provider.starts.load(Ordering::SeqCst), 1);
}

/// Credentials that live 15 minutes, asked for with 15 minutes left (as
/// `credential-process` asks): renewed when a quarter of their lifetime is
/// gone, not at every call.
#[tokio::test]
async fn short_lived_credentials_are_renewed_at_three_quarters_of_their_life_not_every_call() {
    let clock = clock();
    let provider = Hourly::lasting(
        SessionType::AwsIamRoleChained,
        true,
        Duration::from_secs(900),
    );
    let manager = manager_with(&clock, &provider, "short").await;
    let min_ttl = Duration::from_secs(900);
    let rotations = || provider.rotates.load(Ordering::SeqCst);

    let started = manager.ensure_active("short", min_ttl).await.unwrap();
    assert_eq!(started.issued_at, Some(clock.now()));
    for _ in 0..5 {
        clock.advance(Duration::from_secs(40));
        manager.ensure_active("short", min_ttl).await.unwrap();
    }
    // 200 s in, 700 s left: more than three quarters of 900.
    assert_eq!(rotations(), 0, "rotated while 700 s of 900 were left");
    clock.advance(Duration::from_secs(30));
    let renewed = manager.ensure_active("short", min_ttl).await.unwrap();
    assert_eq!(rotations(), 1, "670 s left: renewed");
    assert_eq!(renewed.issued_at, Some(clock.now()));
    assert_eq!(
        renewed.expiration,
        Some(clock.now() + Duration::from_secs(900))
    );
    clock.advance(Duration::from_secs(1));
    manager.ensure_active("short", min_ttl).await.unwrap();
    assert_eq!(rotations(), 1, "the new credentials are served");
    // Stopped: no credentials, so no issue time either.
    let stopped = manager.stop("short").await.unwrap();
    assert_eq!((stopped.expiration, stopped.issued_at), (None, None));
}

#[tokio::test]
async fn ensure_active_of_an_expired_session_that_cannot_rotate_starts_it() {
    let clock = clock();
    let provider = Hourly::new(SessionType::Boundary, false);
    let manager = manager_with(&clock, &provider, "db").await;
    manager.start("db").await.unwrap();
    // Inside the window but not expired: it cannot rotate, so it is handed
    // out with what it has left.
    clock.advance(Duration::from_secs(58 * 60));
    manager
        .ensure_active("db", Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!(provider.starts.load(Ordering::SeqCst), 1);
    // Expired: started again.
    clock.advance(Duration::from_secs(5 * 60));
    let again = manager
        .ensure_active("db", Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!(again.status(), SessionStatus::Active);
    assert_eq!(provider.starts.load(Ordering::SeqCst), 2);
    assert_eq!(provider.rotates.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_lease_holds_off_operations_on_its_session_until_dropped() {
    let provider = Hourly::new(SessionType::Redfish, true);
    let manager = manager_with(&clock(), &provider, "bmc").await;
    let lease = manager.lease("bmc").await.unwrap();
    assert_eq!(lease.session().session_name, "bmc");
    let starting = tokio::spawn({
        let manager = manager.clone();
        async move { manager.start("bmc").await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        provider.starts.load(Ordering::SeqCst),
        0,
        "start ran while the lease was held"
    );
    drop(lease);
    starting.await.unwrap().unwrap();
    assert_eq!(provider.starts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_failing_lazy_factory_breaks_only_its_own_session_types() {
    let builds = Arc::new(AtomicUsize::new(0));
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let redfish = Hourly::new(SessionType::Redfish, true);
    let manager = SessionManager::builder()
        .repository(Arc::new(InMemoryWorkspace::new()))
        .lazy_providers([SessionType::AwsIamUser, SessionType::AwsIamRoleChained], {
            let builds = builds.clone();
            let fail = fail.clone();
            move || {
                builds.fetch_add(1, Ordering::SeqCst);
                if fail.load(Ordering::SeqCst) {
                    return Err(Error::invalid_input(
                        "AWS_REGION",
                        "'not a region' is not a region",
                    ));
                }
                let user: Arc<dyn SessionAction> = Hourly::new(SessionType::AwsIamUser, true);
                let role: Arc<dyn SessionAction> =
                    Hourly::new(SessionType::AwsIamRoleChained, true);
                Ok(vec![user, role])
            }
        })
        .lazy_providers([SessionType::Redfish], {
            let redfish = redfish.clone();
            move || Ok(vec![redfish.clone() as Arc<dyn SessionAction>])
        })
        .missing_provider_hint(|t| {
            (*t == SessionType::Azure).then(|| "enable feature azure".into())
        })
        .build()
        .unwrap();
    assert_eq!(builds.load(Ordering::SeqCst), 0, "built before first use");
    for (name, session_type) in [
        ("bmc", SessionType::Redfish),
        ("dev", SessionType::AwsIamUser),
        ("az", SessionType::Azure),
    ] {
        manager
            .add(Session::new(name, session_type).unwrap())
            .await
            .unwrap();
    }

    let err = manager.start("dev").await.unwrap_err();
    assert!(err.to_string().contains("AWS_REGION"), "{err}");
    assert!(err.to_string().contains("session 'dev'"), "{err}");
    manager.start("bmc").await.unwrap();
    assert_eq!(redfish.starts.load(Ordering::SeqCst), 1);

    // Not remembered: fixed, the next use builds it.
    fail.store(false, Ordering::SeqCst);
    manager.start("dev").await.unwrap();
    manager.start("dev").await.unwrap();
    assert_eq!(builds.load(Ordering::SeqCst), 2);

    let err = manager.start("az").await.unwrap_err();
    assert_eq!(err.category(), "unsupported");
    assert!(err.to_string().contains("enable feature azure"), "{err}");
}

#[tokio::test]
async fn a_factory_building_another_type_or_a_duplicate_registration_is_refused() {
    let manager = SessionManager::builder()
        .repository(Arc::new(InMemoryWorkspace::new()))
        .lazy_providers([SessionType::Redfish], || {
            Ok(vec![
                Hourly::new(SessionType::Azure, true) as Arc<dyn SessionAction>
            ])
        })
        .build()
        .unwrap();
    let err = manager.provider(&SessionType::Redfish).unwrap_err();
    assert!(
        err.to_string().contains("built a provider of azure"),
        "{err}"
    );

    let err = SessionManager::builder()
        .repository(Arc::new(InMemoryWorkspace::new()))
        .provider(Hourly::new(SessionType::Redfish, true))
        .lazy_providers([SessionType::Redfish], || Ok(vec![]))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("two providers"), "{err}");
}
