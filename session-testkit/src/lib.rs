//! Conformance suites and test doubles shared by the `session-*` crates.
//!
//! - [`repository_conformance`]: every [`WorkspaceRepository`](session_core::WorkspaceRepository).
//! - [`secret_store_conformance`]: every [`SecretStore`](session_core::SecretStore).
//! - [`action_conformance`]: every [`SessionAction`](session_core::SessionAction),
//!   with an [`ActionFixture`] per provider.
//! - [`TokenProvider`]: a small provider for manager and scheduler tests.
//! - [`capture_logs`]: `tracing` output for leak checks; [`CANARY`] is the
//!   value to look for.
//! - [`peers`]: finding external test peers (fails in CI when missing).
//! - [`moto`]: the moto test peer ([`MotoServer`], a local STS/IAM endpoint)
//!   and [`Botocore`] (boto3 as a subprocess: moto client, independent reader).
//! - [`sushy`]: the sushy-emulator test peer ([`SushyEmulator`](sushy::SushyEmulator),
//!   a Redfish service with HTTP Basic auth and no `SessionService`).
//! - [`azure_cli`]: the Azure CLI's own code (`azure-cli-core`) reading back
//!   the files session-azure's Azure CLI sink writes.
//! - [`oidc`]: the oidc-provider test peer ([`OidcProvider`](oidc::OidcProvider),
//!   a local stand-in for Microsoft Entra ID: client credentials, device code,
//!   refresh token) and device-code approval helpers.
//!
//! Call the suites from `tests/`, not from `#[cfg(test)]` modules of the crate
//! under test, so that only one copy of `session-core` is compiled.

pub mod action;
pub mod azure_cli;
mod local_peer;
pub mod logs;
pub mod peers;
pub mod provider;
pub mod repository;
pub mod secret_store;

pub use action::{ActionFixture, CredentialProbe, action_conformance};
pub use logs::{LogCapture, capture_logs};
pub use provider::{TOKEN_SECRET, TokenConfig, TokenProvider};
pub use repository::repository_conformance;
pub use secret_store::secret_store_conformance;

/// A value that must never appear in logs, output, files or `Debug` text.
pub const CANARY: &str = "CANARY-7f3a-never-print-me";

pub mod moto;
pub mod oidc;
pub mod sushy;
pub use moto::{Botocore, MotoServer};

pub mod fakes;
