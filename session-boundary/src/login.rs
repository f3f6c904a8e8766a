//! Logging in to the controller for a session: a stored auth token while it
//! lasts, else a password login; a 401 drops the token and logs in once
//! more (`boundary.md` §1.3).

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use session_core::{ActionContext, Error, Result, Secret, SecretKey, Session};
use time::OffsetDateTime;

use crate::api::ControllerClient;
use crate::config::BoundaryConfig;
use crate::secret_names;

/// A token this close to its expiration is not used: log in again.
const TOKEN_MARGIN: time::Duration = time::Duration::minutes(1);

/// Asks the user for a password when the secret store has none (e.g.
/// `sessionctl`'s terminal prompt). A password it returns is used for one
/// login and not stored.
#[async_trait::async_trait]
pub trait PasswordPrompt: Send + Sync + fmt::Debug {
    /// The password of `login_name` on `controller` for the session
    /// `label`, or `None` to give up.
    ///
    /// # Errors
    ///
    /// Any error of the prompt (e.g. no terminal).
    async fn password(
        &self,
        label: &str,
        controller: &str,
        login_name: &str,
    ) -> Result<Option<Secret>>;
}

/// What is kept in the secret store for a login.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredToken {
    id: String,
    token: String,
    controller: String,
    auth_method_id: String,
    #[serde(with = "time::serde::rfc3339::option", default)]
    expiration: Option<OffsetDateTime>,
}

/// The logins of one session.
pub(crate) struct Login<'a> {
    pub(crate) ctx: &'a ActionContext,
    pub(crate) session: &'a Session,
    pub(crate) config: &'a BoundaryConfig,
    pub(crate) client: &'a ControllerClient,
    pub(crate) prompt: Option<&'a Arc<dyn PasswordPrompt>>,
}

impl Login<'_> {
    fn key(&self) -> Result<SecretKey> {
        SecretKey::new(
            self.session.session_id,
            secret_names::auth_token(self.client.address(), &self.config.auth_method_id),
        )
    }

    /// A client with a valid token: the stored one, else a new login.
    pub(crate) async fn client(&self) -> Result<ControllerClient> {
        if let Some(stored) = self.stored().await? {
            return Ok(self.client.with_token(Secret::new(stored.token)));
        }
        self.login().await
    }

    /// Runs `call` with an authenticated client; when the controller says
    /// 401 (token expired or revoked), logs in again and runs it once more.
    /// A 401 means the call did nothing, so repeating it is safe.
    pub(crate) async fn run<T, F, Fut>(&self, call: F) -> Result<T>
    where
        F: Fn(ControllerClient) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let client = self.client().await?;
        match call(client).await {
            Err(Error::Unauthenticated { .. }) => {
                tracing::info!(session = %self.session.label(), "the controller refused the auth token; logging in again");
                self.ctx.secrets.delete(&self.key()?).await?;
                call(self.login().await?).await
            }
            other => other,
        }
    }

    async fn stored(&self) -> Result<Option<StoredToken>> {
        let Some(secret) = self.ctx.secrets.get(&self.key()?).await? else {
            return Ok(None);
        };
        let Ok(stored) = serde_json::from_str::<StoredToken>(secret.expose()) else {
            return Ok(None);
        };
        let now = self.ctx.clock.now();
        let fresh = stored.expiration.is_none_or(|e| e - TOKEN_MARGIN > now);
        let same = stored.controller == self.client.address()
            && stored.auth_method_id == self.config.auth_method_id;
        Ok((fresh && same).then_some(stored))
    }

    /// A password login; the token goes to the secret store.
    pub(crate) async fn login(&self) -> Result<ControllerClient> {
        let label = self.session.label();
        let stored = self
            .ctx
            .secrets
            .get(&SecretKey::new(
                self.session.session_id,
                secret_names::PASSWORD,
            )?)
            .await?;
        let password = match (stored, self.prompt) {
            (Some(password), _) => password,
            (None, Some(prompt)) => prompt
                .password(&label, self.client.address(), &self.config.login_name)
                .await?
                .ok_or_else(|| Error::Cancelled {
                    operation: format!("log in to {}", self.client.address()),
                    reason: "no password was given".into(),
                })?,
            (None, None) => {
                return Err(Error::invalid_input(
                    "password",
                    format!(
                        "{label} has no password in the secret store ({}) and no prompt was given",
                        secret_names::PASSWORD
                    ),
                ));
            }
        };
        let token = self
            .client
            .authenticate_password(
                &self.config.auth_method_id,
                &self.config.login_name,
                &password,
            )
            .await
            .map_err(|e| e.in_session(&label))?;
        let stored = StoredToken {
            id: token.id.clone(),
            token: token.token.expose().to_owned(),
            controller: self.client.address().to_owned(),
            auth_method_id: self.config.auth_method_id.clone(),
            expiration: token.expiration_time,
        };
        let json = serde_json::to_string(&stored)
            .map_err(|e| Error::invalid_input("auth token", e.to_string()))?;
        self.ctx
            .secrets
            .put(&self.key()?, &Secret::new(json))
            .await?;
        Ok(self.client.with_token(token.token))
    }

    /// Logs out: deletes the token on the controller, then in the store.
    pub(crate) async fn logout(&self) -> Result<()> {
        let key = self.key()?;
        if let Some(stored) = self.stored().await? {
            let client = self.client.with_token(Secret::new(stored.token));
            match client.logout(&stored.id).await {
                Ok(()) | Err(Error::Unauthenticated { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        self.ctx.secrets.delete(&key).await?;
        Ok(())
    }
}
