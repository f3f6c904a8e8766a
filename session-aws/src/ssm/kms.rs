//! KMS-encrypted sessions (`ssm.md` §2.8; feature `ssm-kms`).
//!
//! When the account's Session Manager preferences name a KMS key, the
//! agent's HandshakeRequest asks for `KMSEncryption`. The client then asks
//! KMS for a 64-byte data key under that key, bound to the session by the
//! encryption context `aws:ssm:SessionId` / `aws:ssm:TargetId`, and hands
//! the agent the encrypted copy; the agent decrypts it with its own KMS
//! rights. Each side then seals its Output payloads with AES-256-GCM, the
//! client with the second half of the key and the agent with the first.
//!
//! - [`DataKeySource`]: where data keys come from; [`KmsDataKeys`] is KMS
//!   through `aws-sdk-kms`, built by
//!   [`SsmClientConfig`](super::SsmClientConfig) with the session's own
//!   credentials, region, retries and time-outs (and the KMS endpoint
//!   override), so that a session signed with a role uses that role for
//!   KMS too;
//! - [`PayloadCipher`]: the two AES-256-GCM keys and the payload format
//!   `nonce(12) ‖ ciphertext ‖ tag(16)`, no associated data.
//!
//! The AES-GCM itself is the `aes-gcm` crate's; only the framing (which
//! half seals which direction, the nonce in front) is ours.

use std::collections::BTreeMap;
use std::fmt;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Nonce};
use async_trait::async_trait;
use aws_sdk_kms::primitives::Blob;
use session_core::{Error, Result};
use zeroize::Zeroizing;

use crate::error;

/// Bytes of the data key the client asks for: two AES-256 keys.
pub const DATA_KEY_BYTES: usize = 64;
/// Bytes of the nonce in front of every encrypted payload.
pub const NONCE_BYTES: usize = 12;
/// Bytes of the GCM tag at the end of every encrypted payload.
pub const TAG_BYTES: usize = 16;
/// Encryption-context key naming the SSM session.
pub const CONTEXT_SESSION_ID: &str = "aws:ssm:SessionId";
/// Encryption-context key naming the managed node.
pub const CONTEXT_TARGET_ID: &str = "aws:ssm:TargetId";

/// The encryption context of a session's data key: exactly the two entries
/// the agent decrypts with (any other context makes its Decrypt fail).
pub fn encryption_context(session_id: &str, target_id: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (CONTEXT_SESSION_ID.to_owned(), session_id.to_owned()),
        (CONTEXT_TARGET_ID.to_owned(), target_id.to_owned()),
    ])
}

/// What [`DataKeySource::generate_data_key`] is asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DataKeyRequest {
    /// The KMS key the agent named (id, ARN or alias).
    pub key_id: String,
    /// The encryption context ([`encryption_context`]).
    pub encryption_context: BTreeMap<String, String>,
    /// Bytes of plaintext key ([`DATA_KEY_BYTES`]).
    pub number_of_bytes: usize,
}

impl DataKeyRequest {
    /// The request for the session `session_id` on `target_id` under
    /// `key_id`.
    pub fn for_session(key_id: &str, session_id: &str, target_id: &str) -> Self {
        Self {
            key_id: key_id.to_owned(),
            encryption_context: encryption_context(session_id, target_id),
            number_of_bytes: DATA_KEY_BYTES,
        }
    }
}

/// A data key: the plaintext (wiped on drop, never printed) and the
/// ciphertext blob handed to the agent.
pub struct DataKey {
    plaintext: Zeroizing<Vec<u8>>,
    ciphertext_blob: Vec<u8>,
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey")
            .field("plaintext", &"<redacted>")
            .field("ciphertext_blob_len", &self.ciphertext_blob.len())
            .finish()
    }
}

impl DataKey {
    /// A data key from its parts.
    pub fn new(plaintext: Vec<u8>, ciphertext_blob: Vec<u8>) -> Self {
        Self {
            plaintext: Zeroizing::new(plaintext),
            ciphertext_blob,
        }
    }

    /// The encrypted copy for the agent.
    pub fn ciphertext_blob(&self) -> &[u8] {
        &self.ciphertext_blob
    }

    /// The two payload keys.
    ///
    /// # Errors
    ///
    /// [`Error::Provider`] when the plaintext is not [`DATA_KEY_BYTES`] long.
    pub fn cipher(&self) -> Result<PayloadCipher> {
        PayloadCipher::from_data_key(&self.plaintext)
    }
}

/// Where the data keys of encrypted sessions come from.
#[async_trait]
pub trait DataKeySource: Send + Sync + fmt::Debug {
    /// A new data key for `request`.
    ///
    /// # Errors
    ///
    /// The service's, mapped onto the core's categories, naming the key and
    /// the cause (access denied, key disabled or missing, …).
    async fn generate_data_key(&self, request: &DataKeyRequest) -> Result<DataKey>;
}

/// [`DataKeySource`] through KMS `GenerateDataKey` (`aws-sdk-kms`).
#[derive(Clone, Debug)]
pub struct KmsDataKeys {
    client: aws_sdk_kms::Client,
    label: String,
}

impl KmsDataKeys {
    /// Data keys from `client`; `label` names the session in errors. (Made
    /// by [`SsmApi::data_keys`](super::SsmApi::data_keys), so that callers
    /// never hold a KMS client apart from the session's credentials.)
    pub(crate) fn new(client: aws_sdk_kms::Client, label: &str) -> Self {
        Self {
            client,
            label: label.to_owned(),
        }
    }
}

#[async_trait]
impl DataKeySource for KmsDataKeys {
    async fn generate_data_key(&self, request: &DataKeyRequest) -> Result<DataKey> {
        let bytes = i32::try_from(request.number_of_bytes).unwrap_or(i32::MAX);
        let output = self
            .client
            .generate_data_key()
            .key_id(&request.key_id)
            .number_of_bytes(bytes)
            .set_encryption_context(Some(
                request
                    .encryption_context
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ))
            .send()
            .await
            .map_err(|e| kms_error(&self.label, &request.key_id, e))?;
        let plaintext = output.plaintext.map(Blob::into_inner).unwrap_or_default();
        let blob = output
            .ciphertext_blob
            .map(Blob::into_inner)
            .unwrap_or_default();
        if plaintext.len() != request.number_of_bytes || blob.is_empty() {
            return Err(Error::Provider {
                provider: "aws-kms".into(),
                target: self.label.clone(),
                message: format!(
                    "KMS GenerateDataKey on key {}: answered {} plaintext bytes and {} \
                     ciphertext bytes, not {} and some",
                    request.key_id,
                    plaintext.len(),
                    blob.len(),
                    request.number_of_bytes
                ),
                retryable: false,
                source: None,
            });
        }
        Ok(DataKey::new(plaintext, blob))
    }
}

/// An error of `GenerateDataKey` on `key_id`, with what to do about the
/// usual causes.
fn kms_error<E, R>(label: &str, key_id: &str, err: aws_sdk_kms::error::SdkError<E, R>) -> Error
where
    E: aws_sdk_kms::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: fmt::Debug,
{
    let code = match &err {
        aws_sdk_kms::error::SdkError::ServiceError(failed) => {
            failed.err().code().map(str::to_owned)
        }
        _ => None,
    };
    let call = format!("KMS GenerateDataKey on key {key_id}");
    let mapped = error::from_sdk_of("aws-kms", &call, label, err);
    let hint = match code.as_deref() {
        Some("DisabledException") => {
            "the key is disabled: enable it, or name another key in the Session Manager preferences"
        }
        Some("NotFoundException") => {
            "no such key in this account and region: check the key in the Session Manager preferences"
        }
        Some("KMSInvalidStateException") => {
            "the key is not usable in its current state (pending deletion or import)"
        }
        Some("AccessDeniedException") => {
            "the session's credentials may not call kms:GenerateDataKey on this key"
        }
        _ => return mapped,
    };
    match mapped {
        Error::PermissionDenied { target, message } => Error::PermissionDenied {
            target,
            message: format!("{message} ({hint})"),
        },
        Error::Provider {
            provider,
            target,
            message,
            retryable,
            source,
        } => Error::Provider {
            provider,
            target,
            message: format!("{message} ({hint})"),
            retryable,
            source,
        },
        other => other,
    }
}

/// The two AES-256-GCM keys of an encrypted session, as the client holds
/// them: data-key bytes 0..32 open what the agent sealed, bytes 32..64
/// seal what the client sends.
#[derive(Clone)]
pub struct PayloadCipher {
    open: Aes256Gcm,
    seal: Aes256Gcm,
}

impl fmt::Debug for PayloadCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PayloadCipher(<redacted>)")
    }
}

impl PayloadCipher {
    /// The client's keys from a 64-byte data key.
    ///
    /// # Errors
    ///
    /// [`Error::Provider`] when `data_key` is not 64 bytes.
    pub fn from_data_key(data_key: &[u8]) -> Result<Self> {
        let wrong = || Error::Provider {
            provider: "aws-kms".into(),
            target: "data key".into(),
            message: format!(
                "a data key of {} bytes; KMS encryption needs {DATA_KEY_BYTES}",
                data_key.len()
            ),
            retryable: false,
            source: None,
        };
        if data_key.len() != DATA_KEY_BYTES {
            return Err(wrong());
        }
        let (open, seal) = data_key.split_at(DATA_KEY_BYTES / 2);
        Ok(Self {
            open: Aes256Gcm::new_from_slice(open).map_err(|_| wrong())?,
            seal: Aes256Gcm::new_from_slice(seal).map_err(|_| wrong())?,
        })
    }

    /// Seals `plaintext` for the agent with a fresh random nonce.
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        self.seal_with_nonce(&nonce.into(), plaintext)
    }

    /// Seals `plaintext` with a given nonce (the golden vectors; never
    /// reuse a nonce in a session).
    pub fn seal_with_nonce(&self, nonce: &[u8; NONCE_BYTES], plaintext: &[u8]) -> Vec<u8> {
        let sealed = self
            .seal
            .encrypt(Nonce::from_slice(nonce), plaintext)
            // Only a plaintext beyond GCM's 64 GiB limit fails.
            .unwrap_or_default();
        let mut payload = Vec::with_capacity(NONCE_BYTES + sealed.len());
        payload.extend_from_slice(nonce);
        payload.extend_from_slice(&sealed);
        payload
    }

    /// Opens a payload the agent sealed.
    ///
    /// # Errors
    ///
    /// [`OpenError`] when it is too short or does not authenticate (a
    /// wrong key, or altered bytes).
    pub fn open(&self, payload: &[u8]) -> std::result::Result<Vec<u8>, OpenError> {
        if payload.len() < NONCE_BYTES + TAG_BYTES {
            return Err(OpenError::TooShort(payload.len()));
        }
        let (nonce, sealed) = payload.split_at(NONCE_BYTES);
        self.open
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map_err(|_| OpenError::NotAuthentic)
    }

    /// Answers the agent's challenge: opens it with the client's
    /// decryption key and seals it again with its encryption key.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn answer_challenge(&self, challenge: &[u8]) -> std::result::Result<Vec<u8>, OpenError> {
        self.open(challenge).map(|plain| self.seal(&plain))
    }
}

/// A payload that [`PayloadCipher::open`] refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Shorter than a nonce and a tag.
    #[error("an encrypted payload of {0} bytes, shorter than nonce and tag (28)")]
    TooShort(usize),
    /// The tag did not match: another key, or altered bytes.
    #[error("an encrypted payload that does not authenticate (another key, or altered bytes)")]
    NotAuthentic,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_key() -> Vec<u8> {
        (0u8..64).collect()
    }

    fn nonce() -> [u8; NONCE_BYTES] {
        core::array::from_fn(|i| u8::try_from(i).unwrap_or(0))
    }

    /// Vector K1 (tunnel-peers.md §2): the client seals with bytes 32..64.
    #[test]
    fn k1_client_to_agent() {
        let cipher = PayloadCipher::from_data_key(&data_key()).unwrap();
        assert_eq!(
            hex::encode(cipher.seal_with_nonce(&nonce(), b"hello\r")),
            "000102030405060708090a0b343731cb2538e739aa02c00c69380033697ac4c3135f"
        );
    }

    /// Vector K2: the client opens with bytes 0..32.
    #[test]
    fn k2_agent_to_client() {
        let cipher = PayloadCipher::from_data_key(&data_key()).unwrap();
        let payload =
            hex::decode("000102030405060708090a0b2869dc32dfb8ed6e2c1f00474029301fb3b434").unwrap();
        assert_eq!(cipher.open(&payload).unwrap(), b"ok\n");
    }

    #[test]
    fn altered_or_short_payloads_are_refused() {
        let cipher = PayloadCipher::from_data_key(&data_key()).unwrap();
        let mut payload =
            hex::decode("000102030405060708090a0b2869dc32dfb8ed6e2c1f00474029301fb3b434").unwrap();
        payload[14] ^= 1;
        assert_eq!(cipher.open(&payload), Err(OpenError::NotAuthentic));
        assert_eq!(cipher.open(&[0; 27]), Err(OpenError::TooShort(27)));
        // What the client sealed itself is not for its opening key.
        let own = cipher.seal(b"x");
        assert_eq!(cipher.open(&own), Err(OpenError::NotAuthentic));
    }

    #[test]
    fn fresh_nonces_and_wrong_key_lengths() {
        let cipher = PayloadCipher::from_data_key(&data_key()).unwrap();
        assert_ne!(cipher.seal(b"same"), cipher.seal(b"same"));
        let error = PayloadCipher::from_data_key(&[0; 32]).unwrap_err();
        assert!(error.to_string().contains("32 bytes"), "{error}");
    }

    #[test]
    fn debug_never_shows_keys() {
        let key = DataKey::new(vec![0x41; 64], vec![1, 2, 3]);
        let shown = format!("{key:?} {:?}", key.cipher().unwrap());
        assert!(!shown.contains("65") && !shown.contains("AAAA"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }

    #[test]
    fn the_context_has_exactly_the_two_entries() {
        let request = DataKeyRequest::for_session("alias/k", "s-1", "i-2");
        assert_eq!(request.number_of_bytes, 64);
        assert_eq!(
            request.encryption_context.into_iter().collect::<Vec<_>>(),
            vec![
                ("aws:ssm:SessionId".to_owned(), "s-1".to_owned()),
                ("aws:ssm:TargetId".to_owned(), "i-2".to_owned())
            ]
        );
    }
}
