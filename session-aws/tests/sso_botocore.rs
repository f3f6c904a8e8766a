//! botocore (an independent reader and writer of the AWS CLI's SSO cache)
//! reads the token file `SsoLogin` wrote, and `SsoLogin` uses the token
//! botocore refreshed and wrote back. Skipped when the peers' Python with
//! boto3 is not available (a failure in CI).

use std::sync::Arc;
use std::time::Duration;

use session_aws::sso::{
    NonInteractivePrompter, SsoClientConfig, SsoLogin, SsoLoginKey, SsoTokenCache,
};
use session_core::{Clock, SystemClock};
use session_testkit::fakes::SsoFake;
use session_testkit::readers::botocore::Botocore;

const START_URL: &str = "https://d-123.awsapps.com/start";
const SESSION_NAME: &str = "my-sso";

const CONFIG: &str = "\
[profile dev]
sso_session = my-sso
sso_account_id = 111122223333
sso_role_name = Admin
region = eu-west-1

[sso-session my-sso]
sso_start_url = https://d-123.awsapps.com/start
sso_region = us-east-1
sso_registration_scopes = sso:account:access
";

const LOAD_TOKEN: &str = r#"
    import json
    import botocore.session
    from botocore.tokens import SSOTokenProvider
    provider = SSOTokenProvider(botocore.session.Session(profile="dev"))
    token = provider.load_token().get_frozen_token()
    print(json.dumps({"token": token.token, "expiration": str(token.expiration)}))
"#;

/// botocore's home holding `CONFIG`, an auto-approving fake and a login
/// against it (cached in that home); `None` without botocore. The fake runs
/// on the wall clock: botocore judges expiry by it.
async fn setup() -> Option<(Botocore, SsoFake, SsoLogin, SsoLoginKey)> {
    let botocore = Botocore::new()?;
    let aws = botocore.home().join(".aws");
    std::fs::create_dir_all(&aws).unwrap();
    std::fs::write(botocore.config_file(), CONFIG).unwrap();
    let key = SsoLoginKey::new(START_URL, "us-east-1").with_session_name(SESSION_NAME);
    let fake = SsoFake::start().await;
    fake.set_auto_approve(true);
    let login = SsoLogin::new(
        clients(&fake),
        SsoTokenCache::for_home(botocore.home()),
        Arc::new(NonInteractivePrompter),
    );
    Some((botocore, fake, login, key))
}

fn clients(fake: &SsoFake) -> SsoClientConfig {
    SsoClientConfig::builder()
        .endpoint_url(fake.oidc_endpoint())
        .max_attempts(1)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_botocore_reads_the_token_we_cached() {
    let Some((botocore, fake, login, key)) = setup().await else {
        return;
    };
    let token = login.access_token(&key, &SystemClock).await.unwrap();
    assert_eq!(fake.device_authorizations(), 1);

    let out: serde_json::Value = tokio::task::spawn_blocking(move || {
        let out = botocore.script(LOAD_TOKEN).run();
        out.json()
    })
    .await
    .unwrap();
    assert_eq!(out["token"].as_str(), Some(token.expose()));
    assert!(
        out["expiration"].as_str().unwrap().ends_with("+00:00"),
        "{out}"
    );
    assert_eq!(
        fake.calls("CreateToken"),
        1,
        "botocore did not need to refresh"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_we_use_the_token_botocore_refreshed_and_wrote_back() {
    let Some((botocore, fake, login, key)) = setup().await else {
        return;
    };
    let ours = login.access_token(&key, &SystemClock).await.unwrap();
    // Our token is now within botocore's 15-minute refresh window.
    let mut cached = login.cache().load(SESSION_NAME).unwrap().unwrap();
    cached.expires_at = SystemClock.now() + Duration::from_secs(5 * 60);
    login.cache().store(SESSION_NAME, &cached).unwrap();
    let old_refresh = cached.refresh_token.clone().unwrap();

    let endpoint = fake.oidc_endpoint();
    // `botocore` owns the home folder: keep it alive to the end.
    let (out, _botocore): (serde_json::Value, Botocore) = tokio::task::spawn_blocking(move || {
        let out = botocore.script(LOAD_TOKEN).endpoint_url(endpoint).run();
        (out.json(), botocore)
    })
    .await
    .unwrap();
    let theirs = out["token"].as_str().unwrap().to_owned();
    assert_ne!(theirs, ours.expose(), "botocore refreshed");
    assert!(fake.access_token_valid(&theirs));
    assert_eq!(fake.calls("CreateToken"), 2);

    // The file botocore wrote back is one we read, rotated refresh token
    // included; we serve its token without calling anything.
    let reread = login.cache().load(SESSION_NAME).unwrap().unwrap();
    assert_eq!(reread.access_token.expose(), theirs);
    let new_refresh = reread.refresh_token.clone().unwrap();
    assert_ne!(new_refresh, old_refresh);
    assert!(fake.refresh_token_valid(new_refresh.expose()));
    assert!(reread.can_refresh(SystemClock.now()));
    let token = login.access_token(&key, &SystemClock).await.unwrap();
    assert_eq!(token.expose(), theirs);
    assert_eq!(fake.calls("CreateToken"), 2);
}
