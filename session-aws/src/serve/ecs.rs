//! The ECS container-credentials endpoint (AWS reference §3.6).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use session_core::{ErrorChain, Secret};

use super::{Served, Shared, aws_timestamp};

/// `GET /ecs/credentials`: the credentials, for the holder of the token.
pub(super) async fn credentials(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let Some(expected) = &shared.ecs_token else {
        // The route exists only with a token; answer as for any unknown path.
        return json_error(StatusCode::NOT_FOUND, "NotFound", "no such endpoint");
    };
    // The answers below never repeat what was sent: it may be a token
    // meant for another server.
    let Some(given) = headers.get(header::AUTHORIZATION) else {
        return json_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "the Authorization header is missing; send the value of \
             AWS_CONTAINER_AUTHORIZATION_TOKEN",
        );
    };
    if !token_matches(given, expected) {
        return json_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "the Authorization header does not match this endpoint's token",
        );
    }
    match shared.fetch().await {
        Ok(served) => credential_response(Json(body(&served))),
        Err(error) => {
            tracing::debug!(
                category = error.category(),
                "ECS endpoint: the source failed"
            );
            json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                error.category(),
                &ErrorChain(&error).to_string(),
            )
        }
    }
}

/// Constant-time comparison (through [`Secret`]'s `PartialEq`) of the raw
/// header value with the token.
fn token_matches(given: &HeaderValue, expected: &Secret) -> bool {
    match std::str::from_utf8(given.as_bytes()) {
        Ok(given) => Secret::new(given) == *expected,
        Err(_) => false,
    }
}

/// The ECS document. The session token's field is `Token` (not
/// `SessionToken` as in `credential_process`).
fn body(served: &Served) -> serde_json::Value {
    serde_json::json!({
        "AccessKeyId": served.creds.access_key_id,
        "SecretAccessKey": served.creds.secret_access_key.expose(),
        "Token": served.token.expose(),
        "Expiration": aws_timestamp(served.expiration),
    })
}

/// A 200 carrying credentials: not to be kept by any cache on the way.
pub(super) fn credential_response(body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `{"code": .., "message": ..}` with `status`, the error shape of the ECS
/// agent that the SDKs quote in their error messages.
pub(super) fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "code": code, "message": message })),
    )
        .into_response()
}
