//! [`MemoryCluster`]: a small in-memory controller for worker tests that
//! run without the fake controller.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use session_core::Clock;

use crate::fakes::boundary::cluster::{
    AuthorizedConnection, ClosedReason, Cluster, ClusterError, SessionCredentials, SessionStatus,
};

/// One connection as the controller records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRecord {
    /// `sc_…`.
    pub connection_id: String,
    /// The session it belongs to.
    pub session_id: String,
    /// The client's address as the worker saw it.
    pub client: SocketAddr,
    /// The endpoint the worker dialled, once connected.
    pub endpoint: Option<SocketAddr>,
    /// Bytes client → endpoint, once closed.
    pub bytes_up: u64,
    /// Bytes endpoint → client, once closed.
    pub bytes_down: u64,
    /// Why it closed; `None` while open.
    pub closed_reason: Option<ClosedReason>,
}

#[derive(Default)]
struct State {
    sessions: HashMap<String, SessionCredentials>,
    connections: Vec<ConnectionRecord>,
}

/// An in-memory [`Cluster`]: sessions added by the test, the rules of
/// `boundary.md` §2 and §4.4 for activation, connection limits, expiry and
/// cancel.
///
/// ```no_run
/// # fn demo(clock: std::sync::Arc<dyn session_core::Clock>,
/// #         session: session_testkit::fakes::boundary::cluster::SessionCredentials) {
/// use session_testkit::fakes::boundary::worker::MemoryCluster;
/// let cluster = std::sync::Arc::new(MemoryCluster::new(clock));
/// cluster.add_session(session);
/// # }
/// ```
pub struct MemoryCluster {
    clock: Arc<dyn Clock>,
    registered: AtomicBool,
    state: Mutex<State>,
}

impl std::fmt::Debug for MemoryCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCluster").finish_non_exhaustive()
    }
}

impl MemoryCluster {
    /// An empty cluster whose worker is registered; `clock` decides expiry.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            registered: AtomicBool::new(true),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds (or replaces) a session.
    pub fn add_session(&self, session: SessionCredentials) {
        self.state()
            .sessions
            .insert(session.session_id.clone(), session);
    }

    /// Sets whether the worker is registered (`false`: `worker id is
    /// empty`).
    pub fn set_registered(&self, registered: bool) {
        self.registered.store(registered, Ordering::SeqCst);
    }

    /// A session's status, `None` if unknown.
    pub fn status(&self, session_id: &str) -> Option<SessionStatus> {
        self.state().sessions.get(session_id).map(|s| s.status)
    }

    /// The TOFU token a session was activated with.
    pub fn tofu_token(&self, session_id: &str) -> Option<String> {
        self.state()
            .sessions
            .get(session_id)
            .and_then(|s| s.tofu_token.clone())
    }

    /// Every connection the cluster authorized, in order.
    pub fn connections(&self) -> Vec<ConnectionRecord> {
        self.state().connections.clone()
    }
}

#[async_trait]
impl Cluster for MemoryCluster {
    fn worker_registered(&self) -> bool {
        self.registered.load(Ordering::SeqCst)
    }

    async fn lookup_session(&self, session_id: &str) -> Option<SessionCredentials> {
        self.state().sessions.get(session_id).cloned()
    }

    async fn activate(&self, session_id: &str, tofu_token: &str) -> Result<(), ClusterError> {
        let mut state = self.state();
        let session = state
            .sessions
            .get_mut(session_id)
            .ok_or_else(|| ClusterError("session not found".to_owned()))?;
        if session.status != SessionStatus::Pending || session.tofu_token.is_some() {
            return Err(ClusterError("session is not pending".to_owned()));
        }
        session.status = SessionStatus::Active;
        session.tofu_token = Some(tofu_token.to_owned());
        Ok(())
    }

    async fn authorize_connection(
        &self,
        session_id: &str,
        client: SocketAddr,
    ) -> Result<AuthorizedConnection, ClusterError> {
        let now = self.clock.now();
        let mut state = self.state();
        let session = state
            .sessions
            .get(session_id)
            .cloned()
            .ok_or_else(|| ClusterError("session not found".to_owned()))?;
        if session.status != SessionStatus::Active {
            return Err(ClusterError("session is not active".to_owned()));
        }
        if now >= session.expiration {
            return Err(ClusterError("session expired".to_owned()));
        }
        let used = state
            .connections
            .iter()
            .filter(|c| c.session_id == session_id)
            .count();
        let used = i32::try_from(used).unwrap_or(i32::MAX);
        let limit = session.connection_limit;
        if limit >= 0 && used >= limit {
            return Err(ClusterError("connection limit reached".to_owned()));
        }
        let connections_left = if limit < 0 { -1 } else { limit - used - 1 };
        let connection_id = format!("sc_{:010}", state.connections.len() + 1);
        state.connections.push(ConnectionRecord {
            connection_id: connection_id.clone(),
            session_id: session_id.to_owned(),
            client,
            endpoint: None,
            bytes_up: 0,
            bytes_down: 0,
            closed_reason: None,
        });
        Ok(AuthorizedConnection {
            connection_id,
            connection_limit: limit,
            connections_left,
            expiration: session.expiration,
        })
    }

    async fn connect_connection(
        &self,
        connection_id: &str,
        endpoint: SocketAddr,
    ) -> Result<(), ClusterError> {
        let mut state = self.state();
        let connection = state
            .connections
            .iter_mut()
            .find(|c| c.connection_id == connection_id)
            .ok_or_else(|| ClusterError("connection not found".to_owned()))?;
        connection.endpoint = Some(endpoint);
        Ok(())
    }

    async fn close_connection(
        &self,
        connection_id: &str,
        bytes_up: u64,
        bytes_down: u64,
        reason: ClosedReason,
    ) {
        let mut state = self.state();
        if let Some(connection) = state
            .connections
            .iter_mut()
            .find(|c| c.connection_id == connection_id)
        {
            connection.bytes_up = bytes_up;
            connection.bytes_down = bytes_down;
            connection.closed_reason = Some(reason);
        }
    }

    async fn cancel_session(&self, session_id: &str) -> Result<(), ClusterError> {
        let mut state = self.state();
        let session = state
            .sessions
            .get_mut(session_id)
            .ok_or_else(|| ClusterError("session not found".to_owned()))?;
        match session.status {
            SessionStatus::Pending | SessionStatus::Active => {
                session.status = SessionStatus::Canceling;
                Ok(())
            }
            SessionStatus::Canceling => Ok(()),
            SessionStatus::Terminated => Err(ClusterError("session is terminated".to_owned())),
        }
    }
}
