//! A fake HashiCorp Boundary controller: the REST API a `boundary connect`
//! style client uses, over an in-memory session table, on `127.0.0.1`.
//!
//! Written from `boundary.md` §1–§3 and §6 and checked against Boundary's
//! OpenAPI document v0.13.1 by `tests/boundary_controller.rs`.
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/auth-methods/{id}:authenticate` | password login (no bearer token) |
//! | `GET /v1/auth-tokens/{id}`, `DELETE …` | read / log out an auth token |
//! | `GET /v1/targets`, `GET /v1/targets/{id}` | list / read targets |
//! | `POST /v1/targets/{id or name}:authorize-session` | a new `pending` session and its authorization token |
//! | `GET /v1/sessions`, `GET /v1/sessions/{id}` | list (filter, pagination, refresh) / read |
//! | `POST /v1/sessions/{id}:cancel` | cancel with the session's version |
//!
//! Every route but authenticate needs `Authorization: Bearer <token>`.
//! Errors are `controller.api.v1.Error` (§1.2). A background task (every
//! 50 ms, and before each request) moves canceling, expired and
//! limit-used sessions with no open connection to `terminated`.
//!
//! The fake worker reaches the same session table through
//! [`FakeController::cluster`].
//!
//! ```no_run
//! # async fn demo() {
//! use session_testkit::fakes::boundary::controller::{FakeController, FakeTarget};
//!
//! let controller = FakeController::builder()
//!     .target(FakeTarget::dev("127.0.0.1:5432".parse().unwrap()))
//!     .start()
//!     .await;
//! // Log in at `controller.url()` with `admin` / `password`, start a fake
//! // worker with `controller.cluster()`, then:
//! controller.set_worker_address("127.0.0.1:9202");
//! # }
//! ```

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use session_core::{Clock, SystemClock};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::cluster::{Cluster, SessionStatus};
use state::{Account, Config, Fault, Inner, Shared};

mod auth;
mod filter;
mod http;
mod json;
mod records;
mod seam;
mod sessions;
mod state;
mod targets;
pub mod token;

pub use records::{ConnectionRecord, FakeTarget, RequestRecord, SessionSnapshot, StateRecord};

/// The dev-mode password auth method id.
pub const DEV_AUTH_METHOD_ID: &str = "ampw_1234567890";
/// The dev-mode login name.
pub const DEV_LOGIN_NAME: &str = "admin";
/// The dev-mode password.
pub const DEV_PASSWORD: &str = "password";
/// The dev-mode target id.
pub const DEV_TARGET_ID: &str = "ttcp_1234567890";
/// The dev-mode project id.
pub const DEV_PROJECT_ID: &str = "p_1234567890";
/// The organisation every project of the fake belongs to.
pub const ORG_ID: &str = "o_1234567890";
/// The worker address put in tokens until one is set.
pub const DEFAULT_WORKER_ADDRESS: &str = "127.0.0.1:9202";
/// The server's largest page (`max_page_size`).
pub const DEFAULT_MAX_PAGE_SIZE: u32 = 1000;

/// Builds a [`FakeController`].
pub struct FakeControllerBuilder {
    clock: Arc<dyn Clock>,
    accounts: Vec<Account>,
    targets: Vec<FakeTarget>,
    worker_address: String,
    max_page_size: u32,
    legacy_0_13: bool,
    token_lifetime: time::Duration,
}

impl fmt::Debug for FakeControllerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeControllerBuilder")
            .field("targets", &self.targets)
            .field("worker_address", &self.worker_address)
            .field("legacy_0_13", &self.legacy_0_13)
            .finish_non_exhaustive()
    }
}

impl FakeControllerBuilder {
    /// The clock for every time the controller records or compares (the
    /// wall clock by default).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Adds a password account to auth method `id` (several calls add
    /// several accounts). Without any, `ampw_1234567890` with `admin` /
    /// `password`.
    pub fn auth_method(mut self, id: &str, login_name: &str, password: &str) -> Self {
        let n = self.accounts.len() + 1;
        self.accounts.push(Account {
            auth_method_id: id.to_owned(),
            login_name: login_name.to_owned(),
            password: password.to_owned(),
            account_id: format!("acctpw_{n:010}"),
            user_id: format!("u_{n:010}"),
        });
        self
    }

    /// Adds a target.
    pub fn target(mut self, target: FakeTarget) -> Self {
        self.targets.push(target);
        self
    }

    /// The worker address in every token's `worker_info[0]` and in the
    /// session certificates' SANs (also [`FakeController::set_worker_address`]).
    pub fn worker_address(mut self, address: impl Into<String>) -> Self {
        self.worker_address = address.into();
        self
    }

    /// The largest page a list returns (default 1000).
    pub fn max_page_size(mut self, max: u32) -> Self {
        self.max_page_size = max.max(1);
        self
    }

    /// Answers as Boundary 0.13.1: tokens without fields 102/105,
    /// `SessionAuthorization` without `connection_limit`, `endpoint_port`
    /// and `expiration`, lists without pagination.
    pub fn legacy_0_13(mut self, legacy: bool) -> Self {
        self.legacy_0_13 = legacy;
        self
    }

    /// Auth token lifetime (default 7 days).
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = time::Duration::try_from(lifetime).unwrap_or(time::Duration::MAX);
        self
    }

    /// Starts the controller on `127.0.0.1:0` and its terminator task.
    pub async fn start(self) -> FakeController {
        let mut accounts = self.accounts;
        if accounts.is_empty() {
            accounts.push(Account {
                auth_method_id: DEV_AUTH_METHOD_ID.to_owned(),
                login_name: DEV_LOGIN_NAME.to_owned(),
                password: DEV_PASSWORD.to_owned(),
                account_id: "acctpw_1234567890".to_owned(),
                user_id: "u_1234567890".to_owned(),
            });
        }
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                config: Config {
                    accounts,
                    targets: self.targets,
                    max_page_size: self.max_page_size,
                    legacy_0_13: self.legacy_0_13,
                    token_lifetime: self.token_lifetime,
                    started: self.clock.now(),
                },
                worker_address: self.worker_address,
                tokens: Default::default(),
                sessions: Default::default(),
                connection_sessions: Default::default(),
                seq: 0,
                list_tokens: Default::default(),
                requests: Vec::new(),
                faults: Default::default(),
                stale_cancels: Default::default(),
            }),
            clock: self.clock,
        });
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind the fake controller");
        let addr = listener.local_addr().expect("local address");
        let app = http::router(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let terminator = tokio::spawn({
            let shared = shared.clone();
            async move {
                let mut tick = tokio::time::interval(Duration::from_millis(50));
                loop {
                    tick.tick().await;
                    let now = shared.now();
                    shared.lock().sweep(now);
                }
            }
        });
        FakeController {
            shared,
            addr,
            tasks: vec![server, terminator],
        }
    }
}

/// A running fake controller; dropping it stops it.
pub struct FakeController {
    shared: Arc<Shared>,
    addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl fmt::Debug for FakeController {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeController")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeController {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl FakeController {
    /// A builder with the dev-mode defaults.
    pub fn builder() -> FakeControllerBuilder {
        FakeControllerBuilder {
            clock: Arc::new(SystemClock),
            accounts: Vec::new(),
            targets: Vec::new(),
            worker_address: DEFAULT_WORKER_ADDRESS.to_owned(),
            max_page_size: DEFAULT_MAX_PAGE_SIZE,
            legacy_0_13: false,
            token_lifetime: time::Duration::days(7),
        }
    }

    /// `http://127.0.0.1:PORT`, the controller address a client takes.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The controller as a fake worker sees it, over the same sessions.
    pub fn cluster(&self) -> Arc<dyn Cluster> {
        Arc::new(seam::ControllerCluster(self.shared.clone()))
    }

    /// The worker address for sessions authorized from now on.
    pub fn set_worker_address(&self, address: impl Into<String>) {
        self.shared.lock().worker_address = address.into();
    }

    /// Every session, oldest first.
    pub fn sessions(&self) -> Vec<SessionSnapshot> {
        let inner = self.shared.lock();
        let mut all: Vec<_> = inner.sessions.values().collect();
        all.sort_by_key(|s| s.created_seq);
        all.into_iter().map(|s| s.snapshot()).collect()
    }

    /// One session.
    pub fn session(&self, id: &str) -> Option<SessionSnapshot> {
        self.shared.lock().sessions.get(id).map(|s| s.snapshot())
    }

    /// Cancels a session server-side (pending or active → canceling, as the
    /// controller's own cancellation does). Returns whether it changed.
    pub fn cancel(&self, id: &str) -> bool {
        let now = self.shared.now();
        let mut inner = self.shared.lock();
        let seq = inner.next_seq();
        match inner.sessions.get_mut(id) {
            Some(s) if matches!(s.status(), SessionStatus::Pending | SessionStatus::Active) => {
                s.transition(SessionStatus::Canceling, now, seq);
                true
            }
            _ => false,
        }
    }

    /// Moves a session's expiration to now (the terminator ends it once
    /// its connections are closed).
    pub fn expire(&self, id: &str) {
        let now = self.shared.now();
        let mut inner = self.shared.lock();
        let seq = inner.next_seq();
        if let Some(s) = inner.sessions.get_mut(id) {
            s.expiration = now;
            s.touch(now, seq);
        }
    }

    /// Expires every auth token issued so far.
    pub fn expire_auth_tokens(&self) {
        let now = self.shared.now();
        for token in self.shared.lock().tokens.values_mut() {
            token.expiration = now;
        }
    }

    /// Expires one auth token, by id (`at_…`).
    pub fn expire_auth_token(&self, id: &str) {
        let now = self.shared.now();
        if let Some(token) = self.shared.lock().tokens.get_mut(id) {
            token.expiration = now;
        }
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock().requests.clone()
    }

    /// The next request (any route) is answered with `status` and `body`,
    /// and `Retry-After: <secs>` if given. Calls queue up.
    pub fn fail_next(&self, status: u16, body: serde_json::Value, retry_after_secs: Option<u64>) {
        self.shared.lock().faults.push_back(Fault {
            status,
            body,
            retry_after: retry_after_secs,
        });
    }

    /// Bumps a session's version without a state change, so that a cancel
    /// with the version the client knew is stale.
    pub fn bump_version(&self, id: &str) {
        let now = self.shared.now();
        let mut inner = self.shared.lock();
        let seq = inner.next_seq();
        if let Some(s) = inner.sessions.get_mut(id) {
            s.version += 1;
            s.touch(now, seq);
        }
    }

    /// The next cancel of `id` finds the session's version changed since
    /// the client read it (another writer in between), so it is stale.
    /// Calls add up: twice makes the next two cancels stale.
    pub fn stale_next_cancel(&self, id: &str) {
        *self
            .shared
            .lock()
            .stale_cancels
            .entry(id.to_owned())
            .or_default() += 1;
    }

    /// Forces a status change through the state-machine guard. **Panics**
    /// on a transition `boundary.md` §2 does not allow. Terminating sets
    /// `termination_reason` to `terminated` if none is set.
    pub fn set_status(&self, id: &str, status: SessionStatus) {
        let now = self.shared.now();
        let mut inner = self.shared.lock();
        let seq = inner.next_seq();
        let session = inner.sessions.get_mut(id).expect("no such session");
        session.transition(status, now, seq);
        if status == SessionStatus::Terminated && session.termination_reason.is_none() {
            session.termination_reason = Some("terminated".to_owned());
        }
    }

    /// Runs the terminator's step now (it also runs every 50 ms).
    pub fn sweep(&self) {
        let now = self.shared.now();
        self.shared.lock().sweep(now);
    }
}
