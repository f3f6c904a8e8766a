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
//!
//! # Layout of this module
//!
//! - `files`: [`AzureCliFiles`], the CLI's directory: its lock, reading the
//!   JSON files, the atomic writes and the restore when the second write
//!   fails.
//! - `profile`: the edits of `azureProfile.json` (subscriptions, the
//!   default).
//! - `token_cache`: the edits of the MSAL token cache (MSAL Python's keys,
//!   the access token, account and app metadata).

mod files;
mod profile;
#[cfg(test)]
mod tests;
mod token_cache;

use session_core::{Error, Result, Secret};
use time::OffsetDateTime;

use crate::{AzureCliPublished, AzureConfig, SignedInAccount};
use files::{JsonFile, write_both};
use profile::{publish_profile, withdraw_profile};
use token_cache::{MsalIdentity, publish_cache, withdraw_cache};

pub use files::{
    AZURE_CONFIG_DIR_ENV, AzureCliFiles, DEFAULT_LOCK_TIMEOUT, LOCK_FILE, PROFILE_FILE,
    TOKEN_CACHE_FILE,
};

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
}
