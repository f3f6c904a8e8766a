//! The authorization token that `authorize-session` returns
//! (`boundary.md` §3): base58 (Bitcoin alphabet) of the protobuf message
//! `SessionAuthorizationData`. It carries the session's id, its worker
//! addresses, limits and expiry, and the session's certificate and Ed25519
//! private key, so it is a secret: [`AuthorizationData`] never prints the
//! key, and the token text is never kept.
//!
//! The base58 is the `bs58` crate's and the protobuf is `prost`'s derive
//! (the message is declared here by hand rather than generated, since it is
//! one message of a large API); only the checks of what the client relies on
//! are ours.

use std::fmt;

use ed25519_dalek::SigningKey;
use prost::Message;
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// `google.protobuf.Timestamp`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Timestamp {
    #[prost(int64, tag = "1")]
    pub(crate) seconds: i64,
    #[prost(int32, tag = "2")]
    pub(crate) nanos: i32,
}

/// `ScopeInfo` (the fields the client reads).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ScopeInfo {
    #[prost(string, tag = "1")]
    pub(crate) id: String,
    #[prost(string, tag = "2")]
    pub(crate) r#type: String,
    #[prost(string, tag = "3")]
    pub(crate) name: String,
}

/// `WorkerInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct WorkerInfo {
    #[prost(string, tag = "10")]
    pub(crate) address: String,
}

/// `controller.api.resources.targets.v1.SessionAuthorizationData`, field
/// numbers as in `boundary.md` §3. Unknown fields are skipped.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct SessionAuthorizationData {
    #[prost(string, tag = "10")]
    pub(crate) session_id: String,
    #[prost(string, tag = "20")]
    pub(crate) target_id: String,
    #[prost(message, optional, tag = "30")]
    pub(crate) scope: Option<ScopeInfo>,
    #[prost(message, optional, tag = "40")]
    pub(crate) created_time: Option<Timestamp>,
    #[prost(string, tag = "80")]
    pub(crate) r#type: String,
    #[prost(int32, tag = "90")]
    pub(crate) connection_limit: i32,
    #[prost(uint32, tag = "102")]
    pub(crate) endpoint_port: u32,
    #[prost(message, optional, tag = "105")]
    pub(crate) expiration: Option<Timestamp>,
    #[prost(bytes = "vec", tag = "120")]
    pub(crate) certificate: Vec<u8>,
    #[prost(bytes = "vec", tag = "130")]
    pub(crate) private_key: Vec<u8>,
    #[prost(string, tag = "140")]
    pub(crate) host_id: String,
    #[prost(string, tag = "141")]
    pub(crate) endpoint: String,
    #[prost(message, repeated, tag = "150")]
    pub(crate) worker_info: Vec<WorkerInfo>,
    #[prost(uint32, tag = "160")]
    pub(crate) default_client_port: u32,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not base58 (e.g. a `0`, `O`, `I` or `l`, which the alphabet lacks).
    #[error("the authorization token is not base58: {0}")]
    NotBase58(String),
    /// Not a `SessionAuthorizationData` message.
    #[error("the authorization token is not a session authorization: {0}")]
    NotProtobuf(String),
    /// A field the client needs is missing or malformed.
    #[error("the authorization token's {field} {problem}")]
    Field {
        /// The field, as the API names it.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

fn field(field: &'static str, problem: impl Into<String>) -> TokenError {
    TokenError::Field {
        field,
        problem: problem.into(),
    }
}

/// The session's Ed25519 key: the 32-byte seed (wiped on drop, never
/// printed) and its public key.
#[derive(Clone)]
pub struct SessionKey {
    seed: Zeroizing<[u8; 32]>,
    public: [u8; 32],
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionKey")
            .field("seed", &"<redacted>")
            .field("public", &bytes_hex(&self.public))
            .finish()
    }
}

impl SessionKey {
    /// The key of Go's 64-byte `ed25519.PrivateKey` (seed ‖ public key),
    /// checked: the public half must be the one the seed derives.
    ///
    /// # Errors
    ///
    /// [`TokenError::Field`] naming `private_key`.
    fn from_go(bytes: &[u8]) -> Result<Self, TokenError> {
        if bytes.len() != 64 {
            return Err(field(
                "private_key",
                format!("is {} bytes, not 64 (seed and public key)", bytes.len()),
            ));
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&bytes[..32]);
        let public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
        if public[..] != bytes[32..] {
            return Err(field(
                "private_key",
                "holds a public key that its seed does not derive",
            ));
        }
        Ok(Self { seed, public })
    }

    /// The public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.public
    }

    /// The key as PKCS#8 v1 DER (48 bytes), the form TLS libraries take;
    /// wiped on drop.
    pub fn pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        const PREFIX: [u8; 16] = [
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        let mut der = Zeroizing::new(Vec::with_capacity(48));
        der.extend_from_slice(&PREFIX);
        der.extend_from_slice(&self.seed[..]);
        der
    }
}

/// A decoded, checked authorization token.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AuthorizationData {
    /// The session id (`s_…`).
    pub session_id: String,
    /// The target id.
    pub target_id: String,
    /// The target's scope id, when given.
    pub scope_id: Option<String>,
    /// `tcp`, `ssh`, `rdp`…
    pub kind: String,
    /// Connections allowed; `None` when unlimited (−1).
    pub connection_limit: Option<u32>,
    /// The target's port (controllers since 0.15.0).
    pub endpoint_port: Option<u32>,
    /// When the session expires (controllers since 0.15.0; older ones
    /// give it only as the certificate's NotAfter).
    pub expiration: Option<OffsetDateTime>,
    /// When the session was created.
    pub created: Option<OffsetDateTime>,
    /// The session certificate, DER: the client certificate and the
    /// certificate the worker must present.
    pub certificate_der: Vec<u8>,
    /// The session's private key.
    pub key: SessionKey,
    /// The host, when the target has host sources.
    pub host_id: Option<String>,
    /// The endpoint the worker connects to.
    pub endpoint: Option<String>,
    /// The workers' `host:port` addresses; the client uses the first.
    pub worker_addresses: Vec<String>,
    /// The local port to listen on when the caller gives none (0 = any).
    pub default_client_port: u16,
}

impl AuthorizationData {
    /// Decodes and checks `token` (the `authorization_token` of
    /// `authorize-session`).
    ///
    /// # Errors
    ///
    /// [`TokenError`]: not base58, not the protobuf message, or a field the
    /// client relies on is missing or malformed (no session id, no worker,
    /// a private key that is not 64 bytes or whose halves do not match, no
    /// certificate). The error never contains the token.
    pub fn decode(token: &str) -> Result<Self, TokenError> {
        let bytes = Zeroizing::new(
            bs58::decode(token.trim())
                .into_vec()
                .map_err(|e| TokenError::NotBase58(e.to_string()))?,
        );
        let data = SessionAuthorizationData::decode(bytes.as_slice())
            .map_err(|e| TokenError::NotProtobuf(e.to_string()))?;
        Self::from_message(data)
    }

    fn from_message(data: SessionAuthorizationData) -> Result<Self, TokenError> {
        if data.session_id.is_empty() {
            return Err(field("session_id", "is missing"));
        }
        if data.worker_info.is_empty() {
            return Err(field(
                "worker_info",
                "lists no worker, so there is nothing to connect to",
            ));
        }
        let key = SessionKey::from_go(&data.private_key)?;
        if data.certificate.is_empty() {
            return Err(field("certificate", "is missing"));
        }
        let timestamp = |name: &'static str, t: Option<Timestamp>| {
            t.map(|t| {
                OffsetDateTime::from_unix_timestamp_nanos(
                    i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos),
                )
                .map_err(|e| field(name, format!("is out of range: {e}")))
            })
            .transpose()
        };
        let default_client_port = u16::try_from(data.default_client_port).map_err(|_| {
            field(
                "default_client_port",
                format!("{} is not a port", data.default_client_port),
            )
        })?;
        let nonempty = |s: String| (!s.is_empty()).then_some(s);
        Ok(Self {
            session_id: data.session_id,
            target_id: data.target_id,
            scope_id: data.scope.map(|s| s.id).and_then(nonempty),
            kind: data.r#type,
            connection_limit: u32::try_from(data.connection_limit).ok(),
            endpoint_port: (data.endpoint_port != 0).then_some(data.endpoint_port),
            expiration: timestamp("expiration", data.expiration)?,
            created: timestamp("created_time", data.created_time)?,
            certificate_der: data.certificate,
            key,
            host_id: nonempty(data.host_id),
            endpoint: nonempty(data.endpoint),
            worker_addresses: data.worker_info.into_iter().map(|w| w.address).collect(),
            default_client_port,
        })
    }
}

impl AuthorizationData {
    /// When the session expires: the token's `expiration`, or for
    /// controllers before 0.15.0 the certificate's NotAfter (what older
    /// clients used).
    pub fn expires_at(&self) -> Option<OffsetDateTime> {
        self.expiration.or_else(|| {
            let (_, cert) = x509_parser::parse_x509_certificate(&self.certificate_der).ok()?;
            Some(cert.validity().not_after.to_datetime())
        })
    }
}

fn bytes_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
