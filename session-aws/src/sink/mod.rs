//! Where started sessions put their credentials so that other programs find
//! them: the shared credentials file (default, [`SharedCredentialsFile`]),
//! a `credential_process` profile, or nowhere (environment / exec only).

use std::fmt;

use session_core::{Result, SessionId};

use crate::AwsCredentials;

/// Which profile a session publishes to, and for which session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkTarget {
    /// The session that owns the entry (recorded in the ownership marker).
    pub session_id: SessionId,
    /// The profile name, e.g. `dev-admin`.
    pub profile: String,
    /// The region to write into the config file's profile, if any.
    pub region: Option<String>,
}

/// Makes credentials available to the AWS provider chain of other programs.
///
/// Implementations must:
/// - touch only entries they own (marked with the session id) and fail with a
///   clear error if an entry they do not own has the name they need;
/// - replace an owned entry in one atomic write (rotation never leaves a
///   moment without valid credentials);
/// - make [`withdraw`](Self::withdraw) idempotent;
/// - leave everything else in the files byte-identical.
#[async_trait::async_trait]
pub trait CredentialSink: Send + Sync + fmt::Debug {
    /// A short name, e.g. `credentials-file`.
    fn name(&self) -> &'static str;

    /// Writes (or replaces) the entry for `target`.
    async fn publish(&self, target: &SinkTarget, credentials: &AwsCredentials) -> Result<()>;

    /// Removes the entry `publish` wrote for `target`; `Ok` if none is there.
    async fn withdraw(&self, target: &SinkTarget) -> Result<()>;
}

/// A sink that publishes nothing: the credentials are only in the secret
/// store, for `sessionctl aws env` / `exec` and for Rust callers.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoSink;

#[async_trait::async_trait]
impl CredentialSink for NoSink {
    fn name(&self) -> &'static str {
        "none"
    }

    async fn publish(&self, _target: &SinkTarget, _credentials: &AwsCredentials) -> Result<()> {
        Ok(())
    }

    async fn withdraw(&self, _target: &SinkTarget) -> Result<()> {
        Ok(())
    }
}

pub mod credentials_file;
pub(crate) mod ini;

pub use credentials_file::SharedCredentialsFile;
