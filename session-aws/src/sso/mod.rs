//! `awsSsoRole`: role credentials from AWS IAM Identity Center (SSO).
//!
//! - [`SsoTokenCache`]: the AWS CLI's token cache
//!   (`~/.aws/sso/cache/<sha1>.json`), shared with the AWS CLI, botocore and
//!   the Rust SDK: locked, atomic, lossless read-modify-write.
//! - [`SsoLogin`]: the token manager. Serves the cached token while it has
//!   more than 15 minutes left, else refreshes it (rotating the refresh
//!   token), else runs the OAuth device flow (RegisterClient with
//!   `sso:account:access`, StartDeviceAuthorization, the code shown through
//!   a [`DeviceCodePrompter`], CreateToken polls honouring `interval` and
//!   `SlowDown`). Sign-ins are single-flight per cache id, in the process
//!   and across processes (a lock file, then a re-read of the cache), so
//!   parallel callers cause one device authorization.
//! - [`SsoRoleProvider`]: the [`SessionAction`](session_core::SessionAction)
//!   of `awsSsoRole` sessions ([`SsoRoleConfig`]): GetRoleCredentials with
//!   the token, with one renewal and retry when the portal answers 401.
//! - [`SsoIntegration`]: lists the (account, role) pairs the user can sign
//!   in to, rate-limited, for creating sessions.
//! - [`SsoClientConfig`]: endpoint overrides (tests, VPC endpoints),
//!   retries and timeouts of the SSO-OIDC and portal clients.
//!
//! **Logging caveat**: this module never logs tokens, but the AWS SDK's own
//! `TRACE` log of each request (target
//! `aws_smithy_runtime::client::orchestrator`, "transmitting request")
//! prints the portal's `x-amz-sso_bearer_token` header in clear, because
//! the SDK's header redaction list lacks it. Keep that target at `DEBUG` or
//! below in any subscriber that may be shared or persisted.

mod cache;
mod client;
mod login;
mod provider;
mod sync;

#[doc(hidden)]
pub use cache::format_timestamp;
pub use cache::{DEFAULT_CACHE_LOCK_TIMEOUT, SsoToken, SsoTokenCache};
pub use client::{SsoClientConfig, SsoClientConfigBuilder};
pub use login::{
    ACCOUNT_ACCESS_SCOPE, DEFAULT_LOGIN_LOCK_TIMEOUT, REGISTRATION_REUSE_MARGIN, SsoLogin,
    SsoLoginKey, TOKEN_REFRESH_WINDOW,
};
pub use provider::{SsoRoleConfig, SsoRoleIssuer, SsoRoleProvider};
pub use session_core::device_code::{
    DeviceCodePrompt, DeviceCodePrompter, NonInteractivePrompter, StderrPrompter,
};
pub use sync::{SsoAssignment, SsoIntegration};
