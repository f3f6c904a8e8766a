//! The federated (SAML) role provider against moto, whose
//! `AssumeRoleWithSAML` reads the assertion's attributes but checks no
//! signature (see the AWS reference, §7.3).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use common::{
    client, conformance_in_every_form, context, pending, probe, signed_caller_identity,
    unreachable_client,
};
use session_aws::AwsCredentials;
use session_aws::federated::{
    AssertionSourceConfig, FederatedRoleConfig, FederatedRoleProvider, FileSamlSource,
};
use session_core::{Clock, Error, Session, SessionAction, SessionStatus, SessionType, SystemClock};
use session_testkit::peers::moto::MotoServer;
use session_testkit::suites::ActionFixture;

const ROLE: &str = "arn:aws:iam::111122223333:role/Federated";
const IDP: &str = "arn:aws:iam::111122223333:saml-provider/MyIdP";

/// A §7.3-style SAML response granting `ROLE` via `IDP`.
fn assertion_xml(session_duration: Option<u32>) -> String {
    let duration = session_duration
        .map(|s| {
            format!(
                r#"<saml:Attribute Name="https://aws.amazon.com/SAML/Attributes/SessionDuration"><saml:AttributeValue>{s}</saml:AttributeValue></saml:Attribute>"#
            )
        })
        .unwrap_or_default();
    format!(
        r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r" Version="2.0" IssueInstant="2026-01-01T00:00:00Z">
<saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">http://localhost:3000/</saml:Issuer>
<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a" Version="2.0" IssueInstant="2026-01-01T00:00:00Z">
<saml:Issuer>http://localhost:3000/</saml:Issuer><saml:Subject><saml:NameID>alice@example.com</saml:NameID></saml:Subject>
<saml:AttributeStatement>
<saml:Attribute Name="https://aws.amazon.com/SAML/Attributes/Role"><saml:AttributeValue>{ROLE},{IDP}</saml:AttributeValue></saml:Attribute>
<saml:Attribute Name="https://aws.amazon.com/SAML/Attributes/RoleSessionName"><saml:AttributeValue>alice@example.com</saml:AttributeValue></saml:Attribute>
{duration}
</saml:AttributeStatement></saml:Assertion></samlp:Response>"#
    )
}

/// Writes the assertion base64-encoded, as an IdP POSTs it.
fn write_assertion(dir: &Path, session_duration: Option<u32>) -> PathBuf {
    let path = dir.join("saml-response.b64");
    let encoded = base64::engine::general_purpose::STANDARD.encode(assertion_xml(session_duration));
    std::fs::write(&path, encoded).expect("write the assertion");
    path
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

/// The issued credentials are temporary keys moto accepts for a signed call.
#[tokio::test]
async fn issued_credentials_sign_get_caller_identity() {
    let Some(moto) = MotoServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_assertion(dir.path(), None);
    let (ctx, _clock) = context();
    let session = federated("saml-identity", &FederatedRoleConfig::new(ROLE, IDP));
    let provider = FederatedRoleProvider::without_sink(client(&moto))
        .with_source(Arc::new(FileSamlSource::new(&file)));
    let started = provider
        .start(&ctx, &pending(session.clone()))
        .await
        .expect("start");
    assert_eq!(started.status(), SessionStatus::Active);
    let creds = AwsCredentials::load_issued(ctx.secrets.as_ref(), session.session_id)
        .await
        .expect("load")
        .expect("issued credentials");
    assert!(creds.session_token.is_some());
    // moto answers `user/moto` for SAML credentials (a moto bug, §7.2), so
    // only the signed call's success is checked.
    let identity = signed_caller_identity(&moto, &started, &creds).await;
    assert!(identity.account().is_some());
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
