//! `SsoIntegration::sync` against the Identity Center fake: pagination,
//! client-side pacing, back-off on 429 and one renewal on 401.

use std::sync::{Arc, Mutex};

use session_aws::sso::{
    NonInteractivePrompter, SsoClientConfig, SsoIntegration, SsoLogin, SsoLoginKey, SsoToken,
    SsoTokenCache,
};
use session_core::{Clock, Secret};
use session_testkit::fakes::SsoFake;
use session_testkit::fakes::sso::ACCOUNT_ACCESS_SCOPE;
use time::OffsetDateTime;
use time::macros::datetime;

const START_URL: &str = "https://d-123.awsapps.com/start";
const REGION: &str = "us-east-1";
const T0: OffsetDateTime = datetime!(2030-01-01 0:00 UTC);

/// A clock on which sleeping takes no real time: `sleep_until` jumps to
/// the deadline.
#[derive(Debug)]
struct JumpClock(Mutex<OffsetDateTime>);

#[async_trait::async_trait]
impl Clock for JumpClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }

    async fn sleep_until(&self, deadline: OffsetDateTime) {
        let mut now = self.0.lock().unwrap();
        if deadline > *now {
            *now = deadline;
        }
    }
}

struct Env {
    fake: SsoFake,
    clock: Arc<JumpClock>,
    _home: tempfile::TempDir,
    integration: SsoIntegration,
}

/// A fake with 3 accounts of 2 roles each, pages of 1 item, and a signed-in
/// cache (no device flow needed).
async fn env() -> Env {
    let clock = Arc::new(JumpClock(Mutex::new(T0)));
    let fake = SsoFake::start_with_clock(clock.clone()).await;
    for (id, name) in [
        ("111111111111", "Dev"),
        ("222222222222", "Staging"),
        ("333333333333", "Prod"),
    ] {
        fake.add_account(id, name, &format!("{}@example.com", name.to_lowercase()));
        fake.add_role(id, "Admin");
        fake.add_role(id, "ReadOnly");
    }
    fake.set_page_size(1);
    let home = tempfile::tempdir().unwrap();
    let cache = SsoTokenCache::for_home(home.path());
    let minted = fake.mint_login(&[ACCOUNT_ACCESS_SCOPE]);
    cache
        .store(
            "my-sso",
            &SsoToken {
                access_token: Secret::new(minted.access_token),
                expires_at: minted.access_token_expires_at,
                refresh_token: minted.refresh_token.map(Secret::new),
                client_id: Some(minted.client_id),
                client_secret: Some(Secret::new(minted.client_secret)),
                registration_expires_at: Some(minted.client_secret_expires_at),
                region: Some(REGION.into()),
                start_url: Some(START_URL.into()),
            },
        )
        .unwrap();
    let clients = SsoClientConfig::builder()
        .endpoint_url(fake.oidc_endpoint())
        .max_attempts(1)
        .build()
        .unwrap();
    let login = Arc::new(SsoLogin::new(
        clients,
        cache,
        Arc::new(NonInteractivePrompter),
    ));
    let key = SsoLoginKey::new(START_URL, REGION).with_session_name("my-sso");
    Env {
        fake,
        clock,
        _home: home,
        integration: SsoIntegration::new(login, key),
    }
}

#[tokio::test]
async fn sso_sync_lists_every_pair_paced_and_backs_off_on_429() {
    let env = env().await;
    env.fake.throttle_next(2);
    let pairs = env.integration.sync(env.clock.as_ref()).await.unwrap();

    let got: Vec<(&str, &str)> = pairs
        .iter()
        .map(|p| (p.account_id.as_str(), p.role_name.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("111111111111", "Admin"),
            ("111111111111", "ReadOnly"),
            ("222222222222", "Admin"),
            ("222222222222", "ReadOnly"),
            ("333333333333", "Admin"),
            ("333333333333", "ReadOnly"),
        ]
    );
    assert_eq!(pairs[0].account_name.as_deref(), Some("Dev"));
    assert_eq!(pairs[5].email_address.as_deref(), Some("prod@example.com"));
    assert_eq!(pairs[2].suggested_session_name(), "Staging/Admin");
    let config = pairs[4].session_config(env.integration.key());
    config.validate().unwrap();
    assert_eq!(config.sso_session_name.as_deref(), Some("my-sso"));

    // Pages of one: 3 ListAccounts pages (+2 throttled tries), 2 role pages
    // per account.
    assert_eq!(env.fake.calls("ListAccounts"), 5);
    assert_eq!(env.fake.calls("ListAccountRoles"), 6);
    assert_eq!(
        env.fake.calls("CreateToken"),
        0,
        "the cached token was used"
    );

    // Back-offs of [0.5, 1) s and [1, 2) s, then 8 more calls 200 ms apart
    // (5 per second).
    let elapsed = env.clock.now() - T0;
    assert!(
        elapsed >= time::Duration::milliseconds(3100)
            && elapsed < time::Duration::milliseconds(4600),
        "{elapsed}"
    );
}

#[tokio::test]
async fn sso_a_401_during_sync_renews_the_sign_in_once() {
    let env = env().await;
    env.fake.expire_access_tokens();
    let pairs = env.integration.sync(env.clock.as_ref()).await.unwrap();
    assert_eq!(pairs.len(), 6);
    assert_eq!(env.fake.calls("CreateToken"), 1, "one refresh");
    assert_eq!(env.fake.device_authorizations(), 0);
}

#[tokio::test]
async fn sso_persistent_throttling_gives_up_as_throttled() {
    let env = env().await;
    let integration = env.integration.clone().with_max_retries(2);
    env.fake.throttle_next(10);
    let err = integration.sync(env.clock.as_ref()).await.unwrap_err();
    assert_eq!(err.category(), "throttled", "{err}");
    assert_eq!(env.fake.calls("ListAccounts"), 3, "first try + 2 retries");
}
