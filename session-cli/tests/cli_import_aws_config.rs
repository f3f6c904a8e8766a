//! `sessionctl import aws-config` on an AWS config and credentials file of
//! the kinds aws-vault and granted users have, with botocore (the AWS SDK
//! for Python, the peers' venv) reading the same files: what each imported
//! session holds is what botocore reads for its profile (role, source,
//! session name, external id, MFA device, duration, SSO start URL and
//! region, region, the IAM user's keys). A dry run changes nothing, a
//! second import adds nothing, and the files are only read.
#![cfg(feature = "aws")]

mod common;

use std::process::Command;

use serde_json::Value;
use session_core::{SecretKey, SecretStore, Session, SessionType};
use session_testkit::peers::{python_with_module, require_peer};

use common::*;

const CONFIG: &str = "\
[default]
region = eu-west-1

[profile base]
region = eu-west-1
mfa_serial = arn:aws:iam::111122223333:mfa/alice

[profile admin]
role_arn = arn:aws:iam::444455556666:role/Admin
source_profile = base
role_session_name = alice
external_id = ext-1
mfa_serial = arn:aws:iam::111122223333:mfa/alice
duration_seconds = 1800
region = us-east-2

[sso-session corp]
sso_start_url = https://d-123.awsapps.com/start
sso_region = us-east-1

[profile sso]
sso_session = corp
sso_account_id = 123456789012
sso_role_name = ReadOnly
region = us-west-2

[profile proc]
credential_process = /usr/bin/get-creds
";

const CREDENTIALS: &str = "\
[base]
aws_access_key_id = AKIAIOSFODNN7EXAMPLE
aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
";

/// botocore's reading of each profile: its scoped config, the SSO session
/// it names, and the static keys it resolves (no network: only profiles
/// with keys are asked for credentials).
const BOTOCORE: &str = r#"
import json, sys, botocore.session
out = {}
for name in sys.argv[1:]:
    s = botocore.session.Session(profile=name)
    scoped = s.get_scoped_config()
    entry = {"scoped": scoped}
    if "sso_session" in scoped:
        entry["sso_session"] = s.full_config["sso_sessions"][scoped["sso_session"]]
    if name == "base":
        c = s.get_credentials().get_frozen_credentials()
        entry["keys"] = [c.access_key, c.secret_key]
    out[name] = entry
print(json.dumps(out))
"#;

fn botocore(config: &std::path::Path, credentials: &std::path::Path) -> Option<Value> {
    let python = require_peer("python module botocore", || python_with_module("botocore"))?;
    let output = Command::new(python)
        .args(["-c", BOTOCORE, "base", "admin", "sso"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_CONFIG_FILE", config)
        .env("AWS_SHARED_CREDENTIALS_FILE", credentials)
        .output()
        .expect("python");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_json::from_slice(&output.stdout).expect("JSON"))
}

fn by_name<'a>(sessions: &'a [Session], name: &str) -> &'a Session {
    sessions
        .iter()
        .find(|s| s.session_name == name)
        .unwrap_or_else(|| panic!("{name} not imported"))
}

#[test]
fn profiles_import_as_botocore_reads_them_and_only_once() {
    let fx = Fixture::new();
    let dir = fx.dir.path().join("aws");
    std::fs::create_dir_all(&dir).expect("dir");
    let (config, credentials) = (dir.join("config"), dir.join("credentials"));
    std::fs::write(&config, CONFIG).expect("config");
    std::fs::write(&credentials, CREDENTIALS).expect("credentials");
    let Some(boto) = botocore(&config, &credentials) else {
        return;
    };
    let files = [
        "import",
        "aws-config",
        "--config",
        config.to_str().expect("utf-8"),
        "--credentials",
        credentials.to_str().expect("utf-8"),
    ];

    let mut dry = files.to_vec();
    dry.push("--dry-run");
    let out = fx.run(&dry).ok().to_owned();
    assert!(
        out.contains("3 would be added, 0 already here, 2 not imported"),
        "{out}"
    );
    assert!(fx.stored().is_empty());

    let out = fx.run_unlocked(&files).ok().to_owned();
    assert!(
        out.contains("3 added, 0 already here, 2 not imported"),
        "{out}"
    );
    assert!(
        out.contains("proc: credential_process profiles are left alone"),
        "{out}"
    );
    assert!(
        out.contains("copied from the credentials file: aws-access-key-id, aws-secret-access-key"),
        "{out}"
    );
    assert!(!out.contains("wJalrXUtnFEMI"), "a key was printed: {out}");
    let ours = fx.stored();

    let base = by_name(&ours, "base");
    let b = &boto["base"];
    assert_eq!(base.session_type, SessionType::AwsIamUser);
    assert_eq!(
        base.config.get_str("mfaSerial"),
        b["scoped"]["mfa_serial"].as_str()
    );
    assert_eq!(base.region.as_deref(), b["scoped"]["region"].as_str());
    assert_eq!(base.config.get_str("profile"), Some("base-sessionctl"));
    let store = fx.store();
    for (name, value) in [
        ("aws-access-key-id", &b["keys"][0]),
        ("aws-secret-access-key", &b["keys"][1]),
    ] {
        let key = SecretKey::new(base.session_id, name).expect("key");
        let got = block_on(store.get(&key)).expect("read").expect("stored");
        assert_eq!(got.expose(), value.as_str().expect("key"), "{name}");
    }

    let admin = by_name(&ours, "admin");
    let a = &boto["admin"]["scoped"];
    assert_eq!(admin.session_type, SessionType::AwsIamRoleChained);
    let source = a["source_profile"].as_str().expect("source");
    assert_eq!(
        admin.parent_session_id,
        Some(by_name(&ours, source).session_id)
    );
    assert_eq!(admin.config.get_str("roleArn"), a["role_arn"].as_str());
    assert_eq!(
        admin.config.get_str("roleSessionName"),
        a["role_session_name"].as_str()
    );
    assert_eq!(
        admin.config.get_str("externalId"),
        a["external_id"].as_str()
    );
    assert_eq!(admin.config.get_str("mfaSerial"), a["mfa_serial"].as_str());
    assert_eq!(
        admin.config.as_map()["durationSeconds"].to_string(),
        a["duration_seconds"].as_str().expect("duration")
    );
    assert_eq!(admin.region.as_deref(), a["region"].as_str());

    let sso = by_name(&ours, "sso");
    let s = &boto["sso"];
    assert_eq!(sso.session_type, SessionType::AwsSsoRole);
    assert_eq!(
        sso.config.get_str("ssoSessionName"),
        s["scoped"]["sso_session"].as_str()
    );
    assert_eq!(
        sso.config.get_str("startUrl"),
        s["sso_session"]["sso_start_url"].as_str()
    );
    assert_eq!(
        sso.config.get_str("ssoRegion"),
        s["sso_session"]["sso_region"].as_str()
    );
    assert_eq!(
        sso.config.get_str("accountId"),
        s["scoped"]["sso_account_id"].as_str()
    );
    assert_eq!(
        sso.config.get_str("roleName"),
        s["scoped"]["sso_role_name"].as_str()
    );
    assert_eq!(sso.region.as_deref(), s["scoped"]["region"].as_str());

    let again = fx.run_unlocked(&files).ok().to_owned();
    assert!(
        again.contains("0 added, 3 already here, 2 not imported"),
        "{again}"
    );
    assert_eq!(fx.stored().len(), 3);
    assert_eq!(std::fs::read_to_string(&config).expect("read"), CONFIG);
    assert_eq!(
        std::fs::read_to_string(&credentials).expect("read"),
        CREDENTIALS
    );

    // One profile: its source comes along.
    let other = Fixture::new();
    let mut one = files.to_vec();
    one.extend(["--profile", "admin"]);
    let out = other.run_unlocked(&one).ok().to_owned();
    assert!(
        out.contains("2 added, 0 already here, 0 not imported"),
        "{out}"
    );
}

/// botocore's caller identity: with `AWS_PROFILE` set, the profile's own
/// chain (AssumeRole from its source); without, the variables
/// `sessionctl aws exec` sets.
const CALLER: &str = r#"
import botocore.session
print(botocore.session.Session().create_client("sts").get_caller_identity()["Arn"])
"#;

/// The imported chained role, started through moto, is the role botocore
/// assumes for the same profile: the same assumed-role ARN, role session
/// name included.
#[test]
fn an_imported_chained_role_assumes_what_botocore_assumes_through_moto() {
    let Some(python) = require_peer("python module botocore", || python_with_module("botocore"))
    else {
        return;
    };
    let Some(moto) = session_testkit::peers::moto::MotoServer::start() else {
        return;
    };
    let fx = Fixture::new();
    let dir = fx.dir.path().join("aws");
    std::fs::create_dir_all(&dir).expect("dir");
    let (config, credentials) = (dir.join("config"), dir.join("credentials"));
    std::fs::write(
        &config,
        "[profile base]\nregion = eu-west-1\n\n[profile admin]\n\
         role_arn = arn:aws:iam::123456789012:role/Admin\nsource_profile = base\n\
         role_session_name = alice\nregion = eu-west-1\n",
    )
    .expect("config");
    std::fs::write(&credentials, CREDENTIALS).expect("credentials");
    let aws_env = |command: &mut Command| {
        command
            .env("AWS_CONFIG_FILE", &config)
            .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
            .env("AWS_ENDPOINT_URL", moto.endpoint_url())
            .env_remove("AWS_ENDPOINT_URL_STS")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN");
    };
    fx.run_unlocked(&[
        "import",
        "aws-config",
        "--config",
        config.to_str().expect("utf-8"),
        "--credentials",
        credentials.to_str().expect("utf-8"),
    ])
    .ok();

    let mut theirs = Command::new(&python);
    theirs.args(["-c", CALLER]);
    aws_env(&mut theirs);
    theirs.env("AWS_PROFILE", "admin");
    let theirs = Run::from(theirs.output().expect("python"));
    let theirs = theirs.ok().trim().to_owned();
    assert!(theirs.ends_with(":assumed-role/Admin/alice"), "{theirs}");

    let mut ours = fx.command(&[
        "aws",
        "exec",
        "admin",
        "--",
        python.to_str().expect("utf-8"),
        "-c",
        CALLER,
    ]);
    aws_env(&mut ours);
    ours.env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
        .env("SESSIONCTL_AWS_SINK", "none");
    let ours = Run::from(ours.output().expect("exec"));
    assert_eq!(ours.ok().trim(), theirs, "{ours:#?}");
}
