//! HashiCorp Boundary sessions for `session-sdk`.
//!
//! **Status: in progress (issue 16).** So far, each checked against the
//! golden vectors of `boundary.md` §7:
//! - [`token`]: the decoder of the authorization token (base58 +
//!   protobuf), with the session's Ed25519 key checked;
//! - [`handshake`]: the messages and close codes of the `connect`
//!   handshake with a worker, and the TOFU token.
//!
//! The `boundary` session type is not implemented yet: the controller REST
//! client (authorize-session, list, read, cancel) and the local proxy of
//! `boundary connect`, implementing [`session_core::SessionAction`] with a
//! live connection that `stop` closes, are to come.

pub mod api;
mod config;
pub mod handshake;
mod login;
mod provider;
pub mod proxy;
pub mod secret_names;
pub mod token;

pub use config::{BoundaryConfig, BoundaryState};
pub use login::PasswordPrompt;
pub use provider::BoundaryProvider;
pub use token::{AuthorizationData, SessionKey, TokenError};
