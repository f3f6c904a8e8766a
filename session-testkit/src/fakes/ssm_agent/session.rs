//! One session's agent: a task that owns the session's sequencing state
//! across sockets (resume keeps it), runs the handshake, acks and
//! retransmits, injects the scenario's faults, and hands payloads to the
//! shell or port handler.

use std::sync::Arc;

use futures::SinkExt;
use futures::stream::SplitSink;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::codec::{
    self, ACKNOWLEDGE, CHANNEL_CLOSED, ClientMessage, DecodeError, FLAG_SYN, INPUT_STREAM_DATA,
    OUTPUT_STREAM_DATA, PAUSE_PUBLICATION, START_PUBLICATION, flag, payload,
};
use super::handshake::{self, Accepted, SessionKind};
use super::kms::{self, KmsScenario, SessionKeys};
use super::port::Port;
use super::reliability::{Arrival, RESEND_TICK, Reliability};
use super::scenario::{DigestMode, DuplicateMode, FaultDice, RandomFault, ShellEcho};
use super::{Shared, lock};
use crate::fakes::ssm::SessionStatus;

/// The sending half of a data channel.
pub(crate) type Sink = SplitSink<WebSocketStream<TcpStream>, Message>;

/// What a session task receives.
pub(crate) enum Input {
    /// A socket opened (with the right token) for this session.
    Attach {
        /// Tells this socket's frames from an earlier one's.
        generation: u64,
        /// Its sending half.
        sink: Box<Sink>,
    },
    /// A binary frame.
    Frame {
        /// The socket it came on.
        generation: u64,
        /// Its bytes.
        data: Vec<u8>,
    },
    /// A text frame after the first (ignored, counted).
    NonBinary {
        /// The socket it came on.
        generation: u64,
    },
    /// The socket closed or failed.
    Gone {
        /// The socket.
        generation: u64,
    },
    /// A payload the agent sends (from a handler or a test).
    App {
        /// Its PayloadType.
        payload_type: u32,
        /// Its bytes.
        payload: Vec<u8>,
    },
    /// A test's (or the control plane's) command.
    Command(Command),
    /// The answer of the KMS `Decrypt` call of the handshake.
    KmsDecrypted(Result<Vec<u8>, String>),
}

/// Commands of [`super::SsmAgentFake`].
pub(crate) enum Command {
    DropSocket,
    CloseSocket(u16, String),
    GoSilent,
    RestartSequence,
    Pause,
    Start,
    ChannelClosed(String),
    Terminating,
    Stop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    NotStarted,
    /// HandshakeRequest sent (since then).
    Sent(Instant),
    /// Waiting for the KMS `Decrypt` call.
    Kms(Instant),
    /// EncChallengeRequest sent.
    Challenge(Instant),
    Complete,
}

struct Session {
    id: String,
    shared: Arc<Shared>,
    kind: SessionKind,
    rel: Reliability,
    socket: Option<(u64, Box<Sink>)>,
    paused: bool,
    phase: Phase,
    held: Vec<Vec<u8>>,
    port: Option<Port>,
    tx: mpsc::UnboundedSender<Input>,
    /// Output payloads from the port handler's target reads (see
    /// [`DATA_QUEUE`]).
    data_tx: mpsc::Sender<Vec<u8>>,
    data_rx: mpsc::Receiver<Vec<u8>>,
    done: bool,
    /// The generator of [`super::RandomFaults`], seeded at its first use.
    dice: Option<FaultDice>,
    /// An agent message held back by a random reorder.
    held_out: Option<Vec<u8>>,
    /// A client message held back by a random reorder.
    held_in: Option<ClientMessage>,
    /// `Target` of the session (for the KMS encryption context).
    target: String,
    /// The scenario's KMS, taken when the handshake started.
    kms: Option<KmsScenario>,
    /// The accepted HandshakeResponse while KMS and the challenge run.
    pending: Option<Accepted>,
    /// The agent's keys, once KMS decrypted the data key.
    keys: Option<SessionKeys>,
    /// The challenge's plaintext while it is outstanding.
    challenge: Option<Vec<u8>>,
    /// `go_silent`: the current socket is neither read nor written.
    silent: bool,
    /// `restart_sequence`: applied at the next redial.
    restart_pending: bool,
    /// When [`super::AgentScenario::close_every`] closes the socket next.
    close_at: Option<Instant>,
    /// Sockets attached so far.
    attaches: u64,
}

/// Target reads a port handler may queue before it waits for the session
/// to send them: small, so the fake sends the target's bytes no faster
/// than its websocket takes them (see `port::pump`).
const DATA_QUEUE: usize = 8;

/// Starts the task of `session_id`; returns its input.
pub(crate) fn spawn(shared: Arc<Shared>, session_id: String) -> mpsc::UnboundedSender<Input> {
    let (tx, rx) = mpsc::unbounded_channel();
    let (data_tx, data_rx) = mpsc::channel(DATA_QUEUE);
    let record = shared.control.session(&session_id);
    let kind = record
        .as_ref()
        .map(SessionKind::of)
        .unwrap_or_else(|| SessionKind::Shell("Standard_Stream".into()));
    let target = record.map(|r| r.target).unwrap_or_default();
    let session = Session {
        id: session_id,
        shared,
        kind,
        rel: Reliability::new(),
        socket: None,
        paused: false,
        phase: Phase::NotStarted,
        held: Vec::new(),
        port: None,
        tx: tx.clone(),
        data_tx,
        data_rx,
        done: false,
        dice: None,
        held_out: None,
        held_in: None,
        target,
        kms: None,
        pending: None,
        keys: None,
        challenge: None,
        silent: false,
        restart_pending: false,
        close_at: None,
        attaches: 0,
    };
    tokio::spawn(session.run(rx));
    tx
}

impl Session {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Input>) {
        let mut tick = tokio::time::interval(RESEND_TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        while !self.done {
            // The port's data is taken only while it can go out at once,
            // as the agent's port reader blocks on the websocket while
            // it is gone or paused. (Not `biased`: a client sending at
            // full speed would starve the resend tick and the data.)
            let sending = self.socket.is_some() && !self.paused && !self.silent;
            tokio::select! {
                input = rx.recv() => match input {
                    Some(input) => self.handle(input).await,
                    None => break,
                },
                _ = tick.tick() => self.resend_due().await,
                Some(bytes) = self.data_rx.recv(), if sending => {
                    self.on_port_data(bytes).await;
                }
            }
        }
        self.port = None;
        self.stat(|s| s.attached = false);
    }

    /// CreatedDate for a new message, from the control fake's clock.
    fn millis(&self) -> u64 {
        codec::epoch_millis(self.shared.control.now())
    }

    fn stat(&self, f: impl FnOnce(&mut super::SessionStats)) {
        self.shared.stat(&self.id, f);
    }

    fn sync_counters(&self) {
        let (unacked, expected) = (self.rel.out.len(), self.rel.expected);
        self.stat(|s| {
            s.unacked = unacked;
            s.expected_sequence = expected;
        });
    }

    fn current(&self, generation: u64) -> bool {
        self.socket.as_ref().is_some_and(|(g, _)| *g == generation)
    }

    async fn handle(&mut self, input: Input) {
        match input {
            Input::Attach { generation, sink } => self.attach(generation, sink).await,
            Input::Frame { generation, data } if self.current(generation) && !self.silent => {
                self.on_frame(&data).await;
            }
            Input::NonBinary { generation } if self.current(generation) && !self.silent => {
                self.stat(|s| s.non_binary_frames += 1);
            }
            Input::Gone { generation } if self.current(generation) => {
                self.socket = None;
                self.stat(|s| s.attached = false);
                self.shared.control.disconnected(&self.id);
            }
            Input::Frame { .. } | Input::NonBinary { .. } | Input::Gone { .. } => {}
            Input::App {
                payload_type,
                payload,
            } => {
                if payload_type == payload::OUTPUT {
                    let n = payload.len() as u64;
                    self.stat(|s| s.bytes_out += n);
                }
                self.send_stream(payload_type, payload).await;
            }
            Input::Command(command) => self.command(command).await,
            Input::KmsDecrypted(result) => self.on_kms_decrypted(result).await,
        }
    }

    /// Bytes the port handler read from its target, as one Output.
    async fn on_port_data(&mut self, bytes: Vec<u8>) {
        let n = bytes.len() as u64;
        self.stat(|s| s.bytes_out += n);
        self.send_stream(payload::OUTPUT, bytes).await;
    }

    async fn attach(&mut self, generation: u64, sink: Box<Sink>) {
        if let Some((_, mut old)) = self.socket.take() {
            // A silent socket is dropped without a word.
            if !self.silent {
                let _ = old.close().await;
            }
        }
        self.silent = false;
        self.socket = Some((generation, sink));
        self.paused = false;
        self.attaches += 1;
        let redial = self.attaches > 1;
        let scenario = self.shared.scenario();
        self.close_at = scenario.close_every.map(|every| Instant::now() + every);
        self.stat(|s| {
            s.attached = true;
            s.silent = false;
            if redial {
                s.redials_accepted += 1;
            }
        });
        if redial && self.restart_pending {
            // An agent that restarted: its counter starts again at 0 and
            // what it had not got acked is lost.
            self.restart_pending = false;
            self.rel.next_out = 0;
            self.rel.out.clear();
            self.held_out = None;
            self.stat(|s| s.sequence_restarted = true);
            self.sync_counters();
        }
        if self.phase == Phase::NotStarted {
            self.phase = Phase::Sent(Instant::now());
            self.kms = scenario.kms.clone();
            let key_id = self.kms.as_ref().map(|k| k.key_id.clone());
            self.stat(|s| s.kms = key_id.is_some());
            let body = handshake::request_payload_with_kms(
                &scenario.agent_version,
                &self.kind,
                key_id.as_deref(),
            );
            self.send_stream(payload::HANDSHAKE_REQUEST, body).await;
        } else {
            self.resend_all().await;
        }
    }

    /// Sends a close frame with `code` and closes the socket (status
    /// `Disconnected`); false without a socket.
    async fn close_socket(&mut self, code: u16, reason: &str) -> bool {
        let Some((_, mut sink)) = self.socket.take() else {
            return false;
        };
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.to_owned().into(),
        };
        let _ = sink.send(Message::Close(Some(frame))).await;
        let _ = sink.close().await;
        self.silent = false;
        self.close_at = None;
        self.stat(|s| {
            s.attached = false;
            s.silent = false;
        });
        self.shared.control.disconnected(&self.id);
        true
    }

    async fn command(&mut self, command: Command) {
        match command {
            Command::DropSocket => {
                self.close_socket(CloseCode::Away.into(), "fake agent: socket dropped")
                    .await;
            }
            Command::CloseSocket(code, reason) => {
                if self.close_socket(code, &reason).await {
                    self.stat(|s| s.closes_sent += 1);
                }
            }
            Command::GoSilent => {
                if self.socket.is_some() {
                    self.silent = true;
                    self.stat(|s| s.silent = true);
                }
            }
            Command::RestartSequence => self.restart_pending = true,
            Command::Pause => {
                let msg = ClientMessage::new(PAUSE_PUBLICATION, 0, 0, 0, Vec::new(), self.millis());
                self.send_raw(msg.encode()).await;
                self.paused = true;
            }
            Command::Start => {
                let msg = ClientMessage::new(START_PUBLICATION, 0, 0, 0, Vec::new(), self.millis());
                self.send_raw(msg.encode()).await;
                self.unpause().await;
            }
            Command::ChannelClosed(output) => {
                self.close_channel(&output, Some(SessionStatus::Terminated))
                    .await;
            }
            Command::Terminating => {
                self.close_channel("Session terminated by TerminateSession", None)
                    .await;
            }
            Command::Stop => self.done = true,
        }
    }

    async fn unpause(&mut self) {
        if self.paused {
            self.paused = false;
            self.resend_all().await;
        }
    }

    /// Writes one frame; a failed write drops the socket.
    async fn send_raw(&mut self, bytes: Vec<u8>) {
        if self.silent {
            return;
        }
        let Some((_, sink)) = self.socket.as_mut() else {
            return;
        };
        if sink.send(Message::binary(bytes)).await.is_err() {
            self.socket = None;
            self.stat(|s| s.attached = false);
            self.shared.control.disconnected(&self.id);
        }
    }

    /// Sends (and buffers) an `output_stream_data` message.
    async fn send_stream(&mut self, payload_type: u32, body: Vec<u8>) {
        // Encrypted once, when the message is made: a retransmission
        // resends the same bytes.
        let body = match &self.keys {
            Some(keys)
                if matches!(
                    payload_type,
                    payload::OUTPUT | payload::STDERR | payload::EXIT_CODE
                ) =>
            {
                kms::seal(&keys.agent_encryption, &body)
            }
            _ => body,
        };
        let seq = self.rel.take_seq();
        let flags = if seq == 0 { FLAG_SYN } else { 0 };
        let msg = ClientMessage::new(
            OUTPUT_STREAM_DATA,
            seq,
            flags,
            payload_type,
            body,
            self.millis(),
        );
        let bytes = msg.encode();
        self.rel.keep(seq, bytes.clone(), Instant::now());
        self.stat(|s| s.messages_sent += 1);
        self.sync_counters();
        if self.paused || self.socket.is_none() {
            return;
        }
        let (drop, duplicate, window) = {
            let mut sc = lock(&self.shared.scenario);
            let f = &mut sc.faults;
            (
                f.drop_outgoing.remove(&seq),
                f.duplicate_outgoing.remove(&seq),
                f.reorder_outgoing,
            )
        };
        if drop {
            return;
        }
        if let Some((start, len)) = window
            && (start..start + len as i64).contains(&seq)
        {
            self.held.push(bytes);
            if seq == start + len as i64 - 1 {
                lock(&self.shared.scenario).faults.reorder_outgoing = None;
                let held = std::mem::take(&mut self.held);
                for b in held.into_iter().rev() {
                    self.send_raw(b).await;
                }
            }
            return;
        }
        let random = self.roll();
        // Past its buffer capacity the agent keeps no copy: dropping or
        // holding back such a message could lose it for good, which is
        // not a fault of the network's.
        let kept = self.rel.out.contains_key(&seq);
        match random {
            Some(RandomFault::Drop) if kept => return,
            Some(RandomFault::Reorder) if kept && self.held_out.is_none() => {
                self.held_out = Some(bytes);
                return;
            }
            _ => {}
        }
        self.send_raw(bytes.clone()).await;
        if duplicate || random == Some(RandomFault::Duplicate) {
            self.send_raw(bytes).await;
        }
        if let Some(held) = self.held_out.take() {
            self.send_raw(held).await;
        }
    }

    /// A draw of [`super::RandomFaults`] for one stream message, once the
    /// handshake is complete (counted when it injects a fault).
    fn roll(&mut self) -> Option<RandomFault> {
        if self.phase != Phase::Complete {
            return None;
        }
        let odds = lock(&self.shared.scenario).faults.random?;
        let dice = self.dice.get_or_insert_with(|| FaultDice::new(odds.seed));
        let fault = dice.roll(&odds)?;
        self.stat(|s| s.random_faults += 1);
        Some(fault)
    }

    async fn resend_due(&mut self) {
        if let Some(at) = self.close_at
            && self.phase == Phase::Complete
            && self.socket.is_some()
            && !self.silent
            && Instant::now() >= at
            && self
                .close_socket(1000, "fake agent: periodic close (close_every)")
                .await
        {
            self.stat(|s| s.closes_sent += 1);
            return;
        }
        if self.paused || self.silent || self.socket.is_none() {
            return;
        }
        // A message held back for a random reorder goes out by the next
        // tick even when nothing follows it.
        if let Some(held) = self.held_out.take() {
            self.send_raw(held).await;
        }
        if let Some(bytes) = self.rel.due(Instant::now()) {
            self.stat(|s| s.retransmissions += 1);
            self.send_raw(bytes).await;
        }
    }

    async fn resend_all(&mut self) {
        let all = self.rel.all_unacked(Instant::now());
        let n = all.len() as u64;
        self.stat(|s| s.retransmissions += n);
        for bytes in all {
            self.send_raw(bytes).await;
        }
    }

    async fn on_frame(&mut self, data: &[u8]) {
        let strict = self.shared.scenario().digest_mode == DigestMode::Strict;
        let msg = match ClientMessage::decode(data, strict) {
            Ok(msg) => msg,
            Err(DecodeError::Digest) => {
                self.stat(|s| s.dropped_bad_digest += 1);
                return;
            }
            Err(_) => {
                self.stat(|s| s.dropped_malformed += 1);
                return;
            }
        };
        match msg.message_type.as_str() {
            ACKNOWLEDGE => {
                let Some(ack) = msg.ack_payload() else {
                    self.stat(|s| s.dropped_malformed += 1);
                    return;
                };
                let known = self
                    .rel
                    .acked(ack.acknowledged_message_sequence_number, Instant::now());
                self.stat(|s| {
                    if known {
                        s.acks_received += 1;
                    } else {
                        s.unknown_acks += 1;
                    }
                });
                self.sync_counters();
                self.unpause().await;
            }
            INPUT_STREAM_DATA => {
                self.unpause().await;
                self.on_input(msg).await;
                self.sync_counters();
            }
            _ => {}
        }
    }

    async fn on_input(&mut self, msg: ClientMessage) {
        let seq = msg.sequence_number;
        let (drop, duplicate) = {
            let mut sc = lock(&self.shared.scenario);
            (
                sc.faults.drop_incoming.remove(&seq),
                sc.faults.duplicate_incoming.remove(&seq),
            )
        };
        self.stat(|s| s.messages_received += 1);
        if drop {
            self.stat(|s| s.dropped_injected += 1);
            return;
        }
        if self.rel.conflicts(&msg) {
            self.stat(|s| s.sequence_conflicts += 1);
        }
        let random = self.roll();
        match random {
            Some(RandomFault::Drop) => return,
            Some(RandomFault::Reorder) if self.held_in.is_none() => {
                self.held_in = Some(msg);
                return;
            }
            _ => {}
        }
        let duplicate = duplicate || random == Some(RandomFault::Duplicate);
        self.process_input(msg, duplicate).await;
        if let Some(held) = self.held_in.take() {
            self.process_input(held, false).await;
        }
    }

    /// Acks and delivers an arrival (twice for a duplicate).
    async fn process_input(&mut self, msg: ClientMessage, duplicate: bool) {
        for _ in 0..if duplicate { 2 } else { 1 } {
            match self.rel.arrive(&msg) {
                Arrival::InOrder => {
                    self.ack(&msg).await;
                    let ready = self.rel.drain();
                    self.deliver(msg.clone()).await;
                    for m in ready {
                        self.deliver(m).await;
                    }
                }
                Arrival::Ahead => self.ack(&msg).await,
                Arrival::Full => {}
                Arrival::Duplicate => {
                    self.stat(|s| s.duplicates_received += 1);
                    if self.shared.scenario().duplicate_mode == DuplicateMode::ReAck {
                        self.stat(|s| s.re_acks_sent += 1);
                        self.ack(&msg).await;
                    }
                }
            }
        }
    }

    async fn ack(&mut self, msg: &ClientMessage) {
        let withhold = {
            let sc = lock(&self.shared.scenario);
            sc.faults.withhold_all_acks || sc.faults.withhold_acks.contains(&msg.sequence_number)
        };
        if withhold {
            self.stat(|s| s.acks_withheld += 1);
            return;
        }
        self.stat(|s| s.acks_sent += 1);
        self.send_raw(msg.ack(self.millis()).encode()).await;
    }

    async fn deliver(&mut self, msg: ClientMessage) {
        if self.done {
            return;
        }
        if self.phase != Phase::Complete {
            match (msg.payload_type, self.phase) {
                (payload::HANDSHAKE_RESPONSE, Phase::Sent(since)) => {
                    self.on_handshake_response(&msg.payload, since).await;
                }
                (payload::ENC_CHALLENGE_RESPONSE, Phase::Challenge(since)) => {
                    self.on_challenge_response(&msg.payload, since).await;
                }
                _ => self.stat(|s| s.dropped_before_handshake += 1),
            }
            return;
        }
        let mut msg = msg;
        if msg.payload_type == payload::OUTPUT
            && let Some(keys) = &self.keys
        {
            match kms::open(&keys.agent_decryption, &msg.payload) {
                Ok(plain) => msg.payload = plain,
                Err(e) => {
                    let seq = msg.sequence_number;
                    self.stat(|s| s.kms_decrypt_failures += 1);
                    self.close_channel(
                        &format!(
                            "KMS: the client's Output payload (seq {seq}) does not decrypt: {e}"
                        ),
                        Some(SessionStatus::Failed),
                    )
                    .await;
                    return;
                }
            }
        }
        match msg.payload_type {
            payload::OUTPUT => {
                let len = msg.payload.len();
                self.stat(|s| {
                    s.bytes_in += len as u64;
                    s.largest_output_in = s.largest_output_in.max(len);
                });
                if let Some(port) = self.port.as_mut() {
                    port.input(msg.payload).await;
                } else {
                    self.shell_input(msg.payload).await;
                }
            }
            payload::SIZE => {
                let v: Value = serde_json::from_slice(&msg.payload).unwrap_or_default();
                let dim = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0) as u32;
                let size = (dim("cols"), dim("rows"));
                self.stat(|s| s.sizes.push(size));
            }
            payload::FLAG => {
                let Some(value) = msg.flag() else { return };
                self.stat(|s| s.flags_received.push(value));
                match value {
                    flag::TERMINATE_SESSION => {
                        if let (SessionKind::Shell(_), Some(code)) =
                            (&self.kind, self.shared.scenario().exit_code)
                        {
                            self.send_stream(payload::EXIT_CODE, code.to_string().into_bytes())
                                .await;
                        }
                        self.close_channel(
                            "Session terminated by the client",
                            Some(SessionStatus::Terminated),
                        )
                        .await;
                    }
                    flag::DISCONNECT_TO_PORT => {
                        if let Some(port) = self.port.as_mut() {
                            port.disconnect();
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    async fn shell_input(&mut self, bytes: Vec<u8>) {
        self.stat(|s| s.shell_input.extend_from_slice(&bytes));
        let out = match self.shared.scenario().shell_echo {
            ShellEcho::Verbatim => bytes,
            ShellEcho::Uppercase => bytes.to_ascii_uppercase(),
            ShellEcho::Silent => return,
        };
        let n = out.len() as u64;
        self.stat(|s| s.bytes_out += n);
        self.send_stream(payload::OUTPUT, out).await;
    }

    async fn on_handshake_response(&mut self, body: &[u8], since: Instant) {
        let actions = if self.kms.is_some() { 2 } else { 1 };
        let accepted = match handshake::check_response_kms(body, actions, self.kms.is_some()) {
            Ok(accepted) => accepted,
            Err(why) => return self.fail_handshake(why).await,
        };
        let version = accepted.client_version.clone();
        let numeric = accepted.numeric_version;
        self.stat(|s| {
            s.handshake_client_version = Some(version);
            s.client_version_numeric = Some(numeric);
        });
        let Some(kms) = self.kms.clone() else {
            return self.finish_handshake(accepted, since, "").await;
        };
        let blob = match kms::unb64(accepted.kms_cipher_text_key.as_deref().unwrap_or("")) {
            Ok(blob) => blob,
            Err(e) => {
                return self
                    .fail_handshake(format!("KMSEncryption failed: KMSCipherTextKey {e}"))
                    .await;
            }
        };
        let context = kms::session_context(&self.id, &self.target);
        let recorded = context.clone();
        self.stat(|s| s.kms_context = Some(recorded));
        self.pending = Some(accepted);
        self.phase = Phase::Kms(since);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            if !kms.delay.is_zero() {
                tokio::time::sleep(kms.delay).await;
            }
            let result = kms.service.decrypt(blob, context).await;
            let _ = tx.send(Input::KmsDecrypted(result));
        });
    }

    /// The KMS answer: the agent's keys, then the EncChallengeRequest.
    async fn on_kms_decrypted(&mut self, result: Result<Vec<u8>, String>) {
        let Phase::Kms(since) = self.phase else {
            return;
        };
        let keys = match result {
            Ok(plain) => match SessionKeys::from_data_key(&plain) {
                Some(keys) => keys,
                None => {
                    return self
                        .fail_handshake(format!(
                            "KMSEncryption failed: the data key has {} bytes, {} expected",
                            plain.len(),
                            kms::DATA_KEY_LEN
                        ))
                        .await;
                }
            },
            Err(e) => {
                return self
                    .fail_handshake(format!("KMSEncryption failed: {e}"))
                    .await;
            }
        };
        let challenge = kms::random_bytes(64);
        let sealed = kms::seal(&keys.agent_encryption, &challenge);
        self.keys = Some(keys);
        self.challenge = Some(challenge);
        self.phase = Phase::Challenge(since);
        let body = serde_json::json!({ "Challenge": kms::b64(&sealed) });
        self.send_stream(
            payload::ENC_CHALLENGE_REQUEST,
            serde_json::to_vec(&body).unwrap_or_default(),
        )
        .await;
    }

    /// The EncChallengeResponse: the challenge, sealed with the client's
    /// encryption key (the agent's decryption key).
    async fn on_challenge_response(&mut self, body: &[u8], since: Instant) {
        let (Some(keys), Some(challenge)) = (self.keys.clone(), self.challenge.clone()) else {
            return;
        };
        let answer = serde_json::from_slice::<Value>(body)
            .map_err(|e| format!("EncChallengeResponse is not JSON: {e}"))
            .and_then(|v| {
                v.get("Challenge")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| "EncChallengeResponse has no Challenge".to_owned())
            })
            .and_then(|text| kms::unb64(&text))
            .and_then(|sealed| kms::open(&keys.agent_decryption, &sealed));
        match answer {
            Ok(plain) if plain == challenge => {
                self.challenge = None;
                self.stat(|s| s.challenge_passed = true);
                let accepted = self.pending.take().unwrap_or(Accepted {
                    client_version: String::new(),
                    numeric_version: false,
                    kms_cipher_text_key: None,
                });
                self.finish_handshake(accepted, since, kms::KMS_CUSTOMER_MESSAGE)
                    .await;
            }
            Ok(_) => {
                self.fail_handshake(
                    "EncChallenge failed: the answer decrypts to other bytes than the challenge"
                        .into(),
                )
                .await;
            }
            Err(e) => {
                self.fail_handshake(format!("EncChallenge failed: {e}"))
                    .await;
            }
        }
    }

    /// Sets up the port handler and sends HandshakeComplete.
    async fn finish_handshake(&mut self, accepted: Accepted, since: Instant, message: &str) {
        if let SessionKind::Port(props) = &self.kind {
            let agent_version = self.shared.scenario().agent_version;
            let mux = handshake::agent_has_mux(&agent_version)
                && handshake::uses_mux(&self.kind, &accepted.client_version);
            self.stat(|s| s.mux = Some(mux));
            self.port = Some(Port::new(
                mux,
                props,
                self.shared.clone(),
                self.id.clone(),
                self.tx.clone(),
                self.data_tx.clone(),
            ));
        }
        let elapsed = since.elapsed().as_nanos();
        self.send_stream(
            payload::HANDSHAKE_COMPLETE,
            handshake::complete_payload_with_message(elapsed, message),
        )
        .await;
        self.phase = Phase::Complete;
        self.stat(|s| s.handshake_complete = true);
    }

    /// Cancels the session for a failed handshake.
    async fn fail_handshake(&mut self, why: String) {
        self.stat(|s| s.handshake_error = Some(why.clone()));
        self.close_channel(
            &format!("handshake failed: {why}"),
            Some(SessionStatus::Failed),
        )
        .await;
    }

    /// Sends `channel_closed`, closes the socket and ends the task.
    async fn close_channel(&mut self, output: &str, status: Option<SessionStatus>) {
        let created = self
            .shared
            .control
            .now()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let body = serde_json::json!({
            "MessageId": uuid::Uuid::new_v4().to_string(),
            "CreatedDate": created,
            "DestinationId": self.id,
            "SessionId": self.id,
            "MessageType": CHANNEL_CLOSED,
            "SchemaVersion": 1,
            "Output": output,
        });
        let msg = ClientMessage::new(
            CHANNEL_CLOSED,
            0,
            0,
            0,
            serde_json::to_vec(&body).unwrap_or_default(),
            self.millis(),
        );
        self.send_raw(msg.encode()).await;
        if let Some((_, mut sink)) = self.socket.take() {
            let _ = sink.close().await;
        }
        let text = output.to_owned();
        self.stat(|s| {
            s.channel_closed = Some(text);
            s.attached = false;
        });
        if let Some(status) = status {
            self.shared.control.set_status(&self.id, status);
        }
        self.port = None;
        self.done = true;
    }
}
