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
use std::sync::Arc;
use std::time::Duration;

use session_core::{Clock, Error, Result};
use time::OffsetDateTime;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::control::StreamTicket;
use super::handshake::{CLIENT_VERSION, handshake_response_as};
use super::message::{ClientMessage, MessageType, PayloadType};
use super::payload::{
    Acknowledgement, ChannelClosed, FlagValue, HandshakeComplete, HandshakeRequest, PortProperties,
    to_json,
};
use super::reliability::{Receiver, ReceiverConfig, Sender, SenderConfig, Side};
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
}

impl Default for ChannelOptions {
    fn default() -> Self {
        Self {
            client_version: CLIENT_VERSION.to_owned(),
            sender: SenderConfig::default(),
            receiver: ReceiverConfig::default(),
            open_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(15),
        }
    }
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
    /// Closed by this side.
    Local,
}

/// An open data channel, after the handshake.
#[derive(Debug)]
pub struct DataChannel {
    outgoing: mpsc::Sender<(PayloadType, Vec<u8>)>,
    incoming: mpsc::Receiver<Incoming>,
    ended: watch::Receiver<Option<ChannelEnd>>,
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
    /// handshake does not complete in time; [`Error::Unavailable`] when the
    /// channel ends during it (with the service's reason).
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
        let handshake_timeout = options.handshake_timeout;
        let driver = Driver {
            socket,
            clock,
            sender: Sender::new(Side::Client, options.sender.clone()),
            receiver: Receiver::new(Side::Client, options.receiver.clone()),
            client_version: options.client_version,
            label: label.to_owned(),
            incoming: in_tx,
            pending: VecDeque::new(),
            ready: Some(ready_tx),
            request: None,
            established: false,
        };
        let task = tokio::spawn(driver.run(out_rx, end_tx));
        let channel = Self {
            outgoing: out_tx,
            incoming: in_rx,
            ended: end_rx,
            task,
        };
        match tokio::time::timeout(handshake_timeout, ready_rx).await {
            Ok(Ok(established)) => Ok((channel, established)),
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
                target: label.to_owned(),
                after: handshake_timeout,
            }),
        }
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
    ready: Option<oneshot::Sender<Established>>,
    request: Option<HandshakeRequest>,
    established: bool,
}

impl Driver {
    async fn run(
        mut self,
        mut outgoing: mpsc::Receiver<(PayloadType, Vec<u8>)>,
        end: watch::Sender<Option<ChannelEnd>>,
    ) {
        let reason = loop {
            let deadline = self.sender.next_deadline();
            let clock = Arc::clone(&self.clock);
            let wake = async move {
                match deadline {
                    Some(at) => clock.sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let ready_to_send = self.established && self.sender.can_send();
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
                () = wake => self.retransmit().await,
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
            if let Err(reason) = step {
                break reason;
            }
        };
        tracing::debug!(reason = %describe(&reason), "data channel ended");
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
        let bytes = self
            .sender
            .send(payload_type, payload, Uuid::new_v4(), now)
            .map_err(|e| ChannelEnd::GaveUp(e.to_string()))?;
        self.write(bytes).await
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
                let response = handshake_response_as(&request, &self.client_version);
                self.request = Some(request);
                let payload = to_json(&response).map_err(|e| ChannelEnd::GaveUp(e.to_string()))?;
                return self.send(PayloadType::HandshakeResponse, payload).await;
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
            PayloadType::Output => Incoming::Output(message.payload),
            PayloadType::Error => Incoming::Error(message.payload),
            PayloadType::StdErr => Incoming::StdErr(message.payload),
            PayloadType::ExitCode => Incoming::ExitCode(message.payload),
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
            let _ = ready.send(Established {
                agent_version,
                session_type,
                port,
                customer_message,
                client_version: self.client_version.clone(),
            });
        }
    }
}
