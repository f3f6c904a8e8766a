//! Fixtures shared by the integration tests: an STS client for moto, moto
//! with authentication on and the IAM user key it issued, SAML assertions
//! moto accepts, an action context on moto's clock, the credential probe of
//! the conformance harness, and IAM users with a long-term key. Each test
//! binary uses a part.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::error::{DisplayErrorContext, SdkError};
use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput;
use futures::FutureExt;
use session_aws::{AwsClientConfig, AwsCredentials, ChainedRoleConfig, IamUserConfig};
use session_core::{
    ActionContext, Clock, Error, InMemorySecretStore, ManualClock, Secret, SecretStore, Session,
    SessionAction, SessionManager, SessionStatus, SessionType, SystemClock,
};
use session_testkit::peers::moto::{ALLOW_ALL_POLICY, MotoAccessKey, MotoServer};
use session_testkit::readers::botocore::Botocore;
use session_testkit::suites::{ActionFixture, CredentialProbe, action_conformance};

/// moto with authentication on. `seed` runs first, with authentication
/// off, after the IAM user `dev` (allowed everything) got its access key;
/// from then on every call must be signed with a key moto issued. Returns
/// the server and `dev`'s key, or `None` when moto is missing outside CI.
pub(crate) fn moto_with_authentication(
    seed: impl FnOnce(&MotoServer, &Botocore),
) -> Option<(MotoServer, MotoAccessKey)> {
    let moto = MotoServer::start()?;
    let botocore = Botocore::new()?;
    let key = moto.seed_then_authenticate(|moto| {
        let key = moto.create_iam_user(&botocore, "dev", ALLOW_ALL_POLICY);
        seed(moto, &botocore);
        key
    });
    Some((moto, key))
}

/// Stores the key moto issued as `session`'s long-term key.
pub(crate) async fn store_moto_key(
    secrets: &dyn SecretStore,
    session: &Session,
    key: &MotoAccessKey,
) {
    AwsCredentials::store_long_term(
        secrets,
        session.session_id,
        &key.access_key_id,
        &key.secret_access_key,
    )
    .await
    .expect("store long-term key");
}

/// `value` with its last character changed: a tampered secret or token.
pub(crate) fn tampered(value: &str) -> String {
    let mut out = value.to_owned();
    let last = out.pop().expect("not empty");
    out.push(if last == 'A' { 'B' } else { 'A' });
    out
}

/// Replaces `session`'s issued credentials in the store by `edit`ed ones.
pub(crate) async fn tamper_issued(
    secrets: &dyn SecretStore,
    session: &Session,
    edit: impl FnOnce(&mut AwsCredentials),
) {
    let mut creds = AwsCredentials::load_issued(secrets, session.session_id)
        .await
        .expect("load")
        .expect("issued credentials");
    edit(&mut creds);
    creds
        .store_issued(secrets, session.session_id)
        .await
        .expect("store the tampered credentials");
}

/// What moto answered a call it refused: `"<status> <Code>"`, read from
/// the raw response. moto's authentication errors are EC2-style XML
/// (`<ErrorResponse><Errors><Error>`, served as `text/html`) that
/// aws-sdk-sts does not parse: the SDK sees no code ("Unknown").
pub(crate) fn refusal<E: std::error::Error + Send + Sync + 'static>(
    err: &SdkError<E, HttpResponse>,
) -> String {
    let Some(raw) = err.raw_response() else {
        return format!("no response: {}", DisplayErrorContext(err));
    };
    let body = String::from_utf8_lossy(raw.body().bytes().unwrap_or_default());
    let code = body
        .split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map_or("(no code)", |(code, _)| code);
    format!("{} {code}", raw.status().as_u16())
}

/// A `GetCallerIdentity` call to moto signed with `creds`; a refusal as
/// [`refusal`] reads it.
pub(crate) async fn caller_identity(
    moto: &MotoServer,
    creds: &AwsCredentials,
) -> Result<GetCallerIdentityOutput, String> {
    client(moto)
        .sts("us-east-1", Some(creds))
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| refusal(&e))
}

/// What moto answers an `AssumeRole` of `role_arn` signed with `creds`,
/// made directly (not through a provider): `Ok` or the [`refusal`].
pub(crate) async fn assume_role(
    moto: &MotoServer,
    creds: &AwsCredentials,
    role_arn: &str,
) -> Result<(), String> {
    client(moto)
        .sts("us-east-1", Some(creds))
        .assume_role()
        .role_arn(role_arn)
        .role_session_name("direct-check")
        .send()
        .await
        .map(drop)
        .map_err(|e| refusal(&e))
}

/// What moto answers a `GetSessionToken` signed with `creds`, made
/// directly (not through a provider): `Ok` or the [`refusal`].
pub(crate) async fn get_session_token(
    moto: &MotoServer,
    creds: &AwsCredentials,
) -> Result<(), String> {
    client(moto)
        .sts("us-east-1", Some(creds))
        .get_session_token()
        .send()
        .await
        .map(drop)
        .map_err(|e| refusal(&e))
}

/// Checks that `err` is how a provider reports a call moto refused for
/// the session `name`. With real STS that is the category of the code
/// (e.g. `Unauthenticated` naming `SignatureDoesNotMatch`); moto's refusals
/// under authentication cannot be parsed by aws-sdk-sts (see [`refusal`]),
/// so they arrive as a non-retryable `Provider` error with an "Unknown"
/// code. Either is accepted; the caller checks moto's actual code with a
/// direct call ([`get_session_token`], [`assume_role`]).
pub(crate) fn assert_refused(err: &Error, category: &str, code: &str, name: &str) {
    let text = err.to_string();
    assert!(text.contains(name), "names the session: {text}");
    match err {
        Error::Provider {
            message, retryable, ..
        } => {
            assert!(
                message.ends_with("Unknown: no message"),
                "only moto's unparsed refusal is a provider error: {err:?}"
            );
            assert!(!retryable, "a refusal is not retried: {err:?}");
        }
        _ => {
            assert_eq!(err.category(), category, "{err:?}");
            assert!(text.contains(code), "names {code}: {text}");
        }
    }
}

/// A client for moto's STS, without retries.
pub(crate) fn client(moto: &MotoServer) -> AwsClientConfig {
    client_for(&moto.endpoint_url())
}

/// A client for an endpoint where nothing listens: a call would be
/// `Unavailable`.
pub(crate) fn unreachable_client() -> AwsClientConfig {
    client_for("http://127.0.0.1:9")
}

fn client_for(endpoint_url: &str) -> AwsClientConfig {
    AwsClientConfig::builder()
        .endpoint_url(endpoint_url)
        .max_attempts(1)
        .build()
        .expect("client config")
}

/// Checks that `creds` are temporary keys with `started`'s expiry, and
/// signs a `GetCallerIdentity` call to moto with them.
pub(crate) async fn signed_caller_identity(
    moto: &MotoServer,
    started: &Session,
    creds: &AwsCredentials,
) -> GetCallerIdentityOutput {
    assert!(
        creds.access_key_id.starts_with("ASIA"),
        "temporary credentials"
    );
    assert_eq!(started.expiration, creds.expiration);
    client(moto)
        .sts("us-east-1", Some(creds))
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity with the issued credentials")
}

/// A dummy long-term key: moto with authentication off accepts any
/// signer.
pub(crate) async fn store_user_key(secrets: &dyn SecretStore, session: &Session) {
    AwsCredentials::store_long_term(
        secrets,
        session.session_id,
        "AKIAIOSFODNN7EXAMPLE",
        &Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    )
    .await
    .expect("store long-term key");
}

/// Adds an IAM user session `name` asking for `duration_seconds`
/// credentials, and stores its (dummy) long-term key.
pub(crate) async fn add_iam_user(
    manager: &SessionManager,
    secrets: &dyn SecretStore,
    name: &str,
    duration_seconds: u32,
) -> Session {
    let user = manager
        .add(
            Session::new(name, SessionType::AwsIamUser)
                .expect("s")
                .with_config(&IamUserConfig::default().with_duration_seconds(duration_seconds))
                .expect("config"),
        )
        .await
        .expect("add");
    store_user_key(secrets, &user).await;
    user
}

/// Adds a chained role session `name` assuming `role` with `parent`'s
/// credentials.
pub(crate) async fn add_chained_role(
    manager: &SessionManager,
    name: &str,
    parent: &Session,
    role: &ChainedRoleConfig,
) -> Session {
    manager
        .add(
            Session::new(name, SessionType::AwsIamRoleChained)
                .expect("s")
                .with_parent(parent.session_id)
                .with_config(role)
                .expect("config"),
        )
        .await
        .expect("add")
}

/// The conformance harness on `provider` itself, then boxed and shared as
/// a `dyn SessionAction`.
pub(crate) async fn conformance_in_every_form<P>(provider: P, fixture: &ActionFixture)
where
    P: SessionAction + Clone + 'static,
{
    action_conformance(&provider, fixture).await;
    let boxed: Box<dyn SessionAction> = Box::new(provider.clone());
    action_conformance(&boxed, fixture).await;
    let shared: Arc<dyn SessionAction> = Arc::new(provider);
    action_conformance(&shared, fixture).await;
}

/// The issued credentials as a fingerprint: key id, token length and expiry.
pub(crate) fn probe() -> CredentialProbe {
    Arc::new(|ctx: ActionContext, session: Session| {
        async move {
            let creds = AwsCredentials::load_issued(ctx.secrets.as_ref(), session.session_id)
                .await
                .ok()??;
            Some(format!(
                "{}/{}/{:?}",
                creds.access_key_id,
                creds.session_token.map(|t| t.expose().len()).unwrap_or(0),
                creds.expiration
            ))
        }
        .boxed()
    })
}

/// An action context with in-memory secrets on a manual clock.
pub(crate) fn context() -> (ActionContext, Arc<ManualClock>) {
    // Moto issues expiries from the real time, so the manual clock starts there.
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    (
        ActionContext::new(clock.clone(), Arc::new(InMemorySecretStore::new())),
        clock,
    )
}

/// `session` moved to pending, as the manager does before a start.
pub(crate) fn pending(mut session: Session) -> Session {
    session
        .transition(SessionStatus::Pending, SystemClock.now())
        .expect("inactive -> pending");
    session
}

/// A SAML response (AWS reference §7.3) granting `role` via the identity
/// provider `idp`, with `SessionDuration` when given. moto checks no
/// signature; it reads the attributes.
pub(crate) fn assertion_xml(role: &str, idp: &str, session_duration: Option<u32>) -> String {
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
<saml:Attribute Name="https://aws.amazon.com/SAML/Attributes/Role"><saml:AttributeValue>{role},{idp}</saml:AttributeValue></saml:Attribute>
<saml:Attribute Name="https://aws.amazon.com/SAML/Attributes/RoleSessionName"><saml:AttributeValue>alice@example.com</saml:AttributeValue></saml:Attribute>
{duration}
</saml:AttributeStatement></saml:Assertion></samlp:Response>"#
    )
}

/// Writes [`assertion_xml`] base64-encoded into `dir`, as an IdP POSTs it.
pub(crate) fn write_assertion(
    dir: &Path,
    role: &str,
    idp: &str,
    session_duration: Option<u32>,
) -> PathBuf {
    use base64::Engine as _;
    let path = dir.join("saml-response.b64");
    let encoded = base64::engine::general_purpose::STANDARD.encode(assertion_xml(
        role,
        idp,
        session_duration,
    ));
    std::fs::write(&path, encoded).expect("write the assertion");
    path
}
