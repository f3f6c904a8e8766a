//! The SessionAction harness, run on the test provider three ways.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use session_core::{
    ActionContext, InMemorySecretStore, ManualClock, SecretKey, Session, SessionAction, SessionType,
};
use session_testkit::doubles::{TOKEN_SECRET, TokenConfig, TokenProvider};
use session_testkit::suites::{ActionFixture, action_conformance};

fn fixture(session_type: SessionType) -> ActionFixture {
    let clock = Arc::new(ManualClock::new(
        time::macros::datetime!(2030-01-01 0:00 UTC),
    ));
    let ctx = ActionContext::new(clock.clone(), Arc::new(InMemorySecretStore::new()));
    let session = Session::new("harness", session_type.clone()).expect("session");
    let failing = Session::new("harness-refused", session_type)
        .expect("session")
        .with_config(&TokenConfig {
            fail_start: true,
            ..Default::default()
        })
        .expect("config");
    ActionFixture {
        session,
        failing_session: Some(failing),
        ctx,
        clock,
        probe: Arc::new(|ctx: ActionContext, session: Session| {
            async move {
                let key = SecretKey::new(session.session_id, TOKEN_SECRET).ok()?;
                let token = ctx.secrets.get(&key).await.ok()??;
                Some(token.expose().to_owned())
            }
            .boxed()
        }),
        pause_before_rotate: Duration::ZERO,
    }
}

fn provider() -> TokenProvider {
    TokenProvider::new(SessionType::Other("test".into()), Duration::from_secs(3600))
}

#[tokio::test]
async fn token_provider_direct() {
    action_conformance(&provider(), &fixture(SessionType::Other("test".into()))).await;
}

#[tokio::test]
async fn token_provider_boxed() {
    let boxed: Box<dyn SessionAction> = Box::new(provider());
    action_conformance(&boxed, &fixture(SessionType::Other("test".into()))).await;
}

#[tokio::test]
async fn token_provider_arc() {
    let shared: Arc<dyn SessionAction> = Arc::new(provider());
    action_conformance(&shared, &fixture(SessionType::Other("test".into()))).await;
}

#[tokio::test]
async fn provider_without_rotate_passes_with_unsupported() {
    action_conformance(
        &provider().without_rotate(),
        &fixture(SessionType::Other("test".into())),
    )
    .await;
}

/// A provider with one deliberate defect, to prove the suite catches it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Flaw {
    /// No defect: the control, which must pass.
    None,
    /// Rotate moves the expiry but hands back the same credentials.
    RotateOnlyBumpsExpiry,
    /// Stop says inactive but leaves the token.
    StopLeavesCredentials,
    /// A second stop fails.
    StopNotIdempotent,
    /// Start returns the session still pending.
    StartNotActive,
    /// Start renames the session.
    StartRenames,
    /// Start sets an expiry in the past.
    StartAlreadyExpired,
    /// Claims no rotate, yet rotate succeeds.
    RotateWithoutCapability,
    /// The failing start's error does not say which session.
    AnonymousError,
}

#[derive(Debug)]
struct Flawed {
    inner: TokenProvider,
    flaw: Flaw,
}

#[async_trait::async_trait]
impl SessionAction for Flawed {
    fn session_type(&self) -> SessionType {
        self.inner.session_type()
    }

    fn capabilities(&self) -> session_core::Capabilities {
        let rotate = self.flaw != Flaw::RotateWithoutCapability;
        self.inner.capabilities().with_rotate(rotate)
    }

    async fn start(&self, ctx: &ActionContext, session: &Session) -> session_core::Result<Session> {
        let mut started = match self.inner.start(ctx, session).await {
            Err(_) if self.flaw == Flaw::AnonymousError => {
                return Err(session_core::Error::Unauthenticated {
                    target: "the service".into(),
                    message: "refused".into(),
                });
            }
            other => other?,
        };
        match self.flaw {
            Flaw::StartNotActive => started = session.clone(),
            Flaw::StartRenames => started.session_name.push_str("-renamed"),
            Flaw::StartAlreadyExpired => {
                started.expiration = Some(ctx.clock.now() - Duration::from_secs(1));
            }
            _ => {}
        }
        Ok(started)
    }

    async fn stop(&self, ctx: &ActionContext, session: &Session) -> session_core::Result<Session> {
        let key = SecretKey::new(session.session_id, TOKEN_SECRET)?;
        let had_token = ctx.secrets.get(&key).await?.is_some();
        match self.flaw {
            Flaw::StopLeavesCredentials => {
                let mut stopped = session.clone();
                stopped.transition(session_core::SessionStatus::Inactive, ctx.clock.now())?;
                Ok(stopped)
            }
            Flaw::StopNotIdempotent if !had_token => Err(session_core::Error::not_found(format!(
                "{}: nothing to stop",
                session.label()
            ))),
            _ => self.inner.stop(ctx, session).await,
        }
    }

    async fn rotate(
        &self,
        ctx: &ActionContext,
        session: &Session,
    ) -> session_core::Result<Session> {
        match self.flaw {
            Flaw::RotateOnlyBumpsExpiry => {
                let mut rotated = session.clone();
                rotated.expiration = Some(ctx.clock.now() + Duration::from_secs(3600));
                rotated.transition(session_core::SessionStatus::Active, ctx.clock.now())?;
                Ok(rotated)
            }
            _ => self.inner.rotate(ctx, session).await,
        }
    }
}

#[tokio::test]
async fn the_suite_catches_each_flaw() {
    eprintln!("the_suite_catches_each_flaw: the panics printed below are expected");
    // The wrapper without a flaw passes: the failures below are the flaws'.
    let control = Flawed {
        inner: provider(),
        flaw: Flaw::None,
    };
    action_conformance(&control, &fixture(SessionType::Other("test".into()))).await;
    for (flaw, expected) in [
        (Flaw::RotateOnlyBumpsExpiry, "rotate issues new credentials"),
        (
            Flaw::StopLeavesCredentials,
            "stop removes what start made available",
        ),
        (Flaw::StopNotIdempotent, "a second stop must succeed"),
        (Flaw::StartNotActive, "start returns the session active"),
        (Flaw::StartRenames, "start keeps the name"),
        (Flaw::StartAlreadyExpired, "a fresh expiry is in the future"),
        (
            Flaw::RotateWithoutCapability,
            "rotate without the capability must be Unsupported",
        ),
        (Flaw::AnonymousError, "the error names the session"),
    ] {
        let flawed = Flawed {
            inner: provider(),
            flaw,
        };
        let message = session_testkit::suites::failure_of(
            async move {
                action_conformance(&flawed, &fixture(SessionType::Other("test".into()))).await;
            },
            &format!("a provider with {flaw:?}"),
        )
        .await;
        assert!(
            message.contains(expected),
            "{flaw:?}: unexpected failure: {message}"
        );
    }
}
