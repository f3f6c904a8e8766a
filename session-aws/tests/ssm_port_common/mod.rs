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
    ChannelOptions, ChannelResume, DataChannel, Established, ResumeBudget, SsmApi, SsmClientConfig,
    SsmConfig, StreamTicket,
};
use session_core::{Secret, SystemClock};
use session_testkit::fakes::SsmControlFake;
use session_testkit::fakes::ssm_agent::{AgentScenario, SsmAgentFake};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
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

/// The control plane of the fake, signed with made-up credentials.
pub(crate) async fn api(world: &World) -> SsmApi {
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
}

async fn ticket(world: &World, config: &SsmConfig) -> StreamTicket {
    api(world)
        .await
        .start_session(config)
        .await
        .expect("StartSession")
}

/// As [`open_port_with`], resuming a lost socket through the fake's
/// ResumeSession within `budget`.
pub(crate) async fn open_port_resumable(
    world: &World,
    port: u16,
    mut options: ChannelOptions,
    budget: ResumeBudget,
) -> (DataChannel, String, Established) {
    let api = api(world).await;
    let ticket = api
        .start_session(&SsmConfig::port_forward(TARGET, port))
        .await
        .expect("StartSession");
    options.resume = Some(ChannelResume::new(
        Arc::new(api.resume_tickets(&ticket.session_id)),
        budget,
    ));
    open_ticket(ticket, options).await
}

/// Opens the data channel of `ticket` within [`LIMIT`].
async fn open_ticket(
    ticket: StreamTicket,
    options: ChannelOptions,
) -> (DataChannel, String, Established) {
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
    open_ticket(ticket, options).await
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

/// Bytes per chunk of the transfer streams.
pub(crate) const CHUNK: usize = 1 << 20;

/// The `index`-th chunk of the stream `seed`: a fixed random block rotated
/// by a per-chunk offset, so that a lost, repeated or misplaced chunk
/// changes the bytes.
pub(crate) fn chunk(block: &[u8], index: usize, seed: usize) -> Vec<u8> {
    let at = (index * 7_919 + seed * 104_729) % block.len();
    let mut out = Vec::with_capacity(block.len());
    out.extend_from_slice(&block[at..]);
    out.extend_from_slice(&block[..at]);
    out
}

pub(crate) fn block(seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..CHUNK)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[3]
        })
        .collect()
}

/// Bytes written and read so far at each end of a transfer, for the
/// message of a transfer that stalls.
#[derive(Default)]
pub(crate) struct Progress {
    /// Written by the local client.
    pub(crate) up_sent: AtomicU64,
    /// Read by the target.
    pub(crate) up_got: AtomicU64,
    /// Written by the target.
    pub(crate) down_sent: AtomicU64,
    /// Read by the local client.
    pub(crate) down_got: AtomicU64,
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kib = |c: &AtomicU64| c.load(Ordering::Relaxed) >> 10;
        write!(
            f,
            "KiB written by the client {}, read by the target {}; \
             written by the target {}, read by the client {}",
            kib(&self.up_sent),
            kib(&self.up_got),
            kib(&self.down_sent),
            kib(&self.down_got)
        )
    }
}

/// Writes `chunks` chunks of stream `seed`, then shuts the writing half;
/// returns the SHA-256 of what was written.
pub(crate) async fn send_stream<W: AsyncWriteExt + Unpin>(
    mut w: W,
    chunks: usize,
    seed: usize,
    written: &AtomicU64,
) -> [u8; 32] {
    let block = block(seed as u64 + 1);
    let mut hash = Sha256::new();
    for i in 0..chunks {
        let bytes = chunk(&block, i, seed);
        hash.update(&bytes);
        w.write_all(&bytes).await.expect("write");
        written.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    }
    w.shutdown().await.expect("shutdown");
    hash.finalize().into()
}

/// Reads to EOF; returns the byte count and the SHA-256.
pub(crate) async fn receive_stream<R: AsyncReadExt + Unpin>(
    mut r: R,
    read: &AtomicU64,
) -> (u64, [u8; 32]) {
    let mut hash = Sha256::new();
    let mut total = 0u64;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut buffer).await.expect("read");
        if n == 0 {
            return (total, hash.finalize().into());
        }
        hash.update(&buffer[..n]);
        total += n as u64;
        read.store(total, Ordering::Relaxed);
    }
}

/// The far end of a transfer: a target on loopback that, for its one
/// connection, sends stream 2 ([`send_stream`], `mib` chunks) while hashing
/// what it receives; returns its address and what it sent and got.
pub(crate) async fn transfer_target(
    mib: usize,
    progress: Arc<Progress>,
) -> (
    SocketAddr,
    tokio::task::JoinHandle<([u8; 32], (u64, [u8; 32]))>,
) {
    let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = target.local_addr().unwrap();
    let far = tokio::spawn(async move {
        let (conn, _) = target.accept().await.unwrap();
        let (r, w) = conn.into_split();
        tokio::join!(
            send_stream(w, mib, 2, &progress.down_sent),
            receive_stream(r, &progress.up_got)
        )
    });
    (addr, far)
}
