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
use std::process::{Command, Stdio};
use std::time::Duration;

use super::http::http_get_status;
use super::process::{self, LOG_TAIL_LINES, PeerProcess, StartError, Stdin, tail};
use super::{PYTHON_ENV, python_from, require_peer, venv_script};

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

/// The environment variable that hands the password to [`SETUP_SCRIPT`] (not
/// its command line, which `ps` shows).
const PASSWORD_ENV: &str = "SESSION_TESTKIT_SUSHY_PASSWORD";

/// Writes the htpasswd file and, for HTTPS, a CA and a server certificate into
/// `argv[1]`; prints the password as JSON. Needs `bcrypt` (a dependency of
/// sushy-tools) and `cryptography`.
const SETUP_SCRIPT: &str = r#"
import datetime, ipaddress, json, os, secrets, sys

import bcrypt

out, username, scheme = sys.argv[1], sys.argv[2], sys.argv[3]
password = os.environ.get("SESSION_TESTKIT_SUSHY_PASSWORD") or secrets.token_urlsafe(18)
digest = bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds=4)).decode("ascii")
with open(os.path.join(out, "htpasswd"), "w", encoding="utf-8") as f:
    f.write(f"{username}:{digest}\n")

if scheme == "https":
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=7)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def usage(**on):
        flags = ("digital_signature", "content_commitment", "key_encipherment",
                 "data_encipherment", "key_agreement", "key_cert_sign",
                 "crl_sign", "encipher_only", "decipher_only")
        return x509.KeyUsage(**{f: on.get(f, False) for f in flags})

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name("session-testkit sushy-emulator CA")
    ca = (x509.CertificateBuilder()
          .subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(usage(key_cert_sign=True, crl_sign=True), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(name("127.0.0.1")).issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.DNSName("localhost"),
            ]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))

    pem = serialization.Encoding.PEM
    with open(os.path.join(out, "ca.pem"), "wb") as f:
        f.write(ca.public_bytes(pem))
    with open(os.path.join(out, "cert.pem"), "wb") as f:
        f.write(cert.public_bytes(pem))
    with open(os.path.join(out, "key.pem"), "wb") as f:
        f.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))

print(json.dumps({"password": password}))
"#;

/// Runs the `sushy-emulator` script given as `argv[2]` (with the rest of the
/// arguments) in this interpreter; as soon as stdin reaches EOF, removes the
/// folder `argv[1]` (the emulator's temp dir) and exits. Only the test process
/// holds the write end of that pipe, so the emulator ends with it, and leaves
/// no files behind, even when its [`SushyEmulator`] is never dropped (a
/// `static`) or the test process is killed.
const WATCHDOG_SCRIPT: &str = r#"
import os, runpy, shutil, sys, threading

def exit_at_eof(folder):
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        os._exit(0)

threading.Thread(target=exit_at_eof, args=(sys.argv[1],), daemon=True).start()
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"#;

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
#[derive(Clone)]
pub struct SushyBuilder {
    username: String,
    password: Option<String>,
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

impl fmt::Debug for SushyBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SushyBuilder")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("https", &self.https)
            .field("config", &self.config)
            .field("startup_timeout", &self.startup_timeout)
            .finish()
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
        self.password = Some(password.into());
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
        if let Some(password) = &self.password {
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

    /// Runs [`SETUP_SCRIPT`]; returns the password.
    fn write_credentials(&self, peer: &Peer, dir: &Path) -> Result<String, StartError> {
        let mut cmd = Command::new(&peer.python);
        cmd.arg("-c")
            .arg(SETUP_SCRIPT)
            .arg(dir)
            .arg(&self.username)
            .arg(if self.https { "https" } else { "http" })
            .stdin(Stdio::null())
            .env("PYTHONDONTWRITEBYTECODE", "1");
        match &self.password {
            Some(password) => cmd.env(PASSWORD_ENV, password),
            None => cmd.env_remove(PASSWORD_ENV),
        };
        let output = cmd.output().map_err(|e| {
            StartError::failed(format!("cannot run {}: {e}", peer.python.display()))
        })?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            return Err(StartError::Failed {
                reason: format!(
                    "generating the htpasswd file and certificates failed ({}; needs the \
                     Python packages bcrypt and cryptography)",
                    output.status
                ),
                tail: tail(&stderr, LOG_TAIL_LINES),
            });
        }
        #[derive(serde::Deserialize)]
        struct Generated {
            password: String,
        }
        serde_json::from_slice::<Generated>(&output.stdout)
            .map(|g| g.password)
            .map_err(|e| StartError::Failed {
                reason: format!("the setup script printed no password: {e}"),
                tail: tail(&stderr, LOG_TAIL_LINES),
            })
    }

    /// The emulator's config file (Python source).
    fn config_file(&self, dir: &Path, port: u16) -> Result<String, StartError> {
        let path = |name: &str| {
            let path = dir.join(name);
            path.to_str()
                .map(py_str)
                .ok_or_else(|| StartError::failed(format!("{} is not UTF-8", path.display())))
        };
        let mut text = format!(
            "# Written by session_testkit::peers::sushy.\n\
             SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'\n\
             SUSHY_EMULATOR_LISTEN_PORT = {port}\n\
             SUSHY_EMULATOR_FAKE_DRIVER = True\n\
             SUSHY_EMULATOR_STATE_DIR = {}\n\
             SUSHY_EMULATOR_AUTH_FILE = {}\n",
            path("state")?,
            path("htpasswd")?,
        );
        if self.https {
            text.push_str(&format!(
                "SUSHY_EMULATOR_SSL_CERT = {}\nSUSHY_EMULATOR_SSL_KEY = {}\n",
                path("cert.pem")?,
                path("key.pem")?,
            ));
        }
        for (key, value) in &self.config {
            text.push_str(&format!("{key} = {value}\n"));
        }
        Ok(text)
    }
}

/// A Python string literal for `s` (a JSON string is one).
fn py_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
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
    fn the_config_file_is_python() {
        let builder = SushyBuilder::default().config("SUSHY_EMULATOR_FEATURE_SET", "'minimum'");
        let dir = Path::new("/tmp/it's \"here\"");
        let text = builder.config_file(dir, 8123).unwrap_or_else(|_| panic!());
        assert!(
            text.contains("SUSHY_EMULATOR_LISTEN_PORT = 8123\n"),
            "{text}"
        );
        assert!(
            text.contains("SUSHY_EMULATOR_FAKE_DRIVER = True\n"),
            "{text}"
        );
        assert!(
            text.contains(r#"SUSHY_EMULATOR_AUTH_FILE = "/tmp/it's \"here\"/htpasswd""#),
            "{text}"
        );
        assert!(
            text.contains(r#"SUSHY_EMULATOR_SSL_KEY = "/tmp/it's \"here\"/key.pem""#),
            "{text}"
        );
        assert!(
            text.ends_with("SUSHY_EMULATOR_FEATURE_SET = 'minimum'\n"),
            "{text}"
        );
        let http = SushyBuilder::default().https(false);
        let text = http.config_file(dir, 8123).unwrap_or_else(|_| panic!());
        assert!(!text.contains("SSL"), "{text}");
    }

    #[test]
    #[should_panic(expected = "is not a Python identifier")]
    fn config_keys_must_be_identifiers() {
        let _ = SushyBuilder::default().config("A = 1\nB", "2");
    }

    #[test]
    fn identifiers() {
        for yes in ["A", "_x", "SUSHY_EMULATOR_FAKE_SYSTEMS", "a1"] {
            assert!(is_identifier(yes), "{yes}");
        }
        for no in ["", "1a", "a-b", "a b", "a\n"] {
            assert!(!is_identifier(no), "{no:?}");
        }
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
        use std::time::Instant;

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
                let started = Instant::now();
                let panic = std::panic::catch_unwind(|| {
                    SushyBuilder::default()
                        .startup_timeout(Duration::from_millis(500))
                        .start_peer(peer)
                })
                .expect_err("a silent emulator must not count as started");
                let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
                assert!(message.contains("within 500ms"), "{message}");
                // The log tail shows the config argument.
                assert!(message.contains("emulator.conf"), "{message}");
                assert!(started.elapsed() < Duration::from_secs(10));
            });
        }
    }
}
