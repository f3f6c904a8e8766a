//! End-to-end tests of the `sessionctl` binary: each test runs the built
//! binary against a workspace in a temporary directory.
//!
//! The child process never inherits `SESSIONCTL_*` variables from the test
//! runner, and `HOME` / `XDG_CONFIG_HOME` point into the temporary directory,
//! so no test can touch a real workspace or secrets file.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use session_core::{
    EncryptedFileSecretStore, Error, FsWorkspace, Secret, SecretKey, SecretStore, Session,
    SessionStatus, SessionType, WorkspaceRepository,
};
use time::macros::datetime;

const BIN: &str = env!("CARGO_BIN_EXE_sessionctl");
const PASSPHRASE: &str = "correct horse battery staple";

/// Every variable sessionctl reads; removed from each child's environment.
const SESSIONCTL_VARS: [&str; 6] = [
    "SESSIONCTL_WORKSPACE",
    "SESSIONCTL_SECRET_STORE",
    "SESSIONCTL_SECRETS_FILE",
    "SESSIONCTL_PASSPHRASE",
    "SESSIONCTL_LOG",
    "RUST_LOG",
];

/// The JSON field names documented in `list --help`, `show --help` and the
/// `json` module.
const ALL_FIELDS: [&str; 11] = [
    "sessionId",
    "sessionName",
    "sessionType",
    "status",
    "startDateTime",
    "region",
    "expiration",
    "parentSessionId",
    "lastError",
    "config",
    "revision",
];

/// The fields present even when every optional one is empty.
const REQUIRED_FIELDS: [&str; 6] = [
    "sessionId",
    "sessionName",
    "sessionType",
    "status",
    "config",
    "revision",
];

/// A temporary directory holding a workspace file and a secrets file.
struct Fixture {
    dir: tempfile::TempDir,
}

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from(output: Output) -> Self {
        Run {
            code: output.status.code(),
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        }
    }

    /// Asserts success and returns stdout.
    #[track_caller]
    fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "expected success: {self:#?}");
        &self.stdout
    }

    /// Asserts exit status 1, nothing on stdout and exactly one
    /// `sessionctl: ` line on stderr; returns that line.
    #[track_caller]
    fn one_line_error(&self) -> &str {
        self.error_with(1)
    }

    #[track_caller]
    fn error_with(&self, code: i32) -> &str {
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
    fn new() -> Self {
        Fixture {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn workspace(&self) -> PathBuf {
        self.dir.path().join("ws.json")
    }

    /// The default secrets file: `secrets.enc` next to the workspace.
    fn secrets(&self) -> PathBuf {
        self.dir.path().join("secrets.enc")
    }

    /// `sessionctl` with a clean environment (no `--workspace` flag).
    fn bare(&self) -> Command {
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
    fn command(&self, args: &[&str]) -> Command {
        let mut command = self.bare();
        command.arg("--workspace").arg(self.workspace()).args(args);
        command
    }

    fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("run sessionctl"))
    }

    /// Runs with the passphrase set.
    fn run_unlocked(&self, args: &[&str]) -> Run {
        Run::from(
            self.command(args)
                .env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
                .output()
                .expect("run sessionctl"),
        )
    }

    /// Runs `command` with `input` on a piped stdin.
    fn run_with_stdin(mut command: Command, input: &[u8]) -> Run {
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
    fn set_secret(&self, session: &str, name: &str, value: &[u8]) -> Run {
        let mut command = self.command(&["secret", "set", session, name]);
        command.env("SESSIONCTL_PASSPHRASE", PASSPHRASE);
        Self::run_with_stdin(command, value)
    }

    /// Stores sessions through the library, in order.
    fn insert(&self, sessions: Vec<Session>) -> Vec<Session> {
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
    fn stored(&self) -> Vec<Session> {
        let workspace = FsWorkspace::open(self.workspace()).expect("workspace");
        block_on(async move { workspace.list().await.expect("list") })
    }

    /// The secret store as the library opens it.
    fn store(&self) -> EncryptedFileSecretStore {
        EncryptedFileSecretStore::open(self.secrets(), Secret::new(PASSPHRASE))
            .expect("open the secrets file")
    }
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(future)
}

fn session(name: &str, session_type: SessionType) -> Session {
    Session::new(name, session_type).expect("valid session")
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn keys(object: &Value) -> BTreeSet<String> {
    object
        .as_object()
        .expect("a JSON object")
        .keys()
        .cloned()
        .collect()
}

fn names(fields: &[&str]) -> BTreeSet<String> {
    fields.iter().map(|f| (*f).to_owned()).collect()
}

#[test]
fn list_of_a_missing_workspace_is_empty_and_creates_nothing() {
    let fx = Fixture::new();
    let human = fx.run(&["list"]);
    assert!(human.ok().contains("no sessions"), "{human:#?}");
    assert_eq!(human.stderr, "");

    let machine = fx.run(&["list", "--json"]);
    assert_eq!(machine.ok().trim(), "[]");
    assert_eq!(json(&machine.stdout), Value::Array(Vec::new()));

    assert!(!fx.workspace().exists(), "list must not create the file");
    assert!(
        !fx.secrets().exists(),
        "list must not create the secrets file"
    );
}

/// A parent with only the required fields and a child with every field set.
fn parent_and_child(fx: &Fixture) -> (Session, Session) {
    let parent = session("base-user", SessionType::AwsIamUser);
    let mut child = session("admin-role", SessionType::AwsIamRoleChained)
        .with_region("eu-west-1")
        .with_parent(parent.session_id)
        .with_config(&serde_json::json!({"roleArn": "arn:aws:iam::123456789012:role/Admin"}))
        .expect("config");
    let t0 = datetime!(2030-01-01 10:00 UTC);
    child
        .transition(SessionStatus::Pending, t0)
        .expect("pending");
    child.transition(SessionStatus::Active, t0).expect("active");
    child.expiration = Some(datetime!(2030-01-01 11:00 UTC));
    child.record_error("rotate", &Error::unsupported("test provider", "rotate"), t0);
    let stored = fx.insert(vec![parent, child]);
    (stored[0].clone(), stored[1].clone())
}

#[test]
fn list_json_uses_exactly_the_documented_field_names() {
    let fx = Fixture::new();
    let (parent, child) = parent_and_child(&fx);

    let listed = json(fx.run(&["list", "--json"]).ok());
    let array = listed.as_array().expect("list --json prints an array");
    assert_eq!(array.len(), 2);
    // Insertion order, the minimal session first.
    assert_eq!(keys(&array[0]), names(&REQUIRED_FIELDS));
    assert_eq!(keys(&array[1]), names(&ALL_FIELDS));
    assert_eq!(array[0]["sessionId"], parent.session_id.to_string());
    assert_eq!(array[1]["sessionId"], child.session_id.to_string());
    assert_eq!(array[1]["sessionType"], "awsIamRoleChained");
    assert_eq!(array[1]["status"], "active");
    assert_eq!(array[1]["parentSessionId"], parent.session_id.to_string());
    assert_eq!(array[1]["expiration"], "2030-01-01T11:00:00Z");
    assert_eq!(array[1]["revision"], 1);
    assert_eq!(
        keys(&array[1]["lastError"]),
        names(&["operation", "category", "message", "at"])
    );

    let shown = json(fx.run(&["show", "admin-role", "--json"]).ok());
    assert!(shown.is_object(), "show --json prints one object");
    assert_eq!(shown, array[1]);

    // The same names are documented in the long help of both commands.
    for command in ["list", "show"] {
        let help = fx.run(&[command, "--help"]);
        for field in ALL_FIELDS {
            assert!(
                help.ok().contains(field),
                "`{command} --help` does not document {field}"
            );
        }
    }
}

#[test]
fn list_prints_an_aligned_table() {
    let fx = Fixture::new();
    let (parent, child) = parent_and_child(&fx);
    let out = fx.run(&["list"]);
    let lines: Vec<&str> = out.ok().lines().collect();
    assert_eq!(lines.len(), 3, "{out:#?}");
    let header = lines[0];
    for column in ["NAME", "TYPE", "STATUS", "EXPIRES", "ID"] {
        assert!(header.contains(column), "missing {column}: {header}");
    }
    // Every cell starts where its header does.
    let at = |column: &str| header.find(column).expect("column");
    for (line, s) in [(lines[1], &parent), (lines[2], &child)] {
        assert!(line.starts_with(&s.session_name), "{line}");
        assert_eq!(
            line.find(s.session_type.as_str()),
            Some(at("TYPE")),
            "{line}"
        );
        assert_eq!(line.find(s.status().as_str()), Some(at("STATUS")), "{line}");
        let expires = &line[at("EXPIRES")..];
        if s.expiration.is_some() {
            assert!(
                expires.starts_with("in ") || expires.starts_with("expired "),
                "{line}"
            );
        } else {
            assert!(expires.starts_with("- "), "{line}");
        }
        assert_eq!(
            line.find(&s.session_id.to_string()),
            Some(at("ID")),
            "{line}"
        );
    }
}

#[test]
fn show_finds_by_name_and_by_id() {
    let fx = Fixture::new();
    let (parent, child) = parent_and_child(&fx);

    let by_name = fx.run(&["show", "admin-role"]);
    let by_id = fx.run(&["show", &child.session_id.to_string()]);
    assert_eq!(by_name.ok(), by_id.ok());
    let text = by_name.ok();
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}:")))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {key} line in {text}"))
    };
    assert_eq!(value("sessionId"), child.session_id.to_string());
    assert_eq!(value("sessionName"), "admin-role");
    assert_eq!(value("sessionType"), "awsIamRoleChained");
    assert_eq!(value("status"), "active");
    assert_eq!(value("region"), "eu-west-1");
    assert!(value("expiration").starts_with("2030-01-01T11:00:00Z"));
    assert!(value("parentSessionId").contains("base-user"));
    assert!(value("lastError").contains("rotate"));
    assert!(value("lastError").contains("unsupported"));
    assert!(value("config").contains("roleArn"));
    assert_eq!(value("revision"), "1");

    // No lastError line when there is none.
    let parent_text = fx.run(&["show", &parent.session_id.to_string()]);
    assert!(parent_text.ok().contains("sessionName:"));
    assert!(!parent_text.ok().contains("lastError"), "{parent_text:#?}");
}

#[test]
fn show_of_an_unknown_name_is_one_error_line() {
    let fx = Fixture::new();
    fx.insert(vec![session("dev", SessionType::AwsIamUser)]);
    let out = fx.run(&["show", "no-such-session"]);
    let line = out.one_line_error();
    assert!(line.contains("no-such-session"), "{line}");
    assert!(line.contains("not found"), "{line}");
}

#[test]
fn an_ambiguous_name_asks_for_the_id() {
    let fx = Fixture::new();
    let stored = fx.insert(vec![
        session("twin", SessionType::AwsSsoRole),
        session("twin", SessionType::AwsSsoRole),
    ]);
    for command in ["show", "remove", "start"] {
        let out = fx.run_unlocked(&[command, "twin"]);
        let line = out.one_line_error();
        assert!(line.contains("use the id"), "{command}: {line}");
    }
    assert_eq!(fx.stored().len(), 2, "nothing was removed");
    let by_id = fx.run(&["show", &stored[1].session_id.to_string(), "--json"]);
    assert_eq!(
        json(by_id.ok())["sessionId"],
        stored[1].session_id.to_string()
    );
}

#[test]
fn remove_deletes_the_session_and_only_its_secrets() {
    let fx = Fixture::new();
    let stored = fx.insert(vec![
        session("doomed", SessionType::Redfish),
        session("kept", SessionType::Redfish),
    ]);
    let (doomed, kept) = (&stored[0], &stored[1]);
    fx.set_secret("doomed", "password", b"pw-1\n").ok();
    fx.set_secret("doomed", "token", b"tk-1\n").ok();
    fx.set_secret("kept", "password", b"pw-2\n").ok();

    let out = fx.run_unlocked(&["remove", "doomed"]);
    assert!(out.ok().contains("removed"), "{out:#?}");
    assert!(out.ok().contains("2 secrets"), "{out:#?}");

    let left = fx.stored();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].session_id, kept.session_id);
    fx.run(&["show", "doomed"]).one_line_error();

    let store = fx.store();
    let (gone, still) = block_on(async {
        (
            store.names(doomed.session_id).await.expect("names"),
            store.names(kept.session_id).await.expect("names"),
        )
    });
    assert!(gone.is_empty(), "secrets of the removed session: {gone:?}");
    assert_eq!(still, vec!["password".to_owned()]);
}

#[test]
fn remove_with_a_wrong_passphrase_deletes_nothing() {
    let fx = Fixture::new();
    fx.insert(vec![session("dev", SessionType::AwsIamUser)]);
    fx.set_secret("dev", "token", b"t\n").ok();
    let out = Run::from(
        fx.command(&["remove", "dev"])
            .env("SESSIONCTL_PASSPHRASE", "not the passphrase")
            .output()
            .expect("run"),
    );
    assert!(out.one_line_error().contains("passphrase"), "{out:#?}");
    assert_eq!(fx.stored().len(), 1, "the session is still there");
}

#[test]
fn start_without_a_provider_fails_naming_the_session_type() {
    let fx = Fixture::new();
    // Boundary has no provider yet (AWS, Azure and Redfish have one).
    let stored = fx.insert(vec![session("dev", SessionType::Boundary)]);
    let out = fx.run_unlocked(&["start", "dev"]);
    let line = out.one_line_error();
    assert!(line.contains("boundary"), "{line}");
    assert!(line.contains("does not support"), "{line}");
    let after = fx.stored();
    assert_eq!(after[0].status(), SessionStatus::Inactive);
    assert_eq!(after[0].revision(), stored[0].revision(), "nothing written");

    let rotate = fx.run_unlocked(&["rotate", "dev"]);
    assert!(rotate.one_line_error().contains("boundary"));
}

#[test]
fn the_workspace_environment_variable_works_like_the_flag() {
    let fx = Fixture::new();
    fx.insert(vec![session("dev", SessionType::Azure)]);
    let with_flag = fx.run(&["list", "--json"]);

    let with_env = Run::from(
        fx.bare()
            .env("SESSIONCTL_WORKSPACE", fx.workspace())
            .args(["list", "--json"])
            .output()
            .expect("run"),
    );
    assert_eq!(with_env.ok(), with_flag.ok());
    assert_eq!(json(with_env.ok())[0]["sessionName"], "dev");

    let show = Run::from(
        fx.bare()
            .env("SESSIONCTL_WORKSPACE", fx.workspace())
            .args(["show", "dev"])
            .output()
            .expect("run"),
    );
    assert!(show.ok().contains("azure"));

    // The flag wins over the variable.
    let other = fx.dir.path().join("other.json");
    let overridden = Run::from(
        fx.bare()
            .env("SESSIONCTL_WORKSPACE", &other)
            .arg("--workspace")
            .arg(fx.workspace())
            .args(["list", "--json"])
            .output()
            .expect("run"),
    );
    assert_eq!(overridden.ok(), with_flag.ok());
}

#[test]
fn a_corrupt_workspace_is_reported_on_one_line_and_left_untouched() {
    let fx = Fixture::new();
    let bytes = b"{\n  \"version\": 1,\n  \"sessions\": [ {\"sessionId\": oops} ]\n}\n";
    std::fs::write(fx.workspace(), bytes).expect("write");
    let path = fx.workspace().display().to_string();
    for args in [
        &["list"][..],
        &["list", "--json"],
        &["show", "dev"],
        &["remove", "dev"],
        &["start", "dev"],
    ] {
        let out = fx.run_unlocked(args);
        let line = out.one_line_error();
        assert!(line.contains(&path), "{args:?}: {line}");
        assert!(line.contains("line 3"), "{args:?}: {line}");
        assert!(line.contains("column"), "{args:?}: {line}");
    }
    assert_eq!(std::fs::read(fx.workspace()).expect("read"), bytes);
    let backup = fx.dir.path().join("ws.json.bak");
    assert!(!backup.exists(), "nothing was written");
}

#[test]
fn secret_set_reads_stdin_and_secret_list_shows_the_name() {
    let fx = Fixture::new();
    let stored = fx.insert(vec![session("dev", SessionType::Redfish)]);
    let out = fx.set_secret("dev", "password", b"hunter2\n");
    assert!(out.ok().contains("password"), "{out:#?}");

    let listed = fx.run_unlocked(&["secret", "list", "dev"]);
    assert_eq!(listed.ok(), "password\n");

    // Exactly one trailing newline was stripped.
    fx.set_secret("dev", "two-lines", b"a\nb\n\n").ok();
    let store = fx.store();
    let id = stored[0].session_id;
    let (first, second) = block_on(async {
        (
            store
                .get(&SecretKey::new(id, "password").expect("key"))
                .await
                .expect("get"),
            store
                .get(&SecretKey::new(id, "two-lines").expect("key"))
                .await
                .expect("get"),
        )
    });
    assert_eq!(first.expect("stored").expose(), "hunter2");
    assert_eq!(second.expect("stored").expose(), "a\nb\n");
    assert_eq!(
        fx.run_unlocked(&["secret", "list", "dev"]).ok(),
        "password\ntwo-lines\n"
    );
}

#[test]
fn secret_set_refuses_an_empty_value() {
    let fx = Fixture::new();
    fx.insert(vec![session("dev", SessionType::Redfish)]);
    for input in [&b""[..], b"\n"] {
        let out = fx.set_secret("dev", "password", input);
        assert!(out.one_line_error().contains("empty"), "{out:#?}");
    }
    assert_eq!(fx.run_unlocked(&["secret", "list", "dev"]).ok(), "");
}

#[test]
fn a_secret_value_is_never_taken_from_an_argument() {
    let fx = Fixture::new();
    fx.insert(vec![session("dev", SessionType::Redfish)]);
    let out = fx.run_unlocked(&["secret", "set", "dev", "password", "hunter2"]);
    assert_eq!(out.code, Some(2), "usage error: {out:#?}");
    let out = fx.run_unlocked(&["secret", "set", "dev", "password", "--value", "hunter2"]);
    assert_eq!(out.code, Some(2), "usage error: {out:#?}");
    assert!(!fx.secrets().exists());
}

#[test]
fn secret_delete_removes_one_secret() {
    let fx = Fixture::new();
    fx.insert(vec![session("dev", SessionType::Redfish)]);
    fx.set_secret("dev", "a", b"1").ok();
    fx.set_secret("dev", "b", b"2").ok();
    fx.run_unlocked(&["secret", "delete", "dev", "a"]).ok();
    assert_eq!(fx.run_unlocked(&["secret", "list", "dev"]).ok(), "b\n");
    let again = fx.run_unlocked(&["secret", "delete", "dev", "a"]);
    assert!(again.one_line_error().contains("not found"));
    let bad = fx.run_unlocked(&["secret", "delete", "dev", "no/slashes"]);
    assert!(bad.one_line_error().contains("secret name"));
}

#[test]
fn without_a_passphrase_and_no_terminal_secret_commands_fail_fast() {
    let fx = Fixture::new();
    fx.insert(vec![session("dev", SessionType::Redfish)]);
    // stdin is a pipe and stderr is captured: there is no terminal to ask on.
    let out = Fixture::run_with_stdin(fx.command(&["secret", "set", "dev", "password"]), b"x\n");
    let line = out.one_line_error();
    assert!(line.contains("SESSIONCTL_PASSPHRASE"), "{line}");
    assert!(!fx.secrets().exists(), "nothing was written");

    for args in [
        &["secret", "list", "dev"][..],
        &["start", "dev"],
        &["remove", "dev"],
    ] {
        let out = fx.run(args);
        assert!(
            out.one_line_error().contains("SESSIONCTL_PASSPHRASE"),
            "{args:?}: {out:#?}"
        );
    }
    assert_eq!(fx.stored().len(), 1, "remove did nothing");
}

#[test]
fn a_wrong_passphrase_is_a_clear_error_and_changes_nothing() {
    let fx = Fixture::new();
    fx.insert(vec![session("dev", SessionType::Redfish)]);
    fx.set_secret("dev", "password", b"right\n").ok();
    let before = std::fs::read(fx.secrets()).expect("secrets file");

    let mut set = fx.command(&["secret", "set", "dev", "password"]);
    set.env("SESSIONCTL_PASSPHRASE", "wrong passphrase");
    let out = Fixture::run_with_stdin(set, b"overwritten\n");
    let line = out.one_line_error();
    assert!(line.contains("passphrase is wrong"), "{line}");
    assert!(line.contains(&fx.secrets().display().to_string()), "{line}");

    let list = Run::from(
        fx.command(&["secret", "list", "dev"])
            .env("SESSIONCTL_PASSPHRASE", "wrong passphrase")
            .output()
            .expect("run"),
    );
    assert!(list.one_line_error().contains("passphrase is wrong"));
    assert_eq!(std::fs::read(fx.secrets()).expect("secrets file"), before);
}

#[test]
fn list_and_show_never_open_the_secret_store() {
    let fx = Fixture::new();
    fx.insert(vec![session("dev", SessionType::Redfish)]);
    // A secrets file nobody could open: list and show must not care.
    std::fs::write(fx.secrets(), b"not a secrets file").expect("write");
    for args in [
        &["list"][..],
        &["list", "--json"],
        &["show", "dev"],
        &["show", "dev", "--json"],
    ] {
        let out = fx.run(args);
        assert!(out.ok().contains("dev"), "{args:?}: {out:#?}");
        assert_eq!(out.stderr, "", "{args:?}");
    }
    // Whereas a command that needs it says what is wrong with it.
    let out = fx.run_unlocked(&["secret", "list", "dev"]);
    assert!(out.one_line_error().contains("secrets.enc"));
}

#[test]
fn secrets_file_flag_and_variable_choose_the_file() {
    let fx = Fixture::new();
    fx.insert(vec![session("dev", SessionType::Redfish)]);
    let custom = fx.dir.path().join("elsewhere/my-secrets");
    let mut set = fx.command(&[
        "--secrets-file",
        custom.to_str().expect("utf-8"),
        "secret",
        "set",
        "dev",
        "k",
    ]);
    set.env("SESSIONCTL_PASSPHRASE", PASSPHRASE);
    Fixture::run_with_stdin(set, b"v").ok();
    assert!(custom.exists());
    assert!(!fx.secrets().exists());
    let listed = Run::from(
        fx.command(&["secret", "list", "dev"])
            .env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
            .env("SESSIONCTL_SECRETS_FILE", &custom)
            .output()
            .expect("run"),
    );
    assert_eq!(listed.ok(), "k\n");
}

#[cfg(not(feature = "keyring"))]
#[test]
fn the_keyring_store_needs_the_keyring_feature() {
    let fx = Fixture::new();
    fx.insert(vec![session("dev", SessionType::Redfish)]);
    let out = fx.run(&["--secret-store", "keyring", "secret", "list", "dev"]);
    let line = out.error_with(2);
    assert!(line.contains("keyring"), "{line}");
    assert!(line.contains("feature"), "{line}");
}

#[test]
fn usage_errors_exit_with_2() {
    let fx = Fixture::new();
    assert_eq!(fx.run(&["show"]).code, Some(2));
    assert_eq!(fx.run(&["frobnicate"]).code, Some(2));
    assert_eq!(fx.run(&["--secret-store", "vault", "list"]).code, Some(2));
    assert_eq!(fx.run(&["add"]).code, Some(2), "no add command yet");
    let bad_log = fx.run(&["--log", "debug=[", "list"]);
    assert!(bad_log.error_with(2).contains("log"));
}

#[test]
fn help_describes_every_command() {
    let fx = Fixture::new();
    let help = fx.run(&["--help"]);
    for word in [
        "list",
        "show",
        "start",
        "stop",
        "rotate",
        "remove",
        "secret",
        "--workspace",
        "SESSIONCTL_PASSPHRASE",
        "--log",
    ] {
        assert!(help.ok().contains(word), "--help lacks {word}");
    }
    let secret = fx.run(&["secret", "--help"]);
    for word in ["set", "list", "delete"] {
        assert!(secret.ok().contains(word), "secret --help lacks {word}");
    }
    assert!(
        fx.run(&["secret", "set", "--help"])
            .ok()
            .contains("standard input")
    );
}

/// The value put through `secret set` must never come out anywhere: not in
/// any command's stdout or stderr (with trace logging on), not in the
/// workspace file, and not in the secrets file's bytes (it is encrypted).
#[test]
fn canary_secret_never_leaks() {
    const CANARY: &str = "CANARY-sessionctl-4be1f09c-value";
    let fx = Fixture::new();
    let stored = fx.insert(vec![session("dev", SessionType::AwsIamUser)]);
    let id = stored[0].session_id.to_string();
    let mut transcript = Vec::new();

    let traced = |args: &[&str]| {
        let mut command = fx.command(args);
        command
            .env("SESSIONCTL_LOG", "trace")
            .env("SESSIONCTL_PASSPHRASE", PASSPHRASE);
        command
    };

    let set = Fixture::run_with_stdin(
        traced(&["secret", "set", "dev", "access-key-secret"]),
        format!("{CANARY}\n").as_bytes(),
    );
    set.ok();
    transcript.push(set);

    // The secret really is stored (so the checks below are not vacuous).
    let store = fx.store();
    let key = SecretKey::new(stored[0].session_id, "access-key-secret").expect("key");
    let value = block_on(async { store.get(&key).await.expect("get") });
    assert_eq!(value.expect("stored").expose(), CANARY);
    drop(store);

    for args in [
        &["list"][..],
        &["list", "--json"],
        &["show", "dev"],
        &["show", "dev", "--json"],
        &["show", &id, "--json"],
        &["secret", "list", "dev"],
        &["start", "dev"],
        &["stop", "dev"],
        &["rotate", "dev"],
    ] {
        transcript.push(Run::from(traced(args).output().expect("run")));
    }
    let workspace_bytes = std::fs::read(fx.workspace()).expect("workspace file");
    let secrets_bytes = std::fs::read(fx.secrets()).expect("secrets file");
    transcript.push(Run::from(traced(&["remove", "dev"]).output().expect("run")));
    assert_eq!(transcript.last().map(|r| r.code), Some(Some(0)));

    // Trace logging was really on.
    assert!(
        transcript.iter().any(|r| r.stderr.contains("DEBUG")),
        "no log output: {transcript:#?}"
    );
    for run in &transcript {
        assert!(!run.stdout.contains(CANARY), "stdout leaked: {run:#?}");
        assert!(!run.stderr.contains(CANARY), "stderr leaked: {run:#?}");
        assert!(
            !run.stderr.contains(PASSPHRASE),
            "passphrase leaked: {run:#?}"
        );
    }
    assert!(
        !contains(&workspace_bytes, CANARY.as_bytes()),
        "workspace file leaked"
    );
    assert!(
        !contains(&secrets_bytes, CANARY.as_bytes()),
        "secrets file leaked"
    );
    // Nor in any other file left in the directory (backups, locks, temp files).
    for file in files(fx.dir.path()) {
        let bytes = std::fs::read(&file).expect("read");
        assert!(
            !contains(&bytes, CANARY.as_bytes()),
            "{} leaked",
            file.display()
        );
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn files(dir: &Path) -> Vec<PathBuf> {
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

// ---- AWS (cargo feature `aws`, on by default) -------------------------------

#[cfg(feature = "aws")]
mod aws {
    use super::*;
    use session_aws::{ChainedRoleConfig, long_term};
    use session_core::SecretKey;

    const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY-canary";

    fn add_user(fx: &Fixture, extra: &[&str], stdin: &[u8]) -> Run {
        let mut args = vec!["add", "aws-iam-user", "dev", "--access-key-id", KEY_ID];
        args.extend_from_slice(extra);
        let mut command = fx.command(&args);
        command.env("SESSIONCTL_PASSPHRASE", PASSPHRASE);
        Fixture::run_with_stdin(command, stdin)
    }

    fn stored_secret(fx: &Fixture, session: &Session, name: &str) -> Option<String> {
        let store = fx.store();
        block_on(async move {
            store
                .get(&SecretKey::new(session.session_id, name).expect("key"))
                .await
                .expect("get")
                .map(|s| s.expose().to_owned())
        })
    }

    #[test]
    fn add_aws_iam_user_takes_the_secret_from_stdin_only() {
        let fx = Fixture::new();
        let out = add_user(
            &fx,
            &["--region", "eu-west-1", "--profile", "dev-prof"],
            format!("{SECRET}\n").as_bytes(),
        );
        assert!(out.ok().starts_with("added session 'dev'"), "{out:#?}");
        assert!(!out.stdout.contains(SECRET) && !out.stderr.contains(SECRET));
        let stored = fx.stored();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].session_type, SessionType::AwsIamUser);
        assert_eq!(stored[0].region.as_deref(), Some("eu-west-1"));
        assert_eq!(stored[0].config.get_str("profile"), Some("dev-prof"));
        assert_eq!(
            stored_secret(&fx, &stored[0], long_term::SECRET_ACCESS_KEY).as_deref(),
            Some(SECRET),
            "one newline removed"
        );
        assert_eq!(
            stored_secret(&fx, &stored[0], long_term::ACCESS_KEY_ID).as_deref(),
            Some(KEY_ID)
        );
        let file = std::fs::read_to_string(fx.workspace()).expect("workspace");
        assert!(
            !file.contains(SECRET),
            "the secret is not in the workspace file"
        );

        // There is no flag for the secret: a usage error.
        let flag = fx.run_unlocked(&[
            "add",
            "aws-iam-user",
            "x",
            "--access-key-id",
            KEY_ID,
            "--secret-access-key",
            "s",
        ]);
        assert_eq!(flag.code, Some(2), "a usage error: {flag:#?}");
    }

    #[test]
    fn add_aws_iam_user_reads_a_named_variable_and_validates_first() {
        let fx = Fixture::new();
        let mut command = fx.command(&[
            "add",
            "aws-iam-user",
            "ci",
            "--access-key-id",
            KEY_ID,
            "--secret-access-key-env",
            "MY_SECRET",
        ]);
        command
            .env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
            .env("MY_SECRET", SECRET);
        let out = Run::from(command.output().expect("run"));
        out.ok();
        let stored = fx.stored();
        assert_eq!(
            stored_secret(&fx, &stored[0], long_term::SECRET_ACCESS_KEY).as_deref(),
            Some(SECRET)
        );

        let mut unset = fx.command(&[
            "add",
            "aws-iam-user",
            "ci2",
            "--access-key-id",
            KEY_ID,
            "--secret-access-key-env",
            "NOT_SET_ANYWHERE",
        ]);
        unset
            .env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
            .env_remove("NOT_SET_ANYWHERE");
        let line = Run::from(unset.output().expect("run"))
            .one_line_error()
            .to_owned();
        assert!(line.contains("NOT_SET_ANYWHERE"), "{line}");

        for (args, field) in [
            (vec!["--access-key-id", "not-a-key"], "accessKeyId"),
            (
                vec!["--access-key-id", KEY_ID, "--duration-seconds", "60"],
                "durationSeconds",
            ),
            (
                vec!["--access-key-id", KEY_ID, "--profile", "has space"],
                "profile",
            ),
            (
                vec!["--access-key-id", KEY_ID, "--mfa-serial", "x"],
                "mfaSerial",
            ),
        ] {
            let mut all = vec!["add", "aws-iam-user", "bad"];
            all.extend(args);
            let mut command = fx.command(&all);
            command.env("SESSIONCTL_PASSPHRASE", PASSPHRASE);
            let out = Fixture::run_with_stdin(command, SECRET.as_bytes());
            assert!(out.one_line_error().contains(field), "{field}: {out:#?}");
        }
        assert_eq!(fx.stored().len(), 1, "refused adds store nothing");
    }

    #[test]
    fn add_aws_role_chained_links_an_aws_parent() {
        let fx = Fixture::new();
        add_user(&fx, &[], SECRET.as_bytes()).ok();
        let out = fx.run(&[
            "add",
            "aws-role-chained",
            "deploy",
            "--parent",
            "dev",
            "--role-arn",
            "arn:aws:iam::210987654321:role/Deploy",
            "--tag",
            "team=infra",
            "--transitive-tag-key",
            "team",
            "--duration-seconds",
            "1800",
        ]);
        out.ok();
        let stored = fx.stored();
        let child = stored
            .iter()
            .find(|s| s.session_name == "deploy")
            .expect("child");
        assert_eq!(child.parent_session_id, Some(stored[0].session_id));
        let config: ChainedRoleConfig = child.config.get().expect("config");
        assert_eq!(config.role_arn, "arn:aws:iam::210987654321:role/Deploy");
        assert_eq!(config.tags.get("team").map(String::as_str), Some("infra"));
        assert_eq!(config.duration_seconds, Some(1800));

        fx.insert(vec![session("bmc", SessionType::Redfish)]);
        let not_aws = fx.run(&[
            "add",
            "aws-role-chained",
            "x",
            "--parent",
            "bmc",
            "--role-arn",
            "arn:aws:iam::210987654321:role/D",
        ]);
        assert!(not_aws.one_line_error().contains("not AWS credentials"));
        let bad_arn = fx.run(&[
            "add",
            "aws-role-chained",
            "y",
            "--parent",
            "dev",
            "--role-arn",
            "arn:aws:iam::1:role/D",
        ]);
        assert!(bad_arn.one_line_error().contains("roleArn"));
        let too_long = fx.run(&[
            "add",
            "aws-role-chained",
            "z",
            "--parent",
            "dev",
            "--role-arn",
            "arn:aws:iam::210987654321:role/D",
            "--duration-seconds",
            "7200",
        ]);
        assert!(too_long.one_line_error().contains("durationSeconds"));
        assert_eq!(fx.stored().len(), 3);
    }

    /// The whole path a user takes: add, start against moto, botocore reads
    /// the profile from the credentials file and calls STS with it, stop
    /// leaves the user's own file content byte-identical.
    #[test]
    fn start_publishes_a_profile_botocore_uses_and_stop_restores_the_file() {
        let Some(moto) = session_testkit::peers::moto::MotoServer::start() else {
            return;
        };
        let Some(botocore) = session_testkit::readers::botocore::Botocore::new() else {
            return;
        };
        let fx = Fixture::new();
        let aws_dir = fx.dir.path().join("aws");
        std::fs::create_dir_all(&aws_dir).expect("dir");
        let credentials = aws_dir.join("credentials");
        let config = aws_dir.join("config");
        let user_content = "# my own keys\r\n[personal]\r\naws_access_key_id = AKIAPERSONAL00000000\r\naws_secret_access_key = personal\r\n";
        std::fs::write(&credentials, user_content).expect("fixture");
        let aws = |command: &mut Command| {
            command
                .env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
                .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
                .env("AWS_CONFIG_FILE", &config)
                .env("AWS_ENDPOINT_URL", moto.endpoint_url())
                .env_remove("AWS_ENDPOINT_URL_STS")
                .env_remove("AWS_REGION")
                .env_remove("AWS_DEFAULT_REGION");
        };
        add_user(&fx, &["--region", "eu-west-1"], SECRET.as_bytes()).ok();

        let mut start = fx.command(&["start", "dev"]);
        aws(&mut start);
        let out = Run::from(start.output().expect("run"));
        assert!(out.ok().contains("active"), "{out:#?}");
        let text = std::fs::read_to_string(&credentials).expect("read");
        assert!(
            text.starts_with(user_content),
            "the user's content is untouched at the top"
        );
        assert!(text.contains("[dev]") && text.contains("# managed-by: session-sdk session="));

        let result = botocore
            .script(
                r#"
                import boto3, json
                s = boto3.Session(profile_name="dev")
                c = s.get_credentials()
                ident = s.client("sts").get_caller_identity()
                print(json.dumps({"method": c.method, "region": s.region_name, "account": ident["Account"]}))
                "#,
            )
            .credentials_file(&credentials)
            .config_file(&config)
            .endpoint_url(moto.endpoint_url())
            .run();
        result.assert_success();
        let seen: Value = result.json();
        assert_eq!(seen["method"], "shared-credentials-file");
        assert_eq!(seen["region"], "eu-west-1", "region from the config file");
        assert!(seen["account"].is_string());

        let mut stop = fx.command(&["stop", "dev"]);
        aws(&mut stop);
        Run::from(stop.output().expect("run")).ok();
        assert_eq!(
            std::fs::read_to_string(&credentials).expect("read"),
            user_content,
            "byte-identical after stop"
        );
        let gone = botocore
            .script(
                r#"
                import boto3, botocore.exceptions
                try:
                    boto3.Session(profile_name="dev")
                    print("still there")
                except botocore.exceptions.ProfileNotFound:
                    print("gone")
                "#,
            )
            .credentials_file(&credentials)
            .config_file(&config)
            .run();
        assert_eq!(gone.stdout.trim(), "gone");
        // The long-term key never reached any file but the encrypted store.
        for path in [&credentials, &config, &fx.workspace()] {
            let bytes = std::fs::read(path).unwrap_or_default();
            assert!(!contains(&bytes, SECRET.as_bytes()), "{}", path.display());
        }
    }

    /// The environment that points sessionctl at moto and private AWS files.
    fn moto_env(
        command: &mut Command,
        moto: &session_testkit::peers::moto::MotoServer,
        aws_dir: &Path,
    ) {
        command
            .env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
            .env("AWS_SHARED_CREDENTIALS_FILE", aws_dir.join("credentials"))
            .env("AWS_CONFIG_FILE", aws_dir.join("config"))
            .env("AWS_ENDPOINT_URL", moto.endpoint_url())
            .env_remove("AWS_ENDPOINT_URL_STS")
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_REGION")
            .env_remove("SESSIONCTL_AWS_SINK")
            .env_remove("SESSIONCTL_AWS_SESSION");
    }

    /// `--aws-sink credential-process`: no keys in any file; botocore runs
    /// sessionctl itself and gets working credentials; concurrent callers
    /// make one start.
    #[test]
    fn credential_process_profile_is_used_by_botocore() {
        let Some(moto) = session_testkit::peers::moto::MotoServer::start() else {
            return;
        };
        let Some(botocore) = session_testkit::readers::botocore::Botocore::new() else {
            return;
        };
        let fx = Fixture::new();
        let aws_dir = fx.dir.path().join("aws");
        add_user(&fx, &["--region", "eu-west-1"], SECRET.as_bytes()).ok();
        let revision_before = fx.stored()[0].revision();

        // Five processes at once on the inactive session: one start.
        let children: Vec<_> = (0..5)
            .map(|_| {
                let mut command = fx.command(&["aws", "credential-process", "dev"]);
                moto_env(&mut command, &moto, &aws_dir);
                command.env("SESSIONCTL_AWS_SINK", "credential-process");
                command
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn")
            })
            .collect();
        let mut outputs = Vec::new();
        for child in children {
            let out = Run::from(child.wait_with_output().expect("wait"));
            outputs.push(json(out.ok()));
        }
        for doc in &outputs {
            assert_eq!(doc["Version"], 1);
            assert_eq!(doc["AccessKeyId"], outputs[0]["AccessKeyId"]);
            let expiration = doc["Expiration"].as_str().expect("Expiration");
            assert!(
                expiration.ends_with('Z') && expiration.len() == 20,
                "{expiration}"
            );
            assert!(doc["SessionToken"].is_string());
        }
        let after = &fx.stored()[0];
        assert_eq!(after.status(), SessionStatus::Active);
        assert_eq!(
            after.revision(),
            revision_before + 2,
            "one start (pending, active), not five"
        );

        let config = std::fs::read_to_string(aws_dir.join("config")).expect("config");
        assert!(
            config.contains("[profile dev]") && config.contains("credential_process = \""),
            "{config}"
        );
        let credentials = std::fs::read_to_string(aws_dir.join("credentials")).unwrap_or_default();
        assert!(
            !credentials.contains("aws_secret_access_key"),
            "no keys in the credentials file"
        );

        let result = botocore
            .script(
                r#"
                import boto3, json
                s = boto3.Session(profile_name="dev")
                c = s.get_credentials()
                frozen = c.get_frozen_credentials()
                ident = s.client("sts").get_caller_identity()
                print(json.dumps({"method": c.method, "key": frozen.access_key, "region": s.region_name, "account": ident["Account"]}))
                "#,
            )
            .credentials_file(aws_dir.join("credentials"))
            .config_file(aws_dir.join("config"))
            .endpoint_url(moto.endpoint_url())
            .env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
            .run();
        result.assert_success();
        let seen: Value = result.json();
        assert_eq!(
            seen["method"], "custom-process",
            "botocore ran our credential_process"
        );
        assert_eq!(seen["key"], outputs[0]["AccessKeyId"]);
        assert_eq!(seen["region"], "eu-west-1");

        let mut stop = fx.command(&["stop", "dev"]);
        moto_env(&mut stop, &moto, &aws_dir);
        Run::from(stop.output().expect("stop")).ok();
        let config = std::fs::read_to_string(aws_dir.join("config")).expect("config");
        assert!(
            !config.contains("credential_process"),
            "stop removes the profile: {config}"
        );
    }

    #[test]
    fn env_and_exec_hand_over_the_credentials() {
        let Some(moto) = session_testkit::peers::moto::MotoServer::start() else {
            return;
        };
        let fx = Fixture::new();
        let aws_dir = fx.dir.path().join("aws");
        add_user(&fx, &["--region", "ap-south-1"], SECRET.as_bytes()).ok();

        let mut env = fx.command(&["aws", "env", "dev"]);
        moto_env(&mut env, &moto, &aws_dir);
        env.env("SESSIONCTL_AWS_SINK", "none");
        let out = Run::from(env.output().expect("env"));
        let text = out.ok().to_owned();
        for name in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_CREDENTIAL_EXPIRATION",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
        ] {
            assert!(
                text.contains(&format!("export {name}='")),
                "{name} in {text}"
            );
        }
        assert!(text.contains("export AWS_REGION='ap-south-1'"));
        assert!(
            !text.contains(SECRET),
            "the long-term secret is never exported"
        );
        assert!(
            !aws_dir.join("credentials").exists(),
            "--aws-sink none writes no file"
        );

        let mut exec = fx.command(&["aws", "exec", "dev", "--", "sh", "-c", "test -z \"$AWS_PROFILE\" && test -n \"$AWS_SESSION_TOKEN\" && echo \"$SESSIONCTL_AWS_SESSION $AWS_REGION\""]);
        moto_env(&mut exec, &moto, &aws_dir);
        exec.env("SESSIONCTL_AWS_SINK", "none")
            .env("AWS_PROFILE", "someone-else");
        let out = Run::from(exec.output().expect("exec"));
        assert_eq!(out.ok().trim(), "dev ap-south-1", "{out:#?}");

        let mut failing = fx.command(&["aws", "exec", "dev", "--", "sh", "-c", "exit 7"]);
        moto_env(&mut failing, &moto, &aws_dir);
        failing.env("SESSIONCTL_AWS_SINK", "none");
        let out = Run::from(failing.output().expect("exec"));
        assert_eq!(out.code, Some(7), "the command's status: {out:#?}");
        assert_eq!(out.stderr, "", "nothing added to stderr");

        let mut nested = fx.command(&["aws", "exec", "dev", "--", "true"]);
        moto_env(&mut nested, &moto, &aws_dir);
        nested.env("SESSIONCTL_AWS_SESSION", "outer");
        let line = Run::from(nested.output().expect("exec"))
            .one_line_error()
            .to_owned();
        assert!(
            line.contains("already inside") && line.contains("outer"),
            "{line}"
        );
    }

    /// `add aws-sso-role` then `start` against the SSO fake with trace
    /// logging: the device flow runs (auto-approved), the profile is
    /// published, and neither the access token nor the role's secret key
    /// appears in the trace output.
    #[test]
    fn sso_role_starts_through_the_device_flow_without_logging_the_token() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let fake = rt.block_on(session_testkit::fakes::SsoFake::start());
        fake.set_auto_approve(true);
        fake.set_interval(std::time::Duration::from_secs(0));
        fake.add_account("111122223333", "Prod", "ops@example.com");
        fake.add_role("111122223333", "Admin");
        let fx = Fixture::new();
        let aws_dir = fx.dir.path().join("aws");
        fx.run(&[
            "add",
            "aws-sso-role",
            "prod-admin",
            "--start-url",
            "https://d-123.awsapps.com/start",
            "--sso-region",
            "us-east-1",
            "--account-id",
            "111122223333",
            "--role-name",
            "Admin",
            "--sso-session",
            "my-sso",
            "--region",
            "eu-west-1",
        ])
        .ok();
        let bad = fx.run(&[
            "add",
            "aws-sso-role",
            "x",
            "--start-url",
            "https://d-123.awsapps.com/start",
            "--sso-region",
            "us-east-1",
            "--account-id",
            "12",
            "--role-name",
            "Admin",
        ]);
        assert!(bad.one_line_error().contains("accountId"));

        let mut start = fx.command(&["start", "prod-admin"]);
        start
            .env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
            .env("SESSIONCTL_LOG", "trace")
            .env("AWS_SHARED_CREDENTIALS_FILE", aws_dir.join("credentials"))
            .env("AWS_CONFIG_FILE", aws_dir.join("config"))
            .env("AWS_ENDPOINT_URL_SSO_OIDC", fake.oidc_endpoint())
            .env("AWS_ENDPOINT_URL_SSO", fake.portal_endpoint())
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("SESSIONCTL_AWS_SINK");
        let out = Run::from(start.output().expect("start"));
        assert_eq!(out.code, Some(0), "{out:#?}");
        assert!(out.stdout.contains("active"), "{out:#?}");
        assert!(out.stderr.contains("TRACE"), "trace logging was on");
        assert_eq!(fake.device_authorizations(), 1);

        let cache_dir = fx.dir.path().join("home/.aws/sso/cache");
        let token_file = std::fs::read_dir(&cache_dir)
            .expect("the SSO cache was written")
            .map(|e| e.expect("entry").path())
            .find(|p| {
                p.extension().is_some_and(|x| x == "json") && !p.to_string_lossy().contains("lock")
            })
            .expect("a token file");
        let token: Value = json(&std::fs::read_to_string(&token_file).expect("token"));
        let access_token = token["accessToken"].as_str().expect("accessToken");
        assert!(
            !out.stderr.contains(access_token),
            "the bearer token leaked into the log"
        );
        let issued = fake.issued_credentials();
        let secret_key = issued
            .last()
            .expect("credentials issued")
            .secret_access_key
            .clone();
        assert!(!out.stderr.contains(&secret_key) && !out.stdout.contains(&secret_key));
        let credentials =
            std::fs::read_to_string(aws_dir.join("credentials")).expect("credentials");
        assert!(credentials.contains("[prod-admin]") && credentials.contains(&secret_key));
        drop(fake);
    }

    #[test]
    fn add_aws_role_federated_records_the_assertion_source() {
        let fx = Fixture::new();
        fx.run(&[
            "add",
            "aws-role-federated",
            "fed",
            "--role-arn",
            "arn:aws:iam::111122223333:role/Federated",
            "--principal-arn",
            "arn:aws:iam::111122223333:saml-provider/MyIdP",
            "--assertion-command",
            "saml-helper",
            "--assertion-arg",
            "--idp",
            "--assertion-arg",
            "corp",
        ])
        .ok();
        let stored = fx.stored();
        let source = &stored[0].config.as_map()["assertionSource"];
        assert_eq!(source["type"], "command");
        assert_eq!(source["program"], "saml-helper");
        assert_eq!(source["args"], serde_json::json!(["--idp", "corp"]));
        let neither = fx.run(&[
            "add",
            "aws-role-federated",
            "x",
            "--role-arn",
            "arn:aws:iam::111122223333:role/F",
            "--principal-arn",
            "arn:aws:iam::111122223333:saml-provider/I",
        ]);
        assert_eq!(neither.code, Some(2), "a source is required: {neither:#?}");
        let bad = fx.run(&[
            "add",
            "aws-role-federated",
            "y",
            "--role-arn",
            "arn:aws:iam::111122223333:role/F",
            "--principal-arn",
            "arn:aws:iam::111122223333:role/NotAProvider",
            "--assertion-file",
            "a.xml",
        ]);
        assert!(bad.one_line_error().contains("principalArn"));
    }

    #[test]
    fn sso_sync_adds_one_session_per_role_once() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let fake = rt.block_on(session_testkit::fakes::SsoFake::start());
        fake.set_auto_approve(true);
        fake.set_interval(std::time::Duration::from_secs(0));
        fake.set_page_size(1);
        fake.add_account("111122223333", "Prod", "ops@example.com");
        fake.add_role("111122223333", "Admin");
        fake.add_role("111122223333", "ReadOnly");
        fake.add_account("444455556666", "Dev", "dev@example.com");
        fake.add_role("444455556666", "Admin");
        let fx = Fixture::new();
        let sync = |extra: &[&str]| {
            let mut args = vec![
                "aws",
                "sso-sync",
                "--start-url",
                "https://d-123.awsapps.com/start",
                "--sso-region",
                "us-east-1",
                "--sso-session",
                "corp",
                "--region",
                "eu-west-1",
            ];
            args.extend_from_slice(extra);
            let mut command = fx.command(&args);
            command
                .env("AWS_ENDPOINT_URL_SSO_OIDC", fake.oidc_endpoint())
                .env("AWS_ENDPOINT_URL_SSO", fake.portal_endpoint())
                .env_remove("AWS_ENDPOINT_URL");
            Run::from(command.output().expect("sso-sync"))
        };
        let dry = sync(&["--dry-run"]);
        assert!(dry.ok().contains("3 to add"), "{dry:#?}");
        assert!(fx.stored().is_empty(), "a dry run adds nothing");

        let first = sync(&[]);
        assert!(
            first.ok().contains("3 added, 0 already present"),
            "{first:#?}"
        );
        let mut names: Vec<String> = fx.stored().iter().map(|s| s.session_name.clone()).collect();
        names.sort();
        assert_eq!(names, ["Dev/Admin", "Prod/Admin", "Prod/ReadOnly"]);
        let stored = fx.stored();
        assert!(
            stored
                .iter()
                .all(|s| s.session_type == SessionType::AwsSsoRole
                    && s.region.as_deref() == Some("eu-west-1"))
        );
        assert_eq!(stored[0].config.get_str("ssoSessionName"), Some("corp"));

        fake.add_role("444455556666", "Deploy");
        let second = sync(&[]);
        assert!(
            second.ok().contains("1 added, 3 already present"),
            "{second:#?}"
        );
        assert_eq!(
            fake.device_authorizations(),
            1,
            "the second run reused the cached login"
        );
        drop(fake);
    }
}

// ---- Redfish (cargo feature `redfish`, on by default) -----------------------

#[cfg(feature = "redfish")]
mod redfish {
    use super::*;
    use session_redfish::server::{RedfishServer, Role};

    const BMC_PASSWORD: &str = "bmc-password-canary-42";

    /// add, start, rotate, stop twice against the crate's embedded server; a
    /// wrong password is one clear line; the password never shows.
    #[test]
    fn add_start_rotate_stop_a_redfish_session() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let server = rt.block_on(async {
            RedfishServer::builder()
                .account("admin", Secret::new(BMC_PASSWORD), Role::Administrator)
                .build()
                .expect("server")
                .start()
                .await
                .expect("start")
        });
        let fx = Fixture::new();
        let ca = fx.dir.path().join("bmc-ca.pem");
        std::fs::write(&ca, server.ca_pem().expect("CA")).expect("write CA");
        let endpoint = server.base_url().trim_end_matches('/').to_owned();
        let add = |name: &str, password: &str| {
            let mut command = fx.command(&[
                "add",
                "redfish",
                name,
                "--endpoint",
                &endpoint,
                "--username",
                "admin",
                "--ca-file",
                ca.to_str().expect("utf-8"),
            ]);
            command.env("SESSIONCTL_PASSPHRASE", PASSPHRASE);
            Fixture::run_with_stdin(command, format!("{password}\n").as_bytes())
        };
        assert!(
            add("bmc", BMC_PASSWORD)
                .ok()
                .starts_with("added session 'bmc'")
        );
        add("bmc-wrong", "not-the-password").ok();

        let mut outputs = Vec::new();
        for args in [
            ["start", "bmc"],
            ["rotate", "bmc"],
            ["stop", "bmc"],
            ["stop", "bmc"],
        ] {
            let out = fx.run_unlocked(&args);
            assert_eq!(out.code, Some(0), "{args:?}: {out:#?}");
            outputs.push(out);
        }
        assert!(outputs[0].stdout.contains("active"), "{:#?}", outputs[0]);
        assert!(outputs[2].stdout.contains("inactive"), "{:#?}", outputs[2]);
        let stored = fx.stored();
        let bmc = stored
            .iter()
            .find(|s| s.session_name == "bmc")
            .expect("bmc");
        assert_eq!(bmc.status(), SessionStatus::Inactive);

        let wrong = fx.run_unlocked(&["start", "bmc-wrong"]);
        let line = wrong.one_line_error();
        assert!(
            line.contains("bmc-wrong") && line.contains("not authenticated"),
            "{line}"
        );

        for out in &outputs {
            assert!(!out.stdout.contains(BMC_PASSWORD) && !out.stderr.contains(BMC_PASSWORD));
        }
        let workspace = std::fs::read_to_string(fx.workspace()).expect("workspace");
        assert!(
            !workspace.contains(BMC_PASSWORD),
            "the password is not in the workspace"
        );
        rt.block_on(server.shutdown());
    }

    /// `redfish get` and `redfish sessions` through an active session; an
    /// inactive one is refused with one clear line.
    #[test]
    fn redfish_get_and_sessions_use_the_active_session() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let server = rt.block_on(async {
            RedfishServer::builder()
                .account("admin", Secret::new(BMC_PASSWORD), Role::Administrator)
                .build()
                .expect("server")
                .start()
                .await
                .expect("start")
        });
        let fx = Fixture::new();
        let ca = fx.dir.path().join("bmc-ca.pem");
        std::fs::write(&ca, server.ca_pem().expect("CA")).expect("write CA");
        let mut command = fx.command(&[
            "add",
            "redfish",
            "bmc",
            "--endpoint",
            server.base_url(),
            "--username",
            "admin",
            "--ca-file",
            ca.to_str().expect("utf-8"),
        ]);
        command.env("SESSIONCTL_PASSPHRASE", PASSPHRASE);
        Fixture::run_with_stdin(command, format!("{BMC_PASSWORD}\n").as_bytes()).ok();

        let inactive = fx.run_unlocked(&["redfish", "get", "bmc"]);
        assert!(
            inactive.one_line_error().contains("start it first"),
            "{inactive:#?}"
        );
        assert_eq!(fx.run_unlocked(&["start", "bmc"]).code, Some(0));

        let get = fx.run_unlocked(&["redfish", "get", "bmc", "/redfish/v1/SessionService"]);
        assert_eq!(get.code, Some(0), "{get:#?}");
        let body: serde_json::Value = serde_json::from_str(&get.stdout).expect("JSON");
        assert_eq!(body["SessionTimeout"], 1800, "{body}");

        let table = fx.run_unlocked(&["redfish", "sessions", "bmc"]);
        assert_eq!(table.code, Some(0), "{table:#?}");
        let lines: Vec<&str> = table.stdout.lines().collect();
        assert_eq!(lines.len(), 1, "{table:#?}");
        assert!(
            lines[0].starts_with("* ") && lines[0].contains("admin"),
            "{table:#?}"
        );
        let json = fx.run_unlocked(&["redfish", "sessions", "bmc", "--json"]);
        let list: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
        assert_eq!(list[0]["current"], true, "{list}");
        assert_eq!(list[0]["userName"], "admin", "{list}");

        assert_eq!(fx.run_unlocked(&["stop", "bmc"]).code, Some(0));
        for out in [&get, &table, &json] {
            assert!(!out.stdout.contains(BMC_PASSWORD) && !out.stderr.contains(BMC_PASSWORD));
        }
        rt.block_on(server.shutdown());
    }
}

// ---- Azure (cargo feature `azure`, on by default) ---------------------------

#[cfg(feature = "azure")]
mod azure {
    use super::*;
    use session_testkit::peers::oidc::OidcProvider;

    /// add (client secret from stdin), `azure env`, `azure exec` (with the
    /// other identities' variables removed, nesting refused), stop; against
    /// oidc-provider on loopback. The client secret never shows.
    #[test]
    fn add_env_exec_stop_an_azure_session() {
        let Some(peer) = OidcProvider::start() else {
            return;
        };
        let fx = Fixture::new();
        let mut add = fx.command(&[
            "add",
            "azure",
            "app",
            "--kind",
            "client-secret",
            "--tenant-id",
            peer.tenant(),
            "--client-id",
            peer.confidential_client_id(),
            "--subscription-id",
            "00000000-0000-0000-0000-0000000000aa",
            "--authority-host",
            &peer.authority_host(),
            "--insecure-loopback-authority",
        ]);
        add.env("SESSIONCTL_PASSPHRASE", PASSPHRASE);
        let added = Fixture::run_with_stdin(add, format!("{}\n", peer.client_secret()).as_bytes());
        assert!(added.ok().starts_with("added session 'app'"), "{added:#?}");

        let env = fx.run_unlocked(&["azure", "env", "app"]);
        let out = env.ok();
        assert!(
            out.contains(&format!("export AZURE_TENANT_ID='{}'", peer.tenant())),
            "{out}"
        );
        assert!(
            out.contains("export AZURE_SUBSCRIPTION_ID='00000000-0000-0000-0000-0000000000aa'"),
            "{out}"
        );
        assert!(out.contains("export ARM_CLIENT_ID="), "{out}");
        assert!(
            out.contains("export AZURE_ACCESS_TOKEN='ey"),
            "a JWT: {out}"
        );
        assert!(
            out.contains("export AZURE_ACCESS_TOKEN_EXPIRES_ON="),
            "{out}"
        );
        let shown = fx.run(&["show", "app"]);
        assert!(shown.ok().contains("active"), "{shown:#?}");

        let mut exec = fx.command(&[
            "azure",
            "exec",
            "app",
            "--",
            "sh",
            "-c",
            "test -n \"$AZURE_ACCESS_TOKEN\" && test -z \"$AZURE_CLIENT_SECRET\" && echo \"ok $SESSIONCTL_AZURE_SESSION\"",
        ]);
        exec.env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
            .env("AZURE_CLIENT_SECRET", "from-the-outer-shell");
        let ran = Run::from(exec.output().expect("run"));
        assert_eq!(ran.ok().trim(), "ok app", "{ran:#?}");

        let mut nested = fx.command(&["azure", "exec", "app", "--", "true"]);
        nested
            .env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
            .env("SESSIONCTL_AZURE_SESSION", "outer");
        let nested = Run::from(nested.output().expect("run"));
        assert!(nested.one_line_error().contains("nesting"), "{nested:#?}");

        assert_eq!(fx.run_unlocked(&["stop", "app"]).code, Some(0));
        for run in [&added, &env, &ran, &nested] {
            assert!(
                !run.stdout.contains(peer.client_secret())
                    && !run.stderr.contains(peer.client_secret()),
                "the client secret leaked: {run:#?}"
            );
        }
        let workspace = std::fs::read_to_string(fx.workspace()).expect("workspace");
        assert!(!workspace.contains(peer.client_secret()));
        assert!(!workspace.contains("AZURE_ACCESS_TOKEN"));
    }

    /// `add azure --azure-cli` (the CLI's client id by default), then a
    /// device-code `start` whose prompt the test reads from standard error
    /// and approves: the subscription and token land in
    /// `$AZURE_CONFIG_DIR`; `stop` removes them. A service principal is
    /// refused with the reason.
    #[cfg(feature = "azure-cli")]
    #[test]
    fn an_azure_cli_session_writes_and_removes_the_cli_files() {
        use session_azure::AZURE_CLI_CLIENT_ID;
        use session_testkit::peers::oidc::approve_device_code;
        use std::io::{BufRead, BufReader};

        let Some(peer) = OidcProvider::builder()
            .public_client(AZURE_CLI_CLIENT_ID)
            .resource("https://management.core.windows.net/")
            .start()
        else {
            return;
        };
        let fx = Fixture::new();
        let az_dir = fx.dir.path().join("az");
        let sub = "00000000-0000-0000-0000-0000000000cc";
        let refused = fx.run(&[
            "add",
            "azure",
            "sp",
            "--azure-cli",
            "--kind",
            "client-secret",
            "--tenant-id",
            peer.tenant(),
            "--subscription-id",
            sub,
        ]);
        assert!(
            refused.one_line_error().contains("for user sign-ins"),
            "{refused:#?}"
        );
        let added = fx.run_unlocked(&[
            "add",
            "azure",
            "dev",
            "--azure-cli",
            "--azure-cli-cloud",
            "AzureCloud",
            "--tenant-id",
            peer.tenant(),
            "--subscription-id",
            sub,
            "--authority-host",
            &peer.authority_host(),
            "--insecure-loopback-authority",
        ]);
        assert!(added.ok().starts_with("added session 'dev'"), "{added:#?}");
        let shown = fx.run(&["show", "dev", "--json"]);
        assert!(shown.ok().contains(AZURE_CLI_CLIENT_ID), "{shown:#?}");

        let mut start = fx.command(&["start", "dev"]);
        start
            .env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
            .env("AZURE_CONFIG_DIR", &az_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = start.spawn().expect("spawn sessionctl start");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let mut prompt = String::new();
        while !prompt.contains("enter the code") {
            prompt.clear();
            assert!(
                stderr.read_line(&mut prompt).unwrap() > 0,
                "no device prompt"
            );
        }
        // "To sign in, open URI and enter the code CODE."
        let uri = prompt
            .split_whitespace()
            .find(|w| w.starts_with("http"))
            .unwrap()
            .to_owned();
        let code = prompt
            .trim()
            .trim_end_matches('.')
            .rsplit(' ')
            .next()
            .unwrap()
            .to_owned();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(approve_device_code(
                (uri.as_str(), code.as_str()),
                "carol@contoso.com",
            ))
            .expect("approve");
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
        let output = child.wait_with_output().expect("start ends");
        assert!(output.status.success(), "{rest}");
        assert!(rest.contains("Waiting for the sign-in"), "{rest}");

        let profile = std::fs::read_to_string(az_dir.join("azureProfile.json")).unwrap();
        let profile = json(profile.trim_start_matches('\u{feff}'));
        assert_eq!(profile["subscriptions"][0]["id"], sub);
        assert_eq!(profile["subscriptions"][0]["isDefault"], true);
        assert_eq!(
            profile["subscriptions"][0]["user"]["name"],
            "carol@contoso.com"
        );
        let cache = json(&std::fs::read_to_string(az_dir.join("msal_token_cache.json")).unwrap());
        assert_eq!(cache["AccessToken"].as_object().unwrap().len(), 1);
        assert_eq!(
            cache["RefreshToken"],
            json("{}"),
            "the refresh token stays in the store"
        );

        let mut stop = fx.command(&["stop", "dev"]);
        stop.env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
            .env_remove("AZURE_CONFIG_DIR");
        let stopped = Run::from(stop.output().expect("run"));
        assert_eq!(stopped.code, Some(0), "{stopped:#?}");
        let profile = std::fs::read_to_string(az_dir.join("azureProfile.json")).unwrap();
        assert_eq!(
            json(profile.trim_start_matches('\u{feff}'))["subscriptions"],
            json("[]")
        );
        let cache = json(&std::fs::read_to_string(az_dir.join("msal_token_cache.json")).unwrap());
        assert_eq!(cache["AccessToken"], json("{}"));
        assert_eq!(cache["Account"], json("{}"));
    }
}
