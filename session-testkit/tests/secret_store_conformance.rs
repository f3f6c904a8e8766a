//! Runs the secret-store conformance suite against every backend, directly
//! and through `Box<dyn SecretStore>` and `Arc<dyn SecretStore>`, and checks
//! that concurrent writers of one encrypted file lose nothing.

use std::path::Path;
use std::sync::Arc;

use session_core::{
    EncryptedFileSecretStore, InMemorySecretStore, Secret, SecretKey, SecretStore, SessionId,
};
use session_testkit::suites::secret_store_conformance;

/// Argon2id costs small enough for tests (64 KiB, 1 pass, 1 lane).
fn file_store(path: &Path) -> EncryptedFileSecretStore {
    EncryptedFileSecretStore::open(path, Secret::new("conformance passphrase"))
        .expect("open the secret file")
        .with_kdf_params(64, 1, 1)
        .expect("valid test costs")
}

/// The suite against a store used directly, then through
/// `Box<dyn SecretStore>` and `Arc<dyn SecretStore>`; `store` makes a fresh
/// one for each use, told which ("direct", "boxed", "shared").
async fn conformance_direct_boxed_shared<S: SecretStore + 'static>(store: impl Fn(&str) -> S) {
    secret_store_conformance(&store("direct")).await;
    let boxed: Box<dyn SecretStore> = Box::new(store("boxed"));
    secret_store_conformance(&boxed).await;
    let shared: Arc<dyn SecretStore> = Arc::new(store("shared"));
    secret_store_conformance(&shared).await;
}

#[tokio::test]
async fn in_memory() {
    conformance_direct_boxed_shared(|_| InMemorySecretStore::new()).await;
}

#[tokio::test]
async fn encrypted_file() {
    let dir = tempfile::tempdir().unwrap();
    conformance_direct_boxed_shared(|which| file_store(&dir.path().join(format!("{which}.json"))))
        .await;
}

#[tokio::test]
async fn encrypted_file_reopened_after_the_suite() {
    // The suite leaves nothing behind; a new instance must agree.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.json");
    secret_store_conformance(&file_store(&path)).await;
    let reopened = file_store(&path);
    secret_store_conformance(&reopened).await;
}

fn key(session: SessionId, name: &str) -> SecretKey {
    SecretKey::new(session, name).unwrap()
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// One writer of the concurrency tests: 50 keys `{prefix}-00`..`{prefix}-49`
/// with values `{prefix}0`..`{prefix}49`, on its own runtime.
fn write_fifty_keys(path: &Path, session: SessionId, prefix: &str) {
    current_thread_runtime().block_on(async {
        let store = file_store(path);
        for i in 0..50 {
            store
                .put(
                    &key(session, &format!("{prefix}-{i:02}")),
                    &Secret::new(format!("{prefix}{i}")),
                )
                .await
                .unwrap();
        }
    });
}

/// Two store instances on one file (as two processes would have), each
/// writing 50 keys from its own thread and runtime at the same time.
#[test]
fn concurrent_instances_lose_no_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("secrets.json");
    let session = SessionId::new();
    let writers: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|prefix| {
            let path = path.clone();
            std::thread::spawn(move || write_fifty_keys(&path, session, prefix))
        })
        .collect();
    for writer in writers {
        writer.join().expect("writer thread");
    }
    assert_all_present(&path, session);
}

fn assert_all_present(path: &Path, session: SessionId) {
    current_thread_runtime().block_on(async {
        let store = file_store(path);
        let names = store.names(session).await.unwrap();
        let mut expected: Vec<String> = ["a", "b"]
            .iter()
            .flat_map(|p| (0..50).map(move |i| format!("{p}-{i:02}")))
            .collect();
        expected.sort();
        assert_eq!(
            names.len(),
            100,
            "lost writes: {} of 100 names",
            names.len()
        );
        assert_eq!(names, expected);
        for prefix in ["a", "b"] {
            for i in 0..50 {
                let value = store
                    .get(&key(session, &format!("{prefix}-{i:02}")))
                    .await
                    .unwrap();
                assert_eq!(
                    value,
                    Some(Secret::new(format!("{prefix}{i}"))),
                    "{prefix}-{i:02}"
                );
            }
        }
    });
}

const CHILD_PATH: &str = "SESSION_TESTKIT_CHILD_SECRET_FILE";
const CHILD_SESSION: &str = "SESSION_TESTKIT_CHILD_SESSION";
const CHILD_PREFIX: &str = "SESSION_TESTKIT_CHILD_PREFIX";

/// The same as above with two real processes: this test binary started twice
/// running [`child_writer`].
#[test]
fn concurrent_processes_lose_no_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.json");
    let session = SessionId::new();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|prefix| {
            std::process::Command::new(&exe)
                .args([
                    "child_writer",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_PATH, &path)
                .env(CHILD_SESSION, session.to_string())
                .env(CHILD_PREFIX, prefix)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "child writer failed: {}\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_all_present(&path, session);
}

/// Run only by [`concurrent_processes_lose_no_writes`].
#[test]
#[ignore = "helper process of concurrent_processes_lose_no_writes"]
fn child_writer() {
    let (Ok(path), Ok(session), Ok(prefix)) = (
        std::env::var(CHILD_PATH),
        std::env::var(CHILD_SESSION),
        std::env::var(CHILD_PREFIX),
    ) else {
        return;
    };
    let session: SessionId = session.parse().unwrap();
    write_fifty_keys(Path::new(&path), session, &prefix);
}

/// `KeyringSecretStore` over a shared in-memory credential store: this checks
/// the store's own logic (entry naming, the per-session index) against the
/// suite, not an OS keychain. See `keyring_platform_store` for that.
#[cfg(feature = "keyring")]
#[tokio::test]
async fn keyring_store_logic() {
    use session_core::secret_store::KeyringSecretStore;
    use session_testkit::doubles::MemoryKeychain;

    conformance_direct_boxed_shared(|_| {
        KeyringSecretStore::new()
            .with_service("session-sdk-conformance")
            .with_credential_builder(MemoryKeychain::new().builder())
    })
    .await;
}

/// Every check of the suite, one by one, with long values of `long_len`
/// bytes: for a real keychain that holds less than the suite's 64 KiB.
#[cfg(feature = "keyring")]
async fn every_check_with_long_values(store: &dyn SecretStore, long_len: usize) {
    use session_testkit::suites::secret_store as suite;

    suite::check_roundtrip(store).await;
    suite::check_overwrite(store).await;
    suite::check_missing(store).await;
    suite::check_delete_is_idempotent(store).await;
    suite::check_namespacing(store).await;
    suite::check_names_sorted(store).await;
    suite::check_delete_session(store).await;
    suite::check_debug_hides_values(store).await;
    suite::check_unusual_values(store, long_len).await;
}

/// The suite against the platform keychain (macOS Keychain, Windows
/// Credential Manager, Linux Secret Service). Needs an unlocked keychain, so
/// it runs only on request; `./scripts/test` runs it on Linux against GNOME
/// Keyring in a private D-Bus session:
/// `cargo test -p session-testkit --features keyring -- --ignored keyring_platform_store`.
///
/// Long values use 1000 bytes: Windows stores at most 2560 bytes of UTF-16.
#[cfg(feature = "keyring")]
#[tokio::test]
#[ignore = "needs an unlocked OS keychain"]
async fn keyring_platform_store() {
    use session_core::secret_store::KeyringSecretStore;

    let store = KeyringSecretStore::new().with_service("session-sdk-conformance");
    every_check_with_long_values(&store, 1000).await;
}

/// What a desktop user of `sessionctl` gets on Linux: values reach the
/// D-Bus Secret Service (not only the kernel keyring that caches them), as
/// a third-party client, libsecret's `secret-tool`, reads them back. Needs a
/// running, unlocked Secret Service: `./scripts/test` runs it with the
/// platform suite above inside `dbus-run-session` with GNOME Keyring.
#[cfg(all(feature = "keyring", target_os = "linux"))]
#[tokio::test]
#[ignore = "needs a running Secret Service (scripts/test starts one)"]
async fn keyring_secret_service_readback() {
    use session_core::secret_store::KeyringSecretStore;

    const SERVICE: &str = "session-sdk-readback";
    let store = KeyringSecretStore::new().with_service(SERVICE);
    let session = SessionId::new();
    let key = SecretKey::new(session, "token").unwrap();
    let value = format!("{}-secret-service", session_testkit::CANARY);
    store.put(&key, &Secret::new(value.clone())).await.unwrap();
    let lookup = |user: &str| {
        std::process::Command::new("secret-tool")
            .args(["lookup", "service", SERVICE, "username", user])
            .output()
            .expect("secret-tool (Debian package libsecret-tools) runs")
    };
    let user = format!("{session}/token");
    let found = lookup(&user);
    assert!(
        found.status.success(),
        "secret-tool lookup failed: {found:?}"
    );
    assert!(
        String::from_utf8_lossy(&found.stdout) == value,
        "the Secret Service holds the stored value"
    );
    store.delete(&key).await.unwrap();
    let gone = lookup(&user);
    assert!(
        !gone.status.success() && gone.stdout.is_empty(),
        "delete removed it from the Secret Service too"
    );
}

/// A store with one deliberate defect, to prove the suite catches it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Flaw {
    DeleteAlwaysTrue,
    NamesUnsorted,
    DebugShowsValues,
    DeleteSessionCountsZero,
    IgnoresSession,
    TruncatesLongValues,
    KeepsFirstValue,
    StripsCarriageReturns,
    ForgetsEverything,
}

struct Flawed {
    inner: InMemorySecretStore,
    flaw: Flaw,
    seen: std::sync::Mutex<Vec<String>>,
}

impl std::fmt::Debug for Flawed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = f.debug_struct("Flawed");
        if self.flaw == Flaw::DebugShowsValues {
            s.field("values", &self.seen.lock().unwrap());
        }
        s.finish()
    }
}

impl Flawed {
    fn key(&self, key: &SecretKey) -> SecretKey {
        if self.flaw == Flaw::IgnoresSession {
            SecretKey::new(SessionId::from_uuid(Default::default()), key.name()).unwrap()
        } else {
            key.clone()
        }
    }
    fn session(&self, session: SessionId) -> SessionId {
        if self.flaw == Flaw::IgnoresSession {
            SessionId::from_uuid(Default::default())
        } else {
            session
        }
    }
}

#[async_trait::async_trait]
impl SecretStore for Flawed {
    fn backend(&self) -> &'static str {
        "flawed"
    }
    async fn get(&self, key: &SecretKey) -> session_core::Result<Option<Secret>> {
        if self.flaw == Flaw::ForgetsEverything {
            return Ok(None);
        }
        self.inner.get(&self.key(key)).await
    }
    async fn put(&self, key: &SecretKey, value: &Secret) -> session_core::Result<()> {
        self.seen.lock().unwrap().push(value.expose().to_owned());
        let key = self.key(key);
        let value = match self.flaw {
            Flaw::TruncatesLongValues => {
                Secret::new(value.expose().chars().take(1000).collect::<String>())
            }
            Flaw::StripsCarriageReturns => Secret::new(value.expose().replace('\r', "")),
            Flaw::KeepsFirstValue if self.inner.get(&key).await?.is_some() => return Ok(()),
            _ => value.clone(),
        };
        self.inner.put(&key, &value).await
    }
    async fn delete(&self, key: &SecretKey) -> session_core::Result<bool> {
        let existed = self.inner.delete(&self.key(key)).await?;
        Ok(existed || self.flaw == Flaw::DeleteAlwaysTrue)
    }
    async fn names(&self, session: SessionId) -> session_core::Result<Vec<String>> {
        let mut names = self.inner.names(self.session(session)).await?;
        if self.flaw == Flaw::NamesUnsorted {
            names.reverse();
        }
        Ok(names)
    }
    async fn delete_session(&self, session: SessionId) -> session_core::Result<usize> {
        let removed = self.inner.delete_session(self.session(session)).await?;
        Ok(if self.flaw == Flaw::DeleteSessionCountsZero {
            0
        } else {
            removed
        })
    }
}

#[tokio::test]
async fn the_suite_catches_each_flaw() {
    eprintln!("the_suite_catches_each_flaw: the panics printed below are expected");
    for (flaw, expected) in [
        (Flaw::DeleteAlwaysTrue, "must return false"),
        (Flaw::NamesUnsorted, "must be sorted"),
        (
            Flaw::DebugShowsValues,
            "Debug of the store shows a stored value",
        ),
        (
            Flaw::DeleteSessionCountsZero,
            "must return the number of secrets removed",
        ),
        (Flaw::IgnoresSession, "session one's value"),
        (Flaw::TruncatesLongValues, "long value"),
        (Flaw::KeepsFirstValue, "get after overwrite"),
        (Flaw::StripsCarriageReturns, "newlines value"),
        (Flaw::ForgetsEverything, "get after put"),
    ] {
        let store = Arc::new(Flawed {
            inner: InMemorySecretStore::new(),
            flaw,
            seen: Default::default(),
        });
        let message = session_testkit::suites::failure_of(
            async move { secret_store_conformance(store.as_ref()).await },
            &format!("a store with {flaw:?}"),
        )
        .await;
        assert!(
            message.contains(expected),
            "{flaw:?}: unexpected failure: {message}"
        );
        assert!(
            message.contains("flawed"),
            "{flaw:?}: message must name the backend: {message}"
        );
    }
}

/// The suite against Linux kernel keyutils through the `keyring` crate, in
/// the process's session keyring. Keys are only readable by a process that
/// possesses that keyring, so run it inside a fresh one:
/// `keyctl session - cargo test -p session-testkit --features keyring -- --ignored keyring_linux_keyutils`.
///
/// keyutils holds at most 32767 bytes per key and, for a user other than
/// root, 20000 bytes in all by default, so long values use 8 KiB.
#[cfg(all(feature = "keyring", target_os = "linux"))]
#[tokio::test]
#[ignore = "needs a possessed session keyring (keyctl session -)"]
async fn keyring_linux_keyutils() {
    use session_core::secret_store::KeyringSecretStore;

    let store = KeyringSecretStore::new()
        .with_service("session-sdk-conformance")
        .with_credential_builder(keyring::keyutils::default_credential_builder());
    every_check_with_long_values(&store, 8 * 1024).await;
}
