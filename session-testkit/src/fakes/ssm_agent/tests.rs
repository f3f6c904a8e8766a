//! The fake's codec against the golden vectors of `ssm.md` §6, its
//! handshake rules, and the smux servers (`async_smux`, the smux-xtaci
//! harness) against the smux v1 vectors.

use std::cmp::Ordering;

use serde_json::{Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use super::codec::{ClientMessage, DecodeError, payload};
use super::handshake::{self, SessionKind};

const CREATED: u64 = 1_503_434_274_948;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn uuid(s: &str) -> Uuid {
    Uuid::parse_str(s).expect("uuid")
}

fn message(
    kind: &str,
    seq: i64,
    flags: u64,
    id: &str,
    payload_type: u32,
    body: &[u8],
) -> ClientMessage {
    ClientMessage {
        message_type: kind.into(),
        schema_version: 1,
        created_date: CREATED,
        sequence_number: seq,
        flags,
        message_id: uuid(id),
        payload_type,
        payload: body.to_vec(),
    }
}

/// Encodes to `wire` byte for byte and decodes back (strict and lenient).
fn check(msg: &ClientMessage, wire: &str) {
    let wire = hex(wire);
    assert_eq!(msg.encode(), wire, "{}", msg.message_type);
    assert_eq!(&ClientMessage::decode(&wire, true).expect("strict"), msg);
    assert_eq!(&ClientMessage::decode(&wire, false).expect("lenient"), msg);
}

const S1: &str = "0000007461636b6e6f776c656467652020202020202020202020202020202020
20202020000000010000015e0baa788400000000000000000000000000000003
44445555555555551111111122223333713a0a17057de630213f7292907ce384
62812ea213a29366f537f68c6ab60e8500000000000000b07b2241636b6e6f77
6c65646765644d65737361676554797065223a226f75747075745f7374726561
6d5f64617461222c2241636b6e6f776c65646765644d6573736167654964223a
2264643031653536622d666634382d343833652d613530382d62356630373366
3331623136222c2241636b6e6f776c65646765644d6573736167655365717565
6e63654e756d626572223a302c22497353657175656e7469616c4d6573736167
65223a747275657d";

const S2: &str = "00000074696e7075745f73747265616d5f646174612020202020202020202020
20202020000000010000015e0baa788400000000000000000000000000000000
ddddeeeeeeeeeeeeaaaaaaaabbbbcccc64cba2a711974b12acb53bf093ecc488
b0bf9b5c20e12d5dad5f249690c7319f000000010000000668656c6c6f0d";

const S3: &str = "00000074696e7075745f73747265616d5f646174612020202020202020202020
20202020000000010000015e0baa788400000000000000050000000000000000
ddddeeeeeeeeeeeeaaaaaaaabbbbcccc433ebf5bc03dffa38536673207a21281
612cef5faa9bc7a4d5b9be2fdb12cf1a0000000a0000000400000002";

const S4: &str = "00000074696e7075745f73747265616d5f646174612020202020202020202020
20202020000000010000015e0baa788400000000000000010000000000000000
0123456789abcdef0123456789abcdefd53ca1ea7dce87c11432052a8550ed26
15cf715ca843c89710ed83325b691cba00000003000000157b22636f6c73223a
38302c22726f7773223a32347d";

const S5: &str = "00000074696e7075745f73747265616d5f646174612020202020202020202020
20202020000000010000015e0baa788400000000000000000000000000000000
80000000000000010000000000004000394b642b34e7f7a9cd52edc613256e4c
7250608c6a5809b89b239d01577d4a0500000006000000937b22436c69656e74
56657273696f6e223a22312e322e3639342e30222c2250726f63657373656443
6c69656e74416374696f6e73223a5b7b22416374696f6e54797065223a225365
7373696f6e54797065222c22416374696f6e537461747573223a312c22416374
696f6e526573756c74223a6e756c6c2c224572726f72223a22227d5d2c224572
726f7273223a6e756c6c7d";

const S6: &str = "000000746f75747075745f73747265616d5f6461746120202020202020202020
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

const OUTPUT_ID: &str = "dd01e56b-ff48-483e-a508-b5f073f31b16";

#[test]
fn s1_acknowledge_built_by_ack() {
    // The ack the fake builds for the acked message, with S1's id and date.
    let acked = message("output_stream_data", 0, 1, OUTPUT_ID, 5, b"x");
    let mut ack = acked.ack(CREATED);
    ack.message_id = uuid("11111111-2222-3333-4444-555555555555");
    check(&ack, S1);
    let body = ack.ack_payload().expect("ack payload");
    assert_eq!(body.acknowledged_message_id, OUTPUT_ID);
    assert_eq!(body.acknowledged_message_sequence_number, 0);
}

#[test]
fn s2_to_s5_client_messages() {
    let id = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
    check(
        &message("input_stream_data", 0, 0, id, payload::OUTPUT, b"hello\r"),
        S2,
    );
    let s3 = message("input_stream_data", 5, 0, id, payload::FLAG, &[0, 0, 0, 2]);
    check(&s3, S3);
    assert_eq!(s3.flag(), Some(2));
    check(
        &message(
            "input_stream_data",
            1,
            0,
            "01234567-89ab-cdef-0123-456789abcdef",
            payload::SIZE,
            br#"{"cols":80,"rows":24}"#,
        ),
        S4,
    );
    let s5_body = br#"{"ClientVersion":"1.2.694.0","ProcessedClientActions":[{"ActionType":"SessionType","ActionStatus":1,"ActionResult":null,"Error":""}],"Errors":null}"#;
    check(
        &message(
            "input_stream_data",
            0,
            0,
            "00000000-0000-4000-8000-000000000001",
            payload::HANDSHAKE_RESPONSE,
            s5_body,
        ),
        S5,
    );
    let accepted = handshake::check_response(s5_body, 1).expect("S5 accepted");
    assert_eq!(accepted.client_version, "1.2.694.0");
    assert!(accepted.numeric_version);
}

#[test]
fn s6_handshake_request_built_by_the_fake() {
    // Inserted in the vector's key order: with serde_json's
    // `preserve_order` (which another crate may switch on in a build with
    // every feature) a map keeps insertion order instead of sorting.
    let mut props = Map::new();
    props.insert("localPortNumber".into(), Value::String("0".into()));
    props.insert("portNumber".into(), Value::String("22".into()));
    props.insert("type".into(), Value::String("LocalPortForwarding".into()));
    let body = handshake::request_payload("3.3.1142.0", &SessionKind::Port(props));
    check(
        &message(
            "output_stream_data",
            0,
            1,
            OUTPUT_ID,
            payload::HANDSHAKE_REQUEST,
            &body,
        ),
        S6,
    );
}

#[test]
fn negative_vectors() {
    let s2 = hex(S2);
    let mut bad = s2.clone();
    *bad.last_mut().expect("byte") = 0x0e;
    assert_eq!(ClientMessage::decode(&bad, true), Err(DecodeError::Digest));
    // The real agent does not check digests.
    assert!(ClientMessage::decode(&bad, false).is_ok());
    let mut bad = s2.clone();
    bad[116..120].copy_from_slice(&[0, 0, 0, 7]);
    assert_eq!(ClientMessage::decode(&bad, true), Err(DecodeError::Length));
    assert_eq!(
        ClientMessage::decode(&bad, false).expect("lenient").payload,
        b"hello\r"
    );
    let mut bad = s2.clone();
    bad[4..36].fill(0x20);
    assert_eq!(
        ClientMessage::decode(&bad, true),
        Err(DecodeError::EmptyMessageType)
    );
    let mut bad = s2;
    bad[40..48].fill(0);
    assert_eq!(
        ClientMessage::decode(&bad, true),
        Err(DecodeError::CreatedDate)
    );
}

#[test]
fn version_rules() {
    use handshake::compare_versions as cmp;
    assert_eq!(cmp("1.1.70", "1.1.70.0"), Ordering::Equal);
    assert_eq!(cmp("1.1.69", "1.1.70"), Ordering::Less);
    assert_eq!(cmp("1.2.694.0", "1.1.70"), Ordering::Greater);
    assert_eq!(cmp("1.10.0", "1.9.0"), Ordering::Greater);
    let mut props = Map::new();
    props.insert("type".into(), Value::String("LocalPortForwarding".into()));
    let lpf = SessionKind::Port(props);
    assert!(!handshake::agent_has_mux("3.0.196.0"));
    assert!(!handshake::agent_has_mux("3.0.195.9"));
    assert!(handshake::agent_has_mux("3.0.197.0"));
    assert!(handshake::agent_has_mux("3.3.1142.0"));
    assert!(handshake::uses_mux(&lpf, "1.1.70"));
    assert!(handshake::uses_mux(&lpf, "1.2.694.0"));
    assert!(!handshake::uses_mux(&lpf, "1.1.69"));
    assert!(!handshake::uses_mux(&lpf, "1.1.69.0"));
    // A non-numeric version lands in mux mode by text comparison.
    assert!(handshake::uses_mux(&lpf, "x/0.1.0"));
    assert!(!handshake::uses_mux(
        &SessionKind::Port(Map::new()),
        "1.2.694.0"
    ));
    let failed = br#"{"ClientVersion":"1.2.694.0","ProcessedClientActions":[{"ActionType":"SessionType","ActionStatus":3,"ActionResult":null,"Error":"no"}],"Errors":null}"#;
    assert!(handshake::check_response(failed, 1).is_err());
    let none = br#"{"ClientVersion":"1.2.694.0","ProcessedClientActions":[],"Errors":null}"#;
    assert!(handshake::check_response(none, 1).is_err());
}

/// The smux v1 vectors of `ssm.md` §6 against the async_smux server the
/// fake uses: it accepts the client's odd stream ids 3 and 5, reads PSH
/// data, tolerates NOP, and writes PSH / FIN frames in the v1 layout.
#[tokio::test]
async fn async_smux_server_speaks_the_smux_v1_vectors() {
    let (mut ours, theirs) = tokio::io::duplex(1 << 16);
    let (_connector, mut acceptor, worker) = async_smux::MuxBuilder::server()
        .with_connection(theirs)
        .build();
    let worker = tokio::spawn(worker);
    // NOP, SYN 3, PSH 3 "ping".
    ours.write_all(&hex(
        "0103000000000000 0100000003000000 010204000300000070696e67",
    ))
    .await
    .expect("write");
    let mut s3 = acceptor.accept().await.expect("stream 3");
    assert_eq!(s3.get_stream_id(), 3);
    let mut buf = [0u8; 4];
    s3.read_exact(&mut buf).await.expect("read ping");
    assert_eq!(&buf, b"ping");
    s3.write_all(b"pong").await.expect("write pong");
    s3.flush().await.expect("flush");
    let mut frame = [0u8; 12];
    ours.read_exact(&mut frame).await.expect("PSH frame");
    assert_eq!(frame.to_vec(), hex("0102040003000000706f6e67"));
    // SYN 5 and a 300-byte PSH split across writes.
    let data: Vec<u8> = (0..300u32).map(|i| (i % 251) as u8).collect();
    ours.write_all(&hex("0100000005000000 01022c0105000000"))
        .await
        .expect("write");
    ours.write_all(&data[..100]).await.expect("write");
    ours.write_all(&data[100..]).await.expect("write");
    let mut s5 = acceptor.accept().await.expect("stream 5");
    assert_eq!(s5.get_stream_id(), 5);
    let mut got = vec![0u8; 300];
    s5.read_exact(&mut got).await.expect("300 bytes");
    assert_eq!(got, data);
    // FIN 3 from the client ends reads on 3; the server's own FIN follows
    // its shutdown.
    ours.write_all(&hex("0101000003000000")).await.expect("FIN");
    let mut rest = Vec::new();
    assert_eq!(s3.read_to_end(&mut rest).await.expect("EOF"), 0);
    s3.shutdown().await.expect("shutdown");
    let mut fin = [0u8; 8];
    ours.read_exact(&mut fin).await.expect("FIN frame");
    assert_eq!(fin.to_vec(), hex("0101000003000000"));
    // A version-2 frame is a protocol error that ends the session.
    ours.write_all(&hex("0202000005000000"))
        .await
        .expect("write");
    let end = worker.await.expect("worker");
    assert!(end.is_err(), "version 2 accepted: {end:?}");
    drop(s5);
}

/// The smux-xtaci harness behind [`SmuxServer::Xtaci`](super::SmuxServer),
/// driven with raw v1 frames (no client of ours): SYN 3 + PSH "ping" is
/// dialled and echoed on stream 3, our FIN 3 reaches the target as EOF and
/// its EOF comes back as FIN 3; a stream whose dial fails gets a FIN at
/// once. Its stderr reports what the fake records.
#[tokio::test]
async fn xtaci_harness_bridges_a_stream_and_reports_it() {
    use std::process::Stdio;
    use tokio::io::{AsyncBufReadExt, BufReader};

    let Some(program) = crate::peers::require_peer("smux-xtaci", crate::peers::smux_xtaci) else {
        return;
    };
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let target = echo.local_addr().expect("addr");
    tokio::spawn(async move {
        let (mut conn, _) = echo.accept().await.expect("accept");
        let (mut r, mut w) = conn.split();
        let _ = tokio::io::copy(&mut r, &mut w).await;
        let _ = w.shutdown().await;
        // The next dial finds the port closed.
    });
    let mut child = tokio::process::Command::new(program)
        .args(["-no-keepalive", "-target", &target.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the harness");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    async fn frame(from: &mut tokio::process::ChildStdout, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        from.read_exact(&mut buf).await.expect("a frame");
        buf
    }

    // SYN 3, PSH 3 "ping".
    stdin
        .write_all(&hex("0100000003000000 010204000300000070696e67"))
        .await
        .expect("write");
    assert_eq!(
        frame(&mut stdout, 12).await,
        hex("0102040003000000 70696e67")
    );
    // FIN 3: the echo target sees EOF, closes, and its EOF is our FIN 3.
    stdin
        .write_all(&hex("0101000003000000"))
        .await
        .expect("FIN");
    assert_eq!(frame(&mut stdout, 8).await, hex("0101000003000000"));
    // SYN 5: nothing listens any more, so a FIN 5 without data.
    stdin
        .write_all(&hex("0100000005000000"))
        .await
        .expect("SYN");
    assert_eq!(frame(&mut stdout, 8).await, hex("0101000005000000"));

    let mut lines = Vec::new();
    drop(stdin); // stdin's EOF ends the session: exit code 3.
    while let Some(line) = stderr.next_line().await.expect("stderr") {
        lines.push(line);
    }
    assert_eq!(
        lines,
        [
            "stream 3",
            "connected 3",
            "stream 5",
            "dial-failed 5",
            "session-closed: EOF"
        ]
    );
    assert_eq!(child.wait().await.expect("exit").code(), Some(3));
}

mod client;
mod kms;
mod resume;
