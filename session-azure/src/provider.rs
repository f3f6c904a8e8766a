//! [`AzureProvider`], the [`SessionAction`] of the `azure` session type.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Client;
use session_core::{
    ActionContext, Capabilities, Error, Result, Secret, SecretKey, Session, SessionAction,
    SessionStatus, SessionType,
};

use crate::oauth::{self, DEFAULT_POLL_INTERVAL, DeviceCodePrompt, DevicePromptHook, Token};
use crate::{ACCESS_TOKEN, AzureConfig, CLIENT_SECRET, CredentialKind, REFRESH_TOKEN};

/// The provider of `azure` sessions.
///
/// - **start**: client secret → a client-credentials token; device code → a
///   refresh with the stored refresh token if there is one, else the device
///   flow (the [prompt hook](AzureProviderBuilder::device_prompt) shows the
///   code); refresh token → a refresh. The access token goes to the secret
///   store ([`ACCESS_TOKEN`]), a new refresh token replaces the stored one
///   ([`REFRESH_TOKEN`]), and the session's expiration is the token's.
/// - **rotate**: the same grant again (client credentials) or a refresh,
///   before the old token expires, so there is no gap. When the sign-in is
///   refused (an expired or revoked refresh token, `invalid_grant`; a
///   revoked client secret, `invalid_client`) the stored tokens are deleted,
///   the error says to start the session again (which signs in anew), and
///   the `SessionManager` leaves the session inactive with the error
///   recorded.
/// - **stop**: deletes the access token; for device-code sessions the
///   refresh token too (the next start signs in again). Entra ID has no
///   per-token revocation, so nothing is sent.
#[derive(Clone)]
pub struct AzureProvider {
    http: Client,
    prompt: DevicePromptHook,
    poll_interval: Duration,
}

impl std::fmt::Debug for AzureProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureProvider")
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

/// Configures an [`AzureProvider`].
pub struct AzureProviderBuilder {
    prompt: Option<DevicePromptHook>,
    poll_interval: Duration,
}

impl std::fmt::Debug for AzureProviderBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureProviderBuilder")
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

impl AzureProviderBuilder {
    /// Shows the device-code instruction to the user. Default: it is
    /// written to standard error.
    pub fn device_prompt(
        mut self,
        hook: impl Fn(&DeviceCodePrompt) + Send + Sync + 'static,
    ) -> Self {
        self.prompt = Some(Arc::new(hook));
        self
    }

    /// The device-flow poll interval when the server names none (RFC 8628
    /// default 5 s; Entra names one, some servers do not).
    pub fn device_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Builds the provider.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a zero poll interval;
    /// [`Error::Unavailable`] when the HTTP client cannot be built.
    pub fn build(self) -> Result<AzureProvider> {
        if self.poll_interval.is_zero() {
            return Err(Error::invalid_input(
                "device_poll_interval",
                "must be more than zero",
            ));
        }
        Ok(AzureProvider {
            http: oauth::http_client()?,
            prompt: self
                .prompt
                .unwrap_or_else(|| Arc::new(|p: &DeviceCodePrompt| eprintln!("{}", p.message))),
            poll_interval: self.poll_interval,
        })
    }
}

impl AzureProvider {
    /// A [`AzureProviderBuilder`].
    pub fn builder() -> AzureProviderBuilder {
        AzureProviderBuilder {
            prompt: None,
            poll_interval: DEFAULT_POLL_INTERVAL,
        }
    }

    fn key(session: &Session, name: &str) -> Result<SecretKey> {
        SecretKey::new(session.session_id, name)
    }

    fn config(session: &Session) -> Result<AzureConfig> {
        let label = session.label();
        let config: AzureConfig = session.config.get().map_err(|e| in_session(&label, e))?;
        config.validate().map_err(|e| in_session(&label, e))?;
        Ok(config)
    }

    async fn secret(ctx: &ActionContext, session: &Session, name: &str) -> Result<Option<Secret>> {
        ctx.secrets.get(&Self::key(session, name)?).await
    }

    async fn client_secret(ctx: &ActionContext, session: &Session) -> Result<Secret> {
        Self::secret(ctx, session, CLIENT_SECRET)
            .await?
            .ok_or_else(|| {
                Error::invalid_input(
                    "clientSecret",
                    format!(
                        "{} has no client secret in the secret store ({CLIENT_SECRET})",
                        session.label()
                    ),
                )
            })
    }

    /// A refresh; an `invalid_grant` deletes the stored refresh token.
    async fn refresh(
        &self,
        ctx: &ActionContext,
        session: &Session,
        config: &AzureConfig,
        refresh_token: &Secret,
    ) -> Result<Token> {
        let label = session.label();
        let result =
            oauth::refresh(&self.http, config, refresh_token, None, &*ctx.clock, &label).await;
        if let Err(Error::Unauthenticated { .. }) = &result {
            ctx.secrets
                .delete(&Self::key(session, REFRESH_TOKEN)?)
                .await?;
            ctx.secrets
                .delete(&Self::key(session, ACCESS_TOKEN)?)
                .await?;
        }
        result
    }

    async fn device_sign_in(
        &self,
        ctx: &ActionContext,
        session: &Session,
        config: &AzureConfig,
    ) -> Result<Token> {
        let label = session.label();
        let device = oauth::device_authorization(&self.http, config, &label).await?;
        (self.prompt)(&device.prompt);
        oauth::poll_device(
            &self.http,
            config,
            &device,
            self.poll_interval,
            &*ctx.clock,
            &label,
        )
        .await
    }

    /// Gets a token for start (`interactive`) or rotate.
    async fn acquire(
        &self,
        ctx: &ActionContext,
        session: &Session,
        interactive: bool,
    ) -> Result<Token> {
        let config = Self::config(session)?;
        let label = session.label();
        match config.credential {
            CredentialKind::ClientSecret => {
                let secret = Self::client_secret(ctx, session).await?;
                oauth::client_credentials(&self.http, &config, &secret, &*ctx.clock, &label).await
            }
            kind => {
                let stored = Self::secret(ctx, session, REFRESH_TOKEN).await?;
                match (stored, kind) {
                    (Some(rt), CredentialKind::DeviceCode) if interactive => {
                        match self.refresh(ctx, session, &config, &rt).await {
                            Ok(token) => Ok(token),
                            Err(Error::Unauthenticated { message, .. }) => {
                                tracing::info!(session = %label, reason = %message, "the stored sign-in is no longer valid; starting a device sign-in");
                                self.device_sign_in(ctx, session, &config).await
                            }
                            Err(e) => Err(e),
                        }
                    }
                    (Some(rt), _) => self.refresh(ctx, session, &config, &rt).await,
                    (None, CredentialKind::DeviceCode) if interactive => {
                        self.device_sign_in(ctx, session, &config).await
                    }
                    (None, _) => Err(Error::Unauthenticated {
                        target: label,
                        message: format!(
                            "no refresh token in the secret store ({REFRESH_TOKEN}); start the session to sign in"
                        ),
                    }),
                }
            }
        }
    }

    /// Stores the token and returns the session `active` until it expires.
    async fn activate(
        &self,
        ctx: &ActionContext,
        session: &Session,
        token: Token,
    ) -> Result<Session> {
        if let Some(rt) = &token.refresh_token {
            ctx.secrets
                .put(&Self::key(session, REFRESH_TOKEN)?, rt)
                .await?;
        }
        ctx.secrets
            .put(&Self::key(session, ACCESS_TOKEN)?, &token.access_token)
            .await?;
        let mut active = session.clone();
        active.expiration = Some(token.expires_at);
        active.transition(SessionStatus::Active, ctx.clock.now())?;
        Ok(active)
    }
}

/// Labels an input error with the session.
fn in_session(label: &str, error: Error) -> Error {
    match error {
        Error::InvalidInput { field, reason } => Error::InvalidInput {
            field,
            reason: format!("{label}: {reason}"),
        },
        other => other,
    }
}

#[async_trait::async_trait]
impl SessionAction for AzureProvider {
    fn session_type(&self) -> SessionType {
        SessionType::Azure
    }

    fn capabilities(&self) -> Capabilities {
        // A refused refresh or client secret ends the session: rotate then
        // removes the tokens, and the manager leaves the session inactive.
        Capabilities::none()
            .with_rotate(true)
            .with_rotate_unauthenticated_ends_session(true)
    }

    async fn start(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        let token = self.acquire(ctx, session, true).await?;
        self.activate(ctx, session, token).await
    }

    async fn stop(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        let config: AzureConfig = session
            .config
            .get()
            .map_err(|e| in_session(&session.label(), e))?;
        ctx.secrets
            .delete(&Self::key(session, ACCESS_TOKEN)?)
            .await?;
        if config.credential == CredentialKind::DeviceCode {
            ctx.secrets
                .delete(&Self::key(session, REFRESH_TOKEN)?)
                .await?;
        }
        let mut inactive = session.clone();
        inactive.expiration = None;
        inactive.transition(SessionStatus::Inactive, ctx.clock.now())?;
        Ok(inactive)
    }

    async fn rotate(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        match self.acquire(ctx, session, false).await {
            Ok(token) => self.activate(ctx, session, token).await,
            Err(e @ Error::Unauthenticated { .. }) => {
                // The sign-in is gone: remove what start made available (see
                // `Capabilities::rotate_unauthenticated_ends_session`).
                ctx.secrets
                    .delete(&Self::key(session, ACCESS_TOKEN)?)
                    .await?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }
}
