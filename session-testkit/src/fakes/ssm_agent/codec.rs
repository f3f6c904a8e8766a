//! The fake's own ClientMessage codec (`ssm.md` §2.2–§2.5), written from
//! the reference tables and checked against its golden vectors S1–S6. It
//! shares no code with any client: tests may use it as a minimal client.
//!
//! Layout (big-endian): HeaderLength u32 (116) · MessageType (32 bytes,
//! space-padded) · SchemaVersion u32 · CreatedDate u64 (ms) · SequenceNumber
//! i64 · Flags u64 · MessageId (16 bytes, UUID halves swapped) ·
//! PayloadDigest (SHA-256, 32 bytes) · PayloadType u32 · PayloadLength u32 ·
//! Payload.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// HeaderLength: the offset of PayloadLength.
pub const HEADER_LENGTH: u32 = 116;
/// Bytes before the payload (HeaderLength + the PayloadLength field).
pub const PAYLOAD_OFFSET: usize = 120;

/// `input_stream_data` (client → agent).
pub const INPUT_STREAM_DATA: &str = "input_stream_data";
/// `output_stream_data` (agent → client).
pub const OUTPUT_STREAM_DATA: &str = "output_stream_data";
/// `acknowledge` (both ways).
pub const ACKNOWLEDGE: &str = "acknowledge";
/// `channel_closed` (MGS → client).
pub const CHANNEL_CLOSED: &str = "channel_closed";
/// `start_publication` (MGS → sender).
pub const START_PUBLICATION: &str = "start_publication";
/// `pause_publication` (MGS → sender).
pub const PAUSE_PUBLICATION: &str = "pause_publication";

/// Payload types (`ssm.md` §2.4).
pub mod payload {
    /// Raw bytes (terminal I/O, TCP bytes, smux stream).
    pub const OUTPUT: u32 = 1;
    /// Error text (agent).
    pub const ERROR: u32 = 2;
    /// Terminal size JSON (client).
    pub const SIZE: u32 = 3;
    /// Unused by clients.
    pub const PARAMETER: u32 = 4;
    /// HandshakeRequest JSON (agent).
    pub const HANDSHAKE_REQUEST: u32 = 5;
    /// HandshakeResponse JSON (client).
    pub const HANDSHAKE_RESPONSE: u32 = 6;
    /// HandshakeComplete JSON (agent).
    pub const HANDSHAKE_COMPLETE: u32 = 7;
    /// EncChallengeRequest JSON (agent).
    pub const ENC_CHALLENGE_REQUEST: u32 = 8;
    /// EncChallengeResponse JSON (client).
    pub const ENC_CHALLENGE_RESPONSE: u32 = 9;
    /// A 4-byte big-endian flag (see [`super::flag`]).
    pub const FLAG: u32 = 10;
    /// Standard error (NonInteractiveCommands).
    pub const STDERR: u32 = 11;
    /// Exit code (NonInteractiveCommands).
    pub const EXIT_CODE: u32 = 12;
}

/// Values of a Flag payload (PayloadType 10).
pub mod flag {
    /// The local TCP connection closed (basic port mode).
    pub const DISCONNECT_TO_PORT: u32 = 1;
    /// End the session.
    pub const TERMINATE_SESSION: u32 = 2;
    /// The agent could not dial the target.
    pub const CONNECT_TO_PORT_ERROR: u32 = 3;
}

/// The Flags field: bit 0 SYN, bit 1 FIN; acks carry both.
pub const FLAG_SYN: u64 = 1;
/// Flags of an `acknowledge` message.
pub const FLAGS_ACK: u64 = 3;

/// One ClientMessage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMessage {
    /// MessageType (without padding).
    pub message_type: String,
    /// SchemaVersion (1).
    pub schema_version: u32,
    /// CreatedDate, epoch milliseconds.
    pub created_date: u64,
    /// SequenceNumber.
    pub sequence_number: i64,
    /// Flags.
    pub flags: u64,
    /// MessageId.
    pub message_id: Uuid,
    /// PayloadType.
    pub payload_type: u32,
    /// The payload bytes.
    pub payload: Vec<u8>,
}

/// Why [`ClientMessage::decode`] refused a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than the fixed header, or HeaderLength out of range.
    TooShort,
    /// HeaderLength is 0.
    HeaderLength,
    /// MessageType is empty after trimming.
    EmptyMessageType,
    /// CreatedDate is 0.
    CreatedDate,
    /// The frame length is not `HeaderLength + 4 + PayloadLength` (strict).
    Length,
    /// The payload's SHA-256 differs from PayloadDigest (strict).
    Digest,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecodeError::TooShort => "frame too short",
            DecodeError::HeaderLength => "HeaderLength is 0",
            DecodeError::EmptyMessageType => "empty MessageType",
            DecodeError::CreatedDate => "CreatedDate is 0",
            DecodeError::Length => "length mismatch",
            DecodeError::Digest => "payload digest mismatch",
        })
    }
}

impl std::error::Error for DecodeError {}

/// `t` in epoch milliseconds (at least 1: CreatedDate must not be 0).
pub fn epoch_millis(t: time::OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(1)
        .max(1)
}

/// MessageId on the wire: UUID bytes 8..16, then bytes 0..8.
fn id_to_wire(id: &Uuid) -> [u8; 16] {
    let b = id.as_bytes();
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&b[8..]);
    out[8..].copy_from_slice(&b[..8]);
    out
}

fn id_from_wire(w: &[u8]) -> Uuid {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&w[8..16]);
    b[8..].copy_from_slice(&w[..8]);
    Uuid::from_bytes(b)
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

impl ClientMessage {
    /// A message created at `created_date` (epoch ms, see
    /// [`epoch_millis`]), with a new random MessageId and SchemaVersion 1.
    pub fn new(
        message_type: &str,
        sequence_number: i64,
        flags: u64,
        payload_type: u32,
        payload: Vec<u8>,
        created_date: u64,
    ) -> Self {
        Self {
            message_type: message_type.to_owned(),
            schema_version: 1,
            created_date,
            sequence_number,
            flags,
            message_id: Uuid::new_v4(),
            payload_type,
            payload,
        }
    }

    /// The wire bytes (digest computed from the payload).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PAYLOAD_OFFSET + self.payload.len());
        out.extend_from_slice(&HEADER_LENGTH.to_be_bytes());
        let mut kind = [b' '; 32];
        let name = self.message_type.as_bytes();
        let n = name.len().min(32);
        kind[..n].copy_from_slice(&name[..n]);
        out.extend_from_slice(&kind);
        out.extend_from_slice(&self.schema_version.to_be_bytes());
        out.extend_from_slice(&self.created_date.to_be_bytes());
        out.extend_from_slice(&self.sequence_number.to_be_bytes());
        out.extend_from_slice(&self.flags.to_be_bytes());
        out.extend_from_slice(&id_to_wire(&self.message_id));
        out.extend_from_slice(&Sha256::digest(&self.payload));
        out.extend_from_slice(&self.payload_type.to_be_bytes());
        let len = u32::try_from(self.payload.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// Parses one frame. `strict`: the length must be exactly
    /// `HeaderLength + 4 + PayloadLength` and the digest must match (when
    /// the payload is not empty, as the plugin checks). Not strict (what
    /// the real agent does): the payload runs to the end of the frame and
    /// the digest is not checked. `start_publication` / `pause_publication`
    /// skip the checks either way.
    pub fn decode(frame: &[u8], strict: bool) -> Result<Self, DecodeError> {
        if frame.len() < PAYLOAD_OFFSET {
            return Err(DecodeError::TooShort);
        }
        let header_length = be_u32(frame, 0) as usize;
        if header_length == 0 {
            return Err(DecodeError::HeaderLength);
        }
        if header_length + 4 > frame.len() || header_length < 112 {
            return Err(DecodeError::TooShort);
        }
        let message_type: String = String::from_utf8_lossy(&frame[4..36])
            .trim_matches(|c: char| c == '\0' || c.is_whitespace())
            .to_owned();
        let publication = message_type == START_PUBLICATION || message_type == PAUSE_PUBLICATION;
        if message_type.is_empty() && !publication {
            return Err(DecodeError::EmptyMessageType);
        }
        let created_date = be_u64(frame, 40);
        if created_date == 0 && !publication {
            return Err(DecodeError::CreatedDate);
        }
        let payload_length = be_u32(frame, header_length) as usize;
        let start = header_length + 4;
        let payload = if strict && !publication {
            if frame.len() != start + payload_length {
                return Err(DecodeError::Length);
            }
            let payload = &frame[start..];
            if payload_length != 0 && Sha256::digest(payload)[..] != frame[80..112] {
                return Err(DecodeError::Digest);
            }
            payload.to_vec()
        } else {
            frame[start..].to_vec()
        };
        Ok(Self {
            message_type,
            schema_version: be_u32(frame, 36),
            created_date,
            sequence_number: i64::from_be_bytes(frame[48..56].try_into().unwrap_or([0; 8])),
            flags: be_u64(frame, 56),
            message_id: id_from_wire(&frame[64..80]),
            payload_type: be_u32(frame, 112),
            payload,
        })
    }

    /// Whether it is stream data (`input_stream_data` / `output_stream_data`),
    /// the only kind that is acknowledged.
    pub fn is_stream_data(&self) -> bool {
        self.message_type == INPUT_STREAM_DATA || self.message_type == OUTPUT_STREAM_DATA
    }

    /// The `acknowledge` message for this one (new MessageId), created at
    /// `created_date`.
    pub fn ack(&self, created_date: u64) -> ClientMessage {
        let body = AckPayload {
            acknowledged_message_type: self.message_type.clone(),
            acknowledged_message_id: self.message_id.hyphenated().to_string(),
            acknowledged_message_sequence_number: self.sequence_number,
            is_sequential_message: true,
        };
        let payload = serde_json::to_vec(&body).unwrap_or_default();
        ClientMessage::new(ACKNOWLEDGE, 0, FLAGS_ACK, 0, payload, created_date)
    }

    /// The ack payload, when this is a well-formed `acknowledge`.
    pub fn ack_payload(&self) -> Option<AckPayload> {
        if self.message_type != ACKNOWLEDGE {
            return None;
        }
        serde_json::from_slice(&self.payload).ok()
    }

    /// A Flag payload's value (PayloadType 10, 4 bytes big-endian).
    pub fn flag(&self) -> Option<u32> {
        (self.payload_type == payload::FLAG && self.payload.len() >= 4)
            .then(|| be_u32(&self.payload, 0))
    }
}

/// The JSON payload of an `acknowledge` (field order as Go's encoder writes
/// it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckPayload {
    /// The acknowledged message's type.
    #[serde(rename = "AcknowledgedMessageType")]
    pub acknowledged_message_type: String,
    /// Its MessageId, canonical lowercase hyphenated.
    #[serde(rename = "AcknowledgedMessageId")]
    pub acknowledged_message_id: String,
    /// Its SequenceNumber.
    #[serde(rename = "AcknowledgedMessageSequenceNumber")]
    pub acknowledged_message_sequence_number: i64,
    /// Always true.
    #[serde(rename = "IsSequentialMessage", default)]
    pub is_sequential_message: bool,
}

/// A Flag payload: `value` as 4 bytes big-endian.
pub fn flag_payload(value: u32) -> Vec<u8> {
    value.to_be_bytes().to_vec()
}
