//! The secrets each provider really reads never come out: a canary is the
//! Redfish password and the Azure client secret (and, in `cli_aws.rs`, the
//! AWS secret key), `start`, `rotate` and `stop` run at trace level against
//! the real peers and must succeed, and every output and every file left
//! in the directory is scanned for it.

#![cfg(any(feature = "redfish", feature = "azure", feature = "aws"))]

mod common;

use std::path::Path;

use common::*;

/// Runs `args` with the passphrase and trace logging on, and asserts success.
#[track_caller]
fn traced_ok(fx: &Fixture, args: &[&str], transcript: &mut Vec<Run>) {
    let run = Run::from(
        fx.command(args)
            .env("SESSIONCTL_LOG", "trace")
            .env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
            .output()
            .expect("run sessionctl"),
    );
    assert_eq!(run.code, Some(0), "{args:?}: {run:#?}");
    transcript.push(run);
}

/// Asserts that `canary` is in no output of `transcript` and in no file
/// under `dir`, and that trace logging really was on.
#[track_caller]
fn assert_never_shown(canary: &str, transcript: &[Run], dir: &Path) {
    assert!(
        transcript.iter().any(|r| r.stderr.contains("TRACE")),
        "trace logging was on: {transcript:#?}"
    );
    for run in transcript {
        assert!(
            !run.stdout.contains(canary) && !run.stderr.contains(canary),
            "the canary leaked: {run:#?}"
        );
    }
    for file in files(dir) {
        let bytes = std::fs::read(&file).expect("read");
        assert!(
            !contains(&bytes, canary.as_bytes()),
            "{} holds the canary",
            file.display()
        );
    }
}

#[cfg(feature = "redfish")]
#[test]
fn the_redfish_password_never_shows_through_start_rotate_stop() {
    use common::bmc::Bmc;
    const CANARY: &str = "CANARY-redfish-password-5d20";
    let bmc = Bmc::with_password(CANARY);
    let fx = &bmc.fx;
    let mut transcript = vec![bmc.add("bmc", CANARY)];
    transcript[0].ok();
    for args in [
        &["start", "bmc"][..],
        &["rotate", "bmc"],
        &["redfish", "get", "bmc", "/redfish/v1/Systems"],
        &["show", "bmc", "--json"],
        &["stop", "bmc"],
    ] {
        traced_ok(fx, args, &mut transcript);
    }
    assert_never_shown(CANARY, &transcript, fx.dir.path());
}

#[cfg(feature = "azure")]
#[test]
fn the_azure_client_secret_never_shows_through_start_rotate_stop() {
    use session_testkit::peers::oidc::OidcProvider;
    const CANARY: &str = "CANARY-azure-client-secret-91c4";
    let Some(peer) = OidcProvider::builder()
        .confidential_client("canary-app", CANARY)
        .start()
    else {
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
        "--authority-host",
        &peer.authority_host(),
        "--insecure-loopback-authority",
    ]);
    add.env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
        .env("SESSIONCTL_LOG", "trace");
    let mut transcript = vec![Fixture::run_with_stdin(
        add,
        format!("{CANARY}\n").as_bytes(),
    )];
    transcript[0].ok();
    for args in [
        &["start", "app"][..],
        &["rotate", "app"],
        &["show", "app", "--json"],
        &["stop", "app"],
    ] {
        traced_ok(&fx, args, &mut transcript);
    }
    assert_never_shown(CANARY, &transcript, fx.dir.path());
}

/// The AWS secret key moto issued to an IAM user (authentication on, so the
/// start is signed with it) through start, rotate and stop at trace level.
/// The issued temporary credentials go to the credentials file by design;
/// the long-term secret must be nowhere.
#[cfg(feature = "aws")]
#[test]
fn the_aws_secret_key_never_shows_through_start_rotate_stop() {
    use session_testkit::peers::moto::{ALLOW_ALL_POLICY, MotoServer};
    use session_testkit::readers::botocore::Botocore;
    let Some(moto) = MotoServer::start() else {
        return;
    };
    let Some(botocore) = Botocore::new() else {
        return;
    };
    let key = moto
        .seed_then_authenticate(|moto| moto.create_iam_user(&botocore, "dev", ALLOW_ALL_POLICY));
    let secret = key.secret_access_key.expose();
    let fx = Fixture::new();
    let aws_dir = fx.dir.path().join("aws");
    let aws = |command: &mut std::process::Command| {
        command
            .env("AWS_SHARED_CREDENTIALS_FILE", aws_dir.join("credentials"))
            .env("AWS_CONFIG_FILE", aws_dir.join("config"))
            .env("AWS_ENDPOINT_URL", moto.endpoint_url())
            .env_remove("AWS_ENDPOINT_URL_STS")
            .env("AWS_REGION", "us-east-1");
    };
    let mut add = fx.command(&[
        "add",
        "aws-iam-user",
        "dev",
        "--access-key-id",
        &key.access_key_id,
    ]);
    add.env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
        .env("SESSIONCTL_LOG", "trace");
    aws(&mut add);
    let mut transcript = vec![Fixture::run_with_stdin(add, secret.as_bytes())];
    transcript[0].ok();
    for args in [
        &["start", "dev"][..],
        &["rotate", "dev"],
        &["show", "dev", "--json"],
        &["stop", "dev"],
    ] {
        let mut command = fx.command(args);
        command
            .env("SESSIONCTL_LOG", "trace")
            .env("SESSIONCTL_PASSPHRASE", PASSPHRASE);
        aws(&mut command);
        let run = Run::from(command.output().expect("run sessionctl"));
        assert_eq!(run.code, Some(0), "{args:?}: {run:#?}");
        transcript.push(run);
    }
    assert_never_shown(secret, &transcript, fx.dir.path());
}
