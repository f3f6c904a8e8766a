//! HTTP answers and transport failures mapped onto [`session_core::Error`].

use std::error::Error as _;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde_json::Value;
use session_core::Error;

/// A failed request to the service: the error, the HTTP status when the
/// service answered, and whether it was the service's session limit
/// (`SessionLimitExceeded`). The login keeps all of it (`rotate` answers the
/// session limit by deleting first, and a 404/405 falls back to Basic);
/// other calls keep only the error.
#[derive(Debug)]
pub(crate) struct RequestFailure {
    pub(crate) error: Error,
    pub(crate) session_limit: bool,
    /// The HTTP status, when the service answered.
    pub(crate) status: Option<StatusCode>,
}

impl From<Error> for RequestFailure {
    fn from(error: Error) -> Self {
        Self {
            error,
            session_limit: false,
            status: None,
        }
    }
}

/// The `MessageId`s and messages of a Redfish error body
/// (`error.code`, `error.@Message.ExtendedInfo[]`).
fn messages(body: &[u8]) -> Vec<(String, String)> {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let error = &value["error"];
    if let Some(infos) = error["@Message.ExtendedInfo"].as_array() {
        for info in infos {
            let id = info["MessageId"].as_str().unwrap_or_default();
            let text = info["Message"].as_str().unwrap_or_default();
            if !id.is_empty() || !text.is_empty() {
                out.push((id.to_owned(), text.to_owned()));
            }
        }
    }
    if out.is_empty()
        && let Some(code) = error["code"].as_str()
    {
        out.push((
            code.to_owned(),
            error["message"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    out
}

/// `Base.1.22.SessionLimitExceeded` and vendor variants: match the suffix.
fn has_message(ids: &[(String, String)], suffix: &str) -> bool {
    ids.iter()
        .any(|(id, _)| id == suffix || id.ends_with(&format!(".{suffix}")))
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Maps a non-success answer to `what` (e.g. `login`) on `target` (the
/// session's label). The message holds the status and the service's
/// `MessageId`s and texts, never request headers or bodies.
pub(crate) fn from_status(
    target: &str,
    what: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> RequestFailure {
    let ids = messages(body);
    let detail: String = ids
        .iter()
        .map(|(id, text)| match (id.is_empty(), text.is_empty()) {
            (false, false) => format!("; {id}: {text}"),
            (false, true) => format!("; {id}"),
            _ => format!("; {text}"),
        })
        .collect();
    let message = format!("{what}: HTTP {}{detail}", status.as_u16());
    let target = target.to_owned();
    let session_limit = has_message(&ids, "SessionLimitExceeded");
    let error = match status.as_u16() {
        401 => Error::Unauthenticated { target, message },
        403 if session_limit => Error::Throttled {
            target,
            retry_after: retry_after(headers),
        },
        403 => Error::PermissionDenied { target, message },
        404 => Error::not_found(format!("{target}: {message}")),
        429 => Error::Throttled {
            target,
            retry_after: retry_after(headers),
        },
        503 if session_limit => Error::Throttled {
            target,
            retry_after: retry_after(headers),
        },
        500..=599 => {
            let message = match retry_after(headers) {
                Some(after) => format!("{message} (retry after {}s)", after.as_secs()),
                None => message,
            };
            Error::Unavailable {
                target,
                message,
                source: None,
            }
        }
        _ => Error::Provider {
            provider: "redfish".into(),
            target,
            message,
            retryable: false,
            source: None,
        },
    };
    RequestFailure {
        error,
        session_limit,
        status: Some(status),
    }
}

/// Maps a transport failure (connect, TLS, timeout, bad body). The URL is
/// stripped (`without_url`) and the cause chain spelled out, so a TLS
/// failure reads e.g. `… invalid peer certificate: UnknownIssuer`.
pub(crate) fn from_transport(target: &str, what: &str, error: reqwest::Error) -> Error {
    let error = error.without_url();
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !chain.contains(&text) {
            chain.push_str(": ");
            chain.push_str(&text);
        }
        source = cause.source();
    }
    let lower = chain.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
        chain.push_str(
            " (TLS verification failed: trust the service's CA with --ca-file PATH \
             (sessionctl add redfish), or caFile / caPem in the session config)",
        );
    }
    if error.is_timeout() {
        return Error::Timeout {
            target: target.to_owned(),
            after: super::REQUEST_TIMEOUT,
        };
    }
    if error.is_decode() || error.is_body() {
        return Error::Provider {
            provider: "redfish".into(),
            target: target.to_owned(),
            message: format!("{what}: unreadable response: {chain}"),
            retryable: true,
            source: None,
        };
    }
    Error::Unavailable {
        target: target.to_owned(),
        message: format!("{what}: {chain}"),
        source: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_limit_is_throttled_with_retry_after() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "7".parse().unwrap());
        let body = br#"{"error":{"code":"Base.1.22.GeneralError","message":"x",
            "@Message.ExtendedInfo":[{"MessageId":"Base.1.22.SessionLimitExceeded","Message":"too many"}]}}"#;
        let f = from_status(
            "session 's'",
            "login",
            StatusCode::SERVICE_UNAVAILABLE,
            &headers,
            body,
        );
        assert!(f.session_limit);
        assert!(matches!(
            f.error,
            Error::Throttled { retry_after: Some(d), .. } if d == Duration::from_secs(7)
        ));
        let f = from_status(
            "session 's'",
            "login",
            StatusCode::FORBIDDEN,
            &headers,
            body,
        );
        assert!(f.session_limit);
        assert_eq!(f.error.category(), "throttled");
    }

    #[test]
    fn statuses_map_to_categories() {
        let h = HeaderMap::new();
        for (status, category) in [
            (401, "unauthenticated"),
            (403, "permission_denied"),
            (404, "not_found"),
            (429, "throttled"),
            (500, "unavailable"),
            (503, "unavailable"),
            (400, "provider"),
        ] {
            let f = from_status("t", "login", StatusCode::from_u16(status).unwrap(), &h, b"");
            assert_eq!(f.error.category(), category, "{status}");
        }
        let body = br#"{"error":{"@Message.ExtendedInfo":[{"MessageId":"Base.1.22.NoValidSession","Message":"no session"}]}}"#;
        let f = from_status("t", "login", StatusCode::UNAUTHORIZED, &h, body);
        assert!(
            f.error
                .to_string()
                .contains("Base.1.22.NoValidSession: no session")
        );
    }
}
