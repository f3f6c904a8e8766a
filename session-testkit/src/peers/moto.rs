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
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub use super::http::HttpResponse;
use super::http::http_request;
use super::process::{self, PeerProcess, StartError, Stdin};
use super::{PYTHON_ENV, path_from, require_peer, venv_script};

/// How long [`MotoBuilder::start`] waits for a new server to answer.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

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
    let python = path_from(PYTHON_ENV, python)?;
    let file_name = format!("{script}{}", std::env::consts::EXE_SUFFIX);
    venv_script(&python, &file_name, "moto[server]")
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
        process::start_on_free_port("moto_server", bin.display(), |port| {
            self.try_start(bin, port)
        })
    }

    fn try_start(&self, bin: &Path, port: u16) -> Result<MotoServer, StartError> {
        let dir = process::temp_dir("moto-server-")?;
        let mut cmd = Command::new(bin);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(dir.path())
            .env("PYTHONUNBUFFERED", "1");
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        let mut process = PeerProcess::spawn(cmd, dir, "moto_server.log", Stdin::Null)?;

        // Ready = our process is alive, says it bound *this* port, and the port
        // answers the probe. The log check matters: when another process took
        // the port first (another moto, say), the probe alone could be
        // answered by that one while ours is still importing.
        let bound = format!("Running on http://127.0.0.1:{port}");
        process.wait_until_ready(self.startup_timeout, |log| {
            if log.contains(&bound)
                && http_request(port, "GET", PROBE_PATH, b"").is_ok_and(|r| r.status == 200)
            {
                Ok(())
            } else {
                Err(format!(
                    "GET {PROBE_PATH} on port {port} did not answer 200"
                ))
            }
        })?;
        Ok(MotoServer { process, port })
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
    process: PeerProcess,
    port: u16,
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
        self.process.pid()
    }

    /// The file that receives the server's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }

    /// What the server has written to stdout and stderr so far.
    pub fn log(&self) -> String {
        self.process.log()
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
                self.process.log_tail()
            ),
            Err(e) => panic!(
                "POST /moto-api/reset failed: {e}; moto's log:\n{}",
                self.process.log_tail()
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

#[cfg(test)]
mod tests {
    use super::*;

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
        use crate::peers::process::fake_program;

        fn with_fake(body: &str, test: impl FnOnce(&Path)) {
            fake_program::with("moto_server", body, |_, bin| test(bin));
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
                    let message = fake_program::failed_start_message(
                        "a silent server must not count as started",
                        || {
                            MotoBuilder::default()
                                .env("MOTO_ACCOUNT_ID", "111122223333")
                                .startup_timeout(Duration::from_millis(500))
                                .start_bin(bin)
                        },
                    );
                    assert!(message.contains("did not answer 200 within"), "{message}");
                    // The log tail shows the env and the port argument.
                    assert!(message.contains("111122223333 listening on "), "{message}");
                },
            );
        }
    }
}
