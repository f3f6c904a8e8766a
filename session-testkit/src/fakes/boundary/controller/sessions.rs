//! Sessions: list with filter and pagination (§1.5), read (§1.6) and
//! cancel (§1.7).
//!
//! Pagination: a list token names a stored cursor bound to the query
//! (scope, recursive, filter, include_terminated) and to the user; any
//! other query or an unknown token gives 400. The first listing pages by
//! creation, newest first; after `complete`, the last token refreshes: the
//! sessions updated since the listing started, newest update first, and in
//! `removed_ids` those updated since that are in scope but no longer listed
//! (terminated without `include_terminated`, or no longer matching the
//! filter) — the fake's reading of "drop from any cache".
//!
//! Grants: every account has Boundary's default user grants on sessions
//! (`list`, `read:self`, `cancel:self`), so a list shows the caller's own
//! sessions, and reading or canceling someone else's is 403.

use serde_json::{Map, Value, json};

use super::super::cluster::SessionStatus;
use super::http::{Answer, ApiError, Request};
use super::json::{self, put, random_bytes, well_formed_id};
use super::state::{AuthToken, ListCursor, ListPhase, Session, Shared};
use super::targets::{parse_filter, scope_check};

/// `GET /v1/sessions`.
pub(crate) fn list(shared: &Shared, caller: &AuthToken, request: &Request) -> Answer {
    let in_scope = scope_check(request)?;
    let filter = parse_filter(request)?;
    let include_terminated = request.flag("include_terminated")?;
    let page_size = match request.param("page_size") {
        None | Some("") => 0,
        Some(text) => text
            .parse::<u32>()
            .map_err(|_| ApiError::field("page_size", "Must be a non-negative integer."))?,
    };
    let mut inner = shared.lock();
    let listed = |s: &Session| {
        s.user_id == caller.account.user_id
            && in_scope(&s.target.scope_id)
            && (include_terminated || s.status() != SessionStatus::Terminated)
            && filter
                .as_ref()
                .is_none_or(|f| f.matches(&json!({"item": json::session(s)})))
    };
    let mut matching: Vec<&Session> = inner.sessions.values().filter(|s| listed(s)).collect();
    matching.sort_by_key(|s| std::cmp::Reverse(s.created_seq));
    if inner.config.legacy_0_13 {
        // 0.13.1: everything at once, no pagination fields.
        let items: Vec<Value> = matching.iter().map(|s| json::session(s)).collect();
        let mut body = Map::new();
        put(&mut body, "items", Value::Array(items));
        return Ok(Value::Object(body));
    }
    let max = inner.config.max_page_size;
    let page_size = if page_size == 0 || page_size > max {
        max
    } else {
        page_size
    } as usize;
    let query_key = format!(
        "{:?}|{:?}|{:?}|{include_terminated}",
        request.param("scope_id"),
        request.flag("recursive")?,
        request.param("filter"),
    );
    let (phase, started_seq) = match request.param("list_token") {
        None | Some("") => (
            ListPhase::Initial {
                after_created_seq: u64::MAX,
            },
            inner.seq,
        ),
        Some(token) => {
            let cursor = inner
                .list_tokens
                .get(token)
                .filter(|c| c.query_key == query_key && c.user_id == caller.account.user_id)
                .ok_or_else(|| ApiError::field("list_token", "Invalid list token."))?;
            (cursor.phase.clone(), cursor.started_seq)
        }
    };
    let est_item_count = matching.len();
    let mut removed_ids = Vec::new();
    let (candidates, sort_by, phase_of_last): (Vec<&Session>, &str, _) = match phase {
        ListPhase::Initial { after_created_seq } => (
            matching
                .into_iter()
                .filter(|s| s.created_seq < after_created_seq)
                .collect(),
            "created_time",
            None,
        ),
        ListPhase::Complete { since } | ListPhase::Refresh { since, .. } => {
            let (until, before) = match phase {
                ListPhase::Refresh { until, before, .. } => (until, before),
                _ => (inner.seq, u64::MAX),
            };
            if before == u64::MAX {
                removed_ids = inner
                    .sessions
                    .values()
                    .filter(|s| s.updated_seq > since && s.updated_seq <= until)
                    .filter(|s| s.user_id == caller.account.user_id)
                    .filter(|s| in_scope(&s.target.scope_id) && !listed(s))
                    .map(|s| s.id.clone())
                    .collect();
            }
            let mut updated: Vec<&Session> = matching
                .into_iter()
                .filter(|s| {
                    s.updated_seq > since && s.updated_seq <= until && s.updated_seq < before
                })
                .collect();
            updated.sort_by_key(|s| std::cmp::Reverse(s.updated_seq));
            (updated, "updated_time", Some((since, until)))
        }
    };
    let more = candidates.len() > page_size;
    let page = &candidates[..candidates.len().min(page_size)];
    let items: Vec<Value> = page.iter().map(|s| json::session(s)).collect();
    let next_phase = match (more, phase_of_last, page.last()) {
        (true, None, Some(last)) => ListPhase::Initial {
            after_created_seq: last.created_seq,
        },
        (true, Some((since, until)), Some(last)) => ListPhase::Refresh {
            since,
            until,
            before: last.updated_seq,
        },
        (_, None, _) => ListPhase::Complete { since: started_seq },
        (_, Some((_, until)), _) => ListPhase::Complete { since: until },
    };
    let token = format!("lt_{}", bs58::encode(random_bytes()).into_string());
    inner.list_tokens.insert(
        token.clone(),
        ListCursor {
            query_key,
            user_id: caller.account.user_id.clone(),
            phase: next_phase,
            started_seq,
        },
    );
    let mut body = Map::new();
    put(&mut body, "items", Value::Array(items));
    put(
        &mut body,
        "response_type",
        json!(if more { "delta" } else { "complete" }),
    );
    put(&mut body, "list_token", json!(token));
    put(&mut body, "sort_by", json!(sort_by));
    put(&mut body, "sort_dir", json!("desc"));
    put(&mut body, "removed_ids", json!(removed_ids));
    put(&mut body, "est_item_count", json!(est_item_count));
    Ok(Value::Object(body))
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if well_formed_id(id, "s") {
        Ok(())
    } else {
        Err(
            ApiError::new(400, "InvalidArgument", "Improperly formatted identifier.")
                .with("id", "Improperly formatted identifier."),
        )
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(404, "NotFound", &format!("Session \"{id}\" doesn't exist."))
}

fn forbidden() -> ApiError {
    ApiError::new(403, "PermissionDenied", "Forbidden.")
}

/// `GET /v1/sessions/{id}`.
pub(crate) fn read(shared: &Shared, caller: &AuthToken, id: &str) -> Answer {
    check_id(id)?;
    let inner = shared.lock();
    let session = inner.sessions.get(id).ok_or_else(|| not_found(id))?;
    if session.user_id != caller.account.user_id {
        return Err(forbidden());
    }
    Ok(json::session(session))
}

/// `POST /v1/sessions/{id}:cancel` with `{"version": n}`.
pub(crate) fn cancel(shared: &Shared, caller: &AuthToken, id: &str, request: &Request) -> Answer {
    check_id(id)?;
    let body = request.object()?;
    let version = match body.get("version") {
        None => 0,
        Some(v) => v
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| ApiError::field("version", "Must be a non-negative integer."))?,
    };
    if version == 0 {
        return Err(
            ApiError::new(400, "InvalidArgument", "Error in provided request.")
                .with("version", "Required field."),
        );
    }
    let now = shared.now();
    let mut inner = shared.lock();
    let seq = inner.next_seq();
    let changed_meanwhile = match inner.stale_cancels.get_mut(id) {
        Some(n) if *n > 0 => {
            *n -= 1;
            true
        }
        _ => false,
    };
    let session = inner.sessions.get_mut(id).ok_or_else(|| not_found(id))?;
    if changed_meanwhile {
        session.version += 1;
    }
    if session.user_id != caller.account.user_id {
        return Err(forbidden());
    }
    if session.was_canceled_or_terminated() {
        return Ok(json::session(session));
    }
    if session.version != version {
        // The versioned update matches no row: domain error 1101, which
        // Boundary's handler answers as a 500 (§1.7).
        return Err(ApiError::new(
            500,
            "Internal",
            "session.(Repository).CancelSession: session.(Repository).updateState: \
             updated session and 0 rows updated: integrity violation: error #1101",
        ));
    }
    session.transition(SessionStatus::Canceling, now, seq);
    Ok(json::session(session))
}
