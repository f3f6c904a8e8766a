//! Editing the MSAL token cache (`msal_token_cache.json`): the session's
//! access token, and the account and app metadata it needs, under MSAL
//! Python's keys.

use serde_json::{Value, json};
use session_core::Result;
use time::OffsetDateTime;

use super::Publication;
use super::files::JsonFile;
use crate::AzureCliPublished;

/// The cache keys written.
pub(super) struct CacheKeys {
    pub(super) access_token: String,
    pub(super) added_account: Option<String>,
    pub(super) added_app_metadata: Option<String>,
}

fn epoch(t: OffsetDateTime) -> Value {
    Value::String(t.unix_timestamp().to_string())
}

/// The fields MSAL keys the session's cache entries by.
pub(super) struct MsalIdentity<'a> {
    home: &'a str,
    environment: String,
    realm: &'a str,
    client: &'a str,
    target: &'a str,
}

impl<'a> MsalIdentity<'a> {
    pub(super) fn of(p: &'a Publication) -> Result<Self> {
        Ok(Self {
            home: &p.account.home_account_id,
            environment: p.config.authority_environment()?,
            realm: p.tenant(),
            client: &p.config.client_id,
            target: p.config.scope(),
        })
    }

    // MSAL Python's keys: fields joined with '-', lower-cased.

    pub(super) fn access_token_key(&self) -> String {
        let Self {
            home,
            environment,
            realm,
            client,
            target,
        } = self;
        format!("{home}-{environment}-accesstoken-{client}-{realm}-{target}").to_lowercase()
    }

    fn account_key(&self) -> String {
        format!("{}-{}-{}", self.home, self.environment, self.realm).to_lowercase()
    }

    fn app_metadata_key(&self) -> String {
        format!("appmetadata-{}-{}", self.environment, self.client).to_lowercase()
    }
}

/// Writes the access token, and the account and app metadata if missing.
pub(super) fn publish_cache(cache: &mut JsonFile, p: &Publication) -> Result<CacheKeys> {
    let id = MsalIdentity::of(p)?;
    let MsalIdentity {
        home,
        environment,
        realm,
        client,
        target,
    } = &id;
    let (access_token_key, account_key, app_key) = (
        id.access_token_key(),
        id.account_key(),
        id.app_metadata_key(),
    );
    cache.object("AccessToken")?.insert(
        access_token_key.clone(),
        json!({
            "credential_type": "AccessToken",
            "secret": p.access_token.expose(),
            "home_account_id": home,
            "environment": environment,
            "client_id": client,
            "target": target,
            "realm": realm,
            "token_type": "Bearer",
            "cached_at": epoch(p.now),
            "expires_on": epoch(p.expires_at),
            "extended_expires_on": epoch(p.expires_at),
        }),
    );
    let accounts = cache.object("Account")?;
    let added_account = (!accounts.contains_key(&account_key)).then(|| {
        accounts.insert(
            account_key.clone(),
            json!({
                "home_account_id": home,
                "environment": environment,
                "realm": realm,
                "local_account_id": p.account.local_account_id,
                "username": p.account.username,
                "authority_type": "MSSTS",
            }),
        );
        account_key
    });
    let apps = cache.object("AppMetadata")?;
    let added_app_metadata = (!apps.contains_key(&app_key)).then(|| {
        apps.insert(
            app_key.clone(),
            json!({"client_id": client, "environment": environment}),
        );
        app_key
    });
    for map in ["IdToken", "RefreshToken"] {
        cache.object(map)?;
    }
    Ok(CacheKeys {
        access_token: access_token_key,
        added_account,
        added_app_metadata,
    })
}

/// Removes the access token, and the account and app metadata the sink
/// added once no other token uses them.
pub(super) fn withdraw_cache(cache: &mut JsonFile, record: &AzureCliPublished) -> Result<()> {
    let removed = cache
        .object("AccessToken")?
        .remove(&record.access_token_key);
    let field = |v: &Value, name: &str| v.get(name).and_then(Value::as_str).map(str::to_owned);
    let in_use = |cache: &mut JsonFile, a: &str, b: &str, va: &str, vb: &str| -> Result<bool> {
        for map in ["AccessToken", "RefreshToken", "IdToken"] {
            if cache.object(map)?.values().any(|t| {
                field(t, a).is_some_and(|x| x.eq_ignore_ascii_case(va))
                    && field(t, b).is_some_and(|x| x.eq_ignore_ascii_case(vb))
            }) {
                return Ok(true);
            }
        }
        Ok(false)
    };
    if let Some(key) = &record.added_account_key {
        let account = cache.object("Account")?.get(key).cloned();
        if let Some(account) = account {
            let home = field(&account, "home_account_id").unwrap_or_default();
            let env = field(&account, "environment").unwrap_or_default();
            if !in_use(cache, "home_account_id", "environment", &home, &env)? {
                cache.object("Account")?.remove(key);
            }
        }
    }
    if let Some(key) = &record.added_app_metadata_key {
        let app = cache.object("AppMetadata")?.get(key).cloned();
        if let Some(app) = app {
            let client = field(&app, "client_id").unwrap_or_default();
            let env = field(&app, "environment").unwrap_or_default();
            if !in_use(cache, "client_id", "environment", &client, &env)? {
                cache.object("AppMetadata")?.remove(key);
            }
        }
    }
    if removed.is_none() {
        tracing::debug!(key = %record.access_token_key, "the Azure CLI cache no longer had the session's access token");
    }
    Ok(())
}
