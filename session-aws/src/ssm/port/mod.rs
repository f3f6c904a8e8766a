//! Port forwarding over a data channel (`ssm.md` §2.9, §3): a local TCP
//! listener whose connections reach the port the agent dials.
//!
//! - [`run`] / [`run_with`]: pick the mode from what the handshake
//!   [`Established`] (the same rules as the agent's, see [`port_mode`]
//!   and [`smux_keepalive_needed`])
//!   and run it;
//! - [`run_mux`]: smux mode, one smux stream per accepted connection (ids
//!   3, 5, 7…), any number at once;
//! - [`run_basic`]: basic mode (agents 3.0.196.0 and older): raw bytes of
//!   one connection at a time, Flag DisconnectToPort when it closes; extra
//!   connections wait in a bounded queue, with a warning, and are refused
//!   beyond it.

mod basic;
mod mux;

use std::sync::Arc;
use std::time::Duration;

use session_core::{Error, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

pub use basic::run_basic;
pub use mux::run_mux;

use super::channel::{ChannelEnd, DataChannel, Established};
use super::handshake::{PortMode, port_mode, smux_keepalive_needed};

/// Bytes read from a local connection per payload (basic mode) or per smux
/// frame (mux mode), by default: 1,024, as the plugin sends per message
/// (what MGS accepts per message is not documented).
pub const MESSAGE_SIZE: usize = 1024;

/// The largest [`PortOptions::message_size`]: xtaci's largest smux frame,
/// and pyssm-client's message size.
pub const MAX_MESSAGE_SIZE: usize = 32 * 1024;

/// The smux NOP interval for agents that expect a keepalive (xtaci's
/// default).
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// How long an agent that expects a keepalive may send nothing before the
/// forward is given up (xtaci's default `KeepAliveTimeout`: three of its
/// 10 s NOPs missed).
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections that may wait in basic mode while one is carried.
pub const BASIC_QUEUE: usize = 16;

/// Bytes from the agent that may wait for local connections to take them,
/// across all of a forward's connections (xtaci's session-wide receive
/// buffer is the same 4 MiB). Past it the runner stops reading the
/// channel, which stops reading the websocket, and the agent's writes
/// wait: a local client that reads slowly slows the remote side down
/// instead of filling our memory.
const DOWN_BUFFER: usize = 4 << 20;

/// Pause after a failed `accept` (e.g. EMFILE) before the next one.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Tunables of [`run_with`]; [`run`] uses the defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PortOptions {
    /// The smux NOP interval, when the agent needs a keepalive
    /// ([`KEEPALIVE_INTERVAL`]).
    pub keepalive_interval: Duration,
    /// With the same agents: how long the agent may send nothing (its
    /// smux sends a NOP every 10 s) before the forward ends as lost
    /// ([`KEEPALIVE_TIMEOUT`]), as xtaci's own session does. Without it a
    /// forward whose agent-side smux session had died went quiet for good.
    pub keepalive_timeout: Duration,
    /// Basic mode: connections that may wait while one is carried
    /// ([`BASIC_QUEUE`]); any more are refused.
    pub basic_queue: usize,
    /// Bytes read from a local connection per message to the agent
    /// ([`MESSAGE_SIZE`], 1 to [`MAX_MESSAGE_SIZE`]).
    ///
    /// Each message costs a digest, a sequence number and an ack, so
    /// larger messages move more per second: through the fake agent on
    /// loopback, 32 KiB messages were 4× faster than 1 KiB ones (see
    /// `benches/README.md`, run 5). The AWS plugin sends 1 KiB; pyssm-client
    /// sends 32 KiB. What the real service accepts per message is not
    /// documented, so the default stays at the plugin's size.
    pub message_size: usize,
}

impl Default for PortOptions {
    fn default() -> Self {
        Self {
            keepalive_interval: KEEPALIVE_INTERVAL,
            keepalive_timeout: KEEPALIVE_TIMEOUT,
            basic_queue: BASIC_QUEUE,
            message_size: MESSAGE_SIZE,
        }
    }
}

impl PortOptions {
    /// Sets [`keepalive_interval`](Self::keepalive_interval).
    #[must_use]
    pub fn with_keepalive_interval(mut self, interval: Duration) -> Self {
        self.keepalive_interval = interval;
        self
    }

    /// Sets [`keepalive_timeout`](Self::keepalive_timeout).
    #[must_use]
    pub fn with_keepalive_timeout(mut self, timeout: Duration) -> Self {
        self.keepalive_timeout = timeout;
        self
    }

    /// Sets [`message_size`](Self::message_size); [`run_with`] refuses a
    /// size outside 1 to [`MAX_MESSAGE_SIZE`].
    #[must_use]
    pub fn with_message_size(mut self, bytes: usize) -> Self {
        self.message_size = bytes;
        self
    }

    /// Sets [`basic_queue`](Self::basic_queue).
    #[must_use]
    pub fn with_basic_queue(mut self, queue: usize) -> Self {
        self.basic_queue = queue;
        self
    }
}

/// Runs the port forward of a `Port` session on `listener` until the
/// channel ends, in the mode the agent also picked: [`run_with`] with the
/// default [`PortOptions`].
///
/// # Errors
///
/// As [`run_with`].
pub async fn run(
    channel: DataChannel,
    established: &Established,
    listener: TcpListener,
) -> Result<ChannelEnd> {
    run_with(channel, established, listener, &PortOptions::default()).await
}

/// Runs the port forward of a `Port` session on `listener` until the
/// channel ends: smux mode (with NOP keepalives every
/// `options.keepalive_interval` for agents up to 3.1.1511.0) when the agent
/// is newer than 3.0.196.0 and the ClientVersion we reported is at least
/// 1.1.70, else basic mode (one connection at a time).
///
/// Returns why the channel ended.
///
/// # Errors
///
/// [`Error::InvalidInput`] when the session is not a `Port` session or
/// `options.message_size` is out of range;
/// [`Error::Unsupported`] for a `Port` session without `type` (standard
/// stream forwarding, e.g. `AWS-StartSSHSession`, carries stdin and stdout,
/// not a listener's connections).
pub async fn run_with(
    channel: DataChannel,
    established: &Established,
    listener: TcpListener,
    options: &PortOptions,
) -> Result<ChannelEnd> {
    if !(1..=MAX_MESSAGE_SIZE).contains(&options.message_size) {
        return Err(Error::invalid_input(
            "message size",
            format!(
                "{} bytes: a port forward's message size must be 1 to {MAX_MESSAGE_SIZE}",
                options.message_size
            ),
        ));
    }
    let Some(properties) = established.port.as_ref() else {
        return Err(Error::invalid_input(
            "session type",
            format!(
                "port forwarding needs a Port session, the agent runs {:?}",
                established.session_type
            ),
        ));
    };
    let remote = remote_name(
        properties.host.as_deref(),
        properties.port_number.as_deref(),
    );
    let mode = port_mode(
        properties,
        &established.agent_version,
        &established.client_version,
    );
    tracing::debug!(
        ?mode,
        agent_version = %established.agent_version,
        client_version = %established.client_version,
        "port forwarding mode"
    );
    match mode {
        PortMode::Mux => {
            let keepalive =
                smux_keepalive_needed(&established.agent_version).then_some(mux::Keepalive {
                    interval: options.keepalive_interval,
                    timeout: options.keepalive_timeout,
                });
            Ok(mux::serve(channel, listener, keepalive, &remote, options.message_size).await)
        }
        PortMode::Basic => {
            let config = basic::Config {
                queue: options.basic_queue,
                remote,
                agent_version: established.agent_version.clone(),
                message_size: options.message_size,
            };
            Ok(basic::serve(channel, listener, &config).await)
        }
        PortMode::StandardStream => Err(Error::Unsupported {
            provider: "awsSsm port forwarding".into(),
            operation: "a local listener for a Port session without `type` \
                        (standard-stream forwarding carries stdin and stdout)"
                .into(),
        }),
    }
}

/// How logs name the far end: `port 5432` or `db.internal:5432`.
fn remote_name(host: Option<&str>, port: Option<&str>) -> String {
    match (host, port) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (None, Some(port)) => format!("port {port}"),
        (Some(host), None) => host.to_owned(),
        (None, None) => "the remote port".to_owned(),
    }
}

/// What goes up to the agent: from a connection task, or (mux mode) from
/// the runner's reading side.
enum Up {
    /// Bytes read from the local connection (at most the message size).
    Data { id: u32, bytes: Vec<u8> },
    /// The local side reached EOF (or failed).
    Fin { id: u32 },
    /// Mux mode: a new stream, before any of its data.
    Syn { id: u32 },
    /// Mux mode: the local connection was closed for a failed dial; our
    /// FIN follows unless the local side already sent one.
    Closed { id: u32 },
}

/// What a runner tells a connection task.
enum Down {
    /// Bytes for the local connection, with their share of
    /// [`DOWN_BUFFER`] (released once written, or dropped).
    Data(Vec<u8>, OwnedSemaphorePermit),
    /// The far end is done sending: shut down our writing half; the local
    /// side may still send.
    Fin,
    /// Close the local connection at once, both ways.
    Close,
}

/// Copies one local connection to and from its runner until both ways
/// are done, or until [`Down::Close`] (which drops the socket) or the end
/// of the runner (which resets it).
async fn connection(
    stream: TcpStream,
    id: u32,
    message_size: usize,
    up: mpsc::Sender<Up>,
    mut down: mpsc::UnboundedReceiver<Down>,
) {
    let (mut read, mut write) = stream.into_split();
    let reader = async {
        let mut buffer = vec![0u8; message_size];
        loop {
            match read.read(&mut buffer).await {
                Ok(0) | Err(_) => {
                    let _ = up.send(Up::Fin { id }).await;
                    return;
                }
                Ok(n) => {
                    let bytes = buffer[..n].to_vec();
                    if up.send(Up::Data { id, bytes }).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    // Returns true for Close.
    let writer = async move {
        loop {
            match down.recv().await {
                Some(Down::Data(bytes, _budget)) => {
                    if write.write_all(&bytes).await.is_err() {
                        // Keep draining so that Close is still seen.
                        continue;
                    }
                }
                None => {
                    // The runner ended (the channel is gone) without the
                    // far end's FIN: reset the connection, so that its
                    // client sees an error rather than an end of stream
                    // that would pass a cut-off transfer for a whole one.
                    // (Dropping the write half would send a FIN first.)
                    let _ = write.as_ref().set_zero_linger();
                    write.forget();
                    return true;
                }
                Some(Down::Fin) => {
                    let _ = write.shutdown().await;
                    // Only Close can follow.
                    while let Some(next) = down.recv().await {
                        if matches!(next, Down::Close) {
                            return true;
                        }
                    }
                    return false;
                }
                Some(Down::Close) => return true,
            }
        }
    };
    tokio::pin!(reader, writer);
    let (mut reader_done, mut writer_done) = (false, false);
    loop {
        tokio::select! {
            () = &mut reader, if !reader_done => reader_done = true,
            closed = &mut writer, if !writer_done => {
                if closed {
                    return;
                }
                writer_done = true;
            }
            else => return,
        }
    }
}

/// The bytes from the agent waiting for local connections, bounded by
/// [`DOWN_BUFFER`].
#[derive(Clone)]
struct DownBudget(Arc<Semaphore>);

impl DownBudget {
    fn new() -> Self {
        Self(Arc::new(Semaphore::new(DOWN_BUFFER)))
    }

    /// Waits until `bytes` more may wait, then wraps them for a connection.
    async fn data(&self, bytes: Vec<u8>) -> Down {
        // A payload or frame is at most 64 KiB, far below the budget.
        let n = u32::try_from(bytes.len().min(DOWN_BUFFER)).unwrap_or(u32::MAX);
        let permit = Arc::clone(&self.0)
            .acquire_many_owned(n)
            .await
            .expect("the semaphore is never closed");
        Down::Data(bytes, permit)
    }
}

/// Accepts the next connection; on an error (e.g. too many open files)
/// waits [`ACCEPT_BACKOFF`] instead of spinning, warning once per run of
/// failures.
async fn accept(listener: &TcpListener, failing: &mut bool) -> Option<TcpStream> {
    match listener.accept().await {
        Ok((stream, _)) => {
            *failing = false;
            Some(stream)
        }
        Err(error) => {
            if !*failing {
                tracing::warn!(
                    %error,
                    "accepting a local connection failed; retrying every {} ms",
                    ACCEPT_BACKOFF.as_millis()
                );
                *failing = true;
            }
            tokio::time::sleep(ACCEPT_BACKOFF).await;
            None
        }
    }
}
