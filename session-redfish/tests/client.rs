//! The Redfish session client (`RedfishProvider`) against this crate's own
//! server, started in-process over HTTPS with its generated CA.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use session_core::{
    ActionContext, Clock, InMemorySecretStore, ManualClock, Secret, SecretKey, Session,
    SessionAction, SessionStatus, SessionType, SystemClock,
};
use session_redfish::client::{
    PASSWORD_SECRET, RedfishConfig, RedfishProvider, RedfishState, TOKEN_SECRET,
};
use session_redfish::server::{RedfishServer, RedfishServerBuilder, RedfishServerHandle, Role};
use session_testkit::suites::{ActionFixture, CredentialProbe, action_conformance};

const ADMIN_PW: &str = "CANARY-admin-pw-91c2";
const WRONG_PW: &str = "CANARY-wrong-pw-5d0e";

fn builder() -> RedfishServerBuilder {
    RedfishServer::builder().account("admin", Secret::new(ADMIN_PW), Role::Administrator)
}

async fn start_server(b: RedfishServerBuilder) -> RedfishServerHandle {
    b.build().unwrap().start().await.unwrap()
}

fn config(h: &RedfishServerHandle) -> RedfishConfig {
    RedfishConfig::new(h.base_url(), "admin").with_ca_pem(h.ca_pem().unwrap())
}

fn context() -> (ActionContext, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    (
        ActionContext::new(clock.clone(), Arc::new(InMemorySecretStore::new())),
        clock,
    )
}

async fn session_with(
    ctx: &ActionContext,
    name: &str,
    config: &RedfishConfig,
    password: &str,
) -> Session {
    let session = Session::new(name, SessionType::Redfish)
        .unwrap()
        .with_config(config)
        .unwrap();
    ctx.secrets
        .put(
            &SecretKey::new(session.session_id, PASSWORD_SECRET).unwrap(),
            &Secret::new(password),
        )
        .await
        .unwrap();
    session
}

async fn token(ctx: &ActionContext, session: &Session) -> Option<String> {
    ctx.secrets
        .get(&SecretKey::new(session.session_id, TOKEN_SECRET).unwrap())
        .await
        .ok()?
        .map(|t| t.expose().to_owned())
}

fn probe() -> CredentialProbe {
    Arc::new(|ctx: ActionContext, session: Session| {
        Box::pin(async move { token(&ctx, &session).await })
    })
}

fn moved(session: &Session, to: SessionStatus) -> Session {
    let mut next = session.clone();
    next.transition(to, SystemClock.now()).unwrap();
    next
}

/// Starts `session` (moved to Pending first) and expects success.
async fn start(provider: &RedfishProvider, ctx: &ActionContext, session: &Session) -> Session {
    provider
        .start(ctx, &moved(session, SessionStatus::Pending))
        .await
        .unwrap()
}

/// Starts `session` (moved to Pending first) and expects an error.
async fn start_err(
    provider: &RedfishProvider,
    ctx: &ActionContext,
    session: &Session,
) -> session_core::Error {
    provider
        .start(ctx, &moved(session, SessionStatus::Pending))
        .await
        .unwrap_err()
}

/// Stops `session` (moved to Stopping first) and expects success.
async fn stop(provider: &RedfishProvider, ctx: &ActionContext, session: &Session) -> Session {
    provider
        .stop(ctx, &moved(session, SessionStatus::Stopping))
        .await
        .unwrap()
}

/// A plain reqwest client trusting the server's CA, to check tokens.
fn checker(h: &RedfishServerHandle) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(h.ca_pem().unwrap().as_bytes()).unwrap(),
        )
        .build()
        .unwrap()
}

async fn token_status(h: &RedfishServerHandle, token: &str) -> StatusCode {
    checker(h)
        .get(format!("{}/redfish/v1/SessionService", h.base_url()))
        .header("X-Auth-Token", token)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn passes_the_conformance_harness() {
    let h = start_server(builder()).await;
    let (ctx, clock) = context();
    let session = session_with(&ctx, "bmc", &config(&h), ADMIN_PW).await;
    let failing = session_with(&ctx, "bmc-wrong-password", &config(&h), WRONG_PW).await;
    let fixture = ActionFixture {
        session,
        failing_session: Some(failing.clone()),
        ctx: ctx.clone(),
        clock,
        probe: probe(),
        pause_before_rotate: Duration::ZERO,
    };
    let provider = RedfishProvider::new();
    action_conformance(&provider, &fixture).await;
    let boxed: Box<dyn SessionAction> = Box::new(provider.clone());
    action_conformance(&boxed, &fixture).await;
    let shared: Arc<dyn SessionAction> = Arc::new(provider.clone());
    action_conformance(&shared, &fixture).await;

    // The wrong password: unauthenticated, naming the session, no secrets.
    let err = start_err(&provider, &ctx, &failing).await;
    assert_eq!(err.category(), "unauthenticated", "{err}");
    let text = format!("{err} {err:?}");
    assert!(text.contains("bmc-wrong-password"), "{text}");
    assert!(!text.contains("CANARY"), "no password in errors: {text}");
    h.shutdown().await;
}

#[tokio::test]
async fn start_stores_token_and_uri_and_stop_twice_is_idempotent() {
    let h = start_server(builder()).await;
    let (ctx, _clock) = context();
    let provider = RedfishProvider::new();
    let session = session_with(&ctx, "bmc", &config(&h), ADMIN_PW).await;
    let started = start(&provider, &ctx, &session).await;
    let tok = token(&ctx, &started).await.expect("token stored");
    let stored: RedfishState = started.state.get().unwrap();
    assert!(
        !started.config.as_map().contains_key("sessionUri"),
        "what start made available is state, not a setting"
    );
    let uri = stored.session_uri.clone().expect("sessionUri recorded");
    assert!(
        uri.starts_with(&format!(
            "{}/redfish/v1/SessionService/Sessions/",
            h.base_url()
        )),
        "{uri}"
    );
    // Not secret material in the config or Debug output.
    let shown = format!("{started:?} {}", serde_json::to_string(&started).unwrap());
    assert!(!shown.contains(&tok), "token leaked into the session");
    assert!(
        !shown.contains(ADMIN_PW),
        "password leaked into the session"
    );
    // The server's default SessionTimeout (1800 s) gives the expiry.
    let expiration = started.expiration.expect("expiry from SessionTimeout");
    assert!(expiration > SystemClock.now() + Duration::from_secs(1700));
    assert_eq!(token_status(&h, &tok).await, StatusCode::OK);

    let stopping = moved(&started, SessionStatus::Stopping);
    let stopped = provider.stop(&ctx, &stopping).await.unwrap();
    assert_eq!(stopped.status(), SessionStatus::Inactive);
    assert!(token(&ctx, &stopped).await.is_none());
    assert!(
        stopped.state.is_empty(),
        "stop leaves no state: {:?}",
        stopped.state
    );
    assert_eq!(token_status(&h, &tok).await, StatusCode::UNAUTHORIZED);
    // Again with the same input (token already wiped), and again after the
    // token is restored but the remote session is gone (DELETE → 401/404).
    provider.stop(&ctx, &stopping).await.unwrap();
    ctx.secrets
        .put(
            &SecretKey::new(session.session_id, TOKEN_SECRET).unwrap(),
            &Secret::new(tok.clone()),
        )
        .await
        .unwrap();
    let again = provider.stop(&ctx, &stopping).await.unwrap();
    assert_eq!(again.status(), SessionStatus::Inactive);
    assert!(token(&ctx, &again).await.is_none());
    h.shutdown().await;
}

#[tokio::test]
async fn rotate_makes_before_break_and_deletes_first_at_the_session_limit() {
    for limit in [None, Some(1)] {
        let b = match limit {
            Some(max) => builder().max_sessions(max),
            None => builder(),
        };
        let h = start_server(b).await;
        let (ctx, _clock) = context();
        let provider = RedfishProvider::new();
        let session = session_with(&ctx, "bmc", &config(&h), ADMIN_PW).await;
        let started = start(&provider, &ctx, &session).await;
        let old = token(&ctx, &started).await.unwrap();
        let old_uri = started.state.get::<RedfishState>().unwrap().session_uri;
        let rotated = provider
            .rotate(&ctx, &moved(&started, SessionStatus::Rotating))
            .await
            .unwrap_or_else(|e| panic!("rotate with limit {limit:?}: {e}"));
        assert_eq!(rotated.status(), SessionStatus::Active);
        let new = token(&ctx, &rotated).await.unwrap();
        assert_ne!(old, new);
        assert_ne!(
            rotated.state.get::<RedfishState>().unwrap().session_uri,
            old_uri
        );
        assert_eq!(
            token_status(&h, &old).await,
            StatusCode::UNAUTHORIZED,
            "old deleted"
        );
        assert_eq!(token_status(&h, &new).await, StatusCode::OK, "new works");
        stop(&provider, &ctx, &rotated).await;
        assert_eq!(token_status(&h, &new).await, StatusCode::UNAUTHORIZED);
        h.shutdown().await;
    }
}

#[tokio::test]
async fn session_limit_on_start_is_throttled() {
    let h = start_server(builder().max_sessions(1)).await;
    let (ctx, _clock) = context();
    let provider = RedfishProvider::new();
    let first = session_with(&ctx, "bmc-1", &config(&h), ADMIN_PW).await;
    let second = session_with(&ctx, "bmc-2", &config(&h), ADMIN_PW).await;
    let started = start(&provider, &ctx, &first).await;
    let err = start_err(&provider, &ctx, &second).await;
    assert_eq!(err.category(), "throttled", "{err}");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("bmc-2"), "{err}");
    stop(&provider, &ctx, &started).await;
    h.shutdown().await;
}

#[tokio::test]
async fn tls_is_verified_without_the_ca_and_insecure_only_when_asked() {
    let h = start_server(builder()).await;
    let (ctx, _clock) = context();
    let provider = RedfishProvider::new();
    let untrusted = RedfishConfig::new(h.base_url(), "admin");
    let session = session_with(&ctx, "bmc-untrusted", &untrusted, ADMIN_PW).await;
    let err = start_err(&provider, &ctx, &session).await;
    let text = err.to_string();
    assert_eq!(err.category(), "unavailable", "{text}");
    assert!(text.contains("bmc-untrusted"), "{text}");
    assert!(text.contains("certificate"), "a clear TLS error: {text}");
    // Names what the user has: sessionctl's flag and the config keys.
    assert!(text.contains("--ca-file"), "says what to do: {text}");
    eprintln!("untrusted CA error: {text}");

    let insecure = untrusted.clone().with_insecure_skip_verify(true);
    let session = session_with(&ctx, "bmc-insecure", &insecure, ADMIN_PW).await;
    let started = start(&provider, &ctx, &session).await;
    stop(&provider, &ctx, &started).await;

    // A CA from a file path works like inline PEM.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, h.ca_pem().unwrap()).unwrap();
    let from_file = untrusted.with_ca_file(&path);
    let session = session_with(&ctx, "bmc-ca-file", &from_file, ADMIN_PW).await;
    let started = start(&provider, &ctx, &session).await;
    stop(&provider, &ctx, &started).await;
    h.shutdown().await;
}

/// `allowInsecureHttp` is for loopback only (127.0.0.0/8, ::1,
/// `localhost`): any other host is refused by `validate`, naming it.
#[test]
fn insecure_http_is_for_loopback_only() {
    for (endpoint, host) in [
        ("http://192.0.2.10", "192.0.2.10"),
        ("http://bmc.example:8080", "bmc.example"),
        ("http://[2001:db8::1]:80", "2001:db8::1"),
        ("http://127.0.0.1.nip.io", "127.0.0.1.nip.io"),
        ("http://localhost.example", "localhost.example"),
    ] {
        let err = RedfishConfig::new(endpoint, "admin")
            .with_allow_insecure_http(true)
            .validate()
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("endpoint") && text.contains(host) && text.contains("loopback"),
            "{endpoint}: {text}"
        );
    }
    for endpoint in [
        "http://127.0.0.1:8000",
        "http://127.9.8.7",
        "http://localhost:1",
        "http://LOCALHOST",
        "http://[::1]:80",
    ] {
        RedfishConfig::new(endpoint, "admin")
            .with_allow_insecure_http(true)
            .validate()
            .unwrap_or_else(|e| panic!("{endpoint}: {e}"));
    }
}

/// The old `caCertificatePem` key (a path or PEM text) is still read, into
/// `caFile` or `caPem`, and dropped when the config is written back.
#[test]
fn the_old_ca_key_is_read_and_replaced() {
    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    for (old, file, text) in [
        ("/etc/bmc-ca.pem", Some("/etc/bmc-ca.pem"), None),
        (pem, None, Some(pem)),
    ] {
        let mut session = Session::new("old", SessionType::Redfish).unwrap();
        session
            .config
            .as_map_mut()
            .extend(serde_json::from_value::<serde_json::Map<String, serde_json::Value>>(
                json!({"endpoint": "https://bmc.example", "username": "admin", "caCertificatePem": old}),
            ).unwrap());
        let config: RedfishConfig = session.config.get().unwrap();
        assert_eq!(config.ca_file.as_deref(), file.map(std::path::Path::new));
        assert_eq!(config.ca_pem.as_deref(), text);
        session.config.set(&config).unwrap();
        let map = session.config.as_map();
        assert!(!map.contains_key("caCertificatePem"), "{map:?}");
        assert_eq!(map.get("caFile").and_then(|v| v.as_str()), file);
        assert_eq!(map.get("caPem").and_then(|v| v.as_str()), text);
    }
}

/// A CA file that does not exist is refused by `validate`, naming the path.
#[test]
fn a_missing_ca_file_is_refused_by_validate() {
    let err = RedfishConfig::new("https://127.0.0.1", "admin")
        .with_ca_file("/nonexistent/ca.pem")
        .validate()
        .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}

#[tokio::test]
async fn bad_config_is_refused_naming_field_and_session() {
    let (ctx, _clock) = context();
    let provider = RedfishProvider::new();
    for (cfg, field) in [
        (
            RedfishConfig::new("http://127.0.0.1:1", "admin"),
            "endpoint",
        ),
        (RedfishConfig::new("ftp://127.0.0.1", "admin"), "endpoint"),
        (RedfishConfig::new("not a url", "admin"), "endpoint"),
        (
            RedfishConfig::new("https://u:p@127.0.0.1", "admin"),
            "endpoint",
        ),
        (RedfishConfig::new("https://127.0.0.1", ""), "username"),
        (
            RedfishConfig::new("https://127.0.0.1", "admin").with_ca_file("/nonexistent/ca.pem"),
            "caFile",
        ),
    ] {
        let session = session_with(&ctx, "bmc-bad", &cfg, ADMIN_PW).await;
        let err = start_err(&provider, &ctx, &session).await;
        let text = err.to_string();
        assert_eq!(err.category(), "invalid_input", "{text}");
        assert!(text.contains(&format!("invalid {field}")), "{text}");
        assert!(text.contains("bmc-bad"), "{text}");
    }
    // No password in the secret store.
    let session = Session::new("bmc-no-pw", SessionType::Redfish)
        .unwrap()
        .with_config(&RedfishConfig::new("https://127.0.0.1", "admin"))
        .unwrap();
    let err = start_err(&provider, &ctx, &session).await;
    assert!(err.to_string().contains("bmc-no-pw"), "{err}");
}

#[tokio::test]
async fn plain_http_only_when_allowed() {
    let h = start_server(builder().insecure_http()).await;
    let (ctx, _clock) = context();
    let provider = RedfishProvider::new();
    let cfg = RedfishConfig::new(h.base_url(), "admin").with_allow_insecure_http(true);
    let session = session_with(&ctx, "bmc-http", &cfg, ADMIN_PW).await;
    let started = start(&provider, &ctx, &session).await;
    stop(&provider, &ctx, &started).await;
    h.shutdown().await;
}

#[tokio::test]
async fn idle_expiry_then_stop_and_start_again() {
    // The server and the provider share the manual clock of the context.
    let (ctx, clock) = context();
    let h = start_server(
        builder()
            .session_timeout(Duration::from_secs(30))
            .clock(clock.clone()),
    )
    .await;
    let provider = RedfishProvider::new();
    let session = session_with(&ctx, "bmc-idle", &config(&h), ADMIN_PW).await;
    let started = start(&provider, &ctx, &session).await;
    assert!(started.expiration.is_some());
    let old = token(&ctx, &started).await.unwrap();
    clock.advance(Duration::from_secs(31));
    assert_eq!(token_status(&h, &old).await, StatusCode::UNAUTHORIZED);
    // The service already ended it: stop still succeeds and cleans up.
    let stopped = stop(&provider, &ctx, &started).await;
    assert!(token(&ctx, &stopped).await.is_none());
    // And a new start works.
    let restarted = start(&provider, &ctx, &stopped).await;
    let new = token(&ctx, &restarted).await.unwrap();
    assert_eq!(token_status(&h, &new).await, StatusCode::OK);
    stop(&provider, &ctx, &restarted).await;
    h.shutdown().await;
}

// ---- RedfishClient: the authenticated request helper ----

use reqwest::Method;
use serde_json::json;
use session_redfish::client::{AuthMode, RedfishClient};

fn manual_server_builder(clock: &Arc<ManualClock>) -> RedfishServerBuilder {
    builder()
        .account("reader", Secret::new("reader-pw-1"), Role::ReadOnly)
        .session_timeout(Duration::from_secs(30))
        .clock(clock.clone())
}

/// Connects as `user` with `pw`, trusting the server's CA.
async fn try_connect(
    h: &RedfishServerHandle,
    user: &str,
    pw: &str,
) -> session_core::Result<RedfishClient> {
    RedfishClient::builder(RedfishConfig::new(h.base_url(), user).with_ca_pem(h.ca_pem().unwrap()))
        .password(Secret::new(pw))
        .connect()
        .await
}

async fn connect(h: &RedfishServerHandle, user: &str, pw: &str) -> RedfishClient {
    try_connect(h, user, pw).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_relogs_in_once_for_concurrent_requests_after_idle_expiry() {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let h = start_server(manual_server_builder(&clock)).await;
    let client = connect(&h, "admin", ADMIN_PW).await;
    assert_eq!(client.auth_mode(), Some(AuthMode::Session));
    assert_eq!(client.session_timeout(), Some(Duration::from_secs(30)));
    let first_uri = client.session_uri().unwrap();
    client.get("/redfish/v1/Systems").await.unwrap();
    assert_eq!(client.relogins(), 0);

    // The session idles out on the server's clock.
    clock.advance(Duration::from_secs(31));
    let requests = (0..8).map(|_| {
        let c = client.clone();
        tokio::spawn(async move { c.get("/redfish/v1/SessionService").await })
    });
    for r in futures_util_join(requests).await {
        let body = r.unwrap().expect("retried after one re-login");
        assert_eq!(body["SessionTimeout"], 30);
    }
    assert_eq!(client.relogins(), 1, "one re-login shared by all eight");
    let second_uri = client.session_uri().unwrap();
    assert_ne!(first_uri, second_uri);
    // Exactly one live session on the server: the renewed one.
    let live = client.sessions().await.unwrap();
    assert_eq!(live.len(), 1, "{live:?}");
    assert!(live[0].is_current);
    assert_eq!(live[0].user_name.as_deref(), Some("admin"));
    assert_eq!(live[0].uri, second_uri.path());
    client.logout().await.unwrap();
    h.shutdown().await;
}

/// Awaits spawned tasks in order.
async fn futures_util_join<T>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<std::result::Result<T, tokio::task::JoinError>> {
    let mut out = Vec::new();
    for h in handles.collect::<Vec<_>>() {
        out.push(h.await);
    }
    out
}

#[tokio::test]
async fn client_does_not_retry_a_patch_after_relogin() {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let h = start_server(manual_server_builder(&clock)).await;
    let client = connect(&h, "admin", ADMIN_PW).await;
    clock.advance(Duration::from_secs(31));
    let err = client
        .patch(
            "/redfish/v1/SessionService",
            &json!({"SessionTimeout": 600}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.category(), "unauthenticated", "{err}");
    assert!(err.to_string().contains("not retried"), "{err}");
    assert_eq!(client.relogins(), 1, "the session was renewed");
    // The PATCH was not applied…
    let service = client.get("/redfish/v1/SessionService").await.unwrap();
    assert_eq!(service["SessionTimeout"], 30);
    assert_eq!(client.relogins(), 1, "the GET used the renewed session");
    // …and succeeds when the caller sends it again.
    client
        .patch(
            "/redfish/v1/SessionService",
            &json!({"SessionTimeout": 600}),
        )
        .await
        .unwrap();
    let service = client.get("/redfish/v1/SessionService").await.unwrap();
    assert_eq!(service["SessionTimeout"], 600);
    client.logout().await.unwrap();
    let err = client.get("/redfish/v1/Systems").await.unwrap_err();
    assert!(err.to_string().contains("logged out"), "{err}");
    h.shutdown().await;
}

#[tokio::test]
async fn client_lists_and_reads_sessions_by_privilege() {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let h = start_server(manual_server_builder(&clock)).await;
    let admin = connect(&h, "admin", ADMIN_PW).await;
    let reader = connect(&h, "reader", "reader-pw-1").await;
    let all = admin.sessions().await.unwrap();
    assert_eq!(all.len(), 2, "ConfigureUsers sees every session: {all:?}");
    let mine: Vec<_> = all.iter().filter(|s| s.is_current).collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].user_name.as_deref(), Some("admin"));
    assert_eq!(mine[0].context.as_deref(), Some("session-redfish"));
    let own = reader.sessions().await.unwrap();
    assert_eq!(own.len(), 1, "ConfigureSelf sees its own: {own:?}");
    assert_eq!(own[0].user_name.as_deref(), Some("reader"));
    assert!(own[0].is_current);
    // Read one by URI; a reader cannot read the admin's session.
    let admin_uri = admin.session_uri().unwrap();
    let read = admin.session(admin_uri.as_str()).await.unwrap();
    assert_eq!(read.uri, admin_uri.path());
    assert!(reader.session(admin_uri.as_str()).await.is_err());
    // Paths on another origin are refused before any request.
    let err = admin
        .get("https://elsewhere.example/redfish/v1/")
        .await
        .unwrap_err();
    assert_eq!(err.category(), "invalid_input", "{err}");
    // Errors carry the service's message, and Debug shows no credentials.
    let err = admin.get("/redfish/v1/NoSuchThing").await.unwrap_err();
    assert_eq!(err.category(), "not_found", "{err}");
    let shown = format!("{admin:?} {reader:?}");
    assert!(
        !shown.contains(ADMIN_PW) && !shown.contains("reader-pw-1"),
        "{shown}"
    );
    admin.logout().await.unwrap();
    reader.logout().await.unwrap();
    h.shutdown().await;
}

#[tokio::test]
async fn client_wrong_password_is_a_clear_unauthorized() {
    let h = start_server(builder()).await;
    let err = try_connect(&h, "admin", WRONG_PW).await.unwrap_err();
    assert_eq!(err.category(), "unauthenticated");
    let text = err.to_string();
    assert!(text.contains("unauthorized"), "{text}");
    assert!(text.contains("\"admin\""), "{text}");
    assert!(!text.contains(WRONG_PW), "{text}");
    h.shutdown().await;
}

/// Two tasks sleep on the clock: the server's idle-session reaper and the
/// client's keep-alive. Waits until both are asleep until a time ahead, so
/// after an advance the keep-alive has sent its request (and the reaper,
/// woken by the change or by a due session, has done its work).
async fn until_both_asleep(clock: &ManualClock) {
    for _ in 0..2500 {
        if clock.sleepers_ahead() >= 2 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("the keep-alive task and the reaper never both went back to sleep");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_holds_the_session_past_its_idle_timeout() {
    // One manual clock for the server (30 s idle timeout) and both clients
    // (keep-alive every 10 s): no real time involved.
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let h = start_server(manual_server_builder(&clock)).await;
    let connect_on_clock = || {
        RedfishClient::builder(
            RedfishConfig::new(h.base_url(), "admin").with_ca_pem(h.ca_pem().unwrap()),
        )
        .password(Secret::new(ADMIN_PW))
        .clock(clock.clone())
        .connect()
    };
    let kept = connect_on_clock().await.unwrap();
    let idle = connect_on_clock().await.unwrap();
    let err = kept.keep_alive(Some(Duration::from_secs(30))).unwrap_err();
    assert_eq!(err.category(), "invalid_input", "{err}");
    let guard = kept.keep_alive(Some(Duration::from_millis(500)));
    assert!(guard.is_err(), "under the 1 s minimum");
    let guard = kept.keep_alive(Some(Duration::from_secs(10))).unwrap();
    assert!(guard.is_running());
    until_both_asleep(&clock).await;
    for _ in 0..4 {
        clock.advance(Duration::from_secs(10));
        until_both_asleep(&clock).await;
    }
    // 40 s: past the idle timeout for the client that sent nothing.
    kept.get("/redfish/v1/Systems").await.unwrap();
    idle.get("/redfish/v1/Systems").await.unwrap();
    assert_eq!(kept.relogins(), 0, "kept alive");
    assert_eq!(idle.relogins(), 1, "the idle one expired and re-logged in");
    drop(guard);
    kept.logout().await.unwrap();
    idle.logout().await.unwrap();
    h.shutdown().await;
}

#[tokio::test]
async fn provider_client_uses_the_stored_token_and_does_not_relogin() {
    let h = start_server(builder()).await;
    let (ctx, _clock) = context();
    let provider = RedfishProvider::new();
    let session = session_with(&ctx, "bmc-client", &config(&h), ADMIN_PW).await;
    assert!(provider.client(&ctx, &session).await.is_err(), "inactive");
    let started = start(&provider, &ctx, &session).await;
    assert_eq!(
        started.state.get::<RedfishState>().unwrap().auth_mode,
        Some(AuthMode::Session)
    );
    let client = provider.client(&ctx, &started).await.unwrap();
    let uri = started
        .state
        .get::<RedfishState>()
        .unwrap()
        .session_uri
        .unwrap();
    assert_eq!(client.session_uri().unwrap().as_str(), uri);
    client.get("/redfish/v1/Systems").await.unwrap();
    // The session ends behind the client's back: a clear error, no re-login.
    let tok = token(&ctx, &started).await.unwrap();
    let status = checker(&h)
        .request(Method::DELETE, &uri)
        .header("X-Auth-Token", &tok)
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "{status}");
    let err = client.get("/redfish/v1/Systems").await.unwrap_err();
    assert_eq!(err.category(), "unauthenticated", "{err}");
    assert!(err.to_string().contains("rotate or start"), "{err}");
    assert_eq!(client.relogins(), 0);
    stop(&provider, &ctx, &started).await;
    h.shutdown().await;
}
