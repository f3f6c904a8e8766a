//! The golden vectors of `ssm.md` §6 (S1–S6 and the negative vectors):
//! encoded from fields byte for byte, and decoded back to the same fields.
//! The smux vectors are in `smux.rs`.

use uuid::Uuid;

use super::message::{ClientMessage, DecodeError, MessageFlags, MessageType, PayloadType};
use super::payload::{
    Acknowledgement, ActionStatus, ActionType, FlagValue, HandshakeRequest, HandshakeResponse,
    PortProperties, ProcessedClientAction, Size, to_json,
};

const CREATED: u64 = 1_503_434_274_948;

fn hex(lines: &str) -> Vec<u8> {
    let joined: String = lines.split_whitespace().collect();
    hex::decode(joined).unwrap()
}

fn id(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap()
}

/// Encodes `m`, compares with `expected`, decodes `expected` back to `m`.
fn check(m: &ClientMessage, expected: &[u8]) {
    let encoded = m.encode().unwrap();
    assert_eq!(hex::encode(&encoded), hex::encode(expected));
    assert_eq!(&ClientMessage::decode(expected).unwrap(), m);
}

const S1: &str = "
0000007461636b6e6f776c656467652020202020202020202020202020202020
20202020000000010000015e0baa788400000000000000000000000000000003
44445555555555551111111122223333713a0a17057de630213f7292907ce384
62812ea213a29366f537f68c6ab60e8500000000000000b07b2241636b6e6f77
6c65646765644d65737361676554797065223a226f75747075745f7374726561
6d5f64617461222c2241636b6e6f776c65646765644d6573736167654964223a
2264643031653536622d666634382d343833652d613530382d62356630373366
3331623136222c2241636b6e6f776c65646765644d6573736167655365717565
6e63654e756d626572223a302c22497353657175656e7469616c4d6573736167
65223a747275657d";

const S2: &str = "
00000074696e7075745f73747265616d5f646174612020202020202020202020
20202020000000010000015e0baa788400000000000000000000000000000000
ddddeeeeeeeeeeeeaaaaaaaabbbbcccc64cba2a711974b12acb53bf093ecc488
b0bf9b5c20e12d5dad5f249690c7319f000000010000000668656c6c6f0d";

const S3: &str = "
00000074696e7075745f73747265616d5f646174612020202020202020202020
20202020000000010000015e0baa788400000000000000050000000000000000
ddddeeeeeeeeeeeeaaaaaaaabbbbcccc433ebf5bc03dffa38536673207a21281
612cef5faa9bc7a4d5b9be2fdb12cf1a0000000a0000000400000002";

const S4: &str = "
00000074696e7075745f73747265616d5f646174612020202020202020202020
20202020000000010000015e0baa788400000000000000010000000000000000
0123456789abcdef0123456789abcdefd53ca1ea7dce87c11432052a8550ed26
15cf715ca843c89710ed83325b691cba00000003000000157b22636f6c73223a
38302c22726f7773223a32347d";

const S5: &str = "
00000074696e7075745f73747265616d5f646174612020202020202020202020
20202020000000010000015e0baa788400000000000000000000000000000000
80000000000000010000000000004000394b642b34e7f7a9cd52edc613256e4c
7250608c6a5809b89b239d01577d4a0500000006000000937b22436c69656e74
56657273696f6e223a22312e322e3639342e30222c2250726f63657373656443
6c69656e74416374696f6e73223a5b7b22416374696f6e54797065223a225365
7373696f6e54797065222c22416374696f6e537461747573223a312c22416374
696f6e526573756c74223a6e756c6c2c224572726f72223a22227d5d2c224572
726f7273223a6e756c6c7d";

const S6: &str = "
000000746f75747075745f73747265616d5f6461746120202020202020202020
20202020000000010000015e0baa788400000000000000000000000000000001
a508b5f073f31b16dd01e56bff48483e7d929a81f4183ed4766362bf7fd31d3f
f084f05ac283c9e564018e7713cff37f00000005000000d37b224167656e7456
657273696f6e223a22332e332e313134322e30222c2252657175657374656443
6c69656e74416374696f6e73223a5b7b22416374696f6e54797065223a225365
7373696f6e54797065222c22416374696f6e506172616d6574657273223a7b22
53657373696f6e54797065223a22506f7274222c2250726f7065727469657322
3a7b226c6f63616c506f72744e756d626572223a2230222c22706f72744e756d
626572223a223232222c2274797065223a224c6f63616c506f7274466f727761
7264696e67227d7d7d5d7d";

fn s2_fields() -> ClientMessage {
    ClientMessage::input_stream_data(
        0,
        id("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"),
        CREATED,
        PayloadType::Output,
        b"hello\r".to_vec(),
    )
}

#[test]
fn s1_acknowledge() {
    let acked = ClientMessage {
        message_type: MessageType::OutputStreamData,
        schema_version: 1,
        created_date: CREATED,
        sequence_number: 0,
        flags: MessageFlags::SYN,
        message_id: id("dd01e56b-ff48-483e-a508-b5f073f31b16"),
        payload_type: PayloadType::HandshakeRequest,
        payload: b"{}".to_vec(),
    };
    let ack = Acknowledgement::of(&acked);
    let m = ack.to_message(id("11111111-2222-3333-4444-555555555555"), CREATED);
    assert_eq!(m.payload.len(), 176);
    let bytes = hex(S1);
    assert_eq!(bytes.len(), 296);
    check(&m, &bytes);
    let decoded = ClientMessage::decode(&bytes).unwrap();
    assert_eq!(Acknowledgement::from_message(&decoded).unwrap(), ack);
}

#[test]
fn s2_input_hello() {
    let bytes = hex(S2);
    assert_eq!(bytes.len(), 126);
    check(&s2_fields(), &bytes);
}

#[test]
fn s3_flag_terminate_session() {
    let m = ClientMessage::input_stream_data(
        5,
        id("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"),
        CREATED,
        PayloadType::Flag,
        FlagValue::TerminateSession.to_payload().to_vec(),
    );
    let bytes = hex(S3);
    assert_eq!(bytes.len(), 124);
    check(&m, &bytes);
    let decoded = ClientMessage::decode(&bytes).unwrap();
    assert_eq!(decoded.flag().unwrap(), FlagValue::TerminateSession);
}

/// S4's MessageId has two equal halves (`0123456789abcdef` twice), so,
/// despite what `ssm.md` says, it cannot tell a swapped order from an
/// unswapped one; S1, S2, S3, S5 and S6 do.
#[test]
fn s4_size() {
    let size = Size { cols: 80, rows: 24 };
    let m = ClientMessage::input_stream_data(
        1,
        id("01234567-89ab-cdef-0123-456789abcdef"),
        CREATED,
        PayloadType::Size,
        to_json(&size).unwrap(),
    );
    let bytes = hex(S4);
    assert_eq!(bytes.len(), 141);
    check(&m, &bytes);
    let decoded = ClientMessage::decode(&bytes).unwrap();
    assert_eq!(
        decoded.json_payload::<Size>(PayloadType::Size).unwrap(),
        size
    );
}

#[test]
fn s5_handshake_response_from_the_struct() {
    let response = HandshakeResponse {
        client_version: "1.2.694.0".into(),
        processed_client_actions: vec![ProcessedClientAction {
            action_type: ActionType::SessionType,
            action_status: ActionStatus::Success,
            action_result: None,
            error: String::new(),
        }],
        errors: None,
    };
    let payload = to_json(&response).unwrap();
    assert_eq!(payload.len(), 147);
    let m = ClientMessage::input_stream_data(
        0,
        id("00000000-0000-4000-8000-000000000001"),
        CREATED,
        PayloadType::HandshakeResponse,
        payload,
    );
    let bytes = hex(S5);
    assert_eq!(bytes.len(), 267);
    check(&m, &bytes);
    let decoded = ClientMessage::decode(&bytes).unwrap();
    let parsed: HandshakeResponse = decoded
        .json_payload(PayloadType::HandshakeResponse)
        .unwrap();
    assert_eq!(parsed, response);
}

#[test]
fn s6_agent_handshake_request() {
    let payload = br#"{"AgentVersion":"3.3.1142.0","RequestedClientActions":[{"ActionType":"SessionType","ActionParameters":{"SessionType":"Port","Properties":{"localPortNumber":"0","portNumber":"22","type":"LocalPortForwarding"}}}]}"#;
    assert_eq!(payload.len(), 211);
    let m = ClientMessage {
        message_type: MessageType::OutputStreamData,
        schema_version: 1,
        created_date: CREATED,
        sequence_number: 0,
        flags: MessageFlags::SYN,
        message_id: id("dd01e56b-ff48-483e-a508-b5f073f31b16"),
        payload_type: PayloadType::HandshakeRequest,
        payload: payload.to_vec(),
    };
    let bytes = hex(S6);
    assert_eq!(bytes.len(), 331);
    check(&m, &bytes);

    let decoded = ClientMessage::decode(&bytes).unwrap();
    let request: HandshakeRequest = decoded.json_payload(PayloadType::HandshakeRequest).unwrap();
    assert_eq!(request.agent_version, "3.3.1142.0");
    assert_eq!(request.requested_client_actions.len(), 1);
    let action = &request.requested_client_actions[0];
    assert_eq!(action.action_type, ActionType::SessionType);
    let session = action.session_type().unwrap();
    assert_eq!(session.session_type, "Port");
    assert_eq!(
        session.port_properties().unwrap(),
        PortProperties {
            local_port_number: Some("0".into()),
            port_number: Some("22".into()),
            kind: Some("LocalPortForwarding".into()),
            host: None,
        }
    );
}

#[test]
fn negative_vectors() {
    let good = hex(S2);
    assert!(ClientMessage::decode(&good).is_ok());

    let mut digest = good.clone();
    *digest.last_mut().unwrap() = 0x0e;
    assert_eq!(
        ClientMessage::decode(&digest),
        Err(DecodeError::DigestMismatch)
    );

    let mut length = good.clone();
    length[116..120].copy_from_slice(&[0, 0, 0, 7]);
    assert_eq!(
        ClientMessage::decode(&length),
        Err(DecodeError::LengthMismatch {
            payload_length: 7,
            actual: 126
        })
    );

    let mut empty_type = good.clone();
    empty_type[4..36].fill(0x20);
    assert_eq!(
        ClientMessage::decode(&empty_type),
        Err(DecodeError::EmptyMessageType)
    );

    let mut no_date = good;
    no_date[40..48].fill(0);
    assert_eq!(
        ClientMessage::decode(&no_date),
        Err(DecodeError::ZeroCreatedDate)
    );
}
