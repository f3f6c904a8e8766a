//! Brute-force protection of the server: failed logins (session POST and
//! HTTP Basic) lock the account for the client address that failed, and
//! the client address itself after failures on any account; a locked login
//! looks exactly like a wrong password, and the lock ends after
//! `AccountLockoutDuration` on the server's (injected) clock.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::Value;
use session_core::{Clock, ManualClock, SystemClock};
use session_redfish::server::{
    DEFAULT_ACCOUNT_LOCKOUT_DURATION, DEFAULT_ACCOUNT_LOCKOUT_THRESHOLD, RedfishServerConfig,
    RedfishServerHandle,
};

use common::*;

fn manual_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(SystemClock.now()))
}

/// The status and body of a login POST.
async fn attempt(
    h: &RedfishServerHandle,
    c: &Client,
    user: &str,
    pw: &str,
) -> (StatusCode, String) {
    let res = post_login(h, c, user, pw).await;
    (res.status(), res.text().await.unwrap())
}

/// A client like `trusting`, but connecting from `source` (another
/// loopback address), to play a second client machine.
fn trusting_from(ca_pem: &str, source: IpAddr) -> Client {
    Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .local_address(source)
        .build()
        .unwrap()
}

/// With the defaults, `AccountLockoutThreshold` wrong passwords lock the
/// account for this address: the right password is then refused with the
/// very answer a wrong password or an unknown user gets, and works again
/// once `AccountLockoutDuration` has passed.
#[tokio::test]
async fn wrong_passwords_lock_the_account_and_the_lock_expires() {
    let clock = manual_clock();
    let (h, c) = start(builder().clock(clock.clone())).await;
    let wrong = attempt(&h, &c, "admin", "CANARY-wrong-pw").await;
    assert_eq!(wrong.0, StatusCode::UNAUTHORIZED);
    for _ in 1..DEFAULT_ACCOUNT_LOCKOUT_THRESHOLD {
        assert_eq!(attempt(&h, &c, "admin", "CANARY-wrong-pw").await, wrong);
    }
    let locked = attempt(&h, &c, "admin", ADMIN_PW).await;
    assert_eq!(locked, wrong, "the right password is refused while locked");
    // An unknown user (never locked) and a locked one look the same.
    assert_eq!(attempt(&h, &c, "nobody", "CANARY-wrong-pw").await, wrong);
    // Basic with the right password is refused as well.
    let basic = c
        .get(format!("{}{SESSIONS}", h.base_url()))
        .basic_auth("admin", Some(ADMIN_PW))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    assert!(!locked.1.contains("CANARY") && !locked.1.contains("admin"));

    clock.advance(DEFAULT_ACCOUNT_LOCKOUT_DURATION - Duration::from_secs(1));
    assert_eq!(attempt(&h, &c, "admin", ADMIN_PW).await, wrong);
    clock.advance(Duration::from_secs(1));
    login(&h, &c, "admin", ADMIN_PW).await;
    h.shutdown().await;
}

/// Wrong Basic credentials count like wrong logins.
#[tokio::test]
async fn wrong_basic_credentials_lock_the_account() {
    let clock = manual_clock();
    let (h, c) = start(builder().clock(clock.clone()).account_lockout_threshold(3)).await;
    let url = format!("{}{SESSIONS}", h.base_url());
    let basic = |pw: &'static str| c.get(&url).basic_auth("admin", Some(pw)).send();
    for _ in 0..3 {
        assert_eq!(
            basic("wrong").await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        basic(ADMIN_PW).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    clock.advance(DEFAULT_ACCOUNT_LOCKOUT_DURATION);
    assert_eq!(basic(ADMIN_PW).await.unwrap().status(), StatusCode::OK);
    h.shutdown().await;
}

/// Someone failing from one address does not lock the account's user out
/// from another address; and one address failing on many user names is
/// locked out itself (`clientLockoutThreshold`), for every account.
#[tokio::test]
async fn locks_are_per_client_address() {
    let clock = manual_clock();
    let (h, c) = start(
        builder()
            .clock(clock.clone())
            .account_lockout_threshold(2)
            .client_lockout_threshold(4),
    )
    .await;
    let other = trusting_from(h.ca_pem().unwrap(), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
    for _ in 0..2 {
        attempt(&h, &c, "admin", "wrong").await;
    }
    assert_eq!(
        attempt(&h, &c, "admin", ADMIN_PW).await.0,
        StatusCode::UNAUTHORIZED
    );
    login(&h, &other, "admin", ADMIN_PW).await;
    // The locked address may still log in as another account, until it has
    // failed `clientLockoutThreshold` times in all.
    login(&h, &c, "reader", "reader-pw").await;
    for user in ["x1", "x2"] {
        attempt(&h, &c, user, "wrong").await;
    }
    assert_eq!(
        attempt(&h, &c, "reader", "reader-pw").await.0,
        StatusCode::UNAUTHORIZED
    );
    login(&h, &other, "reader", "reader-pw").await;
    h.shutdown().await;
}

/// A success resets the account's count; failures older than
/// `AccountLockoutCounterResetAfter` are forgotten.
#[tokio::test]
async fn the_counter_resets() {
    let clock = manual_clock();
    let (h, c) = start(
        builder()
            .clock(clock.clone())
            .account_lockout_threshold(3)
            .account_lockout_duration(Duration::from_secs(600))
            .account_lockout_counter_reset_after(Duration::from_secs(60)),
    )
    .await;
    for _ in 0..2 {
        attempt(&h, &c, "admin", "wrong").await;
    }
    login(&h, &c, "admin", ADMIN_PW).await;
    for _ in 0..2 {
        attempt(&h, &c, "admin", "wrong").await;
    }
    clock.advance(Duration::from_secs(60));
    for _ in 0..2 {
        attempt(&h, &c, "admin", "wrong").await;
    }
    login(&h, &c, "admin", ADMIN_PW).await;
    // Three in a row within the window do lock.
    for _ in 0..3 {
        attempt(&h, &c, "admin", "wrong").await;
    }
    assert_eq!(
        attempt(&h, &c, "admin", ADMIN_PW).await.0,
        StatusCode::UNAUTHORIZED
    );
    h.shutdown().await;
}

/// The AccountService shows the policy; builder, TOML file and
/// validation agree.
#[tokio::test]
async fn the_policy_is_shown_and_configurable() {
    let (h, c) = start(builder()).await;
    let admin = login(&h, &c, "admin", ADMIN_PW).await;
    let svc = get_json(&h, &c, "/redfish/v1/AccountService", &admin.token).await;
    assert_eq!(
        svc["AccountLockoutThreshold"],
        u64::from(DEFAULT_ACCOUNT_LOCKOUT_THRESHOLD)
    );
    assert_eq!(
        svc["AccountLockoutDuration"],
        DEFAULT_ACCOUNT_LOCKOUT_DURATION.as_secs()
    );
    assert!(svc["AccountLockoutCounterResetAfter"].as_u64().unwrap() > 0);
    h.shutdown().await;

    let config = RedfishServerConfig::from_toml(
        r#"
        insecureHttp = true
        accountLockoutThreshold = 7
        accountLockoutDuration = 120
        accountLockoutCounterResetAfter = 90
        clientLockoutThreshold = 0
        [[accounts]]
        userName = "admin"
        role = "Administrator"
        passwordEnv = "P"
        "#,
        "redfish.toml",
    )
    .unwrap();
    let h = config
        .into_builder_with_env(|_| Some(ADMIN_PW.to_owned()))
        .unwrap()
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let c = Client::new();
    let admin = login(&h, &c, "admin", ADMIN_PW).await;
    let svc: Value = get_json(&h, &c, "/redfish/v1/AccountService", &admin.token).await;
    assert_eq!(svc["AccountLockoutThreshold"], 7);
    assert_eq!(svc["AccountLockoutDuration"], 120);
    assert_eq!(svc["AccountLockoutCounterResetAfter"], 90);
    h.shutdown().await;

    // The counter cannot outlast the lock (the schema's rule), and a lock
    // must end.
    let err = RedfishServerConfig::from_toml(
        "accountLockoutDuration = 60\naccountLockoutCounterResetAfter = 61\n",
        "redfish.toml",
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("accountLockoutCounterResetAfter"),
        "{err}"
    );
    let err = builder()
        .account_lockout_duration(Duration::ZERO)
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("account_lockout_duration"),
        "{err}"
    );
}
