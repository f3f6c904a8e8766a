//! Base registry messages and Redfish error bodies.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The Base registry version used in message ids (`Base.1.22.<Id>`).
const BASE_PREFIX: &str = "Base.1.22";

/// The realm advertised in `WWW-Authenticate`.
pub(crate) const REALM_HEADER: &str = "Basic realm=\"session-redfish\"";

/// One Base registry message, rendered as a `#Message.v1_2_0.Message`.
pub(crate) fn message(id: &str, args: &[&str]) -> Value {
    let (text, severity, resolution) = match id {
        "NoValidSession" => (
            "There is no valid session established with the implementation.".to_owned(),
            "Critical",
            "Establish a session before attempting any operations.",
        ),
        "ResourceAtUriUnauthorized" => (
            format!(
                "While accessing the resource at '{}', the service received an authorization \
                 error '{}'.",
                arg(args, 0),
                arg(args, 1)
            ),
            "Critical",
            "Ensure that the appropriate access is provided for the service in order for it \
             to access the URI.",
        ),
        "SessionLimitExceeded" => (
            "The session establishment failed due to the number of simultaneous sessions \
             exceeding the limit of the implementation."
                .to_owned(),
            "Critical",
            "Reduce the number of other sessions before trying to establish the session or \
             increase the limit of simultaneous sessions, if supported.",
        ),
        "ServiceTemporarilyUnavailable" => (
            format!(
                "The service is temporarily unavailable.  Retry in {} seconds.",
                arg(args, 0)
            ),
            "Critical",
            "Wait for the indicated retry duration and retry the operation.",
        ),
        "SessionTerminated" => (
            "The session was successfully terminated.".to_owned(),
            "OK",
            "No resolution is required.",
        ),
        "InsufficientPrivilege" => (
            "There are insufficient privileges for the account or credentials associated with \
             the current session to perform the requested operation."
                .to_owned(),
            "Critical",
            "Either abandon the operation or change the associated access rights and resubmit \
             the request if the operation failed.",
        ),
        "CreateFailedMissingReqProperties" => (
            format!(
                "The create operation failed because the required property {} was missing from \
                 the request.",
                arg(args, 0)
            ),
            "Critical",
            "Correct the body to include the required property with a valid value and resubmit \
             the request if the operation failed.",
        ),
        "PropertyUnknown" => (
            format!(
                "The property {} is not in the list of valid properties for the resource.",
                arg(args, 0)
            ),
            "Warning",
            "Remove the unknown property from the request body and resubmit the request if the \
             operation failed.",
        ),
        "PropertyValueTypeError" => (
            format!(
                "The value '{}' for the property {} is not a type that the property can accept.",
                arg(args, 0),
                arg(args, 1)
            ),
            "Warning",
            "Correct the value for the property in the request body and resubmit the request if \
             the operation failed.",
        ),
        "PropertyValueOutOfRange" => (
            format!(
                "The value '{}' for the property {} is not in the supported range of acceptable \
                 values.",
                arg(args, 0),
                arg(args, 1)
            ),
            "Warning",
            "Correct the value for the property in the request body and resubmit the request if \
             the operation failed.",
        ),
        "MalformedJSON" => (
            "The request body submitted was malformed JSON and could not be parsed by the \
             receiving service."
                .to_owned(),
            "Critical",
            "Ensure that the request body is valid JSON and resubmit the request.",
        ),
        "ResourceNotFound" => (
            format!(
                "The requested resource of type {} named '{}' was not found.",
                arg(args, 0),
                arg(args, 1)
            ),
            "Critical",
            "Provide a valid resource identifier and resubmit the request.",
        ),
        "ServiceDisabled" => (
            format!(
                "The operation failed because the service at {} is disabled and cannot accept \
                 requests.",
                arg(args, 0)
            ),
            "Warning",
            "Enable the service and resubmit the request if the operation failed.",
        ),
        "PreconditionFailed" => (
            "The ETag supplied did not match the current ETag of the resource.".to_owned(),
            "Critical",
            "Try the operation again using the appropriate ETag.",
        ),
        "OperationNotAllowed" => (
            "The HTTP method is not allowed on this resource.".to_owned(),
            "Critical",
            "None.",
        ),
        "GeneralError" => (
            "A general error has occurred.  See Resolution for information on how to resolve \
             the error."
                .to_owned(),
            "Critical",
            "None.",
        ),
        _ => (
            "A general error has occurred.".to_owned(),
            "Critical",
            "None.",
        ),
    };
    json!({
        "@odata.type": "#Message.v1_2_0.Message",
        "MessageId": format!("{BASE_PREFIX}.{id}"),
        "Message": text,
        "MessageArgs": args,
        "MessageSeverity": severity,
        "Resolution": resolution,
    })
}

fn arg<'a>(args: &[&'a str], i: usize) -> &'a str {
    args.get(i).copied().unwrap_or("")
}

/// A Redfish error response: `{"error":{"code","message","@Message.ExtendedInfo"}}`.
pub(crate) fn error(status: StatusCode, id: &str, args: &[&str]) -> Response {
    error_body(status, message(id, args))
}

/// 413 for a body over `limit` bytes: `GeneralError` (the Base registry has
/// no message of its own for it), its `Resolution` naming the limit.
pub(crate) fn payload_too_large(limit: usize) -> Response {
    let mut msg = message("GeneralError", &[]);
    msg["Resolution"] = Value::String(format!(
        "The request body is larger than the service accepts; send at most {limit} bytes."
    ));
    error_body(StatusCode::PAYLOAD_TOO_LARGE, msg)
}

fn error_body(status: StatusCode, msg: Value) -> Response {
    let id = msg["MessageId"].as_str().unwrap_or_default().to_owned();
    let body = json!({
        "error": {
            "code": id,
            "message": msg["Message"].clone(),
            "@Message.ExtendedInfo": [msg],
        }
    });
    let mut response = (status, axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(REALM_HEADER),
        );
    }
    response
}

/// 401 `NoValidSession` with `WWW-Authenticate`.
pub(crate) fn no_valid_session() -> Response {
    error(StatusCode::UNAUTHORIZED, "NoValidSession", &[])
}

/// How long a client is told to wait when the shared session repository
/// cannot be reached.
const STORE_RETRY_AFTER_SECS: &str = "5";

/// 503 `ServiceTemporarilyUnavailable` with `Retry-After`: the shared
/// session repository could not be reached. The repository's error is
/// logged, never sent (it may name hosts and databases).
pub(crate) fn store_unavailable(e: &session_core::Error) -> Response {
    tracing::warn!(error = %e, "the shared Redfish session repository cannot be reached");
    let mut res = error(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceTemporarilyUnavailable",
        &[STORE_RETRY_AFTER_SECS],
    );
    res.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(STORE_RETRY_AFTER_SECS),
    );
    res
}

/// 403 `InsufficientPrivilege`.
pub(crate) fn insufficient_privilege() -> Response {
    error(StatusCode::FORBIDDEN, "InsufficientPrivilege", &[])
}
