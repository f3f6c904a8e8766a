//! AWS credentials as this crate passes them around and stores them.

use std::fmt;

use session_core::{Error, Result, Secret, SecretKey, SecretStore, Session, SessionId};
use time::OffsetDateTime;

use crate::secret_names::{
    ISSUED_ACCESS_KEY_ID, ISSUED_EXPIRATION, ISSUED_SECRET_ACCESS_KEY, ISSUED_SESSION_TOKEN,
    LONG_TERM_ACCESS_KEY_ID, LONG_TERM_SECRET_ACCESS_KEY,
};

/// A set of AWS credentials. The secret parts are [`Secret`]s, so `Debug`
/// never shows them; the access key id is shown (it is an identifier that
/// appears in CloudTrail, not a secret) but only its first 4 characters.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    /// `AKIA…` (long-term) or `ASIA…` (temporary).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Secret,
    /// The session token of temporary credentials.
    pub session_token: Option<Secret>,
    /// When temporary credentials expire.
    pub expiration: Option<OffsetDateTime>,
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix: String = self.access_key_id.chars().take(4).collect();
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &format_args!("{prefix}…"))
            .field("secret_access_key", &self.secret_access_key)
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "Secret(<redacted>)"),
            )
            .field("expiration", &self.expiration)
            .finish()
    }
}

impl AwsCredentials {
    /// Converts to the type every aws-sdk client accepts.
    pub fn to_sdk(&self, provider_name: &'static str) -> aws_credential_types::Credentials {
        aws_credential_types::Credentials::new(
            self.access_key_id.clone(),
            self.secret_access_key.expose().to_owned(),
            self.session_token.as_ref().map(|t| t.expose().to_owned()),
            self.expiration.map(std::time::SystemTime::from),
            provider_name,
        )
    }

    /// Stores these as the issued credentials of `session` (the `ISSUED_*`
    /// [`secret_names`](crate::secret_names)).
    pub async fn store_issued(&self, store: &dyn SecretStore, session: SessionId) -> Result<()> {
        let key = |name| SecretKey::new(session, name);
        // The token and expiry first and the key id last: a reader that finds
        // the key id finds a complete set.
        match &self.session_token {
            Some(token) => store.put(&key(ISSUED_SESSION_TOKEN)?, token).await?,
            None => {
                store.delete(&key(ISSUED_SESSION_TOKEN)?).await?;
            }
        }
        match self.expiration {
            Some(at) => {
                let text = at
                    .format(&time::format_description::well_known::Rfc3339)
                    .map_err(|e| Error::invalid_input("expiration", e.to_string()))?;
                store
                    .put(&key(ISSUED_EXPIRATION)?, &Secret::new(text))
                    .await?
            }
            None => {
                store.delete(&key(ISSUED_EXPIRATION)?).await?;
            }
        }
        store
            .put(&key(ISSUED_SECRET_ACCESS_KEY)?, &self.secret_access_key)
            .await?;
        store
            .put(
                &key(ISSUED_ACCESS_KEY_ID)?,
                &Secret::new(self.access_key_id.clone()),
            )
            .await
    }

    /// The issued credentials of `parent`, the session that `label` (a
    /// chained role, an SSM session…) signs its calls with.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming `parentSessionId` when `parent` is not
    /// an AWS credential session or has no issued credentials (not
    /// started); the secret store's errors.
    pub async fn of_parent(store: &dyn SecretStore, parent: &Session, label: &str) -> Result<Self> {
        if !parent.session_type.is_aws_credentials() {
            return Err(Error::invalid_input(
                "parentSessionId",
                format!(
                    "{label}: the parent {} is a {} session, not AWS credentials",
                    parent.label(),
                    parent.session_type
                ),
            ));
        }
        Self::load_issued(store, parent.session_id)
            .await?
            .ok_or_else(|| {
                Error::invalid_input(
                    "parentSessionId",
                    format!(
                        "{label}: the parent {} has no issued credentials; start it",
                        parent.label()
                    ),
                )
            })
    }

    /// The issued credentials of `session`, if it has any.
    pub async fn load_issued(store: &dyn SecretStore, session: SessionId) -> Result<Option<Self>> {
        let get = |name| async move { store.get(&SecretKey::new(session, name)?).await };
        let Some(id) = get(ISSUED_ACCESS_KEY_ID).await? else {
            return Ok(None);
        };
        let Some(secret) = get(ISSUED_SECRET_ACCESS_KEY).await? else {
            return Ok(None);
        };
        let expiration = match get(ISSUED_EXPIRATION).await? {
            Some(text) => Some(
                OffsetDateTime::parse(
                    text.expose(),
                    &time::format_description::well_known::Rfc3339,
                )
                .map_err(|e| {
                    Error::secret_store(format!("stored expiration is not RFC 3339: {e}"), None)
                })?,
            ),
            None => None,
        };
        Ok(Some(Self {
            access_key_id: id.expose().to_owned(),
            secret_access_key: secret,
            session_token: get(ISSUED_SESSION_TOKEN).await?,
            expiration,
        }))
    }

    /// Removes the issued credentials of `session` (idempotent).
    pub async fn delete_issued(store: &dyn SecretStore, session: SessionId) -> Result<()> {
        // The key id first: once it is gone, readers see no credentials.
        for name in [
            ISSUED_ACCESS_KEY_ID,
            ISSUED_SECRET_ACCESS_KEY,
            ISSUED_SESSION_TOKEN,
            ISSUED_EXPIRATION,
        ] {
            store.delete(&SecretKey::new(session, name)?).await?;
        }
        Ok(())
    }

    /// The long-term access key of an IAM-user session.
    pub async fn load_long_term(
        store: &dyn SecretStore,
        session: SessionId,
    ) -> Result<Option<Self>> {
        let get = |name| async move { store.get(&SecretKey::new(session, name)?).await };
        match (
            get(LONG_TERM_ACCESS_KEY_ID).await?,
            get(LONG_TERM_SECRET_ACCESS_KEY).await?,
        ) {
            (Some(id), Some(secret)) => Ok(Some(Self {
                access_key_id: id.expose().to_owned(),
                secret_access_key: secret,
                session_token: None,
                expiration: None,
            })),
            _ => Ok(None),
        }
    }

    /// Stores the long-term access key of an IAM-user session (the
    /// `LONG_TERM_*` [`secret_names`](crate::secret_names)).
    pub async fn store_long_term(
        store: &dyn SecretStore,
        session: SessionId,
        access_key_id: &str,
        secret_access_key: &Secret,
    ) -> Result<()> {
        crate::validate::access_key_id(access_key_id)?;
        store
            .put(
                &SecretKey::new(session, LONG_TERM_SECRET_ACCESS_KEY)?,
                secret_access_key,
            )
            .await?;
        store
            .put(
                &SecretKey::new(session, LONG_TERM_ACCESS_KEY_ID)?,
                &Secret::new(access_key_id.to_owned()),
            )
            .await
    }
}
