//! Fixtures of the port-forwarding tests (`ssm_port_basic.rs`,
//! `ssm_port_transfer.rs`, `ssm_port_xtaci.rs`): the fake control plane and
//! the fake agent of session-testkit (written from ssm.md apart from our
//! client; its smux server is the async_smux crate, or xtaci/smux), an
//! echo target, and local clients.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use session_aws::AwsCredentials;
use session_aws::ssm::{
    ChannelOptions, DataChannel, Established, SsmClientConfig, SsmConfig, StreamTicket,
};
use session_core::{Secret, SystemClock};
use session_testkit::fakes::SsmControlFake;
use session_testkit::fakes::ssm_agent::{AgentScenario, SsmAgentFake};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

pub(crate) const TARGET: &str = "i-0123456789abcdef0";
pub(crate) const LIMIT: Duration = Duration::from_secs(20);

pub(crate) struct World {
    pub(crate) control: SsmControlFake,
    pub(crate) agent: SsmAgentFake,
}

pub(crate) async fn world(scenario: AgentScenario) -> World {
    let control = SsmControlFake::start().await;
    control.add_target(TARGET);
    let agent = SsmAgentFake::start(&control, scenario).await;
    World { control, agent }
}

async fn ticket(world: &World, config: &SsmConfig) -> StreamTicket {
    let credentials = AwsCredentials {
        access_key_id: "AKIAPORTTEST00000000".into(),
        secret_access_key: Secret::new("port-test"),
        session_token: None,
        expiration: None,
    };
    SsmClientConfig::builder()
        .endpoint_url(world.control.endpoint())
        .build()
        .expect("config")
        .api("eu-west-1", Some(&credentials), "session 'port'")
        .await
        .start_session(config)
        .await
        .expect("StartSession")
}

/// Opens the data channel of a port session to `port`: the channel, the
/// session id and what the handshake established.
pub(crate) async fn open_port(world: &World, port: u16) -> (DataChannel, String, Established) {
    open_port_with(world, port, ChannelOptions::default()).await
}

/// As [`open_port`], with `options`.
pub(crate) async fn open_port_with(
    world: &World,
    port: u16,
    options: ChannelOptions,
) -> (DataChannel, String, Established) {
    let ticket = ticket(world, &SsmConfig::port_forward(TARGET, port)).await;
    let (channel, established) = tokio::time::timeout(
        LIMIT,
        DataChannel::open(
            &ticket,
            Uuid::new_v4(),
            options,
            Arc::new(SystemClock),
            "session 'port'",
        ),
    )
    .await
    .expect("opened in time")
    .expect("opened");
    (channel, ticket.session_id, established)
}

/// A TCP echo server: each connection gets its bytes back, and its write
/// side closed after the client's EOF.
pub(crate) async fn echo_target() -> SocketAddr {
    let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = echo.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = echo.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = conn.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

/// A listener on an ephemeral loopback port, and its address.
pub(crate) async fn local_listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// `len` bytes that differ with `seed`.
pub(crate) fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

/// Writes `data` on `conn` while reading as many bytes back; returns them.
/// The connection stays open (basic mode ends a connection at its EOF,
/// so request-response clients read before they close).
pub(crate) async fn round_trip(conn: &mut TcpStream, data: &[u8]) -> Vec<u8> {
    let (mut r, mut w) = conn.split();
    let send = async {
        w.write_all(data).await.unwrap();
    };
    let mut back = vec![0u8; data.len()];
    let receive = r.read_exact(&mut back);
    let ((), read) = tokio::time::timeout(LIMIT, async { tokio::join!(send, receive) })
        .await
        .expect("echoed in time");
    read.expect("read the echo");
    back
}

/// Whether the peer closed `conn`: a read sees EOF or a reset in `within`.
pub(crate) async fn closed_within(conn: &mut TcpStream, within: Duration) -> bool {
    let mut buffer = [0u8; 64];
    matches!(
        tokio::time::timeout(within, conn.read(&mut buffer)).await,
        Ok(Ok(0) | Err(_))
    )
}
