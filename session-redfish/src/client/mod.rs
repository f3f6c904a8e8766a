//! The Redfish session client: [`RedfishProvider`], the [`SessionAction`]
//! of the `redfish` session type, and [`RedfishClient`], authenticated
//! requests to a Redfish service.
//!
//! [`RedfishProvider`]:
//!
//! - **start**: unauthenticated `GET /redfish/v1/` → `Links.Sessions`
//!   (`/redfish/v1/SessionService/Sessions` when absent but a
//!   `SessionService` is linked, or when the root answers 401) → `POST
//!   {UserName, Password, Context}` → requires a 2xx with `X-Auth-Token` →
//!   the session URI from `Location`, else the body's `@odata.id`, refused
//!   unless on the endpoint's scheme, host and port. The token goes to the
//!   secret store ([`secret_names::TOKEN`]), the URI to the session's state
//!   ([`RedfishState`]: `sessionUri`, `authMode`), the expiry is
//!   `now + SessionTimeout`.
//! - **Basic fallback**: when the root links no SessionService (or the login
//!   POST answers 404/405) and [`RedfishConfig::basic_auth_fallback`] is not
//!   `false`, start checks the credentials with HTTP Basic on a protected
//!   resource and records `authMode: basic` in the state; nothing is created
//!   remotely.
//! - **stop**: `DELETE` the session URI with the token; 401 and 404 mean the
//!   session is already gone. Idempotent.
//! - **rotate**: log in again, switch the stored token and URI, then delete
//!   the old session. When the service refuses the new login with
//!   `SessionLimitExceeded` (503, or 403 on older firmware), the old session
//!   is deleted first and the login retried once.
//!
//! [`RedfishClient`] logs in itself (or is obtained for an active managed
//! session with [`RedfishProvider::client`]) and adds the credentials to each
//! request; see its docs for re-login, keep-alive and session listing.
//!
//! TLS verification is on; [`RedfishConfig::ca_file`] or
//! [`RedfishConfig::ca_pem`] adds a CA
//! (BMCs usually have self-signed certificates). Redirects are never
//! followed. The password and token are [`Secret`]s: they never appear in
//! the config, errors, logs or `Debug` output.

mod authenticated;
mod config;
mod error;
mod protocol;
pub mod secret_names;
mod url;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Client, Url};
use session_core::{
    ActionContext, Capabilities, Error, Result, Secret, SecretKey, Session, SessionAction,
    SessionStatus, SessionType,
};

pub use authenticated::{
    KeepAlive, RedfishClient, RedfishClientBuilder, RedfishResponse, SessionInfo,
};
pub use config::{AuthMode, RedfishConfig, RedfishState};
use error::RequestFailure;
use protocol::{Login, X_AUTH_TOKEN};

/// The secret-store name of the account password (put there by the caller);
/// [`secret_names::PASSWORD`].
pub use secret_names::PASSWORD as PASSWORD_SECRET;
/// The secret-store name of the issued `X-Auth-Token` (written by the
/// provider); [`secret_names::TOKEN`].
pub use secret_names::TOKEN as TOKEN_SECRET;
/// The Sessions collection every Redfish service has, used when the service
/// root does not advertise `Links.Sessions`.
pub const DEFAULT_SESSIONS_URI: &str = "/redfish/v1/SessionService/Sessions";

/// The limit on one HTTP request (connect, TLS, answer).
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How many distinct TLS settings the provider keeps HTTP clients for.
const CLIENT_CACHE_LIMIT: usize = 64;

/// The TLS settings an HTTP client is built from (its cache key).
#[derive(Clone, PartialEq, Eq, Hash)]
struct TlsKey {
    ca_file: Option<std::path::PathBuf>,
    ca_pem: Option<String>,
    insecure: bool,
}

/// The provider of `redfish` sessions (see the [module docs](self)).
///
/// Holds no secrets and no per-session state: everything it needs is in the
/// session's config and the secret store. It keeps one HTTP client per TLS
/// setting, so connections (and TLS sessions) to a BMC are reused across
/// starts, stops and rotations; clones share them.
#[derive(Debug, Clone, Default)]
pub struct RedfishProvider {
    clients: Arc<Mutex<HashMap<TlsKey, Client>>>,
}

impl std::fmt::Debug for TlsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsKey")
            .field("ca_file", &self.ca_file)
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "…"))
            .field("insecure", &self.insecure)
            .finish()
    }
}

impl RedfishProvider {
    /// A provider.
    pub fn new() -> Self {
        Self::default()
    }

    /// The HTTP client for `config` (cached per TLS setting).
    fn http(&self, config: &RedfishConfig, label: &str) -> Result<Client> {
        if config.insecure_skip_verify {
            tracing::warn!(
                session = %label,
                "insecureSkipVerify is set: the Redfish service's TLS certificate is NOT verified"
            );
        }
        let key = TlsKey {
            ca_file: config.ca_file.clone(),
            ca_pem: config.ca_pem.clone(),
            insecure: config.insecure_skip_verify,
        };
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = clients.get(&key) {
            // A CA given as a path is read again when the cache is cleared;
            // a changed file is picked up by a new provider.
            return Ok(client.clone());
        }
        let client = protocol::build_http(config, label)?;
        if clients.len() >= CLIENT_CACHE_LIMIT {
            clients.clear();
        }
        clients.insert(key, client.clone());
        Ok(client)
    }

    fn context_of(session: &Session) -> String {
        format!("session-redfish/{}", session.session_id)
    }

    /// `now + SessionTimeout` (capped by an enabled `AbsoluteSessionTimeout`
    /// and the login's `ExpirationTime`); `None` when the SessionService
    /// cannot be read.
    async fn expiration(
        &self,
        ctx: &ActionContext,
        http: &Client,
        base: &Url,
        login: &Login,
    ) -> Option<time::OffsetDateTime> {
        let now = ctx.clock.now();
        let auth = (X_AUTH_TOKEN, protocol::token_header(&login.token).ok()?);
        let (idle, absolute) = protocol::session_timeouts(http, base, auth).await?;
        let mut expiry = now + idle;
        if let Some(abs) = absolute {
            expiry = expiry.min(now + abs);
        }
        if let Some(at) = login.body["ExpirationTime"].as_str()
            && let Ok(at) =
                time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        {
            expiry = expiry.min(at);
        }
        Some(expiry)
    }

    /// Everything start and rotate need: config, client, base, password.
    async fn prepare(
        &self,
        ctx: &ActionContext,
        session: &Session,
    ) -> Result<(RedfishConfig, Client, Url, Secret)> {
        let label = session.label();
        let config: RedfishConfig = session.config.get().map_err(|e| e.in_session(&label))?;
        config.validate().map_err(|e| e.in_session(&label))?;
        let base = config.base_url().map_err(|e| e.in_session(&label))?;
        let http = self.http(&config, &label)?;
        let password = password(ctx, session).await?;
        Ok((config, http, base, password))
    }

    /// Logs in, or (no SessionService, fallback allowed) checks Basic
    /// credentials: `Ok(None)` means Basic.
    async fn login_or_basic(
        &self,
        http: &Client,
        base: &Url,
        config: &RedfishConfig,
        password: &Secret,
        session: &Session,
    ) -> std::result::Result<Option<Login>, RequestFailure> {
        let label = session.label();
        let discovery = protocol::discover(http, base, &label).await?;
        protocol::login_or_basic(
            http,
            base,
            config,
            &discovery,
            password,
            &Self::context_of(session),
            &label,
        )
        .await
    }

    /// Logs in (or settles on Basic) and stores the result as the active
    /// session; a failed login is its error.
    async fn login_and_activate(
        &self,
        ctx: &ActionContext,
        session: &Session,
        config: RedfishConfig,
        http: &Client,
        base: &Url,
        password: &Secret,
    ) -> Result<Session> {
        let login = self
            .login_or_basic(http, base, &config, password, session)
            .await
            .map_err(|f| f.error)?;
        self.activate(ctx, session, http, base, login).await
    }

    /// Stores the new login (or Basic mode) and returns the session `active`.
    async fn activate(
        &self,
        ctx: &ActionContext,
        session: &Session,
        http: &Client,
        base: &Url,
        login: Option<Login>,
    ) -> Result<Session> {
        let label = session.label();
        let key = SecretKey::new(session.session_id, secret_names::TOKEN)?;
        let mut active = session.clone();
        let state = match login {
            Some(login) => {
                if let Err(e) = ctx.secrets.put(&key, &login.token).await {
                    // Without the token stored nobody can end it later: end it now.
                    let _ = protocol::logout(http, &login.uri, &login.token, &label).await;
                    return Err(e);
                }
                active.expiration = self.expiration(ctx, http, base, &login).await;
                RedfishState {
                    auth_mode: Some(AuthMode::Session),
                    session_uri: Some(login.uri.to_string()),
                }
            }
            None => {
                // Basic: nothing was created remotely, nothing expires.
                ctx.secrets.delete(&key).await?;
                active.expiration = None;
                RedfishState {
                    auth_mode: Some(AuthMode::Basic),
                    session_uri: None,
                }
            }
        };
        active.replace_state(&state)?;
        active.transition(SessionStatus::Active, ctx.clock.now())?;
        Ok(active)
    }

    /// A [`RedfishClient`] on an **active** `redfish` session: it sends the
    /// stored token (or Basic credentials) with each request. It does not
    /// log in by itself: when the session has ended, requests fail with
    /// [`Error::Unauthenticated`] and the session should be rotated or
    /// started again (through the `SessionManager`, so the workspace stays
    /// in step). For a self-renewing client, use
    /// [`RedfishClient::builder`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when the session is not an active `redfish`
    /// session or its token or password is missing.
    pub async fn client(&self, ctx: &ActionContext, session: &Session) -> Result<RedfishClient> {
        let label = session.label();
        if session.session_type != SessionType::Redfish || session.status() != SessionStatus::Active
        {
            return Err(Error::invalid_input(
                "session",
                format!("{label} is not an active redfish session"),
            ));
        }
        let config: RedfishConfig = session.config.get().map_err(|e| e.in_session(&label))?;
        let state: RedfishState = session.state.get().map_err(|e| e.in_session(&label))?;
        let base = config.base_url().map_err(|e| e.in_session(&label))?;
        let http = self.http(&config, &label)?;
        if state.auth_mode == Some(AuthMode::Basic) {
            let password = password(ctx, session).await?;
            return RedfishClient::from_basic(
                http,
                base,
                &config,
                password,
                label,
                ctx.clock.clone(),
            );
        }
        let token = ctx
            .secrets
            .get(&SecretKey::new(session.session_id, secret_names::TOKEN)?)
            .await?
            .ok_or_else(|| {
                Error::invalid_input("token", format!("{label} has no token in the secret store"))
            })?;
        let uri = state
            .session_uri
            .as_deref()
            .ok_or_else(|| Error::invalid_input("sessionUri", format!("{label}: not recorded")))
            .and_then(|uri| {
                url::same_origin(&base, uri).map_err(|reason| {
                    Error::invalid_input("sessionUri", format!("{label}: {reason}"))
                })
            })?;
        Ok(RedfishClient::from_session(
            http,
            base,
            &config,
            token,
            uri,
            label,
            ctx.clock.clone(),
        ))
    }
}

/// The account password from the secret store.
async fn password(ctx: &ActionContext, session: &Session) -> Result<Secret> {
    ctx.secrets
        .get(&SecretKey::new(session.session_id, secret_names::PASSWORD)?)
        .await?
        .ok_or_else(|| {
            Error::invalid_input(
                "password",
                format!(
                    "{} has no password in the secret store ({})",
                    session.label(),
                    secret_names::PASSWORD
                ),
            )
        })
}

#[async_trait::async_trait]
impl SessionAction for RedfishProvider {
    fn session_type(&self) -> SessionType {
        SessionType::Redfish
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none().with_rotate(true)
    }

    async fn start(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        let (config, http, base, password) = self.prepare(ctx, session).await?;
        self.login_and_activate(ctx, session, config, &http, &base, &password)
            .await
    }

    async fn stop(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        let label = session.label();
        let config: RedfishConfig = session.config.get().map_err(|e| e.in_session(&label))?;
        let state: RedfishState = session.state.get().map_err(|e| e.in_session(&label))?;
        let key = SecretKey::new(session.session_id, secret_names::TOKEN)?;
        let token = ctx.secrets.get(&key).await?;
        if let (Some(token), Some(uri)) = (&token, &state.session_uri) {
            let base = config.base_url().map_err(|e| e.in_session(&label))?;
            let uri = url::same_origin(&base, uri).map_err(|reason| {
                Error::invalid_input("sessionUri", format!("{label}: {reason}"))
            })?;
            let http = self.http(&config, &label)?;
            // On a transport or 5xx failure the token is kept, so a retried
            // stop can still end the remote session.
            protocol::logout(&http, &uri, token, &label).await?;
        }
        ctx.secrets.delete(&key).await?;
        // Becoming inactive clears the expiry, start time and state.
        let mut inactive = session.clone();
        inactive.transition(SessionStatus::Inactive, ctx.clock.now())?;
        Ok(inactive)
    }

    async fn rotate(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        let label = session.label();
        let (config, http, base, password) = self.prepare(ctx, session).await?;
        let state: RedfishState = session.state.get().map_err(|e| e.in_session(&label))?;
        let key = SecretKey::new(session.session_id, secret_names::TOKEN)?;
        let old_token = ctx.secrets.get(&key).await?;
        let old_uri = match &state.session_uri {
            Some(uri) => Some(url::same_origin(&base, uri).map_err(|reason| {
                Error::invalid_input("sessionUri", format!("{label}: {reason}"))
            })?),
            None => None,
        };
        match self
            .login_or_basic(&http, &base, &config, &password, session)
            .await
        {
            Ok(login) => {
                let new_uri = login.as_ref().map(|l| l.uri.clone());
                let active = self.activate(ctx, session, &http, &base, login).await?;
                if let (Some(token), Some(uri)) = (old_token, old_uri)
                    && Some(&uri) != new_uri.as_ref()
                    && let Err(e) = protocol::logout(&http, &uri, &token, &label).await
                {
                    // The new session is in place; the old one will idle out.
                    tracing::warn!(session = %label, error = %e, "rotate: could not delete the old Redfish session");
                }
                Ok(active)
            }
            Err(RequestFailure {
                session_limit: true,
                error,
                ..
            }) => {
                let (Some(token), Some(uri)) = (old_token, old_uri) else {
                    return Err(error);
                };
                tracing::info!(session = %label, "rotate: session limit reached; deleting the old session first");
                protocol::logout(&http, &uri, &token, &label).await?;
                ctx.secrets.delete(&key).await?;
                self.login_and_activate(ctx, session, config, &http, &base, &password)
                    .await
            }
            Err(failure) => Err(failure.error),
        }
    }
}
