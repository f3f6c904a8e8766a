//! A fake of AWS IAM Identity Center: the SSO-OIDC API and the SSO portal API,
//! served by one in-process HTTP server.
//!
//! Built from the official API models (`sso-oidc` and `sso`, API version
//! 2019-06-10, protocol `rest-json`, unsigned):
//!
//! | Operation | HTTP | Input |
//! |---|---|---|
//! | `RegisterClient` | `POST /client/register` | JSON `clientName`, `clientType`, `scopes` |
//! | `StartDeviceAuthorization` | `POST /device_authorization` | JSON `clientId`, `clientSecret`, `startUrl` |
//! | `CreateToken` | `POST /token` | JSON `clientId`, `clientSecret`, `grantType`, `deviceCode` / `refreshToken` |
//! | `GetRoleCredentials` | `GET /federation/credentials` | query `account_id`, `role_name` |
//! | `ListAccounts` | `GET /assignment/accounts` | query `max_result`, `next_token` |
//! | `ListAccountRoles` | `GET /assignment/roles` | query `account_id`, `max_result`, `next_token` |
//! | `Logout` | `POST /logout` | none |
//!
//! The portal operations take the access token in the header
//! `x-amz-sso_bearer_token`.
//!
//! Errors carry the header `x-amzn-ErrorType: <Exception>` and a JSON body
//! with `__type` and `message`; SSO-OIDC errors also carry the OAuth members
//! `error` (e.g. `authorization_pending`) and `error_description`. Status
//! codes follow the models: every SSO-OIDC error is 400 except
//! `InvalidClientException` (401) and `InternalServerException` (500); on the
//! portal `UnauthorizedException` is 401, `TooManyRequestsException` 429,
//! `ResourceNotFoundException` 404 and `InvalidRequestException` 400. A role
//! that is not assigned answers 403 `ForbiddenException` with message
//! `No access`, as the real portal does (that error is not in the model).
//!
//! Time (token, device-code, client-secret and credential expiry, polling
//! interval) is read from a [`Clock`]: the wall clock by default, or a
//! [`ManualClock`](session_core::ManualClock) given to
//! [`SsoFake::start_with_clock`] or [`SsoFake::set_clock`].
//!
//! ```no_run
//! # async fn demo() {
//! use session_testkit::fakes::SsoFake;
//!
//! let fake = SsoFake::start().await;
//! fake.add_account("111122223333", "Dev", "dev@example.com");
//! fake.add_role("111122223333", "Admin");
//! // Point the SSO-OIDC client at `fake.oidc_endpoint()` and the portal
//! // client at `fake.portal_endpoint()`, start the device flow, then approve
//! // it as the user would:
//! for user_code in fake.pending_user_codes() {
//!     fake.approve(&user_code);
//! }
//! // ... the client's next CreateToken poll gets the token ...
//! println!("{} polls", fake.calls("CreateToken"));
//! # }
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use session_core::{Clock, SystemClock};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The registration scope with which `CreateToken` also returns a refresh
/// token (and rotates it on every refresh).
pub const ACCOUNT_ACCESS_SCOPE: &str = "sso:account:access";

/// The `grantType` of the device authorization grant.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The `grantType` of the refresh-token grant.
pub const REFRESH_TOKEN_GRANT: &str = "refresh_token";

/// The header that carries the portal's bearer access token.
pub const BEARER_HEADER: &str = "x-amz-sso_bearer_token";

/// The operation names that [`SsoFake::calls`] counts.
pub const OPERATIONS: [&str; 7] = [
    "RegisterClient",
    "StartDeviceAuthorization",
    "CreateToken",
    "GetRoleCredentials",
    "ListAccounts",
    "ListAccountRoles",
    "Logout",
];

/// The message of the portal's `UnauthorizedException`.
const UNAUTHORIZED_MESSAGE: &str = "Session token not found or invalid";

/// The largest `max_result` the portal accepts (the model's range is 1–100).
const MAX_RESULT_LIMIT: i64 = 100;

/// Role credentials handed out by `GetRoleCredentials`, as recorded by the
/// fake (see [`SsoFake::issued_credentials`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedCredentials {
    /// The account the credentials are for.
    pub account_id: String,
    /// The role the credentials are for.
    pub role_name: String,
    /// `ASIA…` access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token.
    pub session_token: String,
    /// When they expire; on the wire this is epoch milliseconds.
    pub expiration: OffsetDateTime,
}

/// A registration and tokens created directly by [`SsoFake::mint_login`],
/// as if a device flow had completed; for seeding caches in tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MintedLogin {
    /// The registered client id.
    pub client_id: String,
    /// The registered client secret.
    pub client_secret: String,
    /// When the client secret expires.
    pub client_secret_expires_at: OffsetDateTime,
    /// A valid portal access token.
    pub access_token: String,
    /// When the access token expires.
    pub access_token_expires_at: OffsetDateTime,
    /// A refresh token, when the scopes include [`ACCOUNT_ACCESS_SCOPE`].
    pub refresh_token: Option<String>,
}

/// An in-process fake of the SSO-OIDC and SSO portal APIs.
///
/// [`start`](Self::start) binds `127.0.0.1:0` and serves both APIs from one
/// base URL ([`oidc_endpoint`](Self::oidc_endpoint) and
/// [`portal_endpoint`](Self::portal_endpoint) return the same value). The
/// server stops when the fake is dropped or [`shutdown`](Self::shutdown).
///
/// Device flow: `StartDeviceAuthorization` creates a pending authorization;
/// `CreateToken` with the device-code grant answers
/// `AuthorizationPendingException` until the test calls
/// [`approve`](Self::approve) (or [`deny`](Self::deny), then
/// `AccessDeniedException`), `ExpiredTokenException` once the device code has
/// expired, and `SlowDownException` when polled faster than the interval
/// (see [`set_enforce_interval`](Self::set_enforce_interval)) or when forced
/// with [`slow_down_next`](Self::slow_down_next). A device code yields tokens
/// once; reusing it is `InvalidGrantException`.
///
/// Refresh: only clients registered with [`ACCOUNT_ACCESS_SCOPE`] receive a
/// refresh token; each refresh returns a new access token and a new refresh
/// token, and the old refresh token is then rejected with
/// `InvalidGrantException`, as are unknown, expired and revoked ones.
///
/// Defaults: access tokens live 1 h, refresh tokens 8 h (each from its
/// issue), device codes 600 s with a 1 s polling interval (enforced), client
/// secrets 90 days, role credentials 1 h, pages of 20 items.
pub struct SsoFake {
    base_url: String,
    addr: SocketAddr,
    state: Shared,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for SsoFake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SsoFake")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Drop for SsoFake {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl SsoFake {
    /// Starts the fake on `127.0.0.1:0` with the wall clock.
    ///
    /// Must be called within a Tokio runtime; the server runs as a task on it.
    ///
    /// # Panics
    ///
    /// When no local port can be bound.
    pub async fn start() -> Self {
        Self::start_with_clock(Arc::new(SystemClock)).await
    }

    /// Starts the fake on `127.0.0.1:0`, reading time from `clock`.
    ///
    /// # Panics
    ///
    /// When no local port can be bound.
    pub async fn start_with_clock(clock: Arc<dyn Clock>) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("SsoFake: cannot bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("SsoFake: no local address");
        let base_url = format!("http://{addr}");
        let state: Shared = Arc::new(Mutex::new(FakeState::new(clock, base_url.clone())));
        let app = router(state.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!("SsoFake server stopped: {e}");
            }
        });
        Self {
            base_url,
            addr,
            state,
            task: Some(task),
        }
    }

    /// Stops the server and waits until it has stopped accepting
    /// connections. Idle kept-alive connections are closed.
    pub async fn shutdown(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// The base URL of the SSO-OIDC API (`http://127.0.0.1:<port>`), for the
    /// client's `endpoint_url`.
    pub fn oidc_endpoint(&self) -> String {
        self.base_url.clone()
    }

    /// The base URL of the SSO portal API; the same server as
    /// [`oidc_endpoint`](Self::oidc_endpoint).
    pub fn portal_endpoint(&self) -> String {
        self.base_url.clone()
    }

    /// The socket address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        lock(&self.state)
    }

    // ----- configuration -------------------------------------------------

    /// Reads time from `clock` from now on.
    pub fn set_clock(&self, clock: Arc<dyn Clock>) {
        self.lock().clock = clock;
    }

    /// The fake's current time.
    pub fn now(&self) -> OffsetDateTime {
        self.lock().clock.now()
    }

    /// Assigns an account to the user (replaces the name and email of an
    /// account with the same id). `ListAccounts` lists accounts in the order
    /// they were first added.
    pub fn add_account(&self, account_id: &str, name: &str, email: &str) {
        let mut st = self.lock();
        let account = Account {
            id: account_id.to_owned(),
            name: name.to_owned(),
            email: email.to_owned(),
        };
        match st.accounts.iter_mut().find(|a| a.id == account_id) {
            Some(existing) => *existing = account,
            None => st.accounts.push(account),
        }
    }

    /// Assigns `role_name` in `account_id` to the user, so that
    /// `ListAccountRoles` lists it and `GetRoleCredentials` issues
    /// credentials for it. Adding the same role twice has no effect.
    pub fn add_role(&self, account_id: &str, role_name: &str) {
        let mut st = self.lock();
        let role = (account_id.to_owned(), role_name.to_owned());
        if !st.roles.contains(&role) {
            st.roles.push(role);
        }
    }

    /// The most items a `ListAccounts` / `ListAccountRoles` page holds (at
    /// least 1); a smaller `max_result` from the client wins.
    pub fn set_page_size(&self, items: usize) {
        self.lock().settings.page_size = items.max(1);
    }

    /// How long role credentials are valid (sent as epoch milliseconds).
    pub fn set_credentials_lifetime(&self, lifetime: Duration) {
        self.lock().settings.credentials_lifetime = lifetime;
    }

    /// How long access tokens are valid (`expiresIn`, whole seconds).
    pub fn set_access_token_lifetime(&self, lifetime: Duration) {
        self.lock().settings.access_token_lifetime = lifetime;
    }

    /// How long each refresh token is valid after it was issued.
    pub fn set_refresh_token_lifetime(&self, lifetime: Duration) {
        self.lock().settings.refresh_token_lifetime = lifetime;
    }

    /// How long new device codes are valid (`expiresIn`, whole seconds).
    pub fn set_device_code_lifetime(&self, lifetime: Duration) {
        self.lock().settings.device_code_lifetime = lifetime;
    }

    /// The polling `interval` returned by `StartDeviceAuthorization` (whole
    /// seconds) and enforced on `CreateToken` polls.
    pub fn set_interval(&self, interval: Duration) {
        self.lock().settings.interval = interval;
    }

    /// Whether two device-code polls closer together than the interval make
    /// the second answer `SlowDownException` (on by default).
    pub fn set_enforce_interval(&self, enforce: bool) {
        self.lock().settings.enforce_interval = enforce;
    }

    /// The next `n` device-code `CreateToken` polls (of a live, pending or
    /// approved device code) answer `SlowDownException`.
    pub fn slow_down_next(&self, n: usize) {
        self.lock().forced_slow_downs = n;
    }

    /// How long new client registrations are valid
    /// (`clientSecretExpiresAt`).
    pub fn set_client_secret_lifetime(&self, lifetime: Duration) {
        self.lock().settings.client_secret_lifetime = lifetime;
    }

    /// Approve every new device authorization at once, as if the user did.
    pub fn set_auto_approve(&self, auto: bool) {
        self.lock().settings.auto_approve = auto;
    }

    // ----- driving the user's side ---------------------------------------

    /// The user approves the device authorization with `user_code` (case and
    /// surrounding blanks ignored). True when a pending authorization was
    /// found and is now approved.
    ///
    /// Opening `verificationUriComplete` (`GET /device?user_code=…`) does
    /// the same.
    pub fn approve(&self, user_code: &str) -> bool {
        self.lock().decide(user_code, Decision::Approved)
    }

    /// The user denies the device authorization with `user_code`; its polls
    /// then answer `AccessDeniedException`. True when a pending
    /// authorization was found.
    pub fn deny(&self, user_code: &str) -> bool {
        self.lock().decide(user_code, Decision::Denied)
    }

    /// The user codes of device authorizations that are neither decided nor
    /// expired, oldest first.
    pub fn pending_user_codes(&self) -> Vec<String> {
        let st = self.lock();
        let now = st.clock.now();
        let mut pending: Vec<_> = st
            .devices
            .values()
            .filter(|d| d.decision == Decision::Pending && now < d.expires_at)
            .map(|d| (d.seq, d.user_code.clone()))
            .collect();
        pending.sort();
        pending.into_iter().map(|(_, code)| code).collect()
    }

    /// Makes every device code issued so far expired.
    pub fn expire_device_codes(&self) {
        let mut st = self.lock();
        let now = st.clock.now();
        for device in st.devices.values_mut() {
            device.expires_at = device.expires_at.min(now);
        }
    }

    /// Makes every client registration made so far expired
    /// (`InvalidClientException` from then on).
    pub fn expire_registrations(&self) {
        let mut st = self.lock();
        let now = st.clock.now();
        for client in st.clients.values_mut() {
            client.secret_expires_at = client.secret_expires_at.min(now);
        }
    }

    /// Makes every access token issued so far expired; refresh tokens stay
    /// valid, so a client can refresh.
    pub fn expire_access_tokens(&self) {
        let mut st = self.lock();
        let now = st.clock.now();
        for token in st.access_tokens.values_mut() {
            token.expires_at = token.expires_at.min(now);
        }
    }

    /// Revokes every access and refresh token issued so far, as when the
    /// Identity Center session ends: the portal answers
    /// `UnauthorizedException` and refreshes `InvalidGrantException`.
    pub fn revoke_all(&self) {
        let mut st = self.lock();
        for token in st.access_tokens.values_mut() {
            token.revoked = true;
        }
        for token in st.refresh_tokens.values_mut() {
            if token.status == RefreshStatus::Active {
                token.status = RefreshStatus::Revoked;
            }
        }
    }

    /// Whether `access_token` would be accepted by the portal now.
    pub fn access_token_valid(&self, access_token: &str) -> bool {
        let st = self.lock();
        let now = st.clock.now();
        st.access_tokens
            .get(access_token)
            .is_some_and(|t| !t.revoked && now < t.expires_at)
    }

    /// Whether `refresh_token` would be accepted by `CreateToken` now.
    pub fn refresh_token_valid(&self, refresh_token: &str) -> bool {
        let st = self.lock();
        let now = st.clock.now();
        st.refresh_tokens
            .get(refresh_token)
            .is_some_and(|t| t.status == RefreshStatus::Active && now < t.expires_at)
    }

    /// Registers a client with `scopes` and issues tokens for it directly,
    /// as if a device flow had been approved. Counts neither as a
    /// registration nor as a call.
    pub fn mint_login(&self, scopes: &[&str]) -> MintedLogin {
        let mut st = self.lock();
        let now = st.clock.now();
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        let client = st.new_client(scopes, now);
        let tokens = st.issue_tokens(&client, now);
        MintedLogin {
            client_id: client.id,
            client_secret: client.secret,
            client_secret_expires_at: client.secret_expires_at,
            access_token: tokens.access_token,
            access_token_expires_at: tokens.access_expires_at,
            refresh_token: tokens.refresh_token,
        }
    }

    /// Issues a valid portal access token without any flow (no refresh
    /// token).
    pub fn mint_access_token(&self) -> String {
        self.mint_login(&[]).access_token
    }

    // ----- fault injection -----------------------------------------------

    /// The next `n` portal calls (`GetRoleCredentials`, `ListAccounts`,
    /// `ListAccountRoles`, `Logout`) answer 429 `TooManyRequestsException`.
    /// Replaces any count still pending.
    pub fn throttle_next(&self, n: usize) {
        self.lock().throttle = n;
    }

    /// The next call of any operation (OIDC or portal) answers `status` with
    /// error type `error_type` (e.g. `500`, `"InternalServerException"`).
    /// Calls queue up: each injected failure is used once.
    pub fn fail_next_with(&self, status: u16, error_type: &str) {
        self.lock().failures.push_back(Injected {
            operation: None,
            status,
            error_type: error_type.to_owned(),
        });
    }

    /// Like [`fail_next_with`](Self::fail_next_with), but only for the next
    /// call of `operation` (one of [`OPERATIONS`]).
    pub fn fail_next_call_of(&self, operation: &str, status: u16, error_type: &str) {
        self.lock().failures.push_back(Injected {
            operation: Some(operation.to_owned()),
            status,
            error_type: error_type.to_owned(),
        });
    }

    // ----- counters --------------------------------------------------------

    /// How many requests reached `operation` (one of [`OPERATIONS`]),
    /// successful or not, injected failures included.
    pub fn calls(&self, operation: &str) -> usize {
        self.lock().calls.get(operation).copied().unwrap_or(0)
    }

    /// How many device authorizations were started successfully.
    pub fn device_authorizations(&self) -> usize {
        self.lock().device_authorizations
    }

    /// How many clients were registered successfully through
    /// `RegisterClient`.
    pub fn registrations(&self) -> usize {
        self.lock().registrations
    }

    /// Every set of role credentials issued, oldest first.
    pub fn issued_credentials(&self) -> Vec<IssuedCredentials> {
        self.lock().issued.clone()
    }
}

// ----- state ---------------------------------------------------------------

type Shared = Arc<Mutex<FakeState>>;

fn lock(state: &Shared) -> MutexGuard<'_, FakeState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Clone)]
struct Settings {
    page_size: usize,
    credentials_lifetime: Duration,
    access_token_lifetime: Duration,
    refresh_token_lifetime: Duration,
    device_code_lifetime: Duration,
    interval: Duration,
    enforce_interval: bool,
    client_secret_lifetime: Duration,
    auto_approve: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            page_size: 20,
            credentials_lifetime: Duration::from_secs(3600),
            access_token_lifetime: Duration::from_secs(3600),
            refresh_token_lifetime: Duration::from_secs(8 * 3600),
            device_code_lifetime: Duration::from_secs(600),
            interval: Duration::from_secs(1),
            enforce_interval: true,
            client_secret_lifetime: Duration::from_secs(90 * 24 * 3600),
            auto_approve: false,
        }
    }
}

#[derive(Debug, Clone)]
struct Account {
    id: String,
    name: String,
    email: String,
}

#[derive(Debug, Clone)]
struct Client {
    id: String,
    secret: String,
    scopes: Vec<String>,
    secret_expires_at: OffsetDateTime,
}

impl Client {
    fn gets_refresh_tokens(&self) -> bool {
        self.scopes.iter().any(|s| s == ACCOUNT_ACCESS_SCOPE)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Pending,
    Approved,
    Denied,
}

#[derive(Debug)]
struct Device {
    seq: u64,
    client_id: String,
    user_code: String,
    expires_at: OffsetDateTime,
    decision: Decision,
    last_poll: Option<OffsetDateTime>,
    redeemed: bool,
}

#[derive(Debug)]
struct AccessTokenRecord {
    session: u64,
    expires_at: OffsetDateTime,
    revoked: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefreshStatus {
    Active,
    Used,
    Revoked,
}

#[derive(Debug)]
struct RefreshTokenRecord {
    client_id: String,
    session: u64,
    expires_at: OffsetDateTime,
    status: RefreshStatus,
}

#[derive(Debug)]
struct Injected {
    operation: Option<String>,
    status: u16,
    error_type: String,
}

struct Tokens {
    access_token: String,
    access_expires_at: OffsetDateTime,
    refresh_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PageCursor {
    listing: String,
    offset: usize,
}

struct FakeState {
    clock: Arc<dyn Clock>,
    base_url: String,
    settings: Settings,
    accounts: Vec<Account>,
    roles: Vec<(String, String)>,
    clients: HashMap<String, Client>,
    devices: HashMap<String, Device>,
    access_tokens: HashMap<String, AccessTokenRecord>,
    refresh_tokens: HashMap<String, RefreshTokenRecord>,
    page_tokens: HashMap<String, PageCursor>,
    calls: HashMap<&'static str, usize>,
    registrations: usize,
    device_authorizations: usize,
    throttle: usize,
    forced_slow_downs: usize,
    failures: VecDeque<Injected>,
    issued: Vec<IssuedCredentials>,
    seq: u64,
}

impl FakeState {
    fn new(clock: Arc<dyn Clock>, base_url: String) -> Self {
        Self {
            clock,
            base_url,
            settings: Settings::default(),
            accounts: Vec::new(),
            roles: Vec::new(),
            clients: HashMap::new(),
            devices: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            page_tokens: HashMap::new(),
            calls: HashMap::new(),
            registrations: 0,
            device_authorizations: 0,
            throttle: 0,
            forced_slow_downs: 0,
            failures: VecDeque::new(),
            issued: Vec::new(),
            seq: 0,
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn decide(&mut self, user_code: &str, decision: Decision) -> bool {
        let wanted = user_code.trim().to_ascii_uppercase();
        let now = self.clock.now();
        match self
            .devices
            .values_mut()
            .find(|d| d.user_code == wanted && d.decision == Decision::Pending)
        {
            Some(device) if now < device.expires_at => {
                device.decision = decision;
                true
            }
            _ => false,
        }
    }

    /// The failure to answer instead of running `op`, if one was injected.
    fn injected_failure(&mut self, op: Op) -> Option<ApiError> {
        if let Some(pos) = self
            .failures
            .iter()
            .position(|f| f.operation.as_deref().is_none_or(|o| o == op.name()))
        {
            let injected = self.failures.remove(pos)?;
            return Some(ApiError::new(
                injected.status,
                &injected.error_type,
                "Injected failure",
            ));
        }
        if op.is_portal() && self.throttle > 0 {
            self.throttle -= 1;
            return Some(ApiError::new(
                429,
                "TooManyRequestsException",
                "Rate exceeded",
            ));
        }
        None
    }

    fn new_client(&mut self, scopes: Vec<String>, now: OffsetDateTime) -> Client {
        let client = Client {
            id: random_chars(ALNUM, 22),
            secret: random_chars(ALNUM, 64),
            scopes,
            secret_expires_at: now + self.settings.client_secret_lifetime,
        };
        self.clients.insert(client.id.clone(), client.clone());
        client
    }

    fn issue_tokens(&mut self, client: &Client, now: OffsetDateTime) -> Tokens {
        let session = self.next_seq();
        self.issue_tokens_in(client, session, now)
    }

    fn issue_tokens_in(&mut self, client: &Client, session: u64, now: OffsetDateTime) -> Tokens {
        let access_token = format!("aoa{}", random_chars(ALNUM, 61));
        let access_expires_at = now + whole_seconds(self.settings.access_token_lifetime);
        self.access_tokens.insert(
            access_token.clone(),
            AccessTokenRecord {
                session,
                expires_at: access_expires_at,
                revoked: false,
            },
        );
        let refresh_token = client.gets_refresh_tokens().then(|| {
            let token = format!("aor{}", random_chars(ALNUM, 93));
            self.refresh_tokens.insert(
                token.clone(),
                RefreshTokenRecord {
                    client_id: client.id.clone(),
                    session,
                    expires_at: now + self.settings.refresh_token_lifetime,
                    status: RefreshStatus::Active,
                },
            );
            token
        });
        Tokens {
            access_token,
            access_expires_at,
            refresh_token,
        }
    }

    fn token_reply(&self, tokens: Tokens) -> Reply {
        let mut body = json!({
            "accessToken": tokens.access_token,
            "tokenType": "Bearer",
            "expiresIn": whole_seconds(self.settings.access_token_lifetime).as_secs(),
        });
        if let Some(refresh) = tokens.refresh_token {
            body["refreshToken"] = Value::String(refresh);
        }
        Reply::Json(body)
    }

    // ----- SSO-OIDC ----------------------------------------------------------

    fn register_client(&mut self, body: &[u8], now: OffsetDateTime) -> Result<Reply, ApiError> {
        let body = parse_body(body)?;
        required_str(&body, "clientName")?;
        let client_type = required_str(&body, "clientType")?;
        if client_type != "public" {
            return Err(ApiError::oidc(
                "InvalidClientMetadataException",
                "Only the public client type is supported",
            ));
        }
        let scopes = optional_str_list(&body, "scopes")?.unwrap_or_default();
        let client = self.new_client(scopes, now);
        self.registrations += 1;
        Ok(Reply::Json(json!({
            "clientId": client.id,
            "clientSecret": client.secret,
            "clientIdIssuedAt": now.unix_timestamp(),
            "clientSecretExpiresAt": client.secret_expires_at.unix_timestamp(),
        })))
    }

    fn authenticate_client(
        &self,
        body: &Map<String, Value>,
        now: OffsetDateTime,
    ) -> Result<Client, ApiError> {
        let id = required_str(body, "clientId")?;
        let secret = required_str(body, "clientSecret")?;
        match self.clients.get(&id) {
            Some(client) if client.secret == secret => {
                if now < client.secret_expires_at {
                    Ok(client.clone())
                } else {
                    Err(ApiError::oidc(
                        "InvalidClientException",
                        "Client secret has expired",
                    ))
                }
            }
            _ => Err(ApiError::oidc(
                "InvalidClientException",
                "Invalid client id or secret",
            )),
        }
    }

    fn start_device_authorization(
        &mut self,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<Reply, ApiError> {
        let body = parse_body(body)?;
        let client = self.authenticate_client(&body, now)?;
        required_str(&body, "startUrl")?;
        let device_code = random_chars(URL_SAFE, 86);
        let user_code = format!(
            "{}-{}",
            random_chars(USER_CODE, 4),
            random_chars(USER_CODE, 4)
        );
        let seq = self.next_seq();
        let decision = if self.settings.auto_approve {
            Decision::Approved
        } else {
            Decision::Pending
        };
        let lifetime = whole_seconds(self.settings.device_code_lifetime);
        self.devices.insert(
            device_code.clone(),
            Device {
                seq,
                client_id: client.id,
                user_code: user_code.clone(),
                expires_at: now + lifetime,
                decision,
                last_poll: None,
                redeemed: false,
            },
        );
        self.device_authorizations += 1;
        let verification_uri = format!("{}/device", self.base_url);
        Ok(Reply::Json(json!({
            "deviceCode": device_code,
            "userCode": user_code,
            "verificationUri": verification_uri,
            "verificationUriComplete": format!("{verification_uri}?user_code={user_code}"),
            "expiresIn": lifetime.as_secs(),
            "interval": whole_seconds(self.settings.interval).as_secs(),
        })))
    }

    fn create_token(&mut self, body: &[u8], now: OffsetDateTime) -> Result<Reply, ApiError> {
        let body = parse_body(body)?;
        let client = self.authenticate_client(&body, now)?;
        let grant_type = required_str(&body, "grantType")?;
        match grant_type.as_str() {
            DEVICE_CODE_GRANT => self.device_code_grant(&client, &body, now),
            REFRESH_TOKEN_GRANT => self.refresh_token_grant(&client, &body, now),
            _ => Err(ApiError::oidc(
                "UnsupportedGrantTypeException",
                "Unsupported grant type",
            )),
        }
    }

    fn device_code_grant(
        &mut self,
        client: &Client,
        body: &Map<String, Value>,
        now: OffsetDateTime,
    ) -> Result<Reply, ApiError> {
        let device_code = required_str(body, "deviceCode")?;
        let interval = whole_seconds(self.settings.interval);
        let enforce = self.settings.enforce_interval;
        let forced = self.forced_slow_downs > 0;
        let device = match self.devices.get_mut(&device_code) {
            Some(d) if d.client_id == client.id && !d.redeemed => d,
            _ => {
                return Err(ApiError::oidc(
                    "InvalidGrantException",
                    "Invalid device code provided",
                ));
            }
        };
        if now >= device.expires_at {
            return Err(ApiError::oidc(
                "ExpiredTokenException",
                "Device code has expired",
            ));
        }
        if device.decision == Decision::Denied {
            return Err(ApiError::oidc(
                "AccessDeniedException",
                "The user denied the authorization request",
            ));
        }
        let too_fast = enforce
            && !interval.is_zero()
            && device.last_poll.is_some_and(|last| now - last < interval);
        device.last_poll = Some(now);
        if forced || too_fast {
            if forced {
                self.forced_slow_downs -= 1;
            }
            return Err(ApiError::oidc(
                "SlowDownException",
                "Polling too frequently",
            ));
        }
        if device.decision == Decision::Pending {
            return Err(ApiError::oidc(
                "AuthorizationPendingException",
                "Authorization is pending",
            ));
        }
        device.redeemed = true;
        let tokens = self.issue_tokens(client, now);
        Ok(self.token_reply(tokens))
    }

    fn refresh_token_grant(
        &mut self,
        client: &Client,
        body: &Map<String, Value>,
        now: OffsetDateTime,
    ) -> Result<Reply, ApiError> {
        let refresh_token = required_str(body, "refreshToken")?;
        let session = match self.refresh_tokens.get_mut(&refresh_token) {
            Some(record)
                if record.client_id == client.id
                    && record.status == RefreshStatus::Active
                    && now < record.expires_at =>
            {
                record.status = RefreshStatus::Used;
                record.session
            }
            _ => {
                return Err(ApiError::oidc(
                    "InvalidGrantException",
                    "Invalid refresh token provided",
                ));
            }
        };
        let tokens = self.issue_tokens_in(client, session, now);
        Ok(self.token_reply(tokens))
    }

    // ----- portal ------------------------------------------------------------

    /// The session of the bearer token, or `UnauthorizedException`.
    fn authorize(&self, headers: &HeaderMap, now: OffsetDateTime) -> Result<u64, ApiError> {
        let token = headers
            .get(BEARER_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        match self.access_tokens.get(token) {
            Some(t) if !t.revoked && now < t.expires_at => Ok(t.session),
            _ => Err(ApiError::new(
                401,
                "UnauthorizedException",
                UNAUTHORIZED_MESSAGE,
            )),
        }
    }

    fn get_role_credentials(
        &mut self,
        headers: &HeaderMap,
        query: &Params,
        now: OffsetDateTime,
    ) -> Result<Reply, ApiError> {
        self.authorize(headers, now)?;
        let account_id = required_param(query, "account_id")?;
        let role_name = required_param(query, "role_name")?;
        if !self
            .roles
            .iter()
            .any(|(a, r)| *a == account_id && *r == role_name)
        {
            return Err(ApiError::new(403, "ForbiddenException", "No access"));
        }
        let expiration = now + self.settings.credentials_lifetime;
        let issued = IssuedCredentials {
            account_id,
            role_name,
            access_key_id: format!("ASIA{}", random_chars(KEY_ID, 16)),
            secret_access_key: random_chars(SECRET, 40),
            session_token: format!("IQoJb3JpZ2luX2Vj{}", random_chars(SECRET, 340)),
            expiration,
        };
        let body = json!({
            "roleCredentials": {
                "accessKeyId": issued.access_key_id,
                "secretAccessKey": issued.secret_access_key,
                "sessionToken": issued.session_token,
                "expiration": epoch_millis(expiration),
            }
        });
        self.issued.push(issued);
        Ok(Reply::Json(body))
    }

    fn list_accounts(
        &mut self,
        headers: &HeaderMap,
        query: &Params,
        now: OffsetDateTime,
    ) -> Result<Reply, ApiError> {
        self.authorize(headers, now)?;
        let items: Vec<Value> = self
            .accounts
            .iter()
            .map(|a| {
                json!({
                    "accountId": a.id,
                    "accountName": a.name,
                    "emailAddress": a.email,
                })
            })
            .collect();
        let (page, next) = self.page("accounts".to_owned(), items, query)?;
        let mut body = json!({ "accountList": page });
        if let Some(next) = next {
            body["nextToken"] = Value::String(next);
        }
        Ok(Reply::Json(body))
    }

    fn list_account_roles(
        &mut self,
        headers: &HeaderMap,
        query: &Params,
        now: OffsetDateTime,
    ) -> Result<Reply, ApiError> {
        self.authorize(headers, now)?;
        let account_id = required_param(query, "account_id")?;
        let items: Vec<Value> = self
            .roles
            .iter()
            .filter(|(a, _)| *a == account_id)
            .map(|(a, r)| json!({ "roleName": r, "accountId": a }))
            .collect();
        let (page, next) = self.page(format!("roles:{account_id}"), items, query)?;
        let mut body = json!({ "roleList": page });
        if let Some(next) = next {
            body["nextToken"] = Value::String(next);
        }
        Ok(Reply::Json(body))
    }

    /// One page of `items` for the request's `max_result` and `next_token`,
    /// and the token of the next page if there is one.
    fn page(
        &mut self,
        listing: String,
        items: Vec<Value>,
        query: &Params,
    ) -> Result<(Vec<Value>, Option<String>), ApiError> {
        let mut size = self.settings.page_size;
        if let Some(raw) = query.get("max_result") {
            let requested: i64 = raw
                .parse()
                .map_err(|_| invalid_request("Invalid max_result"))?;
            if !(1..=MAX_RESULT_LIMIT).contains(&requested) {
                return Err(invalid_request("max_result must be between 1 and 100"));
            }
            size = size.min(usize::try_from(requested).unwrap_or(size));
        }
        let offset = match query.get("next_token") {
            Some(token) => match self.page_tokens.get(token) {
                Some(cursor) if cursor.listing == listing => cursor.offset,
                _ => return Err(invalid_request("Invalid next token")),
            },
            None => 0,
        };
        let end = offset.saturating_add(size).min(items.len());
        let page = items.get(offset..end).unwrap_or_default().to_vec();
        let next = (end < items.len()).then(|| {
            let token = random_chars(URL_SAFE, 48);
            self.page_tokens.insert(
                token.clone(),
                PageCursor {
                    listing,
                    offset: end,
                },
            );
            token
        });
        Ok((page, next))
    }

    fn logout(&mut self, headers: &HeaderMap, now: OffsetDateTime) -> Result<Reply, ApiError> {
        let session = self.authorize(headers, now)?;
        for token in self.access_tokens.values_mut() {
            if token.session == session {
                token.revoked = true;
            }
        }
        for token in self.refresh_tokens.values_mut() {
            if token.session == session && token.status == RefreshStatus::Active {
                token.status = RefreshStatus::Revoked;
            }
        }
        Ok(Reply::Empty)
    }
}

// ----- HTTP ------------------------------------------------------------------

type Params = HashMap<String, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    RegisterClient,
    StartDeviceAuthorization,
    CreateToken,
    GetRoleCredentials,
    ListAccounts,
    ListAccountRoles,
    Logout,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::RegisterClient => "RegisterClient",
            Op::StartDeviceAuthorization => "StartDeviceAuthorization",
            Op::CreateToken => "CreateToken",
            Op::GetRoleCredentials => "GetRoleCredentials",
            Op::ListAccounts => "ListAccounts",
            Op::ListAccountRoles => "ListAccountRoles",
            Op::Logout => "Logout",
        }
    }

    fn is_portal(self) -> bool {
        matches!(
            self,
            Op::GetRoleCredentials | Op::ListAccounts | Op::ListAccountRoles | Op::Logout
        )
    }
}

enum Reply {
    Json(Value),
    Empty,
}

#[derive(Debug)]
struct ApiError {
    status: u16,
    error_type: String,
    message: String,
}

impl ApiError {
    fn new(status: u16, error_type: &str, message: &str) -> Self {
        Self {
            status,
            error_type: error_type.to_owned(),
            message: message.to_owned(),
        }
    }

    /// An SSO-OIDC error with the status code its model gives it.
    fn oidc(error_type: &str, message: &str) -> Self {
        let status = match error_type {
            "InvalidClientException" => 401,
            "InternalServerException" => 500,
            _ => 400,
        };
        Self::new(status, error_type, message)
    }
}

fn invalid_request(message: &str) -> ApiError {
    ApiError::new(400, "InvalidRequestException", message)
}

/// The OAuth `error` code the SSO-OIDC model documents for an exception.
fn oauth_error_code(error_type: &str) -> Option<&'static str> {
    Some(match error_type {
        "AccessDeniedException" => "access_denied",
        "AuthorizationPendingException" => "authorization_pending",
        "ExpiredTokenException" => "expired_token",
        "InternalServerException" => "server_error",
        "InvalidClientException" => "invalid_client",
        "InvalidClientMetadataException" => "invalid_client_metadata",
        "InvalidGrantException" => "invalid_grant",
        "InvalidRedirectUriException" => "invalid_redirect_uri",
        "InvalidRequestException" | "InvalidRequestRegionException" => "invalid_request",
        "InvalidScopeException" => "invalid_scope",
        "SlowDownException" => "slow_down",
        "UnauthorizedClientException" => "unauthorized_client",
        "UnsupportedGrantTypeException" => "unsupported_grant_type",
        _ => return None,
    })
}

fn router(state: Shared) -> Router {
    Router::new()
        .route("/client/register", post(register_client))
        .route("/device_authorization", post(start_device_authorization))
        .route("/token", post(create_token))
        .route("/federation/credentials", get(get_role_credentials))
        .route("/assignment/accounts", get(list_accounts))
        .route("/assignment/roles", get(list_account_roles))
        .route("/logout", post(logout))
        .route("/device", get(verify_device))
        .fallback(unknown_operation)
        .with_state(state)
}

/// Counts the call, answers an injected failure if one is due, else runs `f`.
fn dispatch(
    state: &Shared,
    op: Op,
    f: impl FnOnce(&mut FakeState, OffsetDateTime) -> Result<Reply, ApiError>,
) -> Response {
    let result = {
        let mut st = lock(state);
        *st.calls.entry(op.name()).or_default() += 1;
        match st.injected_failure(op) {
            Some(e) => Err(e),
            None => {
                let now = st.clock.now();
                f(&mut st, now)
            }
        }
    };
    respond(op, result)
}

fn respond(op: Op, result: Result<Reply, ApiError>) -> Response {
    let request_id = request_id();
    match result {
        Ok(Reply::Json(body)) => (
            StatusCode::OK,
            [
                ("content-type", "application/json".to_owned()),
                ("x-amzn-requestid", request_id),
            ],
            body.to_string(),
        )
            .into_response(),
        Ok(Reply::Empty) => (StatusCode::OK, [("x-amzn-requestid", request_id)]).into_response(),
        Err(e) => {
            let mut body = json!({ "__type": e.error_type, "message": e.message });
            if !op.is_portal()
                && let Some(code) = oauth_error_code(&e.error_type)
            {
                body["error"] = Value::String(code.to_owned());
                body["error_description"] = Value::String(e.message.clone());
            }
            let status =
                StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (
                status,
                [
                    ("x-amzn-errortype", e.error_type),
                    ("content-type", "application/json".to_owned()),
                    ("x-amzn-requestid", request_id),
                ],
                body.to_string(),
            )
                .into_response()
        }
    }
}

async fn register_client(State(state): State<Shared>, body: Bytes) -> Response {
    dispatch(&state, Op::RegisterClient, |st, now| {
        st.register_client(&body, now)
    })
}

async fn start_device_authorization(State(state): State<Shared>, body: Bytes) -> Response {
    dispatch(&state, Op::StartDeviceAuthorization, |st, now| {
        st.start_device_authorization(&body, now)
    })
}

async fn create_token(State(state): State<Shared>, body: Bytes) -> Response {
    dispatch(&state, Op::CreateToken, |st, now| {
        st.create_token(&body, now)
    })
}

async fn get_role_credentials(
    State(state): State<Shared>,
    headers: HeaderMap,
    query: Result<Query<Params>, QueryRejection>,
) -> Response {
    dispatch(&state, Op::GetRoleCredentials, |st, now| {
        st.get_role_credentials(&headers, &query_params(query)?, now)
    })
}

async fn list_accounts(
    State(state): State<Shared>,
    headers: HeaderMap,
    query: Result<Query<Params>, QueryRejection>,
) -> Response {
    dispatch(&state, Op::ListAccounts, |st, now| {
        st.list_accounts(&headers, &query_params(query)?, now)
    })
}

async fn list_account_roles(
    State(state): State<Shared>,
    headers: HeaderMap,
    query: Result<Query<Params>, QueryRejection>,
) -> Response {
    dispatch(&state, Op::ListAccountRoles, |st, now| {
        st.list_account_roles(&headers, &query_params(query)?, now)
    })
}

async fn logout(State(state): State<Shared>, headers: HeaderMap) -> Response {
    dispatch(&state, Op::Logout, |st, now| st.logout(&headers, now))
}

/// The verification page: opening `verificationUriComplete` approves.
async fn verify_device(
    State(state): State<Shared>,
    query: Result<Query<Params>, QueryRejection>,
) -> Response {
    let code = query
        .ok()
        .and_then(|Query(q)| q.get("user_code").cloned())
        .unwrap_or_default();
    if lock(&state).decide(&code, Decision::Approved) {
        (StatusCode::OK, "Request approved").into_response()
    } else {
        (StatusCode::NOT_FOUND, "No pending request for this code").into_response()
    }
}

async fn unknown_operation() -> Response {
    let body = json!({ "__type": "UnknownOperationException", "message": "Unknown operation" });
    (
        StatusCode::NOT_FOUND,
        [
            ("x-amzn-errortype", "UnknownOperationException"),
            ("content-type", "application/json"),
        ],
        body.to_string(),
    )
        .into_response()
}

// ----- input helpers -----------------------------------------------------------

fn query_params(query: Result<Query<Params>, QueryRejection>) -> Result<Params, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|_| invalid_request("Malformed query string"))
}

fn required_param(query: &Params, name: &str) -> Result<String, ApiError> {
    match query.get(name) {
        Some(v) if !v.is_empty() => Ok(v.clone()),
        _ => Err(invalid_request(&format!(
            "Missing required parameter {name}"
        ))),
    }
}

fn parse_body(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(invalid_request("The request body is not a JSON object")),
    }
}

fn required_str(body: &Map<String, Value>, name: &str) -> Result<String, ApiError> {
    match body.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(invalid_request(&format!("Missing required member {name}"))),
    }
}

fn optional_str_list(
    body: &Map<String, Value>,
    name: &str,
) -> Result<Option<Vec<String>>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid_request(&format!("{name} must be a list of strings")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(invalid_request(&format!(
            "{name} must be a list of strings"
        ))),
    }
}

// ----- values --------------------------------------------------------------------

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const URL_SAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const KEY_ID: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const USER_CODE: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";

/// Random-looking, not cryptographic: a fresh SipHash key per call (from
/// std's per-process random seed) over a counter.
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

fn random_chars(alphabet: &[u8], len: usize) -> String {
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let mut bits = random_u64();
        for _ in 0..8 {
            if out.len() == len {
                break;
            }
            let index = usize::from((bits & 0xff) as u8) % alphabet.len();
            out.push(char::from(alphabet[index]));
            bits >>= 8;
        }
    }
    out
}

fn request_id() -> String {
    let hex = |n: u64| format!("{n:016x}");
    let (a, b) = (hex(random_u64()), hex(random_u64()));
    format!(
        "{}-{}-{}-{}-{}",
        &a[..8],
        &a[8..12],
        &a[12..],
        &b[..4],
        &b[4..]
    )
}

/// `d` rounded down to whole seconds, as the wire carries seconds.
fn whole_seconds(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

fn epoch_millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_values_have_the_requested_shape() {
        let key = format!("ASIA{}", random_chars(KEY_ID, 16));
        assert_eq!(key.len(), 20);
        assert!(key.bytes().all(|b| KEY_ID.contains(&b)));
        assert_ne!(random_chars(ALNUM, 32), random_chars(ALNUM, 32));
        assert_eq!(request_id().len(), 36);
    }

    #[test]
    fn oidc_status_codes_follow_the_model() {
        assert_eq!(ApiError::oidc("InvalidClientException", "").status, 401);
        assert_eq!(ApiError::oidc("InternalServerException", "").status, 500);
        assert_eq!(
            ApiError::oidc("AuthorizationPendingException", "").status,
            400
        );
        assert_eq!(oauth_error_code("SlowDownException"), Some("slow_down"));
        assert_eq!(oauth_error_code("UnauthorizedException"), None);
    }
}
