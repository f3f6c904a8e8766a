//! The Azure CLI sink (feature `azure-cli`): an
//! [`azure_cli`](crate::AzureConfig::azure_cli) session shows up in `az`.
//!
//! # What it writes
//!
//! In the CLI's directory ([`AzureCliFiles::from_env`]: `$AZURE_CONFIG_DIR`,
//! else `~/.azure`):
//!
//! - `azureProfile.json`: the session's subscription, with the signed-in
//!   user, the tenant and the CLI cloud name; on start it becomes the
//!   default subscription (exactly one entry has `isDefault`). The file
//!   keeps its UTF-8 BOM (the CLI writes one), its other subscriptions and
//!   every key this crate does not know.
//! - `msal_token_cache.json`: the session's access token, its MSAL
//!   `Account` and the CLI's `AppMetadata`, under the keys MSAL Python (which
//!   the CLI uses) derives from the account, the authority host, the
//!   client id, the tenant and the scope. Other entries are left as they
//!   are.
//!
//! Rotate writes the new access token (and does not take the default back if
//! the user picked another subscription meanwhile). Stop removes the
//! subscription (or gives back the entry the user had for it before), makes
//! the previous default the default again, and removes the access token and
//! the account and app metadata the sink added, unless other tokens in the
//! cache still use them.
//!
//! # Policy
//!
//! - **Client id.** The CLI looks up tokens only under its own client id,
//!   [`AZURE_CLI_CLIENT_ID`](crate::AZURE_CLI_CLIENT_ID), so such a session
//!   signs in as the CLI does (device code with that public client). Tokens
//!   of another application would be invisible to `az`.
//! - **No refresh token in the CLI's files.** Only the access token is
//!   written: the long-lived refresh token stays in the session's secret
//!   store. `az` works while the session is active and rotated; after stop
//!   it asks for `az login`, as with any signed-out account.
//! - **User sign-ins only.** For a service principal the CLI needs the
//!   client secret in its own plaintext `service_principal_entries.json`;
//!   this sink does not spread the secret there.
//! - **Windows.** The CLI on Windows keeps its token cache encrypted
//!   (`msal_token_cache.bin`, DPAPI) or in the WAM broker, and does not read
//!   `msal_token_cache.json`; the sink is for Linux and macOS.
//!
//! # How the files are edited
//!
//! Both edits happen under an exclusive lock on
//! `msal_token_cache.json.lockfile`, the lock file the CLI itself takes
//! (through `msal-extensions`) around cache writes. Each file is read and
//! parsed first; a file that is not the JSON object expected is never
//! rewritten and the error names it. Both new contents are prepared before
//! anything is written; each file is then replaced atomically (temporary
//! file, rename) with mode 0600, and if the second write fails the first
//! file gets its old bytes back. A file whose content does not change is not
//! written. Symlinked files stay links: their target is replaced.
//!
//! Written by hand: there is no Rust crate for the Azure CLI's files, and
//! the MSAL cache crates do not edit a foreign cache in place.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value, json};
use session_core::private_file::{self, LockError};
use session_core::{Error, Result, Secret};
use time::OffsetDateTime;

use crate::{AzureCliPublished, AzureConfig, SignedInAccount};

/// The variable naming the CLI's directory.
pub const AZURE_CONFIG_DIR_ENV: &str = "AZURE_CONFIG_DIR";
/// The subscriptions file.
pub const PROFILE_FILE: &str = "azureProfile.json";
/// The MSAL token cache (Linux, macOS).
pub const TOKEN_CACHE_FILE: &str = "msal_token_cache.json";
/// The lock file the CLI takes around cache writes (`msal-extensions`).
pub const LOCK_FILE: &str = "msal_token_cache.json.lockfile";
/// How long an edit waits for another writer's lock by default.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The Azure CLI's directory, where the sink writes.
///
/// ```no_run
/// use session_azure::azure_cli::AzureCliFiles;
/// # fn main() -> session_core::Result<()> {
/// let files = AzureCliFiles::from_env()?;
/// println!("{}", files.profile_path().display());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AzureCliFiles {
    dir: PathBuf,
    lock_timeout: Duration,
}

/// What to publish for one session.
pub(crate) struct Publication {
    pub(crate) config: AzureConfig,
    pub(crate) account: SignedInAccount,
    /// The subscription's display name in `az account list`.
    pub(crate) subscription_name: String,
    pub(crate) access_token: Secret,
    pub(crate) expires_at: OffsetDateTime,
    pub(crate) now: OffsetDateTime,
    /// Start makes the subscription the default; rotate leaves the choice.
    pub(crate) make_default: bool,
    /// What an earlier publish of this session recorded.
    pub(crate) previous: Option<AzureCliPublished>,
}

impl Publication {
    /// The tenant of the account (the ID token's `tid`), else the
    /// configured one: the profile's `tenantId` and the cache's `realm`,
    /// which must agree for `az` to find the token.
    fn tenant(&self) -> &str {
        self.account
            .tenant_id
            .as_deref()
            .unwrap_or(&self.config.tenant_id)
    }
}

impl AzureCliFiles {
    /// The directory the CLI of this process's environment uses:
    /// `$AZURE_CONFIG_DIR` (a leading `~` expanded), else `~/.azure`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when the path needs the home directory and it
    /// is unknown.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var_os(name))
    }

    /// [`from_env`](Self::from_env) with the variables given by `lookup`
    /// (`AZURE_CONFIG_DIR`, `HOME`).
    ///
    /// # Errors
    ///
    /// As [`from_env`](Self::from_env).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<OsString>) -> Result<Self> {
        let home = || {
            lookup("HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from)
                .ok_or_else(|| {
                    Error::invalid_input(
                        AZURE_CONFIG_DIR_ENV,
                        "the Azure CLI directory needs HOME (or set AZURE_CONFIG_DIR)",
                    )
                })
        };
        let dir = match lookup(AZURE_CONFIG_DIR_ENV).filter(|d| !d.is_empty()) {
            Some(dir) => {
                let text = dir.to_string_lossy();
                if text == "~" {
                    home()?
                } else if let Some(rest) = text.strip_prefix("~/") {
                    home()?.join(rest)
                } else {
                    PathBuf::from(dir)
                }
            }
            None => home()?.join(".azure"),
        };
        Ok(Self::in_dir(dir))
    }

    /// The files in `dir`.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
        }
    }

    /// How long an edit waits for the lock ([`DEFAULT_LOCK_TIMEOUT`]).
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `azureProfile.json`.
    pub fn profile_path(&self) -> PathBuf {
        self.dir.join(PROFILE_FILE)
    }

    /// `msal_token_cache.json`.
    pub fn token_cache_path(&self) -> PathBuf {
        self.dir.join(TOKEN_CACHE_FILE)
    }

    /// Writes the session's subscription and access token; returns what to
    /// record for [`withdraw`](Self::withdraw).
    pub(crate) fn publish(&self, p: &Publication) -> Result<AzureCliPublished> {
        let _lock = self.lock()?;
        let mut profile = JsonFile::read(&self.profile_path())?;
        let mut cache = JsonFile::read(&self.token_cache_path())?;
        let subscription_id = p
            .config
            .subscription_id
            .clone()
            .ok_or_else(|| Error::invalid_input("subscriptionId", "is not set"))?;
        // A record of another subscription, or of other cache keys (the
        // config or the account changed while active): remove what it
        // names first.
        let mut previous = p.previous.as_ref();
        if let Some(rec) = previous
            && !rec.subscription_id.eq_ignore_ascii_case(&subscription_id)
        {
            withdraw_profile(&mut profile, rec)?;
            withdraw_cache(&mut cache, rec)?;
            previous = None;
        }
        let access_token_key = MsalIdentity::of(p)?.access_token_key();
        let previous_cache = previous.filter(|rec| rec.access_token_key == access_token_key);
        if let (Some(rec), None) = (previous, previous_cache) {
            withdraw_cache(&mut cache, rec)?;
        }
        let (previous_entry, previous_default) =
            publish_profile(&mut profile, p, &subscription_id, previous)?;
        let keys = publish_cache(&mut cache, p)?;
        let record = AzureCliPublished {
            dir: self.dir.display().to_string(),
            subscription_id,
            previous_entry,
            previous_default,
            access_token_key: keys.access_token,
            added_account_key: previous_cache
                .and_then(|r| r.added_account_key.clone())
                .or(keys.added_account),
            added_app_metadata_key: previous_cache
                .and_then(|r| r.added_app_metadata_key.clone())
                .or(keys.added_app_metadata),
        };
        // The token first, so `az` never lists an account it has no token for.
        write_both(&cache, &profile)?;
        Ok(record)
    }

    /// Removes what [`publish`](Self::publish) recorded in `record`;
    /// `Ok` when it is already gone.
    pub(crate) fn withdraw(&self, record: &AzureCliPublished) -> Result<()> {
        let _lock = self.lock()?;
        let mut profile = JsonFile::read(&self.profile_path())?;
        let mut cache = JsonFile::read(&self.token_cache_path())?;
        withdraw_profile(&mut profile, record)?;
        withdraw_cache(&mut cache, record)?;
        // The subscription first, so `az` never lists an account without
        // its token.
        write_both(&profile, &cache)
    }

    fn lock(&self) -> Result<std::fs::File> {
        let path = self.dir.join(LOCK_FILE);
        private_file::lock_exclusive(&path, self.lock_timeout).map_err(|e| match e {
            LockError::TimedOut => Error::Timeout {
                target: path.display().to_string(),
                after: self.lock_timeout,
            },
            LockError::Io(e) => io_error(&path, "cannot lock", e),
        })
    }
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::Storage {
        path: path.to_path_buf(),
        message: format!("{what}: {e}"),
        source: Some(std::sync::Arc::new(e)),
    }
}

/// One JSON file: its parsed object, whether it had a BOM, its bytes.
struct JsonFile {
    /// The path written (a symlink's target).
    path: PathBuf,
    original: Option<Vec<u8>>,
    bom: bool,
    root: Map<String, Value>,
}

impl JsonFile {
    fn read(path: &Path) -> Result<Self> {
        let path = match std::fs::canonicalize(path) {
            Ok(real) => real,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => path.to_path_buf(),
            Err(e) => return Err(io_error(path, "cannot resolve", e)),
        };
        let original = match std::fs::read(&path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_error(&path, "cannot read", e)),
        };
        let (bom, body) = match &original {
            Some(bytes) => match bytes.strip_prefix(BOM) {
                Some(rest) => (true, rest),
                None => (false, bytes.as_slice()),
            },
            None => (false, &[][..]),
        };
        let root = if body.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(map)) => map,
                Ok(_) => return Err(unreadable(&path, "it is not a JSON object")),
                Err(e) => {
                    return Err(Error::Corrupt {
                        path,
                        kind: CORRUPT_KIND.into(),
                        line: e.line(),
                        column: e.column(),
                        message: e.to_string(),
                    });
                }
            }
        };
        Ok(Self {
            path,
            original,
            bom,
            root,
        })
    }

    /// The new bytes, or `None` when the content did not change.
    fn new_bytes(&self, bom_when_new: bool, pretty: bool) -> Result<Option<Vec<u8>>> {
        let value = Value::Object(self.root.clone());
        if let Some(original) = &self.original {
            let body = original.strip_prefix(BOM).unwrap_or(original);
            if serde_json::from_slice::<Value>(body).ok().as_ref() == Some(&value) {
                return Ok(None);
            }
        }
        let text = if pretty {
            serde_json::to_vec_pretty(&value)
        } else {
            serde_json::to_vec(&value)
        }
        .map_err(|e| io_error(&self.path, "cannot serialize", e.into()))?;
        let bom = if self.original.is_some() {
            self.bom
        } else {
            bom_when_new
        };
        let mut bytes = Vec::with_capacity(text.len() + 3);
        if bom {
            bytes.extend_from_slice(BOM);
        }
        bytes.extend_from_slice(&text);
        Ok(Some(bytes))
    }

    fn array(&mut self, key: &str) -> Result<&mut Vec<Value>> {
        let path = self.path.clone();
        match self
            .root
            .entry(key)
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            Value::Array(items) => Ok(items),
            _ => Err(unreadable(&path, &format!("\"{key}\" is not an array"))),
        }
    }

    fn object(&mut self, key: &str) -> Result<&mut Map<String, Value>> {
        let path = self.path.clone();
        match self
            .root
            .entry(key)
            .or_insert_with(|| Value::Object(Map::new()))
        {
            Value::Object(map) => Ok(map),
            _ => Err(unreadable(&path, &format!("\"{key}\" is not an object"))),
        }
    }
}

/// What [`Error::Corrupt`] calls the files.
const CORRUPT_KIND: &str = "Azure CLI JSON file";

fn unreadable(path: &Path, why: &str) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        kind: CORRUPT_KIND.into(),
        line: 0,
        column: 0,
        message: why.to_owned(),
    }
}

/// Writes `first` then `second` (each only if changed); if the second write
/// fails, `first` gets its old bytes back.
fn write_both(first: &JsonFile, second: &JsonFile) -> Result<()> {
    let replace = |file: &JsonFile, bytes: &[u8]| {
        if let Some(dir) = file.path.parent() {
            private_file::create_private_dir(dir)
                .map_err(|e| io_error(dir, "cannot create the directory", e))?;
        }
        private_file::replace_atomically(&file.path, bytes, || {})
            .map_err(|e| io_error(&file.path, e.step, e.error))
    };
    let is_profile = |f: &JsonFile| f.path.file_name().is_some_and(|n| n == PROFILE_FILE);
    let first_bytes = first.new_bytes(is_profile(first), !is_profile(first))?;
    let second_bytes = second.new_bytes(is_profile(second), !is_profile(second))?;
    if let Some(bytes) = &first_bytes {
        replace(first, bytes)?;
    }
    if let Some(bytes) = &second_bytes
        && let Err(e) = replace(second, bytes)
    {
        if first_bytes.is_some() {
            let undo = match &first.original {
                Some(old) => replace(first, old),
                None => std::fs::remove_file(&first.path)
                    .map_err(|e| io_error(&first.path, "cannot remove", e)),
            };
            if let Err(undo) = undo {
                tracing::error!(file = %first.path.display(), error = %undo, "could not restore the file after a failed edit");
            }
        }
        return Err(e);
    }
    Ok(())
}

fn same_id(entry: &Value, id: &str) -> bool {
    entry
        .get("id")
        .and_then(Value::as_str)
        .is_some_and(|e| e.eq_ignore_ascii_case(id))
}

fn is_default(entry: &Value) -> bool {
    entry.get("isDefault").and_then(Value::as_bool) == Some(true)
}

fn set_default(entry: &mut Value, default: bool) {
    if let Value::Object(map) = entry {
        map.insert("isDefault".into(), Value::Bool(default));
    }
}

/// Adds or updates the subscription; returns the entry that was there
/// before and the previous default (from `previous` on a re-publish).
fn publish_profile(
    profile: &mut JsonFile,
    p: &Publication,
    subscription_id: &str,
    previous: Option<&AzureCliPublished>,
) -> Result<(Option<Value>, Option<String>)> {
    let tenant = p.tenant();
    let cloud = p.config.azure_cli_cloud_name()?;
    if !profile.root.contains_key("installationId") {
        profile.root.insert(
            "installationId".into(),
            Value::String(uuid::Uuid::new_v4().to_string()),
        );
    }
    let subs = profile.array("subscriptions")?;
    let index = subs.iter().position(|e| same_id(e, subscription_id));
    let (previous_entry, previous_default) = match previous {
        Some(rec) => (rec.previous_entry.clone(), rec.previous_default.clone()),
        None => (
            index.map(|i| subs[i].clone()),
            subs.iter()
                .find(|e| is_default(e) && !same_id(e, subscription_id))
                .and_then(|e| e.get("id").and_then(Value::as_str))
                .map(str::to_owned),
        ),
    };
    let mut entry = match index {
        Some(i) => subs.remove(i),
        None => Value::Object(Map::new()),
    };
    let was_default = is_default(&entry);
    let Value::Object(map) = &mut entry else {
        return Err(unreadable(&profile.path, "a subscription is not an object"));
    };
    for (key, value) in [
        ("id", json!(subscription_id)),
        ("name", json!(p.subscription_name)),
        ("state", json!("Enabled")),
        ("user", json!({"name": p.account.username, "type": "user"})),
        ("tenantId", json!(tenant)),
        ("environmentName", json!(cloud)),
        ("homeTenantId", json!(tenant)),
    ] {
        map.insert(key.into(), value);
    }
    map.entry("managedByTenants").or_insert_with(|| json!([]));
    let subs = profile.array("subscriptions")?;
    let default = p.make_default || was_default || !subs.iter().any(is_default);
    if default {
        subs.iter_mut().for_each(|e| set_default(e, false));
    }
    set_default(&mut entry, default);
    match index {
        Some(i) => subs.insert(i, entry),
        None => subs.push(entry),
    }
    Ok((previous_entry, previous_default))
}

/// Removes (or restores) the subscription; the default moves back to the
/// previous one when the removed entry was the default.
fn withdraw_profile(profile: &mut JsonFile, record: &AzureCliPublished) -> Result<()> {
    let subs = profile.array("subscriptions")?;
    let Some(index) = subs
        .iter()
        .position(|e| same_id(e, &record.subscription_id))
    else {
        return Ok(());
    };
    let removed = subs.remove(index);
    let restored = record.previous_entry.clone().map(|mut old| {
        let was_default = is_default(&old);
        set_default(&mut old, false);
        subs.insert(index, old);
        was_default
    });
    if is_default(&removed) && !subs.iter().any(is_default) {
        let pick = record
            .previous_default
            .as_deref()
            .and_then(|id| subs.iter().position(|e| same_id(e, id)))
            .or(match restored {
                Some(true) => Some(index),
                _ => None,
            })
            .or(if subs.is_empty() { None } else { Some(0) });
        if let Some(i) = pick {
            set_default(&mut subs[i], true);
        }
    }
    Ok(())
}

/// The cache keys written.
struct CacheKeys {
    access_token: String,
    added_account: Option<String>,
    added_app_metadata: Option<String>,
}

fn epoch(t: OffsetDateTime) -> Value {
    Value::String(t.unix_timestamp().to_string())
}

/// The fields MSAL keys the session's cache entries by.
struct MsalIdentity<'a> {
    home: &'a str,
    environment: String,
    realm: &'a str,
    client: &'a str,
    target: &'a str,
}

impl<'a> MsalIdentity<'a> {
    fn of(p: &'a Publication) -> Result<Self> {
        Ok(Self {
            home: &p.account.home_account_id,
            environment: p.config.authority_environment()?,
            realm: p.tenant(),
            client: &p.config.client_id,
            target: p.config.scope(),
        })
    }

    // MSAL Python's keys: fields joined with '-', lower-cased.

    fn access_token_key(&self) -> String {
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
fn publish_cache(cache: &mut JsonFile, p: &Publication) -> Result<CacheKeys> {
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
fn withdraw_cache(cache: &mut JsonFile, record: &AzureCliPublished) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

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
        let strip = |b: &[u8]| -> Value {
            serde_json::from_slice(b.strip_prefix(BOM).unwrap_or(b)).unwrap()
        };
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
    fn from_lookup_follows_azure_config_dir_then_home() {
        let lookup = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        let f = AzureCliFiles::from_lookup(lookup(&[("HOME", "/h")])).unwrap();
        assert_eq!(f.dir(), Path::new("/h/.azure"));
        let f = AzureCliFiles::from_lookup(lookup(&[("HOME", "/h"), ("AZURE_CONFIG_DIR", "~/az")]))
            .unwrap();
        assert_eq!(f.dir(), Path::new("/h/az"));
        let f = AzureCliFiles::from_lookup(lookup(&[("AZURE_CONFIG_DIR", "/x")])).unwrap();
        assert_eq!(f.token_cache_path(), Path::new("/x/msal_token_cache.json"));
        let err = AzureCliFiles::from_lookup(lookup(&[])).unwrap_err();
        assert!(err.to_string().contains("HOME"), "{err}");
    }
}
