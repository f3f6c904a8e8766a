//! botocore, an SSO client we did not write, drives `SsoFake` through every
//! operation it implements and every error it emits, with the botocore
//! service models of `sso-oidc` and `sso` (2019-06-10) as the contract:
//! each error must parse into the model's exception class with the model's
//! HTTP status for that operation, and each answer into the model's output
//! shape.
//!
//! The one exception is deliberate: an unassigned role answers 403
//! `ForbiddenException` "No access", which the real portal sends although
//! its model does not list it (the AWS CLI reports it as
//! `ClientError: An error occurred (ForbiddenException) when calling the
//! GetRoleCredentials operation: No access`). botocore must parse it as that
//! generic `ClientError`.
//!
//! The script (`sso_fake_botocore.py`) asks this test to act on the fake
//! (approve, deny, expire, throttle, inject) through a line protocol on its
//! stdin and stdout. botocore is a pinned test peer: skipped loudly outside
//! CI when missing, a failure in CI.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use serde_json::{Value, json};
use session_testkit::fakes::SsoFake;
use session_testkit::fakes::sso::OPERATIONS;

const SCRIPT: &str = include_str!("sso_fake_botocore.py");
const ACCOUNT: &str = "111122223333";

/// Every error the script triggers: (operation, case, error code, HTTP
/// status). This is the table of what the fake emits; the test also checks
/// each row against the service model as botocore loaded it.
#[rustfmt::skip]
const EXPECTED_ERRORS: &[(&str, &str, &str, u16)] = &[
    ("RegisterClient", "confidential client type", "InvalidClientMetadataException", 400),
    ("RegisterClient", "no clientName", "InvalidRequestException", 400),
    ("RegisterClient", "injected server error", "InternalServerException", 500),
    ("StartDeviceAuthorization", "wrong client secret", "InvalidClientException", 401),
    ("StartDeviceAuthorization", "no startUrl", "InvalidRequestException", 400),
    ("StartDeviceAuthorization", "injected server error", "InternalServerException", 500),
    ("StartDeviceAuthorization", "expired registration", "InvalidClientException", 401),
    ("CreateToken", "pending", "AuthorizationPendingException", 400),
    ("CreateToken", "polled too fast", "SlowDownException", 400),
    ("CreateToken", "unsupported grant type", "UnsupportedGrantTypeException", 400),
    ("CreateToken", "wrong client secret", "InvalidClientException", 401),
    ("CreateToken", "no deviceCode", "InvalidRequestException", 400),
    ("CreateToken", "unknown device code", "InvalidGrantException", 400),
    ("CreateToken", "injected server error", "InternalServerException", 500),
    ("CreateToken", "device code used twice", "InvalidGrantException", 400),
    ("CreateToken", "denied", "AccessDeniedException", 400),
    ("CreateToken", "device code expired", "ExpiredTokenException", 400),
    ("CreateToken", "refresh token used twice", "InvalidGrantException", 400),
    ("CreateToken", "unknown refresh token", "InvalidGrantException", 400),
    ("CreateToken", "logged-out refresh token", "InvalidGrantException", 400),
    ("CreateToken", "expired registration", "InvalidClientException", 401),
    ("GetRoleCredentials", "role not assigned", "ForbiddenException", 403),
    ("GetRoleCredentials", "no role_name", "InvalidRequestException", 400),
    ("GetRoleCredentials", "unknown access token", "UnauthorizedException", 401),
    ("GetRoleCredentials", "throttled", "TooManyRequestsException", 429),
    ("GetRoleCredentials", "injected not found", "ResourceNotFoundException", 404),
    ("GetRoleCredentials", "logged-out access token", "UnauthorizedException", 401),
    ("ListAccounts", "max_result over 100", "InvalidRequestException", 400),
    ("ListAccounts", "unknown next token", "InvalidRequestException", 400),
    ("ListAccounts", "unknown access token", "UnauthorizedException", 401),
    ("ListAccounts", "throttled", "TooManyRequestsException", 429),
    ("ListAccounts", "injected not found", "ResourceNotFoundException", 404),
    ("ListAccounts", "expired access token", "UnauthorizedException", 401),
    ("ListAccountRoles", "no account_id", "InvalidRequestException", 400),
    ("ListAccountRoles", "next token of another listing", "InvalidRequestException", 400),
    ("ListAccountRoles", "unknown access token", "UnauthorizedException", 401),
    ("ListAccountRoles", "throttled", "TooManyRequestsException", 429),
    ("ListAccountRoles", "injected not found", "ResourceNotFoundException", 404),
    ("ListAccountRoles", "logged-out access token", "UnauthorizedException", 401),
    ("Logout", "throttled", "TooManyRequestsException", 429),
    ("Logout", "unknown access token", "UnauthorizedException", 401),
    ("Logout", "logged-out access token", "UnauthorizedException", 401),
];

/// The error the real portal sends that its model does not list.
const UNMODELLED: (&str, &str) = ("GetRoleCredentials", "ForbiddenException");

/// The OAuth `error` member the SSO-OIDC model documents for an exception.
fn oauth_error(code: &str) -> &'static str {
    match code {
        "AccessDeniedException" => "access_denied",
        "AuthorizationPendingException" => "authorization_pending",
        "ExpiredTokenException" => "expired_token",
        "InternalServerException" => "server_error",
        "InvalidClientException" => "invalid_client",
        "InvalidClientMetadataException" => "invalid_client_metadata",
        "InvalidGrantException" => "invalid_grant",
        "InvalidRequestException" => "invalid_request",
        "SlowDownException" => "slow_down",
        "UnsupportedGrantTypeException" => "unsupported_grant_type",
        other => panic!("no OAuth error code listed for {other}"),
    }
}

fn is_oidc(operation: &str) -> bool {
    matches!(
        operation,
        "RegisterClient" | "StartDeviceAuthorization" | "CreateToken"
    )
}

/// Carries out one control request of the script on the fake.
fn control(fake: &SsoFake, request: &Value) -> Value {
    let str_arg = |name: &str| {
        request[name]
            .as_str()
            .unwrap_or_else(|| panic!("{request}"))
    };
    let n_arg = || {
        let n = request["n"].as_u64().unwrap_or_else(|| panic!("{request}"));
        usize::try_from(n).unwrap()
    };
    match str_arg("do") {
        "pending_user_codes" => json!(fake.pending_user_codes()),
        "approve" => json!(fake.approve(str_arg("user_code"))),
        "deny" => json!(fake.deny(str_arg("user_code"))),
        "slow_down_next" => {
            fake.slow_down_next(n_arg());
            Value::Null
        }
        "throttle_next" => {
            fake.throttle_next(n_arg());
            Value::Null
        }
        "fail_next_call_of" => {
            let status = u16::try_from(request["status"].as_u64().unwrap()).unwrap();
            fake.fail_next_call_of(str_arg("operation"), status, str_arg("error_type"));
            Value::Null
        }
        "expire_device_codes" => {
            fake.expire_device_codes();
            Value::Null
        }
        "expire_access_tokens" => {
            fake.expire_access_tokens();
            Value::Null
        }
        "expire_registrations" => {
            fake.expire_registrations();
            Value::Null
        }
        other => panic!("the script asked for an unknown control action {other:?}"),
    }
}

/// Runs the script against `fake`, answering its control requests, and
/// returns its result.
fn run_script(python: &std::path::Path, fake: &SsoFake) -> Value {
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(python)
        .env_clear()
        .env("HOME", home.path())
        .env("AWS_CONFIG_FILE", home.path().join("config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            home.path().join("credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .arg("-c")
        .arg(SCRIPT)
        .arg(fake.oidc_endpoint())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the peers' Python");
    let mut stdin = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut result = None;
    for line in stdout.lines() {
        let line = line.expect("read the script's output");
        let message: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the script printed a line that is not JSON ({e})"));
        if let Some(request) = message.get("control") {
            let answer = control(fake, request);
            writeln!(stdin, "{answer}").expect("answer the script");
            stdin.flush().unwrap();
        } else if let Some(out) = message.get("result") {
            result = Some(out.clone());
        }
    }
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "botocore script failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    result.expect("the script printed no result")
}

/// The fake as the script expects it: five accounts, three roles in the
/// first, polls not paced by the interval (the script forces `SlowDown`
/// itself, so no assertion depends on how fast botocore polls).
async fn fake() -> SsoFake {
    let fake = SsoFake::start().await;
    fake.set_enforce_interval(false);
    fake.add_account(ACCOUNT, "Dev", "dev@example.com");
    for i in 1..5 {
        fake.add_account(
            &format!("44445555666{i}"),
            &format!("Other {i}"),
            &format!("other{i}@example.com"),
        );
    }
    for role in ["Admin", "ReadOnly", "Billing"] {
        fake.add_role(ACCOUNT, role);
    }
    fake
}

fn as_i64(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn botocore_drives_every_operation_and_parses_every_error_as_modelled() {
    let Some(python) = session_testkit::peers::require_peer("botocore", || {
        session_testkit::peers::python_with_module("botocore")
    }) else {
        return;
    };
    let fake = Arc::new(fake().await);
    let started = fake.now();
    let out = {
        let fake = fake.clone();
        tokio::task::spawn_blocking(move || run_script(&python, &fake))
            .await
            .unwrap()
    };

    check_errors(&out["errors"]);
    check_oidc_outputs(&out, &fake, started);
    check_portal_outputs(&out, &fake);

    // Every request botocore sent reached the fake, and each operation was
    // exercised.
    let sent = out["sent"].as_object().unwrap();
    for operation in OPERATIONS {
        let count = sent.get(operation).map_or(0, as_i64);
        assert!(count > 0, "{operation} never called");
        assert_eq!(
            usize::try_from(count).unwrap(),
            fake.calls(operation),
            "botocore's requests of {operation} against the fake's count"
        );
    }
    assert_eq!(sent.len(), OPERATIONS.len(), "{sent:?}");
}

/// Each error: the expected code and status, the model's exception class
/// and status for that operation, and the members of its protocol.
fn check_errors(errors: &Value) {
    let errors = errors.as_array().unwrap();
    let mut seen = BTreeSet::new();
    for e in errors {
        let operation = e["operation"].as_str().unwrap();
        let case = e["case"].as_str().unwrap();
        let what = format!("{operation} / {case}");
        assert!(seen.insert((operation, case)), "{what} recorded twice");
        let &(_, _, code, status) = EXPECTED_ERRORS
            .iter()
            .find(|(o, c, _, _)| *o == operation && *c == case)
            .unwrap_or_else(|| panic!("{what}: not in the expected table"));
        assert_eq!(e["code"], code, "{what}: {e}");
        assert_eq!(e["status"], status, "{what}: {e}");
        assert_eq!(e["request_id"], true, "{what}: x-amzn-requestid: {e}");
        if (operation, code) == UNMODELLED {
            assert_eq!(e["modelled_status"], Value::Null, "{what}: {e}");
            assert_eq!(e["exception"], "ClientError", "{what}: {e}");
            assert_eq!(e["message"], "No access", "{what}: {e}");
        } else {
            assert_eq!(
                e["modelled_status"], status,
                "{what}: the model lists {code} for {operation} with this status: {e}"
            );
            assert_eq!(e["is_modelled_class"], true, "{what}: {e}");
            assert_eq!(e["exception"], code, "{what}: {e}");
        }
        if is_oidc(operation) {
            assert_eq!(e["error"], oauth_error(code), "{what}: {e}");
            assert_eq!(e["has_error_description"], true, "{what}: {e}");
        } else {
            assert_eq!(e["error"], Value::Null, "{what}: {e}");
            assert!(
                e["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{what}: {e}"
            );
        }
    }
    let missing: Vec<_> = EXPECTED_ERRORS
        .iter()
        .filter(|(o, c, _, _)| !seen.contains(&(*o, *c)))
        .collect();
    assert!(missing.is_empty(), "not triggered: {missing:?}");
}

/// RegisterClient, StartDeviceAuthorization and CreateToken outputs, and
/// refresh-token rotation and Logout as the fake recorded them.
fn check_oidc_outputs(out: &Value, fake: &SsoFake, started: time::OffsetDateTime) {
    let reg = &out["register"];
    assert_eq!(reg["clientId"].as_str().unwrap().len(), 22);
    assert!(reg["clientSecret"].as_str().is_some_and(|s| !s.is_empty()));
    let issued_at = as_i64(&reg["clientIdIssuedAt"]);
    assert!(
        (started.unix_timestamp()..started.unix_timestamp() + 60).contains(&issued_at),
        "clientIdIssuedAt in epoch seconds: {issued_at}"
    );
    assert_eq!(
        as_i64(&reg["clientSecretExpiresAt"]) - issued_at,
        90 * 24 * 3600
    );
    assert_eq!(fake.registrations(), 1, "only the one valid registration");

    let start = &out["start"];
    let user_code = start["userCode"].as_str().unwrap();
    assert_eq!(out["pending_user_codes"], json!([user_code]));
    assert_eq!(out["approved"], true);
    assert_eq!(out["denied"], true);
    assert_eq!(as_i64(&start["expiresIn"]), 600);
    assert_eq!(as_i64(&start["interval"]), 1);
    assert!(
        start["verificationUriComplete"]
            .as_str()
            .unwrap()
            .ends_with(user_code)
    );
    assert!(start["deviceCode"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(fake.device_authorizations(), 3, "approved, denied, expired");

    // Device-code grant, then three refreshes: each rotates both tokens.
    let tokens = ["device_token", "rotated", "rotated_again", "renewed"].map(|k| &out[k]);
    for t in tokens {
        assert_eq!(t["tokenType"], "Bearer");
        assert_eq!(as_i64(&t["expiresIn"]), 3600);
    }
    let access: BTreeSet<_> = tokens.iter().map(|t| t["accessToken"].as_str()).collect();
    let refresh: BTreeSet<_> = tokens.iter().map(|t| t["refreshToken"].as_str()).collect();
    assert_eq!(access.len(), 4, "a new access token each time");
    assert_eq!(refresh.len(), 4, "a new refresh token each time");
    // Rotated-out refresh tokens are dead; the last one died with Logout,
    // and so did every access token (expired, or revoked by Logout).
    for t in tokens {
        let refresh = t["refreshToken"].as_str().unwrap();
        assert!(!fake.refresh_token_valid(refresh), "refresh token alive");
        let access = t["accessToken"].as_str().unwrap();
        assert!(!fake.access_token_valid(access), "access token alive");
    }
}

/// Role credentials against the fake's record, pagination, Logout.
fn check_portal_outputs(out: &Value, fake: &SsoFake) {
    let issued = fake.issued_credentials();
    let got = out["credentials"].as_array().unwrap();
    assert_eq!(issued.len(), 2, "only the two successful calls issued keys");
    for (creds, issued) in got.iter().zip(&issued) {
        assert_eq!(creds["accessKeyId"], issued.access_key_id.as_str());
        assert!(creds["secretAccessKey"] == issued.secret_access_key.as_str());
        assert!(creds["sessionToken"] == issued.session_token.as_str());
        let expected_ms = issued.expiration.unix_timestamp_nanos() / 1_000_000;
        assert_eq!(
            i128::from(as_i64(&creds["expiration"])),
            expected_ms,
            "expiration in epoch milliseconds"
        );
        assert_eq!(issued.account_id, ACCOUNT);
    }
    assert_eq!(
        issued
            .iter()
            .map(|i| i.role_name.as_str())
            .collect::<Vec<_>>(),
        ["Admin", "ReadOnly"]
    );

    // Five accounts in pages of two; three roles in pages of two.
    let accounts = &out["accounts"];
    assert_eq!(accounts["pages"], 3);
    assert_eq!(accounts["next_tokens"], 2);
    let items = accounts["items"].as_array().unwrap();
    let ids: Vec<_> = items
        .iter()
        .map(|a| a["accountId"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            ACCOUNT,
            "444455556661",
            "444455556662",
            "444455556663",
            "444455556664"
        ]
    );
    assert_eq!(
        items[0],
        json!({"accountId": ACCOUNT, "accountName": "Dev", "emailAddress": "dev@example.com"})
    );
    let roles = &out["roles"];
    assert_eq!(roles["pages"], 2);
    assert_eq!(roles["next_tokens"], 1);
    let roles: BTreeMap<_, _> = roles["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["roleName"].as_str().unwrap(),
                r["accountId"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        BTreeMap::from([
            ("Admin", ACCOUNT),
            ("Billing", ACCOUNT),
            ("ReadOnly", ACCOUNT)
        ])
    );

    // Logout: 200 and an empty output shape.
    assert_eq!(out["logout"], json!({"status": 200, "members": []}));
}
