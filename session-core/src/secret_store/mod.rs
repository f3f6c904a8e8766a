//! Where secrets live: the [`SecretStore`] trait and its backends.
//!
//! | backend | for | notes |
//! |---|---|---|
//! | [`InMemorySecretStore`] | tests, short-lived processes | gone when the process ends |
//! | [`EncryptedFileSecretStore`] | headless machines, CI | one file, Argon2id-derived key, XChaCha20-Poly1305 |
//! | `KeyringSecretStore` (feature `keyring`) | desktops | macOS Keychain, Windows Credential Manager, Linux Secret Service / keyutils |

mod file;
#[cfg(feature = "keyring")]
mod keyring;
mod memory;

pub use file::EncryptedFileSecretStore;
#[cfg(feature = "keyring")]
pub use keyring::KeyringSecretStore;
pub use memory::InMemorySecretStore;

use std::fmt;

use crate::{Error, Result, Secret, SessionId};

/// The longest secret name, in bytes.
pub const MAX_SECRET_NAME_LEN: usize = 64;

/// The address of one secret: the session it belongs to and a name within
/// that session (`access-key-secret`, `password`, `token`, …).
///
/// Namespacing by session id means removing a session can remove exactly its
/// secrets, and two sessions never read each other's.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct SecretKey {
    session: SessionId,
    name: String,
}

impl SecretKey {
    /// A key for `name` under `session`. The name is 1 to
    /// [`MAX_SECRET_NAME_LEN`] bytes of `[A-Za-z0-9._-]`.
    pub fn new(session: SessionId, name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let ok = !name.is_empty()
            && name.len() <= MAX_SECRET_NAME_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !ok {
            return Err(Error::invalid_input(
                "secret name",
                format!(
                    "{name:?} must be 1-{MAX_SECRET_NAME_LEN} characters from A-Z a-z 0-9 . _ -"
                ),
            ));
        }
        Ok(Self { session, name })
    }

    /// The session the secret belongs to.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// The name within the session.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for SecretKey {
    /// `<session id>/<name>`, the form backends use as their own key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.session, self.name)
    }
}

/// A place to keep secrets, namespaced by session id.
///
/// Implementations never log or print secret values, and their errors never
/// contain them.
#[async_trait::async_trait]
pub trait SecretStore: Send + Sync + fmt::Debug {
    /// A short name of the backend (`memory`, `file`, `keyring`).
    fn backend(&self) -> &'static str;

    /// The secret, or `None` if there is none under this key.
    async fn get(&self, key: &SecretKey) -> Result<Option<Secret>>;

    /// Stores `value` under `key`, replacing any previous value.
    async fn put(&self, key: &SecretKey, value: &Secret) -> Result<()>;

    /// Removes the secret; `Ok(false)` if there was none (idempotent).
    async fn delete(&self, key: &SecretKey) -> Result<bool>;

    /// The names stored under `session`, sorted.
    async fn names(&self, session: SessionId) -> Result<Vec<String>>;

    /// Removes every secret of `session` and returns how many there were.
    async fn delete_session(&self, session: SessionId) -> Result<usize>;

    /// Every session that has at least one secret here, sorted, each once:
    /// how secrets whose session no longer exists are found (`sessionctl
    /// secret orphans`).
    ///
    /// The default, for backends that cannot enumerate their entries (the
    /// OS keychain), fails with [`Error::Unsupported`].
    async fn sessions(&self) -> Result<Vec<SessionId>> {
        Err(Error::unsupported(
            self.backend(),
            "listing the sessions that have secrets",
        ))
    }
}

macro_rules! forward_secret_store {
    ($($wrapper:ident),*) => {$(
        #[async_trait::async_trait]
        impl<T: SecretStore + ?Sized> SecretStore for $wrapper<T> {
            fn backend(&self) -> &'static str {
                (**self).backend()
            }
            async fn get(&self, key: &SecretKey) -> Result<Option<Secret>> {
                (**self).get(key).await
            }
            async fn put(&self, key: &SecretKey, value: &Secret) -> Result<()> {
                (**self).put(key, value).await
            }
            async fn delete(&self, key: &SecretKey) -> Result<bool> {
                (**self).delete(key).await
            }
            async fn names(&self, session: SessionId) -> Result<Vec<String>> {
                (**self).names(session).await
            }
            async fn delete_session(&self, session: SessionId) -> Result<usize> {
                (**self).delete_session(session).await
            }
            async fn sessions(&self) -> Result<Vec<SessionId>> {
                (**self).sessions().await
            }
        }
    )*};
}

use std::sync::Arc;
forward_secret_store!(Box, Arc);
