//! The boundary-go peer: Boundary's connect proxy on the real (≤ 0.13)
//! worker's stack, Go `crypto/tls` + `nhooyr.io/websocket` 1.8.7 +
//! protowire, built by `./scripts/test` from
//! `session-testkit/peers/boundary-go/`.
//!
//! - [`GoWorker`]: `boundary-go worker`, a stand-in worker run as a child
//!   (killed on drop), fed sessions on stdin, reporting events on stdout.
//! - [`run_client`]: `boundary-go client`, one proxied connection against
//!   any worker (e.g. the Rust
//!   [`FakeWorker`](crate::fakes::boundary::worker::FakeWorker)), its outcome
//!   parsed from its JSON line.
//!
//! ```no_run
//! # async fn demo(session: session_testkit::fakes::boundary::cluster::SessionCredentials) {
//! use session_testkit::peers::{boundary_go, require_peer};
//!
//! let Some(binary) = require_peer("boundary-go", boundary_go::boundary_go) else {
//!     return;
//! };
//! let mut worker = boundary_go::GoWorker::start(&binary).await;
//! worker.add_session(&session).await;
//! let run = boundary_go::ClientRun::new("abcdefghijklmnopqrst");
//! let outcome = boundary_go::run_client(&binary, &worker.address(), &session, &run).await;
//! assert_eq!(outcome.stage, "handshake");
//! # }
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

use super::{is_executable, path_from};
use crate::fakes::boundary::cluster::SessionCredentials;

/// Environment variable holding the boundary-go binary.
pub const BOUNDARY_GO_ENV: &str = "SESSION_PEERS_BOUNDARY_GO";

/// How long a start or a client run may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A probe for [`require_peer`](super::require_peer): the boundary-go
/// binary, at `$SESSION_PEERS_BOUNDARY_GO`, else at
/// `$SESSION_PEERS_DIR/bin/boundary-go`.
///
/// # Errors
///
/// Why the binary is not available (unset, missing, not executable).
pub fn boundary_go() -> Result<PathBuf, String> {
    boundary_go_from(
        std::env::var_os(BOUNDARY_GO_ENV),
        std::env::var_os("SESSION_PEERS_DIR"),
    )
}

fn boundary_go_from(value: Option<OsString>, dir: Option<OsString>) -> Result<PathBuf, String> {
    let path = match path_from(BOUNDARY_GO_ENV, value) {
        Ok(path) => path,
        Err(_) => path_from("SESSION_PEERS_DIR", dir)
            .map(|dir| dir.join("bin").join("boundary-go"))
            .map_err(|_| format!("neither ${BOUNDARY_GO_ENV} nor $SESSION_PEERS_DIR is set"))?,
    };
    if is_executable(&path) {
        Ok(path)
    } else {
        Err(format!(
            "{} is not an executable file (Go or nhooyr.io/websocket missing, or the build \
             failed)",
            path.display()
        ))
    }
}

/// A session as boundary-go reads it (one JSON line). It holds the private
/// key: it only goes to the child's stdin or a private temp file.
fn session_json(session: &SessionCredentials) -> String {
    serde_json::json!({
        "session_id": session.session_id,
        "certificate": STANDARD.encode(&session.certificate_der),
        "private_key": STANDARD.encode(&session.private_key_pkcs8),
        "connection_limit": session.connection_limit,
        "expiration": session.expiration.format(&Rfc3339).expect("format an expiration"),
        "endpoint": session.endpoint,
    })
    .to_string()
}

/// `boundary-go worker` running as a child; killed when dropped.
pub struct GoWorker {
    _child: Child,
    stdin: ChildStdin,
    address: String,
    events: Arc<Mutex<Vec<String>>>,
}

impl std::fmt::Debug for GoWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoWorker")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl GoWorker {
    /// Starts `binary worker -listen 127.0.0.1:0` and waits for its
    /// `listening ADDR` line.
    ///
    /// # Panics
    ///
    /// When it cannot start or does not report its address in time.
    pub async fn start(binary: &Path) -> Self {
        let mut child = Command::new(binary)
            .args(["worker", "-listen", "127.0.0.1:0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = events.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                seen.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        let mut worker = Self {
            _child: child,
            stdin,
            address: String::new(),
            events,
        };
        let listening = worker
            .wait_for_event(TIMEOUT, |e| e.starts_with("listening "))
            .await
            .expect("boundary-go worker did not report `listening ADDR`");
        worker.address = listening["listening ".len()..].to_owned();
        worker
    }

    /// Gives the worker a session (pending, no TOFU token yet) and waits
    /// until it has taken it.
    ///
    /// # Panics
    ///
    /// When the worker refuses the session or does not answer in time.
    pub async fn add_session(&mut self, session: &SessionCredentials) {
        let mut line = session_json(session);
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("write to boundary-go's stdin");
        self.stdin.flush().await.expect("flush boundary-go's stdin");
        let want = format!("session {}", session.session_id);
        let got = self
            .wait_for_event(TIMEOUT, |e| e == want || e.starts_with("bad-session"))
            .await;
        assert_eq!(got.as_deref(), Some(want.as_str()), "boundary-go worker");
    }

    /// `"127.0.0.1:PORT"`.
    pub fn address(&self) -> String {
        self.address.clone()
    }

    /// Every line the worker printed so far (`activated s_…`,
    /// `handshake s_… ok left N`, `handshake s_… close CODE REASON`,
    /// `connection s_… up N down M`, `canceled s_…`, …).
    pub fn events(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits (up to `timeout`) for a line that `matches`.
    pub async fn wait_for_event(
        &self,
        timeout: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let poll = async {
            loop {
                if let Some(found) = self.events().into_iter().find(|e| matches(e)) {
                    return found;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(timeout, poll).await.ok()
    }
}

/// What one `boundary-go client` run does.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientRun {
    /// The TOFU token to send.
    pub tofu: String,
    /// Send `SESSION_CANCEL`.
    pub cancel: bool,
    /// Bytes to send after the handshake and expect echoed (0: none).
    pub send: usize,
    /// Bytes per write, one binary message each.
    pub write_size: usize,
    /// Present no client certificate.
    pub no_cert: bool,
    /// Offer only `http/1.1` in ALPN (no session id).
    pub no_alpn_session: bool,
    /// The SNI to send (`None`: none, as for an IP-literal address).
    pub sni: Option<String>,
}

impl std::fmt::Debug for ClientRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRun")
            .field("cancel", &self.cancel)
            .field("send", &self.send)
            .field("write_size", &self.write_size)
            .field("no_cert", &self.no_cert)
            .field("no_alpn_session", &self.no_alpn_session)
            .field("sni", &self.sni)
            .finish_non_exhaustive()
    }
}

impl ClientRun {
    /// A plain first connection with `tofu`: handshake only, 16 KiB writes
    /// if data is added.
    pub fn new(tofu: &str) -> Self {
        Self {
            tofu: tofu.to_owned(),
            cancel: false,
            send: 0,
            write_size: 16 * 1024,
            no_cert: false,
            no_alpn_session: false,
            sni: None,
        }
    }
}

/// The client's JSON line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ClientOutcome {
    /// How far it got: `setup`, `tls`, `upgrade`, `handshake` (result
    /// received, or closed during the handshake), `data`, `done` (all data
    /// echoed).
    pub stage: String,
    /// The error text, if it stopped on one.
    pub error: Option<String>,
    /// The close code received, if any.
    pub close_code: Option<u16>,
    /// The close reason received, if any.
    pub close_reason: Option<String>,
    /// The negotiated ALPN protocol.
    pub alpn: Option<String>,
    /// `HandshakeResult.expiration`, RFC 3339.
    pub expiration: Option<String>,
    /// `HandshakeResult.connection_limit`.
    pub connection_limit: i32,
    /// `HandshakeResult.connections_left`.
    pub connections_left: i32,
    /// Bytes echoed back intact.
    pub echoed: usize,
}

/// Runs `binary client` once against `worker` (`host:port`) for `session`.
///
/// # Panics
///
/// When the client cannot run, times out, or prints no JSON line.
pub async fn run_client(
    binary: &Path,
    worker: &str,
    session: &SessionCredentials,
    run: &ClientRun,
) -> ClientOutcome {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("session.json");
    std::fs::write(&file, session_json(session)).expect("write the session file");
    let mut command = Command::new(binary);
    command
        .arg("client")
        .args(["-worker", worker])
        .arg("-session")
        .arg(&file)
        .args(["-tofu", &run.tofu])
        .args(["-send", &run.send.to_string()])
        .args(["-write-size", &run.write_size.to_string()])
        .kill_on_drop(true);
    if run.cancel {
        command.arg("-cancel");
    }
    if run.no_cert {
        command.arg("-no-cert");
    }
    if run.no_alpn_session {
        command.arg("-no-alpn-session");
    }
    if let Some(sni) = &run.sni {
        command.args(["-sni", sni]);
    }
    let output = tokio::time::timeout(TIMEOUT, command.output())
        .await
        .expect("boundary-go client timed out")
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "boundary-go client printed no outcome ({e}): stdout {stdout:?}, stderr {:?}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_is_looked_up_in_its_variable_then_in_the_peers_dir() {
        let err = boundary_go_from(None, None).unwrap_err();
        assert!(err.contains(BOUNDARY_GO_ENV), "{err}");
        let dir = tempfile::tempdir().expect("tempdir");
        let err = boundary_go_from(None, Some(dir.path().into())).unwrap_err();
        assert!(err.contains("bin/boundary-go"), "{err}");
    }
}
