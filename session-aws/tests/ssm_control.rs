//! The SSM control plane client (`SsmApi`) against the fake control plane
//! of session-testkit (itself checked with botocore): the identity and
//! region used, the single-use tokens, the service's errors mapped onto
//! the core's categories, and DescribeSessions across pages.
#![cfg(feature = "ssm")]

use session_aws::AwsCredentials;
use session_aws::ssm::{
    SessionListFilter, SessionListState, SsmApi, SsmClientConfig, SsmClientConfigBuilder, SsmConfig,
};
use session_core::{Error, Secret};
use session_testkit::fakes::SsmControlFake;

const TARGET: &str = "i-0123456789abcdef0";

fn credentials(key: &str) -> AwsCredentials {
    AwsCredentials {
        access_key_id: key.to_owned(),
        secret_access_key: Secret::new("fake-secret-access-key"),
        session_token: Some(Secret::new("fake-session-token")),
        expiration: None,
    }
}

async fn api(fake: &SsmControlFake, key: &str) -> SsmApi {
    SsmClientConfig::builder()
        .endpoint_url(fake.endpoint())
        .max_attempts(1)
        .build()
        .expect("config")
        .api("eu-west-1", Some(&credentials(key)), "session 'ops'")
        .await
}

async fn fake() -> SsmControlFake {
    let fake = SsmControlFake::start().await;
    fake.add_target(TARGET);
    fake
}

#[tokio::test]
async fn start_uses_the_sessions_identity_and_returns_a_single_use_ticket() {
    let fake = fake().await;
    let api = api(&fake, "ASIAPARENTKEY0000001").await;
    let mut config = SsmConfig::port_forward(TARGET, 5432);
    config.reason = Some("database maintenance".into());
    let ticket = api.start_session(&config).await.expect("start");

    let calls = fake.calls_of("StartSession");
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].access_key_id.as_deref(),
        Some("ASIAPARENTKEY0000001")
    );
    assert_eq!(calls[0].region.as_deref(), Some("eu-west-1"));
    assert_eq!(calls[0].input["Target"], TARGET);
    assert_eq!(
        calls[0].input["DocumentName"],
        "AWS-StartPortForwardingSession"
    );
    assert_eq!(calls[0].input["Parameters"]["portNumber"][0], "5432");
    assert_eq!(calls[0].input["Reason"], "database maintenance");

    assert_eq!(ticket.stream_url, fake.stream_url(&ticket.session_id));
    assert!(
        !format!("{ticket:?}").contains(ticket.token.expose()),
        "the token is redacted"
    );
    assert!(fake.consume_token(&ticket.session_id, ticket.token.expose()));
    assert!(
        !fake.consume_token(&ticket.session_id, ticket.token.expose()),
        "single use"
    );
}

#[tokio::test]
async fn the_services_errors_map_onto_categories() {
    let fake = fake().await;
    fake.add_offline_target("i-00000000000000001");
    let api = api(&fake, "ASIAPARENTKEY0000001").await;

    let offline = api
        .start_session(&SsmConfig::shell("i-00000000000000001"))
        .await
        .unwrap_err();
    assert_eq!(offline.category(), "unavailable", "{offline}");
    assert!(
        offline.to_string().contains("TargetNotConnected"),
        "{offline}"
    );

    let mut config = SsmConfig::shell(TARGET);
    config.document_name = Some("No-Such-Document".into());
    let document = api.start_session(&config).await.unwrap_err();
    assert_eq!(document.category(), "invalid_input", "{document}");
    assert!(
        document.to_string().contains("InvalidDocument"),
        "{document}"
    );

    let unknown = api
        .resume_session("ops-0123456789abcdef0")
        .await
        .unwrap_err();
    assert!(matches!(unknown, Error::NotFound { .. }), "{unknown:?}");

    fake.fail_next_call_of("StartSession");
    let internal = api
        .start_session(&SsmConfig::shell(TARGET))
        .await
        .unwrap_err();
    assert!(internal.is_retryable(), "{internal}");
}

#[tokio::test]
async fn resume_gives_a_new_token_until_the_session_times_out_or_ends() {
    let fake = fake().await;
    let api = api(&fake, "ASIAPARENTKEY0000001").await;
    let first = api
        .start_session(&SsmConfig::shell(TARGET))
        .await
        .expect("start");
    let resumed = api
        .resume_session(&first.session_id)
        .await
        .expect("resume")
        .expect("a token");
    assert_eq!(resumed.session_id, first.session_id);
    assert_ne!(resumed.token.expose(), first.token.expose());
    assert!(
        !fake.consume_token(&first.session_id, first.token.expose()),
        "the old token is void"
    );

    assert!(fake.time_out(&first.session_id));
    assert!(
        api.resume_session(&first.session_id)
            .await
            .expect("an answer")
            .is_none(),
        "an empty token means the session timed out"
    );

    api.terminate_session(&first.session_id)
        .await
        .expect("terminate");
    api.terminate_session(&first.session_id)
        .await
        .expect("terminating again succeeds");
    let ended = api.resume_session(&first.session_id).await.unwrap_err();
    assert_eq!(ended.category(), "not_found", "{ended}");
}

#[tokio::test]
async fn describe_sessions_reads_every_page_and_filters() {
    let fake = fake().await;
    fake.add_target("i-0123456789abcdef1");
    // Pages shorter than the client's MaxResults (200), as AWS may send.
    fake.set_page_cap(Some(3));
    let api = api(&fake, "ASIAPARENTKEY0000001").await;
    let mut ids = Vec::new();
    for _ in 0..7 {
        ids.push(
            api.start_session(&SsmConfig::shell(TARGET))
                .await
                .unwrap()
                .session_id,
        );
    }
    let other = api
        .start_session(&SsmConfig::shell("i-0123456789abcdef1"))
        .await
        .unwrap()
        .session_id;
    api.terminate_session(&ids[0]).await.unwrap();

    let active = api
        .describe_sessions(SessionListState::Active, &[], None)
        .await
        .expect("active");
    assert_eq!(active.len(), 7, "three pages of 3, 3 and 1");
    assert!(fake.calls("DescribeSessions") >= 3);
    let history = api
        .describe_sessions(SessionListState::History, &[], None)
        .await
        .expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].session_id, ids[0]);
    assert_eq!(history[0].status.as_deref(), Some("Terminated"));
    assert!(history[0].end_date.is_some());

    let on_other = api
        .describe_sessions(
            SessionListState::Active,
            &[SessionListFilter::Target("i-0123456789abcdef1".into())],
            None,
        )
        .await
        .expect("filtered");
    assert_eq!(on_other.len(), 1);
    assert_eq!(on_other[0].session_id, other);
    assert_eq!(on_other[0].target.as_deref(), Some("i-0123456789abcdef1"));
    let filters = fake.calls_of("DescribeSessions").last().unwrap().input["Filters"].clone();
    assert_eq!(
        filters[0]["key"], "Target",
        "lowercase member names: {filters}"
    );

    let two = api
        .describe_sessions(SessionListState::Active, &[], Some(2))
        .await
        .expect("limited");
    assert_eq!(two.len(), 2);
}

#[test]
fn the_ssm_endpoint_variable_wins_over_the_general_one() {
    let vars = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<Vec<_>>()
    };
    let config = SsmClientConfigBuilder::from_env_iter(vars(&[
        ("AWS_ENDPOINT_URL", "http://general:1"),
        ("AWS_ENDPOINT_URL_SSM", "http://ssm:2"),
        ("AWS_REGION", "eu-central-1"),
    ]))
    .build()
    .unwrap();
    assert_eq!(config.endpoint_url(), Some("http://ssm:2"));
    assert_eq!(config.region_for(None), "eu-central-1");
    let config =
        SsmClientConfigBuilder::from_env_iter(vars(&[("AWS_ENDPOINT_URL", "http://general:1")]))
            .build()
            .unwrap();
    assert_eq!(config.endpoint_url(), Some("http://general:1"));
    let bad = SsmClientConfigBuilder::from_env_iter(vars(&[("AWS_ENDPOINT_URL_SSM", "ssm:2")]))
        .build()
        .unwrap_err();
    assert_eq!(bad.category(), "invalid_input");
    let bad = SsmClientConfigBuilder::from_env_iter(vars(&[("AWS_REGION", "EU West")]))
        .build()
        .unwrap_err();
    assert!(bad.to_string().contains("region"), "{bad}");
}
