//! The encrypted envelope: the file format (version 1), the Argon2id key
//! derivation and XChaCha20-Poly1305. See the parent module for the format
//! field by field.

use std::collections::BTreeMap;
use std::sync::MutexGuard;

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, AeadInPlace, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::store::Inner;
use crate::{Error, Result, Secret};

const FORMAT: &str = "session-sdk-secrets";
const FORMAT_VERSION: u32 = 1;
pub(super) const KDF_ALGORITHM: &str = "argon2id";
pub(super) const KDF_VERSION: u32 = 0x13;
const AEAD_ALGORITHM: &str = "xchacha20poly1305";
const KEY_LEN: usize = 32;
pub(super) const SALT_LEN: usize = 16;
const MIN_SALT_LEN: usize = 16;
const MAX_SALT_LEN: usize = 64;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Upper bounds on KDF costs, checked before any key is derived, so a
/// damaged or hostile header cannot stall every command or exhaust memory.
///
/// Measured (release build, one core of this project's CI machine): Argon2id
/// costs about 1.8 ms per MiB per pass, so the default (19 MiB × 2) takes
/// ~50 ms, and the earlier bounds (2 GiB × 256 passes) allowed ~15 minutes
/// per command. Now: memory at most 1 GiB (a failed allocation aborts the
/// process, and 1 GiB is above every published recommendation but RFC 9106's
/// 2 GiB one), and memory × passes at most 2 GiB, about 4 s: 50× the
/// default, room for RFC 9106's 64 MiB × 3 and OWASP's settings, never
/// minutes. Lanes are computed one after another by the `argon2` crate, so
/// they add no work; 16 keeps them sane.
const MAX_M_COST_KIB: u32 = 1024 * 1024;
const MAX_WORK_KIB_PASSES: u64 = 2 * 1024 * 1024;
const MAX_P_COST: u32 = 16;
const KIND: &str = "encrypted secret file";

/// The decrypted contents: `"<session id>/<name>"` → value.
pub(super) type Secrets = BTreeMap<String, Secret>;

/// Argon2id costs: memory in KiB, iterations, lanes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct KdfCosts {
    pub(super) m_cost: u32,
    pub(super) t_cost: u32,
    pub(super) p_cost: u32,
}

impl KdfCosts {
    pub(super) fn validate(self) -> std::result::Result<Params, String> {
        let work = u64::from(self.m_cost) * u64::from(self.t_cost);
        if self.m_cost > MAX_M_COST_KIB || work > MAX_WORK_KIB_PASSES || self.p_cost > MAX_P_COST {
            return Err(format!(
                "Argon2id costs m={} KiB, t={}, p={} exceed the limits m<={MAX_M_COST_KIB} KiB, \
                 m×t<={MAX_WORK_KIB_PASSES}, p<={MAX_P_COST} (at most a few seconds per command)",
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

/// A key derived from the passphrase for one salt and set of costs.
pub(super) struct CachedKey {
    kdf: KdfHeader,
    key: Zeroizing<[u8; KEY_LEN]>,
}

#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(super) struct Envelope {
    pub(super) header: Header,
    pub(super) nonce: String,
    ciphertext: String,
}

/// Authenticated as associated data; field order is part of the format.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(super) struct Header {
    format: String,
    version: u32,
    pub(super) kdf: KdfHeader,
    pub(super) aead: String,
}

#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(super) struct KdfHeader {
    pub(super) algorithm: String,
    pub(super) version: u32,
    pub(super) m_cost: u32,
    pub(super) t_cost: u32,
    pub(super) p_cost: u32,
    pub(super) salt: String,
}

impl KdfHeader {
    pub(super) fn costs(&self) -> KdfCosts {
        KdfCosts {
            m_cost: self.m_cost,
            t_cost: self.t_cost,
            p_cost: self.p_cost,
        }
    }
}

/// A parsed and checked envelope, not yet decrypted.
pub(super) struct Sealed {
    pub(super) header: Header,
    salt: Vec<u8>,
    nonce: [u8; NONCE_LEN],
    ciphertext: Vec<u8>,
}

impl KdfHeader {
    /// The header of a new file: Argon2id with `costs` and a fresh random
    /// salt.
    pub(super) fn generate(costs: KdfCosts) -> Result<Self> {
        let mut salt = [0u8; SALT_LEN];
        random(&mut salt)?;
        Ok(KdfHeader {
            algorithm: KDF_ALGORITHM.to_owned(),
            version: KDF_VERSION,
            m_cost: costs.m_cost,
            t_cost: costs.t_cost,
            p_cost: costs.p_cost,
            salt: BASE64.encode(salt),
        })
    }
}

impl Inner {
    /// Parses the envelope and checks every field except the ciphertext's
    /// integrity, which only decryption can check.
    pub(super) fn parse(&self, bytes: &[u8]) -> Result<Sealed> {
        let envelope: Envelope = serde_json::from_slice(bytes).map_err(|e| {
            self.corrupt(
                e.line(),
                e.column(),
                crate::error::without_position(&e.to_string()),
            )
        })?;
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

    pub(super) fn decrypt(&self, sealed: &Sealed) -> Result<Secrets> {
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
    pub(super) fn seal(&self, kdf: KdfHeader, secrets: &Secrets) -> Result<Vec<u8>> {
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

    pub(super) fn corrupt(&self, line: usize, column: usize, message: impl Into<String>) -> Error {
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
