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

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::super::channel::{ChannelEnd, DataChannel, Incoming};
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
pub(super) async fn serve(
    mut channel: DataChannel,
    listener: TcpListener,
    config: &Config,
) -> ChannelEnd {
    let (up_tx, mut up_rx) = mpsc::channel::<Up>(64);
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
        next_id = next_id.wrapping_add(1);
        let (writer, down) = mpsc::unbounded_channel();
        tokio::spawn(connection(
            stream,
            next_id,
            config.message_size,
            up_tx.clone(),
            down,
        ));
        Active {
            id: next_id,
            writer,
        }
    };
    loop {
        tokio::select! {
            accepted = accept(&listener, &mut accept_failing) => {
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
            Some(up) = up_rx.recv() => {
                let current = active.as_ref().map(|a| a.id);
                match up {
                    Up::Data { id, bytes } if current == Some(id) => {
                        let sent = channel.send(PayloadType::Output, bytes).await;
                        if sent.is_err() {
                            break;
                        }
                    }
                    Up::Fin { id } if current == Some(id) => {
                        if let Some(done) = active.take() {
                            let _ = done.writer.send(Down::Close);
                        }
                        let flag = FlagValue::DisconnectToPort.to_payload().to_vec();
                        if channel.send(PayloadType::Flag, flag).await.is_err() {
                            break;
                        }
                        active = waiting.pop_front().map(&mut start);
                    }
                    _ => {}
                }
            }
            incoming = channel.recv() => match incoming {
                Some(Incoming::Output(bytes)) => match &active {
                    Some(current) => {
                        let _ = current.writer.send(budget.data(bytes).await);
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
                    if let Some(failed) = active.take() {
                        let _ = failed.writer.send(Down::Close);
                    }
                    active = waiting.pop_front().map(&mut start);
                }
                Some(Incoming::Flag(flag)) => {
                    tracing::debug!(?flag, "flag from the agent");
                }
                Some(_) => {}
                None => break,
            },
        }
    }
    channel.ended().await
}
