//! The controller REST client against session-testkit's fake controller
//! (written from Boundary's reference and OpenAPI document, its answers
//! checked against the official v0.13.1 definitions by its own tests).

use std::time::{Duration, Instant};

use serde_json::json;
use session_boundary::AuthorizationData;
use session_boundary::api::{ControllerClient, ListQuery, SessionState, TargetRef};
use session_core::{Error, Secret};
use session_testkit::fakes::boundary::cluster::SessionStatus;
use session_testkit::fakes::boundary::controller::{
    DEV_AUTH_METHOD_ID, DEV_LOGIN_NAME, DEV_PASSWORD, DEV_PROJECT_ID, DEV_TARGET_ID,
};
use session_testkit::fakes::boundary::{FakeBoundary, FakeTarget, WorkerOptions};

async fn logged_in(fake: &FakeBoundary) -> ControllerClient {
    let client = ControllerClient::new(&fake.controller.url()).unwrap();
    let token = client
        .authenticate_password(
            DEV_AUTH_METHOD_ID,
            DEV_LOGIN_NAME,
            &Secret::new(DEV_PASSWORD),
        )
        .await
        .unwrap();
    assert!(token.id.starts_with("at_"), "{}", token.id);
    assert!(token.expiration_time.is_some());
    client.with_token(token.token)
}

async fn legacy() -> FakeBoundary {
    FakeBoundary::start_with(
        |b, endpoint| b.target(FakeTarget::dev(endpoint)).legacy_0_13(true),
        WorkerOptions::default(),
    )
    .await
}

#[tokio::test]
async fn a_wrong_password_is_unauthenticated_and_never_echoed() {
    let fake = FakeBoundary::start().await;
    let client = ControllerClient::new(&fake.controller.url()).unwrap();
    let password = Secret::new("not-the-password-4711");
    let error = client
        .authenticate_password(DEV_AUTH_METHOD_ID, DEV_LOGIN_NAME, &password)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Unauthenticated { .. }), "{error:?}");
    let text = format!("{error} {error:?}");
    assert!(!text.contains("4711"), "{text}");
    let unknown = client
        .authenticate_password("ampw_0000000000", DEV_LOGIN_NAME, &password)
        .await
        .unwrap_err();
    assert!(matches!(unknown, Error::NotFound { .. }), "{unknown:?}");
    // Without a token, other calls are refused.
    let anonymous = client.read_session("s_1234567890").await.unwrap_err();
    assert!(
        matches!(anonymous, Error::Unauthenticated { .. }),
        "{anonymous:?}"
    );
}

#[tokio::test]
async fn authorize_by_id_by_name_and_scope_and_read_back() {
    let fake = FakeBoundary::start().await;
    let client = logged_in(&fake).await;
    let by_id = client
        .authorize_session(&TargetRef::id(DEV_TARGET_ID), None)
        .await
        .unwrap();
    assert!(by_id.session_id.starts_with("s_"));
    assert_eq!(by_id.target_id, DEV_TARGET_ID);
    assert_eq!(by_id.connection_limit, Some(-1));
    assert!(!format!("{by_id:?}").contains(by_id.authorization_token.expose()));
    let data = AuthorizationData::decode(by_id.authorization_token.expose()).unwrap();
    assert_eq!(data.session_id, by_id.session_id);
    assert_eq!(data.worker_addresses, vec![fake.worker.address()]);
    assert_eq!(data.expires_at(), by_id.expiration);

    let by_scope_id = client
        .authorize_session(
            &TargetRef::name_in_scope_id("Generated target", DEV_PROJECT_ID),
            None,
        )
        .await
        .unwrap();
    let by_scope_name = client
        .authorize_session(
            &TargetRef::name_in_scope_named("Generated target", "Generated project scope"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(by_scope_id.target_id, DEV_TARGET_ID);
    assert_eq!(by_scope_name.target_id, DEV_TARGET_ID);

    let missing = client
        .authorize_session(&TargetRef::name_in_scope_id("nope", DEV_PROJECT_ID), None)
        .await
        .unwrap_err();
    assert!(matches!(missing, Error::NotFound { .. }), "{missing:?}");

    let session = client.read_session(&by_id.session_id).await.unwrap();
    assert_eq!(session.status, SessionState::Pending);
    assert!(session.version >= 1);
    assert_eq!(session.target_id, DEV_TARGET_ID);
    let unknown = client.read_session("s_0000000000").await.unwrap_err();
    assert!(matches!(unknown, Error::NotFound { .. }), "{unknown:?}");

    let targets = client.list_targets("global", true).await.unwrap();
    assert!(targets.iter().any(|t| t.id == DEV_TARGET_ID), "{targets:?}");
    assert_eq!(
        client.read_target(DEV_TARGET_ID).await.unwrap().name,
        "Generated target"
    );
}

#[tokio::test]
async fn list_follows_every_page_and_a_refresh_drops_removed_sessions() {
    let fake = FakeBoundary::start_with(
        |b, endpoint| b.target(FakeTarget::dev(endpoint)).max_page_size(2),
        WorkerOptions::default(),
    )
    .await;
    let client = logged_in(&fake).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            client
                .authorize_session(&TargetRef::id(DEV_TARGET_ID), None)
                .await
                .unwrap()
                .session_id,
        );
    }
    let mut listing = client.list_sessions(&ListQuery::default()).await.unwrap();
    let mut listed: Vec<String> = listing.sessions().iter().map(|s| s.id.clone()).collect();
    listed.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(listed, want, "three pages of at most two");
    assert!(listing.list_token().is_some());
    let pages = fake
        .controller
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/sessions")
        .count();
    assert_eq!(pages, 3);

    // One ends: a refresh drops it.
    let gone = &ids[0];
    client.cancel_session(gone).await.unwrap();
    fake.controller.sweep();
    client.refresh_sessions(&mut listing).await.unwrap();
    assert!(
        listing.sessions().iter().all(|s| s.id != *gone),
        "{:?}",
        listing
            .sessions()
            .iter()
            .map(|s| (&s.id, &s.status))
            .collect::<Vec<_>>()
    );
    assert_eq!(listing.sessions().len(), 4);

    // A filter, and a project scope.
    let filtered = client
        .list_sessions(
            &ListQuery::in_project(DEV_PROJECT_ID)
                .with_filter(format!("\"/item/id\" == \"{}\"", ids[1])),
        )
        .await
        .unwrap();
    assert_eq!(filtered.sessions().len(), 1);
    assert_eq!(filtered.sessions()[0].id, ids[1]);
    let bad = client
        .list_sessions(&ListQuery::default().with_filter("\"/item/id\" ==="))
        .await
        .unwrap_err();
    assert!(
        matches!(&bad, Error::InvalidInput { field, .. } if field == "filter"),
        "{bad:?}"
    );
    // Terminated sessions on request.
    let all = client
        .list_sessions(&ListQuery::default().with_terminated())
        .await
        .unwrap();
    assert!(
        all.sessions()
            .iter()
            .any(|s| s.id == *gone && s.status == SessionState::Terminated)
    );
}

#[tokio::test]
async fn cancel_retries_once_on_a_stale_version_and_is_idempotent() {
    let fake = FakeBoundary::start().await;
    let client = logged_in(&fake).await;
    let id = client
        .authorize_session(&TargetRef::id(DEV_TARGET_ID), None)
        .await
        .unwrap()
        .session_id;
    // The version changes between our read and our cancel: the first
    // cancel gets 500 Internal, the retry with the fresh version works.
    fake.controller.stale_next_cancel(&id);
    let canceled = client.cancel_session(&id).await.unwrap();
    assert_eq!(canceled.status, SessionState::Canceling);
    assert_eq!(
        fake.controller.session(&id).unwrap().status,
        SessionStatus::Canceling
    );
    let cancels = fake
        .controller
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(":cancel"))
        .count();
    assert_eq!(cancels, 2);
    // Again: done, no cancel sent.
    let again = client.cancel_session(&id).await.unwrap();
    assert!(again.status.is_ending());
    let cancels_after = fake
        .controller
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(":cancel"))
        .count();
    assert_eq!(cancels_after, 2);
    // A session that stays refused: the second refusal is the error.
    let other = client
        .authorize_session(&TargetRef::id(DEV_TARGET_ID), None)
        .await
        .unwrap()
        .session_id;
    fake.controller.stale_next_cancel(&other);
    fake.controller.stale_next_cancel(&other);
    let refused = client.cancel_session(&other).await.unwrap_err();
    assert!(refused.to_string().contains("Internal"), "{refused}");
    assert!(
        refused
            .to_string()
            .contains(&format!("cancel session {other}")),
        "{refused}"
    );
    let tries = fake
        .controller
        .requests()
        .iter()
        .filter(|r| r.path == format!("/v1/sessions/{other}:cancel"))
        .count();
    assert_eq!(tries, 2, "one retry, not more");
}

#[tokio::test]
async fn a_throttled_call_waits_as_asked() {
    let fake = FakeBoundary::start().await;
    let client = logged_in(&fake).await;
    fake.controller.fail_next(
        429,
        json!({"kind": "ResourceExhausted", "message": "slow down"}),
        Some(1),
    );
    let started = Instant::now();
    let targets = client.list_targets("global", true).await.unwrap();
    assert!(!targets.is_empty());
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    // A wait longer than the client accepts is returned at once.
    fake.controller.fail_next(
        429,
        json!({"kind": "ResourceExhausted", "message": "slow down"}),
        Some(3600),
    );
    let throttled = client.list_targets("global", true).await.unwrap_err();
    assert!(
        matches!(throttled, Error::Throttled { retry_after: Some(d), .. } if d == Duration::from_secs(3600)),
        "{throttled:?}"
    );
    assert!(throttled.is_retryable());
}

#[tokio::test]
async fn logout_ends_the_token() {
    let fake = FakeBoundary::start().await;
    let client = ControllerClient::new(&fake.controller.url()).unwrap();
    let token = client
        .authenticate_password(
            DEV_AUTH_METHOD_ID,
            DEV_LOGIN_NAME,
            &Secret::new(DEV_PASSWORD),
        )
        .await
        .unwrap();
    let authed = client.with_token(token.token.clone());
    authed.list_targets("global", true).await.unwrap();
    authed.logout(&token.id).await.unwrap();
    let after = authed.list_targets("global", true).await.unwrap_err();
    assert!(matches!(after, Error::Unauthenticated { .. }), "{after:?}");
}

#[tokio::test]
async fn a_0_13_controller_without_pagination_or_expiration_fields() {
    let fake = legacy().await;
    let client = logged_in(&fake).await;
    let authorization = client
        .authorize_session(&TargetRef::id(DEV_TARGET_ID), None)
        .await
        .unwrap();
    assert_eq!(authorization.expiration, None);
    let data = AuthorizationData::decode(authorization.authorization_token.expose()).unwrap();
    assert_eq!(data.expiration, None);
    // The certificate's NotAfter stands in.
    let session = client
        .read_session(&authorization.session_id)
        .await
        .unwrap();
    let from_cert = data.expires_at().expect("the certificate's NotAfter");
    let expiration = session.expiration_time.unwrap();
    assert!(
        (from_cert - expiration).abs() <= time::Duration::seconds(1),
        "{from_cert} vs {expiration}"
    );
    let listing = client.list_sessions(&ListQuery::default()).await.unwrap();
    assert_eq!(listing.sessions().len(), 1);
    assert_eq!(listing.list_token(), None);
}

#[tokio::test]
async fn a_bad_request_names_its_fields() {
    let fake = FakeBoundary::start().await;
    let client = logged_in(&fake).await;
    let error = client
        .list_sessions(&ListQuery::in_project("o_1234567890"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::InvalidInput { field, .. } if field == "scope_id"),
        "{error:?}"
    );
    let bad_address = ControllerClient::new("boundary.example:9200").unwrap_err();
    assert!(matches!(bad_address, Error::InvalidInput { .. }));
}

#[tokio::test]
async fn a_name_shared_by_two_projects_is_ambiguous_in_their_org() {
    use session_testkit::fakes::boundary::controller::ORG_ID;
    let fake = FakeBoundary::start_with(
        |b, endpoint| {
            b.target(FakeTarget::tcp(
                "ttcp_aaaaaaaaaa",
                "db",
                "p_aaaaaaaaaa",
                "prod",
                endpoint,
            ))
            .target(FakeTarget::tcp(
                "ttcp_bbbbbbbbbb",
                "db",
                "p_bbbbbbbbbb",
                "test",
                endpoint,
            ))
        },
        WorkerOptions::default(),
    )
    .await;
    let client = logged_in(&fake).await;
    let error = client
        .find_target(&TargetRef::name_in_scope_id("db", ORG_ID))
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, Error::InvalidInput { .. }), "{error:?}");
    assert!(
        text.contains("ttcp_aaaaaaaaaa") && text.contains("ttcp_bbbbbbbbbb"),
        "{text}"
    );
    let in_test = client
        .find_target(&TargetRef::name_in_scope_named("db", "test"))
        .await
        .unwrap();
    assert_eq!(in_test.id, "ttcp_bbbbbbbbbb");
}
