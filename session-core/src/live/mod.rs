//! Live connections: what a tunnel-style provider hands back from start and
//! resume, and how its end is watched.
//!
//! A [`LiveHandle`] is the user's side of a connection that outlives the call
//! that opened it (an SSM data channel, a Boundary local proxy): the local
//! listen addresses, or a duplex byte stream for an interactive shell, and a
//! way to wait for its end with an [`EndReason`]. The provider keeps the
//! matching [`LiveEnd`] and calls [`LiveEnd::end`] when the connection goes
//! away, whoever closed it.

mod listen;
mod policy;

pub use listen::{LiveOptions, bind_listener};
pub use policy::ResumePolicy;

use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

/// A duplex byte stream, e.g. an interactive shell's stdin/stdout.
pub trait LiveIo: AsyncRead + AsyncWrite + Send + fmt::Debug {}

impl<T: AsyncRead + AsyncWrite + Send + fmt::Debug> LiveIo for T {}

/// The stream of a [`LiveHandle`], taken once with [`LiveHandle::take_stream`].
pub type LiveStream = Pin<Box<dyn LiveIo>>;

/// Why a live connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndReason {
    /// The user stopped the session; nothing to resume.
    ClosedByUser,
    /// The service ended the session (e.g. Boundary `canceled`, SSM
    /// `channel_closed`); the text is the service's own reason, verbatim.
    ClosedByService(String),
    /// The remote session ran out (time or connection limit).
    Expired,
    /// The connection was lost (network, websocket closed with "resume me");
    /// the remote session can be resumed.
    NetworkLost(String),
    /// The remote command (a shell, a non-interactive command) exited with
    /// this status: the session is over, as if the user had stopped it.
    Exited(i32),
}

impl EndReason {
    /// Whether the manager should try to resume the session: only after
    /// [`EndReason::NetworkLost`]. A session the service closed or that
    /// expired would only be refused.
    pub fn is_resumable(&self) -> bool {
        matches!(self, EndReason::NetworkLost(_))
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndReason::ClosedByUser => f.write_str("closed by the user"),
            EndReason::ClosedByService(why) => write!(f, "closed by the service: {why}"),
            EndReason::Expired => f.write_str("the remote session expired"),
            EndReason::NetworkLost(why) => write!(f, "network lost: {why}"),
            EndReason::Exited(code) => write!(f, "the remote command exited with status {code}"),
        }
    }
}

/// The size of a terminal, in character cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowSize {
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
}

/// What a provider reports about a live connection that is still up: its
/// transport dropped and it is being resumed in place (same remote
/// session, nothing lost), e.g. an SSM data channel after a network blink.
/// Published by the manager as
/// [`SessionEventKind::Connection`](crate::SessionEventKind::Connection).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LiveEvent {
    /// The transport was lost; resuming begins.
    Reconnecting {
        /// Why it was lost.
        reason: String,
    },
    /// One try to resume failed; another follows after `retry_in`.
    ReconnectFailed {
        /// Tries so far.
        attempt: u32,
        /// Why it failed.
        error: String,
        /// The wait before the next try.
        retry_in: std::time::Duration,
    },
    /// The connection is back, on the same remote session.
    Reconnected {
        /// Tries it took.
        attempts: u32,
        /// From the loss until it was back.
        after: std::time::Duration,
    },
    /// Something the user should know while the connection stays up, in
    /// the provider's words: e.g. a Boundary proxy now routing new
    /// connections to a new session, a local connection the service
    /// refused, or an expiry coming.
    Notice {
        /// What happened.
        message: String,
    },
}

impl fmt::Display for LiveEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Reconnecting { reason } => write!(f, "reconnecting… ({reason})"),
            Self::ReconnectFailed {
                attempt,
                error,
                retry_in,
            } => write!(
                f,
                "reconnect try {attempt} failed: {error}; next in {:.1} s",
                retry_in.as_secs_f64()
            ),
            Self::Notice { message } => f.write_str(message),
            Self::Reconnected { attempts, after } => write!(
                f,
                "resumed after {:.1} s ({attempts} {})",
                after.as_secs_f64(),
                if *attempts == 1 { "try" } else { "tries" }
            ),
        }
    }
}

/// The user's side of a live connection.
///
/// Cloning is cheap and clones share the connection: every clone sees the
/// same end, and the stream can be taken by one of them only.
#[derive(Clone)]
pub struct LiveHandle {
    inner: Arc<HandleInner>,
}

struct HandleInner {
    addresses: Vec<SocketAddr>,
    /// Whether the stream is a remote terminal (see
    /// [`LiveHandle::carries_terminal`]).
    terminal: bool,
    stream: Mutex<Option<LiveStream>>,
    ended: watch::Receiver<Option<EndReason>>,
    window: watch::Sender<Option<WindowSize>>,
    events: tokio::sync::broadcast::Sender<LiveEvent>,
}

impl fmt::Debug for LiveHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveHandle")
            .field("addresses", &self.inner.addresses)
            .field("end_reason", &self.end_reason())
            .finish_non_exhaustive()
    }
}

/// The provider's side of a live connection: it tells every
/// [`LiveHandle`] clone that the connection ended, and why.
#[derive(Debug)]
pub struct LiveEnd {
    sender: watch::Sender<Option<EndReason>>,
    window: watch::Receiver<Option<WindowSize>>,
    events: tokio::sync::broadcast::Sender<LiveEvent>,
}

impl LiveEnd {
    /// Marks the connection ended. Only the first call counts, so a
    /// provider may call it from both its drop detection and `stop`.
    pub fn end(&self, reason: EndReason) {
        self.sender.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(reason);
            true
        });
    }

    /// Reports `event` to every subscriber of [`LiveHandle::events`] (none
    /// is fine).
    pub fn report(&self, event: LiveEvent) {
        let _ = self.events.send(event);
    }

    /// Whether [`end`](Self::end) was called.
    pub fn is_ended(&self) -> bool {
        self.sender.borrow().is_some()
    }

    /// The terminal size the user last gave with [`LiveHandle::resize`]
    /// (`None` until then), to watch for changes: a shell provider sends
    /// it to the remote side at start and on every change.
    pub fn window_size(&self) -> watch::Receiver<Option<WindowSize>> {
        self.window.clone()
    }
}

impl LiveHandle {
    /// A handle for a port forward or proxy listening on `addresses`.
    pub fn listening(addresses: impl IntoIterator<Item = SocketAddr>) -> (Self, LiveEnd) {
        Self::build(addresses.into_iter().collect(), None, false)
    }

    /// A handle for an interactive stream to a remote terminal, e.g. a
    /// shell: a user's terminal goes into raw mode, its size is sent with
    /// [`resize`](Self::resize), and Ctrl-C is handed on as a byte.
    pub fn streaming(stream: impl LiveIo + 'static) -> (Self, LiveEnd) {
        Self::build(Vec::new(), Some(Box::pin(stream)), true)
    }

    /// A handle for a plain byte stream with no terminal at the far end,
    /// e.g. a forwarded TCP port carried on standard input and output (SSM's
    /// `AWS-StartSSHSession`, used as ssh's `ProxyCommand`): no raw mode,
    /// no size, and no byte may be added to the stream (Ctrl-C ends it).
    pub fn byte_stream(stream: impl LiveIo + 'static) -> (Self, LiveEnd) {
        Self::build(Vec::new(), Some(Box::pin(stream)), false)
    }

    fn build(
        addresses: Vec<SocketAddr>,
        stream: Option<LiveStream>,
        terminal: bool,
    ) -> (Self, LiveEnd) {
        let (sender, ended) = watch::channel(None);
        let (window, window_seen) = watch::channel(None);
        let (events, _) = tokio::sync::broadcast::channel(64);
        let handle = Self {
            inner: Arc::new(HandleInner {
                addresses,
                terminal,
                stream: Mutex::new(stream),
                ended,
                window,
                events: events.clone(),
            }),
        };
        (
            handle,
            LiveEnd {
                sender,
                window: window_seen,
                events,
            },
        )
    }

    /// The local addresses to connect to; empty for a stream.
    pub fn addresses(&self) -> &[SocketAddr] {
        &self.inner.addresses
    }

    /// Whether the stream reaches a remote terminal (made with
    /// [`streaming`](Self::streaming)) rather than carrying plain bytes
    /// ([`byte_stream`](Self::byte_stream)); false for a listener.
    pub fn carries_terminal(&self) -> bool {
        self.inner.terminal
    }

    /// The duplex stream, the first time it is asked for; `None` after
    /// that, and for a handle made with [`listening`](Self::listening).
    pub fn take_stream(&self) -> Option<LiveStream> {
        self.inner
            .stream
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Tells the provider the size of the user's terminal, for a stream
    /// that carries one (a shell); call it at start and on every change
    /// (SIGWINCH). Ignored by providers without a terminal.
    pub fn resize(&self, size: WindowSize) {
        self.inner.window.send_if_modified(|current| {
            let changed = *current != Some(size);
            *current = Some(size);
            changed
        });
    }

    /// What the provider reports while the connection is up (see
    /// [`LiveEvent`]); subscribe early to see all of it.
    pub fn events(&self) -> tokio::sync::broadcast::Receiver<LiveEvent> {
        self.inner.events.subscribe()
    }

    /// Why the connection ended, or `None` while it is up.
    pub fn end_reason(&self) -> Option<EndReason> {
        self.inner.ended.borrow().clone()
    }

    /// Completes when the connection ends. If the provider dropped its
    /// [`LiveEnd`] without calling it, the connection is reported as lost.
    pub async fn ended(&self) -> EndReason {
        let mut ended = self.inner.ended.clone();
        let seen = match ended.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone(),
            Err(_) => None,
        };
        seen.or_else(|| ended.borrow().clone())
            .unwrap_or_else(|| EndReason::NetworkLost("the provider dropped the connection".into()))
    }

    /// Whether `self` and `other` are clones of one handle.
    pub fn same_connection(&self, other: &LiveHandle) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}
