//! Targets: list, read and authorize-session (`boundary.md` §1.4).

use serde_json::{Map, Value, json};

use super::super::cert;
use super::super::cluster::SessionStatus;
use super::http::{Answer, ApiError, Request};
use super::json::{self, host_set_id, project_scope, put, random_id, rfc3339};
use super::state::{AuthToken, Session, Shared};
use super::token::{self, ScopeInfo, SessionAuthorizationData, Timestamp, WorkerInfo};
use super::{FakeTarget, ORG_ID, filter};

/// Checks `scope_id` / `recursive` of a list (§1.5): a project, unless
/// recursive; returns whether a target's project is in scope.
pub(crate) fn scope_check(request: &Request) -> Result<impl Fn(&str) -> bool, ApiError> {
    let scope_id = request.param("scope_id").unwrap_or_default().to_owned();
    let recursive = request.flag("recursive")?;
    if scope_id.is_empty() {
        return Err(ApiError::field("scope_id", "This field is required."));
    }
    if !recursive && !scope_id.starts_with("p_") {
        return Err(ApiError::field(
            "scope_id",
            "This field must be a project scope ID unless recursive is set.",
        ));
    }
    Ok(move |project: &str| {
        project == scope_id || (recursive && (scope_id == "global" || scope_id == ORG_ID))
    })
}

/// `filter` of a list, parsed; a parse error is a 400 on that field.
pub(crate) fn parse_filter(request: &Request) -> Result<Option<filter::Expr>, ApiError> {
    match request.param("filter") {
        None | Some("") => Ok(None),
        Some(text) => filter::parse(text).map(Some).map_err(|e| {
            ApiError::field("filter", &format!("This field could not be parsed: {e}"))
        }),
    }
}

/// `GET /v1/targets`.
pub(crate) fn list(shared: &Shared, request: &Request) -> Answer {
    let in_scope = scope_check(request)?;
    let filter = parse_filter(request)?;
    let inner = shared.lock();
    let items: Vec<Value> = inner
        .config
        .targets
        .iter()
        .filter(|t| in_scope(&t.scope_id))
        .map(|t| json::target(t, inner.config.started))
        .filter(|item| {
            filter
                .as_ref()
                .is_none_or(|f| f.matches(&json!({"item": item})))
        })
        .collect();
    let mut body = Map::new();
    put(&mut body, "items", Value::Array(items));
    Ok(Value::Object(body))
}

/// `GET /v1/targets/{id}`.
pub(crate) fn read(shared: &Shared, id: &str) -> Answer {
    let inner = shared.lock();
    inner
        .config
        .targets
        .iter()
        .find(|t| t.id == id)
        .map(|t| json::target(t, inner.config.started))
        .ok_or_else(ApiError::not_found)
}

fn body_str<'a>(body: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    body.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The target named by the URL segment: an id, or a name with exactly one
/// of `scope_id` / `scope_name` in the body.
fn resolve(
    targets: &[FakeTarget],
    id_or_name: &str,
    body: &Map<String, Value>,
) -> Result<FakeTarget, ApiError> {
    if let Some(t) = targets.iter().find(|t| t.id == id_or_name) {
        return Ok(t.clone());
    }
    let name = body_str(body, "name").unwrap_or(id_or_name);
    let found = match (body_str(body, "scope_id"), body_str(body, "scope_name")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::field(
                "scope_id",
                "Cannot specify both scope_id and scope_name.",
            )
            .with("scope_name", "Cannot specify both scope_id and scope_name."));
        }
        (None, None) if id_or_name.starts_with("ttcp_") => return Err(ApiError::not_found()),
        (None, None) => {
            return Err(ApiError::field(
                "scope_id",
                "A target name needs either scope_id or scope_name.",
            )
            .with(
                "scope_name",
                "A target name needs either scope_id or scope_name.",
            ));
        }
        (Some(scope_id), None) => targets
            .iter()
            .find(|t| t.name == name && t.scope_id == scope_id),
        (None, Some(scope_name)) => targets
            .iter()
            .find(|t| t.name == name && t.scope_name == scope_name),
    };
    found.cloned().ok_or_else(ApiError::not_found)
}

/// `POST /v1/targets/{id or name}:authorize-session`.
pub(crate) fn authorize(
    shared: &Shared,
    caller: &AuthToken,
    id_or_name: &str,
    request: &Request,
) -> Answer {
    let body = request.object()?;
    let now = shared.now();
    let mut inner = shared.lock();
    let target = resolve(&inner.config.targets, id_or_name, &body)?;
    let host_id = match (body_str(&body, "host_id"), target.host_ids.first()) {
        (Some(h), _) if target.host_ids.iter().any(|t| t == h) => Some(h.to_owned()),
        (Some(_), _) => {
            return Err(ApiError::field(
                "host_id",
                "The host is not in the target's host sources.",
            ));
        }
        (None, first) => first.cloned(),
    };
    let legacy = inner.config.legacy_0_13;
    let id = random_id("s");
    let expiration = now + time::Duration::seconds(i64::from(target.session_max_seconds));
    let worker_address = inner.worker_address.clone();
    let identity = cert::issue(&id, std::slice::from_ref(&worker_address), now, expiration);
    let endpoint = format!("tcp://{}", target.endpoint);
    let data = SessionAuthorizationData {
        session_id: id.clone(),
        target_id: target.id.clone(),
        scope: Some(ScopeInfo {
            id: target.scope_id.clone(),
            r#type: "project".into(),
            name: target.scope_name.clone(),
            description: String::new(),
            parent_scope_id: ORG_ID.into(),
        }),
        created_time: Some(Timestamp::from_time(now)),
        r#type: target.target_type.clone(),
        connection_limit: target.connection_limit,
        endpoint_port: if legacy {
            0
        } else {
            target.endpoint.port().into()
        },
        expiration: (!legacy).then(|| Timestamp::from_time(expiration)),
        certificate: identity.certificate_der.clone(),
        private_key: identity.seed_and_public.to_vec(),
        host_id: host_id.clone().unwrap_or_default(),
        endpoint: endpoint.clone(),
        worker_info: vec![WorkerInfo {
            address: worker_address,
        }],
        default_client_port: 0,
    };
    let mut answer = Map::new();
    put(&mut answer, "session_id", json!(id));
    put(&mut answer, "target_id", json!(target.id));
    answer.insert("scope".into(), project_scope(&target));
    put(&mut answer, "created_time", json!(rfc3339(now)));
    put(&mut answer, "user_id", json!(caller.account.user_id));
    if let Some(host) = &host_id {
        put(&mut answer, "host_set_id", json!(host_set_id(&target)));
        put(&mut answer, "host_id", json!(host));
    }
    put(&mut answer, "type", json!(target.target_type));
    put(
        &mut answer,
        "authorization_token",
        json!(token::encode(&data)),
    );
    put(&mut answer, "endpoint", json!(endpoint));
    if !legacy {
        put(
            &mut answer,
            "connection_limit",
            json!(target.connection_limit),
        );
        put(&mut answer, "endpoint_port", json!(target.endpoint.port()));
        put(&mut answer, "expiration", json!(rfc3339(expiration)));
    }
    let seq = inner.next_seq();
    let mut session = Session {
        id: id.clone(),
        connection_limit: target.connection_limit,
        target,
        user_id: caller.account.user_id.clone(),
        auth_token_id: caller.id.clone(),
        host_id,
        endpoint,
        created: now,
        updated: now,
        expiration,
        version: 0,
        states: Vec::new(),
        identity,
        tofu_token: None,
        connections: Vec::new(),
        termination_reason: None,
        created_seq: seq,
        updated_seq: seq,
    };
    session.transition(SessionStatus::Pending, now, seq);
    inner.sessions.insert(id, session);
    Ok(Value::Object(answer))
}
