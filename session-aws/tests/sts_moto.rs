//! The IAM-user and chained-role providers against moto, a real STS
//! implementation on 127.0.0.1 (installed by `./scripts/test`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{
    add_chained_role, add_iam_user, client, conformance_in_every_form, context, pending, probe,
    signed_caller_identity, store_user_key, unreachable_client,
};
use session_aws::{
    AwsClientConfig, AwsCredentials, ChainedRoleConfig, ChainedRoleProvider, IamUserProvider,
};
use session_core::{
    Error, InMemorySecretStore, InMemoryWorkspace, Session, SessionAction, SessionManager,
    SessionStatus, SessionType, WorkspaceRepository,
};
use session_testkit::peers::moto::MotoServer;
use session_testkit::suites::ActionFixture;

#[tokio::test]
async fn iam_user_passes_the_conformance_harness() {
    let Some(moto) = MotoServer::start() else {
        return;
    };
    let (ctx, clock) = context();
    let session = Session::new("iam-user", SessionType::AwsIamUser).expect("session");
    store_user_key(ctx.secrets.as_ref(), &session).await;
    // No long-term key stored: start must fail, naming the session.
    let failing = Session::new("iam-user-without-key", SessionType::AwsIamUser).expect("session");
    let fixture = ActionFixture {
        session,
        failing_session: Some(failing),
        ctx,
        clock,
        probe: probe(),
        pause_before_rotate: Duration::from_millis(1100),
    };
    conformance_in_every_form(IamUserProvider::without_sink(client(&moto)), &fixture).await;
}

#[tokio::test]
async fn chained_role_passes_the_conformance_harness() {
    let Some(moto) = MotoServer::start() else {
        return;
    };
    let (ctx, clock) = context();
    // The parent: an IAM user started for real against moto.
    let parent = Session::new("chain-parent", SessionType::AwsIamUser).expect("session");
    store_user_key(ctx.secrets.as_ref(), &parent).await;
    let parent = IamUserProvider::without_sink(client(&moto))
        .start(&ctx, &pending(parent))
        .await
        .expect("parent start");
    let ctx = ctx.with_parent(parent.clone());
    let session = Session::new("chained", SessionType::AwsIamRoleChained)
        .expect("session")
        .with_parent(parent.session_id)
        .with_config(&ChainedRoleConfig::new(
            "arn:aws:iam::123456789012:role/Admin",
        ))
        .expect("config");
    // A malformed external id: refused before any call, naming the session.
    let mut bad = ChainedRoleConfig::new("arn:aws:iam::123456789012:role/Admin");
    bad.external_id = Some("x".into());
    let failing = Session::new("chained-bad", SessionType::AwsIamRoleChained)
        .expect("session")
        .with_parent(parent.session_id)
        .with_config(&bad)
        .expect("config");
    let fixture = ActionFixture {
        session,
        failing_session: Some(failing),
        ctx,
        clock,
        probe: probe(),
        pause_before_rotate: Duration::ZERO,
    };
    conformance_in_every_form(ChainedRoleProvider::without_sink(client(&moto)), &fixture).await;
}

/// Through the manager: starting the child starts the parent, the child's
/// credentials are a real assumed role (checked with GetCallerIdentity), and
/// stop forgets them.
#[tokio::test]
async fn manager_starts_a_chain_against_moto() {
    let Some(moto) = MotoServer::start() else {
        return;
    };
    let secrets = Arc::new(InMemorySecretStore::new());
    let repo = Arc::new(InMemoryWorkspace::new());
    let manager = SessionManager::builder()
        .repository(repo.clone())
        .secrets(secrets.clone())
        .provider(Arc::new(IamUserProvider::without_sink(client(&moto))))
        .provider(Arc::new(ChainedRoleProvider::without_sink(client(&moto))))
        .build()
        .expect("manager");
    let user = add_iam_user(&manager, secrets.as_ref(), "dev-user", 7200).await;
    let mut role = ChainedRoleConfig::new("arn:aws:iam::210987654321:role/Deploy");
    role.role_session_name = Some("ci-deploy".into());
    role.tags.insert("team".into(), "infra".into());
    let child = add_chained_role(&manager, "deploy", &user, &role).await;

    let started = manager.start("deploy").await.expect("start the chain");
    assert_eq!(started.status(), SessionStatus::Active);
    let user_now = repo.get(user.session_id).await.expect("get");
    assert_eq!(
        user_now.status(),
        SessionStatus::Active,
        "the parent was started"
    );
    let creds = AwsCredentials::load_issued(secrets.as_ref(), child.session_id)
        .await
        .expect("load")
        .expect("issued credentials");
    let identity = signed_caller_identity(&moto, &started, &creds).await;
    assert_eq!(
        identity.arn(),
        Some("arn:aws:sts::210987654321:assumed-role/Deploy/ci-deploy")
    );

    manager.stop("deploy").await.expect("stop");
    assert!(
        AwsCredentials::load_issued(secrets.as_ref(), child.session_id)
            .await
            .expect("load")
            .is_none(),
        "stop forgets the credentials"
    );
    assert_eq!(
        repo.get(user.session_id).await.expect("get").status(),
        SessionStatus::Active,
        "the parent keeps running"
    );
}

/// Bad input is refused before any network call, with the field named.
#[tokio::test]
async fn invalid_config_is_refused_without_a_call() {
    // An endpoint where nothing listens: a call would be Unavailable.
    let client = unreachable_client();
    let (ctx, _clock) = context();
    let parent = Session::new("p", SessionType::AwsIamUser).expect("s");
    let ctx = ctx.with_parent(parent);
    let mut config = ChainedRoleConfig::new("arn:aws:iam::123:role/Short");
    config.duration_seconds = Some(7200);
    let session = Session::new("bad-arn", SessionType::AwsIamRoleChained)
        .expect("s")
        .with_config(&config)
        .expect("config");
    match ChainedRoleProvider::without_sink(client.clone())
        .start(&ctx, &pending(session))
        .await
    {
        Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "roleArn"),
        other => panic!("expected InvalidInput for roleArn, got {other:?}"),
    }
    // And a real call to a dead endpoint is Unavailable (retryable).
    let user = Session::new("unreachable", SessionType::AwsIamUser).expect("s");
    store_user_key(ctx.secrets.as_ref(), &user).await;
    match IamUserProvider::without_sink(client)
        .start(&ctx, &pending(user))
        .await
    {
        Err(e @ Error::Unavailable { .. }) => {
            assert!(e.is_retryable());
            assert!(
                e.to_string().contains("unreachable"),
                "names the session: {e}"
            );
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(
        AwsClientConfig::builder()
            .endpoint_url("localhost:5000")
            .build()
            .is_err()
    );
    assert!(
        AwsClientConfig::builder()
            .region("EU WEST")
            .build()
            .is_err()
    );
}

/// A session handed to an aws-sdk client as its credentials provider: the
/// first call starts it, later calls reuse the credentials, and credentials
/// inside `min_ttl` are rotated first.
#[tokio::test]
async fn a_session_is_a_credentials_provider_for_sdk_clients() {
    use session_aws::SessionCredentialsProvider;
    use session_core::SessionEventKind;
    let Some(moto) = MotoServer::start() else {
        return;
    };
    let secrets = Arc::new(InMemorySecretStore::new());
    let manager = SessionManager::builder()
        .repository(Arc::new(InMemoryWorkspace::new()))
        .secrets(secrets.clone())
        .provider(Arc::new(IamUserProvider::without_sink(client(&moto))))
        .build()
        .expect("manager");
    add_iam_user(&manager, secrets.as_ref(), "sdk-user", 900).await;
    let mut events = manager.subscribe();

    let provider = SessionCredentialsProvider::new(manager.clone(), "sdk-user");
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(aws_sdk_sts::config::Region::new("us-east-1"))
            .endpoint_url(moto.endpoint_url())
            .credentials_provider(provider.clone())
            .build(),
    );
    sts.get_caller_identity()
        .send()
        .await
        .expect("an SDK call signed with the session's credentials");
    assert!(matches!(
        events.try_recv().expect("event").kind,
        SessionEventKind::Started
    ));
    assert_eq!(
        manager.find("sdk-user").await.expect("find").status(),
        SessionStatus::Active
    );

    // 900 s credentials, 300 s min_ttl: served as they are.
    let first = provider.credentials().await.expect("credentials");
    assert!(events.try_recv().is_err(), "no second STS call");
    // A min_ttl beyond their lifetime forces a rotation.
    let eager = provider.clone().with_min_ttl(Duration::from_secs(1000));
    let rotated = eager.credentials().await.expect("rotated credentials");
    assert!(matches!(
        events.try_recv().expect("event").kind,
        SessionEventKind::Rotated
    ));
    assert!(rotated.expiration >= first.expiration);

    let not_aws = manager
        .add(Session::new("bmc", SessionType::Redfish).expect("s"))
        .await
        .expect("add");
    let err = SessionCredentialsProvider::new(manager.clone(), not_aws.session_id.to_string())
        .credentials()
        .await
        .expect_err("not an AWS session");
    assert!(
        err.to_string().contains("not an AWS credential session"),
        "{err}"
    );
}
