//! KMS-encrypted SSM sessions (`ssm.md` §2.8) with **moto** as the KMS
//! service for both sides: our client's `GenerateDataKey` (aws-sdk-kms,
//! through `SsmApi::data_keys`, so with the session's own credentials,
//! region and endpoint override) and the fake agent's `Decrypt` (moto
//! rejects another encryption context, as AWS does). The fake agent of
//! session-testkit was written from ssm.md apart from our client.
//!
//! Also without moto: a session whose settings forbid KMS, and a slow KMS
//! on the agent's side. Skipped (loudly) outside CI when moto is missing;
//! in CI a missing moto fails.
#![cfg(feature = "ssm-kms")]

use std::sync::Arc;
use std::time::Duration;

use session_aws::AwsCredentials;
use session_aws::ssm::kms::{DataKey, DataKeyRequest, DataKeySource};
use session_aws::ssm::{
    ChannelKms, ChannelOptions, DataChannel, Established, Incoming, PayloadType, SsmApi,
    SsmClientConfig, SsmConfig,
};
use session_core::{Error, Secret, SystemClock};
use session_testkit::fakes::SsmControlFake;
use session_testkit::fakes::ssm_agent::{
    AgentScenario, KmsScenario, MotoKms, SsmAgentFake, StaticKms,
};
use session_testkit::peers::moto::MotoServer;
use uuid::Uuid;

const TARGET: &str = "i-0123456789abcdef0";
const LIMIT: Duration = Duration::from_secs(20);

struct World {
    control: SsmControlFake,
    agent: SsmAgentFake,
}

async fn world(scenario: AgentScenario) -> World {
    let control = SsmControlFake::start().await;
    control.add_target(TARGET);
    let agent = SsmAgentFake::start(&control, scenario).await;
    World { control, agent }
}

/// The control plane of the fake, and KMS at `kms` (moto), both signed
/// with made-up credentials (moto does not check them by default).
async fn api(world: &World, kms: Option<&str>) -> SsmApi {
    let mut builder = SsmClientConfig::builder().endpoint_url(world.control.endpoint());
    if let Some(kms) = kms {
        builder = builder.kms_endpoint_url(kms);
    }
    builder
        .build()
        .expect("config")
        .api(
            "us-east-1",
            Some(&AwsCredentials {
                access_key_id: "AKIAKMSTEST000000000".into(),
                secret_access_key: Secret::new("kms-test"),
                session_token: None,
                expiration: None,
            }),
            "session 'kms'",
        )
        .await
}

/// Opens a shell's data channel with `kms` (and `allow_kms`).
async fn open(
    api: &SsmApi,
    kms: Option<ChannelKms>,
    allow_kms: bool,
) -> (session_core::Result<(DataChannel, Established)>, String) {
    let ticket = api
        .start_session(&SsmConfig::shell(TARGET))
        .await
        .expect("StartSession");
    let mut options = ChannelOptions::default();
    options.kms = kms;
    options.allow_kms = allow_kms;
    let opened = tokio::time::timeout(
        LIMIT,
        DataChannel::open(
            &ticket,
            Uuid::new_v4(),
            options,
            Arc::new(SystemClock),
            "session 'kms'",
        ),
    )
    .await
    .expect("the open ended in time");
    (opened, ticket.session_id)
}

async fn moto() -> Option<MotoServer> {
    tokio::task::spawn_blocking(MotoServer::start)
        .await
        .expect("moto start")
}

/// Echo through the shell until `expected` came back.
async fn echo(channel: &mut DataChannel, input: &[u8]) -> Vec<u8> {
    channel
        .send(PayloadType::Output, input.to_vec())
        .await
        .expect("send");
    let mut got = Vec::new();
    while got.len() < input.len() {
        match tokio::time::timeout(LIMIT, channel.recv()).await {
            Ok(Some(Incoming::Output(bytes))) => got.extend(bytes),
            Ok(Some(_)) => {}
            other => panic!("no echo: {other:?}"),
        }
    }
    got
}

/// The whole KMS path with moto on both sides: the data key under the
/// exact context, the challenge, sealed payloads both ways (the fake's
/// shell echoes what it decrypted, sealed again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_session_with_moto_as_kms() {
    let Some(moto) = moto().await else { return };
    let kms = MotoKms::new(moto.endpoint_url());
    let key = kms.create_key().await;
    let world = world(AgentScenario {
        kms: Some(KmsScenario::new(key.clone(), Arc::new(kms.clone()))),
        ..AgentScenario::default()
    })
    .await;
    let api = api(&world, Some(&moto.endpoint_url())).await;
    let source = ChannelKms {
        source: Arc::new(api.data_keys()),
        target_id: TARGET.into(),
    };
    let (opened, id) = open(&api, Some(source), true).await;
    let (mut channel, established) = opened.expect("an encrypted session opens");
    assert!(established.encrypted);
    assert_eq!(
        established.customer_message,
        "This session is encrypted using AWS KMS."
    );
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(echo(&mut channel, b"hello\r").await, b"hello\r");
    assert_eq!(echo(&mut channel, &big).await, big);
    let stats = world.agent.stats(&id).expect("stats");
    assert!(stats.kms && stats.challenge_passed, "{stats:?}");
    assert_eq!(stats.kms_decrypt_failures, 0);
    let context = stats
        .kms_context
        .clone()
        .expect("the context the agent used");
    assert_eq!(
        context.into_iter().collect::<Vec<_>>(),
        vec![
            ("aws:ssm:SessionId".to_owned(), id.clone()),
            ("aws:ssm:TargetId".to_owned(), TARGET.to_owned())
        ]
    );
    assert!(
        stats.bytes_in >= big.len() as u64,
        "the agent got the bytes: {stats:?}"
    );
}

/// A data key under another context (here: another target) cannot be
/// decrypted by the agent: moto says InvalidCiphertextException, the agent
/// ends the session, and the open fails with that, not with a time-out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_encryption_context_is_a_clear_error() {
    let Some(moto) = moto().await else { return };
    let kms = MotoKms::new(moto.endpoint_url());
    let key = kms.create_key().await;
    let world = world(AgentScenario {
        kms: Some(KmsScenario::new(key, Arc::new(kms))),
        ..AgentScenario::default()
    })
    .await;
    let api = api(&world, Some(&moto.endpoint_url())).await;
    let source = ChannelKms {
        source: Arc::new(api.data_keys()),
        target_id: "i-0fedcba9876543210".into(),
    };
    let started = std::time::Instant::now();
    let (opened, id) = open(&api, Some(source), true).await;
    let error = opened.expect_err("refused");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "no handshake time-out"
    );
    assert!(matches!(error, Error::PermissionDenied { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("InvalidCiphertextException"), "{text}");
    assert!(text.contains("could not decrypt the data key"), "{text}");
    let stats = world.agent.stats(&id).expect("stats");
    assert!(!stats.challenge_passed, "{stats:?}");
}

/// A key KMS does not know: GenerateDataKey fails on our side, the error
/// names the key and what to check, and the agent is told (it cancels).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_is_a_clear_error() {
    let Some(moto) = moto().await else { return };
    let kms = MotoKms::new(moto.endpoint_url());
    let missing = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000";
    let world = world(AgentScenario {
        kms: Some(KmsScenario::new(missing, Arc::new(kms))),
        ..AgentScenario::default()
    })
    .await;
    let api = api(&world, Some(&moto.endpoint_url())).await;
    let source = ChannelKms {
        source: Arc::new(api.data_keys()),
        target_id: TARGET.into(),
    };
    let (opened, id) = open(&api, Some(source), true).await;
    let text = opened.expect_err("refused").to_string();
    assert!(text.contains("NotFoundException"), "{text}");
    assert!(text.contains(missing), "{text}");
    assert!(text.contains("no such key"), "{text}");
    let stats = world
        .agent
        .wait_for(&id, |s| s.handshake_error.is_some())
        .await;
    assert!(
        stats
            .handshake_error
            .as_deref()
            .is_some_and(|e| e.contains("NotFoundException")),
        "the agent was told: {stats:?}"
    );
}

/// Data keys from the fake's own static KMS, for tests without moto.
#[derive(Debug)]
struct StaticKeys(StaticKms);

#[async_trait::async_trait]
impl DataKeySource for StaticKeys {
    async fn generate_data_key(&self, request: &DataKeyRequest) -> session_core::Result<DataKey> {
        Ok(DataKey::new(
            self.0.data_key().to_vec(),
            self.0.blob_for(&request.encryption_context),
        ))
    }
}

#[tokio::test]
async fn settings_that_forbid_kms_refuse_it_by_name() {
    let world = world(AgentScenario {
        kms: Some(KmsScenario::new(
            "alias/ssm",
            Arc::new(StaticKms::default()),
        )),
        ..AgentScenario::default()
    })
    .await;
    let api = api(&world, None).await;
    let source = ChannelKms {
        source: Arc::new(StaticKeys(StaticKms::default())),
        target_id: TARGET.into(),
    };
    let (opened, id) = open(&api, Some(source), false).await;
    let error = opened.expect_err("refused");
    assert!(matches!(error, Error::InvalidInput { .. }), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains("forbidKms") && text.contains("alias/ssm"),
        "{text}"
    );
    let stats = world
        .agent
        .wait_for(&id, |s| s.handshake_error.is_some())
        .await;
    // No data key reached the agent, and it was told why.
    assert!(
        stats.kms_context.is_none() && !stats.challenge_passed,
        "{stats:?}"
    );
    assert!(
        stats
            .handshake_error
            .as_deref()
            .is_some_and(|e| e.contains("forbidKms")),
        "{stats:?}"
    );
}

/// The agent's KMS takes 3 s to decrypt: the handshake waits for it (the
/// agent's own phases have 15 s), and then the session works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_kms_on_the_agents_side_is_waited_for() {
    let mut kms = KmsScenario::new("alias/ssm", Arc::new(StaticKms::default()));
    kms.delay = Duration::from_secs(3);
    let world = world(AgentScenario {
        kms: Some(kms),
        ..AgentScenario::default()
    })
    .await;
    let api = api(&world, None).await;
    let source = ChannelKms {
        source: Arc::new(StaticKeys(StaticKms::default())),
        target_id: TARGET.into(),
    };
    let started = std::time::Instant::now();
    let (opened, _) = open(&api, Some(source), true).await;
    let (mut channel, established) = opened.expect("opened");
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert!(established.encrypted);
    assert_eq!(echo(&mut channel, b"slow\r").await, b"slow\r");
}
