//! A read-only `AccountService`: the configured accounts as `ManagerAccount`
//! resources and the three standard roles.
//!
//! Read-only because the accounts come from the builder (or a config file)
//! and are fixed for the server's life: POST, PATCH and DELETE get 405 with
//! `Allow`. Passwords are never shown (`Password` is `null`, as the schema
//! requires of every response).
//!
//! Visibility follows the standard privilege registry: the `Roles` and the
//! `AccountService` are readable with `Login`; an account is readable by its
//! own user (`ConfigureSelf`) or by `ConfigureUsers`, and the `Accounts`
//! collection lists only the accounts the caller may read.

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::handlers::{Shared, described_by, json_ok};
use super::messages::{error, insufficient_privilege};
use super::state::{Account, Principal, Privilege, Role, hex};

/// The `AccountService` URI (the service root's `AccountService`).
pub(crate) const ACCOUNT_SERVICE: &str = "/redfish/v1/AccountService";
const ACCOUNTS: &str = "/redfish/v1/AccountService/Accounts";
const ROLES: &str = "/redfish/v1/AccountService/Roles";

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route(ACCOUNT_SERVICE, get(account_service))
        .route(ACCOUNTS, get(list_accounts))
        .route(&format!("{ACCOUNTS}/{{id}}"), get(get_account))
        .route(ROLES, get(list_roles))
        .route(&format!("{ROLES}/{{id}}"), get(get_role))
}

async fn account_service(AxState(state): AxState<Shared>) -> Response {
    let lockout = state.lockout.policy;
    json_ok(
        json!({
            "@odata.id": ACCOUNT_SERVICE,
            "@odata.type": "#AccountService.v1_18_0.AccountService",
            "Id": "AccountService",
            "Name": "Account Service",
            "Description": "Account Service (read-only: accounts are configured on the server)",
            "Status": {"State": "Enabled", "Health": "OK"},
            "ServiceEnabled": true,
            "LocalAccountAuth": "Enabled",
            "HTTPBasicAuth": "Enabled",
            // Per (user name, client address); see the server docs.
            "AccountLockoutThreshold": lockout.account_threshold,
            "AccountLockoutDuration": lockout.duration.as_secs(),
            "AccountLockoutCounterResetAfter": lockout.reset_after.as_secs(),
            "AccountLockoutCounterResetEnabled": true,
            "Accounts": {"@odata.id": ACCOUNTS},
            "Roles": {"@odata.id": ROLES},
        }),
        "GET, HEAD",
    )
}

/// Whether `who` may read `account`.
fn may_read(who: &Principal, account: &Account) -> bool {
    who.role.has(Privilege::ConfigureUsers)
        || (who.role.has(Privilege::ConfigureSelf) && account.username == who.username)
}

async fn list_accounts(
    AxState(state): AxState<Shared>,
    axum::Extension(who): axum::Extension<Principal>,
) -> Response {
    let members: Vec<Value> = state
        .accounts
        .iter()
        .filter(|(_, a)| may_read(&who, a))
        .map(|(id, _)| json!({"@odata.id": format!("{ACCOUNTS}/{id}")}))
        .collect();
    json_ok(
        json!({
            "@odata.id": ACCOUNTS,
            "@odata.type": "#ManagerAccountCollection.ManagerAccountCollection",
            "Name": "Accounts Collection",
            "Members@odata.count": members.len(),
            "Members": members,
        }),
        "GET, HEAD",
    )
}

fn account_body(id: usize, account: &Account) -> Value {
    json!({
        "@odata.id": format!("{ACCOUNTS}/{id}"),
        "@odata.type": "#ManagerAccount.v1_12_0.ManagerAccount",
        "Id": id.to_string(),
        "Name": "User Account",
        "Description": "User Account",
        "UserName": &*account.username,
        // The schema: "the value shall be null in responses".
        "Password": null,
        "RoleId": account.role.as_str(),
        "Enabled": true,
        "Locked": false,
        "AccountTypes": ["Redfish"],
        "Links": {"Role": {"@odata.id": role_uri(account.role)}},
    })
}

async fn get_account(
    AxState(state): AxState<Shared>,
    axum::Extension(who): axum::Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    // Only the canonical decimal form names an account ("01" does not).
    let requested = id.parse::<usize>().ok().filter(|n| n.to_string() == id);
    // Without `ConfigureUsers`, any account but one's own is 403, whether it
    // exists or not, so the answer tells nothing about other accounts.
    if !who.role.has(Privilege::ConfigureUsers) {
        let own = state.accounts.id_of(&who.username);
        if !who.role.has(Privilege::ConfigureSelf) || requested.is_none() || requested != own {
            return insufficient_privilege();
        }
    }
    match requested.and_then(|n| Some((n, state.accounts.by_id(n)?))) {
        Some((n, account)) => with_etag(&account_body(n, account), "GET, HEAD", &headers),
        None => error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            &["ManagerAccount", &id],
        ),
    }
}

/// A 200 response with a strong `ETag` (a digest of the body), or 304 when
/// `If-None-Match` names it. Authentication has already run, so a bad
/// token with `If-None-Match` gets 401, never 304.
fn with_etag(body: &Value, allow: &'static str, request: &HeaderMap) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let etag = format!("\"{}\"", hex(&Sha256::digest(&bytes)[..8]));
    let matches = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*");
    let mut res = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut res = (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response();
        res.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
        if let Some(link) = described_by(body) {
            res.headers_mut().insert(header::LINK, link);
        }
        res
    };
    if let Ok(v) = HeaderValue::from_str(&etag) {
        res.headers_mut().insert(header::ETAG, v);
    }
    res
}

fn role_uri(role: Role) -> String {
    format!("{ROLES}/{}", role.as_str())
}

async fn list_roles() -> Response {
    let members: Vec<Value> = Role::ALL
        .iter()
        .map(|r| json!({"@odata.id": role_uri(*r)}))
        .collect();
    json_ok(
        json!({
            "@odata.id": ROLES,
            "@odata.type": "#RoleCollection.RoleCollection",
            "Name": "Roles Collection",
            "Members@odata.count": members.len(),
            "Members": members,
        }),
        "GET, HEAD",
    )
}

async fn get_role(Path(id): Path<String>) -> Response {
    let Some(role) = Role::from_name(&id) else {
        return error(StatusCode::NOT_FOUND, "ResourceNotFound", &["Role", &id]);
    };
    let privileges: Vec<&str> = role.privileges().iter().map(|p| p.as_str()).collect();
    json_ok(
        json!({
            "@odata.id": role_uri(role),
            "@odata.type": "#Role.v1_3_0.Role",
            "Id": role.as_str(),
            "Name": format!("{} Role", role.as_str()),
            "Description": format!("The predefined {} role", role.as_str()),
            "RoleId": role.as_str(),
            "IsPredefined": true,
            "AssignedPrivileges": privileges,
            "OemPrivileges": [],
        }),
        "GET, HEAD",
    )
}
