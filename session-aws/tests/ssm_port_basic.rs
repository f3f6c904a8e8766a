//! Basic port mode (`ssm.md` §2.9) against the fake agent of
//! session-testkit: agents of 3.0.196.0 and older get raw bytes of one
//! connection at a time (no smux), Flag DisconnectToPort when a local
//! connection closes, further connections queued and served in turn, and
//! those beyond the queue closed at once rather than left hanging. The
//! mode comes from `port::run`, which decides as the agent does; 3.0.197.0
//! is checked to get smux.
#![cfg(feature = "ssm")]

mod ssm_port_common;

use std::time::Duration;

use session_aws::ssm::port::{self, PortOptions};
use session_testkit::fakes::ssm_agent::AgentScenario;
use ssm_port_common::{
    LIMIT, closed_within, echo_target, local_listener, open_port, pattern, round_trip, world,
};
use tokio::net::TcpStream;

const DISCONNECT_TO_PORT: u32 = 1;

fn disconnects(flags: &[u32]) -> usize {
    flags.iter().filter(|f| **f == DISCONNECT_TO_PORT).count()
}

/// One echo connection through an agent of `version`; returns the fake's
/// stats once the connection's DisconnectToPort arrived.
async fn one_basic_echo(version: &str) {
    let echo = echo_target().await;
    let world = world(AgentScenario {
        agent_version: version.into(),
        ..AgentScenario::port_to(echo)
    })
    .await;
    let (channel, id, established) = open_port(&world, echo.port()).await;
    assert_eq!(established.agent_version, version);
    assert_eq!(
        world.agent.stats(&id).expect("stats").mux,
        Some(false),
        "the fake agent {version} runs basic mode"
    );
    let (listener, local) = local_listener().await;
    let forward = tokio::spawn(async move { port::run(channel, &established, listener).await });

    let data = pattern(10_000, 7);
    let mut conn = TcpStream::connect(local).await.unwrap();
    let back = round_trip(&mut conn, &data).await;
    assert!(back == data, "echoed intact");
    drop(conn);

    let stats = world
        .agent
        .wait_for(&id, |s| disconnects(&s.flags_received) == 1)
        .await;
    assert_eq!(stats.bytes_in, 10_000, "raw bytes, no smux framing");
    assert!(stats.smux_streams.is_empty());
    assert!(
        stats.largest_output_in <= 1024,
        "payloads of at most 1,024 bytes: {}",
        stats.largest_output_in
    );
    assert_eq!(stats.target_connections, 1);
    forward.abort();
}

#[tokio::test]
async fn agent_3_0_196_0_gets_basic_mode_and_a_disconnect_after_each_connection() {
    one_basic_echo("3.0.196.0").await;
}

#[tokio::test]
async fn an_older_agent_gets_basic_mode_too() {
    one_basic_echo("2.3.722.0").await;
}

#[tokio::test]
async fn agent_3_0_197_0_gets_smux() {
    let echo = echo_target().await;
    let world = world(AgentScenario {
        agent_version: "3.0.197.0".into(),
        ..AgentScenario::port_to(echo)
    })
    .await;
    let (channel, id, established) = open_port(&world, echo.port()).await;
    let (listener, local) = local_listener().await;
    let forward = tokio::spawn(async move { port::run(channel, &established, listener).await });
    let data = pattern(5_000, 9);
    let mut conn = TcpStream::connect(local).await.unwrap();
    let back = round_trip(&mut conn, &data).await;
    assert!(back == data, "echoed intact");
    let stats = world.agent.stats(&id).expect("stats");
    assert_eq!(stats.mux, Some(true));
    assert_eq!(stats.smux_streams, vec![3]);
    assert!(stats.bytes_in > 5_000, "smux frames add headers");
    forward.abort();
}

/// Three clients connect at once; basic mode serves them one after
/// another, each echoed intact, with a DisconnectToPort (and a fresh dial
/// of the target) per connection.
#[tokio::test]
async fn three_connections_at_once_are_served_one_after_another() {
    let echo = echo_target().await;
    let world = world(AgentScenario {
        agent_version: "3.0.196.0".into(),
        ..AgentScenario::port_to(echo)
    })
    .await;
    let (channel, id, established) = open_port(&world, echo.port()).await;
    let (listener, local) = local_listener().await;
    let forward = tokio::spawn(async move { port::run(channel, &established, listener).await });

    let mut clients = Vec::new();
    for n in 0..3u8 {
        clients.push(tokio::spawn(async move {
            let data = pattern(20_000, n);
            let mut conn = TcpStream::connect(local).await.unwrap();
            let back = round_trip(&mut conn, &data).await;
            (back == data, n)
        }));
    }
    for client in clients {
        let (intact, n) = tokio::time::timeout(LIMIT * 2, client)
            .await
            .expect("served in time")
            .expect("no panic");
        assert!(intact, "connection {n} echoed intact");
    }
    let stats = world
        .agent
        .wait_for(&id, |s| disconnects(&s.flags_received) == 3)
        .await;
    assert_eq!(stats.target_connections, 3, "one dial per connection");
    assert_eq!(stats.bytes_in, 60_000);
    assert_eq!(stats.dial_failures, 0);
    forward.abort();
}

/// With room for one waiting connection: the second waits and is served
/// after the first, the third is closed at once instead of hanging.
#[tokio::test]
async fn a_connection_beyond_the_queue_is_closed_at_once() {
    let echo = echo_target().await;
    let world = world(AgentScenario {
        agent_version: "3.0.195.0".into(),
        ..AgentScenario::port_to(echo)
    })
    .await;
    let (channel, id, established) = open_port(&world, echo.port()).await;
    let (listener, local) = local_listener().await;
    let options = PortOptions::default().with_basic_queue(1);
    let forward =
        tokio::spawn(
            async move { port::run_with(channel, &established, listener, &options).await },
        );

    let first_data = pattern(3_000, 1);
    let mut first = TcpStream::connect(local).await.unwrap();
    assert!(round_trip(&mut first, &first_data).await == first_data);
    let mut second = TcpStream::connect(local).await.unwrap();
    let mut third = TcpStream::connect(local).await.unwrap();
    assert!(
        closed_within(&mut third, Duration::from_secs(3)).await,
        "the connection beyond the queue is closed, not left hanging"
    );
    // The second one waited; it is served once the first closes.
    let second_data = pattern(3_000, 2);
    let served =
        tokio::spawn(async move { round_trip(&mut second, &second_data).await == second_data });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        world.agent.stats(&id).expect("stats").target_connections,
        1,
        "nothing of the second connection reached the agent while the first is open"
    );
    drop(first);
    assert!(
        tokio::time::timeout(LIMIT, served)
            .await
            .expect("in time")
            .expect("no panic"),
        "the waiting connection echoed intact"
    );
    let stats = world
        .agent
        .wait_for(&id, |s| s.target_connections == 2)
        .await;
    assert_eq!(disconnects(&stats.flags_received), 1);
    forward.abort();
}

/// 16 MiB echoed through basic mode while it is being sent: both
/// directions at full speed, intact. It hung (20 s limit) while one loop
/// both waited for the window and read the channel: the agent's acks went
/// unread, so the window never opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_mib_echo_both_ways_at_once_in_basic_mode() {
    let echo = echo_target().await;
    let world = world(AgentScenario {
        agent_version: "3.0.196.0".into(),
        ..AgentScenario::port_to(echo)
    })
    .await;
    let (channel, _, established) = open_port(&world, echo.port()).await;
    let (listener, local) = local_listener().await;
    let forward = tokio::spawn(async move { port::run(channel, &established, listener).await });
    let data = pattern(16 << 20, 11);
    let mut conn = TcpStream::connect(local).await.unwrap();
    assert!(round_trip(&mut conn, &data).await == data, "echoed intact");
    forward.abort();
}
