//! The Redfish session client: [`RedfishProvider`], the
//! [`SessionAction`] of the `redfish` session type.
//!
//! - **start**: unauthenticated `GET /redfish/v1/` → `Links.Sessions`
//!   (`/redfish/v1/SessionService/Sessions` when absent or when the root
//!   answers 401) → `POST {UserName, Password, Context}` → requires a 2xx
//!   with `X-Auth-Token` → the session URI from `Location`, else the body's
//!   `@odata.id`, refused unless on the endpoint's scheme, host and port.
//!   The token goes to the secret store ([`TOKEN_SECRET`]), the URI to the
//!   config (`sessionUri`).
//! - **stop**: `DELETE` the session URI with the token; 401 and 404 mean the
//!   session is already gone. Idempotent.
//! - **rotate**: log in again, switch the stored token and URI, then delete
//!   the old session. When the service refuses the new login with
//!   `SessionLimitExceeded` (503, or 403 on older firmware), the old session
//!   is deleted first and the login retried once.
//!
//! TLS verification is on; [`RedfishConfig::ca_certificate_pem`] adds a CA
//! (BMCs usually have self-signed certificates). Redirects are never
//! followed. The password and token are [`Secret`]s: they never appear in
//! the config, errors, logs or `Debug` output.

mod config;
mod error;
mod url;

use std::time::Duration;

use reqwest::header::{ACCEPT, HeaderMap, HeaderName, HeaderValue, LOCATION};
use reqwest::{Client, StatusCode, Url};
use serde_json::{Value, json};
use session_core::{
    ActionContext, Capabilities, Error, Result, Secret, SecretKey, Session, SessionAction,
    SessionStatus, SessionType,
};

pub use config::RedfishConfig;
use error::{Failure, from_status, from_transport};

/// The secret-store name of the account password (put there by the caller).
pub const PASSWORD_SECRET: &str = "redfish-password";
/// The secret-store name of the issued `X-Auth-Token` (written by the provider).
pub const TOKEN_SECRET: &str = "redfish-token";
/// The Sessions collection every Redfish service has, used when the service
/// root does not advertise `Links.Sessions`.
pub const DEFAULT_SESSIONS_URI: &str = "/redfish/v1/SessionService/Sessions";

/// The limit on one HTTP request (connect, TLS, answer).
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

const X_AUTH_TOKEN: HeaderName = HeaderName::from_static("x-auth-token");

/// The provider of `redfish` sessions (see the [module docs](self)).
///
/// Holds no secrets and no per-session state: everything it needs is in the
/// session's config and the secret store.
#[derive(Debug, Clone, Default)]
pub struct RedfishProvider {
    _private: (),
}

/// A session the service just created.
struct Login {
    token: Secret,
    uri: Url,
    body: Value,
}

/// Labels an input error with the session, e.g. `invalid endpoint: session
/// 'bmc' (…): must be https://`.
fn in_session(label: &str) -> impl Fn(Error) -> Error + '_ {
    move |error| match error {
        Error::InvalidInput { field, reason } => Error::InvalidInput {
            field,
            reason: format!("{label}: {reason}"),
        },
        other => other,
    }
}

fn token_header(token: &Secret) -> Result<HeaderValue> {
    let mut value = HeaderValue::from_str(token.expose()).map_err(|_| {
        Error::provider(
            "redfish",
            "stored token",
            "the X-Auth-Token is not a valid header value",
        )
    })?;
    value.set_sensitive(true);
    Ok(value)
}

impl RedfishProvider {
    /// A provider.
    pub fn new() -> Self {
        Self::default()
    }

    /// The HTTP client for `config`: no redirects, `OData-Version: 4.0`,
    /// TLS verified (with the configured CA), insecure only when asked.
    fn http(&self, config: &RedfishConfig, label: &str) -> Result<Client> {
        let mut headers = HeaderMap::new();
        headers.insert("OData-Version", HeaderValue::from_static("4.0"));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let mut builder = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("session-redfish/", env!("CARGO_PKG_VERSION")));
        if let Some(pem_or_path) = &config.ca_certificate_pem {
            let pem = if pem_or_path.contains("-----BEGIN") {
                pem_or_path.clone().into_bytes()
            } else {
                std::fs::read(pem_or_path).map_err(|e| {
                    Error::invalid_input(
                        "caCertificatePem",
                        format!("{label}: cannot read {pem_or_path:?}: {e}"),
                    )
                })?
            };
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Error::invalid_input(
                    "caCertificatePem",
                    format!("{label}: not a PEM certificate: {}", e.without_url()),
                )
            })?;
            if certs.is_empty() {
                return Err(Error::invalid_input(
                    "caCertificatePem",
                    format!("{label}: no certificate in the PEM text"),
                ));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if config.insecure_skip_verify {
            tracing::warn!(
                session = %label,
                "insecureSkipVerify is set: the Redfish service's TLS certificate is NOT verified"
            );
            builder = builder.danger_accept_invalid_certs(true);
        }
        builder.build().map_err(|e| {
            Error::invalid_input(
                "endpoint",
                format!("{label}: cannot build the HTTP client: {}", e.without_url()),
            )
        })
    }

    /// The Sessions collection URI from the service root (§1.1 fallbacks).
    async fn sessions_uri(&self, http: &Client, base: &Url, label: &str) -> Result<Url> {
        let root = base
            .join("/redfish/v1/")
            .map_err(|e| Error::invalid_input("endpoint", format!("{label}: {e}")))?;
        let default = || {
            base.join(DEFAULT_SESSIONS_URI)
                .map_err(|e| Error::invalid_input("endpoint", format!("{label}: {e}")))
        };
        let res = http
            .get(root)
            .send()
            .await
            .map_err(|e| from_transport(label, "GET service root", e))?;
        let status = res.status();
        if status == StatusCode::UNAUTHORIZED {
            tracing::warn!(session = %label, "the service root needs authentication; using the default Sessions URI");
            return default();
        }
        let headers = res.headers().clone();
        let body = res
            .bytes()
            .await
            .map_err(|e| from_transport(label, "GET service root", e))?;
        if !status.is_success() {
            return Err(from_status(label, "GET service root", status, &headers, &body).error);
        }
        let root: Value = serde_json::from_slice(&body).map_err(|e| {
            Error::provider(
                "redfish",
                label,
                format!("the service root is not JSON: {e}"),
            )
        })?;
        match root["Links"]["Sessions"]["@odata.id"].as_str() {
            Some(uri) => url::same_origin(base, uri).map_err(|reason| {
                Error::provider("redfish", label, format!("Links.Sessions: {reason}"))
            }),
            None => default(),
        }
    }

    /// Logs in: POST to the Sessions collection.
    async fn login(
        &self,
        http: &Client,
        base: &Url,
        sessions: &Url,
        config: &RedfishConfig,
        password: &Secret,
        session: &Session,
    ) -> std::result::Result<Login, Failure> {
        let label = session.label();
        let body = json!({
            "UserName": config.username,
            "Password": password.expose(),
            "Context": format!("session-redfish/{}", session.session_id),
        });
        let res = http
            .post(sessions.clone())
            .json(&body)
            .send()
            .await
            .map_err(|e| from_transport(&label, "login", e))?;
        drop(body);
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res
            .bytes()
            .await
            .map_err(|e| from_transport(&label, "login", e))?;
        if !status.is_success() {
            return Err(from_status(&label, "login", status, &headers, &bytes));
        }
        if status != StatusCode::CREATED {
            tracing::debug!(session = %label, status = status.as_u16(), "login answered without 201 Created");
        }
        let token = headers
            .get(&X_AUTH_TOKEN)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(Secret::new)
            .ok_or_else(|| {
                Error::provider(
                    "redfish",
                    &label,
                    format!(
                        "login: HTTP {} without an X-Auth-Token header",
                        status.as_u16()
                    ),
                )
            })?;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let location = headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| body["@odata.id"].as_str().map(str::to_owned));
        let uri = match location {
            Some(location) => url::same_origin(base, &location).map_err(|reason| {
                Error::provider(
                    "redfish",
                    &label,
                    format!("login: session Location {reason}"),
                )
            }),
            None => Err(Error::provider(
                "redfish",
                &label,
                "login: neither a Location header nor an @odata.id names the session",
            )),
        };
        Ok(Login {
            token,
            uri: uri?,
            body,
        })
    }

    /// `DELETE uri` with `token`; 2xx, 401 and 404 are success.
    async fn logout(&self, http: &Client, uri: &Url, token: &Secret, label: &str) -> Result<()> {
        let res = http
            .delete(uri.clone())
            .header(X_AUTH_TOKEN, token_header(token)?)
            .send()
            .await
            .map_err(|e| from_transport(label, "logout", e))?;
        let status = res.status();
        if status.is_success()
            || status == StatusCode::UNAUTHORIZED
            || status == StatusCode::NOT_FOUND
        {
            return Ok(());
        }
        let headers = res.headers().clone();
        let body = res.bytes().await.unwrap_or_default();
        Err(from_status(label, "logout", status, &headers, &body).error)
    }

    /// The earliest moment the new session ends if unused: `now +
    /// SessionTimeout` (read from the SessionService with the new token),
    /// capped by `ExpirationTime` or an enabled `AbsoluteSessionTimeout`.
    /// `None` when the SessionService cannot be read.
    async fn expiration(
        &self,
        ctx: &ActionContext,
        http: &Client,
        base: &Url,
        login: &Login,
    ) -> Option<time::OffsetDateTime> {
        let now = ctx.clock.now();
        let service = base.join("/redfish/v1/SessionService").ok()?;
        let res = http
            .get(service)
            .header(X_AUTH_TOKEN, token_header(&login.token).ok()?)
            .send()
            .await
            .ok()?;
        if !res.status().is_success() {
            return None;
        }
        let service: Value = res.json().await.ok()?;
        let idle = service["SessionTimeout"].as_u64()?;
        let mut expiry = now + Duration::from_secs(idle);
        if service["AbsoluteSessionTimeoutEnabled"].as_bool() == Some(true)
            && let Some(abs) = service["AbsoluteSessionTimeout"].as_u64()
        {
            expiry = expiry.min(now + Duration::from_secs(abs));
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
        let config: RedfishConfig = session.config.get().map_err(in_session(&label))?;
        config.validate().map_err(in_session(&label))?;
        let base = config.base_url().map_err(in_session(&label))?;
        let http = self.http(&config, &label)?;
        let password = ctx
            .secrets
            .get(&SecretKey::new(session.session_id, PASSWORD_SECRET)?)
            .await?
            .ok_or_else(|| {
                Error::invalid_input(
                    "password",
                    format!("{label} has no password in the secret store ({PASSWORD_SECRET})"),
                )
            })?;
        Ok((config, http, base, password))
    }

    /// Stores the new login and returns the session `active`.
    async fn activate(
        &self,
        ctx: &ActionContext,
        session: &Session,
        mut config: RedfishConfig,
        http: &Client,
        base: &Url,
        login: Login,
    ) -> Result<Session> {
        let label = session.label();
        let key = SecretKey::new(session.session_id, TOKEN_SECRET)?;
        if let Err(e) = ctx.secrets.put(&key, &login.token).await {
            // Without the token stored nobody can end it later: end it now.
            let _ = self.logout(http, &login.uri, &login.token, &label).await;
            return Err(e);
        }
        let expiration = self.expiration(ctx, http, base, &login).await;
        config.session_uri = Some(login.uri.to_string());
        let mut active = session.clone();
        active.config.set(&config)?;
        active.expiration = expiration;
        active.transition(SessionStatus::Active, ctx.clock.now())?;
        Ok(active)
    }
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
        let label = session.label();
        let (config, http, base, password) = self.prepare(ctx, session).await?;
        let sessions = self.sessions_uri(&http, &base, &label).await?;
        let login = self
            .login(&http, &base, &sessions, &config, &password, session)
            .await
            .map_err(|f| f.error)?;
        self.activate(ctx, session, config, &http, &base, login)
            .await
    }

    async fn stop(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        let label = session.label();
        let mut config: RedfishConfig = session.config.get().map_err(in_session(&label))?;
        let key = SecretKey::new(session.session_id, TOKEN_SECRET)?;
        let token = ctx.secrets.get(&key).await?;
        if let (Some(token), Some(uri)) = (&token, &config.session_uri) {
            let base = config.base_url().map_err(in_session(&label))?;
            let uri = url::same_origin(&base, uri).map_err(|reason| {
                Error::invalid_input("sessionUri", format!("{label}: {reason}"))
            })?;
            let http = self.http(&config, &label)?;
            // On a transport or 5xx failure the token is kept, so a retried
            // stop can still end the remote session.
            self.logout(&http, &uri, token, &label).await?;
        }
        ctx.secrets.delete(&key).await?;
        config.session_uri = None;
        let mut inactive = session.clone();
        inactive.config.set(&config)?;
        inactive.transition(SessionStatus::Inactive, ctx.clock.now())?;
        Ok(inactive)
    }

    async fn rotate(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        let label = session.label();
        let (config, http, base, password) = self.prepare(ctx, session).await?;
        let key = SecretKey::new(session.session_id, TOKEN_SECRET)?;
        let old_token = ctx.secrets.get(&key).await?;
        let old_uri = match &config.session_uri {
            Some(uri) => Some(url::same_origin(&base, uri).map_err(|reason| {
                Error::invalid_input("sessionUri", format!("{label}: {reason}"))
            })?),
            None => None,
        };
        let sessions = self.sessions_uri(&http, &base, &label).await?;
        match self
            .login(&http, &base, &sessions, &config, &password, session)
            .await
        {
            Ok(login) => {
                let new_uri = login.uri.clone();
                let active = self
                    .activate(ctx, session, config, &http, &base, login)
                    .await?;
                if let (Some(token), Some(uri)) = (old_token, old_uri)
                    && uri != new_uri
                    && let Err(e) = self.logout(&http, &uri, &token, &label).await
                {
                    // The new session is in place; the old one will idle out.
                    tracing::warn!(session = %label, error = %e, "rotate: could not delete the old Redfish session");
                }
                Ok(active)
            }
            Err(Failure {
                session_limit: true,
                error,
            }) => {
                let (Some(token), Some(uri)) = (old_token, old_uri) else {
                    return Err(error);
                };
                tracing::info!(session = %label, "rotate: session limit reached; deleting the old session first");
                self.logout(&http, &uri, &token, &label).await?;
                ctx.secrets.delete(&key).await?;
                let login = self
                    .login(&http, &base, &sessions, &config, &password, session)
                    .await
                    .map_err(|f| f.error)?;
                self.activate(ctx, session, config, &http, &base, login)
                    .await
            }
            Err(failure) => Err(failure.error),
        }
    }
}
