//! The connect handshake messages (`worker.proxy.v1`, `boundary.md` §4.3),
//! derived by hand with prost from the field numbers of the reference.

/// `google.protobuf.Timestamp`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds within the second.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// `HANDSHAKECOMMAND_SESSION_CANCEL`.
pub const SESSION_CANCEL: i32 = 1;

/// The client's first message: `ClientHandshake{tofu_token = 10, command = 20}`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ClientHandshake {
    /// The client's TOFU token (20 base62 characters).
    #[prost(string, tag = "10")]
    pub tofu_token: String,
    /// 0 = none, [`SESSION_CANCEL`] = cancel the session.
    #[prost(int32, tag = "20")]
    pub command: i32,
}

/// The worker's answer: `HandshakeResult{expiration = 10,
/// connection_limit = 20, connections_left = 30}`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct HandshakeResult {
    /// The session's expiration.
    #[prost(message, optional, tag = "10")]
    pub expiration: Option<Timestamp>,
    /// The session's connection limit, −1 = unlimited.
    #[prost(int32, tag = "20")]
    pub connection_limit: i32,
    /// Connections left after this one, −1 = unlimited.
    #[prost(int32, tag = "30")]
    pub connections_left: i32,
}

impl Timestamp {
    /// The timestamp of `at`.
    pub fn from_time(at: time::OffsetDateTime) -> Self {
        Self {
            seconds: at.unix_timestamp(),
            nanos: i32::try_from(at.nanosecond()).unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    // boundary.md §7.
    #[test]
    fn golden_vectors() {
        let tofu = "abcdefghijklmnopqrst".to_owned();
        let hello = ClientHandshake {
            tofu_token: tofu.clone(),
            command: 0,
        };
        assert_eq!(
            hex(&hello.encode_to_vec()),
            "52146162636465666768696a6b6c6d6e6f7071727374"
        );
        let cancel = ClientHandshake {
            tofu_token: tofu,
            command: SESSION_CANCEL,
        };
        let bytes = cancel.encode_to_vec();
        assert_eq!(
            hex(&bytes),
            "52146162636465666768696a6b6c6d6e6f7071727374a00101"
        );
        assert_eq!(ClientHandshake::decode(bytes.as_slice()).unwrap(), cancel);
        let ts = |seconds, nanos| Some(Timestamp { seconds, nanos });
        let cases = [
            (
                HandshakeResult {
                    expiration: ts(1_700_000_000, 0),
                    connection_limit: -1,
                    connections_left: -1,
                },
                "52060880e2cfaa06a001ffffffffffffffffff01f001ffffffffffffffffff01",
            ),
            (
                HandshakeResult {
                    expiration: ts(1_700_000_000, 0),
                    connection_limit: 1,
                    connections_left: 0,
                },
                "52060880e2cfaa06a00101",
            ),
            (
                HandshakeResult {
                    expiration: ts(1_700_000_000, 500_000_000),
                    connection_limit: 5,
                    connections_left: 4,
                },
                "520c0880e2cfaa061080cab5ee01a00105f00104",
            ),
        ];
        for (message, want) in cases {
            assert_eq!(hex(&message.encode_to_vec()), want);
        }
        assert!(ClientHandshake::decode(&[0xff_u8][..]).is_err());
    }
}
