//! Every secret in one file, encrypted with a key derived from a passphrase.
//!
//! Meant for headless machines and CI, where no OS keychain is available.
//!
//! # File format (version 1)
//!
//! The file is a small JSON document; binary fields are standard base64 with
//! padding:
//!
//! ```json
//! {
//!   "header": {
//!     "format": "session-sdk-secrets",
//!     "version": 1,
//!     "kdf": {
//!       "algorithm": "argon2id",
//!       "version": 19,
//!       "m_cost": 19456,
//!       "t_cost": 2,
//!       "p_cost": 1,
//!       "salt": "<16 random bytes>"
//!     },
//!     "aead": "xchacha20poly1305"
//!   },
//!   "nonce": "<24 random bytes>",
//!   "ciphertext": "<encrypted plaintext followed by the 16-byte tag>"
//! }
//! ```
//!
//! - **Key**: 32 bytes from Argon2id (version `0x13` = 19) over the
//!   passphrase, with the salt and cost parameters stored in `kdf`
//!   (`m_cost` in KiB). The default costs are m = 19456 KiB, t = 2, p = 1.
//! - **Encryption**: XChaCha20-Poly1305 with a fresh random 24-byte nonce on
//!   every write. The associated data is the `header` object serialized as
//!   compact JSON with its fields in the order shown above, so changing any
//!   header field (format, version, KDF parameters, salt, algorithm names)
//!   makes decryption fail.
//! - **Plaintext**: a JSON object mapping `"<session id>/<name>"` to the
//!   secret value (a JSON string). It is only ever held in buffers that are
//!   zeroed when dropped (best effort: the JSON parser may keep short-lived
//!   copies of values that contain escapes).
//!
//! # Writes and concurrency
//!
//! Every write is a read-modify-write under an exclusive advisory lock on
//! the sibling file `<file>.lock` (`File::lock`, `flock` on Unix), so two
//! processes writing at the same time never lose each other's secrets. The
//! writer re-reads and decrypts the current file under the lock, applies its
//! change, writes a new file (mode 0600) next to it, fsyncs it, renames it
//! over the old one and fsyncs the directory. Readers need no lock: they see
//! either the old or the new file. The parent directory is created with mode
//! 0700 if it is missing. The lock file is left in place.
//!
//! A file that cannot be parsed or decrypted is never overwritten: every
//! operation returns an error naming the file until someone fixes or removes
//! it.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, AeadInPlace, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{SecretKey, SecretStore};
use crate::private_file::{self, LockError};
use crate::{Error, Result, Secret, SessionId};

const FORMAT: &str = "session-sdk-secrets";
const FORMAT_VERSION: u32 = 1;
const KDF_ALGORITHM: &str = "argon2id";
const KDF_VERSION: u32 = 0x13;
const AEAD_ALGORITHM: &str = "xchacha20poly1305";
const KEY_LEN: usize = 32;
const SALT_LEN: usize = 16;
const MIN_SALT_LEN: usize = 16;
const MAX_SALT_LEN: usize = 64;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Upper bounds on KDF costs, so a damaged or hostile file cannot make us
/// allocate unbounded memory or spin for hours.
const MAX_M_COST_KIB: u32 = 2 * 1024 * 1024;
const MAX_T_COST: u32 = 256;
const MAX_P_COST: u32 = 64;
/// Larger files are refused as corrupt rather than read into memory.
const MAX_FILE_LEN: u64 = 256 * 1024 * 1024;
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);
const KIND: &str = "encrypted secret file";

/// The decrypted contents: `"<session id>/<name>"` → value.
type Secrets = BTreeMap<String, Secret>;

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
///   documentation (`session-core/src/secret_store/file.rs`).
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

/// Argon2id costs: memory in KiB, iterations, lanes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct KdfCosts {
    m_cost: u32,
    t_cost: u32,
    p_cost: u32,
}

impl KdfCosts {
    fn validate(self) -> std::result::Result<Params, String> {
        if self.m_cost > MAX_M_COST_KIB || self.t_cost > MAX_T_COST || self.p_cost > MAX_P_COST {
            return Err(format!(
                "Argon2id costs m={} KiB, t={}, p={} exceed the limits m<={MAX_M_COST_KIB}, t<={MAX_T_COST}, p<={MAX_P_COST}",
                self.m_cost, self.t_cost, self.p_cost
            ));
        }
        Params::new(self.m_cost, self.t_cost, self.p_cost, Some(KEY_LEN)).map_err(|e| {
            format!(
                "Argon2id costs m={} KiB, t={}, p={} are invalid: {e}",
                self.m_cost, self.t_cost, self.p_cost
            )
        })
    }
}

struct Inner {
    path: PathBuf,
    lock_path: PathBuf,
    passphrase: Secret,
    key_cache: Mutex<Option<CachedKey>>,
}

/// A key derived from the passphrase for one salt and set of costs.
struct CachedKey {
    kdf: KdfHeader,
    key: Zeroizing<[u8; KEY_LEN]>,
}

#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Envelope {
    header: Header,
    nonce: String,
    ciphertext: String,
}

/// Authenticated as associated data; field order is part of the format.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    version: u32,
    kdf: KdfHeader,
    aead: String,
}

#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct KdfHeader {
    algorithm: String,
    version: u32,
    m_cost: u32,
    t_cost: u32,
    p_cost: u32,
    salt: String,
}

impl KdfHeader {
    fn costs(&self) -> KdfCosts {
        KdfCosts {
            m_cost: self.m_cost,
            t_cost: self.t_cost,
            p_cost: self.p_cost,
        }
    }
}

/// A parsed and checked envelope, not yet decrypted.
struct Sealed {
    header: Header,
    salt: Vec<u8>,
    nonce: [u8; NONCE_LEN],
    ciphertext: Vec<u8>,
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
        let inner = Arc::clone(&self.inner);
        match tokio::task::spawn_blocking(move || f(&inner)).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(Error::secret_store(
                format!(
                    "{}: the file operation was cancelled",
                    self.inner.path.display()
                ),
                None,
            )),
        }
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
            None => {
                let mut salt = [0u8; SALT_LEN];
                random(&mut salt)?;
                KdfHeader {
                    algorithm: KDF_ALGORITHM.to_owned(),
                    version: KDF_VERSION,
                    m_cost: new_file_kdf.m_cost,
                    t_cost: new_file_kdf.t_cost,
                    p_cost: new_file_kdf.p_cost,
                    salt: BASE64.encode(salt),
                }
            }
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

    /// Parses the envelope and checks every field except the ciphertext's
    /// integrity, which only decryption can check.
    fn parse(&self, bytes: &[u8]) -> Result<Sealed> {
        let envelope: Envelope = serde_json::from_slice(bytes)
            .map_err(|e| self.corrupt(e.line(), e.column(), e.to_string()))?;
        let header = envelope.header;
        if header.format != FORMAT {
            return Err(self.corrupt(
                0,
                0,
                format!("format is {:?}, expected {FORMAT:?}", header.format),
            ));
        }
        if header.version != FORMAT_VERSION {
            return Err(self.corrupt(
                0,
                0,
                format!(
                    "format version {} is not supported (this build reads version {FORMAT_VERSION})",
                    header.version
                ),
            ));
        }
        if header.kdf.algorithm != KDF_ALGORITHM || header.kdf.version != KDF_VERSION {
            return Err(self.corrupt(
                0,
                0,
                format!(
                    "key derivation {:?} version {} is not supported (expected {KDF_ALGORITHM:?} version {KDF_VERSION})",
                    header.kdf.algorithm, header.kdf.version
                ),
            ));
        }
        if header.aead != AEAD_ALGORITHM {
            return Err(self.corrupt(
                0,
                0,
                format!(
                    "cipher {:?} is not supported (expected {AEAD_ALGORITHM:?})",
                    header.aead
                ),
            ));
        }
        header
            .kdf
            .costs()
            .validate()
            .map_err(|reason| self.corrupt(0, 0, reason))?;
        let salt = self.decode_field("header.kdf.salt", &header.kdf.salt)?;
        if !(MIN_SALT_LEN..=MAX_SALT_LEN).contains(&salt.len()) {
            return Err(self.corrupt(
                0,
                0,
                format!(
                    "the salt is {} bytes, expected {MIN_SALT_LEN} to {MAX_SALT_LEN}",
                    salt.len()
                ),
            ));
        }
        let nonce = self.decode_field("nonce", &envelope.nonce)?;
        let nonce: [u8; NONCE_LEN] = nonce.as_slice().try_into().map_err(|_| {
            self.corrupt(
                0,
                0,
                format!("the nonce is {} bytes, expected {NONCE_LEN}", nonce.len()),
            )
        })?;
        let ciphertext = self.decode_field("ciphertext", &envelope.ciphertext)?;
        if ciphertext.len() < TAG_LEN {
            return Err(self.corrupt(
                0,
                0,
                "the ciphertext is shorter than its authentication tag",
            ));
        }
        Ok(Sealed {
            header,
            salt,
            nonce,
            ciphertext,
        })
    }

    fn decode_field(&self, field: &str, value: &str) -> Result<Vec<u8>> {
        BASE64
            .decode(value)
            .map_err(|e| self.corrupt(0, 0, format!("{field} is not valid base64: {e}")))
    }

    fn decrypt(&self, sealed: &Sealed) -> Result<Secrets> {
        let key = self.key_for(&sealed.header.kdf, &sealed.salt)?;
        let aad = associated_data(&sealed.header)?;
        let cipher = XChaCha20Poly1305::new(key.as_slice().into());
        let mut plaintext = Zeroizing::new(sealed.ciphertext.clone());
        cipher
            .decrypt_in_place(XNonce::from_slice(&sealed.nonce), &aad, &mut *plaintext)
            .map_err(|_| {
                Error::secret_store(
                    format!(
                        "cannot decrypt {}: the passphrase is wrong or the file was altered (the file was left untouched)",
                        self.path.display()
                    ),
                    None,
                )
            })?;
        decode_plaintext(&plaintext).map_err(|()| {
            // Authenticated, so written with our passphrase, but not by this
            // format: say so without quoting the contents (they are secrets).
            Error::secret_store(
                format!(
                    "{}: the decrypted contents are not a map of secret names to strings (the file was left untouched)",
                    self.path.display()
                ),
                None,
            )
        })
    }

    /// Serializes and encrypts `secrets` with a fresh nonce.
    fn seal(&self, kdf: KdfHeader, secrets: &Secrets) -> Result<Vec<u8>> {
        let salt = BASE64
            .decode(&kdf.salt)
            .map_err(|e| self.corrupt(0, 0, format!("header.kdf.salt is not valid base64: {e}")))?;
        let key = self.key_for(&kdf, &salt)?;
        let header = Header {
            format: FORMAT.to_owned(),
            version: FORMAT_VERSION,
            kdf,
            aead: AEAD_ALGORITHM.to_owned(),
        };
        let aad = associated_data(&header)?;
        let plaintext = encode_plaintext(secrets)?;
        let mut nonce = [0u8; NONCE_LEN];
        random(&mut nonce)?;
        let cipher = XChaCha20Poly1305::new(key.as_slice().into());
        let ciphertext = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| Error::secret_store("encryption failed", None))?;
        let envelope = Envelope {
            header,
            nonce: BASE64.encode(nonce),
            ciphertext: BASE64.encode(ciphertext),
        };
        let mut bytes = serde_json::to_vec_pretty(&envelope).map_err(|e| {
            Error::secret_store("cannot serialize the secret file", Some(Box::new(e)))
        })?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// The key for this salt and these costs, from the cache or Argon2id.
    fn key_for(&self, kdf: &KdfHeader, salt: &[u8]) -> Result<Zeroizing<[u8; KEY_LEN]>> {
        let mut cache = self.cache();
        if let Some(cached) = cache.as_ref().filter(|c| c.kdf == *kdf) {
            return Ok(Zeroizing::new(*cached.key));
        }
        let params = kdf
            .costs()
            .validate()
            .map_err(|reason| self.corrupt(0, 0, reason))?;
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(self.passphrase.expose().as_bytes(), salt, &mut *key)
            .map_err(|e| {
                Error::secret_store(
                    format!("{}: key derivation failed: {e}", self.path.display()),
                    None,
                )
            })?;
        *cache = Some(CachedKey {
            kdf: kdf.clone(),
            key: Zeroizing::new(*key),
        });
        Ok(key)
    }

    fn cache(&self) -> MutexGuard<'_, Option<CachedKey>> {
        self.key_cache.lock().unwrap_or_else(|e| e.into_inner())
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
        private_file::replace_atomically(&self.path, bytes, || {})
            .map_err(|e| self.io_error(e.step, e.error))
    }

    fn io_error(&self, message: &str, e: io::Error) -> Error {
        Error::storage(&self.path, message, Some(e))
    }

    fn corrupt(&self, line: usize, column: usize, message: impl Into<String>) -> Error {
        Error::Corrupt {
            path: self.path.clone(),
            kind: KIND.to_owned(),
            line,
            column,
            message: message.into(),
        }
    }
}

fn associated_data(header: &Header) -> Result<Vec<u8>> {
    serde_json::to_vec(header).map_err(|e| {
        Error::secret_store("cannot serialize the secret file header", Some(Box::new(e)))
    })
}

fn random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| {
        Error::secret_store(
            format!("the operating system's random number generator failed: {e}"),
            None,
        )
    })
}

/// Serializes the map into a zeroizing buffer sized up front so that it is
/// never reallocated (which would leave an unzeroed copy behind).
fn encode_plaintext(secrets: &Secrets) -> Result<Zeroizing<Vec<u8>>> {
    struct Plain<'a>(&'a Secrets);
    impl Serialize for Plain<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
            s.collect_map(self.0.iter().map(|(id, value)| (id, value.expose())))
        }
    }
    // Worst case: every byte escaped as \u00XX, plus quotes, colon, comma.
    let capacity = 2 + secrets
        .iter()
        .map(|(id, value)| 6 * (id.len() + value.expose().len()) + 6)
        .sum::<usize>();
    let mut buf = Zeroizing::new(Vec::with_capacity(capacity));
    serde_json::to_writer(&mut *buf, &Plain(secrets))
        .map_err(|e| Error::secret_store("cannot serialize the secrets", Some(Box::new(e))))?;
    Ok(buf)
}

/// Parses the decrypted map. The error carries no detail on purpose: serde
/// messages can quote the input, which is secret.
fn decode_plaintext(plaintext: &[u8]) -> std::result::Result<Secrets, ()> {
    struct Value(Secret);
    impl<'de> Deserialize<'de> for Value {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
            String::deserialize(d).map(|s| Value(Secret::new(s)))
        }
    }
    let map: BTreeMap<String, Value> = serde_json::from_slice(plaintext).map_err(|_| ())?;
    Ok(map.into_iter().map(|(id, Value(v))| (id, v)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "CANARY-file-store-4b9e1d";
    const PASSPHRASE: &str = "correct horse battery staple";

    fn open(path: &Path, passphrase: &str) -> Result<EncryptedFileSecretStore> {
        EncryptedFileSecretStore::open(path, Secret::new(passphrase))?.with_kdf_params(64, 1, 1)
    }

    fn key(session: SessionId, name: &str) -> SecretKey {
        SecretKey::new(session, name).unwrap()
    }

    async fn store_with_canary(dir: &Path) -> (PathBuf, SessionId) {
        let path = dir.join("secrets.json");
        let store = open(&path, PASSPHRASE).unwrap();
        let session = SessionId::new();
        store
            .put(&key(session, "token"), &Secret::new(CANARY))
            .await
            .unwrap();
        (path, session)
    }

    fn rewrite_envelope(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
        let mut value: serde_json::Value =
            serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
        edit(&mut value);
        fs::write(path, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
    }

    #[tokio::test]
    async fn open_creates_nothing_until_the_first_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("secrets.json");
        let store = open(&path, PASSPHRASE).unwrap();
        assert_eq!(store.path(), path);
        assert!(
            store
                .get(&key(SessionId::new(), "a"))
                .await
                .unwrap()
                .is_none()
        );
        assert!(store.names(SessionId::new()).await.unwrap().is_empty());
        assert!(!store.delete(&key(SessionId::new(), "a")).await.unwrap());
        assert!(
            !dir.path().join("sub").exists(),
            "nothing may be created before a write"
        );
        store
            .put(&key(SessionId::new(), "a"), &Secret::new("v"))
            .await
            .unwrap();
        assert!(path.is_file());
    }

    #[tokio::test]
    async fn wrong_passphrase_is_refused_and_the_file_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let (path, session) = store_with_canary(dir.path()).await;
        let before = fs::read(&path).unwrap();

        let wrong = "not-the-passphrase-31337";
        let err = open(&path, wrong).unwrap_err();
        assert!(matches!(err, Error::SecretStore { .. }), "got {err:?}");
        let message = crate::ErrorChain(&err).to_string();
        assert!(
            message.contains("passphrase is wrong or the file was altered"),
            "{message}"
        );
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(!message.contains(wrong), "{message}");
        assert!(!format!("{err:?}").contains(wrong));
        assert_eq!(fs::read(&path).unwrap(), before, "the file must not change");

        // The right passphrase still works.
        let store = open(&path, PASSPHRASE).unwrap();
        assert_eq!(
            store.get(&key(session, "token")).await.unwrap(),
            Some(Secret::new(CANARY))
        );
    }

    #[tokio::test]
    async fn tampered_ciphertext_is_detected_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let (path, session) = store_with_canary(dir.path()).await;
        let store = open(&path, PASSPHRASE).unwrap();
        rewrite_envelope(&path, |v| {
            let mut ct = BASE64.decode(v["ciphertext"].as_str().unwrap()).unwrap();
            ct[3] ^= 0x01;
            v["ciphertext"] = BASE64.encode(ct).into();
        });
        let tampered = fs::read(&path).unwrap();

        let err = open(&path, PASSPHRASE).unwrap_err();
        assert!(matches!(err, Error::SecretStore { .. }), "got {err:?}");
        assert!(err.to_string().contains(&path.display().to_string()));

        // An already open store fails too, and its writes leave the file alone.
        assert!(store.get(&key(session, "token")).await.is_err());
        assert!(
            store
                .put(&key(session, "other"), &Secret::new("x"))
                .await
                .is_err()
        );
        assert!(store.delete_session(session).await.is_err());
        assert_eq!(fs::read(&path).unwrap(), tampered);
    }

    #[tokio::test]
    async fn tampered_header_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = store_with_canary(dir.path()).await;
        // A different salt (valid base64, right length) changes the key.
        rewrite_envelope(&path, |v| {
            v["header"]["kdf"]["salt"] = BASE64.encode([7u8; SALT_LEN]).into();
        });
        let err = open(&path, PASSPHRASE).unwrap_err();
        assert!(matches!(err, Error::SecretStore { .. }), "got {err:?}");
    }

    #[test]
    fn header_is_bound_as_associated_data() {
        // Fields that do not feed the KDF must still be authenticated: seal
        // with one header, then present the same ciphertext under a header
        // that differs only in a field the parser does not check.
        let dir = tempfile::tempdir().unwrap();
        let inner = Inner {
            path: dir.path().join("s.json"),
            lock_path: dir.path().join("s.json.lock"),
            passphrase: Secret::new(PASSPHRASE),
            key_cache: Mutex::new(None),
        };
        let kdf = KdfHeader {
            algorithm: KDF_ALGORITHM.to_owned(),
            version: KDF_VERSION,
            m_cost: 64,
            t_cost: 1,
            p_cost: 1,
            salt: BASE64.encode([1u8; SALT_LEN]),
        };
        let mut secrets = Secrets::new();
        secrets.insert("s/n".to_owned(), Secret::new(CANARY));
        let bytes = inner.seal(kdf, &secrets).unwrap();
        let sealed = inner.parse(&bytes).unwrap();
        assert_eq!(inner.decrypt(&sealed).unwrap(), secrets);

        let mut altered = sealed;
        altered.header.aead = "something-else".to_owned();
        assert!(matches!(
            inner.decrypt(&altered),
            Err(Error::SecretStore { .. })
        ));
    }

    #[tokio::test]
    async fn malformed_file_is_corrupt_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.json");
        fs::write(&path, b"{\"header\": oops").unwrap();
        let err = open(&path, PASSPHRASE).unwrap_err();
        match &err {
            Error::Corrupt { path: p, line, .. } => {
                assert_eq!(p, &path);
                assert_eq!(*line, 1);
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }

        // A store opened before the damage must not reset the file either.
        fs::remove_file(&path).unwrap();
        let store = open(&path, PASSPHRASE).unwrap();
        fs::write(&path, b"garbage").unwrap();
        let err = store
            .put(&key(SessionId::new(), "a"), &Secret::new("v"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "got {err:?}");
        assert_eq!(fs::read(&path).unwrap(), b"garbage");
    }

    #[tokio::test]
    async fn unsupported_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = store_with_canary(dir.path()).await;
        rewrite_envelope(&path, |v| v["header"]["version"] = 2.into());
        let err = open(&path, PASSPHRASE).unwrap_err();
        assert!(
            matches!(&err, Error::Corrupt { message, .. } if message.contains("version 2")),
            "got {err:?}"
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("private").join("secrets.json");
        let store = open(&path, PASSPHRASE).unwrap();
        store
            .put(&key(SessionId::new(), "a"), &Secret::new("v"))
            .await
            .unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600, "secret file");
        assert_eq!(
            mode(&dir.path().join("private")),
            0o700,
            "created directory"
        );
        assert_eq!(
            mode(&dir.path().join("private/secrets.json.lock")),
            0o600,
            "lock file"
        );

        // A rewrite of a file someone loosened makes it private again.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        store
            .put(&key(SessionId::new(), "b"), &Secret::new("w"))
            .await
            .unwrap();
        assert_eq!(mode(&path), 0o600);
        // No temp files are left behind.
        let names: Vec<_> = fs::read_dir(dir.path().join("private"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[tokio::test]
    async fn a_second_instance_sees_the_first_ones_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.json");
        let first = open(&path, PASSPHRASE).unwrap();
        let second = open(&path, PASSPHRASE).unwrap();
        let session = SessionId::new();
        first
            .put(&key(session, "a"), &Secret::new("from-first"))
            .await
            .unwrap();
        assert_eq!(
            second.get(&key(session, "a")).await.unwrap(),
            Some(Secret::new("from-first"))
        );
        second
            .put(&key(session, "b"), &Secret::new("from-second"))
            .await
            .unwrap();
        assert_eq!(
            first.get(&key(session, "b")).await.unwrap(),
            Some(Secret::new("from-second"))
        );
        assert_eq!(first.names(session).await.unwrap(), ["a", "b"]);
        // A third instance opened afterwards verifies and reads both.
        let third = open(&path, PASSPHRASE).unwrap();
        assert_eq!(third.names(session).await.unwrap(), ["a", "b"]);
    }

    #[tokio::test]
    async fn kdf_parameters_are_recorded_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (path, session) = store_with_canary(dir.path()).await;
        let envelope: Envelope = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            envelope.header.kdf.costs(),
            KdfCosts {
                m_cost: 64,
                t_cost: 1,
                p_cost: 1
            }
        );
        assert_eq!(
            BASE64.decode(&envelope.header.kdf.salt).unwrap().len(),
            SALT_LEN
        );

        // A store configured with other costs reads the file with its own
        // costs and keeps them (and the salt) when it writes.
        let other = EncryptedFileSecretStore::open(&path, Secret::new(PASSPHRASE))
            .unwrap()
            .with_kdf_params(128, 2, 1)
            .unwrap();
        other
            .put(&key(session, "more"), &Secret::new("x"))
            .await
            .unwrap();
        let after: Envelope = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert!(after.header == envelope.header);
        assert_ne!(
            after.nonce, envelope.nonce,
            "every write needs a fresh nonce"
        );
    }

    #[test]
    fn invalid_parameters_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let store = || EncryptedFileSecretStore::open(&path, Secret::new(PASSPHRASE)).unwrap();
        assert!(
            store().with_kdf_params(4, 1, 1).is_err(),
            "m below 8 KiB per lane"
        );
        assert!(
            store().with_kdf_params(64, 0, 1).is_err(),
            "zero iterations"
        );
        assert!(
            store().with_kdf_params(u32::MAX, 1, 1).is_err(),
            "absurd memory"
        );
        assert!(matches!(
            EncryptedFileSecretStore::open(&path, Secret::new("")),
            Err(Error::InvalidInput { .. })
        ));
    }

    #[tokio::test]
    async fn nothing_of_the_secret_reaches_the_file_or_debug() {
        let dir = tempfile::tempdir().unwrap();
        let (path, session) = store_with_canary(dir.path()).await;
        let raw = fs::read(&path).unwrap();
        let raw_text = String::from_utf8_lossy(&raw);
        for needle in [
            CANARY.to_owned(),
            BASE64.encode(CANARY),
            session.to_string(),
            "token".to_owned(),
            PASSPHRASE.to_owned(),
        ] {
            assert!(!raw_text.contains(&needle), "{needle:?} is in the file");
        }
        // Any 8-byte window of the canary would also be a leak.
        for window in CANARY.as_bytes().windows(8) {
            assert!(
                !raw.windows(8).any(|w| w == window),
                "part of the canary is in the file"
            );
        }

        let store = open(&path, PASSPHRASE).unwrap();
        let printed = format!("{store:?} {store:#?}");
        assert!(!printed.contains(PASSPHRASE), "{printed}");
        assert!(!printed.contains(CANARY), "{printed}");
        assert!(printed.contains("secrets.json"), "{printed}");
    }

    #[tokio::test]
    async fn default_costs_are_owasp_like() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.json");
        let store = EncryptedFileSecretStore::open(&path, Secret::new(PASSPHRASE)).unwrap();
        store
            .put(&key(SessionId::new(), "a"), &Secret::new("v"))
            .await
            .unwrap();
        let envelope: Envelope = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            envelope.header.kdf.costs(),
            KdfCosts {
                m_cost: 19456,
                t_cost: 2,
                p_cost: 1
            }
        );
    }

    #[tokio::test]
    async fn delete_and_delete_session_persist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.json");
        let store = open(&path, PASSPHRASE).unwrap();
        let (s1, s2) = (SessionId::new(), SessionId::new());
        for (s, n) in [(s1, "a"), (s1, "b"), (s2, "a")] {
            store
                .put(&key(s, n), &Secret::new(format!("{s}-{n}")))
                .await
                .unwrap();
        }
        assert!(store.delete(&key(s1, "a")).await.unwrap());
        assert_eq!(store.delete_session(s1).await.unwrap(), 1);
        let reopened = open(&path, PASSPHRASE).unwrap();
        assert!(reopened.names(s1).await.unwrap().is_empty());
        assert_eq!(
            reopened.get(&key(s2, "a")).await.unwrap(),
            Some(Secret::new(format!("{s2}-a")))
        );
    }
}
