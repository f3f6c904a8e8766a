//! Port forwarding over a data channel in smux mode: a local TCP listener,
//! one smux stream per accepted connection (ids 3, 5, 7…), the smux byte
//! stream carried in Output payloads (ssm.md §2.9, §3).

use std::collections::HashMap;
use std::time::Duration;

use session_core::{Error, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::channel::{ChannelEnd, DataChannel, Incoming};
use super::message::PayloadType;
use super::smux::{Cmd, Frame, FrameDecoder, StreamIds};

/// Bytes read from a local connection per smux frame: 1,024, as the
/// plugin sends per message (what MGS accepts per message is not
/// documented; larger frames are for the throughput bench to justify).
const READ_CHUNK: usize = 1024;

/// The smux NOP interval for agents that expect a keepalive.
const KEEPALIVE: Duration = Duration::from_secs(10);

/// What the connection tasks tell the multiplexer.
enum Up {
    /// Bytes to send on a stream (or its end, when empty with `fin`).
    Data { stream: u32, bytes: Vec<u8> },
    /// The local side reached EOF.
    Fin { stream: u32 },
}

/// Runs a mux port forward until the channel ends: accepts on `listener`,
/// opens an smux stream per connection, and copies bytes both ways.
/// `keepalive` sends a NOP every 10 s (agents up to 3.1.1511.0).
///
/// Returns why the channel ended.
pub async fn run_mux(
    mut channel: DataChannel,
    listener: TcpListener,
    keepalive: bool,
) -> ChannelEnd {
    let (up_tx, mut up_rx) = mpsc::channel::<Up>(256);
    let mut ids = StreamIds::new();
    let mut decoder = FrameDecoder::new();
    let mut writers: HashMap<u32, mpsc::UnboundedSender<Option<Vec<u8>>>> = HashMap::new();
    let mut tick = tokio::time::interval(KEEPALIVE);
    tick.tick().await;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let Ok(id) = ids.allocate() else {
                    tracing::warn!("smux stream ids exhausted; refusing a connection");
                    continue;
                };
                if send_frame(&channel, &Frame::syn(id)).await.is_err() {
                    break;
                }
                let (write_tx, write_rx) = mpsc::unbounded_channel();
                writers.insert(id, write_tx);
                tokio::spawn(connection(stream, id, up_tx.clone(), write_rx));
            }
            Some(up) = up_rx.recv() => {
                let frame = match up {
                    Up::Data { stream, bytes } => Frame::psh(stream, bytes),
                    Up::Fin { stream } => Frame::fin(stream),
                };
                if send_frame(&channel, &frame).await.is_err() {
                    break;
                }
            }
            incoming = channel.recv() => match incoming {
                Some(Incoming::Output(bytes)) => {
                    decoder.push(&bytes);
                    loop {
                        match decoder.next_frame() {
                            Ok(Some(frame)) => deliver(frame, &mut writers),
                            Ok(None) => break,
                            Err(error) => {
                                tracing::warn!(%error, "smux protocol error; ending the port forward");
                                return ChannelEnd::GaveUp(format!("smux: {error}"));
                            }
                        }
                    }
                }
                Some(Incoming::Flag(flag)) => {
                    tracing::debug!(?flag, "flag from the agent");
                }
                Some(_) => {}
                None => break,
            },
            _ = tick.tick(), if keepalive => {
                if send_frame(&channel, &Frame::nop()).await.is_err() {
                    break;
                }
            }
        }
    }
    channel.ended().await
}

/// Hands a frame from the agent to its local connection.
fn deliver(frame: Frame, writers: &mut HashMap<u32, mpsc::UnboundedSender<Option<Vec<u8>>>>) {
    match frame.cmd {
        Cmd::Psh => {
            if let Some(writer) = writers.get(&frame.stream_id) {
                let _ = writer.send(Some(frame.data));
            }
        }
        Cmd::Fin => {
            if let Some(writer) = writers.remove(&frame.stream_id) {
                let _ = writer.send(None);
            }
        }
        Cmd::Syn | Cmd::Nop => {}
    }
}

async fn send_frame(channel: &DataChannel, frame: &Frame) -> Result<()> {
    let bytes = frame
        .encode()
        .map_err(|e| Error::invalid_input("smux frame", e.to_string()))?;
    channel.send(PayloadType::Output, bytes).await
}

/// Copies one local connection to and from its smux stream.
async fn connection(
    stream: TcpStream,
    id: u32,
    up: mpsc::Sender<Up>,
    mut down: mpsc::UnboundedReceiver<Option<Vec<u8>>>,
) {
    let (mut read, mut write) = stream.into_split();
    let reader = async {
        let mut buffer = vec![0u8; READ_CHUNK];
        loop {
            match read.read(&mut buffer).await {
                Ok(0) | Err(_) => {
                    let _ = up.send(Up::Fin { stream: id }).await;
                    return;
                }
                Ok(n) => {
                    let bytes = buffer[..n].to_vec();
                    if up.send(Up::Data { stream: id, bytes }).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    let writer = async {
        while let Some(Some(bytes)) = down.recv().await {
            if write.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = write.shutdown().await;
    };
    tokio::join!(reader, writer);
}
