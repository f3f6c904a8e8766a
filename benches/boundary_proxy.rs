//! The Boundary connect proxy on loopback (issue 16), side by side in one
//! run with raw loopback TCP to the same target (the limit). Two fake
//! Boundaries (`session_testkit::fakes::boundary::FakeBoundary`: controller,
//! worker) on 127.0.0.1 in the bench's own runtime (two worker threads), so
//! the fakes' work is in every proxy figure:
//!
//! - throughput (group `boundary_proxy_throughput`), one open connection
//!   each, to a bulk server (the target of the first fake Boundary) that
//!   sinks or sources [`BYTES`]; criterion's throughput is [`BYTES`] per
//!   iteration, one way:
//!   - `raw_tcp_up` / `proxy_up`: write [`BYTES`], the server answers one
//!     byte once it has them all;
//!   - `raw_tcp_down` / `proxy_down`: write one byte, the server answers
//!     [`BYTES`];
//!   - `two_tcp_relays_up` / `two_tcp_relays_down`: the same through two
//!     plain TCP relays in a row (`copy_bidirectional`), which have the
//!     proxied path's three TCP hops (client → proxy → worker → target)
//!     and none of its TLS or websocket work: what the hops alone cost on
//!     this machine;
//!   - `proxy_*` go through our `Proxy` (a local listener, TLS 1.3 +
//!     websocket to the fake worker, at most 32 KiB per message), the
//!     worker dialling the bulk server.
//!
//!   One direction at a time, so each figure is one direction's rate;
//!   both directions at once through an echo are a test
//!   (`session-boundary/tests/boundary_proxy.rs`).
//! - connection set-up (group `boundary_proxy_setup`), to the echo server
//!   of the second fake Boundary: from the local `connect` to the first
//!   byte echoed back (one byte written, one read):
//!   - `raw_tcp_connect_first_byte`: straight to the echo server;
//!   - `proxy_first_connection`: the first connection of a new session
//!     (TLS, websocket, handshake and activation with the worker, which
//!     asks the fake controller); each iteration authorizes a new session
//!     and starts a new proxy before the clock starts, and closes it after
//!     the clock stops;
//!   - `proxy_later_connection`: a new connection of a session that is
//!     already active (TLS, websocket, handshake; no activation).
//!
//! Figures: `benches/README.md`.
//!
//! Run: `cargo bench --bench boundary_proxy --features boundary`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_main};
use session_sdk::Secret;
use session_sdk::boundary::AuthorizationData;
use session_sdk::boundary::api::{ControllerClient, TargetRef};
use session_sdk::boundary::proxy::{Proxy, ProxyEnd, ProxyEvent, ProxyOptions};
use session_testkit::fakes::boundary::controller::{
    DEV_AUTH_METHOD_ID, DEV_LOGIN_NAME, DEV_PASSWORD, DEV_TARGET_ID,
};
use session_testkit::fakes::boundary::{FakeBoundary, FakeTarget, WorkerOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bytes moved one way per throughput iteration.
const BYTES: usize = 16 << 20;
/// How long one iteration may take before the bench gives up.
const LIMIT: Duration = Duration::from_secs(60);
/// The first byte on a connection to the bulk server: sink [`BYTES`] at a
/// time, answering one byte each time.
const UP: u8 = b'u';
/// The first byte on a connection to the bulk server: answer each byte
/// with [`BYTES`].
const DOWN: u8 = b'd';

/// `n` bytes of a pattern that a shifted or repeated chunk would break.
fn payload(n: usize) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// A loopback server that sinks or sources [`BYTES`] per request, as the
/// first byte of the connection says ([`UP`] or [`DOWN`]).
async fn bulk_server(data: Arc<Vec<u8>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bulk server");
    let address = listener.local_addr().expect("bulk server address");
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let _ = conn.set_nodelay(true);
            let data = data.clone();
            tokio::spawn(async move {
                let mut mode = [0u8; 1];
                if conn.read_exact(&mut mode).await.is_err() {
                    return;
                }
                match mode[0] {
                    UP => {
                        let mut buffer = vec![0u8; 64 * 1024];
                        let mut got = 0;
                        while let Ok(n) = conn.read(&mut buffer).await {
                            if n == 0 {
                                break;
                            }
                            got += n;
                            while got >= BYTES {
                                got -= BYTES;
                                if conn.write_all(b"k").await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                    DOWN => {
                        let mut request = [0u8; 1];
                        while conn.read_exact(&mut request).await.is_ok() {
                            if conn.write_all(&data).await.is_err() {
                                return;
                            }
                        }
                    }
                    _ => {}
                }
            });
        }
    });
    address
}

/// A plain TCP relay on loopback to `to` (`copy_bidirectional`, no TLS, no
/// framing): two of them in a row have the proxied path's hops (client →
/// proxy → worker → target) without its work.
async fn relay(to: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("relay");
    let address = listener.local_addr().expect("relay address");
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = inbound.set_nodelay(true);
                let Ok(mut outbound) = TcpStream::connect(to).await else {
                    return;
                };
                let _ = outbound.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    address
}

/// A fake Boundary whose dev target is `target`, and a logged-in
/// controller client.
struct World {
    fake: FakeBoundary,
    client: ControllerClient,
}

impl World {
    async fn start(target: Option<SocketAddr>) -> Self {
        let fake = FakeBoundary::start_with(
            move |builder, echo| builder.target(FakeTarget::dev(target.unwrap_or(echo))),
            WorkerOptions::default(),
        )
        .await;
        let login = ControllerClient::new(&fake.controller.url())
            .expect("controller client")
            .authenticate_password(
                DEV_AUTH_METHOD_ID,
                DEV_LOGIN_NAME,
                &Secret::new(DEV_PASSWORD),
            )
            .await
            .expect("login");
        let client = ControllerClient::new(&fake.controller.url())
            .expect("controller client")
            .with_token(login.token);
        Self { fake, client }
    }

    /// Authorizes a new session to the dev target and starts a proxy for
    /// it on a new loopback listener. Nothing reaches the worker yet.
    async fn proxy(&self) -> Proxy {
        let authorization = self
            .client
            .authorize_session(&TargetRef::id(DEV_TARGET_ID), None)
            .await
            .expect("authorize-session");
        let data = AuthorizationData::decode(authorization.authorization_token.expose())
            .expect("authorization token");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("listener");
        Proxy::start(listener, data, ProxyOptions::default()).expect("proxy")
    }
}

/// Connects to `to`, writes one byte and reads its echo; returns the time
/// from before `connect` to the byte read.
async fn connect_first_byte(to: SocketAddr) -> Duration {
    let started = Instant::now();
    let run = async {
        let mut stream = TcpStream::connect(to).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        stream.write_all(b"x").await.expect("write");
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.expect("echo");
        assert_eq!(&byte, b"x");
        (started.elapsed(), stream)
    };
    let (took, stream) = tokio::time::timeout(LIMIT, run)
        .await
        .unwrap_or_else(|_| panic!("no echo through {to} in {LIMIT:?}"));
    drop(stream);
    took
}

/// A connection to the bulk server (directly or through a proxy) in `mode`.
async fn bulk_connection(to: SocketAddr, mode: u8) -> TcpStream {
    let mut stream = TcpStream::connect(to).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream.write_all(&[mode]).await.expect("mode");
    stream
}

/// Writes `data` and waits for the server's one-byte answer.
async fn push(stream: &mut TcpStream, data: &[u8]) -> Duration {
    let started = Instant::now();
    let run = async {
        stream.write_all(data).await.expect("write");
        let mut ack = [0u8; 1];
        stream.read_exact(&mut ack).await.expect("ack");
    };
    tokio::time::timeout(LIMIT, run)
        .await
        .unwrap_or_else(|_| panic!("{} bytes not up in {LIMIT:?}", data.len()));
    started.elapsed()
}

/// Asks for [`BYTES`] and reads them into `back`.
async fn pull(stream: &mut TcpStream, back: &mut [u8]) -> Duration {
    let started = Instant::now();
    let run = async {
        stream.write_all(b"?").await.expect("request");
        stream.read_exact(back).await.expect("read");
    };
    tokio::time::timeout(LIMIT, run)
        .await
        .unwrap_or_else(|_| panic!("{} bytes not down in {LIMIT:?}", back.len()));
    started.elapsed()
}

/// Benchmarks [`push`] and [`pull`] on connections to `to`, named
/// `{name}_up` and `{name}_down`.
fn bench_bulk(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &tokio::runtime::Runtime,
    name: &str,
    to: SocketAddr,
    data: &[u8],
) {
    let mut up = rt.block_on(bulk_connection(to, UP));
    group.bench_function(format!("{name}_up"), |b| {
        b.iter_custom(|iterations| {
            (0..iterations)
                .map(|_| rt.block_on(push(&mut up, data)))
                .sum()
        })
    });
    drop(up);
    let mut down = rt.block_on(bulk_connection(to, DOWN));
    let mut back = vec![0u8; data.len()];
    let mut pulled = false;
    group.bench_function(format!("{name}_down"), |b| {
        b.iter_custom(|iterations| {
            pulled = true;
            (0..iterations)
                .map(|_| rt.block_on(pull(&mut down, &mut back)))
                .sum()
        })
    });
    // Unless a filter left it out.
    assert!(!pulled || back == data, "{name}: the bytes down differ");
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let data = Arc::new(payload(BYTES));
    let bulk = rt.block_on(bulk_server(data.clone()));
    let bulk_world = rt.block_on(World::start(Some(bulk)));
    let echo_world = rt.block_on(World::start(None));
    let echo = echo_world.fake.endpoint;

    // Throughput: one open connection per direction, 16 MiB per iteration.
    let mut group = c.benchmark_group("boundary_proxy_throughput");
    group
        .throughput(Throughput::BytesDecimal(BYTES as u64))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    bench_bulk(&mut group, &rt, "raw_tcp", bulk, &data);
    let relayed = rt.block_on(async { relay(relay(bulk).await).await });
    bench_bulk(&mut group, &rt, "two_tcp_relays", relayed, &data);
    let proxy = rt.block_on(bulk_world.proxy());
    let mut events = proxy.events();
    bench_bulk(&mut group, &rt, "proxy", proxy.local_addr(), &data);
    // The connections' byte counts, to show nothing was lost or added.
    rt.block_on(async {
        let mut closed = 0;
        while closed < 2 {
            let Ok(Ok(event)) = tokio::time::timeout(Duration::from_secs(5), events.recv()).await
            else {
                break;
            };
            if let ProxyEvent::ConnectionClosed {
                bytes_up,
                bytes_down,
                worker_close,
                ..
            } = event
            {
                closed += 1;
                eprintln!(
                    "boundary_proxy bench: a throughput connection carried {bytes_up} bytes up, \
                     {bytes_down} down (worker close: {worker_close:?})"
                );
            }
        }
    });
    eprintln!(
        "boundary_proxy bench: largest message the worker received: {} bytes",
        bulk_world.fake.worker.max_incoming_message()
    );
    assert_eq!(proxy.end_reason(), None);
    proxy.close(ProxyEnd::Closed);
    group.finish();

    // Connection set-up: local connect to the first byte echoed.
    let mut group = c.benchmark_group("boundary_proxy_setup");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    group.bench_function("raw_tcp_connect_first_byte", |b| {
        b.iter_custom(|iterations| {
            (0..iterations)
                .map(|_| rt.block_on(connect_first_byte(echo)))
                .sum()
        })
    });

    let mut sessions = 0u32;
    group.bench_function("proxy_first_connection", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let proxy = rt.block_on(echo_world.proxy());
                total += rt.block_on(connect_first_byte(proxy.local_addr()));
                rt.block_on(proxy.close_and_wait(ProxyEnd::Closed));
                sessions += 1;
            }
            total
        })
    });
    eprintln!("boundary_proxy bench: {sessions} sessions activated for proxy_first_connection");

    let proxy = rt.block_on(echo_world.proxy());
    // Activates the session before the clock starts.
    rt.block_on(connect_first_byte(proxy.local_addr()));
    group.bench_function("proxy_later_connection", |b| {
        b.iter_custom(|iterations| {
            (0..iterations)
                .map(|_| rt.block_on(connect_first_byte(proxy.local_addr())))
                .sum()
        })
    });
    assert_eq!(proxy.end_reason(), None);
    proxy.close(ProxyEnd::Closed);
    group.finish();
}

// criterion_group! generates an undocumented pub fn.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
