//! AWS sessions for `session-sdk`.
//!
//! **Status: in progress.** Implemented so far:
//!
//! - [`IamUserProvider`] (`awsIamUser`: `sts:GetSessionToken` signed with the
//!   long-term key from the secret store) and [`ChainedRoleProvider`]
//!   (`awsIamRoleChained`: `sts:AssumeRole` signed with the parent session's
//!   credentials), both [`session_core::SessionAction`]s;
//! - [`AwsClientConfig`]: region, **endpoint override** (moto, VPC
//!   endpoints), retries and timeouts;
//! - [`SessionCredentialsProvider`]: a session as an `aws-sdk` credentials
//!   provider (starts or rotates it as needed);
//! - [`sink::SharedCredentialsFile`]: publishes to a profile of the shared
//!   credentials file (and the region to the config file) with lossless,
//!   locked, atomic edits of sections it owns;
//! - the credential type ([`AwsCredentials`]), input validation
//!   ([`validate`]), the sink interface ([`sink::CredentialSink`]) and a
//!   minimal [`mfa::MfaPrompt`].
//!
//! Still to come in this crate's issue: `awsIamRoleFederated` (SAML),
//! `awsSsoRole` (its test fake is in `session-testkit`), the
//! `credential_process` and env/exec sinks, the full MFA prompts, examples
//! and the bench; `awsSsm` sessions have their own issue scope.
//!
//! See the mapping table in [`session_core`] for what start, stop and rotate
//! mean for each type.

mod chained;
mod client;
mod credentials;
mod error;
pub mod federated;
mod iam_user;
pub mod mfa;
mod provide;
mod publish;
pub mod sink;
pub mod sso;
pub mod validate;

pub use chained::{ChainedRoleConfig, ChainedRoleProvider};
pub use client::{AwsClientConfig, AwsClientConfigBuilder, DEFAULT_REGION};
pub use credentials::{AwsCredentials, issued, long_term};
pub use iam_user::{IamUserConfig, IamUserProvider};
pub use provide::{DEFAULT_MIN_TTL, SessionCredentialsProvider};
pub use publish::CommonAwsConfig;
