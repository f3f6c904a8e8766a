//! The federated (SAML) role provider against moto, whose
//! `AssumeRoleWithSAML` reads the assertion's attributes but checks no
//! signature (see the AWS reference, §7.3).
//!
//! `AssumeRoleWithSAML` is unsigned, and moto fails unsigned calls with a
//! 500 when its authentication is on (moto 5.2), so the starts run with
//! authentication off. moto registers the credentials they issue:
//! `issued_credentials_sign_get_caller_identity` turns authentication on
//! after the start and checks that the credentials (and only they, not a
//! tampered copy) sign a call.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{
    caller_identity, client, conformance_in_every_form, context, pending, probe,
    signed_caller_identity, tampered, unreachable_client,
};
use session_aws::AwsCredentials;
use session_aws::federated::{
    AssertionSourceConfig, FederatedRoleConfig, FederatedRoleProvider, FileSamlSource,
};
use session_core::{
    Clock, Error, Secret, Session, SessionAction, SessionStatus, SessionType, SystemClock,
};
use session_testkit::peers::moto::MotoServer;
use session_testkit::suites::ActionFixture;

const ROLE: &str = "arn:aws:iam::111122223333:role/Federated";
const IDP: &str = "arn:aws:iam::111122223333:saml-provider/MyIdP";

/// A §7.3-style SAML response granting `ROLE` via `IDP`, written
/// base64-encoded into `dir`.
fn write_assertion(dir: &Path, session_duration: Option<u32>) -> PathBuf {
    common::write_assertion(dir, ROLE, IDP, session_duration)
}

fn federated(name: &str, config: &FederatedRoleConfig) -> Session {
    Session::new(name, SessionType::AwsIamRoleFederated)
        .expect("session")
        .with_config(config)
        .expect("config")
}

#[tokio::test]
async fn federated_role_passes_the_conformance_harness() {
    let Some(moto) = MotoServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_assertion(dir.path(), None);
    let (ctx, clock) = context();
    let session = federated("saml-role", &FederatedRoleConfig::new(ROLE, IDP));
    // The assertion does not grant this role: refused before the call,
    // naming the session.
    let failing = federated(
        "saml-role-not-granted",
        &FederatedRoleConfig::new("arn:aws:iam::111122223333:role/NotGranted", IDP),
    );
    let fixture = ActionFixture {
        session,
        failing_session: Some(failing),
        ctx,
        clock,
        probe: probe(),
        // AssumeRoleWithSAML issues fresh ASIA keys on every call.
        pause_before_rotate: Duration::ZERO,
    };
    let provider = FederatedRoleProvider::without_sink(client(&moto))
        .with_source(Arc::new(FileSamlSource::new(&file)));
    conformance_in_every_form(provider, &fixture).await;
}

/// The issued credentials are temporary keys moto accepts for a signed call
/// with authentication on; with a tampered secret or token moto refuses
/// them.
#[tokio::test]
async fn issued_credentials_sign_get_caller_identity() {
    // With authentication on, moto finds SAML credentials only in its
    // default account (else `InvalidClientTokenId`): make it ROLE's.
    let Some(moto) = MotoServer::builder()
        .env("MOTO_ACCOUNT_ID", "111122223333")
        .start()
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_assertion(dir.path(), None);
    let (ctx, _clock) = context();
    let session = federated("saml-identity", &FederatedRoleConfig::new(ROLE, IDP));
    let provider = FederatedRoleProvider::without_sink(client(&moto))
        .with_source(Arc::new(FileSamlSource::new(&file)));
    // The start is unsigned: it runs before authentication is turned on.
    let started = provider
        .start(&ctx, &pending(session.clone()))
        .await
        .expect("start");
    moto.authentication_after(0);
    assert_eq!(started.status(), SessionStatus::Active);
    let creds = AwsCredentials::load_issued(ctx.secrets.as_ref(), session.session_id)
        .await
        .expect("load")
        .expect("issued credentials");
    // moto names the caller from the signing key: the assumed role.
    let identity = signed_caller_identity(&moto, &started, &creds).await;
    assert_eq!(
        identity.arn(),
        Some("arn:aws:sts::111122223333:assumed-role/Federated/alice@example.com")
    );
    let mut bad_secret = creds.clone();
    bad_secret.secret_access_key = Secret::new(tampered(creds.secret_access_key.expose()));
    assert_eq!(
        caller_identity(&moto, &bad_secret).await.map(drop),
        Err("403 SignatureDoesNotMatch".to_owned()),
        "a tampered secret is refused"
    );
    let mut bad_token = creds.clone();
    bad_token.session_token = Some(Secret::new(tampered(
        creds
            .session_token
            .as_ref()
            .expect("a session token")
            .expose(),
    )));
    assert_eq!(
        caller_identity(&moto, &bad_token).await.map(drop),
        Err("403 InvalidClientTokenId".to_owned()),
        "a tampered token is refused"
    );
}

/// `SessionDuration` 1800 in the assertion sets a 30-minute expiry; the
/// source here comes from the session's config (a command, no shell).
#[tokio::test]
async fn session_duration_of_the_assertion_sets_the_expiry() {
    let Some(moto) = MotoServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_assertion(dir.path(), Some(1800));
    let (ctx, _clock) = context();
    let config = FederatedRoleConfig::new(ROLE, IDP).with_assertion_source(
        AssertionSourceConfig::command("cat", [file.to_str().expect("utf-8 path")]),
    );
    let session = federated("saml-30min", &config);
    // No provider-wide source: the config's command is used.
    let provider = FederatedRoleProvider::without_sink(client(&moto));
    let before = SystemClock.now();
    let started = provider
        .start(&ctx, &pending(session))
        .await
        .expect("start");
    let expiration = started.expiration.expect("an expiry");
    let lifetime = (expiration - before).whole_seconds();
    assert!(
        (1800 - 60..=1800 + 60).contains(&lifetime),
        "about 30 minutes, got {lifetime} s"
    );
}

/// A source that fails (here: a command exiting non-zero) fails the start
/// with its output, naming the session, before any call; nothing is stored.
#[tokio::test]
async fn a_failing_source_fails_the_start() {
    // Nothing listens here: reaching STS would be `Unavailable`.
    let client = unreachable_client();
    let (ctx, _clock) = context();
    let config = FederatedRoleConfig::new(ROLE, IDP).with_assertion_source(
        AssertionSourceConfig::command("cat", ["/nonexistent/saml-response"]),
    );
    let session = federated("saml-broken-source", &config);
    let provider = FederatedRoleProvider::without_sink(client);
    match provider.start(&ctx, &pending(session.clone())).await {
        Err(e @ Error::Provider { .. }) => {
            let text = e.to_string();
            assert!(text.contains("saml-broken-source"), "{text}");
            assert!(text.contains("No such file"), "{text}");
        }
        other => panic!("expected a provider error, got {other:?}"),
    }
    assert!(
        AwsCredentials::load_issued(ctx.secrets.as_ref(), session.session_id)
            .await
            .expect("load")
            .is_none()
    );
}
