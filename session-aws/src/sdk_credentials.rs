//! A session as an `aws_credential_types` credentials provider, so a Rust
//! program can hand it to any aws-sdk client.

use std::time::Duration;

use aws_credential_types::provider::{self, ProvideCredentials, error::CredentialsError};
use session_core::{DEFAULT_MIN_TTL, Error, ErrorChain, SessionManager, WorkspaceRepositoryExt};

use crate::AwsCredentials;

/// Provides the credentials of one AWS session of a [`SessionManager`].
///
/// Each call returns the session's issued credentials, after
/// [`SessionManager::ensure_active`]: a session that is not active is
/// started, one with less than `min_ttl` left is rotated first. Both go
/// through the manager, so concurrent callers share one STS call and the
/// workspace records the result.
///
/// ```no_run
/// # async fn demo(manager: session_core::SessionManager) {
/// use session_aws::SessionCredentialsProvider;
/// let provider = SessionCredentialsProvider::new(manager, "dev-admin");
/// let sts = aws_sdk_sts::Client::from_conf(
///     aws_sdk_sts::Config::builder()
///         .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
///         .region(aws_sdk_sts::config::Region::new("eu-west-1"))
///         .credentials_provider(provider)
///         .build(),
/// );
/// # }
/// ```
#[derive(Clone)]
pub struct SessionCredentialsProvider {
    manager: SessionManager,
    session: String,
    min_ttl: Duration,
}

impl std::fmt::Debug for SessionCredentialsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCredentialsProvider")
            .field("session", &self.session)
            .field("min_ttl", &self.min_ttl)
            .finish_non_exhaustive()
    }
}

impl SessionCredentialsProvider {
    /// Provides the credentials of the session `id_or_name`.
    pub fn new(manager: SessionManager, id_or_name: impl Into<String>) -> Self {
        Self {
            manager,
            session: id_or_name.into(),
            min_ttl: DEFAULT_MIN_TTL,
        }
    }

    /// Rotates when less than this is left (default [`DEFAULT_MIN_TTL`]).
    pub fn with_min_ttl(mut self, min_ttl: Duration) -> Self {
        self.min_ttl = min_ttl;
        self
    }

    /// The credentials, starting or rotating the session as needed.
    pub async fn credentials(&self) -> session_core::Result<AwsCredentials> {
        let session = self.manager.repository().find(&self.session).await?;
        if !session.session_type.is_aws_credentials() {
            return Err(Error::invalid_input(
                "session",
                format!("{} is not an AWS credential session", session.label()),
            ));
        }
        let id = session.session_id.to_string();
        let session = self.manager.ensure_active(&id, self.min_ttl).await?;
        let secrets = self.manager.secrets();
        if let Some(creds) =
            AwsCredentials::load_issued(secrets.as_ref(), session.session_id).await?
        {
            return Ok(creds);
        }
        // Active, but its credentials are not in this secret store (e.g. it
        // was started with another one): issue new ones.
        self.manager.rotate(&id).await?;
        AwsCredentials::load_issued(secrets.as_ref(), session.session_id)
            .await?
            .ok_or_else(|| {
                Error::provider(
                    "aws",
                    session.label(),
                    "rotate succeeded but left no credentials",
                )
            })
    }
}

impl ProvideCredentials for SessionCredentialsProvider {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(async move {
            match self.credentials().await {
                Ok(creds) => Ok(creds.to_sdk("session-sdk")),
                Err(error) => {
                    let message = ErrorChain(&error).to_string();
                    Err(match error {
                        Error::NotFound { .. } | Error::InvalidInput { .. } => {
                            CredentialsError::invalid_configuration(message)
                        }
                        _ => CredentialsError::provider_error(message),
                    })
                }
            }
        })
    }
}
