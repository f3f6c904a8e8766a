//! Fixtures shared by the integration tests: an STS client for moto, an
//! action context on moto's clock, the credential probe of the conformance
//! harness, and IAM users with a long-term key. Each test binary uses a part.
#![allow(dead_code)]

use std::sync::Arc;

use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput;
use futures::FutureExt;
use session_aws::{AwsClientConfig, AwsCredentials, ChainedRoleConfig, IamUserConfig};
use session_core::{
    ActionContext, Clock, InMemorySecretStore, ManualClock, Secret, SecretStore, Session,
    SessionAction, SessionManager, SessionStatus, SessionType, SystemClock,
};
use session_testkit::peers::moto::MotoServer;
use session_testkit::suites::{ActionFixture, CredentialProbe, action_conformance};

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

/// A dummy long-term key: moto (without auth mode) accepts any signer.
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
