//! The lifecycle every AWS credential session type shares: after the type
//! got credentials (start, rotate), store them, publish them to the sink and
//! record where; on stop, withdraw and forget them.

use serde::{Deserialize, Serialize};
use session_core::{ActionContext, Result, Session, SessionStatus};

use crate::sink::{CredentialSink, SinkTarget};
use crate::{AwsCredentials, validate};

/// What every AWS credential session's `config` may hold besides its own
/// settings.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommonAwsConfig {
    /// The profile to publish to; defaults to the session name made safe for
    /// a profile name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The profile `start` published to, so `stop` withdraws exactly that
    /// one even if `profile` was changed meanwhile. Written by the provider.
    #[serde(default)]
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
pub(crate) async fn activate(
    ctx: &ActionContext,
    session: &Session,
    sink: &dyn CredentialSink,
    credentials: &AwsCredentials,
) -> Result<Session> {
    let mut common: CommonAwsConfig = session.config.get()?;
    let profile = common.profile_for(session)?;
    let target = SinkTarget {
        session_id: session.session_id,
        profile: profile.clone(),
        region: session.region.clone(),
    };
    // Rotation: if the profile changed since the last publish, the old entry
    // goes first so no stale entry is left behind.
    if let Some(previous) = common.published_profile.as_ref().filter(|p| **p != profile) {
        sink.withdraw(&SinkTarget {
            profile: previous.clone(),
            ..target.clone()
        })
        .await?;
    }
    credentials
        .store_issued(ctx.secrets.as_ref(), session.session_id)
        .await?;
    sink.publish(&target, credentials).await?;
    common.published_profile = Some(profile);
    let mut active = session.clone();
    active.config.set(&common)?;
    active.expiration = credentials.expiration;
    active.transition(SessionStatus::Active, ctx.clock.now())?;
    Ok(active)
}

/// Withdraws what `activate` published, forgets the issued credentials and
/// returns the session `inactive`. Idempotent.
pub(crate) async fn deactivate(
    ctx: &ActionContext,
    session: &Session,
    sink: &dyn CredentialSink,
) -> Result<Session> {
    let mut common: CommonAwsConfig = session.config.get()?;
    let profile = match &common.published_profile {
        Some(profile) => Some(profile.clone()),
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
    common.published_profile = None;
    let mut inactive = session.clone();
    inactive.config.set(&common)?;
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

/// Implements [`SessionAction`](session_core::SessionAction) for an AWS
/// credential provider, which only differs in how it gets credentials: the
/// type must have a `sink: Arc<dyn CredentialSink>` field and an
/// `async fn issue(&self, &ActionContext, &Session) -> Result<AwsCredentials>`.
/// start and rotate issue and [`activate`]; stop [`deactivate`]s.
///
/// A macro rather than a blanket impl: the trait is session-core's, so the
/// orphan rule forbids `impl<T: …> SessionAction for T` here.
macro_rules! credential_session_action {
    ($provider:ty, $session_type:expr, $capabilities:expr) => {
        #[async_trait::async_trait]
        impl session_core::SessionAction for $provider {
            fn session_type(&self) -> session_core::SessionType {
                $session_type
            }

            fn capabilities(&self) -> session_core::Capabilities {
                $capabilities
            }

            async fn start(
                &self,
                ctx: &session_core::ActionContext,
                session: &session_core::Session,
            ) -> session_core::Result<session_core::Session> {
                let credentials = self.issue(ctx, session).await?;
                $crate::lifecycle::activate(ctx, session, self.sink.as_ref(), &credentials).await
            }

            async fn stop(
                &self,
                ctx: &session_core::ActionContext,
                session: &session_core::Session,
            ) -> session_core::Result<session_core::Session> {
                $crate::lifecycle::deactivate(ctx, session, self.sink.as_ref()).await
            }

            async fn rotate(
                &self,
                ctx: &session_core::ActionContext,
                session: &session_core::Session,
            ) -> session_core::Result<session_core::Session> {
                let credentials = self.issue(ctx, session).await?;
                $crate::lifecycle::activate(ctx, session, self.sink.as_ref(), &credentials).await
            }
        }
    };
}

pub(crate) use credential_session_action;
