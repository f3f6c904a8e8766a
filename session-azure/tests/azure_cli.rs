//! The Azure CLI sink end to end: a device-code session signed in against
//! the loopback OAuth peer (oidc-provider, with the Azure CLI's client id)
//! writes the CLI's files, and the Azure CLI's own code (`azure-cli-core`,
//! MSAL Python, `session_testkit::readers::azure_cli`) reads them back offline: the
//! subscription, the default, the user, and the access token from the cache.
//! Stop gives the user's own files back.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use session_azure::azure_cli::AzureCliFiles;
use session_azure::{
    ACCESS_TOKEN, AZURE_CLI_CLIENT_ID, AzureConfig, AzureProvider, CredentialKind,
};
use session_core::{
    ActionContext, Clock, InMemorySecretStore, Secret, SecretKey, Session, SessionAction,
    SessionStatus, SessionType, SystemClock,
};
use session_testkit::peers::oidc::{OidcProvider, approve_device_code};
use session_testkit::readers::azure_cli::{AzureCliReader, ReadBack, ReadBackRequest, sha256_hex};

const SUB: &str = "aaaaaaaa-0000-4000-8000-00000000000a";
const BOBS_SUB: &str = "bbbbbbbb-0000-4000-8000-00000000000b";

fn moved(s: &Session, to: SessionStatus) -> Session {
    let mut next = s.clone();
    next.transition(to, SystemClock.now()).unwrap();
    next
}

async fn access_token(ctx: &ActionContext, s: &Session) -> String {
    ctx.secrets
        .get(&SecretKey::new(s.session_id, ACCESS_TOKEN).unwrap())
        .await
        .unwrap()
        .map(|t: Secret| t.expose().to_owned())
        .expect("an access token")
}

/// What `az login` as bob left: a BOM, keys this crate does not know, his
/// default subscription and tokens.
fn bobs_files(dir: &Path, tenant: &str) -> (Value, Value) {
    let profile = json!({
        "installationId": "11111111-2222-3333-4444-555555555555",
        "subscriptions": [{
            "id": BOBS_SUB, "name": "prod", "state": "Enabled",
            "user": {"name": "bob@contoso.com", "type": "user"},
            "isDefault": true, "tenantId": tenant, "environmentName": "AzureCloud",
            "homeTenantId": tenant, "tenantDisplayName": "Contoso", "managedByTenants": []
        }]
    });
    // MSAL Python's keys (see the reader's `key_mismatches`).
    let env = "login.microsoftonline.com";
    let scope = "https://management.core.windows.net//.default";
    let cache = json!({
        "AccessToken": {format!("b0b-{env}-accesstoken-{AZURE_CLI_CLIENT_ID}-{tenant}-{scope}"): {
            "credential_type": "AccessToken", "secret": "bob-at", "home_account_id": "b0b",
            "environment": env, "client_id": AZURE_CLI_CLIENT_ID, "realm": tenant,
            "target": scope, "expires_on": "1"}},
        "RefreshToken": {format!("b0b-{env}-refreshtoken-{AZURE_CLI_CLIENT_ID}--"): {
            "credential_type": "RefreshToken", "secret": "bob-rt", "home_account_id": "b0b",
            "environment": env, "client_id": AZURE_CLI_CLIENT_ID}},
        "Account": {format!("b0b-{env}-{tenant}"): {
            "home_account_id": "b0b", "environment": env, "realm": tenant,
            "username": "bob@contoso.com", "authority_type": "MSSTS"}},
        "IdToken": {},
        "AppMetadata": {}
    });
    std::fs::write(dir.join("azureProfile.json"), format!("\u{feff}{profile}")).unwrap();
    std::fs::write(dir.join("msal_token_cache.json"), cache.to_string()).unwrap();
    (profile, cache)
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(text.trim_start_matches('\u{feff}')).unwrap()
}

/// Runs the reader (a blocking subprocess) off the runtime.
async fn az_reads(az: &AzureCliReader, dir: &Path, tenant: &str) -> ReadBack {
    let az = az.clone();
    let dir = dir.to_path_buf();
    let tenant = tenant.to_owned();
    tokio::task::spawn_blocking(move || {
        az.read_back(
            &dir,
            &ReadBackRequest {
                tenant: Some(tenant),
                ..ReadBackRequest::default()
            },
        )
    })
    .await
    .unwrap()
    .expect("read_back.py runs")
}

/// The token `az account get-access-token` returns is `expected`, served
/// from the cache file without a token request and without leaving
/// loopback.
fn assert_az_uses_token(seen: &ReadBack, expected: &str) {
    assert_eq!(seen.error, None, "{seen:#?}");
    assert_eq!(seen.default_subscription.as_deref(), Some(SUB), "{seen:#?}");
    assert_eq!(seen.token_source.as_deref(), Some("cache"), "{seen:#?}");
    assert_eq!(
        seen.token_sha256.as_deref(),
        Some(sha256_hex(expected).as_str())
    );
    assert!(
        seen.requests.iter().all(|r| !r.starts_with("POST")),
        "no token request: {:?}",
        seen.requests
    );
    assert!(seen.blocked_connections.is_empty(), "{seen:#?}");
    assert!(seen.key_mismatches.is_empty(), "{seen:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn az_uses_the_session_and_stop_gives_back_the_users_files() {
    let Some(az) = AzureCliReader::find() else {
        return;
    };
    let builder = OidcProvider::builder()
        .public_client(AZURE_CLI_CLIENT_ID)
        .resource("https://management.core.windows.net/");
    let Some(p) = tokio::task::spawn_blocking(move || builder.start())
        .await
        .unwrap()
    else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".azure");
    std::fs::create_dir(&dir).unwrap();
    let (bobs_profile, bobs_cache) = bobs_files(&dir, p.tenant());

    let (tx, mut prompts) = tokio::sync::mpsc::unbounded_channel();
    let provider = AzureProvider::builder()
        .device_poll_interval(Duration::from_millis(200))
        .device_prompt(move |prompt| {
            let _ = tx.send(prompt.clone());
        })
        .azure_cli_files(AzureCliFiles::in_dir(&dir))
        .build()
        .unwrap();
    let config = AzureConfig::new(p.tenant(), AZURE_CLI_CLIENT_ID)
        .with_authority_host(p.authority_host())
        .with_insecure_loopback_authority(true)
        .with_credential(CredentialKind::DeviceCode)
        .with_subscription_id(SUB)
        .with_azure_cli(true)
        .with_azure_cli_cloud("AzureCloud");
    let session = Session::new("dev", SessionType::Azure)
        .unwrap()
        .with_config(&config)
        .unwrap();
    let ctx = ActionContext::new(Arc::new(SystemClock), Arc::new(InMemorySecretStore::new()));
    let approver = tokio::spawn(async move {
        let prompt = prompts.recv().await.expect("a device prompt");
        approve_device_code(
            prompt.verification_uri_complete.as_deref().unwrap(),
            "Alice@Contoso.com",
        )
        .await
        .expect("approve");
    });
    let active = provider
        .start(&ctx, &moved(&session, SessionStatus::Pending))
        .await
        .unwrap();
    approver.await.unwrap();
    let at1 = access_token(&ctx, &active).await;

    // `az account list / show / get-access-token` see the session.
    let seen = az_reads(&az, &dir, p.tenant()).await;
    assert_az_uses_token(&seen, &at1);
    let ids: Vec<&str> = seen
        .subscriptions
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(ids, [BOBS_SUB, SUB], "bob's subscription is still listed");
    let mine = &seen.subscriptions[1];
    assert_eq!(mine["user"]["name"], "Alice@Contoso.com");
    assert_eq!(mine["name"], "dev");
    let expires = active.expiration.unwrap().unix_timestamp();
    let az_expires = seen.token_expires_on.unwrap();
    assert!(
        (az_expires - expires).abs() <= 2,
        "{az_expires} vs {expires}"
    );
    // Nothing the session holds in secret reaches the session's config.
    let text = serde_json::to_string(&active).unwrap();
    assert!(!text.contains(&at1));
    let cache = read_json(&dir.join("msal_token_cache.json"));
    assert_eq!(
        cache["RefreshToken"].as_object().unwrap().len(),
        1,
        "only bob's"
    );

    // Rotate puts the new token where az finds it.
    let rotated = provider
        .rotate(&ctx, &moved(&active, SessionStatus::Rotating))
        .await
        .unwrap();
    let at2 = access_token(&ctx, &rotated).await;
    assert_ne!(at1, at2);
    assert_az_uses_token(&az_reads(&az, &dir, p.tenant()).await, &at2);

    // Stop: bob's files as they were (as JSON: the writer's spacing differs),
    // his subscription the default again.
    let stopped = provider
        .stop(&ctx, &moved(&rotated, SessionStatus::Stopping))
        .await
        .unwrap();
    assert_eq!(read_json(&dir.join("azureProfile.json")), bobs_profile);
    assert_eq!(read_json(&dir.join("msal_token_cache.json")), bobs_cache);
    assert!(
        std::fs::read(dir.join("azureProfile.json"))
            .unwrap()
            .starts_with(b"\xEF\xBB\xBF"),
        "the BOM az wrote is kept"
    );
    let seen = az_reads(&az, &dir, p.tenant()).await;
    assert_eq!(seen.default_subscription.as_deref(), Some(BOBS_SUB));
    assert!(
        stopped.state.is_empty(),
        "stop leaves no record of the Azure CLI files: {:?}",
        stopped.state
    );
}
