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
//!
//! # Layout of this module
//!
//! - `envelope`: the file format: the header, the Argon2id key derivation
//!   (with its cache), XChaCha20-Poly1305 sealing and opening, the
//!   plaintext encoding.
//! - `store`: [`EncryptedFileSecretStore`]: reading the file, the
//!   read-modify-write under the lock, the atomic replace, the
//!   [`SecretStore`](super::SecretStore) implementation.

mod envelope;
mod store;
#[cfg(test)]
mod tests;

pub use store::EncryptedFileSecretStore;
