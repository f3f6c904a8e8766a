//! Basic mode (`ssm.md` §2.9): the raw bytes of one local connection at a
//! time in Output payloads (≤ 1,024 bytes each); Flag DisconnectToPort when
//! it closes, after which the agent closes its side and dials again on the
//! next data. Other connections wait in a bounded queue, and are refused
//! (closed at once) beyond it, with a warning either way: a browser that
//! opens six connections must not hang without a word.
//!
//! The protocol has no per-connection end from the agent: a local client
//! that half-closes to say "request done" loses the answer (its EOF ends
//! the connection, as in the plugin), and bytes of the agent's for a
//! connection that just closed reach the next one if they arrive after it
//! started (nothing in the payloads tells them apart).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::super::channel::{ChannelEnd, ChannelSender, DataChannel, Incoming};
use super::super::message::PayloadType;
use super::super::payload::FlagValue;
use super::{BASIC_QUEUE, Down, DownBudget, MESSAGE_SIZE, Up, accept, connection};

/// How [`serve`] runs.
pub(super) struct Config {
    /// Connections that may wait.
    pub(super) queue: usize,
    /// The far end, for logs.
    pub(super) remote: String,
    /// The agent's version, for logs (empty when unknown).
    pub(super) agent_version: String,
    /// Bytes per Output payload read from the connection.
    pub(super) message_size: usize,
}

/// Runs a basic port forward until the channel ends: one local connection
/// at a time, up to 16 ([`BASIC_QUEUE`]) more waiting their turn (each
/// with a warning), any further one closed at once.
///
/// Returns why the channel ended.
pub async fn run_basic(channel: DataChannel, listener: TcpListener) -> ChannelEnd {
    let config = Config {
        queue: BASIC_QUEUE,
        remote: "the remote port".into(),
        agent_version: String::new(),
        message_size: MESSAGE_SIZE,
    };
    serve(channel, listener, &config).await
}

/// The connection being carried.
struct Active {
    id: u32,
    writer: mpsc::UnboundedSender<Down>,
}

/// The basic runner.
///
/// Two halves run side by side, as in mux mode: the sending half writes
/// the carried connection's bytes and, after them, its DisconnectToPort
/// (waiting for the channel's window), and the other half accepts,
/// queues and switches connections and hands the agent's bytes on. A
/// single loop that waited for the window stopped reading the channel,
/// so the agent's acks were never read and the window never opened: an
/// echo of 16 MiB hung for good.
pub(super) async fn serve(
    mut channel: DataChannel,
    listener: TcpListener,
    config: &Config,
) -> ChannelEnd {
    let (up_tx, up_rx) = mpsc::channel::<Up>(64);
    // Ids of connections whose DisconnectToPort went out.
    let (done_tx, done_rx) = mpsc::unbounded_channel::<u32>();
    let current = Arc::new(AtomicU32::new(0));
    let sending = upstream(channel.sender(), up_rx, Arc::clone(&current), done_tx);
    let switching = downstream(&mut channel, &listener, config, up_tx, current, done_rx);
    tokio::select! {
        () = sending => {}
        () = switching => {}
    }
    channel.ended().await
}

/// The sending half: the carried connection's bytes, then its
/// DisconnectToPort, reported on `done`. Bytes and ends of connections that
/// are no longer carried (dropped after a ConnectToPortError) are dropped:
/// the agent has no connection for them. Ends when the channel does.
async fn upstream(
    sender: ChannelSender,
    mut up: mpsc::Receiver<Up>,
    current: Arc<AtomicU32>,
    done: mpsc::UnboundedSender<u32>,
) {
    while let Some(next) = up.recv().await {
        let carried = current.load(Ordering::Acquire);
        let sent = match next {
            Up::Data { id, bytes } if id == carried => {
                sender.send(PayloadType::Output, bytes).await
            }
            Up::Fin { id } if id == carried => {
                let flag = FlagValue::DisconnectToPort.to_payload().to_vec();
                let sent = sender.send(PayloadType::Flag, flag).await;
                let _ = done.send(id);
                sent
            }
            _ => Ok(()),
        };
        if sent.is_err() {
            return;
        }
    }
}

/// The switching half: accepts connections (one carried, the others
/// waiting or refused), starts the next one when the carried one is done
/// or failed, and hands the agent's bytes to the carried one. Ends when
/// the channel does.
async fn downstream(
    channel: &mut DataChannel,
    listener: &TcpListener,
    config: &Config,
    up: mpsc::Sender<Up>,
    current: Arc<AtomicU32>,
    mut done: mpsc::UnboundedReceiver<u32>,
) {
    let mut active: Option<Active> = None;
    let mut waiting: VecDeque<TcpStream> = VecDeque::new();
    let mut next_id = 0u32;
    let mut accept_failing = false;
    let budget = DownBudget::new();
    let why = if config.agent_version.is_empty() {
        "the agent runs basic port mode".to_owned()
    } else {
        format!(
            "agent {} runs basic port mode (3.0.196.0 and older have no smux)",
            config.agent_version
        )
    };
    let mut start = |stream: TcpStream| {
        // Ids start at 1: 0 in `current` means none is carried.
        next_id = next_id.wrapping_add(1).max(1);
        current.store(next_id, Ordering::Release);
        let (writer, down) = mpsc::unbounded_channel();
        tokio::spawn(connection(
            stream,
            next_id,
            config.message_size,
            up.clone(),
            down,
        ));
        Active {
            id: next_id,
            writer,
        }
    };
    loop {
        tokio::select! {
            accepted = accept(listener, &mut accept_failing) => {
                let Some(stream) = accepted else { continue };
                if active.is_none() {
                    active = Some(start(stream));
                } else if waiting.len() < config.queue {
                    waiting.push_back(stream);
                    tracing::warn!(
                        waiting = waiting.len(),
                        "basic port mode carries one connection at a time ({why}); \
                         a new local connection waits until the current one closes"
                    );
                } else {
                    drop(stream);
                    tracing::warn!(
                        "basic port mode carries one connection at a time ({why}) and {} \
                         connections are already waiting; refused a new local connection",
                        waiting.len()
                    );
                }
            }
            Some(id) = done.recv() => {
                if active.as_ref().is_some_and(|a| a.id == id) {
                    if let Some(finished) = active.take() {
                        let _ = finished.writer.send(Down::Close);
                    }
                    active = waiting.pop_front().map(&mut start);
                }
            }
            incoming = channel.recv() => match incoming {
                Some(Incoming::Output(bytes)) => match &active {
                    Some(carried) => {
                        let _ = carried.writer.send(budget.data(bytes).await);
                    }
                    None => tracing::debug!(
                        len = bytes.len(),
                        "bytes from the agent with no local connection; dropped"
                    ),
                },
                Some(Incoming::Flag(FlagValue::ConnectToPortError)) => {
                    tracing::warn!(
                        remote = %config.remote,
                        "the agent could not connect to {}; closing the local connection",
                        config.remote
                    );
                    // The agent has no connection: no DisconnectToPort.
                    current.store(0, Ordering::Release);
                    if let Some(failed) = active.take() {
                        let _ = failed.writer.send(Down::Close);
                    }
                    active = waiting.pop_front().map(&mut start);
                }
                Some(Incoming::Flag(flag)) => {
                    tracing::debug!(?flag, "flag from the agent");
                }
                Some(_) => {}
                None => return,
            },
        }
    }
}
