//! A TCP proxy on `127.0.0.1` that delays every byte by a fixed time in
//! each direction without limiting bandwidth, to put a round-trip time
//! between a client and a loopback fake (e.g. between a data channel client
//! and [`SsmAgentFake`](super::SsmAgentFake): point the control fake's
//! stream base at the proxy with
//! [`SsmControlFake::set_stream_base`](super::SsmControlFake::set_stream_base)).
//!
//! **How it delays.** For each accepted connection it dials the upstream
//! address and runs two pipes, one per direction. Each pipe has a reader,
//! which stamps every chunk it reads (up to 64 KiB) with "arrived now +
//! delay" and queues it at once, and a writer, which waits until a chunk's
//! time has come and then writes it. The queue is unbounded, so the proxy
//! holds as many bytes as arrive within one delay (the bandwidth-delay
//! product) instead of throttling the sender: the throughput through it is
//! what the two ends manage, only shifted in time. An end of stream is
//! delayed like data (the writer then shuts its side down). `TCP_NODELAY`
//! is set on both sockets so small messages are not held back further.
//!
//! **Precision.** Tokio's timer has a resolution of 1 ms, so each chunk
//! waits between `delay` and about `delay + 1 ms`; a round trip through
//! the proxy therefore takes 2 × delay plus up to ~2 ms plus the ends'
//! own time.
//!
//! ```no_run
//! # async fn demo() {
//! use std::time::Duration;
//! use session_testkit::fakes::latency_proxy::LatencyProxy;
//!
//! let upstream: std::net::SocketAddr = "127.0.0.1:8080".parse().unwrap();
//! // 10 ms each way: about 20 ms RTT between a client of proxy.addr()
//! // and the upstream server.
//! let proxy = LatencyProxy::start(upstream, Duration::from_millis(10)).await;
//! let _client = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
//! # }
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// Bytes read at most per chunk.
const CHUNK: usize = 64 * 1024;

/// The proxy. Dropping it stops accepting and closes every proxied
/// connection.
#[derive(Debug)]
pub struct LatencyProxy {
    addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl Drop for LatencyProxy {
    fn drop(&mut self) {
        // The accept task owns the connections' JoinSet: aborting it drops
        // the set, which aborts every connection task.
        self.accept.abort();
    }
}

impl LatencyProxy {
    /// Binds `127.0.0.1:0` and forwards each accepted connection to
    /// `upstream`, delaying the bytes of both directions by `one_way`
    /// (so the round trip grows by twice `one_way`).
    ///
    /// # Panics
    ///
    /// When no local port can be bound, or outside a Tokio runtime.
    pub async fn start(upstream: SocketAddr, one_way: Duration) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("LatencyProxy: cannot bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("LatencyProxy: no address");
        let accept = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((client, _)) = accepted else { continue };
                        connections.spawn(proxy(client, upstream, one_way));
                    }
                    // Reap finished connections so the set does not grow.
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Self { addr, accept }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// One proxied connection: dial `upstream`, then a delayed pipe each way
/// until both directions ended.
async fn proxy(client: TcpStream, upstream: SocketAddr, delay: Duration) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::join!(
        pipe(client_read, server_write, delay),
        pipe(server_read, client_write, delay),
    );
}

/// Copies `from` to `to`, each chunk written `delay` after it was read.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration) {
    // `None` is the end of stream, delayed like data.
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Option<Vec<u8>>)>();
    let reader = async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let chunk = match from.read(&mut buf).await {
                Ok(0) | Err(_) => None,
                Ok(n) => Some(buf[..n].to_vec()),
            };
            let end = chunk.is_none();
            if tx.send((Instant::now() + delay, chunk)).is_err() || end {
                break;
            }
        }
    };
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            match chunk {
                Some(bytes) => {
                    if to.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                None => {
                    let _ = to.shutdown().await;
                    break;
                }
            }
        }
    };
    tokio::join!(reader, writer);
}
