//! Secrets in process memory.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

use super::{SecretKey, SecretStore};
use crate::{Result, Secret, SessionId};

/// A [`SecretStore`] in memory. Values are zeroed when removed or dropped.
#[derive(Default)]
pub struct InMemorySecretStore {
    secrets: Mutex<BTreeMap<SecretKey, Secret>>,
}

impl InMemorySecretStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<SecretKey, Secret>) -> T) -> T {
        f(&mut self.secrets.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl fmt::Debug for InMemorySecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemorySecretStore")
            .field("len", &self.with(|m| m.len()))
            .finish()
    }
}

#[async_trait::async_trait]
impl SecretStore for InMemorySecretStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn get(&self, key: &SecretKey) -> Result<Option<Secret>> {
        Ok(self.with(|m| m.get(key).cloned()))
    }

    async fn put(&self, key: &SecretKey, value: &Secret) -> Result<()> {
        self.with(|m| m.insert(key.clone(), value.clone()));
        Ok(())
    }

    async fn delete(&self, key: &SecretKey) -> Result<bool> {
        Ok(self.with(|m| m.remove(key).is_some()))
    }

    async fn names(&self, session: SessionId) -> Result<Vec<String>> {
        Ok(self.with(|m| {
            m.keys()
                .filter(|k| k.session() == session)
                .map(|k| k.name().to_owned())
                .collect()
        }))
    }

    async fn delete_session(&self, session: SessionId) -> Result<usize> {
        Ok(self.with(|m| {
            let before = m.len();
            m.retain(|k, _| k.session() != session);
            before - m.len()
        }))
    }

    async fn sessions(&self) -> Result<Vec<SessionId>> {
        // Keys sort by session first, so equal sessions are adjacent.
        Ok(self.with(|m| {
            let mut ids: Vec<SessionId> = m.keys().map(SecretKey::session).collect();
            ids.dedup();
            ids
        }))
    }
}
