//! botocore as an independent reader of what `SharedCredentialsFile` writes
//! (reference `aws.md` §7.5): it is stricter than the Rust SDK, so a file it
//! reads back with our exact values, next to the user's untouched profiles,
//! shows the writer kept to the INI rules both readers accept.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use session_aws::AwsCredentials;
use session_aws::sink::{CredentialSink, SharedCredentialsFile, SinkTarget};
use session_core::{Secret, SessionId};
use session_testkit::peers::{python_with_module, require_peer};

/// A hand-edited credentials file: CRLF and LF lines, comments of both kinds,
/// a nested value with continuation lines, and no newline at the end.
const CREDENTIALS_FIXTURE: &str = "# my credentials\r\n\
    ; do not share\r\n\
    \r\n\
    [work]\r\n\
    aws_access_key_id = AKIAWORK000000000001\r\n\
    aws_secret_access_key = work/secret+1\r\n\
    \r\n\
    [legacy]\n\
    aws_access_key_id=AKIALEGACY0000000001\n\
    aws_secret_access_key : legacy-secret\n\
    # nested settings\n\
    s3 =\n\
    \x20   max_concurrent_requests = 20\n\
    \x20   signature_version = s3v4\n\
    region = ap-south-1";

const CONFIG_FIXTURE: &str = "# my config\n\
    [default]\n\
    output = json\n\
    \n\
    [profile work]\n\
    region = us-west-2\n\
    \n\
    [sso-session corp]\n\
    sso_start_url = https://example.awsapps.com/start\n\
    sso_region = us-east-1\n";

/// Reads each profile named on the command line (`-` for no profile) and
/// prints what botocore found, as JSON.
const READER: &str = r#"
import json, sys
import boto3, botocore.exceptions
out = {}
for name in sys.argv[1:]:
    try:
        session = boto3.Session(profile_name=None if name == "-" else name)
        c = session.get_credentials()
        if c is None:
            out[name] = {"error": "NoCredentials"}
            continue
        f = c.get_frozen_credentials()
        out[name] = {"method": c.method, "access_key": f.access_key, "secret_key": f.secret_key,
                     "token": f.token, "region": session.region_name}
    except botocore.exceptions.ProfileNotFound:
        out[name] = {"error": "ProfileNotFound"}
print(json.dumps(out))
"#;

fn python() -> Option<PathBuf> {
    require_peer("botocore (boto3 in the peers' Python venv)", || {
        python_with_module("boto3")
    })
}

/// Runs the reader in a clean environment: `HOME` is the test's directory
/// (set before Python starts), plus the file overrides when given.
fn botocore_reads(
    python: &Path,
    home: &Path,
    files: Option<(&Path, &Path)>,
    profiles: &[&str],
) -> HashMap<String, Value> {
    let mut command = Command::new(python);
    command
        .env_clear()
        .env("HOME", home)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .arg("-c")
        .arg(READER)
        .args(profiles);
    if let Some((credentials, config)) = files {
        command
            .env("AWS_SHARED_CREDENTIALS_FILE", credentials)
            .env("AWS_CONFIG_FILE", config);
    }
    let output = command.output().expect("run python");
    assert!(
        output.status.success(),
        "botocore failed (a ConfigParseError means our writer broke an INI rule):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("reader prints JSON")
}

fn creds(key: &str, secret: &str, token: Option<&str>) -> AwsCredentials {
    AwsCredentials {
        access_key_id: key.to_owned(),
        secret_access_key: Secret::new(secret),
        session_token: token.map(Secret::new),
        expiration: None,
    }
}

fn target(session: SessionId, profile: &str, region: Option<&str>) -> SinkTarget {
    SinkTarget {
        session_id: session,
        profile: profile.to_owned(),
        region: region.map(str::to_owned),
    }
}

fn assert_read(found: &Value, c: &AwsCredentials, region: Option<&str>) {
    assert_eq!(found["method"], "shared-credentials-file", "{found}");
    assert_eq!(found["access_key"], c.access_key_id.as_str(), "{found}");
    assert_eq!(found["secret_key"], c.secret_access_key.expose(), "{found}");
    match &c.session_token {
        Some(token) => assert_eq!(found["token"], token.expose(), "{found}"),
        None => assert!(found["token"].is_null(), "{found}"),
    }
    match region {
        Some(region) => assert_eq!(found["region"], region, "{found}"),
        None => assert!(found["region"].is_null(), "{found}"),
    }
}

/// The user's profiles in the fixtures, as botocore reads them.
fn assert_foreign_profiles(found: &HashMap<String, Value>) {
    assert_eq!(found["work"]["access_key"], "AKIAWORK000000000001");
    assert_eq!(found["work"]["secret_key"], "work/secret+1");
    assert_eq!(found["work"]["region"], "us-west-2");
    assert_eq!(found["legacy"]["access_key"], "AKIALEGACY0000000001");
    assert_eq!(found["legacy"]["secret_key"], "legacy-secret");
}

#[tokio::test]
async fn botocore_reads_published_rotated_and_withdrawn_profiles() {
    let Some(python) = python() else { return };
    let home = tempfile::tempdir().unwrap();
    let credentials = home.path().join("creds/credentials");
    let config = home.path().join("creds/config");
    std::fs::create_dir_all(credentials.parent().unwrap()).unwrap();
    std::fs::write(&credentials, CREDENTIALS_FIXTURE).unwrap();
    std::fs::write(&config, CONFIG_FIXTURE).unwrap();
    let files = Some((credentials.as_path(), config.as_path()));
    let sink = SharedCredentialsFile::from_env_iter([
        ("HOME".to_owned(), home.path().display().to_string()),
        (
            "AWS_SHARED_CREDENTIALS_FILE".to_owned(),
            credentials.display().to_string(),
        ),
        ("AWS_CONFIG_FILE".to_owned(), config.display().to_string()),
    ])
    .unwrap();
    let profiles = ["sdk-dev", "work", "legacy"];

    // Before: botocore reads the fixtures and has no `sdk-dev`.
    let found = botocore_reads(&python, home.path(), files, &profiles);
    assert_eq!(found["sdk-dev"]["error"], "ProfileNotFound");
    assert_foreign_profiles(&found);

    // Publish: temporary credentials and a region.
    let id = SessionId::new();
    let first = creds(
        "ASIAFIRST00000000001",
        "first/Secret+Key=",
        Some("FwoGZXIvYXdzEJr//////////wEaDFirstToken+/=="),
    );
    let t = target(id, "sdk-dev", Some("eu-central-1"));
    sink.publish(&t, &first).await.unwrap();
    let found = botocore_reads(&python, home.path(), files, &profiles);
    assert_read(&found["sdk-dev"], &first, Some("eu-central-1"));
    assert_foreign_profiles(&found);

    // Rotate: new keys, no token, another region.
    let second = creds("AKIASECOND0000000002", "second;Secret#Key", None);
    let t = target(id, "sdk-dev", Some("sa-east-1"));
    sink.publish(&t, &second).await.unwrap();
    let found = botocore_reads(&python, home.path(), files, &profiles);
    assert_read(&found["sdk-dev"], &second, Some("sa-east-1"));
    assert_foreign_profiles(&found);

    // Withdraw: gone for botocore, the files are the user's again.
    sink.withdraw(&t).await.unwrap();
    let found = botocore_reads(&python, home.path(), files, &profiles);
    assert_eq!(found["sdk-dev"]["error"], "ProfileNotFound");
    assert_foreign_profiles(&found);
    assert_eq!(
        std::fs::read_to_string(&credentials).unwrap(),
        CREDENTIALS_FIXTURE
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), CONFIG_FIXTURE);
}

#[tokio::test]
async fn botocore_finds_the_default_profile_in_the_default_location() {
    let Some(python) = python() else { return };
    let home = tempfile::tempdir().unwrap();
    // Only HOME: both sides must agree on ~/.aws/credentials and ~/.aws/config.
    let sink = SharedCredentialsFile::from_env_iter([(
        "HOME".to_owned(),
        home.path().display().to_string(),
    )])
    .unwrap();
    let id = SessionId::new();
    let c = creds(
        "ASIADEFAULT000000001",
        "default/secret",
        Some("default-token"),
    );
    sink.publish(&target(id, "default", Some("eu-west-3")), &c)
        .await
        .unwrap();
    // `-`: no profile name at all, botocore's default.
    let found = botocore_reads(&python, home.path(), None, &["-", "default"]);
    assert_read(&found["-"], &c, Some("eu-west-3"));
    assert_read(&found["default"], &c, Some("eu-west-3"));

    sink.withdraw(&target(id, "default", Some("eu-west-3")))
        .await
        .unwrap();
    let found = botocore_reads(&python, home.path(), None, &["-"]);
    assert_eq!(found["-"]["error"], "NoCredentials");
}
