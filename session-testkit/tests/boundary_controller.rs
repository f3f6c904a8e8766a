//! The fake Boundary controller driven over HTTP like a client would, with
//! every success body checked against Boundary's OpenAPI document (v0.13.1).

mod boundary_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use session_core::{Clock, ManualClock};
use session_testkit::fakes::boundary::cluster::{ClosedReason, SessionStatus};
use session_testkit::fakes::boundary::controller::{FakeController, FakeTarget, token};

use boundary_support::*;

fn endpoint() -> SocketAddr {
    "127.0.0.1:5432".parse().unwrap()
}

async fn dev() -> (FakeController, Api) {
    let controller = FakeController::builder()
        .target(FakeTarget::dev(endpoint()))
        .start()
        .await;
    let mut api = Api::new(controller.url());
    api.login().await;
    (controller, api)
}

/// Waits (real time) until the terminator ended `id`.
async fn until_terminated(controller: &FakeController, id: &str) -> String {
    for _ in 0..100 {
        let s = controller.session(id).unwrap();
        if s.status == SessionStatus::Terminated {
            return s.termination_reason.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{id} was not terminated");
}

#[tokio::test]
async fn login_answers_a_token_and_refuses_bad_credentials() {
    let controller = FakeController::builder().start().await;
    let mut api = Api::new(controller.url());
    let body = api.login().await;
    assert_eq!(body["command"], "login");
    assert_eq!(body["type"], "token");
    let attributes = &body["attributes"];
    let id = attributes["id"].as_str().unwrap();
    let token = attributes["token"].as_str().unwrap();
    assert!(id.starts_with("at_") && id.len() == 13, "{id}");
    let secret = token.strip_prefix(&format!("{id}_s1")).expect("at_…_s1…");
    assert!(bs58::decode(secret).into_vec().is_ok());
    for field in ["user_id", "auth_method_id", "account_id", "expiration_time"] {
        assert!(attributes[field].is_string(), "{field}");
    }
    let (status, read) = api.get(&format!("/v1/auth-tokens/{id}")).await;
    assert_eq!(status, 200);
    contract(AUTH_TOKEN, &read);
    assert!(read.get("token").is_none(), "the value only at login");

    let anonymous = Api::new(controller.url());
    let wrong = json!({"command": "login",
        "attributes": {"login_name": "admin", "password": "nope"}});
    let (status, error) = anonymous
        .post("/v1/auth-methods/ampw_1234567890:authenticate", wrong)
        .await;
    assert_eq!(status, 401);
    assert_eq!(error["kind"], "Unauthenticated");
    let login = json!({"command": "login",
        "attributes": {"login_name": "admin", "password": "password"}});
    let (status, error) = anonymous
        .post(
            "/v1/auth-methods/ampw_0000000000:authenticate",
            login.clone(),
        )
        .await;
    assert_eq!((status, error["kind"].as_str()), (404, Some("NotFound")));
    let (status, _) = anonymous
        .post(
            "/v1/auth-methods/ampw_1234567890:authenticate",
            json!({"command": "logout", "attributes": login["attributes"]}),
        )
        .await;
    assert_eq!(status, 400);

    // The log keeps bodies, never passwords, and whether a token came.
    let log = controller.requests();
    assert_eq!(log[0].method, "POST");
    assert_eq!(log[0].path, "/v1/auth-methods/ampw_1234567890:authenticate");
    assert!(!log[0].bearer);
    assert!(log[1].bearer);
    assert_eq!(
        log[0].body.as_ref().unwrap()["attributes"]["password"],
        "<redacted>"
    );
    assert!(!format!("{log:?}").contains("nope"));
}

#[tokio::test]
async fn bearer_tokens_missing_unknown_expired_or_deleted_are_401() {
    let clock = Arc::new(ManualClock::new(
        time::macros::datetime!(2030-01-01 0:00 UTC),
    ));
    let controller = FakeController::builder()
        .clock(clock.clone())
        .token_lifetime(Duration::from_secs(3600))
        .target(FakeTarget::dev(endpoint()))
        .start()
        .await;
    let mut api = Api::new(controller.url());
    let unauthenticated =
        json!({"kind":"Unauthenticated","message":"Unauthenticated, or invalid token."});
    assert_eq!(
        api.get("/v1/sessions?scope_id=p_1234567890").await,
        (401, unauthenticated.clone())
    );
    api.token = Some("at_1234567890_s1nothing".into());
    assert_eq!(
        api.get("/v1/sessions?scope_id=p_1234567890").await,
        (401, unauthenticated.clone())
    );

    let login = api.login().await;
    assert_eq!(
        login["attributes"]["expiration_time"], "2030-01-01T01:00:00Z",
        "token_lifetime from the injected clock"
    );
    // The header name and scheme are case-insensitive.
    let raw = api
        .http
        .get(format!("{}/v1/targets/ttcp_1234567890", api.base))
        .header(
            "AUTHORIZATION",
            format!("bearer {}", api.token.as_ref().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 200);
    clock.advance(Duration::from_secs(3600));
    assert_eq!(
        api.get("/v1/targets/ttcp_1234567890").await,
        (401, unauthenticated.clone())
    );

    api.login().await;
    assert_eq!(api.get("/v1/targets/ttcp_1234567890").await.0, 200);
    controller.expire_auth_tokens();
    assert_eq!(api.get("/v1/targets/ttcp_1234567890").await.0, 401);

    let login = api.login().await;
    let id = login["attributes"]["id"].as_str().unwrap();
    assert_eq!(api.delete(&format!("/v1/auth-tokens/{id}")).await.0, 200);
    assert_eq!(api.get("/v1/targets/ttcp_1234567890").await.0, 401);

    // Unmatched paths are 404, with or without a token.
    assert_eq!(api.get("/v1/nothing-here").await.0, 404);
    assert_eq!(api.get("/elsewhere").await.0, 404);
}

#[tokio::test]
async fn authorize_by_id_gives_a_pending_session_and_a_matching_token() {
    let mut target = FakeTarget::dev(endpoint());
    target.connection_limit = 3;
    target.session_max_seconds = 600;
    let clock = Arc::new(ManualClock::new(
        time::macros::datetime!(2030-01-01 0:00 UTC),
    ));
    let controller = FakeController::builder()
        .clock(clock.clone())
        .target(target)
        .worker_address("127.0.0.1:9999")
        .start()
        .await;
    let mut api = Api::new(controller.url());
    api.login().await;
    let auth = api.authorize("ttcp_1234567890").await;
    let id = auth["session_id"].as_str().unwrap();
    assert_eq!(auth["target_id"], "ttcp_1234567890");
    assert_eq!(auth["scope"]["id"], "p_1234567890");
    assert_eq!(auth["type"], "tcp");
    assert_eq!(auth["endpoint"], "tcp://127.0.0.1:5432");
    assert_eq!(auth["connection_limit"], 3);
    assert_eq!(auth["endpoint_port"], 5432);
    assert_eq!(auth["expiration"], "2030-01-01T00:10:00Z");

    let data = token::decode(auth["authorization_token"].as_str().unwrap()).unwrap();
    assert_eq!(data.session_id, id);
    assert_eq!(data.target_id, "ttcp_1234567890");
    assert_eq!(data.connection_limit, 3);
    assert_eq!(data.endpoint_port, 5432);
    assert_eq!(data.endpoint, "tcp://127.0.0.1:5432");
    assert_eq!(
        data.expiration.unwrap().seconds,
        clock.now().unix_timestamp() + 600
    );
    assert_eq!(data.worker_info[0].address, "127.0.0.1:9999");
    assert_eq!(data.scope.as_ref().unwrap().id, "p_1234567890");

    // The token's certificate and key are the session's.
    let session = api.session(id).await;
    assert_eq!(session["status"], "pending");
    assert_eq!(session["version"], 1);
    let certificate = base64::engine::general_purpose::STANDARD
        .decode(session["certificate"].as_str().unwrap())
        .unwrap();
    assert_eq!(data.certificate, certificate);
    let credentials = controller.cluster().lookup_session(id).await.unwrap();
    assert_eq!(credentials.certificate_der, certificate);
    assert_eq!(data.private_key.len(), 64);
    assert_eq!(
        data.private_key[..32],
        credentials.private_key_pkcs8[16..48]
    );
    let key = rcgen::KeyPair::try_from(credentials.private_key_pkcs8.as_slice()).unwrap();
    assert_eq!(&data.private_key[32..], key.public_key_raw());

    // The worker address can change after start (the worker starts with
    // the controller's cluster).
    controller.set_worker_address("127.0.0.1:7777");
    let again = api.authorize("ttcp_1234567890").await;
    let data = token::decode(again["authorization_token"].as_str().unwrap()).unwrap();
    assert_eq!(data.worker_info[0].address, "127.0.0.1:7777");
}

#[tokio::test]
async fn authorize_by_name_needs_exactly_one_scope() {
    let mut hosts = FakeTarget::tcp(
        "ttcp_0000000002",
        "my db",
        "p_0000000002",
        "db project",
        endpoint(),
    );
    hosts.host_ids = vec!["hst_0000000001".into(), "hst_0000000002".into()];
    let controller = FakeController::builder()
        .target(FakeTarget::dev(endpoint()))
        .target(hosts)
        .start()
        .await;
    let mut api = Api::new(controller.url());
    api.login().await;
    let by = |body: Value| {
        let api = &api;
        async move {
            api.post("/v1/targets/my%20db:authorize-session", body)
                .await
        }
    };
    let (status, auth) = by(json!({"scope_id": "p_0000000002"})).await;
    assert_eq!(status, 200, "{auth}");
    contract(SESSION_AUTHORIZATION, &auth);
    assert_eq!(auth["target_id"], "ttcp_0000000002");
    assert_eq!(
        auth["host_id"], "hst_0000000001",
        "the first host by default"
    );
    let (status, auth) = by(json!({"scope_name": "db project", "host_id": "hst_0000000002"})).await;
    assert_eq!(status, 200);
    assert_eq!(auth["host_id"], "hst_0000000002");
    assert!(auth["host_set_id"].as_str().unwrap().starts_with("hsst_"));

    let (status, error) = by(json!({"scope_id": "p_0000000002", "scope_name": "db project"})).await;
    assert_eq!(status, 400);
    assert_eq!(error["kind"], "InvalidArgument");
    assert_eq!(request_fields(&error), ["scope_id", "scope_name"]);
    let (status, error) = by(json!({})).await;
    assert_eq!(status, 400);
    assert_eq!(request_fields(&error), ["scope_id", "scope_name"]);
    assert_eq!(by(json!({"scope_id": "p_1234567890"})).await.0, 404);
    let (status, error) = by(json!({"scope_id": "p_0000000002", "host_id": "hst_9"})).await;
    assert_eq!(
        (status, request_fields(&error)),
        (400, vec!["host_id".to_owned()])
    );
    assert_eq!(
        api.post("/v1/targets/ttcp_0000000009:authorize-session", json!({}))
            .await
            .0,
        404
    );

    // Targets: list and read.
    let (status, list) = api.get("/v1/targets?scope_id=global&recursive=true").await;
    assert_eq!(status, 200);
    contract(LIST_TARGETS_RESPONSE, &list);
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    let (status, list) = api.get("/v1/targets?scope_id=p_0000000002").await;
    assert_eq!(
        (status, list["items"][0]["name"].as_str()),
        (200, Some("my db"))
    );
    let (status, target) = api.get("/v1/targets/ttcp_1234567890").await;
    assert_eq!(status, 200);
    contract(TARGET, &target);
    assert_eq!(target["session_connection_limit"], -1);
    assert_eq!(target["attributes"]["default_port"], 5432);
    assert_eq!(api.get("/v1/targets/ttcp_0000000009").await.0, 404);
}

#[tokio::test]
async fn legacy_mode_answers_as_0_13_1() {
    let controller = FakeController::builder()
        .legacy_0_13(true)
        .target(FakeTarget::dev(endpoint()))
        .start()
        .await;
    let mut api = Api::new(controller.url());
    api.login().await;
    let auth = api.authorize("ttcp_1234567890").await;
    for field in ["connection_limit", "endpoint_port", "expiration"] {
        assert!(auth.get(field).is_none(), "{field} is after 0.13.1");
    }
    let data = token::decode(auth["authorization_token"].as_str().unwrap()).unwrap();
    assert_eq!((data.endpoint_port, data.expiration), (0, None));
    api.authorize("ttcp_1234567890").await;
    api.authorize("ttcp_1234567890").await;
    let list = api.list("scope_id=p_1234567890&page_size=1").await;
    assert_eq!(
        list.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["items"]
    );
    assert_eq!(ids(&list).len(), 3, "no pagination before 0.15");
}

#[tokio::test]
async fn list_pages_then_refreshes_with_removed_ids() {
    let controller = FakeController::builder()
        .target(FakeTarget::dev(endpoint()))
        .max_page_size(3)
        .start()
        .await;
    let mut api = Api::new(controller.url());
    api.login().await;
    let mut created = Vec::new();
    for _ in 0..5 {
        let auth = api.authorize("ttcp_1234567890").await;
        created.push(auth["session_id"].as_str().unwrap().to_owned());
    }
    let first = api.list("scope_id=p_1234567890&page_size=2").await;
    assert_eq!(first["response_type"], "delta");
    assert_eq!(first["sort_by"], "created_time");
    assert_eq!(first["sort_dir"], "desc");
    assert_eq!(first["est_item_count"], 5);
    assert_eq!(
        ids(&first),
        [created[4].clone(), created[3].clone()],
        "newest first"
    );
    let token = first["list_token"].as_str().unwrap();
    let second = api
        .list(&format!(
            "scope_id=p_1234567890&page_size=2&list_token={token}"
        ))
        .await;
    assert_eq!(second["response_type"], "delta");
    assert_eq!(ids(&second), [created[2].clone(), created[1].clone()]);
    let token = second["list_token"].as_str().unwrap();
    let third = api
        .list(&format!(
            "scope_id=p_1234567890&page_size=2&list_token={token}"
        ))
        .await;
    assert_eq!(third["response_type"], "complete");
    assert_eq!(ids(&third), [created[0].clone()]);
    let done = third["list_token"].as_str().unwrap().to_owned();

    // page_size above the maximum (or 0) gives the maximum.
    let capped = api.list("scope_id=p_1234567890&page_size=50").await;
    assert_eq!(ids(&capped).len(), 3);
    assert_eq!(capped["response_type"], "delta");

    // One session ends, another changes: the refresh has the change and
    // drops the ended one.
    controller.cancel(&created[1]);
    assert_eq!(until_terminated(&controller, &created[1]).await, "canceled");
    controller.bump_version(&created[3]);
    let refresh = api
        .list(&format!(
            "scope_id=p_1234567890&page_size=2&list_token={done}"
        ))
        .await;
    assert_eq!(refresh["response_type"], "complete");
    assert_eq!(refresh["sort_by"], "updated_time");
    assert_eq!(ids(&refresh), [created[3].clone()]);
    assert_eq!(refresh["removed_ids"], json!([created[1]]));
    assert_eq!(refresh["est_item_count"], 4);
    let token = refresh["list_token"].as_str().unwrap();
    let quiet = api
        .list(&format!(
            "scope_id=p_1234567890&page_size=2&list_token={token}"
        ))
        .await;
    assert_eq!(quiet["response_type"], "complete");
    assert!(
        quiet.get("items").is_none() && quiet.get("removed_ids").is_none(),
        "{quiet}"
    );

    // A token only continues its own query.
    for query in [
        "scope_id=p_1234567890&list_token=lt_unknown".to_owned(),
        format!("scope_id=p_1234567890&include_terminated=true&list_token={token}"),
    ] {
        let (status, error) = api.get(&format!("/v1/sessions?{query}")).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(request_fields(&error), ["list_token"]);
    }
    let with_ended = api
        .list("scope_id=p_1234567890&include_terminated=true")
        .await;
    assert_eq!(ids(&with_ended).len(), 3, "capped at 3 of 5");
    assert_eq!(with_ended["est_item_count"], 5);
}

#[tokio::test]
async fn list_filters_and_scopes() {
    let (controller, api) = dev().await;
    let mut created = Vec::new();
    for _ in 0..3 {
        let auth = api.authorize("ttcp_1234567890").await;
        created.push(auth["session_id"].as_str().unwrap().to_owned());
    }
    controller
        .cluster()
        .activate(&created[0], "abcdefghijklmnopqrst")
        .await
        .unwrap();
    let filter = |f: &str| {
        format!(
            "scope_id=p_1234567890&filter={}",
            f.replace('"', "%22")
                .replace(' ', "%20")
                .replace('=', "%3D")
                .replace('/', "%2F")
        )
    };
    let active = api.list(&filter(r#""/item/status" == "active""#)).await;
    assert_eq!(ids(&active), [created[0].clone()]);
    let pending = api.list(&filter(r#""/item/status" != "active""#)).await;
    assert_eq!(ids(&pending).len(), 2);
    let both = api
        .list(&filter(
            r#""/item/target_id" == "ttcp_1234567890" and "/item/status" == "pending""#,
        ))
        .await;
    assert_eq!(ids(&both).len(), 2);
    let none = api.list(&filter(r#""/item/no_such_field" == "x""#)).await;
    assert!(none.get("items").is_none(), "{none}");
    let (status, error) = api
        .get(&format!(
            "/v1/sessions?{}",
            filter(r#""/item/status" = "x""#)
        ))
        .await;
    assert_eq!(
        (status, request_fields(&error)),
        (400, vec!["filter".to_owned()])
    );

    let (status, error) = api.get("/v1/sessions?scope_id=global").await;
    assert_eq!(
        (status, request_fields(&error)),
        (400, vec!["scope_id".to_owned()])
    );
    assert_eq!(
        ids(&api.list("scope_id=global&recursive=true").await).len(),
        3
    );
    assert_eq!(
        ids(&api.list("scope_id=o_1234567890&recursive=true").await).len(),
        3
    );
    assert!(
        api.list("scope_id=p_0000000009")
            .await
            .get("items")
            .is_none()
    );

    controller.cancel(&created[2]);
    until_terminated(&controller, &created[2]).await;
    assert_eq!(ids(&api.list("scope_id=p_1234567890").await).len(), 2);
    let all = api
        .list("scope_id=p_1234567890&include_terminated=true")
        .await;
    assert_eq!(ids(&all).len(), 3);
}

#[tokio::test]
async fn read_renders_proto3_json() {
    let (controller, api) = dev().await;
    let id = api.authorize("ttcp_1234567890").await["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cluster = controller.cluster();
    cluster.activate(&id, "abcdefghijklmnopqrst").await.unwrap();
    let client: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let conn = cluster.authorize_connection(&id, client).await.unwrap();
    cluster
        .connect_connection(&conn.connection_id, endpoint())
        .await
        .unwrap();
    cluster
        .close_connection(
            &conn.connection_id,
            5_000_000_000,
            7,
            ClosedReason::ClosedByEndUser,
        )
        .await;
    let session = api.session(&id).await;
    assert_eq!(session["status"], "active");
    assert_eq!(session["version"], 2);
    assert_eq!(session["states"][0]["status"], "active");
    assert!(session["states"][0].get("end_time").is_none());
    assert_eq!(session["states"][1]["status"], "pending");
    assert!(session["states"][1]["end_time"].is_string());
    let c = &session["connections"][0];
    assert_eq!(c["bytes_up"], "5000000000", "uint64 as a string");
    assert_eq!(c["bytes_down"], "7");
    assert_eq!(c["client_tcp_address"], "127.0.0.1");
    assert_eq!(c["client_tcp_port"], 40000);
    assert_eq!(c["endpoint_tcp_port"], 5432);
    assert_eq!(c["closed_reason"], "closed by end-user");
    assert!(session.get("termination_reason").is_none());
    time::OffsetDateTime::parse(
        session["created_time"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();

    let (status, error) = api.get("/v1/sessions/s_0000000000").await;
    assert_eq!((status, error["kind"].as_str()), (404, Some("NotFound")));
    assert_eq!(api.get("/v1/sessions/not-an-id").await.0, 400);
}

#[tokio::test]
async fn cancel_checks_the_version_and_is_idempotent() {
    let (controller, api) = dev().await;
    let id = api.authorize("ttcp_1234567890").await["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cancel = |body: Value| {
        let (api, id) = (&api, id.clone());
        async move { api.post(&format!("/v1/sessions/{id}:cancel"), body).await }
    };
    for body in [json!({}), json!({"version": 0})] {
        let (status, error) = cancel(body).await;
        assert_eq!(status, 400);
        assert_eq!(error["kind"], "InvalidArgument");
        assert_eq!(
            error["details"]["request_fields"],
            json!([{"name": "version", "description": "Required field."}])
        );
    }
    let (status, error) = api
        .post("/v1/sessions/s_bad:cancel", json!({"version": 1}))
        .await;
    assert_eq!(
        (status, error["message"].as_str()),
        (400, Some("Improperly formatted identifier."))
    );
    assert_eq!(
        api.post("/v1/sessions/s_0000000000:cancel", json!({"version": 1}))
            .await
            .0,
        404
    );

    controller.bump_version(&id);
    let (status, error) = cancel(json!({"version": 1})).await;
    assert_eq!((status, error["kind"].as_str()), (500, Some("Internal")));
    assert_eq!(
        controller.session(&id).unwrap().status,
        SessionStatus::Pending
    );

    // An open connection keeps the session canceling until it closes.
    let cluster = controller.cluster();
    cluster.activate(&id, "abcdefghijklmnopqrst").await.unwrap();
    let client: SocketAddr = "127.0.0.1:40002".parse().unwrap();
    let conn = cluster.authorize_connection(&id, client).await.unwrap();
    let (status, canceled) = cancel(json!({"version": 3})).await;
    assert_eq!(status, 200);
    contract(SESSION, &canceled);
    assert_eq!(canceled["status"], "canceling");
    assert_eq!(canceled["version"], 4);
    assert_eq!(canceled["states"][0]["status"], "canceling");
    assert_eq!(canceled["states"][1]["status"], "active");
    let (status, again) = cancel(json!({"version": 99})).await;
    assert_eq!(status, 200);
    assert_eq!(again, canceled, "unchanged");
    controller.sweep();
    assert_eq!(
        controller.session(&id).unwrap().status,
        SessionStatus::Canceling
    );

    cluster
        .close_connection(&conn.connection_id, 1, 1, ClosedReason::Canceled)
        .await;
    assert_eq!(until_terminated(&controller, &id).await, "canceled");
    let ended = api.session(&id).await;
    assert_eq!(ended["status"], "terminated");
    assert_eq!(ended["termination_reason"], "canceled");
    assert_eq!(ended["version"], 5);
    let statuses: Vec<_> = ended["states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].clone())
        .collect();
    assert_eq!(statuses, ["terminated", "canceling", "active", "pending"]);
    assert_eq!(cancel(json!({"version": 1})).await.0, 200);
}

#[tokio::test]
async fn the_cluster_seam_activates_once_and_counts_connections() {
    let mut target = FakeTarget::dev(endpoint());
    target.connection_limit = 1;
    let controller = FakeController::builder().target(target).start().await;
    let mut api = Api::new(controller.url());
    api.login().await;
    let id = api.authorize("ttcp_1234567890").await["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cluster = controller.cluster();
    let client: SocketAddr = "127.0.0.1:40001".parse().unwrap();
    assert!(
        cluster.authorize_connection(&id, client).await.is_err(),
        "pending"
    );
    let looked = cluster.lookup_session(&id).await.unwrap();
    assert_eq!(looked.status, SessionStatus::Pending);
    assert_eq!(looked.connection_limit, 1);
    assert_eq!(looked.endpoint, "tcp://127.0.0.1:5432");
    cluster.activate(&id, "abcdefghijklmnopqrst").await.unwrap();
    assert!(
        cluster.activate(&id, "abcdefghijklmnopqrst").await.is_err(),
        "twice"
    );
    let looked = cluster.lookup_session(&id).await.unwrap();
    assert_eq!(looked.tofu_token.as_deref(), Some("abcdefghijklmnopqrst"));
    let conn = cluster.authorize_connection(&id, client).await.unwrap();
    assert_eq!((conn.connection_limit, conn.connections_left), (1, 0));
    assert!(
        cluster.authorize_connection(&id, client).await.is_err(),
        "limit used"
    );
    // An open connection holds the session.
    controller.sweep();
    assert_eq!(
        controller.session(&id).unwrap().status,
        SessionStatus::Active
    );
    cluster
        .close_connection(&conn.connection_id, 10, 20, ClosedReason::ClosedByEndUser)
        .await;
    assert_eq!(until_terminated(&controller, &id).await, "connection limit");
    assert!(cluster.lookup_session("s_0000000000").await.is_none());

    // SESSION_CANCEL through the worker, and expiry.
    let second = api.authorize("ttcp_1234567890").await["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    cluster.cancel_session(&second).await.unwrap();
    assert_eq!(
        controller.session(&second).unwrap().status,
        SessionStatus::Canceling
    );
    let third = api.authorize("ttcp_1234567890").await["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    controller.expire(&third);
    assert!(
        cluster
            .activate(&third, "abcdefghijklmnopqrst")
            .await
            .is_err(),
        "expired"
    );
    assert_eq!(until_terminated(&controller, &third).await, "timed out");
}

#[tokio::test]
async fn faults_and_the_state_guard() {
    let (controller, api) = dev().await;
    controller.fail_next(
        429,
        json!({"kind": "ResourceExhausted", "message": "slow down"}),
        Some(3),
    );
    let response = api
        .http
        .get(format!("{}/v1/targets/ttcp_1234567890", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "3");
    assert_eq!(api.get("/v1/targets/ttcp_1234567890").await.0, 200);

    let id = api.authorize("ttcp_1234567890").await["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    controller.set_status(&id, SessionStatus::Terminated);
    let illegal = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        controller.set_status(&id, SessionStatus::Active)
    }));
    assert!(illegal.is_err(), "terminated -> active is not in §2");
    // The controller goes on after the guard fired.
    assert_eq!(api.session(&id).await["termination_reason"], "terminated");
}

#[test]
fn the_contract_check_can_fail() {
    let good = json!({"id": "s_1234567890", "version": 2,
        "connections": [{"bytes_up": "123", "client_tcp_port": 1}]});
    assert!(violations(SESSION, &good).is_empty());
    assert!(!violations(SESSION, &json!({"id": "s_1234567890", "version": "2"})).is_empty());
    assert!(!violations(SESSION, &json!({"connections": [{"bytes_up": 123}]})).is_empty());
    assert!(!violations(SESSION_AUTHORIZATION, &json!({"scope": {"id": 7}})).is_empty());
    // Fields added after 0.13.1 are allowed.
    assert!(
        violations(
            SESSION_AUTHORIZATION,
            &json!({"connection_limit": -1, "expiration": "x"})
        )
        .is_empty()
    );
}

#[tokio::test]
async fn users_see_and_cancel_only_their_own_sessions() {
    let controller = FakeController::builder()
        .auth_method("ampw_1234567890", "admin", "password")
        .auth_method("ampw_1234567890", "other", "secret")
        .target(FakeTarget::dev(endpoint()))
        .start()
        .await;
    let mut admin = Api::new(controller.url());
    admin.login().await;
    let mut other = Api::new(controller.url());
    let (status, login) = other
        .post(
            "/v1/auth-methods/ampw_1234567890:authenticate",
            json!({"command": "login",
                   "attributes": {"login_name": "other", "password": "secret"}}),
        )
        .await;
    assert_eq!(status, 200);
    other.token = Some(login["attributes"]["token"].as_str().unwrap().to_owned());
    let id = admin.authorize("ttcp_1234567890").await["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    other.authorize("ttcp_1234567890").await;
    assert_eq!(
        ids(&admin.list("scope_id=p_1234567890").await),
        [id.as_str()]
    );
    assert_eq!(ids(&other.list("scope_id=p_1234567890").await).len(), 1);
    let (status, error) = other.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(
        (status, error["kind"].as_str()),
        (403, Some("PermissionDenied"))
    );
    let cancel = other
        .post(&format!("/v1/sessions/{id}:cancel"), json!({"version": 1}))
        .await;
    assert_eq!(cancel.0, 403);
    assert_eq!(
        controller.session(&id).unwrap().status,
        SessionStatus::Pending
    );
}
