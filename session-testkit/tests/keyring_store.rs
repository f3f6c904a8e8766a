//! `KeyringSecretStore`'s own logic — entry naming, the per-session index,
//! error mapping — over a [`MemoryKeychain`], not a real keychain (the
//! conformance suite runs in `secret_store_conformance.rs`).
#![cfg(feature = "keyring")]

use session_core::secret_store::KeyringSecretStore;
use session_core::{Error, ErrorChain, Secret, SecretKey, SecretStore, SessionId};
use session_testkit::doubles::MemoryKeychain;

const CANARY: &str = "CANARY-keyring-unit-a81c";

const SERVICE: &str = "session-sdk-test";

/// Values longer than 100 bytes are refused, as a platform limit would.
const LIMIT: usize = 100;

fn store() -> (KeyringSecretStore, MemoryKeychain) {
    let keychain = MemoryKeychain::new().with_value_limit(LIMIT);
    let store = KeyringSecretStore::new()
        .with_service(SERVICE)
        .with_credential_builder(keychain.builder());
    (store, keychain)
}

fn key(session: SessionId, name: &str) -> SecretKey {
    SecretKey::new(session, name).unwrap()
}

/// The users of every entry in `keychain`, sorted.
fn users(keychain: &MemoryKeychain) -> Vec<String> {
    let mut users: Vec<_> = keychain.entries().into_keys().map(|(_, u)| u).collect();
    users.sort();
    users
}

/// Stores `raw` under `user` in `keychain` directly, as damage done outside
/// the store would.
fn plant(keychain: &MemoryKeychain, user: &str, raw: &[u8]) {
    let credential = keychain.builder().build(None, SERVICE, user).unwrap();
    keyring::Entry::new_with_credential(credential)
        .set_secret(raw)
        .unwrap();
}

#[tokio::test]
async fn entries_are_named_by_service_session_and_name() {
    let (store, keychain) = store();
    assert_eq!(store.service(), "session-sdk-test");
    assert_eq!(KeyringSecretStore::new().service(), "session-sdk");
    let session = SessionId::new();
    store
        .put(&key(session, "token"), &Secret::new(CANARY))
        .await
        .unwrap();
    let stored = keychain.entries();
    assert_eq!(
        stored.get(&("session-sdk-test".to_owned(), format!("{session}/token"))),
        Some(&CANARY.as_bytes().to_vec())
    );
    assert_eq!(
        stored.get(&("session-sdk-test".to_owned(), format!("{session}/#index"))),
        Some(&br#"["token"]"#.to_vec())
    );
    assert_eq!(stored.len(), 2);
}

#[tokio::test]
async fn the_index_tracks_names_and_disappears_when_empty() {
    let (store, keychain) = store();
    let session = SessionId::new();
    // `.index` is a legal secret name and must not clash with the index.
    for name in ["b", ".index", "a"] {
        store
            .put(&key(session, name), &Secret::new(name))
            .await
            .unwrap();
    }
    store
        .put(&key(session, "a"), &Secret::new("again"))
        .await
        .unwrap();
    assert_eq!(store.names(session).await.unwrap(), [".index", "a", "b"]);
    assert_eq!(
        store.get(&key(session, ".index")).await.unwrap(),
        Some(Secret::new(".index"))
    );
    assert!(store.delete(&key(session, "b")).await.unwrap());
    assert!(!store.delete(&key(session, "b")).await.unwrap());
    assert_eq!(store.names(session).await.unwrap(), [".index", "a"]);
    assert_eq!(store.delete_session(session).await.unwrap(), 2);
    assert!(
        users(&keychain).is_empty(),
        "left behind: {:?}",
        users(&keychain)
    );
    assert_eq!(store.delete_session(session).await.unwrap(), 0);
}

#[tokio::test]
async fn delete_session_leaves_other_sessions_alone() {
    let (store, keychain) = store();
    let (s1, s2) = (SessionId::new(), SessionId::new());
    for s in [s1, s2] {
        for n in ["x", "y"] {
            store
                .put(&key(s, n), &Secret::new(format!("{s}{n}")))
                .await
                .unwrap();
        }
    }
    assert_eq!(store.delete_session(s1).await.unwrap(), 2);
    assert_eq!(
        users(&keychain),
        [format!("{s2}/#index"), format!("{s2}/x"), format!("{s2}/y")]
    );
}

#[tokio::test]
async fn errors_never_contain_values() {
    let (store, keychain) = store();
    let session = SessionId::new();
    // A non-UTF-8 value: keyring's BadEncoding carries the raw bytes.
    let mut raw = CANARY.as_bytes().to_vec();
    raw.push(0xff);
    plant(&keychain, &format!("{session}/token"), &raw);
    let err = store.get(&key(session, "token")).await.unwrap_err();
    assert!(matches!(err, Error::SecretStore { .. }), "{err:?}");
    let shown = format!("{err} {err:?} {}", ErrorChain(&err));
    assert!(!shown.contains(CANARY), "{shown}");
    assert!(shown.contains("not UTF-8"), "{shown}");
    assert!(shown.contains(&format!("{session}/token")), "{shown}");

    // A damaged index is reported, not silently reset.
    plant(&keychain, &format!("{session}/#index"), b"not json");
    let err = store.names(session).await.unwrap_err();
    assert!(err.to_string().contains("#index"), "{err}");
}

#[tokio::test]
async fn a_refused_value_is_not_left_in_the_index() {
    let (store, keychain) = store();
    let session = SessionId::new();
    store
        .put(&key(session, "small"), &Secret::new("ok"))
        .await
        .unwrap();
    let long = format!("{CANARY}{}", "x".repeat(LIMIT));
    let err = store
        .put(&key(session, "big"), &Secret::new(long))
        .await
        .unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("limit of 100"), "{shown}");
    assert!(!shown.contains(CANARY), "{shown}");
    assert_eq!(store.names(session).await.unwrap(), ["small"]);
    assert_eq!(
        users(&keychain),
        [format!("{session}/#index"), format!("{session}/small")]
    );
}

#[tokio::test]
async fn debug_shows_the_service_only() {
    let (store, keychain) = store();
    store
        .put(&key(SessionId::new(), "t"), &Secret::new(CANARY))
        .await
        .unwrap();
    let printed = format!("{store:?}");
    assert!(printed.contains("session-sdk-test"), "{printed}");
    assert!(!printed.contains(CANARY), "{printed}");
    // Nor does the keychain's own Debug show what it holds.
    let printed = format!("{keychain:?}");
    assert!(!printed.contains(CANARY), "{printed}");
}
