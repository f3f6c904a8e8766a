//! The Redfish client against OpenStack's `sushy-emulator` (a pinned test
//! peer, `session_testkit::peers::sushy`): a real third-party Redfish service with
//! HTTP Basic authentication and no SessionService, so the client must fall
//! back to Basic.

use std::sync::Arc;

use session_core::{
    ActionContext, InMemorySecretStore, Secret, SecretKey, Session, SessionAction, SessionStatus,
    SessionType, SystemClock,
};
use session_redfish::client::{
    AuthMode, PASSWORD_SECRET, RedfishClient, RedfishConfig, RedfishProvider, RedfishState,
    TOKEN_SECRET,
};
use session_testkit::peers::sushy::{FAKE_SYSTEM_UUID, SushyEmulator};

async fn emulator() -> Option<SushyEmulator> {
    tokio::task::spawn_blocking(SushyEmulator::start)
        .await
        .expect("start the emulator")
}

fn config(sushy: &SushyEmulator) -> RedfishConfig {
    RedfishConfig::new(sushy.base_url(), sushy.username())
        .with_ca_pem(sushy.cert_pem().expect("HTTPS"))
}

fn moved(session: &Session, to: SessionStatus) -> Session {
    let mut next = session.clone();
    next.transition(to, session_core::Clock::now(&SystemClock))
        .unwrap();
    next
}

#[tokio::test]
async fn client_falls_back_to_basic_without_a_session_service() {
    let Some(sushy) = emulator().await else {
        return;
    };
    let client = RedfishClient::builder(config(&sushy))
        .password(Secret::new(sushy.password()))
        .connect()
        .await
        .expect("Basic fallback");
    assert_eq!(client.auth_mode(), Some(AuthMode::Basic));
    assert!(client.session_uri().is_none());
    let systems = client.get("/redfish/v1/Systems").await.unwrap();
    let member = systems["Members"][0]["@odata.id"].as_str().unwrap();
    assert!(member.ends_with(FAKE_SYSTEM_UUID), "{systems}");
    let system = client.get(member).await.unwrap();
    assert_eq!(system["Id"], FAKE_SYSTEM_UUID);
    // There is no Sessions collection to list.
    let err = client.sessions().await.unwrap_err();
    assert_eq!(err.category(), "unsupported", "{err}");
    // The keep-alive has nothing to do with Basic.
    assert!(!client.keep_alive(None).unwrap().is_running());
    // A logout ends the client (nothing remote to delete).
    client.logout().await.unwrap();
    assert!(client.get("/redfish/v1/Systems").await.is_err());
    assert_eq!(client.relogins(), 0);
}

#[tokio::test]
async fn wrong_password_and_disabled_fallback_are_clear_errors() {
    let Some(sushy) = emulator().await else {
        return;
    };
    let err = RedfishClient::builder(config(&sushy))
        .password(Secret::new("CANARY-not-the-password"))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.category(), "unauthenticated", "{err}");
    let text = format!("{err} {err:?}");
    assert!(text.contains("unauthorized"), "{text}");
    assert!(!text.contains("CANARY"), "{text}");

    let err = RedfishClient::builder(config(&sushy).with_basic_auth_fallback(false))
        .password(Secret::new(sushy.password()))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.category(), "unsupported", "{err}");
    assert!(err.to_string().contains("no SessionService"), "{err}");
}

#[tokio::test]
async fn provider_start_rotate_stop_with_basic() {
    let Some(sushy) = emulator().await else {
        return;
    };
    let ctx = ActionContext::new(Arc::new(SystemClock), Arc::new(InMemorySecretStore::new()));
    let session = Session::new("sushy", SessionType::Redfish)
        .unwrap()
        .with_config(&config(&sushy))
        .unwrap();
    ctx.secrets
        .put(
            &SecretKey::new(session.session_id, PASSWORD_SECRET).unwrap(),
            &Secret::new(sushy.password()),
        )
        .await
        .unwrap();
    let provider = RedfishProvider::new();
    let active = provider
        .start(&ctx, &moved(&session, SessionStatus::Pending))
        .await
        .unwrap();
    let stored: RedfishState = active.state.get().unwrap();
    assert_eq!(stored.auth_mode, Some(AuthMode::Basic));
    assert!(stored.session_uri.is_none());
    assert!(active.expiration.is_none(), "Basic does not expire");
    let token_key = SecretKey::new(session.session_id, TOKEN_SECRET).unwrap();
    assert!(ctx.secrets.get(&token_key).await.unwrap().is_none());

    // The managed client sends Basic.
    let client = provider.client(&ctx, &active).await.unwrap();
    assert_eq!(client.auth_mode(), Some(AuthMode::Basic));
    client.get("/redfish/v1/Systems").await.unwrap();

    let rotated = provider
        .rotate(&ctx, &moved(&active, SessionStatus::Rotating))
        .await
        .unwrap();
    assert_eq!(rotated.status(), SessionStatus::Active);
    let stopped = provider
        .stop(&ctx, &moved(&rotated, SessionStatus::Stopping))
        .await
        .unwrap();
    assert_eq!(stopped.status(), SessionStatus::Inactive);
    assert!(stopped.state.is_empty(), "{:?}", stopped.state);

    // The wrong password: unauthenticated on start, naming the session.
    ctx.secrets
        .put(
            &SecretKey::new(session.session_id, PASSWORD_SECRET).unwrap(),
            &Secret::new("CANARY-wrong"),
        )
        .await
        .unwrap();
    let err = provider
        .start(&ctx, &moved(&stopped, SessionStatus::Pending))
        .await
        .unwrap_err();
    assert_eq!(err.category(), "unauthenticated", "{err}");
    assert!(err.to_string().contains("sushy"), "{err}");
}
