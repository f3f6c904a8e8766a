//! Secrets in the operating system's keychain, through the `keyring` crate.
//!
//! | platform | store |
//! |---|---|
//! | macOS | the login Keychain (generic passwords) |
//! | Windows | Credential Manager (generic credentials) |
//! | Linux | kernel keyutils as a cache plus the D-Bus Secret Service (GNOME Keyring, KWallet) for persistence; libdbus is compiled in (`vendored`), so no system development package is needed to build |
//!
//! # Entries
//!
//! Every secret is one keychain entry with service = the store's service
//! name (default `session-sdk`) and user = `<session id>/<name>`.
//!
//! Keychains cannot list their entries, so each session with at least one
//! secret also has an index entry, user = `<session id>/#index`, holding a
//! JSON array of that session's names (not secret). `#` is not allowed in
//! secret names, so the index can never collide with a secret.
//! [`names`](SecretStore::names) reads the index;
//! [`delete_session`](SecretStore::delete_session) deletes every entry the
//! index names, then the index.
//!
//! A `put` adds the name to the index before it stores the value (and takes
//! it out again if storing fails), so every stored value is reachable from
//! the index and `delete_session` cannot miss one.
//!
//! # Limits
//!
//! - Index updates are serialized within one store instance. Two processes
//!   (or two instances) adding names to the *same session* at the same moment
//!   can lose an index update: the secret is stored but not listed. Use one
//!   store per process, or the encrypted file store when several processes
//!   write one session's secrets concurrently.
//! - Platforms limit value sizes: Windows Credential Manager holds at most
//!   2560 bytes (the `keyring` crate stores UTF-16, so about 1280
//!   characters), keyutils about 32 KiB. A longer value is refused with
//!   [`Error::SecretStore`].
//! - On Linux the Secret Service needs a D-Bus session bus and an unlocked
//!   collection; headless machines should use
//!   [`EncryptedFileSecretStore`](super::EncryptedFileSecretStore).

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex};

use keyring::{CredentialBuilder, Entry};

use super::{SecretKey, SecretStore};
use crate::{Error, Result, Secret, SessionId};

/// A [`SecretStore`] in the OS keychain: macOS Keychain, Windows Credential
/// Manager, Linux Secret Service / keyutils (feature `keyring`).
///
/// - **Entries**: service = [`service`](Self::service) (default
///   `session-sdk`), user = `<session id>/<name>`.
/// - **Index**: keychains cannot list entries, so each session with secrets
///   also has the entry `<session id>/#index` holding a JSON array of its
///   names (`#` cannot occur in a secret name). [`names`](SecretStore::names)
///   reads it and [`delete_session`](SecretStore::delete_session) deletes what
///   it lists. Index updates are serialized within one instance only: two
///   processes adding names to the same session at the same moment can lose
///   an index update.
/// - **Limits**: Windows Credential Manager holds at most 2560 bytes per
///   value (UTF-16, so about 1280 characters), keyutils about 32 KiB; longer
///   values fail with [`Error::SecretStore`]. On Linux the Secret Service
///   needs a D-Bus session bus and an unlocked collection; headless machines
///   should use [`EncryptedFileSecretStore`](super::EncryptedFileSecretStore).
/// - Every keychain call runs in `tokio::task::spawn_blocking`. Errors name
///   the service and entry, never a value.
///
/// ```no_run
/// use session_core::secret_store::KeyringSecretStore;
/// let store = KeyringSecretStore::new().with_service("my-tool");
/// ```
pub struct KeyringSecretStore {
    inner: Arc<Inner>,
}

struct Inner {
    service: String,
    /// `None`: the `keyring` crate's default (the platform store, or what the
    /// application installed with `keyring::set_default_credential_builder`).
    builder: Option<Arc<CredentialBuilder>>,
    /// Serializes index read-modify-writes within this instance.
    index_lock: Mutex<()>,
}

impl KeyringSecretStore {
    /// The service name used unless [`with_service`](Self::with_service)
    /// sets another.
    pub const DEFAULT_SERVICE: &'static str = "session-sdk";

    /// A store under the service name [`DEFAULT_SERVICE`](Self::DEFAULT_SERVICE),
    /// using the platform's keychain.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                service: Self::DEFAULT_SERVICE.to_owned(),
                builder: None,
                index_lock: Mutex::new(()),
            }),
        }
    }

    /// Uses `service` as the keychain service name (for example one per
    /// application or per workspace).
    pub fn with_service(self, service: impl Into<String>) -> Self {
        self.map_inner(|inner| inner.service = service.into())
    }

    /// Uses `builder` instead of the `keyring` crate's default to create
    /// keychain credentials: a specific platform store, or a test double.
    pub fn with_credential_builder(self, builder: Box<CredentialBuilder>) -> Self {
        self.map_inner(|inner| inner.builder = Some(Arc::from(builder)))
    }

    /// The keychain service name.
    pub fn service(&self) -> &str {
        &self.inner.service
    }

    fn map_inner(self, f: impl FnOnce(&mut Inner)) -> Self {
        // Not `Clone`, so the `Arc` is only shared while an operation runs.
        let mut inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            service: shared.service.clone(),
            builder: shared.builder.clone(),
            index_lock: Mutex::new(()),
        });
        f(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        crate::blocking::run(&self.inner, f, || {
            Error::secret_store(
                format!(
                    "keyring service {:?}: the keychain call was cancelled",
                    self.inner.service
                ),
                None,
            )
        })
        .await
    }
}

impl Default for KeyringSecretStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for KeyringSecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyringSecretStore")
            .field("service", &self.inner.service)
            .field(
                "credential_builder",
                &if self.inner.builder.is_some() {
                    "custom"
                } else {
                    "default"
                },
            )
            .finish()
    }
}

#[async_trait::async_trait]
impl SecretStore for KeyringSecretStore {
    fn backend(&self) -> &'static str {
        "keyring"
    }

    async fn get(&self, key: &SecretKey) -> Result<Option<Secret>> {
        let user = key.to_string();
        self.blocking(move |inner| inner.read(&user).map(|v| v.map(Secret::new)))
            .await
    }

    async fn put(&self, key: &SecretKey, value: &Secret) -> Result<()> {
        let (session, name, user) = (key.session(), key.name().to_owned(), key.to_string());
        let value = value.clone();
        self.blocking(move |inner| {
            let _guard = inner.lock_index();
            let mut index = inner.read_index(session)?;
            let added = index.insert(name.clone());
            if added {
                inner.write_index(session, &index)?;
            }
            let stored = inner.entry(&user).and_then(|entry| {
                entry
                    .set_password(value.expose())
                    .map_err(|e| inner.error("store", &user, e))
            });
            if stored.is_err() && added {
                // Best effort: do not list a name whose value is not there.
                index.remove(&name);
                let _ = inner.write_index(session, &index);
            }
            stored
        })
        .await
    }

    async fn delete(&self, key: &SecretKey) -> Result<bool> {
        let (session, name, user) = (key.session(), key.name().to_owned(), key.to_string());
        self.blocking(move |inner| {
            let _guard = inner.lock_index();
            let existed = inner.remove(&user)?;
            let mut index = inner.read_index(session)?;
            if index.remove(&name) {
                inner.write_index(session, &index)?;
            }
            Ok(existed)
        })
        .await
    }

    async fn names(&self, session: SessionId) -> Result<Vec<String>> {
        self.blocking(move |inner| Ok(inner.read_index(session)?.into_iter().collect()))
            .await
    }

    async fn delete_session(&self, session: SessionId) -> Result<usize> {
        self.blocking(move |inner| {
            let _guard = inner.lock_index();
            let mut index = inner.read_index(session)?;
            let mut removed = 0;
            for name in index.clone() {
                match inner.remove(&format!("{session}/{name}")) {
                    Ok(existed) => {
                        removed += usize::from(existed);
                        index.remove(&name);
                    }
                    Err(e) => {
                        // Keep listing what is still there, then report.
                        let _ = inner.write_index(session, &index);
                        return Err(e);
                    }
                }
            }
            inner.write_index(session, &index)?;
            Ok(removed)
        })
        .await
    }
}

impl Inner {
    fn entry(&self, user: &str) -> Result<Entry> {
        match &self.builder {
            Some(builder) => builder
                .build(None, &self.service, user)
                .map(Entry::new_with_credential),
            None => Entry::new(&self.service, user),
        }
        .map_err(|e| self.error("open", user, e))
    }

    /// The value under `user`, `None` if there is no entry.
    fn read(&self, user: &str) -> Result<Option<String>> {
        match self.entry(user)?.get_password() {
            Ok(value) => Ok(Some(value)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(self.error("read", user, e)),
        }
    }

    /// Deletes the entry under `user`; `false` if there was none.
    fn remove(&self, user: &str) -> Result<bool> {
        match self.entry(user)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(self.error("delete", user, e)),
        }
    }

    fn lock_index(&self) -> std::sync::MutexGuard<'_, ()> {
        self.index_lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn read_index(&self, session: SessionId) -> Result<BTreeSet<String>> {
        let user = index_user(session);
        let Some(text) = self.read(&user)? else {
            return Ok(BTreeSet::new());
        };
        serde_json::from_str(&text).map_err(|e| {
            Error::secret_store(
                format!(
                    "keyring service {:?}, entry {user:?}: the index of secret names is not a JSON array of strings (line {}, column {}); delete the entry to reset it",
                    self.service,
                    e.line(),
                    e.column()
                ),
                None,
            )
        })
    }

    /// Stores the index, or deletes it when it is empty.
    fn write_index(&self, session: SessionId, index: &BTreeSet<String>) -> Result<()> {
        let user = index_user(session);
        if index.is_empty() {
            self.remove(&user)?;
            return Ok(());
        }
        let text = serde_json::to_string(index).map_err(|e| {
            Error::secret_store("cannot serialize the keyring index", Some(Box::new(e)))
        })?;
        self.entry(&user)?
            .set_password(&text)
            .map_err(|e| self.error("store", &user, e))
    }

    /// An [`Error::SecretStore`] for a failed keychain call, built from the
    /// service, the entry's user (`<session id>/<name>`) and the kind of
    /// failure, never from a value.
    fn error(&self, action: &str, user: &str, e: keyring::Error) -> Error {
        let (reason, source) = match e {
            keyring::Error::PlatformFailure(cause) => {
                ("the platform's secure storage failed".to_owned(), Some(cause))
            }
            keyring::Error::NoStorageAccess(cause) => (
                "the platform's secure storage is not accessible (locked, or no keychain service is running)"
                    .to_owned(),
                Some(cause),
            ),
            keyring::Error::NoEntry => ("there is no such entry".to_owned(), None),
            // The payload is the stored bytes: never show them.
            keyring::Error::BadEncoding(_) => ("the stored value is not UTF-8".to_owned(), None),
            keyring::Error::TooLong(attribute, limit) => (
                format!("the {attribute} is longer than the platform's limit of {limit}"),
                None,
            ),
            keyring::Error::Invalid(attribute, reason) => {
                (format!("the {attribute} is invalid: {reason}"), None)
            }
            keyring::Error::Ambiguous(matches) => (
                format!("{} keychain items match the entry", matches.len()),
                None,
            ),
            other => (other.to_string(), None),
        };
        Error::secret_store(
            format!(
                "keyring service {:?}, entry {user:?}: cannot {action}: {reason}",
                self.service
            ),
            source,
        )
    }
}

fn index_user(session: SessionId) -> String {
    format!("{session}/#index")
}
