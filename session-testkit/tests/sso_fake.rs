//! Drives `session_testkit::fakes::SsoFake` with the official AWS SDK clients
//! (`aws-sdk-ssooidc`, `aws-sdk-sso`) to prove the fake speaks the real
//! SSO-OIDC and SSO portal protocols. `sso_fake_botocore.rs` checks every
//! operation and error against botocore and its service models.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sso::config::retry::RetryConfig;
use aws_sdk_sso::error::ProvideErrorMetadata;
use aws_sdk_sso::operation::get_role_credentials::GetRoleCredentialsError;
use aws_sdk_sso::operation::list_accounts::ListAccountsError;
use aws_sdk_sso::operation::logout::LogoutError;
use aws_sdk_ssooidc::error::SdkError;
use aws_sdk_ssooidc::operation::create_token::{CreateTokenError, CreateTokenOutput};
use aws_sdk_ssooidc::operation::register_client::{RegisterClientError, RegisterClientOutput};
use aws_sdk_ssooidc::operation::start_device_authorization::{
    StartDeviceAuthorizationError, StartDeviceAuthorizationOutput,
};
use session_core::ManualClock;
use session_testkit::fakes::SsoFake;
use session_testkit::fakes::sso::{ACCOUNT_ACCESS_SCOPE, DEVICE_CODE_GRANT, REFRESH_TOKEN_GRANT};
use time::macros::datetime;

const START_URL: &str = "https://d-123.awsapps.com/start";
const T0: time::OffsetDateTime = datetime!(2030-01-01 0:00 UTC);

fn oidc_client(fake: &SsoFake) -> aws_sdk_ssooidc::Client {
    let config = aws_sdk_ssooidc::Config::builder()
        .behavior_version(aws_sdk_ssooidc::config::BehaviorVersion::latest())
        .region(aws_sdk_ssooidc::config::Region::new("us-east-1"))
        .endpoint_url(fake.oidc_endpoint())
        .retry_config(aws_sdk_ssooidc::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_ssooidc::Client::from_conf(config)
}

fn portal_client_with(fake: &SsoFake, retry: RetryConfig) -> aws_sdk_sso::Client {
    let config = aws_sdk_sso::Config::builder()
        .behavior_version(aws_sdk_sso::config::BehaviorVersion::latest())
        .region(aws_sdk_sso::config::Region::new("us-east-1"))
        .endpoint_url(fake.portal_endpoint())
        .retry_config(retry)
        .build();
    aws_sdk_sso::Client::from_conf(config)
}

fn portal_client(fake: &SsoFake) -> aws_sdk_sso::Client {
    portal_client_with(fake, RetryConfig::disabled())
}

/// A fake on a manual clock at [`T0`].
async fn manual_fake() -> (SsoFake, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(T0));
    let fake = SsoFake::start_with_clock(clock.clone()).await;
    (fake, clock)
}

/// A public client registration named `name`, the SDK's answer unchecked.
async fn try_register(
    oidc: &aws_sdk_ssooidc::Client,
    name: &str,
    scopes: &[&str],
) -> Result<RegisterClientOutput, SdkError<RegisterClientError>> {
    let mut request = oidc
        .register_client()
        .client_name(name)
        .client_type("public");
    for scope in scopes {
        request = request.scopes(*scope);
    }
    request.send().await
}

async fn register(oidc: &aws_sdk_ssooidc::Client, scopes: &[&str]) -> RegisterClientOutput {
    try_register(oidc, "session-sdk-test", scopes)
        .await
        .expect("RegisterClient")
}

/// StartDeviceAuthorization for `reg`'s client with `client_secret`, the
/// SDK's answer unchecked.
async fn try_start(
    oidc: &aws_sdk_ssooidc::Client,
    reg: &RegisterClientOutput,
    client_secret: &str,
) -> Result<StartDeviceAuthorizationOutput, SdkError<StartDeviceAuthorizationError>> {
    oidc.start_device_authorization()
        .client_id(reg.client_id().unwrap())
        .client_secret(client_secret)
        .start_url(START_URL)
        .send()
        .await
}

async fn start(
    oidc: &aws_sdk_ssooidc::Client,
    reg: &RegisterClientOutput,
) -> StartDeviceAuthorizationOutput {
    try_start(oidc, reg, reg.client_secret().unwrap())
        .await
        .expect("StartDeviceAuthorization")
}

async fn poll(
    oidc: &aws_sdk_ssooidc::Client,
    reg: &RegisterClientOutput,
    auth: &StartDeviceAuthorizationOutput,
) -> Result<CreateTokenOutput, CreateTokenError> {
    oidc.create_token()
        .client_id(reg.client_id().unwrap())
        .client_secret(reg.client_secret().unwrap())
        .grant_type(DEVICE_CODE_GRANT)
        .device_code(auth.device_code().unwrap())
        .send()
        .await
        .map_err(|e| e.into_service_error())
}

async fn refresh(
    oidc: &aws_sdk_ssooidc::Client,
    reg: &RegisterClientOutput,
    refresh_token: &str,
) -> Result<CreateTokenOutput, CreateTokenError> {
    oidc.create_token()
        .client_id(reg.client_id().unwrap())
        .client_secret(reg.client_secret().unwrap())
        .grant_type(REFRESH_TOKEN_GRANT)
        .refresh_token(refresh_token)
        .send()
        .await
        .map_err(|e| e.into_service_error())
}

/// A poll that must fail; its error for the caller to check.
async fn poll_err(
    oidc: &aws_sdk_ssooidc::Client,
    reg: &RegisterClientOutput,
    auth: &StartDeviceAuthorizationOutput,
) -> CreateTokenError {
    poll(oidc, reg, auth).await.unwrap_err()
}

/// A refresh that must fail; its error for the caller to check.
async fn refresh_err(
    oidc: &aws_sdk_ssooidc::Client,
    reg: &RegisterClientOutput,
    refresh_token: &str,
) -> CreateTokenError {
    refresh(oidc, reg, refresh_token).await.unwrap_err()
}

/// Registers (with `scopes`), runs the device flow to completion with the
/// SDK and returns the registration and the token.
async fn login(
    fake: &SsoFake,
    oidc: &aws_sdk_ssooidc::Client,
    scopes: &[&str],
) -> (RegisterClientOutput, CreateTokenOutput) {
    fake.set_enforce_interval(false);
    let reg = register(oidc, scopes).await;
    let auth = start(oidc, &reg).await;
    assert!(fake.approve(auth.user_code().unwrap()));
    let token = poll(oidc, &reg, &auth).await.expect("approved device code");
    fake.set_enforce_interval(true);
    (reg, token)
}

#[tokio::test]
async fn device_flow_pending_then_slow_down_then_token() {
    let (fake, clock) = manual_fake().await;
    let oidc = oidc_client(&fake);

    let reg = register(&oidc, &[ACCOUNT_ACCESS_SCOPE]).await;
    assert!(reg.client_id().is_some_and(|id| !id.is_empty()));
    assert!(reg.client_secret().is_some_and(|s| !s.is_empty()));
    assert_eq!(reg.client_id_issued_at(), T0.unix_timestamp());
    assert_eq!(
        reg.client_secret_expires_at(),
        (T0 + Duration::from_secs(90 * 24 * 3600)).unix_timestamp()
    );

    let auth = start(&oidc, &reg).await;
    let user_code = auth.user_code().unwrap().to_owned();
    assert_eq!(auth.expires_in(), 600);
    assert_eq!(auth.interval(), 1);
    assert!(
        auth.verification_uri()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    assert!(
        auth.verification_uri_complete()
            .unwrap()
            .ends_with(&format!("user_code={user_code}"))
    );
    assert_eq!(fake.pending_user_codes(), vec![user_code.clone()]);

    // First poll: the modeled AuthorizationPendingException, with its OAuth code.
    match poll(&oidc, &reg, &auth).await {
        Err(CreateTokenError::AuthorizationPendingException(e)) => {
            assert_eq!(e.error(), Some("authorization_pending"));
        }
        other => panic!("expected AuthorizationPendingException, got {other:?}"),
    }
    // Polling again at once (the clock did not move) is too fast.
    match poll(&oidc, &reg, &auth).await {
        Err(CreateTokenError::SlowDownException(e)) => assert_eq!(e.error(), Some("slow_down")),
        other => panic!("expected SlowDownException, got {other:?}"),
    }
    clock.advance(Duration::from_secs(1));
    let err = poll_err(&oidc, &reg, &auth).await;
    assert!(err.is_authorization_pending_exception(), "{err:?}");

    assert!(fake.approve(&user_code));
    assert!(!fake.approve(&user_code), "a decided code is not pending");
    clock.advance(Duration::from_secs(1));
    let token = poll(&oidc, &reg, &auth)
        .await
        .expect("token after approval");
    assert!(token.access_token().is_some_and(|t| !t.is_empty()));
    assert_eq!(token.token_type(), Some("Bearer"));
    assert_eq!(token.expires_in(), 3600);
    assert!(token.refresh_token().is_some(), "registered with scopes");
    assert!(fake.access_token_valid(token.access_token().unwrap()));

    // A device code is redeemed once.
    clock.advance(Duration::from_secs(1));
    let err = poll_err(&oidc, &reg, &auth).await;
    assert!(err.is_invalid_grant_exception(), "{err:?}");

    assert_eq!(fake.registrations(), 1);
    assert_eq!(fake.device_authorizations(), 1);
    assert_eq!(fake.calls("RegisterClient"), 1);
    assert_eq!(fake.calls("StartDeviceAuthorization"), 1);
    assert_eq!(fake.calls("CreateToken"), 5);
}

#[tokio::test]
async fn forced_slow_downs_and_switchable_interval() {
    let (fake, _clock) = manual_fake().await;
    let oidc = oidc_client(&fake);
    let reg = register(&oidc, &[]).await;
    let auth = start(&oidc, &reg).await;

    // Interval enforcement off: back-to-back polls are merely pending.
    fake.set_enforce_interval(false);
    for _ in 0..3 {
        let err = poll_err(&oidc, &reg, &auth).await;
        assert!(err.is_authorization_pending_exception(), "{err:?}");
    }
    // Forced slow-downs still happen, exactly as many as asked for.
    fake.slow_down_next(2);
    for _ in 0..2 {
        let err = poll_err(&oidc, &reg, &auth).await;
        assert!(err.is_slow_down_exception(), "{err:?}");
    }
    let err = poll_err(&oidc, &reg, &auth).await;
    assert!(err.is_authorization_pending_exception(), "{err:?}");
    // Back on: the next immediate poll is too fast.
    fake.set_enforce_interval(true);
    let err = poll_err(&oidc, &reg, &auth).await;
    assert!(err.is_slow_down_exception(), "{err:?}");
}

#[tokio::test]
async fn refresh_rotates_and_the_old_refresh_token_is_rejected() {
    let (fake, clock) = manual_fake().await;
    let oidc = oidc_client(&fake);
    let (reg, first) = login(&fake, &oidc, &[ACCOUNT_ACCESS_SCOPE]).await;
    let first_refresh = first.refresh_token().unwrap().to_owned();

    clock.advance(Duration::from_secs(60));
    let second = refresh(&oidc, &reg, &first_refresh).await.expect("refresh");
    let second_refresh = second.refresh_token().expect("rotated refresh token");
    assert_ne!(second_refresh, first_refresh, "the refresh token rotates");
    assert_ne!(second.access_token(), first.access_token());
    assert!(fake.access_token_valid(second.access_token().unwrap()));

    // The old refresh token was used up.
    match refresh(&oidc, &reg, &first_refresh).await {
        Err(CreateTokenError::InvalidGrantException(e)) => {
            assert_eq!(e.error(), Some("invalid_grant"));
        }
        other => panic!("expected InvalidGrantException, got {other:?}"),
    }
    // The new one works (once more), and an unknown one does not.
    let third = refresh(&oidc, &reg, second_refresh).await.expect("refresh");
    assert!(third.refresh_token().is_some());
    let err = refresh_err(&oidc, &reg, "not-a-refresh-token").await;
    assert!(err.is_invalid_grant_exception(), "{err:?}");

    // Refresh tokens expire.
    fake.set_refresh_token_lifetime(Duration::from_secs(3600));
    let fourth = refresh(&oidc, &reg, third.refresh_token().unwrap())
        .await
        .expect("refresh");
    clock.advance(Duration::from_secs(3600));
    let err = refresh_err(&oidc, &reg, fourth.refresh_token().unwrap()).await;
    assert!(err.is_invalid_grant_exception(), "{err:?}");
}

#[tokio::test]
async fn no_refresh_token_without_the_account_access_scope() {
    let (fake, _clock) = manual_fake().await;
    let oidc = oidc_client(&fake);

    let (reg, token) = login(&fake, &oidc, &[]).await;
    assert!(token.access_token().is_some());
    assert_eq!(token.refresh_token(), None, "no scopes, no refresh token");
    let err = refresh_err(&oidc, &reg, "anything").await;
    assert!(err.is_invalid_grant_exception(), "{err:?}");

    // Other scopes do not bring a refresh token either.
    let (_, token) = login(&fake, &oidc, &["codewhisperer:completions"]).await;
    assert_eq!(token.refresh_token(), None);

    // A refresh token of one client does not work for another.
    let (_, with_scope) = login(&fake, &oidc, &[ACCOUNT_ACCESS_SCOPE]).await;
    let err = refresh_err(&oidc, &reg, with_scope.refresh_token().unwrap()).await;
    assert!(err.is_invalid_grant_exception(), "{err:?}");
}

#[tokio::test]
async fn expired_device_code_is_expired_token_and_denial_is_access_denied() {
    let (fake, clock) = manual_fake().await;
    let oidc = oidc_client(&fake);
    let reg = register(&oidc, &[ACCOUNT_ACCESS_SCOPE]).await;

    fake.set_device_code_lifetime(Duration::from_secs(120));
    let auth = start(&oidc, &reg).await;
    assert_eq!(auth.expires_in(), 120);
    clock.advance(Duration::from_secs(119));
    let err = poll_err(&oidc, &reg, &auth).await;
    assert!(err.is_authorization_pending_exception(), "{err:?}");
    clock.advance(Duration::from_secs(1));
    match poll(&oidc, &reg, &auth).await {
        Err(CreateTokenError::ExpiredTokenException(e)) => {
            assert_eq!(e.error(), Some("expired_token"));
        }
        other => panic!("expected ExpiredTokenException, got {other:?}"),
    }
    assert!(
        !fake.approve(auth.user_code().unwrap()),
        "too late to approve"
    );

    let auth = start(&oidc, &reg).await;
    assert!(fake.deny(auth.user_code().unwrap()));
    match poll(&oidc, &reg, &auth).await {
        Err(CreateTokenError::AccessDeniedException(e)) => {
            assert_eq!(e.error(), Some("access_denied"));
        }
        other => panic!("expected AccessDeniedException, got {other:?}"),
    }

    let auth = start(&oidc, &reg).await;
    fake.expire_device_codes();
    let err = poll_err(&oidc, &reg, &auth).await;
    assert!(err.is_expired_token_exception(), "{err:?}");
}

#[tokio::test]
async fn unknown_or_expired_clients_are_invalid_client() {
    let (fake, clock) = manual_fake().await;
    let oidc = oidc_client(&fake);
    let reg = register(&oidc, &[ACCOUNT_ACCESS_SCOPE]).await;

    let err = oidc
        .create_token()
        .client_id("no-such-client")
        .client_secret("nope")
        .grant_type(DEVICE_CODE_GRANT)
        .device_code("whatever")
        .send()
        .await
        .unwrap_err();
    let status = err.raw_response().map(|r| r.status().as_u16());
    match err.into_service_error() {
        CreateTokenError::InvalidClientException(e) => {
            assert_eq!(e.error(), Some("invalid_client"));
        }
        other => panic!("expected InvalidClientException, got {other:?}"),
    }
    assert_eq!(
        status,
        Some(401),
        "the model gives InvalidClientException 401"
    );

    let err = try_start(&oidc, &reg, "wrong-secret").await.unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        StartDeviceAuthorizationError::InvalidClientException(_)
    ));

    // The registration expires after its configured lifetime.
    fake.set_client_secret_lifetime(Duration::from_secs(3600));
    let short = register(&oidc, &[]).await;
    assert_eq!(
        short.client_secret_expires_at(),
        (T0 + Duration::from_secs(3600)).unix_timestamp()
    );
    let auth = start(&oidc, &short).await;
    clock.advance(Duration::from_secs(3600));
    let err = poll_err(&oidc, &short, &auth).await;
    assert!(err.is_invalid_client_exception(), "{err:?}");
    // The first registration (90 days) is still fine.
    start(&oidc, &reg).await;
    fake.expire_registrations();
    let err = try_start(&oidc, &reg, reg.client_secret().unwrap())
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_invalid_client_exception());
}

#[tokio::test]
async fn get_role_credentials_returns_fresh_keys_and_expiration_in_ms() {
    let (fake, clock) = manual_fake().await;
    fake.add_account("111122223333", "Dev", "dev@example.com");
    fake.add_role("111122223333", "Admin");
    fake.set_credentials_lifetime(Duration::from_millis(900_500));
    let oidc = oidc_client(&fake);
    let (_, token) = login(&fake, &oidc, &[ACCOUNT_ACCESS_SCOPE]).await;
    let portal = portal_client(&fake);

    let get = || {
        portal
            .get_role_credentials()
            .access_token(token.access_token().unwrap())
            .account_id("111122223333")
            .role_name("Admin")
            .send()
    };
    let first = get().await.expect("GetRoleCredentials");
    let creds = first.role_credentials().expect("roleCredentials");
    let key = creds.access_key_id().unwrap();
    assert!(key.starts_with("ASIA") && key.len() == 20, "{key}");
    assert!(creds.secret_access_key().is_some_and(|s| s.len() == 40));
    assert!(creds.session_token().is_some_and(|s| !s.is_empty()));
    let expected_ms = (T0.unix_timestamp() * 1000) + 900_500;
    assert_eq!(creds.expiration(), expected_ms, "epoch milliseconds");

    clock.advance(Duration::from_secs(10));
    let second = get().await.expect("GetRoleCredentials");
    let creds2 = second.role_credentials().unwrap();
    assert_ne!(creds2.access_key_id(), creds.access_key_id(), "fresh keys");
    assert_ne!(creds2.secret_access_key(), creds.secret_access_key());
    assert_eq!(creds2.expiration(), expected_ms + 10_000);

    let issued = fake.issued_credentials();
    assert_eq!(issued.len(), 2);
    assert_eq!(issued[0].access_key_id, key);
    assert_eq!(issued[0].account_id, "111122223333");
    assert_eq!(issued[0].role_name, "Admin");
    assert_eq!(fake.calls("GetRoleCredentials"), 2);

    // A role that is not assigned: 403 ForbiddenException "No access" (not modeled).
    let err = portal
        .get_role_credentials()
        .access_token(token.access_token().unwrap())
        .account_id("111122223333")
        .role_name("NotMine")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(403));
    let err = err.into_service_error();
    assert_eq!(err.code(), Some("ForbiddenException"));
    assert_eq!(err.message(), Some("No access"));
}

#[tokio::test]
async fn list_accounts_and_roles_paginate_with_the_sdk_paginators() {
    let fake = SsoFake::start().await;
    let ids: Vec<String> = (0..7).map(|i| format!("10000000000{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        fake.add_account(id, &format!("Account {i}"), &format!("a{i}@example.com"));
    }
    let roles = ["Admin", "ReadOnly", "Billing", "Dev", "Ops"];
    for role in roles {
        fake.add_role(&ids[0], role);
    }
    fake.add_role(&ids[1], "Other");
    fake.set_page_size(3);
    let token = fake.mint_access_token();
    let portal = portal_client(&fake);

    let accounts: Vec<_> = portal
        .list_accounts()
        .access_token(&token)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .expect("ListAccounts pages");
    let got: Vec<_> = accounts.iter().map(|a| a.account_id().unwrap()).collect();
    assert_eq!(got, ids);
    assert_eq!(accounts[2].account_name(), Some("Account 2"));
    assert_eq!(accounts[2].email_address(), Some("a2@example.com"));
    assert_eq!(fake.calls("ListAccounts"), 3, "7 accounts in pages of 3");

    // A smaller max_result from the client wins.
    let pages: Vec<_> = portal
        .list_account_roles()
        .access_token(&token)
        .account_id(&ids[0])
        .into_paginator()
        .page_size(2)
        .send()
        .try_collect()
        .await
        .expect("ListAccountRoles pages");
    assert_eq!(pages.len(), 3, "5 roles in pages of 2");
    let got: Vec<_> = pages
        .iter()
        .flat_map(|p| p.role_list())
        .map(|r| {
            assert_eq!(r.account_id(), Some(ids[0].as_str()));
            r.role_name().unwrap()
        })
        .collect();
    assert_eq!(got, roles);
    assert_eq!(fake.calls("ListAccountRoles"), 3);

    // max_result outside 1..=100 is an InvalidRequestException.
    let err = portal
        .list_accounts()
        .access_token(&token)
        .max_results(101)
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.into_service_error(),
            ListAccountsError::InvalidRequestException(_)
        ),
        "max_result 101"
    );
    // A token from another listing is rejected.
    let first = portal
        .list_accounts()
        .access_token(&token)
        .send()
        .await
        .unwrap();
    let err = portal
        .list_account_roles()
        .access_token(&token)
        .account_id(&ids[0])
        .next_token(first.next_token().unwrap())
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_invalid_request_exception());
}

#[tokio::test]
async fn expired_or_revoked_tokens_are_unauthorized_401() {
    let (fake, _clock) = manual_fake().await;
    fake.add_account("111122223333", "Dev", "dev@example.com");
    let oidc = oidc_client(&fake);
    let portal = portal_client(&fake);
    let (reg, token) = login(&fake, &oidc, &[ACCOUNT_ACCESS_SCOPE]).await;
    let list = |t: String| portal.list_accounts().access_token(t).send();

    list(token.access_token().unwrap().to_owned())
        .await
        .expect("valid token");

    fake.expire_access_tokens();
    let err = list(token.access_token().unwrap().to_owned())
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(401));
    match err.into_service_error() {
        ListAccountsError::UnauthorizedException(e) => {
            assert_eq!(e.message(), Some("Session token not found or invalid"));
        }
        other => panic!("expected UnauthorizedException, got {other:?}"),
    }

    // Refresh still works after the access token expired.
    let refreshed = refresh(&oidc, &reg, token.refresh_token().unwrap())
        .await
        .expect("refresh after expiry");
    list(refreshed.access_token().unwrap().to_owned())
        .await
        .expect("refreshed token");

    fake.revoke_all();
    let err = list(refreshed.access_token().unwrap().to_owned())
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_unauthorized_exception());
    let err = refresh_err(&oidc, &reg, refreshed.refresh_token().unwrap()).await;
    assert!(err.is_invalid_grant_exception(), "{err:?}");

    // An unknown token is unauthorized too, on every portal operation.
    let err = portal
        .get_role_credentials()
        .access_token("made-up")
        .account_id("111122223333")
        .role_name("Admin")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        GetRoleCredentialsError::UnauthorizedException(_)
    ));
}

#[tokio::test]
async fn throttling_is_too_many_requests_429() {
    let fake = SsoFake::start().await;
    fake.add_account("111122223333", "Dev", "dev@example.com");
    let token = fake.mint_access_token();
    let portal = portal_client(&fake);

    fake.throttle_next(2);
    for _ in 0..2 {
        let err = portal
            .list_accounts()
            .access_token(&token)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(429));
        assert!(matches!(
            err.into_service_error(),
            ListAccountsError::TooManyRequestsException(_)
        ));
    }
    portal
        .list_accounts()
        .access_token(&token)
        .send()
        .await
        .expect("throttling is over");
    assert_eq!(fake.calls("ListAccounts"), 3);

    // The SDK's standard retry classifies it as throttling and retries.
    let retrying = portal_client_with(
        &fake,
        RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(Duration::from_millis(1)),
    );
    fake.throttle_next(1);
    retrying
        .list_accounts()
        .access_token(&token)
        .send()
        .await
        .expect("retried past one 429");
    assert_eq!(fake.calls("ListAccounts"), 5);
}

#[tokio::test]
async fn injected_failures_hit_the_next_call() {
    let (fake, _clock) = manual_fake().await;
    let oidc = oidc_client(&fake);
    fake.fail_next_with(500, "InternalServerException");
    let err = try_register(&oidc, "x", &[]).await.unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(500));
    assert!(err.into_service_error().is_internal_server_exception());
    assert_eq!(fake.registrations(), 0);

    let reg = register(&oidc, &[]).await;
    let auth = start(&oidc, &reg).await;
    fake.fail_next_call_of("CreateToken", 400, "InvalidRequestException");
    let err = poll_err(&oidc, &reg, &auth).await;
    assert!(err.is_invalid_request_exception(), "{err:?}");
    let err = poll_err(&oidc, &reg, &auth).await;
    assert!(err.is_authorization_pending_exception(), "{err:?}");
}

#[tokio::test]
async fn logout_invalidates_the_token() {
    let (fake, _clock) = manual_fake().await;
    fake.add_account("111122223333", "Dev", "dev@example.com");
    let oidc = oidc_client(&fake);
    let portal = portal_client(&fake);
    let (reg, token) = login(&fake, &oidc, &[ACCOUNT_ACCESS_SCOPE]).await;
    let access = token.access_token().unwrap();
    let other = fake.mint_access_token();

    portal
        .logout()
        .access_token(access)
        .send()
        .await
        .expect("Logout");
    assert_eq!(fake.calls("Logout"), 1);
    assert!(!fake.access_token_valid(access));

    let err = portal
        .list_accounts()
        .access_token(access)
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_unauthorized_exception());
    // Logging out again: "token not found or invalid".
    let err = portal
        .logout()
        .access_token(access)
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        LogoutError::UnauthorizedException(_)
    ));
    // The sign-in's refresh token ended with it; other sign-ins did not.
    let err = refresh_err(&oidc, &reg, token.refresh_token().unwrap()).await;
    assert!(err.is_invalid_grant_exception(), "{err:?}");
    portal
        .list_accounts()
        .access_token(&other)
        .send()
        .await
        .expect("another sign-in is unaffected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_the_complete_verification_uri_approves() {
    let (fake, _clock) = manual_fake().await;
    let oidc = oidc_client(&fake);
    let reg = register(&oidc, &[]).await;
    let auth = start(&oidc, &reg).await;
    let url = auth.verification_uri_complete().unwrap().to_owned();
    let addr = fake.addr();
    let status_line = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let path = url.split_once(&addr.to_string()).unwrap().1.to_owned();
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response.lines().next().unwrap_or_default().to_owned()
    })
    .await
    .unwrap();
    assert!(status_line.contains("200"), "{status_line}");
    assert!(fake.pending_user_codes().is_empty());
    poll(&oidc, &reg, &auth)
        .await
        .expect("approved via the URI");
}

#[tokio::test]
async fn auto_approve_and_shutdown() {
    let fake = SsoFake::start().await;
    fake.set_auto_approve(true);
    let oidc = oidc_client(&fake);
    let reg = register(&oidc, &[]).await;
    let auth = start(&oidc, &reg).await;
    poll(&oidc, &reg, &auth).await.expect("auto-approved");

    fake.shutdown().await;
    let err = try_register(&oidc, "x", &[]).await.unwrap_err();
    assert!(err.as_service_error().is_none(), "server is gone: {err:?}");
}
