//! End-to-end tests of `sessionctl` with Redfish sessions (cargo feature
//! `redfish`, on by default). Each test runs the built binary against a
//! workspace in a temporary directory (see `common`).

#![cfg(feature = "redfish")]

mod common;

use session_core::{Secret, SessionStatus};

use common::*;

use session_redfish::server::{RedfishServer, RedfishServerHandle, Role};

const BMC_PASSWORD: &str = "bmc-password-canary-42";

/// The crate's embedded Redfish server with one `admin` account, and a
/// workspace whose sessions trust its CA. The server stops on drop.
struct Bmc {
    rt: tokio::runtime::Runtime,
    server: Option<RedfishServerHandle>,
    fx: Fixture,
    ca: std::path::PathBuf,
}

impl Bmc {
    fn start() -> Self {
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
        Self {
            rt,
            server: Some(server),
            fx,
            ca,
        }
    }

    /// `add redfish NAME` for `admin`, with `password` on stdin.
    fn add(&self, name: &str, password: &str) -> Run {
        let server = self.server.as_ref().expect("running");
        let endpoint = server.base_url().trim_end_matches('/');
        let mut command = self.fx.command(&[
            "add",
            "redfish",
            name,
            "--endpoint",
            endpoint,
            "--username",
            "admin",
            "--ca-file",
            self.ca.to_str().expect("utf-8"),
        ]);
        command.env("SESSIONCTL_PASSPHRASE", PASSPHRASE);
        Fixture::run_with_stdin(command, format!("{password}\n").as_bytes())
    }
}

impl Drop for Bmc {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.rt.block_on(server.shutdown());
        }
    }
}

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
