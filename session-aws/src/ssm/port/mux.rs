//! Smux mode: one smux stream per accepted connection (ids 3, 5, 7…), the
//! smux byte stream carried in Output payloads (`ssm.md` §2.9, §3).

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use session_core::{Error, Result};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::super::channel::{ChannelEnd, ChannelSender, DataChannel, Incoming};
use super::super::message::PayloadType;
use super::super::payload::FlagValue;
use super::super::smux::{Cmd, Frame, FrameDecoder, StreamIds};
use super::{
    Down, DownBudget, KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT, MESSAGE_SIZE, Up, accept, connection,
};

/// Runs a mux port forward until the channel ends: accepts on `listener`,
/// opens an smux stream per connection, and copies bytes both ways.
/// `keepalive` sends a NOP every 10 s ([`KEEPALIVE_INTERVAL`]; agents up to
/// 3.1.1511.0 need it).
///
/// When the agent cannot dial the remote port it sends Flag
/// ConnectToPortError and a FIN on the stream: that local connection is
/// closed (a warning names the remote port) and the forward goes on.
///
/// Returns why the channel ended.
pub async fn run_mux(channel: DataChannel, listener: TcpListener, keepalive: bool) -> ChannelEnd {
    serve(
        channel,
        listener,
        keepalive.then_some(Keepalive {
            interval: KEEPALIVE_INTERVAL,
            timeout: KEEPALIVE_TIMEOUT,
        }),
        "the remote port",
        MESSAGE_SIZE,
    )
    .await
}

/// How long a stream that ended without data may still turn out to be a
/// failed dial, when its Flag ConnectToPortError comes after its FIN.
const LATE_DIAL_ERROR: Duration = Duration::from_secs(2);

/// Matches Flag ConnectToPortError with the stream it is about. The flag
/// names no stream, and it and the stream's FIN take separate paths
/// through the agent (ssm.md fixes no order; through xtaci about 1 FIN in
/// 30 came first): a flag waits for the next FIN of a stream without
/// data, and a FIN without data and without a waiting flag is
/// half-closed as a normal end and remembered for [`LATE_DIAL_ERROR`],
/// in case its flag follows. Counting flags alone left one unmatched when
/// the FIN came first, and the next stream that ended without data (a
/// target that accepts and closes at once) was then taken for a failed
/// dial and reset.
#[derive(Default)]
struct DialErrors {
    /// Flags not yet matched with a FIN.
    flags: usize,
    /// Streams half-closed without data, newest last.
    empty_ends: VecDeque<(u32, mpsc::UnboundedSender<Down>, Instant)>,
}

impl DialErrors {
    /// A Flag ConnectToPortError: closes the stream it is about if that
    /// one already ended, returning its id so that our FIN follows.
    fn flag(&mut self, now: Instant) -> Option<u32> {
        self.empty_ends
            .retain(|(_, _, at)| now.duration_since(*at) < LATE_DIAL_ERROR);
        match self.empty_ends.pop_front() {
            Some((id, writer, _)) => {
                let _ = writer.send(Down::Close);
                Some(id)
            }
            None => {
                self.flags += 1;
                None
            }
        }
    }

    /// A FIN on a stream that carried no data: true when it is a failed
    /// dial whose flag came first.
    fn empty_end(&mut self, id: u32, writer: &mpsc::UnboundedSender<Down>, now: Instant) -> bool {
        if self.flags > 0 {
            self.flags -= 1;
            return true;
        }
        // Kept (with its connection open for writes) for at most
        // LATE_DIAL_ERROR, pruned here and at each flag, 64 at most.
        self.empty_ends
            .retain(|(_, _, at)| now.duration_since(*at) < LATE_DIAL_ERROR);
        if self.empty_ends.len() >= 64 {
            self.empty_ends.pop_front();
        }
        self.empty_ends.push_back((id, writer.clone(), now));
        false
    }
}

/// The smux keepalive of agents up to 3.1.1511.0: our NOP every
/// `interval`, and the forward given up when nothing came from the agent
/// for `timeout`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Keepalive {
    pub(super) interval: Duration,
    pub(super) timeout: Duration,
}

/// One smux stream's state on our side.
struct Stream {
    /// To the connection task.
    writer: mpsc::UnboundedSender<Down>,
    /// Whether the agent sent data on it (so its dial worked).
    got_data: bool,
}

/// The mux runner: `keepalive` is the NOP interval, if any; `remote` names
/// the far end in logs.
///
/// Two halves run side by side, so that neither waits for the other: the
/// reading half accepts connections and hands the agent's frames to them;
/// the sending half queues the connections' bytes (waiting for the
/// channel's window) and the keepalive. A single loop that waited for the
/// window while the agent's data piled up unread stalled a transfer going
/// both ways.
pub(super) async fn serve(
    mut channel: DataChannel,
    listener: TcpListener,
    keepalive: Option<Keepalive>,
    remote: &str,
    message_size: usize,
) -> ChannelEnd {
    let (up_tx, up_rx) = mpsc::channel::<Up>(256);
    let sending = upstream(channel.sender(), up_rx, keepalive.map(|k| k.interval));
    let idle_limit = keepalive.map(|k| k.timeout);
    let reading = downstream(
        &mut channel,
        &listener,
        up_tx,
        remote,
        message_size,
        idle_limit,
    );
    let gave_up = tokio::select! {
        () = sending => None,
        gave_up = reading => gave_up,
    };
    match gave_up {
        Some(end) => end,
        None => channel.ended().await,
    }
}

/// The sending half: frames for the agent, in the order queued, and a NOP
/// every `keepalive`. Ends when the channel does.
async fn upstream(sender: ChannelSender, mut up: mpsc::Receiver<Up>, keepalive: Option<Duration>) {
    // Streams whose local side has not sent its FIN yet.
    let mut local_open: HashSet<u32> = HashSet::new();
    let mut tick = tokio::time::interval(keepalive.unwrap_or(KEEPALIVE_INTERVAL));
    tick.tick().await;
    loop {
        let frame = tokio::select! {
            next = up.recv() => match next {
                Some(Up::Syn { id }) => {
                    local_open.insert(id);
                    Frame::syn(id)
                }
                Some(Up::Data { id, bytes }) if local_open.contains(&id) => Frame::psh(id, bytes),
                Some(Up::Fin { id } | Up::Closed { id }) if local_open.remove(&id) => Frame::fin(id),
                Some(_) => continue,
                None => return,
            },
            _ = tick.tick(), if keepalive.is_some() => Frame::nop(),
        };
        if send_frame(&sender, &frame).await.is_err() {
            return;
        }
    }
}

/// The reading half: accepts local connections (each announced to the
/// sending half before its first byte) and hands the agent's frames to
/// them. Returns the end when the smux stream is broken, `None` when the
/// channel ended.
async fn downstream(
    channel: &mut DataChannel,
    listener: &TcpListener,
    up: mpsc::Sender<Up>,
    remote: &str,
    message_size: usize,
    idle_limit: Option<Duration>,
) -> Option<ChannelEnd> {
    let mut ids = StreamIds::new();
    let mut decoder = FrameDecoder::new();
    let mut streams: HashMap<u32, Stream> = HashMap::new();
    let mut dial_errors = DialErrors::default();
    let mut accept_failing = false;
    let budget = DownBudget::new();
    let mut heard = Instant::now();
    loop {
        // (Without a limit the branch is off; the day only keeps the sum
        // in range.)
        let idle_deadline = heard + idle_limit.unwrap_or(Duration::from_secs(86_400));
        tokio::select! {
            () = tokio::time::sleep_until(idle_deadline), if idle_limit.is_some() => {
                let limit = idle_limit.unwrap_or_default();
                tracing::warn!(
                    "nothing from the agent's smux for {} s (its keepalive stopped); \
                     ending the port forward",
                    limit.as_secs_f64()
                );
                return Some(ChannelEnd::Lost(format!(
                    "the agent's smux sent nothing for {:.1} s (keepalive missed)",
                    limit.as_secs_f64()
                )));
            }
            accepted = accept(listener, &mut accept_failing) => {
                let Some(stream) = accepted else { continue };
                let Ok(id) = ids.allocate() else {
                    tracing::warn!("smux stream ids exhausted; refusing a connection");
                    continue;
                };
                if up.send(Up::Syn { id }).await.is_err() {
                    return None;
                }
                let (write_tx, write_rx) = mpsc::unbounded_channel();
                streams.insert(id, Stream { writer: write_tx, got_data: false });
                tokio::spawn(connection(stream, id, message_size, up.clone(), write_rx));
            }
            incoming = channel.recv() => match incoming {
                Some(Incoming::Output(bytes)) => {
                    decoder.push(&bytes);
                    loop {
                        match decoder.next_frame() {
                            Ok(Some(frame)) => {
                                let closed = deliver(frame, &mut streams, &mut dial_errors, &budget).await;
                                if let Some(id) = closed
                                    && up.send(Up::Closed { id }).await.is_err()
                                {
                                    return None;
                                }
                            }
                            Ok(None) => break,
                            Err(error) => {
                                tracing::warn!(%error, "smux protocol error; ending the port forward");
                                return Some(ChannelEnd::GaveUp(format!("smux: {error}")));
                            }
                        }
                    }
                    // Time spent waiting for a slow local reader is not
                    // the agent's silence.
                    heard = Instant::now();
                }
                Some(Incoming::Flag(FlagValue::ConnectToPortError)) => {
                    tracing::warn!(
                        remote = %remote,
                        "the agent could not connect to {remote}; closing that local connection"
                    );
                    if let Some(id) = dial_errors.flag(Instant::now())
                        && up.send(Up::Closed { id }).await.is_err()
                    {
                        return None;
                    }
                }
                Some(Incoming::Flag(flag)) => {
                    tracing::debug!(?flag, "flag from the agent");
                }
                Some(_) => {}
                None => return None,
            },
        }
    }
}

/// Hands a frame from the agent to its local connection. Returns the id
/// of a stream whose local connection was closed for a failed dial (a FIN
/// on a stream without data while a ConnectToPortError is unmatched), so
/// that our FIN can be sent. Data waits for room in `budget` first.
async fn deliver(
    frame: Frame,
    streams: &mut HashMap<u32, Stream>,
    dial_errors: &mut DialErrors,
    budget: &DownBudget,
) -> Option<u32> {
    match frame.cmd {
        Cmd::Psh => {
            if let Some(stream) = streams.get_mut(&frame.stream_id) {
                stream.got_data = true;
                let _ = stream.writer.send(budget.data(frame.data).await);
            }
            None
        }
        Cmd::Fin => {
            let stream = streams.remove(&frame.stream_id)?;
            let failed_dial = !stream.got_data
                && dial_errors.empty_end(frame.stream_id, &stream.writer, Instant::now());
            if failed_dial {
                let _ = stream.writer.send(Down::Close);
                Some(frame.stream_id)
            } else {
                let _ = stream.writer.send(Down::Fin);
                None
            }
        }
        Cmd::Syn | Cmd::Nop => None,
    }
}

async fn send_frame(channel: &ChannelSender, frame: &Frame) -> Result<()> {
    let bytes = frame
        .encode()
        .map_err(|e| Error::invalid_input("smux frame", e.to_string()))?;
    channel.send(PayloadType::Output, bytes).await
}
