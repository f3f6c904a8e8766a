//! Conformance suites, test doubles, third-party peers and readers, and
//! fakes shared by the `session-*` crates, by role:
//!
//! - [`suites`]: conformance suites every implementation of a `session-core`
//!   trait runs ([`SessionAction`](session_core::SessionAction),
//!   [`WorkspaceRepository`](session_core::WorkspaceRepository),
//!   [`SecretStore`](session_core::SecretStore)).
//! - [`doubles`]: in-process test doubles ([`TokenProvider`](doubles::TokenProvider),
//!   a scripted provider; `MemoryKeychain` with the feature `keyring`).
//! - [`peers`]: third-party processes the tests start (moto, sushy-emulator,
//!   oidc-provider), and [`require_peer`](peers::require_peer), which fails
//!   in CI when one is missing.
//! - [`readers`]: third-party code reading back the files we write
//!   (botocore, azure-cli).
//! - [`fakes`]: in-process fakes of cloud HTTP APIs that have no public
//!   emulator (the AWS IAM Identity Center fake), and a hostile service
//!   that echoes request bodies into its errors ([`fakes::EchoService`]).
//! - [`capture_logs`]: `tracing` output for leak checks; [`CANARY`] is the
//!   value to look for.

pub mod doubles;
pub mod fakes;
pub mod logs;
pub mod peers;
pub mod readers;
pub mod suites;

pub use logs::{LogCapture, capture_logs};

/// A value that must never appear in logs, output, files or `Debug` text.
pub const CANARY: &str = "CANARY-7f3a-never-print-me";
