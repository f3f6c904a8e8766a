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

use session_testkit::fakes::SsmControlFake;
use session_testkit::fakes::ssm::SessionStatus;
use session_testkit::fakes::ssm_agent::{
    AgentScenario, Faults, SessionStats, ShellEcho, SsmAgentFake,
};
use sha2::{Digest, Sha256};
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
            .arg("--verbose")
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env("AWS_ACCESS_KEY_ID", "AKIDPYSSMEXAMPLE0001")
            .env(
                "AWS_SECRET_ACCESS_KEY",
                "pyssm/secret/example/key/000000000000000",
            )
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", dir.path().join("config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                dir.path().join("credentials"),
            )
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
    tokio::time::timeout(Duration::from_secs(60), r.read_exact(&mut back))
        .await
        .expect("echo timed out")
        .expect("echo read");
    drop(writer.await.unwrap());
    back
}

/// The AWS settings pyssm gets on its command line.
fn aws_args(control: &SsmControlFake) -> Vec<String> {
    vec![
        "--endpoint-url".into(),
        control.endpoint(),
        "--region".into(),
        "us-east-1".into(),
        "--target".into(),
        TARGET.into(),
    ]
}

/// Runs `pyssm port-forward` to an echo server through the fakes with
/// `scenario` (its `target` left unset: the agent dials
/// `127.0.0.1:<portNumber>` from the session's parameters, as the real one
/// does), pushes [`CONNECTIONS`] concurrent connections of [`BYTES`] random
/// bytes through it, and checks each echo by SHA-256. Returns the session's
/// stats.
async fn port_forward(program: &Path, scenario: AgentScenario) -> SessionStats {
    let echo = echo_server().await;
    let control = SsmControlFake::start().await;
    control.add_target(TARGET);
    let agent = SsmAgentFake::start(&control, scenario).await;
    let local_port = free_port();
    let mut args = vec!["port-forward".into()];
    args.extend(aws_args(&control));
    args.extend([
        "--remote-port".into(),
        echo.port().to_string(),
        "--local-port".into(),
        local_port.to_string(),
    ]);
    let mut pyssm = Pyssm::spawn(program, &args);

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
        let (sent, got) = task
            .await
            .unwrap_or_else(|e| panic!("{e}; agent: {:#?}", agent.all_stats()));
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
    assert_eq!(
        record.parameters.get("portNumber"),
        Some(&vec![echo.port().to_string()])
    );
    assert_eq!(stats.mux, Some(true), "{stats:#?}");
    let mut ids = stats.smux_streams.clone();
    ids.sort_unstable();
    assert!(
        ids.iter().all(|id| id % 2 == 1 && *id >= 3),
        "smux ids {ids:?}"
    );
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
    // pyssm SigV4-signs the upgrade; the fake accepts (and records) it.
    assert!(open.authorization, "{open:?}");
    eprintln!(
        "pyssm: session {session_id}, ClientVersion {:?} (numeric: {:?}; open {:?}), smux \
         streams {ids:?}, {} bytes in / {} bytes out, messages {} in / {} out, acks sent {} / \
         received {} / unknown {}, re-acks {}, duplicates in {}, retransmissions {}",
        stats.handshake_client_version,
        stats.client_version_numeric,
        open.client_version,
        stats.bytes_in,
        stats.bytes_out,
        stats.messages_received,
        stats.messages_sent,
        stats.acks_sent,
        stats.acks_received,
        stats.unknown_acks,
        stats.re_acks_sent,
        stats.duplicates_received,
        stats.retransmissions
    );
    stats
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyssm_port_forward_carries_concurrent_connections_over_smux() {
    let Some(program) = pyssm() else {
        return;
    };
    let stats = port_forward(&program, AgentScenario::default()).await;
    // pyssm reports `pyssm-client/<version>`: not dotted-numeric, so the
    // agent's text comparison puts it in mux mode (tunnel-peers.md §2.2).
    assert_eq!(stats.client_version_numeric, Some(false));
}

/// The agent loses, duplicates and reorders its own messages and sees
/// some of pyssm's twice: pyssm's reorder buffer and the fake's
/// retransmission and re-acks must still deliver every byte. (Losing
/// pyssm's messages is not tried: pyssm 0.2.0 keeps no outgoing buffer and
/// never retransmits, so a lost client message stalls the session; the
/// fake's `drop_incoming` is covered by `tests/ssm_agent_knobs.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyssm_port_forward_survives_lost_duplicated_and_reordered_messages() {
    let Some(program) = pyssm() else {
        return;
    };
    let faults = Faults {
        drop_outgoing: [3, 9, 20].into(),
        duplicate_outgoing: [4, 12].into(),
        reorder_outgoing: Some((14, 4)),
        duplicate_incoming: [3, 5, 10].into(),
        ..Faults::default()
    };
    let scenario = AgentScenario {
        faults,
        ..AgentScenario::default()
    };
    let stats = port_forward(&program, scenario).await;
    assert!(stats.duplicates_received >= 3, "{stats:#?}");
    assert!(stats.re_acks_sent >= 3, "{stats:#?}");
    assert!(stats.retransmissions >= 3, "{stats:#?}");
}

/// `pyssm exec` runs a shell session (`Standard_Stream`): it sends its
/// wrapped command as input, reads the output, takes the exit status from
/// an `__SSM_EXIT__:<n>` marker, and ends on `channel_closed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyssm_exec_runs_a_shell_session() {
    let Some(program) = pyssm() else {
        return;
    };
    let control = SsmControlFake::start().await;
    control.add_target(TARGET);
    let scenario = AgentScenario {
        shell_echo: ShellEcho::Silent,
        ..AgentScenario::default()
    };
    let agent = SsmAgentFake::start(&control, scenario).await;
    let mut args = vec!["exec".into()];
    args.extend(aws_args(&control));
    args.extend([
        "--command".into(),
        "uname -a".into(),
        "--timeout".into(),
        "60".into(),
    ]);
    let mut pyssm = Pyssm::spawn(&program, &args);
    let marker = b"__SSM_EXIT__";
    let id = agent
        .wait_for_any(|s| s.shell_input.windows(marker.len()).any(|w| w == marker))
        .await;
    let stats = agent.stats(&id).unwrap();
    let input = String::from_utf8_lossy(&stats.shell_input).into_owned();
    assert!(input.contains("(uname -a)"), "{input:?}");
    assert_eq!(stats.mux, None);
    assert!(agent.send_stream(
        &id,
        1,
        b"Linux fake-agent 6.1.0 x86_64 GNU/Linux\r\n__SSM_EXIT__:3\r\n".to_vec(),
    ));
    agent.wait_for(&id, |s| s.unacked == 0).await;
    assert!(agent.close_channel(&id, "command finished"));
    let status = tokio::task::spawn_blocking(move || {
        let status = pyssm.child.wait().unwrap();
        (status, pyssm)
    });
    let (status, pyssm) = tokio::time::timeout(Duration::from_secs(60), status)
        .await
        .expect("pyssm exec did not end after channel_closed")
        .unwrap();
    let output = pyssm.output();
    assert_eq!(status.code(), Some(3), "{output}");
    assert!(output.contains("Linux fake-agent"), "{output}");
    let record = control.session(&id).unwrap();
    assert_eq!(record.document_name, None);
    assert_eq!(record.status, SessionStatus::Terminated);
}
