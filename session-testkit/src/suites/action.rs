//! The conformance harness every [`SessionAction`] implementation runs.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use session_core::{ActionContext, Error, ManualClock, Session, SessionAction, SessionStatus};

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
pub async fn action_conformance(provider: &dyn SessionAction, fixture: &ActionFixture) {
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
