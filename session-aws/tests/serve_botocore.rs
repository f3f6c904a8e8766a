//! `session_aws::serve` against third-party clients: boto3/botocore, the
//! AWS CLI and the Rust SDK (aws-config's default chain, in a child
//! process) fetch a session's credentials from the ECS and IMDSv2 endpoints
//! with nothing else in their environment, and sign calls to moto with
//! them; Python's urllib makes the requests the SDKs only make on failure
//! paths. The Python side is in `session-testkit/peers/aws_serve/`.
//!
//! moto runs with authentication on, so a call is accepted only when it is
//! signed with exactly the key, secret and session token that moto issued:
//! a wrong secret or token served by the endpoint would be refused
//! (`SignatureDoesNotMatch`, `InvalidClientTokenId`). The served session is
//! a chained role (`Worker`) under a federated (SAML) parent, as in
//! `sts_moto.rs`: moto does not register an IAM user's `GetSessionToken`
//! credentials, and refuses an unsigned `AssumeRoleWithSAML` with
//! authentication on, so the parent starts while it is off.
//!
//! The Python clients run through `block_in_place` on a multi-threaded
//! runtime: they are blocking subprocesses, and the server they talk to
//! runs on the same runtime.
#![cfg(feature = "serve")]

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{add_chained_role, client, moto_with_authentication, write_assertion};
use session_aws::federated::{FederatedRoleConfig, FederatedRoleProvider, FileSamlSource};
use session_aws::serve::{CredentialServer, CredentialServerHandle, CredentialSource};
use session_aws::{
    AwsCredentials, ChainedRoleConfig, ChainedRoleProvider, SessionCredentialsProvider,
};
use session_core::{
    Error, InMemorySecretStore, InMemoryWorkspace, Session, SessionEventKind, SessionManager,
    SessionType, WorkspaceRepository,
};
use session_testkit::peers::moto::{ALLOW_ALL_POLICY, MotoServer};
use session_testkit::peers::{python_with_module, require_peer};
use session_testkit::readers::botocore::{Botocore, BotocoreOutput};

const FEDERATED_ROLE: &str = "arn:aws:iam::123456789012:role/Federated";
const IDP: &str = "arn:aws:iam::123456789012:saml-provider/MyIdP";
/// The served session's role, and who moto says its credentials belong to.
const WORKER_ROLE: &str = "arn:aws:iam::123456789012:role/Worker";
const WORKER_ARN: &str = "arn:aws:sts::123456789012:assumed-role/Worker/served";

const CALLER_IDENTITY_PY: &str =
    include_str!("../../session-testkit/peers/aws_serve/caller_identity.py");
const ROTATION_LOOP_PY: &str =
    include_str!("../../session-testkit/peers/aws_serve/rotation_loop.py");
const RAW_REQUESTS_PY: &str = include_str!("../../session-testkit/peers/aws_serve/raw_requests.py");
const IMDS_V1_PY: &str = include_str!("../../session-testkit/peers/aws_serve/imds_v1.py");

/// A source that records what it hands out: the access key id of each
/// answer (an identifier, not a secret) and each error's message.
struct Recording {
    inner: SessionCredentialsProvider,
    served: Mutex<Vec<String>>,
    errors: Mutex<Vec<String>>,
}

impl Recording {
    fn served(&self) -> Vec<String> {
        self.served.lock().expect("lock").clone()
    }

    fn errors(&self) -> Vec<String> {
        self.errors.lock().expect("lock").clone()
    }
}

#[async_trait::async_trait]
impl CredentialSource for Recording {
    async fn credentials(&self) -> session_core::Result<AwsCredentials> {
        let result = self.inner.credentials().await;
        match &result {
            Ok(creds) => self
                .served
                .lock()
                .expect("lock")
                .push(creds.access_key_id.clone()),
            Err(error) => self.errors.lock().expect("lock").push(error.to_string()),
        }
        result
    }
}

/// moto with authentication on, a manager, and the `Worker` role session
/// started under its federated parent.
struct Fixture {
    moto: MotoServer,
    botocore: Botocore,
    manager: SessionManager,
    repo: Arc<InMemoryWorkspace>,
    worker: Session,
    dir: tempfile::TempDir,
}

impl Fixture {
    /// `None` when moto or botocore is missing outside CI.
    async fn start(worker_duration_seconds: Option<u32>) -> Option<Self> {
        let (moto, _key) = moto_with_authentication(|moto, botocore| {
            moto.create_role(botocore, "Federated", Some(ALLOW_ALL_POLICY));
            moto.create_role(botocore, "Worker", None);
        })?;
        let botocore = Botocore::new()?;
        let dir = tempfile::tempdir().expect("tempdir");
        // Empty shared files: nothing for the chain to find before the
        // endpoints.
        std::fs::write(dir.path().join("config"), "").expect("config file");
        std::fs::write(dir.path().join("credentials"), "").expect("credentials file");
        let assertion = write_assertion(dir.path(), FEDERATED_ROLE, IDP, None);
        let repo = Arc::new(InMemoryWorkspace::new());
        let manager = SessionManager::builder()
            .repository(repo.clone())
            .secrets(Arc::new(InMemorySecretStore::new()))
            .provider(Arc::new(
                FederatedRoleProvider::without_sink(client(&moto))
                    .with_source(Arc::new(FileSamlSource::new(&assertion))),
            ))
            .provider(Arc::new(ChainedRoleProvider::without_sink(client(&moto))))
            .build()
            .expect("manager");
        let parent = manager
            .add(
                Session::new("saml", SessionType::AwsIamRoleFederated)
                    .expect("session")
                    .with_config(&FederatedRoleConfig::new(FEDERATED_ROLE, IDP))
                    .expect("config"),
            )
            .await
            .expect("add the parent");
        let mut role = ChainedRoleConfig::new(WORKER_ROLE);
        role.role_session_name = Some("served".to_owned());
        role.duration_seconds = worker_duration_seconds;
        add_chained_role(&manager, "worker", &parent, &role).await;
        // moto fails an unsigned AssumeRoleWithSAML with authentication on.
        moto.authentication_off();
        let parent_started = manager.start("saml").await;
        moto.authentication_after(0);
        parent_started.expect("start the federated parent");
        let worker = manager
            .start("worker")
            .await
            .expect("start the worker role");
        Some(Self {
            moto,
            botocore,
            manager,
            repo,
            worker,
            dir,
        })
    }

    /// The worker session as a recording source, rotated when less than
    /// `min_ttl` is left.
    fn source(&self, min_ttl: Duration) -> Arc<Recording> {
        Arc::new(Recording {
            inner: SessionCredentialsProvider::new(self.manager.clone(), "worker")
                .with_min_ttl(min_ttl),
            served: Mutex::new(Vec::new()),
            errors: Mutex::new(Vec::new()),
        })
    }

    fn config_file(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    fn credentials_file(&self) -> PathBuf {
        self.dir.path().join("credentials")
    }

    /// Runs `script` with boto3 in a clean environment (see [`Botocore`]):
    /// no keys, no profile, the empty shared files, moto as the endpoint of
    /// every service, and `env` on top.
    fn python(&self, script: &str, args: &[&str], env: &[(&str, String)]) -> BotocoreOutput {
        let mut run = self
            .botocore
            .script(script)
            .credentials_file(self.credentials_file())
            .config_file(self.config_file())
            .endpoint_url(self.moto.endpoint_url())
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .timeout(Duration::from_secs(60));
        for arg in args {
            run = run.arg(arg);
        }
        for (key, value) in env {
            run = run.env(key, value);
        }
        tokio::task::block_in_place(|| run.run())
    }
}

/// What `caller_identity.py` prints.
#[derive(Debug, serde::Deserialize)]
struct CallerIdentity {
    method: String,
    access_key_id: String,
    arn: String,
}

async fn serve(builder: session_aws::serve::CredentialServerBuilder) -> CredentialServerHandle {
    builder
        .build()
        .expect("build the server")
        .start()
        .await
        .expect("start the server")
}

/// boto3 with only `AWS_CONTAINER_CREDENTIALS_FULL_URI` and
/// `AWS_CONTAINER_AUTHORIZATION_TOKEN`: its container provider fetches the
/// worker session's credentials, and moto (checking signatures) says the
/// call came from the assumed role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn botocore_uses_the_session_through_the_ecs_endpoint() {
    let Some(fx) = Fixture::start(None).await else {
        return;
    };
    let source = fx.source(Duration::from_secs(300));
    let server = serve(CredentialServer::builder(source.clone()).ecs()).await;
    let env = server.environment();
    assert_eq!(
        env.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        [
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN"
        ]
    );

    let identity: CallerIdentity = fx.python(CALLER_IDENTITY_PY, &[], &env).json();
    assert_eq!(identity.method, "container-role");
    assert_eq!(identity.arn, WORKER_ARN);
    let served = source.served();
    assert!(!served.is_empty(), "botocore asked the endpoint");
    assert!(
        served.iter().all(|key| *key == identity.access_key_id),
        "botocore used what was served"
    );
    assert!(source.errors().is_empty(), "{:?}", source.errors());
    server.shutdown().await.expect("shutdown");
}

/// The same through IMDSv2 only (`AWS_EC2_METADATA_SERVICE_ENDPOINT`):
/// botocore's instance-metadata provider gets a token, lists the role and
/// reads its credentials. botocore's own tokenless (IMDSv1) requests are
/// refused by default and answered once `allow_imds_v1(true)`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn botocore_uses_the_session_through_imdsv2() {
    let Some(fx) = Fixture::start(None).await else {
        return;
    };
    let source = fx.source(Duration::from_secs(300));
    let server = serve(
        CredentialServer::builder(source.clone())
            .imds()
            .role_name("worker-role"),
    )
    .await;
    let env = server.environment();
    assert_eq!(
        env.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        [
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            "AWS_EC2_METADATA_DISABLED"
        ]
    );
    let identity: CallerIdentity = fx.python(CALLER_IDENTITY_PY, &[], &env).json();
    assert_eq!(identity.method, "iam-role");
    assert_eq!(identity.arn, WORKER_ARN);
    assert!(source.served().contains(&identity.access_key_id));

    let endpoint = server.imds_endpoint().expect("IMDS is on");
    // botocore's runner turns IMDS off by default; the script refuses to
    // run that way, so a "refused" is the server's answer.
    let imds_on = [("AWS_EC2_METADATA_DISABLED", "false".to_owned())];
    let v1: serde_json::Value = fx.python(IMDS_V1_PY, &[&endpoint], &imds_on).json();
    assert_eq!(v1, serde_json::json!({"v1": "refused", "statuses": [401]}));
    server.shutdown().await.expect("shutdown");

    let calls_before = source.served().len();
    let server = serve(
        CredentialServer::builder(source.clone())
            .imds()
            .allow_imds_v1(true),
    )
    .await;
    let endpoint = server.imds_endpoint().expect("IMDS is on");
    let v1: serde_json::Value = fx.python(IMDS_V1_PY, &[&endpoint], &imds_on).json();
    assert_eq!(
        v1,
        serde_json::json!({
            "v1": "accepted",
            "role": "sessionctl",
            "fields": ["AccessKeyId", "Code", "Expiration", "LastUpdated", "SecretAccessKey", "Token", "Type"],
        })
    );
    assert_eq!(source.served().len(), calls_before + 1);
    assert!(source.errors().is_empty(), "{:?}", source.errors());
    server.shutdown().await.expect("shutdown");
}

/// Set for [`rust_sdk_child`]: the endpoint of every service (moto).
const RUST_SDK_ENDPOINT: &str = "SERVE_TEST_RUST_SDK_ENDPOINT";

/// Not a test on its own: a Rust program using the AWS SDK for Rust as
/// anyone would (`aws_config::defaults` and its default credentials
/// chain), started by [`the_rust_sdk_uses_the_session_through_both_endpoints`]
/// with the server's variables. It prints which credentials the chain
/// found and who STS says signed the call.
#[test]
#[ignore = "a child process of the_rust_sdk_uses_the_session_through_both_endpoints"]
fn rust_sdk_child() {
    use aws_credential_types::provider::ProvideCredentials as _;
    let Ok(endpoint) = std::env::var(RUST_SDK_ENDPOINT) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        // The region too comes from the default chain: the environment,
        // else instance metadata.
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .load()
            .await;
        let credentials = config
            .credentials_provider()
            .expect("a credentials chain")
            .provide_credentials()
            .await
            .expect("credentials from the chain");
        let identity = aws_sdk_sts::Client::new(&config)
            .get_caller_identity()
            .send()
            .await
            .expect("GetCallerIdentity signed with them");
        // On a line of its own: libtest's "test rust_sdk_child ... " comes
        // before it on stdout.
        println!(
            "\nrust-sdk: {}",
            serde_json::json!({
                "access_key_id": credentials.access_key_id(),
                "arn": identity.arn(),
                "region": config.region().map(ToString::to_string),
                "expiry": credentials.expiry().is_some(),
            })
        );
    });
}

/// Runs [`rust_sdk_child`] with `env` and nothing else of AWS in its
/// environment (no keys, no profile, empty shared files under a home of
/// its own) and returns what it printed.
fn run_rust_sdk(fx: &Fixture, env: &[(&str, String)]) -> serde_json::Value {
    let mut child = Command::new(std::env::current_exe().expect("test binary"));
    child
        .args(["--exact", "rust_sdk_child", "--ignored", "--nocapture"])
        .env(RUST_SDK_ENDPOINT, fx.moto.endpoint_url())
        .env("HOME", fx.dir.path())
        .env("AWS_CONFIG_FILE", fx.config_file())
        .env("AWS_SHARED_CREDENTIALS_FILE", fx.credentials_file())
        .stdin(Stdio::null());
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") && !key.ends_with("_FILE") {
            child.env_remove(key);
        }
    }
    for (key, value) in env {
        child.env(key, value);
    }
    let output = tokio::task::block_in_place(|| child.output()).expect("run the child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let Some(line) = stdout.lines().find_map(|l| l.strip_prefix("rust-sdk: ")) else {
        panic!(
            "the child printed no result: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    serde_json::from_str(line).expect("the child's JSON")
}

/// The Rust SDK in another process, given the ECS variables and
/// `AWS_REGION`, then the IMDS ones alone: its default chain fetches the
/// worker session's credentials from the endpoint (and, through IMDS, the
/// region), and moto (checking signatures) says the call came from the
/// assumed role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_sdk_uses_the_session_through_both_endpoints() {
    let Some(fx) = Fixture::start(None).await else {
        return;
    };
    let source = fx.source(Duration::from_secs(300));
    for (endpoint, builder, region) in [
        (
            "ecs",
            CredentialServer::builder(source.clone()).ecs(),
            Some("us-east-1"),
        ),
        (
            "imds",
            CredentialServer::builder(source.clone())
                .imds()
                .role_name("worker-role")
                .region("eu-central-2"),
            None,
        ),
    ] {
        let server = serve(builder).await;
        let before = source.served().len();
        let mut env = server.environment();
        if let Some(region) = region {
            env.push(("AWS_REGION", region.to_owned()));
        }
        let found = run_rust_sdk(&fx, &env);
        assert_eq!(found["arn"], WORKER_ARN, "{endpoint}: {found}");
        assert_eq!(
            found["region"],
            region.unwrap_or("eu-central-2"),
            "{endpoint}: {found}"
        );
        assert_eq!(found["expiry"], true, "{endpoint}: temporary credentials");
        let served = source.served();
        assert!(
            served.len() > before,
            "{endpoint}: the SDK asked the endpoint"
        );
        assert_eq!(
            found["access_key_id"],
            served[served.len() - 1].as_str(),
            "{endpoint}: the SDK used what was served"
        );
        server.shutdown().await.expect("shutdown");
    }
    assert!(source.errors().is_empty(), "{:?}", source.errors());
}

/// The AWS CLI (awscli 1.46.3, with the botocore it vendors) in a clean
/// environment with only the ECS variables: `aws sts get-caller-identity`
/// answers as the worker role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_cli_uses_the_session_through_the_ecs_endpoint() {
    let Some(aws) = require_peer("the AWS CLI (awscli)", aws_cli) else {
        return;
    };
    let Some(fx) = Fixture::start(None).await else {
        return;
    };
    let source = fx.source(Duration::from_secs(300));
    let server = serve(CredentialServer::builder(source.clone()).ecs()).await;
    let mut command = Command::new(&aws);
    command
        .args(["sts", "get-caller-identity", "--output", "json"])
        .args(["--endpoint-url", &fx.moto.endpoint_url()])
        .env_clear()
        .env("HOME", fx.dir.path())
        .env("AWS_CONFIG_FILE", fx.config_file())
        .env("AWS_SHARED_CREDENTIALS_FILE", fx.credentials_file())
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .envs(server.environment())
        .stdin(Stdio::null());
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    let output = tokio::task::block_in_place(|| command.output()).expect("run aws");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "aws failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let identity: serde_json::Value = serde_json::from_str(&stdout).expect("JSON from aws");
    assert_eq!(identity["Arn"], WORKER_ARN, "{stdout}");
    assert_eq!(identity["Account"], "123456789012");
    assert!(!source.served().is_empty());
    server.shutdown().await.expect("shutdown");
}

/// The `aws` script next to the peers' Python, provided `awscli` imports.
fn aws_cli() -> Result<PathBuf, String> {
    let python = python_with_module("awscli")?;
    let aws = python
        .parent()
        .map(|dir| dir.join(format!("aws{}", std::env::consts::EXE_SUFFIX)))
        .ok_or_else(|| format!("{} has no folder", python.display()))?;
    if aws.is_file() {
        Ok(aws)
    } else {
        Err(format!("{} is not a file", aws.display()))
    }
}

/// Rotation while a client keeps asking. The worker's credentials last
/// 900 s (STS's minimum, which moto honours) and the endpoint's source asks
/// for 897 s left: more than such credentials can keep, so the session is
/// renewed when three quarters of their lifetime are left, not at every
/// request (it used to be: one STS call per API call). Then one boto3
/// client calls `GetCallerIdentity` for 8 s while the session is rotated
/// every 2 s underneath; botocore refreshes container credentials itself
/// (less than 15 minutes left), so it keeps picking up new keys. Every call
/// must succeed, at least two different keys must have been served and
/// used, and the workspace must record the rotations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn botocore_keeps_working_while_the_session_rotates() {
    let Some(fx) = Fixture::start(Some(900)).await else {
        return;
    };
    let started = fx.worker.clone();
    let first_expiry = started.expiration.expect("the role expires");
    let lifetime = first_expiry - started.start_date_time.expect("started");
    assert!(
        (899..=901).contains(&lifetime.whole_seconds()),
        "moto honours DurationSeconds=900: {lifetime}"
    );
    let mut events = fx.manager.subscribe();
    let source = fx.source(Duration::from_secs(897));
    // Once less than the 897 s asked for is left, for 5 s (each of these
    // requests used to rotate).
    tokio::time::sleep(Duration::from_secs(4)).await;
    for _ in 0..10 {
        source.credentials().await.expect("credentials");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let asked: BTreeSet<String> = source.served().into_iter().collect();
    assert_eq!(asked.len(), 1, "ten requests over 5 s, one key: {asked:?}");
    let server = serve(CredentialServer::builder(source.clone()).ecs()).await;
    let rotator = {
        let manager = fx.manager.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                if let Err(e) = manager.rotate("worker").await {
                    eprintln!("rotate: {e}");
                }
            }
        })
    };

    #[derive(Debug, serde::Deserialize)]
    struct Loop {
        calls: usize,
        errors: Vec<String>,
        access_key_ids: Vec<String>,
        arns: Vec<String>,
        method: String,
    }
    let run: Loop = fx
        .python(ROTATION_LOOP_PY, &["8"], &server.environment())
        .json();
    rotator.abort();
    assert!(
        run.errors.is_empty(),
        "every call succeeds: {:?}",
        run.errors
    );
    assert!(run.calls >= 20, "the client kept calling: {run:?}");
    assert_eq!(run.method, "container-role");
    assert_eq!(run.arns, [WORKER_ARN]);
    assert!(
        run.access_key_ids.len() >= 2,
        "botocore picked up a rotated key: {run:?}"
    );
    let served: BTreeSet<String> = source.served().into_iter().collect();
    assert!(served.len() >= 2, "at least two keys served: {served:?}");
    for key in &run.access_key_ids {
        assert!(served.contains(key), "{key} was served by the endpoint");
    }
    assert!(source.errors().is_empty(), "{:?}", source.errors());
    server.shutdown().await.expect("shutdown");

    // The workspace recorded the rotations: events, and a later expiry.
    let mut rotations = 0;
    while let Ok(event) = events.try_recv() {
        if event.session_id == started.session_id && matches!(event.kind, SessionEventKind::Rotated)
        {
            rotations += 1;
        }
    }
    eprintln!(
        "{} calls; {} keys used by botocore, {} served over {} requests; {rotations} rotations",
        run.calls,
        run.access_key_ids.len(),
        served.len(),
        source.served().len()
    );
    assert!(
        rotations >= served.len() - 1,
        "{rotations} rotations for {} keys",
        served.len()
    );
    let record = fx.repo.get(started.session_id).await.expect("the record");
    assert!(
        record.expiration.expect("expiry") > first_expiry,
        "the record holds a rotated expiry"
    );
    assert!(record.revision() > started.revision());
}

/// The refusals, seen by a client that is not an SDK (urllib): ECS
/// without or with a wrong token (401, 403, no echo), a foreign `Host`
/// (403, for ECS and IMDS), an IMDS token PUT with `X-Forwarded-For`
/// (403), bad TTLs (400), IMDSv1 and forged tokens (401), another role
/// (404). None of them reaches the source. Then botocore itself with a
/// wrong token: it finds no credentials, and its error shows the 403 but
/// not the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_as_clients_see_them() {
    let Some(fx) = Fixture::start(None).await else {
        return;
    };
    let source = fx.source(Duration::from_secs(300));
    let server = serve(CredentialServer::builder(source.clone()).ecs().imds()).await;
    let token = server.authorization_token().expose().to_owned();
    let env = [
        ("ECS_URI", server.ecs_full_uri().expect("ECS is on")),
        ("ECS_TOKEN", token.clone()),
        ("IMDS_ENDPOINT", server.imds_endpoint().expect("IMDS is on")),
    ];
    let results: serde_json::Value = fx.python(RAW_REQUESTS_PY, &[], &env).json();
    assert_eq!(
        results,
        serde_json::json!({
            "ecs_missing_token": 401,
            "ecs_wrong_token": 403,
            "ecs_foreign_host": 403,
            "ecs_right_token": 200,
            "ecs_fields": ["AccessKeyId", "Expiration", "SecretAccessKey", "Token"],
            "imds_v1_roles": 401,
            "imds_forged_token": 401,
            "imds_put_forwarded": 403,
            "imds_put_no_ttl": 400,
            "imds_put_ttl_too_long": 400,
            "imds_put_foreign_host": 403,
            "imds_put": 200,
            "imds_v2_roles": 200,
            "imds_role": "sessionctl",
            "imds_v2_credentials": 200,
            "imds_fields": ["AccessKeyId", "Code", "Expiration", "LastUpdated", "SecretAccessKey", "Token", "Type"],
            "imds_code": "Success",
            "imds_other_role": 404,
            "imds_v2_foreign_host": 403,
            "echoed": [],
        })
    );
    assert_eq!(
        source.served().len(),
        2,
        "only the two accepted credential requests reached the source"
    );

    // botocore with a wrong token (it retries 3 times, a second apart).
    let wrong = format!("{}x", &token[..token.len() - 1]);
    let mut env = server.environment();
    for (key, value) in &mut env {
        if *key == "AWS_CONTAINER_AUTHORIZATION_TOKEN" {
            value.clone_from(&wrong);
        }
    }
    let out = fx.python(CALLER_IDENTITY_PY, &[], &env);
    assert!(
        !out.success(),
        "botocore must not get credentials: {}",
        out.stdout
    );
    assert!(
        out.stderr.contains("403"),
        "botocore reports the refusal: {}",
        out.stderr
    );
    assert!(
        !out.stderr.contains(&token) && !out.stderr.contains(&wrong),
        "no token in botocore's error"
    );
    assert_eq!(source.served().len(), 2);
    server.shutdown().await.expect("shutdown");
}

/// `build()` refuses an address other machines could reach, before
/// anything listens.
#[test]
fn binding_beyond_loopback_is_refused() {
    struct Never;
    #[async_trait::async_trait]
    impl CredentialSource for Never {
        async fn credentials(&self) -> session_core::Result<AwsCredentials> {
            unreachable!("nothing is served")
        }
    }
    for addr in ["0.0.0.0:0", "[::]:0", "192.0.2.2:0"] {
        let err = CredentialServer::builder(Never)
            .ecs()
            .bind(addr.parse().expect("addr"))
            .build()
            .expect_err("not a loopback address");
        match &err {
            Error::InvalidInput { field, reason } => {
                assert_eq!(field, "bind");
                assert!(reason.contains(addr), "names the address: {reason}");
            }
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }
}
