//! An Azure service-principal session: client secret in the secret store,
//! start (client credentials), rotate, the session as an `azure_core`
//! `TokenCredential`, stop. Configured from the usual variables:
//!
//! ```sh
//! AZURE_TENANT_ID=… AZURE_CLIENT_ID=… AZURE_CLIENT_SECRET=… \
//!   cargo run --example azure_client_secret --features azure
//! ```
//!
//! `AZURE_AUTHORITY_HOST` selects a sovereign cloud. To try it with no Azure
//! account, against the test peer `oidc-provider` (installed by
//! `./scripts/test`; see `session_testkit::peers::oidc`):
//!
//! ```sh
//! echo '{"nodeModules": ".cache/peers/node/node_modules"}' > /tmp/oidc.json
//! sleep 600 | node session-testkit/peers/oidc/launcher.mjs /tmp/oidc.json &   # prints LISTENING <port>
//! AZURE_TENANT_ID=5e5510a0-7e57-4000-8000-00000000a2e1 AZURE_CLIENT_ID=confidential-client \
//! AZURE_CLIENT_SECRET=confidential-secret AZURE_AUTHORITY_HOST=http://127.0.0.1:<port> \
//! SESSION_AZURE_INSECURE_LOOPBACK_AUTHORITY=1 cargo run --example azure_client_secret --features azure
//! ```

use std::sync::Arc;

use session_sdk::azure::azure_core::credentials::TokenCredential;
use session_sdk::azure::{AzureConfig, AzureProvider, AzureSessionCredential, CLIENT_SECRET};
use session_sdk::{
    Error, InMemoryWorkspace, SecretKey, Session, SessionManager, SessionType, SystemClock,
};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (config, secret) = AzureConfig::from_env()?;
    let secret = secret.ok_or_else(|| {
        Error::invalid_input(
            "AZURE_CLIENT_SECRET",
            "is not set (this example signs in as an app)",
        )
    })?;
    let manager = SessionManager::builder()
        .repository(Arc::new(InMemoryWorkspace::new()))
        .clock(Arc::new(SystemClock))
        .provider(Arc::new(AzureProvider::builder().build()?))
        .build()?;
    let session = manager
        .add(Session::new("example-app", SessionType::Azure)?.with_config(&config)?)
        .await?;
    manager
        .secrets()
        .put(&SecretKey::new(session.session_id, CLIENT_SECRET)?, &secret)
        .await?;

    let active = manager.start(&session.session_id.to_string()).await?;
    println!(
        "started {} (expires {:?})",
        active.label(),
        active.expiration
    );
    let rotated = manager.rotate(&session.session_id.to_string()).await?;
    println!("rotated; now expires {:?}", rotated.expiration);

    // Any Azure SDK for Rust client takes this as Arc<dyn TokenCredential>.
    // It asks the manager to keep the session fresh (rotating it when its
    // token nears expiry) and never writes the session's secrets outside it.
    let credential: Arc<dyn TokenCredential> = Arc::new(AzureSessionCredential::new(
        manager.clone(),
        session.session_id.to_string(),
    ));
    let token = credential
        .get_token(&[config.scope()], None)
        .await
        .map_err(|e| Error::provider("azure", "example", e.to_string()))?;
    println!(
        "a token for {} until {} ({} characters, not printed)",
        config.scope(),
        token.expires_on,
        token.token.secret().len()
    );

    let stopped = manager.stop(&session.session_id.to_string()).await?;
    println!("stopped: {}", stopped.status());
    Ok(())
}
