//! The controller's errors (`boundary.md` §1.2) as the core's categories.
//!
//! Every status ≥ 400 carries `{kind, message, details.request_fields}`;
//! `kind` is a gRPC code name. A controller may echo what it was sent, so
//! the text is scrubbed of the request's secrets before it goes anywhere.

use std::time::Duration;

use serde::Deserialize;
use session_core::{Error, Secret};

/// `controller.api.v1.Error`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ApiError {
    pub(crate) kind: String,
    pub(crate) message: String,
    pub(crate) details: Details,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Details {
    pub(crate) request_fields: Vec<FieldError>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct FieldError {
    pub(crate) name: String,
    pub(crate) description: String,
}

/// A failed call: the status, the parsed body and any `Retry-After`.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: u16,
    pub(crate) body: ApiError,
    pub(crate) retry_after: Option<Duration>,
}

impl Failure {
    /// Reads a failed response's body; a body that is not the error shape
    /// keeps only its status (and never its text, which may echo secrets).
    pub(crate) fn from_body(status: u16, body: &[u8], retry_after: Option<Duration>) -> Self {
        let body = serde_json::from_slice(body).unwrap_or_else(|_| ApiError {
            kind: String::new(),
            message: format!("HTTP {status} without a Boundary error body"),
            details: Details::default(),
        });
        Self {
            status,
            body,
            retry_after,
        }
    }

    /// The core error for this failure of `operation` (e.g. "cancel session
    /// s_…") on `controller`, with every secret in `secrets` scrubbed.
    pub(crate) fn into_error(
        self,
        controller: &str,
        operation: &str,
        secrets: &[&Secret],
    ) -> Error {
        let scrub = |text: &str| {
            let mut text = text.to_owned();
            for secret in secrets {
                if !secret.is_empty() {
                    text = text.replace(secret.expose(), "[REDACTED]");
                }
            }
            text
        };
        let kind = if self.body.kind.is_empty() {
            "(no kind)".to_owned()
        } else {
            scrub(&self.body.kind)
        };
        let message = scrub(&self.body.message);
        let what = format!("{operation}: {message} ({kind}, HTTP {})", self.status);
        let fields: Vec<String> = self
            .body
            .details
            .request_fields
            .iter()
            .map(|f| format!("{}: {}", scrub(&f.name), scrub(&f.description)))
            .collect();
        let target = controller.to_owned();
        match (self.status, self.body.kind.as_str()) {
            (429, _) => Error::Throttled {
                target,
                retry_after: self.retry_after,
            },
            (401, _) | (_, "Unauthenticated") => Error::Unauthenticated {
                target,
                message: what,
            },
            (403, _) | (_, "PermissionDenied") => Error::PermissionDenied {
                target,
                message: what,
            },
            (404, _) | (_, "NotFound") => Error::not_found(format!("{controller}: {what}")),
            (400, _) | (_, "InvalidArgument") if !fields.is_empty() => {
                let names: Vec<&str> = self
                    .body
                    .details
                    .request_fields
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect();
                Error::invalid_input(names.join(", "), format!("{what}: {}", fields.join("; ")))
            }
            (503, _) | (_, "Unavailable") => Error::Unavailable {
                target,
                message: what,
                source: None,
            },
            (504, _) | (_, "DeadlineExceeded") => Error::Timeout {
                target: format!("{controller}: {what}"),
                after: Duration::ZERO,
            },
            (status, _) => Error::Provider {
                provider: "boundary".to_owned(),
                target,
                message: what,
                retryable: status >= 500,
                source: None,
            },
        }
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by Boundary).
pub(crate) fn retry_after(value: Option<&str>) -> Option<Duration> {
    value?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(status: u16, json: &str) -> Failure {
        Failure::from_body(status, json.as_bytes(), None)
    }

    #[test]
    fn request_fields_name_the_input() {
        let e = failure(
            400,
            r#"{"kind":"InvalidArgument","message":"Errors in provided fields.",
                "details":{"request_fields":[{"name":"version","description":"Required field."}]}}"#,
        )
        .into_error("http://c", "cancel session s_1", &[]);
        let Error::InvalidInput { field, reason } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(field, "version");
        assert!(reason.contains("Required field."), "{reason}");
        assert!(reason.contains("cancel session s_1"), "{reason}");
    }

    #[test]
    fn kinds_map_to_categories() {
        let e = |status, kind: &str| {
            failure(status, &format!(r#"{{"kind":"{kind}","message":"m"}}"#)).into_error(
                "http://c",
                "op",
                &[],
            )
        };
        assert!(matches!(
            e(401, "Unauthenticated"),
            Error::Unauthenticated { .. }
        ));
        assert!(matches!(
            e(403, "PermissionDenied"),
            Error::PermissionDenied { .. }
        ));
        assert!(matches!(e(404, "NotFound"), Error::NotFound { .. }));
        assert!(matches!(e(503, "Unavailable"), Error::Unavailable { .. }));
        assert!(matches!(e(504, "DeadlineExceeded"), Error::Timeout { .. }));
        let internal = e(500, "Internal");
        assert!(internal.is_retryable(), "{internal:?}");
        let precondition = e(400, "FailedPrecondition");
        assert!(!precondition.is_retryable());
        assert!(precondition.to_string().contains("FailedPrecondition"));
        let throttled = Failure::from_body(429, b"{}", retry_after(Some("3"))).into_error(
            "http://c",
            "op",
            &[],
        );
        assert!(
            matches!(throttled, Error::Throttled { retry_after: Some(d), .. } if d == Duration::from_secs(3))
        );
    }

    #[test]
    fn an_echoed_secret_never_reaches_the_error() {
        let password = Secret::new("hunter2-very-secret");
        let e = failure(
            401,
            r#"{"kind":"Unauthenticated","message":"bad password hunter2-very-secret",
                "details":{"request_fields":[{"name":"password","description":"hunter2-very-secret"}]}}"#,
        )
        .into_error("http://c", "login", &[&password]);
        let text = format!("{e} {e:?}");
        assert!(!text.contains("hunter2"), "{text}");
        let raw = Failure::from_body(502, b"<html>hunter2-very-secret</html>", None).into_error(
            "http://c",
            "login",
            &[&password],
        );
        assert!(!format!("{raw} {raw:?}").contains("hunter2"));
    }
}
