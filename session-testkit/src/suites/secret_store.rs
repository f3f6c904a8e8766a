//! A conformance suite every [`SecretStore`] must pass.
//!
//! Call [`secret_store_conformance`] from a test of the backend:
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use session_core::InMemorySecretStore;
//! session_testkit::suites::secret_store_conformance(&InMemorySecretStore::new()).await;
//! # });
//! ```
//!
//! Each check uses fresh random session ids and removes what it stored, so a
//! real keychain or a shared file can be used. A failing check panics with a
//! message naming the backend and what was wrong; messages show value
//! lengths, never values. The checks are also public one by one, for a
//! backend that documents a limit (for example a smaller maximum value size:
//! call [`check_unusual_values`] with its limit).
//!
//! With the feature `keyring`, `session_testkit::doubles::MemoryKeychain`
//! is a keychain in process memory for running this suite against
//! `KeyringSecretStore`.

use std::fmt::Write as _;

use session_core::{ErrorChain, Result, Secret, SecretKey, SecretStore, SessionId};

/// The size of the long value [`secret_store_conformance`] stores: 64 KiB.
pub const LONG_VALUE_LEN: usize = 64 * 1024;

/// Runs every check below against `store`.
///
/// The store must start out without secrets for the random session ids the
/// checks create (any real store does).
pub async fn secret_store_conformance(store: &dyn SecretStore) {
    assert!(
        !store.backend().is_empty(),
        "backend() must name the backend"
    );
    check_roundtrip(store).await;
    check_overwrite(store).await;
    check_missing(store).await;
    check_delete_is_idempotent(store).await;
    check_namespacing(store).await;
    check_names_sorted(store).await;
    check_delete_session(store).await;
    check_sessions_listing(store).await;
    check_debug_hides_values(store).await;
    check_unusual_values(store, LONG_VALUE_LEN).await;
}

/// A value stored under a key is returned by `get` and listed by `names`.
pub async fn check_roundtrip(store: &dyn SecretStore) {
    let session = SessionId::new();
    let key = key(session, "token");
    let value = unique("roundtrip");
    ok(store, "put", store.put(&key, &value).await);
    expect_value(store, &key, Some(&value), "get after put").await;
    let names = ok(store, "names", store.names(session).await);
    assert_eq!(
        names,
        ["token"],
        "{}: names() after one put",
        store.backend()
    );
    cleanup(store, &[session]).await;
}

/// A second `put` under the same key replaces the value without adding a name.
pub async fn check_overwrite(store: &dyn SecretStore) {
    let session = SessionId::new();
    let key = key(session, "password");
    let (first, second) = (unique("first"), unique("second"));
    ok(store, "put", store.put(&key, &first).await);
    ok(store, "put again", store.put(&key, &second).await);
    expect_value(store, &key, Some(&second), "get after overwrite").await;
    // Writing the same value again is allowed and changes nothing.
    ok(store, "put the same value", store.put(&key, &second).await);
    expect_value(store, &key, Some(&second), "get after rewriting").await;
    let names = ok(store, "names", store.names(session).await);
    assert_eq!(
        names,
        ["password"],
        "{}: an overwrite must not add a second name",
        store.backend()
    );
    cleanup(store, &[session]).await;
}

/// Keys that were never written read as `None`; an unknown session has no names.
pub async fn check_missing(store: &dyn SecretStore) {
    let session = SessionId::new();
    expect_value(store, &key(session, "never"), None, "get of a missing key").await;
    let names = ok(store, "names", store.names(session).await);
    assert!(
        names.is_empty(),
        "{}: names() of an unknown session returned {names:?}",
        store.backend()
    );
    // A session with other secrets still has no value under a new name.
    ok(
        store,
        "put",
        store.put(&key(session, "present"), &unique("p")).await,
    );
    expect_value(
        store,
        &key(session, "absent"),
        None,
        "get of a sibling name",
    )
    .await;
    cleanup(store, &[session]).await;
}

/// `delete` returns `true` once, then `false`, and the value is gone.
pub async fn check_delete_is_idempotent(store: &dyn SecretStore) {
    let session = SessionId::new();
    let key = key(session, "doomed");
    let keep = self::key(session, "kept");
    let kept = unique("kept");
    ok(store, "put", store.put(&key, &unique("doomed")).await);
    ok(store, "put", store.put(&keep, &kept).await);
    assert!(
        ok(store, "delete", store.delete(&key).await),
        "{}: delete of an existing secret must return true",
        store.backend()
    );
    expect_value(store, &key, None, "get after delete").await;
    assert!(
        !ok(store, "delete again", store.delete(&key).await),
        "{}: a second delete must return false",
        store.backend()
    );
    assert!(
        !ok(
            store,
            "delete never-stored",
            store.delete(&self::key(session, "never")).await
        ),
        "{}: delete of a key that never existed must return false",
        store.backend()
    );
    let names = ok(store, "names", store.names(session).await);
    assert_eq!(names, ["kept"], "{}: names() after delete", store.backend());
    expect_value(store, &keep, Some(&kept), "get of a sibling after delete").await;
    cleanup(store, &[session]).await;
}

/// Two sessions using the same name never see each other's values or names.
pub async fn check_namespacing(store: &dyn SecretStore) {
    let (one, two) = (SessionId::new(), SessionId::new());
    let (v1, v2) = (unique("one"), unique("two"));
    ok(store, "put", store.put(&key(one, "token"), &v1).await);
    ok(store, "put", store.put(&key(two, "token"), &v2).await);
    ok(
        store,
        "put",
        store.put(&key(two, "only-two"), &unique("x")).await,
    );
    expect_value(store, &key(one, "token"), Some(&v1), "session one's value").await;
    expect_value(store, &key(two, "token"), Some(&v2), "session two's value").await;
    expect_value(store, &key(one, "only-two"), None, "another session's name").await;
    let names = ok(store, "names", store.names(one).await);
    assert_eq!(
        names,
        ["token"],
        "{}: names() must list only that session's names",
        store.backend()
    );
    assert!(ok(store, "delete", store.delete(&key(one, "token")).await));
    expect_value(
        store,
        &key(two, "token"),
        Some(&v2),
        "the other session's value after delete",
    )
    .await;
    cleanup(store, &[one, two]).await;
}

/// `names` returns names sorted (byte order), each once.
pub async fn check_names_sorted(store: &dyn SecretStore) {
    let session = SessionId::new();
    let names = ["zeta", "alpha", "Mid-2", "mid.1", "_under", "0", "alpha-2"];
    for name in names {
        ok(
            store,
            "put",
            store.put(&key(session, name), &unique(name)).await,
        );
    }
    let mut expected: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    expected.sort();
    let listed = ok(store, "names", store.names(session).await);
    assert_eq!(
        listed,
        expected,
        "{}: names() must be sorted",
        store.backend()
    );
    cleanup(store, &[session]).await;
}

/// `delete_session` removes exactly that session's secrets and counts them.
pub async fn check_delete_session(store: &dyn SecretStore) {
    let (doomed, other) = (SessionId::new(), SessionId::new());
    for name in ["a", "b", "c"] {
        ok(
            store,
            "put",
            store.put(&key(doomed, name), &unique(name)).await,
        );
    }
    let (oa, ob) = (unique("oa"), unique("ob"));
    ok(store, "put", store.put(&key(other, "a"), &oa).await);
    ok(store, "put", store.put(&key(other, "b"), &ob).await);

    let removed = ok(store, "delete_session", store.delete_session(doomed).await);
    assert_eq!(
        removed,
        3,
        "{}: delete_session must return the number of secrets removed",
        store.backend()
    );
    for name in ["a", "b", "c"] {
        expect_value(store, &key(doomed, name), None, "get after delete_session").await;
    }
    let names = ok(store, "names", store.names(doomed).await);
    assert!(
        names.is_empty(),
        "{}: names() after delete_session returned {names:?}",
        store.backend()
    );
    expect_value(
        store,
        &key(other, "a"),
        Some(&oa),
        "another session after delete_session",
    )
    .await;
    expect_value(
        store,
        &key(other, "b"),
        Some(&ob),
        "another session after delete_session",
    )
    .await;
    let again = ok(store, "delete_session", store.delete_session(doomed).await);
    assert_eq!(
        again,
        0,
        "{}: a second delete_session must return 0",
        store.backend()
    );
    let empty = ok(
        store,
        "delete_session",
        store.delete_session(SessionId::new()).await,
    );
    assert_eq!(
        empty,
        0,
        "{}: delete_session of an unknown session must return 0",
        store.backend()
    );
    cleanup(store, &[other]).await;
}

/// `sessions` lists each session with secrets once, and drops it once its
/// secrets are gone; or the backend says it cannot list
/// ([`Error::Unsupported`](session_core::Error::Unsupported)).
pub async fn check_sessions_listing(store: &dyn SecretStore) {
    let (a, b) = (SessionId::new(), SessionId::new());
    for (session, name) in [(a, "x"), (a, "y"), (b, "x")] {
        ok(
            store,
            "put",
            store.put(&key(session, name), &unique(name)).await,
        );
    }
    match store.sessions().await {
        Err(session_core::Error::Unsupported { .. }) => {}
        listed => {
            let listed = ok(store, "sessions", listed);
            for session in [a, b] {
                assert_eq!(
                    listed.iter().filter(|s| **s == session).count(),
                    1,
                    "{}: sessions() must list {session} once: {listed:?}",
                    store.backend()
                );
            }
            assert!(
                listed.is_sorted(),
                "{}: sessions() must be sorted",
                store.backend()
            );
            ok(store, "delete_session", store.delete_session(a).await);
            let after = ok(store, "sessions", store.sessions().await);
            assert!(
                !after.contains(&a) && after.contains(&b),
                "{}: sessions() after delete_session: {after:?}",
                store.backend()
            );
        }
    }
    cleanup(store, &[a, b]).await;
}

/// `Debug` of the store never shows a stored value.
pub async fn check_debug_hides_values(store: &dyn SecretStore) {
    let session = SessionId::new();
    let canary = unique("CANARY-debug");
    ok(
        store,
        "put",
        store.put(&key(session, "canary"), &canary).await,
    );
    for printed in [format!("{store:?}"), format!("{store:#?}")] {
        assert!(
            !printed.contains(canary.expose()),
            "{}: Debug of the store shows a stored value: {printed}",
            store.backend()
        );
    }
    cleanup(store, &[session]).await;
}

/// Values with non-ASCII text, line breaks, quotes, backslashes, control
/// characters and `long_len` bytes come back byte for byte.
pub async fn check_unusual_values(store: &dyn SecretStore, long_len: usize) {
    let session = SessionId::new();
    let values = [
        ("unicode", "pässwörd — 日本語 — 🔑 — ﷽".to_owned()),
        ("newlines", "line one\nline two\r\nline three\n".to_owned()),
        (
            "json-like",
            r#"{"a": "b\"c", "d": [1, 2]} \\ \u0041 ' ` $HOME %s"#.to_owned(),
        ),
        ("control", "tab\there\u{0}nul\u{1b}[31mesc\u{7f}".to_owned()),
        ("spaces", "  padded both sides  ".to_owned()),
        ("long", long_value(long_len)),
    ];
    for (name, value) in &values {
        let key = key(session, name);
        let value = Secret::new(value.clone());
        ok(store, &format!("put {name}"), store.put(&key, &value).await);
        expect_value(store, &key, Some(&value), &format!("{name} value")).await;
    }
    cleanup(store, &[session]).await;
}

/// Exactly `len` bytes mixing ASCII, 2-, 3- and 4-byte characters and newlines.
fn long_value(len: usize) -> String {
    const PATTERN: &str = "abc-ü-€-🔑\n";
    let mut value = String::with_capacity(len);
    let mut i = 0usize;
    while value.len() + PATTERN.len() + 8 <= len {
        let _ = write!(value, "{:07}{PATTERN}", i % 10_000_000);
        i += 1;
    }
    while value.len() < len {
        value.push('x');
    }
    value
}

fn key(session: SessionId, name: &str) -> SecretKey {
    SecretKey::new(session, name).expect("the suite's secret names are valid")
}

/// A value no other check or run uses.
fn unique(label: &str) -> Secret {
    Secret::new(format!("{label}-{}", SessionId::new()))
}

fn ok<T>(store: &dyn SecretStore, what: &str, result: Result<T>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("{}: {what} failed: {}", store.backend(), ErrorChain(&e)),
    }
}

async fn expect_value(
    store: &dyn SecretStore,
    key: &SecretKey,
    expected: Option<&Secret>,
    what: &str,
) {
    let got = ok(store, what, store.get(key).await);
    let len = |v: Option<&Secret>| v.map(|s| s.expose().len());
    assert!(
        got.as_ref() == expected,
        "{}: {what} ({key}): expected {}, got {}",
        store.backend(),
        describe(len(expected)),
        describe(len(got.as_ref())),
    );
}

fn describe(len: Option<usize>) -> String {
    match len {
        Some(len) => format!("a value of {len} bytes"),
        None => "no value".to_owned(),
    }
}

async fn cleanup(store: &dyn SecretStore, sessions: &[SessionId]) {
    for session in sessions {
        ok(
            store,
            "delete_session",
            store.delete_session(*session).await,
        );
    }
}
