//! The one public error type: categories a caller can act on.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::SessionStatus;

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The cause behind an error. It is an `Arc` so that [`Error`] is `Clone`:
/// the manager hands one provider result to every caller that joined a
/// single-flight operation.
pub type BoxError = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong, as categories a caller can match on.
///
/// - `Display` prints this layer only; the cause, if any, is in
///   [`source()`](std::error::Error::source). Print the whole chain with
///   [`ErrorChain`].
/// - Messages name what was wrong and, for session operations, which session
///   (`session 'prod' (9b2f…)`).
/// - Messages never contain secrets: providers build them from names, ids and
///   service error codes, never from tokens, passwords or request bodies.
/// - [`Error::is_retryable`] is true only when repeating the same call may
///   succeed without anything else changing.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A session, secret, file or remote resource does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. `session 'prod'`.
        what: String,
    },

    /// Something with the same identity already exists.
    #[error("{what} already exists")]
    AlreadyExists {
        /// What collided, e.g. `session 9b2f…`.
        what: String,
    },

    /// An argument or configuration value is missing or malformed.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The field, flag, key or variable that was wrong.
        field: String,
        /// Why it was refused.
        reason: String,
    },

    /// The status change is not in the transition table of [`SessionStatus`].
    #[error("{session}: cannot go from {from} to {to}")]
    InvalidTransition {
        /// The session, as `session 'name' (id)`.
        session: String,
        /// The status it has.
        from: SessionStatus,
        /// The status that was asked for.
        to: SessionStatus,
    },

    /// Credentials are missing, wrong or expired (HTTP 401, `ExpiredToken`, …).
    #[error("{target}: not authenticated: {message}")]
    Unauthenticated {
        /// What the call acted on, e.g. `session 'prod' (9b2f…)`.
        target: String,
        /// The service's reason, without secrets.
        message: String,
    },

    /// The credentials are valid but not allowed to do this (HTTP 403, `AccessDenied`).
    #[error("{target}: permission denied: {message}")]
    PermissionDenied {
        /// What the call acted on.
        target: String,
        /// The service's reason, without secrets.
        message: String,
    },

    /// Optimistic concurrency: another writer changed the record since it was read.
    #[error(
        "{what} was changed by another writer (expected revision {expected}, found {found}); reload it and retry"
    )]
    Conflict {
        /// The record, e.g. `session 'prod' (9b2f…)`.
        what: String,
        /// The revision the caller had.
        expected: u64,
        /// The revision in the store.
        found: u64,
    },

    /// The provider or build does not offer this operation.
    #[error("{provider} does not support {operation}")]
    Unsupported {
        /// The provider or component, e.g. `redfish`, or `feature \`aws\``.
        provider: String,
        /// What was asked, e.g. `rotate`.
        operation: String,
    },

    /// The service asked us to slow down (HTTP 429, `Throttling`). Retryable.
    #[error("{target}: throttled by the service{}", RetryAfter(*.retry_after))]
    Throttled {
        /// What the call acted on.
        target: String,
        /// How long the service asked us to wait, if it said.
        retry_after: Option<Duration>,
    },

    /// No answer in time. Retryable.
    #[error("{target}: timed out after {after:?}")]
    Timeout {
        /// What the call acted on.
        target: String,
        /// How long we waited.
        after: Duration,
    },

    /// The service or the network is down (HTTP 5xx, connection refused). Retryable.
    #[error("{target}: service unavailable: {message}")]
    Unavailable {
        /// What the call acted on.
        target: String,
        /// What failed.
        message: String,
        /// The transport error, if any.
        #[source]
        source: Option<BoxError>,
    },

    /// Reading or writing local state (workspace file, lock, secret file) failed.
    #[error("{}: {message}", path.display())]
    Storage {
        /// The file involved.
        path: PathBuf,
        /// What was being done and what failed.
        message: String,
        /// The I/O error.
        #[source]
        source: Option<BoxError>,
    },

    /// A file this crate owns is not valid. It was left exactly as it was.
    #[error(
        "{}: not a valid {kind} at line {line}, column {column}: {message} (the file was left untouched)",
        path.display()
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the file should be, e.g. `workspace file`.
        kind: String,
        /// 1-based line of the problem (0 if unknown).
        line: usize,
        /// 1-based column of the problem (0 if unknown).
        column: usize,
        /// What is wrong there.
        message: String,
    },

    /// The secret store failed (keychain locked, wrong passphrase, …).
    #[error("secret store: {message}")]
    SecretStore {
        /// What failed; never the secret itself.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },

    /// A provider-specific failure that fits no category above.
    #[error("{target}: {provider}: {message}")]
    Provider {
        /// The provider, e.g. `aws-sts`.
        provider: String,
        /// What the call acted on.
        target: String,
        /// The service's error code and message, without secrets.
        message: String,
        /// Whether the same call may succeed if repeated.
        retryable: bool,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },

    /// The operation was abandoned because the manager or scheduler shut down.
    #[error("{operation} cancelled: {reason}")]
    Cancelled {
        /// What was abandoned.
        operation: String,
        /// Why.
        reason: String,
    },
}

struct RetryAfter(Option<Duration>);

impl fmt::Display for RetryAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(after) => write!(f, " (retry after {}s)", after.as_secs()),
            None => Ok(()),
        }
    }
}

impl Error {
    /// Whether repeating the same call may succeed: true for
    /// [`Throttled`](Error::Throttled), [`Timeout`](Error::Timeout),
    /// [`Unavailable`](Error::Unavailable), and a
    /// [`Provider`](Error::Provider) error marked retryable. Nothing else is.
    ///
    /// Retrying is only safe for idempotent operations: `stop` may be
    /// repeated, a repeated `start` may issue a second set of credentials.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Throttled { .. } | Error::Timeout { .. } | Error::Unavailable { .. } => true,
            Error::Provider { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// A short stable name of the category (`not_found`, `conflict`, …), used
    /// in `last_error`, events and the CLI's JSON.
    pub fn category(&self) -> &'static str {
        match self {
            Error::NotFound { .. } => "not_found",
            Error::AlreadyExists { .. } => "already_exists",
            Error::InvalidInput { .. } => "invalid_input",
            Error::InvalidTransition { .. } => "invalid_transition",
            Error::Unauthenticated { .. } => "unauthenticated",
            Error::PermissionDenied { .. } => "permission_denied",
            Error::Conflict { .. } => "conflict",
            Error::Unsupported { .. } => "unsupported",
            Error::Throttled { .. } => "throttled",
            Error::Timeout { .. } => "timeout",
            Error::Unavailable { .. } => "unavailable",
            Error::Storage { .. } => "storage",
            Error::Corrupt { .. } => "corrupt",
            Error::SecretStore { .. } => "secret_store",
            Error::Provider { .. } => "provider",
            Error::Cancelled { .. } => "cancelled",
        }
    }

    /// [`Error::InvalidInput`] for `field`.
    pub fn invalid_input(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// [`Error::NotFound`] for `what`.
    pub fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound { what: what.into() }
    }

    /// [`Error::Storage`] for `path`, with an optional cause.
    pub fn storage(
        path: impl Into<PathBuf>,
        message: impl Into<String>,
        source: Option<std::io::Error>,
    ) -> Self {
        Error::Storage {
            path: path.into(),
            message: message.into(),
            source: source.map(|e| Arc::new(e) as BoxError),
        }
    }

    /// [`Error::SecretStore`] with an optional cause.
    pub fn secret_store(
        message: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Error::SecretStore {
            message: message.into(),
            source: source.map(Arc::from),
        }
    }

    /// [`Error::Provider`], not retryable, without a cause.
    pub fn provider(
        provider: impl Into<String>,
        target: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::Provider {
            provider: provider.into(),
            target: target.into(),
            message: message.into(),
            retryable: false,
            source: None,
        }
    }

    /// [`Error::Unsupported`] for `operation` of `provider`.
    pub fn unsupported(provider: impl Into<String>, operation: impl Into<String>) -> Self {
        Error::Unsupported {
            provider: provider.into(),
            operation: operation.into(),
        }
    }
}

/// Displays an error followed by each of its causes, `outer: cause: cause`.
///
/// ```
/// use session_core::{Error, ErrorChain};
/// let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
/// let err = Error::storage("/tmp/ws.json", "cannot open", Some(io));
/// assert_eq!(ErrorChain(&err).to_string(), "/tmp/ws.json: cannot open: denied");
/// ```
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(err) = cause {
            write!(f, ": {err}")?;
            cause = err.source();
        }
        Ok(())
    }
}
