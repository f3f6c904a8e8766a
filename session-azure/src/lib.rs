//! Azure sessions for `session-sdk`.
//!
//! **Status: in progress.** Done: [`AzureConfig`] (tenant, client id,
//! subscription, authority host with sovereign clouds and a loopback-only
//! `http://` test option, scope, credential kind) and the Entra ID token
//! calls in [`oauth`]: client credentials, the device code flow (RFC 8628:
//! server or default interval on the injected clock, `slow_down`,
//! `authorization_pending`, `expired_token`, `access_denied` /
//! `authorization_declined`), refresh tokens, and Entra's error bodies
//! mapped onto [`session_core::Error`] categories. Still to come: the
//! `azure` [`session_core::SessionAction`], the `azure_core`
//! `TokenCredential` adapter, the env/exec sinks and the optional Azure CLI
//! file sink.
//!
//! The account's secrets live in the [`session_core::SecretStore`] under
//! [`CLIENT_SECRET`] and [`REFRESH_TOKEN`]; they never appear in the config,
//! errors or logs.

mod config;
// The token calls are used by the `azure` provider, which comes next; until
// then only their tests use them.
#[cfg_attr(not(test), allow(dead_code))]
pub mod oauth;

pub use config::{ARM_DEFAULT_SCOPE, AzureConfig, CredentialKind, PUBLIC_CLOUD_AUTHORITY};

/// The secret-store name of a service principal's client secret.
pub const CLIENT_SECRET: &str = "azure-client-secret";
/// The secret-store name of the user's refresh token.
pub const REFRESH_TOKEN: &str = "azure-refresh-token";
/// The secret-store name of the current access token.
pub const ACCESS_TOKEN: &str = "azure-access-token";
