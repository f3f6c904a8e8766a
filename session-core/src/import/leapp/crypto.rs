//! Leapp's file encryption: CryptoJS's passphrase mode, which is OpenSSL
//! `enc -aes-256-cbc -md md5`: base64 of `Salted__`, an 8-byte salt and the
//! AES-256-CBC ciphertext (PKCS#7), key and IV from `EVP_BytesToKey` with
//! MD5 and one iteration. The passphrase is the machine key
//! ([`machine_key`]).
//!
//! `EVP_BytesToKey` is written here (a dozen lines) because no maintained
//! crate offers it on its own; AES, CBC and MD5 are RustCrypto's.

use aes::Aes256;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use md5::{Digest, Md5};
use sha2::Sha256;

/// What precedes the salt in an encrypted file.
const MAGIC: &[u8; 8] = b"Salted__";

/// Why a file could not be decrypted (no secret in it).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DecryptError {
    /// Not base64, or not an OpenSSL salted blob.
    NotEncrypted,
    /// The padding or the UTF-8 is wrong: another key (another machine's),
    /// or a damaged file. The format has no MAC, so the two look alike.
    WrongKey,
}

/// The passphrase Leapp encrypts with: the lowercase hex SHA-256 of the
/// raw machine id (what node-machine-id's `machineIdSync()` returns).
pub fn machine_key(raw_machine_id: &str) -> String {
    hex::encode(Sha256::digest(raw_machine_id.as_bytes()))
}

/// OpenSSL's `EVP_BytesToKey` with MD5, one iteration: 32 bytes of key and
/// 16 of IV.
fn key_and_iv(pass: &[u8], salt: &[u8]) -> ([u8; 32], [u8; 16]) {
    let mut out = [0u8; 48];
    let mut previous: Option<[u8; 16]> = None;
    for chunk in out.chunks_mut(16) {
        let mut h = Md5::new();
        if let Some(p) = previous {
            h.update(p);
        }
        h.update(pass);
        h.update(salt);
        let digest: [u8; 16] = h.finalize().into();
        chunk.copy_from_slice(&digest);
        previous = Some(digest);
    }
    let mut key = [0u8; 32];
    let mut iv = [0u8; 16];
    key.copy_from_slice(&out[..32]);
    iv.copy_from_slice(&out[32..]);
    (key, iv)
}

/// Decrypts a Leapp file's text (surrounding whitespace ignored, as Leapp
/// trims it) with `passphrase`.
pub(crate) fn decrypt(text: &str, passphrase: &str) -> Result<String, DecryptError> {
    let raw = STANDARD
        .decode(text.trim())
        .map_err(|_| DecryptError::NotEncrypted)?;
    if raw.len() < 32 || &raw[..8] != MAGIC || (raw.len() - 16) % 16 != 0 {
        return Err(DecryptError::NotEncrypted);
    }
    let (key, iv) = key_and_iv(passphrase.as_bytes(), &raw[8..16]);
    let plain = cbc::Decryptor::<Aes256>::new(&key.into(), &iv.into())
        .decrypt_padded_vec_mut::<Pkcs7>(&raw[16..])
        .map_err(|_| DecryptError::WrongKey)?;
    String::from_utf8(plain).map_err(|_| DecryptError::WrongKey)
}

/// Encrypts `plain` as Leapp does, with the given salt (Leapp draws a
/// random one). For tests and fixtures: this crate never writes Leapp's
/// files.
pub(crate) fn encrypt_with_salt(plain: &str, passphrase: &str, salt: [u8; 8]) -> String {
    let (key, iv) = key_and_iv(passphrase.as_bytes(), &salt);
    let cipher = cbc::Encryptor::<Aes256>::new(&key.into(), &iv.into())
        .encrypt_padded_vec_mut::<Pkcs7>(plain.trim().as_bytes());
    let mut raw = Vec::with_capacity(16 + cipher.len());
    raw.extend_from_slice(MAGIC);
    raw.extend_from_slice(&salt);
    raw.extend_from_slice(&cipher);
    STANDARD.encode(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The reference's vector: produced by crypto-js 4.2.0, checked with
    // `openssl enc -d -aes-256-cbc -md md5`.
    const RAW_ID: &str = "0123456789abcdef0123456789abcdef";
    const KEY: &str = "3eb1bd439947eb762998e566ccc2e099c791118b2f40579cc4f7da2b5061b7f9";
    const PLAIN: &str = r#"{"_sessions":[],"_workspaceVersion":7}"#;
    const CIPHER: &str =
        "U2FsdGVkX19/bCELL+9TqvZLre3MwPSg3VzsqKUT09erQGFJGGyzvgH3gcG21dkWQKUdnPo/n922vaVXuVHuKA==";

    #[test]
    fn the_reference_vector_both_ways() {
        assert_eq!(machine_key(RAW_ID), KEY);
        let (key, iv) = key_and_iv(KEY.as_bytes(), &hex::decode("7f6c210b2fef53aa").unwrap());
        assert_eq!(
            hex::encode(key),
            "8220ced46eb5c9d625c0a75cc628e5b7c4faebcd1c5148f3ab8f88295ccb0b7c"
        );
        assert_eq!(hex::encode(iv), "a2f624660a58080401ac70faa50214ff");
        assert_eq!(decrypt(&format!("  {CIPHER}\n"), KEY).unwrap(), PLAIN);
        let salt: [u8; 8] = hex::decode("7f6c210b2fef53aa").unwrap().try_into().unwrap();
        assert_eq!(encrypt_with_salt(PLAIN, KEY, salt), CIPHER);
    }

    #[test]
    fn a_wrong_key_or_a_plain_file_is_told_apart() {
        assert_eq!(
            decrypt(CIPHER, &machine_key("another")),
            Err(DecryptError::WrongKey)
        );
        assert_eq!(decrypt(PLAIN, KEY), Err(DecryptError::NotEncrypted));
        assert_eq!(decrypt("U2FsdGVk", KEY), Err(DecryptError::NotEncrypted));
    }
}
