//! The SSM control plane through `aws-sdk-ssm`: StartSession,
//! ResumeSession, TerminateSession and DescribeSessions, with the endpoint
//! override, region, retries and time-outs of [`SsmClientConfig`], and the
//! service's errors mapped onto the core's categories.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_ssm::config::{BehaviorVersion, Region};
use aws_sdk_ssm::types::{SessionFilter, SessionFilterKey, SessionState};
use session_core::{Error, Result, Secret};
use time::OffsetDateTime;

use super::channel::ResumeTickets;
use super::config::SsmConfig;
use crate::client::{
    check_endpoint_url, check_max_attempts, check_region, retry_config, timeout_config,
};
use crate::{AwsCredentials, DEFAULT_REGION, error};

/// The most pages [`SsmApi::describe_sessions`] reads (200 sessions each).
const MAX_PAGES: usize = 100;

/// Settings for the SSM clients of `awsSsm` sessions.
#[derive(Clone, Debug, Default)]
pub struct SsmClientConfig {
    endpoint_url: Option<String>,
    kms_endpoint_url: Option<String>,
    region: Option<String>,
    max_attempts: Option<u32>,
    timeout: Option<Duration>,
    default_credentials: Option<AwsCredentials>,
}

/// Builds an [`SsmClientConfig`]; [`build`](Self::build) checks it.
#[derive(Clone, Debug, Default)]
pub struct SsmClientConfigBuilder {
    config: SsmClientConfig,
}

impl SsmClientConfigBuilder {
    /// Sends every SSM call to this URL instead of the AWS endpoint.
    pub fn endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.config.endpoint_url = Some(url.into());
        self
    }

    /// Sends the KMS calls of encrypted sessions (GenerateDataKey) to this
    /// URL instead of the AWS endpoint.
    pub fn kms_endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.config.kms_endpoint_url = Some(url.into());
        self
    }

    /// The region when the session has none (default `us-east-1`).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.config.region = Some(region.into());
        self
    }

    /// Attempts per call, the first included (default: the SDK's 3).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.config.max_attempts = Some(attempts);
        self
    }

    /// Time-out of one whole call, retries included (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = Some(timeout);
        self
    }

    /// Signs the calls of sessions without a parent with `credentials`
    /// instead of the SDK's default provider chain (an embedding program
    /// with its own identity; tests).
    pub fn default_credentials(mut self, credentials: AwsCredentials) -> Self {
        self.config.default_credentials = Some(credentials);
        self
    }

    /// From the standard SDK variables `AWS_ENDPOINT_URL_SSM`, then
    /// `AWS_ENDPOINT_URL` (KMS: `AWS_ENDPOINT_URL_KMS`, then
    /// `AWS_ENDPOINT_URL`), and `AWS_REGION`, then `AWS_DEFAULT_REGION`
    /// (empty values count as unset); tests pass a map.
    pub fn from_env_iter(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let vars: HashMap<String, String> =
            vars.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        let mut builder = Self::default();
        builder.config.endpoint_url = vars
            .get("AWS_ENDPOINT_URL_SSM")
            .or_else(|| vars.get("AWS_ENDPOINT_URL"))
            .cloned();
        builder.config.kms_endpoint_url = vars
            .get("AWS_ENDPOINT_URL_KMS")
            .or_else(|| vars.get("AWS_ENDPOINT_URL"))
            .cloned();
        builder.config.region = vars
            .get("AWS_REGION")
            .or_else(|| vars.get("AWS_DEFAULT_REGION"))
            .cloned();
        builder
    }

    /// Checks the settings as the STS client's are checked: an `http(s)://`
    /// endpoint, at least 1 attempt, a region name.
    pub fn build(self) -> Result<SsmClientConfig> {
        check_endpoint_url("SSM endpoint URL", self.config.endpoint_url.as_deref())?;
        check_endpoint_url("KMS endpoint URL", self.config.kms_endpoint_url.as_deref())?;
        check_max_attempts(self.config.max_attempts)?;
        check_region(self.config.region.as_deref())?;
        Ok(self.config)
    }
}

impl SsmClientConfig {
    /// A builder.
    pub fn builder() -> SsmClientConfigBuilder {
        SsmClientConfigBuilder::default()
    }

    /// From the process environment (see
    /// [`SsmClientConfigBuilder::from_env_iter`]).
    pub fn from_env() -> Result<Self> {
        SsmClientConfigBuilder::from_env_iter(std::env::vars()).build()
    }

    /// The endpoint override, if any.
    pub fn endpoint_url(&self) -> Option<&str> {
        self.endpoint_url.as_deref()
    }

    /// The region for a session in `session_region`.
    pub fn region_for(&self, session_region: Option<&str>) -> String {
        session_region
            .or(self.region.as_deref())
            .unwrap_or(DEFAULT_REGION)
            .to_owned()
    }

    /// The control plane in `region`, signed with `credentials`, or when
    /// `None` with the [default
    /// credentials](SsmClientConfigBuilder::default_credentials) if set,
    /// else the SDK's default provider chain (environment, profile, SSO,
    /// IMDS…). `label` names the session in errors.
    pub async fn api(
        &self,
        region: &str,
        credentials: Option<&AwsCredentials>,
        label: &str,
    ) -> SsmApi {
        // One provider for both clients: KMS is called with the session's
        // own identity (a role's session asks KMS as that role).
        let provider = match credentials.or(self.default_credentials.as_ref()) {
            Some(credentials) => SharedCredentialsProvider::new(credentials.to_sdk("session-aws")),
            None => SharedCredentialsProvider::new(
                aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
                    .region(Region::new(region.to_owned()))
                    .build()
                    .await,
            ),
        };
        let mut builder = aws_sdk_ssm::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .timeout_config(timeout_config(self.timeout))
            .retry_config(retry_config(self.max_attempts))
            .credentials_provider(provider.clone());
        if let Some(url) = &self.endpoint_url {
            builder = builder.endpoint_url(url);
        }
        SsmApi {
            client: aws_sdk_ssm::Client::from_conf(builder.build()),
            #[cfg(feature = "ssm-kms")]
            kms: self.kms_client(region, provider),
            label: label.to_owned(),
        }
    }

    /// The KMS client of [`api`](Self::api): same region, credentials,
    /// retries and time-outs; the KMS endpoint override.
    #[cfg(feature = "ssm-kms")]
    fn kms_client(&self, region: &str, provider: SharedCredentialsProvider) -> aws_sdk_kms::Client {
        let mut builder = aws_sdk_kms::Config::builder()
            .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
            .region(aws_sdk_kms::config::Region::new(region.to_owned()))
            .timeout_config(timeout_config(self.timeout))
            .retry_config(retry_config(self.max_attempts))
            .credentials_provider(provider);
        if let Some(url) = &self.kms_endpoint_url {
            builder = builder.endpoint_url(url);
        }
        aws_sdk_kms::Client::from_conf(builder.build())
    }
}

/// The four control-plane calls for one session's identity and region.
#[derive(Clone, Debug)]
pub struct SsmApi {
    client: aws_sdk_ssm::Client,
    #[cfg(feature = "ssm-kms")]
    kms: aws_sdk_kms::Client,
    label: String,
}

/// What StartSession and ResumeSession return: where to open the data
/// channel, and the single-use token to open it with.
#[derive(Clone, Debug)]
pub struct StreamTicket {
    /// The service's session id.
    pub session_id: String,
    /// The data channel's websocket URL (opaque).
    pub stream_url: String,
    /// The token for OpenDataChannel; single-use, never stored or shown.
    pub token: Secret,
}

/// Which sessions [`SsmApi::describe_sessions`] lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionListState {
    /// Connected or disconnected (resumable) sessions.
    Active,
    /// Terminated sessions (kept about 30 days).
    History,
}

/// A filter of [`SsmApi::describe_sessions`] (the service's filter keys).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionListFilter {
    /// Sessions on this target.
    Target(String),
    /// Sessions started by this owner (an ARN).
    Owner(String),
    /// Sessions in this status (`Connected`, `Disconnected`, …).
    Status(String),
    /// The session with this id.
    SessionId(String),
    /// Sessions started after this time.
    InvokedAfter(OffsetDateTime),
    /// Sessions started before this time.
    InvokedBefore(OffsetDateTime),
}

/// One session as DescribeSessions reports it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SsmSessionSummary {
    /// The service's session id.
    pub session_id: String,
    /// The managed node.
    pub target: Option<String>,
    /// `Connecting`, `Connected`, `Disconnected`, `Terminating`,
    /// `Terminated` or `Failed`.
    pub status: Option<String>,
    /// The document it runs.
    pub document_name: Option<String>,
    /// Who started it (an ARN).
    pub owner: Option<String>,
    /// The reason given at start.
    pub reason: Option<String>,
    /// When it started.
    #[serde(with = "time::serde::rfc3339::option")]
    pub start_date: Option<OffsetDateTime>,
    /// When it ended.
    #[serde(with = "time::serde::rfc3339::option")]
    pub end_date: Option<OffsetDateTime>,
}

impl SsmApi {
    /// StartSession for `config`.
    ///
    /// # Errors
    ///
    /// The service's, mapped: `TargetNotConnected` and `InternalServerError`
    /// are [`Error::Unavailable`], `InvalidDocument` is
    /// [`Error::InvalidInput`], credentials problems
    /// [`Error::Unauthenticated`] / [`Error::PermissionDenied`].
    pub async fn start_session(&self, config: &SsmConfig) -> Result<StreamTicket> {
        let parameters = (!config.parameters.is_empty()).then(|| {
            config
                .parameters
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        });
        let output = self
            .client
            .start_session()
            .target(&config.target)
            .set_document_name(config.document_name.clone())
            .set_parameters(parameters)
            .set_reason(config.reason.clone())
            .send()
            .await
            .map_err(|e| error::from_sdk_of("aws-ssm", "StartSession", &self.label, e))?;
        self.ticket(
            "StartSession",
            output.session_id(),
            output.stream_url(),
            output.token_value(),
        )?
        .ok_or_else(|| {
            Error::provider(
                "aws-ssm",
                &self.label,
                "StartSession returned no token for the data channel",
            )
        })
    }

    /// ResumeSession: a fresh token for a disconnected session; `None` when
    /// the service answers with no token (the session timed out).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the service no longer knows the session
    /// (terminated); the others as [`start_session`](Self::start_session).
    pub async fn resume_session(&self, session_id: &str) -> Result<Option<StreamTicket>> {
        let output = self
            .client
            .resume_session()
            .session_id(session_id)
            .send()
            .await
            .map_err(|e| error::from_sdk_of("aws-ssm", "ResumeSession", &self.label, e))?;
        self.ticket(
            "ResumeSession",
            output.session_id().or(Some(session_id)),
            output.stream_url(),
            output.token_value(),
        )
    }

    /// Data keys for encrypted sessions, from KMS with this API's
    /// identity, region and settings.
    #[cfg(feature = "ssm-kms")]
    pub fn data_keys(&self) -> super::kms::KmsDataKeys {
        super::kms::KmsDataKeys::new(self.kms.clone(), &self.label)
    }

    /// ResumeSession of `session_id` as a [`ResumeTickets`] for a
    /// [`DataChannel`](super::DataChannel).
    pub fn resume_tickets(&self, session_id: &str) -> SessionResume {
        SessionResume {
            api: self.clone(),
            session_id: session_id.to_owned(),
        }
    }

    /// TerminateSession. Terminating a session that is already gone
    /// succeeds.
    ///
    /// # Errors
    ///
    /// As [`start_session`](Self::start_session).
    pub async fn terminate_session(&self, session_id: &str) -> Result<()> {
        match self
            .client
            .terminate_session()
            .session_id(session_id)
            .send()
            .await
            .map_err(|e| error::from_sdk_of("aws-ssm", "TerminateSession", &self.label, e))
        {
            Ok(_) | Err(Error::NotFound { .. }) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// DescribeSessions in `state` with `filters`: every page, up to
    /// `limit` sessions (all when `None`).
    ///
    /// # Errors
    ///
    /// `InvalidFilterKey` and `InvalidNextToken` are
    /// [`Error::InvalidInput`]; the others as
    /// [`start_session`](Self::start_session).
    pub async fn describe_sessions(
        &self,
        state: SessionListState,
        filters: &[SessionListFilter],
        limit: Option<usize>,
    ) -> Result<Vec<SsmSessionSummary>> {
        let filters = filters.iter().map(to_filter).collect::<Result<Vec<_>>>()?;
        let mut sessions = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let output = self
                .client
                .describe_sessions()
                .state(match state {
                    SessionListState::Active => SessionState::Active,
                    SessionListState::History => SessionState::History,
                })
                .set_filters((!filters.is_empty()).then(|| filters.clone()))
                .max_results(200)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| error::from_sdk_of("aws-ssm", "DescribeSessions", &self.label, e))?;
            sessions.extend(output.sessions().iter().map(summary));
            if limit.is_some_and(|limit| sessions.len() >= limit) {
                sessions.truncate(limit.unwrap_or(usize::MAX));
                return Ok(sessions);
            }
            match output.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_owned()),
                _ => return Ok(sessions),
            }
        }
        Ok(sessions)
    }

    fn ticket(
        &self,
        call: &str,
        session_id: Option<&str>,
        stream_url: Option<&str>,
        token: Option<&str>,
    ) -> Result<Option<StreamTicket>> {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        let missing = |what: &str| {
            Error::provider(
                "aws-ssm",
                &self.label,
                format!("{call} returned a token but no {what}"),
            )
        };
        Ok(Some(StreamTicket {
            session_id: session_id
                .filter(|s| !s.is_empty())
                .ok_or_else(|| missing("session id"))?
                .to_owned(),
            stream_url: stream_url
                .filter(|s| !s.is_empty())
                .ok_or_else(|| missing("stream URL"))?
                .to_owned(),
            token: Secret::new(token),
        }))
    }
}

fn to_filter(filter: &SessionListFilter) -> Result<SessionFilter> {
    let rfc3339 = |at: &OffsetDateTime| {
        at.format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| Error::invalid_input("filter", e.to_string()))
    };
    let (key, value) = match filter {
        SessionListFilter::Target(v) => (SessionFilterKey::TargetId, v.clone()),
        SessionListFilter::Owner(v) => (SessionFilterKey::Owner, v.clone()),
        SessionListFilter::Status(v) => (SessionFilterKey::Status, v.clone()),
        SessionListFilter::SessionId(v) => (SessionFilterKey::SessionId, v.clone()),
        SessionListFilter::InvokedAfter(at) => (SessionFilterKey::InvokedAfter, rfc3339(at)?),
        SessionListFilter::InvokedBefore(at) => (SessionFilterKey::InvokedBefore, rfc3339(at)?),
    };
    SessionFilter::builder()
        .key(key)
        .value(value)
        .build()
        .map_err(|e| Error::invalid_input("filter", e.to_string()))
}

fn summary(session: &aws_sdk_ssm::types::Session) -> SsmSessionSummary {
    let date = |d: Option<&aws_smithy_types::DateTime>| {
        d.and_then(|d| OffsetDateTime::from_unix_timestamp_nanos(d.as_nanos()).ok())
    };
    SsmSessionSummary {
        session_id: session.session_id().unwrap_or_default().to_owned(),
        target: session.target().map(str::to_owned),
        status: session.status().map(|s| s.as_str().to_owned()),
        document_name: session.document_name().map(str::to_owned),
        owner: session.owner().map(str::to_owned),
        reason: session.reason().map(str::to_owned),
        start_date: date(session.start_date()),
        end_date: date(session.end_date()),
    }
}

/// ResumeSession of one session ([`SsmApi::resume_tickets`]).
#[derive(Clone, Debug)]
pub struct SessionResume {
    api: SsmApi,
    session_id: String,
}

#[async_trait]
impl ResumeTickets for SessionResume {
    async fn resume(&self) -> Result<Option<StreamTicket>> {
        self.api.resume_session(&self.session_id).await
    }
}
