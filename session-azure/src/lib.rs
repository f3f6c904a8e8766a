//! Azure sessions for `session-sdk`: native OAuth 2.0 against Microsoft
//! Entra ID, and the session as an `azure_core` `TokenCredential`.
//!
//! - [`AzureConfig`]: tenant, client id, subscription, authority host (public
//!   cloud by default, sovereign clouds, a loopback-only `http://` option
//!   for test servers), scope (ARM `.default` by default), credential kind.
//! - [`oauth`]: the token calls: client credentials, the device code flow
//!   (RFC 8628: the server's interval or a default on the injected clock,
//!   `authorization_pending`, `slow_down`, `expired_token`,
//!   `access_denied` / `authorization_declined`), refresh; Entra's error
//!   bodies mapped onto [`session_core::Error`] categories.
//! - [`AzureProvider`], the `azure` [`session_core::SessionAction`]; user
//!   sign-ins record the [`SignedInAccount`].
//! - [`AzureSessionCredential`], an active session as an
//!   `azure_core::credentials::TokenCredential` (cached per scope set,
//!   renewed single-flight).
//! - `azure_cli` (feature `azure-cli`, off by default): sessions with
//!   [`AzureConfig::azure_cli`] write the Azure CLI's `azureProfile.json`
//!   and MSAL token cache, so `az` uses them, and remove it on stop.
//!
//! `sessionctl add azure` and `azure env|exec` use them.
//!
//! The account's secrets live in the [`session_core::SecretStore`] under
//! the names in [`secret_names`]: [`CLIENT_SECRET`] and [`REFRESH_TOKEN`],
//! the current access token under [`ACCESS_TOKEN`]; they never appear in the
//! config, errors or logs.

mod account;
#[cfg(feature = "azure-cli")]
pub mod azure_cli;
mod config;
mod leapp;
pub mod oauth;
mod provider;
pub mod secret_names;
mod token_credential;

pub use account::SignedInAccount;
/// The `azure_core` this crate implements `TokenCredential` for (use it, so
/// the versions match).
pub use azure_core;
pub use config::{
    ARM_DEFAULT_SCOPE, AZURE_CLI_ARM_SCOPE, AZURE_CLI_CLIENT_ID, AzureCliPublished, AzureConfig,
    AzureState, CredentialKind, PUBLIC_CLOUD_AUTHORITY,
};
pub use leapp::LeappAzureMapper;
pub use oauth::Token;
pub use provider::{AzureProvider, AzureProviderBuilder};
pub use secret_names::{ACCESS_TOKEN, CLIENT_SECRET, REFRESH_TOKEN};
pub use session_core::device_code::{DeviceCodePrompt, DeviceCodePrompter};
pub use token_credential::AzureSessionCredential;
