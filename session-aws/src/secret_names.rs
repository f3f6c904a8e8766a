//! Every name this crate keeps in the [`SecretStore`](session_core::SecretStore)
//! under a session id, and what it holds.
//!
//! | name | session types | holds | written by | read by |
//! |---|---|---|---|---|
//! | [`LONG_TERM_ACCESS_KEY_ID`] | `awsIamUser` | the IAM user's access key id (`AKIA…`) | the application, through [`AwsCredentials::store_long_term`] | start and rotate |
//! | [`LONG_TERM_SECRET_ACCESS_KEY`] | `awsIamUser` | its secret access key | the same | the same |
//! | [`ISSUED_ACCESS_KEY_ID`] | every AWS credential type | the temporary access key id (`ASIA…`) | start and rotate; removed by stop | [`AwsCredentials::load_issued`]: chained children (their parent's), [`SessionCredentialsProvider`] (and through it `sessionctl aws env`, `exec` and `credential-process`) |
//! | [`ISSUED_SECRET_ACCESS_KEY`] | the same | its secret access key | the same | the same |
//! | [`ISSUED_SESSION_TOKEN`] | the same | its session token | the same | the same |
//! | [`ISSUED_EXPIRATION`] | the same | its expiry, RFC 3339 | the same | the same |
//!
//! The issued set is written key id last and removed key id first, so a
//! reader that finds the key id finds a complete set. Nothing else of this
//! crate is kept there: SSO tokens are in the AWS CLI's cache
//! ([`sso::SsoTokenCache`]), MFA codes and SAML assertions are never
//! stored.
//!
//! [`AwsCredentials::store_long_term`]: crate::AwsCredentials::store_long_term
//! [`AwsCredentials::load_issued`]: crate::AwsCredentials::load_issued
//! [`SessionCredentialsProvider`]: crate::SessionCredentialsProvider
//! [`sso::SsoTokenCache`]: crate::sso::SsoTokenCache

/// The access key id of an IAM user's long-term key.
pub const LONG_TERM_ACCESS_KEY_ID: &str = "aws-access-key-id";

/// The secret access key of an IAM user's long-term key.
pub const LONG_TERM_SECRET_ACCESS_KEY: &str = "aws-secret-access-key";

/// The access key id of a session's issued (temporary) credentials.
pub const ISSUED_ACCESS_KEY_ID: &str = "aws-issued-access-key-id";

/// The secret access key of a session's issued credentials.
pub const ISSUED_SECRET_ACCESS_KEY: &str = "aws-issued-secret-access-key";

/// The session token of a session's issued credentials.
pub const ISSUED_SESSION_TOKEN: &str = "aws-issued-session-token";

/// When a session's issued credentials expire, RFC 3339.
pub const ISSUED_EXPIRATION: &str = "aws-issued-expiration";

#[cfg(test)]
mod tests {
    use super::*;

    /// The names are stored in users' secret stores: changing one loses
    /// what was kept under it.
    #[test]
    fn names_are_stable_distinct_and_valid() {
        let all = [
            (LONG_TERM_ACCESS_KEY_ID, "aws-access-key-id"),
            (LONG_TERM_SECRET_ACCESS_KEY, "aws-secret-access-key"),
            (ISSUED_ACCESS_KEY_ID, "aws-issued-access-key-id"),
            (ISSUED_SECRET_ACCESS_KEY, "aws-issued-secret-access-key"),
            (ISSUED_SESSION_TOKEN, "aws-issued-session-token"),
            (ISSUED_EXPIRATION, "aws-issued-expiration"),
        ];
        let session = session_core::SessionId::new();
        for (index, (name, stored)) in all.iter().enumerate() {
            assert_eq!(name, stored);
            assert!(all[..index].iter().all(|(other, _)| other != name));
            session_core::SecretKey::new(session, *name).expect("a valid secret name");
        }
    }
}
