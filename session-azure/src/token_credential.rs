//! [`AzureSessionCredential`]: an active `azure` session as an
//! `azure_core` [`TokenCredential`], so any Azure SDK for Rust client can
//! use it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::error::ErrorKind;
use reqwest::Client;
use session_core::{
    ActionContext, Error, Result, Secret, SecretKey, Session, SessionStatus, SessionType,
};

use crate::oauth::{self, Token};
use crate::secret_names::{ACCESS_TOKEN, CLIENT_SECRET, REFRESH_TOKEN};
use crate::{AzureConfig, CredentialKind};

/// A token is renewed when it has less than this left.
pub const DEFAULT_MIN_TTL: Duration = Duration::from_secs(300);

/// An active `azure` session as a [`TokenCredential`].
///
/// `get_token(scopes)` returns a cached token while it has more than the
/// minimum lifetime left (default [`DEFAULT_MIN_TTL`]); otherwise it gets a
/// new one for exactly those scopes, once for all concurrent callers: with
/// the session's refresh token (an Entra refresh token serves every
/// resource the user consented to; a rotated refresh token replaces the
/// stored one) or, for a service principal, with its client secret. The
/// session's own token (for its configured scope) seeds the cache.
///
/// ```no_run
/// # async fn demo(ctx: session_core::ActionContext, session: session_core::Session)
/// # -> session_core::Result<()> {
/// use std::sync::Arc;
/// use azure_core::credentials::TokenCredential;
/// use session_azure::AzureSessionCredential;
///
/// let credential: Arc<dyn TokenCredential> =
///     Arc::new(AzureSessionCredential::for_session(&ctx, &session).await?);
/// // e.g. SecretClient::new("https://myvault.vault.azure.net/", credential, None)
/// let token = credential
///     .get_token(&["https://vault.azure.net/.default"], None)
///     .await
///     .map_err(|e| session_core::Error::provider("azure", "demo", e.to_string()))?;
/// # let _ = token;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct AzureSessionCredential {
    inner: Arc<Inner>,
    min_ttl: Duration,
}

struct Inner {
    http: Client,
    config: AzureConfig,
    session: Session,
    ctx: ActionContext,
    /// Tokens by scope set (sorted, space-joined). One lock for the cache
    /// and the renewals: concurrent callers wait for one renewal.
    cache: tokio::sync::Mutex<HashMap<String, Token>>,
}

impl std::fmt::Debug for AzureSessionCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureSessionCredential")
            .field("session", &self.inner.session.label())
            .field("tenant_id", &self.inner.config.tenant_id)
            .field("client_id", &self.inner.config.client_id)
            .finish_non_exhaustive()
    }
}

fn scope_key(scopes: &[&str]) -> String {
    let mut sorted: Vec<&str> = scopes
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    sorted.sort_unstable();
    sorted.dedup();
    sorted.join(" ")
}

impl AzureSessionCredential {
    /// A credential on `session`, which must be an active `azure` session
    /// (its access token is read from the secret store).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when the session is not an active `azure`
    /// session or its configuration is invalid.
    pub async fn for_session(ctx: &ActionContext, session: &Session) -> Result<Self> {
        let label = session.label();
        if session.session_type != SessionType::Azure || session.status() != SessionStatus::Active {
            return Err(Error::invalid_input(
                "session",
                format!("{label} is not an active azure session"),
            ));
        }
        let config: AzureConfig = session.config.get()?;
        config.validate()?;
        let mut cache = HashMap::new();
        if let (Some(token), Some(expires_at)) = (
            ctx.secrets
                .get(&SecretKey::new(session.session_id, ACCESS_TOKEN)?)
                .await?,
            session.expiration,
        ) {
            cache.insert(
                scope_key(&[config.scope()]),
                Token {
                    access_token: token,
                    expires_at,
                    refresh_token: None,
                    account: None,
                },
            );
        }
        Ok(Self {
            inner: Arc::new(Inner {
                http: oauth::http_client()?,
                config,
                session: session.clone(),
                ctx: ctx.clone(),
                cache: tokio::sync::Mutex::new(cache),
            }),
            min_ttl: DEFAULT_MIN_TTL,
        })
    }

    /// Sets the minimum lifetime a cached token must have left.
    #[must_use]
    pub fn with_min_ttl(mut self, min_ttl: Duration) -> Self {
        self.min_ttl = min_ttl;
        self
    }

    /// A token for `scopes`: cached, or renewed (see the type's docs).
    ///
    /// # Errors
    ///
    /// The token endpoint's error by category, e.g.
    /// [`Error::Unauthenticated`] when the refresh token has expired.
    pub async fn token_for(&self, scopes: &[&str]) -> Result<Token> {
        let key = scope_key(scopes);
        let inner = &self.inner;
        let label = inner.session.label();
        if key.is_empty() {
            return Err(Error::invalid_input(
                "scopes",
                format!("{label}: no scope was asked for"),
            ));
        }
        let mut cache = inner.cache.lock().await;
        let now = inner.ctx.clock.now();
        if let Some(token) = cache.get(&key)
            && token.expires_at - self.min_ttl > now
        {
            return Ok(token.clone());
        }
        let mut config = inner.config.clone();
        config.scope = Some(key.clone());
        let id = inner.session.session_id;
        let token = match config.credential {
            CredentialKind::ClientSecret => {
                let secret = self.stored(CLIENT_SECRET).await?.ok_or_else(|| {
                    Error::invalid_input("clientSecret", format!("{label} has no client secret"))
                })?;
                oauth::client_credentials(&inner.http, &config, &secret, &*inner.ctx.clock, &label)
                    .await?
            }
            _ => {
                let rt =
                    self.stored(REFRESH_TOKEN)
                        .await?
                        .ok_or_else(|| Error::Unauthenticated {
                            target: label.clone(),
                            message:
                                "no refresh token in the secret store; start the session to sign in"
                                    .into(),
                        })?;
                let token =
                    oauth::refresh(&inner.http, &config, &rt, None, &*inner.ctx.clock, &label)
                        .await?;
                if let Some(new_rt) = &token.refresh_token {
                    inner
                        .ctx
                        .secrets
                        .put(&SecretKey::new(id, REFRESH_TOKEN)?, new_rt)
                        .await?;
                }
                token
            }
        };
        let token = Token {
            refresh_token: None,
            ..token
        };
        cache.insert(key, token.clone());
        Ok(token)
    }

    async fn stored(&self, name: &str) -> Result<Option<Secret>> {
        self.inner
            .ctx
            .secrets
            .get(&SecretKey::new(self.inner.session.session_id, name)?)
            .await
    }
}

#[async_trait::async_trait]
impl TokenCredential for AzureSessionCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let token = self
            .token_for(scopes)
            .await
            .map_err(|e| azure_core::Error::with_message(ErrorKind::Credential, e.to_string()))?;
        Ok(AccessToken::new(
            token.access_token.expose().to_owned(),
            token.expires_at,
        ))
    }
}
