//! Smux port forwarding against xtaci/smux, the smux library of the real
//! SSM agent and plugin: the fake agent runs it through the Go harness
//! `session-testkit/peers/smux-xtaci` ([`SmuxServer::Xtaci`]) instead of the
//! async_smux crate, so our hand-written smux client is checked against
//! the reference implementation. Concurrent streams (ids 3, 5, 7), a
//! 16 MiB transfer each way, xtaci's keepalive time-out with and without
//! our NOPs, and a failed dial.
//!
//! Each test needs the harness (`./scripts/test` builds it); without it a
//! test is skipped loudly, or fails in CI.
#![cfg(feature = "ssm")]

mod ssm_port_common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use session_aws::ssm::ChannelEnd;
use session_aws::ssm::port::{self, PortOptions};
use session_testkit::fakes::ssm_agent::{AgentScenario, SmuxServer, XtaciKeepalive};
use session_testkit::peers::{require_peer, smux_xtaci};
use sha2::{Digest, Sha256};
use ssm_port_common::{
    World, closed_within, echo_target, local_listener, open_port, pattern, round_trip, world,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

fn harness() -> Option<PathBuf> {
    require_peer("smux-xtaci (xtaci/smux harness)", smux_xtaci)
}

/// A port scenario to `target` whose mux mode is served by xtaci.
fn xtaci_to(target: SocketAddr, program: PathBuf, keepalive: XtaciKeepalive) -> AgentScenario {
    AgentScenario {
        smux_server: SmuxServer::Xtaci { program, keepalive },
        ..AgentScenario::port_to(target)
    }
}

/// A running forward: the fakes, the session id, the local address our
/// client listens on, and its task.
struct Forward {
    world: World,
    id: String,
    local: SocketAddr,
    task: JoinHandle<session_core::Result<ChannelEnd>>,
}

async fn forward(scenario: AgentScenario, options: PortOptions) -> Forward {
    let port = scenario.target.expect("a target").port();
    let world = world(scenario).await;
    let (channel, id, established) = open_port(&world, port).await;
    let (listener, local) = local_listener().await;
    let task =
        tokio::spawn(
            async move { port::run_with(channel, &established, listener, &options).await },
        );
    Forward {
        world,
        id,
        local,
        task,
    }
}

/// Three local connections at once, each echoing its own pattern of
/// 256 KiB or more: all come back intact, on smux streams 3, 5 and 7.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_concurrent_connections_echo_intact_on_streams_3_5_7() {
    let Some(program) = harness() else { return };
    let echo = echo_target().await;
    let f = forward(
        xtaci_to(echo, program, XtaciKeepalive::Defaults),
        PortOptions::default(),
    )
    .await;

    let sizes = [256 * 1024, 300 * 1024 + 7, 384 * 1024 + 1];
    let mut conns = Vec::new();
    for _ in sizes {
        // One by one, so that our client opens the streams in this order.
        conns.push(TcpStream::connect(f.local).await.unwrap());
    }
    let echoes = conns
        .iter_mut()
        .zip(sizes)
        .enumerate()
        .map(|(i, (conn, len))| async move {
            let data = pattern(len, 0x31 + i as u8);
            round_trip(conn, &data).await == data
        });
    let intact = futures::future::join_all(echoes).await;
    assert_eq!(intact, [true, true, true], "each echo intact");

    // The harness reports on stderr, read apart from the data: wait for it.
    let stats = f
        .world
        .agent
        .wait_for(&f.id, |s| {
            s.smux_streams.len() == 3 && s.target_connections == 3
        })
        .await;
    assert_eq!(stats.mux, Some(true));
    let mut streams = stats.smux_streams.clone();
    streams.sort_unstable();
    assert_eq!(streams, [3, 5, 7], "odd ids from 3, as xtaci's client does");
    assert_eq!(stats.target_connections, 3);
    assert_eq!(stats.smux_closed, None);
    f.task.abort();
}

/// The SHA-256 of `data`.
fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Reads to EOF; returns the SHA-256 and the byte count.
async fn read_all<R: AsyncReadExt + Unpin>(mut r: R) -> ([u8; 32], usize) {
    let mut hash = Sha256::new();
    let mut total = 0;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut buffer).await.expect("read");
        if n == 0 {
            return (hash.finalize().into(), total);
        }
        hash.update(&buffer[..n]);
        total += n;
    }
}

/// 16 MiB each way through one forwarded connection at once, both
/// byte-identical (SHA-256).
///
/// The target closes its sending side only after our EOF: an xtaci stream
/// has no half-close, so the harness's FIN for the target's EOF also ends
/// what the stream reads, and bytes of ours still on the way would be lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_mib_each_way_arrive_identical() {
    const LEN: usize = 16 << 20;
    let Some(program) = harness() else { return };
    let up = pattern(LEN, 0x5a);
    let down = pattern(LEN, 0xa5);
    let (up_hash, down_hash) = (sha256(&up), sha256(&down));

    let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_addr = target.local_addr().unwrap();
    let far = tokio::spawn(async move {
        let (conn, _) = target.accept().await.unwrap();
        let (r, mut w) = conn.into_split();
        let send = async move {
            w.write_all(&down).await.expect("target writes");
            w
        };
        let (received, mut w) = tokio::join!(read_all(r), send);
        w.shutdown().await.expect("target shuts down");
        received
    });
    let f = forward(
        xtaci_to(target_addr, program, XtaciKeepalive::Defaults),
        PortOptions::default(),
    )
    .await;

    let started = std::time::Instant::now();
    let conn = TcpStream::connect(f.local).await.unwrap();
    let (r, mut w) = conn.into_split();
    let send = async move {
        w.write_all(&up).await.expect("client writes");
        w.shutdown().await.expect("client shuts down");
    };
    let (((), received_down), received_up) =
        tokio::time::timeout(Duration::from_secs(300), async {
            let near = async { tokio::join!(send, read_all(r)) };
            let far = async { far.await.expect("target task") };
            tokio::join!(near, far)
        })
        .await
        .expect("the transfer finished in time");
    eprintln!("16 MiB each way through xtaci in {:?}", started.elapsed());

    assert_eq!(
        received_up,
        (up_hash, LEN),
        "client → target byte-identical"
    );
    assert_eq!(
        received_down,
        (down_hash, LEN),
        "target → client byte-identical"
    );
    let stats = f
        .world
        .agent
        .wait_for(&f.id, |s| s.target_connections == 1)
        .await;
    assert_eq!(stats.smux_streams, [3]);
    assert_eq!(stats.smux_closed, None);
    f.task.abort();
}

/// xtaci's keepalive, shortened: a NOP every 100 ms, and the session closes
/// after a 2 s period with no input (2 s rather than 1 s: a debug build on
/// a loaded 2-core machine can stall our NOPs for a while).
const SHORT_XTACI: XtaciKeepalive = XtaciKeepalive::Custom {
    interval: Duration::from_millis(100),
    timeout: Duration::from_secs(2),
};

/// An echo forward through an agent of `version` whose xtaci times out
/// quickly, with our keepalive at 50 ms; echoes once before idling.
async fn short_timeout_forward(version: &str) -> (Forward, TcpStream) {
    let program = harness().expect("checked by the caller");
    let echo = echo_target().await;
    let f = forward(
        AgentScenario {
            agent_version: version.into(),
            ..xtaci_to(echo, program, SHORT_XTACI)
        },
        PortOptions::default().with_keepalive_interval(Duration::from_millis(50)),
    )
    .await;
    let mut conn = TcpStream::connect(f.local).await.unwrap();
    let data = pattern(4_000, 9);
    assert!(
        round_trip(&mut conn, &data).await == data,
        "echoed before idling"
    );
    (f, conn)
}

/// Agent 3.1.1511.0 needs our NOPs: they keep xtaci's 2 s time-out from
/// closing the session through 5 s of idling (two of its checks). The companion test below
/// shows the time-out does fire without them.
#[tokio::test]
async fn our_nops_keep_a_short_xtaci_timeout_from_closing_the_session() {
    if harness().is_none() {
        return;
    }
    let (f, mut conn) = short_timeout_forward("3.1.1511.0").await;
    tokio::time::sleep(Duration::from_secs(5)).await;

    let stats = f.world.agent.stats(&f.id).expect("stats");
    assert_eq!(stats.smux_closed, None, "xtaci did not time out");
    assert!(
        stats.smux_nops >= 40,
        "NOPs every 50 ms: {}",
        stats.smux_nops
    );
    let data = pattern(4_000, 10);
    assert!(
        round_trip(&mut conn, &data).await == data,
        "echoes after idling"
    );
    assert_eq!(f.world.agent.stats(&f.id).expect("stats").smux_closed, None);
    f.task.abort();
}

/// Agent 3.1.1512.0: our client sends no NOPs, so the same short xtaci
/// time-out closes the session while idle, and the forward no longer
/// echoes. Without this, the test above could pass for another reason.
#[tokio::test]
async fn without_our_nops_a_short_xtaci_timeout_closes_the_session() {
    if harness().is_none() {
        return;
    }
    let (f, mut conn) = short_timeout_forward("3.1.1512.0").await;
    let stats = f
        .world
        .agent
        .wait_for(&f.id, |s| s.smux_closed.is_some())
        .await;
    assert_eq!(stats.smux_nops, 0);
    eprintln!("xtaci: session-closed: {:?}", stats.smux_closed);

    conn.write_all(b"anyone?").await.unwrap();
    let mut buffer = [0u8; 16];
    let answer = tokio::time::timeout(Duration::from_secs(2), conn.read(&mut buffer)).await;
    assert!(
        !matches!(answer, Ok(Ok(n)) if n > 0),
        "no echo once xtaci closed the session: {answer:?}"
    );
    // Nothing tells our client the agent's smux session is gone: the
    // connection just goes quiet (a timeout here, not EOF).
    eprintln!("the local connection after xtaci closed: {answer:?}");
    f.task.abort();
}

/// Accepts on `listener` and echoes, as [`echo_target`] does.
fn echo_on(listener: TcpListener) {
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = conn.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
}

/// A forward through xtaci to a port nobody listens on; returns it and
/// that port's address.
async fn forward_to_a_closed_port(program: PathBuf) -> (Forward, SocketAddr) {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = closed.local_addr().unwrap();
    drop(closed);
    let f = forward(
        xtaci_to(target, program, XtaciKeepalive::Defaults),
        PortOptions::default(),
    )
    .await;
    (f, target)
}

/// xtaci cannot dial (nothing listens on the target port): the fake sends
/// Flag ConnectToPortError, xtaci a FIN, and our client closes that local
/// connection. Once something listens there, a new connection is carried.
#[tokio::test]
async fn a_failed_dial_closes_that_connection_and_the_forward_goes_on() {
    let Some(program) = harness() else { return };
    let (f, target) = forward_to_a_closed_port(program).await;

    let mut refused = TcpStream::connect(f.local).await.unwrap();
    refused.write_all(b"hello?").await.unwrap();
    assert!(
        closed_within(&mut refused, Duration::from_secs(5)).await,
        "the local connection ends when the agent cannot dial"
    );
    let stats = f
        .world
        .agent
        .wait_for(&f.id, |s| s.dial_failures == 1)
        .await;
    assert_eq!(stats.target_connections, 0);
    assert!(!f.task.is_finished(), "the forward keeps running");

    // The same port, now served (TcpListener sets SO_REUSEADDR).
    let Ok(listener) = TcpListener::bind(target).await else {
        eprintln!("port {target} was taken meanwhile; the second half is not run");
        f.task.abort();
        return;
    };
    echo_on(listener);
    let data = pattern(8_000, 5);
    let mut conn = TcpStream::connect(f.local).await.unwrap();
    assert!(
        round_trip(&mut conn, &data).await == data,
        "the forward still carries new connections"
    );
    let stats = f
        .world
        .agent
        .wait_for(&f.id, |s| s.target_connections == 1)
        .await;
    assert_eq!(stats.smux_streams, [3, 5]);
    assert_eq!(stats.smux_closed, None);
    f.task.abort();
}

/// Writes to `conn` for up to a second; true when a write fails (our
/// client closed the connection both ways, not only its sending side).
async fn writes_fail(conn: &mut TcpStream) -> bool {
    for _ in 0..50 {
        if conn.write_all(&[0u8; 1024]).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// A FIN may arrive before its stream's Flag ConnectToPortError (the two
/// take separate paths through the agent, and ssm.md fixes no order; about
/// 1 failed dial in 30 through the xtaci fake). Every failed dial is still
/// closed both ways, and no flag is left over: the next stream that ends
/// without data, a target that accepts and closes at once, is
/// half-closed, not reset as a failed dial.
///
/// Counting flags alone failed here (found by this test): the FIN-first
/// dial was only half-closed, and its late flag then reset the empty
/// stream. 60 dials meet the FIN-first order with a probability of about
/// 87 %.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fin_ahead_of_its_dial_error_does_not_reset_a_later_empty_stream() {
    let Some(program) = harness() else { return };
    let (f, target) = forward_to_a_closed_port(program).await;
    for dial in 0..60 {
        let mut conn = TcpStream::connect(f.local).await.unwrap();
        assert!(closed_within(&mut conn, Duration::from_secs(5)).await);
        assert!(
            writes_fail(&mut conn).await,
            "failed dial {dial} was closed both ways"
        );
    }
    let Ok(listener) = TcpListener::bind(target).await else {
        eprintln!("port {target} was taken meanwhile; nothing shown");
        f.task.abort();
        return;
    };
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            drop(conn); // accepted, then closed without data
        }
    });
    let mut empty = TcpStream::connect(f.local).await.unwrap();
    assert!(closed_within(&mut empty, Duration::from_secs(5)).await);
    assert!(
        !writes_fail(&mut empty).await,
        "an empty stream is half-closed (EOF), not reset as a failed dial"
    );
    f.task.abort();
}

/// An echo forward through agent 3.1.1511.0 (our NOPs and our keepalive
/// time-out on) to xtaci with `keepalive`, our time-out 1 s; echoes once.
async fn keepalive_forward(program: PathBuf, keepalive: XtaciKeepalive) -> Forward {
    let echo = echo_target().await;
    let f = forward(
        AgentScenario {
            agent_version: "3.1.1511.0".into(),
            ..xtaci_to(echo, program, keepalive)
        },
        PortOptions::default()
            .with_keepalive_interval(Duration::from_millis(50))
            .with_keepalive_timeout(Duration::from_secs(1)),
    )
    .await;
    let mut conn = TcpStream::connect(f.local).await.unwrap();
    let data = pattern(4_000, 13);
    assert!(round_trip(&mut conn, &data).await == data, "echoed");
    f
}

/// The agent's smux goes silent (xtaci with its keepalive off sends no
/// NOPs, as a dead agent-side session would): our forward ends as lost
/// once our keepalive time-out passes, instead of going quiet for good.
#[tokio::test]
async fn a_silent_agent_ends_the_forward_after_the_keepalive_timeout() {
    let Some(program) = harness() else { return };
    let f = keepalive_forward(program, XtaciKeepalive::Disabled).await;
    let end = tokio::time::timeout(Duration::from_secs(10), f.task)
        .await
        .expect("the forward ended")
        .expect("no panic");
    match end {
        Ok(ChannelEnd::Lost(why)) => assert!(why.contains("keepalive"), "{why}"),
        other => panic!("ended as lost, not {other:?}"),
    }
}

/// The same with xtaci's NOPs every 100 ms: the forward outlives three of
/// our time-outs of idling, and still echoes.
#[tokio::test]
async fn the_agents_nops_keep_the_forward_up() {
    let Some(program) = harness() else { return };
    let f = keepalive_forward(program, SHORT_XTACI).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!f.task.is_finished(), "the forward is up");
    let mut conn = TcpStream::connect(f.local).await.unwrap();
    let data = pattern(4_000, 14);
    assert!(round_trip(&mut conn, &data).await == data, "still echoes");
    f.task.abort();
}
