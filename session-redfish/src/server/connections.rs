//! The accept loop of [`RedfishServer::start`](super::RedfishServer::start):
//! caps open connections per client address, bounds the TLS handshake,
//! and serves HTTP/1.1 with hyper, whose header-read timer closes a
//! connection that has not sent a whole request head within the idle
//! time-out (on a new connection and between keep-alive requests alike);
//! a request's body and answer are bounded by the same time-out (tower's
//! `Timeout`).
//!
//! Built on hyper's connection builder and hyper-util's graceful shutdown
//! rather than `axum::serve`, which (axum 0.8) sets no timer, so no
//! header-read time-out, and has no per-address cap. The cap itself is a
//! counter table written here: tower's `ConcurrencyLimit` counts requests
//! in flight, not open connections, and is not keyed by client address.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tower::timeout::Timeout;

use super::lockout::ClientKey;
use super::{
    DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS_PER_CLIENT, DEFAULT_TLS_HANDSHAKE_TIMEOUT,
};

/// The connection limits (see the builder's setters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnectionLimits {
    pub(crate) idle_timeout: Duration,
    pub(crate) tls_handshake_timeout: Duration,
    pub(crate) max_per_client: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            tls_handshake_timeout: DEFAULT_TLS_HANDSHAKE_TIMEOUT,
            max_per_client: DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
        }
    }
}

impl ConnectionLimits {
    /// Checks the limits; the error names the builder setting.
    pub(crate) fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if self.idle_timeout.is_zero() {
            return Err(("idle_timeout", "must be more than 0"));
        }
        if self.tls_handshake_timeout.is_zero() {
            return Err(("tls_handshake_timeout", "must be more than 0"));
        }
        if self.max_per_client == 0 {
            return Err(("max_connections_per_client", "must be at least 1"));
        }
        Ok(())
    }
}

/// Open connections per client address (IPv6 by /64, as for the lockout).
#[derive(Debug, Default)]
struct OpenConnections(Mutex<HashMap<ClientKey, usize>>);

/// One open connection's place in [`OpenConnections`], given back on drop.
struct Slot {
    table: Arc<OpenConnections>,
    client: ClientKey,
}

impl OpenConnections {
    fn take(self: &Arc<Self>, peer: SocketAddr, max: usize) -> Option<Slot> {
        let client = ClientKey::of(Some(peer.ip()));
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(client).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(Slot {
            table: self.clone(),
            client,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.table.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

/// Serves `router` on `tcp` (over TLS with `tls`) until `stop` fires or is
/// dropped; then stops accepting, lets requests in flight finish and
/// returns once every connection is closed.
pub(crate) async fn serve(
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    limits: ConnectionLimits,
    mut stop: oneshot::Receiver<()>,
) {
    let graceful = GracefulShutdown::new();
    let open = Arc::new(OpenConnections::default());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = tcp.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    // E.g. out of file descriptors: back off, then retry.
                    tracing::debug!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let Some(slot) = open.take(peer, limits.max_per_client) else {
            tracing::debug!(%peer, "too many connections from this address; closed");
            continue;
        };
        // Small responses go out at once: without TCP_NODELAY the first
        // answer can wait ~40 ms for a delayed ACK (Nagle). Best effort.
        let _ = stream.set_nodelay(true);
        let service = router
            .clone()
            .map_request(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        // The header-read timer stops once the head is in: this bounds the
        // rest (reading the body and answering), so a body trickled byte by
        // byte cannot hold the connection either. On expiry hyper closes
        // the connection without an answer.
        let service = Timeout::new(service, limits.idle_timeout);
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let mut http = http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(limits.idle_timeout);
            let service = TowerToHyperService::new(service);
            let result = match tls {
                None => {
                    let conn = http.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(conn).await
                }
                Some(acceptor) => {
                    match handshake(acceptor, stream, limits.tls_handshake_timeout).await {
                        Some(tls) => {
                            let conn = http.serve_connection(TokioIo::new(tls), service);
                            watcher.watch(conn).await
                        }
                        None => return,
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, "connection closed: {e}");
            }
        });
    }
    drop(tcp);
    graceful.shutdown().await;
}

/// The TLS handshake, bounded by `timeout`; `None` (logged) when it fails.
async fn handshake(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    timeout: Duration,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let peer = stream.peer_addr().ok();
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::debug!(?peer, "TLS handshake failed: {e}");
            None
        }
        Err(_) => {
            tracing::debug!(?peer, "TLS handshake timed out");
            None
        }
    }
}
