//! [`AzureProvider`], the [`SessionAction`] of the `azure` session type.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Client;
use session_core::{
    ActionContext, Capabilities, Error, Result, Secret, SecretKey, Session, SessionAction,
    SessionStatus, SessionType,
};

use session_core::device_code::{
    DEFAULT_POLL_INTERVAL, DeviceCodePrompt, DeviceCodePrompter, FnPrompter, StderrPrompter,
};

use crate::oauth::{self, Token};
use crate::secret_names::{ACCESS_TOKEN, CLIENT_SECRET, REFRESH_TOKEN};
use crate::{AzureConfig, AzureState, CredentialKind};

/// The provider of `azure` sessions.
///
/// - **start**: client secret → a client-credentials token; device code → a
///   refresh with the stored refresh token if there is one, else the device
///   flow (the [prompter](AzureProviderBuilder::device_prompter) shows the
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
///
/// User sign-ins record the [`SignedInAccount`](crate::SignedInAccount) in
/// the session's config. For [`azure_cli`](AzureConfig::azure_cli) sessions
/// (feature `azure-cli`), start and rotate also write the subscription and
/// the access token into the Azure CLI's files, and stop (or a rotate that
/// ends the session) removes them; see `session_azure::azure_cli`.
#[derive(Clone)]
pub struct AzureProvider {
    http: Client,
    prompter: Arc<dyn DeviceCodePrompter>,
    poll_interval: Duration,
    #[cfg(feature = "azure-cli")]
    azure_cli: Option<crate::azure_cli::AzureCliFiles>,
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
    prompter: Option<Arc<dyn DeviceCodePrompter>>,
    poll_interval: Duration,
    #[cfg(feature = "azure-cli")]
    azure_cli: Option<crate::azure_cli::AzureCliFiles>,
}

impl std::fmt::Debug for AzureProviderBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureProviderBuilder")
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

impl AzureProviderBuilder {
    /// Shows device sign-ins to the user, and is told when each ends.
    /// Default: [`StderrPrompter`].
    pub fn device_prompter(mut self, prompter: Arc<dyn DeviceCodePrompter>) -> Self {
        self.prompter = Some(prompter);
        self
    }

    /// Shows device sign-ins with a closure (a [`FnPrompter`]), for callers
    /// that only print; [`device_prompter`](Self::device_prompter) also
    /// learns when the sign-in ends.
    pub fn device_prompt(self, show: impl Fn(&DeviceCodePrompt) + Send + Sync + 'static) -> Self {
        self.device_prompter(Arc::new(FnPrompter::new(show)))
    }

    /// The device-flow poll interval when the server names none (RFC 8628
    /// default 5 s; Entra names one, some servers do not).
    pub fn device_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Where [`azure_cli`](crate::AzureConfig::azure_cli) sessions write
    /// the Azure CLI's files. Default: [`AzureCliFiles::from_env`] when a
    /// session first publishes (stop always cleans the directory that
    /// session wrote to).
    ///
    /// [`AzureCliFiles::from_env`]: crate::azure_cli::AzureCliFiles::from_env
    #[cfg(feature = "azure-cli")]
    pub fn azure_cli_files(mut self, files: crate::azure_cli::AzureCliFiles) -> Self {
        self.azure_cli = Some(files);
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
            prompter: self.prompter.unwrap_or_else(|| Arc::new(StderrPrompter)),
            poll_interval: self.poll_interval,
            #[cfg(feature = "azure-cli")]
            azure_cli: self.azure_cli,
        })
    }
}

impl AzureProvider {
    /// A [`AzureProviderBuilder`].
    pub fn builder() -> AzureProviderBuilder {
        AzureProviderBuilder {
            prompter: None,
            poll_interval: DEFAULT_POLL_INTERVAL,
            #[cfg(feature = "azure-cli")]
            azure_cli: None,
        }
    }

    fn key(session: &Session, name: &str) -> Result<SecretKey> {
        SecretKey::new(session.session_id, name)
    }

    fn state(session: &Session) -> Result<AzureState> {
        session
            .state
            .get()
            .map_err(|e| e.in_session(&session.label()))
    }

    fn config(session: &Session) -> Result<AzureConfig> {
        let label = session.label();
        let config: AzureConfig = session.config.get().map_err(|e| e.in_session(&label))?;
        config.validate().map_err(|e| e.in_session(&label))?;
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
        let device =
            oauth::device_authorization(&self.http, config, ctx.clock.now(), &label).await?;
        oauth::poll_device(
            &self.http,
            config,
            &device,
            self.poll_interval,
            &*self.prompter,
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

    /// Stores the token, records the signed-in account, publishes to the
    /// Azure CLI for [`azure_cli`](AzureConfig::azure_cli) sessions (start
    /// makes the subscription the default), and returns the session `active`
    /// until the token expires.
    async fn activate(
        &self,
        ctx: &ActionContext,
        session: &Session,
        token: Token,
        starting: bool,
    ) -> Result<Session> {
        let config = Self::config(session)?;
        let mut state = Self::state(session)?;
        if let Some(rt) = &token.refresh_token {
            ctx.secrets
                .put(&Self::key(session, REFRESH_TOKEN)?, rt)
                .await?;
        }
        ctx.secrets
            .put(&Self::key(session, ACCESS_TOKEN)?, &token.access_token)
            .await?;
        // A refresh whose answer names no account is still the same
        // sign-in: the account recorded at start stays.
        if let Some(account) = &token.account {
            state.signed_in_account = Some(account.clone());
        }
        if config.azure_cli {
            self.publish_to_azure_cli(ctx, session, &config, &mut state, &token, starting)
                .await?;
        } else {
            Self::withdraw_from_azure_cli(session, &mut state).await?;
        }
        let mut active = session.clone();
        active.replace_state(&state)?;
        active.expiration = Some(token.expires_at);
        active.transition(SessionStatus::Active, ctx.clock.now())?;
        Ok(active)
    }

    #[cfg(feature = "azure-cli")]
    async fn publish_to_azure_cli(
        &self,
        ctx: &ActionContext,
        session: &Session,
        config: &AzureConfig,
        state: &mut AzureState,
        token: &Token,
        starting: bool,
    ) -> Result<()> {
        use crate::azure_cli::{AzureCliFiles, Publication};
        let label = session.label();
        let account = state.signed_in_account.clone().ok_or_else(|| {
            Error::provider(
                "azure",
                &label,
                "the sign-in answer had no ID token naming the account, which the Azure CLI sink needs (the authority must honour the `openid profile` scopes)",
            )
        })?;
        let files = match (&state.azure_cli_published, &self.azure_cli) {
            (Some(record), _) => AzureCliFiles::in_dir(&record.dir),
            (None, Some(files)) => files.clone(),
            (None, None) => AzureCliFiles::from_env()?,
        };
        let publication = Publication {
            config: config.clone(),
            account,
            subscription_name: session.session_name.clone(),
            access_token: token.access_token.clone(),
            expires_at: token.expires_at,
            now: ctx.clock.now(),
            make_default: starting,
            previous: state.azure_cli_published.clone(),
        };
        let record = tokio::task::spawn_blocking(move || files.publish(&publication))
            .await
            .map_err(|e| {
                Error::provider_caused_by("azure", &label, "the Azure CLI sink task failed", e)
            })?
            .map_err(|e| e.in_session(&label))?;
        state.azure_cli_published = Some(record);
        Ok(())
    }

    #[cfg(not(feature = "azure-cli"))]
    async fn publish_to_azure_cli(
        &self,
        _ctx: &ActionContext,
        _session: &Session,
        config: &AzureConfig,
        _state: &mut AzureState,
        _token: &Token,
        _starting: bool,
    ) -> Result<()> {
        // `validate` refuses `azureCli` without the feature; this names it
        // again should an unvalidated config get here.
        config.validate()
    }

    /// Removes what the Azure CLI sink wrote for the session, if anything.
    async fn withdraw_from_azure_cli(session: &Session, state: &mut AzureState) -> Result<()> {
        let Some(record) = state.azure_cli_published.clone() else {
            return Ok(());
        };
        #[cfg(feature = "azure-cli")]
        {
            let label = session.label();
            let files = crate::azure_cli::AzureCliFiles::in_dir(&record.dir);
            tokio::task::spawn_blocking(move || files.withdraw(&record))
                .await
                .map_err(|e| {
                    Error::provider_caused_by("azure", &label, "the Azure CLI sink task failed", e)
                })?
                .map_err(|e| e.in_session(&label))?;
            state.azure_cli_published = None;
        }
        #[cfg(not(feature = "azure-cli"))]
        tracing::warn!(
            session = %session.label(),
            dir = %record.dir,
            "the session wrote to the Azure CLI's files, and this build has no Azure CLI sink (feature `azure-cli`) to remove it; stop it with a build that has"
        );
        Ok(())
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
        self.activate(ctx, session, token, true).await
    }

    async fn stop(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        let config: AzureConfig = session
            .config
            .get()
            .map_err(|e| e.in_session(&session.label()))?;
        let mut state = Self::state(session)?;
        Self::withdraw_from_azure_cli(session, &mut state).await?;
        ctx.secrets
            .delete(&Self::key(session, ACCESS_TOKEN)?)
            .await?;
        if config.credential == CredentialKind::DeviceCode {
            ctx.secrets
                .delete(&Self::key(session, REFRESH_TOKEN)?)
                .await?;
        }
        // Becoming inactive clears the expiry, start time and state.
        let mut inactive = session.clone();
        inactive.transition(SessionStatus::Inactive, ctx.clock.now())?;
        Ok(inactive)
    }

    async fn rotate(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        match self.acquire(ctx, session, false).await {
            Ok(token) => self.activate(ctx, session, token, false).await,
            Err(e @ Error::Unauthenticated { .. }) => {
                // The sign-in is gone: remove what start made available (see
                // `Capabilities::rotate_unauthenticated_ends_session`). The
                // manager then leaves the session inactive, which clears its
                // state, the record of the Azure CLI files included: they
                // are withdrawn here, while the record is still at hand.
                let mut state = Self::state(session)?;
                Self::withdraw_from_azure_cli(session, &mut state).await?;
                ctx.secrets
                    .delete(&Self::key(session, ACCESS_TOKEN)?)
                    .await?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }
}
