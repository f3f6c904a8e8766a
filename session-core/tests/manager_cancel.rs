//! `SessionManager::cancel`: a start, rotate or resume stuck in its provider
//! (a device-code sign-in nobody completes, a handshake that never answers)
//! is given up, every caller gets `Error::Cancelled`, the provider's future
//! is dropped, and the session is left in the documented status.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use session_core::{
    ActionContext, Capabilities, EndReason, Error, InMemoryWorkspace, LiveEnd, LiveHandle,
    Operation, Result, ResumePolicy, Session, SessionAction, SessionEventKind, SessionId,
    SessionManager, SessionStatus, SessionType, WorkspaceRepository,
};
use tokio::sync::Notify;

/// Counts futures that were dropped before they finished.
#[derive(Debug)]
struct DropCounter(Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A provider whose operations wait for [`Gated::open`] when their session
/// is named `stuck…` (as a device-code sign-in waits for the user).
#[derive(Debug, Default)]
struct Gated {
    live: bool,
    gate: Notify,
    entered: Notify,
    dropped: Arc<AtomicUsize>,
    ends: Mutex<Vec<LiveEnd>>,
    calls: AtomicUsize,
}

impl Gated {
    async fn wait_if_stuck(&self, session: &Session) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if session.session_name.starts_with("stuck") {
            let guard = DropCounter(Arc::clone(&self.dropped));
            self.entered.notify_one();
            self.gate.notified().await;
            std::mem::forget(guard);
        }
    }

    fn to(session: &Session, ctx: &ActionContext, status: SessionStatus) -> Result<Session> {
        let mut next = session.clone();
        next.transition(status, ctx.clock.now())?;
        if status == SessionStatus::Active {
            next.expiration = Some(ctx.clock.now() + time::Duration::hours(1));
        }
        Ok(next)
    }

    fn handle(&self) -> LiveHandle {
        let (handle, end) = LiveHandle::listening([SocketAddr::from(([127, 0, 0, 1], 9))]);
        self.ends.lock().unwrap().push(end);
        handle
    }
}

#[async_trait::async_trait]
impl SessionAction for Gated {
    fn session_type(&self) -> SessionType {
        SessionType::Other("gated".into())
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
            .with_rotate(true)
            .with_live_connection(self.live)
    }
    async fn start(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        self.wait_if_stuck(session).await;
        Self::to(session, ctx, SessionStatus::Active)
    }
    async fn stop(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        self.wait_if_stuck(session).await;
        Self::to(session, ctx, SessionStatus::Inactive)
    }
    async fn rotate(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        self.wait_if_stuck(session).await;
        Self::to(session, ctx, SessionStatus::Active)
    }
    async fn start_live(
        &self,
        ctx: &ActionContext,
        session: &Session,
    ) -> Result<(Session, LiveHandle)> {
        self.wait_if_stuck(session).await;
        Ok((
            Self::to(session, ctx, SessionStatus::Active)?,
            self.handle(),
        ))
    }
    async fn resume(
        &self,
        ctx: &ActionContext,
        session: &Session,
    ) -> Result<(Session, LiveHandle)> {
        self.wait_if_stuck(session).await;
        Ok((
            Self::to(session, ctx, SessionStatus::Active)?,
            self.handle(),
        ))
    }
}

fn manager(provider: &Arc<Gated>, repository: &Arc<InMemoryWorkspace>) -> SessionManager {
    SessionManager::builder()
        .repository(repository.clone())
        .provider(provider.clone())
        // No automatic resume: the tests resume by hand.
        .resume_policy(ResumePolicy::default().with_deadline(Duration::ZERO))
        .build()
        .expect("manager")
}

async fn add(manager: &SessionManager, name: &str) -> SessionId {
    let session = Session::new(name, SessionType::Other("gated".into())).unwrap();
    manager.add(session).await.unwrap().session_id
}

/// Runs `operation` on `id` in the background and waits until the provider
/// is inside it.
async fn stuck_in(
    manager: &SessionManager,
    provider: &Gated,
    operation: Operation,
    id: SessionId,
) -> tokio::task::JoinHandle<Result<Session>> {
    let entered = provider.entered.notified();
    let running = {
        let manager = manager.clone();
        tokio::spawn(async move { manager.run(operation, id).await })
    };
    tokio::time::timeout(Duration::from_secs(10), entered)
        .await
        .expect("the provider was called");
    running
}

async fn outcome(running: tokio::task::JoinHandle<Result<Session>>) -> Result<Session> {
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the cancelled operation returned")
        .expect("no panic")
}

#[tokio::test]
async fn a_cancelled_start_leaves_the_session_inactive_and_says_so() {
    let provider = Arc::new(Gated::default());
    let repository = Arc::new(InMemoryWorkspace::new());
    let manager = manager(&provider, &repository);
    let id = add(&manager, "stuck-start").await;
    let mut events = manager.subscribe();
    let running = stuck_in(&manager, &provider, Operation::Start, id).await;
    // A second caller joins the same flight.
    let joined = {
        let manager = manager.clone();
        tokio::spawn(async move { manager.start("stuck-start").await })
    };
    tokio::task::yield_now().await;
    assert_eq!(
        repository.get(id).await.unwrap().status(),
        SessionStatus::Pending
    );

    assert!(manager.cancel("stuck-start").await.unwrap());

    for result in [outcome(running).await, outcome(joined).await] {
        let error = result.unwrap_err();
        assert!(matches!(error, Error::Cancelled { .. }), "{error:?}");
        assert!(error.to_string().contains("start of"), "{error}");
    }
    assert_eq!(
        provider.dropped.load(Ordering::SeqCst),
        1,
        "provider future dropped"
    );
    assert_eq!(
        provider.calls.load(Ordering::SeqCst),
        1,
        "one provider call"
    );
    let stored = repository.get(id).await.unwrap();
    assert_eq!(stored.status(), SessionStatus::Inactive);
    let last = stored.last_error.expect("the cancel is recorded");
    assert_eq!(
        (last.operation.as_str(), last.category.as_str()),
        ("start", "cancelled")
    );
    let event = loop {
        let event = events.recv().await.unwrap();
        if let SessionEventKind::Failed { operation, error } = event.kind {
            break (operation, error.category());
        }
    };
    assert_eq!(event, (Operation::Start, "cancelled"));

    // Nothing is left in flight: cancelling again finds nothing, and the
    // session can be started (here the provider no longer waits).
    assert!(!manager.cancel("stuck-start").await.unwrap());
    provider.gate.notify_waiters();
}

#[tokio::test]
async fn a_cancelled_rotate_keeps_the_old_credentials_active() {
    let provider = Arc::new(Gated::default());
    let repository = Arc::new(InMemoryWorkspace::new());
    let manager = manager(&provider, &repository);
    let id = add(&manager, "stuck-rotate").await;
    // Let the start through.
    let starting = {
        let manager = manager.clone();
        tokio::spawn(async move { manager.start("stuck-rotate").await })
    };
    tokio::time::timeout(Duration::from_secs(10), provider.entered.notified())
        .await
        .expect("start called");
    provider.gate.notify_one();
    let started = starting.await.unwrap().expect("started");

    let running = stuck_in(&manager, &provider, Operation::Rotate, id).await;
    assert!(manager.cancel(&id.to_string()).await.unwrap());
    let error = outcome(running).await.unwrap_err();
    assert_eq!(error.category(), "cancelled");
    let stored = repository.get(id).await.unwrap();
    assert_eq!(stored.status(), SessionStatus::Active);
    assert_eq!(
        stored.expiration, started.expiration,
        "old credentials kept"
    );
    assert_eq!(stored.last_error.unwrap().operation, "rotate");
}

#[tokio::test]
async fn a_cancelled_resume_leaves_it_disconnected() {
    let provider = Arc::new(Gated {
        live: true,
        ..Gated::default()
    });
    let repository = Arc::new(InMemoryWorkspace::new());
    let manager = manager(&provider, &repository);
    let id = add(&manager, "stuck-live").await;
    let connecting = {
        let manager = manager.clone();
        tokio::spawn(async move { manager.connect("stuck-live").await })
    };
    tokio::time::timeout(Duration::from_secs(10), provider.entered.notified())
        .await
        .expect("start_live called");
    provider.gate.notify_one();
    let (_, handle) = connecting.await.unwrap().expect("connected");

    // The connection drops; with no automatic resume it stays disconnected.
    let mut events = manager.subscribe();
    provider
        .ends
        .lock()
        .unwrap()
        .remove(0)
        .end(EndReason::NetworkLost("cable".into()));
    handle.ended().await;
    loop {
        if matches!(
            events.recv().await.unwrap().kind,
            SessionEventKind::Disconnected { .. }
        ) {
            break;
        }
    }
    let running = stuck_in(&manager, &provider, Operation::Resume, id).await;
    assert!(manager.cancel("stuck-live").await.unwrap());
    assert_eq!(outcome(running).await.unwrap_err().category(), "cancelled");
    let stored = repository.get(id).await.unwrap();
    assert_eq!(stored.status(), SessionStatus::Disconnected);
    assert_eq!(stored.last_error.unwrap().operation, "resume");
    assert!(manager.live(id).is_none());
}

#[tokio::test]
async fn a_cancel_while_waiting_behind_another_operation_changes_nothing() {
    let provider = Arc::new(Gated::default());
    let repository = Arc::new(InMemoryWorkspace::new());
    let manager = manager(&provider, &repository);
    let id = add(&manager, "stuck-queue").await;
    let starting = stuck_in(&manager, &provider, Operation::Start, id).await;
    // A rotate queues behind the start (operations on one session run one
    // after another); cancelling it must not touch the start.
    let rotating = {
        let manager = manager.clone();
        tokio::spawn(async move { manager.rotate("stuck-queue").await })
    };
    tokio::task::yield_now().await;
    let before = repository.get(id).await.unwrap().revision();
    // `cancel` reaches both flights; check the rotate gives up at once and
    // the start, already cancelled too, is recorded as such.
    assert!(manager.cancel("stuck-queue").await.unwrap());
    assert_eq!(outcome(rotating).await.unwrap_err().category(), "cancelled");
    assert_eq!(outcome(starting).await.unwrap_err().category(), "cancelled");
    let stored = repository.get(id).await.unwrap();
    assert_eq!(stored.status(), SessionStatus::Inactive);
    // One write: the start's failure. The rotate wrote nothing.
    assert_eq!(stored.revision(), before + 1);
    assert_eq!(stored.last_error.unwrap().operation, "start");
}

#[tokio::test]
async fn stop_is_never_cancelled() {
    let provider = Arc::new(Gated::default());
    let repository = Arc::new(InMemoryWorkspace::new());
    let manager = manager(&provider, &repository);
    let id = add(&manager, "stuck-stop").await;
    let starting = stuck_in(&manager, &provider, Operation::Start, id).await;
    provider.gate.notify_one();
    starting.await.unwrap().expect("started");

    let stopping = stuck_in(&manager, &provider, Operation::Stop, id).await;
    assert!(
        !manager.cancel("stuck-stop").await.unwrap(),
        "a stop is not cancellable"
    );
    provider.gate.notify_one();
    let stopped = outcome(stopping).await.expect("the stop finished");
    assert_eq!(stopped.status(), SessionStatus::Inactive);
    assert_eq!(provider.dropped.load(Ordering::SeqCst), 0);
}
