//! The fake's public records: targets it serves, and what the test hooks
//! report (sessions, their states and connections, requests).

use std::fmt;
use std::net::SocketAddr;

use time::OffsetDateTime;

use super::super::cluster::{ClosedReason, SessionStatus};
use super::{DEV_PROJECT_ID, DEV_TARGET_ID};

/// A target the controller knows (`type` is `tcp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeTarget {
    /// `ttcp_…`.
    pub id: String,
    /// Unique within its scope.
    pub name: String,
    /// Its project, `p_…`.
    pub scope_id: String,
    /// The project's name.
    pub scope_name: String,
    /// What the worker dials (`endpoint` = `tcp://<this>`).
    pub endpoint: SocketAddr,
    /// Connections per session, −1 = unlimited.
    pub connection_limit: i32,
    /// Session lifetime.
    pub session_max_seconds: u32,
    /// Host ids the session may pick from (`host_id`); empty: no hosts.
    pub host_ids: Vec<String>,
    /// `tcp`.
    pub target_type: String,
}

impl FakeTarget {
    /// A `tcp` target, unlimited connections, 8 h sessions, no hosts.
    pub fn tcp(
        id: &str,
        name: &str,
        scope_id: &str,
        scope_name: &str,
        endpoint: SocketAddr,
    ) -> Self {
        Self {
            id: id.to_owned(),
            name: name.to_owned(),
            scope_id: scope_id.to_owned(),
            scope_name: scope_name.to_owned(),
            endpoint,
            connection_limit: -1,
            session_max_seconds: 8 * 3600,
            host_ids: Vec::new(),
            target_type: "tcp".to_owned(),
        }
    }

    /// The dev-mode target: `ttcp_1234567890` named `Generated target` in
    /// `p_1234567890` (`Generated project scope`).
    pub fn dev(endpoint: SocketAddr) -> Self {
        Self::tcp(
            DEV_TARGET_ID,
            "Generated target",
            DEV_PROJECT_ID,
            "Generated project scope",
            endpoint,
        )
    }
}

/// One state of a session's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRecord {
    /// The state.
    pub status: SessionStatus,
    /// When the session entered it.
    pub start_time: OffsetDateTime,
    /// When it left it; `None` for the current state.
    pub end_time: Option<OffsetDateTime>,
}

/// A proxied connection as the worker reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRecord {
    /// The controller's id, `sc_…`.
    pub connection_id: String,
    /// The client's address as the worker saw it.
    pub client: SocketAddr,
    /// The endpoint the worker dialed (ConnectConnection).
    pub endpoint: Option<SocketAddr>,
    /// Client → endpoint bytes.
    pub bytes_up: u64,
    /// Endpoint → client bytes.
    pub bytes_down: u64,
    /// `None` while open.
    pub closed_reason: Option<ClosedReason>,
}

/// A session as a test sees it ([`FakeController::session`](super::FakeController::session)).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionSnapshot {
    /// `s_…`.
    pub id: String,
    /// The target's id.
    pub target_id: String,
    /// Current status.
    pub status: SessionStatus,
    /// Optimistic-lock version.
    pub version: u32,
    /// The TOFU token registered at activation.
    pub tofu_token: Option<String>,
    /// Newest first.
    pub states: Vec<StateRecord>,
    /// In the order the worker authorized them.
    pub connections: Vec<ConnectionRecord>,
    /// Set when terminated (`canceled`, `timed out`, `connection limit`, …).
    pub termination_reason: Option<String>,
    /// When the session expires.
    pub expiration: OffsetDateTime,
    /// −1 = unlimited.
    pub connection_limit: i32,
    /// The user that authorized it.
    pub user_id: String,
    /// The auth token used to authorize it.
    pub auth_token_id: String,
    /// `tcp://ip:port`.
    pub endpoint: String,
}

impl fmt::Debug for SessionSnapshot {
    // The TOFU token is the session's proof of ownership: not printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionSnapshot")
            .field("id", &self.id)
            .field("target_id", &self.target_id)
            .field("status", &self.status)
            .field("version", &self.version)
            .field("has_tofu_token", &self.tofu_token.is_some())
            .field("states", &self.states)
            .field("connections", &self.connections)
            .field("termination_reason", &self.termination_reason)
            .field("expiration", &self.expiration)
            .field("connection_limit", &self.connection_limit)
            .finish_non_exhaustive()
    }
}

/// One request as the controller received it ([`FakeController::requests`](super::FakeController::requests)).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, as sent (percent-encoded).
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// Whether an `Authorization: Bearer` header came with it (its value is
    /// not kept).
    pub bearer: bool,
    /// The JSON body, any `password` member replaced by `"<redacted>"`.
    pub body: Option<serde_json::Value>,
}
