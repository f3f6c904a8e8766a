//! `PgWorkspace` against a real PostgreSQL server (session-testkit's peer:
//! a throwaway cluster on 127.0.0.1), through the repository conformance
//! suite directly, boxed and behind an `Arc`, plus what is particular to a
//! shared database.

use std::sync::Arc;
use std::time::Duration;

use session_core::{Error, Secret, Session, SessionType, WorkspaceRepository};
use session_postgres::PgWorkspace;
use session_testkit::peers::postgres::{self, PostgresServer};
use session_testkit::peers::require_peer;
use session_testkit::suites::repository_conformance;

fn server() -> Option<PostgresServer> {
    let bin = require_peer("postgresql", postgres::postgres_bin)?;
    Some(PostgresServer::start(&bin))
}

/// A new empty database on `server`, and its URL.
async fn database(server: &PostgresServer, name: &str) -> String {
    let admin = PgWorkspace::connect(&server.url(), Some(&Secret::new(server.password())))
        .await
        .expect("connect to the postgres database");
    admin
        .create_database_for_tests(name)
        .await
        .expect("create a database");
    server.url().replace("/postgres", &format!("/{name}"))
}

async fn workspace(server: &PostgresServer, name: &str) -> PgWorkspace {
    let url = database(server, name).await;
    PgWorkspace::connect(&url, Some(&Secret::new(server.password())))
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repository_suite_direct_boxed_and_shared() {
    let Some(server) = server() else { return };
    repository_conformance(&workspace(&server, "direct").await).await;
    let boxed: Box<dyn WorkspaceRepository> = Box::new(workspace(&server, "boxed").await);
    repository_conformance(boxed.as_ref()).await;
    let shared: Arc<dyn WorkspaceRepository> = Arc::new(workspace(&server, "shared").await);
    repository_conformance(shared.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_connections_see_each_other_and_conflict_on_the_same_revision() {
    let Some(server) = server() else { return };
    let url = database(&server, "two").await;
    let password = Secret::new(server.password());
    let a = PgWorkspace::connect(&url, Some(&password)).await.unwrap();
    let b = PgWorkspace::connect(&url, Some(&password)).await.unwrap();
    let stored = a
        .insert(Session::new("shared", SessionType::Redfish).unwrap())
        .await
        .unwrap();
    let seen = b.get(stored.session_id).await.unwrap();
    assert_eq!(seen, stored);
    let mut first = seen.clone();
    first.region = Some("eu-west-1".into());
    b.update(first).await.unwrap();
    let mut stale = stored.clone();
    stale.region = Some("us-east-1".into());
    let conflict = a.update(stale).await.unwrap_err();
    assert!(
        matches!(
            conflict,
            Error::Conflict {
                expected: 1,
                found: 2,
                ..
            }
        ),
        "{conflict:?}"
    );
    // A session lock held through one connection excludes the other.
    let held = a.lock_session(stored.session_id).await.unwrap();
    let waiting = tokio::time::timeout(
        Duration::from_millis(300),
        b.lock_session(stored.session_id),
    )
    .await;
    assert!(waiting.is_err(), "the second holder waits");
    drop(held);
    let _granted = tokio::time::timeout(Duration::from_secs(10), b.lock_session(stored.session_id))
        .await
        .expect("granted once released")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_or_url_is_a_clear_error_without_the_password() {
    let Some(server) = server() else { return };
    let error = PgWorkspace::connect(&server.url(), Some(&Secret::new("wrong-password-123")))
        .await
        .unwrap_err();
    let text = format!("{error} {error:?}");
    assert!(matches!(error, Error::Unavailable { .. }), "{error:?}");
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(!text.contains("wrong-password-123"), "{text}");
    let bad = PgWorkspace::connect("postgres://u:secret-in-url@127.0.0.1:notaport/db", None)
        .await
        .unwrap_err();
    let text = format!("{bad} {bad:?}");
    assert!(
        matches!(&bad, Error::InvalidInput { field, .. } if field == "database URL"),
        "{bad:?}"
    );
    assert!(!text.contains("secret-in-url"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_mark_is_seen_by_other_processes_and_gone_with_its_holder() {
    let Some(server) = server() else { return };
    let url = database(&server, "live").await;
    let password = Secret::new(server.password());
    let a = PgWorkspace::connect(&url, Some(&password)).await.unwrap();
    let b = PgWorkspace::connect(&url, Some(&password)).await.unwrap();
    let session = a
        .insert(Session::new("tunnel", SessionType::Boundary).unwrap())
        .await
        .unwrap();
    let other = a
        .insert(Session::new("other", SessionType::Boundary).unwrap())
        .await
        .unwrap();
    assert!(!b.is_held_elsewhere(session.session_id).await.unwrap());
    let mark = a
        .hold_live(session.session_id)
        .await
        .unwrap()
        .expect("a mark");
    assert!(b.is_held_elsewhere(session.session_id).await.unwrap());
    assert!(
        !b.is_held_elsewhere(other.session_id).await.unwrap(),
        "only that session"
    );
    let refused = b.hold_live(session.session_id).await.unwrap_err();
    assert!(
        refused.to_string().contains("connected in another process"),
        "{refused}"
    );
    drop(mark);
    let released = async {
        while b.is_held_elsewhere(session.session_id).await.unwrap() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), released)
        .await
        .expect("the mark goes with its holder's connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_is_migrated_once_by_concurrent_first_connects_and_a_newer_one_is_refused() {
    let Some(server) = server() else { return };
    let url = database(&server, "schema").await;
    let password = Secret::new(server.password());
    // Four processes' first connects at once: one migrates, none fails.
    let connects = (0..4).map(|_| {
        let url = url.clone();
        let password = password.clone();
        async move { PgWorkspace::connect(&url, Some(&password)).await }
    });
    let workspaces = futures_join_all(connects).await;
    for ws in &workspaces {
        assert!(ws.is_ok(), "{ws:?}");
    }
    let ws = workspaces.into_iter().next().unwrap().unwrap();
    ws.insert(Session::new("kept", SessionType::Redfish).unwrap())
        .await
        .unwrap();
    // A later connect finds the schema current and the data kept.
    let again = PgWorkspace::connect(&url, Some(&password)).await.unwrap();
    assert_eq!(again.list().await.unwrap().len(), 1);
    // A schema written by a newer build is refused, naming the versions.
    again.set_schema_version_for_tests(99).await.unwrap();
    let error = PgWorkspace::connect(&url, Some(&password))
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, Error::Storage { .. }), "{error:?}");
    assert!(text.contains("99") && text.contains("newer"), "{text}");
}

/// Awaits every future (no extra dependency for `join_all`).
async fn futures_join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.expect("joined"));
    }
    out
}
