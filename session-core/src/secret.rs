//! A value that must never be printed or persisted by accident.

use std::fmt;
use std::sync::Arc;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// A secret string: a password, token, key or passphrase.
///
/// - `Debug` and `Display` print `Secret(<redacted>)`, never the value, so a
///   `#[derive(Debug)]` on a struct holding a `Secret` is safe.
/// - The bytes are zeroed when the last clone is dropped.
/// - It has no `Serialize`: a secret reaches a file only through a
///   [`SecretStore`](crate::SecretStore), which encrypts or hands it to the
///   OS keychain.
/// - Equality is constant-time.
///
/// ```
/// use session_core::Secret;
/// let s = Secret::new("hunter2");
/// assert_eq!(format!("{s:?} {s}"), "Secret(<redacted>) Secret(<redacted>)");
/// assert_eq!(s.expose(), "hunter2");
/// ```
#[derive(Clone)]
pub struct Secret(Arc<Zeroizing<String>>);

impl Secret {
    /// Wraps a value. The `String` passed in is moved, not copied.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Arc::new(Zeroizing::new(value.into())))
    }

    /// The value. Call this only where the secret is sent to its destination
    /// (an HTTP header, a signer, the keychain).
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose()
            .as_bytes()
            .ct_eq(other.expose().as_bytes())
            .into()
    }
}

impl Eq for Secret {}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "CANARY-secret-unit-7f3a";

    #[test]
    fn debug_and_display_hide_the_value() {
        let secret = Secret::new(CANARY);
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Holder {
            token: Secret,
        }
        let holder = Holder {
            token: secret.clone(),
        };
        for printed in [
            format!("{secret:?}"),
            format!("{secret:#?}"),
            format!("{secret}"),
            format!("{holder:?}"),
        ] {
            assert!(!printed.contains(CANARY), "leaked in {printed}");
            assert!(printed.contains("redacted"));
        }
        assert_eq!(secret.expose(), CANARY);
    }

    #[test]
    fn equality_compares_values() {
        assert_eq!(Secret::new("a"), Secret::new("a"));
        assert_ne!(Secret::new("a"), Secret::new("b"));
        assert_ne!(Secret::new("a"), Secret::new("ab"));
    }
}
