//! AWS sessions for `session-sdk`.
//!
//! **Status: placeholder.** This crate compiles but does not implement any
//! session type yet; its issue fills it. It will contain:
//!
//! - `awsIamUser` (`sts:GetSessionToken`, optional MFA), `awsIamRoleChained`
//!   (`sts:AssumeRole` with the parent session's credentials),
//!   `awsIamRoleFederated` (`sts:AssumeRoleWithSAML` with a pluggable SAML
//!   assertion source) and `awsSsoRole` (SSO-OIDC device authorization and
//!   `sso:GetRoleCredentials`), each implementing
//!   [`session_core::SessionAction`];
//! - credential sinks: the shared credentials file (lossless edits),
//!   `credential_process`, and environment / exec;
//! - `awsSsm`: Systems Manager `StartSession` / `ResumeSession` /
//!   `TerminateSession` and the data channel that carries a shell or port
//!   forwarding.
//!
//! See the mapping table in [`session_core`] for what start, stop and rotate
//! mean for each type.
