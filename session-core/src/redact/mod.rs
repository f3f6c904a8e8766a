//! Scrubbing secret values out of errors before they are printed, logged or
//! persisted: the [`Redactor`].
//!
//! Providers build their messages from names, ids and service error texts,
//! never from secrets, but a service's error text is not under their
//! control: some BMCs and proxies echo the request body, password included,
//! in their 400 answers. So every error that leaves a
//! [`SessionManager`](crate::SessionManager) operation (returned, recorded
//! in `last_error`, published in an event) first goes through a
//! [`Redactor`] holding every secret value the operation read or wrote and
//! every secret the session has in the store; `sessionctl` prints its
//! errors through one too.
//!
//! - `error`: scrubbing an [`Error`](crate::Error) and its causes;
//! - `watched`: the secret store wrapper behind [`Redactor::watch`].

mod error;
mod watched;

use std::fmt;
use std::sync::{Arc, Mutex};

use crate::{Secret, SecretKey, SecretStore, SessionId};

/// What a secret value is replaced with.
pub const REDACTED: &str = "<redacted>";

/// Values shorter than this many bytes are not scrubbed: they cannot be
/// told from ordinary text (a passphrase `pp` would turn every
/// `unsupported` into `unsu<redacted>orted`), and are no secret worth the
/// name. Default BMC passwords such as `admin` or `calvin` are long enough.
pub const MIN_REDACTED_LEN: usize = 4;

/// A set of secret values to scrub from text and errors.
///
/// Each value is scrubbed as written, JSON-escaped (a service echoing a
/// JSON body) and form-urlencoded (a service echoing a form body), so an
/// echo of the request that carried it is caught too. Clones share the
/// set, so one redactor can [`watch`](Self::watch) a secret store while
/// another part of the program uses it to scrub errors.
///
/// ```
/// use session_core::{Error, ErrorChain, Secret, redact::Redactor};
/// let redactor = Redactor::new();
/// redactor.add(&Secret::new("hunter2"));
/// let echoed = Error::provider("redfish", "bmc", r#"HTTP 400: {"Password":"hunter2"}"#);
/// assert_eq!(
///     ErrorChain(&redactor.error(&echoed)).to_string(),
///     r#"bmc: redfish: HTTP 400: {"Password":"<redacted>"}"#
/// );
/// ```
#[derive(Clone, Default)]
pub struct Redactor {
    values: Arc<Mutex<Vec<Secret>>>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("values", &self.lock().len())
            .finish()
    }
}

impl Redactor {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Secret>> {
        // A panic elsewhere cannot leave the list half-changed.
        self.values.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `secret`; one shorter than [`MIN_REDACTED_LEN`] is ignored.
    pub fn add(&self, secret: &Secret) {
        if secret.expose().len() < MIN_REDACTED_LEN {
            return;
        }
        let mut values = self.lock();
        for form in forms(secret.expose()) {
            let form = Secret::new(form);
            if !values.contains(&form) {
                values.push(form);
            }
        }
        // Longest first, so a secret containing another one is replaced
        // whole rather than leaving its remainder.
        values.sort_by_key(|v| std::cmp::Reverse(v.expose().len()));
    }

    /// Adds every secret `store` holds for `session`. Best effort: a store
    /// that cannot be read adds nothing (the error being scrubbed matters
    /// more than the store's).
    pub async fn add_session(&self, store: &dyn SecretStore, session: SessionId) {
        let Ok(names) = store.names(session).await else {
            return;
        };
        for name in names {
            let Ok(key) = SecretKey::new(session, name) else {
                continue;
            };
            if let Ok(Some(secret)) = store.get(&key).await {
                self.add(&secret);
            }
        }
    }

    /// Whether no value was added.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Whether `text` contains one of the values.
    pub fn finds_in(&self, text: &str) -> bool {
        self.lock().iter().any(|v| text.contains(v.expose()))
    }

    /// `text` with every value replaced by [`REDACTED`].
    pub fn redact(&self, text: &str) -> String {
        let values = self.lock();
        let mut out = text.to_owned();
        for value in values.iter() {
            if out.contains(value.expose()) {
                out = out.replace(value.expose(), REDACTED);
            }
        }
        out
    }

    /// `store`, with every value read from it or written to it added to
    /// this set: give a provider the watched store, and whatever secret it
    /// used can be scrubbed from its errors.
    pub fn watch(&self, store: Arc<dyn SecretStore>) -> Arc<dyn SecretStore> {
        Arc::new(watched::Watched {
            store,
            redactor: self.clone(),
        })
    }
}

/// The forms in which a value can come back in a service's text.
fn forms(value: &str) -> Vec<String> {
    let mut forms = vec![value.to_owned()];
    if let Ok(quoted) = serde_json::to_string(value) {
        forms.push(quoted[1..quoted.len() - 1].to_owned());
    }
    forms.push(form_urlencoded(value));
    forms.sort();
    forms.dedup();
    forms
}

/// `application/x-www-form-urlencoded`, as `serde_urlencoded` (reqwest's
/// `.form()`) writes a value.
fn form_urlencoded(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Error, ErrorChain};

    const CANARY: &str = "CANARY-redact-unit 7f3a&\"x\"";

    #[test]
    fn scrubs_raw_json_and_form_echoes_from_messages_and_causes() {
        let redactor = Redactor::new();
        redactor.add(&Secret::new(CANARY));
        let json = serde_json::to_string(CANARY).expect("json");
        let cause = std::io::Error::other(format!("body was {}", form_urlencoded(CANARY)));
        let error = Error::Unavailable {
            target: format!("bmc {CANARY}"),
            message: format!("HTTP 400: {json}"),
            source: Some(Arc::new(cause)),
        };
        let scrubbed = redactor.error(&error);
        let text = ErrorChain(&scrubbed).to_string();
        assert!(!text.contains("CANARY"), "{text}");
        assert_eq!(text.matches(REDACTED).count(), 3, "{text}");
        assert!(scrubbed.is_retryable(), "the category is kept");
    }

    #[test]
    fn keeps_clean_causes_and_ignores_short_values() {
        let redactor = Redactor::new();
        redactor.add(&Secret::new(""));
        redactor.add(&Secret::new("pp"));
        assert!(redactor.is_empty(), "too short to scrub");
        assert_eq!(redactor.redact("unsupported"), "unsupported");
        redactor.add(&Secret::new("s3cret"));
        let io = std::io::Error::other("disk full");
        let error = Error::storage("/w.json", "cannot write", Some(io));
        let scrubbed = redactor.error(&error);
        let Error::Storage {
            source: Some(cause),
            ..
        } = &scrubbed
        else {
            panic!("{scrubbed:?}")
        };
        assert!(cause.downcast_ref::<std::io::Error>().is_some());
        assert_eq!(redactor.redact("a s3cret b"), "a <redacted> b");
    }

    #[tokio::test]
    async fn a_watched_store_records_what_goes_through_it() {
        let store: Arc<dyn SecretStore> = Arc::new(crate::InMemorySecretStore::new());
        let session = SessionId::new();
        let key = SecretKey::new(session, "password").expect("key");
        store.put(&key, &Secret::new("read-me")).await.expect("put");
        let redactor = Redactor::new();
        let watched = redactor.watch(store.clone());
        watched.get(&key).await.expect("get");
        let token = SecretKey::new(session, "token").expect("key");
        watched
            .put(&token, &Secret::new("written"))
            .await
            .expect("put");
        assert_eq!(redactor.redact("read-me written"), "<redacted> <redacted>");
        let all = Redactor::new();
        all.add_session(&*store, session).await;
        assert_eq!(all.redact("written read-me"), "<redacted> <redacted>");
    }
}
