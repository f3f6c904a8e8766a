//! `sessionctl aws serve` with third-party clients as the children: boto3
//! through the ECS endpoint (including rotations while it keeps asking),
//! and the AWS CLI through the IMDSv2 endpoint, each reaching moto with
//! the chained role's credentials and nothing else; Python's urllib reads
//! the session's region from the IMDS endpoint.

#![cfg(feature = "aws")]

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;
use session_testkit::peers::moto::MotoServer;
use session_testkit::readers::botocore::Botocore;

/// The chained role `admin` under `dev`, its credentials lasting
/// `seconds`; moto (authentication off) assumes any role.
fn add_chain(fx: &Fixture, seconds: &str) {
    add_user_and_chained_role(
        fx,
        &[
            "--role-session-name",
            "served",
            "--duration-seconds",
            seconds,
            "--region",
            "eu-west-1",
        ],
    );
}

/// `sessionctl aws serve ARGS`, reaching moto, with the user's AWS files
/// pointed at nothing and some variables that must not reach the child.
fn serve(fx: &Fixture, moto: &MotoServer, args: &[&str]) -> Command {
    let mut command = fx.command(&["--aws-sink", "none", "aws", "serve"]);
    command
        .args(args)
        .env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
        .env("AWS_ENDPOINT_URL", moto.endpoint_url())
        .env("AWS_CONFIG_FILE", fx.dir.path().join("no-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            fx.dir.path().join("no-credentials"),
        )
        .env("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG1")
        .env("AWS_SECRET_ACCESS_KEY", "wrong")
        .env("AWS_PROFILE", "someone-else");
    command
}

/// The peers' Python, with boto3 (through [`Botocore`]'s lookup, which
/// fails the test in CI when it is missing).
fn python() -> Option<String> {
    Botocore::new().map(|b| b.python().to_string_lossy().into_owned())
}

/// boto3's default chain in the child: which provider it used and who it is.
const WHO_AM_I: &str = r#"
import boto3, json, os
s = boto3.Session()
c = s.get_credentials()
arn = s.client("sts").get_caller_identity()["Arn"]
print(json.dumps({"method": c.method, "arn": arn, "region": s.region_name,
                  "uri": os.environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI", "")}))
"#;

#[test]
fn boto3_gets_the_role_through_the_ecs_endpoint() {
    let (Some(moto), Some(python)) = (MotoServer::start(), python()) else {
        return;
    };
    let fx = Fixture::new();
    add_chain(&fx, "3600");
    let out = Run::from(
        serve(&fx, &moto, &["admin", "--", &python, "-c", WHO_AM_I])
            .output()
            .expect("run"),
    );
    let seen: Value = serde_json::from_str(out.ok().trim()).expect("json");
    assert_eq!(seen["method"], "container-role", "{seen}");
    assert_eq!(
        seen["arn"], "arn:aws:sts::123456789012:assumed-role/admin/served",
        "{seen}"
    );
    assert_eq!(seen["region"], "eu-west-1");
    assert!(
        seen["uri"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "{seen}"
    );

    // The child's status is ours.
    let out = Run::from(
        serve(&fx, &moto, &["admin", "--", "sh", "-c", "exit 5"])
            .output()
            .expect("run"),
    );
    assert_eq!(out.code, Some(5), "{out:#?}");

    // Neither a command nor --env-file: a usage error.
    let out = Run::from(serve(&fx, &moto, &["admin"]).output().expect("run"));
    assert!(out.error_with(2).contains("--env-file"), "{out:#?}");
}

/// Credentials lasting 900 s, asked for with 897 s left, while boto3 keeps
/// calling for 8 s (botocore refreshes container credentials that have less
/// than 15 minutes left before each call) and the session is rotated every
/// 2 s by `sessionctl rotate` in another process. Every call succeeds, and
/// boto3 sees several keys: the server hands out what the other process
/// rotated.
#[test]
fn boto3_keeps_working_across_rotations() {
    let (Some(moto), Some(python)) = (MotoServer::start(), python()) else {
        return;
    };
    let fx = Fixture::new();
    add_chain(&fx, "900");
    let script = r#"
import boto3, json, os, subprocess, time
s = boto3.Session()
sts = s.client("sts")
keys, calls, end, next_rotation = [], 0, time.time() + 8, time.time() + 2
while time.time() < end:
    sts.get_caller_identity()
    keys.append(s.get_credentials().get_frozen_credentials().access_key)
    calls += 1
    if time.time() > next_rotation:
        subprocess.run([os.environ["SESSIONCTL_UNDER_TEST"], "--aws-sink", "none",
                        "rotate", "admin"], check=True, stdout=subprocess.DEVNULL)
        next_rotation = time.time() + 2
    time.sleep(0.5)
print(json.dumps({"calls": calls, "keys": keys}))
"#;
    let mut command = serve(
        &fx,
        &moto,
        &[
            "admin",
            "--refresh-before",
            "897",
            "--",
            &python,
            "-c",
            script,
        ],
    );
    // The child's sessionctl finds the same workspace (and, through HOME,
    // the same secrets file and passphrase).
    command
        .env("SESSIONCTL_UNDER_TEST", env!("CARGO_BIN_EXE_sessionctl"))
        .env("SESSIONCTL_WORKSPACE", fx.workspace());
    let out = Run::from(command.output().expect("run"));
    let seen: Value = serde_json::from_str(out.ok().trim()).expect("json");
    let keys: HashSet<&str> = seen["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert!(seen["calls"].as_u64().unwrap() >= 8, "{seen}");
    assert!(keys.len() >= 2, "rotated while used: {seen}");
    let session = fx
        .stored()
        .into_iter()
        .find(|s| s.session_name == "admin")
        .expect("admin");
    let served = session.expiration.expect("active with an expiry");
    assert!(
        served
            > session_core::Clock::now(&session_core::SystemClock) + time::Duration::seconds(800),
        "the workspace records the latest rotation: {served}"
    );
}

#[test]
fn the_aws_cli_gets_the_role_through_imdsv2() {
    let (Some(moto), Some(python)) = (MotoServer::start(), python()) else {
        return;
    };
    let aws = Path::new(&python).with_file_name("aws");
    assert!(
        aws.exists(),
        "the AWS CLI (awscli) is installed beside {python}"
    );
    let fx = Fixture::new();
    add_chain(&fx, "3600");
    let aws = aws.to_string_lossy().into_owned();
    let out = Run::from(
        serve(
            &fx,
            &moto,
            &[
                "admin",
                "--imds",
                "--exec",
                "--",
                &aws,
                "sts",
                "get-caller-identity",
                "--output",
                "json",
                "--debug",
            ],
        )
        .output()
        .expect("run"),
    );
    let seen: Value = serde_json::from_str(out.ok().trim()).expect("json");
    assert_eq!(
        seen["Arn"], "arn:aws:sts::123456789012:assumed-role/admin/served",
        "{seen}"
    );
    // The AWS CLI's debug log says where the credentials came from.
    assert!(
        out.stderr.contains("Found credentials from IAM Role"),
        "from the instance metadata provider: {}",
        out.stderr
            .lines()
            .filter(|l| l.contains("credentials"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Reads the region from the IMDS endpoint as the Rust and Java SDKs do.
const IMDS_REGION: &str = r#"
import json, os, urllib.request
base = os.environ["AWS_EC2_METADATA_SERVICE_ENDPOINT"].rstrip("/")
put = urllib.request.Request(base + "/latest/api/token", method="PUT",
                             headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
token = urllib.request.urlopen(put).read().decode()
def get(path):
    r = urllib.request.Request(base + path, headers={"X-aws-ec2-metadata-token": token})
    return urllib.request.urlopen(r).read().decode()
print(json.dumps({"region": get("/latest/meta-data/placement/region"),
                  "document": json.loads(get("/latest/dynamic/instance-identity/document"))}))
"#;

/// `--imds` also reports the session's region in instance metadata.
#[test]
fn imds_reports_the_session_region() {
    let (Some(moto), Some(python)) = (MotoServer::start(), python()) else {
        return;
    };
    let fx = Fixture::new();
    add_chain(&fx, "3600");
    let out = Run::from(
        serve(
            &fx,
            &moto,
            &[
                "admin",
                "--imds",
                "--exec",
                "--",
                &python,
                "-c",
                IMDS_REGION,
            ],
        )
        .output()
        .expect("run"),
    );
    let seen: Value = serde_json::from_str(out.ok().trim()).expect("json");
    assert_eq!(
        seen,
        serde_json::json!({"region": "eu-west-1", "document": {"region": "eu-west-1"}})
    );
}

/// `--env-file`: the variables land in a 0600 file that a shell sources;
/// boto3 with them reaches the endpoint; SIGTERM stops the server, exit 0,
/// and the file is gone.
#[test]
fn env_file_mode_serves_until_terminated() {
    let (Some(moto), Some(python)) = (MotoServer::start(), python()) else {
        return;
    };
    let fx = Fixture::new();
    add_chain(&fx, "3600");
    let env_file = fx.dir.path().join("admin.env");
    let child = serve(
        &fx,
        &moto,
        &["admin", "--env-file", env_file.to_str().unwrap()],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !env_file.exists() {
        assert!(std::time::Instant::now() < deadline, "no env file");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&env_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // A shell sources the file, then runs boto3 with a clean AWS environment.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            ". '{}' && exec '{python}' -c \"$0\"",
            env_file.display()
        ))
        .arg(WHO_AM_I)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_ENDPOINT_URL", moto.endpoint_url())
        .env("AWS_CONFIG_FILE", fx.dir.path().join("no-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            fx.dir.path().join("no-credentials"),
        )
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(seen["method"], "container-role", "{seen}");
    assert_eq!(
        seen["arn"], "arn:aws:sts::123456789012:assumed-role/admin/served",
        "{seen}"
    );

    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .expect("SIGTERM");
    let done = child.wait_with_output().expect("wait");
    assert_eq!(done.status.code(), Some(0), "{done:?}");
    assert!(!env_file.exists(), "the env file is removed");
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(
        stderr.contains("serving credentials on 127.0.0.1:"),
        "{stderr}"
    );
    let token_line = String::from_utf8_lossy(&done.stdout);
    assert!(
        !token_line.contains("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
        "{token_line}"
    );
}

/// SIGTERM to `aws serve` is passed on to the command, which ends; the
/// server stops with it (the command's end by a signal is an error).
#[test]
fn sigterm_is_passed_on_to_the_command() {
    let Some(moto) = MotoServer::start() else {
        return;
    };
    let fx = Fixture::new();
    add_chain(&fx, "3600");
    let started = fx.dir.path().join("started");
    let script = format!("touch '{}'; exec sleep 60", started.display());
    let mut child = serve(&fx, &moto, &["admin", "--", "sh", "-c", &script])
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !started.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the command never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let asked = std::time::Instant::now();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .expect("SIGTERM");
    let status = child.wait().expect("wait");
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(20),
        "ended with the command, not after its 60 s"
    );
    assert_eq!(status.code(), Some(1), "the command was ended by a signal");
}
