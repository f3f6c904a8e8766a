//! The Entra ID token endpoint calls (OAuth 2.0 v2.0 endpoints): client
//! credentials, device authorization and polling (RFC 8628), refresh.
//!
//! Written on `reqwest` rather than with an OAuth crate: the grants are
//! three form POSTs, and what matters here is Entra's error vocabulary
//! (`error`, `error_codes`, `correlation_id`), the device-flow timing rules
//! and keeping secrets out of every error, which the generic crates leave to
//! the caller anyway.

use std::time::Duration;

use reqwest::header::RETRY_AFTER;
use reqwest::{Client, StatusCode};
use serde::Deserialize;
use session_core::device_code::{
    DeviceCodePolling, DeviceCodePrompt, DeviceCodePrompter, PollAnswer, poll_device_code,
};
use session_core::{Clock, Error, Result, Secret};
use time::OffsetDateTime;

use crate::AzureConfig;
use crate::account::SignedInAccount;

/// The device-code grant type (RFC 8628).
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// What user sign-ins ask for besides the resource scope, as MSAL does: a
/// refresh token, and an ID token naming the account.
const USER_SCOPES: &str = "offline_access openid profile";

/// The limit on one HTTP request.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A token from the token endpoint.
#[derive(Debug, Clone)]
pub struct Token {
    /// The bearer access token (opaque).
    pub access_token: Secret,
    /// When it expires, by the injected clock (`now + expires_in`).
    pub expires_at: OffsetDateTime,
    /// A refresh token, for user sign-ins with `offline_access`.
    pub refresh_token: Option<Secret>,
    /// The signed-in user, for user sign-ins whose answer carries an ID
    /// token.
    pub account: Option<SignedInAccount>,
}

/// A device authorization in progress.
pub(crate) struct DeviceAuthorization {
    pub(crate) device_code: Secret,
    pub(crate) prompt: DeviceCodePrompt,
    pub(crate) interval: Option<Duration>,
}

#[derive(Deserialize)]
struct RawToken {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    expires_in: NumberOrString,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    client_info: Option<String>,
}

/// `expires_in` is a number, or a numeric string on older endpoints.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrString {
    Number(u64),
    Text(String),
}

impl NumberOrString {
    fn seconds(&self) -> Option<u64> {
        match self {
            NumberOrString::Number(n) => Some(*n),
            NumberOrString::Text(t) => t.trim().parse().ok(),
        }
    }
}

#[derive(Deserialize)]
struct RawDevice {
    device_code: String,
    user_code: String,
    verification_uri: String,
    #[serde(default)]
    verification_uri_complete: Option<String>,
    expires_in: NumberOrString,
    #[serde(default)]
    interval: Option<NumberOrString>,
    #[serde(default)]
    message: Option<String>,
}

/// An OAuth error body (`error`, `error_description`, Entra's
/// `error_codes` and `correlation_id`).
#[derive(Deserialize, Default)]
struct OAuthError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<i64>,
    #[serde(default)]
    correlation_id: Option<String>,
}

impl OAuthError {
    /// `error: first line of the description [AADSTS…] (correlation id …)`.
    fn describe(&self) -> String {
        let mut text = self.error.clone();
        if let Some(d) = &self.error_description {
            // Entra descriptions carry trace and timestamp lines: keep the first.
            let first = d.lines().next().unwrap_or_default().trim();
            if !first.is_empty() {
                text.push_str(": ");
                text.push_str(first);
            }
        }
        if !self.error_codes.is_empty() {
            let codes: Vec<String> = self
                .error_codes
                .iter()
                .map(|c| format!("AADSTS{c}"))
                .collect();
            text.push_str(&format!(" [{}]", codes.join(", ")));
        }
        if let Some(id) = &self.correlation_id {
            text.push_str(&format!(" (correlation id {id})"));
        }
        text
    }
}

/// The outcome of one token-endpoint call.
enum Answer<T> {
    Ok(T),
    /// An OAuth error body, with the HTTP status and any `Retry-After`.
    OAuth(StatusCode, OAuthError, Option<Duration>),
}

/// The HTTP client for token calls: no redirects (a redirect could carry a
/// secret elsewhere), a request timeout.
pub(crate) fn http_client() -> Result<Client> {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("session-azure/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Unavailable {
            target: "Entra ID".into(),
            message: format!("cannot build the HTTP client: {}", e.without_url()),
            source: None,
        })
}

fn transport(target: &str, what: &str, e: reqwest::Error) -> Error {
    let e = e.without_url();
    if e.is_timeout() {
        return Error::Timeout {
            target: target.to_owned(),
            after: REQUEST_TIMEOUT,
        };
    }
    let mut chain = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    Error::Unavailable {
        target: target.to_owned(),
        message: format!("{what}: {chain}"),
        source: None,
    }
}

/// POSTs `form` and decodes a success body as `T` or an OAuth error.
async fn post<T: for<'de> Deserialize<'de>>(
    http: &Client,
    url: reqwest::Url,
    form: &[(&str, &str)],
    target: &str,
    what: &str,
) -> Result<Answer<T>> {
    let res = http
        .post(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .form(form)
        .send()
        .await
        .map_err(|e| transport(target, what, e))?;
    let status = res.status();
    let retry_after = res
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let bytes = res.bytes().await.map_err(|e| transport(target, what, e))?;
    if status.is_success() {
        return serde_json::from_slice::<T>(&bytes)
            .map(Answer::Ok)
            .map_err(|e| Error::Provider {
                provider: "azure".into(),
                target: target.to_owned(),
                message: format!(
                    "{what}: HTTP {} with an unexpected body: {e}",
                    status.as_u16()
                ),
                retryable: false,
                source: None,
            });
    }
    let error: OAuthError = serde_json::from_slice(&bytes).unwrap_or_default();
    Ok(Answer::OAuth(status, error, retry_after))
}

/// Maps an OAuth error to the error categories (reference table § 2.5).
fn oauth_error(
    target: &str,
    what: &str,
    status: StatusCode,
    e: &OAuthError,
    retry_after: Option<Duration>,
) -> Error {
    let target = target.to_owned();
    let detail = if e.error.is_empty() {
        format!("HTTP {}", status.as_u16())
    } else {
        e.describe()
    };
    let message = format!("{what}: {detail}");
    match e.error.as_str() {
        "invalid_client" => Error::Unauthenticated {
            target,
            message: format!("{message} (wrong or expired client secret, or unknown application)"),
        },
        "invalid_grant" => Error::Unauthenticated {
            target,
            message: format!(
                "{message} (the sign-in has expired or was revoked; start the session again to sign in)"
            ),
        },
        "interaction_required" | "expired_token" => Error::Unauthenticated {
            target,
            message: format!(
                "{message} (an interactive sign-in is needed; start the session again)"
            ),
        },
        "access_denied" | "authorization_declined" => Error::PermissionDenied {
            target,
            message: format!("{message} (the sign-in was declined)"),
        },
        "invalid_scope" => Error::invalid_input("scope", format!("{target}: {message}")),
        "unauthorized_client" => Error::invalid_input("clientId", format!("{target}: {message}")),
        "invalid_request" => Error::invalid_input("request", format!("{target}: {message}")),
        "temporarily_unavailable" => Error::Unavailable {
            target,
            message,
            source: None,
        },
        _ if status == StatusCode::TOO_MANY_REQUESTS => Error::Throttled {
            target,
            retry_after,
        },
        _ if status.is_server_error() => Error::Unavailable {
            target,
            message,
            source: None,
        },
        _ if status == StatusCode::UNAUTHORIZED => Error::Unauthenticated { target, message },
        _ => Error::Provider {
            provider: "azure".into(),
            target,
            message,
            retryable: false,
            source: None,
        },
    }
}

fn into_token(raw: RawToken, now: OffsetDateTime, target: &str) -> Result<Token> {
    if raw
        .token_type
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
    {
        return Err(Error::provider(
            "azure",
            target,
            "the token endpoint returned a token that is not a Bearer token",
        ));
    }
    let seconds = raw.expires_in.seconds().ok_or_else(|| {
        Error::provider(
            "azure",
            target,
            "the token endpoint returned no usable expires_in",
        )
    })?;
    Ok(Token {
        access_token: Secret::new(raw.access_token),
        expires_at: now + Duration::from_secs(seconds),
        refresh_token: raw.refresh_token.filter(|t| !t.is_empty()).map(Secret::new),
        account: SignedInAccount::from_response(
            raw.id_token.as_deref(),
            raw.client_info.as_deref(),
        ),
    })
}

/// The client credentials grant with a client secret.
pub(crate) async fn client_credentials(
    http: &Client,
    config: &AzureConfig,
    secret: &Secret,
    clock: &dyn Clock,
    target: &str,
) -> Result<Token> {
    let what = "client credentials token request";
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", config.client_id.as_str()),
        ("client_secret", secret.expose()),
        ("scope", config.scope()),
    ];
    match post::<RawToken>(http, config.token_url()?, &form, target, what).await? {
        Answer::Ok(raw) => into_token(raw, clock.now(), target),
        Answer::OAuth(status, e, after) => Err(oauth_error(target, what, status, &e, after)),
    }
}

/// The refresh token grant (`client_secret` for confidential clients). The
/// answer may carry a new refresh token; the caller must store it.
pub(crate) async fn refresh(
    http: &Client,
    config: &AzureConfig,
    refresh_token: &Secret,
    client_secret: Option<&Secret>,
    clock: &dyn Clock,
    target: &str,
) -> Result<Token> {
    let what = "refresh token request";
    let scope = format!("{} {USER_SCOPES}", config.scope());
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("client_id", config.client_id.as_str()),
        ("refresh_token", refresh_token.expose()),
        ("scope", scope.as_str()),
        ("client_info", "1"),
    ];
    if let Some(secret) = client_secret {
        form.push(("client_secret", secret.expose()));
    }
    match post::<RawToken>(http, config.token_url()?, &form, target, what).await? {
        Answer::Ok(raw) => into_token(raw, clock.now(), target),
        Answer::OAuth(status, e, after) => Err(oauth_error(target, what, status, &e, after)),
    }
}

/// Starts a device sign-in: `POST …/devicecode`.
pub(crate) async fn device_authorization(
    http: &Client,
    config: &AzureConfig,
    now: OffsetDateTime,
    target: &str,
) -> Result<DeviceAuthorization> {
    let what = "device code request";
    let scope = format!("{} {USER_SCOPES}", config.scope());
    let form = [
        ("client_id", config.client_id.as_str()),
        ("scope", scope.as_str()),
    ];
    let raw = match post::<RawDevice>(http, config.device_code_url()?, &form, target, what).await? {
        Answer::Ok(raw) => raw,
        Answer::OAuth(status, e, after) => {
            return Err(oauth_error(target, what, status, &e, after));
        }
    };
    let expires_in = Duration::from_secs(raw.expires_in.seconds().unwrap_or(900));
    let prompt = DeviceCodePrompt::new(
        format!("Microsoft Entra ID tenant {}", config.tenant_id),
        raw.user_code,
        raw.verification_uri,
        expires_in,
        now,
    )
    .with_verification_uri_complete(raw.verification_uri_complete)
    .with_message(raw.message);
    Ok(DeviceAuthorization {
        device_code: Secret::new(raw.device_code),
        interval: raw
            .interval
            .and_then(|i| i.seconds())
            .filter(|s| *s > 0)
            .map(Duration::from_secs),
        prompt,
    })
}

/// Shows the code through `prompter` and polls the token endpoint until
/// the user approves, declines, or the code expires, by the rules of
/// [`session_core::device_code`]: the server's interval (else
/// `default_interval`) on the injected clock, 5 s more after each
/// `slow_down`.
pub(crate) async fn poll_device(
    http: &Client,
    config: &AzureConfig,
    device: &DeviceAuthorization,
    default_interval: Duration,
    prompter: &dyn DeviceCodePrompter,
    clock: &dyn Clock,
    target: &str,
) -> Result<Token> {
    let what = "device code sign-in";
    let rules = DeviceCodePolling::new(Some(device.interval.unwrap_or(default_interval)));
    let token_url = config.token_url()?;
    let form = [
        ("grant_type", DEVICE_CODE_GRANT),
        ("client_id", config.client_id.as_str()),
        ("device_code", device.device_code.expose()),
        ("client_info", "1"),
    ];
    let form = &form;
    let token_url = &token_url;
    poll_device_code(
        &rules,
        &device.prompt,
        prompter,
        clock,
        target,
        move || async move {
            match post::<RawToken>(http, token_url.clone(), form, target, what).await? {
                Answer::Ok(raw) => into_token(raw, clock.now(), target).map(PollAnswer::Granted),
                Answer::OAuth(_, e, _) if e.error == "authorization_pending" => {
                    Ok(PollAnswer::Pending)
                }
                Answer::OAuth(_, e, _) if e.error == "slow_down" => Ok(PollAnswer::SlowDown),
                Answer::OAuth(status, e, after) => {
                    Err(oauth_error(target, what, status, &e, after))
                }
            }
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    //! Against a scripted token endpoint (axum on 127.0.0.1): the answers
    //! the loopback OAuth peer never gives (`slow_down`,
    //! `authorization_declined`, Entra error bodies, string `expires_in`).

    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::http::StatusCode as Status;
    use axum::routing::post;
    use serde_json::{Value, json};
    use session_core::ManualClock;
    use session_core::device_code::{DEFAULT_POLL_INTERVAL, FnPrompter};

    use super::*;

    /// Replies in order; records when (by `clock`) each request came.
    #[derive(Clone)]
    struct Script {
        replies: Arc<Mutex<VecDeque<(u16, Value)>>>,
        seen: Arc<Mutex<Vec<(OffsetDateTime, String)>>>,
        clock: Arc<ManualClock>,
    }

    async fn serve(script: Script) -> String {
        let handler = |path: &'static str| {
            let script = script.clone();
            move |body: String| {
                let script = script.clone();
                async move {
                    script
                        .seen
                        .lock()
                        .unwrap()
                        .push((script.clock.now(), format!("{path} {body}")));
                    let (status, body) = script
                        .replies
                        .lock()
                        .unwrap()
                        .pop_front()
                        .unwrap_or((500, json!({})));
                    let mut res = axum::response::IntoResponse::into_response(axum::Json(body));
                    *res.status_mut() = Status::from_u16(status).unwrap();
                    if status == 429 {
                        res.headers_mut()
                            .insert("retry-after", "7".parse().unwrap());
                    }
                    res
                }
            }
        };
        let app = Router::new()
            .route("/t1/oauth2/v2.0/token", post(handler("token")))
            .route("/t1/oauth2/v2.0/devicecode", post(handler("devicecode")));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    fn script(replies: Vec<(u16, Value)>) -> Script {
        Script {
            replies: Arc::new(Mutex::new(replies.into())),
            seen: Arc::default(),
            clock: Arc::new(ManualClock::new(
                time::macros::datetime!(2030-01-01 0:00 UTC),
            )),
        }
    }

    fn config(authority: &str) -> AzureConfig {
        AzureConfig::new("t1", "app-1")
            .with_authority_host(authority)
            .with_insecure_loopback_authority(true)
    }

    /// Advances the clock 1 s at a time while `task` runs.
    async fn drive<T: Send + 'static>(
        clock: &Arc<ManualClock>,
        task: tokio::task::JoinHandle<T>,
    ) -> T {
        while !task.is_finished() {
            if clock.sleepers() > 0 {
                clock.advance(Duration::from_secs(1));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        task.await.unwrap()
    }

    /// Serves `s`, asks for a device code, then polls (`default_interval`
    /// when the server names none) on the script's clock until the sign-in
    /// ends: the prompt, the server's interval and the outcome.
    async fn device_sign_in(
        s: &Script,
        default_interval: Duration,
    ) -> (DeviceCodePrompt, Option<Duration>, Result<Token>) {
        let base = serve(s.clone()).await;
        let http = http_client().unwrap();
        let cfg = config(&base);
        let device = device_authorization(&http, &cfg, s.clock.now(), "session 'az'")
            .await
            .unwrap();
        let (prompt, interval) = (device.prompt.clone(), device.interval);
        let clock = s.clock.clone();
        let task = tokio::spawn(async move {
            poll_device(
                &http,
                &cfg,
                &device,
                default_interval,
                &FnPrompter::new(|_| {}),
                &*clock,
                "session 'az'",
            )
            .await
        });
        (prompt, interval, drive(&s.clock, task).await)
    }

    #[tokio::test]
    async fn device_flow_honours_interval_pending_and_slow_down() {
        let s = script(vec![
            (
                200,
                json!({"device_code": "dc-secret", "user_code": "ABCD-EFGH",
                "verification_uri": "https://microsoft.com/devicelogin",
                "expires_in": "900", "interval": 2}),
            ),
            (400, json!({"error": "authorization_pending"})),
            (400, json!({"error": "slow_down"})),
            (400, json!({"error": "authorization_pending"})),
            (
                200,
                json!({"access_token": "at-1", "token_type": "Bearer",
                "expires_in": "3599", "refresh_token": "rt-1"}),
            ),
        ]);
        let start = s.clock.now();
        let (prompt, _, token) = device_sign_in(&s, DEFAULT_POLL_INTERVAL).await;
        assert_eq!(prompt.user_code, "ABCD-EFGH");
        assert!(prompt.message.contains("ABCD-EFGH"), "{}", prompt.message);
        assert_eq!(prompt.expires_in, Duration::from_secs(900));
        let token = token.unwrap();
        assert_eq!(token.access_token.expose(), "at-1");
        assert_eq!(token.refresh_token.as_ref().unwrap().expose(), "rt-1");
        let seen = s.seen.lock().unwrap().clone();
        let polls: Vec<i64> = seen[1..]
            .iter()
            .map(|(at, _)| (*at - start).whole_seconds())
            .collect();
        // interval 2 s; after slow_down 7 s.
        assert_eq!(polls, vec![2, 4, 11, 18], "{seen:?}");
        assert_eq!(token.expires_at, start + Duration::from_secs(18 + 3599));
        assert!(seen[1].1.contains("device_code=dc-secret"));
        assert!(seen[0].1.contains("offline_access"), "{}", seen[0].1);
    }

    #[tokio::test]
    async fn device_flow_ends_on_decline_and_on_expiry() {
        for (reply, category) in [
            (
                json!({"error": "authorization_declined"}),
                "permission_denied",
            ),
            (json!({"error": "access_denied"}), "permission_denied"),
            (json!({"error": "expired_token"}), "unauthenticated"),
            (json!({"error": "bad_verification_code"}), "provider"),
        ] {
            let s = script(vec![
                (
                    200,
                    json!({"device_code": "dc", "user_code": "U",
                    "verification_uri": "https://x/device", "expires_in": 600}),
                ),
                (400, reply),
            ]);
            let (_, interval, outcome) = device_sign_in(&s, Duration::from_secs(1)).await;
            assert_eq!(interval, None);
            let err = outcome.unwrap_err();
            assert_eq!(err.category(), category, "{err}");
        }
        // No approval before the code's expiry: stops by the clock.
        let s = script(vec![(
            200,
            json!({"device_code": "dc", "user_code": "U",
                "verification_uri": "https://x/device", "expires_in": 5, "interval": 1}),
        )]);
        {
            let mut replies = s.replies.lock().unwrap();
            for _ in 0..10 {
                replies.push_back((400, json!({"error": "authorization_pending"})));
            }
        }
        let (_, _, outcome) = device_sign_in(&s, DEFAULT_POLL_INTERVAL).await;
        let err = outcome.unwrap_err();
        assert_eq!(err.category(), "unauthenticated");
        assert!(err.to_string().contains("expired"), "{err}");
        assert_eq!(
            s.seen.lock().unwrap().len(),
            5,
            "4 polls, then the deadline"
        );
    }

    #[tokio::test]
    async fn entra_errors_map_to_categories_without_secrets() {
        let s = script(vec![
            (
                401,
                json!({"error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x",
                "error_codes": [7000215], "correlation_id": "corr-1"}),
            ),
            (
                400,
                json!({"error": "invalid_grant", "error_codes": [70008]}),
            ),
            (429, json!({})),
            (503, json!({"error": "temporarily_unavailable"})),
            (400, json!({"error": "invalid_scope"})),
            (
                200,
                json!({"access_token": "at", "token_type": "Bearer", "expires_in": 60}),
            ),
        ]);
        let base = serve(s.clone()).await;
        let http = http_client().unwrap();
        let cfg = config(&base);
        let secret = Secret::new("CANARY-client-secret");
        let err = client_credentials(&http, &cfg, &secret, &*s.clock, "session 'app'")
            .await
            .unwrap_err();
        let text = err.to_string();
        assert_eq!(err.category(), "unauthenticated", "{text}");
        assert!(
            text.contains("AADSTS7000215") && text.contains("corr-1"),
            "{text}"
        );
        assert!(text.contains("session 'app'"), "{text}");
        assert!(
            !text.contains("Trace ID") && !text.contains("CANARY"),
            "{text}"
        );
        let rt = Secret::new("CANARY-refresh");
        let err = refresh(&http, &cfg, &rt, None, &*s.clock, "s")
            .await
            .unwrap_err();
        assert_eq!(err.category(), "unauthenticated");
        assert!(err.to_string().contains("start the session again"), "{err}");
        assert!(!format!("{err:?}").contains("CANARY"));
        let err = client_credentials(&http, &cfg, &secret, &*s.clock, "s")
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Throttled { retry_after: Some(d), .. } if d == Duration::from_secs(7)),
            "{err}"
        );
        let err = client_credentials(&http, &cfg, &secret, &*s.clock, "s")
            .await
            .unwrap_err();
        assert!(
            err.is_retryable() && err.category() == "unavailable",
            "{err}"
        );
        let err = client_credentials(&http, &cfg, &secret, &*s.clock, "s")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("invalid scope"), "{err}");
        let token = client_credentials(&http, &cfg, &secret, &*s.clock, "s")
            .await
            .unwrap();
        assert_eq!(token.expires_at, s.clock.now() + Duration::from_secs(60));
        assert!(token.refresh_token.is_none());
        let seen = s.seen.lock().unwrap();
        assert!(seen[0].1.contains("grant_type=client_credentials"));
        assert!(
            seen[0]
                .1
                .contains("scope=https%3A%2F%2Fmanagement.azure.com%2F.default"),
            "{}",
            seen[0].1
        );
    }
}
