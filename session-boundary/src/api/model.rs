//! The controller's resources as the client reads them (`boundary.md` §1).
//!
//! The JSON is proto3's mapping: zero values are omitted, so every field
//! defaults; 64-bit integers arrive as strings. Fields added after v0.13.1
//! (`expiration`, `connection_limit`, `endpoint_port` of a
//! `SessionAuthorization`, the pagination fields) are optional.

use std::fmt;

use serde::{Deserialize, Deserializer};
use session_core::Secret;
use time::OffsetDateTime;

/// An auth token from a password login (`AuthenticateResponse.attributes`).
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct AuthToken {
    /// `at_…`: names the token (for logout); not a secret.
    pub id: String,
    /// The bearer token. Redacted in `Debug`.
    #[serde(deserialize_with = "secret")]
    pub token: Secret,
    /// The user it belongs to.
    #[serde(default)]
    pub user_id: String,
    /// The auth method that issued it.
    #[serde(default)]
    pub auth_method_id: String,
    /// Its scope.
    #[serde(default)]
    pub scope_id: String,
    /// When it stops working (default lifetime 7 days).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expiration_time: Option<OffsetDateTime>,
}

/// A scope as resources embed it.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
#[non_exhaustive]
pub struct ScopeInfo {
    /// `global`, `o_…` or `p_…`.
    pub id: String,
    /// `global`, `org` or `project`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its name.
    pub name: String,
}

/// A target (`GET /v1/targets`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Target {
    /// `ttcp_…`.
    pub id: String,
    /// Its name, unique in its scope.
    pub name: String,
    /// Its description.
    pub description: String,
    /// The project it is in.
    pub scope_id: String,
    /// Its scope.
    pub scope: ScopeInfo,
    /// `tcp`, `ssh`, `rdp`…
    #[serde(rename = "type")]
    pub kind: String,
    /// Connections allowed per session, −1 = unlimited.
    pub session_connection_limit: Option<i32>,
    /// Longest session, in seconds.
    pub session_max_seconds: Option<u32>,
    /// What the caller may do with it.
    pub authorized_actions: Vec<String>,
}

/// The answer of `authorize-session`.
#[derive(Clone, Deserialize)]
#[non_exhaustive]
pub struct SessionAuthorization {
    /// `s_…`: the new session, now pending.
    pub session_id: String,
    /// The target.
    #[serde(default)]
    pub target_id: String,
    /// The target's scope.
    #[serde(default)]
    pub scope: ScopeInfo,
    /// The host picked.
    #[serde(default)]
    pub host_id: String,
    /// `tcp`, `ssh`, `rdp`…
    #[serde(default, rename = "type")]
    pub kind: String,
    /// Everything the proxy needs, including the session's private key:
    /// a secret, redacted in `Debug`.
    #[serde(deserialize_with = "secret")]
    pub authorization_token: Secret,
    /// What the worker dials, e.g. `tcp://10.0.0.5:22`.
    #[serde(default)]
    pub endpoint: String,
    /// Connections allowed, −1 = unlimited (controllers since 0.15.0).
    #[serde(default)]
    pub connection_limit: Option<i32>,
    /// When the session expires (controllers since 0.15.0).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expiration: Option<OffsetDateTime>,
}

impl fmt::Debug for SessionAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionAuthorization")
            .field("session_id", &self.session_id)
            .field("target_id", &self.target_id)
            .field("host_id", &self.host_id)
            .field("endpoint", &self.endpoint)
            .field("connection_limit", &self.connection_limit)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

/// A session's state on the controller (`boundary.md` §2).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionState {
    /// Authorized, no connection yet.
    #[default]
    Pending,
    /// A worker activated it.
    Active,
    /// Canceled, connections still closing.
    Canceling,
    /// Over; see [`Session::termination_reason`].
    Terminated,
    /// A state this client does not know.
    Other(String),
}

impl SessionState {
    /// The JSON value.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Canceling => "canceling",
            Self::Terminated => "terminated",
            Self::Other(s) => s,
        }
    }

    /// Canceling or terminated: the session will carry no new connection.
    pub fn is_ending(&self) -> bool {
        matches!(self, Self::Canceling | Self::Terminated)
    }
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SessionState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "pending" | "" => Self::Pending,
            "active" => Self::Active,
            "canceling" => Self::Canceling,
            "terminated" => Self::Terminated,
            _ => Self::Other(s),
        })
    }
}

/// One entry of a session's state history.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct StateChange {
    /// The state.
    pub status: SessionState,
    /// When it began.
    #[serde(with = "time::serde::rfc3339::option")]
    pub start_time: Option<OffsetDateTime>,
    /// When it ended; none for the current state.
    #[serde(with = "time::serde::rfc3339::option")]
    pub end_time: Option<OffsetDateTime>,
}

/// One proxied connection of a session.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Connection {
    /// The client's address as the worker saw it.
    pub client_tcp_address: String,
    /// The client's port.
    pub client_tcp_port: u32,
    /// The endpoint's address.
    pub endpoint_tcp_address: String,
    /// The endpoint's port.
    pub endpoint_tcp_port: u32,
    /// Bytes from the client to the endpoint.
    #[serde(deserialize_with = "uint64")]
    pub bytes_up: u64,
    /// Bytes from the endpoint to the client.
    #[serde(deserialize_with = "uint64")]
    pub bytes_down: u64,
    /// Why it closed, once closed.
    pub closed_reason: String,
}

/// A session (`GET /v1/sessions/{id}`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Session {
    /// `s_…`.
    pub id: String,
    /// Its target.
    pub target_id: String,
    /// Its project.
    pub scope_id: String,
    /// The user who authorized it.
    pub user_id: String,
    /// Its host, if any.
    pub host_id: String,
    /// What the worker dials.
    pub endpoint: String,
    /// `tcp`, `ssh`…
    #[serde(rename = "type")]
    pub kind: String,
    /// The optimistic-lock version a cancel must send.
    pub version: u32,
    /// The current state.
    pub status: SessionState,
    /// State history, newest first.
    pub states: Vec<StateChange>,
    /// When it was authorized.
    #[serde(with = "time::serde::rfc3339::option")]
    pub created_time: Option<OffsetDateTime>,
    /// Last change.
    #[serde(with = "time::serde::rfc3339::option")]
    pub updated_time: Option<OffsetDateTime>,
    /// When it expires.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expiration_time: Option<OffsetDateTime>,
    /// Why it ended (`canceled`, `timed out`, `connection limit`, …), once
    /// terminated.
    pub termination_reason: String,
    /// Its connections.
    pub connections: Vec<Connection>,
    /// What the caller may do with it (`read:self`, `cancel:self`, …).
    pub authorized_actions: Vec<String>,
}

impl Session {
    /// Whether any state in its history is canceling or terminated: a
    /// cancel is then done, whatever the current version (§1.7).
    pub fn was_canceled_or_terminated(&self) -> bool {
        self.status.is_ending() || self.states.iter().any(|s| s.status.is_ending())
    }
}

/// A page of a list (`{"items": […], "list_token": …}`).
#[derive(Debug, Deserialize)]
#[serde(default)]
pub(crate) struct ListPage<T> {
    pub(crate) items: Vec<T>,
    pub(crate) response_type: String,
    pub(crate) list_token: String,
    pub(crate) removed_ids: Vec<String>,
}

impl<T> Default for ListPage<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            response_type: String::new(),
            list_token: String::new(),
            removed_ids: Vec::new(),
        }
    }
}

/// The answer of `:authenticate`.
#[derive(Debug, Deserialize)]
pub(crate) struct AuthenticateResponse {
    pub(crate) attributes: AuthToken,
}

fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
    Ok(Secret::new(String::deserialize(d)?))
}

/// proto3 JSON sends uint64 as a string; accept a number too.
fn uint64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        Number(u64),
    }
    match Either::deserialize(d)? {
        Either::Number(n) => Ok(n),
        Either::Text(s) if s.is_empty() => Ok(0),
        Either::Text(s) => s.parse().map_err(serde::de::Error::custom),
    }
}
