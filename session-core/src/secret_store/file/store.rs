//! [`EncryptedFileSecretStore`]: the file read and written under a
//! cross-process lock, replaced atomically.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::envelope::{CachedKey, KdfCosts, KdfHeader, Secrets};
use crate::private_file::{self, LockError};
use crate::secret_store::{SecretKey, SecretStore};
use crate::{Error, Result, Secret, SessionId};

/// Larger files are refused as corrupt rather than read into memory.
const MAX_FILE_LEN: u64 = 256 * 1024 * 1024;
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// A [`SecretStore`] keeping every secret in one file encrypted with
/// XChaCha20-Poly1305 under a key derived from a passphrase with Argon2id.
///
/// - **File**: a JSON envelope `{"header": {...}, "nonce": "...",
///   "ciphertext": "..."}` (base64 fields). The header names the format
///   (`session-sdk-secrets`, version 1), the Argon2id parameters (`m_cost`
///   KiB, `t_cost`, `p_cost`, a random 16-byte `salt`) and the cipher; it is
///   authenticated as associated data, so editing it makes decryption fail.
///   Every write uses a fresh random 24-byte nonce. The plaintext is a JSON
///   map `"<session id>/<name>"` → value, held only in zeroizing buffers.
///   The format is described field by field in this module's source
///   documentation (`session-core/src/secret_store/file/mod.rs`).
/// - **Writes**: read-modify-write under an exclusive advisory lock on
///   `<file>.lock`, so concurrent processes never lose each other's secrets;
///   the new file (mode 0600) is written beside the old one, fsynced and
///   renamed over it, and the directory is fsynced. A missing parent
///   directory is created with mode 0700.
/// - **Damage**: a file that cannot be parsed or decrypted is never
///   overwritten; every operation fails with an error naming it.
/// - [`open`](Self::open) creates nothing; the file (and its parent
///   directory) appear on the first write.
/// - The derived key is cached in memory (zeroed on drop) and derived again
///   only when the file's salt or KDF parameters change.
/// - `Debug` shows the path and KDF costs, never the passphrase or the key.
///
/// ```no_run
/// use session_core::{EncryptedFileSecretStore, Secret};
/// let store = EncryptedFileSecretStore::open(
///     "/var/lib/session-sdk/secrets.json",
///     Secret::new(std::env::var("SESSION_SDK_PASSPHRASE").unwrap()),
/// )?;
/// # Ok::<(), session_core::Error>(())
/// ```
pub struct EncryptedFileSecretStore {
    inner: Arc<Inner>,
    /// KDF costs for a file this store creates (an existing file keeps its own).
    new_file_kdf: KdfCosts,
    lock_timeout: Duration,
}

/// The state shared by the clones of one [`EncryptedFileSecretStore`].
pub(super) struct Inner {
    pub(super) path: PathBuf,
    pub(super) lock_path: PathBuf,
    pub(super) passphrase: Secret,
    pub(super) key_cache: Mutex<Option<CachedKey>>,
}

/// The contents of the file as read by one operation.
struct Loaded {
    /// The header of the file, `None` if there is no file yet.
    kdf: Option<KdfHeader>,
    secrets: Secrets,
}

impl EncryptedFileSecretStore {
    /// Default Argon2id memory cost for new files, in KiB (19 MiB, the OWASP
    /// recommendation for Argon2id with t = 2, p = 1).
    pub const DEFAULT_M_COST_KIB: u32 = 19 * 1024;
    /// Default Argon2id iterations for new files.
    pub const DEFAULT_T_COST: u32 = 2;
    /// Default Argon2id parallelism (lanes) for new files.
    pub const DEFAULT_P_COST: u32 = 1;

    /// A store in the file at `path`, encrypted with a key derived from
    /// `passphrase`.
    ///
    /// Nothing is created until the first write. If the file exists, the
    /// passphrase is checked now by decrypting it: a wrong passphrase or an
    /// altered file gives [`Error::SecretStore`] naming the file, an
    /// unreadable or malformed file [`Error::Storage`] or [`Error::Corrupt`].
    ///
    /// This derives the key with Argon2id (tens of milliseconds with the
    /// default costs) and reads the file, so it blocks: call it at start-up
    /// or inside `spawn_blocking`.
    pub fn open(path: impl Into<PathBuf>, passphrase: Secret) -> Result<Self> {
        let path = path.into();
        if passphrase.is_empty() {
            return Err(Error::invalid_input(
                "secret file passphrase",
                "must not be empty",
            ));
        }
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".lock");
        let store = Self {
            inner: Arc::new(Inner {
                path,
                lock_path: PathBuf::from(lock_path),
                passphrase,
                key_cache: Mutex::new(None),
            }),
            new_file_kdf: KdfCosts {
                m_cost: Self::DEFAULT_M_COST_KIB,
                t_cost: Self::DEFAULT_T_COST,
                p_cost: Self::DEFAULT_P_COST,
            },
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
        };
        store.inner.load()?;
        Ok(store)
    }

    /// Sets the Argon2id costs used when this store creates the file:
    /// memory in KiB, iterations and lanes. An existing file keeps the costs
    /// recorded in its header.
    ///
    /// Small values make tests fast; production should keep the defaults
    /// ([`DEFAULT_M_COST_KIB`](Self::DEFAULT_M_COST_KIB),
    /// [`DEFAULT_T_COST`](Self::DEFAULT_T_COST),
    /// [`DEFAULT_P_COST`](Self::DEFAULT_P_COST)) or raise them. Returns
    /// [`Error::InvalidInput`] for values Argon2 refuses (`m_cost < 8 *
    /// p_cost`, zero iterations, …) or above 2 GiB, 256 iterations or 64
    /// lanes.
    pub fn with_kdf_params(mut self, m_cost_kib: u32, t_cost: u32, p_cost: u32) -> Result<Self> {
        let costs = KdfCosts {
            m_cost: m_cost_kib,
            t_cost,
            p_cost,
        };
        costs
            .validate()
            .map_err(|reason| Error::invalid_input("secret file KDF parameters", reason))?;
        self.new_file_kdf = costs;
        Ok(self)
    }

    /// How long a write waits for another process holding `<file>.lock`
    /// before failing with [`Error::Storage`] (default 30 s).
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// The encrypted file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        crate::blocking::run(&self.inner, f, || {
            Error::secret_store(
                format!(
                    "{}: the file operation was cancelled",
                    self.inner.path.display()
                ),
                None,
            )
        })
        .await
    }

    /// Read-modify-write under the cross-process lock. `change` returns its
    /// result and whether it changed anything (nothing is written if not).
    ///
    /// With `create` false (removals), a missing file is not created: the
    /// change runs on an empty set and nothing touches the disk.
    async fn update<T: Send + 'static>(
        &self,
        create: bool,
        change: impl FnOnce(&mut Secrets) -> (T, bool) + Send + 'static,
    ) -> Result<T> {
        let costs = self.new_file_kdf;
        let timeout = self.lock_timeout;
        self.blocking(move |inner| {
            if !create && !inner.file_exists()? {
                return Ok(change(&mut Secrets::new()).0);
            }
            inner.update(costs, timeout, change)
        })
        .await
    }
}

impl fmt::Debug for EncryptedFileSecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedFileSecretStore")
            .field("path", &self.inner.path)
            .field("new_file_kdf", &self.new_file_kdf)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl SecretStore for EncryptedFileSecretStore {
    fn backend(&self) -> &'static str {
        "file"
    }

    async fn get(&self, key: &SecretKey) -> Result<Option<Secret>> {
        let id = key.to_string();
        self.blocking(move |inner| Ok(inner.load()?.secrets.get(&id).cloned()))
            .await
    }

    async fn put(&self, key: &SecretKey, value: &Secret) -> Result<()> {
        let id = key.to_string();
        let value = value.clone();
        self.update(true, move |secrets| {
            let unchanged = secrets.get(&id) == Some(&value);
            if !unchanged {
                secrets.insert(id, value);
            }
            ((), !unchanged)
        })
        .await
    }

    async fn delete(&self, key: &SecretKey) -> Result<bool> {
        let id = key.to_string();
        self.update(false, move |secrets| {
            let removed = secrets.remove(&id).is_some();
            (removed, removed)
        })
        .await
    }

    async fn names(&self, session: SessionId) -> Result<Vec<String>> {
        self.blocking(move |inner| {
            let prefix = format!("{session}/");
            Ok(inner
                .load()?
                .secrets
                .keys()
                .filter_map(|id| id.strip_prefix(&prefix))
                .map(str::to_owned)
                .collect())
        })
        .await
    }

    async fn delete_session(&self, session: SessionId) -> Result<usize> {
        self.update(false, move |secrets| {
            let prefix = format!("{session}/");
            let before = secrets.len();
            secrets.retain(|id, _| !id.starts_with(&prefix));
            let removed = before - secrets.len();
            (removed, removed > 0)
        })
        .await
    }

    async fn sessions(&self) -> Result<Vec<SessionId>> {
        self.blocking(move |inner| {
            // Keys are "<session id>/<name>" (see `SecretKey`'s Display).
            let mut ids: Vec<SessionId> = inner
                .load()?
                .secrets
                .keys()
                .filter_map(|key| key.split_once('/')?.0.parse().ok())
                .collect();
            ids.sort();
            ids.dedup();
            Ok(ids)
        })
        .await
    }
}

impl Inner {
    /// Reads and decrypts the file; an empty set if there is none.
    fn load(&self) -> Result<Loaded> {
        let Some(bytes) = self.read_file()? else {
            return Ok(Loaded {
                kdf: None,
                secrets: Secrets::new(),
            });
        };
        let sealed = self.parse(&bytes)?;
        let secrets = self.decrypt(&sealed)?;
        Ok(Loaded {
            kdf: Some(sealed.header.kdf),
            secrets,
        })
    }

    fn update<T>(
        &self,
        new_file_kdf: KdfCosts,
        lock_timeout: Duration,
        change: impl FnOnce(&mut Secrets) -> (T, bool),
    ) -> Result<T> {
        let dir = self.dir();
        private_file::create_private_dir(dir)
            .map_err(|e| self.io_error("cannot create the directory of the secret file", e))?;
        let _lock = self.lock(lock_timeout)?;
        let Loaded { kdf, mut secrets } = self.load()?;
        let (result, changed) = change(&mut secrets);
        if !changed {
            return Ok(result);
        }
        let kdf = match kdf {
            Some(kdf) => kdf,
            None => KdfHeader::generate(new_file_kdf)?,
        };
        let bytes = self.seal(kdf, &secrets)?;
        self.write_atomically(&bytes)?;
        Ok(result)
    }

    fn dir(&self) -> &Path {
        match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        }
    }

    fn file_exists(&self) -> Result<bool> {
        match fs::symlink_metadata(&self.path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.io_error("cannot read the secret file", e)),
        }
    }

    fn read_file(&self) -> Result<Option<Vec<u8>>> {
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io_error("cannot open the secret file", e)),
        };
        let len = file
            .metadata()
            .map_err(|e| self.io_error("cannot read the secret file", e))?
            .len();
        if len > MAX_FILE_LEN {
            return Err(self.corrupt(
                0,
                0,
                format!("the file is {len} bytes, larger than any secret file"),
            ));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.read_to_end(&mut bytes)
            .map_err(|e| self.io_error("cannot read the secret file", e))?;
        Ok(Some(bytes))
    }

    /// Takes the cross-process lock on `<file>.lock`, polling up to `timeout`.
    fn lock(&self, timeout: Duration) -> Result<File> {
        private_file::lock_exclusive(&self.lock_path, timeout).map_err(|e| match e {
            LockError::Io(e) => {
                Error::storage(&self.lock_path, "cannot lock the secret file", Some(e))
            }
            LockError::TimedOut => Error::storage(
                &self.lock_path,
                format!("another process has held the lock for over {timeout:?}"),
                None,
            ),
        })
    }

    /// Replaces the file crash-safely (see `private_file::replace_atomically`).
    fn write_atomically(&self, bytes: &[u8]) -> Result<()> {
        private_file::replace_atomically(&self.path, bytes, |_| {})
            .map_err(|e| self.io_error(e.step, e.error))
    }

    fn io_error(&self, message: &str, e: io::Error) -> Error {
        Error::storage(&self.path, message, Some(e))
    }
}
