//! SSM port-forward throughput on loopback (issue 14), side by side in one
//! run, each moving [`BYTES`] one way per iteration, from a local TCP
//! client to a sink on 127.0.0.1 that counts the bytes (the iteration ends
//! when the sink has all of them; nothing comes back through the tunnel):
//!
//! - `raw_tcp`: straight to the sink (the limit);
//! - `ours`: through our client (`DataChannel` + `port::run_with`, smux over
//!   the data channel, 1 KiB per frame and message, the default) and
//!   `SsmAgentFake`, which dials the sink per smux stream;
//! - `ours_32k_messages`: the same with `PortOptions::message_size` 32 KiB
//!   (pyssm's size);
//! - `pyssm`: through pyssm-client (`pyssm port-forward`, a separate Python
//!   process, 32 KiB per frame) and the same fakes;
//! - `ours_channel_1k_frames` / `ours_channel_32k_frames`: attribution
//!   only, our `DataChannel` driven directly with smux frames of 1 KiB (as
//!   `run_mux`) or 32 KiB (as pyssm), without the local listener;
//! - `raw_tcp`, `ours`, `ours_32k_messages`, `pyssm` and
//!   `ours_channel_32k_frames` again
//!   (suffix `_20ms_rtt`) with about 20 ms of round-trip time added by
//!   `session_testkit::fakes::latency_proxy` (10 ms each way) between the
//!   client and the fake's websocket, to show that our client is bound by
//!   its window (4,096 unacked messages: 4 MiB per RTT at 1 KiB per
//!   message), not by one message per RTT. For `raw_tcp_20ms_rtt` the proxy
//!   sits between the client and the sink; it terminates TCP on both sides,
//!   so that figure is the one-way delay plus the proxy's bandwidth, not TCP
//!   over a 20 ms path.
//!
//! Each tunnel is opened once (StartSession against `SsmControlFake`, one
//! data channel) and every iteration is a new local connection, so a new
//! smux stream and a new connection from the fake agent to the sink.
//! Figures: `benches/README.md`.
//!
//! The pyssm side needs the peers' Python (`$SESSION_PEERS_PYTHON`, else
//! `.cache/peers/venv/bin/python`, installed by `./scripts/test`) with
//! pyssm-client; without it the bench says so and measures ours only (in CI
//! a missing peer fails, as in the tests).
//!
//! Run: `SESSION_PEERS_PYTHON=$PWD/.cache/peers/venv/bin/python cargo bench --bench ssm_port_forward --features aws-ssm`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_main};
use session_sdk::aws::AwsCredentials;
use session_sdk::aws::ssm::port::PortOptions;
use session_sdk::aws::ssm::smux::{Frame, StreamIds};
use session_sdk::aws::ssm::{
    ChannelEnd, ChannelOptions, DataChannel, Established, PayloadType, SsmClientConfig, SsmConfig,
    port,
};
use session_sdk::{Secret, SystemClock};
use session_testkit::fakes::SsmControlFake;
use session_testkit::fakes::latency_proxy::LatencyProxy;
use session_testkit::fakes::ssm_agent::{AgentScenario, SsmAgentFake};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Bytes moved per iteration.
const BYTES: usize = 8 << 20;
/// The delay the latency proxy adds in each direction.
const ONE_WAY: Duration = Duration::from_millis(10);
/// The managed node of every session.
const TARGET: &str = "i-0123456789abcdef0";
/// How long one iteration may take before the bench gives up.
const LIMIT: Duration = Duration::from_secs(120);
/// The peers' Python that `./scripts/test` installs, when
/// `SESSION_PEERS_PYTHON` is unset.
const DEFAULT_PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.cache/peers/venv/bin/python");

/// The target behind the tunnels: counts each connection's bytes and says
/// when one has received [`BYTES`].
struct Sink {
    addr: SocketAddr,
    done: mpsc::UnboundedReceiver<()>,
}

impl Sink {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("sink");
        let addr = listener.local_addr().expect("sink address");
        let (tx, done) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let _ = conn.set_nodelay(true);
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut got = 0;
                    while let Ok(n) = conn.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        got += n;
                        if got == BYTES {
                            let _ = tx.send(());
                        }
                    }
                });
            }
        });
        Self { addr, done }
    }

    /// Connects to `entry`, writes `data` and waits until the sink has it
    /// all; returns the time taken.
    async fn push(&mut self, entry: SocketAddr, data: &[u8]) -> Duration {
        let started = Instant::now();
        let mut conn = TcpStream::connect(entry).await.expect("connect");
        let _ = conn.set_nodelay(true);
        let run = async {
            conn.write_all(data).await.expect("write");
            self.done.recv().await.expect("sink");
        };
        tokio::time::timeout(LIMIT, run)
            .await
            .unwrap_or_else(|_| panic!("{} bytes not through {entry} in {LIMIT:?}", data.len()));
        started.elapsed()
    }
}

/// The fake control plane and agent, the agent's port sessions dialling
/// the sink, optionally behind a latency proxy.
struct World {
    control: SsmControlFake,
    agent: SsmAgentFake,
    _proxy: Option<LatencyProxy>,
}

impl World {
    async fn start(sink: SocketAddr, delayed: bool) -> Self {
        let control = SsmControlFake::start().await;
        control.add_target(TARGET);
        let agent = SsmAgentFake::start(&control, AgentScenario::port_to(sink)).await;
        let proxy = if delayed {
            let proxy = LatencyProxy::start(agent.addr(), ONE_WAY).await;
            control.set_stream_base(&format!("ws://{}", proxy.addr()));
            Some(proxy)
        } else {
            None
        };
        Self {
            control,
            agent,
            _proxy: proxy,
        }
    }

    /// One line of the agent's counters for every session, to show that a
    /// run had no retransmissions or dropped frames.
    fn report(&self, name: &str) {
        for (id, s) in self.agent.all_stats() {
            eprintln!(
                "{name}: session {id}: client version {:?}, {} Output bytes in, {} messages in \
                 ({} duplicates), {} acks sent, {} retransmissions by the agent, dropped: \
                 {} bad digest / {} malformed, smux streams {}",
                s.handshake_client_version,
                s.bytes_in,
                s.messages_received,
                s.duplicates_received,
                s.acks_sent,
                s.retransmissions,
                s.dropped_bad_digest,
                s.dropped_malformed,
                s.smux_streams.len(),
            );
        }
    }
}

/// Our client's tunnel: StartSession, a data channel, `port::run_with` on
/// a local listener, reading `message_size` bytes per message.
struct Ours {
    local: SocketAddr,
    forward: JoinHandle<session_sdk::Result<ChannelEnd>>,
}

impl Ours {
    async fn start(world: &World, sink: SocketAddr, message_size: usize) -> Self {
        let (channel, established) = open_channel(world, sink).await;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("listener");
        let local = listener.local_addr().expect("listener address");
        let options = PortOptions::default().with_message_size(message_size);
        let forward =
            tokio::spawn(
                async move { port::run_with(channel, &established, listener, &options).await },
            );
        Self { local, forward }
    }
}

/// StartSession against the control fake for a port session to the sink's
/// port, and our data channel to the ticket's stream URL.
async fn open_channel(world: &World, sink: SocketAddr) -> (DataChannel, Established) {
    let credentials = AwsCredentials {
        access_key_id: "AKIABENCHPORTFWD0000".into(),
        secret_access_key: Secret::new("bench/secret/example/key/0000000000000000"),
        session_token: None,
        expiration: None,
    };
    let ticket = SsmClientConfig::builder()
        .endpoint_url(world.control.endpoint())
        .build()
        .expect("config")
        .api("us-east-1", Some(&credentials), "bench")
        .await
        .start_session(&SsmConfig::port_forward(TARGET, sink.port()))
        .await
        .expect("StartSession");
    DataChannel::open(
        &ticket,
        uuid::Uuid::new_v4(),
        ChannelOptions::default(),
        Arc::new(SystemClock),
        "bench",
    )
    .await
    .expect("data channel")
}

/// Attribution only, not a way to use the SDK: our data channel driven
/// directly with smux frames of a chosen size (no local listener, no
/// `run_mux`), to see what the frame size costs. `run_mux` sends 1 KiB per
/// frame (one Output message each); pyssm sends 32 KiB.
struct Direct {
    channel: DataChannel,
    ids: StreamIds,
}

impl Direct {
    async fn start(world: &World, sink: SocketAddr) -> Self {
        Self {
            channel: open_channel(world, sink).await.0,
            ids: StreamIds::new(),
        }
    }

    async fn send(&self, frame: &Frame) {
        self.channel
            .send(PayloadType::Output, frame.encode().expect("smux frame"))
            .await
            .expect("send");
    }

    /// Opens a new smux stream, sends `data` on it in frames of
    /// `frame_len` bytes and waits until the sink has it all; returns the
    /// time taken. The stream's FIN goes after the clock stops.
    async fn push(&mut self, sink: &mut Sink, data: &[u8], frame_len: usize) -> Duration {
        let started = Instant::now();
        let id = self.ids.allocate().expect("stream id");
        self.send(&Frame::syn(id)).await;
        for chunk in data.chunks(frame_len) {
            self.send(&Frame::psh(id, chunk.to_vec())).await;
        }
        let wait = async {
            loop {
                tokio::select! {
                    done = sink.done.recv() => break done.expect("sink"),
                    // What the agent sends (an earlier stream's FIN) is
                    // read and dropped so the channel never stalls.
                    incoming = self.channel.recv() => {
                        assert!(incoming.is_some(), "the channel ended: {:?}", self.channel.end());
                    }
                }
            }
        };
        tokio::time::timeout(LIMIT, wait)
            .await
            .expect("sink in time");
        let took = started.elapsed();
        self.send(&Frame::fin(id)).await;
        took
    }
}

impl Drop for Ours {
    fn drop(&mut self) {
        self.forward.abort();
    }
}

/// `pyssm`, next to the peers' Python, once it can import pyssm_client;
/// `None` (outside CI) when it cannot.
fn pyssm() -> Option<PathBuf> {
    session_testkit::peers::require_peer("pyssm-client", || {
        let python = std::env::var_os(session_testkit::peers::PYTHON_ENV)
            .filter(|p| !p.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_PYTHON), PathBuf::from);
        let out = Command::new(&python)
            .args(["-c", "import pyssm_client"])
            .output()
            .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} cannot import pyssm_client: {}",
                python.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        python
            .parent()
            .map(|d| d.join("pyssm"))
            .filter(|p| p.is_file())
            .ok_or_else(|| format!("no `pyssm` script next to {}", python.display()))
    })
}

/// A running `pyssm port-forward`; killed on drop.
struct Pyssm {
    child: Child,
    local: SocketAddr,
    _home: tempfile::TempDir,
}

impl Pyssm {
    /// Starts `pyssm port-forward` against `world` to the sink's port and
    /// waits until its local port accepts connections.
    async fn start(program: &Path, world: &World, sink: SocketAddr) -> Self {
        let home = tempfile::tempdir().expect("home");
        let local_port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(program)
            .args(["port-forward", "--endpoint-url"])
            .arg(world.control.endpoint())
            .args(["--region", "us-east-1", "--target", TARGET, "--remote-port"])
            .arg(sink.port().to_string())
            .arg("--local-port")
            .arg(local_port.to_string())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("AWS_ACCESS_KEY_ID", "AKIDPYSSMEXAMPLE0001")
            .env(
                "AWS_SECRET_ACCESS_KEY",
                "pyssm/secret/example/key/000000000000000",
            )
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", home.path().join("config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                home.path().join("credentials"),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        let mut pyssm = Self {
            child,
            local: SocketAddr::from(([127, 0, 0, 1], local_port)),
            _home: home,
        };
        world.agent.wait_for_any(|s| s.handshake_complete).await;
        // pyssm says it listens only on its terminal: poll the port.
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(pyssm.local).await.is_err() {
            if let Ok(Some(status)) = pyssm.child.try_wait() {
                panic!("pyssm exited with {status}");
            }
            assert!(Instant::now() < deadline, "pyssm never listened");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        pyssm
    }
}

impl Drop for Pyssm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Benchmarks pushing [`BYTES`] through `entry` to the sink.
fn bench_push(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    rt: &tokio::runtime::Runtime,
    sink: &mut Sink,
    entry: SocketAddr,
    data: &[u8],
) {
    group.bench_function(name, |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                total += rt.block_on(sink.push(entry, data));
            }
            total
        })
    });
}

/// The round-trip time through a latency proxy in front of an echo server:
/// the median of 20 one-byte pings, to check the proxy adds what it should.
async fn measured_rtt() -> Duration {
    let echo = TcpListener::bind("127.0.0.1:0").await.expect("echo");
    let echo_addr = echo.local_addr().expect("echo address");
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = echo.accept().await {
            let _ = conn.set_nodelay(true);
            tokio::spawn(async move {
                let (mut r, mut w) = conn.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    let proxy = LatencyProxy::start(echo_addr, ONE_WAY).await;
    let mut conn = TcpStream::connect(proxy.addr()).await.expect("proxy");
    conn.set_nodelay(true).expect("nodelay");
    let mut rtts = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        conn.write_all(b"x").await.expect("ping");
        let mut byte = [0u8; 1];
        conn.read_exact(&mut byte).await.expect("pong");
        rtts.push(started.elapsed());
    }
    rtts.sort();
    rtts[rtts.len() / 2]
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let data: Vec<u8> = (0..BYTES as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut sink = rt.block_on(Sink::start());
    let pyssm = pyssm();
    if pyssm.is_none() {
        eprintln!("ssm_port_forward bench: pyssm-client is not installed; pyssm not measured");
    }
    let rtt = rt.block_on(measured_rtt());
    eprintln!(
        "ssm_port_forward bench: median RTT through the latency proxy ({ONE_WAY:?} each way): \
         {rtt:?}"
    );
    // The proxy must add what it says: twice the delay, plus at most a few
    // milliseconds of timer rounding and scheduling.
    assert!(
        rtt >= 2 * ONE_WAY && rtt <= 2 * ONE_WAY + Duration::from_millis(10),
        "the latency proxy gave an RTT of {rtt:?}"
    );

    let mut group = c.benchmark_group("ssm_port_forward");
    group
        .throughput(Throughput::Bytes(BYTES as u64))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));

    for delayed in [false, true] {
        let suffix = if delayed { "_20ms_rtt" } else { "" };
        let sink_addr = sink.addr;

        // (a) raw TCP, through the proxy when delayed.
        let proxy = delayed.then(|| rt.block_on(LatencyProxy::start(sink_addr, ONE_WAY)));
        let entry = proxy.as_ref().map_or(sink_addr, LatencyProxy::addr);
        bench_push(
            &mut group,
            &format!("raw_tcp{suffix}"),
            &rt,
            &mut sink,
            entry,
            &data,
        );
        drop(proxy);

        // (b) our client through the fakes: 1 KiB per message (the
        // default, as the AWS plugin) and 32 KiB (as pyssm).
        for (message_size, label) in [
            (port::MESSAGE_SIZE, ""),
            (port::MAX_MESSAGE_SIZE, "_32k_messages"),
        ] {
            let world = rt.block_on(World::start(sink_addr, delayed));
            let ours = rt.block_on(Ours::start(&world, sink_addr, message_size));
            let name = format!("ours{label}{suffix}");
            bench_push(&mut group, &name, &rt, &mut sink, ours.local, &data);
            world.report(&name);
            drop(ours);
            drop(world);
        }

        // (c) pyssm-client through the same fakes.
        if let Some(program) = &pyssm {
            let world = rt.block_on(World::start(sink_addr, delayed));
            let py = rt.block_on(Pyssm::start(program, &world, sink_addr));
            let name = format!("pyssm{suffix}");
            bench_push(&mut group, &name, &rt, &mut sink, py.local, &data);
            world.report(&name);
            drop(py);
            drop(world);
        }

        // Attribution: our data channel without run_mux, 1 KiB frames (as
        // run_mux) and 32 KiB frames (as pyssm).
        let frame_lens: &[usize] = if delayed {
            &[32 * 1024]
        } else {
            &[1024, 32 * 1024]
        };
        for &frame_len in frame_lens {
            let world = rt.block_on(World::start(sink_addr, delayed));
            let mut direct = rt.block_on(Direct::start(&world, sink_addr));
            let name = format!("ours_channel_{}k_frames{suffix}", frame_len / 1024);
            group.bench_function(&name, |b| {
                b.iter_custom(|iterations| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iterations {
                        total += rt.block_on(direct.push(&mut sink, &data, frame_len));
                    }
                    total
                })
            });
            world.report(&name);
            drop(direct);
            drop(world);
        }
    }
    group.finish();
}

// criterion_group! generates an undocumented pub fn.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
