//! The golden vectors of `boundary.md` §7 (computed there from the tables,
//! apart from this code) and the negative cases the decoder must refuse.

use prost::Message;

use super::*;

const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

/// The minimal message of §7.
fn minimal() -> SessionAuthorizationData {
    SessionAuthorizationData {
        session_id: "s_1234567890".into(),
        target_id: "ttcp_1234567890".into(),
        r#type: "tcp".into(),
        connection_limit: -1,
        endpoint_port: 22,
        expiration: Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        }),
        worker_info: vec![WorkerInfo {
            address: "127.0.0.1:9202".into(),
        }],
        ..SessionAuthorizationData::default()
    }
}

fn go_private_key() -> Vec<u8> {
    let mut key = hex::decode(SEED).unwrap();
    key.extend(hex::decode(PUBLIC).unwrap());
    key
}

fn token_of(data: &SessionAuthorizationData) -> String {
    bs58::encode(data.encode_to_vec()).into_string()
}

#[test]
fn base58_vectors() {
    assert_eq!(bs58::encode([0u8, 0, 1]).into_string(), "112");
    assert_eq!(
        bs58::encode(b"hello world").into_string(),
        "StV1DL6CwTryKyV"
    );
}

#[test]
fn the_minimal_message_and_its_token() {
    let bytes = minimal().encode_to_vec();
    assert_eq!(
        hex::encode(&bytes),
        "520c735f31323334353637383930a2010f747463705f31323334353637383930820503746370\
         d005ffffffffffffffffff01b00616ca06060880e2cfaa06b20910520e3132372e302e302e31\
         3a39323032"
    );
    assert_eq!(bytes.len(), 81);
    assert_eq!(
        token_of(&minimal()),
        "4wtL4iHcpiizceC97UnojuKqBsGiP2yYp8c4ja7V3dAyU7ZzNCFj4TNDYNWhEKgf1s6qNCpzQmHRLycaYwMpYiBs6SmcdiK13KmcjY3t5it8Gp9"
    );
}

#[test]
fn a_full_token_decodes_and_keeps_the_key_secret() {
    let mut data = minimal();
    data.private_key = go_private_key();
    data.certificate = vec![0x30, 0x82, 0x01, 0x00];
    data.default_client_port = 5432;
    let decoded = AuthorizationData::decode(&token_of(&data)).expect("decodes");
    assert_eq!(decoded.session_id, "s_1234567890");
    assert_eq!(decoded.target_id, "ttcp_1234567890");
    assert_eq!(decoded.kind, "tcp");
    assert_eq!(decoded.connection_limit, None, "-1 is unlimited");
    assert_eq!(decoded.endpoint_port, Some(22));
    assert_eq!(
        decoded.expiration,
        Some(OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap())
    );
    assert_eq!(decoded.worker_addresses, ["127.0.0.1:9202"]);
    assert_eq!(decoded.default_client_port, 5432);
    assert_eq!(hex::encode(decoded.key.public_key()), PUBLIC);
    assert_eq!(
        hex::encode(&*decoded.key.pkcs8_der()),
        format!("302e020100300506032b657004220420{SEED}")
    );
    let shown = format!("{decoded:?}");
    assert!(
        !shown.contains(SEED) && !shown.contains("9d, 61"),
        "{shown}"
    );
    assert!(shown.contains("redacted"), "{shown}");
}

#[test]
fn a_limit_of_one_is_kept() {
    let mut data = minimal();
    data.private_key = go_private_key();
    data.certificate = vec![1];
    data.connection_limit = 1;
    let decoded = AuthorizationData::decode(&token_of(&data)).expect("decodes");
    assert_eq!(decoded.connection_limit, Some(1));
}

#[test]
fn the_negative_cases_are_refused_by_name() {
    let mut good = minimal();
    good.private_key = go_private_key();
    good.certificate = vec![1];
    let token = token_of(&good);
    for bad in ['0', 'O', 'I', 'l'] {
        let text = format!("{}{bad}", &token[..10]);
        assert!(
            matches!(
                AuthorizationData::decode(&text),
                Err(TokenError::NotBase58(_))
            ),
            "{bad}"
        );
    }
    let mut short = good.clone();
    short.private_key.pop();
    let error = AuthorizationData::decode(&token_of(&short)).unwrap_err();
    assert!(
        error.to_string().contains("private_key is 63 bytes"),
        "{error}"
    );

    let mut mismatched = good.clone();
    mismatched.private_key[40] ^= 1;
    let error = AuthorizationData::decode(&token_of(&mismatched)).unwrap_err();
    assert!(error.to_string().contains("does not derive"), "{error}");

    let mut no_worker = good.clone();
    no_worker.worker_info.clear();
    let error = AuthorizationData::decode(&token_of(&no_worker)).unwrap_err();
    assert!(error.to_string().contains("worker_info"), "{error}");

    // The minimal vector has no key at all.
    let error = AuthorizationData::decode(&token_of(&minimal())).unwrap_err();
    assert!(
        error.to_string().contains("private_key is 0 bytes"),
        "{error}"
    );
    // Errors never carry the token.
    assert!(!error.to_string().contains(&token[..20]));
}
