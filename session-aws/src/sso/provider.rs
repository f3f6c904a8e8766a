//! The `awsSsoRole` session provider.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use session_core::{
    ActionContext, Capabilities, Clock, Error, Result, Secret, Session, SessionType,
};
use time::OffsetDateTime;

use super::cache::SsoTokenCache;
use super::client::{SsoClientConfig, error_code, from_sdk};
use session_core::device_code::DeviceCodePrompter;

use super::login::{SsoLogin, SsoLoginKey};
use crate::AwsCredentials;
use crate::lifecycle::{CredentialSessionProvider, IssueCredentials, sealed};
use crate::sink::{CredentialSink, NoSink};
use crate::validate::{self, sso_region, sso_role_name, sso_session_name, start_url};

/// The settings of an `awsSsoRole` session, in its `config` (camelCase
/// keys). The [`CommonAwsConfig`](crate::CommonAwsConfig) keys (`profile`)
/// sit next to these.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SsoRoleConfig {
    /// The AWS access portal URL, e.g. `https://d-123.awsapps.com/start`.
    pub start_url: String,
    /// The region of the Identity Center instance.
    pub sso_region: String,
    /// The 12-digit account to get credentials for.
    pub account_id: String,
    /// The permission set (role) name in that account.
    pub role_name: String,
    /// The `sso-session` name: the sign-in is cached under it, shared with
    /// AWS CLI profiles using `sso_session = <name>`. Without it the cache
    /// is keyed by the start URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sso_session_name: Option<String>,
}

impl SsoRoleConfig {
    /// A config for `role_name` in `account_id` through the portal at
    /// `start_url` in `sso_region`.
    pub fn new(
        start_url: impl Into<String>,
        sso_region: impl Into<String>,
        account_id: impl Into<String>,
        role_name: impl Into<String>,
    ) -> Self {
        Self {
            start_url: start_url.into(),
            sso_region: sso_region.into(),
            account_id: account_id.into(),
            role_name: role_name.into(),
            sso_session_name: None,
        }
    }

    /// Sets the `sso-session` name.
    pub fn with_session_name(mut self, name: impl Into<String>) -> Self {
        self.sso_session_name = Some(name.into());
        self
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        start_url(&self.start_url)?;
        sso_region(&self.sso_region)?;
        validate::account_id(&self.account_id)?;
        sso_role_name(&self.role_name)?;
        if let Some(name) = &self.sso_session_name {
            sso_session_name(name)?;
        }
        Ok(())
    }

    /// The sign-in this session uses (default scopes).
    pub fn login_key(&self) -> SsoLoginKey {
        let key = SsoLoginKey::new(&self.start_url, &self.sso_region);
        match &self.sso_session_name {
            Some(name) => key.with_session_name(name),
            None => key,
        }
    }
}

/// The provider of `awsSsoRole` sessions.
///
/// - **start**: a portal access token from the [`SsoLogin`] (cached,
///   refreshed, or a device-flow sign-in), then `GetRoleCredentials`; if the
///   portal answers 401 `UnauthorizedException`, the token is dropped, the
///   sign-in renewed **once**, and the call retried once. The credentials
///   are stored and published to the sink.
/// - **rotate**: `GetRoleCredentials` again (same rules); the sink entry is
///   replaced in one write.
/// - **stop**: withdraws the sink entry and forgets the credentials. The
///   SSO sign-in stays: it is shared with other sessions and the AWS CLI.
pub type SsoRoleProvider = CredentialSessionProvider<SsoRoleIssuer>;

/// How `awsSsoRole` sessions get credentials: a portal access token from an
/// [`SsoLogin`], then `sso:GetRoleCredentials`. Used through
/// [`SsoRoleProvider`].
#[derive(Debug, Clone)]
pub struct SsoRoleIssuer {
    login: Arc<SsoLogin>,
}

/// A `GetRoleCredentials` that failed.
enum CallError {
    /// 401: the access token was refused.
    Rejected,
    /// Anything else.
    Failed(Error),
}

impl SsoRoleProvider {
    /// A provider calling the services as `clients` says, publishing to
    /// `sink`, showing device codes through `prompter`, with the token cache
    /// of `home` (`<home>/.aws/sso/cache`, the AWS CLI's).
    pub fn new(
        clients: SsoClientConfig,
        sink: Arc<dyn CredentialSink>,
        prompter: Arc<dyn DeviceCodePrompter>,
        home: impl Into<PathBuf>,
    ) -> Self {
        let login = SsoLogin::new(clients, SsoTokenCache::for_home(home.into()), prompter);
        Self::with_login(Arc::new(login), sink)
    }

    /// A provider using `login` (shared with other providers or an
    /// [`SsoIntegration`](super::SsoIntegration)), publishing to `sink`.
    pub fn with_login(login: Arc<SsoLogin>, sink: Arc<dyn CredentialSink>) -> Self {
        Self {
            issuer: SsoRoleIssuer { login },
            sink,
        }
    }

    /// A provider that publishes nowhere (secret store only).
    pub fn without_sink(login: Arc<SsoLogin>) -> Self {
        Self::with_login(login, Arc::new(NoSink))
    }

    /// The token manager.
    pub fn login(&self) -> &Arc<SsoLogin> {
        &self.issuer.login
    }
}

impl SsoRoleIssuer {
    async fn get_role_credentials(
        &self,
        config: &SsoRoleConfig,
        token: &Secret,
        label: &str,
    ) -> std::result::Result<AwsCredentials, CallError> {
        let result = self
            .login
            .portal(&config.sso_region)
            .get_role_credentials()
            .access_token(token.expose())
            .account_id(&config.account_id)
            .role_name(&config.role_name)
            .send()
            .await;
        let target = format!(
            "{label} (role {} in account {})",
            config.role_name, config.account_id
        );
        let out = match result {
            Ok(out) => out,
            Err(err) if error_code(&err).as_deref() == Some("UnauthorizedException") => {
                return Err(CallError::Rejected);
            }
            Err(err) => {
                return Err(CallError::Failed(from_sdk(
                    "GetRoleCredentials",
                    &target,
                    err,
                )));
            }
        };
        let incomplete = |what: &str| {
            CallError::Failed(Error::provider(
                "aws-sso",
                target.clone(),
                format!("GetRoleCredentials returned no {what}"),
            ))
        };
        let creds = out
            .role_credentials()
            .ok_or_else(|| incomplete("roleCredentials"))?;
        let access_key_id = creds
            .access_key_id()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| incomplete("accessKeyId"))?;
        let secret_access_key = creds
            .secret_access_key()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| incomplete("secretAccessKey"))?;
        let session_token = creds
            .session_token()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| incomplete("sessionToken"))?;
        // `expiration` is epoch milliseconds.
        let expiration =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(creds.expiration()) * 1_000_000)
                .ok()
                .filter(|_| creds.expiration() > 0)
                .ok_or_else(|| incomplete("valid expiration"))?;
        Ok(AwsCredentials {
            access_key_id: access_key_id.to_owned(),
            secret_access_key: Secret::new(secret_access_key),
            session_token: Some(Secret::new(session_token)),
            expiration: Some(expiration),
        })
    }
}

impl sealed::Sealed for SsoRoleIssuer {}

#[async_trait::async_trait]
impl IssueCredentials for SsoRoleIssuer {
    fn session_type(&self) -> SessionType {
        SessionType::AwsSsoRole
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none().with_rotate(true)
    }

    async fn issue(&self, ctx: &ActionContext, session: &Session) -> Result<AwsCredentials> {
        let label = session.label();
        let config: SsoRoleConfig = session.config.get().map_err(|e| e.in_session(&label))?;
        config.validate().map_err(|e| e.in_session(&label))?;
        let key = config.login_key();
        let clock: &dyn Clock = ctx.clock.as_ref();

        let token = self
            .login
            .access_token(&key, clock)
            .await
            .map_err(|e| e.in_session(&label))?;
        match self.get_role_credentials(&config, &token, &label).await {
            Ok(credentials) => return Ok(credentials),
            Err(CallError::Failed(error)) => return Err(error),
            Err(CallError::Rejected) => {
                tracing::info!(
                    session = %label,
                    "the SSO portal rejected the access token (401); renewing the sign-in once"
                );
            }
        }
        let token = self
            .login
            .renew_rejected(&key, &token, clock)
            .await
            .map_err(|e| e.in_session(&label))?;
        match self.get_role_credentials(&config, &token, &label).await {
            Ok(credentials) => Ok(credentials),
            Err(CallError::Failed(error)) => Err(error),
            Err(CallError::Rejected) => Err(Error::Unauthenticated {
                target: format!("{label} via {}", key.target()),
                message: "GetRoleCredentials: UnauthorizedException for a freshly renewed SSO \
                          access token too; not retrying again. Check that the Identity Center \
                          session is still valid (sign in again with `aws sso login` or by \
                          restarting the session)"
                    .to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_camel_case_and_validated() {
        let config = SsoRoleConfig::new(
            "https://d-123.awsapps.com/start",
            "us-east-1",
            "111122223333",
            "Admin",
        )
        .with_session_name("my-sso");
        let json = serde_json::to_value(&config).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "startUrl": "https://d-123.awsapps.com/start",
                "ssoRegion": "us-east-1",
                "accountId": "111122223333",
                "roleName": "Admin",
                "ssoSessionName": "my-sso",
            })
        );
        config.validate().unwrap();
        assert_eq!(config.login_key().cache_id(), "my-sso");
        let mut bad = config.clone();
        bad.account_id = "12345".into();
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("accountId")
        );
        let mut bad = config.clone();
        bad.start_url = "d-123.awsapps.com".into();
        assert!(bad.validate().unwrap_err().to_string().contains("startUrl"));
        let mut bad = config.clone();
        bad.sso_region = "US East".into();
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("ssoRegion")
        );
        let mut bad = config.clone();
        bad.role_name = "has space".into();
        assert!(bad.validate().unwrap_err().to_string().contains("roleName"));
        let mut bad = config;
        bad.sso_session_name = Some("a b".into());
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("ssoSessionName")
        );
    }
}
