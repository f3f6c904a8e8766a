//! The PostgreSQL test peer starts, takes a password login on 127.0.0.1
//! only, and is gone when dropped.

use std::process::Command;

use session_testkit::peers::postgres::{self, PostgresServer};
use session_testkit::peers::require_peer;

fn psql(
    server: &PostgresServer,
    bin: &std::path::Path,
    password: &str,
    sql: &str,
) -> std::process::Output {
    Command::new(bin.join("psql"))
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .arg(server.url())
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "5")
        .output()
        .expect("run psql")
}

#[test]
fn a_cluster_starts_takes_a_password_login_and_stops_on_drop() {
    let Some(bin) = require_peer("postgresql", postgres::postgres_bin) else {
        return;
    };
    let server = PostgresServer::start(&bin);
    let out = psql(&server, &bin, server.password(), "select 40 + 2");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
    let wrong = psql(&server, &bin, "not-the-password", "select 1");
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("password authentication failed"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    let port = server.port();
    drop(server);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "stopped"
    );
}
