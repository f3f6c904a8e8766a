//! Property tests of the authorization-token decoder: any input gives a
//! value or a typed error, never a panic; tokens written by the fake
//! controller's own encoder (not ours) decode to what was encoded; and a
//! token damaged anywhere is refused or decoded, never accepted with a key
//! that does not match.

use proptest::prelude::*;
use session_boundary::{AuthorizationData, TokenError};
use session_testkit::fakes::boundary::cert;
use session_testkit::fakes::boundary::controller::token::{
    SessionAuthorizationData, Timestamp, WorkerInfo, encode,
};

fn identity() -> cert::SessionIdentity {
    cert::issue(
        "s_1234567890",
        &["127.0.0.1:9202".to_owned()],
        time::macros::datetime!(2026-12-06 00:00 UTC),
        time::macros::datetime!(2026-12-06 08:00 UTC),
    )
}

fn data(
    identity: &cert::SessionIdentity,
    session_id: String,
    workers: Vec<String>,
    connection_limit: i32,
    port: u32,
    expiration: Option<i64>,
) -> SessionAuthorizationData {
    SessionAuthorizationData {
        session_id,
        target_id: "ttcp_1234567890".into(),
        connection_limit,
        default_client_port: port,
        expiration: expiration.map(|seconds| Timestamp { seconds, nanos: 0 }),
        certificate: identity.certificate_der.clone(),
        private_key: identity.seed_and_public.to_vec(),
        worker_info: workers
            .into_iter()
            .map(|address| WorkerInfo { address })
            .collect(),
        ..SessionAuthorizationData::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_text_is_a_value_or_a_typed_error(text in ".{0,400}") {
        match AuthorizationData::decode(&text) {
            Ok(_) | Err(TokenError::NotBase58(_) | TokenError::NotProtobuf(_) | TokenError::Field { .. }) => {}
            Err(other) => prop_assert!(false, "untyped: {other:?}"),
        }
    }

    #[test]
    fn any_bytes_in_base58_are_a_value_or_a_typed_error(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let text = bs58::encode(&bytes).into_string();
        let decoded = AuthorizationData::decode(&text);
        prop_assert!(!matches!(decoded, Err(TokenError::NotBase58(_))), "{decoded:?}");
    }

    #[test]
    fn what_the_fake_encodes_decodes_back(
        id in "s_[0-9A-Za-z]{10}",
        workers in prop::collection::vec("[a-z0-9.]{1,20}:[0-9]{1,5}", 1..4),
        limit in prop_oneof![Just(-1), 1..1000i32],
        port in 0u32..65536,
        expiration in prop::option::of(0i64..4_000_000_000),
    ) {
        let identity = identity();
        let token = encode(&data(&identity, id.clone(), workers.clone(), limit, port, expiration));
        let decoded = AuthorizationData::decode(&token).unwrap();
        prop_assert_eq!(decoded.session_id, id);
        prop_assert_eq!(decoded.worker_addresses, workers);
        prop_assert_eq!(decoded.connection_limit, u32::try_from(limit).ok());
        prop_assert_eq!(u32::from(decoded.default_client_port), port);
        prop_assert_eq!(decoded.expiration.map(|e| e.unix_timestamp()), expiration);
        prop_assert_eq!(decoded.key.public_key().to_vec(), identity.seed_and_public[32..].to_vec());
        prop_assert_eq!(decoded.certificate_der, identity.certificate_der);
    }

    #[test]
    fn a_damaged_token_never_decodes_with_a_mismatched_key(position in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let identity = identity();
        let good = data(&identity, "s_1234567890".into(), vec!["127.0.0.1:9202".into()], -1, 0, None);
        let mut bytes = prost::Message::encode_to_vec(&good);
        let at = position.index(bytes.len());
        bytes[at] ^= flip;
        if let Ok(decoded) = AuthorizationData::decode(&bs58::encode(&bytes).into_string()) {
            // Whatever survived, the key's halves agree (the decoder checks
            // them), so TLS will not run with a key that is not the token's.
            use ed25519_dalek::SigningKey;
            let der = decoded.key.pkcs8_der();
            let seed: [u8; 32] = der[16..48].try_into().unwrap();
            prop_assert_eq!(
                SigningKey::from_bytes(&seed).verifying_key().to_bytes(),
                decoded.key.public_key()
            );
        }
    }
}

#[test]
fn a_token_without_a_worker_or_key_names_the_field() {
    let identity = identity();
    let no_worker = data(&identity, "s_1234567890".into(), vec![], -1, 0, None);
    let error = AuthorizationData::decode(&encode(&no_worker)).unwrap_err();
    assert!(
        matches!(
            error,
            TokenError::Field {
                field: "worker_info",
                ..
            }
        ),
        "{error:?}"
    );
    let mut bad_key = data(
        &identity,
        "s_1234567890".into(),
        vec!["w:1".into()],
        -1,
        0,
        None,
    );
    bad_key.private_key[40] ^= 1;
    let error = AuthorizationData::decode(&encode(&bad_key)).unwrap_err();
    assert!(
        matches!(
            error,
            TokenError::Field {
                field: "private_key",
                ..
            }
        ),
        "{error:?}"
    );
}
