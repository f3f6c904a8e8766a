//! AWS sessions for `session-sdk`.
//!
//! **Status: in progress.** This crate so far has the shared pieces: the
//! credential type ([`AwsCredentials`]), input validation ([`validate`]) and
//! the sink interface ([`sink::CredentialSink`]). The session types come in
//! the following commits of its issue:
//!
//! - `awsIamUser` (`sts:GetSessionToken`, optional MFA), `awsIamRoleChained`
//!   (`sts:AssumeRole` with the parent session's credentials),
//!   `awsIamRoleFederated` (`sts:AssumeRoleWithSAML` with a pluggable SAML
//!   assertion source) and `awsSsoRole` (SSO-OIDC device authorization and
//!   `sso:GetRoleCredentials`), each implementing
//!   [`session_core::SessionAction`];
//! - credential sinks: the shared credentials file (lossless edits),
//!   `credential_process`, and environment / exec;
//! - `awsSsm`: Systems Manager sessions and their data channel.
//!
//! See the mapping table in [`session_core`] for what start, stop and rotate
//! mean for each type.

mod credentials;
pub mod sink;
pub mod validate;

pub use credentials::{AwsCredentials, issued, long_term};
