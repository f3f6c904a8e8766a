//! A fake of the AWS federation endpoint (`https://signin.aws.amazon.com/federation`),
//! which turns temporary credentials into a console sign-in URL.
//!
//! Written from the IAM User Guide's "custom identity broker" procedure
//! (awsdocs/iam-user-guide, `id_roles_providers_enable-console-custom-url`),
//! not from any client of ours. Both actions are `GET /federation`:
//!
//! | `Action` | Parameters | Answer |
//! |---|---|---|
//! | `getSigninToken` | `Session` (URL-encoded JSON `{"sessionId","sessionKey","sessionToken"}`), optional `SessionDuration` | `200 {"SigninToken":"…"}` |
//! | `login` | `SigninToken`, `Destination` (a console URL), optional `Issuer` | `302` to `Destination` |
//!
//! What the fake enforces, and why:
//!
//! - `Session` must be there and be a JSON object with non-empty string
//!   members `sessionId` and `sessionKey`.
//! - `sessionToken` is required: only temporary credentials can sign in.
//!   Long-term keys must first go through `GetFederationToken` (the guide's
//!   procedure starts with `AssumeRole` or `GetFederationToken`).
//! - `SessionDuration`, when given, is whole seconds in
//!   [`SESSION_DURATION_RANGE`] (the guide: 900 s to 43 200 s).
//! - `SessionDuration` with credentials from `GetFederationToken` fails:
//!   the guide says "Do not use the SessionDuration HTTP parameter if you got
//!   the temporary credentials with GetFederationToken. Doing so will cause
//!   the operation to fail." Their console session lasts as long as the
//!   credentials.
//! - The credentials must be ones STS issued and still honours: that check
//!   is the pluggable [`Verifier`], which also says what
//!   [`CredentialKind`] they are. An IAM user's own identity (long-term keys
//!   or `GetSessionToken` credentials) cannot sign in.
//! - A sign-in token is valid for [`SIGNIN_TOKEN_LIFETIME`] (the guide: 15
//!   minutes), and the fake accepts it once.
//! - Extra parameters are ignored, as AWS's own Java and Ruby examples send
//!   `SessionType=json` (and the Java one `DurationSeconds`).
//!
//! Errors: the real endpoint answers a refused `getSigninToken` with
//! `400 Bad Request` and an HTML page (seen in gravitational/teleport#22471);
//! the exact page and the answer to a bad `login` are not documented. The
//! fake answers every refusal with `400` and a short `text/plain` reason that
//! quotes no request value, unless built with
//! [`echo_request_in_errors`](FederationFakeBuilder::echo_request_in_errors),
//! a hostile mode whose error bodies quote the whole query (credentials
//! included) for checking that a client never prints an error body.
//!
//! Not modelled: role chaining limits, expiry of the credentials themselves
//! (a verifier can refuse expired ones), `Action=logout`.
//!
//! ```no_run
//! # async fn demo() {
//! use session_testkit::fakes::aws_federation::{
//!     CredentialKind, FederationCredentials, FederationFake,
//! };
//!
//! let fake = FederationFake::start().await;
//! fake.known_credentials().allow(
//!     FederationCredentials::new("ASIAEXAMPLE", "secret", "token"),
//!     CredentialKind::AssumedRole,
//! );
//! // Point the client at `fake.federation_url()`, get a sign-in URL, GET it:
//! // the answer is a 302 to the destination, and then
//! assert_eq!(fake.logins().len(), 1);
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::BoxFuture;
use session_core::{Clock, SystemClock};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::sso::values::{URL_SAFE, random_chars};

/// The path both actions are served on.
pub const FEDERATION_PATH: &str = "/federation";

/// The `SessionDuration` values the endpoint accepts, in seconds (15 min to
/// 12 h).
pub const SESSION_DURATION_RANGE: RangeInclusive<u32> = 900..=43_200;

/// How long a sign-in token can be used for `login` after it was issued.
pub const SIGNIN_TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// The temporary credentials a `getSigninToken` request carries in its
/// `Session` JSON. `Debug` shows only the access key id.
#[derive(Clone, PartialEq, Eq)]
pub struct FederationCredentials {
    /// `sessionId`: the access key id.
    pub session_id: String,
    /// `sessionKey`: the secret access key.
    pub session_key: String,
    /// `sessionToken`: the session token.
    pub session_token: String,
}

impl FederationCredentials {
    /// Credentials from their three parts.
    pub fn new(
        session_id: impl Into<String>,
        session_key: impl Into<String>,
        session_token: impl Into<String>,
    ) -> Self {
        Self {
            session_id: session_id.into(),
            session_key: session_key.into(),
            session_token: session_token.into(),
        }
    }
}

impl fmt::Debug for FederationCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FederationCredentials")
            .field("session_id", &self.session_id)
            .field("session_key", &"<redacted>")
            .field("session_token", &"<redacted>")
            .finish()
    }
}

/// What identity a set of temporary credentials belongs to, as STS's
/// `GetCallerIdentity` would show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// A role session (`…:assumed-role/<role>/<session>`): `AssumeRole`,
    /// `AssumeRoleWithSAML`, `AssumeRoleWithWebIdentity`. May send
    /// `SessionDuration`.
    AssumedRole,
    /// An IAM Identity Center role session (`…:assumed-role/AWSReservedSSO_…`).
    /// May send `SessionDuration`.
    SsoRole,
    /// A federated user (`…:federated-user/<name>`) from `GetFederationToken`.
    /// Must not send `SessionDuration`.
    FederatedUser,
    /// An IAM user's own identity (`…:user/<name>` or `…:root`): long-term
    /// keys or `GetSessionToken` credentials. Cannot sign in.
    IamUser,
}

impl CredentialKind {
    /// The kind of the identity with this ARN (as `GetCallerIdentity`
    /// returns it), or `None` for an ARN of none of these shapes.
    ///
    /// ```
    /// use session_testkit::fakes::aws_federation::CredentialKind;
    /// assert_eq!(
    ///     CredentialKind::from_arn("arn:aws:sts::123456789012:federated-user/bob"),
    ///     Some(CredentialKind::FederatedUser)
    /// );
    /// ```
    pub fn from_arn(arn: &str) -> Option<Self> {
        // arn:<partition>:<service>::<account>:<resource>
        let mut parts = arn.splitn(6, ':');
        if parts.next() != Some("arn") {
            return None;
        }
        let service = parts.nth(1)?;
        let resource = parts.nth(2)?;
        match service {
            "sts" if resource.starts_with("assumed-role/AWSReservedSSO_") => Some(Self::SsoRole),
            "sts" if resource.starts_with("assumed-role/") => Some(Self::AssumedRole),
            "sts" if resource.starts_with("federated-user/") => Some(Self::FederatedUser),
            "sts" | "iam" if resource.starts_with("user/") || resource == "root" => {
                Some(Self::IamUser)
            }
            _ => None,
        }
    }
}

/// Checks a `getSigninToken` request's credentials as STS would: `Ok` with
/// their kind, or `Err` with why they are refused (unknown key, bad
/// signature, expired…). Called with every request that gets that far.
pub type Verifier = Arc<
    dyn Fn(FederationCredentials) -> BoxFuture<'static, Result<CredentialKind, String>>
        + Send
        + Sync,
>;

/// A table of credentials and their kinds: the default [`Verifier`] of a
/// [`FederationFake`], and a building block for other verifiers (e.g. for
/// credentials a test peer issues but cannot look up again).
///
/// Unknown access key ids are refused, as are known ones with another
/// secret or token. Clones share the table.
#[derive(Clone, Default)]
pub struct KnownCredentials {
    table: Arc<Mutex<HashMap<String, (FederationCredentials, CredentialKind)>>>,
}

impl fmt::Debug for KnownCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KnownCredentials")
            .field("count", &lock(&self.table).len())
            .finish()
    }
}

impl KnownCredentials {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts `credentials` as `kind` from now on (replacing an earlier
    /// entry with the same access key id).
    pub fn allow(&self, credentials: FederationCredentials, kind: CredentialKind) {
        lock(&self.table).insert(credentials.session_id.clone(), (credentials, kind));
    }

    /// Refuses the credentials with this access key id from now on, as if
    /// they had been revoked.
    pub fn revoke(&self, session_id: &str) {
        lock(&self.table).remove(session_id);
    }

    /// The kind of `credentials` if they are in the table with the same
    /// secret and token; otherwise why not.
    ///
    /// # Errors
    ///
    /// The reason, which quotes no secret.
    pub fn check(&self, credentials: &FederationCredentials) -> Result<CredentialKind, String> {
        match lock(&self.table).get(&credentials.session_id) {
            None => Err("the access key id is not known".to_owned()),
            Some((known, _)) if known.session_key != credentials.session_key => {
                Err("the secret access key does not match".to_owned())
            }
            Some((known, _)) if known.session_token != credentials.session_token => {
                Err("the session token does not match".to_owned())
            }
            Some((_, kind)) => Ok(*kind),
        }
    }

    /// This table as a [`Verifier`].
    pub fn verifier(&self) -> Verifier {
        let table = self.clone();
        Arc::new(move |credentials| {
            let answer = table.check(&credentials);
            Box::pin(async move { answer })
        })
    }
}

/// One request to the fake, as recorded. Parameter **names** only: their
/// values hold credentials and tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FederationRequest {
    /// The `Action` parameter, if any.
    pub action: Option<String>,
    /// The names of the query parameters, in order.
    pub parameters: Vec<String>,
    /// `sessionId` of the `Session` JSON, when it could be read.
    pub access_key_id: Option<String>,
    /// The `SessionDuration` parameter as sent, if any.
    pub session_duration: Option<String>,
    /// The answer's status code.
    pub status: u16,
    /// Why the request was refused (the text of the 400 answer), if it was.
    pub refusal: Option<String>,
}

/// A sign-in token the fake issued. `Debug` does not show the token.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The token.
    pub token: String,
    /// The access key id of the credentials it was issued for.
    pub access_key_id: String,
    /// Their kind, as the verifier said.
    pub kind: CredentialKind,
    /// The `SessionDuration` asked for, if any.
    pub session_duration: Option<u32>,
    /// When it was issued.
    pub issued_at: OffsetDateTime,
    /// Whether a `login` used it.
    pub used: bool,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"<redacted>")
            .field("access_key_id", &self.access_key_id)
            .field("kind", &self.kind)
            .field("session_duration", &self.session_duration)
            .field("issued_at", &self.issued_at)
            .field("used", &self.used)
            .finish()
    }
}

/// A successful `login`: the console session it would open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    /// `Destination`: where the browser was redirected.
    pub destination: String,
    /// `Issuer`, if given.
    pub issuer: Option<String>,
    /// The access key id of the credentials behind the token.
    pub access_key_id: String,
    /// Their kind.
    pub kind: CredentialKind,
    /// The console session's length when `SessionDuration` was given; else
    /// the session lasts as long as the credentials.
    pub session_duration: Option<u32>,
    /// When the login happened.
    pub at: OffsetDateTime,
}

#[derive(Default)]
struct FakeState {
    requests: Vec<FederationRequest>,
    tokens: Vec<IssuedToken>,
    logins: Vec<Login>,
}

struct Inner {
    state: Mutex<FakeState>,
    verifier: Verifier,
    clock: Arc<dyn Clock>,
    echo: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding the lock must not hide the state
    // from the test's own assertions.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Builds a [`FederationFake`].
pub struct FederationFakeBuilder {
    verifier: Option<Verifier>,
    clock: Arc<dyn Clock>,
    echo: bool,
}

impl fmt::Debug for FederationFakeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FederationFakeBuilder")
            .field("custom_verifier", &self.verifier.is_some())
            .field("echo", &self.echo)
            .finish_non_exhaustive()
    }
}

impl FederationFakeBuilder {
    /// Checks credentials with `verifier` instead of the fake's
    /// [`KnownCredentials`] table.
    pub fn verifier(mut self, verifier: Verifier) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// Reads time (token issue and expiry) from `clock` (default: the wall
    /// clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Hostile mode: every 400 answer quotes the whole request query,
    /// credentials included, as a careless service might. For checking that
    /// a client never shows an error body.
    pub fn echo_request_in_errors(mut self, echo: bool) -> Self {
        self.echo = echo;
        self
    }

    /// Starts the fake on `127.0.0.1:0`, as a task of the current Tokio
    /// runtime.
    ///
    /// # Panics
    ///
    /// When no local port can be bound.
    pub async fn start(self) -> FederationFake {
        let known = KnownCredentials::new();
        let verifier = self.verifier.unwrap_or_else(|| known.verifier());
        let inner = Arc::new(Inner {
            state: Mutex::new(FakeState::default()),
            verifier,
            clock: self.clock,
            echo: self.echo,
        });
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("FederationFake: cannot bind 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("FederationFake: no local address");
        let app = Router::new()
            .route(FEDERATION_PATH, get(federation))
            .with_state(inner.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!("FederationFake stopped: {e}");
            }
        });
        FederationFake {
            addr,
            inner,
            known,
            task,
        }
    }
}

/// The running fake federation endpoint; it stops when dropped.
pub struct FederationFake {
    addr: SocketAddr,
    inner: Arc<Inner>,
    known: KnownCredentials,
    task: JoinHandle<()>,
}

impl fmt::Debug for FederationFake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FederationFake")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for FederationFake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FederationFake {
    /// A builder (default: the [`KnownCredentials`] verifier, the wall
    /// clock, no echo).
    pub fn builder() -> FederationFakeBuilder {
        FederationFakeBuilder {
            verifier: None,
            clock: Arc::new(SystemClock),
            echo: false,
        }
    }

    /// Starts the fake with the defaults; credentials are accepted once
    /// added to [`known_credentials`](Self::known_credentials).
    ///
    /// # Panics
    ///
    /// When no local port can be bound.
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:<port>/federation`: the URL a client uses where it
    /// would use `https://signin.aws.amazon.com/federation`.
    pub fn federation_url(&self) -> String {
        format!("{}{FEDERATION_PATH}", self.base_url())
    }

    /// The socket address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The table the default verifier checks. (With a custom
    /// [`verifier`](FederationFakeBuilder::verifier) it is not consulted.)
    pub fn known_credentials(&self) -> &KnownCredentials {
        &self.known
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<FederationRequest> {
        lock(&self.inner.state).requests.clone()
    }

    /// How many requests had `Action` equal to `action` (`getSigninToken`,
    /// `login`), answered or refused.
    pub fn count(&self, action: &str) -> usize {
        lock(&self.inner.state)
            .requests
            .iter()
            .filter(|r| r.action.as_deref() == Some(action))
            .count()
    }

    /// Every sign-in token issued so far, in order.
    pub fn issued_tokens(&self) -> Vec<IssuedToken> {
        lock(&self.inner.state).tokens.clone()
    }

    /// Every successful `login` so far, in order.
    pub fn logins(&self) -> Vec<Login> {
        lock(&self.inner.state).logins.clone()
    }
}

/// The answer to one request, before it is recorded.
enum Outcome {
    Token(String),
    Redirect(String),
    Refused(String),
}

/// What a request said, for the record.
#[derive(Default)]
struct Seen {
    access_key_id: Option<String>,
}

async fn federation(State(inner): State<Arc<Inner>>, uri: Uri) -> Response {
    let pairs = match Query::<Vec<(String, String)>>::try_from_uri(&uri) {
        Ok(Query(pairs)) => pairs,
        // The rejection's text may quote the query: not shown.
        Err(_) => Vec::new(),
    };
    let action = param(&pairs, "Action").map(str::to_owned);
    let mut seen = Seen::default();
    let outcome = match duplicated(&pairs) {
        Some(name) => Outcome::Refused(format!("parameter {name} is given more than once")),
        None => match action.as_deref() {
            Some("getSigninToken") => get_signin_token(&inner, &pairs, &mut seen).await,
            Some("login") => login(&inner, &pairs, &mut seen),
            Some(_) => Outcome::Refused("unknown Action".to_owned()),
            None => Outcome::Refused("missing Action".to_owned()),
        },
    };
    let (status, refusal, response) = match outcome {
        Outcome::Token(token) => (
            StatusCode::OK,
            None,
            (
                [(header::CONTENT_TYPE, "application/json")],
                serde_json::json!({ "SigninToken": token }).to_string(),
            )
                .into_response(),
        ),
        Outcome::Redirect(location) => (
            StatusCode::FOUND,
            None,
            (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        ),
        Outcome::Refused(reason) => {
            let mut body = format!("Bad Request: {reason}\n");
            if inner.echo {
                body.push_str(&format!("request: {}\n", uri.query().unwrap_or("")));
            }
            (
                StatusCode::BAD_REQUEST,
                Some(reason),
                (
                    StatusCode::BAD_REQUEST,
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    body,
                )
                    .into_response(),
            )
        }
    };
    lock(&inner.state).requests.push(FederationRequest {
        action,
        parameters: pairs.iter().map(|(name, _)| name.clone()).collect(),
        access_key_id: seen.access_key_id,
        session_duration: param(&pairs, "SessionDuration").map(str::to_owned),
        status: status.as_u16(),
        refusal,
    });
    response
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// The first parameter name that occurs twice: which one would count is
/// not documented, so the fake refuses rather than pick one.
fn duplicated(pairs: &[(String, String)]) -> Option<&str> {
    pairs.iter().enumerate().find_map(|(i, (name, _))| {
        pairs[..i]
            .iter()
            .any(|(earlier, _)| earlier == name)
            .then_some(name.as_str())
    })
}

async fn get_signin_token(inner: &Inner, pairs: &[(String, String)], seen: &mut Seen) -> Outcome {
    let credentials = match session_credentials(param(pairs, "Session"), seen) {
        Ok(credentials) => credentials,
        Err(reason) => return Outcome::Refused(reason),
    };
    let duration = match param(pairs, "SessionDuration") {
        None => None,
        Some(text) => match text.parse::<u32>() {
            Ok(seconds) if SESSION_DURATION_RANGE.contains(&seconds) => Some(seconds),
            _ => {
                return Outcome::Refused(format!(
                    "SessionDuration must be whole seconds from {} to {}",
                    SESSION_DURATION_RANGE.start(),
                    SESSION_DURATION_RANGE.end()
                ));
            }
        },
    };
    let access_key_id = credentials.session_id.clone();
    let kind = match (inner.verifier)(credentials).await {
        Ok(kind) => kind,
        Err(reason) => return Outcome::Refused(format!("invalid credentials: {reason}")),
    };
    match (kind, duration) {
        (CredentialKind::IamUser, _) => {
            return Outcome::Refused(
                "an IAM user's own credentials (long-term keys or GetSessionToken) cannot sign \
                 in to the console"
                    .to_owned(),
            );
        }
        (CredentialKind::FederatedUser, Some(_)) => {
            return Outcome::Refused(
                "SessionDuration cannot be used with credentials from GetFederationToken"
                    .to_owned(),
            );
        }
        _ => {}
    }
    let token = random_chars(URL_SAFE, 320);
    lock(&inner.state).tokens.push(IssuedToken {
        token: token.clone(),
        access_key_id,
        kind,
        session_duration: duration,
        issued_at: inner.clock.now(),
        used: false,
    });
    Outcome::Token(token)
}

/// The `Session` parameter's credentials, or why they cannot be read.
fn session_credentials(
    session: Option<&str>,
    seen: &mut Seen,
) -> Result<FederationCredentials, String> {
    let session = session.ok_or("missing Session")?;
    let json: serde_json::Value =
        serde_json::from_str(session).map_err(|_| "Session is not JSON".to_owned())?;
    let object = json.as_object().ok_or("Session is not a JSON object")?;
    let member = |name: &str| -> Result<Option<String>, String> {
        match object.get(name) {
            None => Ok(None),
            Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(_) => Err(format!("Session.{name} must be a non-empty string")),
        }
    };
    let session_id = member("sessionId")?.ok_or("Session has no sessionId")?;
    seen.access_key_id = Some(session_id.clone());
    let session_key = member("sessionKey")?.ok_or("Session has no sessionKey")?;
    let session_token = member("sessionToken")?.ok_or(
        "Session has no sessionToken: long-term access keys cannot sign in to the console; \
         use temporary credentials (AssumeRole or GetFederationToken)",
    )?;
    Ok(FederationCredentials {
        session_id,
        session_key,
        session_token,
    })
}

fn login(inner: &Inner, pairs: &[(String, String)], seen: &mut Seen) -> Outcome {
    let Some(token) = param(pairs, "SigninToken") else {
        return Outcome::Refused("missing SigninToken".to_owned());
    };
    let Some(destination) = param(pairs, "Destination") else {
        return Outcome::Refused("missing Destination".to_owned());
    };
    if !is_absolute_http_url(destination) {
        return Outcome::Refused("Destination must be an absolute https:// URL".to_owned());
    }
    let now = inner.clock.now();
    let mut state = lock(&inner.state);
    let Some(issued) = state.tokens.iter_mut().find(|t| t.token == token) else {
        return Outcome::Refused("unknown SigninToken".to_owned());
    };
    seen.access_key_id = Some(issued.access_key_id.clone());
    if issued.used {
        return Outcome::Refused("the SigninToken was already used".to_owned());
    }
    if now - issued.issued_at > SIGNIN_TOKEN_LIFETIME {
        return Outcome::Refused("the SigninToken has expired".to_owned());
    }
    issued.used = true;
    let login = Login {
        destination: destination.to_owned(),
        issuer: param(pairs, "Issuer").map(str::to_owned),
        access_key_id: issued.access_key_id.clone(),
        kind: issued.kind,
        session_duration: issued.session_duration,
        at: now,
    };
    state.logins.push(login);
    Outcome::Redirect(destination.to_owned())
}

/// `http(s)://host…`: a redirect target a browser can follow. (Plain http
/// is accepted so that tests can redirect to a local server.)
fn is_absolute_http_url(value: &str) -> bool {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    rest.is_some_and(|rest| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !value.chars().any(char::is_whitespace)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_are_classified() {
        let cases = [
            (
                "arn:aws:sts::123456789012:assumed-role/Admin/alice",
                Some(CredentialKind::AssumedRole),
            ),
            (
                "arn:aws-cn:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0123/alice",
                Some(CredentialKind::SsoRole),
            ),
            (
                "arn:aws-us-gov:sts::123456789012:federated-user/bob",
                Some(CredentialKind::FederatedUser),
            ),
            (
                "arn:aws:sts::123456789012:user/moto",
                Some(CredentialKind::IamUser),
            ),
            (
                "arn:aws:iam::123456789012:user/dev",
                Some(CredentialKind::IamUser),
            ),
            (
                "arn:aws:iam::123456789012:root",
                Some(CredentialKind::IamUser),
            ),
            ("arn:aws:iam::123456789012:role/Admin", None),
            ("not-an-arn", None),
        ];
        for (arn, kind) in cases {
            assert_eq!(CredentialKind::from_arn(arn), kind, "{arn}");
        }
    }

    #[test]
    fn known_credentials_check_every_part() {
        let known = KnownCredentials::new();
        let creds = FederationCredentials::new("ASIAONE", "secret", "token");
        assert!(known.check(&creds).is_err());
        known.allow(creds.clone(), CredentialKind::AssumedRole);
        assert_eq!(known.check(&creds), Ok(CredentialKind::AssumedRole));
        let mut wrong = creds.clone();
        wrong.session_key = "other".into();
        assert!(known.check(&wrong).unwrap_err().contains("secret"));
        let mut wrong = creds.clone();
        wrong.session_token = "other".into();
        assert!(known.check(&wrong).unwrap_err().contains("token"));
        known.revoke("ASIAONE");
        assert!(known.check(&creds).is_err());
    }

    #[test]
    fn debug_hides_secrets() {
        let creds = FederationCredentials::new("ASIAONE", "s3cr3t", "t0k3n");
        let text = format!("{creds:?}");
        assert!(
            !text.contains("s3cr3t") && !text.contains("t0k3n"),
            "{text}"
        );
        let token = IssuedToken {
            token: "signin-t0k3n".into(),
            access_key_id: "ASIAONE".into(),
            kind: CredentialKind::AssumedRole,
            session_duration: None,
            issued_at: OffsetDateTime::UNIX_EPOCH,
            used: false,
        };
        assert!(!format!("{token:?}").contains("signin-t0k3n"));
    }

    #[test]
    fn destinations_must_be_absolute() {
        assert!(is_absolute_http_url(
            "https://eu-west-1.console.aws.amazon.com/console/home?region=eu-west-1"
        ));
        assert!(is_absolute_http_url("http://127.0.0.1:1/x"));
        for bad in ["/console", "https://", "javascript:alert(1)", "https://a b"] {
            assert!(!is_absolute_http_url(bad), "{bad}");
        }
    }

    #[test]
    fn duplicates_are_found() {
        let pairs = |names: &[&str]| -> Vec<(String, String)> {
            names
                .iter()
                .map(|n| ((*n).to_owned(), String::new()))
                .collect()
        };
        assert_eq!(duplicated(&pairs(&["Action", "Session"])), None);
        assert_eq!(
            duplicated(&pairs(&["Action", "Session", "Action"])),
            Some("Action")
        );
    }
}
