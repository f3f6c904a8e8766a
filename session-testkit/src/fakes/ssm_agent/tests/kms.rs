//! KMS-encrypted sessions: the K1/K2 vectors, a StaticKms round trip, the
//! failure modes of the handshake and of payloads, and moto's KMS.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::super::codec::payload;
use super::super::kms::{
    self, KMS_CUSTOMER_MESSAGE, KmsDecrypt, KmsScenario, MotoKms, SessionKeys, StaticKms,
};
use super::super::{AgentScenario, SessionStats};
use super::client::{Client, TARGET, shell_setup};
use super::hex;

fn data_key() -> [u8; 64] {
    StaticKms::default().data_key()
}

fn half(key: &[u8], range: std::ops::Range<usize>) -> [u8; 32] {
    key[range].try_into().expect("32 bytes")
}

const NONCE: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];

#[test]
fn k1_k2_vectors_through_the_fakes_cipher() {
    let key = data_key();
    let keys = SessionKeys::from_data_key(&key).expect("64 bytes");
    // K1: client → agent, sealed with the client's encryption key
    // (bytes 32..64), which is the agent's decryption key.
    let k1 = hex("000102030405060708090a0b343731cb2538e739aa02c00c69380033697ac4c3135f");
    assert_eq!(
        kms::seal_with_nonce(&half(&key, 32..64), &NONCE, b"hello\r"),
        k1
    );
    assert_eq!(kms::open(&keys.agent_decryption, &k1).unwrap(), b"hello\r");
    // K2: agent → client, sealed with the agent's encryption key (bytes
    // 0..32, the client's decryption key).
    let k2 = hex("000102030405060708090a0b2869dc32dfb8ed6e2c1f00474029301fb3b434");
    assert_eq!(
        kms::seal_with_nonce(&keys.agent_encryption, &NONCE, b"ok\n"),
        k2
    );
    assert_eq!(kms::open(&half(&key, 0..32), &k2).unwrap(), b"ok\n");
    // Fresh nonces; a wrong key or a flipped bit does not open.
    let (a, b) = (
        kms::seal(&keys.agent_encryption, b"x"),
        kms::seal(&keys.agent_encryption, b"x"),
    );
    assert_ne!(a, b);
    assert_eq!(a.len(), 12 + 1 + 16);
    assert!(kms::open(&keys.agent_decryption, &a).is_err());
    let mut bad = k2.clone();
    bad[14] ^= 1;
    assert!(kms::open(&keys.agent_encryption, &bad).is_err());
    assert!(kms::open(&keys.agent_encryption, &k2[..20]).is_err());
    assert!(SessionKeys::from_data_key(&key[..63]).is_none());
}

#[tokio::test]
async fn static_kms_decrypts_only_its_context() {
    let kms = StaticKms::default();
    let ctx = kms::session_context("s-1", TARGET);
    let blob = kms.blob_for(&ctx);
    assert_eq!(kms.decrypt(blob.clone(), ctx).await.unwrap(), data_key());
    let other = kms::session_context("s-1", "i-other");
    let err = kms.decrypt(blob, other).await.unwrap_err();
    assert!(err.starts_with("InvalidCiphertextException"), "{err}");
    let err = kms
        .decrypt(b"junk".to_vec(), BTreeMap::new())
        .await
        .unwrap_err();
    assert!(err.starts_with("InvalidCiphertextException"), "{err}");
}

/// How the minimal client answers the KMS part of the handshake.
struct KmsClient {
    /// The blob sent as `KMSCipherTextKey` (`None`: the KMS action is
    /// answered Unsupported).
    blob: Option<Vec<u8>>,
    /// The data key the client believes in.
    data_key: Vec<u8>,
    /// `ActionResult` as a JSON string instead of an object.
    result_as_string: bool,
    /// Answer the challenge with other bytes.
    wrong_challenge: bool,
}

impl KmsClient {
    fn client_encryption(&self) -> [u8; 32] {
        half(&self.data_key, 32..64)
    }

    fn client_decryption(&self) -> [u8; 32] {
        half(&self.data_key, 0..32)
    }
}

/// Runs the client's half of a KMS handshake; returns the
/// HandshakeComplete JSON, or `None` when the agent closed the channel.
async fn kms_handshake(c: &mut Client, kms_client: &KmsClient, key_id: &str) -> Option<Value> {
    let request = c.expect_stream(payload::HANDSHAKE_REQUEST).await;
    let request: Value = serde_json::from_slice(&request.payload).unwrap();
    let actions = request["RequestedClientActions"].as_array().unwrap();
    assert_eq!(actions.len(), 2, "{request}");
    assert_eq!(actions[0]["ActionType"], "SessionType");
    assert_eq!(
        actions[1],
        json!({"ActionType": "KMSEncryption", "ActionParameters": {"KMSKeyId": key_id}})
    );
    let kms_entry = match &kms_client.blob {
        Some(blob) => {
            let result = json!({"KMSCipherTextKey": kms::b64(blob), "KMSCipherTextHash": null});
            let result = if kms_client.result_as_string {
                Value::String(result.to_string())
            } else {
                result
            };
            json!({"ActionType": "KMSEncryption", "ActionStatus": 1, "ActionResult": result, "Error": ""})
        }
        None => json!({"ActionType": "KMSEncryption", "ActionStatus": 3, "ActionResult": null,
                       "Error": "KMS encryption is not supported by this build"}),
    };
    let response = json!({
        "ClientVersion": "1.2.694.0",
        "ProcessedClientActions": [
            {"ActionType": "SessionType", "ActionStatus": 1, "ActionResult": null, "Error": ""},
            kms_entry,
        ],
        "Errors": null,
    });
    c.send(payload::HANDSHAKE_RESPONSE, response.to_string().as_bytes())
        .await;
    let challenge = c.next_stream().await?;
    assert_eq!(challenge.payload_type, payload::ENC_CHALLENGE_REQUEST);
    c.ack(&challenge).await;
    let body: Value = serde_json::from_slice(&challenge.payload).unwrap();
    let sealed = kms::unb64(body["Challenge"].as_str().unwrap()).unwrap();
    let mut plain = kms::open(&kms_client.client_decryption(), &sealed).expect("challenge opens");
    assert_eq!(plain.len(), 64);
    if kms_client.wrong_challenge {
        plain[0] ^= 0xff;
    }
    let answer = kms::seal(&kms_client.client_encryption(), &plain);
    c.send(
        payload::ENC_CHALLENGE_RESPONSE,
        json!({"Challenge": kms::b64(&answer)})
            .to_string()
            .as_bytes(),
    )
    .await;
    let complete = c.next_stream().await?;
    assert_eq!(complete.payload_type, payload::HANDSHAKE_COMPLETE);
    c.ack(&complete).await;
    Some(serde_json::from_slice(&complete.payload).unwrap())
}

/// Sends `text` encrypted, expects it echoed encrypted.
async fn encrypted_echo(c: &mut Client, kms_client: &KmsClient, text: &[u8]) {
    let sealed = kms::seal(&kms_client.client_encryption(), text);
    let sent = c.send(payload::OUTPUT, &sealed).await;
    let out = c.expect_stream(payload::OUTPUT).await;
    c.ack_of(sent.sequence_number).await;
    assert_ne!(out.payload, text, "the echo came back in clear");
    assert_eq!(
        kms::open(&kms_client.client_decryption(), &out.payload).unwrap(),
        text
    );
}

fn static_scenario(kms: &Arc<StaticKms>, delay: Duration) -> AgentScenario {
    AgentScenario {
        kms: Some(KmsScenario {
            key_id: "alias/ssm-fake".into(),
            service: kms.clone(),
            delay,
        }),
        ..AgentScenario::default()
    }
}

async fn closed_with(agent: &super::super::SsmAgentFake, id: &str) -> SessionStats {
    agent.wait_for(id, |s| s.channel_closed.is_some()).await
}

#[tokio::test]
async fn static_kms_session_round_trip() {
    for result_as_string in [false, true] {
        let kms_service = Arc::new(StaticKms::default());
        let (_control, agent, s) = shell_setup(static_scenario(&kms_service, Duration::ZERO)).await;
        let mut c = Client::open(&s.url, &s.token).await;
        let ctx = kms::session_context(&s.id, TARGET);
        let kc = KmsClient {
            blob: Some(kms_service.blob_for(&ctx)),
            data_key: data_key().to_vec(),
            result_as_string,
            wrong_challenge: false,
        };
        let complete = kms_handshake(&mut c, &kc, "alias/ssm-fake")
            .await
            .expect("handshake completes");
        assert_eq!(complete["CustomerMessage"], KMS_CUSTOMER_MESSAGE);
        encrypted_echo(&mut c, &kc, b"hello\r").await;
        encrypted_echo(&mut c, &kc, b"second line\r").await;
        // Size stays in clear.
        let size = c.send(payload::SIZE, br#"{"cols":80,"rows":24}"#).await;
        c.ack_of(size.sequence_number).await;
        let stats = agent.wait_for(&s.id, |st| !st.sizes.is_empty()).await;
        assert!(stats.kms && stats.challenge_passed && stats.handshake_complete);
        assert_eq!(stats.kms_context, Some(ctx));
        assert_eq!(stats.shell_input, b"hello\rsecond line\r");
        assert_eq!(stats.sizes, [(80, 24)]);
        assert_eq!(stats.kms_decrypt_failures, 0);
        assert_eq!(stats.handshake_error, None);
        // An agent Output sent by a test is encrypted too, and a
        // retransmission resends the same bytes.
        c.dedup = false;
        agent.send_stream(&s.id, payload::OUTPUT, b"from agent".to_vec());
        let first = c.next_stream().await.unwrap();
        let again = c.next_stream().await.unwrap();
        assert_eq!(first.sequence_number, again.sequence_number);
        assert_eq!(first.payload, again.payload);
        assert_eq!(
            kms::open(&kc.client_decryption(), &first.payload).unwrap(),
            b"from agent"
        );
    }
}

#[tokio::test]
async fn plain_scenario_has_no_kms_action() {
    let (_control, agent, s) = shell_setup(AgentScenario::default()).await;
    let mut c = Client::open(&s.url, &s.token).await;
    c.handshake().await;
    let out = c.echo(b"clear").await;
    assert_eq!(out.payload, b"clear");
    let stats = agent.stats(&s.id).unwrap();
    assert!(!stats.kms && !stats.challenge_passed && stats.kms_context.is_none());
}

#[tokio::test]
async fn wrong_context_unsupported_and_bad_challenge_cancel_the_session() {
    let kms_service = Arc::new(StaticKms::default());
    // A blob made for another target.
    let (_control, agent, s) = shell_setup(static_scenario(&kms_service, Duration::ZERO)).await;
    let mut c = Client::open(&s.url, &s.token).await;
    let kc = KmsClient {
        blob: Some(kms_service.blob_for(&kms::session_context(&s.id, "i-other"))),
        data_key: data_key().to_vec(),
        result_as_string: false,
        wrong_challenge: false,
    };
    assert!(kms_handshake(&mut c, &kc, "alias/ssm-fake").await.is_none());
    let stats = closed_with(&agent, &s.id).await;
    let why = stats.handshake_error.unwrap();
    assert!(
        why.starts_with("KMSEncryption failed: InvalidCiphertextException"),
        "{why}"
    );
    assert!(
        stats
            .channel_closed
            .unwrap()
            .contains("InvalidCiphertextException")
    );
    assert_eq!(
        c.closed.unwrap()["Output"]
            .as_str()
            .map(|o| o.contains("KMSEncryption failed")),
        Some(true)
    );
    assert!(!stats.handshake_complete);

    // The KMS action answered Unsupported: its Error is the cause.
    let (_control, agent, s) = shell_setup(static_scenario(&kms_service, Duration::ZERO)).await;
    let mut c = Client::open(&s.url, &s.token).await;
    let kc = KmsClient {
        blob: None,
        data_key: data_key().to_vec(),
        result_as_string: false,
        wrong_challenge: false,
    };
    assert!(kms_handshake(&mut c, &kc, "alias/ssm-fake").await.is_none());
    let why = closed_with(&agent, &s.id).await.handshake_error.unwrap();
    assert!(why.starts_with("KMSEncryption failed"), "{why}");
    assert!(why.contains("not supported by this build"), "{why}");

    // A wrong challenge answer.
    let (_control, agent, s) = shell_setup(static_scenario(&kms_service, Duration::ZERO)).await;
    let mut c = Client::open(&s.url, &s.token).await;
    let kc = KmsClient {
        blob: Some(kms_service.blob_for(&kms::session_context(&s.id, TARGET))),
        data_key: data_key().to_vec(),
        result_as_string: false,
        wrong_challenge: true,
    };
    assert!(kms_handshake(&mut c, &kc, "alias/ssm-fake").await.is_none());
    let stats = closed_with(&agent, &s.id).await;
    assert!(!stats.challenge_passed);
    assert!(
        stats
            .handshake_error
            .unwrap()
            .starts_with("EncChallenge failed"),
        "{:?}",
        stats.channel_closed
    );

    // A data key of the wrong length.
    let short = Arc::new(ShortKms);
    let scenario = AgentScenario {
        kms: Some(KmsScenario::new("k", short)),
        ..AgentScenario::default()
    };
    let (_control, agent, s) = shell_setup(scenario).await;
    let mut c = Client::open(&s.url, &s.token).await;
    let kc = KmsClient {
        blob: Some(b"blob".to_vec()),
        data_key: data_key().to_vec(),
        result_as_string: false,
        wrong_challenge: false,
    };
    assert!(kms_handshake(&mut c, &kc, "k").await.is_none());
    let why = closed_with(&agent, &s.id).await.handshake_error.unwrap();
    assert!(why.contains("32 bytes, 64 expected"), "{why}");
}

/// A KMS that answers a 32-byte data key.
#[derive(Debug)]
struct ShortKms;

impl KmsDecrypt for ShortKms {
    fn decrypt(
        &self,
        _blob: Vec<u8>,
        _context: BTreeMap<String, String>,
    ) -> futures::future::BoxFuture<'static, Result<Vec<u8>, String>> {
        Box::pin(async { Ok(vec![7; 32]) })
    }
}

#[tokio::test]
async fn an_output_that_does_not_decrypt_cancels_and_is_counted() {
    let kms_service = Arc::new(StaticKms::default());
    let (_control, agent, s) = shell_setup(static_scenario(&kms_service, Duration::ZERO)).await;
    let mut c = Client::open(&s.url, &s.token).await;
    let kc = KmsClient {
        blob: Some(kms_service.blob_for(&kms::session_context(&s.id, TARGET))),
        data_key: data_key().to_vec(),
        result_as_string: false,
        wrong_challenge: false,
    };
    kms_handshake(&mut c, &kc, "alias/ssm-fake").await.unwrap();
    // Plaintext where ciphertext belongs.
    c.send(payload::OUTPUT, b"plaintext, not sealed").await;
    while c.next_stream().await.is_some() {}
    let stats = closed_with(&agent, &s.id).await;
    assert_eq!(stats.kms_decrypt_failures, 1);
    assert!(stats.shell_input.is_empty(), "passed on as data");
    assert!(stats.channel_closed.unwrap().contains("does not decrypt"));
}

#[tokio::test]
async fn slow_kms_delays_the_challenge() {
    let kms_service = Arc::new(StaticKms::default());
    let delay = Duration::from_millis(400);
    let (_control, agent, s) = shell_setup(static_scenario(&kms_service, delay)).await;
    let mut c = Client::open(&s.url, &s.token).await;
    let kc = KmsClient {
        blob: Some(kms_service.blob_for(&kms::session_context(&s.id, TARGET))),
        data_key: data_key().to_vec(),
        result_as_string: false,
        wrong_challenge: false,
    };
    let started = tokio::time::Instant::now();
    let complete = kms_handshake(&mut c, &kc, "alias/ssm-fake").await.unwrap();
    assert!(started.elapsed() >= delay);
    assert!(complete["HandshakeTimeToComplete"].as_u64().unwrap() >= delay.as_nanos() as u64);
    assert!(agent.stats(&s.id).unwrap().challenge_passed);
}

/// moto's KMS: a data key generated under the session's context makes the
/// session work; one under another context fails with
/// InvalidCiphertextException. Skipped (loudly) when moto is missing
/// outside CI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_kms_session_and_wrong_context() {
    let Some(moto) = tokio::task::spawn_blocking(crate::peers::moto::MotoServer::start)
        .await
        .expect("moto start")
    else {
        return;
    };
    let moto_kms = MotoKms::new(moto.endpoint_url());
    let key = moto_kms.create_key().await;
    let service = Arc::new(moto_kms.clone());
    let scenario = AgentScenario {
        kms: Some(KmsScenario::new(key.clone(), service.clone())),
        ..AgentScenario::default()
    };
    let (control, agent, s) = shell_setup(scenario).await;
    let ctx = kms::session_context(&s.id, TARGET);
    let (plain, blob) = moto_kms.generate_data_key(&key, 64, &ctx).await.unwrap();
    let kc = KmsClient {
        blob: Some(blob),
        data_key: plain,
        result_as_string: false,
        wrong_challenge: false,
    };
    let mut c = Client::open(&s.url, &s.token).await;
    let complete = kms_handshake(&mut c, &kc, &key)
        .await
        .expect("moto session");
    assert_eq!(complete["CustomerMessage"], KMS_CUSTOMER_MESSAGE);
    encrypted_echo(&mut c, &kc, b"via moto\r").await;
    assert_eq!(agent.stats(&s.id).unwrap().kms_context, Some(ctx));

    // Second session, data key made for another target.
    let out = super::client::call(&control, "StartSession", json!({ "Target": TARGET })).await;
    let id = out["SessionId"].as_str().unwrap();
    let wrong = kms::session_context(id, "i-someone-else");
    let (plain, blob) = moto_kms.generate_data_key(&key, 64, &wrong).await.unwrap();
    let kc = KmsClient {
        blob: Some(blob),
        data_key: plain,
        result_as_string: false,
        wrong_challenge: false,
    };
    let mut c = Client::open(
        out["StreamUrl"].as_str().unwrap(),
        out["TokenValue"].as_str().unwrap(),
    )
    .await;
    assert!(kms_handshake(&mut c, &kc, &key).await.is_none());
    let why = closed_with(&agent, id).await.handshake_error.unwrap();
    assert!(
        why.starts_with("KMSEncryption failed: InvalidCiphertextException"),
        "{why}"
    );
    // MotoKms's own error mapping.
    let err = service
        .decrypt(b"not a blob".to_vec(), wrong)
        .await
        .unwrap_err();
    assert!(!err.is_empty());
    drop(moto);
}
