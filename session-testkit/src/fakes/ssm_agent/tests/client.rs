//! A minimal data-channel client on the fake's own codec (no client code
//! of the project's), for the KMS and resume tests.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::fakes::SsmControlFake;
use crate::fakes::ssm_agent::codec::{
    ACKNOWLEDGE, CHANNEL_CLOSED, ClientMessage, INPUT_STREAM_DATA, OUTPUT_STREAM_DATA, payload,
};
use crate::fakes::ssm_agent::{AgentScenario, SsmAgentFake};

pub(super) const TARGET: &str = "i-0123456789abcdef0";
pub(super) const CLIENT_ID: &str = "6f9c0d3e-1a2b-4c5d-8e9f-0a1b2c3d4e5f";
const WAIT: Duration = Duration::from_secs(4);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A StartSession / ResumeSession answer.
pub(super) struct Started {
    pub(super) id: String,
    pub(super) url: String,
    pub(super) token: String,
}

/// Calls the control fake's `operation`: `(HTTP status, JSON body)`.
pub(super) async fn call_raw(
    control: &SsmControlFake,
    operation: &str,
    body: Value,
) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(control.endpoint())
        .header("X-Amz-Target", format!("AmazonSSM.{operation}"))
        .header("Content-Type", "application/x-amz-json-1.1")
        .header(
            "Authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=AKIDKMSTEST000000001/20260101/us-east-1/ssm/aws4_request, \
                 SignedHeaders=host;x-amz-date, Signature={}",
                "0".repeat(64)
            ),
        )
        .body(body.to_string())
        .send()
        .await
        .expect("request to the control fake");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Calls `operation`, which must succeed.
pub(super) async fn call(control: &SsmControlFake, operation: &str, body: Value) -> Value {
    let (status, out) = call_raw(control, operation, body).await;
    assert_eq!(status, 200, "{operation}: {out}");
    out
}

/// The control fake, the agent with `scenario`, and a started shell
/// session.
pub(super) async fn shell_setup(
    scenario: AgentScenario,
) -> (SsmControlFake, SsmAgentFake, Started) {
    let control = SsmControlFake::start().await;
    control.add_target(TARGET);
    let agent = SsmAgentFake::start(&control, scenario).await;
    let out = call(&control, "StartSession", json!({ "Target": TARGET })).await;
    let started = Started {
        id: out["SessionId"].as_str().unwrap().into(),
        url: out["StreamUrl"].as_str().unwrap().into(),
        token: out["TokenValue"].as_str().unwrap().into(),
    };
    (control, agent, started)
}

/// ResumeSession, which must issue a token.
pub(super) async fn resume(control: &SsmControlFake, id: &str) -> Started {
    let out = call(control, "ResumeSession", json!({ "SessionId": id })).await;
    let token = out["TokenValue"].as_str().unwrap().to_owned();
    assert!(!token.is_empty(), "ResumeSession gave no token");
    Started {
        id: id.into(),
        url: out["StreamUrl"].as_str().unwrap().into(),
        token,
    }
}

/// What came from the socket.
#[derive(Debug)]
pub(super) enum Frame {
    /// A ClientMessage.
    Message(ClientMessage),
    /// A close frame with its code (`None`: no code).
    Close(Option<u16>),
    /// The socket ended without a close frame.
    Ended,
}

pub(super) struct Client {
    ws: Ws,
    pub(super) seq: i64,
    millis: u64,
    pub(super) acks: Vec<i64>,
    pub(super) closed: Option<Value>,
    /// The next agent sequence number expected.
    pub(super) expected: i64,
    /// Skip (and re-ack) agent messages below `expected` (resent after a
    /// redial); off to see every arrival.
    pub(super) dedup: bool,
}

impl Client {
    pub(super) async fn open(url: &str, token: &str) -> Self {
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let open = json!({
            "MessageSchemaVersion": "1.0",
            "RequestId": uuid::Uuid::new_v4().to_string(),
            "TokenValue": token,
            "ClientId": CLIENT_ID,
            "ClientVersion": "1.2.694.0",
        });
        ws.send(Message::text(open.to_string())).await.unwrap();
        Self {
            ws,
            seq: 0,
            millis: 1_700_000_000_000,
            acks: Vec::new(),
            closed: None,
            expected: 0,
            dedup: true,
        }
    }

    /// The same client on a new socket (counters kept).
    pub(super) async fn redial(&mut self, url: &str, token: &str) {
        let fresh = Self::open(url, token).await;
        let _ = self.ws.close(None).await;
        self.ws = fresh.ws;
    }

    pub(super) fn message(&mut self, payload_type: u32, body: &[u8]) -> ClientMessage {
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

    pub(super) async fn send_raw(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::binary(bytes)).await.unwrap();
    }

    pub(super) async fn send(&mut self, payload_type: u32, body: &[u8]) -> ClientMessage {
        let msg = self.message(payload_type, body);
        self.send_raw(msg.encode()).await;
        msg
    }

    /// The next frame within `limit`; `None` when nothing came.
    pub(super) async fn frame_within(&mut self, limit: Duration) -> Option<Frame> {
        loop {
            let frame = tokio::time::timeout(limit, self.ws.next()).await.ok()?;
            return Some(match frame {
                Some(Ok(Message::Binary(b))) => {
                    Frame::Message(ClientMessage::decode(&b, true).expect("fake's frame"))
                }
                Some(Ok(Message::Close(c))) => Frame::Close(c.map(|c| u16::from(c.code))),
                None | Some(Err(_)) => Frame::Ended,
                Some(Ok(_)) => continue,
            });
        }
    }

    /// The next message, or `None` when the socket closed.
    pub(super) async fn next_any(&mut self) -> Option<ClientMessage> {
        match self
            .frame_within(WAIT)
            .await
            .expect("no frame from the fake")
        {
            Frame::Message(m) => Some(m),
            Frame::Close(_) | Frame::Ended => None,
        }
    }

    /// The next `output_stream_data`, recording acks and channel_closed.
    pub(super) async fn next_stream(&mut self) -> Option<ClientMessage> {
        loop {
            let msg = self.next_any().await?;
            match msg.message_type.as_str() {
                OUTPUT_STREAM_DATA if self.dedup && msg.sequence_number < self.expected => {
                    self.ack(&msg).await;
                }
                OUTPUT_STREAM_DATA => {
                    self.expected = self.expected.max(msg.sequence_number + 1);
                    return Some(msg);
                }
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
    pub(super) async fn ack_of(&mut self, seq: i64) {
        while !self.acks.contains(&seq) {
            let msg = self.next_any().await.expect("socket closed before the ack");
            if let Some(ack) = msg.ack_payload() {
                self.acks.push(ack.acknowledged_message_sequence_number);
            }
        }
    }

    pub(super) async fn ack(&mut self, msg: &ClientMessage) {
        self.millis += 1;
        let bytes = msg.ack(self.millis).encode();
        self.send_raw(bytes).await;
    }

    /// The next stream message, acked; asserts its payload type.
    pub(super) async fn expect_stream(&mut self, payload_type: u32) -> ClientMessage {
        let msg = self.next_stream().await.expect("socket closed");
        assert_eq!(msg.payload_type, payload_type, "{msg:?}");
        self.ack(&msg).await;
        msg
    }

    /// The client's half of a plain handshake.
    pub(super) async fn handshake(&mut self) {
        self.expect_stream(payload::HANDSHAKE_REQUEST).await;
        let response = json!({
            "ClientVersion": "1.2.694.0",
            "ProcessedClientActions": [{"ActionType": "SessionType", "ActionStatus": 1, "ActionResult": null, "Error": ""}],
            "Errors": null,
        });
        let sent = self
            .send(payload::HANDSHAKE_RESPONSE, response.to_string().as_bytes())
            .await;
        self.expect_stream(payload::HANDSHAKE_COMPLETE).await;
        self.ack_of(sent.sequence_number).await;
    }

    /// Sends `bytes` as Output and returns the echoed Output payload (as
    /// sent by the agent).
    pub(super) async fn echo(&mut self, bytes: &[u8]) -> ClientMessage {
        let sent = self.send(payload::OUTPUT, bytes).await;
        let out = self.expect_stream(payload::OUTPUT).await;
        self.ack_of(sent.sequence_number).await;
        out
    }
}
