//! End-to-end tests of `sessionctl` with AWS sessions (cargo feature
//! `aws`, on by default). Each test runs the built binary against a
//! workspace in a temporary directory (see `common`).

#![cfg(feature = "aws")]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use session_core::{SecretStore, Session, SessionStatus, SessionType};

use common::*;

use session_aws::{ChainedRoleConfig, long_term};
use session_core::SecretKey;
use session_testkit::peers::moto::{ALLOW_ALL_POLICY, MotoAccessKey, MotoServer};
use session_testkit::peers::moto_recorder::RecordingMoto;
use session_testkit::readers::botocore::Botocore;

const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY-canary";

fn add_user(fx: &Fixture, extra: &[&str], stdin: &[u8]) -> Run {
    let mut args = vec!["add", "aws-iam-user", "dev", "--access-key-id", KEY_ID];
    args.extend_from_slice(extra);
    let mut command = fx.command(&args);
    command.env("SESSIONCTL_PASSPHRASE", PASSPHRASE);
    Fixture::run_with_stdin(command, stdin)
}

/// moto with authentication on, and the key it issued to the IAM user
/// `dev` (allowed everything): `sessionctl start` must sign
/// `GetSessionToken` with that key. moto does not register the credentials
/// `GetSessionToken` returns (moto's limit), so a check that signs with
/// them, like botocore's read-back, turns authentication off first.
fn moto_with_user() -> Option<(MotoServer, Botocore, MotoAccessKey)> {
    let moto = MotoServer::start()?;
    let botocore = Botocore::new()?;
    let key = moto
        .seed_then_authenticate(|moto| moto.create_iam_user(&botocore, "dev", ALLOW_ALL_POLICY));
    Some((moto, botocore, key))
}

/// `add aws-iam-user dev` with moto's key id and `secret` on stdin.
fn add_moto_user(fx: &Fixture, key: &MotoAccessKey, secret: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "add",
        "aws-iam-user",
        "dev",
        "--access-key-id",
        &key.access_key_id,
    ];
    args.extend_from_slice(extra);
    let mut command = fx.command(&args);
    command.env("SESSIONCTL_PASSPHRASE", PASSPHRASE);
    Fixture::run_with_stdin(command, secret.as_bytes())
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

/// The whole path a user takes: add, start against moto (authentication
/// on: signed with the key moto issued), botocore reads the profile from
/// the credentials file and calls STS with it, stop leaves the user's own
/// file content byte-identical.
#[test]
fn start_publishes_a_profile_botocore_uses_and_stop_restores_the_file() {
    let Some((moto, botocore, key)) = moto_with_user() else {
        return;
    };
    let secret = key.secret_access_key.expose();
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
    add_moto_user(&fx, &key, secret, &["--region", "eu-west-1"]).ok();

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

    // The profile holds GetSessionToken's credentials, which moto does not
    // register: with authentication on, botocore's call would be
    // InvalidClientTokenId (moto's limit), so it runs with it off.
    moto.authentication_off();
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
        assert!(!contains(&bytes, secret.as_bytes()), "{}", path.display());
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
/// make one start (with moto's authentication on: signed with the key moto
/// issued).
#[test]
fn credential_process_profile_is_used_by_botocore() {
    let Some((moto, botocore, key)) = moto_with_user() else {
        return;
    };
    let fx = Fixture::new();
    let aws_dir = fx.dir.path().join("aws");
    add_moto_user(
        &fx,
        &key,
        key.secret_access_key.expose(),
        &["--region", "eu-west-1"],
    )
    .ok();
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

    // botocore signs with GetSessionToken's credentials, which moto does not
    // register: with authentication on its call would be
    // InvalidClientTokenId (moto's limit), so it runs with it off. The
    // session is active, so sessionctl makes no STS call here.
    moto.authentication_off();
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

/// `aws env` and `aws exec` start the session (with moto's authentication
/// on: signed with the key moto issued) and hand the credentials over.
#[test]
fn env_and_exec_hand_over_the_credentials() {
    let Some((moto, _botocore, key)) = moto_with_user() else {
        return;
    };
    let secret = key.secret_access_key.expose();
    let fx = Fixture::new();
    let aws_dir = fx.dir.path().join("aws");
    add_moto_user(&fx, &key, secret, &["--region", "ap-south-1"]).ok();

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
        !text.contains(secret),
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

/// With moto's authentication on, `sessionctl start` signs
/// `GetSessionToken` with the stored long-term key: a tampered secret is
/// refused (moto: `SignatureDoesNotMatch`, checked with botocore and the same
/// key), the start fails with one error line naming the session, nothing is
/// published, and neither secret is printed. With authentication off moto
/// would accept the tampered secret.
#[test]
fn start_with_a_tampered_secret_is_refused() {
    let Some((moto, botocore, key)) = moto_with_user() else {
        return;
    };
    let real = key.secret_access_key.expose();
    let mut bad = real.to_owned();
    let last = bad.pop().expect("not empty");
    bad.push(if last == 'A' { 'B' } else { 'A' });
    let fx = Fixture::new();
    let aws_dir = fx.dir.path().join("aws");
    add_moto_user(&fx, &key, &bad, &[]).ok();

    let code: String = botocore
        .script(
            r#"
            import json, boto3, botocore.exceptions
            try:
                boto3.client("sts").get_session_token()
                print(json.dumps("accepted"))
            except botocore.exceptions.ClientError as e:
                print(json.dumps(e.response["Error"]["Code"]))
            "#,
        )
        .endpoint_url(moto.endpoint_url())
        .env("AWS_ACCESS_KEY_ID", &key.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &bad)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .run()
        .json();
    assert_eq!(code, "SignatureDoesNotMatch", "moto refuses this key");

    let mut start = fx.command(&["start", "dev"]);
    moto_env(&mut start, &moto, &aws_dir);
    let out = Run::from(start.output().expect("run"));
    for text in [&out.stdout, &out.stderr] {
        assert!(
            !text.contains(&bad) && !text.contains(real),
            "a secret printed"
        );
    }
    let line = out.one_line_error();
    assert!(
        line.contains("'dev'") && line.contains("GetSessionToken"),
        "{line}"
    );
    assert_ne!(fx.stored()[0].status(), SessionStatus::Active);
    assert!(
        !std::fs::read_to_string(aws_dir.join("credentials"))
            .unwrap_or_default()
            .contains("[dev]"),
        "nothing published"
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
    let credentials = std::fs::read_to_string(aws_dir.join("credentials")).expect("credentials");
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

// ---------------------------------------------------------------------------
// MFA through SESSIONCTL_MFA_COMMAND (issue 12)
// ---------------------------------------------------------------------------

/// The MFA device of the IAM user `dev` in the MFA tests.
const MFA_SERIAL: &str = "arn:aws:iam::123456789012:mfa/dev";

/// `start dev` with `SESSIONCTL_MFA_COMMAND` set to `mfa_command` (or
/// unset), in a clean environment pointed at moto.
fn start_with_mfa_command(
    fx: &Fixture,
    moto: &MotoServer,
    aws_dir: &Path,
    mfa_command: Option<&str>,
) -> Command {
    let mut start = fx.command(&["start", "dev"]);
    moto_env(&mut start, moto, aws_dir);
    match mfa_command {
        Some(line) => start.env("SESSIONCTL_MFA_COMMAND", line),
        None => start.env_remove("SESSIONCTL_MFA_COMMAND"),
    };
    start
}

/// An IAM user added with `--mfa-serial`: `sessionctl start` runs the
/// command of `SESSIONCTL_MFA_COMMAND` (through the shell, told the device
/// in `SESSION_SDK_MFA_SERIAL`) and sends the device and the code it printed
/// with `GetSessionToken` (moto's authentication on: signed with the key
/// moto issued). The code is printed nowhere.
#[test]
fn start_sends_the_code_from_sessionctl_mfa_command() {
    let Some((recorder, key)) = RecordingMoto::with_user("dev") else {
        return;
    };
    let fx = Fixture::new();
    let aws_dir = fx.dir.path().join("aws");
    add_moto_user(
        &fx,
        &key,
        key.secret_access_key.expose(),
        &["--mfa-serial", MFA_SERIAL],
    )
    .ok();
    let asked = fx.dir.path().join("asked");
    let line = format!(
        r#"echo "$SESSION_SDK_MFA_SERIAL" > '{}'; echo 593017"#,
        asked.display()
    );

    let out = Run::from(
        start_with_mfa_command(&fx, &recorder.moto, &aws_dir, Some(&line))
            .output()
            .expect("run"),
    );
    out.ok();
    assert_eq!(fx.stored()[0].status(), SessionStatus::Active);
    for text in [&out.stdout, &out.stderr] {
        assert!(!text.contains("593017"), "the MFA code was printed");
    }
    assert_eq!(
        std::fs::read_to_string(&asked)
            .expect("the command ran")
            .trim(),
        MFA_SERIAL,
        "the command was told the device"
    );
    let calls = recorder.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].action(), "GetSessionToken", "{calls:?}");
    assert_eq!(calls[0].get("SerialNumber"), Some(MFA_SERIAL), "{calls:?}");
    assert!(calls[0].sends_code("593017"), "{calls:?}");
}

/// `SESSIONCTL_MFA_COMMAND` printing something that is not 6 digits, or
/// failing, and no command and no terminal (run under `setsid`, so there is
/// no controlling terminal even when the tests run in one): each start fails
/// with one error line naming the device and what went wrong, exits
/// non-zero, sends nothing to STS, and does not print the command's output.
#[cfg(unix)]
#[test]
fn start_without_a_usable_mfa_code_fails_and_sends_nothing() {
    let Some((recorder, key)) = RecordingMoto::with_user("dev") else {
        return;
    };
    let fx = Fixture::new();
    let aws_dir = fx.dir.path().join("aws");
    add_moto_user(
        &fx,
        &key,
        key.secret_access_key.expose(),
        &["--mfa-serial", MFA_SERIAL],
    )
    .ok();

    let cases: [(Option<&str>, &[&str]); 4] = [
        (Some("echo 59301"), &["6-digit"]),
        (Some("echo"), &["6-digit"]),
        (
            Some("echo 'token locked' >&2; exit 1"),
            &["token locked", "failed"],
        ),
        (None, &["no terminal", "SESSIONCTL_MFA_COMMAND"]),
    ];
    for (command, expected) in cases {
        let start = start_with_mfa_command(&fx, &recorder.moto, &aws_dir, command);
        // setsid: a new session without a controlling terminal, so the
        // terminal prompt (the last source) fails at once instead of asking
        // whoever runs the tests.
        let mut detached = Command::new("setsid");
        detached
            .arg("--wait")
            .arg(start.get_program())
            .args(start.get_args())
            .stdin(Stdio::null());
        for (name, value) in start.get_envs() {
            match value {
                Some(value) => detached.env(name, value),
                None => detached.env_remove(name),
            };
        }
        let out = Run::from(detached.output().expect("run"));
        assert!(
            !out.stdout.contains("59301") && !out.stderr.contains("59301"),
            "{command:?}: the command's output was printed"
        );
        let line = out.one_line_error();
        assert!(line.contains(MFA_SERIAL), "{command:?}: {line}");
        for word in expected {
            assert!(line.contains(word), "{command:?}: {word:?} in {line}");
        }
        assert_ne!(
            fx.stored()[0].status(),
            SessionStatus::Active,
            "{command:?}"
        );
        let calls = recorder.calls();
        assert!(calls.is_empty(), "{command:?}: nothing sent: {calls:?}");
    }
}

/// Ctrl-C while `start` waits for a device-code sign-in nobody completes:
/// the start is cancelled (exit 130, one line naming it), the session is
/// left `inactive` with the cancel recorded, and nothing was published.
#[cfg(unix)]
#[test]
fn sigint_during_a_device_sign_in_cancels_the_start() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let fake = rt.block_on(session_testkit::fakes::SsoFake::start());
    fake.set_auto_approve(false);
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
        "--region",
        "eu-west-1",
    ])
    .ok();
    let mut start = fx.command(&["start", "prod-admin"]);
    start
        .env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
        .env("AWS_SHARED_CREDENTIALS_FILE", aws_dir.join("credentials"))
        .env("AWS_CONFIG_FILE", aws_dir.join("config"))
        .env("AWS_ENDPOINT_URL_SSO_OIDC", fake.oidc_endpoint())
        .env("AWS_ENDPOINT_URL_SSO", fake.portal_endpoint())
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("SESSIONCTL_AWS_SINK")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = start.spawn().expect("spawn start");
    // Waiting for the user: the device authorization was asked for.
    let asked = std::time::Instant::now();
    while fake.device_authorizations() == 0 {
        assert!(
            asked.elapsed() < std::time::Duration::from_secs(20),
            "no device sign-in began"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        fx.stored()[0].status(),
        session_core::SessionStatus::Pending,
        "the start is in progress"
    );
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::INT).expect("SIGINT");
    // Bounded: a sessionctl that ignored the signal would wait 600 s.
    let waiting = std::time::Instant::now();
    let mut child = child;
    while child.try_wait().expect("try_wait").is_none() {
        if waiting.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            panic!("sessionctl start did not end on SIGINT");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = Run::from(child.wait_with_output().expect("wait"));
    assert_eq!(out.code, Some(130), "{out:#?}");
    assert_eq!(out.stdout, "");
    // The device prompt came first; the last line says what was given up.
    let line = out.stderr.lines().last().expect("stderr").to_owned();
    assert!(line.starts_with("sessionctl: "), "{line}");
    assert!(
        line.contains("start of") && line.contains("cancelled"),
        "{line}"
    );
    let stored = fx.stored().remove(0);
    assert_eq!(stored.status(), session_core::SessionStatus::Inactive);
    let last = stored.last_error.expect("the cancel is recorded");
    assert_eq!(
        (last.operation.as_str(), last.category.as_str()),
        ("start", "cancelled")
    );
    assert!(!aws_dir.join("credentials").exists(), "nothing published");
    assert!(fake.issued_credentials().is_empty());
    drop(fake);
}
