//! `SsmControlFake` on its own: the session life cycle as a data-channel
//! fake drives it (tokens, connected / disconnected, terminate events,
//! time-outs), dates from an injected clock, and the protocol checks that
//! botocore cannot be made to trip (unknown operation, content type), with
//! plain HTTP requests carrying a SigV4-shaped header.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use session_core::ManualClock;
use session_testkit::fakes::SsmControlFake;
use session_testkit::fakes::ssm::{JSON_CONTENT_TYPE, SessionEvent, SessionStatus};
use time::macros::datetime;

const TARGET: &str = "i-0123456789abcdef0";
const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240829/ap-south-1/ssm/aws4_request, \
    SignedHeaders=content-type;host;x-amz-date;x-amz-target, \
    Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// One call: (status, body).
async fn call(fake: &SsmControlFake, operation: &str, input: Value) -> (u16, Value) {
    call_with(
        fake,
        &format!("AmazonSSM.{operation}"),
        JSON_CONTENT_TYPE,
        input,
    )
    .await
}

async fn call_with(
    fake: &SsmControlFake,
    target: &str,
    content_type: &str,
    input: Value,
) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(fake.endpoint())
        .header("x-amz-target", target)
        .header("content-type", content_type)
        .header("authorization", AUTH)
        .body(input.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn start(fake: &SsmControlFake) -> (String, String) {
    let (status, body) = call(fake, "StartSession", json!({"Target": TARGET})).await;
    assert_eq!(status, 200, "{body}");
    (
        body["SessionId"].as_str().unwrap().to_owned(),
        body["TokenValue"].as_str().unwrap().to_owned(),
    )
}

async fn fake_at(clock: &Arc<ManualClock>) -> SsmControlFake {
    let fake = SsmControlFake::start_with_clock(clock.clone()).await;
    fake.add_target(TARGET);
    fake
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(datetime!(2024-08-29 10:00:00 UTC)))
}

#[tokio::test]
async fn a_session_lives_through_connect_disconnect_resume_and_terminate() {
    let clock = clock();
    let fake = fake_at(&clock).await;
    let mut events = fake.subscribe();
    let (id, token) = start(&fake).await;
    assert_eq!(
        events.recv().await.unwrap(),
        SessionEvent::Started {
            session_id: id.clone()
        }
    );
    let record = fake.session(&id).unwrap();
    assert_eq!(record.status, SessionStatus::Connecting);
    assert_eq!(record.start_date, datetime!(2024-08-29 10:00:00 UTC));
    assert_eq!(
        (record.access_key_id.as_str(), record.region.as_str()),
        ("AKIDEXAMPLE", "ap-south-1")
    );

    // Not connected yet: disconnected() refuses; a wrong token is refused.
    assert!(!fake.disconnected(&id));
    assert!(!fake.consume_token(&id, "not-the-token"));
    assert!(!fake.consume_token(&id, ""));
    assert!(fake.consume_token(&id, &token));
    assert!(!fake.consume_token(&id, &token), "one-shot");
    assert!(fake.connected(&id));
    assert!(!fake.connected(&id), "already connected");
    assert!(fake.disconnected(&id));

    let (status, resumed) = call(&fake, "ResumeSession", json!({"SessionId": id})).await;
    assert_eq!(status, 200);
    let new_token = resumed["TokenValue"].as_str().unwrap();
    assert_ne!(new_token, token);
    assert_eq!(
        events.recv().await.unwrap(),
        SessionEvent::Resumed {
            session_id: id.clone()
        }
    );
    assert!(fake.consume_token(&id, new_token));
    assert!(fake.connected(&id));

    clock.advance(Duration::from_secs(42));
    let (status, body) = call(&fake, "TerminateSession", json!({"SessionId": id})).await;
    assert_eq!((status, body), (200, json!({"SessionId": id})));
    assert_eq!(
        events.recv().await.unwrap(),
        SessionEvent::Terminating {
            session_id: id.clone()
        }
    );
    assert_eq!(
        events.recv().await.unwrap(),
        SessionEvent::Ended {
            session_id: id.clone(),
            status: SessionStatus::Terminated
        }
    );
    let record = fake.session(&id).unwrap();
    assert_eq!(
        record
            .history
            .iter()
            .map(|(s, _)| s.as_str())
            .collect::<Vec<_>>(),
        [
            "Connecting",
            "Connected",
            "Disconnected",
            "Connected",
            "Terminating",
            "Terminated"
        ]
    );
    assert_eq!(record.end_date, Some(datetime!(2024-08-29 10:00:42 UTC)));
    assert_eq!(record.tokens_issued.len(), 2);
    assert!(!fake.connected(&id), "no way back from Terminated");

    // Terminating again changes nothing and tells nobody.
    let (status, _) = call(&fake, "TerminateSession", json!({"SessionId": id})).await;
    assert_eq!(status, 200);
    assert!(events.try_recv().is_err());
    assert_eq!(fake.session(&id).unwrap().history.len(), 6);
}

#[tokio::test]
async fn held_terminations_stay_active_and_refuse_tokens_and_resume() {
    let fake = fake_at(&clock()).await;
    fake.set_hold_terminating(true);
    let (id, token) = start(&fake).await;
    call(&fake, "TerminateSession", json!({"SessionId": id})).await;
    assert_eq!(
        fake.session(&id).unwrap().status,
        SessionStatus::Terminating
    );
    assert!(!fake.consume_token(&id, &token));
    let (status, body) = call(&fake, "ResumeSession", json!({"SessionId": id})).await;
    assert_eq!(
        (status, &body["__type"]),
        (400, &json!("DoesNotExistException"))
    );
    let (_, active) = call(&fake, "DescribeSessions", json!({"State": "Active"})).await;
    assert_eq!(active["Sessions"][0]["Status"], "Terminating");
    assert!(active["Sessions"][0].get("EndDate").is_none());
    assert!(fake.finish_terminating(&id));
    assert!(!fake.finish_terminating(&id));
    let (_, history) = call(&fake, "DescribeSessions", json!({"State": "History"})).await;
    assert_eq!(history["Sessions"][0]["Status"], "Terminated");
    assert!(history["Sessions"][0]["EndDate"].is_number());
}

#[tokio::test]
async fn a_timed_out_session_resumes_with_an_empty_token() {
    let fake = fake_at(&clock()).await;
    let (id, token) = start(&fake).await;
    assert!(fake.time_out(&id));
    assert!(
        !fake.consume_token(&id, &token),
        "the unused token died too"
    );
    let (status, body) = call(&fake, "ResumeSession", json!({"SessionId": id})).await;
    assert_eq!(status, 200);
    assert_eq!(body["TokenValue"], "");
    assert!(!fake.time_out("nobody-00000000000000000"));
}

#[tokio::test]
async fn failed_sessions_are_history_with_an_end_date() {
    let clock = clock();
    let fake = fake_at(&clock).await;
    let (id, _) = start(&fake).await;
    clock.advance(Duration::from_millis(1500));
    assert!(fake.set_status(&id, SessionStatus::Failed));
    assert!(!fake.set_status("nobody-00000000000000000", SessionStatus::Failed));
    let (_, body) = call(
        &fake,
        "DescribeSessions",
        json!({"State": "History", "Filters": [{"key": "Status", "value": "Failed"}]}),
    )
    .await;
    let session = &body["Sessions"][0];
    assert_eq!(session["SessionId"], id.as_str());
    assert_eq!(session["StartDate"], json!(1_724_925_600.0));
    assert_eq!(session["EndDate"], json!(1_724_925_601.5));
    let (status, body) = call(&fake, "ResumeSession", json!({"SessionId": id})).await;
    assert_eq!(
        (status, &body["__type"]),
        (400, &json!("DoesNotExistException"))
    );
}

#[tokio::test]
async fn stream_urls_use_the_stream_base_set_last() {
    let fake = fake_at(&clock()).await;
    assert_eq!(fake.stream_base(), format!("ws://{}", fake.addr()));
    fake.set_stream_base("ws://127.0.0.1:4242/");
    let (status, body) = call(&fake, "StartSession", json!({"Target": TARGET})).await;
    assert_eq!(status, 200);
    let id = body["SessionId"].as_str().unwrap();
    let url = format!("ws://127.0.0.1:4242/v1/data-channel/{id}?role=publish_subscribe");
    assert_eq!(body["StreamUrl"], url.as_str());
    assert_eq!(fake.stream_url(id), url);
    let owner = fake.session(id).unwrap().owner;
    assert!(id.starts_with(&format!("{}-", owner.rsplit('/').next().unwrap())));
}

#[tokio::test]
async fn filter_member_names_are_lowercase_and_unknown_operations_are_refused() {
    let fake = fake_at(&clock()).await;
    start(&fake).await;
    // `Key` / `Value` (the casing of every other member) are not the filter's.
    let (status, body) = call(
        &fake,
        "DescribeSessions",
        json!({"State": "Active", "Filters": [{"Key": "Target", "Value": TARGET}]}),
    )
    .await;
    assert_eq!(
        (status, &body["__type"]),
        (400, &json!("ValidationException"))
    );
    let (status, body) =
        call_with(&fake, "AmazonSSM.GetSession", JSON_CONTENT_TYPE, json!({})).await;
    assert_eq!(
        (status, &body["__type"]),
        (400, &json!("UnknownOperationException"))
    );
    let (status, body) = call_with(
        &fake,
        "AmazonSSM.StartSession",
        "application/json",
        json!({"Target": TARGET}),
    )
    .await;
    assert_eq!(
        (status, &body["__type"]),
        (400, &json!("SerializationException"))
    );
    assert_eq!(fake.calls("StartSession"), 2);
    let log = fake.calls_of("StartSession");
    assert_eq!(log[1].error.as_deref(), Some("SerializationException"));
    assert_eq!(log[0].input, json!({"Target": TARGET}));
}
