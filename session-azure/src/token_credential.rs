//! [`AzureSessionCredential`]: an `azure` session of a `SessionManager` as an
//! `azure_core` [`TokenCredential`], so any Azure SDK for Rust client can
//! use it.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::error::ErrorKind;
use reqwest::Client;
use session_core::{DEFAULT_MIN_TTL, Error, Result, SecretKey, SessionManager, SessionType};

use crate::oauth::{self, Token};
use crate::secret_names::{ACCESS_TOKEN, CLIENT_SECRET, REFRESH_TOKEN};
use crate::{AzureConfig, CredentialKind};

/// An `azure` session of a [`SessionManager`] as a [`TokenCredential`].
///
/// `get_token(scopes)` returns a cached token while it has more than the
/// minimum lifetime left (default [`DEFAULT_MIN_TTL`]); otherwise, once for
/// all concurrent callers of this credential:
///
/// - for the session's own scope, the session's token after
///   [`SessionManager::ensure_active`] (which starts the session, or rotates
///   it when its token is inside the window, through the manager);
/// - for any other scope, a token for exactly those scopes, with the
///   session's refresh token (an Entra refresh token serves every resource
///   the user consented to) or, for a service principal, its client secret.
///   This runs under the session's [lease](SessionManager::lease), so a
///   rotated refresh token replaces the stored one without racing a start,
///   stop or rotate of the session.
///
/// ```no_run
/// # async fn demo(manager: session_core::SessionManager) -> session_core::Result<()> {
/// use std::sync::Arc;
/// use azure_core::credentials::TokenCredential;
/// use session_azure::AzureSessionCredential;
///
/// let credential: Arc<dyn TokenCredential> =
///     Arc::new(AzureSessionCredential::new(manager, "my-azure-session"));
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
    manager: SessionManager,
    session: String,
    http: OnceLock<Client>,
    /// Tokens by scope set (sorted, space-joined). One lock for the cache
    /// and the renewals: concurrent callers wait for one renewal.
    cache: tokio::sync::Mutex<HashMap<String, Token>>,
}

impl std::fmt::Debug for AzureSessionCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureSessionCredential")
            .field("session", &self.inner.session)
            .field("min_ttl", &self.min_ttl)
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
    /// A credential on the `azure` session `id_or_name` of `manager`.
    /// Nothing is called until the first token is asked for.
    pub fn new(manager: SessionManager, id_or_name: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                manager,
                session: id_or_name.into(),
                http: OnceLock::new(),
                cache: tokio::sync::Mutex::new(HashMap::new()),
            }),
            min_ttl: DEFAULT_MIN_TTL,
        }
    }

    /// Sets the minimum lifetime a handed-out token must have left.
    #[must_use]
    pub fn with_min_ttl(mut self, min_ttl: Duration) -> Self {
        self.min_ttl = min_ttl;
        self
    }

    /// A token for `scopes`: cached, or renewed (see the type's docs).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when the session is not an `azure` session or
    /// no scope is given; the token endpoint's error by category, e.g.
    /// [`Error::Unauthenticated`] when the refresh token has expired.
    pub async fn token_for(&self, scopes: &[&str]) -> Result<Token> {
        let key = scope_key(scopes);
        let inner = &self.inner;
        let manager = &inner.manager;
        let session = manager.find(&inner.session).await?;
        let label = session.label();
        if session.session_type != SessionType::Azure {
            return Err(Error::invalid_input(
                "session",
                format!("{label} is not an azure session"),
            ));
        }
        if key.is_empty() {
            return Err(Error::invalid_input(
                "scopes",
                format!("{label}: no scope was asked for"),
            ));
        }
        let mut cache = inner.cache.lock().await;
        let now = manager.clock().now();
        if let Some(token) = cache.get(&key)
            && token.expires_at - self.min_ttl > now
        {
            return Ok(token.clone());
        }
        let id = session.session_id.to_string();
        let session = manager.ensure_active(&id, self.min_ttl).await?;
        let config: AzureConfig = session.config.get().map_err(|e| e.in_session(&label))?;
        config.validate().map_err(|e| e.in_session(&label))?;
        let token = if key == scope_key(&[config.scope()]) {
            let access_token = manager
                .secrets()
                .get(&SecretKey::new(session.session_id, ACCESS_TOKEN)?)
                .await?
                .ok_or_else(|| Error::Unauthenticated {
                    target: label.clone(),
                    message: "no access token in the secret store; start the session again".into(),
                })?;
            Token {
                access_token,
                expires_at: session.expiration.unwrap_or(now),
                refresh_token: None,
                account: None,
            }
        } else {
            self.token_for_other_scope(&id, config, key.clone()).await?
        };
        cache.insert(key, token.clone());
        Ok(token)
    }

    /// A token for a scope other than the session's own, under the
    /// session's lease.
    async fn token_for_other_scope(
        &self,
        id: &str,
        mut config: AzureConfig,
        scope: String,
    ) -> Result<Token> {
        let http = match self.inner.http.get() {
            Some(http) => http.clone(),
            None => {
                let built = oauth::http_client()?;
                self.inner.http.get_or_init(|| built).clone()
            }
        };
        let lease = self.inner.manager.lease(id).await?;
        let label = lease.session().label();
        let clock = &*lease.context().clock;
        let secrets = lease.secrets().clone();
        let id = lease.id();
        let stored = |name: &'static str| {
            let secrets = secrets.clone();
            async move { secrets.get(&SecretKey::new(id, name)?).await }
        };
        config.scope = Some(scope);
        let token = match config.credential {
            CredentialKind::ClientSecret => {
                let secret = stored(CLIENT_SECRET).await?.ok_or_else(|| {
                    Error::invalid_input("clientSecret", format!("{label} has no client secret"))
                })?;
                oauth::client_credentials(&http, &config, &secret, clock, &label).await?
            }
            _ => {
                let rt = stored(REFRESH_TOKEN)
                    .await?
                    .ok_or_else(|| Error::Unauthenticated {
                        target: label.clone(),
                        message:
                            "no refresh token in the secret store; start the session to sign in"
                                .into(),
                    })?;
                let token = oauth::refresh(&http, &config, &rt, None, clock, &label).await?;
                if let Some(new_rt) = &token.refresh_token {
                    secrets
                        .put(&SecretKey::new(id, REFRESH_TOKEN)?, new_rt)
                        .await?;
                }
                token
            }
        };
        drop(lease);
        Ok(Token {
            refresh_token: None,
            ..token
        })
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
