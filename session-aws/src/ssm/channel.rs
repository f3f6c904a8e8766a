//! The data channel: one task owns the websocket, the reliability state
//! ([`Sender`], [`Receiver`]) and the handshake, and talks to its user
//! through two queues (payloads out, [`Incoming`] in).
//!
//! Nothing here sleeps for a fixed time: the task wakes for a frame, for a
//! payload to send (only while the window has room, so the queue is the
//! back-pressure), at the sender's next retransmission deadline on the
//! injected clock, or for room in the incoming queue. It does not wait for
//! the user to read: payloads beyond the queue are held, up to a bound
//! past which it stops reading the websocket, so sending and
//! retransmission go on while the user is busy (a port forward that waits
//! for the window while it has unread data no longer stalls for good).

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use session_core::{Clock, Error, Result};
use time::OffsetDateTime;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::control::StreamTicket;
use super::handshake::{CLIENT_VERSION, handshake_response_as};
#[cfg(feature = "ssm-kms")]
use super::kms::{DataKeyRequest, DataKeySource, PayloadCipher};
use super::message::{ClientMessage, MessageType, PayloadType};
use super::payload::{
    Acknowledgement, ActionStatus, ActionType, ChannelClosed, EncryptionChallenge, FlagValue,
    HandshakeComplete, HandshakeRequest, HandshakeResponse, PortProperties, to_json,
};
use super::reliability::{Disposition, Receiver, ReceiverConfig, Sender, SenderConfig, Side};
use super::transport::{DataChannelSocket, OpenRequest};

/// Payloads the user may queue before `send` waits.
const OUTGOING_QUEUE: usize = 64;
/// Payloads received that the user has not read yet (the queue).
const INCOMING_QUEUE: usize = 1024;
/// Payloads held by the task once the queue is full. Beyond that the task
/// stops reading the websocket (TCP slows the agent down) but still
/// sends and retransmits. It never drops stream data to make room: the
/// agent keeps at most 10,000 unacknowledged messages for retransmission
/// and sends the others unbuffered, so one of those dropped would be lost.
const PENDING_LIMIT: usize = 4 * 1024;

/// How long a channel that refused the agent's handshake waits for the
/// agent to close it before closing the socket itself.
const LINGER: Duration = Duration::from_secs(2);

/// How a [`DataChannel`] is opened and run.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ChannelOptions {
    /// The version reported to the agent ([`CLIENT_VERSION`]).
    pub client_version: String,
    /// Window, RTO and give-up deadline of the outgoing side.
    pub sender: SenderConfig,
    /// Reorder buffer of the incoming side.
    pub receiver: ReceiverConfig,
    /// Time-out for opening the websocket.
    pub open_timeout: Duration,
    /// Time-out for the agent's handshake (15 s, as the agent's own).
    pub handshake_timeout: Duration,
    /// Whether the session may be KMS-encrypted when the agent asks for it
    /// (default true). When false, such a handshake fails with
    /// [`Error::InvalidInput`] naming the setting.
    pub allow_kms: bool,
    /// Where the data key of a KMS-encrypted session comes from (feature
    /// `ssm-kms`); without it, the agent's request is answered
    /// Unsupported and the open fails with [`Error::Unsupported`].
    #[cfg(feature = "ssm-kms")]
    pub kms: Option<ChannelKms>,
    /// How a lost websocket is resumed; `None`: it ends the channel with
    /// [`ChannelEnd::Lost`].
    pub resume: Option<ChannelResume>,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        Self {
            client_version: CLIENT_VERSION.to_owned(),
            sender: SenderConfig::default(),
            receiver: ReceiverConfig::default(),
            open_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(15),
            allow_kms: true,
            #[cfg(feature = "ssm-kms")]
            kms: None,
            resume: None,
        }
    }
}

/// KMS for one channel: the data-key source and the session's target (the
/// encryption context's `aws:ssm:TargetId`; its `aws:ssm:SessionId` is
/// the ticket's session id).
#[cfg(feature = "ssm-kms")]
#[derive(Clone, Debug)]
pub struct ChannelKms {
    /// GenerateDataKey.
    pub source: Arc<dyn DataKeySource>,
    /// The managed node, as given to StartSession.
    pub target_id: String,
}

/// New tickets for a lost channel: ResumeSession of its session.
#[async_trait]
pub trait ResumeTickets: Send + Sync + fmt::Debug {
    /// A fresh ticket (new token, maybe a new StreamUrl); `Ok(None)` when
    /// the service answered without a token (the session timed out).
    ///
    /// # Errors
    ///
    /// The service's; [`Error::NotFound`] when it no longer knows the
    /// session.
    async fn resume(&self) -> Result<Option<StreamTicket>>;
}

/// How a lost websocket is resumed (`ssm.md` §2.11): ResumeSession, a new
/// socket with the same ClientId, the counters and unacknowledged messages
/// kept, every unacknowledged message resent at once.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ChannelResume {
    /// ResumeSession.
    pub tickets: Arc<dyn ResumeTickets>,
    /// Deadline, backoff and the half-open check.
    pub budget: ResumeBudget,
}

impl ChannelResume {
    /// Resumes through `tickets` within `budget`.
    pub fn new(tickets: Arc<dyn ResumeTickets>, budget: ResumeBudget) -> Self {
        Self { tickets, budget }
    }
}

/// How long and how often a lost data channel is resumed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResumeBudget {
    /// How long after the loss to keep trying (default 10 minutes). A
    /// budget of time rather than of tries: the service closes sockets
    /// about hourly, and a laptop may be offline for minutes.
    pub deadline: Duration,
    /// The wait after the first failed try, doubled after each (default
    /// 100 ms, plus up to 100 % random jitter, as the plugin's).
    pub first_backoff: Duration,
    /// The longest wait between tries (default 5 s).
    pub max_backoff: Duration,
    /// A socket that stays silent this long while messages wait for
    /// their acks (and publication is not paused) is taken for half-open
    /// and resumed (default 20 s).
    pub silence: Duration,
}

impl Default for ResumeBudget {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(600),
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            silence: Duration::from_secs(20),
        }
    }
}

impl ResumeBudget {
    /// Sets [`deadline`](Self::deadline).
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Sets [`first_backoff`](Self::first_backoff) and
    /// [`max_backoff`](Self::max_backoff).
    pub fn with_backoff(mut self, first: Duration, max: Duration) -> Self {
        self.first_backoff = first;
        self.max_backoff = max;
        self
    }

    /// Sets [`silence`](Self::silence).
    pub fn with_silence(mut self, silence: Duration) -> Self {
        self.silence = silence;
        self
    }

    /// The wait after `failures` failed tries: `first_backoff` doubled per
    /// failure, capped at `max_backoff`, times a random factor in [1, 2)
    /// (still capped), so that many clients cut off together do not come
    /// back together.
    pub fn backoff(&self, failures: u32) -> Duration {
        let base = self
            .first_backoff
            .saturating_mul(1u32 << failures.saturating_sub(1).min(20))
            .min(self.max_backoff);
        // A v4 UUID's random bits: no random-number crate for one factor.
        let jitter =
            f64::from(u16::try_from(Uuid::new_v4().as_u128() & 0xffff).unwrap_or(0)) / 65_536.0;
        base.mul_f64(1.0 + jitter)
            .min(self.max_backoff.max(self.first_backoff))
    }
}

/// What a [`DataChannel`] reports while it resumes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelEvent {
    /// The websocket was lost; resuming begins.
    Reconnecting {
        /// Why it was lost.
        reason: String,
    },
    /// One try failed; the next follows after `retry_in`.
    AttemptFailed {
        /// Tries so far.
        attempt: u32,
        /// Why it failed.
        error: String,
        /// The wait before the next.
        retry_in: Duration,
    },
    /// The channel is back on a new socket: same session, counters and
    /// unacknowledged messages kept.
    Resumed {
        /// Tries it took.
        attempts: u32,
        /// From the loss to the new socket.
        after: Duration,
        /// Unacknowledged messages resent on the new socket.
        resent: usize,
    },
}

/// What the agent's handshake established.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Established {
    /// The agent's version.
    pub agent_version: String,
    /// `Standard_Stream`, `Port`, `InteractiveCommands` or
    /// `NonInteractiveCommands` (`Standard_Stream` for a legacy agent
    /// without a handshake).
    pub session_type: String,
    /// The properties of a `Port` session.
    pub port: Option<PortProperties>,
    /// The agent's message for the user (empty unless KMS is on).
    pub customer_message: String,
    /// Whether Output payloads are KMS-encrypted (AES-256-GCM).
    pub encrypted: bool,
    /// The ClientVersion we reported in the HandshakeResponse (the agent
    /// picks the port mode from it).
    pub client_version: String,
}

/// A payload from the agent, after the handshake, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Incoming {
    /// Terminal or TCP bytes (PayloadType 1).
    Output(Vec<u8>),
    /// Error text (PayloadType 2).
    Error(Vec<u8>),
    /// Standard error of a non-interactive command (PayloadType 11).
    StdErr(Vec<u8>),
    /// The exit code of a non-interactive command (PayloadType 12).
    ExitCode(Vec<u8>),
    /// A flag (PayloadType 10), e.g. ConnectToPortError.
    Flag(FlagValue),
}

/// Why a data channel ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelEnd {
    /// `channel_closed`: the session is over; the service's reason, if any.
    Closed(String),
    /// The websocket was lost (resumable).
    Lost(String),
    /// A message stayed unacknowledged past the give-up deadline.
    GaveUp(String),
    /// The service no longer has the session: ResumeSession answered no
    /// token (timed out) or `DoesNotExistException` (terminated).
    Gone(String),
    /// The stream cannot go on without losing or mixing up data: the
    /// agent restarted its sequence numbers, or an encrypted payload did
    /// not open.
    Broken(String),
    /// This side refused the agent's handshake (e.g. KMS forbidden or
    /// failed); the agent was told why.
    Refused(String),
    /// Closed by this side.
    Local,
}

/// An open data channel, after the handshake.
#[derive(Debug)]
pub struct DataChannel {
    outgoing: mpsc::Sender<(PayloadType, Vec<u8>)>,
    incoming: mpsc::Receiver<Incoming>,
    ended: watch::Receiver<Option<ChannelEnd>>,
    events: broadcast::Sender<ChannelEvent>,
    reconnect: Arc<tokio::sync::Notify>,
    resumable: bool,
    task: JoinHandle<()>,
}

impl Drop for DataChannel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DataChannel {
    /// Opens the websocket of `ticket`, answers the agent's handshake and
    /// returns once HandshakeComplete has arrived.
    ///
    /// # Errors
    ///
    /// Those of [`DataChannelSocket::open`]; [`Error::Timeout`] when the
    /// handshake does not complete in time (naming the step it waited
    /// for); [`Error::Unavailable`] when the channel ends during it (with
    /// the service's reason); for a KMS-encrypted session, the KMS error
    /// (access denied, key disabled…), [`Error::InvalidInput`] when
    /// [`ChannelOptions::allow_kms`] is false, [`Error::Unsupported`]
    /// without the `ssm-kms` feature, and [`Error::PermissionDenied`] when
    /// the agent could not decrypt the data key.
    pub async fn open(
        ticket: &StreamTicket,
        client_id: Uuid,
        options: ChannelOptions,
        clock: Arc<dyn Clock>,
        label: &str,
    ) -> Result<(Self, Established)> {
        let socket = DataChannelSocket::open(&OpenRequest {
            stream_url: &ticket.stream_url,
            token: &ticket.token,
            client_id,
            client_version: &options.client_version,
            timeout: options.open_timeout,
            label,
        })
        .await?;
        let (out_tx, out_rx) = mpsc::channel(OUTGOING_QUEUE);
        let (in_tx, in_rx) = mpsc::channel(INCOMING_QUEUE);
        let (end_tx, end_rx) = watch::channel(None);
        let (ready_tx, ready_rx) = oneshot::channel();
        let (events, _) = broadcast::channel(64);
        let (phase_tx, phase_rx) = watch::channel("the agent's HandshakeRequest");
        let reconnect = Arc::new(tokio::sync::Notify::new());
        let resumable = options.resume.is_some();
        let handshake_timeout = options.handshake_timeout;
        let now = clock.now();
        let driver = Driver {
            socket,
            clock,
            sender: Sender::new(Side::Client, options.sender.clone()),
            receiver: Receiver::new(Side::Client, options.receiver.clone()),
            client_version: options.client_version.clone(),
            label: label.to_owned(),
            incoming: in_tx,
            pending: VecDeque::new(),
            ready: Some(ready_tx),
            phase: phase_tx,
            request: None,
            established: false,
            session_id: ticket.session_id.clone(),
            client_id,
            last_heard: now,
            events: events.clone(),
            reconnect: Arc::clone(&reconnect),
            cipher: None,
            kms_requested: false,
            options,
        };
        let task = tokio::spawn(driver.run(out_rx, end_tx));
        let channel = Self {
            outgoing: out_tx,
            incoming: in_rx,
            ended: end_rx,
            events,
            reconnect,
            resumable,
            task,
        };
        match tokio::time::timeout(handshake_timeout, ready_rx).await {
            Ok(Ok(Ok(established))) => Ok((channel, established)),
            Ok(Ok(Err(error))) => {
                // This side refused the handshake: let the task tell the
                // agent and wait for its answer before the drop aborts it
                // (the refusal would otherwise be cut off unsent).
                let _ =
                    tokio::time::timeout(LINGER + Duration::from_secs(1), channel.ended()).await;
                Err(error)
            }
            Ok(Err(_)) => Err(Error::Unavailable {
                target: label.to_owned(),
                message: format!(
                    "the data channel ended during the handshake: {}",
                    channel
                        .end()
                        .map_or_else(|| "no reason".into(), |e| describe(&e))
                ),
                source: None,
            }),
            Err(_) => Err(Error::Timeout {
                target: format!("{label}: the handshake, waiting for {}", *phase_rx.borrow()),
                after: handshake_timeout,
            }),
        }
    }

    /// What the channel reports while it resumes (subscribe before the
    /// loss to see all of it).
    pub fn events(&self) -> broadcast::Receiver<ChannelEvent> {
        self.events.subscribe()
    }

    /// Queues `payload` of `payload_type` (Output, Size, Flag…); waits while
    /// the queue is full (the window is the back-pressure).
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the channel has ended.
    pub async fn send(&self, payload_type: PayloadType, payload: Vec<u8>) -> Result<()> {
        queue(&self.outgoing, &self.ended, payload_type, payload).await
    }

    /// A handle that queues payloads from another task while this one
    /// reads, so that sending (which waits for the window) never holds up
    /// reading.
    pub fn sender(&self) -> ChannelSender {
        ChannelSender {
            outgoing: self.outgoing.clone(),
            ended: self.ended.clone(),
            events: self.events.clone(),
            reconnect: Arc::clone(&self.reconnect),
            resumable: self.resumable,
        }
    }

    /// Sends Flag TerminateSession: the agent ends the session and the
    /// service answers with `channel_closed`.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub async fn terminate(&self) -> Result<()> {
        self.send(
            PayloadType::Flag,
            FlagValue::TerminateSession.to_payload().to_vec(),
        )
        .await
    }

    /// The next payload from the agent; `None` once the channel has ended
    /// and everything received was read.
    pub async fn recv(&mut self) -> Option<Incoming> {
        self.incoming.recv().await
    }

    /// Why the channel ended, once it has.
    pub fn end(&self) -> Option<ChannelEnd> {
        self.ended.borrow().clone()
    }

    /// Waits until the channel ends and says why.
    pub async fn ended(&self) -> ChannelEnd {
        let mut ended = self.ended.clone();
        match ended.wait_for(Option::is_some).await {
            Ok(end) => end.clone().unwrap_or(ChannelEnd::Local),
            Err(_) => ChannelEnd::Local,
        }
    }
}

/// The sending side of a [`DataChannel`] ([`DataChannel::sender`]): it
/// queues payloads as [`DataChannel::send`] does, from any task, and can
/// end the channel (a `stop` while a task owns it).
#[derive(Clone, Debug)]
pub struct ChannelSender {
    outgoing: mpsc::Sender<(PayloadType, Vec<u8>)>,
    ended: watch::Receiver<Option<ChannelEnd>>,
    events: broadcast::Sender<ChannelEvent>,
    reconnect: Arc<tokio::sync::Notify>,
    resumable: bool,
}

impl ChannelSender {
    /// As [`DataChannel::send`].
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the channel has ended.
    pub async fn send(&self, payload_type: PayloadType, payload: Vec<u8>) -> Result<()> {
        queue(&self.outgoing, &self.ended, payload_type, payload).await
    }

    /// Sends Flag TerminateSession and waits up to `wait` for the channel
    /// to end (the service answers with `channel_closed`). Returns how it
    /// ended, or `None` when it did not in time (a peer that is gone).
    pub async fn terminate(&self, wait: Duration) -> Option<ChannelEnd> {
        let flag = FlagValue::TerminateSession.to_payload().to_vec();
        let mut ended = self.ended.clone();
        let finished = async {
            // A full queue or an ended channel: waiting for the end says
            // the rest.
            let _ = self.outgoing.send((PayloadType::Flag, flag)).await;
            match ended.wait_for(Option::is_some).await {
                Ok(end) => end.clone(),
                Err(_) => Some(ChannelEnd::Local),
            }
        };
        tokio::time::timeout(wait, finished).await.ok().flatten()
    }

    /// Why the channel ended, once it has.
    pub fn end(&self) -> Option<ChannelEnd> {
        self.ended.borrow().clone()
    }

    /// Asks the channel to move to a new socket now, as after a loss
    /// (ResumeSession, same counters, unacknowledged messages resent);
    /// watch [`events`](Self::events) for the outcome. False when resuming
    /// is off ([`ChannelOptions::resume`]) or the channel has ended.
    pub fn reconnect(&self) -> bool {
        if !self.resumable || self.end().is_some() {
            return false;
        }
        self.reconnect.notify_one();
        true
    }

    /// As [`DataChannel::ended`].
    pub async fn ended(&self) -> ChannelEnd {
        let mut ended = self.ended.clone();
        match ended.wait_for(Option::is_some).await {
            Ok(end) => end.clone().unwrap_or(ChannelEnd::Local),
            Err(_) => ChannelEnd::Local,
        }
    }

    /// As [`DataChannel::events`].
    pub fn events(&self) -> broadcast::Receiver<ChannelEvent> {
        self.events.subscribe()
    }
}

async fn queue(
    outgoing: &mpsc::Sender<(PayloadType, Vec<u8>)>,
    ended: &watch::Receiver<Option<ChannelEnd>>,
    payload_type: PayloadType,
    payload: Vec<u8>,
) -> Result<()> {
    outgoing
        .send((payload_type, payload))
        .await
        .map_err(|_| Error::Unavailable {
            target: "data channel".into(),
            message: format!(
                "the data channel has ended: {}",
                ended
                    .borrow()
                    .clone()
                    .map_or_else(|| "no reason".into(), |e| describe(&e))
            ),
            source: None,
        })
}

/// A short text for `end`.
pub fn describe(end: &ChannelEnd) -> String {
    match end {
        ChannelEnd::Closed(output) if output.is_empty() => "channel_closed".into(),
        ChannelEnd::Closed(output) => format!("channel_closed: {output}"),
        ChannelEnd::Lost(why) => format!("connection lost: {why}"),
        ChannelEnd::GaveUp(why) => format!("gave up: {why}"),
        ChannelEnd::Gone(why) | ChannelEnd::Broken(why) | ChannelEnd::Refused(why) => why.clone(),
        ChannelEnd::Local => "closed".into(),
    }
}

/// The task's state.
struct Driver {
    socket: DataChannelSocket,
    clock: Arc<dyn Clock>,
    sender: Sender,
    receiver: Receiver,
    client_version: String,
    label: String,
    incoming: mpsc::Sender<Incoming>,
    /// Delivered payloads waiting for room in `incoming`. The task does
    /// not wait for the user to read: waiting there stopped everything,
    /// the acks included, and a user that was itself waiting for our
    /// window to open (a port forward sending while it receives) never
    /// read again.
    pending: VecDeque<Incoming>,
    ready: Option<oneshot::Sender<Result<Established>>>,
    /// What the handshake waits for, named in its time-out.
    phase: watch::Sender<&'static str>,
    request: Option<HandshakeRequest>,
    established: bool,
    /// The service's session id (the KMS encryption context).
    #[cfg_attr(not(feature = "ssm-kms"), allow(dead_code))]
    session_id: String,
    /// The same on every socket of this channel.
    client_id: Uuid,
    /// When the last frame arrived (or something was first left waiting
    /// for an ack): the half-open check counts from it.
    last_heard: OffsetDateTime,
    events: broadcast::Sender<ChannelEvent>,
    /// Asks for a new socket now ([`ChannelSender::reconnect`]).
    reconnect: Arc<tokio::sync::Notify>,
    /// The payload keys once a KMS handshake succeeded.
    #[cfg(feature = "ssm-kms")]
    cipher: Option<PayloadCipher>,
    #[cfg(not(feature = "ssm-kms"))]
    cipher: Option<std::convert::Infallible>,
    /// The agent asked for KMS encryption.
    kms_requested: bool,
    options: ChannelOptions,
}

/// One failed try to resume.
enum Attempt {
    /// Worth another try.
    Retry(String),
    /// Ends the channel.
    Fatal(ChannelEnd),
}

impl Driver {
    async fn run(
        mut self,
        mut outgoing: mpsc::Receiver<(PayloadType, Vec<u8>)>,
        end: watch::Sender<Option<ChannelEnd>>,
    ) {
        let reason = loop {
            let deadline = match (self.sender.next_deadline(), self.silence_deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let clock = Arc::clone(&self.clock);
            let wake = async move {
                match deadline {
                    Some(at) => clock.sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let ready_to_send = self.established && self.sender.can_send();
            let reconnect = Arc::clone(&self.reconnect);
            let step = tokio::select! {
                frame = self.socket.recv(&self.label), if self.pending.len() < PENDING_LIMIT => match frame {
                    None => Err(ChannelEnd::Lost("the websocket closed".into())),
                    Some(Err(error)) => Err(ChannelEnd::Lost(error.to_string())),
                    Some(Ok(bytes)) => self.on_frame(&bytes).await,
                },
                queued = outgoing.recv(), if ready_to_send => match queued {
                    Some((payload_type, payload)) => self.send(payload_type, payload).await,
                    None => Err(ChannelEnd::Local),
                },
                () = wake => self.on_timer().await,
                () = reconnect.notified(), if self.established => {
                    Err(ChannelEnd::Lost("a new socket was asked for (rotate)".into()))
                }
                permit = self.incoming.clone().reserve_owned(), if !self.pending.is_empty() => match permit {
                    Ok(permit) => {
                        if let Some(item) = self.pending.pop_front() {
                            permit.send(item);
                        }
                        Ok(())
                    }
                    Err(_) => Err(ChannelEnd::Local),
                },
            };
            match step {
                Ok(()) => {}
                Err(ChannelEnd::Lost(why)) if self.established && self.options.resume.is_some() => {
                    if let Err(reason) = self.reconnect(why).await {
                        break reason;
                    }
                }
                Err(reason) => break reason,
            }
        };
        tracing::debug!(reason = %describe(&reason), "data channel ended");
        if matches!(reason, ChannelEnd::Refused(_)) {
            // The agent was told why; give it a moment to read that and
            // cancel (its `channel_closed`) before the socket goes away.
            self.linger().await;
        }
        end.send_replace(Some(reason));
        self.socket.close().await;
        // What was received before the end is still the user's.
        for item in std::mem::take(&mut self.pending) {
            if self.incoming.send(item).await.is_err() {
                break;
            }
        }
    }

    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Reads until the service closes the channel, at most [`LINGER`].
    async fn linger(&mut self) {
        let label = self.label.clone();
        let closed = async {
            while let Some(Ok(bytes)) = self.socket.recv(&label).await {
                if ClientMessage::decode(&bytes)
                    .is_ok_and(|m| m.message_type == MessageType::ChannelClosed)
                {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(LINGER, closed).await;
    }

    async fn write(&mut self, bytes: Vec<u8>) -> Result<(), ChannelEnd> {
        self.socket
            .send(bytes, &self.label)
            .await
            .map_err(|e| ChannelEnd::Lost(e.to_string()))
    }

    async fn send(
        &mut self,
        payload_type: PayloadType,
        payload: Vec<u8>,
    ) -> Result<(), ChannelEnd> {
        let now = self.now();
        if self.sender.in_flight() == 0 {
            // Nothing was waiting for an ack: silence before now says
            // nothing about the socket.
            self.last_heard = now;
        }
        let payload = self.seal(payload_type, payload);
        let bytes = self
            .sender
            .send(payload_type, payload, Uuid::new_v4(), now)
            .map_err(|e| ChannelEnd::GaveUp(e.to_string()))?;
        self.write(bytes).await
    }

    /// Output payloads are sealed once, here, so that a retransmission
    /// sends the identical bytes.
    #[cfg(feature = "ssm-kms")]
    fn seal(&self, payload_type: PayloadType, payload: Vec<u8>) -> Vec<u8> {
        match &self.cipher {
            Some(cipher) if payload_type == PayloadType::Output => cipher.seal(&payload),
            _ => payload,
        }
    }

    #[cfg(not(feature = "ssm-kms"))]
    #[allow(clippy::unused_self)]
    fn seal(&self, _payload_type: PayloadType, payload: Vec<u8>) -> Vec<u8> {
        payload
    }

    /// Opens an agent payload of a type the agent encrypts.
    #[cfg(feature = "ssm-kms")]
    fn open_payload(
        &self,
        payload_type: PayloadType,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, ChannelEnd> {
        match &self.cipher {
            Some(cipher)
                if matches!(
                    payload_type,
                    PayloadType::Output | PayloadType::StdErr | PayloadType::ExitCode
                ) =>
            {
                cipher.open(&payload).map_err(|e| {
                    ChannelEnd::Broken(format!(
                        "a payload from the agent did not decrypt with the session's KMS data key: {e}"
                    ))
                })
            }
            _ => Ok(payload),
        }
    }

    #[cfg(not(feature = "ssm-kms"))]
    #[allow(clippy::unused_self, clippy::unnecessary_wraps)]
    fn open_payload(
        &self,
        _payload_type: PayloadType,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, ChannelEnd> {
        Ok(payload)
    }

    /// When silence means a half-open socket: only while resuming is on,
    /// messages wait for acks and publication is not paused.
    fn silence_deadline(&self) -> Option<OffsetDateTime> {
        let resume = self.options.resume.as_ref()?;
        (self.established && self.sender.in_flight() > 0 && !self.sender.is_paused())
            .then(|| self.last_heard + resume.budget.silence)
    }

    async fn on_timer(&mut self) -> Result<(), ChannelEnd> {
        let now = self.now();
        if let Some(deadline) = self.silence_deadline()
            && deadline <= now
        {
            let silent = (now - self.last_heard).unsigned_abs();
            return Err(ChannelEnd::Lost(format!(
                "nothing heard from the service for {:.1} s while {} messages wait for acks \
                 (a half-open connection)",
                silent.as_secs_f64(),
                self.sender.in_flight()
            )));
        }
        self.retransmit().await
    }

    /// Resumes after a loss (`ssm.md` §2.11) until the deadline.
    async fn reconnect(&mut self, why: String) -> Result<(), ChannelEnd> {
        let Some(resume) = self.options.resume.clone() else {
            return Err(ChannelEnd::Lost(why));
        };
        let lost_at = self.now();
        // Retransmission and the give-up clock wait while there is no
        // socket; they continue, shifted, on the new one.
        self.sender.pause(lost_at);
        tracing::info!(session = %self.label, reason = %why, "data channel lost; resuming");
        let _ = self.events.send(ChannelEvent::Reconnecting {
            reason: why.clone(),
        });
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            // A try (ResumeSession and the websocket, each with its own
            // time-out) never runs past the deadline.
            let spent = (self.now() - lost_at).unsigned_abs();
            let remaining = resume.budget.deadline.saturating_sub(spent);
            let tried = tokio::time::timeout(remaining, self.try_resume(&resume))
                .await
                .unwrap_or_else(|_| {
                    Err(Attempt::Retry(format!(
                        "the try was still running at the deadline ({} s)",
                        resume.budget.deadline.as_secs()
                    )))
                });
            let last = match tried {
                Ok(resent) => {
                    let after = (self.now() - lost_at).unsigned_abs();
                    tracing::info!(session = %self.label, attempts = attempt, after_ms = after.as_millis(), resent, "data channel resumed");
                    let _ = self.events.send(ChannelEvent::Resumed {
                        attempts: attempt,
                        after,
                        resent,
                    });
                    return Ok(());
                }
                Err(Attempt::Fatal(end)) => {
                    tracing::warn!(session = %self.label, attempts = attempt, "resuming ended the session: {}", describe(&end));
                    return Err(end);
                }
                Err(Attempt::Retry(error)) => error,
            };
            let spent = (self.now() - lost_at).unsigned_abs();
            let retry_in = resume.budget.backoff(attempt);
            if spent + retry_in >= resume.budget.deadline {
                tracing::warn!(session = %self.label, attempts = attempt, "gave up resuming: {last}");
                return Err(ChannelEnd::Lost(format!(
                    "could not resume within {} s ({attempt} tries; lost: {why}; last try: {last})",
                    resume.budget.deadline.as_secs()
                )));
            }
            tracing::info!(session = %self.label, attempt, retry_in_ms = retry_in.as_millis(), "resume try failed: {last}");
            let _ = self.events.send(ChannelEvent::AttemptFailed {
                attempt,
                error: last,
                retry_in,
            });
            let wake = self.now() + retry_in;
            self.clock.sleep_until(wake).await;
        }
    }

    /// One try: ResumeSession, a new socket with the same ClientId, every
    /// unacknowledged message resent. Returns how many were.
    async fn try_resume(&mut self, resume: &ChannelResume) -> Result<usize, Attempt> {
        let ticket = match resume.tickets.resume().await {
            Ok(Some(ticket)) => ticket,
            Ok(None) => {
                return Err(Attempt::Fatal(ChannelEnd::Gone(
                    "the service timed the session out while it was disconnected \
                     (ResumeSession gave no token)"
                        .into(),
                )));
            }
            Err(Error::NotFound { what }) => {
                return Err(Attempt::Fatal(ChannelEnd::Gone(format!(
                    "the service no longer knows the session (it was terminated): {what}"
                ))));
            }
            Err(error) if error.is_retryable() => {
                return Err(Attempt::Retry(format!("ResumeSession: {error}")));
            }
            Err(error) => {
                return Err(Attempt::Fatal(ChannelEnd::Lost(format!(
                    "ResumeSession: {error}"
                ))));
            }
        };
        let socket = DataChannelSocket::open(&OpenRequest {
            stream_url: &ticket.stream_url,
            token: &ticket.token,
            client_id: self.client_id,
            client_version: &self.options.client_version,
            timeout: self.options.open_timeout,
            label: &self.label,
        })
        .await
        .map_err(|e| Attempt::Retry(format!("reopening the data channel: {e}")))?;
        let old = std::mem::replace(&mut self.socket, socket);
        tokio::spawn(old.close());
        let now = self.now();
        self.last_heard = now;
        self.sender.resume(now);
        let resend = self.sender.resend_all(now);
        let resent = resend.len();
        for bytes in resend {
            self.write(bytes).await.map_err(|e| {
                Attempt::Retry(format!("resending on the new socket: {}", describe(&e)))
            })?;
        }
        Ok(resent)
    }

    async fn retransmit(&mut self) -> Result<(), ChannelEnd> {
        let now = self.now();
        let resend = self
            .sender
            .poll_retransmit(now)
            .map_err(|e| ChannelEnd::GaveUp(e.to_string()))?;
        for bytes in resend {
            self.write(bytes).await?;
        }
        Ok(())
    }

    async fn on_frame(&mut self, bytes: &[u8]) -> Result<(), ChannelEnd> {
        let message = match ClientMessage::decode(bytes) {
            Ok(message) => message,
            Err(error) => {
                // Not acked: the agent sends it again.
                tracing::debug!(%error, "dropped an undecodable message");
                return Ok(());
            }
        };
        let now = self.now();
        self.last_heard = now;
        match &message.message_type {
            MessageType::Acknowledge => {
                if let Ok(ack) = Acknowledgement::from_message(&message) {
                    self.sender.on_ack(&ack, now);
                }
                Ok(())
            }
            MessageType::OutputStreamData => {
                let Ok(received) = self.receiver.on_message(message) else {
                    return Ok(());
                };
                if received.disposition == Disposition::Conflict {
                    return Err(ChannelEnd::Broken(format!(
                        "the agent sent an old sequence number as a new message: it restarted \
                         its sequence (expected {}), so the session cannot go on without losing \
                         data",
                        self.receiver.expected()
                    )));
                }
                if let Some(ack) = received.ack {
                    let created = u64::try_from(now.unix_timestamp_nanos() / 1_000_000)
                        .unwrap_or(1)
                        .max(1);
                    let bytes = ack
                        .to_message(Uuid::new_v4(), created)
                        .encode()
                        .map_err(|e| ChannelEnd::GaveUp(e.to_string()))?;
                    self.socket
                        .send_ack(bytes, &self.label)
                        .await
                        .map_err(|e| ChannelEnd::Lost(e.to_string()))?;
                }
                for delivered in received.deliver {
                    self.deliver(delivered).await?;
                }
                Ok(())
            }
            MessageType::ChannelClosed => {
                let closed: ChannelClosed =
                    serde_json::from_slice(&message.payload).unwrap_or_default();
                if self.kms_requested
                    && !self.established
                    && let Some(ready) = self.ready.take()
                {
                    let _ = ready.send(Err(Error::PermissionDenied {
                        target: self.label.clone(),
                        message: format!(
                            "the agent ended the KMS-encrypted session during its handshake \
                             (it could not decrypt the data key: its role may lack kms:Decrypt \
                             on the key, or the key is disabled): {}",
                            if closed.output.is_empty() {
                                "no reason given"
                            } else {
                                &closed.output
                            }
                        ),
                    }));
                }
                Err(ChannelEnd::Closed(closed.output))
            }
            MessageType::PausePublication => {
                self.sender.pause(now);
                Ok(())
            }
            MessageType::StartPublication => {
                self.sender.resume(now);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// An in-order stream message from the agent.
    async fn deliver(&mut self, message: ClientMessage) -> Result<(), ChannelEnd> {
        let handed = match message.payload_type {
            PayloadType::HandshakeRequest => {
                let Ok(request) =
                    message.json_payload::<HandshakeRequest>(PayloadType::HandshakeRequest)
                else {
                    return Err(ChannelEnd::GaveUp("an unreadable HandshakeRequest".into()));
                };
                let mut response = handshake_response_as(&request, &self.client_version);
                let refused = self.answer_kms(&request, &mut response).await;
                self.request = Some(request);
                let payload = to_json(&response).map_err(|e| ChannelEnd::GaveUp(e.to_string()))?;
                self.send(PayloadType::HandshakeResponse, payload).await?;
                if let Some(error) = refused {
                    let text = error.to_string();
                    if let Some(ready) = self.ready.take() {
                        let _ = ready.send(Err(error));
                    }
                    return Err(ChannelEnd::Refused(text));
                }
                let _ = self.phase.send(if self.kms_requested {
                    "the agent's encryption challenge"
                } else {
                    "HandshakeComplete"
                });
                return Ok(());
            }
            PayloadType::EncChallengeRequest => {
                return self.answer_challenge(&message.payload).await;
            }
            PayloadType::HandshakeComplete => {
                let complete = message
                    .json_payload::<HandshakeComplete>(PayloadType::HandshakeComplete)
                    .unwrap_or(HandshakeComplete {
                        handshake_time_to_complete: 0,
                        customer_message: String::new(),
                    });
                self.establish(complete.customer_message);
                return Ok(());
            }
            PayloadType::Output if !self.established && self.request.is_none() => {
                // A legacy agent without a handshake: a shell.
                self.establish(String::new());
                Incoming::Output(message.payload)
            }
            PayloadType::Output => {
                Incoming::Output(self.open_payload(PayloadType::Output, message.payload)?)
            }
            PayloadType::Error => Incoming::Error(message.payload),
            PayloadType::StdErr => {
                Incoming::StdErr(self.open_payload(PayloadType::StdErr, message.payload)?)
            }
            PayloadType::ExitCode => {
                Incoming::ExitCode(self.open_payload(PayloadType::ExitCode, message.payload)?)
            }
            PayloadType::Flag => match FlagValue::from_payload(&message.payload) {
                Ok(flag) => Incoming::Flag(flag),
                Err(_) => return Ok(()),
            },
            _ => return Ok(()),
        };
        if self.pending.is_empty() {
            match self.incoming.try_send(handed) {
                Ok(()) => {}
                Err(TrySendError::Full(handed)) => self.pending.push_back(handed),
                Err(TrySendError::Closed(_)) => return Err(ChannelEnd::Local),
            }
        } else {
            self.pending.push_back(handed);
        }
        Ok(())
    }

    /// Answers the agent's `KMSEncryption` action in `response` (the
    /// entry [`handshake_response_as`] left Unsupported): Success with the
    /// data key's ciphertext, or Failed with the reason, which is then
    /// also returned so that the open fails with it.
    async fn answer_kms(
        &mut self,
        request: &HandshakeRequest,
        response: &mut HandshakeResponse,
    ) -> Option<Error> {
        let (index, action) = request
            .requested_client_actions
            .iter()
            .enumerate()
            .find(|(_, a)| a.action_type == ActionType::KmsEncryption)?;
        self.kms_requested = true;
        let key_id = action
            .kms_encryption()
            .map(|k| k.kms_key_id)
            .unwrap_or_default();
        let outcome = if self.options.allow_kms {
            let _ = self.phase.send("KMS GenerateDataKey");
            self.generate_data_key(&key_id).await
        } else {
            Err(Error::InvalidInput {
                field: "forbidKms".into(),
                reason: format!(
                    "{}: the agent asks for KMS encryption with key {key_id} (the account's \
                     Session Manager preferences), and this session's settings forbid it (forbidKms)",
                    self.label
                ),
            })
        };
        let entry = response.processed_client_actions.get_mut(index)?;
        match outcome {
            Ok(blob) => {
                entry.action_status = ActionStatus::Success;
                entry.action_result = Some(serde_json::json!({
                    "KMSCipherTextKey": base64::engine::general_purpose::STANDARD.encode(blob),
                    "KMSCipherTextHash": null,
                }));
                entry.error = String::new();
                None
            }
            Err(error) => {
                if !matches!(error, Error::Unsupported { .. }) {
                    entry.action_status = ActionStatus::Failed;
                }
                entry.error = error.to_string();
                Some(error)
            }
        }
    }

    /// A data key for `key_id`; keeps its cipher, returns its ciphertext.
    #[cfg(feature = "ssm-kms")]
    async fn generate_data_key(&mut self, key_id: &str) -> Result<Vec<u8>> {
        let Some(kms) = self.options.kms.clone() else {
            return Err(not_built_in(&self.label));
        };
        let request = DataKeyRequest::for_session(key_id, &self.session_id, &kms.target_id);
        let key = kms.source.generate_data_key(&request).await?;
        self.cipher = Some(key.cipher()?);
        Ok(key.ciphertext_blob().to_vec())
    }

    #[cfg(not(feature = "ssm-kms"))]
    async fn generate_data_key(&mut self, _key_id: &str) -> Result<Vec<u8>> {
        Err(not_built_in(&self.label))
    }

    /// EncChallengeRequest: open the agent's challenge with our decryption
    /// key, seal it with our encryption key, send it back.
    async fn answer_challenge(&mut self, payload: &[u8]) -> Result<(), ChannelEnd> {
        let answer = self.challenge_answer(payload);
        match answer {
            Ok(answer) => {
                let _ = self.phase.send("HandshakeComplete");
                let payload = to_json(&EncryptionChallenge { challenge: answer })
                    .map_err(|e| ChannelEnd::GaveUp(e.to_string()))?;
                self.send(PayloadType::EncChallengeResponse, payload).await
            }
            Err(reason) => {
                if let Some(ready) = self.ready.take() {
                    let _ = ready.send(Err(Error::PermissionDenied {
                        target: self.label.clone(),
                        message: reason.clone(),
                    }));
                }
                Err(ChannelEnd::Refused(reason))
            }
        }
    }

    #[cfg(feature = "ssm-kms")]
    fn challenge_answer(&self, payload: &[u8]) -> std::result::Result<String, String> {
        let engine = base64::engine::general_purpose::STANDARD;
        let cipher = self.cipher.as_ref().ok_or_else(|| {
            "the agent sent an encryption challenge, but no KMS data key was agreed".to_owned()
        })?;
        let challenge: EncryptionChallenge = serde_json::from_slice(payload)
            .map_err(|e| format!("an unreadable encryption challenge: {e}"))?;
        let sealed = engine
            .decode(challenge.challenge.as_bytes())
            .map_err(|e| format!("an encryption challenge that is not base64: {e}"))?;
        let answer = cipher.answer_challenge(&sealed).map_err(|e| {
            format!(
                "the agent's encryption challenge did not open with the session's data key: {e}"
            )
        })?;
        Ok(engine.encode(answer))
    }

    #[cfg(not(feature = "ssm-kms"))]
    #[allow(clippy::unused_self)]
    fn challenge_answer(&self, _payload: &[u8]) -> std::result::Result<String, String> {
        Err("the agent sent an encryption challenge, but KMS is not built in".to_owned())
    }

    fn establish(&mut self, customer_message: String) {
        self.established = true;
        let (agent_version, session_type, port) = match &self.request {
            Some(request) => {
                let session = request
                    .requested_client_actions
                    .iter()
                    .find_map(|a| a.session_type().ok());
                let port = session.as_ref().and_then(|s| s.port_properties().ok());
                (
                    request.agent_version.clone(),
                    session.map_or_else(|| "Standard_Stream".into(), |s| s.session_type),
                    port,
                )
            }
            None => (String::new(), "Standard_Stream".into(), None),
        };
        let port = if session_type == "Port" { port } else { None };
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(Ok(Established {
                agent_version,
                session_type,
                port,
                customer_message,
                encrypted: self.cipher.is_some(),
                client_version: self.client_version.clone(),
            }));
        }
    }
}

/// The error of a KMS-encrypted session without KMS support.
fn not_built_in(label: &str) -> Error {
    Error::unsupported(
        "awsSsm",
        format!(
            "{label}: KMS encryption (the account's Session Manager preferences ask for it): \
             {}",
            super::handshake::KMS_NOT_BUILT_IN
        ),
    )
}
