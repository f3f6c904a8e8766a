//! The names of a `boundary` session's secrets in the
//! [`SecretStore`](session_core::SecretStore).
//!
//! Each is kept under the session's id, so removing a session removes its
//! secrets. None is ever written to the session's config, errors, logs or
//! `Debug` output.
//!
//! | name | holds | written by | removed by |
//! |---|---|---|---|
//! | [`PASSWORD`] | the account's password | the caller (`sessionctl add boundary`) | the caller |
//! | [`auth_token`]`(controller, auth method)` | the auth token of a login, with its id and expiration | a login (start, rotate, a re-login after 401) | logout; a 401 with it |

use sha2::{Digest, Sha256};

/// `boundary-password`: the password of the account
/// ([`BoundaryConfig::login_name`](crate::BoundaryConfig::login_name)). The
/// caller puts it there; a login sends it. This crate never writes it.
pub const PASSWORD: &str = "boundary-password";

/// `boundary-token-<16 hex>`: the auth token of a login to `controller`
/// through `auth_method_id`. Keyed by both, so that a token of one
/// controller is never sent to another (the Boundary CLI keeps one token
/// for all, boundary#5571): changing a session's controller or auth method
/// makes it log in again.
pub fn auth_token(controller: &str, auth_method_id: &str) -> String {
    let digest = Sha256::digest(format!("{controller}\n{auth_method_id}"));
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("boundary-token-{hex}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_keyed_by_controller_and_auth_method() {
        let a = super::auth_token("https://a:9200", "ampw_1");
        assert_eq!(a, super::auth_token("https://a:9200", "ampw_1"));
        assert_ne!(a, super::auth_token("https://b:9200", "ampw_1"));
        assert_ne!(a, super::auth_token("https://a:9200", "ampw_2"));
        assert!(session_core::SecretKey::new(session_core::SessionId::new(), a).is_ok());
    }
}
