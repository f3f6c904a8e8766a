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
