//! An embeddable Redfish SessionService server.
//!
//! [`RedfishServer::builder`] configures accounts ([`Role`]s mapping to
//! [`Privilege`]s as in the standard privilege registry), the
//! `SessionTimeout`, `ServiceEnabled`, a session limit, the bind address and
//! TLS. Then either embed [`RedfishServer::router`] in your own axum
//! application, or [`RedfishServer::start`] it and get a
//! [`RedfishServerHandle`].
//!
//! What it serves:
//!
//! | resource | methods | authentication |
//! |---|---|---|
//! | `/redfish`, `/redfish/v1[/]`, `/redfish/v1/odata`, `/redfish/v1/$metadata` | GET, HEAD | none |
//! | `/redfish/v1/SessionService/Sessions` and `…/Sessions/Members` | POST (login) | none |
//! | `/redfish/v1/SessionService/Sessions` | GET | token or Basic; `ConfigureUsers` sees every session, others only their own |
//! | `/redfish/v1/SessionService/Sessions/{id}` | GET, DELETE | own session, or `ConfigureUsers` (GET) / `ConfigureManager` (DELETE) |
//! | `/redfish/v1/SessionService` | GET, PATCH (`SessionTimeout` 30..86400, `ServiceEnabled`; needs `ConfigureManager`) | token or Basic |
//! | `/redfish/v1/Systems` | GET (an empty collection) | token or Basic |
//! | `/redfish/v1/AccountService`, `…/Roles`, `…/Roles/{id}` | GET (read-only; the three standard roles) | token or Basic |
//! | `/redfish/v1/AccountService/Accounts`, `…/Accounts/{id}` | GET (read-only, `ETag`, `Password` always null) | token or Basic; `ConfigureUsers` sees every account, others only their own |
//!
//! Every GET or HEAD of a resource (anything with an `@odata.type`) carries
//! `Link: <schema>; rel=describedby` naming the DMTF JSON schema of that
//! type.
//!
//! A login answers 201 with `X-Auth-Token` (32 random bytes, hex), a
//! relative `Location`, `Link: <…>; rel=self` and the Session resource. A bad
//! login answers 401 with `WWW-Authenticate` and a body that names neither
//! the user nor the password. Any authenticated request refreshes the
//! session's idle timer; sessions idle for `SessionTimeout` are removed, both
//! lazily and by a task driven by the injected [`Clock`]. A request with an
//! `OData-Version` other than `4.0` gets 412.
//!
//! **Brute-force protection.** Failed logins (session POST and HTTP Basic)
//! are counted per user name and client address: after
//! `AccountLockoutThreshold` failures (default
//! [`DEFAULT_ACCOUNT_LOCKOUT_THRESHOLD`]) that user name is locked **from
//! that address** for `AccountLockoutDuration` (default
//! [`DEFAULT_ACCOUNT_LOCKOUT_DURATION`]), so someone guessing elsewhere
//! cannot lock the real user out, and every lock ends. One address failing
//! [`DEFAULT_CLIENT_LOCKOUT_THRESHOLD`] times, whatever the user names, is
//! locked for every account. Failures are forgotten
//! `AccountLockoutCounterResetAfter` after the last one. A locked login
//! gets exactly the 401 of a wrong password (and unknown user names are
//! counted too), so no answer tells whether an account exists or is
//! locked. The `AccountService` shows the three properties; times follow
//! the injected [`Clock`]. An application serving [`RedfishServer::router`]
//! itself should serve it with
//! `into_make_service_with_connect_info::<SocketAddr>()`: without the
//! client address, all clients count as one.
//!
//! **Connections** (of [`RedfishServer::start`]): a connection that has
//! not sent a whole request head within the idle time-out (default
//! [`DEFAULT_IDLE_TIMEOUT`], also between keep-alive requests), or whose
//! request body and answer take longer than that, or that has not
//! finished its TLS handshake within [`DEFAULT_TLS_HANDSHAKE_TIMEOUT`] is
//! closed, and one client address may hold at most
//! [`DEFAULT_MAX_CONNECTIONS_PER_CLIENT`] connections (more are closed at
//! once), so idle clients cannot use up the server's file descriptors.
//!
//! HTTPS is the default, with a CA and certificate generated at build time
//! (see [`RedfishServer::ca_pem`]); plain HTTP only with
//! [`RedfishServerBuilder::insecure_http`] (or `insecureHttp = true` in a
//! configuration file). An HTTPS listener never answers plain HTTP: such a
//! request fails the TLS handshake and reaches no handler.
//!
//! Sessions live in memory. With [`RedfishServerBuilder::persist_to`] they
//! are also kept in a [`WorkspaceRepository`] (tokens only as SHA-256
//! digests), so clients keep their sessions across a restart; see
//! [`SERVER_SESSION_TYPE`]. With [`RedfishServerBuilder::share_sessions`]
//! several instances on one repository (e.g. behind one address, on one
//! `PgWorkspace`) share their logins: a token issued by one is accepted by
//! all, and a DELETE on one ends the session on all.
//!
//! Settings can also come from a TOML file: see [`RedfishServerConfig`] and
//! [`RedfishServerBuilder::from_config_file`].
//!
//! The session store is sized for many live sessions: a login, a lookup and
//! a logout are O(log n) at worst, and idle expiry follows an index ordered
//! by last use instead of scanning every session. Tokens are kept only as
//! SHA-256 digests.

mod accounts;
mod config;
mod connections;
mod handlers;
mod lockout;
mod messages;
mod persist;
mod shared;
mod state;
mod tls;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use session_core::{Clock, Error, Result, Secret, SystemClock, WorkspaceRepository};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::RedfishServerConfig;
pub use persist::SERVER_SESSION_TYPE;
pub use state::{Privilege, Role};

use connections::ConnectionLimits;
use lockout::LockoutPolicy;
use state::{Accounts, Settings, State};
use tls::TlsMaterial;

/// The default idle timeout (`SessionTimeout`), 30 minutes.
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(1800);

/// The smallest and largest `SessionTimeout` the Redfish schema allows.
pub const SESSION_TIMEOUT_RANGE: std::ops::RangeInclusive<u64> = 30..=86_400;

/// The default `AccountLockoutThreshold`: failed logins (session POST or
/// HTTP Basic) of one account from one client address before that account
/// is locked for that address. 0 disables the account lockout.
pub const DEFAULT_ACCOUNT_LOCKOUT_THRESHOLD: u32 = 5;

/// The default `AccountLockoutDuration`, 5 minutes: how long a lock lasts.
pub const DEFAULT_ACCOUNT_LOCKOUT_DURATION: Duration = Duration::from_secs(300);

/// The default `AccountLockoutCounterResetAfter`, 5 minutes: failures older
/// than this (counted from the last one) are forgotten.
pub const DEFAULT_ACCOUNT_LOCKOUT_COUNTER_RESET_AFTER: Duration = Duration::from_secs(300);

/// The default client-address threshold: failed logins from one client
/// address, whatever the user name, before the whole address is locked for
/// `AccountLockoutDuration`. 0 disables it.
pub const DEFAULT_CLIENT_LOCKOUT_THRESHOLD: u32 = 20;

/// The default idle time-out of a connection, 30 s: how long the server
/// waits for the (whole) head of the next request, on a new connection and
/// between keep-alive requests, before closing it.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The default TLS handshake time-out, 10 s.
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The default cap on open connections from one client address, 64; the
/// connections over it are closed at once.
pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: usize = 64;

/// The Sessions collection URI, as in the service root's `Links.Sessions`.
pub const SESSIONS_URI: &str = handlers::SESSIONS;

#[derive(Debug, Clone)]
enum TlsSource {
    SelfSigned,
    PemFiles { cert: PathBuf, key: PathBuf },
    Pem { cert: String, key: Secret },
    Insecure,
}

/// Configures a [`RedfishServer`]. Setters never fail; [`build`](Self::build)
/// validates.
#[derive(Debug)]
pub struct RedfishServerBuilder {
    accounts: Vec<(String, Secret, Role)>,
    timeout: Duration,
    short_timeout_for_tests: bool,
    service_enabled: bool,
    max_sessions: Option<usize>,
    bind: SocketAddr,
    tls: TlsSource,
    clock: Arc<dyn Clock>,
    persist: Option<Arc<dyn WorkspaceRepository>>,
    /// Whether [`share_sessions`](RedfishServerBuilder::share_sessions)
    /// was asked for.
    shared: bool,
    /// How long a session read from the shared repository is trusted.
    shared_recheck: Option<Duration>,
    lockout: LockoutPolicy,
    limits: ConnectionLimits,
}

impl Default for RedfishServerBuilder {
    fn default() -> Self {
        Self {
            accounts: Vec::new(),
            timeout: DEFAULT_SESSION_TIMEOUT,
            short_timeout_for_tests: false,
            service_enabled: true,
            max_sessions: None,
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            tls: TlsSource::SelfSigned,
            clock: Arc::new(SystemClock),
            persist: None,
            shared: false,
            shared_recheck: None,
            lockout: LockoutPolicy::default(),
            limits: ConnectionLimits::default(),
        }
    }
}

impl RedfishServerBuilder {
    /// A builder with the defaults: no accounts, `SessionTimeout` 1800 s,
    /// service enabled, no session limit, `127.0.0.1:0`, self-signed HTTPS,
    /// the system clock.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder with the settings of a TOML configuration file, passwords
    /// read from the environment or files it names (see
    /// [`RedfishServerConfig`] for the format). Setters called afterwards
    /// override the file.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming the file, line, key and what is wrong.
    pub fn from_config_file(path: impl AsRef<std::path::Path>) -> Result<Self> {
        RedfishServerConfig::from_file(path)?.into_builder()
    }

    /// Adds an account (a later account with the same name replaces it).
    pub fn account(mut self, username: impl Into<String>, password: Secret, role: Role) -> Self {
        self.accounts.push((username.into(), password, role));
        self
    }

    /// The idle timeout (`SessionTimeout`), 30..=86400 s (checked by
    /// [`build`](Self::build)).
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self.short_timeout_for_tests = false;
        self
    }

    /// **Test knob:** an idle timeout below the schema's 30 s minimum (at
    /// least 1 s), so expiry tests take seconds. Not for production.
    pub fn test_session_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self.short_timeout_for_tests = true;
        self
    }

    /// `ServiceEnabled`: when false, logins fail with 503 and existing
    /// sessions keep working.
    pub fn service_enabled(mut self, enabled: bool) -> Self {
        self.service_enabled = enabled;
        self
    }

    /// The most live sessions; a login beyond it gets 503
    /// `SessionLimitExceeded` with `Retry-After`.
    pub fn max_sessions(mut self, max: usize) -> Self {
        self.max_sessions = Some(max);
        self
    }

    /// Where [`RedfishServer::start`] listens (default `127.0.0.1:0`).
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// HTTPS with a certificate chain and private key from PEM files (read
    /// by [`build`](Self::build)). The chain's last certificate is reported
    /// as [`RedfishServer::ca_pem`].
    pub fn tls_pem_files(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls = TlsSource::PemFiles {
            cert: cert.into(),
            key: key.into(),
        };
        self
    }

    /// HTTPS with a certificate chain and private key given as PEM text.
    pub fn tls_pem(mut self, cert_pem: impl Into<String>, key_pem: Secret) -> Self {
        self.tls = TlsSource::Pem {
            cert: cert_pem.into(),
            key: key_pem,
        };
        self
    }

    /// Plain HTTP instead of HTTPS. Redfish requires HTTPS for logins and
    /// Basic; use this only behind a TLS-terminating proxy or in tests.
    pub fn insecure_http(mut self) -> Self {
        self.tls = TlsSource::Insecure;
        self
    }

    /// The clock for session creation times and idle expiry.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Keeps the login sessions in `repository` as well as in memory, so
    /// they survive a restart: [`RedfishServer::start`] (or
    /// [`RedfishServer::restore_sessions`]) loads the live ones back, and
    /// every login, logout and expiry is written by a background task.
    /// Tokens are stored only as SHA-256 digests. Use a repository of its
    /// own (e.g. an `FsWorkspace` file for the server), not the one of your
    /// client sessions. See [`SERVER_SESSION_TYPE`] for the record format.
    pub fn persist_to(mut self, repository: Arc<dyn WorkspaceRepository>) -> Self {
        self.persist = Some(repository);
        self.shared = false;
        self
    }

    /// Shares the login sessions with every other instance given the same
    /// `repository` (e.g. a `PgWorkspace`, or an `FsWorkspace` file on one
    /// machine): a token issued by any instance is accepted by all of them,
    /// and a DELETE on one ends the session on all of them at once. Implies
    /// [`persist_to`](Self::persist_to).
    ///
    /// The repository becomes the truth and memory a cache of it: a login
    /// is written before its token is returned, a token is looked up in the
    /// repository on every request (one read by key; see
    /// [`shared_session_recheck`](Self::shared_session_recheck) to trade
    /// that for speed), and the Sessions collection is read from it. When
    /// the repository cannot be reached, requests with a token get 503
    /// rather than an answer from a possibly stale memory.
    ///
    /// Give every instance the same accounts and `SessionTimeout`; the
    /// timeout each instance applies is its own, as is
    /// [`max_sessions`](Self::max_sessions), which counts the sessions this
    /// instance has seen. An application serving
    /// [`RedfishServer::router`] itself must call
    /// [`RedfishServer::restore_sessions`], which starts the writer of last
    /// uses.
    pub fn share_sessions(mut self, repository: Arc<dyn WorkspaceRepository>) -> Self {
        self.persist = Some(repository);
        self.shared = true;
        self
    }

    /// With [`share_sessions`](Self::share_sessions): how long a session
    /// read from the repository is trusted before a request reads it again
    /// (default zero: every request). Over that time, a session ended
    /// through another instance still works here; less than the session
    /// timeout (checked by [`build`](Self::build)).
    pub fn shared_session_recheck(mut self, recheck: Duration) -> Self {
        self.shared_recheck = Some(recheck);
        self
    }

    /// `AccountLockoutThreshold` (default
    /// [`DEFAULT_ACCOUNT_LOCKOUT_THRESHOLD`]): this many failed logins of
    /// one account from one client address lock that account for that
    /// address for [`account_lockout_duration`](Self::account_lockout_duration).
    /// 0 disables the account lockout.
    pub fn account_lockout_threshold(mut self, failures: u32) -> Self {
        self.lockout.account_threshold = failures;
        self
    }

    /// `AccountLockoutDuration` (default
    /// [`DEFAULT_ACCOUNT_LOCKOUT_DURATION`]): how long a lock lasts, whole
    /// seconds, at least 1 s (a lock always ends).
    pub fn account_lockout_duration(mut self, duration: Duration) -> Self {
        self.lockout.duration = duration;
        self
    }

    /// `AccountLockoutCounterResetAfter` (default
    /// [`DEFAULT_ACCOUNT_LOCKOUT_COUNTER_RESET_AFTER`]): failures are
    /// forgotten this long after the last one. Whole seconds, at least 1 s
    /// and at most the lockout duration (the schema's rule).
    pub fn account_lockout_counter_reset_after(mut self, after: Duration) -> Self {
        self.lockout.reset_after = after;
        self
    }

    /// Failed logins from one client address, whatever the user name,
    /// before the address is locked (for every account) for the lockout
    /// duration (default [`DEFAULT_CLIENT_LOCKOUT_THRESHOLD`]). 0 disables
    /// it.
    pub fn client_lockout_threshold(mut self, failures: u32) -> Self {
        self.lockout.client_threshold = failures;
        self
    }

    /// How long a connection may wait for the whole head of its next
    /// request (on a new connection, and between keep-alive requests)
    /// before [`RedfishServer::start`]'s listener closes it (default
    /// [`DEFAULT_IDLE_TIMEOUT`]); reading a request's body and answering it
    /// must also fit in it, or the connection is closed. More than 0.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.limits.idle_timeout = timeout;
        self
    }

    /// How long a TLS handshake may take (default
    /// [`DEFAULT_TLS_HANDSHAKE_TIMEOUT`]). More than 0.
    pub fn tls_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.limits.tls_handshake_timeout = timeout;
        self
    }

    /// The most connections one client address may have open at once
    /// (default [`DEFAULT_MAX_CONNECTIONS_PER_CLIENT`]); new ones over it
    /// are closed at once. At least 1.
    pub fn max_connections_per_client(mut self, max: usize) -> Self {
        self.limits.max_per_client = max;
        self
    }

    /// Validates the settings, reads or generates the TLS material.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming the bad setting: a timeout out of
    /// range, an empty user name, a `max_sessions` of 0, or unreadable or
    /// invalid TLS material.
    pub fn build(self) -> Result<RedfishServer> {
        let secs = self.timeout.as_secs();
        if self.short_timeout_for_tests {
            if self.timeout < Duration::from_secs(1) || secs > *SESSION_TIMEOUT_RANGE.end() {
                return Err(Error::invalid_input(
                    "session_timeout",
                    "the test timeout must be 1..=86400 s",
                ));
            }
        } else if !SESSION_TIMEOUT_RANGE.contains(&secs) || self.timeout.subsec_nanos() != 0 {
            return Err(Error::invalid_input(
                "session_timeout",
                format!(
                    "must be whole seconds in 30..=86400, got {:?}",
                    self.timeout
                ),
            ));
        }
        self.lockout
            .validate()
            .map_err(|(key, reason)| Error::invalid_input(key, reason))?;
        self.limits
            .validate()
            .map_err(|(key, reason)| Error::invalid_input(key, reason))?;
        if self.max_sessions == Some(0) {
            return Err(Error::invalid_input("max_sessions", "must be at least 1"));
        }
        if let Some(recheck) = self.shared_recheck {
            if !self.shared {
                return Err(Error::invalid_input(
                    "shared_session_recheck",
                    "set without share_sessions: there is no repository to recheck",
                ));
            }
            if recheck >= self.timeout {
                return Err(Error::invalid_input(
                    "shared_session_recheck",
                    format!(
                        "must be shorter than the session timeout ({:?}), got {recheck:?}",
                        self.timeout
                    ),
                ));
            }
        }
        let mut accounts = Accounts::default();
        for (name, password, role) in self.accounts {
            if name.is_empty() || name.contains(':') {
                return Err(Error::invalid_input(
                    "account",
                    "a user name must be non-empty and contain no ':'",
                ));
            }
            accounts.insert(&name, password, role);
        }
        let tls = match self.tls {
            TlsSource::Insecure => None,
            TlsSource::SelfSigned => Some(tls::self_signed()?),
            TlsSource::Pem { cert, key } => Some(pem_material(cert, key)),
            TlsSource::PemFiles { cert, key } => {
                let read = |p: &PathBuf| {
                    std::fs::read_to_string(p).map_err(|e| {
                        Error::invalid_input("tls", format!("cannot read {}: {e}", p.display()))
                    })
                };
                Some(pem_material(read(&cert)?, Secret::new(read(&key)?)))
            }
        };
        let tls_config = tls.as_ref().map(tls::server_config).transpose()?;
        let mut state = State::new(
            accounts,
            self.clock,
            Settings {
                timeout: self.timeout,
                service_enabled: self.service_enabled,
            },
            self.max_sessions,
            self.lockout,
        );
        if let (true, Some(repo)) = (self.shared, &self.persist) {
            state = state.sharing(repo.clone(), self.shared_recheck.unwrap_or_default());
        }
        let state = Arc::new(state);
        Ok(RedfishServer {
            state,
            limits: self.limits,
            bind: self.bind,
            tls,
            tls_config,
            persist: self.persist,
            restored: tokio::sync::OnceCell::new(),
        })
    }
}

fn pem_material(cert: String, key: Secret) -> TlsMaterial {
    let ca = cert
        .rfind("-----BEGIN CERTIFICATE-----")
        .map(|i| cert[i..].to_owned())
        .unwrap_or_default();
    TlsMaterial {
        cert_pem: cert,
        key_pem: key,
        ca_pem: ca,
    }
}

/// A configured Redfish SessionService server.
#[derive(Debug)]
pub struct RedfishServer {
    state: Arc<State>,
    limits: ConnectionLimits,
    bind: SocketAddr,
    tls: Option<TlsMaterial>,
    tls_config: Option<Arc<rustls::ServerConfig>>,
    persist: Option<Arc<dyn WorkspaceRepository>>,
    restored: tokio::sync::OnceCell<usize>,
}

impl RedfishServer {
    /// A [`RedfishServerBuilder`] with the defaults.
    pub fn builder() -> RedfishServerBuilder {
        RedfishServerBuilder::new()
    }

    /// The routes, for embedding in an axum application (TLS, time-outs and
    /// connection limits are then the embedder's job; nothing reaps idle
    /// sessions except lookups). Serve it with
    /// `into_make_service_with_connect_info::<std::net::SocketAddr>()`, so
    /// that the login lockout counts per client address.
    pub fn router(&self) -> Router {
        handlers::router(self.state.clone())
    }

    /// With [`RedfishServerBuilder::persist_to`]: loads the stored live
    /// sessions (deleting expired ones) and starts the background writer.
    /// Runs once; later calls return the first count. [`start`](Self::start)
    /// calls it; an application serving [`router`](Self::router) itself
    /// should call it before serving. Without persistence it returns 0.
    ///
    /// # Errors
    ///
    /// The repository's error when it cannot be read.
    pub async fn restore_sessions(&self) -> Result<usize> {
        let Some(repo) = &self.persist else {
            return Ok(0);
        };
        self.restored
            .get_or_try_init(|| async {
                let count = persist::restore(&**repo, &self.state).await?;
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                let _ = self.state.persist.set(tx);
                tokio::spawn(persist::write_loop(
                    repo.clone(),
                    Arc::downgrade(&self.state),
                    rx,
                ));
                tracing::info!(restored = count, "Redfish server sessions restored");
                Ok(count)
            })
            .await
            .copied()
    }

    /// The PEM certificate clients should trust (the generated CA, or the
    /// last certificate of the configured chain); `None` over plain HTTP.
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|t| t.ca_pem.as_str())
    }

    /// Binds, then serves in a background task until
    /// [`RedfishServerHandle::shutdown`] (or the handle is dropped).
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the address cannot be bound; with
    /// persistence, the repository's error when it cannot be read.
    pub async fn start(self) -> Result<RedfishServerHandle> {
        self.restore_sessions().await?;
        let tcp = tokio::net::TcpListener::bind(self.bind)
            .await
            .map_err(|e| unavailable(self.bind, "cannot bind", e))?;
        let addr = tcp
            .local_addr()
            .map_err(|e| unavailable(self.bind, "no local address", e))?;
        let router = self.router();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let tls = self.tls_config.clone().map(tokio_rustls::TlsAcceptor::from);
        let server: JoinHandle<()> =
            tokio::spawn(connections::serve(tcp, tls, router, self.limits, stop_rx));
        let reaper = tokio::spawn(reap_loop(self.state.clone()));
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        Ok(RedfishServerHandle {
            base_url: format!("{scheme}://{addr}"),
            addr,
            ca_pem: self.tls.map(|t| t.ca_pem),
            stop: Some(stop_tx),
            server: Some(server),
            reaper,
        })
    }
}

fn unavailable(addr: SocketAddr, what: &str, e: std::io::Error) -> Error {
    Error::Unavailable {
        target: addr.to_string(),
        message: what.to_owned(),
        source: Some(Arc::new(e)),
    }
}

/// Removes idle sessions when they fall due, by the injected clock.
async fn reap_loop(state: Arc<State>) {
    loop {
        let next = state
            .reap()
            .unwrap_or_else(|| state.clock.now() + state.settings().timeout);
        tokio::select! {
            () = state.clock.sleep_until(next) => {}
            () = state.changed.notified() => {}
        }
    }
}

/// A running server. Dropping it stops the server without waiting.
#[derive(Debug)]
pub struct RedfishServerHandle {
    base_url: String,
    addr: SocketAddr,
    ca_pem: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    reaper: JoinHandle<()>,
}

impl RedfishServerHandle {
    /// `https://127.0.0.1:<port>` (or `http://…` with
    /// [`RedfishServerBuilder::insecure_http`]), without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The PEM certificate clients should trust; `None` over plain HTTP.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Stops accepting connections, lets in-flight requests finish (at most
    /// 5 s) and stops the reaper.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let abort = server.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), server)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        self.reaper.abort();
    }
}

impl Drop for RedfishServerHandle {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
        self.reaper.abort();
    }
}
