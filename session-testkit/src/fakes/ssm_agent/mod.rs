//! A fake SSM data channel: the Message Gateway Service (MGS) and the agent
//! behind it, in one WebSocket server on `127.0.0.1`, plugged into
//! [`SsmControlFake`].
//!
//! Written from the project's SSM reference only (`ssm.md` §2, §3, §5 and
//! `tunnel-peers.md` §2), with its own ClientMessage [`codec`] (checked
//! against the golden vectors S1–S6), and checked from outside by
//! pyssm-client (`tests/ssm_agent_pyssm.rs`).
//!
//! **Opening.** The server serves `ws://127.0.0.1:<port>/v1/data-channel/<SessionId>`
//! (query ignored; upgrades with and without `Authorization` are accepted
//! and recorded). The first frame must be a text OpenDataChannel whose
//! `TokenValue` is the session's current one-shot token
//! ([`SsmControlFake::consume_token`]); anything else closes the socket
//! (close code 1008). A redial of a session already seen must also carry
//! the same `ClientId`. The session then becomes `Connected`; after that,
//! every frame is a binary ClientMessage.
//!
//! **Agent.** On the first channel of a session the agent sends the
//! HandshakeRequest (`output_stream_data`, seq 0, flags SYN, PayloadType 5)
//! with the scenario's `AgentVersion` and the session type of the session's
//! document ([`handshake::SessionKind`]), checks the HandshakeResponse (one
//! successful entry per action, else the session is cancelled:
//! `channel_closed`, status `Failed`), picks mux or basic port mode as the
//! agent does (`type == LocalPortForwarding` and ClientVersion ≥ 1.1.70;
//! an `AgentVersion` of 3.0.196.0 or older has no smux and always runs
//! basic mode), and sends HandshakeComplete. Stream data before that is acked, dropped
//! and counted.
//!
//! **KMS** ([`AgentScenario::kms`], `ssm.md` §2.7 step 3 and §2.8). The
//! HandshakeRequest carries a second action, `KMSEncryption` with the
//! scenario's `KMSKeyId`. Its answer must have ActionStatus 1 and an
//! `ActionResult` (a JSON object, or a string holding one) with
//! `KMSCipherTextKey`; after [`KmsScenario::delay`] the agent calls
//! `Decrypt` on the scenario's [`KmsDecrypt`] ([`MotoKms`] for moto's KMS,
//! [`StaticKms`] without a peer) with the encryption context
//! `aws:ssm:SessionId` / `aws:ssm:TargetId` (the session's `Target`).
//! Bytes `0..32` of the 64-byte data key are the agent's encryption key,
//! `32..64` its decryption key. It then sends EncChallengeRequest
//! (PayloadType 8, 64 random bytes sealed with its encryption key), expects
//! the same bytes back sealed with the client's key (PayloadType 9), and
//! sends HandshakeComplete with `CustomerMessage` "This session is
//! encrypted using AWS KMS.". Every failure (non-success status, as with
//! Unsupported and its `Error`; a missing key; the KMS error, e.g.
//! `InvalidCiphertextException`; a data key that is not 64 bytes; a wrong
//! challenge answer) cancels the session like any handshake failure, with
//! the cause in [`SessionStats::handshake_error`] and the `channel_closed`
//! `Output`. Afterwards the client's Output payloads are opened
//! (`nonce(12) ‖ AES-256-GCM ‖ tag(16)`, no AAD; one that does not open is
//! counted in [`SessionStats::kms_decrypt_failures`] and cancels the
//! session, never passed on), and the agent's Output, StdErr and ExitCode
//! payloads are sealed with a fresh nonce when the message is made (a
//! retransmission resends the same bytes). Size, Flag and handshake
//! payloads stay in clear; the shell echo and the port handlers see
//! plaintext.
//!
//! **Reliability.** In-order and ahead-of-order client messages are acked
//! (reorder buffer of 10,000); duplicates are re-acked
//! ([`DuplicateMode::ReAck`], default) or dropped silently
//! ([`DuplicateMode::Reference`]). The agent keeps every message it sends
//! until acked and retransmits the oldest one when its RTO (initial 200 ms,
//! Jacobson/Karels on acks, capped at 1 s) has run out, checked every
//! 100 ms. On a redial (resume) and on `start_publication` it resends every
//! unacked message at once; the handshake is not repeated. Timers use
//! Tokio's clock (so `tokio::time::pause` drives them).
//!
//! **Sessions.** Shell (`Standard_Stream`, `InteractiveCommands`,
//! `NonInteractiveCommands`): Output input is echoed back
//! ([`ShellEcho`]), Size payloads recorded, Flag TerminateSession ends the
//! session (optional ExitCode payload, then `channel_closed`). Port basic:
//! Output bytes go to one TCP connection to the target; Flag
//! DisconnectToPort closes it and the next data redials (a failed dial
//! sends Flag ConnectToPortError and drops the data). Port mux: the
//! Output bytes are one smux v1 byte stream served by the smux server
//! [`AgentScenario::smux_server`] names, never by code of ours nor by the
//! client's: the `async_smux` crate (default), or xtaci/smux, the real
//! agent's library, through the Go harness
//! `session-testkit/peers/smux-xtaci` run as a child process
//! ([`SmuxServer::Xtaci`], found with
//! [`peers::smux_xtaci`](crate::peers::smux_xtaci); its keepalive is set
//! by the scenario, not derived from `AgentVersion`). Each accepted stream
//! dials the target and copies both ways; a failed dial sends Flag
//! ConnectToPortError and a FIN on the stream. The client's NOP frames are
//! counted by a small header scanner of the fake's own
//! ([`SessionStats::smux_nops`]), since the smux server swallows them; an
//! xtaci session that ends (e.g. its keepalive time-out) is recorded in
//! [`SessionStats::smux_closed`] and stops forwarding.
//!
//! **Control.** `TerminateSession` on the control plane sends
//! `channel_closed` and closes the socket; so do
//! [`SsmAgentFake::close_channel`] and a Flag TerminateSession.
//! [`SsmAgentFake::drop_socket`] closes the socket mid-stream (status
//! `Disconnected`): the client must call ResumeSession and redial with the
//! new token. [`SsmAgentFake::pause_publication`] /
//! [`SsmAgentFake::start_publication`] send those messages and stop / resume
//! the agent's sending.
//!
//! **Resume faults** (`ssm.md` §2.11). [`SsmAgentFake::close_socket`] sends
//! a close frame with a chosen code (1000, as the service does about
//! hourly) and closes, like `drop_socket`; [`AgentScenario::close_every`]
//! does so periodically from each attach. [`SsmAgentFake::go_silent`]
//! leaves the socket half-open (nothing read, nothing written) until the
//! client redials with a new token. [`SsmAgentFake::restart_sequence`]
//! makes the next redial restart the agent's outgoing counter at 0 and
//! forget its unacked messages. Random drop / duplicate / reorder both
//! ways is [`Faults::random`], withheld acks [`Faults::withhold_acks`].
//! On the control plane, [`SsmControlFake::fail_resume`],
//! [`SsmControlFake::set_resume_latency`] and
//! [`SsmControlFake::forget_session`] make ResumeSession throttle, fail,
//! answer slowly or deny the session.
//!
//! **Not (yet) modelled.** The "handler not ready" mode; corrupting the agent's own digests or
//! lengths, delays, and splitting/coalescing smux frames on purpose (the
//! agent reads ≤ 1,024 bytes per Output, so frames split naturally);
//! reordering chosen client messages (only [`RandomFaults`] reorders
//! them); behaviour that depends on `AgentVersion` other than the port
//! mode (the agent's own smux keepalive is a scenario knob of the xtaci
//! server instead). The default smux server is `async_smux` 0.4: unlike
//! xtaci/smux it treats cmd 4 (UPD) as a protocol error and answers a PSH
//! for an unknown stream with a FIN instead of dropping it silently. The
//! xtaci server ignores [`AgentScenario::fail_dial`] and later changes of
//! [`AgentScenario::target`] (the child process is given the target once).
//! KMS: `KMSCipherTextHash` is ignored; moto 5 does not refuse `Decrypt`
//! with a disabled key (no `DisabledException`), so a disabled key cannot
//! be tested against it.
//!
//! ```no_run
//! # async fn demo() {
//! use session_testkit::fakes::SsmControlFake;
//! use session_testkit::fakes::ssm_agent::{AgentScenario, SsmAgentFake};
//!
//! let control = SsmControlFake::start().await;
//! control.add_target("i-0123456789abcdef0");
//! let echo: std::net::SocketAddr = "127.0.0.1:7".parse().unwrap();
//! let agent = SsmAgentFake::start(&control, AgentScenario::port_to(echo)).await;
//! // Point the client at control.endpoint(); StreamUrls now lead to `agent`.
//! # let id = String::new();
//! let stats = agent.wait_for(&id, |s| s.handshake_complete).await;
//! assert_eq!(stats.dropped_bad_digest, 0);
//! # }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::ssm::{SessionEvent, SsmControlFake};

pub mod codec;
pub mod handshake;
pub mod kms;
mod port;
mod reliability;
mod scenario;
mod server;
mod session;
#[cfg(test)]
mod tests;

pub use kms::{KmsDecrypt, KmsScenario, MotoKms, StaticKms};
pub use scenario::{
    AgentScenario, DigestMode, DuplicateMode, Faults, OpenRecord, RandomFaults, SessionStats,
    ShellEcho, SmuxServer, XtaciKeepalive,
};

use session::{Command, Input};

/// How long [`SsmAgentFake::wait_for`] waits before it panics.
pub const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// State shared by the server, the session tasks and the handle.
pub(crate) struct Shared {
    pub(crate) control: SsmControlFake,
    pub(crate) scenario: Mutex<AgentScenario>,
    pub(crate) stats: watch::Sender<BTreeMap<String, SessionStats>>,
    pub(crate) sessions: Mutex<HashMap<String, mpsc::UnboundedSender<Input>>>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(crate) fn scenario(&self) -> AgentScenario {
        lock(&self.scenario).clone()
    }

    /// Changes the stats of `session_id` (creating them) and wakes waiters.
    pub(crate) fn stat(&self, session_id: &str, f: impl FnOnce(&mut SessionStats)) {
        self.stats
            .send_modify(|all| f(all.entry(session_id.to_owned()).or_default()));
    }

    fn send(&self, session_id: &str, command: Command) -> bool {
        lock(&self.sessions)
            .get(session_id)
            .is_some_and(|tx| tx.send(Input::Command(command)).is_ok())
    }
}

/// The fake MGS + agent. Dropping it stops the server and every session.
pub struct SsmAgentFake {
    addr: SocketAddr,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl fmt::Debug for SsmAgentFake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SsmAgentFake")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for SsmAgentFake {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        for tx in lock(&self.shared.sessions).values() {
            let _ = tx.send(Input::Command(Command::Stop));
        }
    }
}

impl SsmAgentFake {
    /// Binds `127.0.0.1:0`, points `control`'s `StreamUrl`s at it
    /// ([`SsmControlFake::set_stream_base`]) and serves data channels of
    /// `control`'s sessions with `scenario`.
    ///
    /// # Panics
    ///
    /// When no local port can be bound, or outside a Tokio runtime.
    pub async fn start(control: &SsmControlFake, scenario: AgentScenario) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("SsmAgentFake: cannot bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("SsmAgentFake: no address");
        control.set_stream_base(&format!("ws://{addr}"));
        let shared = Arc::new(Shared {
            control: control.view(),
            scenario: Mutex::new(scenario),
            stats: watch::Sender::new(BTreeMap::new()),
            sessions: Mutex::new(HashMap::new()),
        });
        let accept = tokio::spawn(server::serve(listener, shared.clone()));
        let mut events = control.subscribe();
        let watcher = {
            let shared = shared.clone();
            tokio::spawn(async move {
                use tokio::sync::broadcast::error::RecvError;
                loop {
                    match events.recv().await {
                        Ok(SessionEvent::Terminating { session_id }) => {
                            shared.send(&session_id, Command::Terminating);
                        }
                        Ok(_) | Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => break,
                    }
                }
            })
        };
        Self {
            addr,
            shared,
            tasks: vec![accept, watcher],
        }
    }

    /// The address the WebSocket server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://127.0.0.1:<port>`, the stream base given to the control fake.
    pub fn stream_base(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// A copy of the current scenario.
    pub fn scenario(&self) -> AgentScenario {
        self.shared.scenario()
    }

    /// Changes the scenario; sessions see the change at their next step.
    pub fn update_scenario(&self, f: impl FnOnce(&mut AgentScenario)) {
        f(&mut lock(&self.shared.scenario));
    }

    /// The stats of `session_id`, once its data channel was dialled.
    pub fn stats(&self, session_id: &str) -> Option<SessionStats> {
        self.shared.stats.borrow().get(session_id).cloned()
    }

    /// The stats of every session dialled so far, by session id.
    pub fn all_stats(&self) -> BTreeMap<String, SessionStats> {
        self.shared.stats.borrow().clone()
    }

    /// Waits until `session_id`'s stats satisfy `pred`, and returns them.
    ///
    /// # Panics
    ///
    /// After [`WAIT_LIMIT`], with the last stats.
    pub async fn wait_for(
        &self,
        session_id: &str,
        mut pred: impl FnMut(&SessionStats) -> bool,
    ) -> SessionStats {
        let mut rx = self.shared.stats.subscribe();
        let wait = rx.wait_for(|all| all.get(session_id).is_some_and(&mut pred));
        match tokio::time::timeout(WAIT_LIMIT, wait).await {
            Ok(Ok(all)) => all.get(session_id).cloned().unwrap_or_default(),
            _ => panic!(
                "SsmAgentFake: condition on {session_id} not met; stats: {:#?}",
                self.stats(session_id)
            ),
        }
    }

    /// Waits until some session's stats satisfy `pred`; returns its id.
    ///
    /// # Panics
    ///
    /// After [`WAIT_LIMIT`].
    pub async fn wait_for_any(&self, mut pred: impl FnMut(&SessionStats) -> bool) -> String {
        let mut rx = self.shared.stats.subscribe();
        let wait = rx.wait_for(|all| all.values().any(&mut pred));
        match tokio::time::timeout(WAIT_LIMIT, wait).await {
            Ok(Ok(all)) => all
                .iter()
                .find(|(_, s)| pred(s))
                .map(|(id, _)| id.clone())
                .unwrap_or_default(),
            _ => panic!("SsmAgentFake: no session met the condition"),
        }
    }

    /// Closes the session's socket mid-stream (no `channel_closed`): the
    /// session becomes `Disconnected` and accepts a redial with the token
    /// of the next `ResumeSession`. False when it has no live session task.
    pub fn drop_socket(&self, session_id: &str) -> bool {
        self.shared.send(session_id, Command::DropSocket)
    }

    /// Sends a websocket close frame with `code` and `reason` (e.g. 1000,
    /// as the service does about hourly), then closes the socket: the same
    /// session effect as [`drop_socket`](Self::drop_socket) (`Disconnected`,
    /// resumable with the next ResumeSession token). Counted in
    /// [`SessionStats::closes_sent`]. False when it has no live session
    /// task.
    pub fn close_socket(&self, session_id: &str, code: u16, reason: &str) -> bool {
        self.shared
            .send(session_id, Command::CloseSocket(code, reason.to_owned()))
    }

    /// A half-open connection: the agent stops reading from and writing to
    /// the current socket (no close, no acks, no data, no retransmission on
    /// it) until the client redials with a new ResumeSession token; then
    /// the silent socket is dropped and the session goes on on the new one
    /// (resending its unacked messages as on any redial). False when it
    /// has no live session task.
    pub fn go_silent(&self, session_id: &str) -> bool {
        self.shared.send(session_id, Command::GoSilent)
    }

    /// An agent that restarted: from the next redial on, its outgoing
    /// sequence counter starts again at 0 and its unacked messages are
    /// discarded ([`SessionStats::sequence_restarted`] once applied). The
    /// client should end the session with a clear reason rather than
    /// deliver data. False when it has no live session task.
    pub fn restart_sequence(&self, session_id: &str) -> bool {
        self.shared.send(session_id, Command::RestartSequence)
    }

    /// Sends `pause_publication` and stops the agent's sending and
    /// retransmission until [`start_publication`](Self::start_publication)
    /// (or any client stream message or ack).
    pub fn pause_publication(&self, session_id: &str) -> bool {
        self.shared.send(session_id, Command::Pause)
    }

    /// Sends `start_publication` and resumes sending (every unacked message
    /// is resent).
    pub fn start_publication(&self, session_id: &str) -> bool {
        self.shared.send(session_id, Command::Start)
    }

    /// Sends `channel_closed` with `output` as its `Output`, closes the
    /// socket and ends the session (`Terminated`).
    pub fn close_channel(&self, session_id: &str, output: &str) -> bool {
        self.shared
            .send(session_id, Command::ChannelClosed(output.to_owned()))
    }

    /// Sends a stream message from the agent (e.g. an Output in a shell
    /// session, or a Flag), through its reliability layer.
    pub fn send_stream(&self, session_id: &str, payload_type: u32, payload: Vec<u8>) -> bool {
        lock(&self.shared.sessions)
            .get(session_id)
            .is_some_and(|tx| {
                tx.send(Input::App {
                    payload_type,
                    payload,
                })
                .is_ok()
            })
    }
}
