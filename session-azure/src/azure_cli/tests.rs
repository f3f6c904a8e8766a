//! Tests of the Azure CLI sink: publish and withdraw on real files.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use session_core::Secret;

use super::files::BOM;
use super::profile::{is_default, same_id, set_default};
use super::*;
use crate::{AZURE_CLI_CLIENT_ID, CredentialKind};

const TENANT: &str = "72f988bf-0000-4000-8000-000000000001";
const SUB: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const OTHER_SUB: &str = "bbbbbbbb-0000-4000-8000-000000000002";

fn publication(
    token: &str,
    make_default: bool,
    previous: Option<AzureCliPublished>,
) -> Publication {
    let config = AzureConfig::new(TENANT, AZURE_CLI_CLIENT_ID)
        .with_credential(CredentialKind::DeviceCode)
        .with_subscription_id(SUB)
        .with_azure_cli(true);
    config.validate().unwrap();
    let now = time::macros::datetime!(2030-01-01 0:00 UTC);
    Publication {
        config,
        account: SignedInAccount {
            username: "Alice@Contoso.com".into(),
            home_account_id: format!("0b1.{TENANT}"),
            local_account_id: "0b1".into(),
            tenant_id: Some(TENANT.into()),
        },
        subscription_name: "dev".into(),
        access_token: Secret::new(token),
        expires_at: now + Duration::from_secs(3600),
        now,
        make_default,
        previous,
    }
}

fn read_json(path: &Path) -> (bool, Value) {
    let bytes = std::fs::read(path).unwrap();
    let bom = bytes.starts_with(BOM);
    let body = bytes.strip_prefix(BOM).unwrap_or(&bytes);
    (bom, serde_json::from_slice(body).unwrap())
}

fn defaults(profile: &Value) -> Vec<String> {
    profile["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| is_default(e))
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

/// What `az login` leaves for another user: a BOM, keys this crate does
/// not know, another account's tokens.
fn users_own_files(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let profile = format!(
        "\u{feff}{}",
        json!({
            "installationId": "11111111-2222-3333-4444-555555555555",
            "subscriptions": [{
                "id": OTHER_SUB, "name": "prod", "state": "Enabled",
                "user": {"name": "bob@contoso.com", "type": "user"},
                "isDefault": true, "tenantId": TENANT, "environmentName": "AzureCloud",
                "homeTenantId": TENANT, "tenantDisplayName": "Contoso",
                "tenantDefaultDomain": "contoso.com", "managedByTenants": []
            }],
            "futureKey": {"kept": true}
        })
    );
    let cache = json!({
        "AccessToken": {"bob-key": {"credential_type": "AccessToken", "secret": "bob-at",
            "home_account_id": "b0b.t", "environment": "login.microsoftonline.com",
            "client_id": AZURE_CLI_CLIENT_ID}},
        "RefreshToken": {"bob-rt": {"credential_type": "RefreshToken", "secret": "bob-rt",
            "home_account_id": "b0b.t", "environment": "login.microsoftonline.com",
            "client_id": AZURE_CLI_CLIENT_ID}},
        "Account": {"bob-account": {"username": "bob@contoso.com"}},
        "IdToken": {},
        "AppMetadata": {format!("appmetadata-login.microsoftonline.com-{AZURE_CLI_CLIENT_ID}"):
            {"client_id": AZURE_CLI_CLIENT_ID, "environment": "login.microsoftonline.com",
             "family_id": "1"}}
    })
    .to_string();
    std::fs::write(dir.join(PROFILE_FILE), &profile).unwrap();
    std::fs::write(dir.join(TOKEN_CACHE_FILE), &cache).unwrap();
    (profile.into_bytes(), cache.into_bytes())
}

#[test]
fn publish_then_withdraw_in_an_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let files = AzureCliFiles::in_dir(dir.path().join("azure"));
    let record = files.publish(&publication("at-1", true, None)).unwrap();
    let (bom, profile) = read_json(&files.profile_path());
    assert!(bom, "azureProfile.json is written with a BOM, as az does");
    assert_eq!(defaults(&profile), [SUB]);
    let entry = &profile["subscriptions"][0];
    assert_eq!(
        entry["user"],
        json!({"name": "Alice@Contoso.com", "type": "user"})
    );
    assert_eq!(entry["tenantId"], TENANT);
    assert_eq!(entry["environmentName"], "AzureCloud");
    assert!(profile["installationId"].as_str().is_some());
    let (_, cache) = read_json(&files.token_cache_path());
    let home = format!("0b1.{TENANT}");
    let at_key = format!(
        "{home}-login.microsoftonline.com-accesstoken-{AZURE_CLI_CLIENT_ID}-{TENANT}-https://management.core.windows.net//.default"
    );
    assert_eq!(record.access_token_key, at_key);
    let at = &cache["AccessToken"][&at_key];
    assert_eq!(at["secret"], "at-1");
    assert_eq!(at["expires_on"], "1893459600");
    assert_eq!(at["realm"], TENANT);
    let account_key = format!("{home}-login.microsoftonline.com-{TENANT}");
    assert_eq!(
        cache["Account"][&account_key]["username"],
        "Alice@Contoso.com"
    );
    for path in [files.profile_path(), files.token_cache_path()] {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }

    files.withdraw(&record).unwrap();
    let (_, profile) = read_json(&files.profile_path());
    assert_eq!(profile["subscriptions"], json!([]));
    let (_, cache) = read_json(&files.token_cache_path());
    for map in ["AccessToken", "Account", "AppMetadata"] {
        assert_eq!(cache[map], json!({}), "{map}");
    }
    files.withdraw(&record).unwrap(); // idempotent
}

#[test]
fn other_accounts_unknown_keys_and_the_default_survive() {
    let dir = tempfile::tempdir().unwrap();
    let files = AzureCliFiles::in_dir(dir.path());
    let (profile_before, cache_before) = users_own_files(dir.path());
    let record = files.publish(&publication("at-1", true, None)).unwrap();
    assert_eq!(record.previous_default.as_deref(), Some(OTHER_SUB));
    let (bom, profile) = read_json(&files.profile_path());
    assert!(bom);
    assert_eq!(defaults(&profile), [SUB], "exactly one default");
    assert_eq!(profile["futureKey"], json!({"kept": true}));
    assert_eq!(profile["subscriptions"][0]["tenantDisplayName"], "Contoso");
    let text = std::fs::read_to_string(files.profile_path()).unwrap();
    assert!(
        text.find("installationId").unwrap() < text.find("futureKey").unwrap(),
        "key order kept: {text}"
    );
    assert_eq!(
        record.added_app_metadata_key, None,
        "az's own app metadata is reused"
    );
    let (_, cache) = read_json(&files.token_cache_path());
    assert_eq!(cache["RefreshToken"]["bob-rt"]["secret"], "bob-rt");
    assert_eq!(cache["AccessToken"]["bob-key"]["secret"], "bob-at");

    // Rotate: a new token; the user's own choice of default stands.
    let mut profile_now = profile.clone();
    for e in profile_now["subscriptions"].as_array_mut().unwrap() {
        let other = same_id(e, OTHER_SUB);
        set_default(e, other);
    }
    std::fs::write(files.profile_path(), format!("\u{feff}{profile_now}")).unwrap();
    let record = files
        .publish(&publication("at-2", false, Some(record)))
        .unwrap();
    assert_eq!(record.previous_default.as_deref(), Some(OTHER_SUB));
    let (_, profile) = read_json(&files.profile_path());
    assert_eq!(defaults(&profile), [OTHER_SUB]);
    let (_, cache) = read_json(&files.token_cache_path());
    assert_eq!(
        cache["AccessToken"][&record.access_token_key]["secret"],
        "at-2"
    );

    // Stop gives back exactly what the user had (as JSON; az reads the
    // BOM either way, and it is kept).
    files.withdraw(&record).unwrap();
    let (bom, profile) = read_json(&files.profile_path());
    assert!(bom);
    let strip =
        |b: &[u8]| -> Value { serde_json::from_slice(b.strip_prefix(BOM).unwrap_or(b)).unwrap() };
    assert_eq!(profile, strip(&profile_before));
    let (_, cache) = read_json(&files.token_cache_path());
    assert_eq!(cache, strip(&cache_before));
}

#[test]
fn the_users_own_entry_for_the_subscription_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let files = AzureCliFiles::in_dir(dir.path());
    users_own_files(dir.path());
    let mut profile: Value = read_json(&files.profile_path()).1;
    let mut mine = profile["subscriptions"][0].clone();
    mine["id"] = json!(SUB.to_uppercase());
    mine["isDefault"] = json!(false);
    profile["subscriptions"]
        .as_array_mut()
        .unwrap()
        .push(mine.clone());
    std::fs::write(files.profile_path(), profile.to_string()).unwrap();

    let record = files.publish(&publication("at-1", true, None)).unwrap();
    assert_eq!(record.previous_entry.as_ref(), Some(&mine));
    let (_, now) = read_json(&files.profile_path());
    assert_eq!(
        now["subscriptions"].as_array().unwrap().len(),
        2,
        "replaced, not added"
    );
    assert_eq!(now["subscriptions"][1]["user"]["name"], "Alice@Contoso.com");
    assert_eq!(now["subscriptions"][1]["tenantDisplayName"], "Contoso");
    files.withdraw(&record).unwrap();
    let (bom, after) = read_json(&files.profile_path());
    assert!(!bom, "a file without a BOM stays without");
    assert_eq!(after, profile);
}

#[test]
fn an_account_still_in_use_stays_after_stop() {
    let dir = tempfile::tempdir().unwrap();
    let files = AzureCliFiles::in_dir(dir.path());
    let record = files.publish(&publication("at-1", true, None)).unwrap();
    let account_key = record.added_account_key.clone().unwrap();
    // Meanwhile `az login` as the same user added its refresh token.
    let mut cache = read_json(&files.token_cache_path()).1;
    cache["RefreshToken"]["rt"] = json!({"home_account_id": format!("0b1.{TENANT}"),
        "environment": "login.microsoftonline.com", "client_id": AZURE_CLI_CLIENT_ID,
        "credential_type": "RefreshToken", "secret": "az-own-rt"});
    std::fs::write(files.token_cache_path(), cache.to_string()).unwrap();
    files.withdraw(&record).unwrap();
    let cache = read_json(&files.token_cache_path()).1;
    assert!(cache["AccessToken"].get(&record.access_token_key).is_none());
    assert!(
        cache["Account"].get(&account_key).is_some(),
        "az still uses it"
    );
    assert_eq!(cache["RefreshToken"]["rt"]["secret"], "az-own-rt");
    assert_eq!(cache["AppMetadata"].as_object().unwrap().len(), 1);
}

#[test]
fn a_scope_changed_while_active_leaves_no_stale_token() {
    let dir = tempfile::tempdir().unwrap();
    let files = AzureCliFiles::in_dir(dir.path());
    let first = files.publish(&publication("at-1", true, None)).unwrap();
    let mut next = publication("at-2", false, Some(first.clone()));
    next.config = next
        .config
        .with_scope("https://graph.microsoft.com/.default");
    let second = files.publish(&next).unwrap();
    assert_ne!(first.access_token_key, second.access_token_key);
    assert_eq!(second.added_account_key, first.added_account_key);
    let cache = read_json(&files.token_cache_path()).1;
    let tokens = cache["AccessToken"].as_object().unwrap();
    assert_eq!(
        tokens.keys().collect::<Vec<_>>(),
        [&second.access_token_key]
    );
    files.withdraw(&second).unwrap();
    let cache = read_json(&files.token_cache_path()).1;
    assert_eq!(cache["AccessToken"], json!({}));
    assert_eq!(cache["Account"], json!({}));
}

#[test]
fn an_unreadable_file_is_named_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let files = AzureCliFiles::in_dir(dir.path());
    let (_, cache_before) = users_own_files(dir.path());
    std::fs::write(files.profile_path(), "\u{feff}{\"subscriptions\": [").unwrap();
    let err = files.publish(&publication("at-1", true, None)).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(PROFILE_FILE) && text.contains("line 1"),
        "{text}"
    );
    assert_eq!(
        std::fs::read(files.token_cache_path()).unwrap(),
        cache_before
    );
    std::fs::write(files.profile_path(), "{\"subscriptions\": {}}").unwrap();
    let err = files.publish(&publication("at-1", true, None)).unwrap_err();
    assert!(
        err.to_string()
            .contains("\"subscriptions\" is not an array"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(files.token_cache_path()).unwrap(),
        cache_before
    );
}

#[test]
fn a_symlinked_profile_stays_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real-profile.json");
    std::fs::write(&real, "{}").unwrap();
    std::os::unix::fs::symlink(&real, dir.path().join(PROFILE_FILE)).unwrap();
    let files = AzureCliFiles::in_dir(dir.path());
    files.publish(&publication("at-1", true, None)).unwrap();
    assert!(
        std::fs::symlink_metadata(files.profile_path())
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(defaults(&read_json(&real).1), [SUB]);
}

#[test]
fn from_env_iter_follows_azure_config_dir_then_home() {
    let files = |pairs: &[(&str, &str)]| {
        AzureCliFiles::from_env_iter(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    };
    let f = files(&[("HOME", "/h")]).unwrap();
    assert_eq!(f.dir(), Path::new("/h/.azure"));
    let f = files(&[("HOME", "/h"), ("AZURE_CONFIG_DIR", "~/az")]).unwrap();
    assert_eq!(f.dir(), Path::new("/h/az"));
    let f = files(&[("AZURE_CONFIG_DIR", "/x")]).unwrap();
    assert_eq!(f.token_cache_path(), Path::new("/x/msal_token_cache.json"));
    let f = files(&[("HOME", "/h"), ("AZURE_CONFIG_DIR", "")]).unwrap();
    assert_eq!(f.dir(), Path::new("/h/.azure"), "empty counts as unset");
    let err = files(&[]).unwrap_err();
    assert!(err.to_string().contains("HOME"), "{err}");
}
