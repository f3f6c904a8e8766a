//! Smoke tests of the oidc-provider peer (`session_testkit::peers::oidc`), the local
//! stand-in for Microsoft Entra ID, with plain form posts (reqwest): client
//! credentials, the device code flow (approved, denied, reused, expired) and
//! refresh tokens (rotated, expired). They pin down the answers, and exact
//! error codes, that the `session-azure` client meets there.
//!
//! Needs `node` on PATH and the npm peers (`SESSION_PEERS_NODE_MODULES`);
//! without them the tests are skipped loudly, or fail when `CI=true`.

use std::sync::OnceLock;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use session_testkit::peers::oidc::{
    OidcBuilder, OidcProvider, approve_device_code, deny_device_code,
};

const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// One provider with the default options for the tests that need no special
/// TTL. It is never dropped: it exits with the test process, which holds the
/// only write end of its stdin.
async fn shared() -> Option<&'static OidcProvider> {
    static PROVIDER: OnceLock<Option<OidcProvider>> = OnceLock::new();
    let provider =
        tokio::task::spawn_blocking(|| PROVIDER.get_or_init(OidcProvider::start).as_ref())
            .await
            .unwrap();
    if provider.is_none() {
        eprintln!("SKIPPED: the oidc-provider peer is missing (see the message above)");
    }
    provider
}

/// A provider of its own, started off the async runtime.
async fn start(builder: OidcBuilder) -> Option<OidcProvider> {
    tokio::task::spawn_blocking(move || builder.start())
        .await
        .unwrap()
}

/// POSTs a form to `url`; the status and the JSON body.
async fn post_form(url: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, body)
}

async fn client_credentials(entra: &OidcProvider, secret: &str) -> (StatusCode, Value) {
    post_form(
        &entra.token_url(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", entra.confidential_client_id()),
            ("client_secret", secret),
            ("scope", &entra.default_scope()),
        ],
    )
    .await
}

/// The device authorization request Entra clients send; asserts a 200.
async fn device_code(entra: &OidcProvider) -> Value {
    let scope = format!("{} offline_access openid profile", entra.default_scope());
    let (status, body) = post_form(
        &entra.device_code_url(),
        &[("client_id", entra.public_client_id()), ("scope", &scope)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn poll(entra: &OidcProvider, device: &Value) -> (StatusCode, Value) {
    post_form(
        &entra.token_url(),
        &[
            ("grant_type", DEVICE_CODE_GRANT),
            ("client_id", entra.public_client_id()),
            ("device_code", str_field(device, "device_code")),
        ],
    )
    .await
}

async fn refresh(entra: &OidcProvider, refresh_token: &str) -> (StatusCode, Value) {
    let scope = format!("{} offline_access", entra.default_scope());
    post_form(
        &entra.token_url(),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", entra.public_client_id()),
            ("refresh_token", refresh_token),
            ("scope", &scope),
        ],
    )
    .await
}

fn str_field<'a>(body: &'a Value, name: &str) -> &'a str {
    body[name]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| panic!("no {name} in {body}"))
}

/// Asserts an OAuth error answer: `status` and `{"error": error, ...}`.
fn assert_error(answer: &(StatusCode, Value), status: StatusCode, error: &str) {
    let (got, body) = answer;
    assert_eq!(
        (*got, body["error"].as_str()),
        (status, Some(error)),
        "{body}"
    );
    assert!(body["error_description"].is_string(), "{body}");
}

/// A device code approved by `alice@contoso.com`, polled once: the tokens.
async fn device_login(entra: &OidcProvider) -> Value {
    let device = device_code(entra).await;
    approve_device_code(
        str_field(&device, "verification_uri_complete"),
        "alice@contoso.com",
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\nprovider log:\n{}", entra.log()));
    let (status, tokens) = poll(entra, &device).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens
}

/// The claims of a JWT (its middle part), without checking the signature.
fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT has three parts");
    serde_json::from_slice(&base64url_decode(payload)).unwrap()
}

fn base64url_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => panic!("not base64url: {c}"),
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|&c| c != b'=') {
        acc = (acc << 6) | u32::from(value(c));
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[tokio::test]
async fn client_credentials_give_a_bearer_token_for_the_resource() {
    let Some(entra) = shared().await else { return };
    let (status, body) = client_credentials(entra, entra.client_secret()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert_eq!(body["expires_in"], 3600, "{body}");
    assert_eq!(body["scope"], "https://management.azure.com/.default");
    assert!(body.get("refresh_token").is_none(), "{body}");
    let claims = jwt_claims(str_field(&body, "access_token"));
    assert_eq!(claims["aud"], "https://management.azure.com", "{claims}");
    assert_eq!(claims["client_id"], entra.confidential_client_id());
    assert_eq!(claims["iss"], entra.issuer().as_str());
    assert_eq!(
        entra.issuer(),
        format!("{}/{}/v2.0", entra.authority_host(), entra.tenant())
    );
}

#[tokio::test]
async fn a_wrong_client_secret_is_401_invalid_client() {
    let Some(entra) = shared().await else { return };
    let answer = client_credentials(entra, "not-the-secret").await;
    assert_error(&answer, StatusCode::UNAUTHORIZED, "invalid_client");
}

#[tokio::test]
async fn discovery_and_keys_answer() {
    let Some(entra) = shared().await else { return };
    let discovery: Value = reqwest::get(entra.discovery_url())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], entra.issuer().as_str());
    assert_eq!(discovery["token_endpoint"], entra.token_url().as_str());
    assert_eq!(
        discovery["device_authorization_endpoint"],
        entra.device_code_url().as_str()
    );
    assert_eq!(discovery["jwks_uri"], entra.jwks_url().as_str());
    let keys: Value = reqwest::get(entra.jwks_url())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(keys["keys"][0]["kty"], "RSA", "{keys}");
}

#[tokio::test]
async fn device_code_is_pending_until_approved_then_gives_tokens() {
    let Some(entra) = shared().await else { return };
    let device = device_code(entra).await;
    let user_code = str_field(&device, "user_code");
    assert_eq!(user_code.len(), 9, "XXXX-XXXX: {device}");
    assert_eq!(
        str_field(&device, "verification_uri"),
        entra.verification_uri()
    );
    assert_eq!(
        str_field(&device, "verification_uri_complete"),
        format!("{}?user_code={user_code}", entra.verification_uri())
    );
    assert_eq!(device["expires_in"], 600, "{device}");
    // Not Entra-like: no `interval` and no `message`.
    assert!(device.get("interval").is_none(), "{device}");
    assert!(device.get("message").is_none(), "{device}");

    assert_error(
        &poll(entra, &device).await,
        StatusCode::BAD_REQUEST,
        "authorization_pending",
    );

    approve_device_code(
        str_field(&device, "verification_uri_complete"),
        "alice@contoso.com",
    )
    .await
    .unwrap();
    let (status, tokens) = poll(entra, &device).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer", "{tokens}");
    assert_eq!(tokens["expires_in"], 3600, "{tokens}");
    str_field(&tokens, "refresh_token");
    let claims = jwt_claims(str_field(&tokens, "access_token"));
    assert_eq!(claims["sub"], "alice@contoso.com", "{claims}");
    assert_eq!(claims["aud"], "https://management.azure.com", "{claims}");
    let id = jwt_claims(str_field(&tokens, "id_token"));
    assert_eq!(id["sub"], "alice@contoso.com", "{id}");
    assert_eq!(id["aud"], entra.public_client_id(), "{id}");
}

#[tokio::test]
async fn a_device_code_can_be_approved_by_typing_the_user_code() {
    let Some(entra) = shared().await else { return };
    let device = device_code(entra).await;
    approve_device_code(
        (
            str_field(&device, "verification_uri"),
            str_field(&device, "user_code"),
        ),
        "bob@contoso.com",
    )
    .await
    .unwrap();
    let (status, tokens) = poll(entra, &device).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(
        jwt_claims(str_field(&tokens, "access_token"))["sub"],
        "bob@contoso.com"
    );
}

#[tokio::test]
async fn approving_an_unknown_user_code_fails_at_the_confirmation_step() {
    let Some(entra) = shared().await else { return };
    let err = approve_device_code(
        (entra.verification_uri().as_str(), "BCDF-GHJK"),
        "alice@contoso.com",
    )
    .await
    .unwrap_err();
    assert_eq!(err.step(), "2. POST the user code confirmation", "{err}");
    assert!(err.detail().contains("incorrect"), "{err}");
}

#[tokio::test]
async fn refresh_token_gives_new_tokens_and_rotates() {
    let Some(entra) = shared().await else { return };
    let tokens = device_login(entra).await;
    let first = str_field(&tokens, "refresh_token");

    let (status, refreshed) = refresh(entra, first).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_eq!(refreshed["token_type"], "Bearer", "{refreshed}");
    assert_eq!(refreshed["scope"], "https://management.azure.com/.default");
    let access = str_field(&refreshed, "access_token");
    assert_ne!(access, str_field(&tokens, "access_token"));
    assert_eq!(jwt_claims(access)["sub"], "alice@contoso.com");
    // A public client's refresh token rotates on every use.
    let second = str_field(&refreshed, "refresh_token");
    assert_ne!(second, first);

    let (status, again) = refresh(entra, second).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    // The used one is now rejected (and, as in RFC 9700, that revokes the grant).
    assert_error(
        &refresh(entra, first).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
}

#[tokio::test]
async fn a_reused_or_unknown_device_code_is_invalid_grant() {
    let Some(entra) = shared().await else { return };
    let device = device_code(entra).await;
    approve_device_code(
        str_field(&device, "verification_uri_complete"),
        "alice@contoso.com",
    )
    .await
    .unwrap();
    assert_eq!(poll(entra, &device).await.0, StatusCode::OK);
    assert_error(
        &poll(entra, &device).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
    let bogus = serde_json::json!({ "device_code": "not-a-device-code" });
    assert_error(
        &poll(entra, &bogus).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
}

#[tokio::test]
async fn a_denied_device_code_is_access_denied() {
    let Some(entra) = shared().await else { return };
    let device = device_code(entra).await;
    deny_device_code(str_field(&device, "verification_uri_complete"))
        .await
        .unwrap();
    assert_error(
        &poll(entra, &device).await,
        StatusCode::BAD_REQUEST,
        "access_denied",
    );
    // A denied code cannot be approved afterwards.
    let err = approve_device_code(
        str_field(&device, "verification_uri_complete"),
        "alice@contoso.com",
    )
    .await
    .unwrap_err();
    assert_eq!(err.step(), "2. POST the user code confirmation", "{err}");
}

#[tokio::test]
async fn ttls_set_expires_in() {
    let builder = OidcProvider::builder()
        .device_code_ttl(Duration::from_secs(120))
        .access_token_ttl(Duration::from_secs(60))
        .client_credentials_ttl(Duration::from_secs(30));
    let Some(entra) = start(builder).await else {
        return;
    };
    let (status, body) = client_credentials(&entra, entra.client_secret()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["expires_in"], 30, "{body}");
    let device = device_code(&entra).await;
    assert_eq!(device["expires_in"], 120, "{device}");
    approve_device_code(
        str_field(&device, "verification_uri_complete"),
        "alice@contoso.com",
    )
    .await
    .unwrap();
    let (status, tokens) = poll(&entra, &device).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["expires_in"], 60, "{tokens}");
}

#[tokio::test]
async fn an_expired_refresh_token_is_invalid_grant() {
    let builder = OidcProvider::builder().refresh_token_ttl(Duration::from_secs(2));
    let Some(entra) = start(builder).await else {
        return;
    };
    let tokens = device_login(&entra).await;
    // Fresh, it works (and rotates, to another one with a 2 s TTL). TTLs
    // are whole seconds from a whole-second `iat`, hence the margins.
    let (status, refreshed) = refresh(&entra, str_field(&tokens, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_error(
        &refresh(&entra, str_field(&refreshed, "refresh_token")).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
}

#[tokio::test]
async fn polling_an_expired_device_code_is_expired_token() {
    let builder = OidcProvider::builder().device_code_ttl(Duration::from_secs(2));
    let Some(entra) = start(builder).await else {
        return;
    };
    let device = device_code(&entra).await;
    assert_eq!(device["expires_in"], 2, "{device}");
    assert_error(
        &poll(&entra, &device).await,
        StatusCode::BAD_REQUEST,
        "authorization_pending",
    );
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_error(
        &poll(&entra, &device).await,
        StatusCode::BAD_REQUEST,
        "expired_token",
    );
    // Nor can it be approved any more.
    let err = approve_device_code(
        str_field(&device, "verification_uri_complete"),
        "alice@contoso.com",
    )
    .await
    .unwrap_err();
    assert!(err.detail().contains("incorrect"), "{err}");
}

#[tokio::test]
async fn a_second_tenant_is_a_second_provider() {
    let builder = OidcProvider::builder()
        .tenant("contoso.onmicrosoft.com")
        .confidential_client("app-2", "secret-2");
    let Some(entra) = start(builder).await else {
        return;
    };
    assert_eq!(
        entra.token_url(),
        format!(
            "http://127.0.0.1:{}/contoso.onmicrosoft.com/oauth2/v2.0/token",
            entra.port()
        )
    );
    let (status, body) = client_credentials(&entra, "secret-2").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The default tenant's path is not served here.
    let other = entra.token_url().replace(
        "contoso.onmicrosoft.com",
        session_testkit::peers::oidc::DEFAULT_TENANT,
    );
    let status = reqwest::Client::new()
        .post(other)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_taken_port_fails_to_start_and_quotes_the_log() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let builder = OidcProvider::builder().port(port);
    let panic = match tokio::task::spawn_blocking(move || builder.start()).await {
        Ok(None) => return, // the peer is missing; skipped loudly above
        Ok(Some(entra)) => panic!("started on a taken port: {entra:?}"),
        Err(e) => e.into_panic(),
    };
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("did not start"), "{message}");
    assert!(message.contains("EADDRINUSE"), "{message}");
}
