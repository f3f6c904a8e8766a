//! `sessionctl add aws-ssm` and `sessionctl ssm sessions` against the SSM
//! fake control plane (checked with botocore) and, for `--as`, moto.
#![cfg(feature = "aws-ssm")]

mod common;

use std::process::Command;

use common::*;
use session_aws::AwsCredentials;
use session_aws::ssm::{SsmApi, SsmClientConfig, SsmConfig};
use session_core::{Secret, SessionType};
use session_testkit::fakes::SsmControlFake;
use session_testkit::peers::moto::{ALLOW_ALL_POLICY, MotoServer};
use session_testkit::readers::botocore::Botocore;

const TARGET: &str = "i-0123456789abcdef0";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

async fn api(fake: &SsmControlFake) -> SsmApi {
    let credentials = AwsCredentials {
        access_key_id: "AKIASEEDER0000000000".into(),
        secret_access_key: Secret::new("seeder"),
        session_token: None,
        expiration: None,
    };
    SsmClientConfig::builder()
        .endpoint_url(fake.endpoint())
        .build()
        .expect("config")
        .api("eu-west-1", Some(&credentials), "seeder")
        .await
}

#[test]
fn add_aws_ssm_validates_and_stores_the_settings() {
    let fx = Fixture::new();
    let bad = fx.run(&["add", "aws-ssm", "box", "--target", "web-1"]);
    assert!(bad.one_line_error().contains("target"), "{bad:#?}");
    let bad = fx.run(&[
        "add",
        "aws-ssm",
        "db",
        "--target",
        TARGET,
        "--parameter",
        "portNumber=http",
    ]);
    assert!(bad.one_line_error().contains("portNumber"), "{bad:#?}");
    fx.insert(vec![session("az", SessionType::Azure)]);
    let bad = fx.run(&["add", "aws-ssm", "db", "--target", TARGET, "--parent", "az"]);
    assert!(
        bad.one_line_error().contains("not AWS credentials"),
        "{bad:#?}"
    );
    assert!(
        fx.stored()
            .iter()
            .all(|s| s.session_type != SessionType::AwsSsm)
    );

    fx.run(&[
        "add",
        "aws-ssm",
        "db",
        "--target",
        TARGET,
        "--document",
        "AWS-StartPortForwardingSession",
        "--parameter",
        "portNumber=5432",
        "--parameter",
        "localPortNumber=15432",
        "--reason",
        "maintenance",
        "--region",
        "eu-west-1",
    ])
    .ok();
    let stored = fx
        .stored()
        .into_iter()
        .find(|s| s.session_name == "db")
        .expect("stored");
    assert_eq!(stored.session_type, SessionType::AwsSsm);
    assert_eq!(stored.region.as_deref(), Some("eu-west-1"));
    let config: SsmConfig = stored.config.get().expect("an SsmConfig");
    assert_eq!(config.target, TARGET);
    assert_eq!(config.local_port(), Some(15432));
    assert_eq!(config.parameters["portNumber"], ["5432"]);
    assert_eq!(config.reason.as_deref(), Some("maintenance"));
}

#[test]
fn ssm_sessions_lists_with_the_default_chain() {
    let rt = runtime();
    let fake = rt.block_on(SsmControlFake::start());
    fake.add_target(TARGET);
    fake.add_target("i-0123456789abcdef1");
    let ids: Vec<String> = rt.block_on(async {
        let api = api(&fake).await;
        let mut ids = Vec::new();
        for target in [TARGET, TARGET, "i-0123456789abcdef1"] {
            ids.push(
                api.start_session(&SsmConfig::shell(target))
                    .await
                    .unwrap()
                    .session_id,
            );
        }
        api.terminate_session(&ids[0]).await.unwrap();
        ids
    });
    let fx = Fixture::new();
    let ssm = |args: &[&str]| {
        let mut command = fx.command(&[&["ssm", "sessions"], args].concat());
        command
            .env("AWS_ENDPOINT_URL_SSM", fake.endpoint())
            .env("AWS_ACCESS_KEY_ID", "AKIADEFAULTCHAIN0000")
            .env("AWS_SECRET_ACCESS_KEY", "default-chain-secret")
            .env("AWS_REGION", "eu-central-1")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .env("AWS_CONFIG_FILE", fx.dir.path().join("none"))
            .env("AWS_SHARED_CREDENTIALS_FILE", fx.dir.path().join("none"));
        Run::from(command.output().expect("run"))
    };
    let table = ssm(&[]);
    let text = table.ok();
    assert!(text.starts_with("SESSION"), "{text}");
    assert!(text.contains(&ids[1]) && text.contains(&ids[2]), "{text}");
    assert!(
        !text.contains(&ids[0]),
        "the terminated one is history: {text}"
    );
    let call = fake.calls_of("DescribeSessions").pop().expect("a call");
    assert_eq!(call.access_key_id.as_deref(), Some("AKIADEFAULTCHAIN0000"));
    assert_eq!(call.region.as_deref(), Some("eu-central-1"));

    let history = json(ssm(&["--state", "history", "--json"]).ok());
    assert_eq!(history.as_array().expect("array").len(), 1);
    assert_eq!(history[0]["sessionId"], ids[0].as_str());
    assert_eq!(history[0]["status"], "Terminated");

    let one = json(ssm(&["--target", "i-0123456789abcdef1", "--json"]).ok());
    assert_eq!(one.as_array().expect("array").len(), 1);
    assert_eq!(one[0]["target"], "i-0123456789abcdef1");

    fake.fail_next_call_with("DescribeSessions", 400, "AccessDeniedException");
    let denied = ssm(&[]);
    let line = denied.one_line_error();
    assert!(line.contains("permission denied"), "{line}");
    drop(fake);
}

/// `--as dev`: the IAM-user session is started against moto first, and
/// DescribeSessions is signed with the credentials it issued.
#[test]
fn ssm_sessions_as_a_workspace_session_uses_its_issued_credentials() {
    let Some(moto) = MotoServer::start() else {
        return;
    };
    let Some(botocore) = Botocore::new() else {
        return;
    };
    let key = moto
        .seed_then_authenticate(|moto| moto.create_iam_user(&botocore, "dev", ALLOW_ALL_POLICY));
    let rt = runtime();
    let fake = rt.block_on(SsmControlFake::start());
    let fx = Fixture::new();
    let mut add = fx.command(&[
        "add",
        "aws-iam-user",
        "dev",
        "--access-key-id",
        &key.access_key_id,
        "--region",
        "ap-south-1",
    ]);
    add.env("SESSIONCTL_PASSPHRASE", PASSPHRASE);
    Fixture::run_with_stdin(add, key.secret_access_key.expose().as_bytes()).ok();

    let aws_dir = fx.dir.path().join("aws");
    let mut list = fx.command(&["ssm", "sessions", "--as", "dev"]);
    env(&mut list, &moto, &fake, &aws_dir);
    let out = Run::from(list.output().expect("run"));
    assert_eq!(out.ok(), "no sessions\n");

    let dev = fx
        .stored()
        .into_iter()
        .find(|s| s.session_name == "dev")
        .expect("dev");
    assert_eq!(
        dev.status(),
        session_core::SessionStatus::Active,
        "started by --as"
    );
    let issued = rt
        .block_on(AwsCredentials::load_issued(&fx.store(), dev.session_id))
        .expect("store")
        .expect("issued credentials");
    let call = fake.calls_of("DescribeSessions").pop().expect("a call");
    assert_eq!(
        call.access_key_id.as_deref(),
        Some(issued.access_key_id.as_str())
    );
    assert_eq!(
        call.region.as_deref(),
        Some("ap-south-1"),
        "the session's region"
    );
    drop(fake);
}

fn env(command: &mut Command, moto: &MotoServer, fake: &SsmControlFake, aws_dir: &std::path::Path) {
    command
        .env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
        .env("AWS_SHARED_CREDENTIALS_FILE", aws_dir.join("credentials"))
        .env("AWS_CONFIG_FILE", aws_dir.join("config"))
        .env("AWS_ENDPOINT_URL_STS", moto.endpoint_url())
        .env("AWS_ENDPOINT_URL_SSM", fake.endpoint())
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("SESSIONCTL_AWS_SINK");
}
