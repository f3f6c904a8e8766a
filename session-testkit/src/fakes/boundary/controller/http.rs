//! The HTTP side: one handler that logs the request, serves queued faults,
//! runs the terminator's step, checks the bearer token and dispatches on
//! the path. grpc-gateway's custom verbs (`/{id}:verb`) sit in the last path
//! segment, so the dispatch splits that segment on `:` itself.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::RequestRecord;
use super::state::{AuthToken, Shared};
use super::{auth, sessions, targets};

/// `controller.api.v1.Error` with its HTTP status (§1.2).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub(crate) status: u16,
    pub(crate) kind: String,
    pub(crate) message: String,
    /// `details.request_fields`: (name, description).
    pub(crate) fields: Vec<(String, String)>,
}

impl ApiError {
    pub(crate) fn new(status: u16, kind: &str, message: &str) -> Self {
        Self {
            status,
            kind: kind.to_owned(),
            message: message.to_owned(),
            fields: Vec::new(),
        }
    }

    /// 400 `InvalidArgument` on one request field.
    pub(crate) fn field(name: &str, description: &str) -> Self {
        Self::new(400, "InvalidArgument", "Error in provided request.").with(name, description)
    }

    pub(crate) fn with(mut self, name: &str, description: &str) -> Self {
        self.fields.push((name.to_owned(), description.to_owned()));
        self
    }

    pub(crate) fn unauthenticated() -> Self {
        Self::new(401, "Unauthenticated", "Unauthenticated, or invalid token.")
    }

    pub(crate) fn not_found() -> Self {
        Self::new(404, "NotFound", "Resource not found.")
    }

    pub(crate) fn body(&self) -> Value {
        let mut body = json!({"kind": self.kind, "message": self.message});
        if !self.fields.is_empty() {
            let fields: Vec<Value> = self
                .fields
                .iter()
                .map(|(name, description)| json!({"name": name, "description": description}))
                .collect();
            body["details"] = json!({"request_fields": fields});
        }
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self.body())).into_response()
    }
}

/// A route's answer: the JSON body of a 200, or an error.
pub(crate) type Answer = Result<Value, ApiError>;

/// What a route gets.
pub(crate) struct Request {
    pub(crate) method: Method,
    /// Percent-decoded path segments after `/v1/`.
    pub(crate) segments: Vec<String>,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) body: Option<Value>,
}

impl Request {
    /// The last value of query parameter `name`.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean query parameter (`true`/`false`, absent = false).
    pub(crate) fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.param(name) {
            None | Some("") | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(ApiError::field(name, "Invalid boolean value.")),
        }
    }

    /// The body as a JSON object (absent = `{}`).
    pub(crate) fn object(&self) -> Result<Map<String, Value>, ApiError> {
        match &self.body {
            None => Ok(Map::new()),
            Some(Value::Object(m)) => Ok(m.clone()),
            Some(_) => Err(ApiError::new(
                400,
                "InvalidArgument",
                "The request body is not a JSON object.",
            )),
        }
    }
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

/// `%XX` decoding of one path segment.
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Replaces every `password` member (at any depth) for the request log.
fn redact(value: &mut Value) {
    match value {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                if k == "password" {
                    *v = json!("<redacted>");
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    // `HeaderMap` names are case-insensitive already; the scheme is too.
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = shared.now();
    let token_value = bearer(&headers);
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let fault = {
        let mut inner = shared.lock();
        let mut logged = parsed.clone();
        if let Some(v) = logged.as_mut() {
            redact(v);
        }
        inner.requests.push(RequestRecord {
            method: method.to_string(),
            path: uri.path().to_owned(),
            query: uri.query().map(str::to_owned),
            bearer: token_value.is_some(),
            body: logged,
        });
        inner.sweep(now);
        inner.faults.pop_front()
    };
    if let Some(fault) = fault {
        let status =
            StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(fault.body)).into_response();
        if let Some(secs) = fault.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        return response;
    }
    if !body.is_empty() && parsed.is_none() {
        return ApiError::new(
            400,
            "InvalidArgument",
            "The request body is not valid JSON.",
        )
        .into_response();
    }
    let Some(rest) = uri.path().strip_prefix("/v1/") else {
        return ApiError::not_found().into_response();
    };
    let query = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map(|q| q.0)
        .unwrap_or_default();
    let request = Request {
        method,
        segments: rest.split('/').map(percent_decode).collect(),
        query,
        body: parsed,
    };
    match route(&shared, &request, token_value.as_deref()) {
        Ok(value) => (StatusCode::OK, axum::Json(value)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `name` and `verb` of a last segment `name:verb`.
fn split_verb(segment: &str) -> (&str, Option<&str>) {
    match segment.rsplit_once(':') {
        Some((name, verb)) => (name, Some(verb)),
        None => (segment, None),
    }
}

fn route(shared: &Shared, request: &Request, token_value: Option<&str>) -> Answer {
    let segments: Vec<&str> = request.segments.iter().map(String::as_str).collect();
    let is_post = request.method == Method::POST;
    // The one route without a bearer token.
    if let (true, ["auth-methods", last]) = (is_post, segments.as_slice())
        && let (id, Some("authenticate")) = split_verb(last)
    {
        return auth::authenticate(shared, id, request);
    }
    let known = matches!(
        segments.as_slice(),
        ["auth-methods", _]
            | ["auth-tokens", _]
            | ["targets"]
            | ["targets", _]
            | ["sessions"]
            | ["sessions", _]
    );
    if !known {
        return Err(ApiError::not_found());
    }
    let caller = authenticate_bearer(shared, token_value)?;
    let method = &request.method;
    match segments.as_slice() {
        ["auth-tokens", id] if method == Method::GET => auth::read_token(shared, id),
        ["auth-tokens", id] if method == Method::DELETE => auth::delete_token(shared, id),
        ["targets"] if method == Method::GET => targets::list(shared, request),
        ["targets", last] => match (method.clone(), split_verb(last)) {
            (Method::GET, (id, None)) => targets::read(shared, id),
            (Method::POST, (id, Some("authorize-session"))) => {
                targets::authorize(shared, &caller, id, request)
            }
            _ => Err(unimplemented()),
        },
        ["sessions"] if method == Method::GET => sessions::list(shared, &caller, request),
        ["sessions", last] => match (method.clone(), split_verb(last)) {
            (Method::GET, (id, None)) => sessions::read(shared, &caller, id),
            (Method::POST, (id, Some("cancel"))) => sessions::cancel(shared, &caller, id, request),
            _ => Err(unimplemented()),
        },
        _ => Err(unimplemented()),
    }
}

fn unimplemented() -> ApiError {
    ApiError::new(
        405,
        "Unimplemented",
        "Method not supported for this resource.",
    )
}

fn authenticate_bearer(shared: &Shared, token_value: Option<&str>) -> Result<AuthToken, ApiError> {
    let now = shared.now();
    token_value
        .and_then(|v| shared.lock().bearer(v, now))
        .ok_or_else(ApiError::unauthenticated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_decoded() {
        assert_eq!(
            percent_decode("my%20target:authorize-session"),
            "my target:authorize-session"
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(split_verb("s_1:cancel"), ("s_1", Some("cancel")));
    }

    #[test]
    fn passwords_are_redacted() {
        let mut v = json!({"attributes": {"login_name": "a", "password": "secret"}});
        redact(&mut v);
        assert_eq!(v["attributes"]["password"], "<redacted>");
    }
}
