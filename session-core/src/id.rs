//! The session identifier.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Error;

/// A session's identifier: a random (version 4) UUID.
///
/// On disk and on the command line it is the hyphenated lower-case form,
/// e.g. `9b2f2c0e-5d1a-4b43-9a57-6a3c2f0d8e11`.
///
/// ```
/// use session_core::SessionId;
/// let id = SessionId::new();
/// let parsed: SessionId = id.to_string().parse()?;
/// assert_eq!(id, parsed);
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(Uuid);

impl SessionId {
    /// A new random identifier.
    #[allow(clippy::new_without_default)] // a `Default` that is random would surprise
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }

    /// Wraps an existing UUID (for example one read from another tool's file).
    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// An identifier derived from `key` within `namespace`: the same pair
    /// gives the same id on every machine and run, different pairs
    /// different ids (a SHA-256 of both, shaped as a v4 UUID). For
    /// importers, so that importing the same thing twice finds it.
    pub fn derived(namespace: &str, key: &str) -> Self {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(namespace.as_bytes())
            .chain_update([0u8])
            .chain_update(key.as_bytes())
            .finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Self(uuid::Builder::from_random_bytes(bytes).into_uuid())
    }

    /// The UUID inside.
    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.0.hyphenated())
    }
}

impl FromStr for SessionId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s)
            .map(Self)
            .map_err(|e| Error::invalid_input("session id", format!("{s:?} is not a UUID: {e}")))
    }
}
