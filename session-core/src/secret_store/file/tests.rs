//! Tests of the encrypted file store: the envelope and the store together.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::envelope::{
    Envelope, KDF_ALGORITHM, KDF_VERSION, KdfCosts, KdfHeader, SALT_LEN, Secrets,
};
use super::store::Inner;
use crate::secret_store::{SecretKey, SecretStore};
use crate::{EncryptedFileSecretStore, Error, Result, Secret, SessionId};

const CANARY: &str = "CANARY-file-store-4b9e1d";
const PASSPHRASE: &str = "correct horse battery staple";

fn open(path: &Path, passphrase: &str) -> Result<EncryptedFileSecretStore> {
    EncryptedFileSecretStore::open(path, Secret::new(passphrase))?.with_kdf_params(64, 1, 1)
}

fn key(session: SessionId, name: &str) -> SecretKey {
    SecretKey::new(session, name).unwrap()
}

async fn store_with_canary(dir: &Path) -> (PathBuf, SessionId) {
    let path = dir.join("secrets.json");
    let store = open(&path, PASSPHRASE).unwrap();
    let session = SessionId::new();
    store
        .put(&key(session, "token"), &Secret::new(CANARY))
        .await
        .unwrap();
    (path, session)
}

fn rewrite_envelope(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut value: serde_json::Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    edit(&mut value);
    fs::write(path, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
}

#[tokio::test]
async fn open_creates_nothing_until_the_first_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("secrets.json");
    let store = open(&path, PASSPHRASE).unwrap();
    assert_eq!(store.path(), path);
    assert!(
        store
            .get(&key(SessionId::new(), "a"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.names(SessionId::new()).await.unwrap().is_empty());
    assert!(!store.delete(&key(SessionId::new(), "a")).await.unwrap());
    assert!(
        !dir.path().join("sub").exists(),
        "nothing may be created before a write"
    );
    store
        .put(&key(SessionId::new(), "a"), &Secret::new("v"))
        .await
        .unwrap();
    assert!(path.is_file());
}

#[tokio::test]
async fn wrong_passphrase_is_refused_and_the_file_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let (path, session) = store_with_canary(dir.path()).await;
    let before = fs::read(&path).unwrap();

    let wrong = "not-the-passphrase-31337";
    let err = open(&path, wrong).unwrap_err();
    assert!(matches!(err, Error::SecretStore { .. }), "got {err:?}");
    let message = crate::ErrorChain(&err).to_string();
    assert!(
        message.contains("passphrase is wrong or the file was altered"),
        "{message}"
    );
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(!message.contains(wrong), "{message}");
    assert!(!format!("{err:?}").contains(wrong));
    assert_eq!(fs::read(&path).unwrap(), before, "the file must not change");

    // The right passphrase still works.
    let store = open(&path, PASSPHRASE).unwrap();
    assert_eq!(
        store.get(&key(session, "token")).await.unwrap(),
        Some(Secret::new(CANARY))
    );
}

#[tokio::test]
async fn tampered_ciphertext_is_detected_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let (path, session) = store_with_canary(dir.path()).await;
    let store = open(&path, PASSPHRASE).unwrap();
    rewrite_envelope(&path, |v| {
        let mut ct = BASE64.decode(v["ciphertext"].as_str().unwrap()).unwrap();
        ct[3] ^= 0x01;
        v["ciphertext"] = BASE64.encode(ct).into();
    });
    let tampered = fs::read(&path).unwrap();

    let err = open(&path, PASSPHRASE).unwrap_err();
    assert!(matches!(err, Error::SecretStore { .. }), "got {err:?}");
    assert!(err.to_string().contains(&path.display().to_string()));

    // An already open store fails too, and its writes leave the file alone.
    assert!(store.get(&key(session, "token")).await.is_err());
    assert!(
        store
            .put(&key(session, "other"), &Secret::new("x"))
            .await
            .is_err()
    );
    assert!(store.delete_session(session).await.is_err());
    assert_eq!(fs::read(&path).unwrap(), tampered);
}

#[tokio::test]
async fn tampered_header_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = store_with_canary(dir.path()).await;
    // A different salt (valid base64, right length) changes the key.
    rewrite_envelope(&path, |v| {
        v["header"]["kdf"]["salt"] = BASE64.encode([7u8; SALT_LEN]).into();
    });
    let err = open(&path, PASSPHRASE).unwrap_err();
    assert!(matches!(err, Error::SecretStore { .. }), "got {err:?}");
}

/// A header with costs inside the earlier bounds (256 MiB × 200 passes:
/// minutes per command in a release build, hours in a debug one) is refused
/// before any key is derived.
#[tokio::test]
async fn a_hostile_kdf_header_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = store_with_canary(dir.path()).await;
    rewrite_envelope(&path, |v| {
        v["header"]["kdf"]["m_cost"] = (256 * 1024).into();
        v["header"]["kdf"]["t_cost"] = 200.into();
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(open(&path, PASSPHRASE).map(|_| ()));
    });
    let result = rx
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("refused within 5 s, not after deriving a key");
    match result {
        Err(Error::Corrupt { message, .. }) => assert!(message.contains("m×t"), "{message}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn header_is_bound_as_associated_data() {
    // Fields that do not feed the KDF must still be authenticated: seal
    // with one header, then present the same ciphertext under a header
    // that differs only in a field the parser does not check.
    let dir = tempfile::tempdir().unwrap();
    let inner = Inner {
        path: dir.path().join("s.json"),
        lock_path: dir.path().join("s.json.lock"),
        passphrase: Secret::new(PASSPHRASE),
        key_cache: Mutex::new(None),
    };
    let kdf = KdfHeader {
        algorithm: KDF_ALGORITHM.to_owned(),
        version: KDF_VERSION,
        m_cost: 64,
        t_cost: 1,
        p_cost: 1,
        salt: BASE64.encode([1u8; SALT_LEN]),
    };
    let mut secrets = Secrets::new();
    secrets.insert("s/n".to_owned(), Secret::new(CANARY));
    let bytes = inner.seal(kdf, &secrets).unwrap();
    let sealed = inner.parse(&bytes).unwrap();
    assert_eq!(inner.decrypt(&sealed).unwrap(), secrets);

    let mut altered = sealed;
    altered.header.aead = "something-else".to_owned();
    assert!(matches!(
        inner.decrypt(&altered),
        Err(Error::SecretStore { .. })
    ));
}

#[tokio::test]
async fn malformed_file_is_corrupt_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.json");
    fs::write(&path, b"{\"header\": oops").unwrap();
    let err = open(&path, PASSPHRASE).unwrap_err();
    match &err {
        Error::Corrupt { path: p, line, .. } => {
            assert_eq!(p, &path);
            assert_eq!(*line, 1);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let text = err.to_string();
    assert_eq!(text.matches("line").count(), 1, "the position once: {text}");

    // A store opened before the damage must not reset the file either.
    fs::remove_file(&path).unwrap();
    let store = open(&path, PASSPHRASE).unwrap();
    fs::write(&path, b"garbage").unwrap();
    let err = store
        .put(&key(SessionId::new(), "a"), &Secret::new("v"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "got {err:?}");
    assert_eq!(fs::read(&path).unwrap(), b"garbage");
}

#[tokio::test]
async fn unsupported_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = store_with_canary(dir.path()).await;
    rewrite_envelope(&path, |v| v["header"]["version"] = 2.into());
    let err = open(&path, PASSPHRASE).unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { message, .. } if message.contains("version 2")),
        "got {err:?}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("private").join("secrets.json");
    let store = open(&path, PASSPHRASE).unwrap();
    store
        .put(&key(SessionId::new(), "a"), &Secret::new("v"))
        .await
        .unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600, "secret file");
    assert_eq!(
        mode(&dir.path().join("private")),
        0o700,
        "created directory"
    );
    assert_eq!(
        mode(&dir.path().join("private/secrets.json.lock")),
        0o600,
        "lock file"
    );

    // A rewrite of a file someone loosened makes it private again.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    store
        .put(&key(SessionId::new(), "b"), &Secret::new("w"))
        .await
        .unwrap();
    assert_eq!(mode(&path), 0o600);
    // No temp files are left behind.
    let names: Vec<_> = fs::read_dir(dir.path().join("private"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

/// D1 and D3 of the secret file: a symlinked file stays a link (its target
/// is updated), a read-only one is refused and left as it was.
#[cfg(unix)]
#[tokio::test]
async fn a_symlinked_file_stays_a_link_and_a_read_only_one_is_refused() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("real")).unwrap();
    let link = dir.path().join("secrets.enc");
    symlink("real/t.enc", &link).unwrap();
    let store = open(&link, PASSPHRASE).unwrap();
    let (a, b) = (key(SessionId::new(), "a"), key(SessionId::new(), "b"));
    store.put(&a, &Secret::new("one")).await.unwrap();
    store.put(&b, &Secret::new("two")).await.unwrap();
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let through_target = open(&dir.path().join("real/t.enc"), PASSPHRASE).unwrap();
    assert_eq!(
        through_target.get(&b).await.unwrap().unwrap().expose(),
        "two"
    );

    let target = dir.path().join("real/t.enc");
    fs::set_permissions(&target, fs::Permissions::from_mode(0o400)).unwrap();
    let before = fs::read(&target).unwrap();
    let err = store
        .put(&key(SessionId::new(), "c"), &Secret::new("three"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
    assert_eq!(fs::read(&target).unwrap(), before);
    assert_eq!(
        fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        0o400
    );
}

#[tokio::test]
async fn a_second_instance_sees_the_first_ones_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.json");
    let first = open(&path, PASSPHRASE).unwrap();
    let second = open(&path, PASSPHRASE).unwrap();
    let session = SessionId::new();
    first
        .put(&key(session, "a"), &Secret::new("from-first"))
        .await
        .unwrap();
    assert_eq!(
        second.get(&key(session, "a")).await.unwrap(),
        Some(Secret::new("from-first"))
    );
    second
        .put(&key(session, "b"), &Secret::new("from-second"))
        .await
        .unwrap();
    assert_eq!(
        first.get(&key(session, "b")).await.unwrap(),
        Some(Secret::new("from-second"))
    );
    assert_eq!(first.names(session).await.unwrap(), ["a", "b"]);
    // A third instance opened afterwards verifies and reads both.
    let third = open(&path, PASSPHRASE).unwrap();
    assert_eq!(third.names(session).await.unwrap(), ["a", "b"]);
}

#[tokio::test]
async fn kdf_parameters_are_recorded_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (path, session) = store_with_canary(dir.path()).await;
    let envelope: Envelope = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        envelope.header.kdf.costs(),
        KdfCosts {
            m_cost: 64,
            t_cost: 1,
            p_cost: 1
        }
    );
    assert_eq!(
        BASE64.decode(&envelope.header.kdf.salt).unwrap().len(),
        SALT_LEN
    );

    // A store configured with other costs reads the file with its own
    // costs and keeps them (and the salt) when it writes.
    let other = EncryptedFileSecretStore::open(&path, Secret::new(PASSPHRASE))
        .unwrap()
        .with_kdf_params(128, 2, 1)
        .unwrap();
    other
        .put(&key(session, "more"), &Secret::new("x"))
        .await
        .unwrap();
    let after: Envelope = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert!(after.header == envelope.header);
    assert_ne!(
        after.nonce, envelope.nonce,
        "every write needs a fresh nonce"
    );
}

#[test]
fn invalid_parameters_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    let store = || EncryptedFileSecretStore::open(&path, Secret::new(PASSPHRASE)).unwrap();
    assert!(
        store().with_kdf_params(4, 1, 1).is_err(),
        "m below 8 KiB per lane"
    );
    assert!(
        store().with_kdf_params(64, 0, 1).is_err(),
        "zero iterations"
    );
    assert!(
        store().with_kdf_params(u32::MAX, 1, 1).is_err(),
        "absurd memory"
    );
    assert!(
        store().with_kdf_params(2 * 1024 * 1024, 1, 1).is_err(),
        "2 GiB: a failed allocation would abort the process"
    );
    assert!(
        store().with_kdf_params(64 * 1024, 33, 1).is_err(),
        "64 MiB × 33 passes is over the work bound (seconds, not minutes)"
    );
    store()
        .with_kdf_params(64 * 1024, 3, 4)
        .expect("RFC 9106's second recommendation");
    store()
        .with_kdf_params(1024 * 1024, 2, 1)
        .expect("1 GiB × 2 is at the bound");
    assert!(matches!(
        EncryptedFileSecretStore::open(&path, Secret::new("")),
        Err(Error::InvalidInput { .. })
    ));
}

#[tokio::test]
async fn nothing_of_the_secret_reaches_the_file_or_debug() {
    let dir = tempfile::tempdir().unwrap();
    let (path, session) = store_with_canary(dir.path()).await;
    let raw = fs::read(&path).unwrap();
    let raw_text = String::from_utf8_lossy(&raw);
    for needle in [
        CANARY.to_owned(),
        BASE64.encode(CANARY),
        session.to_string(),
        "token".to_owned(),
        PASSPHRASE.to_owned(),
    ] {
        assert!(!raw_text.contains(&needle), "{needle:?} is in the file");
    }
    // Any 8-byte window of the canary would also be a leak.
    for window in CANARY.as_bytes().windows(8) {
        assert!(
            !raw.windows(8).any(|w| w == window),
            "part of the canary is in the file"
        );
    }

    let store = open(&path, PASSPHRASE).unwrap();
    let printed = format!("{store:?} {store:#?}");
    assert!(!printed.contains(PASSPHRASE), "{printed}");
    assert!(!printed.contains(CANARY), "{printed}");
    assert!(printed.contains("secrets.json"), "{printed}");
}

#[tokio::test]
async fn default_costs_are_owasp_like() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.json");
    let store = EncryptedFileSecretStore::open(&path, Secret::new(PASSPHRASE)).unwrap();
    store
        .put(&key(SessionId::new(), "a"), &Secret::new("v"))
        .await
        .unwrap();
    let envelope: Envelope = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        envelope.header.kdf.costs(),
        KdfCosts {
            m_cost: 19456,
            t_cost: 2,
            p_cost: 1
        }
    );
}

#[tokio::test]
async fn delete_and_delete_session_persist() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.json");
    let store = open(&path, PASSPHRASE).unwrap();
    let (s1, s2) = (SessionId::new(), SessionId::new());
    for (s, n) in [(s1, "a"), (s1, "b"), (s2, "a")] {
        store
            .put(&key(s, n), &Secret::new(format!("{s}-{n}")))
            .await
            .unwrap();
    }
    assert!(store.delete(&key(s1, "a")).await.unwrap());
    assert_eq!(store.delete_session(s1).await.unwrap(), 1);
    let reopened = open(&path, PASSPHRASE).unwrap();
    assert!(reopened.names(s1).await.unwrap().is_empty());
    assert_eq!(
        reopened.get(&key(s2, "a")).await.unwrap(),
        Some(Secret::new(format!("{s2}-a")))
    );
}
