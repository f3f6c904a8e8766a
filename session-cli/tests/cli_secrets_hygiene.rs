//! Secrets never come back out (issue 11, D6): a service whose error text
//! echoes the request body puts the password in the provider's error; it
//! must not reach stderr, `workspace.json`, `show`, events or logs.

#![cfg(feature = "redfish")]

mod common;

use std::sync::Arc;

use session_core::redact::REDACTED;
use session_core::{
    ErrorChain, InMemorySecretStore, InMemoryWorkspace, Secret, SecretKey, SecretStore, Session,
    SessionEventKind, SessionManager, SessionStatus, SessionType, WorkspaceRepository,
};
use session_redfish::client::{PASSWORD_SECRET, RedfishConfig, RedfishProvider};
use session_testkit::CANARY;
use session_testkit::fakes::EchoService;

use common::*;

/// A password holding the canary and characters a JSON or form body
/// escapes, so an escaped echo is caught too.
fn password() -> String {
    format!("{CANARY}\"& x")
}

/// The echo service on a runtime of its own, for as long as it is held.
fn echo_service() -> (tokio::runtime::Runtime, EchoService) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let echo = rt.block_on(EchoService::start());
    (rt, echo)
}

/// Asserts that the service did get the password (so the checks below
/// could fail) and echoed it into its answer.
fn assert_echo_got_the_password(echo: &EchoService) {
    assert!(
        echo.bodies().iter().any(|b| b.contains(CANARY)),
        "the login carried the password to the echo service: {:?}",
        echo.bodies().len()
    );
}

#[test]
fn sessionctl_never_shows_a_password_the_service_echoes() {
    let (_rt, echo) = echo_service();
    let fx = Fixture::new();
    let mut add = fx.command(&[
        "add",
        "redfish",
        "leaky",
        "--endpoint",
        &echo.base_url(),
        "--username",
        "admin",
        "--allow-insecure-http",
    ]);
    add.env("SESSIONCTL_PASSPHRASE", PASSPHRASE);
    Fixture::run_with_stdin(add, format!("{}\n", password()).as_bytes()).ok();

    let start = Run::from(
        fx.command(&["start", "leaky"])
            .env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
            .env("SESSIONCTL_LOG", "trace")
            .output()
            .expect("run sessionctl"),
    );
    assert_echo_got_the_password(&echo);
    assert_eq!(start.code, Some(1), "{start:#?}");
    assert!(
        !start.stderr.contains(CANARY) && !start.stdout.contains(CANARY),
        "the password is not on stderr (error or trace logs): {start:#?}"
    );
    let line = start
        .stderr
        .lines()
        .rfind(|l| l.starts_with("sessionctl: "))
        .expect("an error line");
    assert!(
        line.contains("HTTP 400") && line.contains(REDACTED),
        "the error still says what happened, without the password: {line}"
    );

    let workspace = std::fs::read_to_string(fx.workspace()).expect("workspace");
    assert!(workspace.contains("lastError"), "{workspace}");
    assert!(
        !workspace.contains(CANARY),
        "not in workspace.json: {workspace}"
    );
    for args in [["show", "leaky"].as_slice(), &["show", "leaky", "--json"]] {
        let shown = fx.run(args);
        assert!(shown.ok().contains("HTTP 400"), "{shown:#?}");
        assert!(!shown.stdout.contains(CANARY), "not in show: {shown:#?}");
    }
}

/// The manager scrubs the password from the error it returns, the
/// `last_error` it records, the event it publishes and its logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manager_scrubs_an_echoed_password_everywhere() {
    let logs = session_testkit::capture_logs();
    let echo = EchoService::start().await;
    let repo = Arc::new(InMemoryWorkspace::new());
    let store: Arc<dyn SecretStore> = Arc::new(InMemorySecretStore::new());
    let manager = SessionManager::builder()
        .repository(repo.clone())
        .secrets(store.clone())
        .provider(Arc::new(RedfishProvider::new()))
        .build()
        .expect("manager");
    let config = RedfishConfig::new(echo.base_url(), "admin").with_allow_insecure_http(true);
    let session = Session::new("leaky", SessionType::Redfish)
        .expect("session")
        .with_config(&config)
        .expect("config");
    let key = SecretKey::new(session.session_id, PASSWORD_SECRET).expect("key");
    store
        .put(&key, &Secret::new(password()))
        .await
        .expect("password");
    let session = manager.add(session).await.expect("add");
    let mut events = manager.subscribe();

    let error = manager
        .start("leaky")
        .await
        .expect_err("the service refuses");
    assert_echo_got_the_password(&echo);
    let returned = ErrorChain(&error).to_string();
    assert!(!returned.contains(CANARY), "returned error: {returned}");
    assert!(returned.contains(REDACTED), "{returned}");
    assert!(!format!("{error:?}").contains(CANARY), "Debug: {error:?}");

    let stored = repo.get(session.session_id).await.expect("get");
    assert_eq!(stored.status(), SessionStatus::Inactive);
    let last = stored.last_error.expect("recorded");
    assert!(
        !last.message.contains(CANARY),
        "last_error: {}",
        last.message
    );

    let event = events.recv().await.expect("an event");
    let SessionEventKind::Failed { error, .. } = event.kind else {
        panic!("expected Failed, got {:?}", event.kind);
    };
    assert!(
        !ErrorChain(&error).to_string().contains(CANARY) && !format!("{error:?}").contains(CANARY),
        "event: {error:?}"
    );
    assert!(!logs.text().contains(CANARY), "logs: {}", logs.text());
}
