//! `session-sdk`: one model and one trait over local cloud credentials (AWS,
//! Azure), AWS Systems Manager sessions, HashiCorp Boundary sessions and
//! Redfish login sessions.
//!
//! This facade re-exports [`session_core`] at its root and each provider crate
//! as a module behind a cargo feature, so a program compiles only the
//! providers (and cloud SDKs) it uses:
//!
//! | feature | module | crate |
//! |---|---|---|
//! | (always) | crate root | `session-core`: model, [`SessionAction`], repositories, secret stores, [`SessionManager`] |
//! | `aws` | `aws` | `session-aws` |
//! | `aws-ssm` | `aws::ssm` | `session-aws`'s SSM sessions (`awsSsm`) |
//! | `aws-ssm-kms` | `aws::ssm::kms` | KMS-encrypted SSM sessions (aws-sdk-kms, AES-256-GCM) |
//! | `azure` | `azure` | `session-azure` |
//! | `azure-cli` | `azure::azure_cli` | `session-azure`'s Azure CLI sink |
//! | `redfish-client` | `redfish::client` | `session-redfish`'s client (the `redfish` session type) |
//! | `redfish-server` | `redfish::server` | `session-redfish`'s embeddable SessionService server |
//! | `redfish` | `redfish` | both of the above |
//! | `boundary` | `boundary` | `session-boundary` |
//! | `postgres` | `postgres` | `session-postgres`: a workspace shared on PostgreSQL |
//! | `keyring` | [`secret_store::KeyringSecretStore`] | the OS keychain as a secret store |
//!
//! No feature is on by default. `session-aws` (the four AWS credential
//! types, and SSM sessions), `session-redfish` (server and client),
//! `session-azure` (provider, `TokenCredential`, Azure CLI sink) and
//! `session-boundary` (Boundary sessions with a local `connect` proxy) are
//! implemented. See each crate's docs.
//!
//! [`providers`] registers the providers of this build with a
//! [`SessionManager`], each built on first use of its session type.
#![cfg_attr(feature = "aws", doc = "\nThis build includes the `aws` provider.")]
#![cfg_attr(feature = "azure", doc = "\nThis build includes the `azure` provider.")]
#![cfg_attr(
    feature = "redfish-client",
    doc = "\nThis build includes the `redfish` provider."
)]
#![cfg_attr(
    feature = "boundary",
    doc = "\nThis build includes the `boundary` provider."
)]
//!
//! # Quickstart
//!
//! `cargo run --example quickstart` runs a complete Redfish session life
//! cycle against the embedded SessionService server of `session-redfish`,
//! on a temporary workspace: no hardware or cloud account needed. In short:
//!
//! ```no_run
//! use std::sync::Arc;
//! use session_sdk::{FsWorkspace, Session, SessionManager, SessionType};
//! # async fn demo(my_provider: Arc<dyn session_sdk::SessionAction>) -> session_sdk::Result<()> {
//! let manager = SessionManager::builder()
//!     .repository(Arc::new(FsWorkspace::open_default()?))
//!     .provider(my_provider)
//!     .build()?;
//! manager.add(Session::new("dev", SessionType::Other("local".into()))?).await?;
//! let active = manager.start("dev").await?;
//! println!("{} is {}", active.session_name, active.status());
//! manager.stop("dev").await?;
//! # Ok(())
//! # }
//! ```

pub use session_core::*;

/// AWS credential and SSM sessions (`session-aws`).
#[cfg(feature = "aws")]
pub use session_aws as aws;
/// Azure sessions (`session-azure`).
#[cfg(feature = "azure")]
pub use session_azure as azure;
/// Boundary sessions (`session-boundary`).
#[cfg(feature = "boundary")]
pub use session_boundary as boundary;
/// A shared workspace on PostgreSQL (`session-postgres`).
#[cfg(feature = "postgres")]
pub use session_postgres as postgres;
/// Redfish sessions (`session-redfish`).
#[cfg(any(feature = "redfish-client", feature = "redfish-server"))]
pub use session_redfish as redfish;

pub mod providers;
