//! AWS credentials as this crate passes them around and stores them.

use std::fmt;

use session_core::{Error, Result, Secret, SecretKey, SecretStore, SessionId};
use time::OffsetDateTime;

/// Secret names under which a session's **issued** (temporary) credentials
/// are kept in the [`SecretStore`], so children (chained roles),
/// `credential_process` and `env` can use them.
pub mod issued {
    /// The access key id of the temporary credentials.
    pub const ACCESS_KEY_ID: &str = "aws-issued-access-key-id";
    /// The secret access key of the temporary credentials.
    pub const SECRET_ACCESS_KEY: &str = "aws-issued-secret-access-key";
    /// The session token of the temporary credentials.
    pub const SESSION_TOKEN: &str = "aws-issued-session-token";
    /// Their expiry, RFC 3339.
    pub const EXPIRATION: &str = "aws-issued-expiration";
}

/// Secret names of an IAM user's **long-term** access key.
pub mod long_term {
    /// The access key id (`AKIA…`).
    pub const ACCESS_KEY_ID: &str = "aws-access-key-id";
    /// The secret access key.
    pub const SECRET_ACCESS_KEY: &str = "aws-secret-access-key";
}

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

    /// Stores these as the issued credentials of `session`.
    pub async fn store_issued(&self, store: &dyn SecretStore, session: SessionId) -> Result<()> {
        let key = |name| SecretKey::new(session, name);
        // The token and expiry first and the key id last: a reader that finds
        // the key id finds a complete set.
        match &self.session_token {
            Some(token) => store.put(&key(issued::SESSION_TOKEN)?, token).await?,
            None => {
                store.delete(&key(issued::SESSION_TOKEN)?).await?;
            }
        }
        match self.expiration {
            Some(at) => {
                let text = at
                    .format(&time::format_description::well_known::Rfc3339)
                    .map_err(|e| Error::invalid_input("expiration", e.to_string()))?;
                store
                    .put(&key(issued::EXPIRATION)?, &Secret::new(text))
                    .await?
            }
            None => {
                store.delete(&key(issued::EXPIRATION)?).await?;
            }
        }
        store
            .put(&key(issued::SECRET_ACCESS_KEY)?, &self.secret_access_key)
            .await?;
        store
            .put(
                &key(issued::ACCESS_KEY_ID)?,
                &Secret::new(self.access_key_id.clone()),
            )
            .await
    }

    /// The issued credentials of `session`, if it has any.
    pub async fn load_issued(store: &dyn SecretStore, session: SessionId) -> Result<Option<Self>> {
        let get = |name| async move { store.get(&SecretKey::new(session, name)?).await };
        let Some(id) = get(issued::ACCESS_KEY_ID).await? else {
            return Ok(None);
        };
        let Some(secret) = get(issued::SECRET_ACCESS_KEY).await? else {
            return Ok(None);
        };
        let expiration = match get(issued::EXPIRATION).await? {
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
            session_token: get(issued::SESSION_TOKEN).await?,
            expiration,
        }))
    }

    /// Removes the issued credentials of `session` (idempotent).
    pub async fn delete_issued(store: &dyn SecretStore, session: SessionId) -> Result<()> {
        // The key id first: once it is gone, readers see no credentials.
        for name in [
            issued::ACCESS_KEY_ID,
            issued::SECRET_ACCESS_KEY,
            issued::SESSION_TOKEN,
            issued::EXPIRATION,
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
            get(long_term::ACCESS_KEY_ID).await?,
            get(long_term::SECRET_ACCESS_KEY).await?,
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

    /// Stores the long-term access key of an IAM-user session.
    pub async fn store_long_term(
        store: &dyn SecretStore,
        session: SessionId,
        access_key_id: &str,
        secret_access_key: &Secret,
    ) -> Result<()> {
        crate::validate::access_key_id(access_key_id)?;
        store
            .put(
                &SecretKey::new(session, long_term::SECRET_ACCESS_KEY)?,
                secret_access_key,
            )
            .await?;
        store
            .put(
                &SecretKey::new(session, long_term::ACCESS_KEY_ID)?,
                &Secret::new(access_key_id.to_owned()),
            )
            .await
    }
}
