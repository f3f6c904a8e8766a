//! TLS to a real PostgreSQL server (session-testkit's peer, started with
//! `ssl=on` and a `pg_hba.conf` that accepts TCP logins over TLS only, so
//! every connection that succeeds is encrypted): the URL's `sslmode`,
//! `sslrootcert`, `sslcert` and `sslkey` mean what they mean to libpq.

use session_core::{Error, Secret, Session, SessionType, WorkspaceRepository};
use session_postgres::PgWorkspace;
use session_testkit::peers::postgres::{self, PostgresServer, USER};
use session_testkit::peers::require_peer;

fn server() -> Option<PostgresServer> {
    let bin = require_peer("postgresql", postgres::postgres_bin)?;
    Some(PostgresServer::start_with_tls(&bin))
}

/// `postgres://USER@HOST:PORT/postgres?QUERY`.
fn url(server: &PostgresServer, host: &str, query: &str) -> String {
    format!(
        "postgres://{USER}@{host}:{}/postgres?{query}",
        server.port()
    )
}

async fn connect(server: &PostgresServer, url: &str) -> session_core::Result<PgWorkspace> {
    PgWorkspace::connect(url, Some(&Secret::new(server.password()))).await
}

/// A workspace that works: a session stored, read back, and locked (the
/// lock is held on a connection of its own, made the same way, as is the
/// one that follows shared events).
async fn works(workspace: &PgWorkspace, name: &str) {
    let stored = workspace
        .insert(Session::new(name, SessionType::Redfish).expect("session"))
        .await
        .expect("insert over TLS");
    let read = workspace.get(stored.session_id).await.expect("get");
    assert_eq!(read.session_name, name);
    let lock = workspace
        .lock_session(stored.session_id)
        .await
        .expect("a session lock over TLS");
    drop(lock);
    let events = workspace
        .shared_events()
        .await
        .expect("the events connection over TLS");
    assert!(events.is_some());
}

fn refused(result: session_core::Result<PgWorkspace>, what: &str) -> String {
    match result {
        Ok(_) => panic!("{what}: connected"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_certificates_are_checked_as_sslmode_says() {
    let Some(server) = server() else { return };
    let tls = server.tls().expect("TLS").clone();
    let ca = tls.ca_file.display().to_string();
    let other = tls.other_ca_file.display().to_string();

    // verify-full: the chain and the host name.
    let full = connect(
        &server,
        &url(
            &server,
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        ),
    )
    .await
    .expect("verify-full against the server's CA, by its name");
    works(&full, "verify-full").await;

    // The certificate names localhost, not 127.0.0.1.
    let by_address = url(
        &server,
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let message = refused(
        connect(&server, &by_address).await,
        "verify-full by address",
    );
    assert!(message.contains("certificate"), "{message}");
    // verify-ca checks the chain only.
    let chain_only = url(
        &server,
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={ca}"),
    );
    works(
        &connect(&server, &chain_only).await.expect("verify-ca"),
        "verify-ca",
    )
    .await;

    // Another CA: refused in both verifying modes.
    for mode in ["verify-full", "verify-ca"] {
        let wrong = url(
            &server,
            "localhost",
            &format!("sslmode={mode}&sslrootcert={other}"),
        );
        let message = refused(connect(&server, &wrong).await, mode);
        assert!(message.contains("certificate"), "{mode}: {message}");
    }
    // require, and the default (prefer), encrypt without checking (the
    // server takes TLS logins only, so these are encrypted).
    let require = connect(&server, &url(&server, "127.0.0.1", "sslmode=require"))
        .await
        .expect("require");
    works(&require, "require").await;
    let default = connect(&server, &url(&server, "127.0.0.1", "application_name=t"))
        .await
        .expect("the default, prefer");
    works(&default, "prefer").await;
    // …but a root certificate given with require is used, as libpq does.
    let require_other = url(
        &server,
        "localhost",
        &format!("sslmode=require&sslrootcert={other}"),
    );
    refused(
        connect(&server, &require_other).await,
        "require with another CA",
    );

    // Without TLS the server refuses the login.
    let message = refused(
        connect(&server, &url(&server, "127.0.0.1", "sslmode=disable")).await,
        "disable",
    );
    assert!(
        message.contains("no encryption") || message.contains("pg_hba"),
        "{message}"
    );

    // The key-value form, with a quoted path.
    let key_values = format!(
        "host=localhost port={} user={USER} dbname=postgres sslmode=verify-full sslrootcert='{ca}'",
        server.port()
    );
    works(
        &connect(&server, &key_values).await.expect("key-value"),
        "key-value",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_sent_and_the_server_checks_them() {
    let Some(server) = server() else { return };
    let tls = server.tls().expect("TLS").clone();
    let with = |cert: &std::path::Path, key: &std::path::Path| {
        url(
            &server,
            "localhost",
            &format!(
                "sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
                tls.ca_file.display(),
                cert.display(),
                key.display()
            ),
        )
    };
    let ours = with(&tls.client_cert_file, &tls.client_key_file);
    works(
        &connect(&server, &ours)
            .await
            .expect("our client certificate"),
        "client cert",
    )
    .await;
    // Signed by a CA the server does not trust: the server ends the
    // handshake.
    let foreign = with(&tls.foreign_cert_file, &tls.foreign_key_file);
    refused(
        connect(&server, &foreign).await,
        "a foreign client certificate",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tls_settings_are_refused_before_connecting_and_name_what_is_wrong() {
    let Some(server) = server() else { return };
    let cases = [
        ("sslmode=verify-everything", "sslmode \"verify-everything\""),
        (
            "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
            "sslrootcert /nonexistent/ca.pem",
        ),
        (
            "sslmode=require&sslrootcert=system",
            "needs sslmode=verify-full",
        ),
        (
            "sslcert=/nonexistent/c.pem",
            "sslcert and sslkey go together",
        ),
    ];
    for (query, expected) in cases {
        // The password in the URL never comes back in the error.
        let with_password = url(&server, "localhost", query).replace(
            &format!("{USER}@"),
            &format!("{USER}:{}@", server.password()),
        );
        match connect(&server, &with_password).await {
            Err(Error::InvalidInput { field, reason, .. }) => {
                assert_eq!(field, "database URL");
                assert!(reason.contains(expected), "{query}: {reason}");
                assert!(!reason.contains(server.password()), "{reason}");
            }
            other => panic!("{query}: {other:?}"),
        }
    }
}
