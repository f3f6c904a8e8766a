//! KMS-encrypted sessions (`ssm.md` §2.7 step 3 and §2.8): the agent's
//! KMS service ([`KmsDecrypt`]: [`MotoKms`] against moto's KMS, or
//! [`StaticKms`] without any peer), the scenario knob ([`KmsScenario`]),
//! and the payload cipher: `nonce(12) ‖ AES-256-GCM ciphertext ‖ tag(16)`,
//! no AAD.
//!
//! Key halves of the 64-byte data key: bytes `0..32` are the client's
//! decryption key, which is the agent's **encryption** key; bytes `32..64`
//! are the client's encryption key, the agent's **decryption** key
//! ([`SessionKeys::from_data_key`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, rand_core::RngCore};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use futures::future::BoxFuture;
use serde_json::{Value, json};

/// Length of a GCM nonce at the front of an encrypted payload.
pub const NONCE_LEN: usize = 12;
/// Length of the GCM tag at the end of an encrypted payload.
pub const TAG_LEN: usize = 16;
/// Length of the data key the client asks KMS for (`NumberOfBytes`).
pub const DATA_KEY_LEN: usize = 64;
/// The encryption-context key naming the session.
pub const CONTEXT_SESSION_ID: &str = "aws:ssm:SessionId";
/// The encryption-context key naming the target.
pub const CONTEXT_TARGET_ID: &str = "aws:ssm:TargetId";
/// `CustomerMessage` of the HandshakeComplete of an encrypted session.
pub const KMS_CUSTOMER_MESSAGE: &str = "This session is encrypted using AWS KMS.";

/// The KMS `Decrypt` call the agent makes with the client's ciphertext
/// blob.
pub trait KmsDecrypt: Send + Sync + fmt::Debug {
    /// Decrypts `ciphertext_blob` under `encryption_context`; the error is
    /// the service's, as `"<__type>: <message>"` (e.g.
    /// `InvalidCiphertextException: …`).
    fn decrypt(
        &self,
        ciphertext_blob: Vec<u8>,
        encryption_context: BTreeMap<String, String>,
    ) -> BoxFuture<'static, Result<Vec<u8>, String>>;
}

/// KMS in a scenario ([`AgentScenario::kms`](super::AgentScenario::kms)):
/// the HandshakeRequest asks for `KMSEncryption` with `key_id`, and the
/// agent decrypts the client's blob with `service`.
#[derive(Debug, Clone)]
pub struct KmsScenario {
    /// `KMSKeyId` of the `KMSEncryption` action.
    pub key_id: String,
    /// The KMS the agent calls `Decrypt` on.
    pub service: Arc<dyn KmsDecrypt>,
    /// "KMS slow": how long the agent waits before its `Decrypt` call.
    pub delay: Duration,
}

impl KmsScenario {
    /// `key_id` decrypted by `service`, without delay.
    pub fn new(key_id: impl Into<String>, service: Arc<dyn KmsDecrypt>) -> Self {
        Self {
            key_id: key_id.into(),
            service,
            delay: Duration::ZERO,
        }
    }
}

impl PartialEq for KmsScenario {
    /// Same key id, same delay and the same service instance.
    fn eq(&self, other: &Self) -> bool {
        self.key_id == other.key_id
            && self.delay == other.delay
            && Arc::ptr_eq(&self.service, &other.service)
    }
}

impl Eq for KmsScenario {}

/// The agent's two keys of one session.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys {
    /// Encrypts the agent's Output, StdErr and ExitCode payloads (data key
    /// bytes `0..32`, the client's decryption key).
    pub agent_encryption: [u8; 32],
    /// Decrypts the client's Output payloads (data key bytes `32..64`, the
    /// client's encryption key).
    pub agent_decryption: [u8; 32],
}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionKeys").finish_non_exhaustive()
    }
}

impl SessionKeys {
    /// The agent's keys from a 64-byte data key; `None` for another length.
    pub fn from_data_key(data_key: &[u8]) -> Option<Self> {
        if data_key.len() != DATA_KEY_LEN {
            return None;
        }
        let mut keys = Self {
            agent_encryption: [0; 32],
            agent_decryption: [0; 32],
        };
        keys.agent_encryption.copy_from_slice(&data_key[..32]);
        keys.agent_decryption.copy_from_slice(&data_key[32..]);
        Some(keys)
    }
}

/// `nonce ‖ AES-256-GCM(key, plaintext) ‖ tag` with the given nonce.
pub fn seal_with_nonce(key: &[u8; 32], nonce: &[u8; NONCE_LEN], plaintext: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    let sealed = cipher
        .encrypt(Nonce::from_slice(nonce), plaintext)
        .expect("AES-GCM encryption of a payload cannot fail");
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(nonce);
    out.extend_from_slice(&sealed);
    out
}

/// `nonce ‖ AES-256-GCM(key, plaintext) ‖ tag` with a fresh random nonce.
pub fn seal(key: &[u8; 32], plaintext: &[u8]) -> Vec<u8> {
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let mut n = [0u8; NONCE_LEN];
    n.copy_from_slice(&nonce);
    seal_with_nonce(key, &n, plaintext)
}

/// Opens a payload made by [`seal`] (or the client's equivalent).
pub fn open(key: &[u8; 32], payload: &[u8]) -> Result<Vec<u8>, String> {
    if payload.len() < NONCE_LEN + TAG_LEN {
        return Err(format!(
            "encrypted payload of {} bytes is shorter than nonce + tag",
            payload.len()
        ));
    }
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    cipher
        .decrypt(
            Nonce::from_slice(&payload[..NONCE_LEN]),
            &payload[NONCE_LEN..],
        )
        .map_err(|_| "AES-GCM authentication failed".to_owned())
}

/// `n` random bytes (the challenge).
pub(crate) fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    OsRng.fill_bytes(&mut buf);
    buf
}

/// Base64 (standard alphabet, padded), as KMS blobs and challenges travel.
pub fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// Decodes standard base64.
pub fn unb64(text: &str) -> Result<Vec<u8>, String> {
    B64.decode(text).map_err(|e| format!("not base64: {e}"))
}

/// The encryption context of a session (`ssm.md` §2.8).
pub fn session_context(session_id: &str, target_id: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (CONTEXT_SESSION_ID.to_owned(), session_id.to_owned()),
        (CONTEXT_TARGET_ID.to_owned(), target_id.to_owned()),
    ])
}

// ----- StaticKms ------------------------------------------------------------

const STATIC_MARKER: &[u8] = b"static-kms:v1:";

/// A KMS without a peer, for unit tests: one fixed 64-byte data key. Its
/// "ciphertext blob" ([`blob_for`](Self::blob_for)) is
/// `static-kms:v1:` followed by the JSON of the encryption context it was
/// made for; [`decrypt`](KmsDecrypt::decrypt) answers the data key when the
/// context matches, else `InvalidCiphertextException`.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticKms {
    data_key: [u8; DATA_KEY_LEN],
}

impl fmt::Debug for StaticKms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKms").finish_non_exhaustive()
    }
}

impl Default for StaticKms {
    /// The data key of `tunnel-peers.md` §2 item 5: bytes `00..3f`.
    fn default() -> Self {
        let mut data_key = [0u8; DATA_KEY_LEN];
        for (i, b) in data_key.iter_mut().enumerate() {
            *b = i as u8;
        }
        Self { data_key }
    }
}

impl StaticKms {
    /// A KMS whose every blob decrypts to `data_key`.
    pub fn new(data_key: [u8; DATA_KEY_LEN]) -> Self {
        Self { data_key }
    }

    /// The data key (what `GenerateDataKey` would answer as `Plaintext`).
    pub fn data_key(&self) -> [u8; DATA_KEY_LEN] {
        self.data_key
    }

    /// The blob a client sends for `context` (the `CiphertextBlob` of
    /// `GenerateDataKey`).
    pub fn blob_for(&self, context: &BTreeMap<String, String>) -> Vec<u8> {
        let mut blob = STATIC_MARKER.to_vec();
        blob.extend_from_slice(&serde_json::to_vec(context).unwrap_or_default());
        blob
    }
}

impl KmsDecrypt for StaticKms {
    fn decrypt(
        &self,
        ciphertext_blob: Vec<u8>,
        encryption_context: BTreeMap<String, String>,
    ) -> BoxFuture<'static, Result<Vec<u8>, String>> {
        let result = match ciphertext_blob.strip_prefix(STATIC_MARKER) {
            None => Err("InvalidCiphertextException: not a StaticKms blob".to_owned()),
            Some(json) => match serde_json::from_slice::<BTreeMap<String, String>>(json) {
                Ok(made_for) if made_for == encryption_context => Ok(self.data_key.to_vec()),
                Ok(made_for) => Err(format!(
                    "InvalidCiphertextException: encryption context {encryption_context:?} \
                     differs from the blob's {made_for:?}"
                )),
                Err(e) => Err(format!(
                    "InvalidCiphertextException: malformed StaticKms blob: {e}"
                )),
            },
        };
        Box::pin(async move { result })
    }
}

// ----- MotoKms --------------------------------------------------------------

/// moto's KMS (`TrentService`, AWS JSON 1.1) at `http://127.0.0.1:<port>`.
///
/// Requests carry a well-formed but unsigned SigV4 `Authorization` header
/// (`Credential=testing/20260101/us-east-1/kms/aws4_request`): moto routes
/// on it (without one it answers as S3) and takes the region from it; it
/// does not check the signature. Errors become `"<__type>: <message>"`, or
/// only `<__type>` when moto sends no message (it sends none with
/// `InvalidCiphertextException`).
///
/// Observed with moto 5: a wrong or missing `EncryptionContext` answers
/// 400 `InvalidCiphertextException`; a disabled key still decrypts and
/// still generates data keys (moto does not model `DisabledException`);
/// `DisableKey` needs the bare key id (an ARN gives a 500), so
/// [`disable_key`](Self::disable_key) strips an ARN to it.
#[derive(Debug, Clone)]
pub struct MotoKms {
    endpoint: String,
    http: reqwest::Client,
}

/// The `Authorization` header of [`MotoKms`] requests.
const MOTO_AUTHORIZATION: &str = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=00";

impl MotoKms {
    /// KMS at `endpoint_url` (e.g. [`MotoServer::endpoint_url`](crate::peers::moto::MotoServer::endpoint_url)).
    pub fn new(endpoint_url: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint_url.into(),
            http: reqwest::Client::new(),
        }
    }

    /// The endpoint URL.
    pub fn endpoint_url(&self) -> &str {
        &self.endpoint
    }

    async fn call(
        http: &reqwest::Client,
        endpoint: &str,
        operation: &str,
        body: Value,
    ) -> Result<Value, String> {
        let resp = http
            .post(endpoint)
            .header("Content-Type", "application/x-amz-json-1.1")
            .header("X-Amz-Target", format!("TrentService.{operation}"))
            .header("Authorization", MOTO_AUTHORIZATION)
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("KMS {operation} request failed: {e}"))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| format!("KMS {operation} answer unreadable: {e}"))?;
        let value: Option<Value> = serde_json::from_str(&text).ok();
        if status.is_success() {
            return Ok(value.unwrap_or(Value::Null));
        }
        let field = |name: &str| {
            value
                .as_ref()
                .and_then(|v| v.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        Err(match (field("__type"), field("message")) {
            (Some(t), Some(m)) if !m.is_empty() => format!("{t}: {m}"),
            (Some(t), _) => t,
            _ => format!(
                "KMS {operation}: HTTP {status}: {}",
                text.chars().take(200).collect::<String>()
            ),
        })
    }

    /// `CreateKey` (symmetric, default spec); returns the key's ARN.
    ///
    /// # Panics
    ///
    /// When moto refuses.
    pub async fn create_key(&self) -> String {
        let out = Self::call(&self.http, &self.endpoint, "CreateKey", json!({}))
            .await
            .expect("KMS CreateKey");
        out["KeyMetadata"]["Arn"]
            .as_str()
            .expect("CreateKey answered no KeyMetadata.Arn")
            .to_owned()
    }

    /// `DisableKey` of `key_id` (a key id or a key ARN).
    ///
    /// # Panics
    ///
    /// When moto refuses.
    pub async fn disable_key(&self, key_id: &str) {
        let id = key_id.rsplit("key/").next().unwrap_or(key_id);
        Self::call(
            &self.http,
            &self.endpoint,
            "DisableKey",
            json!({ "KeyId": id }),
        )
        .await
        .expect("KMS DisableKey");
    }

    /// `GenerateDataKey` of `number_of_bytes` under `context`, as the
    /// client calls it: `(Plaintext, CiphertextBlob)`.
    pub async fn generate_data_key(
        &self,
        key_id: &str,
        number_of_bytes: u32,
        context: &BTreeMap<String, String>,
    ) -> Result<(Vec<u8>, Vec<u8>), String> {
        let out = Self::call(
            &self.http,
            &self.endpoint,
            "GenerateDataKey",
            json!({
                "KeyId": key_id,
                "NumberOfBytes": number_of_bytes,
                "EncryptionContext": context,
            }),
        )
        .await?;
        let field = |name: &str| {
            out.get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("GenerateDataKey answered no {name}"))
                .and_then(unb64)
        };
        Ok((field("Plaintext")?, field("CiphertextBlob")?))
    }
}

impl KmsDecrypt for MotoKms {
    fn decrypt(
        &self,
        ciphertext_blob: Vec<u8>,
        encryption_context: BTreeMap<String, String>,
    ) -> BoxFuture<'static, Result<Vec<u8>, String>> {
        let (http, endpoint) = (self.http.clone(), self.endpoint.clone());
        Box::pin(async move {
            let out = Self::call(
                &http,
                &endpoint,
                "Decrypt",
                json!({
                    "CiphertextBlob": b64(&ciphertext_blob),
                    "EncryptionContext": encryption_context,
                }),
            )
            .await?;
            out.get("Plaintext")
                .and_then(Value::as_str)
                .ok_or_else(|| "KMS Decrypt answered no Plaintext".to_owned())
                .and_then(unb64)
        })
    }
}
