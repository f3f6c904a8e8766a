//! The `boundary` session type end to end against session-testkit's fake
//! controller and fake worker: the conformance suite (directly and boxed),
//! and what `boundary connect`'s users need that the CLI gets wrong.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use session_boundary::{BoundaryConfig, BoundaryProvider, BoundaryState, secret_names};
use session_core::{
    ActionContext, Clock, EndReason, Error, InMemorySecretStore, LiveOptions, ManualClock, Secret,
    SecretKey, SecretStore, Session, SessionAction, SessionStatus, SessionType, SystemClock,
};
use session_testkit::fakes::boundary::cluster::SessionStatus as Remote;
use session_testkit::fakes::boundary::controller::{
    DEV_AUTH_METHOD_ID, DEV_LOGIN_NAME, DEV_PASSWORD, DEV_TARGET_ID,
};
use session_testkit::fakes::boundary::{FakeBoundary, FakeTarget, WorkerOptions};
use session_testkit::suites::{ActionFixture, action_conformance};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(15);

async fn fake_on(clock: Arc<dyn Clock>, limit: i32) -> FakeBoundary {
    FakeBoundary::start_with(
        move |b, endpoint| {
            let mut target = FakeTarget::dev(endpoint);
            target.connection_limit = limit;
            b.target(target)
        },
        WorkerOptions {
            clock,
            ..WorkerOptions::default()
        },
    )
    .await
}

fn config(fake: &FakeBoundary) -> BoundaryConfig {
    BoundaryConfig::new(fake.controller.url(), DEV_AUTH_METHOD_ID, DEV_LOGIN_NAME)
        .with_target_id(DEV_TARGET_ID)
}

fn session(name: &str, config: &BoundaryConfig) -> Session {
    let mut session = Session::new(name, SessionType::Boundary).unwrap();
    session.config.set(config).unwrap();
    session
}

async fn with_password(store: &dyn SecretStore, session: &Session) {
    store
        .put(
            &SecretKey::new(session.session_id, secret_names::PASSWORD).unwrap(),
            &Secret::new(DEV_PASSWORD),
        )
        .await
        .unwrap();
}

fn moved(session: &Session, to: SessionStatus, clock: &dyn Clock) -> Session {
    let mut next = session.clone();
    next.transition(to, clock.now()).unwrap();
    next
}

fn provider() -> BoundaryProvider {
    BoundaryProvider::new().with_status_poll(Duration::from_millis(100))
}

/// Sends `data` through the local address and reads the echo.
async fn echo(address: SocketAddr, data: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(data).await.unwrap();
    let mut back = vec![0u8; data.len()];
    tokio::time::timeout(WAIT, stream.read_exact(&mut back))
        .await
        .expect("the echo in time")
        .expect("the whole echo");
    back
}

fn state(session: &Session) -> BoundaryState {
    session.state.get().unwrap()
}

/// A started session, its live handle's address and the context.
struct Started {
    fake: FakeBoundary,
    provider: Arc<BoundaryProvider>,
    ctx: ActionContext,
    session: Session,
    handle: session_core::LiveHandle,
}

async fn started(limit: i32) -> Started {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let fake = fake_on(clock.clone(), limit).await;
    let store = Arc::new(InMemorySecretStore::new());
    let ctx = ActionContext::new(clock.clone(), store.clone());
    let session = session("db", &config(&fake));
    with_password(store.as_ref(), &session).await;
    let provider = Arc::new(provider());
    let (session, handle) = provider
        .start_live(
            &ctx,
            &moved(&session, SessionStatus::Pending, clock.as_ref()),
        )
        .await
        .unwrap();
    Started {
        fake,
        provider,
        ctx,
        session,
        handle,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_direct_and_boxed() {
    for boxed in [false, true] {
        let clock = Arc::new(ManualClock::new(
            time::macros::datetime!(2030-01-01 0:00 UTC),
        ));
        let fake = fake_on(clock.clone(), -1).await;
        let store = Arc::new(InMemorySecretStore::new());
        let ctx = ActionContext::new(clock.clone(), store.clone());
        let good = session("db", &config(&fake));
        with_password(store.as_ref(), &good).await;
        let mut wrong = config(&fake);
        wrong.target_id = Some("ttcp_0000000000".into());
        let failing = session("nowhere", &wrong);
        with_password(store.as_ref(), &failing).await;
        let controller = Arc::new(fake);
        let probe_fake = Arc::clone(&controller);
        let fixture = ActionFixture {
            session: good,
            failing_session: Some(failing),
            ctx,
            clock,
            // Available: the controller knows the session as pending or
            // active, and the listener carries bytes to the target.
            probe: Arc::new(move |_ctx, session: Session| {
                let fake = Arc::clone(&probe_fake);
                async move {
                    let state: BoundaryState = session.state.get().unwrap_or_default();
                    let remote = fake.controller.session(&state.session_id)?;
                    if !matches!(remote.status, Remote::Pending | Remote::Active) {
                        return None;
                    }
                    let address = state.listen_address?;
                    let data = b"probe".to_vec();
                    (echo(address, &data).await == data).then_some(state.session_id)
                }
                .boxed()
            }),
            pause_before_rotate: Duration::ZERO,
        };
        let provider = provider();
        if boxed {
            let boxed: Box<dyn SessionAction> = Box::new(provider);
            action_conformance(&boxed, &fixture).await;
        } else {
            action_conformance(&provider, &fixture).await;
        }
        // Nothing is left running: every session is canceling or over.
        controller.controller.sweep();
        for remote in controller.controller.sessions() {
            assert!(
                matches!(remote.status, Remote::Canceling | Remote::Terminated),
                "{remote:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_then_stop_cancels_through_the_worker() {
    let s = started(-1).await;
    let address = s.handle.addresses()[0];
    assert_eq!(state(&s.session).listen_address, Some(address));
    let data = vec![42u8; 70_000];
    assert!(echo(address, &data).await == data);
    let id = state(&s.session).session_id;
    assert_eq!(
        s.fake.controller.session(&id).unwrap().status,
        Remote::Active
    );
    assert!(s.session.expiration.is_some());

    let stopped = s
        .provider
        .stop(
            &s.ctx,
            &moved(&s.session, SessionStatus::Stopping, &SystemClock),
        )
        .await
        .unwrap();
    assert_eq!(stopped.status(), SessionStatus::Inactive);
    assert_eq!(s.handle.end_reason(), Some(EndReason::ClosedByUser));
    let status = s.fake.controller.session(&id).unwrap().status;
    assert!(
        matches!(status, Remote::Canceling | Remote::Terminated),
        "{status:?}"
    );
    // The worker did it: no REST cancel was needed.
    let rest_cancels = s
        .fake
        .controller
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(":cancel"))
        .count();
    assert_eq!(rest_cancels, 0);
    // The listener is closed.
    assert!(TcpStream::connect(address).await.is_err());
    // Idempotent.
    s.provider
        .stop(
            &s.ctx,
            &moved(&s.session, SessionStatus::Stopping, &SystemClock),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_falls_back_to_the_controller_when_the_worker_is_gone() {
    let s = started(-1).await;
    let address = s.handle.addresses()[0];
    assert!(echo(address, b"x").await == b"x");
    let id = state(&s.session).session_id;
    s.fake.worker.stop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started_at = std::time::Instant::now();
    s.provider
        .stop(
            &s.ctx,
            &moved(&s.session, SessionStatus::Stopping, &SystemClock),
        )
        .await
        .unwrap();
    assert!(
        started_at.elapsed() < Duration::from_secs(8),
        "{:?}",
        started_at.elapsed()
    );
    let status = s.fake.controller.session(&id).unwrap().status;
    assert!(
        matches!(status, Remote::Canceling | Remote::Terminated),
        "{status:?}"
    );
    assert!(
        s.fake
            .controller
            .requests()
            .iter()
            .any(|r| r.path == format!("/v1/sessions/{id}:cancel"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_canceled_on_the_controller_closes_the_listener_with_the_reason() {
    let s = started(-1).await;
    let address = s.handle.addresses()[0];
    assert!(echo(address, b"hello").await == b"hello");
    let id = state(&s.session).session_id;
    assert!(s.fake.controller.cancel(&id));
    let reason = tokio::time::timeout(WAIT, s.handle.ended()).await.unwrap();
    let EndReason::ClosedByService(text) = &reason else {
        panic!("{reason:?}")
    };
    assert!(text.contains("canceled"), "{text}");
    assert!(!s.provider.is_connected(s.session.session_id));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        TcpStream::connect(address).await.is_err(),
        "the listener is closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_up_connection_limit_is_not_called_an_expiry() {
    let s = started(1).await;
    let address = s.handle.addresses()[0];
    assert!(echo(address, b"once").await == b"once");
    let reason = tokio::time::timeout(WAIT, s.handle.ended()).await.unwrap();
    let EndReason::ClosedByService(text) = &reason else {
        panic!("{reason:?}")
    };
    assert!(text.contains("connection limit"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_in_use_fails_at_once_before_anything_is_authorized() {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let fake = fake_on(clock.clone(), -1).await;
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let store = Arc::new(InMemorySecretStore::new());
    let ctx = ActionContext::new(clock.clone(), store.clone())
        .with_live(LiveOptions::default().with_listen(taken.local_addr().unwrap()));
    let session = session("db", &config(&fake));
    with_password(store.as_ref(), &session).await;
    let error = tokio::time::timeout(
        Duration::from_secs(2),
        provider().start_live(
            &ctx,
            &moved(&session, SessionStatus::Pending, clock.as_ref()),
        ),
    )
    .await
    .expect("fails at once")
    .unwrap_err();
    assert!(error.to_string().contains("address in use"), "{error}");
    assert!(
        fake.controller.sessions().is_empty(),
        "nothing was authorized"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_while_a_transfer_runs_loses_nothing() {
    let s = started(-1).await;
    let address = s.handle.addresses()[0];
    let old_id = state(&s.session).session_id;
    let mut events = s.handle.events();
    // A transfer that runs across the rotate: 2 MB in 16 KB writes, read
    // back concurrently.
    let mut stream = TcpStream::connect(address).await.unwrap();
    assert!(echo(address, b"warm").await == b"warm");
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    let (mut read, mut write) = stream.split();
    let sending = async {
        for chunk in data.chunks(16 * 1024) {
            write.write_all(chunk).await.unwrap();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    let mut back = vec![0u8; data.len()];
    let receiving = async {
        tokio::time::timeout(Duration::from_secs(60), read.read_exact(&mut back))
            .await
            .unwrap()
            .unwrap();
    };
    let rotating = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        s.provider
            .rotate(
                &s.ctx,
                &moved(&s.session, SessionStatus::Rotating, &SystemClock),
            )
            .await
            .unwrap()
    };
    let ((), (), rotated) = tokio::join!(sending, receiving, rotating);
    assert!(back == data, "the transfer across the rotate is intact");
    let new_id = state(&rotated).session_id;
    assert_ne!(new_id, old_id);
    assert_eq!(
        state(&rotated).listen_address,
        Some(address),
        "same address"
    );
    assert_eq!(state(&rotated).draining, vec![old_id.clone()]);
    let notice = tokio::time::timeout(WAIT, events.recv())
        .await
        .unwrap()
        .unwrap();
    let session_core::LiveEvent::Notice { message } = &notice else {
        panic!("{notice:?}")
    };
    assert!(
        message.contains(&format!("new connections go to session {new_id}")),
        "{message}"
    );
    // New connections go to the new session.
    assert!(echo(address, b"new").await == b"new");
    assert_eq!(
        s.fake.controller.session(&new_id).unwrap().status,
        Remote::Active
    );
    // The old one is canceled once its connection ends.
    assert_eq!(
        s.fake.controller.session(&old_id).unwrap().status,
        Remote::Active
    );
    drop(stream);
    let canceled = tokio::time::timeout(WAIT, async {
        loop {
            let status = s.fake.controller.session(&old_id).unwrap().status;
            if matches!(status, Remote::Canceling | Remote::Terminated) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        canceled.is_ok(),
        "the old session is canceled after draining"
    );
    assert_eq!(s.handle.end_reason(), None, "the connection is still up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_auth_token_is_replaced_by_a_new_login() {
    let s = started(-1).await;
    let logins = |fake: &FakeBoundary| {
        fake.controller
            .requests()
            .iter()
            .filter(|r| r.path.ends_with(":authenticate"))
            .count()
    };
    assert_eq!(logins(&s.fake), 1);
    s.fake.controller.expire_auth_tokens();
    let rotated = s
        .provider
        .rotate(
            &s.ctx,
            &moved(&s.session, SessionStatus::Rotating, &SystemClock),
        )
        .await
        .unwrap();
    assert_eq!(rotated.status(), SessionStatus::Active);
    assert_eq!(logins(&s.fake), 2);
    // The token is stored under this controller and auth method, never in
    // the session.
    let key = SecretKey::new(
        s.session.session_id,
        secret_names::auth_token(&s.fake.controller.url(), DEV_AUTH_METHOD_ID),
    )
    .unwrap();
    assert!(s.ctx.secrets.get(&key).await.unwrap().is_some());
    let text = format!("{rotated:?} {}", serde_json::to_string(&rotated).unwrap());
    assert!(
        !text.contains("at_"),
        "no auth token in the session: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_of_one_controller_is_never_sent_to_another() {
    let s = started(-1).await;
    let other = fake_on(Arc::new(SystemClock), -1).await;
    let mut moved_config = config(&other);
    moved_config.target_id = Some(DEV_TARGET_ID.into());
    let mut session = s
        .provider
        .stop(
            &s.ctx,
            &moved(&s.session, SessionStatus::Stopping, &SystemClock),
        )
        .await
        .unwrap();
    session.config.set(&moved_config).unwrap();
    let session = moved(&session, SessionStatus::Pending, &SystemClock);
    let (_, handle) = s.provider.start_live(&s.ctx, &session).await.unwrap();
    let first = other.controller.requests()[0].clone();
    assert!(first.path.ends_with(":authenticate"), "{first:?}");
    assert!(echo(handle.addresses()[0], b"there").await == b"there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_is_a_clear_error_naming_it() {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let fake = fake_on(clock.clone(), -1).await;
    let ctx = ActionContext::new(clock.clone(), Arc::new(InMemorySecretStore::new()));
    let session = session("db", &config(&fake));
    let error = provider()
        .start_live(
            &ctx,
            &moved(&session, SessionStatus::Pending, clock.as_ref()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::InvalidInput { field, .. } if field == "password"),
        "{error:?}"
    );
    assert!(
        error.to_string().contains(secret_names::PASSWORD),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_the_controller_timed_out_ends_as_expired_not_canceled() {
    let s = started(-1).await;
    let id = state(&s.session).session_id;
    s.fake.controller.expire(&id);
    s.fake.controller.sweep();
    let reason = tokio::time::timeout(WAIT, s.handle.ended()).await.unwrap();
    assert_eq!(reason, EndReason::Expired, "{reason}");
}
