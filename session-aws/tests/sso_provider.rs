//! The `awsSsoRole` provider and its SSO sign-in (`SsoLogin`) against the
//! in-process IAM Identity Center fake of `session-testkit`: conformance,
//! the device flow, refresh, 401 handling, single-flight and the AWS CLI
//! cache layout.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::probe;
use session_aws::AwsCredentials;
use session_aws::sso::{
    DeviceCodePrompt, DeviceCodePrompter, NonInteractivePrompter, SsoClientConfig, SsoLogin,
    SsoLoginKey, SsoRoleConfig, SsoRoleProvider, SsoToken, SsoTokenCache,
};
use session_core::{
    ActionContext, Clock, Error, InMemorySecretStore, ManualClock, Result, Secret, Session,
    SessionAction, SessionStatus, SessionType,
};
use session_testkit::fakes::SsoFake;
use session_testkit::fakes::sso::ACCOUNT_ACCESS_SCOPE;
use session_testkit::suites::{ActionFixture, action_conformance};
use time::OffsetDateTime;
use time::macros::datetime;

const START_URL: &str = "https://d-123.awsapps.com/start";
const REGION: &str = "us-east-1";
const ACCOUNT: &str = "111122223333";
const SESSION_NAME: &str = "my-sso";
const T0: OffsetDateTime = datetime!(2030-01-01 0:00 UTC);

/// What the prompter does with a device code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Approve,
    /// Approve, and make the next two polls answer `SlowDown`.
    ApproveAfterTwoSlowDowns,
    Deny,
    Ignore,
    ExpireCode,
}

/// Plays the user: approves (or denies…) each device code it is shown.
#[derive(Debug)]
struct User {
    fake: Arc<SsoFake>,
    answer: Answer,
    prompts: AtomicUsize,
    finished: AtomicUsize,
}

impl User {
    fn new(fake: &Arc<SsoFake>, answer: Answer) -> Arc<Self> {
        Arc::new(Self {
            fake: fake.clone(),
            answer,
            prompts: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
        })
    }

    fn prompts(&self) -> usize {
        self.prompts.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl DeviceCodePrompter for User {
    async fn prompt(&self, authorization: &DeviceCodePrompt) -> Result<()> {
        self.prompts.fetch_add(1, Ordering::SeqCst);
        assert!(authorization.url().contains(&authorization.user_code));
        assert_eq!(authorization.target, START_URL);
        assert!(
            authorization.message.contains(REGION),
            "{}",
            authorization.message
        );
        match self.answer {
            Answer::Approve => assert!(self.fake.approve(&authorization.user_code)),
            Answer::ApproveAfterTwoSlowDowns => {
                assert!(self.fake.approve(&authorization.user_code));
                self.fake.slow_down_next(2);
            }
            Answer::Deny => assert!(self.fake.deny(&authorization.user_code)),
            Answer::Ignore => {}
            Answer::ExpireCode => self.fake.expire_device_codes(),
        }
        Ok(())
    }

    async fn finished(&self, _authorization: &DeviceCodePrompt, _approved: bool) {
        self.finished.fetch_add(1, Ordering::SeqCst);
    }
}

/// Moves the manual clock on by 1 s whenever someone sleeps on it, so
/// polling sleeps take no real time. Aborted on drop.
struct AutoAdvance(tokio::task::JoinHandle<()>);

impl AutoAdvance {
    fn start(clock: &Arc<ManualClock>) -> Self {
        let clock = clock.clone();
        Self(tokio::spawn(async move {
            loop {
                if clock.sleepers() > 0 {
                    clock.advance(Duration::from_secs(1));
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }))
    }
}

impl Drop for AutoAdvance {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Env {
    fake: Arc<SsoFake>,
    clock: Arc<ManualClock>,
    home: tempfile::TempDir,
    user: Arc<User>,
    login: Arc<SsoLogin>,
    _advance: AutoAdvance,
}

impl Env {
    async fn new(answer: Answer) -> Self {
        let clock = Arc::new(ManualClock::new(T0));
        let fake = Arc::new(SsoFake::start_with_clock(clock.clone()).await);
        fake.add_account(ACCOUNT, "Dev", "dev@example.com");
        fake.add_role(ACCOUNT, "Admin");
        fake.add_role(ACCOUNT, "ReadOnly");
        let home = tempfile::tempdir().unwrap();
        let user = User::new(&fake, answer);
        let login = Arc::new(SsoLogin::new(
            clients(&fake),
            SsoTokenCache::for_home(home.path()),
            user.clone(),
        ));
        let advance = AutoAdvance::start(&clock);
        Self {
            fake,
            clock,
            home,
            user,
            login,
            _advance: advance,
        }
    }

    fn key(&self) -> SsoLoginKey {
        SsoLoginKey::new(START_URL, REGION).with_session_name(SESSION_NAME)
    }

    fn provider(&self) -> SsoRoleProvider {
        SsoRoleProvider::without_sink(self.login.clone())
    }

    /// The access token for `key()`, signing in as needed.
    async fn access_token(&self) -> Result<Secret> {
        self.login
            .access_token(&self.key(), self.clock.as_ref())
            .await
    }

    /// Starts `session` (moved to pending) with a new provider.
    async fn start(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        self.provider()
            .start(ctx, &pending(session, &self.clock))
            .await
    }

    fn ctx(&self) -> ActionContext {
        ActionContext::new(self.clock.clone(), Arc::new(InMemorySecretStore::new()))
    }

    fn cached(&self) -> SsoToken {
        self.login
            .cache()
            .load(SESSION_NAME)
            .unwrap()
            .expect("a cached token")
    }

    fn cache_json(&self) -> serde_json::Value {
        let path = self.login.cache().token_path(SESSION_NAME);
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }
}

fn clients(fake: &SsoFake) -> SsoClientConfig {
    SsoClientConfig::builder()
        .oidc_endpoint_url(fake.oidc_endpoint())
        .portal_endpoint_url(fake.portal_endpoint())
        .max_attempts(1)
        .build()
        .unwrap()
}

fn sso_session(name: &str, role: &str) -> Session {
    Session::new(name, SessionType::AwsSsoRole)
        .unwrap()
        .with_config(
            &SsoRoleConfig::new(START_URL, REGION, ACCOUNT, role).with_session_name(SESSION_NAME),
        )
        .unwrap()
}

fn pending(session: &Session, clock: &ManualClock) -> Session {
    let mut next = session.clone();
    next.transition(SessionStatus::Pending, clock.now())
        .unwrap();
    next
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_role_passes_the_conformance_harness() {
    let env = Env::new(Answer::Approve).await;
    let mut bad = SsoRoleConfig::new(START_URL, REGION, "12345", "Admin");
    bad.sso_session_name = Some(SESSION_NAME.into());
    let failing = Session::new("sso-bad-account", SessionType::AwsSsoRole)
        .unwrap()
        .with_config(&bad)
        .unwrap();
    let fixture = ActionFixture {
        session: sso_session("sso-admin", "Admin"),
        failing_session: Some(failing),
        ctx: env.ctx(),
        clock: env.clock.clone(),
        probe: probe(),
        pause_before_rotate: Duration::ZERO,
    };
    let provider = env.provider();
    assert_eq!(provider.session_type(), SessionType::AwsSsoRole);
    assert!(provider.capabilities().rotate);
    action_conformance(&provider, &fixture).await;
    let shared: Arc<dyn SessionAction> = Arc::new(provider);
    action_conformance(&shared, &fixture).await;

    // Two runs (start + rotate each), one sign-in.
    assert_eq!(env.fake.device_authorizations(), 1);
    assert_eq!(env.fake.registrations(), 1);
    assert_eq!(env.user.prompts(), 1);
    assert_eq!(env.fake.calls("GetRoleCredentials"), 4);
    let issued = env.fake.issued_credentials();
    assert!(
        issued
            .iter()
            .all(|c| c.role_name == "Admin" && c.account_id == ACCOUNT)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_the_issued_credentials_are_what_the_portal_returned() {
    let env = Env::new(Answer::Approve).await;
    let ctx = env.ctx();
    let session = sso_session("sso-admin", "Admin");
    let started = env.start(&ctx, &session).await.unwrap();
    let issued = env.fake.issued_credentials();
    assert_eq!(issued.len(), 1);
    let stored = AwsCredentials::load_issued(ctx.secrets.as_ref(), session.session_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.access_key_id, issued[0].access_key_id);
    assert_eq!(
        stored.secret_access_key.expose(),
        issued[0].secret_access_key
    );
    assert_eq!(
        stored.session_token.as_ref().map(Secret::expose),
        Some(issued[0].session_token.as_str())
    );
    // Epoch milliseconds on the wire, exact here.
    assert_eq!(stored.expiration, Some(issued[0].expiration));
    assert_eq!(started.expiration, Some(issued[0].expiration));

    // Stop withdraws the credentials but keeps the sign-in (shared with
    // the AWS CLI and other sessions).
    let mut stopping = started.clone();
    stopping
        .transition(SessionStatus::Stopping, env.clock.now())
        .unwrap();
    env.provider().stop(&ctx, &stopping).await.unwrap();
    assert!(
        AwsCredentials::load_issued(ctx.secrets.as_ref(), session.session_id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        env.fake
            .access_token_valid(env.cached().access_token.expose())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_device_flow_polls_through_pending_and_slow_down() {
    let env = Env::new(Answer::ApproveAfterTwoSlowDowns).await;
    let token = env.access_token().await.unwrap();
    assert!(env.fake.access_token_valid(token.expose()));

    // Poll 1 (before the prompt): pending. Then every interval (1 s), with
    // each SlowDown adding 5 s: slow down at +1, slow down at +7, token at +18.
    assert_eq!(env.fake.calls("CreateToken"), 4);
    assert_eq!(env.user.prompts(), 1);
    assert_eq!(env.user.finished.load(Ordering::SeqCst), 1);
    let waited = env.clock.now() - T0;
    assert!(
        waited >= time::Duration::seconds(18) && waited < time::Duration::seconds(30),
        "{waited}"
    );
    assert_eq!(env.fake.registrations(), 1);
    assert_eq!(env.fake.device_authorizations(), 1);

    // Cached with everything a refresh needs.
    let cached = env.cached();
    assert_eq!(cached.access_token, token);
    assert_eq!(cached.start_url.as_deref(), Some(START_URL));
    assert_eq!(cached.region.as_deref(), Some(REGION));
    assert!(cached.can_refresh(env.clock.now()));
    assert_eq!(
        cached.expires_at,
        env.clock.now().replace_nanosecond(0).unwrap() + Duration::from_secs(3600)
    );

    // Served from the cache: no calls at all.
    let again = env.access_token().await.unwrap();
    assert_eq!(again, token);
    assert_eq!(env.fake.calls("CreateToken"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_an_approved_authorization_needs_no_prompt() {
    let env = Env::new(Answer::Ignore).await;
    env.fake.set_auto_approve(true);
    env.access_token().await.unwrap();
    assert_eq!(
        env.user.prompts(),
        0,
        "the first poll already got the token"
    );
    assert_eq!(env.fake.calls("CreateToken"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_a_denied_sign_in_aborts_at_once() {
    let env = Env::new(Answer::Deny).await;
    let err = env.access_token().await.unwrap_err();
    assert_eq!(err.category(), "permission_denied", "{err}");
    assert!(err.to_string().contains("denied"), "{err}");
    assert_eq!(env.fake.calls("CreateToken"), 2);
    assert_eq!(env.user.finished.load(Ordering::SeqCst), 1);
    assert!(env.login.cache().load(SESSION_NAME).unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_an_expired_device_code_fails_clearly() {
    let env = Env::new(Answer::ExpireCode).await;
    let err = env.access_token().await.unwrap_err();
    assert_eq!(err.category(), "unauthenticated", "{err}");
    assert!(err.to_string().contains("expired"), "{err}");
    assert_eq!(env.fake.device_authorizations(), 1, "no automatic restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_polling_stops_at_the_device_code_deadline() {
    let env = Env::new(Answer::Ignore).await;
    env.fake.set_device_code_lifetime(Duration::from_secs(5));
    let err = env.access_token().await.unwrap_err();
    assert_eq!(err.category(), "unauthenticated", "{err}");
    assert!(!err.is_retryable());
    assert!(env.clock.now() - T0 <= time::Duration::seconds(6));
    assert!(env.fake.calls("CreateToken") <= 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_a_non_interactive_caller_fails_instead_of_waiting() {
    let env = Env::new(Answer::Ignore).await;
    let login = SsoLogin::new(
        clients(&env.fake),
        SsoTokenCache::for_home(env.home.path()),
        Arc::new(NonInteractivePrompter),
    );
    let err = login
        .access_token(&env.key(), env.clock.as_ref())
        .await
        .unwrap_err();
    assert_eq!(err.category(), "unauthenticated", "{err}");
    assert_eq!(env.fake.calls("CreateToken"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_an_expired_access_token_is_refreshed_after_the_401_without_a_new_sign_in() {
    let env = Env::new(Answer::Approve).await;
    let ctx = env.ctx();
    let session = sso_session("sso-admin", "Admin");
    let provider = env.provider();
    provider
        .start(&ctx, &pending(&session, &env.clock))
        .await
        .unwrap();
    let before = env.cached();
    let old_refresh = before.refresh_token.clone().unwrap();
    let create_token_calls = env.fake.calls("CreateToken");

    // The portal no longer accepts the access token, though the cache says
    // it has an hour left.
    env.fake.expire_access_tokens();
    provider
        .start(&ctx, &pending(&session, &env.clock))
        .await
        .unwrap();

    assert_eq!(env.fake.device_authorizations(), 1, "no new sign-in");
    assert_eq!(env.user.prompts(), 1);
    assert_eq!(
        env.fake.calls("CreateToken"),
        create_token_calls + 1,
        "one refresh"
    );
    assert_eq!(env.fake.calls("GetRoleCredentials"), 3, "ok, 401, ok");
    let after = env.cached();
    assert_ne!(after.access_token, before.access_token);
    let new_refresh = after.refresh_token.clone().unwrap();
    assert_ne!(
        new_refresh, old_refresh,
        "the rotated refresh token is stored"
    );
    assert!(env.fake.refresh_token_valid(new_refresh.expose()));
    assert!(!env.fake.refresh_token_valid(old_refresh.expose()));
    assert_eq!(
        env.cache_json()["refreshToken"].as_str(),
        Some(new_refresh.expose())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_a_token_inside_the_refresh_window_is_refreshed_before_use() {
    let env = Env::new(Answer::Approve).await;
    let first = env.access_token().await.unwrap();
    let calls = env.fake.calls("CreateToken");
    // 50 of its 60 minutes gone: inside the 15-minute window.
    env.clock.advance(Duration::from_secs(50 * 60));
    let second = env.access_token().await.unwrap();
    assert_ne!(second, first);
    assert_eq!(env.fake.calls("CreateToken"), calls + 1);
    assert_eq!(env.fake.device_authorizations(), 1);
    assert!(
        env.cached()
            .valid_for(env.clock.now(), Duration::from_secs(15 * 60))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_one_401_renews_the_sign_in_once_and_succeeds() {
    let env = Env::new(Answer::Approve).await;
    let ctx = env.ctx();
    let session = sso_session("sso-admin", "Admin");
    env.access_token().await.unwrap();
    env.fake
        .fail_next_call_of("GetRoleCredentials", 401, "UnauthorizedException");
    let started = env.start(&ctx, &session).await.unwrap();
    assert_eq!(started.status(), SessionStatus::Active);
    assert_eq!(env.fake.calls("GetRoleCredentials"), 2);
    assert_eq!(env.fake.device_authorizations(), 1, "renewed by refresh");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_an_ended_identity_center_session_signs_in_again_once() {
    let env = Env::new(Answer::Approve).await;
    let ctx = env.ctx();
    let session = sso_session("sso-admin", "Admin");
    env.access_token().await.unwrap();
    // Access and refresh tokens revoked: the refresh fails, a device flow
    // follows, reusing the cached registration.
    env.fake.revoke_all();
    env.start(&ctx, &session).await.unwrap();
    assert_eq!(env.fake.device_authorizations(), 2);
    assert_eq!(env.user.prompts(), 2);
    assert_eq!(env.fake.registrations(), 1, "the registration was reused");
    assert_eq!(env.fake.calls("GetRoleCredentials"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_two_401s_fail_clearly_without_a_loop() {
    let env = Env::new(Answer::Approve).await;
    let ctx = env.ctx();
    let session = sso_session("sso-admin", "Admin");
    env.access_token().await.unwrap();
    for _ in 0..2 {
        env.fake
            .fail_next_call_of("GetRoleCredentials", 401, "UnauthorizedException");
    }
    let err = env.start(&ctx, &session).await.unwrap_err();
    assert!(matches!(err, Error::Unauthenticated { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("sso-admin"), "names the session: {text}");
    assert!(text.contains("not retrying"), "{text}");
    assert_eq!(env.fake.calls("GetRoleCredentials"), 2, "exactly one retry");
    assert_eq!(env.fake.device_authorizations(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_ten_concurrent_starts_share_one_sign_in() {
    let env = Env::new(Answer::Approve).await;
    let ctx = env.ctx();
    let provider = env.provider();
    let mut tasks = Vec::new();
    for i in 0..10 {
        let role = format!("Role{i}");
        env.fake.add_role(ACCOUNT, &role);
        let session = pending(&sso_session(&format!("sso-{i}"), &role), &env.clock);
        let (provider, ctx) = (provider.clone(), ctx.clone());
        tasks.push(tokio::spawn(
            async move { provider.start(&ctx, &session).await },
        ));
    }
    for task in tasks {
        let started = task.await.unwrap().unwrap();
        assert_eq!(started.status(), SessionStatus::Active);
    }
    assert_eq!(env.fake.device_authorizations(), 1);
    assert_eq!(env.fake.registrations(), 1);
    assert_eq!(env.user.prompts(), 1);
    assert_eq!(env.fake.issued_credentials().len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_separate_managers_share_one_sign_in_too() {
    // Ten independent `SsoLogin`s over one home, as separate processes
    // would be: the lock file (and the re-read) still gives one sign-in.
    let env = Env::new(Answer::Approve).await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let login = SsoLogin::new(
            clients(&env.fake),
            SsoTokenCache::for_home(env.home.path()),
            env.user.clone(),
        );
        let (key, clock) = (env.key(), env.clock.clone());
        tasks.push(tokio::spawn(async move {
            login.access_token(&key, clock.as_ref()).await
        }));
    }
    let mut tokens = Vec::new();
    for task in tasks {
        tokens.push(task.await.unwrap().unwrap());
    }
    assert!(tokens.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(env.fake.device_authorizations(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_a_sign_in_waits_for_another_process_and_uses_its_token() {
    let env = Env::new(Answer::Approve).await;
    let cache = env.login.cache().clone();
    // "Another process" holds the sign-in lock…
    let held = session_core::private_file::lock_exclusive(
        &cache.login_lock_path(SESSION_NAME),
        Duration::from_secs(1),
    )
    .unwrap();
    let (login, key, clock) = (env.login.clone(), env.key(), env.clock.clone());
    let waiting = tokio::spawn(async move { login.access_token(&key, clock.as_ref()).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "waits for the lock");
    // …signs in and writes the cache, then unlocks.
    let minted = env.fake.mint_login(&[ACCOUNT_ACCESS_SCOPE]);
    cache
        .store(
            SESSION_NAME,
            &SsoToken {
                access_token: Secret::new(minted.access_token.clone()),
                expires_at: minted.access_token_expires_at,
                refresh_token: minted.refresh_token.clone().map(Secret::new),
                client_id: Some(minted.client_id.clone()),
                client_secret: Some(Secret::new(minted.client_secret.clone())),
                registration_expires_at: Some(minted.client_secret_expires_at),
                region: Some(REGION.into()),
                start_url: Some(START_URL.into()),
            },
        )
        .unwrap();
    drop(held);
    let token = waiting.await.unwrap().unwrap();
    assert_eq!(token.expose(), minted.access_token);
    assert_eq!(env.fake.device_authorizations(), 0);
    assert_eq!(env.fake.calls("CreateToken"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_the_aws_cli_registration_is_reused() {
    let env = Env::new(Answer::Approve).await;
    let minted = env.fake.mint_login(&[ACCOUNT_ACCESS_SCOPE]);
    let cache = env.login.cache();
    let scopes = vec![ACCOUNT_ACCESS_SCOPE.to_owned()];
    let path = cache.registration_path(START_URL, REGION, Some(&scopes), Some(SESSION_NAME));
    std::fs::create_dir_all(cache.dir()).unwrap();
    std::fs::write(
        &path,
        serde_json::json!({
            "clientId": minted.client_id,
            "clientSecret": minted.client_secret,
            "expiresAt": session_aws::sso::format_timestamp(minted.client_secret_expires_at),
            "scopes": scopes,
        })
        .to_string(),
    )
    .unwrap();
    let before = std::fs::read(&path).unwrap();
    env.access_token().await.unwrap();
    assert_eq!(
        env.fake.registrations(),
        0,
        "the CLI's registration was used"
    );
    assert_eq!(env.fake.device_authorizations(), 1);
    assert_eq!(
        env.cached().client_id.as_deref(),
        Some(minted.client_id.as_str())
    );
    assert_eq!(std::fs::read(&path).unwrap(), before, "read-only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_a_refused_registration_is_replaced() {
    let env = Env::new(Answer::Approve).await;
    env.access_token().await.unwrap();
    // The service forgot the client: the refresh and the cached
    // registration are both refused; one new registration, one sign-in.
    env.fake.expire_registrations();
    env.fake.expire_access_tokens();
    env.clock.advance(Duration::from_secs(3600));
    let token = env.access_token().await.unwrap();
    assert!(env.fake.access_token_valid(token.expose()));
    assert_eq!(env.fake.registrations(), 2);
    assert_eq!(env.fake.device_authorizations(), 2);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_the_cache_file_is_named_like_the_aws_cli_and_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new(Answer::Approve).await;
    env.access_token().await.unwrap();
    let dir = env.home.path().join(".aws/sso/cache");
    let file = dir.join("0ad374308c5a4e22f723adf10145eafad7c4031c.json");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&dir), 0o700);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    for key in [
        "accessToken",
        "expiresAt",
        "refreshToken",
        "clientId",
        "clientSecret",
        "registrationExpiresAt",
        "region",
        "startUrl",
    ] {
        assert!(json[key].is_string(), "{key} in {json:#}");
    }
    let expires_at = json["expiresAt"].as_str().unwrap();
    assert_eq!(expires_at.len(), 20, "YYYY-MM-DDTHH:MM:SSZ: {expires_at}");
    assert!(expires_at.ends_with('Z') && !expires_at.contains('.'));
    // No temporary file left behind, only the token file and its locks.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            name.starts_with("0ad374308c5a4e22f723adf10145eafad7c4031c."),
            "{name}"
        );
        assert!(!name.ends_with(".tmp"), "{name}");
    }

    // Without a session name the file is named after the start URL.
    let legacy = SsoLoginKey::new(START_URL, REGION);
    env.login
        .access_token(&legacy, env.clock.as_ref())
        .await
        .unwrap();
    let file = dir.join("2b829a45f04c9828cb45b7d092d8e4aa30818393.json");
    assert_eq!(mode(&file), 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_logout_signs_out_and_deletes_the_cache_file() {
    let env = Env::new(Answer::Approve).await;
    let token = env.access_token().await.unwrap();
    env.login.logout(&env.key()).await.unwrap();
    assert!(!env.fake.access_token_valid(token.expose()));
    assert!(env.login.cache().load(SESSION_NAME).unwrap().is_none());
    // Again: nothing cached, nothing to do.
    env.login.logout(&env.key()).await.unwrap();
    assert_eq!(env.fake.calls("Logout"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_an_unassigned_role_is_permission_denied_naming_the_session() {
    let env = Env::new(Answer::Approve).await;
    let session = sso_session("sso-nope", "NotAssigned");
    let err = env.start(&env.ctx(), &session).await.unwrap_err();
    assert_eq!(err.category(), "permission_denied", "{err}");
    assert!(err.to_string().contains("sso-nope"), "{err}");
    assert!(err.to_string().contains("NotAssigned"), "{err}");
}

/// The model's answer for a resource the portal cannot find (404
/// `ResourceNotFoundException`) reads like the real portal's unmodelled 403
/// for an unassigned role: check the account and role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_a_role_the_portal_does_not_find_is_permission_denied_too() {
    let env = Env::new(Answer::Approve).await;
    env.fake
        .fail_next_call_of("GetRoleCredentials", 404, "ResourceNotFoundException");
    let err = env
        .start(&env.ctx(), &sso_session("sso-gone", "Admin"))
        .await
        .unwrap_err();
    assert_eq!(err.category(), "permission_denied", "{err}");
    let text = err.to_string();
    assert!(text.contains("sso-gone"), "{text}");
    assert!(text.contains("role Admin in account"), "{text}");
    assert!(text.contains("ResourceNotFoundException"), "{text}");
    assert_eq!(env.fake.calls("GetRoleCredentials"), 1);
}

/// SSO-OIDC's modelled 500 `InternalServerException` is transient: a device
/// sign-in keeps polling through one, and a sign-in that cannot even start
/// says the service is unavailable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_an_oidc_server_error_is_unavailable_and_polling_survives_it() {
    let env = Env::new(Answer::Ignore).await;
    env.fake
        .fail_next_call_of("StartDeviceAuthorization", 500, "InternalServerException");
    let err = env.access_token().await.unwrap_err();
    assert_eq!(err.category(), "unavailable", "{err}");
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("InternalServerException"), "{err}");

    env.fake.set_auto_approve(true);
    env.fake
        .fail_next_call_of("CreateToken", 500, "InternalServerException");
    env.access_token().await.unwrap();
    assert_eq!(
        env.fake.calls("CreateToken"),
        2,
        "one failed poll, one granted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_logs_errors_and_debug_output_hold_no_tokens() {
    let logs = session_testkit::capture_logs();
    let env = Env::new(Answer::Approve).await;
    let ctx = env.ctx();
    let provider = env.provider();
    let session = sso_session("sso-leak", "Admin");
    provider
        .start(&ctx, &pending(&session, &env.clock))
        .await
        .unwrap();
    // Refresh after a 401, then a failure after two.
    env.fake.expire_access_tokens();
    provider
        .start(&ctx, &pending(&session, &env.clock))
        .await
        .unwrap();
    for _ in 0..2 {
        env.fake
            .fail_next_call_of("GetRoleCredentials", 401, "UnauthorizedException");
    }
    let err = provider
        .start(&ctx, &pending(&session, &env.clock))
        .await
        .unwrap_err();

    let cached = env.cached();
    let issued = env.fake.issued_credentials();
    let mut secrets = vec![
        cached.access_token.expose().to_owned(),
        cached.refresh_token.clone().unwrap().expose().to_owned(),
        cached.client_secret.clone().unwrap().expose().to_owned(),
    ];
    for creds in &issued {
        secrets.push(creds.secret_access_key.clone());
        secrets.push(creds.session_token.clone());
    }
    // Only this crate's log lines: the AWS SDK's own TRACE log of each
    // request ("transmitting request", target
    // aws_smithy_runtime::client::orchestrator) prints the portal's
    // `x-amz-sso_bearer_token` header, which smithy's redaction list lacks;
    // applications must not enable TRACE for aws_smithy_runtime.
    let ours: Vec<String> = logs
        .text()
        .lines()
        .filter(|line| line.contains("session_aws"))
        .map(str::to_owned)
        .collect();
    assert!(
        ours.iter()
            .any(|l| l.contains("refreshed the SSO access token")),
        "{ours:#?}"
    );
    let text = format!(
        "{}\n{err}\n{err:?}\n{cached:?}\n{:?}\n{provider:?}",
        ours.join("\n"),
        env.login
    );
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret leaked into:\n{text}"
        );
    }
}
