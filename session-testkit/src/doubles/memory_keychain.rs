//! [`MemoryKeychain`]: a `keyring` credential store in process memory, for
//! testing `KeyringSecretStore` without an OS keychain (feature `keyring`).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use keyring::credential::{Credential, CredentialApi, CredentialBuilderApi, CredentialPersistence};

/// An entry's address in a keychain: (service, user).
type Id = (String, String);

/// A `keyring` credential store in process memory whose entries all share
/// one map, for testing `KeyringSecretStore` without an OS keychain.
///
/// The `keyring` crate's own mock keeps each value inside the entry object
/// that set it, so a second entry for the same service and user does not
/// see it; a store that creates an entry per call needs this one instead.
/// It tests a store's logic (entry naming, its index, error mapping), not
/// a keychain.
///
/// A `MemoryKeychain` is a cheap handle: clones share the same entries
/// (and value limit), and so do the credentials of every
/// [`builder`](Self::builder) made from any of them. Its `Debug` shows how
/// many entries there are, never their values.
///
/// ```
/// use session_core::secret_store::KeyringSecretStore;
/// use session_testkit::doubles::MemoryKeychain;
///
/// let keychain = MemoryKeychain::new().with_value_limit(2560);
/// let store = KeyringSecretStore::new().with_credential_builder(keychain.builder());
/// assert!(keychain.entries().is_empty());
/// # drop(store);
/// ```
#[derive(Clone, Default)]
pub struct MemoryKeychain {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    entries: HashMap<Id, Vec<u8>>,
    value_limit: Option<usize>,
}

impl MemoryKeychain {
    /// An empty keychain without a value limit.
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuses values longer than `bytes`, as a platform's limit would:
    /// storing one fails with `keyring::Error::TooLong` and leaves the
    /// entry as it was. Applies to every handle of this keychain.
    pub fn with_value_limit(self, bytes: usize) -> Self {
        self.lock().value_limit = Some(bytes);
        self
    }

    /// A credential builder (for `KeyringSecretStore::with_credential_builder`
    /// or `keyring::set_default_credential_builder`) whose credentials
    /// live in this keychain.
    pub fn builder(&self) -> Box<keyring::CredentialBuilder> {
        Box::new(Builder(self.clone()))
    }

    /// A snapshot of every entry, keyed by (service, user), for tests
    /// that check exactly which entries a store wrote.
    pub fn entries(&self) -> BTreeMap<(String, String), Vec<u8>> {
        self.lock()
            .entries
            .iter()
            .map(|(id, value)| (id.clone(), value.clone()))
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

// A derived `Debug` would print the stored values: show the count only.
impl fmt::Debug for MemoryKeychain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("MemoryKeychain")
            .field("entries", &state.entries.len())
            .field("value_limit", &state.value_limit)
            .finish()
    }
}

#[derive(Debug)]
struct Builder(MemoryKeychain);

impl CredentialBuilderApi for Builder {
    fn build(
        &self,
        _target: Option<&str>,
        service: &str,
        user: &str,
    ) -> keyring::Result<Box<Credential>> {
        Ok(Box::new(Entry {
            keychain: self.0.clone(),
            id: (service.to_owned(), user.to_owned()),
        }))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn persistence(&self) -> CredentialPersistence {
        CredentialPersistence::ProcessOnly
    }
}

struct Entry {
    keychain: MemoryKeychain,
    id: Id,
}

impl CredentialApi for Entry {
    fn set_secret(&self, secret: &[u8]) -> keyring::Result<()> {
        let mut state = self.keychain.lock();
        if let Some(limit) = state.value_limit
            && secret.len() > limit
        {
            return Err(keyring::Error::TooLong(
                "password".to_owned(),
                u32::try_from(limit).unwrap_or(u32::MAX),
            ));
        }
        state.entries.insert(self.id.clone(), secret.to_vec());
        Ok(())
    }

    fn get_secret(&self) -> keyring::Result<Vec<u8>> {
        self.keychain
            .lock()
            .entries
            .get(&self.id)
            .cloned()
            .ok_or(keyring::Error::NoEntry)
    }

    fn delete_credential(&self) -> keyring::Result<()> {
        self.keychain
            .lock()
            .entries
            .remove(&self.id)
            .map(drop)
            .ok_or(keyring::Error::NoEntry)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    // The address only: (service, user) names an entry, not its value.
    fn debug_fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MemoryKeychainEntry({:?})", self.id)
    }
}
