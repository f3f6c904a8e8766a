//! The `connect` handshake with a worker (`boundary.md` §4.3, §4.4): the
//! `worker.proxy.v1` messages sent as the first binary websocket message
//! each way, the TOFU token, and what the worker's close codes and reason
//! texts mean.
//!
//! The protobuf is `prost`'s derive; the messages are declared here by hand
//! (two small messages, no `protoc`).

use prost::Message;
use time::OffsetDateTime;

use crate::token::Timestamp;

/// `HANDSHAKECOMMAND_SESSION_CANCEL`.
const SESSION_CANCEL: i32 = 1;

/// Characters of a TOFU token.
pub const TOFU_LEN: usize = 20;

/// `worker.proxy.v1.ClientHandshake`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ClientHandshake {
    #[prost(string, tag = "10")]
    pub(crate) tofu_token: String,
    #[prost(int32, tag = "20")]
    pub(crate) command: i32,
}

/// `worker.proxy.v1.HandshakeResult`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct HandshakeResult {
    #[prost(message, optional, tag = "10")]
    pub(crate) expiration: Option<Timestamp>,
    #[prost(int32, tag = "20")]
    pub(crate) connection_limit: i32,
    #[prost(int32, tag = "30")]
    pub(crate) connections_left: i32,
}

/// A new TOFU token: 20 random characters of `[0-9A-Za-z]`, kept for the
/// whole life of one local proxy (the worker binds the session to the first
/// one it sees).
///
/// # Panics
///
/// When the operating system has no random source.
pub fn tofu_token() -> String {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut token = String::with_capacity(TOFU_LEN);
    while token.len() < TOFU_LEN {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random source");
        // 248 = 4 × 62: rejecting the rest keeps every character equally
        // likely.
        for byte in bytes.into_iter().filter(|b| *b < 248) {
            if token.len() == TOFU_LEN {
                break;
            }
            token.push(char::from(ALPHABET[usize::from(byte % 62)]));
        }
    }
    token
}

/// The first message of a proxied connection: the TOFU token, or with
/// `cancel` a request that the worker cancel the session.
pub fn client_handshake(tofu_token: &str, cancel: bool) -> Vec<u8> {
    ClientHandshake {
        tofu_token: tofu_token.to_owned(),
        command: if cancel { SESSION_CANCEL } else { 0 },
    }
    .encode_to_vec()
}

/// What the worker's `HandshakeResult` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Activation {
    /// When the session expires.
    pub expiration: Option<OffsetDateTime>,
    /// The session's connection limit; `None` when unlimited (−1).
    pub connection_limit: Option<u32>,
    /// Connections left after this one; `None` when unlimited (−1).
    pub connections_left: Option<u32>,
}

/// Why a `HandshakeResult` could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the worker's HandshakeResult is unreadable: {0}")]
pub struct BadResult(String);

/// Decodes the worker's answer to the [`client_handshake`].
///
/// # Errors
///
/// [`BadResult`] when it is not a `HandshakeResult`.
pub fn handshake_result(bytes: &[u8]) -> Result<Activation, BadResult> {
    let result = HandshakeResult::decode(bytes).map_err(|e| BadResult(e.to_string()))?;
    let expiration = result
        .expiration
        .map(|t| {
            OffsetDateTime::from_unix_timestamp_nanos(
                i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos),
            )
            .map_err(|e| BadResult(format!("expiration out of range: {e}")))
        })
        .transpose()?;
    Ok(Activation {
        expiration,
        connection_limit: u32::try_from(result.connection_limit).ok(),
        connections_left: u32::try_from(result.connections_left).ok(),
    })
}

/// What a worker's close (code and reason text) means to the client
/// (`boundary.md` §4.4; the client matches on the text, as the Go client
/// does).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkerClose {
    /// 1000 `done`: the end of this connection's stream.
    Done,
    /// 1000 `session canceled`: a cancel through the worker succeeded.
    Canceled,
    /// 1011 `unable to cancel session`: fall back to the REST cancel.
    CancelFailed,
    /// 1008 `tofu token not allowed`: another client holds the session.
    InUse,
    /// 1011 `refusing to activate session` or `unable to activate
    /// session`: it is no longer pending (canceled, or used up).
    NotActivatable,
    /// 1011 `unable to authorize connection`: the connection limit is
    /// reached; existing connections go on, no new one will be let in.
    LimitReached,
    /// 1003 `invalid tofu token` or 1008 `invalid handshake received`: a
    /// client bug.
    Refused(String),
    /// Anything else: this connection failed (e.g. 3000 `unable to get
    /// endpoint dialer`); the reason as the worker gave it.
    ConnectionFailed(String),
}

impl WorkerClose {
    /// The meaning of a close with `code` and `reason`.
    pub fn from_close(code: u16, reason: &str) -> Self {
        match (code, reason) {
            (1000, "session canceled") => Self::Canceled,
            (1000, _) => Self::Done,
            (_, "unable to cancel session") => Self::CancelFailed,
            (_, "tofu token not allowed") => Self::InUse,
            (_, "refusing to activate session" | "unable to activate session") => {
                Self::NotActivatable
            }
            (_, "unable to authorize connection") => Self::LimitReached,
            (1003 | 1008, _) => Self::Refused(format!("{code} {reason}")),
            _ => Self::ConnectionFailed(format!("{code} {reason}")),
        }
    }

    /// Whether the whole proxy must stop (not just this connection).
    pub fn ends_the_proxy(&self) -> bool {
        matches!(
            self,
            Self::InUse | Self::NotActivatable | Self::Refused(_) | Self::Canceled
        )
    }
}

#[cfg(test)]
mod tests;
