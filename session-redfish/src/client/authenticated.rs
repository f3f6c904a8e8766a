//! [`RedfishClient`]: authenticated requests to one Redfish service, with
//! one re-login on 401, keep-alive, and listing and reading sessions.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Method, StatusCode, Url};
use serde_json::Value;
use session_core::{Clock, Error, Result, Secret, SystemClock};
use tokio::task::JoinHandle;

use super::error::{from_status, from_transport};
use super::protocol::{self, X_AUTH_TOKEN};
use super::{AuthMode, RedfishConfig, url};

/// How many member reads [`RedfishClient::sessions`] runs at once; BMCs are
/// small computers and answer a few requests at a time.
const MEMBER_READS_IN_FLIGHT: usize = 4;

/// The shortest keep-alive interval accepted (a guard against busy loops).
const MIN_KEEP_ALIVE: Duration = Duration::from_secs(1);

/// A successful answer: status, headers and the JSON body (`Null` when the
/// body is empty or not JSON).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedfishResponse {
    /// The HTTP status (2xx).
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body as JSON.
    pub body: Value,
}

/// One login session as the service reports it (a `Session` resource).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The resource URI (`@odata.id`).
    pub uri: String,
    /// `Id`.
    pub id: String,
    /// `UserName`.
    pub user_name: Option<String>,
    /// `CreatedTime` (RFC 3339), if the service reports it.
    pub created_time: Option<String>,
    /// `Context`, the client-supplied label of the session.
    pub context: Option<String>,
    /// Whether this is the client's own session.
    pub is_current: bool,
}

impl SessionInfo {
    fn from_body(uri: &Url, body: &Value, current: Option<&Url>) -> Self {
        let text = |k: &str| body[k].as_str().map(str::to_owned);
        Self {
            uri: body["@odata.id"]
                .as_str()
                .map_or_else(|| uri.path().to_owned(), str::to_owned),
            id: text("Id").unwrap_or_default(),
            user_name: text("UserName"),
            created_time: text("CreatedTime"),
            context: text("Context"),
            is_current: current.is_some_and(|c| c.path() == uri.path()),
        }
    }
}

/// The current credentials.
enum Auth {
    Session {
        token: Secret,
        uri: Url,
        /// Bumped by every re-login, so concurrent requests that saw the same
        /// 401 re-log in only once.
        generation: u64,
    },
    Basic(HeaderValue),
    LoggedOut,
}

struct Inner {
    http: Client,
    base: Url,
    username: String,
    /// Kept for re-login and Basic; `None` for a client that borrows a
    /// managed session's token and must not log in by itself.
    password: Option<Secret>,
    sessions_uri: Option<Url>,
    label: String,
    context: String,
    clock: Arc<dyn Clock>,
    auth: RwLock<Auth>,
    relogin_gate: tokio::sync::Mutex<()>,
    relogins: AtomicU64,
    timeouts: RwLock<Option<(Duration, Option<Duration>)>>,
}

/// An authenticated client of one Redfish service.
///
/// Logs in on [`connect`](RedfishClientBuilder::connect) (an `X-Auth-Token`
/// session, or HTTP Basic when the service has no SessionService and
/// [`RedfishConfig::basic_auth_fallback`] allows it), then adds the
/// credentials to every request. When the service answers 401 (the session
/// idled out or was deleted), the client logs in again **once**, shared by
/// all requests that saw the same 401, and retries the request only when its
/// method is idempotent (`GET`, `HEAD`, `PUT`, `DELETE`, `OPTIONS`); a `POST`
/// or `PATCH` gets the 401 error, and the next request uses the new session.
///
/// Cloning is cheap and shares the login. Dropping the last clone does
/// **not** log out (that needs a request): call [`logout`](Self::logout).
///
/// ```no_run
/// use session_core::Secret;
/// use session_redfish::client::{RedfishClient, RedfishConfig};
/// # async fn demo() -> session_core::Result<()> {
/// let config = RedfishConfig::new("https://bmc.example", "admin")
///     .with_ca_file("/etc/bmc-ca.pem");
/// let client = RedfishClient::builder(config)
///     .password(Secret::new("…"))
///     .connect()
///     .await?;
/// let _keep_alive = client.keep_alive(None)?;
/// let systems = client.get("/redfish/v1/Systems").await?;
/// println!("{} systems", systems["Members"].as_array().map_or(0, Vec::len));
/// for s in client.sessions().await? {
///     println!("{} {:?} current={}", s.id, s.user_name, s.is_current);
/// }
/// client.logout().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedfishClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedfishClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedfishClient")
            .field("base", &self.inner.base.as_str())
            .field("username", &self.inner.username)
            .field("auth_mode", &self.auth_mode())
            .field("relogins", &self.relogins())
            .finish_non_exhaustive()
    }
}

/// Configures and connects a [`RedfishClient`].
#[derive(Debug)]
pub struct RedfishClientBuilder {
    config: RedfishConfig,
    password: Option<Secret>,
    clock: Arc<dyn Clock>,
    label: Option<String>,
    context: Option<String>,
}

impl RedfishClientBuilder {
    /// The account's password (required by [`connect`](Self::connect)).
    pub fn password(mut self, password: Secret) -> Self {
        self.password = Some(password);
        self
    }

    /// The clock that paces [`RedfishClient::keep_alive`] (default: the
    /// system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The name errors and logs use for this service (default: the
    /// endpoint).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// The `Context` sent with the login (default `session-redfish`); the
    /// service shows it in the session resource.
    pub fn context(mut self, context: impl Into<String>) -> Self {
        self.context = Some(context.into());
        self
    }

    /// Validates the configuration, reads the service root and logs in.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a bad configuration or a missing
    /// password; [`Error::Unauthenticated`] when the service refuses the
    /// credentials; [`Error::Unsupported`] when the service has no
    /// SessionService and Basic fallback is off; transport and HTTP errors
    /// by category.
    pub async fn connect(self) -> Result<RedfishClient> {
        let label = self
            .label
            .unwrap_or_else(|| format!("Redfish service {}", self.config.endpoint.trim()));
        self.config.validate()?;
        let password = self
            .password
            .ok_or_else(|| Error::invalid_input("password", format!("{label}: not given")))?;
        let base = self.config.base_url()?;
        if self.config.insecure_skip_verify {
            tracing::warn!(service = %label, "insecureSkipVerify is set: the Redfish service's TLS certificate is NOT verified");
        }
        let http = protocol::build_http(&self.config, &label)?;
        let context = self.context.unwrap_or_else(|| "session-redfish".to_owned());
        let discovery = protocol::discover(&http, &base, &label).await?;
        let auth = establish(
            &http,
            &base,
            &self.config,
            &discovery,
            &password,
            &context,
            &label,
        )
        .await?;
        let client = RedfishClient {
            inner: Arc::new(Inner {
                http,
                base,
                username: self.config.username.clone(),
                password: Some(password),
                sessions_uri: discovery.sessions,
                label,
                context,
                clock: self.clock,
                auth: RwLock::new(auth),
                relogin_gate: tokio::sync::Mutex::new(()),
                relogins: AtomicU64::new(0),
                timeouts: RwLock::new(None),
            }),
        };
        client.refresh_timeouts().await;
        Ok(client)
    }
}

/// Logs in with a session, or checks Basic credentials when there is no
/// SessionService (and the configuration allows the fallback).
async fn establish(
    http: &Client,
    base: &Url,
    config: &RedfishConfig,
    discovery: &protocol::Discovery,
    password: &Secret,
    context: &str,
    label: &str,
) -> Result<Auth> {
    match protocol::login_or_basic(http, base, config, discovery, password, context, label).await {
        Ok(Some(login)) => Ok(Auth::Session {
            token: login.token,
            uri: login.uri,
            generation: 0,
        }),
        Ok(None) => Ok(Auth::Basic(protocol::basic_header(
            &config.username,
            password,
        )?)),
        Err(f) => Err(f.error),
    }
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
    )
}

impl RedfishClient {
    /// A [`RedfishClientBuilder`] for `config`.
    pub fn builder(config: RedfishConfig) -> RedfishClientBuilder {
        RedfishClientBuilder {
            config,
            password: None,
            clock: Arc::new(SystemClock),
            label: None,
            context: None,
        }
    }

    /// A client on an existing login session (no re-login: without a
    /// password, a 401 is returned as [`Error::Unauthenticated`]).
    pub(crate) fn from_session(
        http: Client,
        base: Url,
        config: &RedfishConfig,
        token: Secret,
        uri: Url,
        label: String,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self::from_parts(
            http,
            base,
            config,
            Auth::Session {
                token,
                uri,
                generation: 0,
            },
            None,
            label,
            clock,
        )
    }

    /// A client that sends HTTP Basic credentials.
    pub(crate) fn from_basic(
        http: Client,
        base: Url,
        config: &RedfishConfig,
        password: Secret,
        label: String,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let header = protocol::basic_header(&config.username, &password)?;
        Ok(Self::from_parts(
            http,
            base,
            config,
            Auth::Basic(header),
            Some(password),
            label,
            clock,
        ))
    }

    fn from_parts(
        http: Client,
        base: Url,
        config: &RedfishConfig,
        auth: Auth,
        password: Option<Secret>,
        label: String,
        clock: Arc<dyn Clock>,
    ) -> Self {
        // A session lives in its Sessions collection: the URI's parent.
        let sessions_uri = match &auth {
            Auth::Session { uri, .. } => {
                let mut parent = uri.clone();
                let path = uri.path().trim_end_matches('/');
                parent.set_path(path.rsplit_once('/').map_or(path, |(p, _)| p));
                Some(parent)
            }
            _ => None,
        };
        Self {
            inner: Arc::new(Inner {
                http,
                base,
                username: config.username.clone(),
                sessions_uri,
                password,
                label,
                context: "session-redfish".to_owned(),
                clock,
                auth: RwLock::new(auth),
                relogin_gate: tokio::sync::Mutex::new(()),
                relogins: AtomicU64::new(0),
                timeouts: RwLock::new(None),
            }),
        }
    }

    /// How requests are authenticated; `None` after [`logout`](Self::logout).
    pub fn auth_mode(&self) -> Option<AuthMode> {
        match &*read(&self.inner.auth) {
            Auth::Session { .. } => Some(AuthMode::Session),
            Auth::Basic(_) => Some(AuthMode::Basic),
            Auth::LoggedOut => None,
        }
    }

    /// The URI of the client's own login session (session mode only).
    pub fn session_uri(&self) -> Option<Url> {
        match &*read(&self.inner.auth) {
            Auth::Session { uri, .. } => Some(uri.clone()),
            _ => None,
        }
    }

    /// The service's origin, e.g. `https://bmc.example/`.
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// How many times this client logged in again after a 401.
    pub fn relogins(&self) -> u64 {
        self.inner.relogins.load(Ordering::Relaxed)
    }

    /// The service's idle `SessionTimeout`, as read after login (`None` when
    /// the SessionService could not be read).
    pub fn session_timeout(&self) -> Option<Duration> {
        read(&self.inner.timeouts).map(|(idle, _)| idle)
    }

    /// The current credentials as a header, and the session generation.
    fn credentials(&self) -> Result<((HeaderName, HeaderValue), Option<u64>)> {
        match &*read(&self.inner.auth) {
            Auth::Session {
                token, generation, ..
            } => Ok((
                (X_AUTH_TOKEN, protocol::token_header(token)?),
                Some(*generation),
            )),
            Auth::Basic(header) => Ok(((AUTHORIZATION, header.clone()), None)),
            Auth::LoggedOut => Err(Error::Unauthenticated {
                target: self.inner.label.clone(),
                message: "the client has logged out".into(),
            }),
        }
    }

    async fn refresh_timeouts(&self) {
        let Ok((auth, _)) = self.credentials() else {
            return;
        };
        let timeouts = protocol::session_timeouts(&self.inner.http, &self.inner.base, auth).await;
        *write(&self.inner.timeouts) = timeouts;
    }

    /// Resolves `path` (relative, or absolute on the service's origin).
    fn url(&self, path: &str) -> Result<Url> {
        url::same_origin(&self.inner.base, path)
            .map_err(|reason| Error::invalid_input("path", reason))
    }

    async fn send(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&Value>,
        auth: (HeaderName, HeaderValue),
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>)> {
        let what = format!("{method} {}", url.path());
        let mut req = self
            .inner
            .http
            .request(method.clone(), url.clone())
            .header(auth.0, auth.1);
        if let Some(body) = body {
            req = req.json(body);
        }
        let res = req
            .send()
            .await
            .map_err(|e| from_transport(&self.inner.label, &what, e))?;
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res
            .bytes()
            .await
            .map_err(|e| from_transport(&self.inner.label, &what, e))?;
        Ok((status, headers, bytes.to_vec()))
    }

    /// Sends `method path` with the credentials (and `body` as JSON); on a
    /// 401 in session mode, logs in again once and retries an idempotent
    /// request.
    ///
    /// # Errors
    ///
    /// A non-2xx answer as an error by category (the message carries the
    /// service's `@Message.ExtendedInfo`); [`Error::InvalidInput`] when
    /// `path` is on another origin.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<RedfishResponse> {
        let url = self.url(path)?;
        let what = format!("{method} {}", url.path());
        let (auth, generation) = self.credentials()?;
        let (mut status, mut headers, mut bytes) = self.send(&method, &url, body, auth).await?;
        if status == StatusCode::UNAUTHORIZED
            && let Some(seen) = generation
            && self.inner.password.is_some()
        {
            self.relogin(seen).await?;
            if !is_idempotent(&method) {
                return Err(Error::Unauthenticated {
                    target: self.inner.label.clone(),
                    message: format!(
                        "{what}: HTTP 401; the login session had ended and a new one was created, \
                         but {method} is not idempotent, so it was not retried"
                    ),
                });
            }
            let (auth, _) = self.credentials()?;
            (status, headers, bytes) = self.send(&method, &url, body, auth).await?;
        }
        if !status.is_success() {
            let mut failure = from_status(&self.inner.label, &what, status, &headers, &bytes);
            if status == StatusCode::UNAUTHORIZED
                && generation.is_some()
                && self.inner.password.is_none()
                && let Error::Unauthenticated { message, .. } = &mut failure.error
            {
                message.push_str(" (the login session has ended; rotate or start the session)");
            }
            return Err(failure.error);
        }
        Ok(RedfishResponse {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        })
    }

    /// Logs in again unless another request already did since generation
    /// `seen`. The old session is not deleted: the 401 says it is gone.
    async fn relogin(&self, seen: u64) -> Result<()> {
        let _gate = self.inner.relogin_gate.lock().await;
        match &*read(&self.inner.auth) {
            Auth::Session { generation, .. } if *generation == seen => {}
            Auth::LoggedOut => return self.credentials().map(drop),
            // Someone else renewed it while we waited for the gate.
            _ => return Ok(()),
        }
        let (Some(password), Some(sessions)) = (&self.inner.password, &self.sessions_uri()) else {
            return Ok(());
        };
        tracing::info!(service = %self.inner.label, "HTTP 401: the login session ended; logging in again");
        let login = protocol::login(
            &self.inner.http,
            &self.inner.base,
            sessions,
            &self.inner.username,
            password,
            &self.inner.context,
            &self.inner.label,
        )
        .await
        .map_err(|f| f.error)?;
        *write(&self.inner.auth) = Auth::Session {
            token: login.token,
            uri: login.uri,
            generation: seen + 1,
        };
        self.inner.relogins.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn sessions_uri(&self) -> Option<Url> {
        self.inner.sessions_uri.clone()
    }

    /// `GET path`, returning the JSON body.
    ///
    /// # Errors
    ///
    /// As [`request`](Self::request).
    pub async fn get(&self, path: &str) -> Result<Value> {
        Ok(self.request(Method::GET, path, None).await?.body)
    }

    /// `POST path` with a JSON body (never retried after a re-login).
    ///
    /// # Errors
    ///
    /// As [`request`](Self::request).
    pub async fn post(&self, path: &str, body: &Value) -> Result<RedfishResponse> {
        self.request(Method::POST, path, Some(body)).await
    }

    /// `PATCH path` with a JSON body (never retried after a re-login).
    ///
    /// # Errors
    ///
    /// As [`request`](Self::request).
    pub async fn patch(&self, path: &str, body: &Value) -> Result<RedfishResponse> {
        self.request(Method::PATCH, path, Some(body)).await
    }

    /// `DELETE path`.
    ///
    /// # Errors
    ///
    /// As [`request`](Self::request).
    pub async fn delete(&self, path: &str) -> Result<RedfishResponse> {
        self.request(Method::DELETE, path, None).await
    }

    /// Reads one `Session` resource.
    ///
    /// # Errors
    ///
    /// As [`request`](Self::request); [`Error::NotFound`] when it is gone.
    pub async fn session(&self, uri: &str) -> Result<SessionInfo> {
        let url = self.url(uri)?;
        let body = self.get(url.as_str()).await?;
        Ok(SessionInfo::from_body(
            &url,
            &body,
            self.session_uri().as_ref(),
        ))
    }

    /// Lists the sessions this account may see (all of them with
    /// `ConfigureUsers`, else its own), reading each member. A member that
    /// ends between the list and the read is left out.
    ///
    /// # Errors
    ///
    /// As [`request`](Self::request); [`Error::Unsupported`] when the
    /// service has no Sessions collection.
    pub async fn sessions(&self) -> Result<Vec<SessionInfo>> {
        let collection = self.sessions_uri().ok_or_else(|| {
            Error::unsupported(
                "redfish",
                format!("listing sessions at {}", self.inner.label),
            )
        })?;
        let list = self.get(collection.as_str()).await?;
        let members: Vec<String> = list["Members"]
            .as_array()
            .map(|m| {
                m.iter()
                    .filter_map(|v| v["@odata.id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let mut out = Vec::with_capacity(members.len());
        for chunk in members.chunks(MEMBER_READS_IN_FLIGHT) {
            let reads = chunk.iter().map(|uri| self.session(uri));
            for result in futures::future::join_all(reads).await {
                match result {
                    Ok(info) => out.push(info),
                    Err(Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(out)
    }

    /// Keeps the login session from idling out: every `interval` (default:
    /// a third of the service's `SessionTimeout`, or 5 minutes when unknown)
    /// it reads the client's own session resource, which refreshes the
    /// service's idle timer (and re-logs in if it ended anyway). Stops when
    /// the returned guard is dropped or the client is gone. With Basic
    /// authentication there is nothing to keep alive and the guard is idle.
    ///
    /// Must be called within a Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when `interval` is under 1 s or not shorter
    /// than the service's `SessionTimeout`.
    pub fn keep_alive(&self, interval: Option<Duration>) -> Result<KeepAlive> {
        let timeout = self.session_timeout();
        let interval = match (interval, timeout) {
            (Some(i), _) if i < MIN_KEEP_ALIVE => {
                return Err(Error::invalid_input(
                    "keep-alive interval",
                    format!("{i:?} is under the minimum of {MIN_KEEP_ALIVE:?}"),
                ));
            }
            (Some(i), Some(t)) if i >= t => {
                return Err(Error::invalid_input(
                    "keep-alive interval",
                    format!("{i:?} is not shorter than the service's SessionTimeout of {t:?}"),
                ));
            }
            (Some(i), _) => i,
            (None, Some(t)) => (t / 3).max(MIN_KEEP_ALIVE),
            (None, None) => Duration::from_secs(300),
        };
        if self.auth_mode() != Some(AuthMode::Session) {
            return Ok(KeepAlive { task: None });
        }
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let clock = self.inner.clock.clone();
        let task = tokio::spawn(async move {
            loop {
                clock.sleep_until(clock.now() + interval).await;
                let Some(inner) = weak.upgrade() else { return };
                let client = RedfishClient { inner };
                let Some(uri) = client.session_uri() else {
                    return;
                };
                match client.get(uri.as_str()).await {
                    Ok(_) => tracing::debug!(service = %client.inner.label, "keep-alive"),
                    Err(e) => {
                        tracing::warn!(service = %client.inner.label, error = %e, "keep-alive request failed");
                    }
                }
            }
        });
        Ok(KeepAlive { task: Some(task) })
    }

    /// Ends the login session (`DELETE` of its URI; already gone counts as
    /// done). Afterwards every request fails with [`Error::Unauthenticated`].
    ///
    /// # Errors
    ///
    /// Transport and HTTP errors; the client then still holds the session,
    /// so `logout` can be retried.
    pub async fn logout(&self) -> Result<()> {
        let _gate = self.inner.relogin_gate.lock().await;
        let session = match &*read(&self.inner.auth) {
            Auth::Session { token, uri, .. } => Some((token.clone(), uri.clone())),
            Auth::Basic(_) | Auth::LoggedOut => None,
        };
        if let Some((token, uri)) = session {
            protocol::logout(&self.inner.http, &uri, &token, &self.inner.label).await?;
        }
        *write(&self.inner.auth) = Auth::LoggedOut;
        Ok(())
    }
}

/// The keep-alive task of [`RedfishClient::keep_alive`]; dropping it stops
/// the task.
#[derive(Debug)]
pub struct KeepAlive {
    task: Option<JoinHandle<()>>,
}

impl KeepAlive {
    /// Whether a keep-alive task is running (false with Basic).
    pub fn is_running(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}
