//! pyssm-client, a Session Manager client we did not write, against
//! `SsmControlFake` + `SsmAgentFake`: `pyssm port-forward` signs a
//! StartSession against the control fake, opens the data channel it
//! returns, runs the handshake and forwards several concurrent TCP
//! connections over smux to an echo server behind the fake agent. If pyssm
//! cannot complete a scenario, the fake is wrong.
//!
//! pyssm-client is a pinned test peer (`scripts/peers/requirements-ignore-python.txt`):
//! skipped loudly outside CI when missing, a failure in CI.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sha2::{Digest, Sha256};
use session_testkit::fakes::SsmControlFake;
use session_testkit::fakes::ssm::SessionStatus;
use session_testkit::fakes::ssm_agent::{AgentScenario, SsmAgentFake};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TARGET: &str = "i-0123456789abcdef0";
/// Concurrent connections through pyssm's local port.
const CONNECTIONS: usize = 4;
/// Bytes each connection sends (and must get back).
const BYTES: usize = 256 * 1024;

/// `pyssm`, next to the peers' Python, once it can import pyssm_client.
fn pyssm() -> Option<PathBuf> {
    session_testkit::peers::require_peer("pyssm-client", || {
        let python = session_testkit::peers::python_with_module("pyssm_client")?;
        let script = python
            .parent()
            .map(|d| d.join("pyssm"))
            .filter(|p| p.is_file())
            .ok_or_else(|| format!("no `pyssm` script next to {}", python.display()))?;
        Ok(script)
    })
}

/// A TCP echo server on 127.0.0.1 (each connection echoes until EOF).
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = conn.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Random bytes (v4 UUIDs are 122 random bits each).
fn random_bytes(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 16);
    while out.len() < n {
        out.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    out.truncate(n);
    out
}

/// The pyssm process; killed on drop, its output kept for failures.
struct Pyssm {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Pyssm {
    fn spawn(program: &Path, args: &[String]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("pyssm.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(program)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env("AWS_ACCESS_KEY_ID", "AKIDPYSSMEXAMPLE0001")
            .env("AWS_SECRET_ACCESS_KEY", "pyssm/secret/example/key/000000000000000")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", dir.path().join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("credentials"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        Self {
            child,
            log,
            _dir: dir,
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Pyssm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- pyssm output ---\n{}", self.output());
        }
    }
}

/// Connects to pyssm's local port once it listens (pyssm signals readiness
/// only on its terminal, so this polls the port).
async fn connect_when_listening(port: u16, pyssm: &mut Pyssm) -> TcpStream {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(conn) = TcpStream::connect(("127.0.0.1", port)).await {
            return conn;
        }
        if let Ok(Some(status)) = pyssm.child.try_wait() {
            panic!("pyssm exited with {status}:\n{}", pyssm.output());
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pyssm never listened on {port}:\n{}",
            pyssm.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends `data` and reads back as many bytes, concurrently; returns what
/// came back.
async fn echo_through(conn: TcpStream, data: Vec<u8>) -> Vec<u8> {
    let (mut r, mut w) = conn.into_split();
    let expected = data.len();
    let writer = tokio::spawn(async move {
        for chunk in data.chunks(7_000) {
            w.write_all(chunk).await.unwrap();
        }
        w
    });
    let mut back = vec![0u8; expected];
    tokio::time::timeout(Duration::from_secs(120), r.read_exact(&mut back))
        .await
        .expect("echo timed out")
        .expect("echo read");
    drop(writer.await.unwrap());
    back
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyssm_port_forward_carries_concurrent_connections_over_smux() {
    let Some(program) = pyssm() else {
        return;
    };
    let echo = echo_server().await;
    let control = SsmControlFake::start().await;
    control.add_target(TARGET);
    // No fixed target: the agent dials 127.0.0.1:<portNumber> from the
    // session's parameters, as the real one does.
    let agent = SsmAgentFake::start(&control, AgentScenario::default()).await;
    let local_port = free_port();
    let mut pyssm = Pyssm::spawn(
        &program,
        &[
            "port-forward".into(),
            "--endpoint-url".into(),
            control.endpoint(),
            "--region".into(),
            "us-east-1".into(),
            "--target".into(),
            TARGET.into(),
            "--remote-port".into(),
            echo.port().to_string(),
            "--local-port".into(),
            local_port.to_string(),
        ],
    );

    let session_id = agent.wait_for_any(|s| s.handshake_complete).await;
    let first = connect_when_listening(local_port, &mut pyssm).await;
    let mut conns = vec![first];
    for _ in 1..CONNECTIONS {
        conns.push(TcpStream::connect(("127.0.0.1", local_port)).await.unwrap());
    }
    let mut tasks = Vec::new();
    for conn in conns {
        let data = random_bytes(BYTES);
        let digest = Sha256::digest(&data);
        tasks.push(tokio::spawn(async move {
            let back = echo_through(conn, data).await;
            (digest, Sha256::digest(&back))
        }));
    }
    for task in tasks {
        let (sent, got) = task.await.unwrap();
        assert_eq!(sent, got, "echoed bytes differ");
    }

    let stats = agent
        .wait_for(&session_id, |s| s.smux_streams.len() >= CONNECTIONS)
        .await;
    let record = control.session(&session_id).unwrap();
    assert_eq!(record.status, SessionStatus::Connected);
    assert_eq!(
        record.document_name.as_deref(),
        Some("AWS-StartPortForwardingSession")
    );
    assert_eq!(stats.mux, Some(true), "{stats:#?}");
    let mut ids = stats.smux_streams.clone();
    ids.sort_unstable();
    assert!(ids.iter().all(|id| id % 2 == 1), "smux ids {ids:?}");
    assert_eq!(stats.target_connections, CONNECTIONS as u64);
    assert_eq!(stats.dropped_bad_digest, 0);
    assert_eq!(stats.dropped_malformed, 0);
    assert_eq!(stats.dropped_before_handshake, 0);
    assert_eq!(stats.sequence_conflicts, 0);
    assert!(stats.bytes_in >= (CONNECTIONS * BYTES) as u64);
    assert!(stats.bytes_out >= (CONNECTIONS * BYTES) as u64);
    assert!(stats.acks_received > 0 && stats.acks_sent > 0);
    let open = &stats.opens[0];
    assert!(open.accepted && open.client_id.is_some(), "{open:?}");
    eprintln!(
        "pyssm: session {session_id}, ClientVersion {:?} (open {:?}), smux streams {ids:?}, \
         {} bytes in / {} bytes out, acks sent {} / received {}, retransmissions {}",
        stats.handshake_client_version,
        open.client_version,
        stats.bytes_in,
        stats.bytes_out,
        stats.acks_sent,
        stats.acks_received,
        stats.retransmissions
    );
}
