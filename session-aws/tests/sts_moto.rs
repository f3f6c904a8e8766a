//! The IAM-user and chained-role providers against moto, a real STS
//! implementation on 127.0.0.1 (installed by `./scripts/test`).
//!
//! Where a check depends on who signed a call, moto runs with
//! authentication on (`common::moto_with_authentication`): every call must
//! be signed with a key moto issued, and the IAM user's long-term key is the
//! one moto issued. moto's limits there (moto 5.2; see
//! `session_testkit::peers::moto`) decide which checks can run that way:
//!
//! - moto does not register the credentials `GetSessionToken` returns, so
//!   an IAM user session's temporary credentials, and `AssumeRole` signed
//!   with them, are refused (`InvalidClientTokenId`). The IAM-user start
//!   itself (signed with the stored long-term key) is checked; role
//!   credentials are checked on a chain under a federated (SAML) parent,
//!   whose credentials moto knows.
//! - An unsigned `AssumeRoleWithSAML` fails (a 500) with authentication
//!   on, so the federated parent starts while authentication is off.
//! - `AssumeRole` signed by a role needs a permission policy on that role
//!   (else `AccessDenied`): the federated parent's role gets one.
//!
//! The tests that chain from an IAM user keep authentication off and say so.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{
    add_chained_role, add_iam_user, assert_refused, assume_role, caller_identity, client,
    conformance_in_every_form, context, get_session_token, moto_with_authentication, pending,
    probe, signed_caller_identity, store_moto_key, store_user_key, tamper_issued, tampered,
    unreachable_client, write_assertion,
};
use session_aws::federated::{FederatedRoleConfig, FederatedRoleProvider, FileSamlSource};
use session_aws::{
    AwsClientConfig, AwsCredentials, ChainedRoleConfig, ChainedRoleProvider, IamUserProvider,
};
use session_core::{
    ActionContext, Error, InMemorySecretStore, InMemoryWorkspace, Secret, Session, SessionAction,
    SessionManager, SessionStatus, SessionType, WorkspaceRepository,
};
use session_testkit::peers::moto::{ALLOW_ALL_POLICY, MotoServer};
use session_testkit::suites::ActionFixture;

/// The federated parent's role (with a permission policy, so that it may
/// call `AssumeRole`) and its identity provider, in moto's default account.
const FEDERATED_ROLE: &str = "arn:aws:iam::123456789012:role/Federated";
const IDP: &str = "arn:aws:iam::123456789012:saml-provider/MyIdP";

/// Starts a federated (SAML) session for [`FEDERATED_ROLE`] while moto's
/// authentication is off, then turns it back on. moto fails an unsigned
/// `AssumeRoleWithSAML` with authentication on (a 500), but it registers
/// the credentials it issued, so they sign later calls.
async fn start_federated_parent(
    moto: &MotoServer,
    ctx: &ActionContext,
    dir: &std::path::Path,
) -> Session {
    let file = write_assertion(dir, FEDERATED_ROLE, IDP, None);
    let session = Session::new("saml-parent", SessionType::AwsIamRoleFederated)
        .expect("session")
        .with_config(&FederatedRoleConfig::new(FEDERATED_ROLE, IDP))
        .expect("config");
    moto.authentication_off();
    let started = FederatedRoleProvider::without_sink(client(moto))
        .with_source(Arc::new(FileSamlSource::new(&file)))
        .start(ctx, &pending(session))
        .await;
    moto.authentication_after(0);
    started.expect("federated parent start")
}

/// Authentication on: start and rotate (`GetSessionToken`) are signed with
/// the key moto issued to the IAM user.
#[tokio::test]
async fn iam_user_passes_the_conformance_harness() {
    let Some((moto, key)) = moto_with_authentication(|_, _| {}) else {
        return;
    };
    let (ctx, clock) = context();
    let session = Session::new("iam-user", SessionType::AwsIamUser).expect("session");
    store_moto_key(ctx.secrets.as_ref(), &session, &key).await;
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

/// Authentication on: the IAM user's start is signed with the long-term key
/// from the secret store. The key moto issued works; the same key with a
/// tampered secret (moto: `SignatureDoesNotMatch`) and an unknown key id
/// (`InvalidClientTokenId`) fail the start naming the session, and nothing
/// is stored. moto's code is read from a direct call with the same key,
/// because aws-sdk-sts cannot parse moto's refusals (see
/// `common::assert_refused`). moto does not register the temporary
/// credentials `GetSessionToken` returns, so those are not checked with a
/// call here.
#[tokio::test]
async fn iam_user_start_is_signed_with_the_stored_key() {
    let Some((moto, key)) = moto_with_authentication(|_, _| {}) else {
        return;
    };
    let provider = IamUserProvider::without_sink(client(&moto));
    let (ctx, _clock) = context();

    let good = Session::new("signed-user", SessionType::AwsIamUser).expect("session");
    store_moto_key(ctx.secrets.as_ref(), &good, &key).await;
    let started = provider
        .start(&ctx, &pending(good))
        .await
        .expect("a start signed with the key moto issued");
    assert_eq!(started.status(), SessionStatus::Active);

    let cases = [
        (
            "tampered-secret",
            key.access_key_id.clone(),
            tampered(key.secret_access_key.expose()),
            "SignatureDoesNotMatch",
        ),
        (
            "unknown-key",
            "AKIAUNKNOWNKEY000000".to_owned(),
            key.secret_access_key.expose().to_owned(),
            "InvalidClientTokenId",
        ),
    ];
    for (name, key_id, secret, code) in cases {
        let session = Session::new(name, SessionType::AwsIamUser).expect("session");
        AwsCredentials::store_long_term(
            ctx.secrets.as_ref(),
            session.session_id,
            &key_id,
            &Secret::new(secret),
        )
        .await
        .expect("store");
        let long_term = AwsCredentials::load_long_term(ctx.secrets.as_ref(), session.session_id)
            .await
            .expect("load")
            .expect("stored");
        assert_eq!(
            get_session_token(&moto, &long_term).await,
            Err(format!("403 {code}")),
            "moto refuses this key"
        );
        let err = provider
            .start(&ctx, &pending(session.clone()))
            .await
            .expect_err("moto refuses the signature");
        assert_refused(&err, "unauthenticated", code, name);
        assert!(
            AwsCredentials::load_issued(ctx.secrets.as_ref(), session.session_id)
                .await
                .expect("load")
                .is_none(),
            "nothing issued"
        );
    }
}

/// Authentication on, with a federated parent: `AssumeRole` is signed with
/// credentials moto knows (an IAM user's `GetSessionToken` credentials are
/// not registered by moto, so `AssumeRole` with them would be
/// `InvalidClientTokenId`), and the parent's role has a permission policy
/// (without one, moto answers `AccessDenied`).
#[tokio::test]
async fn chained_role_passes_the_conformance_harness() {
    let Some((moto, _key)) = moto_with_authentication(|moto, botocore| {
        moto.create_role(botocore, "Federated", Some(ALLOW_ALL_POLICY));
        moto.create_role(botocore, "Admin", None);
    }) else {
        return;
    };
    let (ctx, clock) = context();
    let dir = tempfile::tempdir().expect("tempdir");
    let parent = start_federated_parent(&moto, &ctx, dir.path()).await;
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
///
/// Authentication stays off: the parent is an IAM user, and moto does not
/// register its `GetSessionToken` credentials, so with authentication on the
/// child's `AssumeRole` would be `InvalidClientTokenId` (moto's limit). The
/// same checks with authentication on, under a federated parent, are in
/// `role_credentials_are_checked_by_moto`.
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
/// first call starts it, later calls reuse the credentials (also when
/// asked for more than their lifetime, until three quarters of it are
/// left), and a rotation through the manager is picked up.
///
/// Authentication stays off: the session is an IAM user, whose
/// `GetSessionToken` credentials moto does not register, so with
/// authentication on the client's `GetCallerIdentity` would be refused
/// (`InvalidClientTokenId`; moto's limit).
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
    // A min_ttl beyond their lifetime: still served as they are while
    // three quarters of it are left (each call used to rotate).
    let eager = provider.clone().with_min_ttl(Duration::from_secs(1000));
    // (moto hands out the same key id every time: the events tell.)
    eager.credentials().await.expect("credentials");
    assert!(events.try_recv().is_err(), "no rotation");
    // Rotated through the manager: the provider serves the new ones.
    manager.rotate("sdk-user").await.expect("rotate");
    assert!(matches!(
        events.try_recv().expect("event").kind,
        SessionEventKind::Rotated
    ));
    let rotated = eager.credentials().await.expect("rotated credentials");
    assert!(events.try_recv().is_err(), "served, not rotated again");
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

const DEPLOY_ROLE: &str = "arn:aws:iam::123456789012:role/Deploy";
const AUDIT_ROLE: &str = "arn:aws:iam::123456789012:role/Audit";

/// Authentication on, through the manager: a chained role under a federated
/// parent (see `chained_role_passes_the_conformance_harness` for why not an
/// IAM user). The child's credentials sign `GetCallerIdentity` as the
/// assumed role; the same credentials with a tampered secret or token are
/// refused; a tampered parent secret fails the child's rotation naming it;
/// and a role without a permission policy may not assume another
/// (`AccessDenied`, a `PermissionDenied` error).
#[tokio::test]
async fn role_credentials_are_checked_by_moto() {
    let Some((moto, _key)) = moto_with_authentication(|moto, botocore| {
        moto.create_role(botocore, "Federated", Some(ALLOW_ALL_POLICY));
        moto.create_role(botocore, "Deploy", None);
        moto.create_role(botocore, "Audit", None);
    }) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_assertion(dir.path(), FEDERATED_ROLE, IDP, None);
    let secrets = Arc::new(InMemorySecretStore::new());
    let manager = SessionManager::builder()
        .repository(Arc::new(InMemoryWorkspace::new()))
        .secrets(secrets.clone())
        .provider(Arc::new(
            FederatedRoleProvider::without_sink(client(&moto))
                .with_source(Arc::new(FileSamlSource::new(&file))),
        ))
        .provider(Arc::new(ChainedRoleProvider::without_sink(client(&moto))))
        .build()
        .expect("manager");
    let parent = manager
        .add(
            Session::new("saml", SessionType::AwsIamRoleFederated)
                .expect("s")
                .with_config(&FederatedRoleConfig::new(FEDERATED_ROLE, IDP))
                .expect("config"),
        )
        .await
        .expect("add");
    let mut role = ChainedRoleConfig::new(DEPLOY_ROLE);
    role.role_session_name = Some("ci-deploy".into());
    let child = add_chained_role(&manager, "deploy", &parent, &role).await;
    let grandchild = add_chained_role(
        &manager,
        "audit",
        &child,
        &ChainedRoleConfig::new(AUDIT_ROLE),
    )
    .await;

    // moto fails an unsigned AssumeRoleWithSAML with authentication on.
    moto.authentication_off();
    let parent_started = manager.start("saml").await;
    moto.authentication_after(0);
    parent_started.expect("start the federated parent");

    let started = manager.start("deploy").await.expect("start the child");
    let creds = AwsCredentials::load_issued(secrets.as_ref(), child.session_id)
        .await
        .expect("load")
        .expect("issued credentials");
    let identity = signed_caller_identity(&moto, &started, &creds).await;
    assert_eq!(
        identity.arn(),
        Some("arn:aws:sts::123456789012:assumed-role/Deploy/ci-deploy")
    );
    let mut bad_secret = creds.clone();
    bad_secret.secret_access_key = Secret::new(tampered(creds.secret_access_key.expose()));
    assert_eq!(
        caller_identity(&moto, &bad_secret).await.map(drop),
        Err("403 SignatureDoesNotMatch".to_owned()),
        "a tampered role secret is refused"
    );
    let mut bad_token = creds.clone();
    bad_token.session_token = creds
        .session_token
        .as_ref()
        .map(|t| Secret::new(tampered(t.expose())));
    assert_eq!(
        caller_identity(&moto, &bad_token).await.map(drop),
        Err("403 InvalidClientTokenId".to_owned()),
        "a tampered role token is refused"
    );

    // Deploy has no permission policy: it may not assume Audit.
    assert_eq!(
        assume_role(&moto, &creds, AUDIT_ROLE).await,
        Err("403 AccessDenied".to_owned())
    );
    let err = manager
        .start("audit")
        .await
        .expect_err("a role without a permission policy may not assume another");
    assert_refused(&err, "permission_denied", "AccessDenied", "audit");
    assert!(
        AwsCredentials::load_issued(secrets.as_ref(), grandchild.session_id)
            .await
            .expect("load")
            .is_none()
    );

    // The parent's stored credentials tampered: the child's rotation signs
    // with them and is refused.
    tamper_issued(secrets.as_ref(), &parent, |c| {
        c.secret_access_key = Secret::new(tampered(c.secret_access_key.expose()));
    })
    .await;
    let parent_creds = AwsCredentials::load_issued(secrets.as_ref(), parent.session_id)
        .await
        .expect("load")
        .expect("issued credentials");
    assert_eq!(
        assume_role(&moto, &parent_creds, DEPLOY_ROLE).await,
        Err("403 SignatureDoesNotMatch".to_owned())
    );
    let err = manager
        .rotate("deploy")
        .await
        .expect_err("AssumeRole signed with a tampered parent secret");
    assert_refused(&err, "unauthenticated", "SignatureDoesNotMatch", "deploy");
}
