//! boto3/botocore, the AWS SDK for Python, run as a subprocess ([`Botocore`]):
//! an independent reader of the files we write (credentials and config
//! files, `credential_process` output, the SSO token cache), and a signing
//! client for the [moto peer](crate::peers::moto).
//!
//! It comes from the peers' Python venv that `./scripts/test` installs from
//! `scripts/peers/requirements.txt` (`boto3`, `botocore`), and is looked up
//! through [`require_peer`]: when it is missing, a test fails in CI and is
//! skipped loudly elsewhere.
//!
//! A script runs to its end (at most [`DEFAULT_SCRIPT_TIMEOUT`]): call it
//! from sync tests, or through `tokio::task::spawn_blocking` from async ones.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use tempfile::TempDir;

use crate::peers::{python_with_module, require_peer};

/// How long [`BotocoreRun::run`] lets a script run before killing it.
pub const DEFAULT_SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

/// boto3/botocore from the peers' venv, run as `python -c SCRIPT` in a clean
/// environment with its own home folder.
///
/// Use it as a signing client for [`MotoServer`](crate::peers::moto::MotoServer), and as an independent reader
/// of what the SDK writes: a credentials or config file
/// (`boto3.Session(profile_name=...).get_credentials()`), a
/// `credential_process`, an SSO token cache. Each [`script`](Self::script)
/// starts a builder for one run.
///
/// The child's environment is cleared, then gets only:
///
/// * `HOME` = [`home`](Self::home) (a fresh temp dir owned by this value), or
///   the folder given to [`BotocoreRun::home`];
/// * `AWS_SHARED_CREDENTIALS_FILE` and `AWS_CONFIG_FILE` = `.aws/credentials`
///   and `.aws/config` under that home, unless given;
/// * `AWS_EC2_METADATA_DISABLED=true`, so nothing probes IMDS;
/// * `AWS_ENDPOINT_URL` when [`BotocoreRun::endpoint_url`] is given;
/// * the test's `PATH` (a `credential_process` may need it);
/// * `PYTHONUTF8=1`, `PYTHONDONTWRITEBYTECODE=1`;
/// * what [`BotocoreRun::env`] adds (it can override the above).
#[derive(Debug)]
pub struct Botocore {
    python: PathBuf,
    home: TempDir,
}

impl Botocore {
    /// The peers' Python, provided it can import `boto3`; `None` when it
    /// cannot and the test runs outside CI (see [`require_peer`]).
    ///
    /// # Panics
    ///
    /// In CI when boto3 is missing, or when no temp dir can be created.
    pub fn new() -> Option<Self> {
        let python = require_peer("botocore", || python_with_module("boto3"))?;
        let home = tempfile::Builder::new()
            .prefix("botocore-home-")
            .tempdir()
            .expect("create a temp home dir for botocore");
        Some(Self { python, home })
    }

    /// The Python interpreter that runs the scripts.
    pub fn python(&self) -> &Path {
        &self.python
    }

    /// The default `HOME` of the scripts: a temp dir that lives as long as
    /// this value.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// The default `AWS_SHARED_CREDENTIALS_FILE`: `.aws/credentials` under
    /// [`home`](Self::home) (not created).
    pub fn credentials_file(&self) -> PathBuf {
        self.home().join(".aws").join("credentials")
    }

    /// The default `AWS_CONFIG_FILE`: `.aws/config` under
    /// [`home`](Self::home) (not created).
    pub fn config_file(&self) -> PathBuf {
        self.home().join(".aws").join("config")
    }

    /// Starts a run of `source` (Python code; `sys.argv[1:]` are the
    /// [`arg`](BotocoreRun::arg)s). Print results as JSON on stdout and read
    /// them with [`BotocoreOutput::json`].
    ///
    /// The indentation common to all non-blank lines is removed first (like
    /// Python's `textwrap.dedent`), so a script in a raw string can be
    /// indented along with the Rust code around it.
    pub fn script(&self, source: impl AsRef<str>) -> BotocoreRun<'_> {
        BotocoreRun {
            botocore: self,
            source: dedent(source.as_ref()),
            args: Vec::new(),
            home: None,
            credentials_file: None,
            config_file: None,
            endpoint_url: None,
            env: Vec::new(),
            current_dir: None,
            timeout: DEFAULT_SCRIPT_TIMEOUT,
        }
    }
}

/// One run of a script; from [`Botocore::script`].
#[derive(Debug, Clone)]
#[must_use = "a script does nothing until `run`"]
pub struct BotocoreRun<'a> {
    botocore: &'a Botocore,
    source: String,
    args: Vec<OsString>,
    home: Option<PathBuf>,
    credentials_file: Option<PathBuf>,
    config_file: Option<PathBuf>,
    endpoint_url: Option<String>,
    env: Vec<(OsString, OsString)>,
    current_dir: Option<PathBuf>,
    timeout: Duration,
}

impl BotocoreRun<'_> {
    /// Appends an argument (`sys.argv[1]`, `sys.argv[2]`, ...).
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// `HOME` for this run instead of [`Botocore::home`]; the default
    /// credentials and config files move under it too.
    pub fn home(mut self, dir: impl Into<PathBuf>) -> Self {
        self.home = Some(dir.into());
        self
    }

    /// `AWS_SHARED_CREDENTIALS_FILE` for this run.
    pub fn credentials_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.credentials_file = Some(path.into());
        self
    }

    /// `AWS_CONFIG_FILE` for this run.
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config_file = Some(path.into());
        self
    }

    /// `AWS_ENDPOINT_URL` (every service), e.g. [`MotoServer::endpoint_url`](crate::peers::moto::MotoServer::endpoint_url).
    pub fn endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.endpoint_url = Some(url.into());
        self
    }

    /// Adds an environment variable (e.g. `AWS_PROFILE`,
    /// `AWS_ACCESS_KEY_ID`); set last, so it overrides the defaults.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// The working directory of the script (default: its `HOME`).
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.current_dir = Some(dir.into());
        self
    }

    /// How long the script may run before it is killed (default
    /// [`DEFAULT_SCRIPT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The command [`run`](Self::run) would start, with its environment set,
    /// for callers that need to drive it themselves.
    pub fn command(&self) -> Command {
        let home = self
            .home
            .clone()
            .unwrap_or_else(|| self.botocore.home().to_owned());
        let aws = home.join(".aws");
        let mut cmd = Command::new(&self.botocore.python);
        cmd.arg("-c")
            .arg(&self.source)
            .args(&self.args)
            .env_clear()
            .env("HOME", &home)
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.credentials_file
                    .clone()
                    .unwrap_or_else(|| aws.join("credentials")),
            )
            .env(
                "AWS_CONFIG_FILE",
                self.config_file
                    .clone()
                    .unwrap_or_else(|| aws.join("config")),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("PYTHONUTF8", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .current_dir(self.current_dir.as_ref().unwrap_or(&home))
            .stdin(Stdio::null());
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        if let Some(url) = &self.endpoint_url {
            cmd.env("AWS_ENDPOINT_URL", url);
        }
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        cmd
    }

    /// Runs the script to its end and returns what it printed.
    ///
    /// # Panics
    ///
    /// When Python cannot be started, or the script outlives its timeout
    /// (it is killed first).
    pub fn run(self) -> BotocoreOutput {
        let mut child = self
            .command()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.botocore.python.display()));
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for the botocore script") {
                break Some(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            thread::sleep(Duration::from_millis(20));
        };
        let stdout = stdout.join().unwrap_or_default();
        let stderr = stderr.join().unwrap_or_default();
        match status {
            Some(status) => BotocoreOutput {
                status,
                stdout,
                stderr,
            },
            None => panic!(
                "the botocore script ran longer than {:?} and was killed.\n\
                 --- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
                self.timeout
            ),
        }
    }
}

/// Removes the leading blanks (spaces, tabs) common to all non-blank lines.
fn dedent(source: &str) -> String {
    let indent = |line: &str| line.len() - line.trim_start_matches([' ', '\t']).len();
    let common = source
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(indent)
        .min()
        .unwrap_or(0);
    let mut out = String::with_capacity(source.len());
    for line in source.lines() {
        // Only whitespace is cut: a blank line may be shorter than `common`,
        // and a non-blank one starts with at least `common` blanks.
        out.push_str(line.get(common.min(indent(line))..).unwrap_or_default());
        out.push('\n');
    }
    out
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// What a [`BotocoreRun`] printed, and how it exited.
#[derive(Debug, Clone)]
pub struct BotocoreOutput {
    /// The exit status.
    pub status: ExitStatus,
    /// Everything printed on stdout.
    pub stdout: String,
    /// Everything printed on stderr (Python tracebacks land here).
    pub stderr: String,
}

impl BotocoreOutput {
    /// Whether the script exited with status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Panics, quoting stdout and stderr, unless the script exited with 0.
    ///
    /// # Panics
    ///
    /// When the script failed.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(
            self.success(),
            "the botocore script failed ({}).\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Parses stdout as one JSON document, after
    /// [`assert_success`](Self::assert_success).
    ///
    /// # Panics
    ///
    /// When the script failed or stdout is not JSON of type `T`.
    #[track_caller]
    pub fn json<T: DeserializeOwned>(&self) -> T {
        self.assert_success();
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "the botocore script's stdout is not the expected JSON: {e}.\n\
                 --- stdout ---\n{}\n--- stderr ---\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_dedented() {
        assert_eq!(
            dedent("\n    import os\n\n    if x:\n        y()\n  \n"),
            "\nimport os\n\nif x:\n    y()\n\n"
        );
        assert_eq!(dedent("print(1)"), "print(1)\n");
        assert_eq!(dedent(""), "");
    }
}
