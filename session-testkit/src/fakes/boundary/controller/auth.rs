//! Password login and auth tokens (`boundary.md` §1.3).

use serde_json::{Value, json};

use super::http::{Answer, ApiError, Request};
use super::json::{auth_token, random_bytes, random_id};
use super::state::{AuthToken, Shared};

/// `POST /v1/auth-methods/{id}:authenticate`.
pub(crate) fn authenticate(shared: &Shared, method_id: &str, request: &Request) -> Answer {
    let now = shared.now();
    let body = request.object()?;
    let mut inner = shared.lock();
    if !inner
        .config
        .accounts
        .iter()
        .any(|a| a.auth_method_id == method_id)
    {
        return Err(ApiError::not_found());
    }
    if body.get("command").and_then(Value::as_str) != Some("login") {
        return Err(ApiError::field("command", "Must be \"login\"."));
    }
    // `token_type` is the deprecated name of `type`; the fake only issues
    // bearer tokens.
    let token_type = body
        .get("type")
        .or_else(|| body.get("token_type"))
        .and_then(Value::as_str)
        .unwrap_or("token");
    if !matches!(token_type, "token" | "") {
        return Err(ApiError::field("type", "Only \"token\" is supported here."));
    }
    let attributes = body.get("attributes").cloned().unwrap_or(json!({}));
    let login_name = attributes.get("login_name").and_then(Value::as_str);
    let password = attributes.get("password").and_then(Value::as_str);
    let (Some(login_name), Some(password)) = (login_name, password) else {
        return Err(ApiError::field(
            "attributes",
            "login_name and password are required.",
        ));
    };
    let account = inner
        .config
        .accounts
        .iter()
        .find(|a| {
            a.auth_method_id == method_id && a.login_name == login_name && a.password == password
        })
        .cloned()
        .ok_or_else(|| ApiError::new(401, "Unauthenticated", "Unable to authenticate."))?;
    let id = random_id("at");
    let token = AuthToken {
        token: format!("{id}_s1{}", bs58::encode(random_bytes()).into_string()),
        id: id.clone(),
        account,
        created: now,
        last_used: now,
        expiration: now + inner.config.token_lifetime,
    };
    let attributes = auth_token(&token, true);
    inner.tokens.insert(id, token);
    Ok(json!({"command": "login", "type": "token", "attributes": attributes}))
}

/// `GET /v1/auth-tokens/{id}`.
pub(crate) fn read_token(shared: &Shared, id: &str) -> Answer {
    let inner = shared.lock();
    let token = inner.tokens.get(id).ok_or_else(ApiError::not_found)?;
    Ok(auth_token(token, false))
}

/// `DELETE /v1/auth-tokens/{id}`: logout; the token stops working.
pub(crate) fn delete_token(shared: &Shared, id: &str) -> Answer {
    shared
        .lock()
        .tokens
        .remove(id)
        .map(|_| json!({}))
        .ok_or_else(ApiError::not_found)
}
