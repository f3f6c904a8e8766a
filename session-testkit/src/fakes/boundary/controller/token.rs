//! The authorization token (`boundary.md` §3): base58 (Bitcoin alphabet) of
//! the protobuf `controller.api.resources.targets.v1.SessionAuthorizationData`.
//!
//! The messages are derived by hand with Boundary's field numbers, so the
//! fake needs no `protoc` and shares no code with the client.

use std::fmt;

use prost::Message;

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds within the second.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Timestamp {
    /// The timestamp of `t`.
    pub fn from_time(t: time::OffsetDateTime) -> Self {
        Self {
            seconds: t.unix_timestamp(),
            nanos: t.nanosecond() as i32,
        }
    }
}

/// `controller.api.resources.scopes.v1.ScopeInfo`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ScopeInfo {
    /// Scope id, e.g. `p_1234567890`.
    #[prost(string, tag = "1")]
    pub id: String,
    /// `global`, `org` or `project`.
    #[prost(string, tag = "2")]
    pub r#type: String,
    /// Scope name.
    #[prost(string, tag = "3")]
    pub name: String,
    /// Scope description.
    #[prost(string, tag = "4")]
    pub description: String,
    /// The parent scope's id.
    #[prost(string, tag = "5")]
    pub parent_scope_id: String,
}

/// `WorkerInfo`: where the client dials the worker.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WorkerInfo {
    /// `host:port` of the worker's proxy listener.
    #[prost(string, tag = "10")]
    pub address: String,
}

/// `SessionAuthorizationData`: everything the proxy needs. It holds the
/// session's private key, so its `Debug` leaves the key out.
#[derive(Clone, PartialEq, prost::Message)]
#[prost(skip_debug)]
pub struct SessionAuthorizationData {
    /// `s_…`.
    #[prost(string, tag = "10")]
    pub session_id: String,
    /// The target's id.
    #[prost(string, tag = "20")]
    pub target_id: String,
    /// The target's scope.
    #[prost(message, optional, tag = "30")]
    pub scope: Option<ScopeInfo>,
    /// When the session was authorized.
    #[prost(message, optional, tag = "40")]
    pub created_time: Option<Timestamp>,
    /// `tcp`, `ssh` or `rdp`.
    #[prost(string, tag = "80")]
    pub r#type: String,
    /// −1 = unlimited.
    #[prost(int32, tag = "90")]
    pub connection_limit: i32,
    /// The endpoint's port (since 0.15.0).
    #[prost(uint32, tag = "102")]
    pub endpoint_port: u32,
    /// The session's expiration (since 0.15.0).
    #[prost(message, optional, tag = "105")]
    pub expiration: Option<Timestamp>,
    /// The session certificate, DER.
    #[prost(bytes = "vec", tag = "120")]
    pub certificate: Vec<u8>,
    /// Go's `ed25519.PrivateKey`: seed ‖ public key (64 bytes).
    #[prost(bytes = "vec", tag = "130")]
    pub private_key: Vec<u8>,
    /// The host picked for the session, if any.
    #[prost(string, tag = "140")]
    pub host_id: String,
    /// What the worker dials, e.g. `tcp://10.0.0.5:22`.
    #[prost(string, tag = "141")]
    pub endpoint: String,
    /// The workers to dial; clients use entry 0.
    #[prost(message, repeated, tag = "150")]
    pub worker_info: Vec<WorkerInfo>,
    /// The local port a client listens on by default (0 = ephemeral).
    #[prost(uint32, tag = "160")]
    pub default_client_port: u32,
}

impl fmt::Debug for SessionAuthorizationData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionAuthorizationData")
            .field("session_id", &self.session_id)
            .field("target_id", &self.target_id)
            .field("type", &self.r#type)
            .field("connection_limit", &self.connection_limit)
            .field("endpoint_port", &self.endpoint_port)
            .field("expiration", &self.expiration)
            .field("endpoint", &self.endpoint)
            .field("worker_info", &self.worker_info)
            .finish_non_exhaustive()
    }
}

/// Why [`decode`] refused a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not base58 (Bitcoin alphabet).
    #[error("the token is not base58")]
    Base58,
    /// Not a `SessionAuthorizationData`.
    #[error("the token is not a SessionAuthorizationData message")]
    Protobuf,
}

/// The token string: base58 of the protobuf serialisation.
pub fn encode(data: &SessionAuthorizationData) -> String {
    bs58::encode(data.encode_to_vec()).into_string()
}

/// The message in a token string (unknown fields are skipped).
pub fn decode(token: &str) -> Result<SessionAuthorizationData, TokenError> {
    let bytes = bs58::decode(token)
        .into_vec()
        .map_err(|_| TokenError::Base58)?;
    SessionAuthorizationData::decode(bytes.as_slice()).map_err(|_| TokenError::Protobuf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// `boundary.md` §7, "Minimal SessionAuthorizationData".
    #[test]
    fn the_minimal_token_matches_the_golden_vector() {
        let data = SessionAuthorizationData {
            session_id: "s_1234567890".into(),
            target_id: "ttcp_1234567890".into(),
            r#type: "tcp".into(),
            connection_limit: -1,
            endpoint_port: 22,
            expiration: Some(Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            worker_info: vec![WorkerInfo {
                address: "127.0.0.1:9202".into(),
            }],
            ..Default::default()
        };
        let bytes = data.encode_to_vec();
        assert_eq!(bytes.len(), 81);
        assert_eq!(
            hex(&bytes),
            "520c735f31323334353637383930a2010f747463705f31323334353637383930820503746370\
             d005ffffffffffffffffff01b00616ca06060880e2cfaa06b20910520e3132372e302e302e31\
             3a39323032"
        );
        let token = encode(&data);
        assert_eq!(
            token,
            "4wtL4iHcpiizceC97UnojuKqBsGiP2yYp8c4ja7V3dAyU7ZzNCFj4TNDYNWhEKgf1s6qNCpzQmHRLycaYwMpYiBs6SmcdiK13KmcjY3t5it8Gp9"
        );
        assert_eq!(decode(&token), Ok(data));
    }

    #[test]
    fn base58_and_timestamp_vectors() {
        assert_eq!(bs58::encode([0u8, 0, 1]).into_string(), "112");
        assert_eq!(
            bs58::encode(b"hello world").into_string(),
            "StV1DL6CwTryKyV"
        );
        let ts = Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        };
        assert_eq!(hex(&ts.encode_to_vec()), "0880e2cfaa06");
    }

    #[test]
    fn bad_tokens_are_refused() {
        assert_eq!(decode("0OIl").unwrap_err(), TokenError::Base58);
        // 0xff is a truncated varint key.
        assert_eq!(decode("5Q").unwrap_err(), TokenError::Protobuf);
    }

    #[test]
    fn debug_leaves_the_key_out() {
        let data = SessionAuthorizationData {
            private_key: vec![0xab; 64],
            ..Default::default()
        };
        assert!(!format!("{data:?}").contains("171"));
        assert!(!format!("{data:?}").contains("private_key"));
    }
}
