//! `sessionctl aws console` against session-testkit's fake federation
//! endpoint (written from AWS's documentation), whose check of the
//! credentials is moto: a chained role signs in with its own credentials
//! and the asked console session length; an IAM user through a federation
//! token, without one; the browser gets the URL, the terminal does not.

#![cfg(feature = "aws")]

mod common;

use std::process::Command;
use std::sync::Arc;

use common::*;
use futures::FutureExt;
use session_aws::AwsClientConfig;
use session_testkit::fakes::aws_federation::{
    CredentialKind, FederationCredentials, FederationFake, KnownCredentials, Verifier,
};
use session_testkit::peers::moto::MotoServer;

/// Credentials moto's `GetFederationToken` answers (moto does not
/// register them, so `GetCallerIdentity` cannot name them) are looked up
/// in `known`; any others are classified by moto's `GetCallerIdentity`.
fn verifier(moto_url: String, known: KnownCredentials) -> Verifier {
    Arc::new(move |creds: FederationCredentials| {
        let known = known.clone();
        let moto_url = moto_url.clone();
        async move {
            if let Ok(kind) = known.check(&creds) {
                return Ok(kind);
            }
            let signer = session_aws::AwsCredentials {
                access_key_id: creds.session_id.clone(),
                secret_access_key: session_core::Secret::new(creds.session_key.clone()),
                session_token: Some(session_core::Secret::new(creds.session_token.clone())),
                expiration: None,
            };
            let arn = AwsClientConfig::builder()
                .endpoint_url(moto_url)
                .max_attempts(1)
                .build()
                .map_err(|e| e.to_string())?
                .sts("us-east-1", Some(&signer))
                .get_caller_identity()
                .send()
                .await
                .map_err(|e| format!("moto refused the credentials: {e}"))?
                .arn()
                .unwrap_or_default()
                .to_owned();
            CredentialKind::from_arn(&arn).ok_or_else(|| format!("unknown identity {arn}"))
        }
        .boxed()
    })
}

fn console(fx: &Fixture, moto: &MotoServer, fake: &FederationFake, args: &[&str]) -> Command {
    let mut command = fx.command(&["--aws-sink", "none", "aws", "console"]);
    command
        .args(args)
        .args(["--federation-endpoint", &fake.federation_url()])
        .env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
        .env("AWS_ENDPOINT_URL", moto.endpoint_url())
        .env_remove("BROWSER");
    command
}

async fn run(command: Command) -> Run {
    let mut command = command;
    tokio::task::spawn_blocking(move || Run::from(command.output().expect("run")))
        .await
        .expect("join")
}

/// Follows the sign-in URL as a browser would (one redirect): the fake's
/// `Location`.
async fn open(url: &str) -> String {
    let answer = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .expect("GET the sign-in URL");
    assert_eq!(answer.status().as_u16(), 302, "{answer:?}");
    answer.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_and_an_iam_user_sign_in_to_the_console() {
    let Some(moto) = tokio::task::spawn_blocking(MotoServer::start)
        .await
        .unwrap()
    else {
        return;
    };
    let known = KnownCredentials::new();
    let fake = FederationFake::builder()
        .verifier(verifier(moto.endpoint_url(), known.clone()))
        .start()
        .await;
    let fx = Fixture::new();
    add_user_and_chained_role(&fx, &["--region", "eu-west-1"]);

    // A chained role, its console session lasting 30 minutes.
    let out = run(console(
        &fx,
        &moto,
        &fake,
        &["admin", "--print", "--duration", "1800"],
    ))
    .await;
    let url = out.ok().trim().to_owned();
    assert!(url.starts_with(&fake.federation_url()), "{url}");
    assert!(
        url.contains("Action=login") && url.contains("SigninToken="),
        "{url}"
    );
    assert_eq!(
        open(&url).await,
        "https://eu-west-1.console.aws.amazon.com/console/home?region=eu-west-1"
    );
    let login = fake.logins().pop().expect("a login");
    assert_eq!(login.kind, CredentialKind::AssumedRole);
    assert_eq!(login.session_duration, Some(1800));
    assert_eq!(login.issuer.as_deref(), Some("sessionctl"));

    // The IAM user: GetFederationToken (moto answers fixed credentials,
    // which the verifier is told about), then no SessionDuration.
    let fixed = AwsClientConfig::builder()
        .endpoint_url(moto.endpoint_url())
        .build()
        .unwrap()
        .sts(
            "us-east-1",
            Some(&session_aws::AwsCredentials {
                access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
                secret_access_key: session_core::Secret::new("x".to_owned()),
                session_token: None,
                expiration: None,
            }),
        )
        .get_federation_token()
        .name("probe")
        .send()
        .await
        .expect("moto's GetFederationToken");
    let c = fixed.credentials().expect("credentials");
    known.allow(
        FederationCredentials::new(c.access_key_id(), c.secret_access_key(), c.session_token()),
        CredentialKind::FederatedUser,
    );
    let out = run(console(&fx, &moto, &fake, &["dev", "--print"])).await;
    let url = out.ok().trim().to_owned();
    open(&url).await;
    let login = fake.logins().pop().expect("a login");
    assert_eq!(login.kind, CredentialKind::FederatedUser);
    assert_eq!(
        login.session_duration, None,
        "no SessionDuration for a federated user"
    );
    let asked = fake
        .requests()
        .into_iter()
        .rfind(|r| r.action.as_deref() == Some("getSigninToken"))
        .expect("getSigninToken");
    assert!(
        !asked.parameters.iter().any(|p| p == "SessionDuration"),
        "{asked:?}"
    );

    // Without --print: $BROWSER gets the URL; the terminal only a line.
    let seen = fx.dir.path().join("browser-saw");
    let browser = fx.dir.path().join("browser.sh");
    std::fs::write(
        &browser,
        format!("#!/bin/sh\nprintf %s \"$1\" > '{}'\n", seen.display()),
    )
    .unwrap();
    std::fs::set_permissions(
        &browser,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let mut opened = console(&fx, &moto, &fake, &["admin"]);
    opened.env("BROWSER", &browser);
    let out = run(opened).await;
    let said = out.ok();
    assert!(
        said.starts_with("opened the AWS console for session 'admin' (")
            && said.ends_with(") in the browser\n"),
        "{said}"
    );
    let url = std::fs::read_to_string(&seen).expect("the browser ran");
    assert!(!out.stdout.contains(&url) && !out.stderr.contains(&url));
    open(&url).await;
    assert_eq!(fake.logins().len(), 3);

    // A refused sign-in: one line, no secret.
    let refusing = FederationFake::start().await;
    let out = run(console(&fx, &moto, &refusing, &["admin", "--print"])).await;
    let line = out.one_line_error().to_owned();
    assert!(line.contains("admin"), "{line}");
    assert!(
        !line.contains("Session=") && !line.contains("sessionKey"),
        "{line}"
    );
}
