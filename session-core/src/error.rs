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
        "{}: not a valid {kind}{}: {message} (the file was left untouched)",
        path.display(),
        position(*line, *column)
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

    /// The operation was abandoned: cancelled by the caller
    /// ([`SessionManager::cancel`](crate::SessionManager::cancel)), or the
    /// manager or scheduler shut down.
    #[error("{operation} cancelled: {reason}")]
    Cancelled {
        /// What was abandoned.
        operation: String,
        /// Why.
        reason: String,
    },

    /// An operation failed in another process sharing the workspace: its
    /// error as that process shared it (a
    /// [`SessionEventKind::Failed`](crate::SessionEventKind::Failed) of an
    /// event from [elsewhere](crate::EventOrigin::Elsewhere)).
    #[error("{message}")]
    Elsewhere {
        /// Its [category](Error::category) there (`provider` when the name
        /// was not one this build knows).
        category: &'static str,
        /// Its message there (which, like every message, holds no secret).
        message: String,
        /// Whether it was [retryable](Error::is_retryable) there.
        retryable: bool,
    },
}

/// Every [`Error::category`] name.
const CATEGORIES: [&str; 16] = [
    "not_found",
    "already_exists",
    "invalid_input",
    "invalid_transition",
    "unauthenticated",
    "permission_denied",
    "conflict",
    "unsupported",
    "throttled",
    "timeout",
    "unavailable",
    "storage",
    "corrupt",
    "secret_store",
    "provider",
    "cancelled",
];

/// The [`Error::category`] name equal to `name`, if there is one.
pub(crate) fn category_named(name: &str) -> Option<&'static str> {
    CATEGORIES.iter().copied().find(|c| *c == name)
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
            Error::Provider { retryable, .. } | Error::Elsewhere { retryable, .. } => *retryable,
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
            Error::Elsewhere { category, .. } => category,
        }
    }

    /// Says which session this error is about, for errors raised below a
    /// provider (config parsing, an SDK call, a file) that do not know it:
    ///
    /// - [`InvalidInput`](Error::InvalidInput): `reason` becomes `LABEL: reason`;
    /// - [`Storage`](Error::Storage): `message` becomes `LABEL: message`;
    /// - errors with a `target` (unauthenticated, permission denied,
    ///   throttled, timeout, unavailable, provider): `target` becomes
    ///   `LABEL via target`;
    /// - every other category is returned unchanged.
    ///
    /// The category, the retryability and the cause ([`source()`](std::error::Error::source))
    /// are kept. Labelling twice with the same label changes nothing, so a
    /// provider may label at every layer it passes through.
    ///
    /// ```
    /// use session_core::Error;
    /// let err = Error::invalid_input("roleArn", "must start with arn:")
    ///     .in_session("session 'deploy' (9b2f)");
    /// assert_eq!(
    ///     err.to_string(),
    ///     "invalid roleArn: session 'deploy' (9b2f): must start with arn:"
    /// );
    /// ```
    pub fn in_session(self, label: &str) -> Self {
        let prefixed = |text: String, sep: &str| {
            if text.starts_with(label) {
                text
            } else {
                format!("{label}{sep}{text}")
            }
        };
        let via = |target: String| prefixed(target, " via ");
        match self {
            Error::InvalidInput { field, reason } => Error::InvalidInput {
                field,
                reason: prefixed(reason, ": "),
            },
            Error::Storage {
                path,
                message,
                source,
            } => Error::Storage {
                path,
                message: prefixed(message, ": "),
                source,
            },
            Error::Unauthenticated { target, message } => Error::Unauthenticated {
                target: via(target),
                message,
            },
            Error::PermissionDenied { target, message } => Error::PermissionDenied {
                target: via(target),
                message,
            },
            Error::Throttled {
                target,
                retry_after,
            } => Error::Throttled {
                target: via(target),
                retry_after,
            },
            Error::Timeout { target, after } => Error::Timeout {
                target: via(target),
                after,
            },
            Error::Unavailable {
                target,
                message,
                source,
            } => Error::Unavailable {
                target: via(target),
                message,
                source,
            },
            Error::Provider {
                provider,
                target,
                message,
                retryable,
                source,
            } => Error::Provider {
                provider,
                target: via(target),
                message,
                retryable,
                source,
            },
            other => other,
        }
    }

    /// [`Error::Provider`], not retryable, with `source` as its cause: the
    /// cause stays reachable through [`source()`](std::error::Error::source)
    /// instead of being flattened into the message.
    pub fn provider_caused_by(
        provider: impl Into<String>,
        target: impl Into<String>,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        let mut error = Self::provider(provider, target, message);
        if let Error::Provider { source: cause, .. } = &mut error {
            *cause = Some(Arc::new(source));
        }
        error
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

/// ` at line L, column C` of a [`Error::Corrupt`], or as much of it as is
/// known (0 means unknown).
fn position(line: usize, column: usize) -> String {
    match (line, column) {
        (0, _) => String::new(),
        (line, 0) => format!(" at line {line}"),
        (line, column) => format!(" at line {line}, column {column}"),
    }
}

/// A parser's message without the ` at line L column C` it appends, for an
/// [`Error::Corrupt`] that carries the position in its own fields (and
/// would otherwise print it twice).
pub(crate) fn without_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) if message[i..].contains(" column ") => message[..i].to_owned(),
        _ => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LABEL: &str = "session 'dev' (42)";

    #[test]
    fn in_session_labels_input_storage_and_targets_and_keeps_the_rest() {
        let input = Error::invalid_input("region", "empty").in_session(LABEL);
        assert_eq!(
            input.to_string(),
            "invalid region: session 'dev' (42): empty"
        );

        let io = std::io::Error::other("disk full");
        let storage = Error::storage("/w.json", "cannot write", Some(io)).in_session(LABEL);
        assert_eq!(
            ErrorChain(&storage).to_string(),
            "/w.json: session 'dev' (42): cannot write: disk full"
        );

        let unavailable = Error::Unavailable {
            target: "sso.eu-west-1".into(),
            message: "connection refused".into(),
            source: Some(Arc::new(std::io::Error::other("refused"))),
        }
        .in_session(LABEL);
        assert!(unavailable.is_retryable());
        assert_eq!(
            ErrorChain(&unavailable).to_string(),
            "session 'dev' (42) via sso.eu-west-1: service unavailable: connection refused: refused"
        );

        let not_found = Error::not_found("secret x").in_session(LABEL);
        assert_eq!(not_found.to_string(), "secret x not found");
    }

    #[test]
    fn in_session_twice_labels_once() {
        let once = Error::provider("aws-sts", "sts", "boom").in_session(LABEL);
        let twice = once.clone().in_session(LABEL);
        assert_eq!(once.to_string(), twice.to_string());
        assert_eq!(
            once.to_string(),
            "session 'dev' (42) via sts: aws-sts: boom"
        );
        let input = Error::invalid_input("f", "bad")
            .in_session(LABEL)
            .in_session(LABEL);
        assert_eq!(input.to_string(), "invalid f: session 'dev' (42): bad");
    }

    #[test]
    fn provider_caused_by_keeps_the_cause() {
        let err = Error::provider_caused_by(
            "azure",
            LABEL,
            "sink failed",
            std::io::Error::other("EACCES"),
        );
        assert_eq!(
            ErrorChain(&err).to_string(),
            "session 'dev' (42): azure: sink failed: EACCES"
        );
        assert!(!err.is_retryable());
    }

    #[test]
    fn a_corrupt_file_without_a_position_does_not_print_line_zero() {
        let corrupt = |line, column| Error::Corrupt {
            path: "/w.json".into(),
            kind: "workspace file".into(),
            line,
            column,
            message: "broken".into(),
        };
        assert_eq!(
            corrupt(0, 0).to_string(),
            "/w.json: not a valid workspace file: broken (the file was left untouched)"
        );
        assert!(corrupt(3, 0).to_string().contains("at line 3: broken"));
        assert!(
            corrupt(3, 7)
                .to_string()
                .contains("at line 3, column 7: broken")
        );
    }
}
