//! How this crate reaches SSO-OIDC and the SSO portal, and how their errors
//! map onto [`session_core::Error`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use session_core::{Error, Result};

use crate::client::{check_endpoint_url, check_max_attempts, retry_config, timeout_config};

/// Settings for the SSO-OIDC and portal clients: endpoint overrides,
/// retries and timeouts. Neither API is SigV4-signed, so there are no
/// credentials here; the clients never read the process's AWS profile or
/// environment.
///
/// ```
/// use session_aws::sso::SsoClientConfig;
/// let config = SsoClientConfig::builder()
///     .endpoint_url("http://127.0.0.1:9000")
///     .max_attempts(1)
///     .build()?;
/// assert_eq!(config.oidc_endpoint_url(), Some("http://127.0.0.1:9000"));
/// assert_eq!(config.portal_endpoint_url(), Some("http://127.0.0.1:9000"));
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct SsoClientConfig {
    oidc_endpoint_url: Option<String>,
    portal_endpoint_url: Option<String>,
    max_attempts: Option<u32>,
    timeout: Option<Duration>,
}

/// Builds an [`SsoClientConfig`]; setters never fail,
/// [`build`](Self::build) checks.
#[derive(Clone, Debug, Default)]
pub struct SsoClientConfigBuilder {
    config: SsoClientConfig,
}

impl SsoClientConfigBuilder {
    /// Sends SSO-OIDC calls (RegisterClient, StartDeviceAuthorization,
    /// CreateToken) here instead of `https://oidc.<region>.amazonaws.com`.
    pub fn oidc_endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.config.oidc_endpoint_url = Some(url.into());
        self
    }

    /// Sends portal calls (GetRoleCredentials, ListAccounts,
    /// ListAccountRoles, Logout) here instead of
    /// `https://portal.sso.<region>.amazonaws.com`.
    pub fn portal_endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.config.portal_endpoint_url = Some(url.into());
        self
    }

    /// Both endpoints at once (one server serving both APIs).
    pub fn endpoint_url(self, url: impl Into<String>) -> Self {
        let url = url.into();
        self.oidc_endpoint_url(url.clone()).portal_endpoint_url(url)
    }

    /// Attempts per call including the first (default: the SDK's standard
    /// retry, 3 attempts). `1` disables retries.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.config.max_attempts = Some(attempts);
        self
    }

    /// Timeout of one whole call, retries included (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = Some(timeout);
        self
    }

    /// A builder with the endpoints of the standard SDK variables
    /// `AWS_ENDPOINT_URL_SSO_OIDC` (OIDC), `AWS_ENDPOINT_URL_SSO` (portal)
    /// and the fallback `AWS_ENDPOINT_URL`, read from the given variables
    /// (tests pass a map; [`SsoClientConfig::from_env`] the process
    /// environment). Empty values count as unset.
    pub fn from_env_iter(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut builder = Self::default();
        let vars: HashMap<String, String> =
            vars.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        let fallback = vars.get("AWS_ENDPOINT_URL");
        if let Some(url) = vars.get("AWS_ENDPOINT_URL_SSO_OIDC").or(fallback) {
            builder.config.oidc_endpoint_url = Some(url.clone());
        }
        if let Some(url) = vars.get("AWS_ENDPOINT_URL_SSO").or(fallback) {
            builder.config.portal_endpoint_url = Some(url.clone());
        }
        builder
    }

    /// Checks the settings: endpoints must be `http(s)://` URLs, the
    /// attempts at least 1.
    pub fn build(self) -> Result<SsoClientConfig> {
        for (field, url) in [
            ("OIDC endpoint URL", &self.config.oidc_endpoint_url),
            ("portal endpoint URL", &self.config.portal_endpoint_url),
        ] {
            check_endpoint_url(field, url.as_deref())?;
        }
        check_max_attempts(self.config.max_attempts)?;
        Ok(self.config)
    }
}

impl SsoClientConfig {
    /// A builder.
    pub fn builder() -> SsoClientConfigBuilder {
        SsoClientConfigBuilder::default()
    }

    /// From the process environment: `AWS_ENDPOINT_URL_SSO_OIDC`,
    /// `AWS_ENDPOINT_URL_SSO`, `AWS_ENDPOINT_URL`.
    pub fn from_env() -> Result<Self> {
        SsoClientConfigBuilder::from_env_iter(std::env::vars()).build()
    }

    /// The SSO-OIDC endpoint override, if any.
    pub fn oidc_endpoint_url(&self) -> Option<&str> {
        self.oidc_endpoint_url.as_deref()
    }

    /// The portal endpoint override, if any.
    pub fn portal_endpoint_url(&self) -> Option<&str> {
        self.portal_endpoint_url.as_deref()
    }

    /// An SSO-OIDC client for `region`.
    pub(crate) fn oidc(&self, region: &str) -> aws_sdk_ssooidc::Client {
        let mut builder = aws_sdk_ssooidc::Config::builder()
            .behavior_version(aws_sdk_ssooidc::config::BehaviorVersion::latest())
            .region(aws_sdk_ssooidc::config::Region::new(region.to_owned()))
            .retry_config(retry_config(self.max_attempts))
            .timeout_config(timeout_config(self.timeout));
        if let Some(url) = &self.oidc_endpoint_url {
            builder = builder.endpoint_url(url);
        }
        aws_sdk_ssooidc::Client::from_conf(builder.build())
    }

    /// An SSO portal client for `region`.
    pub(crate) fn portal(&self, region: &str) -> aws_sdk_sso::Client {
        let mut builder = aws_sdk_sso::Config::builder()
            .behavior_version(aws_sdk_sso::config::BehaviorVersion::latest())
            .region(aws_sdk_sso::config::Region::new(region.to_owned()))
            .retry_config(retry_config(self.max_attempts))
            .timeout_config(timeout_config(self.timeout));
        if let Some(url) = &self.portal_endpoint_url {
            builder = builder.endpoint_url(url);
        }
        aws_sdk_sso::Client::from_conf(builder.build())
    }
}

/// SDK clients per region, built once (each owns an HTTP connection pool).
#[derive(Debug, Default)]
pub(crate) struct Clients {
    oidc: Mutex<HashMap<String, aws_sdk_ssooidc::Client>>,
    portal: Mutex<HashMap<String, aws_sdk_sso::Client>>,
}

impl Clients {
    pub(crate) fn oidc(&self, config: &SsoClientConfig, region: &str) -> aws_sdk_ssooidc::Client {
        let mut map = self.oidc.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(region.to_owned())
            .or_insert_with(|| config.oidc(region))
            .clone()
    }

    pub(crate) fn portal(&self, config: &SsoClientConfig, region: &str) -> aws_sdk_sso::Client {
        let mut map = self.portal.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(region.to_owned())
            .or_insert_with(|| config.portal(region))
            .clone()
    }
}

/// The service error code of an SDK error, if the service answered one.
pub(crate) fn error_code<E, R>(err: &SdkError<E, R>) -> Option<String>
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(_) => err.code().map(str::to_owned),
        _ => None,
    }
}

/// Maps an SSO-OIDC or portal SDK error of `call` made for `target`.
pub(crate) fn from_sdk<E, R>(call: &str, target: &str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let code = error_code(&err);
    let message = || {
        format!(
            "{call}: {}: {}",
            code.as_deref().unwrap_or("Unknown"),
            err.message().unwrap_or("no message")
        )
    };
    let target_owned = || target.to_owned();
    match code.as_deref() {
        // An account or role that is not assigned to the user: the real
        // portal answers 403 `ForbiddenException` ("No access"), which its
        // model does not list; the model's answer for a resource it cannot
        // find is 404 `ResourceNotFoundException`. Either way the user must
        // check the account and role, so both read the same.
        Some("ForbiddenException" | "ResourceNotFoundException") => Error::PermissionDenied {
            target: target_owned(),
            message: message(),
        },
        // SSO-OIDC's 5xx (the portal has none in its model): the shared
        // mapping does not know this code and would call it final.
        Some("InternalServerException") => Error::Unavailable {
            target: target_owned(),
            message: message(),
            source: None,
        },
        Some(
            "InvalidGrantException"
            | "InvalidClientException"
            | "UnauthorizedClientException"
            | "AuthorizationPendingException",
        ) => Error::Unauthenticated {
            target: target_owned(),
            message: message(),
        },
        Some("SlowDownException") => Error::Throttled {
            target: target_owned(),
            retry_after: None,
        },
        _ => match crate::error::from_sdk(call, target, err) {
            Error::Provider {
                target,
                message,
                retryable,
                source,
                ..
            } => Error::Provider {
                provider: "aws-sso".into(),
                target,
                message,
                retryable,
                source,
            },
            other => other,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::tests::vars;

    #[test]
    fn endpoints_come_from_the_variables() {
        let config = SsoClientConfigBuilder::from_env_iter(vars(&[
            ("AWS_ENDPOINT_URL", "http://fallback:1"),
            ("AWS_ENDPOINT_URL_SSO_OIDC", "http://oidc:2"),
        ]))
        .build()
        .unwrap();
        assert_eq!(config.oidc_endpoint_url(), Some("http://oidc:2"));
        assert_eq!(config.portal_endpoint_url(), Some("http://fallback:1"));

        let config = SsoClientConfigBuilder::from_env_iter(vars(&[
            ("AWS_ENDPOINT_URL", ""),
            ("AWS_ENDPOINT_URL_SSO", "http://portal:3"),
        ]))
        .build()
        .unwrap();
        assert_eq!(config.oidc_endpoint_url(), None, "empty counts as unset");
        assert_eq!(config.portal_endpoint_url(), Some("http://portal:3"));

        let err =
            SsoClientConfigBuilder::from_env_iter(vars(&[("AWS_ENDPOINT_URL_SSO", "portal:3")]))
                .build()
                .unwrap_err();
        assert!(err.to_string().contains("portal endpoint URL"), "{err}");
    }
}
