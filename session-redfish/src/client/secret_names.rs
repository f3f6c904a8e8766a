//! The names of a `redfish` session's secrets in the
//! [`SecretStore`](session_core::SecretStore).
//!
//! Each is kept under the session's id
//! (`SecretKey::new(session.session_id, name)`), so removing a session
//! removes its secrets and two sessions never share one. Neither is ever
//! written to the session's config, errors, logs or `Debug` output.
//!
//! | name | holds | written by | removed by |
//! |---|---|---|---|
//! | [`PASSWORD`] | the account's password | the caller (`sessionctl add redfish`) | the caller |
//! | [`TOKEN`] | the `X-Auth-Token` of the current login session | start and rotate | stop; a start or rotate that falls back to HTTP Basic; a rotate that deletes the old session first |
//!
//! The crate's earlier names stay: [`PASSWORD_SECRET`](super::PASSWORD_SECRET)
//! and [`TOKEN_SECRET`](super::TOKEN_SECRET) are these constants.

/// `redfish-password`: the password of the account the provider logs in as
/// ([`RedfishConfig::username`](super::RedfishConfig::username)). The caller
/// puts it there; start and rotate send it in the login `POST` (or as HTTP
/// Basic credentials). This crate never writes or removes it.
pub const PASSWORD: &str = "redfish-password";

/// `redfish-token`: the `X-Auth-Token` the service issued for the session's
/// current login session. Start and rotate write it; stop removes it once
/// the remote session is deleted (a failed `DELETE` keeps it, so a retried
/// stop can still end the remote session).
pub const TOKEN: &str = "redfish-token";
