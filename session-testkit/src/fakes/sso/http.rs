//! The HTTP side: the routes of both APIs, counting each call, injected
//! failures, the AWS error shapes (`x-amzn-ErrorType`, `__type`, and the
//! OAuth members on SSO-OIDC errors), and reading the input.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::state::{Decision, FakeState, Shared, lock};
use super::values::request_id;

pub(super) type Params = HashMap<String, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    RegisterClient,
    StartDeviceAuthorization,
    CreateToken,
    GetRoleCredentials,
    ListAccounts,
    ListAccountRoles,
    Logout,
}

impl Op {
    pub(super) fn name(self) -> &'static str {
        match self {
            Op::RegisterClient => "RegisterClient",
            Op::StartDeviceAuthorization => "StartDeviceAuthorization",
            Op::CreateToken => "CreateToken",
            Op::GetRoleCredentials => "GetRoleCredentials",
            Op::ListAccounts => "ListAccounts",
            Op::ListAccountRoles => "ListAccountRoles",
            Op::Logout => "Logout",
        }
    }

    pub(super) fn is_portal(self) -> bool {
        matches!(
            self,
            Op::GetRoleCredentials | Op::ListAccounts | Op::ListAccountRoles | Op::Logout
        )
    }
}

pub(super) enum Reply {
    Json(Value),
    Empty,
}

#[derive(Debug)]
pub(super) struct ApiError {
    status: u16,
    error_type: String,
    message: String,
}

impl ApiError {
    pub(super) fn new(status: u16, error_type: &str, message: &str) -> Self {
        Self {
            status,
            error_type: error_type.to_owned(),
            message: message.to_owned(),
        }
    }

    /// An SSO-OIDC error with the status code its model gives it.
    pub(super) fn oidc(error_type: &str, message: &str) -> Self {
        let status = match error_type {
            "InvalidClientException" => 401,
            "InternalServerException" => 500,
            _ => 400,
        };
        Self::new(status, error_type, message)
    }
}

/// `Err` with an SSO-OIDC error (see [`ApiError::oidc`]).
pub(super) fn refuse<T>(error_type: &str, message: &str) -> Result<T, ApiError> {
    Err(ApiError::oidc(error_type, message))
}

pub(super) fn invalid_request(message: &str) -> ApiError {
    ApiError::new(400, "InvalidRequestException", message)
}

/// The OAuth `error` code the SSO-OIDC model documents for an exception.
fn oauth_error_code(error_type: &str) -> Option<&'static str> {
    Some(match error_type {
        "AccessDeniedException" => "access_denied",
        "AuthorizationPendingException" => "authorization_pending",
        "ExpiredTokenException" => "expired_token",
        "InternalServerException" => "server_error",
        "InvalidClientException" => "invalid_client",
        "InvalidClientMetadataException" => "invalid_client_metadata",
        "InvalidGrantException" => "invalid_grant",
        "InvalidRedirectUriException" => "invalid_redirect_uri",
        "InvalidRequestException" | "InvalidRequestRegionException" => "invalid_request",
        "InvalidScopeException" => "invalid_scope",
        "SlowDownException" => "slow_down",
        "UnauthorizedClientException" => "unauthorized_client",
        "UnsupportedGrantTypeException" => "unsupported_grant_type",
        _ => return None,
    })
}

pub(super) fn router(state: Shared) -> Router {
    Router::new()
        .route(
            "/client/register",
            oidc_post(Op::RegisterClient, FakeState::register_client),
        )
        .route(
            "/device_authorization",
            oidc_post(
                Op::StartDeviceAuthorization,
                FakeState::start_device_authorization,
            ),
        )
        .route(
            "/token",
            oidc_post(Op::CreateToken, FakeState::create_token),
        )
        .route(
            "/federation/credentials",
            portal_get(Op::GetRoleCredentials, FakeState::get_role_credentials),
        )
        .route(
            "/assignment/accounts",
            portal_get(Op::ListAccounts, |st, query, _| st.list_accounts(query)),
        )
        .route(
            "/assignment/roles",
            portal_get(Op::ListAccountRoles, |st, query, _| {
                st.list_account_roles(query)
            }),
        )
        .route("/logout", post(logout))
        .route("/device", get(verify_device))
        .fallback(unknown_operation)
        .with_state(state)
}

/// Counts the call, answers an injected failure if one is due, else runs `f`.
fn dispatch(
    state: &Shared,
    op: Op,
    f: impl FnOnce(&mut FakeState, OffsetDateTime) -> Result<Reply, ApiError>,
) -> Response {
    let result = {
        let mut st = lock(state);
        *st.calls.entry(op.name()).or_default() += 1;
        match st.injected_failure(op) {
            Some(e) => Err(e),
            None => {
                let now = st.clock.now();
                f(&mut st, now)
            }
        }
    };
    respond(op, result)
}

fn respond(op: Op, result: Result<Reply, ApiError>) -> Response {
    let request_id = request_id();
    match result {
        Ok(Reply::Json(body)) => (
            StatusCode::OK,
            [
                ("content-type", "application/json".to_owned()),
                ("x-amzn-requestid", request_id),
            ],
            body.to_string(),
        )
            .into_response(),
        Ok(Reply::Empty) => (StatusCode::OK, [("x-amzn-requestid", request_id)]).into_response(),
        Err(e) => {
            let mut body = json!({ "__type": e.error_type, "message": e.message });
            if !op.is_portal()
                && let Some(code) = oauth_error_code(&e.error_type)
            {
                body["error"] = Value::String(code.to_owned());
                body["error_description"] = Value::String(e.message.clone());
            }
            let status =
                StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (
                status,
                [
                    ("x-amzn-errortype", e.error_type),
                    ("content-type", "application/json".to_owned()),
                    ("x-amzn-requestid", request_id),
                ],
                body.to_string(),
            )
                .into_response()
        }
    }
}

/// A JSON request body.
pub(super) type Body = Map<String, Value>;

/// An SSO-OIDC operation: the JSON body goes to `operation`.
type OidcOperation = fn(&mut FakeState, &Body, OffsetDateTime) -> Result<Reply, ApiError>;

/// A portal operation that reads the query; the bearer token is checked
/// first.
type PortalOperation = fn(&mut FakeState, &Params, OffsetDateTime) -> Result<Reply, ApiError>;

fn oidc_post(op: Op, operation: OidcOperation) -> MethodRouter<Shared> {
    post(move |State(state): State<Shared>, body: Bytes| async move {
        dispatch(&state, op, |st, now| {
            operation(st, &parse_body(&body)?, now)
        })
    })
}

fn portal_get(op: Op, operation: PortalOperation) -> MethodRouter<Shared> {
    get(
        move |State(state): State<Shared>,
              headers: HeaderMap,
              query: Result<Query<Params>, QueryRejection>| async move {
            dispatch(&state, op, |st, now| {
                let query = query_params(query)?;
                st.authorize(&headers, now)?;
                operation(st, &query, now)
            })
        },
    )
}

async fn logout(State(state): State<Shared>, headers: HeaderMap) -> Response {
    dispatch(&state, Op::Logout, |st, now| {
        let session = st.authorize(&headers, now)?;
        st.logout(session)
    })
}

/// The verification page: opening `verificationUriComplete` approves.
async fn verify_device(
    State(state): State<Shared>,
    query: Result<Query<Params>, QueryRejection>,
) -> Response {
    let code = query
        .ok()
        .and_then(|Query(q)| q.get("user_code").cloned())
        .unwrap_or_default();
    if lock(&state).decide(&code, Decision::Approved) {
        (StatusCode::OK, "Request approved").into_response()
    } else {
        (StatusCode::NOT_FOUND, "No pending request for this code").into_response()
    }
}

async fn unknown_operation() -> Response {
    let body = json!({ "__type": "UnknownOperationException", "message": "Unknown operation" });
    (
        StatusCode::NOT_FOUND,
        [
            ("x-amzn-errortype", "UnknownOperationException"),
            ("content-type", "application/json"),
        ],
        body.to_string(),
    )
        .into_response()
}

// ----- input helpers -----------------------------------------------------------

pub(super) fn query_params(
    query: Result<Query<Params>, QueryRejection>,
) -> Result<Params, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|_| invalid_request("Malformed query string"))
}

pub(super) fn required_param(query: &Params, name: &str) -> Result<String, ApiError> {
    match query.get(name) {
        Some(v) if !v.is_empty() => Ok(v.clone()),
        _ => Err(invalid_request(&format!(
            "Missing required parameter {name}"
        ))),
    }
}

pub(super) fn parse_body(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(invalid_request("The request body is not a JSON object")),
    }
}

pub(super) fn required_str(body: &Map<String, Value>, name: &str) -> Result<String, ApiError> {
    match body.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(invalid_request(&format!("Missing required member {name}"))),
    }
}

pub(super) fn optional_str_list(
    body: &Map<String, Value>,
    name: &str,
) -> Result<Option<Vec<String>>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid_request(&format!("{name} must be a list of strings")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(invalid_request(&format!(
            "{name} must be a list of strings"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oidc_status_codes_follow_the_model() {
        assert_eq!(ApiError::oidc("InvalidClientException", "").status, 401);
        assert_eq!(ApiError::oidc("InternalServerException", "").status, 500);
        assert_eq!(
            ApiError::oidc("AuthorizationPendingException", "").status,
            400
        );
        assert_eq!(oauth_error_code("SlowDownException"), Some("slow_down"));
        assert_eq!(oauth_error_code("UnauthorizedException"), None);
    }
}
