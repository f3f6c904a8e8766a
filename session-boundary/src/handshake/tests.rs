//! The handshake vectors of `boundary.md` §7 and the close-code table of
//! §4.4.

use prost::Message;

use super::*;

const TOFU: &str = "abcdefghijklmnopqrst";

fn result(limit: i32, left: i32, nanos: i32) -> Vec<u8> {
    HandshakeResult {
        expiration: Some(Timestamp {
            seconds: 1_700_000_000,
            nanos,
        }),
        connection_limit: limit,
        connections_left: left,
    }
    .encode_to_vec()
}

#[test]
fn client_handshake_vectors() {
    assert_eq!(
        hex::encode(client_handshake(TOFU, false)),
        "52146162636465666768696a6b6c6d6e6f7071727374"
    );
    assert_eq!(
        hex::encode(client_handshake(TOFU, true)),
        "52146162636465666768696a6b6c6d6e6f7071727374a00101"
    );
}

#[test]
fn handshake_result_vectors_both_ways() {
    assert_eq!(
        hex::encode(
            Timestamp {
                seconds: 1_700_000_000,
                nanos: 0
            }
            .encode_to_vec()
        ),
        "0880e2cfaa06"
    );
    let cases = [
        (
            -1,
            -1,
            0,
            "52060880e2cfaa06a001ffffffffffffffffff01f001ffffffffffffffffff01",
        ),
        (1, 0, 0, "52060880e2cfaa06a00101"),
        (
            5,
            4,
            500_000_000,
            "520c0880e2cfaa061080cab5ee01a00105f00104",
        ),
    ];
    for (limit, left, nanos, vector) in cases {
        assert_eq!(hex::encode(result(limit, left, nanos)), vector);
        let decoded = handshake_result(&hex::decode(vector).unwrap()).expect("decodes");
        assert_eq!(decoded.connection_limit, u32::try_from(limit).ok());
        assert_eq!(decoded.connections_left, u32::try_from(left).ok());
        assert_eq!(
            decoded.expiration,
            Some(
                OffsetDateTime::from_unix_timestamp_nanos(
                    1_700_000_000_000_000_000 + i128::from(nanos)
                )
                .unwrap()
            )
        );
    }
    assert!(handshake_result(&[0xff]).is_err());
}

#[test]
fn tofu_tokens_are_20_base62_characters_and_differ() {
    let a = tofu_token();
    let b = tofu_token();
    assert_eq!(a.len(), TOFU_LEN);
    assert!(a.chars().all(|c| c.is_ascii_alphanumeric()), "{a}");
    assert_ne!(a, b);
}

#[test]
fn close_codes_mean_what_the_table_says() {
    use WorkerClose::*;
    let cases = [
        (1000, "done", Done, false),
        (1000, "session canceled", Canceled, true),
        (1011, "unable to cancel session", CancelFailed, false),
        (1008, "tofu token not allowed", InUse, true),
        (1011, "refusing to activate session", NotActivatable, true),
        (1011, "unable to activate session", NotActivatable, true),
        (1011, "unable to authorize connection", LimitReached, false),
        (
            1003,
            "invalid tofu token",
            Refused("1003 invalid tofu token".into()),
            true,
        ),
        (
            1008,
            "invalid handshake received",
            Refused("1008 invalid handshake received".into()),
            true,
        ),
        (
            3000,
            "unable to get endpoint dialer",
            ConnectionFailed("3000 unable to get endpoint dialer".into()),
            false,
        ),
    ];
    for (code, reason, meaning, ends) in cases {
        let got = WorkerClose::from_close(code, reason);
        assert_eq!(got, meaning, "{code} {reason}");
        assert_eq!(got.ends_the_proxy(), ends, "{code} {reason}");
    }
}
