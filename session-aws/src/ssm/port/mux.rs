//! Smux mode: one smux stream per accepted connection (ids 3, 5, 7…), the
//! smux byte stream carried in Output payloads (`ssm.md` §2.9, §3).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use session_core::{Error, Result};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::super::channel::{ChannelEnd, ChannelSender, DataChannel, Incoming};
use super::super::message::PayloadType;
use super::super::payload::FlagValue;
use super::super::smux::{Cmd, Frame, FrameDecoder, StreamIds};
use super::{Down, DownBudget, KEEPALIVE_INTERVAL, Up, accept, connection};

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
        keepalive.then_some(KEEPALIVE_INTERVAL),
        "the remote port",
    )
    .await
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
    keepalive: Option<Duration>,
    remote: &str,
) -> ChannelEnd {
    let (up_tx, up_rx) = mpsc::channel::<Up>(256);
    let sending = upstream(channel.sender(), up_rx, keepalive);
    let reading = downstream(&mut channel, &listener, up_tx, remote);
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
) -> Option<ChannelEnd> {
    let mut ids = StreamIds::new();
    let mut decoder = FrameDecoder::new();
    let mut streams: HashMap<u32, Stream> = HashMap::new();
    // ConnectToPortError flags not yet matched with their stream's FIN.
    let mut dial_errors = 0usize;
    let mut accept_failing = false;
    let budget = DownBudget::new();
    loop {
        tokio::select! {
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
                tokio::spawn(connection(stream, id, up.clone(), write_rx));
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
                }
                Some(Incoming::Flag(FlagValue::ConnectToPortError)) => {
                    tracing::warn!(
                        remote = %remote,
                        "the agent could not connect to {remote}; closing that local connection"
                    );
                    dial_errors += 1;
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
    dial_errors: &mut usize,
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
            if !stream.got_data && *dial_errors > 0 {
                *dial_errors -= 1;
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
