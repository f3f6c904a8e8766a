//! End-to-end tests of `sessionctl`'s provider-independent commands: list,
//! show, remove, the workspace and secrets-file options, `secret`, usage and
//! help, and that a secret never leaks. Each test runs the built binary
//! against a workspace in a temporary directory (see `common`).

mod common;

use std::collections::BTreeSet;

use serde_json::Value;
use session_core::{Error, SecretKey, SecretStore, Session, SessionStatus, SessionType};
use time::macros::datetime;

use common::*;

/// The JSON field names documented in `list --help`, `show --help` and the
/// `json` module.
const ALL_FIELDS: [&str; 13] = [
    "sessionId",
    "sessionName",
    "sessionType",
    "status",
    "startDateTime",
    "region",
    "expiration",
    "issuedAt",
    "parentSessionId",
    "lastError",
    "config",
    "state",
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
    child.issued_at = Some(t0);
    child
        .replace_state(&serde_json::json!({"publishedProfile": "admin-role"}))
        .expect("state");
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
    assert_eq!(array[1]["issuedAt"], "2030-01-01T10:00:00Z");
    assert_eq!(array[1]["revision"], 1);
    assert_eq!(
        array[1]["state"],
        serde_json::json!({"publishedProfile": "admin-role"})
    );
    assert!(array[1]["config"].get("publishedProfile").is_none());
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
    assert!(!value("config").contains("publishedProfile"), "{text}");
    assert_eq!(value("state"), r#"{"publishedProfile":"admin-role"}"#);
    assert_eq!(value("revision"), "1");

    // No lastError line when there is none; a state line saying there is
    // none.
    let parent_text = fx.run(&["show", &parent.session_id.to_string()]);
    assert!(parent_text.ok().contains("sessionName:"));
    assert!(!parent_text.ok().contains("lastError"), "{parent_text:#?}");
    assert!(
        parent_text
            .ok()
            .lines()
            .any(|l| l.starts_with("state:") && l.trim_end().ends_with(" -")),
        "{parent_text:#?}"
    );
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
        for twin in &stored {
            assert!(line.contains(&twin.session_id.to_string()), "{line}");
        }
        assert!(!line.contains('…'), "both matches are listed: {line}");
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
    // A type no provider of sessionctl handles (every built-in type has
    // one now).
    let stored = fx.insert(vec![session("dev", SessionType::Other("vault".into()))]);
    let out = fx.run_unlocked(&["start", "dev"]);
    let line = out.one_line_error();
    assert!(line.contains("vault"), "{line}");
    assert!(line.contains("does not support"), "{line}");
    let after = fx.stored();
    assert_eq!(after[0].status(), SessionStatus::Inactive);
    assert_eq!(after[0].revision(), stored[0].revision(), "nothing written");

    let rotate = fx.run_unlocked(&["rotate", "dev"]);
    assert!(rotate.one_line_error().contains("vault"));
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
/// The provider operations, with the canary where each provider reads it,
/// are in `cli_provider_secrets.rs` and `cli_aws.rs`.
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
    ] {
        let run = Run::from(traced(args).output().expect("run"));
        assert_eq!(run.code, Some(0), "{args:?}: {run:#?}");
        transcript.push(run);
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

/// `add redfish` of the issue's reproduction, with `password` on stdin.
fn add_redfish(fx: &Fixture, name: &str) -> Run {
    let mut command = fx.command(&[
        "add",
        "redfish",
        name,
        "--endpoint",
        "https://127.0.0.1:1",
        "--username",
        "u",
    ]);
    command.env("SESSIONCTL_PASSPHRASE", PASSPHRASE);
    Fixture::run_with_stdin(command, b"pw\n")
}

/// D1: a workspace file and a secrets file that are symbolic links (into a
/// dotfiles repository, say) stay links, and their targets get the writes.
#[cfg(unix)]
#[test]
fn a_symlinked_workspace_and_secrets_file_stay_links() {
    use std::os::unix::fs::symlink;
    let fx = Fixture::new();
    let real = fx.dir.path().join("real");
    std::fs::create_dir(&real).expect("mkdir");
    symlink("real/t.json", fx.workspace()).expect("link");
    symlink("real/s.enc", fx.secrets()).expect("link");
    add_redfish(&fx, "b").ok();
    add_redfish(&fx, "c").ok();
    for link in [fx.workspace(), fx.secrets()] {
        let meta = std::fs::symlink_metadata(&link).expect("meta");
        assert!(
            meta.file_type().is_symlink(),
            "{} is still a link",
            link.display()
        );
    }
    let through_target = session_core::FsWorkspace::open(real.join("t.json")).expect("open");
    let sessions =
        block_on(session_core::WorkspaceRepository::list(&through_target)).expect("list");
    assert_eq!(sessions.len(), 2, "the target holds both sessions");
    let store = session_core::EncryptedFileSecretStore::open(
        real.join("s.enc"),
        session_core::Secret::new(PASSPHRASE),
    )
    .expect("open");
    for session in &sessions {
        let keys = block_on(session_core::SecretStore::names(&store, session.session_id))
            .expect("list secrets");
        assert_eq!(keys.len(), 1, "{}: {keys:?}", session.session_name);
    }
}

/// D2: a lock-file link planted in the workspace's directory is refused by
/// name, and the file it points to is not touched.
#[cfg(unix)]
#[test]
fn a_planted_lock_link_is_refused_and_its_target_untouched() {
    use std::os::unix::fs::PermissionsExt;
    let fx = Fixture::new();
    let victim = fx.dir.path().join("victim");
    std::fs::write(&victim, "someone else's file").expect("write");
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let lock = fx.dir.path().join("ws.json.lock");
    std::os::unix::fs::symlink(&victim, &lock).expect("link");
    let out = add_redfish(&fx, "b");
    let line = out.one_line_error();
    assert!(
        line.contains(&*lock.to_string_lossy()) && line.contains("symbolic link"),
        "{line}"
    );
    assert_eq!(
        std::fs::read_to_string(&victim).expect("read"),
        "someone else's file"
    );
    let mode = std::fs::metadata(&victim)
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);
}

/// D3: a workspace file its owner made read-only is a clear error and stays
/// exactly as it was.
#[cfg(unix)]
#[test]
fn a_read_only_workspace_is_a_clear_error_and_left_as_it_was() {
    use std::os::unix::fs::PermissionsExt;
    let fx = Fixture::new();
    fx.insert(vec![session("dev", SessionType::Azure)]);
    std::fs::set_permissions(fx.workspace(), std::fs::Permissions::from_mode(0o400))
        .expect("chmod");
    let before = std::fs::read(fx.workspace()).expect("read");
    let out = add_redfish(&fx, "b");
    let line = out.one_line_error();
    assert!(line.contains("read-only"), "{line}");
    assert_eq!(std::fs::read(fx.workspace()).expect("read"), before);
    let mode = std::fs::metadata(fx.workspace())
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o400);
}

/// Each command leaves every change in the workspace file itself (the
/// library's journal is folded in before `sessionctl` exits), so a person
/// or a script reading the file sees the second `add` as well as the first.
#[test]
fn after_each_command_the_file_alone_holds_every_session() {
    let fx = Fixture::new();
    add_redfish(&fx, "first").ok();
    add_redfish(&fx, "second").ok();
    let journal = fx.dir.path().join(format!(
        "{}.journal",
        fx.workspace().file_name().expect("name").to_string_lossy()
    ));
    assert!(!journal.exists(), "no journal is left pending");
    let file: Value =
        serde_json::from_slice(&std::fs::read(fx.workspace()).expect("read")).expect("JSON");
    let names: Vec<_> = file["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| s["sessionName"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["first", "second"]);
}
