//! What a fake worker asks its controller.
//!
//! Real Boundary workers reach the controller over a cluster gRPC API
//! (LookupSession, ActivateSession, AuthorizeConnection, ConnectConnection,
//! CloseConnection, CancelSession). The fakes keep that seam as a trait, so
//! the fake worker runs against the fake controller's session table, or
//! against a small in-memory table in the worker's own tests.

use std::net::SocketAddr;

use async_trait::async_trait;
use time::OffsetDateTime;

/// A session's status on the controller (`boundary.md` §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    /// Authorized, no connection yet.
    Pending,
    /// The worker activated it with a TOFU token.
    Active,
    /// Canceled, waiting for its connections to close.
    Canceling,
    /// Over.
    Terminated,
}

/// What the worker learns about a session (LookupSession).
#[derive(Clone)]
pub struct SessionCredentials {
    /// `s_…`.
    pub session_id: String,
    /// The session certificate, DER: the client must present exactly this,
    /// and the worker presents it as its own.
    pub certificate_der: Vec<u8>,
    /// The session's Ed25519 private key, PKCS#8 v1 DER.
    pub private_key_pkcs8: Vec<u8>,
    /// Current status.
    pub status: SessionStatus,
    /// The TOFU token registered at activation, if any.
    pub tofu_token: Option<String>,
    /// When the session expires; connections get this as their deadline.
    pub expiration: OffsetDateTime,
    /// The session's connection limit, −1 = unlimited.
    pub connection_limit: i32,
    /// What the worker dials, e.g. `tcp://127.0.0.1:5432`.
    pub endpoint: String,
}

impl std::fmt::Debug for SessionCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCredentials")
            .field("session_id", &self.session_id)
            .field("status", &self.status)
            .field("expiration", &self.expiration)
            .field("connection_limit", &self.connection_limit)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// A connection the controller allowed (AuthorizeConnection).
#[derive(Debug, Clone)]
pub struct AuthorizedConnection {
    /// The controller's id for this connection.
    pub connection_id: String,
    /// The session's connection limit, −1 = unlimited.
    pub connection_limit: i32,
    /// Connections left after this one, −1 = unlimited.
    pub connections_left: i32,
    /// The session's expiration.
    pub expiration: OffsetDateTime,
}

/// Why a connection closed (`boundary.md` §1.6 `closed_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosedReason {
    /// `unknown`.
    Unknown,
    /// `timed out`.
    TimedOut,
    /// `closed by end-user`.
    ClosedByEndUser,
    /// `canceled`.
    Canceled,
    /// `network error`.
    NetworkError,
    /// `system error`.
    SystemError,
}

impl ClosedReason {
    /// The JSON value of `closed_reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::TimedOut => "timed out",
            Self::ClosedByEndUser => "closed by end-user",
            Self::Canceled => "canceled",
            Self::NetworkError => "network error",
            Self::SystemError => "system error",
        }
    }
}

/// A refusal by the controller; the worker turns it into the close code
/// and reason text of `boundary.md` §4.4.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ClusterError(pub String);

/// The controller as a worker sees it.
#[async_trait]
pub trait Cluster: Send + Sync + 'static {
    /// Whether the worker is registered with a controller (`worker id is
    /// empty` when not, §4.4 rule 6).
    fn worker_registered(&self) -> bool {
        true
    }

    /// The session, or `None` if the controller does not know it.
    async fn lookup_session(&self, session_id: &str) -> Option<SessionCredentials>;

    /// Moves a pending session to active and registers its TOFU token
    /// (§4.4 rule 5b). Fails if the session is no longer pending.
    async fn activate(&self, session_id: &str, tofu_token: &str) -> Result<(), ClusterError>;

    /// Allows one more connection (§4.4 rule 7): fails when the connection
    /// limit is used up, the session expired, or it is not active.
    async fn authorize_connection(
        &self,
        session_id: &str,
        client: SocketAddr,
    ) -> Result<AuthorizedConnection, ClusterError>;

    /// Records the connection as connected to `endpoint` (ConnectConnection).
    async fn connect_connection(
        &self,
        connection_id: &str,
        endpoint: SocketAddr,
    ) -> Result<(), ClusterError>;

    /// Records the end of a connection and its byte counts (bytes up =
    /// client to endpoint).
    async fn close_connection(
        &self,
        connection_id: &str,
        bytes_up: u64,
        bytes_down: u64,
        reason: ClosedReason,
    );

    /// Cancels the session (`SESSION_CANCEL` through the worker, §4.6).
    async fn cancel_session(&self, session_id: &str) -> Result<(), ClusterError>;
}
