//! End-to-end tests of `sessionctl` with Redfish sessions (cargo feature
//! `redfish`, on by default). Each test runs the built binary against a
//! workspace in a temporary directory (see `common`).

#![cfg(feature = "redfish")]

mod common;

use session_core::SessionStatus;

use common::bmc::{BMC_PASSWORD, Bmc};
use common::*;

/// add, start, rotate, stop twice against the crate's embedded server; a
/// wrong password is one clear line; the password never shows.
#[test]
fn add_start_rotate_stop_a_redfish_session() {
    let bmc = Bmc::start();
    let fx = &bmc.fx;
    let add = |name: &str, password: &str| bmc.add(name, password);
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
}

/// `redfish get` and `redfish sessions` through an active session; an
/// inactive one is refused with one clear line.
#[test]
fn redfish_get_and_sessions_use_the_active_session() {
    let bmc = Bmc::start();
    let fx = &bmc.fx;
    bmc.add("bmc", BMC_PASSWORD).ok();

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
}

/// `--insecure-skip-verify` is never silent: `add`, `start`, `rotate`,
/// `redfish get` and `stop` each warn on stderr (logging off), and `show`
/// says that TLS verification is off.
#[test]
fn insecure_skip_verify_warns_every_time() {
    let bmc = Bmc::start();
    let fx = &bmc.fx;
    let warned = |out: &Run, what: &str| {
        assert!(
            out.stderr.contains("warning:") && out.stderr.contains("NOT verified"),
            "{what}: {out:#?}"
        );
        assert!(!out.stderr.contains(BMC_PASSWORD), "{what}: {out:#?}");
    };
    let add = bmc.add_with("bmc", BMC_PASSWORD, &["--insecure-skip-verify"]);
    add.ok();
    warned(&add, "add");
    for args in [
        &["start", "bmc"][..],
        &["rotate", "bmc"],
        &["redfish", "get", "bmc"],
        &["stop", "bmc"],
    ] {
        let out = fx.run_unlocked(args);
        assert_eq!(out.code, Some(0), "{args:?}: {out:#?}");
        warned(&out, &args.join(" "));
    }
    let show = fx.run(&["show", "bmc"]);
    assert!(show.ok().contains("TLS verification: OFF"), "{show:#?}");

    // A verified session says nothing of the kind.
    bmc.add("safe", BMC_PASSWORD).ok();
    let start = fx.run_unlocked(&["start", "safe"]);
    assert_eq!(start.code, Some(0), "{start:#?}");
    assert!(!start.stderr.contains("NOT verified"), "{start:#?}");
    assert!(
        !fx.run(&["show", "safe"])
            .ok()
            .contains("TLS verification: OFF")
    );
}

/// `add redfish` refuses a `--ca-file` that does not exist and
/// `--allow-insecure-http` for a host that is not loopback, naming the
/// path or host; nothing is added.
#[test]
fn add_refuses_a_missing_ca_file_and_remote_plain_http() {
    let bmc = Bmc::start();
    let fx = &bmc.fx;
    let missing = fx.dir.path().join("no-such-ca.pem");
    let missing = missing.to_str().expect("utf-8");
    let out = bmc.add_with("bmc", BMC_PASSWORD, &["--ca-file", missing]);
    assert_ne!(out.code, Some(0), "{out:#?}");
    assert!(out.stderr.contains(missing), "names the path: {out:#?}");

    let mut command = fx.command(&[
        "add",
        "redfish",
        "remote",
        "--endpoint",
        "http://192.0.2.10",
        "--username",
        "admin",
        "--allow-insecure-http",
    ]);
    command.env("SESSIONCTL_PASSPHRASE", PASSPHRASE);
    let out = Fixture::run_with_stdin(command, format!("{BMC_PASSWORD}\n").as_bytes());
    let line = out.one_line_error();
    assert!(
        line.contains("192.0.2.10") && line.contains("loopback"),
        "{line}"
    );
    assert!(fx.stored().is_empty(), "nothing was added");
}

/// Providers are built on first use of their session type: an AWS setting
/// that breaks every AWS session (`AWS_REGION='not a region'`) does not stop
/// a Redfish session from starting, and the AWS session's error names the
/// setting.
#[cfg(feature = "aws")]
#[test]
fn a_bad_aws_region_breaks_only_aws_sessions() {
    let bmc = Bmc::start();
    let fx = &bmc.fx;
    bmc.add("my-bmc", BMC_PASSWORD).ok();
    let mut command = fx.command(&[
        "add",
        "aws-iam-user",
        "dev",
        "--access-key-id",
        "AKIAIOSFODNN7EXAMPLE",
    ]);
    command.env("SESSIONCTL_PASSPHRASE", PASSPHRASE);
    Fixture::run_with_stdin(command, b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n").ok();

    let start = |name: &str| {
        Run::from(
            fx.command(&["start", name])
                .env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
                .env("AWS_REGION", "not a region")
                .output()
                .expect("run sessionctl"),
        )
    };
    let aws = start("dev");
    let line = aws.one_line_error();
    assert!(
        line.contains("region") && line.contains("not a region"),
        "the AWS session fails on the setting: {line}"
    );
    let bmc = start("my-bmc");
    assert_eq!(bmc.code, Some(0), "{bmc:#?}");
    assert!(bmc.stdout.contains("active"), "{bmc:#?}");
}
