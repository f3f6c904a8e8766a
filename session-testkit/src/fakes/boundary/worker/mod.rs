//! The fake Boundary worker: the server side of `boundary connect`
//! (`boundary.md` §4 and §6 "Fake worker").
//!
//! A tokio TCP listener on `127.0.0.1:0`; per connection a
//! `LazyConfigAcceptor` reads the ClientHello, finds the session (SNI if it
//! starts with `s_`, else the first ALPN entry that does) and picks that
//! session's TLS 1.3 `ServerConfig`; then the WebSocket upgrade on
//! `/v1/proxy` with the subprotocol `boundary-tcp-proxy-v1`, the
//! `ClientHandshake`, the ordered rules of §4.4 against a [`Cluster`], the
//! `HandshakeResult`, and the splice to the session's endpoint.
//!
//! ```no_run
//! # async fn demo(session: session_testkit::fakes::boundary::cluster::SessionCredentials) {
//! use std::sync::Arc;
//! use session_testkit::fakes::boundary::worker::{FakeWorker, MemoryCluster, WorkerOptions};
//!
//! let options = WorkerOptions::default();
//! let cluster = Arc::new(MemoryCluster::new(options.clock.clone()));
//! cluster.add_session(session);
//! let worker = FakeWorker::start(cluster.clone(), options).await;
//! // point a client at worker.address(), then look at worker.events()
//! worker.stop();
//! # }
//! ```

mod conn;
mod memory;
pub mod proto;
mod tls;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use session_core::{Clock, SystemClock};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use memory::{ConnectionRecord, MemoryCluster};

use crate::fakes::boundary::cluster::Cluster;

/// The WebSocket subprotocol of the proxy.
pub const SUBPROTOCOL: &str = "boundary-tcp-proxy-v1";

/// The HTTP path of the proxy.
pub const PROXY_PATH: &str = "/v1/proxy";

/// What the worker answers in `Sec-WebSocket-Protocol`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SubprotocolAnswer {
    /// Echo `boundary-tcp-proxy-v1` (what a real worker does).
    #[default]
    Echo,
    /// Answer no subprotocol at all.
    Missing,
    /// Answer this other subprotocol.
    Wrong(String),
}

/// Fault knobs (`boundary.md` §6 "Fault knobs"). They can be changed while
/// the worker runs with [`FakeWorker::set_faults`].
#[derive(Debug, Clone, Default)]
pub struct WorkerFaults {
    /// Close the next handshake with this code and reason, in place of the
    /// rules (one-shot: cleared once used).
    pub force_close: Option<(u16, String)>,
    /// Answer HTTP 500 in place of the WebSocket upgrade.
    pub http_500: bool,
    /// The subprotocol in the upgrade response.
    pub subprotocol: SubprotocolAnswer,
    /// Present a different certificate (same session id, another key) as
    /// server identity.
    pub wrong_server_certificate: bool,
    /// Behave as a worker not registered with a controller (close 1011
    /// `worker id is empty`), whatever the cluster says.
    pub not_registered: bool,
    /// Split each outgoing data message into messages of at most this many
    /// bytes.
    pub split_writes: Option<usize>,
    /// Wait this long before each outgoing message (the `HandshakeResult`
    /// and every data message).
    pub write_delay: Option<Duration>,
}

/// How the worker is set up.
#[derive(Clone)]
pub struct WorkerOptions {
    /// Decides connection deadlines (the session expiration).
    pub clock: Arc<dyn Clock>,
    /// `Some(32768)`: an older worker (nhooyr 1.8.7 `NetConn`), which
    /// closes with 1009 `read limited at 32769 bytes` on a larger incoming
    /// data message. `None`: any size. (nhooyr stops reading at the limit;
    /// the fake reads the whole message first, then closes the same way.)
    pub read_limit: Option<usize>,
    /// The fault knobs at start.
    pub faults: WorkerFaults,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            read_limit: None,
            faults: WorkerFaults::default(),
        }
    }
}

impl std::fmt::Debug for WorkerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerOptions")
            .field("read_limit", &self.read_limit)
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

/// What the worker saw, in order, for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerEvent {
    /// A TCP connection was accepted.
    Accepted {
        /// The client's address.
        client: SocketAddr,
    },
    /// The TLS handshake failed or was refused.
    TlsFailed {
        /// The session the ClientHello named, if any.
        session_id: Option<String>,
        /// Why.
        reason: String,
    },
    /// The TLS 1.3 handshake completed with the session's client
    /// certificate.
    TlsAccepted {
        /// The session.
        session_id: String,
        /// The SNI the client sent (`None` for an IP-literal address: the
        /// session then came from ALPN).
        sni: Option<String>,
    },
    /// The WebSocket upgrade failed or was refused.
    UpgradeFailed {
        /// The session.
        session_id: String,
        /// The HTTP status answered, if the worker refused it.
        status: Option<u16>,
    },
    /// The handshake ended with a close (rules 1–10 of §4.4, or a forced
    /// close); `code` 0 when the client left before sending anything.
    HandshakeClosed {
        /// The session.
        session_id: String,
        /// The close code sent.
        code: u16,
        /// The reason text sent.
        reason: String,
    },
    /// The `HandshakeResult` was sent.
    HandshakeAccepted {
        /// The session.
        session_id: String,
        /// The controller's connection id.
        connection_id: String,
        /// Connections left, −1 = unlimited.
        connections_left: i32,
    },
    /// A proxied connection ended.
    ConnectionEnded {
        /// The session.
        session_id: String,
        /// The controller's connection id.
        connection_id: String,
        /// Bytes client → endpoint.
        bytes_up: u64,
        /// Bytes endpoint → client.
        bytes_down: u64,
        /// The close code sent to the client (0 when the client closed).
        code: u16,
        /// The reason text sent or received.
        reason: String,
    },
}

/// State shared by the listener and the connections.
struct Shared {
    cluster: Arc<dyn Cluster>,
    clock: Arc<dyn Clock>,
    read_limit: Option<usize>,
    faults: Mutex<WorkerFaults>,
    events: Mutex<Vec<WorkerEvent>>,
    max_incoming: AtomicUsize,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn record(&self, event: WorkerEvent) {
        tracing::debug!(?event, "fake boundary worker");
        lock(&self.events).push(event);
    }

    fn faults(&self) -> WorkerFaults {
        lock(&self.faults).clone()
    }

    fn take_forced_close(&self) -> Option<(u16, String)> {
        lock(&self.faults).force_close.take()
    }

    fn saw_message(&self, len: usize) {
        self.max_incoming.fetch_max(len, Ordering::SeqCst);
    }
}

/// A running fake worker; it stops when dropped.
pub struct FakeWorker {
    address: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for FakeWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeWorker")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl FakeWorker {
    /// Starts the worker on `127.0.0.1:0`, as tasks of the current Tokio
    /// runtime, asking `cluster` about sessions.
    ///
    /// # Panics
    ///
    /// When no local port can be bound.
    pub async fn start(cluster: Arc<dyn Cluster>, options: WorkerOptions) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("FakeWorker: cannot bind 127.0.0.1:0");
        let address = listener.local_addr().expect("FakeWorker: no address");
        let shared = Arc::new(Shared {
            cluster,
            clock: options.clock,
            read_limit: options.read_limit,
            faults: Mutex::new(options.faults),
            events: Mutex::new(Vec::new()),
            max_incoming: AtomicUsize::new(0),
        });
        let accepting = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, client)) = listener.accept().await {
                // As Go's net package does for every TCP connection (real
                // workers): small writes go out at once.
                let _ = stream.set_nodelay(true);
                tokio::spawn(conn::handle(accepting.clone(), stream, client));
            }
        });
        Self {
            address,
            shared,
            task,
        }
    }

    /// `"127.0.0.1:PORT"`, what goes into `worker_info[0].address`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// Stops accepting connections (those already open run on).
    pub fn stop(&self) {
        self.task.abort();
    }

    /// Replaces the fault knobs.
    pub fn set_faults(&self, faults: WorkerFaults) {
        *lock(&self.shared.faults) = faults;
    }

    /// Closes the next handshake with `code` and `reason`.
    pub fn force_next_close(&self, code: u16, reason: &str) {
        lock(&self.shared.faults).force_close = Some((code, reason.to_owned()));
    }

    /// Everything the worker saw so far, in order.
    pub fn events(&self) -> Vec<WorkerEvent> {
        lock(&self.shared.events).clone()
    }

    /// The largest incoming WebSocket message so far, in bytes.
    pub fn max_incoming_message(&self) -> usize {
        self.shared.max_incoming.load(Ordering::SeqCst)
    }

    /// Waits (up to `timeout`) for an event that `matches`, and returns it.
    pub async fn wait_for_event(
        &self,
        timeout: Duration,
        matches: impl Fn(&WorkerEvent) -> bool,
    ) -> Option<WorkerEvent> {
        let poll = async {
            loop {
                if let Some(found) = self.events().into_iter().find(|e| matches(e)) {
                    return found;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(timeout, poll).await.ok()
    }
}

impl Drop for FakeWorker {
    fn drop(&mut self) {
        self.task.abort();
    }
}
