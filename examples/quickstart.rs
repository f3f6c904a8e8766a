//! The whole life of a real session with no hardware and no cloud account:
//! `cargo run --example quickstart`.
//!
//! It starts the embedded Redfish SessionService server of `session-redfish`
//! on 127.0.0.1 (HTTPS with a self-signed CA), then drives a `redfish`
//! session against it through the `SessionManager`: add, start (a real
//! X-Auth-Token login), rotate (a new session, then the old one deleted),
//! list, stop (DELETE), remove. The workspace is a temporary file and the
//! password and token live in an encrypted secrets file beside it; the
//! example prints the workspace file to show that no secret is in it.

use std::sync::Arc;

use session_redfish::client::{PASSWORD_SECRET, RedfishConfig, RedfishProvider};
use session_redfish::server::{RedfishServer, Role};
use session_sdk::{
    EncryptedFileSecretStore, FsWorkspace, Result, Secret, SecretKey, SecretStore, Session,
    SessionEventKind, SessionManager, SessionType,
};

fn rfc3339(at: Option<time::OffsetDateTime>) -> String {
    at.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .unwrap_or_else(|| "never".into())
}

#[tokio::main]
async fn main() -> Result<()> {
    // 1. A Redfish service to talk to: the embedded server, as a BMC would be.
    let server = RedfishServer::builder()
        .account(
            "admin",
            Secret::new("quickstart-password"),
            Role::Administrator,
        )
        .build()?
        .start()
        .await?;
    let ca_pem = server.ca_pem().unwrap_or_default().to_owned();
    println!("Redfish service: {}", server.base_url());

    // 2. A workspace and an encrypted secret store in a temporary directory.
    let dir =
        tempfile::tempdir().map_err(|e| session_sdk::Error::storage(".", "temp dir", Some(e)))?;
    let workspace = Arc::new(FsWorkspace::open(dir.path().join("workspace.json"))?);
    let secrets = Arc::new(EncryptedFileSecretStore::open(
        dir.path().join("secrets.enc"),
        Secret::new("quickstart passphrase"),
    )?);
    let manager = SessionManager::builder()
        .repository(workspace.clone())
        .secrets(secrets.clone())
        .provider(Arc::new(RedfishProvider::new()))
        .build()?;

    let mut events = manager.subscribe();
    tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            let what = match &event.kind {
                SessionEventKind::Failed { operation, error } => {
                    format!("{operation} failed: {error}")
                }
                kind => format!("{kind:?}"),
            };
            println!(
                "  event: {} -> {} ({what})",
                event.session_name, event.status
            );
        }
    });

    // 3. The session: endpoint and user in its config, the password in the
    //    secret store.
    let endpoint = server.base_url().trim_end_matches('/').to_owned();
    let endpoint = endpoint.trim_end_matches("/redfish/v1").to_owned();
    let session = manager
        .add(
            Session::new("demo-bmc", SessionType::Redfish)?
                .with_config(&RedfishConfig::new(endpoint, "admin").with_ca_pem(ca_pem))?,
        )
        .await?;
    secrets
        .put(
            &SecretKey::new(session.session_id, PASSWORD_SECRET)?,
            &Secret::new("quickstart-password"),
        )
        .await?;
    println!("workspace: {}", workspace.path().display());

    // 4. Start, rotate, list, stop, remove.
    let active = manager.start("demo-bmc").await?;
    println!(
        "started: {} is {}, session {}, idle expiry {}",
        active.session_name,
        active.status(),
        active.state.get_str("sessionUri").unwrap_or("?"),
        rfc3339(active.expiration)
    );
    let rotated = manager.rotate("demo-bmc").await?;
    println!(
        "rotated: now session {}",
        rotated.state.get_str("sessionUri").unwrap_or("?")
    );
    for session in manager.list().await? {
        println!(
            "list: {} {} {} revision {}",
            session.session_name,
            session.session_type,
            session.status(),
            session.revision()
        );
    }
    println!(
        "workspace file while active (the token is in the encrypted secret store, never here):"
    );
    let text = std::fs::read_to_string(workspace.path())
        .map_err(|e| session_sdk::Error::storage(workspace.path(), "read", Some(e)))?;
    println!("{text}");

    let stopped = manager.stop("demo-bmc").await?;
    println!("stopped: {} is {}", stopped.session_name, stopped.status());
    manager.remove("demo-bmc").await?;
    println!("removed; {} sessions left", manager.list().await?.len());
    server.shutdown().await;
    Ok(())
}
