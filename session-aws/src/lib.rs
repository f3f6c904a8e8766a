//! AWS sessions for `session-sdk`.
//!
//! **Status:** the four AWS credential session types are done; `awsSsm`
//! sessions (feature `ssm`) work for shells and port forwarding (smux and
//! basic modes), resume in place after a loss, and may be KMS-encrypted
//! (feature `ssm-kms`); see the `ssm` module for what is not supported.
//!
//! | session type | provider | call |
//! |---|---|---|
//! | `awsIamUser` | [`IamUserProvider`] | `sts:GetSessionToken` signed with the long-term key from the secret store (optional MFA) |
//! | `awsIamRoleChained` | [`ChainedRoleProvider`] | `sts:AssumeRole` signed with the parent session's credentials |
//! | `awsIamRoleFederated` | [`FederatedRoleProvider`] | `sts:AssumeRoleWithSAML` with an assertion from a [`federated::SamlAssertionSource`] |
//! | `awsSsoRole` | [`SsoRoleProvider`] | SSO-OIDC device authorization (cache shared with the AWS CLI), `sso:GetRoleCredentials` |
//! | `awsSsm` | `ssm::SsmProvider` (feature `ssm`) | `ssm:StartSession` signed with the parent session's credentials or the default chain, then the data channel (a live session) |
//!
//! Around them:
//! - [`AwsClientConfig`]: region, **endpoint override** (moto, VPC
//!   endpoints), retries and timeouts; [`sso::SsoClientConfig`] for SSO;
//! - sinks ([`sink`]): [`sink::SharedCredentialsFile`] publishes keys to a
//!   profile of the shared credentials file, or a `credential_process`
//!   profile, with lossless, locked, atomic edits of the sections it owns;
//! - [`SessionCredentialsProvider`]: a session as an `aws-sdk` credentials
//!   provider (starts or rotates it as needed);
//! - MFA ([`mfa`]): terminal, command and static prompts, one prompt per
//!   device shared by concurrent requests;
//! - the four providers are [`CredentialSessionProvider`]s: each type only
//!   says how it gets credentials ([`IssueCredentials`]); storing,
//!   publishing and withdrawing them is shared;
//! - with the feature `ssm`, `ssm`: the `awsSsm` provider, the control
//!   plane, the data channel (with resume in place) and its codecs; with
//!   `ssm-kms` also `ssm::kms`;
//! - with the feature `serve`, `serve`: the session's credentials on
//!   127.0.0.1 as the ECS container credentials endpoint and an
//!   IMDSv2-compatible one, for programs that outlive the credentials;
//! - with the feature `console`, `console`: console sign-in URLs through
//!   the federation endpoint (`GetFederationToken` first for IAM users);
//! - with the feature `iam`, `access_keys`: rotation of an IAM user's
//!   long-term access key that never leaves the user without a working
//!   stored key;
//! - [`AwsCredentials`], the names of what is kept in the secret store
//!   ([`secret_names`]), input validation ([`validate`]).
//!
//! The AWS SDK logs the SSO bearer token at `TRACE` for the target
//! `aws_smithy_runtime::client::orchestrator`; applications must keep that
//! target at `DEBUG` or below (`sessionctl` does).
//!
//! See the mapping table in [`session_core`] for what start, stop and rotate
//! mean for each type.

#[cfg(feature = "iam")]
pub mod access_keys;
mod chained;
mod client;
pub mod config_import;
#[cfg(feature = "console")]
pub mod console;
mod credentials;
mod error;
pub mod federated;
mod iam_user;
mod leapp;
mod lifecycle;
pub mod mfa;
#[cfg(any(feature = "console", feature = "iam"))]
pub mod partition;
mod providers;
mod sdk_credentials;
pub mod secret_names;
#[cfg(feature = "serve")]
pub mod serve;
pub mod sink;
#[cfg(feature = "ssm")]
pub mod ssm;
pub mod sso;
mod subprocess;
pub mod validate;

pub use chained::{ChainedRoleConfig, ChainedRoleIssuer, ChainedRoleProvider};
pub use client::{AwsClientConfig, AwsClientConfigBuilder, DEFAULT_REGION};
pub use credentials::AwsCredentials;
pub use federated::{FederatedRoleConfig, FederatedRoleIssuer, FederatedRoleProvider};
pub use iam_user::{IamUserConfig, IamUserIssuer, IamUserProvider};
pub use leapp::LeappAwsMapper;
pub use lifecycle::{
    AwsSessionState, CommonAwsConfig, CredentialSessionProvider, IssueCredentials,
};
pub use providers::CredentialProviders;
pub use sdk_credentials::SessionCredentialsProvider;
pub use sso::{SsoRoleConfig, SsoRoleProvider};

/// The AWS STS SDK that [`AwsClientConfig::sts`] returns clients of, so a
/// program uses the same version as this crate.
pub use aws_sdk_sts;

/// The long-term key's secret names under their former path, for callers
/// that used it; [`secret_names`] has every name.
#[doc(hidden)]
pub mod long_term {
    pub use crate::secret_names::{
        LONG_TERM_ACCESS_KEY_ID as ACCESS_KEY_ID, LONG_TERM_SECRET_ACCESS_KEY as SECRET_ACCESS_KEY,
    };
}
