//! SSM port forward with in-place resumes (`ssm.md` §2.11): what resuming
//! a lost websocket costs, against the goals of the issue, in one
//! criterion group `ssm_resume`:
//!
//! - `drop_to_data` (and `drop_to_data_20ms_rtt`): a forwarded connection
//!   to an echo target runs a request/response loop of one byte; each
//!   iteration drops the fake agent's socket (`SsmAgentFake::drop_socket`)
//!   and measures from the drop until the next echoed byte arrives, with
//!   the fake's ResumeSession answering after [`RESUME_LATENCY`]. Goal:
//!   ≤ 2 × [`RESUME_LATENCY`] + one RTT, the RTT being the median echo
//!   round trip through the same forward without drops, measured in the
//!   same run. The `_20ms_rtt` variant puts
//!   `session_testkit::fakes::latency_proxy` (10 ms each way) between the
//!   client and the fake's websocket.
//! - `throughput_no_resume` and `throughput_resume_every_10s`: [`BYTES`]
//!   pushed one way per iteration through one forwarded connection of a
//!   resumable channel (1 KiB per message, `port::MESSAGE_SIZE`, the
//!   default) into a sink that counts bytes, the clock stopping when the
//!   sink has them all. The second has the fake close the socket with
//!   1000 every [`CLOSE_EVERY`] after each attach
//!   (`AgentScenario::close_every`), over a [`THROUGHPUT_TIME`]
//!   measurement so that several resumes fall into the measured samples;
//!   the bench counts them (`redials_accepted`) and panics when fewer than
//!   [`MIN_RESUMES`] did, so the figure cannot silently be a no-resume
//!   one. Goal: ≥ 80 % of `throughput_no_resume`, measured in the same run
//!   with the same set-up otherwise.
//!
//! Each benchmark opens its own world (StartSession against
//! `SsmControlFake`, one resumable data channel to `SsmAgentFake`, our
//! `port::run` on a local listener, one local connection kept for the whole
//! benchmark). The fakes, our client and the targets share one 2-thread
//! Tokio runtime. A one-line summary of each figure goes to stderr
//! (`ssm_resume: …`). Figures: `benches/README.md`.
//!
//! Run: `cargo bench --bench ssm_resume --features aws-ssm` (about four
//! minutes).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_main};
use session_sdk::aws::AwsCredentials;
use session_sdk::aws::ssm::{
    ChannelEnd, ChannelEvent, ChannelOptions, ChannelResume, DataChannel, ResumeBudget,
    SsmClientConfig, SsmConfig, port,
};
use session_sdk::{Secret, SystemClock};
use session_testkit::fakes::SsmControlFake;
use session_testkit::fakes::latency_proxy::LatencyProxy;
use session_testkit::fakes::ssm_agent::{AgentScenario, SsmAgentFake};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

/// Bytes moved per throughput iteration.
const BYTES: usize = 64 << 20;
/// How often the fake closes the socket in `throughput_resume_every_10s`.
const CLOSE_EVERY: Duration = Duration::from_secs(10);
/// The measurement time of each throughput benchmark: long enough for
/// several closes at [`CLOSE_EVERY`].
const THROUGHPUT_TIME: Duration = Duration::from_secs(60);
/// Fewer resumes than this in the measured samples of
/// `throughput_resume_every_10s` fail the bench.
const MIN_RESUMES: u64 = 2;
/// Samples per benchmark (criterion's minimum).
const SAMPLES: usize = 10;
/// The fake's ResumeSession latency in `drop_to_data`.
const RESUME_LATENCY: Duration = Duration::from_millis(50);
/// The delay the latency proxy adds in each direction.
const ONE_WAY: Duration = Duration::from_millis(10);
/// Echo round trips whose median is the RTT.
const RTT_PINGS: usize = 200;
/// The throughput goal: this share of `throughput_no_resume`.
const THROUGHPUT_GOAL: f64 = 0.80;
/// The managed node of every session.
const TARGET: &str = "i-0123456789abcdef0";
/// How long one iteration may take before the bench gives up.
const LIMIT: Duration = Duration::from_secs(120);

/// The target of the throughput benchmarks: counts the bytes of its
/// connections and says each time another [`BYTES`] have arrived.
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
                    let mut next = BYTES;
                    while let Ok(n) = conn.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        got += n;
                        while got >= next {
                            let _ = tx.send(());
                            next += BYTES;
                        }
                    }
                });
            }
        });
        Self { addr, done }
    }

    /// Writes `data` on `conn` and waits until the sink has it all;
    /// returns the time taken.
    async fn push(&mut self, conn: &mut TcpStream, data: &[u8]) -> Duration {
        let started = Instant::now();
        let run = async {
            conn.write_all(data).await.expect("write");
            self.done.recv().await.expect("sink");
        };
        tokio::time::timeout(LIMIT, run)
            .await
            .unwrap_or_else(|_| panic!("{} bytes not through in {LIMIT:?}", data.len()));
        started.elapsed()
    }
}

/// A TCP echo server on 127.0.0.1.
async fn echo_target() -> SocketAddr {
    let echo = TcpListener::bind("127.0.0.1:0").await.expect("echo");
    let addr = echo.local_addr().expect("echo address");
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = echo.accept().await {
            let _ = conn.set_nodelay(true);
            tokio::spawn(async move {
                let (mut r, mut w) = conn.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// The fake control plane and agent, port sessions dialling `target`,
/// optionally behind a latency proxy.
struct World {
    control: SsmControlFake,
    agent: SsmAgentFake,
    _proxy: Option<LatencyProxy>,
}

impl World {
    async fn start(target: SocketAddr, close_every: Option<Duration>, delayed: bool) -> Self {
        let control = SsmControlFake::start().await;
        control.add_target(TARGET);
        let mut scenario = AgentScenario::port_to(target);
        scenario.close_every = close_every;
        let agent = SsmAgentFake::start(&control, scenario).await;
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

    /// Redials the fake accepted in `session_id` so far.
    fn redials(&self, session_id: &str) -> u64 {
        self.agent
            .stats(session_id)
            .map_or(0, |s| s.redials_accepted)
    }
}

/// Our client's forward on a resumable channel: StartSession, a data
/// channel resuming through ResumeSession, `port::run` on a local
/// listener, and one local connection through it.
struct Forward {
    session_id: String,
    conn: TcpStream,
    events: broadcast::Receiver<ChannelEvent>,
    resumed: Arc<Mutex<Vec<Duration>>>,
    forward: JoinHandle<session_sdk::Result<ChannelEnd>>,
}

impl Forward {
    async fn open(world: &World, target: SocketAddr) -> Self {
        let credentials = AwsCredentials {
            access_key_id: "AKIABENCHRESUME00000".into(),
            secret_access_key: Secret::new("bench/secret/example/key/0000000000000000"),
            session_token: None,
            expiration: None,
        };
        let api = SsmClientConfig::builder()
            .endpoint_url(world.control.endpoint())
            .build()
            .expect("config")
            .api("us-east-1", Some(&credentials), "bench")
            .await;
        let ticket = api
            .start_session(&SsmConfig::port_forward(TARGET, target.port()))
            .await
            .expect("StartSession");
        let mut options = ChannelOptions::default();
        options.resume = Some(ChannelResume::new(
            Arc::new(api.resume_tickets(&ticket.session_id)),
            ResumeBudget::default().with_deadline(Duration::from_secs(60)),
        ));
        let (channel, established) = DataChannel::open(
            &ticket,
            uuid::Uuid::new_v4(),
            options,
            Arc::new(SystemClock),
            "bench",
        )
        .await
        .expect("data channel");
        let events = channel.events();
        let resumed = collect_resumes(channel.events());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("listener");
        let local = listener.local_addr().expect("listener address");
        let forward = tokio::spawn(async move { port::run(channel, &established, listener).await });
        let conn = TcpStream::connect(local).await.expect("connect");
        conn.set_nodelay(true).expect("nodelay");
        Self {
            session_id: ticket.session_id,
            conn,
            events,
            resumed,
            forward,
        }
    }

    /// One byte to the echo target and back; returns the round trip.
    async fn ping(&mut self) -> Duration {
        let started = Instant::now();
        self.conn.write_all(b"x").await.expect("ping");
        let mut byte = [0u8; 1];
        tokio::time::timeout(LIMIT, self.conn.read_exact(&mut byte))
            .await
            .expect("echo in time")
            .expect("echo");
        started.elapsed()
    }

    /// The median of [`RTT_PINGS`] echo round trips.
    async fn median_rtt(&mut self) -> Duration {
        let mut rtts = Vec::with_capacity(RTT_PINGS);
        for _ in 0..RTT_PINGS {
            rtts.push(self.ping().await);
        }
        median(&mut rtts)
    }

    /// Drops the fake's socket while the request/response loop runs;
    /// returns the time from the drop to the first echoed byte that
    /// arrives after the client saw the socket lost.
    async fn drop_to_data(&mut self, world: &World) -> Duration {
        // Forget earlier events; then data must flow before the drop.
        while !matches!(
            self.events.try_recv(),
            Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed)
        ) {}
        self.ping().await;
        let started = Instant::now();
        assert!(
            world.agent.drop_socket(&self.session_id),
            "no socket to drop"
        );
        let run = async {
            let mut lost = false;
            loop {
                self.conn.write_all(b"x").await.expect("ping");
                let mut byte = [0u8; 1];
                loop {
                    tokio::select! {
                        biased;
                        event = self.events.recv() => match event {
                            Ok(ChannelEvent::Reconnecting { .. }) => lost = true,
                            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                            Err(broadcast::error::RecvError::Closed) => {
                                panic!("the channel ended: {:?}", self.forward.is_finished())
                            }
                        },
                        // One byte: nothing is lost when the event wins.
                        read = self.conn.read_exact(&mut byte) => {
                            read.expect("echo");
                            break;
                        }
                    }
                }
                if lost {
                    return started.elapsed();
                }
            }
        };
        tokio::time::timeout(LIMIT, run)
            .await
            .expect("data again in time")
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.forward.abort();
    }
}

/// The `after` of each `Resumed` event (from the loss to the new socket).
fn collect_resumes(mut events: broadcast::Receiver<ChannelEvent>) -> Arc<Mutex<Vec<Duration>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let into = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(ChannelEvent::Resumed { after, .. }) => {
                    into.lock().expect("resumes").push(after);
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    seen
}

/// The median of `values` (the mean of the middle two for an even count).
fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2
    }
}

/// One call of criterion's routine: its iterations, their total time, and
/// what happened meanwhile.
struct Call {
    iterations: u64,
    total: Duration,
    /// Redials the fake accepted during the call.
    resumes: u64,
    /// Each iteration's time.
    each: Vec<Duration>,
}

/// The calls of the measured samples: criterion calls the routine for its
/// warm-up first, then once per sample (flat sampling). `None` when the
/// benchmark did not run fully (filtered out, or `--test`).
fn measured(calls: &[Call]) -> Option<&[Call]> {
    (calls.len() > SAMPLES).then(|| &calls[calls.len() - SAMPLES..])
}

/// Runs `iteration` as a benchmark, recording each call.
fn bench_calls(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    world: &World,
    session_id: &str,
    mut iteration: impl FnMut() -> Duration,
) -> Vec<Call> {
    let mut calls = Vec::new();
    group.bench_function(name, |b| {
        b.iter_custom(|iterations| {
            let before = world.redials(session_id);
            let each: Vec<Duration> = (0..iterations).map(|_| iteration()).collect();
            let total = each.iter().sum();
            calls.push(Call {
                iterations,
                total,
                resumes: world.redials(session_id) - before,
                each,
            });
            total
        })
    });
    calls
}

/// `drop_to_data{suffix}`: prints the RTT, the goal and the median.
fn bench_drop_to_data(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &tokio::runtime::Runtime,
    delayed: bool,
) {
    let name = if delayed {
        "drop_to_data_20ms_rtt"
    } else {
        "drop_to_data"
    };
    let echo = rt.block_on(echo_target());
    let world = rt.block_on(World::start(echo, None, delayed));
    world.control.set_resume_latency(RESUME_LATENCY);
    let mut forward = rt.block_on(Forward::open(&world, echo));
    let rtt = rt.block_on(forward.median_rtt());
    let goal = 2 * RESUME_LATENCY + rtt;
    let session_id = forward.session_id.clone();
    let calls = bench_calls(group, name, &world, &session_id, || {
        rt.block_on(forward.drop_to_data(&world))
    });
    let Some(samples) = measured(&calls) else {
        return;
    };
    let mut drops: Vec<Duration> = samples.iter().flat_map(|c| c.each.clone()).collect();
    let count = drops.len();
    let at = median(&mut drops);
    let (min, max) = (drops[0], drops[count - 1]);
    let mut afters = forward.resumed.lock().expect("resumes").clone();
    let after = median(&mut afters);
    // The same on the last resumed socket, to compare with the first.
    let rtt_after = rt.block_on(forward.median_rtt());
    eprintln!(
        "ssm_resume: {name}: median {:.1} ms over {count} drops in the measured samples \
         (min {:.1}, max {:.1} ms); RTT through the forward {:.2} ms (median of {RTT_PINGS}; \
         {:.2} ms after the drops); goal 2 × {} ms + RTT = {:.1} ms: {}; the channel's own \
         loss-to-new-socket median {:.1} ms; {} redials accepted by the fake in all",
        ms(at),
        ms(min),
        ms(max),
        ms(rtt),
        ms(rtt_after),
        RESUME_LATENCY.as_millis(),
        ms(goal),
        if at <= goal { "met" } else { "NOT met" },
        ms(after),
        world.redials(&session_id),
    );
}

/// `throughput_{label}`: prints the median, the resumes and the time
/// measured; returns the median in MiB/s.
fn bench_throughput(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &tokio::runtime::Runtime,
    data: &[u8],
    close_every: Option<Duration>,
) -> Option<f64> {
    let name = if close_every.is_some() {
        "throughput_resume_every_10s"
    } else {
        "throughput_no_resume"
    };
    let mut sink = rt.block_on(Sink::start());
    let world = rt.block_on(World::start(sink.addr, close_every, false));
    let mut forward = rt.block_on(Forward::open(&world, sink.addr));
    let session_id = forward.session_id.clone();
    let calls = bench_calls(group, name, &world, &session_id, || {
        rt.block_on(sink.push(&mut forward.conn, data))
    });
    let samples = measured(&calls)?;
    let mut per_iteration: Vec<Duration> = samples
        .iter()
        .map(|c| c.total / u32::try_from(c.iterations).expect("iterations"))
        .collect();
    let at = median(&mut per_iteration);
    let mib_s = mib_per_s(at);
    let resumes: u64 = samples.iter().map(|c| c.resumes).sum();
    let wall: Duration = samples.iter().map(|c| c.total).sum();
    let iterations: u64 = samples.iter().map(|c| c.iterations).sum();
    let mut afters = forward.resumed.lock().expect("resumes").clone();
    let stats = world.agent.stats(&session_id).expect("stats");
    eprintln!(
        "ssm_resume: {name}: median {mib_s:.1} MiB/s ({:.0} ms per {} MiB; {iterations} \
         iterations in {SAMPLES} samples, {:.1} s measured); {resumes} resumes in the measured \
         samples ({} redials accepted, {} closes sent by the fake in all; loss-to-new-socket \
         median {:.1} ms); agent: {} duplicates, {} retransmissions, {} bad digests",
        ms(at),
        BYTES >> 20,
        wall.as_secs_f64(),
        stats.redials_accepted,
        stats.closes_sent,
        if afters.is_empty() {
            0.0
        } else {
            ms(median(&mut afters))
        },
        stats.duplicates_received,
        stats.retransmissions,
        stats.dropped_bad_digest,
    );
    if let Some(every) = close_every {
        assert!(
            resumes >= MIN_RESUMES,
            "{name}: only {resumes} resumes in {:.1} s measured with a close every {every:?}: \
             not a figure with resumes",
            wall.as_secs_f64()
        );
    }
    Some(mib_s)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mib_per_s(per_iteration: Duration) -> f64 {
    (BYTES as f64 / f64::from(1u32 << 20)) / per_iteration.as_secs_f64()
}

fn bench(c: &mut Criterion) {
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let data: Vec<u8> = (0..BYTES as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();

    let mut group = c.benchmark_group("ssm_resume");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(SAMPLES)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    // No throughput for the latency figures: they come first.
    for delayed in [false, true] {
        bench_drop_to_data(&mut group, &rt, delayed);
    }

    group
        .throughput(Throughput::Bytes(BYTES as u64))
        .measurement_time(THROUGHPUT_TIME);
    let without = bench_throughput(&mut group, &rt, &data, None);
    let with = bench_throughput(&mut group, &rt, &data, Some(CLOSE_EVERY));
    group.finish();
    if let (Some(without), Some(with)) = (without, with) {
        let ratio = with / without;
        eprintln!(
            "ssm_resume: throughput with a resume every {CLOSE_EVERY:?} / without: {with:.1} / \
             {without:.1} MiB/s = {:.1} %; goal ≥ {:.0} %: {}",
            ratio * 100.0,
            THROUGHPUT_GOAL * 100.0,
            if ratio >= THROUGHPUT_GOAL {
                "met"
            } else {
                "NOT met"
            }
        );
    }
    eprintln!(
        "ssm_resume: the bench took {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

// criterion_group! generates an undocumented pub fn.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
