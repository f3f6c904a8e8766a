//! The SSO portal API: role credentials, accounts and roles (paged), and
//! logout; every call first [`authorize`](FakeState::authorize)d by the
//! bearer access token.

use axum::http::HeaderMap;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::http::{ApiError, Params, Reply, invalid_request, required_param};
use super::state::{FakeState, PageCursor, RefreshStatus};
use super::values::{KEY_ID, SECRET, URL_SAFE, epoch_millis, random_chars};
use super::{BEARER_HEADER, IssuedCredentials, MAX_RESULT_LIMIT, UNAUTHORIZED_MESSAGE};

impl FakeState {
    /// The session of the bearer token, or `UnauthorizedException`. Every
    /// portal call starts here.
    pub(super) fn authorize(
        &self,
        headers: &HeaderMap,
        now: OffsetDateTime,
    ) -> Result<u64, ApiError> {
        let token = headers
            .get(BEARER_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        match self.access_tokens.get(token) {
            Some(t) if !t.revoked && now < t.expires_at => Ok(t.session),
            _ => Err(ApiError::new(
                401,
                "UnauthorizedException",
                UNAUTHORIZED_MESSAGE,
            )),
        }
    }

    pub(super) fn get_role_credentials(
        &mut self,
        query: &Params,
        now: OffsetDateTime,
    ) -> Result<Reply, ApiError> {
        let account_id = required_param(query, "account_id")?;
        let role_name = required_param(query, "role_name")?;
        if !self
            .roles
            .iter()
            .any(|(a, r)| *a == account_id && *r == role_name)
        {
            return Err(ApiError::new(403, "ForbiddenException", "No access"));
        }
        let expiration = now + self.settings.credentials_lifetime;
        let issued = IssuedCredentials {
            account_id,
            role_name,
            access_key_id: format!("ASIA{}", random_chars(KEY_ID, 16)),
            secret_access_key: random_chars(SECRET, 40),
            session_token: format!("IQoJb3JpZ2luX2Vj{}", random_chars(SECRET, 340)),
            expiration,
        };
        let body = json!({
            "roleCredentials": {
                "accessKeyId": issued.access_key_id,
                "secretAccessKey": issued.secret_access_key,
                "sessionToken": issued.session_token,
                "expiration": epoch_millis(expiration),
            }
        });
        self.issued.push(issued);
        Ok(Reply::Json(body))
    }

    pub(super) fn list_accounts(&mut self, query: &Params) -> Result<Reply, ApiError> {
        let items: Vec<Value> = self
            .accounts
            .iter()
            .map(|a| {
                json!({
                    "accountId": a.id,
                    "accountName": a.name,
                    "emailAddress": a.email,
                })
            })
            .collect();
        let (page, next) = self.page("accounts".to_owned(), items, query)?;
        let mut body = json!({ "accountList": page });
        if let Some(next) = next {
            body["nextToken"] = Value::String(next);
        }
        Ok(Reply::Json(body))
    }

    pub(super) fn list_account_roles(&mut self, query: &Params) -> Result<Reply, ApiError> {
        let account_id = required_param(query, "account_id")?;
        let items: Vec<Value> = self
            .roles
            .iter()
            .filter(|(a, _)| *a == account_id)
            .map(|(a, r)| json!({ "roleName": r, "accountId": a }))
            .collect();
        let (page, next) = self.page(format!("roles:{account_id}"), items, query)?;
        let mut body = json!({ "roleList": page });
        if let Some(next) = next {
            body["nextToken"] = Value::String(next);
        }
        Ok(Reply::Json(body))
    }

    /// One page of `items` for the request's `max_result` and `next_token`,
    /// and the token of the next page if there is one.
    fn page(
        &mut self,
        listing: String,
        items: Vec<Value>,
        query: &Params,
    ) -> Result<(Vec<Value>, Option<String>), ApiError> {
        let mut size = self.settings.page_size;
        if let Some(raw) = query.get("max_result") {
            let requested: i64 = raw
                .parse()
                .map_err(|_| invalid_request("Invalid max_result"))?;
            if !(1..=MAX_RESULT_LIMIT).contains(&requested) {
                return Err(invalid_request("max_result must be between 1 and 100"));
            }
            size = size.min(usize::try_from(requested).unwrap_or(size));
        }
        let offset = match query.get("next_token") {
            Some(token) => match self.page_tokens.get(token) {
                Some(cursor) if cursor.listing == listing => cursor.offset,
                _ => return Err(invalid_request("Invalid next token")),
            },
            None => 0,
        };
        let end = offset.saturating_add(size).min(items.len());
        let page = items.get(offset..end).unwrap_or_default().to_vec();
        let next = (end < items.len()).then(|| {
            let token = random_chars(URL_SAFE, 48);
            self.page_tokens.insert(
                token.clone(),
                PageCursor {
                    listing,
                    offset: end,
                },
            );
            token
        });
        Ok((page, next))
    }

    /// Ends the bearer token's `session`: its access and refresh tokens are
    /// revoked.
    pub(super) fn logout(&mut self, session: u64) -> Result<Reply, ApiError> {
        for token in self.access_tokens.values_mut() {
            if token.session == session {
                token.revoked = true;
            }
        }
        for token in self.refresh_tokens.values_mut() {
            if token.session == session && token.status == RefreshStatus::Active {
                token.status = RefreshStatus::Revoked;
            }
        }
        Ok(Reply::Empty)
    }
}
