//! Redfish login sessions for `session-sdk`.
//!
//! **Status: the server and the session client are implemented.**
//!
//! - [`server`] (feature `server`, on by default): an embeddable Redfish
//!   SessionService server for BMC, aggregator and test-bed builders. It
//!   serves the service root, `SessionService`, the `Sessions` collection and
//!   `Session` resources over HTTPS (rustls, a self-signed CA generated with
//!   `rcgen` unless PEM files are given), with `X-Auth-Token` and HTTP Basic
//!   authentication, idle expiry driven by an injected
//!   [`session_core::Clock`], role-based session visibility and a read-only
//!   `AccountService`; configured by builder or TOML file; sessions in
//!   memory, optionally persisted through a workspace repository. It is
//!   checked by DMTF's `redfish-protocol-validator` in this crate's tests.
//! - [`client`] (feature `client`, on by default):
//!   - `client::RedfishProvider`, the `redfish` session type's
//!     [`session_core::SessionAction`]: discovery of `Links.Sessions`,
//!     `X-Auth-Token` login (token in the secret store, session URI from a
//!     same-origin `Location`), idempotent logout, make-before-break
//!     rotation (break-before-make when the session limit is reached), HTTP
//!     Basic when the service has no SessionService, TLS verification with
//!     a custom CA;
//!   - `client::RedfishClient`, authenticated requests to one service: one
//!     single-flight re-login on 401 with retry of idempotent methods only,
//!     keep-alive, listing and reading sessions.
//!
//! ```no_run
//! use session_core::Secret;
//! use session_redfish::server::{RedfishServer, Role};
//! # async fn demo() -> session_core::Result<()> {
//! let server = RedfishServer::builder()
//!     .account("admin", Secret::new("correct horse"), Role::Administrator)
//!     .build()?;
//! let handle = server.start().await?;
//! println!("{} (trust {:?})", handle.base_url(), handle.ca_pem());
//! handle.shutdown().await;
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "server")]
pub mod server;
