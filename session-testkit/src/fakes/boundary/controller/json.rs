//! Resources as proto3 JSON (`boundary.md` §1.1): snake_case names, empty
//! and zero fields omitted, uint64 as strings, uint32/int32 as numbers,
//! RFC 3339 times.

use base64::Engine;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::super::cluster::SessionStatus;
use super::state::{AuthToken, Session, status_str};
use super::{FakeTarget, ORG_ID};

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `<prefix>_<10 base62 characters>`, random.
pub(crate) fn random_id(prefix: &str) -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let tail: String = bytes[..10]
        .iter()
        .map(|b| BASE62[*b as usize % BASE62.len()] as char)
        .collect();
    format!("{prefix}_{tail}")
}

/// Random bytes for token secrets.
pub(crate) fn random_bytes() -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    out[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    out
}

/// Whether `id` is `<prefix>_<10 base62>`.
pub(crate) fn well_formed_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|tail| tail.len() == 10 && tail.bytes().all(|b| BASE62.contains(&b)))
}

/// RFC 3339.
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("an RFC 3339 time")
}

/// Inserts `value` unless it is proto3's default (empty string, empty
/// array, zero number, null).
pub(crate) fn put(map: &mut Map<String, Value>, key: &str, value: Value) {
    let empty = match &value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Bool(b) => !b,
        Value::Object(_) => false,
    };
    if !empty {
        map.insert(key.to_owned(), value);
    }
}

/// `ScopeInfo` of a target's project.
pub(crate) fn project_scope(target: &FakeTarget) -> Value {
    json!({
        "id": target.scope_id,
        "type": "project",
        "name": target.scope_name,
        "parent_scope_id": ORG_ID,
    })
}

/// The host set a target's hosts belong to.
pub(crate) fn host_set_id(target: &FakeTarget) -> String {
    let tail = target.id.rsplit('_').next().unwrap_or_default();
    format!("hsst_{tail}")
}

/// `controller.api.resources.sessions.v1.Session`.
pub(crate) fn session(s: &Session) -> Value {
    let mut m = Map::new();
    put(&mut m, "id", json!(s.id));
    put(&mut m, "target_id", json!(s.target.id));
    m.insert("scope".into(), project_scope(&s.target));
    put(&mut m, "created_time", json!(rfc3339(s.created)));
    put(&mut m, "updated_time", json!(rfc3339(s.updated)));
    put(&mut m, "version", json!(s.version));
    put(&mut m, "type", json!(s.target.target_type));
    put(&mut m, "expiration_time", json!(rfc3339(s.expiration)));
    put(&mut m, "auth_token_id", json!(s.auth_token_id));
    put(&mut m, "user_id", json!(s.user_id));
    if let Some(host) = &s.host_id {
        put(&mut m, "host_set_id", json!(host_set_id(&s.target)));
        put(&mut m, "host_id", json!(host));
    }
    put(&mut m, "scope_id", json!(s.target.scope_id));
    put(&mut m, "endpoint", json!(s.endpoint));
    let states: Vec<Value> = s
        .states
        .iter()
        .map(|st| {
            let mut sm = Map::new();
            put(&mut sm, "status", json!(status_str(st.status)));
            put(&mut sm, "start_time", json!(rfc3339(st.start_time)));
            if let Some(end) = st.end_time {
                put(&mut sm, "end_time", json!(rfc3339(end)));
            }
            Value::Object(sm)
        })
        .collect();
    put(&mut m, "states", Value::Array(states));
    put(&mut m, "status", json!(status_str(s.status())));
    put(
        &mut m,
        "certificate",
        json!(base64::engine::general_purpose::STANDARD.encode(&s.identity.certificate_der)),
    );
    if let Some(reason) = &s.termination_reason {
        put(&mut m, "termination_reason", json!(reason));
    }
    let connections: Vec<Value> = s
        .connections
        .iter()
        .map(|c| {
            let mut cm = Map::new();
            put(
                &mut cm,
                "client_tcp_address",
                json!(c.client.ip().to_string()),
            );
            put(&mut cm, "client_tcp_port", json!(c.client.port()));
            if let Some(e) = c.endpoint {
                put(&mut cm, "endpoint_tcp_address", json!(e.ip().to_string()));
                put(&mut cm, "endpoint_tcp_port", json!(e.port()));
            }
            // uint64: strings in proto3 JSON.
            if c.bytes_up != 0 {
                put(&mut cm, "bytes_up", json!(c.bytes_up.to_string()));
            }
            if c.bytes_down != 0 {
                put(&mut cm, "bytes_down", json!(c.bytes_down.to_string()));
            }
            if let Some(reason) = c.closed_reason {
                put(&mut cm, "closed_reason", json!(reason.as_str()));
            }
            Value::Object(cm)
        })
        .collect();
    put(&mut m, "connections", Value::Array(connections));
    let actions = if s.status() == SessionStatus::Terminated {
        json!(["read:self"])
    } else {
        json!(["read:self", "cancel:self"])
    };
    m.insert("authorized_actions".into(), actions);
    Value::Object(m)
}

/// `controller.api.resources.targets.v1.Target`.
pub(crate) fn target(t: &FakeTarget, created: OffsetDateTime) -> Value {
    let mut m = Map::new();
    put(&mut m, "id", json!(t.id));
    put(&mut m, "scope_id", json!(t.scope_id));
    m.insert("scope".into(), project_scope(t));
    put(&mut m, "name", json!(t.name));
    put(&mut m, "created_time", json!(rfc3339(created)));
    put(&mut m, "updated_time", json!(rfc3339(created)));
    put(&mut m, "version", json!(1));
    put(&mut m, "type", json!(t.target_type));
    if !t.host_ids.is_empty() {
        put(&mut m, "host_source_ids", json!([host_set_id(t)]));
    }
    put(&mut m, "session_max_seconds", json!(t.session_max_seconds));
    put(
        &mut m,
        "session_connection_limit",
        json!(t.connection_limit),
    );
    m.insert(
        "attributes".into(),
        json!({"default_port": t.endpoint.port()}),
    );
    m.insert(
        "authorized_actions".into(),
        json!(["no-op", "read", "authorize-session"]),
    );
    Value::Object(m)
}

/// `controller.api.resources.authtokens.v1.AuthToken`; the token value
/// only in the authenticate answer.
pub(crate) fn auth_token(t: &AuthToken, with_token: bool) -> Value {
    let mut m = Map::new();
    put(&mut m, "id", json!(t.id));
    put(&mut m, "scope_id", json!("global"));
    m.insert(
        "scope".into(),
        json!({"id": "global", "type": "global", "name": "global"}),
    );
    if with_token {
        put(&mut m, "token", json!(t.token));
    }
    put(&mut m, "user_id", json!(t.account.user_id));
    put(&mut m, "auth_method_id", json!(t.account.auth_method_id));
    put(&mut m, "account_id", json!(t.account.account_id));
    put(&mut m, "created_time", json!(rfc3339(t.created)));
    put(&mut m, "updated_time", json!(rfc3339(t.created)));
    put(
        &mut m,
        "approximate_last_used_time",
        json!(rfc3339(t.last_used)),
    );
    put(&mut m, "expiration_time", json!(rfc3339(t.expiration)));
    m.insert(
        "authorized_actions".into(),
        json!(["read:self", "delete:self"]),
    );
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_documented_shape() {
        let id = random_id("s");
        assert!(well_formed_id(&id, "s"), "{id}");
        assert!(!well_formed_id("s_123", "s"));
        assert!(!well_formed_id("s_12345678_0", "s"));
        assert!(!well_formed_id("x_1234567890", "s"));
    }

    #[test]
    fn proto3_defaults_are_omitted() {
        let mut m = Map::new();
        put(&mut m, "a", json!(""));
        put(&mut m, "b", json!(0));
        put(&mut m, "c", json!([]));
        put(&mut m, "d", json!(-1));
        assert_eq!(Value::Object(m), json!({"d": -1}));
    }
}
