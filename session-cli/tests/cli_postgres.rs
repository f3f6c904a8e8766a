//! `sessionctl --workspace postgres://…` against a real PostgreSQL (the
//! `postgresql` peer that `./scripts/test` installs): two "machines" (two
//! homes) share one workspace; the password comes from `PGPASSWORD` only
//! and never prints.
#![cfg(feature = "postgres")]

mod common;

use std::process::Command;

use serde_json::Value;
use session_testkit::peers::postgres::{self, PostgresServer};
use session_testkit::peers::require_peer;

use common::*;

fn server() -> Option<PostgresServer> {
    let bin = require_peer("postgresql", postgres::postgres_bin)?;
    Some(PostgresServer::start(&bin))
}

/// `sessionctl --workspace URL ARGS…` run from `home`, as one machine.
fn on(fx: &Fixture, home: &str, url: &str, password: Option<&str>, args: &[&str]) -> Command {
    let mut command = fx.bare();
    let home = fx.dir.path().join(home);
    command
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env_remove("PGPASSWORD")
        .env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
        .arg("--workspace")
        .arg(url)
        .args(args);
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    command
}

#[test]
fn two_machines_share_a_workspace_in_postgres() {
    let Some(server) = server() else { return };
    let fx = Fixture::new();
    let url = server.url();
    let pw = Some(server.password());
    let mut add = on(
        &fx,
        "a",
        &url,
        pw,
        &[
            "add",
            "redfish",
            "bmc",
            "--endpoint",
            "https://127.0.0.1:1",
            "--username",
            "u",
        ],
    );
    add.env("SESSIONCTL_PASSPHRASE", PASSPHRASE);
    let added = Fixture::run_with_stdin(add, b"pw\n");
    added.ok();

    // The other machine sees it, by name.
    let listed = Run::from(
        on(&fx, "b", &url, pw, &["list", "--json"])
            .output()
            .expect("run"),
    );
    let sessions: Value = serde_json::from_str(listed.ok()).expect("json");
    assert_eq!(sessions[0]["sessionName"], "bmc", "{sessions}");
    let human = Run::from(on(&fx, "b", &url, pw, &["list"]).output().expect("run"));
    assert!(human.ok().contains("bmc"), "{human:#?}");

    // Removed on b, gone on a.
    let removed = Run::from(
        on(&fx, "b", &url, pw, &["remove", "bmc"])
            .output()
            .expect("run"),
    );
    removed.ok();
    let empty = Run::from(on(&fx, "a", &url, pw, &["list"]).output().expect("run"));
    assert!(
        empty.ok().contains("no sessions in postgres://"),
        "{empty:#?}"
    );
    assert!(!empty.stdout.contains(server.password()));

    // No workspace file was made on either machine.
    for home in ["a", "b"] {
        let file = fx
            .dir
            .path()
            .join(home)
            .join(".config/sessionctl/workspace.json");
        assert!(!file.exists(), "{}", file.display());
    }
}

#[test]
fn the_password_comes_from_the_environment_only_and_never_prints() {
    let Some(server) = server() else { return };
    let fx = Fixture::new();
    // In the URL: refused before anything connects, without echoing it.
    let in_url = server.url_with_password();
    let refused = Run::from(
        on(&fx, "a", &in_url, None, &["list"])
            .output()
            .expect("run"),
    );
    let line = refused.error_with(2);
    assert!(line.contains("PGPASSWORD"), "{line}");
    assert!(!refused.stderr.contains(server.password()), "{refused:#?}");

    // A wrong one: the server's refusal, naming the URL, not the password.
    let wrong = "not-the-password-4711";
    let denied = Run::from(
        on(&fx, "a", &server.url(), Some(wrong), &["list"])
            .output()
            .expect("run"),
    );
    let line = denied.one_line_error();
    assert!(line.contains("postgres://"), "{line}");
    assert!(!denied.stderr.contains(wrong), "{denied:#?}");
}

#[test]
fn a_workspace_on_a_server_that_takes_tls_only() {
    let Some(bin) = require_peer("postgresql", postgres::postgres_bin) else {
        return;
    };
    let server = PostgresServer::start_with_tls(&bin);
    let tls = server.tls().expect("TLS");
    let fx = Fixture::new();
    let pw = Some(server.password());
    let at = |host: &str, query: &str| {
        format!(
            "postgres://{}@{host}:{}/postgres?{query}",
            postgres::USER,
            server.port()
        )
    };
    let verified = at(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", tls.ca_file.display()),
    );
    let listed = Run::from(
        on(&fx, "a", &verified, pw, &["list"])
            .output()
            .expect("run"),
    );
    assert!(
        listed.ok().contains("no sessions in postgres://"),
        "{listed:#?}"
    );

    // The certificate names localhost: by address, verify-full refuses it,
    // in one line that says why.
    let by_address = at(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={}", tls.ca_file.display()),
    );
    let refused = Run::from(
        on(&fx, "a", &by_address, pw, &["list"])
            .output()
            .expect("run"),
    );
    let line = refused.one_line_error();
    assert!(line.contains("not valid for name"), "{line}");
    assert!(!refused.stderr.contains(server.password()), "{refused:#?}");
    // And without TLS the server refuses the login.
    let plain = Run::from(
        on(&fx, "a", &at("127.0.0.1", "sslmode=disable"), pw, &["list"])
            .output()
            .expect("run"),
    );
    assert!(
        plain.one_line_error().contains("no encryption"),
        "{plain:#?}"
    );
}
