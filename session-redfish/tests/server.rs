//! Integration tests of the Redfish SessionService server over HTTPS, with
//! reqwest trusting the server's generated CA.

mod common;

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use session_core::{Clock, ManualClock, Secret, SystemClock};
use session_redfish::server::Role;

use common::*;

#[tokio::test]
async fn login_headers_body_and_token_use() {
    let (h, c) = start(builder()).await;
    let res = c
        .post(format!("{}{SESSIONS}", h.base_url()))
        .header("OData-Version", "4.0")
        .json(&json!({"UserName": "admin", "Password": ADMIN_PW, "Context": "test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let headers = res.headers().clone();
    assert!(headers.get("set-cookie").is_none());
    let token = headers["x-auth-token"].to_str().unwrap();
    assert_eq!(token.len(), 64);
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
    let location = headers["location"].to_str().unwrap();
    assert!(location.starts_with(&format!("{SESSIONS}/")), "{location}");
    assert_eq!(
        headers["link"].to_str().unwrap(),
        format!("<{location}>; rel=self")
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["@odata.id"], location);
    assert!(
        body["@odata.type"]
            .as_str()
            .unwrap()
            .starts_with("#Session.v1_")
    );
    assert_eq!(
        format!("{SESSIONS}/{}", body["Id"].as_str().unwrap()),
        location
    );
    assert_eq!(body["Name"], "User Session");
    assert_eq!(body["UserName"], "admin");
    assert_eq!(body["Password"], Value::Null);
    assert_eq!(body["Context"], "test");

    // The token works; the root is public and links the collection.
    let root: Value = get_public(&h, &c, "/redfish/v1/")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(root["Links"]["Sessions"]["@odata.id"], SESSIONS);
    let svc = get(&h, &c, "/redfish/v1/SessionService", token).await;
    assert_eq!(svc.status(), StatusCode::OK);
    let svc: Value = svc.json().await.unwrap();
    assert_eq!(svc["Sessions"]["@odata.id"], SESSIONS);
    assert_eq!(svc["SessionTimeout"], 1800);
    assert_eq!(get(&h, &c, location, token).await.status(), StatusCode::OK);

    // Two logins give two locations.
    let second = login(&h, &c, "admin", ADMIN_PW).await;
    assert_ne!(second.location, location);
    h.shutdown().await;
}

#[tokio::test]
async fn delete_kills_the_token() {
    let (h, c) = start(builder()).await;
    let s = login(&h, &c, "admin", ADMIN_PW).await;
    let res = delete(&h, &c, &s.location, &s.token).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["@Message.ExtendedInfo"][0]["MessageId"]
            .as_str()
            .unwrap()
            .ends_with(".SessionTerminated")
    );
    let res = get(&h, &c, SESSIONS, &s.token).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers().contains_key("www-authenticate"));
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["@Message.ExtendedInfo"][0]["MessageId"]
            .as_str()
            .unwrap()
            .ends_with(".NoValidSession")
    );
}

#[tokio::test]
async fn idle_sessions_expire_and_use_refreshes() {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let (h, c) = start(
        builder()
            .session_timeout(Duration::from_secs(30))
            .clock(clock.clone()),
    )
    .await;
    let kept = login(&h, &c, "admin", ADMIN_PW).await;
    let idle = login(&h, &c, "admin", ADMIN_PW).await;
    for _ in 0..3 {
        clock.advance(Duration::from_secs(20));
        assert_eq!(
            get(&h, &c, SESSIONS, &kept.token).await.status(),
            StatusCode::OK
        );
    }
    let res = get(&h, &c, SESSIONS, &idle.token).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers().contains_key("www-authenticate"));
    let list = get_json(&h, &c, SESSIONS, &kept.token).await;
    assert_eq!(list["Members@odata.count"], 1);
}

#[tokio::test]
async fn bad_logins_do_not_leak() {
    let (h, c) = start(builder()).await;
    let valid = login(&h, &c, "admin", ADMIN_PW).await;
    let mut bodies = Vec::new();
    for (user, pw) in [("admin", "CANARY-wrong-pw"), ("nobody", "CANARY-wrong-pw")] {
        let res = post_login(&h, &c, user, pw).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert!(
            res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic realm=")
        );
        assert!(res.headers().get("x-auth-token").is_none());
        let text = res.text().await.unwrap();
        assert!(!text.contains("CANARY"), "{text}");
        assert!(!text.contains(&valid.token));
        assert!(!text.contains(user), "{text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert!(body["error"]["@Message.ExtendedInfo"].is_array());
        bodies.push(text);
    }
    // An unknown user and a wrong password look the same.
    assert_eq!(bodies[0], bodies[1]);
}

#[tokio::test]
async fn bad_create_bodies() {
    let (h, c) = start(builder()).await;
    let post = |body: Value| {
        c.post(format!("{}{SESSIONS}", h.base_url()))
            .json(&body)
            .send()
    };
    let res = post(json!({"UserName": "admin"})).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    let info = &body["error"]["@Message.ExtendedInfo"][0];
    assert!(
        info["MessageId"]
            .as_str()
            .unwrap()
            .ends_with(".CreateFailedMissingReqProperties")
    );
    assert_eq!(info["MessageArgs"][0], "Password");

    let res = post(json!({"UserName": "admin", "Password": ADMIN_PW, "Color": "red"}))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let text = res.text().await.unwrap();
    assert!(text.contains("PropertyUnknown"));
    assert!(!text.contains(ADMIN_PW));
}

#[tokio::test]
async fn privilege_filtering() {
    let (h, c) = start(builder()).await;
    let admin = login(&h, &c, "admin", ADMIN_PW).await;
    let reader = login(&h, &c, "reader", "reader-pw").await;
    let reader2 = login(&h, &c, "reader", "reader-pw").await;

    let as_reader = members(&get_json(&h, &c, SESSIONS, &reader.token).await);
    assert_eq!(as_reader.len(), 2);
    assert!(as_reader.contains(&reader.location) && as_reader.contains(&reader2.location));
    assert!(!as_reader.contains(&admin.location));
    let as_admin = members(&get_json(&h, &c, SESSIONS, &admin.token).await);
    assert_eq!(as_admin.len(), 3);

    // Reader cannot read or delete the admin's session; admin can read the reader's.
    assert_eq!(
        get(&h, &c, &admin.location, &reader.token).await.status(),
        StatusCode::FORBIDDEN
    );
    let del = delete(&h, &c, &admin.location, &reader.token).await;
    assert_eq!(del.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        get(&h, &c, &reader.location, &admin.token).await.status(),
        StatusCode::OK
    );
    // ReadOnly cannot PATCH the SessionService; admin can, within range.
    let patch = |token: &str, v: Value| {
        c.patch(format!("{}/redfish/v1/SessionService", h.base_url()))
            .header("X-Auth-Token", token)
            .json(&v)
            .send()
    };
    assert_eq!(
        patch(&reader.token, json!({"SessionTimeout": 60}))
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    let res = patch(&admin.token, json!({"SessionTimeout": 10}))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("PropertyValueOutOfRange")
    );
    let res = patch(&admin.token, json!({"SessionTimeout": 600}))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["SessionTimeout"], 600);
    // Admin deletes the reader's session.
    let del = delete(&h, &c, &reader.location, &admin.token).await;
    assert_eq!(del.status(), StatusCode::OK);
}

#[tokio::test]
async fn basic_auth_odata_version_members_and_limits() {
    let (h, c) = start(builder().max_sessions(2)).await;
    let url = format!("{}{SESSIONS}", h.base_url());
    let res = c
        .get(&url)
        .basic_auth("admin", Some(ADMIN_PW))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = c
        .get(&url)
        .basic_auth("admin", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = c.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers().contains_key("www-authenticate"));

    let res = c
        .get(&url)
        .basic_auth("admin", Some(ADMIN_PW))
        .header("OData-Version", "4.1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);

    // POST to /Members creates a session without authentication.
    let res = c
        .post(format!("{url}/Members"))
        .json(&json!({"UserName": "admin", "Password": ADMIN_PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(res.headers().contains_key("x-auth-token"));

    // The limit is 2.
    login(&h, &c, "reader", "reader-pw").await;
    let res = post_login(&h, &c, "admin", ADMIN_PW).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().contains_key("retry-after"));
    assert!(res.text().await.unwrap().contains("SessionLimitExceeded"));

    // Public discovery documents.
    for path in [
        "/redfish",
        "/redfish/v1",
        "/redfish/v1/odata",
        "/redfish/v1/$metadata",
    ] {
        let res = get_public(&h, &c, path).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }
    let res = get_public(&h, &c, "/redfish/v1/Systems").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn config_is_validated_and_disabled_service_refuses_logins() {
    assert!(
        builder()
            .session_timeout(Duration::from_secs(10))
            .build()
            .is_err()
    );
    assert!(
        builder()
            .session_timeout(Duration::from_secs(90_000))
            .build()
            .is_err()
    );
    let (h, c) = start(builder().service_enabled(false)).await;
    let res = post_login(&h, &c, "admin", ADMIN_PW).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn account_service_is_read_only_and_shows_each_user_what_they_may_see() {
    let (h, c) = start(builder().account(
        "operator",
        Secret::new("CANARY-operator-pw"),
        Role::Operator,
    ))
    .await;
    let admin = login(&h, &c, "admin", ADMIN_PW).await;
    let reader = login(&h, &c, "reader", "reader-pw").await;
    let json = |res: reqwest::Response| async move {
        assert_eq!(res.status(), StatusCode::OK, "{}", res.url());
        res.json::<Value>().await.unwrap()
    };

    // Linked from the root; needs authentication like any other resource.
    let root = json(get(&h, &c, "/redfish/v1/", &admin.token).await).await;
    let svc_uri = root["AccountService"]["@odata.id"].as_str().unwrap();
    assert_eq!(svc_uri, "/redfish/v1/AccountService");
    let res = get_public(&h, &c, svc_uri).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let svc = json(get(&h, &c, svc_uri, &reader.token).await).await;
    let accounts_uri = svc["Accounts"]["@odata.id"].as_str().unwrap().to_owned();
    let roles_uri = svc["Roles"]["@odata.id"].as_str().unwrap().to_owned();

    // ConfigureUsers sees every account; ConfigureSelf only its own.
    let all = json(get(&h, &c, &accounts_uri, &admin.token).await).await;
    assert_eq!(all["Members@odata.count"], 3);
    let mut by_user = std::collections::HashMap::new();
    let mut bodies = String::new();
    for uri in members(&all) {
        let res = get(&h, &c, &uri, &admin.token).await;
        let etag = res.headers()["etag"].to_str().unwrap().to_owned();
        let account = json(res).await;
        assert_eq!(account["@odata.id"], uri.as_str());
        assert_eq!(account["Password"], Value::Null);
        assert!(account.as_object().unwrap().contains_key("Password"));
        by_user.insert(
            account["UserName"].as_str().unwrap().to_owned(),
            uri.clone(),
        );
        bodies.push_str(&account.to_string());
        // Unchanged: 304 with the same ETag.
        let res = c
            .get(format!("{}{uri}", h.base_url()))
            .header("X-Auth-Token", &admin.token)
            .header("If-None-Match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    }
    assert!(!bodies.contains("CANARY") && !bodies.contains(ADMIN_PW));
    assert!(!bodies.contains("reader-pw"));
    let reader_view = json(get(&h, &c, &accounts_uri, &reader.token).await).await;
    assert_eq!(members(&reader_view), vec![by_user["reader"].clone()]);
    let own = json(get(&h, &c, &by_user["reader"], &reader.token).await).await;
    assert_eq!(own["RoleId"], "ReadOnly");
    assert_eq!(
        own["Links"]["Role"]["@odata.id"],
        format!("{roles_uri}/ReadOnly")
    );
    // Another user's account, or one that does not exist: the same 403.
    for uri in [by_user["admin"].clone(), format!("{accounts_uri}/999")] {
        let res = get(&h, &c, &uri, &reader.token).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{uri}");
    }
    let res = get(&h, &c, &format!("{accounts_uri}/999"), &admin.token).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // The three standard roles and their privileges.
    let roles = json(get(&h, &c, &roles_uri, &reader.token).await).await;
    assert_eq!(roles["Members@odata.count"], 3);
    let mut found = Vec::new();
    for uri in members(&roles) {
        let role = json(get(&h, &c, &uri, &reader.token).await).await;
        let privileges: Vec<&str> = role["AssignedPrivileges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        found.push((role["Id"].as_str().unwrap().to_owned(), privileges.len()));
        assert_eq!(role["IsPredefined"], true);
        assert!(privileges.contains(&"Login"));
    }
    found.sort();
    assert_eq!(
        found,
        [
            ("Administrator".to_owned(), 5),
            ("Operator".to_owned(), 3),
            ("ReadOnly".to_owned(), 2)
        ]
    );

    // Read-only: writes get 405 with Allow.
    let patch = c
        .patch(format!("{}{roles_uri}/ReadOnly", h.base_url()))
        .header("X-Auth-Token", &admin.token)
        .json(&json!({"AssignedPrivileges": ["Login", "ConfigureUsers"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(patch.headers()["allow"].to_str().unwrap().contains("GET"));
    let post = c
        .post(format!("{}{accounts_uri}", h.base_url()))
        .header("X-Auth-Token", &admin.token)
        .json(&json!({"UserName": "x", "Password": "y-Passw0rd", "RoleId": "ReadOnly"}))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    h.shutdown().await;
}

#[tokio::test]
async fn resources_link_their_schema() {
    let (h, c) = start(builder()).await;
    let admin = login(&h, &c, "admin", ADMIN_PW).await;
    let account = "/redfish/v1/AccountService/Accounts/1";
    for (path, schema) in [
        ("/redfish/v1/", "ServiceRoot.v1_15_0.json"),
        (SESSIONS, "SessionCollection.json"),
        (admin.location.as_str(), "Session.v1_8_0.json"),
        ("/redfish/v1/SessionService", "SessionService.v1_2_0.json"),
        ("/redfish/v1/Systems", "ComputerSystemCollection.json"),
        ("/redfish/v1/AccountService", "AccountService.v1_18_0.json"),
        (account, "ManagerAccount.v1_12_0.json"),
        ("/redfish/v1/AccountService/Roles", "RoleCollection.json"),
    ] {
        for head in [false, true] {
            let url = format!("{}{path}", h.base_url());
            let req = if head { c.head(url) } else { c.get(url) };
            let res = req
                .header("X-Auth-Token", &admin.token)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{path}");
            let link = res.headers()["link"].to_str().unwrap();
            assert_eq!(
                link,
                format!("<https://redfish.dmtf.org/schemas/v1/{schema}>; rel=describedby"),
                "{path}"
            );
        }
    }
    h.shutdown().await;
}

/// 405 and 413 (a body over the 64 KiB limit) answers carry a Redfish error
/// body like every other error.
#[tokio::test]
async fn method_not_allowed_and_too_large_have_redfish_error_bodies() {
    let (h, c) = start(builder()).await;
    let admin = login(&h, &c, "admin", ADMIN_PW).await;
    let put = c
        .put(format!("{}/redfish/v1/SessionService", h.base_url()))
        .header("X-Auth-Token", &admin.token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let too_large = c
        .post(format!("{}{SESSIONS}", h.base_url()))
        .header("content-type", "application/json")
        .body(vec![b' '; 128 * 1024])
        .send()
        .await
        .unwrap();
    for (res, status, id) in [
        (put, StatusCode::METHOD_NOT_ALLOWED, "OperationNotAllowed"),
        (too_large, StatusCode::PAYLOAD_TOO_LARGE, "GeneralError"),
    ] {
        assert_eq!(res.status(), status);
        let text = res.text().await.unwrap();
        let body: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status}: {e}: {text:?}"));
        let code = body["error"]["code"].as_str().unwrap_or_default();
        assert!(
            code.starts_with("Base.1.") && code.ends_with(id),
            "{status}: {body}"
        );
        assert!(body["error"]["message"].is_string(), "{body}");
        assert_eq!(
            body["error"]["@Message.ExtendedInfo"][0]["MessageId"], code,
            "{body}"
        );
    }
    h.shutdown().await;
}
