//! Events across machines: two managers, each on its own connection to one
//! real PostgreSQL (as two machines would be), each with a provider
//! double; what one does, the other's subscribers see, marked as from
//! elsewhere, with nothing of its own echoed back.

use std::sync::Arc;
use std::time::Duration;

use session_core::{
    Error, EventOrigin, InMemorySecretStore, Operation, Secret, Session, SessionEvent,
    SessionEventKind, SessionManager, SessionStatus, SessionType, WorkspaceRepository,
};
use session_postgres::PgWorkspace;
use session_testkit::doubles::{TokenConfig, TokenProvider};
use session_testkit::peers::postgres::{self, PostgresServer};
use session_testkit::peers::require_peer;
use tokio::sync::broadcast;

fn server() -> Option<PostgresServer> {
    let bin = require_peer("postgresql", postgres::postgres_bin)?;
    Some(PostgresServer::start(&bin))
}

fn token_type() -> SessionType {
    SessionType::Other("token".into())
}

async fn manager(url: &str, password: &Secret) -> (SessionManager, PgWorkspace) {
    let workspace = PgWorkspace::connect(url, Some(password))
        .await
        .expect("connect");
    let manager = SessionManager::builder()
        .repository(Arc::new(workspace.clone()))
        .secrets(Arc::new(InMemorySecretStore::new()))
        .provider(Arc::new(TokenProvider::new(
            token_type(),
            Duration::from_secs(3600),
        )))
        .build()
        .expect("manager");
    (manager, workspace)
}

/// The next event, within 10 s.
async fn next(events: &mut broadcast::Receiver<SessionEvent>) -> SessionEvent {
    tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("an event within 10 s")
        .expect("receive")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_manager_sees_what_the_other_did() {
    let Some(server) = server() else { return };
    let password = Secret::new(server.password());
    let admin = PgWorkspace::connect(&server.url(), Some(&password))
        .await
        .expect("connect");
    admin
        .create_database_for_tests("events")
        .await
        .expect("create database");
    let url = server.url().replace("/postgres", "/events");
    let (here, here_ws) = manager(&url, &password).await;
    let (there, _) = manager(&url, &password).await;
    let mut seen_here = here.subscribe();
    assert!(here.follow_shared_events().await.expect("follow"));
    assert!(there.follow_shared_events().await.expect("follow"));

    let mut ok = Session::new("shared", token_type()).expect("session");
    ok.config.set(&TokenConfig::default()).expect("config");
    here_ws.insert(ok).await.expect("insert");
    let mut refused = Session::new("refused", token_type()).expect("session");
    refused
        .config
        .set(&TokenConfig {
            fail_start: true,
            ..Default::default()
        })
        .expect("config");
    here_ws.insert(refused).await.expect("insert");

    // Started, rotated, stopped there; a failed start there.
    there.start("shared").await.expect("start");
    there.rotate("shared").await.expect("rotate");
    there.stop("shared").await.expect("stop");
    assert!(matches!(
        there.start("refused").await,
        Err(Error::Unauthenticated { .. })
    ));
    let mut kinds = Vec::new();
    for _ in 0..4 {
        let event = next(&mut seen_here).await;
        assert!(
            matches!(event.origin, EventOrigin::Elsewhere { .. }),
            "{event:?}"
        );
        kinds.push((event.session_name.clone(), event.status, event.kind));
    }
    assert!(
        matches!(kinds[0], (ref n, SessionStatus::Active, SessionEventKind::Started) if n == "shared")
    );
    assert!(matches!(
        kinds[1],
        (_, SessionStatus::Active, SessionEventKind::Rotated)
    ));
    assert!(matches!(
        kinds[2],
        (_, SessionStatus::Inactive, SessionEventKind::Stopped)
    ));
    match &kinds[3] {
        (name, _, SessionEventKind::Failed { operation, error }) => {
            assert_eq!(name, "refused");
            assert_eq!(*operation, Operation::Start);
            assert_eq!(error.category(), "unauthenticated");
            assert!(matches!(error, Error::Elsewhere { .. }), "{error:?}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }

    // What happens here is published here once, as from here: the echo of
    // its own notification is not published again.
    here.start("shared").await.expect("start here");
    let own = next(&mut seen_here).await;
    assert_eq!(own.origin, EventOrigin::Here);
    assert!(matches!(own.kind, SessionEventKind::Started));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        matches!(
            seen_here.try_recv(),
            Err(broadcast::error::TryRecvError::Empty)
        ),
        "no echo of its own event"
    );

    // The connections that listen are cut (a restarted server, a network
    // blip): each process listens again, and later events arrive.
    let cut = tokio_postgres_kill_listeners(&url, &password).await;
    assert!(cut >= 2, "both listeners were cut ({cut})");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        there.rotate("shared").await.expect("rotate");
        match tokio::time::timeout(Duration::from_millis(500), seen_here.recv()).await {
            Ok(Ok(event)) => {
                assert!(matches!(event.kind, SessionEventKind::Rotated), "{event:?}");
                assert!(matches!(event.origin, EventOrigin::Elsewhere { .. }));
                break;
            }
            _ => assert!(
                tokio::time::Instant::now() < deadline,
                "no event arrived within 20 s of the listeners being cut"
            ),
        }
    }
}

/// Ends every backend that is listening for notifications; returns how
/// many. Done through an ordinary workspace connection's SQL: PgWorkspace
/// exposes none, so a plain client runs it.
async fn tokio_postgres_kill_listeners(url: &str, password: &Secret) -> i64 {
    let mut config: tokio_postgres::Config = url.parse().expect("url");
    config.password(password.expose());
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
              WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .expect("terminate");
    row.get(0)
}
