//! The sushy-emulator test peer: OpenStack's Redfish emulator (PyPI package
//! `sushy-tools`), run on 127.0.0.1 with HTTP Basic authentication, HTTPS and
//! its fake (in-memory) systems driver ([`SushyEmulator`]).
//!
//! It is a real third-party Redfish service that has **no `SessionService`**:
//! a Redfish client can only authenticate to it with HTTP Basic, which makes it
//! the peer for a client's Basic-auth fallback.
//!
//! It comes from the peers' Python venv that `./scripts/test` installs from
//! `scripts/peers/requirements.txt` (`sushy-tools`, which brings `bcrypt`;
//! `cryptography` comes with `moto`), and is looked up through
//! [`require_peer`]: when it is missing, a test fails in CI and is skipped
//! loudly elsewhere.
//!
//! ```no_run
//! use session_testkit::peers::sushy::SushyEmulator;
//!
//! let Some(sushy) = SushyEmulator::start() else {
//!     return; // skipped outside CI; would have panicked in CI
//! };
//! // e.g. https://127.0.0.1:PORT; trust `cert_pem()`, send Basic credentials.
//! let systems_url = sushy.url("/redfish/v1/Systems");
//! let (user, password) = (sushy.username(), sushy.password());
//! let ca_pem: &str = sushy.cert_pem().expect("HTTPS is the default");
//! # let _ = (systems_url, user, password, ca_pem);
//! // With reqwest: Client::builder()
//! //     .add_root_certificate(Certificate::from_pem(ca_pem.as_bytes())?)
//! //     ... .get(systems_url).basic_auth(user, Some(password))
//! ```
//!
//! The API is blocking: starting polls the emulator for up to
//! [`DEFAULT_STARTUP_TIMEOUT`]. Call it from sync tests, or through
//! `tokio::task::spawn_blocking` from async ones.
//!
//! # What the emulator serves
//!
//! As observed with `sushy-tools` 2.2.0 (`sushy_tools/emulator/main.py`) and
//! checked by `session-testkit/tests/sushy_emulator.rs`:
//!
//! * `GET /redfish/v1/` (also without the trailing slash) is **public**:
//!   sushy's auth middleware exempts `/`, `/redfish` and `/redfish/v1`. It
//!   answers 200 with a `ServiceRoot.v1_5_0` (`RedfishVersion` 1.5.0) that
//!   links `Systems`, `Managers`, `Chassis`, `Registries`,
//!   `CertificateService` and `UpdateService`, and has **no `SessionService`,
//!   no `AccountService` and no `Links.Sessions`**. (`/redfish` and `/`
//!   answer 404: there is no version document.)
//! * Every other path needs HTTP Basic credentials. Without an
//!   `Authorization` header (an `X-Auth-Token` header alone counts as none),
//!   or with a wrong user name or password, it answers 401 with
//!   `WWW-Authenticate: Basic realm="Baremetal API"` and a Redfish error
//!   body. Authentication happens before routing, so unknown paths answer
//!   401 without credentials too.
//! * With valid credentials, `/redfish/v1/SessionService` and
//!   `/redfish/v1/SessionService/Sessions` answer **404** to `GET` and
//!   `POST` alike: there is no way to create a session; clients must send
//!   Basic on every request.
//! * An `Authorization` header of another scheme (`Bearer ...`) or with an
//!   undecodable Basic token answers **500** (an HTML page): sushy-tools
//!   raises its 400 error there, and its error formatter then fails on it.
//! * The fake driver serves one system, [`FAKE_SYSTEM_UUID`] (name
//!   [`FAKE_SYSTEM_NAME`], power `Off`), under `/redfish/v1/Systems`, with one
//!   manager of the same id under `/redfish/v1/Managers`, and a static
//!   `/redfish/v1/Chassis`. The fake driver keeps what clients change (power
//!   state, boot settings, ...) in sqlite files under this value's temp dir,
//!   not in sushy's shared default `/tmp/sushy-emulator`. More systems:
//!   [`SushyBuilder::config`] with `SUSHY_EMULATOR_FAKE_SYSTEMS` (see
//!   `sushy_tools/emulator/resources/systems/fakedriver.py`).
//! * HTTPS is **TLS 1.2 only** (sushy builds an `ssl.PROTOCOL_TLSv1_2`
//!   context), so a rustls client needs its `tls12` feature.
//!
//! # Configuration used
//!
//! `sushy-emulator --config FILE`, where FILE (a Python file read by Flask's
//! `config.from_pyfile`) sets: `SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'`,
//! `SUSHY_EMULATOR_LISTEN_PORT` (a free port), `SUSHY_EMULATOR_FAKE_DRIVER =
//! True` (the fake driver: no libvirt, no OpenStack),
//! `SUSHY_EMULATOR_STATE_DIR` (its sqlite state, otherwise shared in
//! `/tmp/sushy-emulator`), `SUSHY_EMULATOR_AUTH_FILE` (an htpasswd file with
//! one bcrypt entry: sushy accepts only `$2a$`/`$2b$`/`$2y$` digests; this one
//! uses 4 rounds so that checking it on every request is cheap) and, for
//! HTTPS, `SUSHY_EMULATOR_SSL_CERT` / `SUSHY_EMULATOR_SSL_KEY` (a server
//! certificate for `127.0.0.1` and `localhost`, issued by a throwaway CA whose
//! PEM is [`SushyEmulator::cert_pem`]).

use std::ffi::OsString;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::http::http_get_status;
use super::process::{self, PeerProcess, StartError, Stdin};
use super::{PYTHON_ENV, Redacted, python_from, require_peer, venv_script};

mod setup;

use setup::{WATCHDOG_SCRIPT, is_identifier};

/// How long [`SushyBuilder::start`] waits for a new emulator to answer.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The user name of the emulator's only account, unless
/// [`SushyBuilder::username`] says otherwise.
pub const DEFAULT_USERNAME: &str = "admin";

/// The id (a UUID) of the one system the fake driver serves by default; also
/// the id of its manager.
pub const FAKE_SYSTEM_UUID: &str = "27946b59-9e44-4fa7-8e91-f3527a1ef094";

/// The `Name` of the one system the fake driver serves by default. Requests
/// by name (`/redfish/v1/Systems/fake`) are redirected (307) to the UUID.
pub const FAKE_SYSTEM_NAME: &str = "fake";

/// bcrypt only looks at the first 72 bytes of a password (and the `bcrypt`
/// module refuses longer ones).
const MAX_PASSWORD_BYTES: usize = 72;

/// A probe for [`require_peer`]: the `sushy-emulator` script of the peers'
/// venv, in the same folder as `$SESSION_PEERS_PYTHON`.
///
/// # Errors
///
/// Why it is not available.
pub fn sushy_emulator_bin() -> Result<PathBuf, String> {
    peer_from(std::env::var_os(PYTHON_ENV)).map(|peer| peer.script)
}

/// The venv's interpreter and its `sushy-emulator` script.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Peer {
    python: PathBuf,
    script: PathBuf,
}

fn peer_from(python: Option<OsString>) -> Result<Peer, String> {
    let python = python_from(python)?;
    let script = venv_script(&python, "sushy-emulator", "sushy-tools")?;
    Ok(Peer { python, script })
}

/// Options for starting a [`SushyEmulator`]; from [`SushyEmulator::builder`].
#[derive(Clone, Debug)]
pub struct SushyBuilder {
    username: String,
    password: Option<Redacted>,
    https: bool,
    config: Vec<(String, String)>,
    startup_timeout: Duration,
}

impl Default for SushyBuilder {
    fn default() -> Self {
        Self {
            username: DEFAULT_USERNAME.to_owned(),
            password: None,
            https: true,
            config: Vec::new(),
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
        }
    }
}

impl SushyBuilder {
    /// The user name of the emulator's only account (default
    /// [`DEFAULT_USERNAME`]). It must not be empty or contain `:` or a line
    /// break ([`start`](Self::start) panics).
    #[must_use]
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = username.into();
        self
    }

    /// The password of that account (default: a fresh random one, see
    /// [`SushyEmulator::password`]). At most 72 bytes, the most bcrypt
    /// uses ([`start`](Self::start) panics).
    #[must_use]
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(Redacted(password.into()));
        self
    }

    /// Whether to serve HTTPS (the default) or plain HTTP. Over HTTPS,
    /// [`SushyEmulator::cert_pem`] is the CA to trust.
    #[must_use]
    pub fn https(mut self, https: bool) -> Self {
        self.https = https;
        self
    }

    /// Adds `KEY = VALUE` to the emulator's config file, after the entries
    /// this module writes (so it can override them; do not override the
    /// listen address, port, auth file or certificates, or the accessors of
    /// [`SushyEmulator`] will be wrong). `value` is Python source, e.g.
    /// `config("SUSHY_EMULATOR_FEATURE_SET", "'minimum'")` or a list of
    /// dicts for `SUSHY_EMULATOR_FAKE_SYSTEMS`.
    ///
    /// # Panics
    ///
    /// When `key` is not a Python identifier.
    #[must_use]
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        assert!(
            is_identifier(&key),
            "sushy-emulator config key {key:?} is not a Python identifier"
        );
        self.config.push((key, value.into()));
        self
    }

    /// How long to wait for the emulator to answer (default
    /// [`DEFAULT_STARTUP_TIMEOUT`]).
    #[must_use]
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Writes the config, htpasswd and certificate files to a temp dir,
    /// starts `sushy-emulator --config FILE` on a free port of 127.0.0.1 and
    /// waits until it is ready: the process is alive, has logged that it runs
    /// on `SCHEME://127.0.0.1:PORT`, and accepts connections there (over plain
    /// HTTP, also: `GET /redfish/v1/` answers 200).
    ///
    /// Returns `None` when sushy-tools is not installed and the test runs
    /// outside CI (see [`require_peer`]); the test should then return early.
    ///
    /// # Panics
    ///
    /// In CI when sushy-tools is not installed; on invalid credentials (see
    /// [`username`](Self::username), [`password`](Self::password)); and
    /// whenever sushy-tools is installed but the files cannot be generated or
    /// the emulator does not come up within the startup timeout (quoting its
    /// log).
    pub fn start(self) -> Option<SushyEmulator> {
        let peer = require_peer("sushy-emulator (sushy-tools)", || {
            peer_from(std::env::var_os(PYTHON_ENV))
        })?;
        Some(self.start_peer(&peer))
    }

    fn start_peer(&self, peer: &Peer) -> SushyEmulator {
        self.check_credentials();
        process::start_on_free_port("sushy-emulator", peer.script.display(), |port| {
            self.try_start(peer, port)
        })
    }

    fn check_credentials(&self) {
        let user = &self.username;
        assert!(
            !user.is_empty() && !user.contains([':', '\n', '\r']),
            "sushy-emulator user name {user:?} must be non-empty, without ':' or line breaks \
             (it goes into an htpasswd file)"
        );
        if let Some(Redacted(password)) = &self.password {
            assert!(
                password.len() <= MAX_PASSWORD_BYTES,
                "a sushy-emulator password must be at most {MAX_PASSWORD_BYTES} bytes \
                 (bcrypt); this one has {}",
                password.len()
            );
        }
    }

    fn try_start(&self, peer: &Peer, port: u16) -> Result<SushyEmulator, StartError> {
        let dir = process::temp_dir("sushy-emulator-")?;
        let password = self.write_credentials(peer, dir.path())?;
        let cert_pem =
            if self.https {
                let ca = dir.path().join("ca.pem");
                Some(std::fs::read_to_string(&ca).map_err(|e| {
                    StartError::failed(format!("cannot read {}: {e}", ca.display()))
                })?)
            } else {
                None
            };

        let config_path = dir.path().join("emulator.conf");
        std::fs::write(&config_path, self.config_file(dir.path(), port)?).map_err(|e| {
            StartError::failed(format!("cannot write {}: {e}", config_path.display()))
        })?;

        let mut cmd = Command::new(&peer.python);
        cmd.arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg(dir.path())
            .arg(&peer.script)
            .arg("--config")
            .arg(&config_path)
            .current_dir(dir.path())
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            // Read by sushy at import time, before `--config`.
            .env_remove("SUSHY_EMULATOR_CONFIG");
        // Its stdin is the pipe the watchdog watches.
        let mut process = PeerProcess::spawn(cmd, dir, "sushy-emulator.log", Stdin::Held)?;

        // Ready = our process is alive, says it runs on *this* port, and the
        // port accepts connections. The log check matters: when another
        // process took the port first, a connection alone could be accepted
        // by that one while ours is still importing. Werkzeug binds and
        // listens before it logs the line.
        let scheme = if self.https { "https" } else { "http" };
        let base_url = format!("{scheme}://127.0.0.1:{port}");
        let running = format!("Running on {base_url}");
        process.wait_until_ready(self.startup_timeout, |log| {
            if log.contains(&running) && answers(port, self.https) {
                Ok(())
            } else {
                Err(format!(
                    "it did not log \"{running}\" and accept connections"
                ))
            }
        })?;
        Ok(SushyEmulator {
            process,
            port,
            base_url,
            username: self.username.clone(),
            password,
            cert_pem,
            config_path,
        })
    }
}

/// A running sushy-emulator on 127.0.0.1 with the fake driver, HTTP Basic
/// authentication and (by default) HTTPS; see the [module docs](self) for
/// what it serves. One per test, or one per test binary in a `static` (it
/// serves concurrent requests, and its state is only the fake systems).
///
/// Dropping it kills the process (by its own PID, never by name) and reaps
/// it; its temp dir (config, credentials, certificates, state, log) goes too.
/// The emulator also exits by itself, removing that temp dir, when the test
/// process ends without dropping it: it watches a pipe only the test process
/// holds.
pub struct SushyEmulator {
    process: PeerProcess,
    port: u16,
    base_url: String,
    username: String,
    password: String,
    cert_pem: Option<String>,
    config_path: PathBuf,
}

impl fmt::Debug for SushyEmulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SushyEmulator")
            .field("pid", &self.process.pid())
            .field("base_url", &self.base_url)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("https", &self.cert_pem.is_some())
            .field("dir", &self.process.dir())
            .finish()
    }
}

impl SushyEmulator {
    /// [`SushyBuilder::start`] with the default options: HTTPS, user
    /// [`DEFAULT_USERNAME`] with a random password, the fake driver's one
    /// system; or `None` when sushy-tools is missing outside CI.
    ///
    /// # Panics
    ///
    /// As [`SushyBuilder::start`].
    pub fn start() -> Option<Self> {
        Self::builder().start()
    }

    /// Options for an emulator (credentials, HTTP or HTTPS, extra config,
    /// startup timeout).
    pub fn builder() -> SushyBuilder {
        SushyBuilder::default()
    }

    /// Where the Redfish service is: `https://127.0.0.1:PORT` (or `http://`),
    /// without a trailing slash. The service root is
    /// [`url("/redfish/v1/")`](Self::url).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// [`base_url`](Self::base_url) followed by `path` (which starts with
    /// `/`), e.g. `url("/redfish/v1/Systems")`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The port the emulator listens on (of 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user name for HTTP Basic authentication.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The password for HTTP Basic authentication: the one given to
    /// [`SushyBuilder::password`], or a random one made for this emulator
    /// (24 URL-safe characters). A test credential; the `Debug` output of
    /// this value leaves it out all the same.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Over HTTPS, the PEM of the throwaway CA that issued the emulator's
    /// certificate (for `127.0.0.1` and `localhost`): the one root a client
    /// should trust. `None` over plain HTTP.
    pub fn cert_pem(&self) -> Option<&str> {
        self.cert_pem.as_deref()
    }

    /// The file holding [`cert_pem`](Self::cert_pem) (`None` over plain
    /// HTTP), e.g. for Python's `requests` (`verify=`).
    pub fn cert_path(&self) -> Option<PathBuf> {
        self.cert_pem
            .as_ref()
            .map(|_| self.process.dir().join("ca.pem"))
    }

    /// Whether the emulator serves HTTPS.
    pub fn is_https(&self) -> bool {
        self.cert_pem.is_some()
    }

    /// The emulator's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The config file the emulator was started with.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The file that receives the emulator's stdout and stderr (it logs every
    /// request, and tracebacks).
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }

    /// What the emulator has written to stdout and stderr so far.
    pub fn log(&self) -> String {
        self.process.log()
    }
}

/// Whether the emulator on `port` takes connections (over HTTPS) or answers
/// `GET /redfish/v1/` with 200 (over plain HTTP).
fn answers(port: u16, https: bool) -> bool {
    if https {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
    } else {
        http_get_status(port, "/redfish/v1/").is_ok_and(|s| s == 200)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_is_looked_up_next_to_python() {
        assert!(peer_from(None).unwrap_err().contains("not set"));
        assert!(peer_from(Some("".into())).unwrap_err().contains("not set"));
        let dir = tempfile::tempdir().unwrap();
        let python = dir.path().join("python");
        assert!(
            peer_from(Some(python.clone().into()))
                .unwrap_err()
                .contains("not a file")
        );
        std::fs::write(&python, "").unwrap();
        let err = peer_from(Some(python.clone().into())).unwrap_err();
        assert!(err.contains("sushy-tools is not installed"), "{err}");
        let script = dir.path().join("sushy-emulator");
        std::fs::write(&script, "").unwrap();
        assert_eq!(
            peer_from(Some(python.clone().into())),
            Ok(Peer { python, script })
        );
    }

    #[test]
    #[should_panic(expected = "is not a Python identifier")]
    fn config_keys_must_be_identifiers() {
        let _ = SushyBuilder::default().config("A = 1\nB", "2");
    }

    #[test]
    #[should_panic(expected = "without ':'")]
    fn user_names_with_a_colon_are_refused() {
        SushyBuilder::default().username("a:b").check_credentials();
    }

    #[test]
    #[should_panic(expected = "at most 72 bytes")]
    fn long_passwords_are_refused() {
        SushyBuilder::default()
            .password("x".repeat(73))
            .check_credentials();
    }

    #[test]
    fn debug_output_leaves_the_password_out() {
        let text = format!("{:?}", SushyBuilder::default().password(crate::CANARY));
        assert!(!text.contains(crate::CANARY), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }

    /// Fake `sushy-emulator`s (shell scripts run by a fake "python") for the
    /// failure paths of `SushyBuilder::start`.
    #[cfg(unix)]
    mod fake_emulator {
        use super::*;
        use crate::peers::process::fake_program;

        /// `python` is a shell script: for the setup script (`-c SCRIPT DIR
        /// USER SCHEME`) it writes an empty `ca.pem` and prints a password;
        /// for the emulator (`-c WATCHDOG DIR sushy-emulator --config FILE`)
        /// it runs `body`.
        fn with_fake(body: &str, test: impl FnOnce(&Peer)) {
            let python = format!(
                "case \"$4\" in\n\
                 *sushy-emulator) ;;\n\
                 *) : > \"$3/ca.pem\"; echo '{{\"password\": \"pw\"}}'; exit 0 ;;\n\
                 esac\n\
                 {body}"
            );
            fake_program::with("python", &python, |dir, python| {
                let script = dir.join("sushy-emulator");
                std::fs::write(&script, "").unwrap();
                test(&Peer {
                    python: python.to_owned(),
                    script,
                });
            });
        }

        #[test]
        #[should_panic(expected = "could not bind a free port in 5 attempts")]
        fn a_port_taken_every_time_gives_up_after_5_attempts() {
            with_fake(
                "echo 'OSError: [Errno 98] Address already in use' >&2\nexit 1",
                |peer| {
                    SushyBuilder::default().start_peer(peer);
                },
            );
        }

        #[test]
        #[should_panic(expected = "ModuleNotFoundError: No module named 'flask'")]
        fn an_early_exit_quotes_the_log() {
            with_fake(
                "echo \"ModuleNotFoundError: No module named 'flask'\" >&2\nexit 1",
                |peer| {
                    SushyBuilder::default().start_peer(peer);
                },
            );
        }

        #[test]
        fn an_emulator_that_never_answers_times_out_and_is_killed() {
            with_fake("echo \"config: $6\"\nexec sleep 30", |peer| {
                let message = fake_program::failed_start_message(
                    "a silent emulator must not count as started",
                    || {
                        SushyBuilder::default()
                            .startup_timeout(Duration::from_millis(500))
                            .start_peer(peer)
                    },
                );
                assert!(message.contains("within 500ms"), "{message}");
                // The log tail shows the config argument.
                assert!(message.contains("emulator.conf"), "{message}");
            });
        }
    }
}
