//! Scrubbing an [`Error`] and its cause chain.

use std::fmt;
use std::sync::Arc;

use super::Redactor;
use crate::{BoxError, Error};

impl Redactor {
    /// `error` with every value scrubbed from its messages and from the
    /// messages of its causes. Category, retryability and structure are
    /// kept; a cause whose text held a value is replaced by its scrubbed
    /// text (its type is lost, as it must be: it holds the secret).
    pub fn error(&self, error: &Error) -> Error {
        if self.is_empty() {
            return error.clone();
        }
        let r = |text: &String| self.redact(text);
        let path = |p: &std::path::PathBuf| {
            let shown = p.to_string_lossy();
            if self.finds_in(&shown) {
                std::path::PathBuf::from(self.redact(&shown))
            } else {
                p.clone()
            }
        };
        // Exhaustive on purpose: a new variant must decide what to scrub.
        match error {
            Error::NotFound { what } => Error::NotFound { what: r(what) },
            Error::AlreadyExists { what } => Error::AlreadyExists { what: r(what) },
            Error::InvalidInput { field, reason } => Error::InvalidInput {
                field: r(field),
                reason: r(reason),
            },
            Error::InvalidTransition { session, from, to } => Error::InvalidTransition {
                session: r(session),
                from: *from,
                to: *to,
            },
            Error::Unauthenticated { target, message } => Error::Unauthenticated {
                target: r(target),
                message: r(message),
            },
            Error::PermissionDenied { target, message } => Error::PermissionDenied {
                target: r(target),
                message: r(message),
            },
            Error::Conflict {
                what,
                expected,
                found,
            } => Error::Conflict {
                what: r(what),
                expected: *expected,
                found: *found,
            },
            Error::Unsupported {
                provider,
                operation,
            } => Error::Unsupported {
                provider: r(provider),
                operation: r(operation),
            },
            Error::Throttled {
                target,
                retry_after,
            } => Error::Throttled {
                target: r(target),
                retry_after: *retry_after,
            },
            Error::Timeout { target, after } => Error::Timeout {
                target: r(target),
                after: *after,
            },
            Error::Unavailable {
                target,
                message,
                source,
            } => Error::Unavailable {
                target: r(target),
                message: r(message),
                source: self.cause(source),
            },
            Error::Storage {
                path: p,
                message,
                source,
            } => Error::Storage {
                path: path(p),
                message: r(message),
                source: self.cause(source),
            },
            Error::Corrupt {
                path: p,
                kind,
                line,
                column,
                message,
            } => Error::Corrupt {
                path: path(p),
                kind: r(kind),
                line: *line,
                column: *column,
                message: r(message),
            },
            Error::Elsewhere {
                category,
                message,
                retryable,
            } => Error::Elsewhere {
                category,
                message: r(message),
                retryable: *retryable,
            },
            Error::SecretStore { message, source } => Error::SecretStore {
                message: r(message),
                source: self.cause(source),
            },
            Error::Provider {
                provider,
                target,
                message,
                retryable,
                source,
            } => Error::Provider {
                provider: r(provider),
                target: r(target),
                message: r(message),
                retryable: *retryable,
                source: self.cause(source),
            },
            Error::Cancelled { operation, reason } => Error::Cancelled {
                operation: r(operation),
                reason: r(reason),
            },
        }
    }

    /// The cause chain, replaced by its scrubbed text if any link of it
    /// holds a value; otherwise kept as it is (so it can still be
    /// downcast).
    fn cause(&self, source: &Option<BoxError>) -> Option<BoxError> {
        let source = source.as_ref()?;
        let mut texts = Vec::new();
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&**source);
        while let Some(link) = next {
            texts.push(link.to_string());
            next = link.source();
        }
        if !texts.iter().any(|t| self.finds_in(t)) {
            return Some(Arc::clone(source));
        }
        let chain = texts
            .into_iter()
            .rev()
            .fold(None, |inner, text| {
                Some(ScrubbedCause {
                    text: self.redact(&text),
                    source: inner.map(Box::new),
                })
            })
            .expect("the chain has at least one link");
        Some(Arc::new(chain))
    }
}

/// A cause whose text held a secret: its scrubbed text and scrubbed causes.
#[derive(Debug)]
struct ScrubbedCause {
    text: String,
    source: Option<Box<ScrubbedCause>>,
}

impl fmt::Display for ScrubbedCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for ScrubbedCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}
