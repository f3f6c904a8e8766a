//! The moto test peer: a real local STS/IAM endpoint ([`MotoServer`]).
//!
//! It comes from the peers' Python venv that `./scripts/test` installs from
//! `scripts/peers/requirements.txt` (`moto[server]`), and is looked up through
//! [`require_peer`]: when it is missing, a test fails in CI and is skipped
//! loudly elsewhere. Its usual client is [`Botocore`], the AWS SDK for
//! Python run as a subprocess.
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
//! # Authentication
//!
//! By default moto accepts any signature, so a call signed with a wrong
//! secret or a made-up token succeeds. [`MotoServer::seed_then_authenticate`]
//! (or [`MotoBuilder::authentication`]) turns moto's authentication on: its
//! seeding closure runs with authentication off and creates IAM users, their
//! keys ([`MotoServer::create_iam_user`]) and roles
//! ([`MotoServer::create_role`]); after it, every call must be signed with a
//! key moto issued (else `InvalidClientTokenId`, or `SignatureDoesNotMatch`
//! for a wrong secret) and allowed by the caller's IAM policy (else
//! `AccessDenied`).
//!
//! ```no_run
//! use session_testkit::peers::moto::{ALLOW_ALL_POLICY, MotoServer};
//! use session_testkit::readers::botocore::Botocore;
//!
//! let (Some(moto), Some(botocore)) = (MotoServer::start(), Botocore::new()) else {
//!     return;
//! };
//! let key = moto.seed_then_authenticate(|moto| {
//!     moto.create_iam_user(&botocore, "dev", ALLOW_ALL_POLICY)
//! });
//! // Sign with `key.access_key_id` / `key.secret_access_key` from here on.
//! # let _ = key;
//! ```
//!
//! Limits of moto with authentication on (moto 5.2): it does not register
//! the credentials `GetSessionToken` returns (always the same example key),
//! so calls signed with them are `InvalidClientTokenId`;
//! `AssumeRoleWithSAML` (sent unsigned) fails with a 500 unless it is one of
//! the unauthenticated calls; `AssumeRole` with the credentials of a role
//! that has no permission policy is `AccessDenied`, and with those of a role
//! that does not exist in IAM a 500. `GetCallerIdentity` needs no policy.
//! [`MotoServer::reset`] wipes the users and keys but not the authentication
//! setting: after it, every call is refused until authentication is reset
//! ([`MotoServer::authentication_off`] or
//! [`MotoServer::seed_then_authenticate`]).
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
use crate::readers::botocore::Botocore;
use session_core::Secret;

/// How long [`MotoBuilder::start`] waits for a new server to answer.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// The readiness probe of a moto server.
const PROBE_PATH: &str = "/moto-api/data.json";

/// An IAM policy document allowing every action on every resource, for
/// [`MotoServer::create_iam_user`] and [`MotoServer::create_role`].
pub const ALLOW_ALL_POLICY: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}"#;

/// A trust policy letting any AWS principal assume a role (moto does not
/// check trust policies; real STS would).
pub const TRUST_ANYONE_POLICY: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}"#;

/// How many AWS calls [`MotoServer::create_iam_user`] makes (`CreateUser`,
/// `PutUserPolicy`, `CreateAccessKey`): the unauthenticated calls it needs
/// with [`MotoBuilder::authentication`].
pub const IAM_USER_SEED_CALLS: u32 = 3;

/// How many AWS calls [`MotoServer::create_role`] makes: `CreateRole`, plus
/// `PutRolePolicy` when it is given a permission policy.
pub fn role_seed_calls(permission_policy: Option<&str>) -> u32 {
    1 + u32::from(permission_policy.is_some())
}

/// An IAM user's long-term access key as moto issued it
/// ([`MotoServer::create_iam_user`]). `Debug` does not show the secret.
#[derive(Debug, Clone)]
pub struct MotoAccessKey {
    /// The user's name.
    pub user_name: String,
    /// The user's ARN, e.g. `arn:aws:iam::123456789012:user/dev`.
    pub arn: String,
    /// The access key id moto issued (`AKIA…`).
    pub access_key_id: String,
    /// The secret access key moto issued.
    pub secret_access_key: Secret,
}

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

    /// Starts the server with authentication on after its first
    /// `unauthenticated_calls` AWS calls (moto's
    /// `INITIAL_NO_AUTH_ACTION_COUNT`; calls to `/moto-api/` do not count).
    /// Those calls create the users, keys and roles the test needs (e.g.
    /// [`IAM_USER_SEED_CALLS`] for one [`MotoServer::create_iam_user`]);
    /// from the next one on, every call must be signed with a key moto
    /// issued and allowed by IAM policy.
    ///
    /// An exact count is easy to get wrong (a spare unauthenticated call
    /// lets one badly signed call through):
    /// [`MotoServer::seed_then_authenticate`] needs none.
    #[must_use]
    pub fn authentication(self, unauthenticated_calls: u32) -> Self {
        self.env(
            "INITIAL_NO_AUTH_ACTION_COUNT",
            unauthenticated_calls.to_string(),
        )
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
    /// The authentication setting stays: on a server with authentication
    /// on, the wiped users' keys are unknown from then on and every call is
    /// refused, until [`authentication_off`](Self::authentication_off) or
    /// [`seed_then_authenticate`](Self::seed_then_authenticate).
    ///
    /// # Panics
    ///
    /// When the server does not answer 200.
    pub fn reset(&self) {
        self.post_moto_api("/moto-api/reset", b"");
    }

    /// Turns authentication on after the next `unauthenticated_calls` AWS
    /// calls (`POST /moto-api/reset-auth`, which also restarts moto's count
    /// of calls); `0` turns it on at once. With authentication on, every call
    /// must be signed with a key moto issued and allowed by IAM policy.
    ///
    /// # Panics
    ///
    /// When the server does not answer 200.
    pub fn authentication_after(&self, unauthenticated_calls: u32) {
        self.post_moto_api(
            "/moto-api/reset-auth",
            unauthenticated_calls.to_string().as_bytes(),
        );
    }

    /// Turns authentication off (moto's default): any signature, any key.
    ///
    /// # Panics
    ///
    /// When the server does not answer 200.
    pub fn authentication_off(&self) {
        self.post_moto_api("/moto-api/reset-auth", b"inf");
    }

    /// Runs `seed` with authentication off, then turns authentication on
    /// ([`authentication_after`](Self::authentication_after)`(0)`), and
    /// returns what `seed` returned. `seed` creates what the test needs
    /// ([`create_iam_user`](Self::create_iam_user),
    /// [`create_role`](Self::create_role), or calls that only work
    /// unauthenticated, like an unsigned `AssumeRoleWithSAML`).
    ///
    /// # Panics
    ///
    /// When `seed` panics, or moto does not switch.
    pub fn seed_then_authenticate<T>(&self, seed: impl FnOnce(&Self) -> T) -> T {
        self.authentication_off();
        let seeded = seed(self);
        self.authentication_after(0);
        seeded
    }

    /// Creates the IAM user `user_name` with the inline policy `policy`
    /// (e.g. [`ALLOW_ALL_POLICY`]) and a long-term access key, through
    /// botocore signed with a dummy key: [`IAM_USER_SEED_CALLS`] calls, which
    /// must be unauthenticated (see
    /// [`seed_then_authenticate`](Self::seed_then_authenticate)). Returns the
    /// key moto issued. The secret never reaches stdout: the script writes it
    /// to a private file in botocore's home, read back here.
    ///
    /// # Panics
    ///
    /// When a call fails (e.g. authentication is already on).
    pub fn create_iam_user(
        &self,
        botocore: &Botocore,
        user_name: &str,
        policy: &str,
    ) -> MotoAccessKey {
        let out = botocore.home().join(format!("moto-key-{user_name}.json"));
        let script = r#"
            import json, os, sys, boto3
            iam = boto3.client("iam", region_name="us-east-1")
            user = iam.create_user(UserName=sys.argv[1])["User"]
            iam.put_user_policy(UserName=sys.argv[1], PolicyName="seeded", PolicyDocument=sys.argv[2])
            key = iam.create_access_key(UserName=sys.argv[1])["AccessKey"]
            fd = os.open(sys.argv[3], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump({"arn": user["Arn"], "id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}, f)
            print(json.dumps(key["AccessKeyId"]))
        "#;
        let id: String = self
            .seed_script(botocore, script)
            .arg(user_name)
            .arg(policy)
            .arg(&out)
            .run()
            .json();
        let text = std::fs::read_to_string(&out)
            .unwrap_or_else(|e| panic!("reading {}: {e}", out.display()));
        let _ = std::fs::remove_file(&out);
        let doc: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", out.display()));
        let field = |name: &str| {
            doc[name]
                .as_str()
                .unwrap_or_else(|| panic!("{} has no {name}", out.display()))
                .to_owned()
        };
        assert_eq!(field("id"), id, "the key id on stdout and in the file");
        MotoAccessKey {
            user_name: user_name.to_owned(),
            arn: field("arn"),
            access_key_id: id,
            secret_access_key: Secret::new(field("secret")),
        }
    }

    /// Creates the IAM role `role_name` that anyone may assume
    /// ([`TRUST_ANYONE_POLICY`]), with the inline permission policy
    /// `permission_policy` if any, through botocore signed with a dummy key:
    /// [`role_seed_calls`] calls, which must be unauthenticated (see
    /// [`seed_then_authenticate`](Self::seed_then_authenticate)). Returns the
    /// role's ARN. With authentication on, the credentials of a role without
    /// a permission policy sign `GetCallerIdentity` but not `AssumeRole`
    /// (`AccessDenied`).
    ///
    /// # Panics
    ///
    /// When a call fails (e.g. authentication is already on).
    pub fn create_role(
        &self,
        botocore: &Botocore,
        role_name: &str,
        permission_policy: Option<&str>,
    ) -> String {
        let script = r#"
            import json, sys, boto3
            iam = boto3.client("iam", region_name="us-east-1")
            role = iam.create_role(RoleName=sys.argv[1], AssumeRolePolicyDocument=sys.argv[2])["Role"]
            if sys.argv[3]:
                iam.put_role_policy(RoleName=sys.argv[1], PolicyName="seeded", PolicyDocument=sys.argv[3])
            print(json.dumps(role["Arn"]))
        "#;
        self.seed_script(botocore, script)
            .arg(role_name)
            .arg(TRUST_ANYONE_POLICY)
            .arg(permission_policy.unwrap_or(""))
            .run()
            .json()
    }

    /// A botocore run against this server, signed with a dummy key.
    fn seed_script<'b>(
        &self,
        botocore: &'b Botocore,
        script: &str,
    ) -> crate::readers::botocore::BotocoreRun<'b> {
        botocore
            .script(script)
            .endpoint_url(self.endpoint_url())
            .env("AWS_ACCESS_KEY_ID", "AKIDSEEDING")
            .env("AWS_SECRET_ACCESS_KEY", "seeding")
            .env("AWS_DEFAULT_REGION", "us-east-1")
    }

    fn post_moto_api(&self, path: &str, body: &[u8]) {
        match self.request("POST", path, body) {
            Ok(r) if r.status == 200 => {}
            Ok(r) => panic!(
                "POST {path} answered {} ({}); moto's log:\n{}",
                r.status,
                r.text(),
                self.process.log_tail()
            ),
            Err(e) => panic!(
                "POST {path} failed: {e}; moto's log:\n{}",
                self.process.log_tail()
            ),
        }
    }

    /// Sends one plain HTTP/1.1 request to the server, e.g.
    /// `request("GET", "/moto-api/data.json", b"")`. Requests to AWS APIs need SigV4 signing: use an SDK
    /// ([`Botocore`], or the Rust SDK with [`endpoint_url`](Self::endpoint_url)).
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
