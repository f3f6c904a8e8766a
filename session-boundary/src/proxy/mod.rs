//! The local proxy of `boundary connect` (`boundary.md` §4): a loopback
//! listener whose every connection is carried to the target through the
//! session's worker.
//!
//! What it does beyond the Boundary CLI (`tunnel-peers.md` §4):
//! - The first connection of a session activates it; further connections
//!   wait for its `HandshakeResult`, then open concurrently. The CLI opens
//!   them all at once and loses some to "refusing to activate session".
//! - Data goes in websocket messages of at most 32 KiB, which every worker
//!   version accepts.
//! - It can carry a *sequence* of sessions on one listener:
//!   [`Proxy::replace_session`] routes new connections to a new session
//!   while open ones finish on the old, so a long-lived local address can
//!   outlive one session's maximum length.
//! - Every end has a reason ([`ProxyEnd`]): expiry, connection limit,
//!   cancel, or a session taken by another client are told apart.

mod link;
mod pump;
mod route;
pub(crate) mod tls;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use session_core::{Clock, Result, SystemClock};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, watch};

use crate::token::AuthorizationData;

pub use pump::MAX_MESSAGE;
pub use route::SessionRoute;

use link::LinkError;

/// Settings of a [`Proxy`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ProxyOptions {
    /// Time to connect to the worker and finish the handshake (default
    /// 15 s).
    pub connect_timeout: Duration,
    /// Time for a cancel through the worker (default 3 s: past it, the
    /// REST cancel is the fallback).
    pub cancel_timeout: Duration,
    /// The clock the session's expiration is watched with.
    pub clock: Arc<dyn Clock>,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(15),
            cancel_timeout: Duration::from_secs(3),
            clock: Arc::new(SystemClock),
        }
    }
}

/// Why a proxy ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyEnd {
    /// [`Proxy::close`] was called.
    Closed,
    /// The session was canceled (by a cancel, or on the controller).
    Canceled(String),
    /// The session reached its expiration.
    Expired,
    /// The session's connection limit is used up, and its last connection
    /// ended.
    ConnectionLimit,
    /// Another client holds the session (`tofu token not allowed`).
    InUse,
    /// The worker refused the session's credentials, or refused to
    /// activate it; the message says which.
    Refused(String),
}

impl std::fmt::Display for ProxyEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Closed => f.write_str("closed"),
            Self::Canceled(why) => write!(f, "the session was canceled: {why}"),
            Self::Expired => f.write_str("the session expired"),
            Self::ConnectionLimit => f.write_str("the session's connection limit is used up"),
            Self::InUse => f.write_str(
                "the session is already in use by another client (tofu token not allowed)",
            ),
            Self::Refused(why) => write!(f, "the worker refused the session: {why}"),
        }
    }
}

/// Something that happened in a proxy, for logs and status lines.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyEvent {
    /// The worker activated the session (its first connection).
    Activated {
        /// The session.
        session_id: String,
        /// Connections left; `None` when unlimited.
        connections_left: Option<u32>,
    },
    /// A local connection is carried to the target.
    Connected {
        /// The session carrying it.
        session_id: String,
        /// The local client.
        peer: SocketAddr,
    },
    /// A carried connection ended.
    ConnectionClosed {
        /// The session that carried it.
        session_id: String,
        /// The local client.
        peer: SocketAddr,
        /// Bytes sent to the target.
        bytes_up: u64,
        /// Bytes received from the target.
        bytes_down: u64,
        /// The worker's close code and reason, unless a plain 1000.
        worker_close: Option<(u16, String)>,
    },
    /// A local connection could not be carried; it was closed.
    ConnectionFailed {
        /// The session it was for.
        session_id: String,
        /// The local client.
        peer: SocketAddr,
        /// Why, in words.
        reason: String,
    },
    /// The session lets in no new connection (limit used up or expired).
    Exhausted {
        /// The session.
        session_id: String,
        /// Why.
        reason: ProxyEnd,
    },
    /// New connections now go to another session.
    Replaced {
        /// The session that carried them until now.
        old_session_id: String,
        /// The session that carries them from now on.
        new_session_id: String,
    },
}

struct Inner {
    current: Mutex<Arc<SessionRoute>>,
    events: broadcast::Sender<ProxyEvent>,
    /// Set once: why the proxy ended.
    end: watch::Sender<Option<ProxyEnd>>,
    /// True once the listener is closed.
    listener_closed: watch::Sender<bool>,
    options: ProxyOptions,
}

/// A running local proxy. Dropping it does not stop it: call
/// [`close`](Self::close).
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
    local_addr: SocketAddr,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("local_addr", &self.local_addr)
            .field("session_id", &self.session_id())
            .field("end", &*self.inner.end.borrow())
            .finish()
    }
}

impl Proxy {
    /// Starts carrying the connections of `listener` through the session
    /// `data` authorizes. Nothing is sent to the worker until the first
    /// local connection arrives. Call it within a Tokio runtime: the proxy
    /// runs as tasks of that runtime.
    ///
    /// # Errors
    ///
    /// [`session_core::Error::InvalidInput`] when the session's certificate
    /// or key cannot be used for TLS, or its worker address is unusable.
    pub fn start(
        listener: TcpListener,
        data: AuthorizationData,
        options: ProxyOptions,
    ) -> Result<Self> {
        let local_addr = listener
            .local_addr()
            .map_err(|e| session_core::Error::invalid_input("listen address", e.to_string()))?;
        let route = Arc::new(SessionRoute::new(data, &options)?);
        let (events, _) = broadcast::channel(256);
        let (end, _) = watch::channel(None);
        let inner = Arc::new(Inner {
            current: Mutex::new(route.clone()),
            events,
            end,
            listener_closed: watch::channel(false).0,
            options,
        });
        route.watch_expiry(Arc::downgrade(&inner));
        tokio::spawn(accept_loop(inner.clone(), listener));
        Ok(Self { inner, local_addr })
    }

    /// Where local clients connect.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The session new connections go to.
    pub fn session_id(&self) -> String {
        self.current().session_id().to_owned()
    }

    /// The route of the session new connections go to.
    pub fn current(&self) -> Arc<SessionRoute> {
        self.inner.current.lock().expect("proxy lock").clone()
    }

    /// Routes new connections to the session `data` authorizes, and returns
    /// the route of the session that carried them until now: its open
    /// connections go on; wait for [`SessionRoute::drained`], then cancel
    /// it.
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start) for the new session's credentials.
    pub fn replace_session(&self, data: AuthorizationData) -> Result<Arc<SessionRoute>> {
        let route = Arc::new(SessionRoute::new(data, &self.inner.options)?);
        route.watch_expiry(Arc::downgrade(&self.inner));
        let old = std::mem::replace(
            &mut *self.inner.current.lock().expect("proxy lock"),
            route.clone(),
        );
        let _ = self.inner.events.send(ProxyEvent::Replaced {
            old_session_id: old.session_id().to_owned(),
            new_session_id: route.session_id().to_owned(),
        });
        Ok(old)
    }

    /// Events from now on.
    pub fn events(&self) -> broadcast::Receiver<ProxyEvent> {
        self.inner.events.subscribe()
    }

    /// Stops accepting and ends every carried connection. Idempotent: the
    /// first reason given stays.
    pub fn close(&self, reason: ProxyEnd) {
        self.inner.finish(reason);
    }

    /// [`close`](Self::close), then waits until the listener is closed: a
    /// connection to the local address is refused from then on.
    pub async fn close_and_wait(&self, reason: ProxyEnd) {
        self.close(reason);
        let mut closed = self.inner.listener_closed.subscribe();
        let _ = closed.wait_for(|closed| *closed).await;
    }

    /// Why it ended, once it has.
    pub fn end_reason(&self) -> Option<ProxyEnd> {
        self.inner.end.borrow().clone()
    }

    /// Waits until it ends.
    pub async fn ended(&self) -> ProxyEnd {
        let mut end = self.inner.end.subscribe();
        let reason = end
            .wait_for(Option::is_some)
            .await
            .map(|r| r.clone())
            .ok()
            .flatten();
        reason.unwrap_or(ProxyEnd::Closed)
    }
}

impl Inner {
    fn finish(&self, reason: ProxyEnd) {
        self.end.send_if_modified(|end| {
            if end.is_none() {
                tracing::info!(%reason, "boundary proxy ended");
                *end = Some(reason);
                true
            } else {
                false
            }
        });
    }

    fn current(&self) -> Arc<SessionRoute> {
        self.current.lock().expect("proxy lock").clone()
    }

    /// A route can take no new connection: if it is the current one, the
    /// proxy stops accepting and ends once its last connection ends.
    fn exhausted(self: &Arc<Self>, route: &Arc<SessionRoute>, reason: ProxyEnd) {
        if !route.mark_exhausted() {
            return;
        }
        let _ = self.events.send(ProxyEvent::Exhausted {
            session_id: route.session_id().to_owned(),
            reason: reason.clone(),
        });
        if !Arc::ptr_eq(&self.current(), route) {
            return;
        }
        let inner = Arc::clone(self);
        let route = route.clone();
        tokio::spawn(async move {
            route.drained().await;
            // A replacement that arrived meanwhile keeps the proxy going.
            if Arc::ptr_eq(&inner.current(), &route) {
                inner.finish(reason);
            }
        });
    }
}

async fn accept_loop(inner: Arc<Inner>, listener: TcpListener) {
    let mut end = inner.end.subscribe();
    loop {
        let accepted = tokio::select! {
            _ = end.wait_for(Option::is_some) => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "boundary proxy: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let route = inner.current();
        if route.is_exhausted() {
            // Closing the connection at once tells the client more than a
            // connection that hangs.
            drop(stream);
            continue;
        }
        tokio::spawn(carry(inner.clone(), route, stream, peer));
    }
    drop(listener);
    inner.listener_closed.send_replace(true);
    tracing::debug!("boundary proxy: listener closed");
}

/// Carries one local connection through `route`'s worker.
async fn carry(inner: Arc<Inner>, route: Arc<SessionRoute>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let _open = route.open_connection();
    let session_id = route.session_id().to_owned();
    let mut ended = inner.end.subscribe();
    let opened = tokio::select! {
        opened = route.open_link() => opened,
        _ = ended.wait_for(Option::is_some) => return,
    };
    match opened {
        Ok((socket, activation, first)) => {
            if first {
                let _ = inner.events.send(ProxyEvent::Activated {
                    session_id: session_id.clone(),
                    connections_left: activation.connections_left,
                });
            }
            if activation.connections_left == Some(0) {
                inner.exhausted(&route, ProxyEnd::ConnectionLimit);
            }
            let _ = inner.events.send(ProxyEvent::Connected {
                session_id: session_id.clone(),
                peer,
            });
            let end = tokio::select! {
                end = pump::pump(stream, socket) => end,
                _ = ended.wait_for(|e| e.as_ref().is_some_and(|e| *e != ProxyEnd::ConnectionLimit)) => return,
            };
            let _ = inner.events.send(ProxyEvent::ConnectionClosed {
                session_id,
                peer,
                bytes_up: end.bytes_up,
                bytes_down: end.bytes_down,
                worker_close: end.worker_close,
            });
        }
        Err(error) => {
            let reason = error.to_string();
            tracing::warn!(session = %session_id, %peer, %reason, "boundary proxy: connection not carried");
            let _ = inner.events.send(ProxyEvent::ConnectionFailed {
                session_id,
                peer,
                reason: reason.clone(),
            });
            if let Some(end) = route::end_of(&error, route.is_activated()) {
                if end == ProxyEnd::ConnectionLimit {
                    inner.exhausted(&route, end);
                } else if Arc::ptr_eq(&inner.current(), &route) {
                    inner.finish(end);
                } else {
                    route.mark_exhausted();
                }
            }
        }
    }
}

impl From<&LinkError> for ProxyEnd {
    fn from(error: &LinkError) -> Self {
        route::end_of(error, true).unwrap_or_else(|| Self::Refused(error.to_string()))
    }
}
