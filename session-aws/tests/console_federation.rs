//! `session_aws::console` against the fake federation endpoint
//! (`session_testkit::fakes::aws_federation`), whose check of the
//! credentials is moto's STS: the fake's verifier calls `GetCallerIdentity`
//! signed with the credentials it received, with moto's authentication on,
//! and classifies the ARN (`assumed-role/`, `federated-user/`, `user/`).
//!
//! One moto limit shapes the federated-user test: moto's
//! `GetFederationToken` returns fixed example credentials that it does not
//! register, so `GetCallerIdentity` with them is refused once
//! authentication is on, where real STS would answer the
//! `federated-user/<name>` ARN. The test hands the verifier moto's
//! `GetFederationToken` answer (credentials and ARN), and the verifier
//! accepts exactly those credentials, as that ARN, when moto refuses them.

#![cfg(feature = "console")]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{client, moto_with_authentication, refusal, store_moto_key, tampered};
use session_aws::console::{ConsoleSignIn, CredentialsKind, federated_user_name};
use session_aws::{AwsCredentials, ChainedRoleConfig, ChainedRoleProvider, IamUserProvider};
use session_core::{
    Error, ErrorChain, InMemorySecretStore, InMemoryWorkspace, Secret, Session, SessionManager,
    SessionType,
};
use session_testkit::fakes::aws_federation::{
    CredentialKind, FederationCredentials, FederationFake, Verifier,
};
use session_testkit::peers::moto::{MotoAccessKey, MotoServer};

/// The role the console sessions assume, in moto's default account.
const ROLE: &str = "arn:aws:iam::123456789012:role/Console";

/// What the moto-backed verifier saw: the ARN of every set of credentials
/// it accepted, and the `GetFederationToken` answers it was told about.
#[derive(Clone, Default)]
struct VerifierLog {
    arns: Arc<Mutex<Vec<String>>>,
    federation_tokens: Arc<Mutex<Vec<(FederationCredentials, String)>>>,
}

impl VerifierLog {
    fn arns(&self) -> Vec<String> {
        self.arns.lock().unwrap().clone()
    }

    /// moto issued `creds` to the federated user `arn` (see the module
    /// docs).
    fn federation_token_issued(&self, creds: &AwsCredentials, arn: &str) {
        self.federation_tokens
            .lock()
            .unwrap()
            .push((to_federation(creds), arn.to_owned()));
    }
}

fn to_federation(creds: &AwsCredentials) -> FederationCredentials {
    FederationCredentials::new(
        creds.access_key_id.clone(),
        creds.secret_access_key.expose(),
        creds
            .session_token
            .as_ref()
            .map_or(String::new(), |t| t.expose().to_owned()),
    )
}

/// The fake's verifier: moto's `GetCallerIdentity` signed with the
/// credentials received.
fn moto_verifier(moto: &MotoServer, log: VerifierLog) -> Verifier {
    let sts = client(moto);
    Arc::new(move |creds: FederationCredentials| {
        let sts = sts.clone();
        let log = log.clone();
        Box::pin(async move {
            let aws = AwsCredentials {
                access_key_id: creds.session_id.clone(),
                secret_access_key: Secret::new(creds.session_key.clone()),
                session_token: Some(Secret::new(creds.session_token.clone())),
                expiration: None,
            };
            let arn = match sts
                .sts("us-east-1", Some(&aws))
                .get_caller_identity()
                .send()
                .await
            {
                Ok(identity) => identity.arn().unwrap_or_default().to_owned(),
                Err(e) => {
                    let refused = format!("GetCallerIdentity refused: {}", refusal(&e));
                    let tokens = log.federation_tokens.lock().unwrap();
                    tokens
                        .iter()
                        .find(|(issued, _)| *issued == creds)
                        .map(|(_, arn)| arn.clone())
                        .ok_or(refused)?
                }
            };
            let kind = CredentialKind::from_arn(&arn).ok_or(format!("unexpected ARN {arn}"))?;
            log.arns.lock().unwrap().push(arn);
            Ok(kind)
        })
    })
}

/// moto with authentication on, the IAM user `dev` (its key) and the role
/// [`ROLE`]; `None` when moto is missing outside CI.
fn moto() -> Option<(MotoServer, MotoAccessKey)> {
    moto_with_authentication(|moto, botocore| {
        moto.create_role(botocore, "Console", None);
    })
}

/// A chained role session `console` in `region`, under an IAM user session
/// holding `dev`'s key, started through a manager; its credentials.
///
/// moto does not register the `GetSessionToken` credentials the parent gets,
/// so with authentication on the child's `AssumeRole` would be refused
/// (moto's limit, see `sts_moto.rs`): the chain starts with authentication
/// off. moto registers the role credentials, which then pass
/// `GetCallerIdentity` with authentication back on.
async fn start_role_session(
    moto: &MotoServer,
    key: &MotoAccessKey,
    region: &str,
) -> (Session, AwsCredentials) {
    let secrets = Arc::new(InMemorySecretStore::new());
    let manager = SessionManager::builder()
        .repository(Arc::new(InMemoryWorkspace::new()))
        .secrets(secrets.clone())
        .provider(Arc::new(IamUserProvider::without_sink(client(moto))))
        .provider(Arc::new(ChainedRoleProvider::without_sink(client(moto))))
        .build()
        .expect("manager");
    let user = manager
        .add(Session::new("dev-user", SessionType::AwsIamUser).expect("session"))
        .await
        .expect("add");
    store_moto_key(secrets.as_ref(), &user, key).await;
    let mut role = ChainedRoleConfig::new(ROLE);
    role.role_session_name = Some("alice".into());
    manager
        .add(
            Session::new("console", SessionType::AwsIamRoleChained)
                .expect("session")
                .with_parent(user.session_id)
                .with_region(region)
                .with_config(&role)
                .expect("config"),
        )
        .await
        .expect("add");

    moto.authentication_off();
    let started = manager.start("console").await;
    moto.authentication_after(0);
    let started = started.expect("start the chain");
    let creds = AwsCredentials::load_issued(secrets.as_ref(), started.session_id)
        .await
        .expect("load")
        .expect("issued credentials");
    (started, creds)
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Opens `url` as a browser would, without following the redirect: the
/// status and `Location`.
async fn open(url: &Secret) -> (u16, Option<String>) {
    let answer = http().get(url.expose()).send().await.expect("GET");
    let location = answer
        .headers()
        .get("location")
        .map(|v| v.to_str().expect("ASCII").to_owned());
    (answer.status().as_u16(), location)
}

/// (a) A chained role session's credentials: the URL signs in once, with a
/// 302 to the console home of the session's region; `SessionDuration` was
/// sent and the console session got it; the fake's verifier saw the
/// assumed-role ARN from moto.
#[tokio::test]
async fn role_credentials_sign_in_to_the_sessions_region() {
    let Some((moto, key)) = moto() else {
        return;
    };
    let (session, creds) = start_role_session(&moto, &key, "eu-west-1").await;
    let log = VerifierLog::default();
    let fake = FederationFake::builder()
        .verifier(moto_verifier(&moto, log.clone()))
        .start()
        .await;
    let console = ConsoleSignIn::builder()
        .region(session.region.as_deref().expect("region"))
        .federation_endpoint(fake.federation_url())
        .issuer("console-test")
        .session_duration(Duration::from_secs(7200))
        .build()
        .expect("console");
    let kind = CredentialsKind::of_session_type(session.session_type).expect("a role");

    let url = console
        .sign_in_url(&creds, kind)
        .await
        .expect("sign-in URL");
    assert!(
        url.expose()
            .starts_with(&format!("{}?Action=login&", fake.federation_url())),
        "a login URL on the endpoint"
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(
        requests[0].parameters,
        ["Action", "SessionDuration", "Session"]
    );
    assert_eq!(requests[0].session_duration.as_deref(), Some("7200"));
    assert_eq!(
        log.arns(),
        ["arn:aws:sts::123456789012:assumed-role/Console/alice"]
    );

    let (status, location) = open(&url).await;
    assert_eq!(status, 302);
    assert_eq!(
        location.as_deref(),
        Some("https://eu-west-1.console.aws.amazon.com/console/home?region=eu-west-1")
    );
    let logins = fake.logins();
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0].kind, CredentialKind::AssumedRole);
    assert_eq!(logins[0].session_duration, Some(7200));
    assert_eq!(logins[0].issuer.as_deref(), Some("console-test"));
    assert_eq!(logins[0].access_key_id, creds.access_key_id);

    let (status, _) = open(&url).await;
    assert_eq!(status, 400, "the URL works once");
}

/// (b) An IAM user's long-term key: `GetFederationToken` through moto,
/// signed with the key (authentication on), then a URL whose request has
/// no `SessionDuration`; the verifier saw the federated-user ARN. Sent as
/// role credentials (with `SessionDuration`) they are refused, as AWS
/// documents. A tampered key gets no federation token.
#[tokio::test]
async fn iam_user_key_signs_in_as_a_federated_user() {
    let Some((moto, key)) = moto() else {
        return;
    };
    let long_term = AwsCredentials {
        access_key_id: key.access_key_id.clone(),
        secret_access_key: key.secret_access_key.clone(),
        session_token: None,
        expiration: None,
    };
    let log = VerifierLog::default();
    let fake = FederationFake::builder()
        .verifier(moto_verifier(&moto, log.clone()))
        .start()
        .await;
    let console = ConsoleSignIn::builder()
        .region("us-east-1")
        .federation_endpoint(fake.federation_url())
        .build()
        .expect("console");

    let name = federated_user_name("dev user");
    let token = console
        .federation_token(&client(&moto), &long_term, &name, 1800)
        .await
        .expect("GetFederationToken signed with the IAM user's key");
    let arn = token.federated_user_arn.clone().expect("FederatedUser.Arn");
    assert_eq!(arn, "arn:aws:sts::123456789012:federated-user/dev-user");
    assert!(token.credentials.session_token.is_some());
    log.federation_token_issued(&token.credentials, &arn);

    let url = console
        .sign_in_url(&token.credentials, CredentialsKind::FederatedUser)
        .await
        .expect("sign-in URL");
    let requests = fake.requests();
    assert_eq!(requests[0].parameters, ["Action", "Session"]);
    assert_eq!(requests[0].session_duration, None);
    assert_eq!(log.arns(), std::slice::from_ref(&arn));
    let (status, location) = open(&url).await;
    assert_eq!(status, 302);
    assert_eq!(
        location.as_deref(),
        Some("https://us-east-1.console.aws.amazon.com/console/home?region=us-east-1")
    );
    assert_eq!(fake.logins()[0].kind, CredentialKind::FederatedUser);
    assert_eq!(fake.logins()[0].session_duration, None);

    let err = console
        .sign_in_url(&token.credentials, CredentialsKind::Role)
        .await
        .expect_err("SessionDuration with GetFederationToken credentials");
    assert_eq!(err.category(), "unauthenticated", "{err:?}");
    assert!(err.to_string().contains("HTTP 400"), "{err}");
    assert!(
        fake.requests()
            .last()
            .and_then(|r| r.refusal.as_deref())
            .is_some_and(|r| r.contains("GetFederationToken")),
        "{:?}",
        fake.requests()
    );

    let mut wrong = long_term.clone();
    wrong.secret_access_key = Secret::new(tampered(key.secret_access_key.expose()));
    let err = console
        .federation_token(&client(&moto), &wrong, &name, 1800)
        .await
        .expect_err("moto refuses a tampered key");
    let text = format!("{} {err:?}", ErrorChain(&err));
    assert!(!text.contains(wrong.secret_access_key.expose()), "{text}");
}

/// (c) A long-term key given directly is refused before any request, for
/// either kind, with an error that says what to do.
#[tokio::test]
async fn long_term_keys_are_refused_before_any_request() {
    let fake = FederationFake::start().await;
    let console = ConsoleSignIn::builder()
        .federation_endpoint(fake.federation_url())
        .build()
        .expect("console");
    let long_term = AwsCredentials {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        session_token: None,
        expiration: None,
    };
    for kind in [CredentialsKind::Role, CredentialsKind::FederatedUser] {
        match console.sign_in_url(&long_term, kind).await {
            Err(Error::InvalidInput { field, reason }) => {
                assert_eq!(field, "credentials");
                assert!(reason.contains("GetFederationToken"), "{reason}");
                assert!(!reason.contains("wJalrXUtnFEMI"), "{reason}");
            }
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
}

/// (d) The endpoint's refusal (here: moto says the signature does not
/// match a tampered secret) is a clear error with no secret in it, even
/// though the fake's error body quotes the whole request; nor are secrets
/// logged. An unreachable endpoint is `Unavailable`, also without them.
#[tokio::test]
async fn refusals_are_clear_and_hold_no_secret() {
    let Some((moto, key)) = moto() else {
        return;
    };
    let logs = session_testkit::capture_logs();
    let (_, creds) = start_role_session(&moto, &key, "us-east-1").await;
    let mut wrong = creds.clone();
    wrong.secret_access_key = Secret::new(tampered(creds.secret_access_key.expose()));
    let log = VerifierLog::default();
    let fake = FederationFake::builder()
        .verifier(moto_verifier(&moto, log.clone()))
        .echo_request_in_errors(true)
        .start()
        .await;
    let console = ConsoleSignIn::builder()
        .federation_endpoint(fake.federation_url())
        .build()
        .expect("console");
    let secrets = [
        wrong.secret_access_key.expose().to_owned(),
        creds.secret_access_key.expose().to_owned(),
        creds
            .session_token
            .as_ref()
            .expect("token")
            .expose()
            .to_owned(),
    ];
    let no_secret = |text: &str| {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "a secret in: {text}");
        }
    };

    let err = console
        .sign_in_url(&wrong, CredentialsKind::Role)
        .await
        .expect_err("a tampered secret is refused");
    assert_eq!(err.category(), "unauthenticated", "{err:?}");
    let text = ErrorChain(&err).to_string();
    assert!(
        text.contains("getSigninToken was refused (HTTP 400)"),
        "{text}"
    );
    assert!(
        text.contains(&fake.federation_url()),
        "names the endpoint: {text}"
    );
    no_secret(&text);
    no_secret(&format!("{err:?}"));
    let refused = fake.requests()[0].refusal.clone().unwrap_or_default();
    assert!(
        refused.contains("SignatureDoesNotMatch"),
        "moto refused the signature: {refused}"
    );
    assert!(log.arns().is_empty());

    // The right credentials work; the URL itself is never logged.
    let url = console
        .sign_in_url(&creds, CredentialsKind::Role)
        .await
        .expect("sign-in URL");
    let signin_token = fake.issued_tokens()[0].token.clone();
    assert!(url.expose().contains(&signin_token));
    assert_eq!(format!("{url:?}"), "Secret(<redacted>)");

    let dead = ConsoleSignIn::builder()
        .federation_endpoint("http://127.0.0.1:9/federation")
        .build()
        .expect("console");
    let err = dead
        .sign_in_url(&creds, CredentialsKind::Role)
        .await
        .expect_err("nothing listens");
    assert_eq!(err.category(), "unavailable", "{err:?}");
    assert!(err.is_retryable());
    no_secret(&ErrorChain(&err).to_string());
    no_secret(&format!("{err:?}"));

    let logged = logs.text();
    assert!(
        logged.contains("requesting a console sign-in token"),
        "the capture works: {logged}"
    );
    no_secret(&logged);
    assert!(
        !logged.contains(&signin_token),
        "the sign-in token was logged"
    );
}
