//! The fake AWS federation endpoint (`fakes::aws_federation`), checked two
//! ways:
//!
//! - with a third-party client: `peers/aws_federation/broker.py`, a custom
//!   identity broker written after the IAM User Guide's Python procedure
//!   (`requests` + `json` + `urllib.parse.quote_plus`), run with the peers'
//!   Python (`SESSION_PEERS_PYTHON`; a failure in CI when missing);
//! - request by request with reqwest, for each refusal the fake must make.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use session_core::{Clock, ManualClock, SystemClock};
use session_testkit::fakes::aws_federation::{
    CredentialKind, FederationCredentials, FederationFake, SIGNIN_TOKEN_LIFETIME, Verifier,
};
use session_testkit::peers::{python_with_module, require_peer};

const DESTINATION: &str = "https://eu-west-1.console.aws.amazon.com/console/home?region=eu-west-1";

fn role_creds() -> FederationCredentials {
    FederationCredentials::new(
        "ASIAROLEEXAMPLE00001",
        "role/secret+key=with/specials",
        "FwoGZXIvYXdzEROLE//token+with/specials==",
    )
}

fn federated_creds() -> FederationCredentials {
    FederationCredentials::new(
        "ASIAFEDERATED0000001",
        "federated-secret",
        "FwoGZXIvYXdzEFEDERATEDtoken",
    )
}

fn broker_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/aws_federation/broker.py")
}

/// What the broker printed: the status of each step and where login
/// redirected.
#[derive(Debug, serde::Deserialize)]
struct BrokerReport {
    token_status: u16,
    token_length: Option<usize>,
    login_status: Option<u16>,
    location: Option<String>,
    second_login_status: Option<u16>,
}

/// Runs the broker against `fake` with `creds` (the token left out when
/// `with_token` is false), asking for `session_duration` if given.
async fn run_broker(
    python: &Path,
    fake: &FederationFake,
    creds: &FederationCredentials,
    with_token: bool,
    session_duration: Option<&str>,
) -> BrokerReport {
    let mut command = tokio::process::Command::new(python);
    command
        .env_clear()
        .arg(broker_script())
        .arg(fake.federation_url())
        .arg(DESTINATION)
        .arg("Example.org")
        .env("BROKER_ACCESS_KEY_ID", &creds.session_id)
        .env("BROKER_SECRET_ACCESS_KEY", &creds.session_key);
    if with_token {
        command.env("BROKER_SESSION_TOKEN", &creds.session_token);
    }
    if let Some(seconds) = session_duration {
        command.arg(seconds);
    }
    let output = command.output().await.expect("run the broker");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the broker failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

fn python() -> Option<PathBuf> {
    require_peer("python with requests", || python_with_module("requests"))
}

/// The guide's procedure with role credentials and a 12-hour
/// `SessionDuration`: a token, then a 302 to the destination; the token
/// works once. The fake read the `Session` JSON that Python's `json.dumps`
/// + `quote_plus` produced (spaces after `:` and `,`, `+` for spaces,
///   `%2F`/`%2B`/`%3D` in the secret).
#[tokio::test]
async fn python_broker_signs_in_with_role_credentials() {
    let Some(python) = python() else {
        return;
    };
    let fake = FederationFake::start().await;
    fake.known_credentials()
        .allow(role_creds(), CredentialKind::AssumedRole);

    let report = run_broker(&python, &fake, &role_creds(), true, Some("43200")).await;
    assert_eq!(report.token_status, 200, "{report:?}");
    assert!(report.token_length.unwrap_or(0) > 100, "{report:?}");
    assert_eq!(report.login_status, Some(302), "{report:?}");
    assert_eq!(report.location.as_deref(), Some(DESTINATION));
    assert_eq!(
        report.second_login_status,
        Some(400),
        "a token signs in once"
    );

    let logins = fake.logins();
    assert_eq!(logins.len(), 1, "{logins:?}");
    assert_eq!(logins[0].destination, DESTINATION);
    assert_eq!(logins[0].issuer.as_deref(), Some("Example.org"));
    assert_eq!(logins[0].kind, CredentialKind::AssumedRole);
    assert_eq!(logins[0].session_duration, Some(43_200));
    assert_eq!(logins[0].access_key_id, role_creds().session_id);
    let requests = fake.requests();
    assert_eq!(
        requests[0].parameters,
        ["Action", "SessionDuration", "Session"]
    );
    assert_eq!(fake.count("getSigninToken"), 1);
    assert_eq!(fake.count("login"), 2);
}

/// Federated-user credentials (`GetFederationToken`): refused with
/// `SessionDuration`, as the guide says; accepted without it, and the
/// console session then has no duration of its own.
#[tokio::test]
async fn python_broker_with_federated_user_credentials() {
    let Some(python) = python() else {
        return;
    };
    let fake = FederationFake::start().await;
    fake.known_credentials()
        .allow(federated_creds(), CredentialKind::FederatedUser);

    let refused = run_broker(&python, &fake, &federated_creds(), true, Some("3600")).await;
    assert_eq!(refused.token_status, 400, "{refused:?}");
    assert!(
        fake.requests()[0]
            .refusal
            .as_deref()
            .is_some_and(|r| r.contains("GetFederationToken")),
        "{:?}",
        fake.requests()
    );

    let report = run_broker(&python, &fake, &federated_creds(), true, None).await;
    assert_eq!(report.token_status, 200, "{report:?}");
    assert_eq!(report.login_status, Some(302), "{report:?}");
    let logins = fake.logins();
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0].kind, CredentialKind::FederatedUser);
    assert_eq!(logins[0].session_duration, None);
}

/// Long-term keys (no `sessionToken`) are refused, whoever they are.
#[tokio::test]
async fn python_broker_without_a_session_token_is_refused() {
    let Some(python) = python() else {
        return;
    };
    let fake = FederationFake::start().await;
    fake.known_credentials()
        .allow(role_creds(), CredentialKind::AssumedRole);
    let report = run_broker(&python, &fake, &role_creds(), false, None).await;
    assert_eq!(report.token_status, 400, "{report:?}");
    assert!(fake.issued_tokens().is_empty());
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn session_json(creds: &FederationCredentials) -> String {
    serde_json::json!({
        "sessionId": creds.session_id,
        "sessionKey": creds.session_key,
        "sessionToken": creds.session_token,
    })
    .to_string()
}

/// A GET of the federation URL with `params`: status and body.
async fn call(fake: &FederationFake, params: &[(&str, &str)]) -> (u16, String) {
    let answer = http()
        .get(fake.federation_url())
        .query(params)
        .send()
        .await
        .expect("request");
    let status = answer.status().as_u16();
    (status, answer.text().await.expect("body"))
}

/// A sign-in token for `creds`, which must be accepted.
async fn token(fake: &FederationFake, creds: &FederationCredentials) -> String {
    let (status, body) = call(
        fake,
        &[
            ("Action", "getSigninToken"),
            ("Session", &session_json(creds)),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    json["SigninToken"]
        .as_str()
        .expect("SigninToken")
        .to_owned()
}

/// Every refusal of `getSigninToken`: a 400 whose reason says what was
/// wrong, and whose body quotes none of the secrets sent.
#[tokio::test]
async fn get_signin_token_refusals() {
    let fake = FederationFake::start().await;
    fake.known_credentials()
        .allow(role_creds(), CredentialKind::AssumedRole);
    fake.known_credentials()
        .allow(federated_creds(), CredentialKind::FederatedUser);
    let user = FederationCredentials::new("ASIAGSTUSER000000001", "gst-secret", "gst-token");
    fake.known_credentials()
        .allow(user.clone(), CredentialKind::IamUser);
    let role = session_json(&role_creds());
    let mut wrong_secret = role_creds();
    wrong_secret.session_key = "not-the-secret".into();
    let wrong_secret = session_json(&wrong_secret);
    let no_token = serde_json::json!({
        "sessionId": role_creds().session_id,
        "sessionKey": role_creds().session_key,
    })
    .to_string();
    let unknown = session_json(&FederationCredentials::new("ASIAUNKNOWN", "x", "y"));
    let federated = session_json(&federated_creds());
    let user = session_json(&user);

    let cases: [(&[(&str, &str)], &str); 14] = [
        (&[("Action", "getSigninToken")], "missing Session"),
        (
            &[("Action", "getSigninToken"), ("Session", "{not json")],
            "not JSON",
        ),
        (
            &[("Action", "getSigninToken"), ("Session", "[1, 2]")],
            "not a JSON object",
        ),
        (
            &[
                ("Action", "getSigninToken"),
                ("Session", r#"{"sessionId": 7}"#),
            ],
            "sessionId must be",
        ),
        (
            &[("Action", "getSigninToken"), ("Session", &no_token)],
            "no sessionToken",
        ),
        (
            &[
                ("Action", "getSigninToken"),
                ("SessionDuration", "899"),
                ("Session", &role),
            ],
            "SessionDuration must be",
        ),
        (
            &[
                ("Action", "getSigninToken"),
                ("SessionDuration", "43201"),
                ("Session", &role),
            ],
            "SessionDuration must be",
        ),
        (
            &[
                ("Action", "getSigninToken"),
                ("SessionDuration", "1h"),
                ("Session", &role),
            ],
            "SessionDuration must be",
        ),
        (
            &[("Action", "getSigninToken"), ("Session", &unknown)],
            "invalid credentials: the access key id is not known",
        ),
        (
            &[("Action", "getSigninToken"), ("Session", &wrong_secret)],
            "invalid credentials: the secret access key does not match",
        ),
        (
            &[
                ("Action", "getSigninToken"),
                ("SessionDuration", "900"),
                ("Session", &federated),
            ],
            "GetFederationToken",
        ),
        (
            &[("Action", "getSigninToken"), ("Session", &user)],
            "cannot sign in",
        ),
        (&[("Action", "getSignInToken")], "unknown Action"),
        (
            &[
                ("Action", "getSigninToken"),
                ("Session", &role),
                ("Session", &role),
            ],
            "more than once",
        ),
    ];
    for (params, reason) in cases {
        let (status, body) = call(&fake, params).await;
        assert_eq!(status, 400, "{params:?}: {body}");
        assert!(
            body.contains(reason),
            "{params:?}: expected {reason:?} in {body}"
        );
        for secret in [&role_creds().session_key, &role_creds().session_token] {
            assert!(!body.contains(secret.as_str()), "{body}");
        }
    }
    assert!(fake.issued_tokens().is_empty(), "nothing was issued");

    // The boundaries themselves are accepted.
    for seconds in ["900", "43200"] {
        let (status, body) = call(
            &fake,
            &[
                ("Action", "getSigninToken"),
                ("SessionDuration", seconds),
                ("Session", &role),
            ],
        )
        .await;
        assert_eq!(status, 200, "{seconds}: {body}");
    }
    // Parameters AWS's own examples add are ignored.
    let (status, _) = call(
        &fake,
        &[
            ("Action", "getSigninToken"),
            ("SessionType", "json"),
            ("Session", &role),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let tokens = fake.issued_tokens();
    assert_eq!(
        tokens
            .iter()
            .map(|t| t.session_duration)
            .collect::<Vec<_>>(),
        [Some(900), Some(43_200), None]
    );
    assert!(
        !format!("{tokens:?}").contains(&tokens[0].token),
        "Debug hides tokens"
    );
}

/// Every refusal of `login`: unknown, reused and expired tokens, and a
/// missing or relative destination.
#[tokio::test]
async fn login_refusals() {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let fake = FederationFake::builder().clock(clock.clone()).start().await;
    fake.known_credentials()
        .allow(role_creds(), CredentialKind::AssumedRole);

    let signin = token(&fake, &role_creds()).await;
    let login = |token: String, destination: Option<&'static str>| {
        let fake = &fake;
        async move {
            let mut params = vec![("Action", "login"), ("Issuer", "tests")];
            if let Some(destination) = destination {
                params.push(("Destination", destination));
            }
            params.push(("SigninToken", token.as_str()));
            call(fake, &params).await
        }
    };
    let (status, body) = login("not-a-token".into(), Some(DESTINATION)).await;
    assert_eq!((status, body.contains("unknown SigninToken")), (400, true));
    let (status, body) = login(signin.clone(), None).await;
    assert_eq!((status, body.contains("missing Destination")), (400, true));
    let (status, body) = login(signin.clone(), Some("/console/home")).await;
    assert_eq!((status, body.contains("absolute")), (400, true));
    assert!(fake.logins().is_empty());

    // Still good at exactly 15 minutes.
    clock.advance(SIGNIN_TOKEN_LIFETIME);
    let (status, _) = login(signin.clone(), Some(DESTINATION)).await;
    assert_eq!(status, 302);
    let (status, body) = login(signin, Some(DESTINATION)).await;
    assert_eq!((status, body.contains("already used")), (400, true));

    let late = token(&fake, &role_creds()).await;
    clock.advance(SIGNIN_TOKEN_LIFETIME + Duration::from_secs(1));
    let (status, body) = login(late, Some(DESTINATION)).await;
    assert_eq!((status, body.contains("expired")), (400, true), "{body}");
    assert_eq!(fake.logins().len(), 1);
}

/// A custom verifier sees exactly the credentials sent and decides; its
/// reason for a refusal is in the answer. The echo mode quotes the request.
#[tokio::test]
async fn custom_verifier_and_echo_mode() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let verifier: Verifier = {
        let seen = seen.clone();
        Arc::new(move |creds: FederationCredentials| {
            seen.lock().unwrap().push(creds.clone());
            Box::pin(async move {
                if creds.session_id.starts_with("ASIAROLE") {
                    Ok(CredentialKind::SsoRole)
                } else {
                    Err("403 InvalidClientTokenId".to_owned())
                }
            })
        })
    };
    let fake = FederationFake::builder()
        .verifier(verifier)
        .echo_request_in_errors(true)
        .start()
        .await;
    token(&fake, &role_creds()).await;
    assert_eq!(seen.lock().unwrap().as_slice(), [role_creds()]);
    assert_eq!(fake.issued_tokens()[0].kind, CredentialKind::SsoRole);

    let other = FederationCredentials::new("ASIAOTHER", "other-secret", "other-token");
    let (status, body) = call(
        &fake,
        &[
            ("Action", "getSigninToken"),
            ("Session", &session_json(&other)),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("403 InvalidClientTokenId"), "{body}");
    assert!(
        body.contains("other-secret"),
        "the echo mode quotes the request: {body}"
    );
}
