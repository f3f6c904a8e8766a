//! Connection hygiene of the started server: a client that opens TLS
//! connections and never sends a request cannot hold the server's file
//! descriptors. Idle connections (and slow request heads) are closed after
//! the idle time-out (as are requests whose body does not arrive in that
//! time), unfinished TLS handshakes after the handshake
//! time-out, and one client address holds at most
//! `max_connections_per_client` connections at a time.

mod common;

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use session_redfish::server::{RedfishServerConfig, RedfishServerHandle};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use common::*;

/// How long a test waits for the server to close a connection.
const CLOSE_WITHIN: Duration = Duration::from_secs(5);

fn connector(h: &RedfishServerHandle) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(h.ca_pem().unwrap().as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// A TLS connection with the handshake done and nothing sent.
async fn tls_connect(h: &RedfishServerHandle) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(h.local_addr()).await?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    tokio::time::timeout(CLOSE_WITHIN, connector(h).connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::other("the handshake hung"))?
}

/// Whether the server closes `io` (EOF or an error on read) within
/// [`CLOSE_WITHIN`].
async fn closed_by_server(io: &mut (impl AsyncRead + Unpin)) -> bool {
    let mut buf = [0u8; 256];
    matches!(
        tokio::time::timeout(CLOSE_WITHIN, io.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn idle_connections_are_closed_and_capped_per_client_address() {
    let (h, c) = start(
        builder()
            .idle_timeout(Duration::from_secs(1))
            .tls_handshake_timeout(Duration::from_secs(1))
            .max_connections_per_client(4),
    )
    .await;
    let mut idle = Vec::new();
    for i in 0..4 {
        idle.push(
            tls_connect(&h)
                .await
                .unwrap_or_else(|e| panic!("connection {i}: {e}")),
        );
    }
    // Beyond the cap, this address's new connections are closed at once.
    for i in 0..3 {
        assert!(
            tls_connect(&h).await.is_err(),
            "connection {} over the cap of 4 was accepted",
            i + 5
        );
    }
    // After the idle time-out the server has closed the idle ones...
    for (i, conn) in idle.iter_mut().enumerate() {
        assert!(
            closed_by_server(conn).await,
            "idle connection {i} still open"
        );
    }
    // ...and a fresh client is served.
    login(&h, &c, "admin", ADMIN_PW).await;
    h.shutdown().await;
}

/// Also checks that the TOML keys reach the server.
#[tokio::test]
async fn unfinished_handshakes_and_slow_request_heads_are_closed() {
    let config = RedfishServerConfig::from_toml(
        r#"
        idleTimeout = 1
        tlsHandshakeTimeout = 1
        maxConnectionsPerClient = 8
        [[accounts]]
        userName = "admin"
        role = "Administrator"
        passwordEnv = "P"
        "#,
        "redfish.toml",
    )
    .unwrap();
    let builder = config
        .into_builder_with_env(|_| Some(ADMIN_PW.to_owned()))
        .unwrap();
    let (h, c) = start(builder).await;
    // A TCP connection that never starts the TLS handshake.
    let mut silent = TcpStream::connect(h.local_addr()).await.unwrap();
    assert!(closed_by_server(&mut silent).await, "no handshake time-out");

    // A request head that never ends.
    let mut slow = tls_connect(&h).await.unwrap();
    slow.write_all(b"GET /redfish/v1/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    assert!(closed_by_server(&mut slow).await, "no header time-out");

    // A login body that never ends.
    let mut trickle = tls_connect(&h).await.unwrap();
    trickle
        .write_all(
            b"POST /redfish/v1/SessionService/Sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n\
              Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"UserName\"",
        )
        .await
        .unwrap();
    assert!(closed_by_server(&mut trickle).await, "no body time-out");

    login(&h, &c, "admin", ADMIN_PW).await;
    h.shutdown().await;
}

/// The defaults are documented constants; zero limits are refused, naming
/// the setting or key.
#[test]
fn defaults_are_bounded_and_zero_is_refused() {
    for (b, key) in [
        (builder().idle_timeout(Duration::ZERO), "idle_timeout"),
        (
            builder().tls_handshake_timeout(Duration::ZERO),
            "tls_handshake_timeout",
        ),
        (
            builder().max_connections_per_client(0),
            "max_connections_per_client",
        ),
    ] {
        let err = b.build().unwrap_err();
        assert!(err.to_string().contains(key), "{err}");
    }
    let err =
        RedfishServerConfig::from_toml("maxConnectionsPerClient = 0", "redfish.toml").unwrap_err();
    assert!(err.to_string().contains("maxConnectionsPerClient"), "{err}");

    use session_redfish::server::{
        DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS_PER_CLIENT, DEFAULT_TLS_HANDSHAKE_TIMEOUT,
    };
    assert!(DEFAULT_IDLE_TIMEOUT <= Duration::from_secs(120));
    assert!(DEFAULT_TLS_HANDSHAKE_TIMEOUT <= Duration::from_secs(30));
    assert!((1..=1024).contains(&DEFAULT_MAX_CONNECTIONS_PER_CLIENT));
}
