//! The lifecycle every AWS credential session type shares: after the type
//! got credentials (start, rotate), store them, publish them to the sink and
//! record where; on stop, withdraw and forget them.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use session_core::{
    ActionContext, Capabilities, Result, Session, SessionAction, SessionStatus, SessionType,
};

use crate::mfa::{MfaPrompt, NoMfaPrompt};
use crate::sink::{CredentialSink, NoSink, SinkTarget};
use crate::{AwsClientConfig, AwsCredentials, validate};

/// What every AWS credential session's `config` may hold besides its own
/// settings.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommonAwsConfig {
    /// The profile to publish to; defaults to the session name made safe for
    /// a profile name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// What start and rotate of an AWS credential session record in its
/// [`state`](Session::state) (cleared when the session becomes `inactive`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AwsSessionState {
    /// The profile the credentials were published to, so that stop (and a
    /// rotate after `profile` was changed) withdraws exactly that one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_profile: Option<String>,
}

impl CommonAwsConfig {
    /// The profile to publish `session` to.
    pub fn profile_for(&self, session: &Session) -> Result<String> {
        let profile = match &self.profile {
            Some(profile) => profile.clone(),
            None => session
                .session_name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "_.@+-".contains(c) {
                        c
                    } else {
                        '-'
                    }
                })
                .take(64)
                .collect(),
        };
        validate::profile_name(&profile)?;
        Ok(profile)
    }
}

/// Stores `credentials` as the session's issued credentials, publishes them,
/// and returns the session `active` with the new expiry and the published
/// profile recorded.
async fn activate(
    ctx: &ActionContext,
    session: &Session,
    sink: &dyn CredentialSink,
    credentials: &AwsCredentials,
) -> Result<Session> {
    let common: CommonAwsConfig = session.config.get()?;
    let previous: AwsSessionState = session.state.get()?;
    let profile = common.profile_for(session)?;
    let target = SinkTarget {
        session_id: session.session_id,
        profile: profile.clone(),
        region: session.region.clone(),
    };
    // Rotation: if the profile changed since the last publish, the old entry
    // goes first so no stale entry is left behind.
    if let Some(previous) = previous.published_profile.filter(|p| *p != profile) {
        sink.withdraw(&SinkTarget {
            profile: previous,
            ..target.clone()
        })
        .await?;
    }
    credentials
        .store_issued(ctx.secrets.as_ref(), session.session_id)
        .await?;
    sink.publish(&target, credentials).await?;
    let mut active = session.clone();
    active.replace_state(&AwsSessionState {
        published_profile: Some(profile),
    })?;
    active.expiration = credentials.expiration;
    active.transition(SessionStatus::Active, ctx.clock.now())?;
    Ok(active)
}

/// Withdraws what `activate` published, forgets the issued credentials and
/// returns the session `inactive`. Idempotent.
async fn deactivate(
    ctx: &ActionContext,
    session: &Session,
    sink: &dyn CredentialSink,
) -> Result<Session> {
    let common: CommonAwsConfig = session.config.get()?;
    let state: AwsSessionState = session.state.get()?;
    let profile = match state.published_profile {
        Some(profile) => Some(profile),
        // Never published by this version: fall back to the configured name.
        None => common.profile_for(session).ok(),
    };
    if let Some(profile) = profile {
        sink.withdraw(&SinkTarget {
            session_id: session.session_id,
            profile,
            region: session.region.clone(),
        })
        .await?;
    }
    AwsCredentials::delete_issued(ctx.secrets.as_ref(), session.session_id).await?;
    // Becoming inactive clears the state, published profile included.
    let mut inactive = session.clone();
    inactive.transition(SessionStatus::Inactive, ctx.clock.now())?;
    Ok(inactive)
}

/// Converts STS credentials into [`AwsCredentials`].
pub(crate) fn from_sts(creds: &aws_sdk_sts::types::Credentials) -> Result<AwsCredentials> {
    let expiration = time::OffsetDateTime::from_unix_timestamp(creds.expiration().secs())
        .map_err(|e| session_core::Error::invalid_input("expiration", e.to_string()))?;
    Ok(AwsCredentials {
        access_key_id: creds.access_key_id().to_owned(),
        secret_access_key: session_core::Secret::new(creds.secret_access_key().to_owned()),
        session_token: Some(session_core::Secret::new(creds.session_token().to_owned())),
        expiration: Some(expiration),
    })
}

/// How one AWS credential session type gets its credentials; the rest of
/// its lifecycle is [`CredentialSessionProvider`]'s.
///
/// Implemented by this crate's four types ([`IamUserIssuer`](crate::IamUserIssuer),
/// [`ChainedRoleIssuer`](crate::ChainedRoleIssuer),
/// [`FederatedRoleIssuer`](crate::FederatedRoleIssuer),
/// [`SsoRoleIssuer`](crate::sso::SsoRoleIssuer)) and sealed.
#[async_trait::async_trait]
pub trait IssueCredentials: sealed::Sealed + Send + Sync + fmt::Debug {
    /// The session type.
    fn session_type(&self) -> SessionType;

    /// What its provider supports.
    fn capabilities(&self) -> Capabilities;

    /// New credentials for `session`, on start and on rotate.
    async fn issue(&self, ctx: &ActionContext, session: &Session) -> Result<AwsCredentials>;
}

pub(crate) mod sealed {
    use std::sync::Arc;

    use crate::AwsClientConfig;
    use crate::mfa::MfaPrompt;

    /// Keeps [`IssueCredentials`](super::IssueCredentials) to this crate.
    pub trait Sealed {}

    /// An issuer that calls STS with a client and asks an [`MfaPrompt`] for
    /// codes (IAM user, chained role): its provider's constructors are
    /// [`CredentialSessionProvider`](super::CredentialSessionProvider)'s.
    pub trait MfaIssuer: Sealed {
        /// The issuer calling through `client`, with codes from `mfa`.
        fn from_parts(client: AwsClientConfig, mfa: Arc<dyn MfaPrompt>) -> Self;

        /// Where its MFA codes come from.
        fn mfa_mut(&mut self) -> &mut Arc<dyn MfaPrompt>;
    }
}

/// The provider ([`SessionAction`]) of an AWS credential session type:
/// `I` issues the credentials, this does the rest.
///
/// - **start** and **rotate**: `I` issues credentials; they are stored as
///   the session's issued credentials ([`AwsCredentials::store_issued`]) and
///   published to the sink, replacing the previous entry in one write (and
///   withdrawing the one of a profile that was renamed since); the session
///   becomes `active` with the credentials' expiry and the published
///   profile recorded in its state ([`AwsSessionState`]).
/// - **stop**: withdraws the published entry, forgets the issued
///   credentials, and the session becomes `inactive`. Idempotent.
///
/// Built through its aliases: [`IamUserProvider`](crate::IamUserProvider),
/// [`ChainedRoleProvider`](crate::ChainedRoleProvider),
/// [`FederatedRoleProvider`](crate::FederatedRoleProvider),
/// [`SsoRoleProvider`](crate::SsoRoleProvider).
#[derive(Debug, Clone)]
pub struct CredentialSessionProvider<I> {
    pub(crate) issuer: I,
    pub(crate) sink: Arc<dyn CredentialSink>,
}

/// The constructors of [`IamUserProvider`](crate::IamUserProvider) and
/// [`ChainedRoleProvider`](crate::ChainedRoleProvider).
impl<I: sealed::MfaIssuer> CredentialSessionProvider<I> {
    /// A provider that publishes to `sink`.
    pub fn new(client: AwsClientConfig, sink: Arc<dyn CredentialSink>) -> Self {
        Self {
            issuer: I::from_parts(client, Arc::new(NoMfaPrompt)),
            sink,
        }
    }

    /// A provider that publishes nowhere (secret store only).
    pub fn without_sink(client: AwsClientConfig) -> Self {
        Self::new(client, Arc::new(NoSink))
    }

    /// Where MFA codes come from (default: none; sessions that need a code
    /// then fail).
    pub fn with_mfa(mut self, mfa: Arc<dyn MfaPrompt>) -> Self {
        *self.issuer.mfa_mut() = mfa;
        self
    }
}

#[async_trait::async_trait]
impl<I: IssueCredentials> SessionAction for CredentialSessionProvider<I> {
    fn session_type(&self) -> SessionType {
        self.issuer.session_type()
    }

    fn capabilities(&self) -> Capabilities {
        self.issuer.capabilities()
    }

    async fn start(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        let credentials = self.issuer.issue(ctx, session).await?;
        activate(ctx, session, self.sink.as_ref(), &credentials).await
    }

    async fn stop(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        deactivate(ctx, session, self.sink.as_ref()).await
    }

    async fn rotate(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        let credentials = self.issuer.issue(ctx, session).await?;
        activate(ctx, session, self.sink.as_ref(), &credentials).await
    }
}
