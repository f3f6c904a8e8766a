//! The `azure` provider and the `TokenCredential` adapter against a real
//! OAuth 2.0 server on loopback: panva's `oidc-provider` with Entra-shaped
//! paths (`session_testkit::peers::oidc`, installed by `./scripts/test` from npm).

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use session_azure::{
    ACCESS_TOKEN, AzureConfig, AzureProvider, AzureSessionCredential, AzureState, CLIENT_SECRET,
    CredentialKind, DeviceCodePrompt, REFRESH_TOKEN,
};
use session_core::{
    ActionContext, Clock, InMemorySecretStore, InMemoryWorkspace, ManualClock, Secret, SecretKey,
    Session, SessionAction, SessionManager, SessionStatus, SessionType, SystemClock,
    WorkspaceRepository,
};
use session_testkit::peers::oidc::{OidcProvider, approve_device_code, deny_device_code};
use session_testkit::suites::{ActionFixture, CredentialProbe, action_conformance};
use tokio::sync::mpsc;

async fn peer(b: session_testkit::peers::oidc::OidcBuilder) -> Option<OidcProvider> {
    tokio::task::spawn_blocking(move || b.start())
        .await
        .expect("start oidc-provider")
}

fn config(p: &OidcProvider, client_id: &str, kind: CredentialKind) -> AzureConfig {
    AzureConfig::new(p.tenant(), client_id)
        .with_authority_host(p.authority_host())
        .with_insecure_loopback_authority(true)
        .with_credential(kind)
}

async fn session(ctx: &ActionContext, name: &str, config: &AzureConfig) -> Session {
    let _ = ctx;
    Session::new(name, SessionType::Azure)
        .unwrap()
        .with_config(config)
        .unwrap()
}

async fn put(ctx: &ActionContext, s: &Session, name: &str, value: &str) {
    ctx.secrets
        .put(
            &SecretKey::new(s.session_id, name).unwrap(),
            &Secret::new(value),
        )
        .await
        .unwrap();
}

async fn get(ctx: &ActionContext, s: &Session, name: &str) -> Option<String> {
    ctx.secrets
        .get(&SecretKey::new(s.session_id, name).unwrap())
        .await
        .unwrap()
        .map(|v| v.expose().to_owned())
}

fn moved(s: &Session, to: SessionStatus) -> Session {
    let mut next = s.clone();
    next.transition(to, SystemClock.now()).unwrap();
    next
}

/// A provider whose prompt hook hands each device prompt to the test.
fn device_provider() -> (AzureProvider, mpsc::UnboundedReceiver<DeviceCodePrompt>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let provider = AzureProvider::builder()
        .device_poll_interval(Duration::from_millis(200))
        .device_prompt(move |p| {
            let _ = tx.send(p.clone());
        })
        .build()
        .unwrap();
    (provider, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_secret_passes_the_conformance_harness() {
    let Some(p) = peer(OidcProvider::builder()).await else {
        return;
    };
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let ctx = ActionContext::new(clock.clone(), Arc::new(InMemorySecretStore::new()));
    let cfg = config(&p, p.confidential_client_id(), CredentialKind::ClientSecret);
    let good = session(&ctx, "app", &cfg).await;
    put(&ctx, &good, CLIENT_SECRET, p.client_secret()).await;
    let bad = session(&ctx, "app-wrong-secret", &cfg).await;
    put(&ctx, &bad, CLIENT_SECRET, "CANARY-wrong-secret").await;
    let probe: CredentialProbe = Arc::new(|ctx: ActionContext, s: Session| {
        Box::pin(async move { get(&ctx, &s, ACCESS_TOKEN).await })
    });
    let fixture = ActionFixture {
        session: good.clone(),
        failing_session: Some(bad.clone()),
        ctx: ctx.clone(),
        clock,
        probe,
        pause_before_rotate: Duration::from_millis(1100),
    };
    let provider = AzureProvider::builder().build().unwrap();
    action_conformance(&provider, &fixture).await;
    let boxed: Box<dyn SessionAction> = Box::new(provider.clone());
    action_conformance(&boxed, &fixture).await;

    // The wrong secret: a clear unauthenticated error, no secret in it.
    let err = provider
        .start(&ctx, &moved(&bad, SessionStatus::Pending))
        .await
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert_eq!(err.category(), "unauthenticated", "{text}");
    assert!(
        text.contains("invalid_client") && text.contains("app-wrong-secret"),
        "{text}"
    );
    assert!(!text.contains("CANARY"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_code_sign_in_refresh_and_token_credential() {
    let Some(p) = peer(OidcProvider::builder()).await else {
        return;
    };
    let ctx = ActionContext::new(Arc::new(SystemClock), Arc::new(InMemorySecretStore::new()));
    let cfg = config(&p, p.public_client_id(), CredentialKind::DeviceCode);
    let s = session(&ctx, "user", &cfg).await;
    let (provider, mut prompts) = device_provider();
    let approver = tokio::spawn(async move {
        let prompt = prompts.recv().await.expect("a device prompt");
        assert!(
            prompt.message.contains(&prompt.user_code),
            "{}",
            prompt.message
        );
        let uri = prompt
            .verification_uri_complete
            .clone()
            .expect("oidc-provider sends verification_uri_complete");
        approve_device_code(uri.as_str(), "alice@contoso.com")
            .await
            .expect("approve");
        prompts
    });
    let active = provider
        .start(&ctx, &moved(&s, SessionStatus::Pending))
        .await
        .unwrap();
    let mut prompts = approver.await.unwrap();
    assert_eq!(active.status(), SessionStatus::Active);
    let expires = active.expiration.expect("expiry from expires_in");
    assert!(expires > SystemClock.now() + Duration::from_secs(3000));
    let at1 = get(&ctx, &active, ACCESS_TOKEN)
        .await
        .expect("access token");
    let rt1 = get(&ctx, &active, REFRESH_TOKEN)
        .await
        .expect("refresh token");
    assert!(!serde_json::to_string(&active).unwrap().contains(&at1));
    // The ID token and client_info name the account.
    let recorded: AzureState = active.state.get().unwrap();
    let account = recorded.signed_in_account.expect("the signed-in account");
    assert!(
        !active.config.as_map().contains_key("signedInAccount"),
        "the account is state, not a setting"
    );
    assert_eq!(account.username, "alice@contoso.com");
    assert_eq!(account.tenant_id.as_deref(), Some(p.tenant()));
    assert_eq!(
        account.home_account_id,
        format!("{}.{}", account.local_account_id, p.tenant()),
        "uid.utid from client_info"
    );

    // rotate = refresh: a new access token, no new prompt.
    let rotated = provider
        .rotate(&ctx, &moved(&active, SessionStatus::Rotating))
        .await
        .unwrap();
    let at2 = get(&ctx, &rotated, ACCESS_TOKEN).await.unwrap();
    assert_ne!(at1, at2);
    let after: AzureState = rotated.state.get().unwrap();
    assert_eq!(
        after.signed_in_account.map(|a| a.home_account_id),
        Some(account.home_account_id.clone()),
        "the refresh names the same account"
    );
    assert!(prompts.try_recv().is_err(), "no second device prompt");
    let rt2 = get(&ctx, &rotated, REFRESH_TOKEN).await.unwrap();
    // oidc-provider rotates the refresh token of a public client that is not
    // sender-constrained (its default `rotateRefreshToken`), and the old one
    // is then spent: the provider must have stored the new one.
    assert!(
        rt1 != rt2,
        "the rotated refresh token replaced the spent one"
    );

    // The TokenCredential: the cached session token, then (with a minimum
    // lifetime longer than the token's) a renewed one.
    // The credential works through a manager holding the session.
    let workspace = Arc::new(InMemoryWorkspace::new());
    workspace.insert(rotated.clone()).await.unwrap();
    let manager = SessionManager::builder()
        .repository(workspace)
        .secrets(ctx.secrets.clone())
        .provider(Arc::new(provider.clone()))
        .build()
        .unwrap();
    let cred = AzureSessionCredential::new(manager, "user");
    let scope = p.default_scope();
    let t = cred.get_token(&[scope.as_str()], None).await.unwrap();
    assert_eq!(t.token.secret(), at2, "the session's own token is reused");
    let dbg = format!("{cred:?}");
    assert!(!dbg.contains(&at2), "{dbg}");
    let fresh = cred.clone().with_min_ttl(Duration::from_secs(100_000));
    let t2 = fresh.get_token(&[scope.as_str()], None).await.unwrap();
    assert_ne!(t2.token.secret(), at2, "renewed with the refresh token");
    assert_eq!(
        get(&ctx, &rotated, ACCESS_TOKEN).await.as_deref(),
        Some(t2.token.secret()),
        "renewed by a rotate through the manager, which stored the new token"
    );
    let dyn_cred: Arc<dyn TokenCredential> = Arc::new(cred);
    dyn_cred.get_token(&[scope.as_str()], None).await.unwrap();

    // stop forgets both tokens; the next start signs in again.
    let stopped = provider
        .stop(&ctx, &moved(&rotated, SessionStatus::Stopping))
        .await
        .unwrap();
    assert_eq!(stopped.status(), SessionStatus::Inactive);
    assert!(get(&ctx, &stopped, ACCESS_TOKEN).await.is_none());
    assert!(get(&ctx, &stopped, REFRESH_TOKEN).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_sign_in_and_expired_refresh_token_are_clear_errors() {
    let Some(p) = peer(OidcProvider::builder().refresh_token_ttl(Duration::from_secs(2))).await
    else {
        return;
    };
    let ctx = ActionContext::new(Arc::new(SystemClock), Arc::new(InMemorySecretStore::new()));
    let cfg = config(&p, p.public_client_id(), CredentialKind::DeviceCode);

    // Declined.
    let s = session(&ctx, "user-declines", &cfg).await;
    let (provider, mut prompts) = device_provider();
    let denier = tokio::spawn(async move {
        let prompt = prompts.recv().await.unwrap();
        deny_device_code(prompt.verification_uri_complete.as_deref().unwrap())
            .await
            .expect("deny");
    });
    let err = provider
        .start(&ctx, &moved(&s, SessionStatus::Pending))
        .await
        .unwrap_err();
    denier.await.unwrap();
    assert_eq!(err.category(), "permission_denied", "{err}");
    assert!(err.to_string().contains("declined"), "{err}");

    // Signed in, then the refresh token expires: rotate fails with a clear
    // unauthenticated error and the stored tokens are dropped.
    let s = session(&ctx, "user-expires", &cfg).await;
    let (provider, mut prompts) = device_provider();
    let approver = tokio::spawn(async move {
        let prompt = prompts.recv().await.unwrap();
        approve_device_code(prompt.verification_uri_complete.as_deref().unwrap(), "bob")
            .await
            .expect("approve");
    });
    let active = provider
        .start(&ctx, &moved(&s, SessionStatus::Pending))
        .await
        .unwrap();
    approver.await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let err = provider
        .rotate(&ctx, &moved(&active, SessionStatus::Rotating))
        .await
        .unwrap_err();
    assert_eq!(err.category(), "unauthenticated", "{err}");
    assert!(err.to_string().contains("start the session again"), "{err}");
    assert!(get(&ctx, &active, REFRESH_TOKEN).await.is_none());
    assert!(get(&ctx, &active, ACCESS_TOKEN).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_manager_an_expired_refresh_token_ends_the_session_inactive() {
    let Some(p) = peer(OidcProvider::builder().refresh_token_ttl(Duration::from_secs(2))).await
    else {
        return;
    };
    let store = Arc::new(InMemorySecretStore::new());
    let (provider, mut prompts) = device_provider();
    let repo = Arc::new(InMemoryWorkspace::new());
    let manager = SessionManager::builder()
        .repository(repo.clone())
        .secrets(store.clone())
        .provider(Arc::new(provider))
        .build()
        .unwrap();
    let cfg = config(&p, p.public_client_id(), CredentialKind::DeviceCode);
    let s = manager
        .add(
            Session::new("user", SessionType::Azure)
                .unwrap()
                .with_config(&cfg)
                .unwrap(),
        )
        .await
        .unwrap();
    let approver = tokio::spawn(async move {
        let prompt = prompts.recv().await.unwrap();
        approve_device_code(
            prompt.verification_uri_complete.as_deref().unwrap(),
            "carol",
        )
        .await
        .expect("approve");
    });
    let active = manager.start("user").await.unwrap();
    approver.await.unwrap();
    assert_eq!(active.status(), SessionStatus::Active);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let err = manager.rotate("user").await.unwrap_err();
    assert_eq!(err.category(), "unauthenticated", "{err}");
    let stored = repo.get(s.session_id).await.unwrap();
    assert_eq!(
        stored.status(),
        SessionStatus::Inactive,
        "the sign-in is gone"
    );
    let recorded = stored.last_error.clone().expect("the error is recorded");
    assert_eq!(recorded.operation, "rotate");
    assert_eq!(recorded.category, "unauthenticated");
    let ctx = ActionContext::new(Arc::new(SystemClock), store);
    assert!(get(&ctx, &stored, ACCESS_TOKEN).await.is_none());
    assert!(get(&ctx, &stored, REFRESH_TOKEN).await.is_none());
}
