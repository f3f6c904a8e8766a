//! What the `sessionctl` end-to-end tests share: running the built binary
//! in a clean environment ([`Fixture`]), what a run did ([`Run`]), and the
//! library's view of the temporary workspace and secrets file.
//!
//! The child process never inherits `SESSIONCTL_*` variables from the test
//! runner, and `HOME` / `XDG_CONFIG_HOME` point into the temporary directory,
//! so no test can touch a real workspace or secrets file.

// Each test file compiles this module on its own and uses only some of it.
#![allow(dead_code)]

#[cfg(feature = "redfish")]
pub(crate) mod bmc;
#[cfg(unix)]
pub(crate) mod connect;
#[cfg(feature = "aws-ssm")]
pub(crate) mod ssm;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use session_core::{
    EncryptedFileSecretStore, FsWorkspace, Secret, Session, SessionType, WorkspaceRepository,
};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_sessionctl");
pub(crate) const PASSPHRASE: &str = "correct horse battery staple";

/// Every variable sessionctl reads; removed from each child's environment.
pub(crate) const SESSIONCTL_VARS: [&str; 6] = [
    "SESSIONCTL_WORKSPACE",
    "SESSIONCTL_SECRET_STORE",
    "SESSIONCTL_SECRETS_FILE",
    "SESSIONCTL_PASSPHRASE",
    "SESSIONCTL_LOG",
    "RUST_LOG",
];

/// A temporary directory holding a workspace file and a secrets file.
pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
}

/// What one run of the binary did.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    pub(crate) fn from(output: Output) -> Self {
        Run {
            code: output.status.code(),
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        }
    }

    /// Asserts success and returns stdout.
    #[track_caller]
    pub(crate) fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "expected success: {self:#?}");
        &self.stdout
    }

    /// Asserts exit status 1, nothing on stdout and exactly one
    /// `sessionctl: ` line on stderr; returns that line.
    #[track_caller]
    pub(crate) fn one_line_error(&self) -> &str {
        self.error_with(1)
    }

    #[track_caller]
    pub(crate) fn error_with(&self, code: i32) -> &str {
        assert_eq!(self.code, Some(code), "expected exit {code}: {self:#?}");
        assert_eq!(self.stdout, "", "nothing on stdout on error: {self:#?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "exactly one stderr line: {self:#?}");
        assert!(
            lines[0].starts_with("sessionctl: "),
            "prefixed line: {self:#?}"
        );
        assert!(!self.stderr.contains("panicked"), "no panic: {self:#?}");
        lines[0]
    }
}

impl Fixture {
    pub(crate) fn new() -> Self {
        Fixture {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub(crate) fn workspace(&self) -> PathBuf {
        self.dir.path().join("ws.json")
    }

    /// The default secrets file: `secrets.enc` next to the workspace.
    pub(crate) fn secrets(&self) -> PathBuf {
        self.dir.path().join("secrets.enc")
    }

    /// `sessionctl` with a clean environment (no `--workspace` flag).
    pub(crate) fn bare(&self) -> Command {
        let mut command = Command::new(BIN);
        for var in SESSIONCTL_VARS {
            command.env_remove(var);
        }
        command
            .env("HOME", self.dir.path().join("home"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("home/.config"))
            .stdin(Stdio::null());
        command
    }

    /// `sessionctl --workspace <ws.json> ARGS…`.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut command = self.bare();
        command.arg("--workspace").arg(self.workspace()).args(args);
        command
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("run sessionctl"))
    }

    /// Runs with the passphrase set.
    pub(crate) fn run_unlocked(&self, args: &[&str]) -> Run {
        Run::from(
            self.command(args)
                .env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
                .output()
                .expect("run sessionctl"),
        )
    }

    /// Runs `command` with `input` on a piped stdin.
    pub(crate) fn run_with_stdin(mut command: Command, input: &[u8]) -> Run {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sessionctl");
        {
            let mut stdin = child.stdin.take().expect("stdin");
            // The child may exit before reading (e.g. no passphrase); a broken
            // pipe here is then expected.
            let _ = stdin.write_all(input);
        }
        Run::from(child.wait_with_output().expect("wait for sessionctl"))
    }

    /// `secret set SESSION NAME` with `value` on stdin and the passphrase set.
    pub(crate) fn set_secret(&self, session: &str, name: &str, value: &[u8]) -> Run {
        let mut command = self.command(&["secret", "set", session, name]);
        command.env("SESSIONCTL_PASSPHRASE", PASSPHRASE);
        Self::run_with_stdin(command, value)
    }

    /// Stores sessions through the library, in order.
    pub(crate) fn insert(&self, sessions: Vec<Session>) -> Vec<Session> {
        let workspace = FsWorkspace::open(self.workspace()).expect("workspace");
        block_on(async move {
            let mut stored = Vec::new();
            for session in sessions {
                stored.push(workspace.insert(session).await.expect("insert"));
            }
            stored
        })
    }

    /// The sessions as the library reads them now.
    pub(crate) fn stored(&self) -> Vec<Session> {
        let workspace = FsWorkspace::open(self.workspace()).expect("workspace");
        block_on(async move { workspace.list().await.expect("list") })
    }

    /// The secret store as the library opens it.
    pub(crate) fn store(&self) -> EncryptedFileSecretStore {
        EncryptedFileSecretStore::open(self.secrets(), Secret::new(PASSPHRASE))
            .expect("open the secrets file")
    }
}

pub(crate) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(future)
}

pub(crate) fn session(name: &str, session_type: SessionType) -> Session {
    Session::new(name, session_type).expect("valid session")
}

pub(crate) fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

pub(crate) fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// An IAM user `dev` (a made-up key: moto with authentication off accepts
/// any) and a chained role `admin` under it, assuming
/// `arn:aws:iam::123456789012:role/admin` with `role_args` added.
pub(crate) fn add_user_and_chained_role(fx: &Fixture, role_args: &[&str]) {
    let mut add = fx.command(&[
        "add",
        "aws-iam-user",
        "dev",
        "--access-key-id",
        "AKIAIOSFODNN7EXAMPLE",
    ]);
    add.env("SESSIONCTL_PASSPHRASE", PASSPHRASE);
    Fixture::run_with_stdin(add, b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY").ok();
    let mut role = fx.command(&[
        "add",
        "aws-role-chained",
        "admin",
        "--parent",
        "dev",
        "--role-arn",
        "arn:aws:iam::123456789012:role/admin",
    ]);
    role.args(role_args)
        .env("SESSIONCTL_PASSPHRASE", PASSPHRASE);
    Run::from(role.output().expect("run")).ok();
}
