//! The whole life of a session on a temporary workspace, with no cloud
//! account: `cargo run --example quickstart`.
//!
//! It defines a tiny provider (`LocalTokenProvider`) to show what a provider
//! implements, then drives it through the `SessionManager`: add, start,
//! rotate (by hand and by the scheduler), list, stop, remove. Finally it
//! prints the workspace file to show that no secret is in it.

use std::sync::Arc;
use std::time::Duration;

use session_sdk::{
    ActionContext, Capabilities, EncryptedFileSecretStore, FsWorkspace, Result, RotationPolicy,
    RotationScheduler, Secret, SecretKey, Session, SessionAction, SessionEventKind, SessionManager,
    SessionStatus, SessionType,
};

/// Issues a random bearer token valid for `lifetime`, kept in the secret store.
#[derive(Debug)]
struct LocalTokenProvider {
    lifetime: Duration,
}

impl LocalTokenProvider {
    async fn issue(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        let token = Secret::new(format!("local-{}", uuid_like()));
        ctx.secrets
            .put(&SecretKey::new(session.session_id, "token")?, &token)
            .await?;
        let mut active = session.clone();
        active.expiration = Some(ctx.clock.now() + self.lifetime);
        active.transition(SessionStatus::Active, ctx.clock.now())?;
        Ok(active)
    }
}

#[async_trait::async_trait]
impl SessionAction for LocalTokenProvider {
    fn session_type(&self) -> SessionType {
        SessionType::Other("localToken".into())
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::none().with_rotate(true)
    }
    async fn start(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        self.issue(ctx, session).await
    }
    async fn stop(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        ctx.secrets
            .delete(&SecretKey::new(session.session_id, "token")?)
            .await?;
        let mut stopped = session.clone();
        stopped.transition(SessionStatus::Inactive, ctx.clock.now())?;
        Ok(stopped)
    }
    async fn rotate(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        // One write replaces the old token: there is no moment without one.
        self.issue(ctx, session).await
    }
}

fn rfc3339(at: Option<time::OffsetDateTime>) -> String {
    at.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .unwrap_or_else(|| "never".into())
}

/// A random-looking id without another dependency.
fn uuid_like() -> String {
    session_sdk::SessionId::new().to_string()
}

#[tokio::main]
async fn main() -> Result<()> {
    let dir =
        tempfile::tempdir().map_err(|e| session_sdk::Error::storage(".", "temp dir", Some(e)))?;
    let workspace = Arc::new(FsWorkspace::open(dir.path().join("workspace.json"))?);
    let secrets = Arc::new(EncryptedFileSecretStore::open(
        dir.path().join("secrets.enc"),
        Secret::new("quickstart passphrase"),
    )?);
    let manager = SessionManager::builder()
        .repository(workspace.clone())
        .secrets(secrets)
        .provider(Arc::new(LocalTokenProvider {
            lifetime: Duration::from_secs(3),
        }))
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

    manager
        .add(Session::new("dev-api", SessionType::Other("localToken".into()))?.with_region("local"))
        .await?;
    println!("workspace: {}", workspace.path().display());

    let active = manager.start("dev-api").await?;
    println!(
        "started: {} is {}, expires {}",
        active.session_name,
        active.status(),
        rfc3339(active.expiration)
    );

    let rotated = manager.rotate("dev-api").await?;
    println!("rotated by hand: expires {}", rfc3339(rotated.expiration));

    // The scheduler rotates before expiry: 3 s tokens, 2 s window.
    let scheduler = RotationScheduler::spawn(
        manager.clone(),
        RotationPolicy::default()
            .with_window(Duration::from_secs(2))
            .with_jitter(Duration::ZERO),
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    scheduler.shutdown().await;

    for session in manager.list().await? {
        println!(
            "list: {} {} {} revision {}",
            session.session_name,
            session.session_type,
            session.status(),
            session.revision()
        );
    }

    println!("workspace file while active (the token is in the secret store, never here):");
    let text = std::fs::read_to_string(workspace.path())
        .map_err(|e| session_sdk::Error::storage(workspace.path(), "read", Some(e)))?;
    println!("{text}");

    let stopped = manager.stop("dev-api").await?;
    println!("stopped: {} is {}", stopped.session_name, stopped.status());
    manager.remove("dev-api").await?;
    println!("removed; {} sessions left", manager.list().await?.len());
    Ok(())
}
