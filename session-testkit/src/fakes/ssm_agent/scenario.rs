//! The knobs of the fake ([`AgentScenario`], [`Faults`]) and what it
//! counts ([`SessionStats`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::kms::KmsScenario;

/// How the agent checks incoming frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DigestMode {
    /// Reject (and do not ack) a frame whose digest or length is wrong, so
    /// the client's bugs surface (the default).
    #[default]
    Strict,
    /// What the real agent does: no digest check, the payload runs to the
    /// end of the frame.
    Lenient,
}

/// What the agent does with a stream message it already processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DuplicateMode {
    /// Ack it again (the improved rule; the default).
    #[default]
    ReAck,
    /// Drop it silently, as the plugin and the agent do.
    Reference,
}

/// What a shell session answers to input bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShellEcho {
    /// The bytes as they came.
    #[default]
    Verbatim,
    /// ASCII letters upper-cased, so tests can tell echo from local input.
    Uppercase,
    /// No answer (input is only recorded); a test answers with
    /// [`SsmAgentFake::send_stream`](super::SsmAgentFake::send_stream).
    Silent,
}

/// Which smux v1 server serves port sessions in mux mode.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SmuxServer {
    /// The `async_smux` crate, in process (the default).
    #[default]
    AsyncSmux,
    /// xtaci/smux, the library of the real agent and plugin, through the
    /// Go harness `session-testkit/peers/smux-xtaci` (found with
    /// [`peers::smux_xtaci`](crate::peers::smux_xtaci)), run as a child
    /// process per session.
    ///
    /// It dials the session's target (as resolved when the session starts:
    /// a later change of [`AgentScenario::target`] does not reach it), and
    /// ignores [`AgentScenario::fail_dial`]: point it at a closed port to
    /// make dials fail.
    Xtaci {
        /// The harness executable.
        program: PathBuf,
        /// xtaci's own keepalive (its NOPs and its idle time-out).
        keepalive: XtaciKeepalive,
    },
}

/// The keepalive of the xtaci smux server.
///
/// Chosen explicitly by each test rather than derived from
/// [`AgentScenario::agent_version`]: the reference says the agent stops
/// relying on smux keepalive after 3.1.1511.0 but not exactly which
/// settings it then uses, so the fake does not guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XtaciKeepalive {
    /// xtaci's `DefaultConfig`: a NOP every 10 s, and the session closes
    /// after 30 s without input.
    #[default]
    Defaults,
    /// `KeepAliveDisabled`: no NOPs, no idle time-out.
    Disabled,
    /// A NOP every `interval`; the session closes when nothing arrived
    /// during one `timeout` period (`timeout` ≥ `interval`).
    Custom {
        /// Between two NOPs.
        interval: Duration,
        /// Idle time that closes the session.
        timeout: Duration,
    },
}

/// Fault injection. Sequence numbers name messages of one direction; each
/// entry acts once (it is removed when used) unless said otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// Ignore the first arrival of these client sequence numbers (no ack,
    /// as if lost): the client must retransmit.
    pub drop_incoming: BTreeSet<i64>,
    /// Do not transmit these agent sequence numbers the first time (they
    /// stay buffered): the fake's retransmission must deliver them.
    pub drop_outgoing: BTreeSet<i64>,
    /// Process the first arrival of these client sequence numbers twice (a
    /// duplicate: the second is re-acked or dropped per [`DuplicateMode`]).
    pub duplicate_incoming: BTreeSet<i64>,
    /// Transmit these agent sequence numbers twice.
    pub duplicate_outgoing: BTreeSet<i64>,
    /// Hold the agent messages `start .. start + len` and transmit them in
    /// reverse order once the last is produced (`(start, len)`).
    pub reorder_outgoing: Option<(i64, usize)>,
    /// Withhold every ack while set (persistent, not used up).
    pub withhold_all_acks: bool,
    /// Withhold the acks of these client sequence numbers (persistent: every
    /// arrival).
    pub withhold_acks: BTreeSet<i64>,
    /// Seeded random faults in both directions (persistent), on top of the
    /// sets above.
    pub random: Option<RandomFaults>,
}

/// Random faults drawn from a seeded generator (SplitMix64), so that a run
/// can be repeated: each stream message, in each direction, once the
/// handshake is complete, is dropped, duplicated or reordered with the
/// given odds (in thousandths, checked in that order on one draw).
///
/// - client → agent: a dropped message is not acked (the client must
///   retransmit it); a duplicated one is processed twice; a reordered one
///   is held back and processed after the next arrival.
/// - agent → client: a dropped message is not transmitted (it stays
///   buffered, the fake's retransmission delivers it); a duplicated one is
///   transmitted twice; a reordered one is held back and transmitted after
///   the next one (or at the next 100 ms tick). Messages past the agent's
///   buffer (10,000 unacked), which it could never resend, are neither
///   dropped nor held back.
///
/// Every fault is counted in [`SessionStats::random_faults`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RandomFaults {
    /// The generator's seed.
    pub seed: u64,
    /// Odds of a drop, per 1,000 messages.
    pub drop_per_mille: u16,
    /// Odds of a duplicate, per 1,000 messages.
    pub duplicate_per_mille: u16,
    /// Odds of a reorder, per 1,000 messages.
    pub reorder_per_mille: u16,
}

/// What [`RandomFaults`] does to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RandomFault {
    Drop,
    Duplicate,
    Reorder,
}

/// The generator behind [`RandomFaults`] (SplitMix64).
#[derive(Debug, Clone)]
pub(crate) struct FaultDice {
    state: u64,
}

impl FaultDice {
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// One draw against `odds`.
    pub(crate) fn roll(&mut self, odds: &RandomFaults) -> Option<RandomFault> {
        let r = self.next() % 1000;
        let drop = u64::from(odds.drop_per_mille);
        let duplicate = drop + u64::from(odds.duplicate_per_mille);
        let reorder = duplicate + u64::from(odds.reorder_per_mille);
        if r < drop {
            Some(RandomFault::Drop)
        } else if r < duplicate {
            Some(RandomFault::Duplicate)
        } else if r < reorder {
            Some(RandomFault::Reorder)
        } else {
            None
        }
    }
}

/// The behaviour of the fake agent. Change it while running with
/// [`SsmAgentFake::update_scenario`](super::SsmAgentFake::update_scenario).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentScenario {
    /// `AgentVersion` of the HandshakeRequest (default `3.3.1142.0`).
    pub agent_version: String,
    /// Where port sessions connect to. `None`: `127.0.0.1:<portNumber>` (or
    /// `<host>:<portNumber>` for a remote-host document).
    pub target: Option<SocketAddr>,
    /// Digest and length checking.
    pub digest_mode: DigestMode,
    /// Duplicate handling.
    pub duplicate_mode: DuplicateMode,
    /// Shell echo.
    pub shell_echo: ShellEcho,
    /// Sent as an ExitCode payload (type 12, decimal text) before
    /// `channel_closed` when a shell session ends by Flag TerminateSession.
    pub exit_code: Option<i32>,
    /// Port sessions fail to dial the target (mux: Flag ConnectToPortError +
    /// FIN on the stream; basic: Flag ConnectToPortError).
    pub fail_dial: bool,
    /// Fault injection.
    pub faults: Faults,
    /// The smux server of mux-mode port sessions.
    pub smux_server: SmuxServer,
    /// KMS encryption (`ssm.md` §2.8): the HandshakeRequest asks for
    /// `KMSEncryption`, the agent decrypts the client's data key, runs the
    /// EncChallenge and encrypts / decrypts Output payloads. `None` (the
    /// default): no encryption. Read when a session's handshake starts.
    pub kms: Option<KmsScenario>,
    /// Closes the socket with code 1000 (as the service does about hourly)
    /// every interval, measured from each attach, while it is attached and
    /// the handshake is complete (checked on the 100 ms resend tick). Read
    /// at each attach. `None` (the default): never.
    pub close_every: Option<Duration>,
}

impl Default for AgentScenario {
    fn default() -> Self {
        Self {
            agent_version: "3.3.1142.0".into(),
            target: None,
            digest_mode: DigestMode::default(),
            duplicate_mode: DuplicateMode::default(),
            shell_echo: ShellEcho::default(),
            exit_code: None,
            fail_dial: false,
            faults: Faults::default(),
            smux_server: SmuxServer::default(),
            kms: None,
            close_every: None,
        }
    }
}

impl AgentScenario {
    /// The default scenario with port sessions connecting to `target`.
    pub fn port_to(target: SocketAddr) -> Self {
        Self {
            target: Some(target),
            ..Self::default()
        }
    }
}

/// One OpenDataChannel the fake accepted or refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenRecord {
    /// `ClientId` of the first frame.
    pub client_id: Option<String>,
    /// `ClientVersion` of the first frame.
    pub client_version: Option<String>,
    /// `RequestId` of the first frame.
    pub request_id: Option<String>,
    /// Whether the upgrade request had an `Authorization` header.
    pub authorization: bool,
    /// Whether it was accepted.
    pub accepted: bool,
    /// Why it was refused.
    pub refused: Option<String>,
}

/// What the fake saw and did in one session (all data channels of it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Every OpenDataChannel, oldest first.
    pub opens: Vec<OpenRecord>,
    /// Whether a data channel is attached now.
    pub attached: bool,
    /// `ClientVersion` of the HandshakeResponse.
    pub handshake_client_version: Option<String>,
    /// Whether that version is dotted-numeric (`1.2.694.0`); the agent
    /// compares other versions as text, component by component.
    pub client_version_numeric: Option<bool>,
    /// Whether HandshakeComplete was sent.
    pub handshake_complete: bool,
    /// Why the handshake failed (the session was cancelled).
    pub handshake_error: Option<String>,
    /// Port sessions: whether the agent runs mux (smux) mode.
    pub mux: Option<bool>,
    /// Acks sent (re-acks included).
    pub acks_sent: u64,
    /// Acks of duplicates.
    pub re_acks_sent: u64,
    /// Acks withheld by [`Faults::withhold_acks`] / `withhold_all_acks`.
    pub acks_withheld: u64,
    /// Acks received that removed a buffered message.
    pub acks_received: u64,
    /// Acks received for an unknown (already acked) sequence number.
    pub unknown_acks: u64,
    /// Stream messages received (every arrival).
    pub messages_received: u64,
    /// Arrivals of already processed sequence numbers.
    pub duplicates_received: u64,
    /// Arrivals with a sequence number seen before under another MessageId
    /// (a client that reset its counter).
    pub sequence_conflicts: u64,
    /// Frames dropped for a bad digest (strict mode).
    pub dropped_bad_digest: u64,
    /// Frames dropped as malformed (length, header, type, date).
    pub dropped_malformed: u64,
    /// Stream data acked and thrown away before HandshakeComplete.
    pub dropped_before_handshake: u64,
    /// Arrivals dropped by [`Faults::drop_incoming`].
    pub dropped_injected: u64,
    /// Non-binary frames after the first (ignored).
    pub non_binary_frames: u64,
    /// Stream messages the agent produced (sequence numbers used).
    pub messages_sent: u64,
    /// Retransmissions.
    pub retransmissions: u64,
    /// Agent messages not acked yet.
    pub unacked: usize,
    /// The next client sequence number expected.
    pub expected_sequence: i64,
    /// Shell sessions: every input byte, in order.
    pub shell_input: Vec<u8>,
    /// Size payloads `(cols, rows)`.
    pub sizes: Vec<(u32, u32)>,
    /// Flag values received.
    pub flags_received: Vec<u32>,
    /// Port sessions: TCP connections made to the target.
    pub target_connections: u64,
    /// Port sessions: dials that failed (or were made to fail).
    pub dial_failures: u64,
    /// Mux sessions: smux stream ids accepted (reported by the server,
    /// whichever it is).
    pub smux_streams: Vec<u32>,
    /// Mux sessions: smux NOP (keepalive) frames from the client, counted
    /// by the fake's own frame scanner ahead of the smux server.
    pub smux_nops: u64,
    /// Mux sessions served by [`SmuxServer::Xtaci`]: why the smux session
    /// ended (`session-closed: <error>` from the harness, e.g. after its
    /// keepalive time-out), or why the harness could not run. Forwarding
    /// stops then.
    pub smux_closed: Option<String>,
    /// Faults injected by [`Faults::random`], both directions.
    pub random_faults: u64,
    /// Bytes received as Output payloads.
    pub bytes_in: u64,
    /// The largest Output payload received, in bytes.
    pub largest_output_in: usize,
    /// Bytes sent as Output payloads.
    pub bytes_out: u64,
    /// The `Output` text of the `channel_closed` sent, once sent.
    pub channel_closed: Option<String>,
    /// Whether the session is KMS-encrypted (the HandshakeRequest asked
    /// for `KMSEncryption`).
    pub kms: bool,
    /// The encryption context the agent's `Decrypt` call used.
    pub kms_context: Option<BTreeMap<String, String>>,
    /// Whether the client answered the EncChallenge correctly.
    pub challenge_passed: bool,
    /// Client Output payloads that did not decrypt (the session is
    /// cancelled at the first).
    pub kms_decrypt_failures: u64,
    /// Redials accepted (resumes; the first open is not counted).
    pub redials_accepted: u64,
    /// Close frames sent by `close_socket` and [`AgentScenario::close_every`].
    pub closes_sent: u64,
    /// Whether `restart_sequence` took effect (on a redial, the agent's
    /// outgoing counter restarted at 0 and its unacked messages were
    /// discarded).
    pub sequence_restarted: bool,
    /// Whether the socket is silent now (`go_silent`, until the next
    /// redial).
    pub silent: bool,
}
