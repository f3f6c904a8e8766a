//! The HTTP side: `POST /` dispatched on `X-Amz-Target`, the content type
//! and signature-shape checks, the call log, injected failures, the AWS JSON
//! 1.1 error shape, and reading members of the input.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Map, Value, json};

use super::state::{FakeState, Shared, lock};
use super::{JSON_CONTENT_TYPE, OPERATIONS, SsmCall, TARGET_PREFIX, auth};
use crate::fakes::sso::values::request_id;

/// A JSON request body.
pub(super) type Body = Map<String, Value>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ApiError {
    pub(super) status: u16,
    pub(super) error_type: String,
    pub(super) message: String,
}

impl ApiError {
    pub(super) fn new(status: u16, error_type: &str, message: &str) -> Self {
        Self {
            status,
            error_type: error_type.to_owned(),
            message: message.to_owned(),
        }
    }

    /// A modelled client error of the SSM API (all are 400).
    pub(super) fn client(error_type: &str, message: &str) -> Self {
        Self::new(400, error_type, message)
    }

    /// `InternalServerError`, a 500.
    pub(super) fn internal() -> Self {
        Self::new(500, "InternalServerError", "Internal Server Error")
    }

    /// `ThrottlingException`, a 400 that SDKs retry.
    pub(super) fn throttling() -> Self {
        Self::new(400, "ThrottlingException", "Rate exceeded")
    }
}

/// `ValidationException` with AWS's wording for one broken constraint of
/// member `member` (camel-case, as AWS names it in the message).
pub(super) fn validation(value: &str, member: &str, constraint: &str) -> ApiError {
    ApiError::client(
        "ValidationException",
        &format!(
            "1 validation error detected: Value {value} at '{member}' failed to satisfy \
             constraint: {constraint}"
        ),
    )
}

/// A member of the wrong JSON type, or a body that is not a JSON object.
pub(super) fn serialization(message: &str) -> ApiError {
    ApiError::client("SerializationException", message)
}

pub(super) fn router(state: Shared) -> Router {
    Router::new()
        .route("/", post(handle))
        .fallback(unknown_path)
        .with_state(state)
}

async fn handle(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let operation = header("x-amz-target")
        .and_then(|t| t.strip_prefix(TARGET_PREFIX))
        .and_then(|op| OPERATIONS.into_iter().find(|o| *o == op));
    let Some(operation) = operation else {
        return respond(Err(ApiError::client(
            "UnknownOperationException",
            "Unknown operation",
        )));
    };
    if operation == "ResumeSession" {
        // Outside the lock: other calls go on meanwhile.
        let latency = lock(&state).resume_latency;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
    }
    let input: Option<Value> = serde_json::from_slice(&body).ok();
    let signer = auth::check(header("authorization"));
    let result = {
        let mut st = lock(&state);
        let result = run(
            &mut st,
            operation,
            header("content-type"),
            signer.clone(),
            input.clone(),
        );
        let (access_key_id, region) = match signer {
            Ok(s) => (Some(s.access_key_id), Some(s.region)),
            Err(_) => (None, None),
        };
        st.record_call(SsmCall {
            operation: operation.to_owned(),
            access_key_id,
            region,
            input: input.unwrap_or(Value::Null),
            error: result.as_ref().err().map(|e| e.error_type.clone()),
        });
        result
    };
    respond(result)
}

/// Content type, signature shape, an injected failure, the body, then the
/// operation itself.
fn run(
    st: &mut FakeState,
    operation: &str,
    content_type: Option<&str>,
    signer: Result<auth::Signer, ApiError>,
    input: Option<Value>,
) -> Result<Value, ApiError> {
    if content_type.is_none_or(|c| !c.starts_with(JSON_CONTENT_TYPE)) {
        return Err(serialization(&format!(
            "Expected Content-Type {JSON_CONTENT_TYPE}"
        )));
    }
    let signer = signer?;
    if let Some(e) = st.injected_failure(operation) {
        return Err(e);
    }
    let body = match input {
        Some(Value::Object(map)) => map,
        _ => return Err(serialization("The request body is not a JSON object")),
    };
    match operation {
        "StartSession" => st.start_session(&body, &signer),
        "ResumeSession" => st.resume_session(&body),
        "TerminateSession" => st.terminate_session(&body),
        _ => st.describe_sessions(&body),
    }
}

fn respond(result: Result<Value, ApiError>) -> Response {
    let (status, body) = match result {
        Ok(body) => (StatusCode::OK, body),
        Err(e) => (
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            json!({ "__type": e.error_type, "message": e.message }),
        ),
    };
    (
        status,
        [
            ("content-type", JSON_CONTENT_TYPE.to_owned()),
            ("x-amzn-requestid", request_id()),
        ],
        body.to_string(),
    )
        .into_response()
}

async fn unknown_path() -> Response {
    respond(Err(ApiError::client(
        "UnknownOperationException",
        "Unknown operation",
    )))
}

// ----- input helpers -----------------------------------------------------------

/// An optional string member; `SerializationException` when it is not a
/// string.
pub(super) fn optional_str(body: &Body, name: &str) -> Result<Option<String>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(serialization(&format!("{name} must be a string"))),
    }
}

/// A required string member; `ValidationException` ("must not be null")
/// when missing. `wire` is the member's name in AWS messages.
pub(super) fn required_str(body: &Body, name: &str, wire: &str) -> Result<String, ApiError> {
    optional_str(body, name)?.ok_or_else(|| validation("null", wire, "Member must not be null"))
}

/// Checks the length of `value` against `min..=max` characters.
pub(super) fn check_length(
    value: &str,
    wire: &str,
    min: usize,
    max: usize,
) -> Result<(), ApiError> {
    let len = value.chars().count();
    if len < min {
        return Err(validation(
            &format!("'{value}'"),
            wire,
            &format!("Member must have length greater than or equal to {min}"),
        ));
    }
    if len > max {
        return Err(validation(
            &format!("'{value}'"),
            wire,
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_statuses_follow_ssm_md() {
        assert_eq!(ApiError::internal().status, 500);
        assert_eq!(ApiError::throttling().status, 400);
        assert_eq!(ApiError::client("TargetNotConnected", "").status, 400);
        let e = validation("'201'", "maxResults", "Member must be ≤ 200");
        assert_eq!(
            (e.status, e.error_type.as_str()),
            (400, "ValidationException")
        );
        assert!(
            e.message
                .starts_with("1 validation error detected: Value '201' at 'maxResults'")
        );
    }
}
