//! The conformance harness every [`SessionAction`] implementation runs.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use session_core::{
    ActionContext, EndReason, Error, InMemorySecretStore, InMemoryWorkspace, LiveHandle,
    ManualClock, ResumePolicy, Session, SessionAction, SessionEventKind, SessionId, SessionManager,
    SessionStatus,
};

/// Reads back what a provider made available for a session (a token in the
/// secret store, a profile in a credentials file, a live connection), as a
/// fingerprint, or `None` when nothing is there.
pub type CredentialProbe =
    Arc<dyn Fn(ActionContext, Session) -> BoxFuture<'static, Option<String>> + Send + Sync>;

/// What the harness needs besides the provider.
pub struct ActionFixture {
    /// A valid `inactive` session of the provider's type.
    pub session: Session,
    /// A session `start` must refuse (bad configuration or credentials), if
    /// the provider can be made to fail.
    pub failing_session: Option<Session>,
    /// The context, whose clock must be `clock`.
    pub ctx: ActionContext,
    /// The manual clock behind `ctx.clock`, moved forward between start and
    /// rotate so new credentials get a later expiry.
    pub clock: Arc<ManualClock>,
    /// See [`CredentialProbe`].
    pub probe: CredentialProbe,
    /// Real time to wait between start and rotate, for peers whose issued
    /// values change only with wall-clock time (moto's `GetSessionToken`
    /// returns fixed keys; only its expiry, in whole seconds, moves).
    /// Zero for everything else.
    pub pause_before_rotate: Duration,
}

impl std::fmt::Debug for ActionFixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionFixture")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

fn moved(session: &Session, to: SessionStatus, clock: &ManualClock) -> Session {
    use session_core::Clock;
    let mut next = session.clone();
    next.transition(to, clock.now())
        .unwrap_or_else(|e| panic!("harness: {e}"));
    next
}

/// Start → active, rotate → new credentials, different from the ones it
/// replaced (or `Unsupported`), stop →
/// inactive and idempotent, failures typed and naming the session.
///
/// For a provider with [`Capabilities::live_connection`](session_core::Capabilities::live_connection)
/// also: `start_live` gives a handle whose connection is up; `stop` ends it
/// with [`EndReason::ClosedByUser`] before it returns and is idempotent;
/// `resume` of a `disconnected` session gives a new handle (or
/// `Unsupported`). Drops need the manager: see [`live_conformance`].
pub async fn action_conformance(provider: &dyn SessionAction, fixture: &ActionFixture) {
    base_conformance(provider, fixture).await;
    if provider.capabilities().live_connection {
        live_action_section(provider, fixture).await;
    }
}

async fn base_conformance(provider: &dyn SessionAction, fixture: &ActionFixture) {
    let ActionFixture {
        session,
        ctx,
        clock,
        probe,
        ..
    } = fixture;
    assert_eq!(
        provider.session_type(),
        session.session_type,
        "fixture type matches the provider"
    );
    assert!(
        probe(ctx.clone(), session.clone()).await.is_none(),
        "nothing is available before start"
    );

    // start: pending -> active
    let started = provider
        .start(ctx, &moved(session, SessionStatus::Pending, clock))
        .await
        .unwrap_or_else(|e| panic!("start failed: {e}"));
    assert_eq!(
        started.status(),
        SessionStatus::Active,
        "start returns the session active"
    );
    assert_eq!(started.session_id, session.session_id, "start keeps the id");
    assert_eq!(
        started.session_name, session.session_name,
        "start keeps the name"
    );
    assert_eq!(
        started.parent_session_id, session.parent_session_id,
        "start keeps the parent"
    );
    if let Some(expiration) = started.expiration {
        use session_core::Clock;
        assert!(expiration > clock.now(), "a fresh expiry is in the future");
    }
    let first = probe(ctx.clone(), started.clone())
        .await
        .expect("start makes credentials available");

    // rotate: rotating -> active with different credentials, or Unsupported
    clock.advance(Duration::from_secs(60));
    if !fixture.pause_before_rotate.is_zero() {
        tokio::time::sleep(fixture.pause_before_rotate).await;
    }
    let rotating = moved(&started, SessionStatus::Rotating, clock);
    let current = if provider.capabilities().rotate {
        let rotated = provider
            .rotate(ctx, &rotating)
            .await
            .unwrap_or_else(|e| panic!("rotate failed: {e}"));
        assert_eq!(
            rotated.status(),
            SessionStatus::Active,
            "rotate returns the session active"
        );
        let second = probe(ctx.clone(), rotated.clone())
            .await
            .expect("rotate leaves credentials available");
        // `Capabilities::rotate` promises replaced credentials: a rotate
        // that only moves the expiry would leave revoked or leaked ones in
        // use.
        assert_ne!(second, first, "rotate issues new credentials");
        if let (Some(before), Some(after)) = (started.expiration, rotated.expiration) {
            assert!(
                after >= before,
                "rotate does not shorten the credentials' life ({after} < {before})"
            );
        }
        rotated
    } else if provider.capabilities().rotate_resumes {
        // A live session's rotate resumes its connection in place: the
        // same remote session, still usable.
        let rotated = provider
            .rotate(ctx, &rotating)
            .await
            .unwrap_or_else(|e| panic!("rotate (resume in place) failed: {e}"));
        assert_eq!(
            rotated.status(),
            SessionStatus::Active,
            "rotate returns the session active"
        );
        probe(ctx.clone(), rotated.clone())
            .await
            .expect("the connection works after rotate resumed it");
        rotated
    } else {
        match provider.rotate(ctx, &rotating).await {
            Err(Error::Unsupported { .. }) => {}
            other => panic!("rotate without the capability must be Unsupported, got {other:?}"),
        }
        started
    };

    // stop: stopping -> inactive, credentials gone, and again (idempotent)
    let stopping = moved(&current, SessionStatus::Stopping, clock);
    let stopped = provider
        .stop(ctx, &stopping)
        .await
        .unwrap_or_else(|e| panic!("stop failed: {e}"));
    assert_eq!(
        stopped.status(),
        SessionStatus::Inactive,
        "stop returns the session inactive"
    );
    assert!(
        probe(ctx.clone(), stopped.clone()).await.is_none(),
        "stop removes what start made available"
    );
    let again = provider
        .stop(ctx, &stopping)
        .await
        .unwrap_or_else(|e| panic!("a second stop must succeed (idempotent): {e}"));
    assert_eq!(again.status(), SessionStatus::Inactive);

    // a failing start is a typed error that names the session
    if let Some(failing) = &fixture.failing_session {
        match provider
            .start(ctx, &moved(failing, SessionStatus::Pending, clock))
            .await
        {
            Ok(s) => panic!("start of the failing fixture succeeded: {s:?}"),
            Err(e) => {
                let text = e.to_string();
                assert!(
                    text.contains(&failing.session_name)
                        || text.contains(&failing.session_id.to_string()),
                    "the error names the session: {text}"
                );
                assert_ne!(e.category(), "", "the error has a category");
            }
        }
    }
}

fn assert_usable(handle: &LiveHandle, what: &str) {
    assert!(
        handle.end_reason().is_none(),
        "{what}: the connection is up when the handle is returned"
    );
    assert!(
        !handle.addresses().is_empty() || handle.take_stream().is_some(),
        "{what}: the handle gives a local address or a stream"
    );
}

async fn live_action_section(provider: &dyn SessionAction, fixture: &ActionFixture) {
    let ActionFixture {
        session,
        ctx,
        clock,
        ..
    } = fixture;
    let (started, handle) = provider
        .start_live(ctx, &moved(session, SessionStatus::Pending, clock))
        .await
        .unwrap_or_else(|e| panic!("start_live failed: {e}"));
    assert_eq!(
        started.status(),
        SessionStatus::Active,
        "start_live returns the session active"
    );
    assert_eq!(
        started.session_id, session.session_id,
        "start_live keeps the id"
    );
    assert_usable(&handle, "start_live");

    // resume of a session whose connection this caller gave up on
    let disconnected = moved(&started, SessionStatus::Disconnected, clock);
    let current = match provider
        .resume(ctx, &moved(&disconnected, SessionStatus::Pending, clock))
        .await
    {
        Ok((resumed, again)) => {
            assert_eq!(
                resumed.status(),
                SessionStatus::Active,
                "resume returns the session active"
            );
            assert_eq!(
                resumed.session_id, session.session_id,
                "resume keeps the id"
            );
            assert_usable(&again, "resume");
            assert!(!again.same_connection(&handle), "resume gives a new handle");
            (resumed, again)
        }
        Err(Error::Unsupported { .. }) => (started, handle),
        Err(e) => panic!("resume failed: {e}"),
    };

    let stopping = moved(&current.0, SessionStatus::Stopping, clock);
    let stopped = provider
        .stop(ctx, &stopping)
        .await
        .unwrap_or_else(|e| panic!("stop of a live session failed: {e}"));
    assert_eq!(stopped.status(), SessionStatus::Inactive);
    assert_eq!(
        current.1.end_reason(),
        Some(EndReason::ClosedByUser),
        "stop closes the connection, as closed by the user, before it returns"
    );
    provider
        .stop(ctx, &stopping)
        .await
        .unwrap_or_else(|e| panic!("a second stop of a live session must succeed: {e}"));
}

/// Makes the provider's connection for a session drop as the network would
/// (the remote session stays resumable); returns whether one was open.
pub type DropConnection = Arc<dyn Fn(SessionId) -> bool + Send + Sync>;

/// What [`live_conformance`] needs besides the provider.
pub struct LiveFixture {
    /// A valid `inactive` session of the provider's type.
    pub session: Session,
    /// The clock the managers run on.
    pub clock: Arc<ManualClock>,
    /// See [`DropConnection`].
    pub drop_connection: DropConnection,
}

impl std::fmt::Debug for LiveFixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveFixture")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// What the [`SessionManager`] does with a live provider: `connect` gives a
/// handle; a second manager on the same workspace (another process) sees
/// the session `disconnected`; a dropped connection is persisted
/// `disconnected` with its reason and published; `resume` re-attaches with a
/// new handle; `stop` closes it and is idempotent.
///
/// Automatic resuming is turned off here (deadline zero) so each step is
/// observed; the policy has its own tests in `session-core`.
pub async fn live_conformance(provider: Arc<dyn SessionAction>, fixture: &LiveFixture) {
    assert!(
        provider.capabilities().live_connection,
        "live_conformance needs a provider with live_connection"
    );
    let repository = Arc::new(InMemoryWorkspace::new());
    let secrets = Arc::new(InMemorySecretStore::new());
    let manager = |provider: Arc<dyn SessionAction>| {
        SessionManager::builder()
            .repository(repository.clone())
            .secrets(secrets.clone())
            .clock(fixture.clock.clone())
            .provider(provider)
            .resume_policy(ResumePolicy::default().with_deadline(Duration::ZERO))
            .build()
            .expect("manager")
    };
    let first = manager(provider.clone());
    let second = manager(provider.clone());
    let mut events = first.subscribe();
    let added = first.add(fixture.session.clone()).await.expect("add");
    let id = added.session_id;

    // connect: active, with a handle this manager holds
    let (session, handle) = first
        .connect(&id.to_string())
        .await
        .unwrap_or_else(|e| panic!("connect failed: {e}"));
    assert_eq!(session.status(), SessionStatus::Active);
    assert_usable(&handle, "connect");
    assert!(
        first.live(id).is_some_and(|h| h.same_connection(&handle)),
        "the manager holds the handle"
    );
    assert_eq!(
        first.find(&id.to_string()).await.expect("find").status(),
        SessionStatus::Active
    );

    // another process's view: not held there, so not trusted as active
    assert_eq!(
        second.find(&id.to_string()).await.expect("find").status(),
        SessionStatus::Disconnected,
        "a manager that does not hold the connection reports it disconnected"
    );
    assert!(second.live(id).is_none());

    // the connection drops: disconnected, with the reason, and an event
    assert!(
        (fixture.drop_connection)(id),
        "the fixture dropped an open connection"
    );
    let reason = loop {
        match events.recv().await.expect("events") {
            event if event.session_id == id => {
                if let SessionEventKind::Disconnected { reason } = event.kind {
                    assert_eq!(event.status, SessionStatus::Disconnected);
                    break reason;
                }
            }
            _ => {}
        }
    };
    assert_eq!(
        handle.end_reason(),
        Some(reason.clone()),
        "the handle saw the end"
    );
    let stored = first.repository().get(id).await.expect("get");
    assert_eq!(
        stored.status(),
        SessionStatus::Disconnected,
        "the drop is persisted"
    );
    let last = stored
        .last_error
        .as_ref()
        .expect("the reason is recorded in last_error");
    assert!(
        last.message.contains(&reason.to_string()),
        "last_error says why: {}",
        last.message
    );
    assert!(
        first.live(id).is_none(),
        "a dropped connection is not handed out"
    );
    assert_eq!(
        second.find(&id.to_string()).await.expect("find").status(),
        SessionStatus::Disconnected
    );

    // resume: active again with a new handle
    let resumed = first
        .resume(&id.to_string())
        .await
        .unwrap_or_else(|e| panic!("resume failed: {e}"));
    assert_eq!(resumed.status(), SessionStatus::Active);
    assert!(
        resumed.last_error.is_none(),
        "a resume clears the recorded drop"
    );
    let again = first.live(id).expect("a resumed session has a handle");
    assert!(!again.same_connection(&handle));
    assert_usable(&again, "resume");

    // stop: closed by the user, inactive, idempotent
    let stopped = first.stop(&id.to_string()).await.expect("stop");
    assert_eq!(stopped.status(), SessionStatus::Inactive);
    assert_eq!(
        again.end_reason(),
        Some(EndReason::ClosedByUser),
        "stop closes the connection"
    );
    assert!(first.live(id).is_none());
    let twice = first
        .stop(&id.to_string())
        .await
        .expect("a second stop succeeds");
    assert_eq!(twice.status(), SessionStatus::Inactive);
    assert_eq!(
        second.find(&id.to_string()).await.expect("find").status(),
        SessionStatus::Inactive
    );
}
