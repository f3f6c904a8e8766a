//! The `ClientMessage` of the SSM data channel: one per binary WebSocket
//! frame, in both directions (`ssm.md` §2.2).
//!
//! Layout, all integers big-endian:
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 4 | HeaderLength, always [`HEADER_LENGTH`] (116) |
//! | 4 | 32 | MessageType, ASCII, right-padded with spaces |
//! | 36 | 4 | SchemaVersion |
//! | 40 | 8 | CreatedDate, Unix epoch milliseconds |
//! | 48 | 8 | SequenceNumber (signed) |
//! | 56 | 8 | Flags |
//! | 64 | 16 | MessageId, **halves swapped**: UUID bytes 8..16, then 0..8 |
//! | 80 | 32 | PayloadDigest, SHA-256 of the payload |
//! | 112 | 4 | PayloadType |
//! | 116 | 4 | PayloadLength |
//! | 120 | n | Payload |
//!
//! [`ClientMessage::decode`] is stricter than the reference plugin; see its
//! documentation for every rule.

use std::fmt;

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The value of the HeaderLength field: the offset of PayloadLength.
pub const HEADER_LENGTH: u32 = 116;
/// The size of the MessageType field, in bytes.
pub const MESSAGE_TYPE_LEN: usize = 32;
/// The SchemaVersion every known peer sends.
pub const SCHEMA_VERSION: u32 = 1;
/// The offset of the payload: HeaderLength + the 4-byte PayloadLength.
pub const PAYLOAD_OFFSET: usize = HEADER_LENGTH as usize + 4;

const TYPE_AT: usize = 4;
const SCHEMA_AT: usize = 36;
const DATE_AT: usize = 40;
const SEQ_AT: usize = 48;
const FLAGS_AT: usize = 56;
const ID_AT: usize = 64;
const DIGEST_AT: usize = 80;
const PAYLOAD_TYPE_AT: usize = 112;
const PAYLOAD_LEN_AT: usize = 116;

/// The MessageType field (`ssm.md` §2.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// `input_stream_data`: stream data from the client to the agent.
    InputStreamData,
    /// `output_stream_data`: stream data from the agent to the client.
    OutputStreamData,
    /// `acknowledge`: an acknowledgement, in both directions.
    Acknowledge,
    /// `channel_closed`: MGS ends the session.
    ChannelClosed,
    /// `start_publication`: MGS says the far side is back.
    StartPublication,
    /// `pause_publication`: MGS says the far side is gone for now.
    PausePublication,
    /// Any other type (e.g. `agent_session_state`); clients ignore them.
    ///
    /// Build it with [`MessageType::from`], which never puts a known name
    /// here, so that decoding gives back an equal value.
    Other(String),
}

impl MessageType {
    /// The name as it appears on the wire, without padding.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InputStreamData => "input_stream_data",
            Self::OutputStreamData => "output_stream_data",
            Self::Acknowledge => "acknowledge",
            Self::ChannelClosed => "channel_closed",
            Self::StartPublication => "start_publication",
            Self::PausePublication => "pause_publication",
            Self::Other(name) => name,
        }
    }
}

impl From<&str> for MessageType {
    fn from(name: &str) -> Self {
        match name {
            "input_stream_data" => Self::InputStreamData,
            "output_stream_data" => Self::OutputStreamData,
            "acknowledge" => Self::Acknowledge,
            "channel_closed" => Self::ChannelClosed,
            "start_publication" => Self::StartPublication,
            "pause_publication" => Self::PausePublication,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The PayloadType field (`ssm.md` §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadType {
    /// 0: no payload type, used on acknowledgements and control messages.
    Undefined,
    /// 1: raw bytes (terminal I/O, TCP bytes, an smux byte stream).
    Output,
    /// 2: error text from the agent.
    Error,
    /// 3: terminal size JSON (`Size`).
    Size,
    /// 4: unused by clients.
    Parameter,
    /// 5: the agent's `HandshakeRequest` JSON.
    HandshakeRequest,
    /// 6: the client's `HandshakeResponse` JSON.
    HandshakeResponse,
    /// 7: the agent's `HandshakeComplete` JSON.
    HandshakeComplete,
    /// 8: the agent's KMS challenge JSON.
    EncChallengeRequest,
    /// 9: the client's answer to the KMS challenge.
    EncChallengeResponse,
    /// 10: a 4-byte big-endian flag value (`FlagValue`).
    Flag,
    /// 11: standard error of a non-interactive command.
    StdErr,
    /// 12: exit code of a non-interactive command.
    ExitCode,
    /// Any other number; never one of the numbers above when built with
    /// [`PayloadType::from`].
    Other(u32),
}

impl PayloadType {
    /// The number on the wire.
    pub fn to_u32(self) -> u32 {
        match self {
            Self::Undefined => 0,
            Self::Output => 1,
            Self::Error => 2,
            Self::Size => 3,
            Self::Parameter => 4,
            Self::HandshakeRequest => 5,
            Self::HandshakeResponse => 6,
            Self::HandshakeComplete => 7,
            Self::EncChallengeRequest => 8,
            Self::EncChallengeResponse => 9,
            Self::Flag => 10,
            Self::StdErr => 11,
            Self::ExitCode => 12,
            Self::Other(n) => n,
        }
    }
}

impl From<u32> for PayloadType {
    fn from(n: u32) -> Self {
        match n {
            0 => Self::Undefined,
            1 => Self::Output,
            2 => Self::Error,
            3 => Self::Size,
            4 => Self::Parameter,
            5 => Self::HandshakeRequest,
            6 => Self::HandshakeResponse,
            7 => Self::HandshakeComplete,
            8 => Self::EncChallengeRequest,
            9 => Self::EncChallengeResponse,
            10 => Self::Flag,
            11 => Self::StdErr,
            12 => Self::ExitCode,
            other => Self::Other(other),
        }
    }
}

impl fmt::Display for PayloadType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Other(n) => write!(f, "{n}"),
            known => write!(f, "{known:?} ({})", known.to_u32()),
        }
    }
}

/// The Flags field: bit 0 SYN, bit 1 FIN; other bits are kept as they came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MessageFlags(pub u64);

impl MessageFlags {
    /// No flag: client stream data.
    pub const NONE: Self = Self(0);
    /// Bit 0: the agent's first stream message (sequence number 0).
    pub const SYN: Self = Self(1);
    /// Bit 1.
    pub const FIN: Self = Self(2);
    /// SYN | FIN (3): what acknowledgements carry.
    pub const ACK: Self = Self(3);

    /// The raw value.
    pub fn bits(self) -> u64 {
        self.0
    }

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for MessageFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// Why a [`ClientMessage`] could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The MessageId is the nil UUID, which peers refuse.
    #[error("the message id must not be the nil UUID")]
    NilMessageId,
    /// The MessageType is empty.
    #[error("the message type is empty")]
    EmptyMessageType,
    /// The MessageType does not fit its 32-byte field.
    #[error("the message type is {len} bytes long, at most 32 fit")]
    MessageTypeTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The MessageType holds a byte other than printable, non-space ASCII,
    /// which would not survive the padding and stripping.
    #[error("the message type {0:?} holds a byte that is not printable ASCII")]
    InvalidMessageType(String),
    /// CreatedDate is 0, which decoders refuse.
    #[error("the created date must not be 0")]
    ZeroCreatedDate,
    /// The payload is longer than a u32 length can say.
    #[error("the payload is {len} bytes long, more than PayloadLength can hold")]
    PayloadTooLong {
        /// Its length in bytes.
        len: usize,
    },
}

/// Why bytes were not accepted as a [`ClientMessage`].
///
/// Every variant means "drop the message, do not acknowledge it"; the peer
/// then retransmits it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than the fixed header and PayloadLength.
    #[error("{len} bytes is too short for a message (at least 120)")]
    TooShort {
        /// The number of bytes received.
        len: usize,
    },
    /// HeaderLength is not 116, so the layout is not the one we know.
    #[error("header length {found}, expected 116")]
    HeaderLength {
        /// The HeaderLength received.
        found: u32,
    },
    /// The message is not exactly HeaderLength + 4 + PayloadLength bytes.
    #[error("payload length {payload_length} does not match the {actual} bytes received")]
    LengthMismatch {
        /// The PayloadLength field.
        payload_length: u32,
        /// The total number of bytes received.
        actual: usize,
    },
    /// MessageType is empty once NULs and whitespace are stripped.
    #[error("empty message type")]
    EmptyMessageType,
    /// MessageType holds a byte other than printable, non-space ASCII after
    /// stripping.
    #[error("message type is not printable ASCII")]
    InvalidMessageType,
    /// CreatedDate is 0.
    #[error("created date is 0")]
    ZeroCreatedDate,
    /// PayloadDigest is not the SHA-256 of the payload.
    #[error("payload digest mismatch")]
    DigestMismatch,
}

/// One data-channel message (`ssm.md` §2.2), as fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMessage {
    /// What the message is.
    pub message_type: MessageType,
    /// SchemaVersion, [`SCHEMA_VERSION`] in practice.
    pub schema_version: u32,
    /// CreatedDate, Unix epoch milliseconds; never 0.
    pub created_date: u64,
    /// SequenceNumber: the per-direction stream counter, 0 on acks and
    /// control messages.
    pub sequence_number: i64,
    /// Flags (SYN, FIN).
    pub flags: MessageFlags,
    /// MessageId; never the nil UUID.
    pub message_id: Uuid,
    /// PayloadType.
    pub payload_type: PayloadType,
    /// The payload bytes.
    pub payload: Vec<u8>,
}

impl ClientMessage {
    /// The wire bytes: HeaderLength 116, MessageType right-padded with
    /// spaces, MessageId halves swapped, SHA-256 digest of the payload
    /// (computed for an empty payload too).
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let name = self.message_type.as_str().as_bytes();
        if name.is_empty() {
            return Err(EncodeError::EmptyMessageType);
        }
        if name.len() > MESSAGE_TYPE_LEN {
            return Err(EncodeError::MessageTypeTooLong { len: name.len() });
        }
        if !name.iter().all(u8::is_ascii_graphic) {
            return Err(EncodeError::InvalidMessageType(
                self.message_type.as_str().to_owned(),
            ));
        }
        if self.created_date == 0 {
            return Err(EncodeError::ZeroCreatedDate);
        }
        if self.message_id.is_nil() {
            return Err(EncodeError::NilMessageId);
        }
        let payload_len =
            u32::try_from(self.payload.len()).map_err(|_| EncodeError::PayloadTooLong {
                len: self.payload.len(),
            })?;

        let mut out = Vec::with_capacity(PAYLOAD_OFFSET + self.payload.len());
        out.extend_from_slice(&HEADER_LENGTH.to_be_bytes());
        out.extend_from_slice(name);
        out.resize(TYPE_AT + MESSAGE_TYPE_LEN, b' ');
        out.extend_from_slice(&self.schema_version.to_be_bytes());
        out.extend_from_slice(&self.created_date.to_be_bytes());
        out.extend_from_slice(&self.sequence_number.to_be_bytes());
        out.extend_from_slice(&self.flags.bits().to_be_bytes());
        let id = self.message_id.as_bytes();
        out.extend_from_slice(&id[8..16]);
        out.extend_from_slice(&id[0..8]);
        out.extend_from_slice(&Sha256::digest(&self.payload));
        out.extend_from_slice(&self.payload_type.to_u32().to_be_bytes());
        out.extend_from_slice(&payload_len.to_be_bytes());
        out.extend_from_slice(&self.payload);
        Ok(out)
    }

    /// Parses one message, refusing anything a correct peer would not send.
    ///
    /// Rules (`ssm.md` §2.2, "be stricter"):
    /// - HeaderLength must be 116, and the message exactly
    ///   HeaderLength + 4 + PayloadLength bytes (the plugin only checks that
    ///   HeaderLength is not 0; the agent ignores PayloadLength);
    /// - MessageType: NULs and ASCII whitespace are stripped from both ends;
    ///   the rest must be non-empty printable ASCII without spaces;
    ///   unknown names decode to [`MessageType::Other`];
    /// - the digest is checked whenever the payload is non-empty, as the
    ///   plugin does. An empty payload carries no data to protect, and MGS
    ///   control messages may not fill the digest (unverified), so it is not
    ///   checked there;
    /// - CreatedDate must not be 0, except on `start_publication` and
    ///   `pause_publication`, which the plugin does not validate at all (what
    ///   MGS puts in them is unverified);
    /// - SchemaVersion, Flags, PayloadType and a nil MessageId are taken as
    ///   they come (the plugin does not check them either).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() < PAYLOAD_OFFSET {
            return Err(DecodeError::TooShort { len: bytes.len() });
        }
        let header_length = be_u32(bytes, 0);
        if header_length != HEADER_LENGTH {
            return Err(DecodeError::HeaderLength {
                found: header_length,
            });
        }
        let payload_length = be_u32(bytes, PAYLOAD_LEN_AT);
        // HeaderLength is 116 here, so the payload starts at 120.
        let payload_at = header_length as usize + 4;
        if usize::try_from(payload_length).ok() != bytes.len().checked_sub(payload_at) {
            return Err(DecodeError::LengthMismatch {
                payload_length,
                actual: bytes.len(),
            });
        }
        let message_type = decode_message_type(&bytes[TYPE_AT..TYPE_AT + MESSAGE_TYPE_LEN])?;
        let created_date = be_u64(bytes, DATE_AT);
        let is_publication = matches!(
            message_type,
            MessageType::StartPublication | MessageType::PausePublication
        );
        if created_date == 0 && !is_publication {
            return Err(DecodeError::ZeroCreatedDate);
        }
        let payload = &bytes[payload_at..];
        if !payload.is_empty() && Sha256::digest(payload)[..] != bytes[DIGEST_AT..DIGEST_AT + 32] {
            return Err(DecodeError::DigestMismatch);
        }
        let mut id = [0u8; 16];
        id[8..16].copy_from_slice(&bytes[ID_AT..ID_AT + 8]);
        id[0..8].copy_from_slice(&bytes[ID_AT + 8..ID_AT + 16]);
        Ok(Self {
            message_type,
            schema_version: be_u32(bytes, SCHEMA_AT),
            created_date,
            sequence_number: i64::from_be_bytes(array(bytes, SEQ_AT)),
            flags: MessageFlags(be_u64(bytes, FLAGS_AT)),
            message_id: Uuid::from_bytes(id),
            payload_type: PayloadType::from(be_u32(bytes, PAYLOAD_TYPE_AT)),
            payload: payload.to_vec(),
        })
    }
}

fn decode_message_type(field: &[u8]) -> Result<MessageType, DecodeError> {
    let strip = |b: &u8| *b == 0 || b.is_ascii_whitespace();
    let start = field.iter().position(|b| !strip(b));
    let Some(start) = start else {
        return Err(DecodeError::EmptyMessageType);
    };
    let end = field
        .iter()
        .rposition(|b| !strip(b))
        .map_or(start, |e| e + 1);
    let name = &field[start..end];
    if !name.iter().all(u8::is_ascii_graphic) {
        return Err(DecodeError::InvalidMessageType);
    }
    // All bytes are ASCII, so this cannot fail.
    let name = std::str::from_utf8(name).map_err(|_| DecodeError::InvalidMessageType)?;
    Ok(MessageType::from(name))
}

/// `N` bytes at `at`; the caller has checked the length.
fn array<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[at..at + N]);
    out
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(array(bytes, at))
}

fn be_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(array(bytes, at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> ClientMessage {
        ClientMessage {
            message_type: MessageType::InputStreamData,
            schema_version: 1,
            created_date: 1_503_434_274_948,
            sequence_number: 0,
            flags: MessageFlags::NONE,
            message_id: Uuid::from_u128(0xaaaaaaaa_bbbb_cccc_dddd_eeeeeeeeeeee),
            payload_type: PayloadType::Output,
            payload: b"hello\r".to_vec(),
        }
    }

    #[test]
    fn encoder_refuses_what_decoders_refuse() {
        let mut m = sample();
        m.message_id = Uuid::nil();
        assert_eq!(m.encode(), Err(EncodeError::NilMessageId));

        let mut m = sample();
        m.message_type = MessageType::from("x".repeat(33).as_str());
        assert_eq!(m.encode(), Err(EncodeError::MessageTypeTooLong { len: 33 }));
        m.message_type = MessageType::from("x".repeat(32).as_str());
        assert!(m.encode().is_ok());

        let mut m = sample();
        m.message_type = MessageType::Other(String::new());
        assert_eq!(m.encode(), Err(EncodeError::EmptyMessageType));
        m.message_type = MessageType::Other("two words".into());
        assert!(matches!(
            m.encode(),
            Err(EncodeError::InvalidMessageType(_))
        ));

        let mut m = sample();
        m.created_date = 0;
        assert_eq!(m.encode(), Err(EncodeError::ZeroCreatedDate));
    }

    #[test]
    fn message_type_is_stripped_of_nuls_and_whitespace() {
        let mut bytes = sample().encode().unwrap();
        let mut field = [0u8; 32];
        field[..4].copy_from_slice(b"\0 \t\n");
        field[4..21].copy_from_slice(b"input_stream_data");
        bytes[4..36].copy_from_slice(&field);
        let m = ClientMessage::decode(&bytes).unwrap();
        assert_eq!(m.message_type, MessageType::InputStreamData);

        bytes[4..36].copy_from_slice(&[0u8; 32]);
        assert_eq!(
            ClientMessage::decode(&bytes),
            Err(DecodeError::EmptyMessageType)
        );
        let mut field = [b' '; 32];
        field[..9].copy_from_slice(b"two\0words");
        bytes[4..36].copy_from_slice(&field);
        assert_eq!(
            ClientMessage::decode(&bytes),
            Err(DecodeError::InvalidMessageType)
        );
    }

    #[test]
    fn unknown_message_type_decodes_to_other() {
        let mut m = sample();
        m.message_type = MessageType::from("agent_session_state");
        let back = ClientMessage::decode(&m.encode().unwrap()).unwrap();
        assert_eq!(
            back.message_type,
            MessageType::Other("agent_session_state".into())
        );
    }

    #[test]
    fn header_and_length_rules() {
        let good = sample().encode().unwrap();
        assert_eq!(
            ClientMessage::decode(&good[..119]),
            Err(DecodeError::TooShort { len: 119 })
        );
        let mut bad = good.clone();
        bad[3] = 0x78;
        assert_eq!(
            ClientMessage::decode(&bad),
            Err(DecodeError::HeaderLength { found: 0x78 })
        );
        let mut longer = good.clone();
        longer.push(0);
        assert!(matches!(
            ClientMessage::decode(&longer),
            Err(DecodeError::LengthMismatch { .. })
        ));
        assert!(matches!(
            ClientMessage::decode(&good[..good.len() - 1]),
            Err(DecodeError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn empty_payload_digest_is_computed_but_publication_is_lenient() {
        let mut m = sample();
        m.payload.clear();
        let bytes = m.encode().unwrap();
        // SHA-256 of nothing.
        assert_eq!(
            hex::encode(&bytes[80..112]),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut zeroed = bytes.clone();
        zeroed[80..112].fill(0);
        assert!(ClientMessage::decode(&zeroed).is_ok());

        let mut pause = m.clone();
        pause.message_type = MessageType::PausePublication;
        let mut bytes = pause.encode().unwrap();
        bytes[40..48].fill(0);
        let back = ClientMessage::decode(&bytes).unwrap();
        assert_eq!(back.created_date, 0);
        assert_eq!(back.message_type, MessageType::PausePublication);
    }

    #[test]
    fn payload_type_and_flags_numbers() {
        for n in 0..=20u32 {
            assert_eq!(PayloadType::from(n).to_u32(), n);
        }
        assert_eq!(PayloadType::from(10), PayloadType::Flag);
        assert_eq!(PayloadType::from(13), PayloadType::Other(13));
        assert_eq!(MessageFlags::SYN | MessageFlags::FIN, MessageFlags::ACK);
        assert!(MessageFlags::ACK.contains(MessageFlags::FIN));
        assert!(!MessageFlags::SYN.contains(MessageFlags::FIN));
    }

    fn message_type() -> impl Strategy<Value = MessageType> {
        prop_oneof![
            Just(MessageType::InputStreamData),
            Just(MessageType::OutputStreamData),
            Just(MessageType::Acknowledge),
            Just(MessageType::ChannelClosed),
            Just(MessageType::StartPublication),
            Just(MessageType::PausePublication),
            "[!-~]{1,32}".prop_map(|s| MessageType::from(s.as_str())),
        ]
    }

    fn message() -> impl Strategy<Value = ClientMessage> {
        (
            message_type(),
            any::<u32>(),
            1..=u64::MAX,
            any::<i64>(),
            any::<u64>(),
            any::<u128>().prop_filter("not nil", |id| *id != 0),
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 0..600),
        )
            .prop_map(
                |(t, schema, date, seq, flags, id, pt, payload)| ClientMessage {
                    message_type: t,
                    schema_version: schema,
                    created_date: date,
                    sequence_number: seq,
                    flags: MessageFlags(flags),
                    message_id: Uuid::from_u128(id),
                    payload_type: PayloadType::from(pt),
                    payload,
                },
            )
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = ClientMessage::decode(&bytes);
        }

        #[test]
        fn decode_never_panics_on_near_valid_headers(
            m in message(),
            at in 0usize..120,
            byte in any::<u8>(),
        ) {
            let mut bytes = m.encode().unwrap();
            bytes[at] = byte;
            let _ = ClientMessage::decode(&bytes);
        }

        #[test]
        fn encode_decode_round_trip(m in message()) {
            let bytes = m.encode().unwrap();
            prop_assert_eq!(bytes.len(), 120 + m.payload.len());
            prop_assert_eq!(ClientMessage::decode(&bytes).unwrap(), m);
        }

        #[test]
        fn any_payload_change_is_caught(m in message(), at in any::<prop::sample::Index>(), x in 1..=255u8) {
            prop_assume!(!m.payload.is_empty());
            let mut bytes = m.encode().unwrap();
            let i = 120 + at.index(m.payload.len());
            bytes[i] ^= x;
            prop_assert_eq!(ClientMessage::decode(&bytes), Err(DecodeError::DigestMismatch));
        }
    }
}
