//! The moto test peer: a real local STS/IAM endpoint ([`MotoServer`]).
//!
//! It comes from the peers' Python venv that `./scripts/test` installs from
//! `scripts/peers/requirements.txt` (`moto[server]`), and is looked up through
//! [`require_peer`]: when it is missing, a test fails in CI and is skipped
//! loudly elsewhere. Its usual client is
//! [`Botocore`](crate::readers::botocore::Botocore), the AWS SDK for Python
//! run as a subprocess.
//!
//! ```no_run
//! use session_testkit::peers::moto::MotoServer;
//! use session_testkit::readers::botocore::Botocore;
//!
//! let Some(moto) = MotoServer::builder().env("MOTO_ACCOUNT_ID", "111122223333").start() else {
//!     return; // skipped outside CI; would have panicked in CI
//! };
//! let Some(botocore) = Botocore::new() else { return };
//! let account: String = botocore
//!     .script(
//!         "import boto3, json\n\
//!          sts = boto3.client('sts', region_name='us-east-1')\n\
//!          print(json.dumps(sts.get_caller_identity()['Account']))",
//!     )
//!     .endpoint_url(moto.endpoint_url())
//!     .env("AWS_ACCESS_KEY_ID", "testing")
//!     .env("AWS_SECRET_ACCESS_KEY", "testing")
//!     .run()
//!     .json();
//! assert_eq!(account, "111122223333");
//! moto.reset(); // wipe all of moto's state between tests
//! ```
//!
//! The API is blocking: starting a server polls it for up to
//! [`DEFAULT_STARTUP_TIMEOUT`]. Call it from sync tests, or through
//! `tokio::task::spawn_blocking` from async ones.
//!
//! Notes on moto itself (what it checks and what it does not) are in the
//! project's AWS reference, section 7.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::peers::process::{StartError, free_port, tail};
use crate::peers::{PYTHON_ENV, require_peer};

/// How long [`MotoBuilder::start`] waits for a new server to answer.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// How many ports [`MotoBuilder::start`] tries when the free port it picked
/// was taken by someone else before moto could bind it.
const PORT_ATTEMPTS: usize = 5;

/// How many lines of moto's log a start failure quotes.
const LOG_TAIL_LINES: usize = 40;

/// The readiness probe of a moto server.
const PROBE_PATH: &str = "/moto-api/data.json";

/// A probe for [`require_peer`]: the `moto_server` script of the peers' venv,
/// in the same folder as `$SESSION_PEERS_PYTHON`.
///
/// # Errors
///
/// Why it is not available.
pub fn moto_server_bin() -> Result<PathBuf, String> {
    script_next_to_python(std::env::var_os(PYTHON_ENV), "moto_server")
}

fn script_next_to_python(python: Option<OsString>, script: &str) -> Result<PathBuf, String> {
    let python = match python {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => return Err(format!("${PYTHON_ENV} is not set")),
    };
    // Not canonicalized: a venv's `bin/python` is a symlink to the base
    // interpreter, whose folder has no `moto_server`.
    let dir = python
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .ok_or_else(|| format!("${PYTHON_ENV} = {} has no folder", python.display()))?;
    let bin = dir.join(format!("{script}{}", std::env::consts::EXE_SUFFIX));
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "{} is not a file (moto[server] is not installed in the peers' venv)",
            bin.display()
        ))
    }
}

/// Options for starting a [`MotoServer`]; from [`MotoServer::builder`].
#[derive(Debug, Clone)]
pub struct MotoBuilder {
    env: Vec<(OsString, OsString)>,
    startup_timeout: Duration,
}

impl Default for MotoBuilder {
    fn default() -> Self {
        Self {
            env: Vec::new(),
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
        }
    }
}

impl MotoBuilder {
    /// Sets an environment variable of the server process (on top of the
    /// test's own environment), e.g. `MOTO_ACCOUNT_ID` or
    /// `INITIAL_NO_AUTH_ACTION_COUNT`.
    #[must_use]
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// How long to wait for the server to answer (default
    /// [`DEFAULT_STARTUP_TIMEOUT`]).
    #[must_use]
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Starts `moto_server` on a free port of 127.0.0.1 and waits until it
    /// answers `GET /moto-api/data.json` with 200.
    ///
    /// Returns `None` when moto is not installed and the test runs outside CI
    /// (see [`require_peer`]); the test should then return early.
    ///
    /// # Panics
    ///
    /// In CI when moto is not installed; and whenever moto is installed but
    /// does not come up within the startup timeout (quoting its log).
    pub fn start(self) -> Option<MotoServer> {
        let bin = require_peer("moto", moto_server_bin)?;
        Some(self.start_bin(&bin))
    }

    fn start_bin(&self, bin: &Path) -> MotoServer {
        let mut attempt = 1;
        loop {
            match self.try_start(bin) {
                Ok(server) => return server,
                Err(StartError::PortTaken { port, tail }) if attempt < PORT_ATTEMPTS => {
                    eprintln!(
                        "moto_server: port {port} was taken before it could bind it \
                         (attempt {attempt} of {PORT_ATTEMPTS}); trying another port. \
                         Its log:\n{tail}"
                    );
                    attempt += 1;
                }
                Err(StartError::PortTaken { port, tail }) => panic!(
                    "moto_server ({}) could not bind a free port in {PORT_ATTEMPTS} attempts; \
                     the last was {port}. The end of its log:\n{tail}",
                    bin.display()
                ),
                Err(StartError::Failed { reason, tail }) => panic!(
                    "moto_server ({}) did not start: {reason}. The end of its log:\n{tail}",
                    bin.display()
                ),
            }
        }
    }

    fn try_start(&self, bin: &Path) -> Result<MotoServer, StartError> {
        let dir = tempfile::Builder::new()
            .prefix("moto-server-")
            .tempdir()
            .map_err(|e| StartError::failed(format!("cannot create a temp dir: {e}")))?;
        let log_path = dir.path().join("moto_server.log");
        let log = File::create(&log_path).map_err(|e| {
            StartError::failed(format!("cannot create {}: {e}", log_path.display()))
        })?;
        let log_err = log
            .try_clone()
            .map_err(|e| StartError::failed(format!("cannot clone the log handle: {e}")))?;
        let port =
            free_port().map_err(|e| StartError::failed(format!("cannot find a free port: {e}")))?;

        let mut cmd = Command::new(bin);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .env("PYTHONUNBUFFERED", "1");
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        let child = cmd
            .spawn()
            .map_err(|e| StartError::failed(format!("cannot run {}: {e}", bin.display())))?;
        // From here on, dropping `server` kills and reaps the process.
        let mut server = MotoServer {
            child,
            port,
            log_path,
            _dir: dir,
        };

        // Ready = our process is alive, says it bound *this* port, and the port
        // answers the probe. The log check matters: when another process took
        // the port first (another moto, say), the probe alone could be
        // answered by that one while ours is still importing.
        let bound = format!("Running on http://127.0.0.1:{port}");
        let deadline = Instant::now() + self.startup_timeout;
        loop {
            match server.child.try_wait() {
                Ok(Some(status)) => {
                    let log = server.log();
                    let tail = tail(&log, LOG_TAIL_LINES);
                    return Err(
                        if log.contains("Address already in use") || log.contains("is in use") {
                            StartError::PortTaken { port, tail }
                        } else {
                            StartError::Failed {
                                reason: format!("it exited ({status}) before it was ready"),
                                tail,
                            }
                        },
                    );
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(StartError::Failed {
                        reason: format!("cannot check on it: {e}"),
                        tail: tail(&server.log(), LOG_TAIL_LINES),
                    });
                }
            }
            if server.log().contains(&bound)
                && server
                    .request("GET", PROBE_PATH, b"")
                    .is_ok_and(|r| r.status == 200)
            {
                return Ok(server);
            }
            if Instant::now() >= deadline {
                return Err(StartError::Failed {
                    reason: format!(
                        "GET {PROBE_PATH} on port {port} did not answer 200 within {:?}",
                        self.startup_timeout
                    ),
                    tail: tail(&server.log(), LOG_TAIL_LINES),
                });
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A running `moto_server` on 127.0.0.1, serving every AWS service moto
/// implements on one port. One per test (or per test binary, with
/// [`reset`](Self::reset) between tests).
///
/// Dropping it kills the process (by its own PID, never by name) and reaps it;
/// its temp dir, with the log, goes too.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    port: u16,
    log_path: PathBuf,
    _dir: TempDir,
}

impl MotoServer {
    /// [`MotoBuilder::start`] with the default options: a server on a free
    /// port, or `None` when moto is missing outside CI.
    ///
    /// # Panics
    ///
    /// As [`MotoBuilder::start`].
    pub fn start() -> Option<Self> {
        Self::builder().start()
    }

    /// Options for a server (environment, startup timeout).
    pub fn builder() -> MotoBuilder {
        MotoBuilder::default()
    }

    /// The port the server listens on (of 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The endpoint for AWS clients: `http://127.0.0.1:PORT`.
    pub fn endpoint_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The file that receives the server's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// What the server has written to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Wipes all of moto's state (`POST /moto-api/reset`).
    ///
    /// # Panics
    ///
    /// When the server does not answer 200.
    pub fn reset(&self) {
        match self.request("POST", "/moto-api/reset", b"") {
            Ok(r) if r.status == 200 => {}
            Ok(r) => panic!(
                "POST /moto-api/reset answered {} ({}); moto's log:\n{}",
                r.status,
                r.text(),
                tail(&self.log(), LOG_TAIL_LINES)
            ),
            Err(e) => panic!(
                "POST /moto-api/reset failed: {e}; moto's log:\n{}",
                tail(&self.log(), LOG_TAIL_LINES)
            ),
        }
    }

    /// Sends one plain HTTP/1.1 request to the server, e.g.
    /// `request("POST", "/moto-api/reset-auth", b"0")` to switch moto's auth
    /// checks on. Requests to AWS APIs need SigV4 signing: use an SDK
    /// ([`Botocore`](crate::readers::botocore::Botocore), or the Rust SDK with [`endpoint_url`](Self::endpoint_url)).
    ///
    /// # Errors
    ///
    /// When the connection fails or the answer is not HTTP.
    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> io::Result<HttpResponse> {
        http_request(self.port, method, path, body)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        // `Child::kill` signals the PID we spawned; it cannot have been reused
        // since the process is not reaped until `wait` below.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An answer of [`MotoServer::request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

// The HTTP client is raw HTTP/1.1 over `std::net::TcpStream`, not a crate such
// as ureq: it only ever sends a GET or POST with `Connection: close` to a moto
// on 127.0.0.1 and reads a status line and a small body. That is fifty lines,
// against a dependency tree (with its Cargo.lock churn) in a crate every test
// binary links.
fn http_request(port: u16, method: &str, path: &str, body: &[u8]) -> io::Result<HttpResponse> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_response(raw: &[u8]) -> io::Result<HttpResponse> {
    let end = find(raw, b"\r\n\r\n").ok_or_else(|| invalid("no end of the HTTP headers"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| invalid("HTTP head not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err(invalid(format!(
            "not an HTTP/1 status line: {status_line:?}"
        )));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| invalid(format!("no status code in {status_line:?}")))?;
    let chunked = lines.any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("transfer-encoding")
                && value.to_ascii_lowercase().contains("chunked")
        })
    });
    let body = &raw[end + 4..];
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok(HttpResponse { status, body })
}

fn dechunk(mut rest: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = find(rest, b"\r\n").ok_or_else(|| invalid("truncated chunk size"))?;
        let size = std::str::from_utf8(&rest[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
            .ok_or_else(|| invalid("bad chunk size"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if rest.len() < size + 2 {
            return Err(invalid("truncated chunk"));
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn parses_a_plain_response() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "{}");
    }

    #[test]
    fn parses_a_chunked_response() {
        let raw = b"HTTP/1.1 404 NOT FOUND\r\ntransfer-encoding: Chunked\r\n\r\n\
                    3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        let r = parse_response(raw).unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(r.body, b"abcde");
    }

    #[test]
    fn rejects_what_is_not_http() {
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 abc OK\r\n\r\n").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab")
                .is_err()
        );
    }

    #[test]
    fn http_request_talks_to_a_local_server() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while find(&request, b"\r\n\r\nhi").is_none() {
                let n = conn.read(&mut buf).unwrap();
                assert_ne!(n, 0, "request ended early: {request:?}");
                request.extend_from_slice(&buf[..n]);
            }
            conn.write_all(b"HTTP/1.1 201 CREATED\r\nConnection: close\r\n\r\nok")
                .unwrap();
            String::from_utf8(request).unwrap()
        });
        let r = http_request(port, "POST", "/moto-api/reset", b"hi").unwrap();
        assert_eq!((r.status, r.text().as_str()), (201, "ok"));
        let request = server.join().unwrap();
        assert!(
            request.starts_with("POST /moto-api/reset HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(request.contains("Content-Length: 2\r\n"), "{request}");
        assert!(request.contains("Connection: close\r\n"), "{request}");
    }

    #[test]
    fn moto_server_is_looked_up_next_to_python() {
        assert!(
            script_next_to_python(None, "moto_server")
                .unwrap_err()
                .contains("not set")
        );
        let dir = tempfile::tempdir().unwrap();
        let python = dir.path().join("python");
        let bin = dir
            .path()
            .join(format!("moto_server{}", std::env::consts::EXE_SUFFIX));
        let err = script_next_to_python(Some(python.clone().into()), "moto_server").unwrap_err();
        assert!(err.contains("not installed"), "{err}");
        std::fs::write(&bin, "").unwrap();
        assert_eq!(
            script_next_to_python(Some(python.into()), "moto_server"),
            Ok(bin)
        );
    }

    /// Fake `moto_server`s (shell scripts) for the failure paths of
    /// `MotoBuilder::start`.
    #[cfg(unix)]
    mod fake_server {
        use super::*;
        use std::os::unix::fs::PermissionsExt;
        use std::sync::Mutex;

        /// Held while writing and running a fake: a fork by another test
        /// while one is open for writing would make its exec fail
        /// (ETXTBSY) under `cargo test`, whose tests share a process.
        static SPAWN: Mutex<()> = Mutex::new(());

        fn with_fake(body: &str, test: impl FnOnce(&Path)) {
            let _guard = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
            let dir = tempfile::tempdir().unwrap();
            let bin = dir.path().join("moto_server");
            std::fs::write(&bin, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
            test(&bin);
        }

        #[test]
        #[should_panic(expected = "could not bind a free port in 5 attempts")]
        fn a_port_taken_every_time_gives_up_after_5_attempts() {
            with_fake(
                "echo \"args: $*\"\necho 'OSError: [Errno 98] Address already in use' >&2\nexit 1",
                |bin| {
                    MotoBuilder::default().start_bin(bin);
                },
            );
        }

        #[test]
        #[should_panic(expected = "ImportError: no module named moto")]
        fn an_early_exit_quotes_the_log() {
            with_fake(
                "echo 'ImportError: no module named moto' >&2\nexit 1",
                |bin| {
                    MotoBuilder::default().start_bin(bin);
                },
            );
        }

        #[test]
        fn a_server_that_never_answers_times_out_and_is_killed() {
            with_fake(
                "echo \"$MOTO_ACCOUNT_ID listening on $4\"\nexec sleep 30",
                |bin| {
                    let started = Instant::now();
                    let panic = std::panic::catch_unwind(|| {
                        MotoBuilder::default()
                            .env("MOTO_ACCOUNT_ID", "111122223333")
                            .startup_timeout(Duration::from_millis(500))
                            .start_bin(bin)
                    })
                    .expect_err("a silent server must not count as started");
                    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
                    assert!(message.contains("did not answer 200 within"), "{message}");
                    // The log tail shows the env and the port argument.
                    assert!(message.contains("111122223333 listening on "), "{message}");
                    assert!(started.elapsed() < Duration::from_secs(10));
                },
            );
        }
    }
}
