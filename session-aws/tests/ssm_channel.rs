//! Our data channel (`DataChannel`) against the fake SSM agent of
//! session-testkit, which was written from ssm.md apart from our client
//! and is itself checked by pyssm-client: the handshake, data both ways in
//! order, the fake's faults (lost, duplicated, reordered messages,
//! withheld acks) changing nothing the user sees, `channel_closed` with
//! its reason, and a lost socket.
#![cfg(feature = "ssm")]

use std::sync::Arc;
use std::time::Duration;

use session_aws::AwsCredentials;
use session_aws::ssm::payload::FlagValue;
use session_aws::ssm::{
    ChannelEnd, ChannelOptions, DataChannel, Incoming, PayloadType, SsmClientConfig, SsmConfig,
    StreamTicket,
};
use session_core::{Secret, SystemClock};
use session_testkit::fakes::SsmControlFake;
use session_testkit::fakes::ssm_agent::{AgentScenario, ShellEcho, SsmAgentFake};
use uuid::Uuid;

const TARGET: &str = "i-0123456789abcdef0";
const LIMIT: Duration = Duration::from_secs(20);

struct World {
    control: SsmControlFake,
    agent: SsmAgentFake,
}

async fn world(scenario: AgentScenario) -> World {
    let control = SsmControlFake::start().await;
    control.add_target(TARGET);
    let agent = SsmAgentFake::start(&control, scenario).await;
    World { control, agent }
}

async fn ticket(world: &World, config: &SsmConfig) -> StreamTicket {
    let credentials = AwsCredentials {
        access_key_id: "AKIACHANNELTEST00000".into(),
        secret_access_key: Secret::new("channel-test"),
        session_token: None,
        expiration: None,
    };
    SsmClientConfig::builder()
        .endpoint_url(world.control.endpoint())
        .build()
        .expect("config")
        .api("eu-west-1", Some(&credentials), "session 'test'")
        .await
        .start_session(config)
        .await
        .expect("StartSession")
}

async fn open(world: &World, config: &SsmConfig) -> (DataChannel, String) {
    let (channel, id, _) = open_established(world, config).await;
    (channel, id)
}

async fn open_established(
    world: &World,
    config: &SsmConfig,
) -> (DataChannel, String, session_aws::ssm::Established) {
    let ticket = ticket(world, config).await;
    let (channel, established) = tokio::time::timeout(
        LIMIT,
        DataChannel::open(
            &ticket,
            Uuid::new_v4(),
            ChannelOptions::default(),
            Arc::new(SystemClock),
            "session 'test'",
        ),
    )
    .await
    .expect("opened in time")
    .expect("opened");
    assert_eq!(established.agent_version, "3.3.1142.0");
    (channel, ticket.session_id, established)
}

/// Reads Output payloads until `want` bytes came.
async fn read_output(channel: &mut DataChannel, want: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < want {
        match tokio::time::timeout(LIMIT, channel.recv()).await {
            Ok(Some(Incoming::Output(bytes))) => got.extend(bytes),
            Ok(Some(_)) => {}
            Ok(None) => panic!(
                "the channel ended after {} bytes: {:?}",
                got.len(),
                channel.end()
            ),
            Err(_) => panic!("only {} of {want} bytes in time", got.len()),
        }
    }
    got
}

#[tokio::test]
async fn a_shell_echoes_in_order_and_terminates_with_the_services_reason() {
    let world = world(AgentScenario {
        shell_echo: ShellEcho::Uppercase,
        exit_code: Some(3),
        ..AgentScenario::default()
    })
    .await;
    let (mut channel, id) = open(&world, &SsmConfig::shell(TARGET)).await;
    let stats = world.agent.stats(&id).expect("stats");
    assert_eq!(stats.handshake_client_version.as_deref(), Some("1.2.694.0"));
    assert_eq!(stats.client_version_numeric, Some(true));
    assert!(stats.handshake_complete);

    let mut sent = Vec::new();
    for i in 0..200 {
        let line = format!("line {i}\r");
        sent.extend(line.to_uppercase().into_bytes());
        channel
            .send(PayloadType::Output, line.into_bytes())
            .await
            .expect("send");
    }
    let echoed = read_output(&mut channel, sent.len()).await;
    assert_eq!(echoed, sent, "every byte once, in order");
    // We acked everything the agent sent.
    let stats = world.agent.wait_for(&id, |s| s.unacked == 0).await;
    assert!(stats.acks_received >= 200, "{stats:?}");

    channel.terminate().await.expect("terminate");
    let mut exit = None;
    while let Ok(Some(incoming)) = tokio::time::timeout(LIMIT, channel.recv()).await {
        if let Incoming::ExitCode(code) = incoming {
            exit = Some(String::from_utf8_lossy(&code).into_owned());
        }
    }
    assert_eq!(exit.as_deref(), Some("3"), "the remote exit code arrives");
    assert!(
        matches!(channel.ended().await, ChannelEnd::Closed(_)),
        "{:?}",
        channel.end()
    );
    let stats = world.agent.stats(&id).expect("stats");
    assert_eq!(stats.dropped_bad_digest, 0, "our digests are right");
    assert_eq!(stats.dropped_malformed, 0);
    assert_eq!(
        stats.dropped_before_handshake, 0,
        "no data before HandshakeComplete"
    );
    assert!(
        stats
            .flags_received
            .contains(&FlagValue::TerminateSession.to_u32())
    );
}

#[tokio::test]
async fn lost_duplicated_and_reordered_messages_change_nothing_the_user_sees() {
    let mut scenario = AgentScenario {
        shell_echo: ShellEcho::Verbatim,
        ..AgentScenario::default()
    };
    scenario.faults.drop_incoming = [3, 4, 10].into();
    scenario.faults.duplicate_incoming = [5, 6].into();
    scenario.faults.drop_outgoing = [2, 7].into();
    scenario.faults.duplicate_outgoing = [3, 9].into();
    scenario.faults.reorder_outgoing = Some((11, 5));
    scenario.faults.withhold_acks = [12].into();
    let world = world(scenario).await;
    let (mut channel, id) = open(&world, &SsmConfig::shell(TARGET)).await;
    let mut sent: Vec<u8> = Vec::new();
    for i in 0..60u32 {
        let chunk: Vec<u8> = (0..100).map(|j| ((i * 7 + j) % 251) as u8).collect();
        sent.extend(&chunk);
        channel
            .send(PayloadType::Output, chunk)
            .await
            .expect("send");
    }
    // Seq 12's ack is withheld for good: lift it so the test can end.
    tokio::time::sleep(Duration::from_millis(500)).await;
    world
        .agent
        .update_scenario(|s| s.faults.withhold_acks.clear());
    let echoed = read_output(&mut channel, sent.len()).await;
    assert_eq!(echoed, sent);
    let stats = world.agent.stats(&id).expect("stats");
    assert!(stats.dropped_injected >= 3, "{stats:?}");
    assert!(
        stats.re_acks_sent >= 1 || stats.duplicates_received >= 2,
        "{stats:?}"
    );
    assert!(stats.acks_withheld >= 1, "{stats:?}");
}

#[tokio::test]
async fn channel_closed_ends_the_channel_with_its_output() {
    let world = world(AgentScenario::default()).await;
    let (channel, id) = open(&world, &SsmConfig::shell(TARGET)).await;
    assert!(
        world
            .agent
            .close_channel(&id, "Session terminated by the administrator")
    );
    let end = tokio::time::timeout(LIMIT, channel.ended())
        .await
        .expect("ended");
    assert_eq!(
        end,
        ChannelEnd::Closed("Session terminated by the administrator".into())
    );
    let error = channel
        .send(PayloadType::Output, b"late".to_vec())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("channel_closed"), "{error}");
}

#[tokio::test]
async fn a_dropped_socket_is_a_lost_connection() {
    let world = world(AgentScenario::default()).await;
    let (channel, id) = open(&world, &SsmConfig::shell(TARGET)).await;
    assert!(world.agent.drop_socket(&id));
    let end = tokio::time::timeout(LIMIT, channel.ended())
        .await
        .expect("ended");
    assert!(matches!(end, ChannelEnd::Lost(_)), "{end:?}");
}

#[tokio::test]
async fn a_port_session_reports_its_properties() {
    let world = world(AgentScenario::default()).await;
    let (_channel, id, established) =
        open_established(&world, &SsmConfig::port_forward(TARGET, 5432)).await;
    assert_eq!(established.session_type, "Port");
    let port = established.port.expect("port properties");
    assert_eq!(port.kind.as_deref(), Some("LocalPortForwarding"));
    assert_eq!(port.port_number.as_deref(), Some("5432"));
    let stats = world.agent.stats(&id).expect("stats");
    assert_eq!(stats.mux, Some(true), "ClientVersion 1.2.694.0 gets smux");
}

/// A port forward in smux mode: three concurrent local connections, each
/// echoed intact by the target behind the fake agent (whose smux server is
/// the async_smux crate, not our code).
#[tokio::test]
async fn a_mux_port_forward_carries_concurrent_connections_intact() {
    use sha2::{Digest, Sha256};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo_addr = echo.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = echo.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = conn.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    let world = world(AgentScenario::port_to(echo_addr)).await;
    let (channel, id) = open(&world, &SsmConfig::port_forward(TARGET, echo_addr.port())).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = listener.local_addr().unwrap();
    let forward = tokio::spawn(session_aws::ssm::port::run_mux(channel, listener, false));

    let mut clients = Vec::new();
    for n in 0..3u8 {
        clients.push(tokio::spawn(async move {
            let data: Vec<u8> = (0..64 * 1024u32)
                .map(|i| (i.wrapping_mul(31) as u8) ^ n)
                .collect();
            let mut conn = tokio::net::TcpStream::connect(local).await.unwrap();
            let (mut r, mut w) = conn.split();
            let send = async {
                w.write_all(&data).await.unwrap();
                w.shutdown().await.unwrap();
            };
            let mut back = Vec::new();
            let receive = r.read_to_end(&mut back);
            let ((), read) = tokio::join!(send, receive);
            read.unwrap();
            (Sha256::digest(&data), Sha256::digest(&back), back.len())
        }));
    }
    for client in clients {
        let (sent, got, len) = tokio::time::timeout(LIMIT, client)
            .await
            .expect("in time")
            .expect("no panic");
        assert_eq!(len, 64 * 1024);
        assert_eq!(sent, got, "echoed intact");
    }
    let stats = world.agent.stats(&id).expect("stats");
    assert_eq!(stats.mux, Some(true));
    assert_eq!(stats.smux_streams, vec![3, 5, 7]);
    assert_eq!(stats.target_connections, 3);
    forward.abort();
}

/// A stream session (`run_stream`, as a shell or `AWS-StartSSHSession`
/// gets) uploading 16 MiB while the agent sends 8 MiB of its own: both
/// arrive intact. It hung while one loop both waited for the window and
/// read the channel: the agent's output filled the channel's queue, its
/// acks then went unread, and the window never opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_session_sends_and_receives_at_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const UP: usize = 16 << 20;
    const DOWN: usize = 8 << 20;
    let world = world(AgentScenario {
        shell_echo: ShellEcho::Silent,
        ..AgentScenario::default()
    })
    .await;
    let (channel, id) = open(&world, &SsmConfig::shell(TARGET)).await;
    let (user, ours) = tokio::io::duplex(64 * 1024);
    let (_sizes_tx, sizes) = tokio::sync::watch::channel(None);
    let runner = tokio::spawn(session_aws::ssm::stream::run_stream(channel, ours, sizes));
    let up: Vec<u8> = (0..UP).map(|i| (i % 251) as u8).collect();
    let down: Vec<u8> = (0..DOWN).map(|i| (i % 241) as u8).collect();
    for chunk in down.chunks(1024) {
        assert!(world.agent.send_stream(&id, 1, chunk.to_vec()));
    }
    let (mut r, mut w) = tokio::io::split(user);
    let send = async {
        w.write_all(&up).await.unwrap();
    };
    let mut got = vec![0u8; DOWN];
    let receive = r.read_exact(&mut got);
    let ((), read) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(send, receive)
    })
    .await
    .expect("both ways in time");
    read.unwrap();
    assert!(got == down, "the agent's output arrived intact");
    let stats = world
        .agent
        .wait_for(&id, |s| s.shell_input.len() == UP)
        .await;
    assert!(stats.shell_input == up, "our input arrived intact");
    runner.abort();
}
