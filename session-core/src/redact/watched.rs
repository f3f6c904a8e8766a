//! The secret store wrapper behind [`Redactor::watch`].

use std::sync::Arc;

use super::Redactor;
use crate::{Result, Secret, SecretKey, SecretStore, SessionId};

/// A secret store that tells a [`Redactor`] every value it hands out or
/// takes in.
#[derive(Debug)]
pub(super) struct Watched {
    pub(super) store: Arc<dyn SecretStore>,
    pub(super) redactor: Redactor,
}

#[async_trait::async_trait]
impl SecretStore for Watched {
    fn backend(&self) -> &'static str {
        self.store.backend()
    }

    async fn get(&self, key: &SecretKey) -> Result<Option<Secret>> {
        let value = self.store.get(key).await?;
        if let Some(secret) = &value {
            self.redactor.add(secret);
        }
        Ok(value)
    }

    async fn put(&self, key: &SecretKey, value: &Secret) -> Result<()> {
        self.redactor.add(value);
        self.store.put(key, value).await
    }

    async fn delete(&self, key: &SecretKey) -> Result<bool> {
        self.store.delete(key).await
    }

    async fn names(&self, session: SessionId) -> Result<Vec<String>> {
        self.store.names(session).await
    }

    async fn delete_session(&self, session: SessionId) -> Result<usize> {
        self.store.delete_session(session).await
    }

    async fn sessions(&self) -> Result<Vec<SessionId>> {
        self.store.sessions().await
    }
}
