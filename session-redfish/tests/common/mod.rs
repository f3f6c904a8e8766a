//! Helpers shared by the server's integration tests: a server over HTTPS
//! with reqwest trusting its generated CA, logins and reads.

// Each test binary uses a part of these.
#![allow(dead_code, unused_imports)]

use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use session_core::Secret;
use session_redfish::server::{
    RedfishServer, RedfishServerBuilder, RedfishServerConfig, RedfishServerHandle, Role,
};

pub(crate) const SESSIONS: &str = "/redfish/v1/SessionService/Sessions";
pub(crate) const ADMIN_PW: &str = "CANARY-admin-pw-7f3a";

pub(crate) fn builder() -> RedfishServerBuilder {
    RedfishServer::builder()
        .account("admin", Secret::new(ADMIN_PW), Role::Administrator)
        .account("reader", Secret::new("reader-pw"), Role::ReadOnly)
}

pub(crate) async fn start(b: RedfishServerBuilder) -> (RedfishServerHandle, Client) {
    let handle = b.build().unwrap().start().await.unwrap();
    let client = trusting(handle.ca_pem().unwrap());
    (handle, client)
}

/// A reqwest client that trusts only the given PEM certificate.
pub(crate) fn trusting(ca_pem: &str) -> Client {
    Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .build()
        .unwrap()
}

pub(crate) struct Login {
    pub(crate) token: String,
    pub(crate) location: String,
}

/// A login POST to the sessions collection, its answer unchecked.
pub(crate) async fn post_login(
    h: &RedfishServerHandle,
    c: &Client,
    user: &str,
    pw: &str,
) -> reqwest::Response {
    c.post(format!("{}{SESSIONS}", h.base_url()))
        .json(&json!({"UserName": user, "Password": pw}))
        .send()
        .await
        .unwrap()
}

pub(crate) async fn login(h: &RedfishServerHandle, c: &Client, user: &str, pw: &str) -> Login {
    let res = post_login(h, c, user, pw).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let token = res.headers()["x-auth-token"].to_str().unwrap().to_owned();
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["UserName"], user);
    assert_eq!(body["@odata.id"], location.as_str());
    Login { token, location }
}

pub(crate) async fn get(
    h: &RedfishServerHandle,
    c: &Client,
    path: &str,
    token: &str,
) -> reqwest::Response {
    c.get(format!("{}{path}", h.base_url()))
        .header("X-Auth-Token", token)
        .send()
        .await
        .unwrap()
}

/// A GET with a session token, its body as JSON (the status unchecked).
pub(crate) async fn get_json(
    h: &RedfishServerHandle,
    c: &Client,
    path: &str,
    token: &str,
) -> Value {
    get(h, c, path, token).await.json().await.unwrap()
}

/// The `@odata.id` of each of a collection's members.
pub(crate) fn members(collection: &Value) -> Vec<String> {
    collection["Members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["@odata.id"].as_str().unwrap().to_owned())
        .collect()
}

/// A GET without credentials.
pub(crate) async fn get_public(
    h: &RedfishServerHandle,
    c: &Client,
    path: &str,
) -> reqwest::Response {
    c.get(format!("{}{path}", h.base_url()))
        .send()
        .await
        .unwrap()
}

/// A DELETE with a session token.
pub(crate) async fn delete(
    h: &RedfishServerHandle,
    c: &Client,
    path: &str,
    token: &str,
) -> reqwest::Response {
    c.delete(format!("{}{path}", h.base_url()))
        .header("X-Auth-Token", token)
        .send()
        .await
        .unwrap()
}

/// A session count read with Basic, which creates no session itself.
pub(crate) async fn session_count(h: &RedfishServerHandle, c: &Client) -> u64 {
    let res = c
        .get(format!("{}{SESSIONS}", h.base_url()))
        .basic_auth("admin", Some(ADMIN_PW))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json::<Value>().await.unwrap()["Members@odata.count"]
        .as_u64()
        .unwrap()
}

/// A self-signed certificate for 127.0.0.1 and its key, as PEM files.
pub(crate) fn cert_files(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    (cert, key, ck.cert.pem())
}
