//! How this crate reaches STS: region, endpoint override (for moto, VPC
//! endpoints, LocalStack), retries and timeouts.

use std::time::Duration;

use aws_sdk_sts::config::{BehaviorVersion, Region};
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use session_core::{Error, Result};

use crate::AwsCredentials;

/// The region used when neither the session nor the config names one.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Settings for the STS clients the providers build (the SSO clients have
/// their own, [`SsoClientConfig`](crate::sso::SsoClientConfig)).
///
/// ```
/// use session_aws::AwsClientConfig;
/// let config = AwsClientConfig::builder()
///     .endpoint_url("http://127.0.0.1:5000")
///     .max_attempts(1)
///     .build()?;
/// assert_eq!(config.endpoint_url(), Some("http://127.0.0.1:5000"));
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct AwsClientConfig {
    endpoint_url: Option<String>,
    region: Option<String>,
    max_attempts: Option<u32>,
    timeout: Option<Duration>,
}

/// Refuses an endpoint override (`field`) that is not an `http(s)://` URL.
pub(crate) fn check_endpoint_url(field: &str, url: Option<&str>) -> Result<()> {
    match url {
        Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
            Err(Error::invalid_input(
                field,
                format!("{url:?} must start with http:// or https://"),
            ))
        }
        _ => Ok(()),
    }
}

/// Refuses a region that is not a region name (lower-case letters, digits
/// and `-`, e.g. `eu-west-1`).
pub(crate) fn check_region(region: Option<&str>) -> Result<()> {
    match region {
        Some(region)
            if region.is_empty()
                || !region
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') =>
        {
            Err(Error::invalid_input(
                "region",
                format!("{region:?} is not a region name like eu-west-1"),
            ))
        }
        _ => Ok(()),
    }
}

/// Refuses `max_attempts` 0 (1 is a call without retries).
pub(crate) fn check_max_attempts(max_attempts: Option<u32>) -> Result<()> {
    if max_attempts == Some(0) {
        return Err(Error::invalid_input("max attempts", "must be at least 1"));
    }
    Ok(())
}

/// The SDK's standard retry, with `max_attempts` attempts when set.
pub(crate) fn retry_config(max_attempts: Option<u32>) -> RetryConfig {
    match max_attempts {
        Some(attempts) => RetryConfig::standard().with_max_attempts(attempts),
        None => RetryConfig::standard(),
    }
}

/// A whole call's timeout, retries included: `timeout` or 30 s.
pub(crate) fn timeout_config(timeout: Option<Duration>) -> TimeoutConfig {
    TimeoutConfig::builder()
        .operation_timeout(timeout.unwrap_or(Duration::from_secs(30)))
        .build()
}

/// Builds an [`AwsClientConfig`]; setters never fail, [`build`](Self::build) checks.
#[derive(Clone, Debug, Default)]
pub struct AwsClientConfigBuilder {
    config: AwsClientConfig,
}

impl AwsClientConfigBuilder {
    /// Sends every STS call to this URL instead of the AWS endpoint.
    pub fn endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.config.endpoint_url = Some(url.into());
        self
    }

    /// The region for STS when the session has none (default `us-east-1`).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.config.region = Some(region.into());
        self
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

    /// A builder with the endpoint and region of the standard SDK variables
    /// `AWS_ENDPOINT_URL_STS`, then `AWS_ENDPOINT_URL`, and `AWS_REGION`,
    /// then `AWS_DEFAULT_REGION`, read from the given variables (tests pass
    /// a map; [`AwsClientConfig::from_env`] the process environment). Empty
    /// values count as unset.
    pub fn from_env_iter(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut builder = Self::default();
        let vars: std::collections::HashMap<String, String> =
            vars.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        if let Some(url) = vars
            .get("AWS_ENDPOINT_URL_STS")
            .or_else(|| vars.get("AWS_ENDPOINT_URL"))
        {
            builder.config.endpoint_url = Some(url.clone());
        }
        if let Some(region) = vars
            .get("AWS_REGION")
            .or_else(|| vars.get("AWS_DEFAULT_REGION"))
        {
            builder.config.region = Some(region.clone());
        }
        builder
    }

    /// Checks the settings: the endpoint must be an `http(s)://` URL, the
    /// attempts at least 1.
    pub fn build(self) -> Result<AwsClientConfig> {
        check_endpoint_url("endpoint URL", self.config.endpoint_url.as_deref())?;
        check_max_attempts(self.config.max_attempts)?;
        check_region(self.config.region.as_deref())?;
        Ok(self.config)
    }
}

impl AwsClientConfig {
    /// A builder.
    pub fn builder() -> AwsClientConfigBuilder {
        AwsClientConfigBuilder::default()
    }

    /// From the process environment: `AWS_ENDPOINT_URL_STS`,
    /// `AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_DEFAULT_REGION`.
    pub fn from_env() -> Result<Self> {
        AwsClientConfigBuilder::from_env_iter(std::env::vars()).build()
    }

    /// The endpoint override, if any.
    pub fn endpoint_url(&self) -> Option<&str> {
        self.endpoint_url.as_deref()
    }

    /// The region to use for a session in `session_region`.
    pub fn region_for(&self, session_region: Option<&str>) -> String {
        session_region
            .or(self.region.as_deref())
            .unwrap_or(DEFAULT_REGION)
            .to_owned()
    }

    /// An STS client. Signed with `credentials`, or unsigned (for
    /// `AssumeRoleWithSAML`) when `None`. The client never reads the
    /// process's own AWS environment or profile files.
    pub fn sts(&self, region: &str, credentials: Option<&AwsCredentials>) -> aws_sdk_sts::Client {
        let mut builder = aws_sdk_sts::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .timeout_config(timeout_config(self.timeout))
            .retry_config(retry_config(self.max_attempts));
        if let Some(url) = &self.endpoint_url {
            builder = builder.endpoint_url(url);
        }
        if let Some(credentials) = credentials {
            builder = builder.credentials_provider(credentials.to_sdk("session-aws"));
        }
        aws_sdk_sts::Client::from_conf(builder.build())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Environment variables for the `from_env_iter` seams.
    pub(crate) fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn endpoint_and_region_come_from_the_variables() {
        let config = AwsClientConfigBuilder::from_env_iter(vars(&[
            ("AWS_ENDPOINT_URL", "http://fallback:1"),
            ("AWS_ENDPOINT_URL_STS", "http://sts:2"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
        ]))
        .build()
        .unwrap();
        assert_eq!(config.endpoint_url(), Some("http://sts:2"));
        assert_eq!(config.region_for(None), "eu-west-1");
        assert_eq!(config.region_for(Some("us-west-2")), "us-west-2");

        let config = AwsClientConfigBuilder::from_env_iter(vars(&[
            ("AWS_ENDPOINT_URL", "http://fallback:1"),
            ("AWS_ENDPOINT_URL_STS", ""),
            ("AWS_REGION", "ap-south-1"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
        ]))
        .build()
        .unwrap();
        assert_eq!(config.endpoint_url(), Some("http://fallback:1"));
        assert_eq!(config.region_for(None), "ap-south-1");

        let config = AwsClientConfigBuilder::from_env_iter(vars(&[]))
            .build()
            .unwrap();
        assert_eq!(config.endpoint_url(), None);
        assert_eq!(config.region_for(None), DEFAULT_REGION);

        let err = AwsClientConfigBuilder::from_env_iter(vars(&[("AWS_REGION", "EU West")]))
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("region"), "{err}");
    }
}
