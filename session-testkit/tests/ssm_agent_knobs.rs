//! `SsmAgentFake`'s knobs and counters, driven by a minimal client built on
//! the fake's own codec (`session_testkit::fakes::ssm_agent::codec`): strict
//! digests, duplicates, resume, handshake rules, retransmission, publication
//! control, shell and port sessions.

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use session_testkit::fakes::SsmControlFake;
use session_testkit::fakes::ssm::SessionStatus;
use session_testkit::fakes::ssm_agent::codec::{
    ACKNOWLEDGE, CHANNEL_CLOSED, ClientMessage, INPUT_STREAM_DATA, OUTPUT_STREAM_DATA,
    PAUSE_PUBLICATION, START_PUBLICATION, flag, flag_payload, payload,
};
use session_testkit::fakes::ssm_agent::{AgentScenario, DuplicateMode, ShellEcho, SsmAgentFake};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const TARGET: &str = "i-0123456789abcdef0";
const CLIENT_ID: &str = "6f9c0d3e-1a2b-4c5d-8e9f-0a1b2c3d4e5f";
const WAIT: Duration = Duration::from_secs(20);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Started {
    id: String,
    url: String,
    token: String,
}

/// Calls the control fake's `operation` with a SigV4-shaped header (the
/// fake checks the shape only).
async fn call(control: &SsmControlFake, operation: &str, body: Value) -> Value {
    let resp = reqwest::Client::new()
        .post(control.endpoint())
        .header("X-Amz-Target", format!("AmazonSSM.{operation}"))
        .header("Content-Type", "application/x-amz-json-1.1")
        .header(
            "Authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=AKIDKNOBS0000000001/20260101/us-east-1/ssm/aws4_request, \
                 SignedHeaders=host;x-amz-date, Signature={}",
                "0".repeat(64)
            ),
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{operation}: {}", resp.status());
    resp.json().await.unwrap()
}

async fn start_session(control: &SsmControlFake, document: Option<&str>, params: Value) -> Started {
    let mut body = json!({ "Target": TARGET, "Parameters": params });
    if let Some(doc) = document {
        body["DocumentName"] = json!(doc);
    }
    let out = call(control, "StartSession", body).await;
    Started {
        id: out["SessionId"].as_str().unwrap().into(),
        url: out["StreamUrl"].as_str().unwrap().into(),
        token: out["TokenValue"].as_str().unwrap().into(),
    }
}

/// A minimal data-channel client on the fake's codec.
struct Client {
    ws: Ws,
    seq: i64,
    millis: u64,
    /// Acks received, in order.
    acks: Vec<i64>,
    /// The last channel_closed payload.
    closed: Option<Value>,
}

impl Client {
    async fn open(url: &str, token: &str, client_id: &str) -> Self {
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let open = json!({
            "MessageSchemaVersion": "1.0",
            "RequestId": uuid::Uuid::new_v4().to_string(),
            "TokenValue": token,
            "ClientId": client_id,
            "ClientVersion": "1.2.694.0",
        });
        ws.send(Message::text(open.to_string())).await.unwrap();
        Self {
            ws,
            seq: 0,
            millis: 1_700_000_000_000,
            acks: Vec::new(),
            closed: None,
        }
    }

    fn message(&mut self, payload_type: u32, body: &[u8]) -> ClientMessage {
        self.millis += 1;
        let msg = ClientMessage::new(
            INPUT_STREAM_DATA,
            self.seq,
            0,
            payload_type,
            body.to_vec(),
            self.millis,
        );
        self.seq += 1;
        msg
    }

    async fn send_raw(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::binary(bytes)).await.unwrap();
    }

    async fn send(&mut self, payload_type: u32, body: &[u8]) -> ClientMessage {
        let msg = self.message(payload_type, body);
        self.send_raw(msg.encode()).await;
        msg
    }

    /// The next message of any type, or `None` when the socket closed.
    async fn next_any(&mut self) -> Option<ClientMessage> {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("no frame from the fake");
            match frame {
                Some(Ok(Message::Binary(b))) => {
                    return Some(ClientMessage::decode(&b, true).expect("fake's frame"));
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next `output_stream_data`, recording acks and channel_closed on
    /// the way; `None` when the socket closed.
    async fn next_stream(&mut self) -> Option<ClientMessage> {
        loop {
            let msg = self.next_any().await?;
            match msg.message_type.as_str() {
                OUTPUT_STREAM_DATA => return Some(msg),
                ACKNOWLEDGE => self.acks.push(
                    msg.ack_payload()
                        .unwrap()
                        .acknowledged_message_sequence_number,
                ),
                CHANNEL_CLOSED => {
                    self.closed = Some(serde_json::from_slice(&msg.payload).unwrap());
                }
                _ => {}
            }
        }
    }

    /// Reads until an ack of `seq` arrives.
    async fn ack_of(&mut self, seq: i64) {
        while !self.acks.contains(&seq) {
            let msg = self.next_any().await.expect("socket closed before the ack");
            if let Some(ack) = msg.ack_payload() {
                self.acks.push(ack.acknowledged_message_sequence_number);
            }
        }
    }

    async fn ack(&mut self, msg: &ClientMessage) {
        self.millis += 1;
        let bytes = msg.ack(self.millis).encode();
        self.send_raw(bytes).await;
    }

    /// Runs the client's half of the handshake with `version`; returns the
    /// HandshakeRequest JSON.
    async fn handshake(&mut self, version: &str) -> Value {
        let request = self.next_stream().await.unwrap();
        assert_eq!(request.payload_type, payload::HANDSHAKE_REQUEST);
        assert_eq!((request.sequence_number, request.flags), (0, 1));
        self.ack(&request).await;
        let response = json!({
            "ClientVersion": version,
            "ProcessedClientActions": [{"ActionType": "SessionType", "ActionStatus": 1, "ActionResult": null, "Error": ""}],
            "Errors": null,
        });
        let sent = self
            .send(payload::HANDSHAKE_RESPONSE, response.to_string().as_bytes())
            .await;
        let complete = self.next_stream().await.unwrap();
        assert_eq!(complete.payload_type, payload::HANDSHAKE_COMPLETE);
        self.ack(&complete).await;
        self.ack_of(sent.sequence_number).await;
        serde_json::from_slice(&request.payload).unwrap()
    }
}

async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = conn.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

async fn shell_setup(scenario: AgentScenario) -> (SsmControlFake, SsmAgentFake, Started) {
    let control = SsmControlFake::start().await;
    control.add_target(TARGET);
    let agent = SsmAgentFake::start(&control, scenario).await;
    let started = start_session(&control, None, json!({})).await;
    (control, agent, started)
}

#[tokio::test]
async fn strict_mode_drops_a_bad_digest_without_ack_and_the_retransmission_is_acked() {
    let (_control, agent, s) = shell_setup(AgentScenario::default()).await;
    let mut c = Client::open(&s.url, &s.token, CLIENT_ID).await;
    let hs = c.handshake("1.2.694.0").await;
    assert_eq!(
        hs["RequestedClientActions"][0]["ActionParameters"]["SessionType"],
        "Standard_Stream"
    );
    let msg = c.message(payload::OUTPUT, b"hello\r");
    let mut bad = msg.encode();
    *bad.last_mut().unwrap() ^= 1;
    c.send_raw(bad).await;
    agent.wait_for(&s.id, |st| st.dropped_bad_digest == 1).await;
    // The retransmission (same bytes, correct digest) is acked and echoed.
    c.send_raw(msg.encode()).await;
    let echo = c.next_stream().await.unwrap();
    assert_eq!(echo.payload, b"hello\r");
    c.ack_of(msg.sequence_number).await;
    assert_eq!(
        c.acks.iter().filter(|&&a| a == msg.sequence_number).count(),
        1,
        "the bad frame was acked: {:?}",
        c.acks
    );
    let st = agent
        .wait_for(&s.id, |st| st.shell_input == b"hello\r")
        .await;
    assert_eq!(st.dropped_before_handshake, 0);
}

#[tokio::test]
async fn duplicates_are_re_acked_or_dropped_per_mode() {
    for mode in [DuplicateMode::ReAck, DuplicateMode::Reference] {
        let scenario = AgentScenario {
            duplicate_mode: mode,
            ..AgentScenario::default()
        };
        let (_control, agent, s) = shell_setup(scenario).await;
        let mut c = Client::open(&s.url, &s.token, CLIENT_ID).await;
        c.handshake("1.2.694.0").await;
        let msg = c.send(payload::OUTPUT, b"a").await;
        c.ack_of(msg.sequence_number).await;
        c.send_raw(msg.encode()).await;
        let probe = c.send(payload::OUTPUT, b"b").await;
        c.ack_of(probe.sequence_number).await;
        let st = agent
            .wait_for(&s.id, |st| st.duplicates_received == 1)
            .await;
        let acks_of_dup = c.acks.iter().filter(|&&a| a == msg.sequence_number).count();
        match mode {
            DuplicateMode::ReAck => {
                assert_eq!((acks_of_dup, st.re_acks_sent), (2, 1));
            }
            DuplicateMode::Reference => {
                assert_eq!((acks_of_dup, st.re_acks_sent), (1, 0));
            }
        }
        assert_eq!(st.shell_input, b"ab", "a duplicate was delivered twice");
    }
}

#[tokio::test]
async fn data_before_handshake_complete_is_acked_dropped_and_counted() {
    let (_control, agent, s) = shell_setup(AgentScenario::default()).await;
    let mut c = Client::open(&s.url, &s.token, CLIENT_ID).await;
    let request = c.next_stream().await.unwrap();
    c.ack(&request).await;
    let early = c.send(payload::OUTPUT, b"too early").await;
    c.ack_of(early.sequence_number).await;
    let st = agent
        .wait_for(&s.id, |st| st.dropped_before_handshake == 1)
        .await;
    assert!(st.shell_input.is_empty());
    assert!(!st.handshake_complete);
}

#[tokio::test]
async fn a_failed_handshake_action_cancels_the_session() {
    let (control, agent, s) = shell_setup(AgentScenario::default()).await;
    let mut c = Client::open(&s.url, &s.token, CLIENT_ID).await;
    let request = c.next_stream().await.unwrap();
    c.ack(&request).await;
    let response = json!({
        "ClientVersion": "1.2.694.0",
        "ProcessedClientActions": [{"ActionType": "SessionType", "ActionStatus": 3, "ActionResult": null, "Error": "unsupported"}],
        "Errors": null,
    });
    c.send(payload::HANDSHAKE_RESPONSE, response.to_string().as_bytes())
        .await;
    while c.next_stream().await.is_some() {}
    let closed = c.closed.expect("channel_closed");
    assert!(closed["Output"].as_str().unwrap().contains("handshake"));
    let st = agent
        .wait_for(&s.id, |st| st.handshake_error.is_some())
        .await;
    assert!(!st.handshake_complete);
    assert_eq!(
        control.session(&s.id).unwrap().status,
        SessionStatus::Failed
    );
}

#[tokio::test]
async fn unacked_agent_messages_are_retransmitted_with_the_same_bytes() {
    let (_control, agent, s) = shell_setup(AgentScenario::default()).await;
    let mut c = Client::open(&s.url, &s.token, CLIENT_ID).await;
    let first = c.next_stream().await.unwrap();
    // Not acked: the same message (same MessageId, seq 0) comes again.
    let again = c.next_stream().await.unwrap();
    assert_eq!(first, again);
    c.ack(&again).await;
    let st = agent.wait_for(&s.id, |st| st.unacked == 0).await;
    assert!(st.retransmissions >= 1);
    assert_eq!(st.acks_received, 1);
}

#[tokio::test]
async fn resume_needs_the_new_token_and_the_same_client_id_and_keeps_counters() {
    let (control, agent, s) = shell_setup(AgentScenario::default()).await;
    let mut c = Client::open(&s.url, &s.token, CLIENT_ID).await;
    c.handshake("1.2.694.0").await;
    let m = c.send(payload::OUTPUT, b"one").await;
    c.ack_of(m.sequence_number).await;
    let echo = c.next_stream().await.unwrap();
    c.ack(&echo).await;
    agent.wait_for(&s.id, |st| st.unacked == 0).await;
    // An Output the client will not see before the socket drops.
    agent.update_scenario(|sc| {
        sc.faults.drop_outgoing.insert(echo.sequence_number + 1);
    });
    agent.send_stream(&s.id, payload::OUTPUT, b"while away".to_vec());
    agent.wait_for(&s.id, |st| st.unacked == 1).await;
    assert!(agent.drop_socket(&s.id));
    // (A retransmission may slip in before the socket drops.)
    while c.next_stream().await.is_some() {}
    agent.wait_for(&s.id, |st| !st.attached).await;
    assert_eq!(
        control.session(&s.id).unwrap().status,
        SessionStatus::Disconnected
    );

    // The old token is spent.
    let mut stale = Client::open(&s.url, &s.token, CLIENT_ID).await;
    assert!(stale.next_any().await.is_none());
    let resumed = call(&control, "ResumeSession", json!({"SessionId": s.id})).await;
    let token = resumed["TokenValue"].as_str().unwrap().to_owned();
    // Another ClientId is refused, even with the new token...
    let mut other = Client::open(&s.url, &token, "00000000-0000-4000-8000-00000000abcd").await;
    assert!(other.next_any().await.is_none());
    // ... which it did not consume.
    let mut c2 = Client::open(&s.url, &token, CLIENT_ID).await;
    c2.seq = c.seq;
    let resent = c2.next_stream().await.unwrap();
    assert_eq!(resent.sequence_number, echo.sequence_number + 1);
    assert_eq!(resent.payload, b"while away");
    c2.ack(&resent).await;
    let m2 = c2.send(payload::OUTPUT, b"two").await;
    c2.ack_of(m2.sequence_number).await;
    let st = agent
        .wait_for(&s.id, |st| st.shell_input == b"onetwo" && st.unacked <= 1)
        .await;
    assert_eq!(st.sequence_conflicts, 0);
    let refused: Vec<_> = st.opens.iter().filter(|o| !o.accepted).collect();
    assert_eq!(refused.len(), 2, "{:?}", st.opens);
    assert_eq!(st.opens.iter().filter(|o| o.accepted).count(), 2);
    assert_eq!(
        control.session(&s.id).unwrap().status,
        SessionStatus::Connected
    );

    // A client that restarts its counter is noticed.
    let mut reset = c2.message(payload::OUTPUT, b"x");
    reset.sequence_number = 0;
    c2.send_raw(reset.encode()).await;
    agent.wait_for(&s.id, |st| st.sequence_conflicts == 1).await;
}

#[tokio::test]
async fn shell_echo_size_exit_code_and_terminate_flag() {
    let scenario = AgentScenario {
        shell_echo: ShellEcho::Uppercase,
        exit_code: Some(7),
        ..AgentScenario::default()
    };
    let (control, agent, s) = shell_setup(scenario).await;
    let mut c = Client::open(&s.url, &s.token, CLIENT_ID).await;
    c.handshake("1.2.694.0").await;
    c.send(payload::SIZE, br#"{"cols":80,"rows":24}"#).await;
    c.send(payload::OUTPUT, b"ls -l\r").await;
    let echo = c.next_stream().await.unwrap();
    assert_eq!(echo.payload, b"LS -L\r");
    c.ack(&echo).await;
    c.send(payload::FLAG, &flag_payload(flag::TERMINATE_SESSION))
        .await;
    let exit = c.next_stream().await.unwrap();
    assert_eq!(
        (exit.payload_type, exit.payload.as_slice()),
        (payload::EXIT_CODE, &b"7"[..])
    );
    while c.next_stream().await.is_some() {}
    assert!(c.closed.is_some());
    let st = agent
        .wait_for(&s.id, |st| st.channel_closed.is_some())
        .await;
    assert_eq!(st.sizes, vec![(80, 24)]);
    assert_eq!(st.flags_received, vec![flag::TERMINATE_SESSION]);
    assert_eq!(
        control.session(&s.id).unwrap().status,
        SessionStatus::Terminated
    );
}

#[tokio::test]
async fn terminate_session_api_sends_channel_closed() {
    let (control, _agent, s) = shell_setup(AgentScenario::default()).await;
    let mut c = Client::open(&s.url, &s.token, CLIENT_ID).await;
    c.handshake("1.2.694.0").await;
    call(&control, "TerminateSession", json!({"SessionId": s.id})).await;
    while c.next_stream().await.is_some() {}
    let closed = c.closed.expect("channel_closed");
    assert_eq!(closed["SessionId"], json!(s.id));
    assert_eq!(closed["MessageType"], "channel_closed");
    assert!(closed["CreatedDate"].is_string());
}

#[tokio::test]
async fn pause_and_start_publication() {
    let (_control, agent, s) = shell_setup(AgentScenario::default()).await;
    let mut c = Client::open(&s.url, &s.token, CLIENT_ID).await;
    c.handshake("1.2.694.0").await;
    agent.wait_for(&s.id, |st| st.unacked == 0).await;
    assert!(agent.pause_publication(&s.id));
    let pause = c.next_any().await.unwrap();
    assert_eq!(pause.message_type, PAUSE_PUBLICATION);
    agent.send_stream(&s.id, payload::OUTPUT, b"held".to_vec());
    agent.wait_for(&s.id, |st| st.unacked == 1).await;
    assert!(agent.start_publication(&s.id));
    let start = c.next_any().await.unwrap();
    assert_eq!(start.message_type, START_PUBLICATION);
    let held = c.next_stream().await.unwrap();
    assert_eq!(held.payload, b"held");
}

#[tokio::test]
async fn basic_port_mode_for_old_clients_with_disconnect_to_port() {
    let echo = echo_server().await;
    let control = SsmControlFake::start().await;
    control.add_target(TARGET);
    let agent = SsmAgentFake::start(&control, AgentScenario::port_to(echo)).await;
    let s = start_session(
        &control,
        Some("AWS-StartPortForwardingSession"),
        json!({"portNumber": ["80"], "localPortNumber": ["0"]}),
    )
    .await;
    let mut c = Client::open(&s.url, &s.token, CLIENT_ID).await;
    let hs = c.handshake("1.1.69.0").await;
    assert_eq!(
        hs["RequestedClientActions"][0]["ActionParameters"]["Properties"],
        json!({"portNumber": "80", "localPortNumber": "0", "type": "LocalPortForwarding"})
    );
    for round in 0..2 {
        let text = format!("round {round}");
        c.send(payload::OUTPUT, text.as_bytes()).await;
        let back = c.next_stream().await.unwrap();
        assert_eq!(back.payload, text.as_bytes());
        c.ack(&back).await;
        c.send(payload::FLAG, &flag_payload(flag::DISCONNECT_TO_PORT))
            .await;
    }
    let st = agent.wait_for(&s.id, |st| st.target_connections == 2).await;
    assert_eq!(st.mux, Some(false));
}

#[tokio::test]
async fn mux_dial_failure_sends_connect_to_port_error_and_fin() {
    let control = SsmControlFake::start().await;
    control.add_target(TARGET);
    let scenario = AgentScenario {
        fail_dial: true,
        ..AgentScenario::default()
    };
    let agent = SsmAgentFake::start(&control, scenario).await;
    let s = start_session(
        &control,
        Some("AWS-StartPortForwardingSession"),
        json!({"portNumber": ["80"], "localPortNumber": ["0"]}),
    )
    .await;
    let mut c = Client::open(&s.url, &s.token, CLIENT_ID).await;
    c.handshake("1.1.70").await;
    // SYN 3 + PSH 3 "ping" (the smux vectors), as Output payload bytes.
    c.send(
        payload::OUTPUT,
        &[
            1, 0, 0, 0, 3, 0, 0, 0, 1, 2, 4, 0, 3, 0, 0, 0, b'p', b'i', b'n', b'g',
        ],
    )
    .await;
    let mut flag_seen = false;
    let mut smux = Vec::new();
    while smux.len() < 8 {
        let msg = c.next_stream().await.unwrap();
        c.ack(&msg).await;
        match msg.payload_type {
            payload::FLAG => {
                assert_eq!(msg.flag(), Some(flag::CONNECT_TO_PORT_ERROR));
                assert!(smux.is_empty(), "FIN before the flag");
                flag_seen = true;
            }
            payload::OUTPUT => smux.extend_from_slice(&msg.payload),
            other => panic!("payload type {other}"),
        }
    }
    assert!(flag_seen);
    assert_eq!(smux, [1, 1, 0, 0, 3, 0, 0, 0], "FIN on stream 3");
    let st = agent.wait_for(&s.id, |st| st.dial_failures == 1).await;
    assert_eq!((st.mux, st.smux_streams.clone()), (Some(true), vec![3]));
}
