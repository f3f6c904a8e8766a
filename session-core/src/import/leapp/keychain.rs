//! The secrets Leapp keeps in the OS keychain, read through keytar's layout
//! (service `Leapp`, one item per account name; `<EMPTY>` stands for no
//! value). Feature `keyring`.
//!
//! - macOS: a generic password with that service and account, which the
//!   `keyring` crate finds as it is (the keychain asks the user once per
//!   item, since the item trusts Leapp).
//! - Windows: a generic credential whose target is `Leapp/<account>`, found
//!   through `keyring` with that target.
//! - Linux: a Secret Service item with the attributes `service` and
//!   `account`, which `keyring` does not search by (it uses `username`), so
//!   the search is made through `dbus-secret-service`, the crate `keyring`
//!   itself talks to the Secret Service with.

use crate::{Error, Result, Secret};

/// keytar's service name for Leapp.
const SERVICE: &str = "Leapp";
/// keytar's stand-in for an absent value.
const EMPTY: &str = "<EMPTY>";

/// The value Leapp stored under `account`; `None` when there is none.
///
/// # Errors
///
/// [`Error::SecretStore`] when the keychain cannot be reached or is locked.
pub fn leapp_keychain_secret(account: &str) -> Result<Option<Secret>> {
    let value = read(account)?;
    Ok(value
        .filter(|v| !v.is_empty() && v != EMPTY)
        .map(Secret::new))
}

fn keychain_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::SecretStore {
        message: format!("reading Leapp's secrets from the OS keychain: {what}: {e}"),
        source: None,
    }
}

#[cfg(any(target_os = "macos", windows))]
fn read(account: &str) -> Result<Option<String>> {
    #[cfg(windows)]
    let entry = keyring::Entry::new_with_target(&format!("{SERVICE}/{account}"), SERVICE, account);
    #[cfg(target_os = "macos")]
    let entry = keyring::Entry::new(SERVICE, account);
    let entry = entry.map_err(|e| keychain_error("no entry", e))?;
    match entry.get_password() {
        Ok(value) => Ok(Some(value)),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(keychain_error("cannot read", e)),
    }
}

#[cfg(target_os = "linux")]
fn read(account: &str) -> Result<Option<String>> {
    use dbus_secret_service::{EncryptionType, SecretService};
    let ss = SecretService::connect(EncryptionType::Dh)
        .map_err(|e| keychain_error("no Secret Service", e))?;
    let found = ss
        .search_items([("service", SERVICE), ("account", account)].into())
        .map_err(|e| keychain_error("search failed", e))?;
    let item = match (found.unlocked.first(), found.locked.first()) {
        (Some(item), _) => item,
        (None, Some(item)) => {
            item.unlock().map_err(|e| {
                keychain_error(
                    "the keyring holding them is locked; unlock it and try again",
                    e,
                )
            })?;
            item
        }
        (None, None) => return Ok(None),
    };
    let bytes = item
        .get_secret()
        .map_err(|e| keychain_error("cannot read an item", e))?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| keychain_error("an item", "not UTF-8"))
}

#[cfg(not(any(target_os = "macos", windows, target_os = "linux")))]
fn read(_account: &str) -> Result<Option<String>> {
    Ok(None)
}
