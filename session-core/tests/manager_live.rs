//! The manager with a live provider: drops, resume by deadline on the
//! injected clock, re-attaching from another manager, and what a user's
//! close or an expiry does. The provider is a scripted in-file double whose
//! handles carry an address nothing listens on (no network needed).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use session_core::{
    ActionContext, Capabilities, EndReason, Error, InMemoryWorkspace, LiveEnd, LiveHandle,
    ManualClock, Operation, Result, ResumePolicy, Session, SessionAction, SessionEvent,
    SessionEventKind, SessionId, SessionManager, SessionStatus, SessionType,
};
use tokio::sync::broadcast;

#[derive(Debug, Default)]
struct Scripted {
    ends: Mutex<HashMap<SessionId, LiveEnd>>,
    starts: AtomicUsize,
    resumes: AtomicUsize,
    stops: AtomicUsize,
    failing_resumes: AtomicUsize,
}

impl Scripted {
    fn open(&self, session: &Session, ctx: &ActionContext) -> Result<(Session, LiveHandle)> {
        let (handle, end) = LiveHandle::listening([SocketAddr::from(([127, 0, 0, 1], 9))]);
        if let Some(old) = self.ends.lock().unwrap().insert(session.session_id, end) {
            old.end(EndReason::ClosedByService("replaced".into()));
        }
        let mut active = session.clone();
        active.transition(SessionStatus::Active, ctx.clock.now())?;
        Ok((active, handle))
    }

    fn drop_connection(&self, id: SessionId, reason: EndReason) {
        let end = self
            .ends
            .lock()
            .unwrap()
            .remove(&id)
            .expect("an open connection");
        end.end(reason);
    }
}

#[async_trait::async_trait]
impl SessionAction for Scripted {
    fn session_type(&self) -> SessionType {
        SessionType::Other("live".into())
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::none().with_live_connection(true)
    }
    async fn start(&self, _ctx: &ActionContext, session: &Session) -> Result<Session> {
        panic!("the manager must call start_live for {}", session.label())
    }
    async fn stop(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        self.stops.fetch_add(1, Ordering::SeqCst);
        if let Some(end) = self.ends.lock().unwrap().remove(&session.session_id) {
            end.end(EndReason::ClosedByUser);
        }
        let mut stopped = session.clone();
        stopped.transition(SessionStatus::Inactive, ctx.clock.now())?;
        Ok(stopped)
    }
    async fn rotate(&self, _ctx: &ActionContext, _session: &Session) -> Result<Session> {
        Err(Error::unsupported("live", "rotate"))
    }
    async fn start_live(
        &self,
        ctx: &ActionContext,
        session: &Session,
    ) -> Result<(Session, LiveHandle)> {
        self.starts.fetch_add(1, Ordering::SeqCst);
        self.open(session, ctx)
    }
    async fn resume(
        &self,
        ctx: &ActionContext,
        session: &Session,
    ) -> Result<(Session, LiveHandle)> {
        self.resumes.fetch_add(1, Ordering::SeqCst);
        let failing = self
            .failing_resumes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(Error::Unavailable {
                target: session.label(),
                message: "network still down".into(),
                source: None,
            });
        }
        self.open(session, ctx)
    }
}

struct World {
    clock: Arc<ManualClock>,
    repository: Arc<InMemoryWorkspace>,
    provider: Arc<Scripted>,
}

impl World {
    fn new() -> Self {
        Self {
            clock: Arc::new(ManualClock::new(
                time::macros::datetime!(2030-01-01 0:00 UTC),
            )),
            repository: Arc::new(InMemoryWorkspace::new()),
            provider: Arc::new(Scripted::default()),
        }
    }

    fn manager(&self, policy: ResumePolicy) -> SessionManager {
        SessionManager::builder()
            .repository(self.repository.clone())
            .clock(self.clock.clone())
            .provider(self.provider.clone())
            .resume_policy(policy)
            .build()
            .expect("manager")
    }

    async fn connected(&self, manager: &SessionManager) -> (SessionId, LiveHandle) {
        let session = Session::new("tunnel", SessionType::Other("live".into())).unwrap();
        let id = manager.add(session).await.unwrap().session_id;
        let (_, handle) = manager.connect("tunnel").await.expect("connect");
        (id, handle)
    }

    async fn stored(&self, id: SessionId) -> Session {
        use session_core::WorkspaceRepository;
        self.repository.get(id).await.unwrap()
    }

    /// Waits until the resume loop is asleep until a time still ahead.
    async fn until_asleep(&self) {
        for _ in 0..5000 {
            if self.clock.sleepers_ahead() > 0 {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the resume loop never went to sleep");
    }
}

/// The next event of a kind. The time-out is a safety net that turns a
/// missing event into a failure instead of a hung test; no test waits on it.
async fn next(
    events: &mut broadcast::Receiver<SessionEvent>,
    want: fn(&SessionEventKind) -> bool,
) -> SessionEvent {
    let wait = async {
        loop {
            let event = events.recv().await.expect("event");
            if want(&event.kind) {
                return event;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .expect("the expected event never came")
}

fn policy() -> ResumePolicy {
    ResumePolicy::default()
        .with_first_backoff(Duration::from_secs(1))
        .with_max_backoff(Duration::from_secs(4))
        .with_deadline(Duration::from_secs(10))
}

#[tokio::test]
async fn a_lost_network_is_resumed_at_once() {
    let world = World::new();
    let manager = world.manager(policy());
    let mut events = manager.subscribe();
    let (id, first) = world.connected(&manager).await;

    world
        .provider
        .drop_connection(id, EndReason::NetworkLost("wifi".into()));
    let dropped = next(&mut events, |k| {
        matches!(k, SessionEventKind::Disconnected { .. })
    })
    .await;
    assert_eq!(dropped.status, SessionStatus::Disconnected);
    next(&mut events, |k| matches!(k, SessionEventKind::Resumed)).await;

    let stored = world.stored(id).await;
    assert_eq!(stored.status(), SessionStatus::Active);
    assert!(stored.last_error.is_none());
    let second = manager.live(id).expect("a new handle");
    assert!(!second.same_connection(&first));
    assert_eq!(
        first.end_reason(),
        Some(EndReason::NetworkLost("wifi".into()))
    );
    assert_eq!(world.provider.resumes.load(Ordering::SeqCst), 1);
    assert_eq!(
        world.provider.starts.load(Ordering::SeqCst),
        1,
        "resumed, not restarted"
    );
}

/// Tries at 0 s, 1 s, 3 s, 7 s (waits 1, 2, 4, capped at 4); the next would
/// be at 11 s, past the 10 s deadline: four tries, then it gives up. The
/// waits are checked to the millisecond on the manual clock.
#[tokio::test]
async fn resume_backs_off_until_the_deadline_not_a_count() {
    let world = World::new();
    let manager = world.manager(policy());
    let mut events = manager.subscribe();
    let (id, _) = world.connected(&manager).await;
    world
        .provider
        .failing_resumes
        .store(usize::MAX, Ordering::SeqCst);

    world
        .provider
        .drop_connection(id, EndReason::NetworkLost("wifi".into()));
    let failed = |k: &SessionEventKind| {
        matches!(
            k,
            SessionEventKind::Failed {
                operation: Operation::Resume,
                ..
            }
        )
    };
    let event = next(&mut events, failed).await;
    assert_eq!(
        event.status,
        SessionStatus::Disconnected,
        "a failed resume stays disconnected"
    );
    for (tries, wait) in [(1, 1), (2, 2), (3, 4)] {
        world.until_asleep().await;
        assert_eq!(world.provider.resumes.load(Ordering::SeqCst), tries);
        world
            .clock
            .advance(Duration::from_secs(wait) - Duration::from_millis(1));
        assert_eq!(
            world.clock.sleepers_ahead(),
            1,
            "still waiting {wait} s after try {tries}"
        );
        world.clock.advance(Duration::from_millis(1));
        next(&mut events, failed).await;
    }
    let gave_up = next(&mut events, |k| {
        matches!(k, SessionEventKind::ResumeAbandoned { .. })
    })
    .await;
    assert!(matches!(
        gave_up.kind,
        SessionEventKind::ResumeAbandoned { tries: 4 }
    ));
    assert_eq!(world.provider.resumes.load(Ordering::SeqCst), 4);
    let stored = world.stored(id).await;
    assert_eq!(stored.status(), SessionStatus::Disconnected);
    let last = stored.last_error.expect("the last failure is recorded");
    assert_eq!(last.operation, "resume");

    // The user can still re-attach by hand once the network is back.
    world.provider.failing_resumes.store(0, Ordering::SeqCst);
    let started = manager.start("tunnel").await.expect("start re-attaches");
    assert_eq!(started.status(), SessionStatus::Active);
    assert_eq!(world.provider.resumes.load(Ordering::SeqCst), 5);
    assert!(manager.live(id).is_some());
}

#[tokio::test]
async fn a_longer_deadline_keeps_trying() {
    let world = World::new();
    let manager = world.manager(policy().with_deadline(Duration::from_secs(60)));
    let mut events = manager.subscribe();
    let (id, _) = world.connected(&manager).await;
    world.provider.failing_resumes.store(6, Ordering::SeqCst);

    world
        .provider
        .drop_connection(id, EndReason::NetworkLost("wifi".into()));
    loop {
        let event = events.recv().await.expect("event");
        match event.kind {
            SessionEventKind::Resumed => break,
            SessionEventKind::ResumeAbandoned { .. } => panic!("gave up before the deadline"),
            SessionEventKind::Failed { .. } => {
                world.until_asleep().await;
                world.clock.advance(Duration::from_secs(4));
            }
            _ => {}
        }
    }
    assert_eq!(
        world.provider.resumes.load(Ordering::SeqCst),
        7,
        "more than five tries"
    );
    assert_eq!(world.stored(id).await.status(), SessionStatus::Active);
}

#[tokio::test]
async fn stop_while_disconnected_ends_the_resume_loop() {
    let world = World::new();
    let manager = world.manager(policy());
    let mut events = manager.subscribe();
    let (id, _) = world.connected(&manager).await;
    world
        .provider
        .failing_resumes
        .store(usize::MAX, Ordering::SeqCst);
    world
        .provider
        .drop_connection(id, EndReason::NetworkLost("wifi".into()));
    next(&mut events, |k| {
        matches!(k, SessionEventKind::Failed { .. })
    })
    .await;
    world.until_asleep().await;

    let stopped = manager.stop("tunnel").await.expect("stop");
    assert_eq!(stopped.status(), SessionStatus::Inactive);
    world.clock.advance(Duration::from_secs(1));
    // The loop wakes, sees the session is no longer disconnected and ends:
    // no task is left asleep and no further try was made.
    for _ in 0..1000 {
        if world.clock.sleepers() == 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(world.clock.sleepers(), 0, "the resume loop ended");
    assert_eq!(world.provider.resumes.load(Ordering::SeqCst), 1);
    assert_eq!(world.stored(id).await.status(), SessionStatus::Inactive);
}

#[tokio::test]
async fn the_service_closing_or_expiry_is_recorded_not_resumed() {
    let world = World::new();
    let manager = world.manager(policy());
    let mut events = manager.subscribe();
    let (id, _) = world.connected(&manager).await;

    world
        .provider
        .drop_connection(id, EndReason::ClosedByService("canceled".into()));
    let event = next(&mut events, |k| {
        matches!(k, SessionEventKind::Disconnected { .. })
    })
    .await;
    assert_eq!(event.status, SessionStatus::Disconnected);
    let stored = world.stored(id).await;
    let last = stored.last_error.expect("reason recorded");
    assert_eq!(last.operation, "connection");
    assert!(
        last.message.contains("closed by the service: canceled"),
        "{}",
        last.message
    );
    assert_eq!(
        world.provider.resumes.load(Ordering::SeqCst),
        0,
        "not resumed"
    );
    assert_eq!(world.clock.sleepers(), 0, "no resume loop");

    manager.start("tunnel").await.expect("start re-attaches");
    world.provider.drop_connection(id, EndReason::Expired);
    let event = next(&mut events, |k| {
        matches!(k, SessionEventKind::Disconnected { .. })
    })
    .await;
    assert_eq!(event.status, SessionStatus::Expired);
    assert_eq!(world.stored(id).await.status(), SessionStatus::Expired);
}

#[tokio::test]
async fn a_connection_the_user_closed_stops_the_session() {
    let world = World::new();
    let manager = world.manager(policy());
    let mut events = manager.subscribe();
    let (id, _) = world.connected(&manager).await;
    world.provider.drop_connection(id, EndReason::ClosedByUser);
    next(&mut events, |k| matches!(k, SessionEventKind::Stopped)).await;
    assert_eq!(world.stored(id).await.status(), SessionStatus::Inactive);
    assert_eq!(world.provider.stops.load(Ordering::SeqCst), 1);
}

/// The remote command exited (a shell's `exit`): the session is over, as
/// after a user's close: stopped, with no `Disconnected` event and no
/// resume.
#[tokio::test]
async fn a_remote_command_that_exited_stops_the_session() {
    let world = World::new();
    let manager = world.manager(policy());
    let mut events = manager.subscribe();
    let (id, handle) = world.connected(&manager).await;
    world.provider.drop_connection(id, EndReason::Exited(3));
    let event = next(&mut events, |k| {
        matches!(
            k,
            SessionEventKind::Stopped | SessionEventKind::Disconnected { .. }
        )
    })
    .await;
    assert!(
        matches!(event.kind, SessionEventKind::Stopped),
        "{:?}",
        event.kind
    );
    assert_eq!(handle.end_reason(), Some(EndReason::Exited(3)));
    assert_eq!(world.stored(id).await.status(), SessionStatus::Inactive);
    assert_eq!(world.provider.stops.load(Ordering::SeqCst), 1);
    assert_eq!(world.provider.resumes.load(Ordering::SeqCst), 0);
    assert!(!EndReason::Exited(0).is_resumable());
}

/// Another process (a second manager) holds no handle: it reports the
/// session `disconnected`, and its `start` re-attaches. The first process's
/// connection, closed by that, is not recorded as a drop: the record is now
/// the second's.
#[tokio::test(flavor = "current_thread")]
async fn another_process_reports_disconnected_and_re_attaches() {
    let world = World::new();
    let first = world.manager(policy());
    let second = world.manager(policy());
    let (id, first_handle) = world.connected(&first).await;

    assert_eq!(
        second.find("tunnel").await.unwrap().status(),
        SessionStatus::Disconnected
    );
    assert_eq!(
        second.list().await.unwrap()[0].status(),
        SessionStatus::Disconnected
    );
    assert_eq!(
        world.stored(id).await.status(),
        SessionStatus::Active,
        "nothing written"
    );

    let mut second_events = second.subscribe();
    let started = second.start("tunnel").await.expect("start re-attaches");
    assert_eq!(started.status(), SessionStatus::Active);
    assert_eq!(
        world.provider.resumes.load(Ordering::SeqCst),
        1,
        "re-attached by resume"
    );
    assert!(second.live(id).is_some());
    assert_eq!(
        first_handle.end_reason(),
        Some(EndReason::ClosedByService("replaced".into()))
    );
    // Let the first manager's watcher run to completion.
    for _ in 0..200 {
        tokio::task::yield_now().await;
    }
    let stored = world.stored(id).await;
    assert_eq!(
        stored.status(),
        SessionStatus::Active,
        "the first process did not take it back"
    );
    assert!(stored.last_error.is_none());
    assert_eq!(world.provider.resumes.load(Ordering::SeqCst), 1);
    assert!(
        second_events
            .try_recv()
            .is_ok_and(|e| matches!(e.kind, SessionEventKind::Resumed))
    );
    assert_eq!(
        first.find("tunnel").await.unwrap().status(),
        SessionStatus::Disconnected
    );
}

#[tokio::test]
async fn connect_refuses_a_credential_session() {
    #[derive(Debug)]
    struct Credentials;
    #[async_trait::async_trait]
    impl SessionAction for Credentials {
        fn session_type(&self) -> SessionType {
            SessionType::Other("creds".into())
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities::none()
        }
        async fn start(&self, ctx: &ActionContext, s: &Session) -> Result<Session> {
            let mut s = s.clone();
            s.transition(SessionStatus::Active, ctx.clock.now())?;
            Ok(s)
        }
        async fn stop(&self, ctx: &ActionContext, s: &Session) -> Result<Session> {
            let mut s = s.clone();
            s.transition(SessionStatus::Inactive, ctx.clock.now())?;
            Ok(s)
        }
        async fn rotate(&self, _: &ActionContext, _: &Session) -> Result<Session> {
            Err(Error::unsupported("creds", "rotate"))
        }
    }
    let provider = Credentials;
    let world = World::new();
    let ctx = ActionContext::new(
        world.clock.clone(),
        Arc::new(session_core::InMemorySecretStore::new()),
    );
    let session = Session::new("creds", SessionType::Other("creds".into())).unwrap();
    assert!(matches!(
        provider.start_live(&ctx, &session).await,
        Err(Error::Unsupported { .. })
    ));
    let manager = SessionManager::builder()
        .repository(world.repository.clone())
        .clock(world.clock.clone())
        .provider(Arc::new(Credentials))
        .build()
        .unwrap();
    manager.add(session).await.unwrap();
    assert!(matches!(
        manager.connect("creds").await,
        Err(Error::Unsupported { .. })
    ));
    let started = manager.start("creds").await.unwrap();
    assert_eq!(
        started.status(),
        SessionStatus::Active,
        "credential sessions are unchanged"
    );
    assert_eq!(
        manager.find("creds").await.unwrap().status(),
        SessionStatus::Active
    );
}
