//! Payloads carried inside [`ClientMessage`]s: acknowledgements (`ssm.md`
//! §2.5), the handshake JSON (§2.7), terminal size (§2.9), `channel_closed`
//! (§2.10) and flag values (§2.4).
//!
//! JSON is always parsed with serde, never compared as bytes: peers write it
//! with Go's `encoding/json`, and only the keys matter. What we send is
//! compact, with the keys in the order Go writes them (the struct field
//! order here), so that our bytes equal the golden vectors.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use super::message::{ClientMessage, MessageFlags, MessageType, PayloadType, SCHEMA_VERSION};

/// Why a payload could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The message is not of the type this payload comes in.
    #[error("expected a {expected} message, got {found}")]
    UnexpectedMessageType {
        /// The type the payload belongs to.
        expected: MessageType,
        /// The message's type.
        found: MessageType,
    },
    /// The payload type is not the one asked for.
    #[error("expected payload type {expected}, got {found}")]
    UnexpectedPayloadType {
        /// The payload type asked for.
        expected: PayloadType,
        /// The message's payload type.
        found: PayloadType,
    },
    /// A Flag payload that is not exactly 4 bytes.
    #[error("a flag payload is 4 bytes, got {len}")]
    FlagLength {
        /// The payload length.
        len: usize,
    },
    /// The JSON does not have the expected shape.
    #[error("malformed JSON payload: {0}")]
    Json(#[from] serde_json::Error),
}

/// The value of a Flag payload (PayloadType 10): a big-endian u32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlagValue {
    /// 1: the client's local TCP connection closed (basic port forwarding).
    DisconnectToPort,
    /// 2: end the session (agents newer than 2.3.722.0).
    TerminateSession,
    /// 3: the agent could not dial the port (mux port forwarding).
    ConnectToPortError,
    /// Any other value.
    Other(u32),
}

impl FlagValue {
    /// The number on the wire.
    pub fn to_u32(self) -> u32 {
        match self {
            Self::DisconnectToPort => 1,
            Self::TerminateSession => 2,
            Self::ConnectToPortError => 3,
            Self::Other(n) => n,
        }
    }

    /// The 4-byte payload.
    pub fn to_payload(self) -> [u8; 4] {
        self.to_u32().to_be_bytes()
    }

    /// Reads a 4-byte payload.
    pub fn from_payload(payload: &[u8]) -> Result<Self, PayloadError> {
        let bytes: [u8; 4] = payload
            .try_into()
            .map_err(|_| PayloadError::FlagLength { len: payload.len() })?;
        Ok(Self::from(u32::from_be_bytes(bytes)))
    }
}

impl From<u32> for FlagValue {
    fn from(n: u32) -> Self {
        match n {
            1 => Self::DisconnectToPort,
            2 => Self::TerminateSession,
            3 => Self::ConnectToPortError,
            other => Self::Other(other),
        }
    }
}

impl Serialize for MessageType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MessageType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Ok(Self::from(name.as_str()))
    }
}

/// The JSON payload of an `acknowledge` message (`ssm.md` §2.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Acknowledgement {
    /// The acknowledged message's type.
    pub acknowledged_message_type: MessageType,
    /// The acknowledged message's id; written canonical lowercase hyphenated.
    pub acknowledged_message_id: Uuid,
    /// The acknowledged message's sequence number: what the receiver of the
    /// ack goes by.
    pub acknowledged_message_sequence_number: i64,
    /// Always true in practice.
    pub is_sequential_message: bool,
}

impl Acknowledgement {
    /// The acknowledgement of `message`.
    pub fn of(message: &ClientMessage) -> Self {
        Self {
            acknowledged_message_type: message.message_type.clone(),
            acknowledged_message_id: message.message_id,
            acknowledged_message_sequence_number: message.sequence_number,
            is_sequential_message: true,
        }
    }

    /// The `acknowledge` message carrying this payload: SchemaVersion 1,
    /// sequence number 0, flags 3, PayloadType 0. `message_id` must be a new
    /// random id.
    pub fn to_message(&self, message_id: Uuid, created_date: u64) -> ClientMessage {
        ClientMessage {
            message_type: MessageType::Acknowledge,
            schema_version: SCHEMA_VERSION,
            created_date,
            sequence_number: 0,
            flags: MessageFlags::ACK,
            message_id,
            payload_type: PayloadType::Undefined,
            // Strings, a UUID, an integer and a bool: serde_json cannot
            // fail on them, whatever their values.
            payload: serde_json::to_vec(self).expect("an acknowledgement always serializes"),
        }
    }

    /// Reads the payload of an `acknowledge` message.
    pub fn from_message(message: &ClientMessage) -> Result<Self, PayloadError> {
        if message.message_type != MessageType::Acknowledge {
            return Err(PayloadError::UnexpectedMessageType {
                expected: MessageType::Acknowledge,
                found: message.message_type.clone(),
            });
        }
        Ok(serde_json::from_slice(&message.payload)?)
    }
}

impl ClientMessage {
    /// An `input_stream_data` message (flags 0) with SchemaVersion 1.
    pub fn input_stream_data(
        sequence_number: i64,
        message_id: Uuid,
        created_date: u64,
        payload_type: PayloadType,
        payload: Vec<u8>,
    ) -> Self {
        Self {
            message_type: MessageType::InputStreamData,
            schema_version: SCHEMA_VERSION,
            created_date,
            sequence_number,
            flags: MessageFlags::NONE,
            message_id,
            payload_type,
            payload,
        }
    }

    /// Parses the JSON payload as `T`, after checking that the payload type
    /// is `expected`.
    pub fn json_payload<T: DeserializeOwned>(
        &self,
        expected: PayloadType,
    ) -> Result<T, PayloadError> {
        if self.payload_type != expected {
            return Err(PayloadError::UnexpectedPayloadType {
                expected,
                found: self.payload_type,
            });
        }
        Ok(serde_json::from_slice(&self.payload)?)
    }

    /// Reads a Flag payload (PayloadType 10).
    pub fn flag(&self) -> Result<FlagValue, PayloadError> {
        if self.payload_type != PayloadType::Flag {
            return Err(PayloadError::UnexpectedPayloadType {
                expected: PayloadType::Flag,
                found: self.payload_type,
            });
        }
        FlagValue::from_payload(&self.payload)
    }
}

/// Compact JSON (no spaces, keys in struct field order), as a payload to
/// send: e.g. a [`HandshakeResponse`] or a [`Size`].
pub fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, PayloadError> {
    Ok(serde_json::to_vec(value)?)
}

/// An `ActionType` of the handshake.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ActionType {
    /// `SessionType`: what kind of session the agent runs.
    SessionType,
    /// `KMSEncryption`: the agent asks for KMS encryption.
    KmsEncryption,
    /// Any other action; answer it Unsupported.
    Other(String),
}

impl ActionType {
    /// The name in the JSON.
    pub fn as_str(&self) -> &str {
        match self {
            Self::SessionType => "SessionType",
            Self::KmsEncryption => "KMSEncryption",
            Self::Other(name) => name,
        }
    }
}

impl Serialize for ActionType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ActionType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match String::deserialize(d)?.as_str() {
            "SessionType" => Self::SessionType,
            "KMSEncryption" => Self::KmsEncryption,
            other => Self::Other(other.to_owned()),
        })
    }
}

/// The agent's HandshakeRequest (PayloadType 5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HandshakeRequest {
    /// The agent's version, dotted numeric (e.g. `3.3.1142.0`).
    pub agent_version: String,
    /// What the agent asks the client to do, answered in order.
    #[serde(default)]
    pub requested_client_actions: Vec<RequestedClientAction>,
}

/// One entry of [`HandshakeRequest::requested_client_actions`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RequestedClientAction {
    /// The action.
    pub action_type: ActionType,
    /// Its parameters, whose shape depends on the action: read them with
    /// [`RequestedClientAction::session_type`] or
    /// [`RequestedClientAction::kms_encryption`].
    #[serde(default)]
    pub action_parameters: serde_json::Value,
}

impl RequestedClientAction {
    /// The parameters of a `SessionType` action.
    pub fn session_type(&self) -> Result<SessionTypeRequest, PayloadError> {
        Ok(SessionTypeRequest::deserialize(&self.action_parameters)?)
    }

    /// The parameters of a `KMSEncryption` action.
    pub fn kms_encryption(&self) -> Result<KmsEncryptionRequest, PayloadError> {
        Ok(KmsEncryptionRequest::deserialize(&self.action_parameters)?)
    }
}

/// The parameters of a `SessionType` action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SessionTypeRequest {
    /// `Standard_Stream`, `Port`, `InteractiveCommands` or
    /// `NonInteractiveCommands`.
    pub session_type: String,
    /// Session-type specific; for `Port`, read them with
    /// [`SessionTypeRequest::port_properties`].
    #[serde(default)]
    pub properties: serde_json::Value,
}

impl SessionTypeRequest {
    /// The properties of a `Port` session.
    pub fn port_properties(&self) -> Result<PortProperties, PayloadError> {
        Ok(PortProperties::deserialize(&self.properties)?)
    }
}

/// The properties of a `Port` session. Every field is optional: `type` is
/// absent for `AWS-StartSSHSession`, `host` for local port forwarding.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortProperties {
    /// `localPortNumber`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_port_number: Option<String>,
    /// `portNumber`: the port the agent dials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_number: Option<String>,
    /// `type`: `LocalPortForwarding` when smux may be used.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `host`: the remote host (`AWS-StartPortForwardingSessionToRemoteHost`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// The parameters of a `KMSEncryption` action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KmsEncryptionRequest {
    /// The KMS key to generate the data key with.
    #[serde(rename = "KMSKeyId")]
    pub kms_key_id: String,
}

/// The status of a processed action: 1 Success, 2 Failed, 3 Unsupported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionStatus {
    /// 1.
    Success,
    /// 2: the agent cancels the session.
    Failed,
    /// 3: the agent cancels the session; say why in `Error`.
    Unsupported,
    /// Any other number.
    Other(i64),
}

impl ActionStatus {
    /// The number in the JSON.
    pub fn to_i64(self) -> i64 {
        match self {
            Self::Success => 1,
            Self::Failed => 2,
            Self::Unsupported => 3,
            Self::Other(n) => n,
        }
    }
}

impl Serialize for ActionStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.to_i64())
    }
}

impl<'de> Deserialize<'de> for ActionStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match i64::deserialize(d)? {
            1 => Self::Success,
            2 => Self::Failed,
            3 => Self::Unsupported,
            n => Self::Other(n),
        })
    }
}

/// The client's HandshakeResponse (PayloadType 6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HandshakeResponse {
    /// The version the agent picks mux or basic port mode by; dotted numeric.
    pub client_version: String,
    /// One entry per requested action, in the same order.
    pub processed_client_actions: Vec<ProcessedClientAction>,
    /// Errors, written `null` when `None`.
    #[serde(default)]
    pub errors: Option<Vec<String>>,
}

/// One entry of [`HandshakeResponse::processed_client_actions`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProcessedClientAction {
    /// The action answered.
    pub action_type: ActionType,
    /// Whether it was done.
    pub action_status: ActionStatus,
    /// Action-specific result (the KMS ciphertext); `null` when `None`.
    #[serde(default)]
    pub action_result: Option<serde_json::Value>,
    /// Why it failed; empty on success.
    #[serde(default)]
    pub error: String,
}

/// The agent's HandshakeComplete (PayloadType 7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HandshakeComplete {
    /// How long the handshake took, in nanoseconds.
    #[serde(default)]
    pub handshake_time_to_complete: i64,
    /// A text to show the user; empty unless KMS is on.
    #[serde(default)]
    pub customer_message: String,
}

/// The KMS challenge (PayloadType 8 from the agent, 9 back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptionChallenge {
    /// Base64 bytes.
    #[serde(rename = "Challenge")]
    pub challenge: String,
}

/// A terminal size (PayloadType 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Size {
    /// Columns.
    pub cols: u32,
    /// Rows.
    pub rows: u32,
}

/// The payload of `channel_closed`: the session is over. Fields MGS leaves
/// out read as empty (`CreatedDate` is a string there).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ChannelClosed {
    /// MGS's id of the message.
    pub message_id: String,
    /// When, as MGS writes it.
    pub created_date: String,
    /// The destination.
    pub destination_id: String,
    /// The session.
    pub session_id: String,
    /// `channel_closed`.
    pub message_type: String,
    /// 1.
    pub schema_version: u32,
    /// An optional reason to show the user.
    pub output: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_values() {
        assert_eq!(FlagValue::TerminateSession.to_payload(), [0, 0, 0, 2]);
        assert_eq!(
            FlagValue::from_payload(&[0, 0, 0, 1]).unwrap(),
            FlagValue::DisconnectToPort
        );
        assert_eq!(
            FlagValue::from_payload(&[0, 0, 0, 3]).unwrap(),
            FlagValue::ConnectToPortError
        );
        assert_eq!(FlagValue::from(9), FlagValue::Other(9));
        assert!(matches!(
            FlagValue::from_payload(&[0, 0, 2]),
            Err(PayloadError::FlagLength { len: 3 })
        ));
    }

    #[test]
    fn acknowledgement_round_trip_and_id_format() {
        let acked = ClientMessage {
            message_type: MessageType::OutputStreamData,
            schema_version: 1,
            created_date: 1,
            sequence_number: 17,
            flags: MessageFlags::NONE,
            message_id: Uuid::from_u128(0xDD01E56B_FF48_483E_A508_B5F073F31B16),
            payload_type: PayloadType::Output,
            payload: vec![1],
        };
        let ack = Acknowledgement::of(&acked);
        let json = String::from_utf8(to_json(&ack).unwrap()).unwrap();
        assert!(json.contains(r#""AcknowledgedMessageId":"dd01e56b-ff48-483e-a508-b5f073f31b16""#));
        let message = ack.to_message(Uuid::from_u128(7), 2);
        assert_eq!(message.flags, MessageFlags::ACK);
        assert_eq!(message.payload_type, PayloadType::Undefined);
        assert_eq!(Acknowledgement::from_message(&message).unwrap(), ack);
        assert!(matches!(
            Acknowledgement::from_message(&acked),
            Err(PayloadError::UnexpectedMessageType { .. })
        ));
    }

    #[test]
    fn json_is_parsed_not_compared() {
        // Spaces, other key order, unknown keys.
        let json = br#"{ "IsSequentialMessage" : true, "Extra": 1,
            "AcknowledgedMessageSequenceNumber": 4,
            "AcknowledgedMessageId": "DD01E56B-FF48-483E-A508-B5F073F31B16",
            "AcknowledgedMessageType": "input_stream_data" }"#;
        let ack: Acknowledgement = serde_json::from_slice(json).unwrap();
        assert_eq!(ack.acknowledged_message_type, MessageType::InputStreamData);
        assert_eq!(ack.acknowledged_message_sequence_number, 4);
    }

    #[test]
    fn handshake_shapes() {
        let complete: HandshakeComplete = serde_json::from_str(
            r#"{"HandshakeTimeToComplete":1500000,"CustomerMessage":"This session is encrypted using AWS KMS."}"#,
        )
        .unwrap();
        assert_eq!(complete.handshake_time_to_complete, 1_500_000);

        let request: HandshakeRequest = serde_json::from_str(
            r#"{"AgentVersion":"3.3.1142.0","RequestedClientActions":[
            {"ActionType":"KMSEncryption","ActionParameters":{"KMSKeyId":"arn:aws:kms:x"}},
            {"ActionType":"Later","ActionParameters":null}]}"#,
        )
        .unwrap();
        let kms = &request.requested_client_actions[0];
        assert_eq!(kms.action_type, ActionType::KmsEncryption);
        assert_eq!(kms.kms_encryption().unwrap().kms_key_id, "arn:aws:kms:x");
        assert!(kms.session_type().is_err());
        assert_eq!(
            request.requested_client_actions[1].action_type,
            ActionType::Other("Later".into())
        );

        let size = to_json(&Size { cols: 80, rows: 24 }).unwrap();
        assert_eq!(size, br#"{"cols":80,"rows":24}"#);
    }

    #[test]
    fn channel_closed_with_missing_fields() {
        let closed: ChannelClosed = serde_json::from_str(
            r#"{"MessageType":"channel_closed","SchemaVersion":1,"SessionId":"s-1","Output":"Session terminated"}"#,
        )
        .unwrap();
        assert_eq!(closed.output, "Session terminated");
        assert_eq!(closed.created_date, "");
    }

    #[test]
    fn wrong_payload_type_is_refused() {
        let m = ClientMessage::input_stream_data(
            0,
            Uuid::from_u128(1),
            1,
            PayloadType::Output,
            b"{}".to_vec(),
        );
        assert!(matches!(
            m.json_payload::<Size>(PayloadType::Size),
            Err(PayloadError::UnexpectedPayloadType { .. })
        ));
        assert!(m.flag().is_err());
    }
}
