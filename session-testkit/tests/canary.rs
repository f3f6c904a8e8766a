//! A canary secret goes through the secret store, the manager (as a token the
//! provider issues), a failing operation and trace-level logs, and is found
//! nowhere: not in logs, `Debug` text, error messages, events or files.
//! (The CLI side of this check is in session-cli's tests.)

use std::sync::Arc;
use std::time::Duration;

use session_core::{
    EncryptedFileSecretStore, ErrorChain, FsWorkspace, ManualClock, Secret, SecretKey, SecretStore,
    Session, SessionManager, SessionType, WorkspaceRepository,
};
use session_testkit::doubles::{TOKEN_SECRET, TokenConfig, TokenProvider};
use session_testkit::{CANARY, capture_logs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_never_leaks() {
    let logs = capture_logs();
    let dir = tempfile::tempdir().expect("dir");
    let workspace_path = dir.path().join("workspace.json");
    let secrets_path = dir.path().join("secrets.enc");
    let secrets = Arc::new(
        EncryptedFileSecretStore::open(&secrets_path, Secret::new("correct horse battery staple"))
            .expect("secret store")
            .with_kdf_params(8 * 1024, 1, 1)
            .expect("kdf params"),
    );
    let repo = Arc::new(FsWorkspace::open(&workspace_path).expect("workspace"));
    let clock = Arc::new(ManualClock::new(
        time::macros::datetime!(2030-01-01 0:00 UTC),
    ));
    let provider = Arc::new(
        TokenProvider::new(SessionType::Other("test".into()), Duration::from_secs(3600))
            .with_token_prefix(CANARY),
    );
    let manager = SessionManager::builder()
        .repository(repo.clone())
        .secrets(secrets.clone())
        .clock(clock.clone())
        .provider(provider.clone())
        .build()
        .expect("manager");
    let mut events = manager.subscribe();

    // A long-lived secret stored directly, as `sessionctl secret set` does.
    let session = manager
        .add(Session::new("canary", SessionType::Other("test".into())).expect("s"))
        .await
        .expect("add");
    let key = SecretKey::new(session.session_id, "password").expect("key");
    secrets
        .put(&key, &Secret::new(format!("{CANARY}-password")))
        .await
        .expect("put");

    // Issued tokens carry the canary: start, rotate, a failing rotate, stop.
    let mut printed = Vec::new();
    printed.push(format!(
        "{:?}",
        manager.start("canary").await.expect("start")
    ));
    clock.advance(Duration::from_secs(60));
    printed.push(format!(
        "{:?}",
        manager.rotate("canary").await.expect("rotate")
    ));
    let token = secrets
        .get(&SecretKey::new(session.session_id, TOKEN_SECRET).expect("key"))
        .await
        .expect("get")
        .expect("a token is stored");
    assert!(
        token.expose().starts_with(CANARY),
        "the canary really went through"
    );
    printed.push(format!("{token:?} {token}"));
    let mut failing = repo.get(session.session_id).await.expect("get");
    failing
        .config
        .set(&TokenConfig {
            fail_rotate: true,
            ..Default::default()
        })
        .expect("config");
    repo.update(failing).await.expect("update");
    let err = manager.rotate("canary").await.expect_err("fails");
    printed.push(format!("{err:?} {}", ErrorChain(&err)));
    printed.push(format!("{:?}", manager.stop("canary").await.expect("stop")));
    printed.push(format!("{manager:?} {secrets:?} {repo:?} {provider:?}"));
    while let Ok(event) = events.try_recv() {
        printed.push(format!("{event:?}"));
    }

    let logged = logs.text();
    assert!(
        logged.contains("issued a token"),
        "trace logging was captured: {logged}"
    );
    for (what, text) in [("logs", logged), ("printed values", printed.join("\n"))] {
        assert!(
            !text.contains(CANARY),
            "the canary leaked into {what}: {text}"
        );
    }
    for path in [
        &workspace_path,
        &secrets_path,
        &repo.backup_path().to_path_buf(),
    ] {
        let bytes = std::fs::read(path).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(CANARY),
            "the canary is in {}",
            path.display()
        );
    }
    assert!(
        secrets_path.exists() && workspace_path.exists(),
        "both files were written"
    );
}
