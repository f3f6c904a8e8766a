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
//! portal `UnauthorizedException` is 401, `TooManyRequestsException` 429 and
//! `InvalidRequestException` 400 (`ResourceNotFoundException` 404 and
//! `InternalServerException` only come from injected failures).
//!
//! One error is not in the models: a role that is not assigned answers 403
//! `ForbiddenException` with message `No access`, because that is what the
//! real portal sends (botocore and the Go SDK report exactly this code,
//! status and message for a wrong `sso_role_name`: aws/aws-sam-cli#2129,
//! fwdcloudsec/granted#276); botocore parses it as a plain `ClientError`. `tests/sso_fake_botocore.rs` checks every error the
//! fake emits against botocore and its models, this one included.
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

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use session_core::{Clock, SystemClock};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use http::router;
use state::{FakeState, Shared, lock};

mod control;
mod device_flow;
mod http;
mod portal;
mod state;
pub(in crate::fakes) mod values;

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
}
