//! The routes and the authentication layer.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Request, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use serde_json::{Map, Value, json};

use super::accounts;
use super::lockout::ClientKey;
use super::messages::{
    error, insufficient_privilege, message, no_valid_session, payload_too_large, store_unavailable,
};
use super::state::{LoginError, Principal, Privilege, SessionEntry, SessionId, State};

/// The Sessions collection URI (`Links.Sessions`).
pub(crate) const SESSIONS: &str = "/redfish/v1/SessionService/Sessions";
/// The Sessions collection's `Members`, where a POST also logs in.
const SESSIONS_MEMBERS: &str = "/redfish/v1/SessionService/Sessions/Members";
const SESSION_SERVICE: &str = "/redfish/v1/SessionService";
const SYSTEMS: &str = "/redfish/v1/Systems";

/// The largest request body accepted (larger ones get 413): a login or a
/// PATCH is a few hundred bytes, and a body is held in memory whole.
const BODY_LIMIT: usize = 64 * 1024;

/// Where the DMTF publishes the JSON schemas `Link: rel=describedby` names.
const SCHEMA_BASE: &str = "https://redfish.dmtf.org/schemas/v1/";

pub(super) type Shared = Arc<State>;

/// The server's router.
pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .route("/redfish", get(version))
        .route("/redfish/", get(version))
        .route("/redfish/v1", get(service_root))
        .route("/redfish/v1/", get(service_root))
        .route("/redfish/v1/odata", get(odata))
        .route("/redfish/v1/$metadata", get(metadata))
        .route(SYSTEMS, get(systems))
        .route(
            SESSION_SERVICE,
            get(get_session_service).patch(patch_session_service),
        )
        .route(SESSIONS, get(list_sessions).post(login))
        .route(SESSIONS_MEMBERS, axum::routing::post(login))
        .route(
            &format!("{SESSIONS}/{{id}}"),
            get(get_session).delete(delete_session),
        )
        .merge(accounts::routes())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(middleware::map_response(common_headers))
        .with_state(state)
}

/// Requests that need no authentication.
fn is_public(method: &Method, path: &str) -> bool {
    let path = path.trim_end_matches('/');
    let read = method == Method::GET || method == Method::HEAD;
    let login = method == Method::POST && (path == SESSIONS || path == SESSIONS_MEMBERS);
    login
        || (read
            && matches!(
                path,
                "/redfish" | "/redfish/v1" | "/redfish/v1/odata" | "/redfish/v1/$metadata"
            ))
}

/// Authentication first (before any other header), then `OData-Version`.
/// Also records the client's address (from `ConnectInfo`, when the router
/// is served with it) for the login lockout.
async fn authenticate(AxState(state): AxState<Shared>, mut req: Request, next: Next) -> Response {
    let client = ClientKey::of(
        req.extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip()),
    );
    req.extensions_mut().insert(client);
    if !is_public(req.method(), req.uri().path()) {
        let found = match (&state.shared, req.headers().get("x-auth-token")) {
            (Some(shared), Some(token)) => match token.to_str() {
                Ok(token) => match shared.authenticate(&state, token).await {
                    Ok(found) => found,
                    Err(e) => return store_unavailable(&e),
                },
                Err(_) => None,
            },
            _ => principal(&state, req.headers(), client),
        };
        match found {
            Some(p) => {
                req.extensions_mut().insert(p);
            }
            None => return no_valid_session(),
        }
    }
    if let Some(v) = req.headers().get("odata-version")
        && v.as_bytes() != b"4.0"
    {
        return error(StatusCode::PRECONDITION_FAILED, "PreconditionFailed", &[]);
    }
    next.run(req).await
}

fn principal(state: &State, headers: &HeaderMap, client: ClientKey) -> Option<Principal> {
    if let Some(token) = headers.get("x-auth-token") {
        return state
            .authenticate_token(token.to_str().ok()?)
            .map(|(p, _)| p);
    }
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = auth.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    state
        .check_password(user, password, client)
        .filter(|p| p.role.has(Privilege::Login))
}

/// The headers every answer carries; and a Redfish error body for the 405
/// and 413 answers axum makes itself (with an empty or plain-text body).
async fn common_headers(res: Response) -> Response {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let mut res = match res.status() {
        StatusCode::METHOD_NOT_ALLOWED if !is_json => {
            let allow = res.headers().get(header::ALLOW).cloned();
            let mut redfish = error(StatusCode::METHOD_NOT_ALLOWED, "OperationNotAllowed", &[]);
            if let Some(allow) = allow {
                redfish.headers_mut().insert(header::ALLOW, allow);
            }
            redfish
        }
        StatusCode::PAYLOAD_TOO_LARGE if !is_json => payload_too_large(BODY_LIMIT),
        _ => res,
    };
    let headers = res.headers_mut();
    headers.insert("odata-version", HeaderValue::from_static("4.0"));
    if headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/json")
    {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json;charset=utf-8"),
        );
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-cache"));
    res
}

fn with_allow(mut res: Response, allow: &'static str) -> Response {
    res.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    res
}

/// `Link: <schema>; rel=describedby` for a body's `@odata.type`: the
/// versioned schema for `#Ns.v1_2_0.Type` (`Ns.v1_2_0.json`), the
/// unversioned one for `#Ns.Ns` (`Ns.json`), as the validator's
/// `RESP_HEADERS_LINK_SCHEMA_VER_MATCH` expects.
pub(super) fn described_by(body: &Value) -> Option<HeaderValue> {
    let odata_type = body.get("@odata.type")?.as_str()?.strip_prefix('#')?;
    let (schema, _type_name) = odata_type.rsplit_once('.')?;
    HeaderValue::from_str(&format!("<{SCHEMA_BASE}{schema}.json>; rel=describedby")).ok()
}

/// A 200 resource response with `Allow` and, from the `@odata.type`, the
/// `describedby` link.
pub(super) fn json_ok(body: Value, allow: &'static str) -> Response {
    let link = described_by(&body);
    let mut res = with_allow(axum::Json(body).into_response(), allow);
    if let Some(link) = link {
        res.headers_mut().insert(header::LINK, link);
    }
    res
}

async fn version() -> Response {
    json_ok(json!({"v1": "/redfish/v1/"}), "GET, HEAD")
}

async fn service_root(AxState(state): AxState<Shared>) -> Response {
    json_ok(
        json!({
            "@odata.id": "/redfish/v1/",
            "@odata.type": "#ServiceRoot.v1_15_0.ServiceRoot",
            "Id": "RootService",
            "Name": "Root Service",
            "RedfishVersion": "1.15.0",
            "UUID": state.uuid,
            "Systems": {"@odata.id": SYSTEMS},
            "SessionService": {"@odata.id": SESSION_SERVICE},
            "AccountService": {"@odata.id": accounts::ACCOUNT_SERVICE},
            "Links": {"Sessions": {"@odata.id": SESSIONS}},
        }),
        "GET, HEAD",
    )
}

async fn odata() -> Response {
    json_ok(
        json!({
            "@odata.context": "/redfish/v1/$metadata",
            "value": [
                {"name": "Service", "kind": "Singleton", "url": "/redfish/v1/"},
                {"name": "Systems", "kind": "Singleton", "url": SYSTEMS},
                {"name": "SessionService", "kind": "Singleton", "url": SESSION_SERVICE},
                {"name": "AccountService", "kind": "Singleton", "url": accounts::ACCOUNT_SERVICE},
                {"name": "Sessions", "kind": "Singleton", "url": SESSIONS},
            ]
        }),
        "GET, HEAD",
    )
}

const METADATA: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">
  <edmx:Reference Uri="http://redfish.dmtf.org/schemas/v1/ServiceRoot_v1.xml">
    <edmx:Include Namespace="ServiceRoot"/>
    <edmx:Include Namespace="ServiceRoot.v1_15_0"/>
  </edmx:Reference>
  <edmx:Reference Uri="http://redfish.dmtf.org/schemas/v1/ComputerSystemCollection_v1.xml">
    <edmx:Include Namespace="ComputerSystemCollection"/>
  </edmx:Reference>
  <edmx:Reference Uri="http://redfish.dmtf.org/schemas/v1/SessionService_v1.xml">
    <edmx:Include Namespace="SessionService"/>
    <edmx:Include Namespace="SessionService.v1_2_0"/>
  </edmx:Reference>
  <edmx:Reference Uri="http://redfish.dmtf.org/schemas/v1/SessionCollection_v1.xml">
    <edmx:Include Namespace="SessionCollection"/>
  </edmx:Reference>
  <edmx:Reference Uri="http://redfish.dmtf.org/schemas/v1/Session_v1.xml">
    <edmx:Include Namespace="Session"/>
    <edmx:Include Namespace="Session.v1_8_0"/>
  </edmx:Reference>
  <edmx:Reference Uri="http://redfish.dmtf.org/schemas/v1/AccountService_v1.xml">
    <edmx:Include Namespace="AccountService"/>
    <edmx:Include Namespace="AccountService.v1_18_0"/>
  </edmx:Reference>
  <edmx:Reference Uri="http://redfish.dmtf.org/schemas/v1/ManagerAccountCollection_v1.xml">
    <edmx:Include Namespace="ManagerAccountCollection"/>
  </edmx:Reference>
  <edmx:Reference Uri="http://redfish.dmtf.org/schemas/v1/ManagerAccount_v1.xml">
    <edmx:Include Namespace="ManagerAccount"/>
    <edmx:Include Namespace="ManagerAccount.v1_12_0"/>
  </edmx:Reference>
  <edmx:Reference Uri="http://redfish.dmtf.org/schemas/v1/RoleCollection_v1.xml">
    <edmx:Include Namespace="RoleCollection"/>
  </edmx:Reference>
  <edmx:Reference Uri="http://redfish.dmtf.org/schemas/v1/Role_v1.xml">
    <edmx:Include Namespace="Role"/>
    <edmx:Include Namespace="Role.v1_3_0"/>
  </edmx:Reference>
  <edmx:Reference Uri="http://redfish.dmtf.org/schemas/v1/Message_v1.xml">
    <edmx:Include Namespace="Message"/>
    <edmx:Include Namespace="Message.v1_2_0"/>
  </edmx:Reference>
  <edmx:DataServices>
    <Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="Service">
      <EntityContainer Name="Service" Extends="ServiceRoot.v1_15_0.ServiceContainer"/>
    </Schema>
  </edmx:DataServices>
</edmx:Edmx>
"#;

async fn metadata() -> Response {
    let mut res = with_allow(METADATA.into_response(), "GET, HEAD");
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml;charset=utf-8"),
    );
    res
}

async fn not_found(req: Request) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        &["Resource", req.uri().path()],
    )
}

async fn systems() -> Response {
    json_ok(
        json!({
            "@odata.id": SYSTEMS,
            "@odata.type": "#ComputerSystemCollection.ComputerSystemCollection",
            "Name": "Computer System Collection",
            "Members@odata.count": 0,
            "Members": [],
        }),
        "GET, HEAD",
    )
}

fn session_service_body(state: &State) -> Value {
    let settings = state.settings();
    json!({
        "@odata.id": SESSION_SERVICE,
        "@odata.type": "#SessionService.v1_2_0.SessionService",
        "Id": "SessionService",
        "Name": "Session Service",
        "Description": "Session Service",
        "Status": {"State": if settings.service_enabled { "Enabled" } else { "Disabled" }, "Health": "OK"},
        "ServiceEnabled": settings.service_enabled,
        "SessionTimeout": settings.timeout.as_secs(),
        "Sessions": {"@odata.id": SESSIONS},
    })
}

async fn get_session_service(AxState(state): AxState<Shared>) -> Response {
    json_ok(session_service_body(&state), "GET, HEAD, PATCH")
}

pub(super) fn parse_object(body: &Bytes) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

pub(super) fn malformed_json() -> Response {
    error(StatusCode::BAD_REQUEST, "MalformedJSON", &[])
}

async fn patch_session_service(
    AxState(state): AxState<Shared>,
    axum::Extension(who): axum::Extension<Principal>,
    body: Bytes,
) -> Response {
    if !who.role.has(Privilege::ConfigureManager) {
        return insufficient_privilege();
    }
    let Some(map) = parse_object(&body) else {
        return malformed_json();
    };
    let mut timeout = None;
    let mut enabled = None;
    for (key, value) in &map {
        match key.as_str() {
            "SessionTimeout" => match value.as_u64() {
                Some(v) if (30..=86_400).contains(&v) => timeout = Some(v),
                Some(_) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "PropertyValueOutOfRange",
                        &[&value.to_string(), "SessionTimeout"],
                    );
                }
                None if value.is_number() => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "PropertyValueOutOfRange",
                        &[&value.to_string(), "SessionTimeout"],
                    );
                }
                None => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "PropertyValueTypeError",
                        &[&value.to_string(), "SessionTimeout"],
                    );
                }
            },
            "ServiceEnabled" => match value.as_bool() {
                Some(b) => enabled = Some(b),
                None => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "PropertyValueTypeError",
                        &[&value.to_string(), "ServiceEnabled"],
                    );
                }
            },
            k if k.starts_with('@') => {}
            other => return error(StatusCode::BAD_REQUEST, "PropertyUnknown", &[other]),
        }
    }
    state.update_settings(|s| {
        if let Some(t) = timeout {
            s.timeout = std::time::Duration::from_secs(t);
        }
        if let Some(e) = enabled {
            s.service_enabled = e;
        }
    });
    json_ok(session_service_body(&state), "GET, HEAD, PATCH")
}

fn session_uri(id: SessionId) -> String {
    format!("{SESSIONS}/{id}")
}

fn session_body(entry: &SessionEntry) -> Value {
    let created = entry
        .created
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut body = json!({
        "@odata.id": session_uri(entry.id),
        "@odata.type": "#Session.v1_8_0.Session",
        "Id": entry.id.to_string(),
        "Name": "User Session",
        "Description": "Manager User Session",
        "UserName": &*entry.username,
        "Password": null,
        "SessionType": "Redfish",
        "CreatedTime": created,
    });
    if let Some(ctx) = &entry.context {
        body["Context"] = Value::String(ctx.to_string());
    }
    body
}

async fn login(
    AxState(state): AxState<Shared>,
    axum::Extension(client): axum::Extension<ClientKey>,
    body: Bytes,
) -> Response {
    let Some(map) = parse_object(&body) else {
        return malformed_json();
    };
    let mut username = None;
    let mut password = None;
    let mut context = None;
    for (key, value) in &map {
        let slot = match key.as_str() {
            "UserName" => &mut username,
            "Password" => &mut password,
            "Context" => &mut context,
            // An MFA code: accepted and ignored (no MFA here).
            "Token" => continue,
            k if k.starts_with('@') => continue,
            other => return error(StatusCode::BAD_REQUEST, "PropertyUnknown", &[other]),
        };
        match value {
            Value::String(s) => *slot = Some(s.clone()),
            // Never echo a Password value back.
            _ if key == "Password" => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "PropertyValueTypeError",
                    &["<redacted>", "Password"],
                );
            }
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "PropertyValueTypeError",
                    &[&value.to_string(), key],
                );
            }
        }
    }
    let Some(username) = username else {
        return error(
            StatusCode::BAD_REQUEST,
            "CreateFailedMissingReqProperties",
            &["UserName"],
        );
    };
    let Some(password) = password.map(session_core::Secret::new) else {
        return error(
            StatusCode::BAD_REQUEST,
            "CreateFailedMissingReqProperties",
            &["Password"],
        );
    };
    let result = state.login(&username, password.expose(), context, client);
    if let (Some(shared), Ok((entry, _))) = (&state.shared, &result)
        && let Err(e) = shared.record_login(&state, entry).await
    {
        return store_unavailable(&e);
    }
    match result {
        Ok((entry, token)) => {
            let uri = session_uri(entry.id);
            let mut res = (StatusCode::CREATED, axum::Json(session_body(&entry))).into_response();
            let headers = res.headers_mut();
            if let Ok(v) = HeaderValue::from_str(token.expose()) {
                headers.insert("x-auth-token", v);
            }
            if let Ok(v) = HeaderValue::from_str(&uri) {
                headers.insert(header::LOCATION, v);
            }
            if let Ok(v) = HeaderValue::from_str(&format!("<{uri}>; rel=self")) {
                headers.insert(header::LINK, v);
            }
            res
        }
        Err(LoginError::BadCredentials) => error(
            StatusCode::UNAUTHORIZED,
            "ResourceAtUriUnauthorized",
            &[SESSIONS, "Unauthorized"],
        ),
        Err(LoginError::Disabled) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceDisabled",
            &[SESSION_SERVICE],
        ),
        Err(LoginError::Limit) => {
            let mut res = error(StatusCode::SERVICE_UNAVAILABLE, "SessionLimitExceeded", &[]);
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
            res
        }
    }
}

async fn list_sessions(
    AxState(state): AxState<Shared>,
    axum::Extension(who): axum::Extension<Principal>,
) -> Response {
    let owner = (!who.role.has(Privilege::ConfigureUsers)).then_some(&*who.username);
    let ids = match &state.shared {
        Some(shared) => match shared.list(&state, owner).await {
            Ok(ids) => ids,
            Err(e) => return store_unavailable(&e),
        },
        None => state.list(owner),
    };
    let members: Vec<Value> = ids
        .into_iter()
        .map(|id| json!({"@odata.id": session_uri(id)}))
        .collect();
    json_ok(
        json!({
            "@odata.id": SESSIONS,
            "@odata.type": "#SessionCollection.SessionCollection",
            "Name": "Session Collection",
            "Members@odata.count": members.len(),
            "Members": members,
        }),
        "GET, HEAD, POST",
    )
}

fn session_not_found(id: &str) -> Response {
    error(StatusCode::NOT_FOUND, "ResourceNotFound", &["Session", id])
}

/// The session `id` names: from memory, or with shared logins from the
/// repository. `Err` is the response to send instead.
async fn find_session(state: &State, id: &str) -> Result<SessionEntry, Response> {
    let found = match (SessionId::parse(id), &state.shared) {
        (None, _) => None,
        (Some(parsed), Some(shared)) => shared
            .get(state, parsed)
            .await
            .map_err(|e| store_unavailable(&e))?,
        (Some(parsed), None) => state.get(parsed),
    };
    found.ok_or_else(|| session_not_found(id))
}

async fn get_session(
    AxState(state): AxState<Shared>,
    axum::Extension(who): axum::Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    let entry = match find_session(&state, &id).await {
        Ok(entry) => entry,
        Err(res) => return res,
    };
    if entry.username != who.username && !who.role.has(Privilege::ConfigureUsers) {
        return insufficient_privilege();
    }
    json_ok(session_body(&entry), "GET, HEAD, DELETE")
}

async fn delete_session(
    AxState(state): AxState<Shared>,
    axum::Extension(who): axum::Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    let entry = match find_session(&state, &id).await {
        Ok(entry) => entry,
        Err(res) => return res,
    };
    let own = entry.username == who.username;
    let allowed = who.role.has(Privilege::ConfigureManager)
        || (own && who.role.has(Privilege::ConfigureSelf));
    if !allowed {
        return insufficient_privilege();
    }
    match &state.shared {
        Some(shared) => match shared.delete(&state, entry.id).await {
            Ok(true) => {}
            Ok(false) => return session_not_found(&id),
            Err(e) => return store_unavailable(&e),
        },
        None => {
            state.remove(entry.id);
        }
    }
    let body = json!({"@Message.ExtendedInfo": [message("SessionTerminated", &[])]});
    (StatusCode::OK, axum::Json(body)).into_response()
}
