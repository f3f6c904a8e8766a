//! A HashiCorp Boundary session, as `boundary connect` opens one: `connect`
//! logs in with the password from the secret store, authorizes a session
//! to the target, and starts a local listener whose connections go through
//! the session's worker to the target; `stop` cancels the session and
//! closes the listener.
//!
//! It runs against the fake Boundary of `session-testkit` on 127.0.0.1 (a
//! controller with `boundary dev`'s auth method, account and target, a
//! worker, and an echo server as the target), so no Boundary is needed:
//!
//! ```sh
//! cargo run --example boundary_connect --features boundary
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use session_sdk::boundary::{BoundaryConfig, BoundaryProvider, BoundaryState, secret_names};
use session_sdk::{
    Error, InMemorySecretStore, InMemoryWorkspace, Secret, SecretKey, Session, SessionManager,
    SessionType,
};
use session_testkit::fakes::boundary::FakeBoundary;
use session_testkit::fakes::boundary::controller::{
    DEV_AUTH_METHOD_ID, DEV_LOGIN_NAME, DEV_PASSWORD, DEV_TARGET_ID,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);

fn io_error(what: &str, error: std::io::Error) -> Error {
    Error::provider_caused_by("example", "boundary_connect", what.to_owned(), error)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let fake = FakeBoundary::start().await;
    println!(
        "using the fake Boundary: controller {}, worker {}, target (an echo server) {}",
        fake.controller.url(),
        fake.worker.address(),
        fake.endpoint
    );

    let secrets = Arc::new(InMemorySecretStore::new());
    let manager = SessionManager::builder()
        .repository(Arc::new(InMemoryWorkspace::new()))
        .secrets(secrets.clone())
        .provider(Arc::new(BoundaryProvider::new()))
        .build()?;
    let config = BoundaryConfig::new(fake.controller.url(), DEV_AUTH_METHOD_ID, DEV_LOGIN_NAME)
        .with_target_id(DEV_TARGET_ID);
    let session = manager
        .add(Session::new("example-boundary", SessionType::Boundary)?.with_config(&config)?)
        .await?;
    // The password goes to the secret store, under the session's id; the
    // session's config never holds it.
    manager
        .secrets()
        .put(
            &SecretKey::new(session.session_id, secret_names::PASSWORD)?,
            &Secret::new(DEV_PASSWORD),
        )
        .await?;

    let (session, handle) = manager.connect(&session.session_id.to_string()).await?;
    let state: BoundaryState = session.state.get()?;
    let address: SocketAddr = handle.addresses()[0];
    println!(
        "{} ({}) is {}; Boundary session {} to {} through worker {}, listening on {address}",
        session.session_name,
        session.session_id,
        session.status(),
        state.session_id,
        state.target_id,
        state.worker_address,
    );

    let mut stream = TcpStream::connect(address)
        .await
        .map_err(|e| io_error("connect to the local port", e))?;
    let message = b"hello through Boundary\n";
    stream
        .write_all(message)
        .await
        .map_err(|e| io_error("write", e))?;
    let mut answer = vec![0u8; message.len()];
    tokio::time::timeout(WAIT, stream.read_exact(&mut answer))
        .await
        .map_err(|_| Error::Timeout {
            target: address.to_string(),
            after: WAIT,
        })?
        .map_err(|e| io_error("read", e))?;
    println!(
        "sent {} bytes, the target echoed {} bytes: {:?}",
        message.len(),
        answer.len(),
        String::from_utf8_lossy(&answer)
    );
    if let Some(remote) = fake.controller.session(&state.session_id) {
        println!(
            "on the controller, {} is {:?} with {} connection(s)",
            remote.id,
            remote.status,
            remote.connections.len()
        );
    }
    drop(stream);

    let stopped = manager.stop(&session.session_id.to_string()).await?;
    println!(
        "{} is {}; the connection ended: {:?}",
        stopped.session_name,
        stopped.status(),
        handle.end_reason()
    );
    // The worker told the controller; its terminator ends the session once
    // its connections are closed.
    fake.controller.sweep();
    match fake.controller.session(&state.session_id) {
        Some(remote) => println!(
            "on the controller, {} is {:?} (reason: {})",
            remote.id,
            remote.status,
            remote.termination_reason.as_deref().unwrap_or("none")
        ),
        None => println!("the controller no longer knows {}", state.session_id),
    }
    Ok(())
}
