//! The names of an `azure` session's secrets in the
//! [`SecretStore`](session_core::SecretStore).
//!
//! Each is kept under the session's id
//! (`SecretKey::new(session.session_id, name)`), so removing a session
//! removes its secrets and two sessions never share one. None of them is
//! ever written to the session's config, errors or logs.
//!
//! | name | holds | written by | removed by |
//! |---|---|---|---|
//! | [`CLIENT_SECRET`] | a service principal's client secret | the caller (`sessionctl add azure`) | the caller |
//! | [`REFRESH_TOKEN`] | the user's refresh token | start and rotate, when Entra issues one; [`AzureSessionCredential`](crate::AzureSessionCredential) when a refresh rotates it; the caller for [`CredentialKind::RefreshToken`](crate::CredentialKind::RefreshToken) | stop (device-code sessions); a refused refresh |
//! | [`ACCESS_TOKEN`] | the current access token for the session's scope | start and rotate | stop; a refused refresh; a rotate that ends the session |

/// `azure-client-secret`: the client secret of a service principal
/// ([`CredentialKind::ClientSecret`](crate::CredentialKind::ClientSecret)).
/// The caller puts it there; start, rotate and
/// [`AzureSessionCredential`](crate::AzureSessionCredential) read it for the
/// client credentials grant. This crate never writes or removes it.
pub const CLIENT_SECRET: &str = "azure-client-secret";

/// `azure-refresh-token`: the user's refresh token
/// ([`CredentialKind::DeviceCode`](crate::CredentialKind::DeviceCode) and
/// [`CredentialKind::RefreshToken`](crate::CredentialKind::RefreshToken)).
/// A new one from the token endpoint replaces it; stop removes it for
/// device-code sessions, and a refused refresh (`invalid_grant`) removes it.
/// It is never written to the Azure CLI's files.
pub const REFRESH_TOKEN: &str = "azure-refresh-token";

/// `azure-access-token`: the session's current access token, for its
/// configured scope. Start and rotate write it; it seeds
/// [`AzureSessionCredential`](crate::AzureSessionCredential) and is what
/// `sessionctl azure env|exec` hands out; stop removes it.
pub const ACCESS_TOKEN: &str = "azure-access-token";
