//! Logins shared by several server instances through one repository
//! (`RedfishServerBuilder::share_sessions`), e.g. two instances behind one
//! address on one `PgWorkspace`.
//!
//! The repository is the truth; each instance's memory is a cache of it:
//! - a login is written before the token is handed out, so every instance
//!   knows the token once the client has it;
//! - a token this instance has not confirmed within the recheck window
//!   (zero by default: every request) is looked up by its record id, which
//!   follows from the token (`state::id_of`, `persist::record_id`): one
//!   keyed read, not a scan;
//! - the Sessions collection, a session resource and its DELETE read and
//!   delete the records themselves, so a DELETE on one instance ends the
//!   session on all of them at once;
//! - last uses are merged (the later wins) and an idle session is deleted
//!   only if no instance has used it within the timeout.

use std::sync::Arc;

use session_core::{Error, Result, WorkspaceRepository};

use super::persist::{self, record_id, stored};
use super::state::{Lookup, Principal, SessionEntry, SessionId, State, StoredSession, id_of};

/// The repository the instances share, and how long an entry read from it
/// is trusted before it is read again.
#[derive(Debug, Clone)]
pub(crate) struct SharedLogins {
    pub(crate) repo: Arc<dyn WorkspaceRepository>,
    pub(crate) recheck: std::time::Duration,
}

impl SharedLogins {
    /// The principal behind `token`, reading the repository unless memory
    /// confirmed it recently. `Ok(None)`: no live session has that token.
    pub(crate) async fn authenticate(
        &self,
        state: &State,
        token: &str,
    ) -> Result<Option<Principal>> {
        let key = super::state::token_key(token);
        if let Lookup::Found(who, _) = state.authenticate_key(&key, Some(self.recheck)) {
            return Ok(Some(who));
        }
        let id = id_of(&key);
        let Some(found) = self.read(state, id).await? else {
            return Ok(None);
        };
        // Compares digests of 256-bit random tokens: their equality leaks
        // nothing an attacker could use, so no constant-time compare.
        if found.key != key || !state.adopt(found) {
            return Ok(None);
        }
        Ok(match state.authenticate_key(&key, None) {
            Lookup::Found(who, _) => Some(who),
            Lookup::Missing | Lookup::Stale => None,
        })
    }

    /// Writes a new login's record; on failure the login is undone.
    pub(crate) async fn record_login(&self, state: &State, entry: &SessionEntry) -> Result<()> {
        let written = async {
            let record = persist::to_record(entry, state)?;
            self.repo.insert(record).await
        }
        .await;
        if written.is_err() {
            state.forget(entry.id);
        }
        written.map(|_| ())
    }

    /// The session with `Id` `id` if it is live anywhere, as memory now
    /// holds it. A record that is gone or expired is dropped from memory
    /// (an expired one is deleted in the background).
    pub(crate) async fn get(&self, state: &State, id: SessionId) -> Result<Option<SessionEntry>> {
        let Some(found) = self.read(state, id).await? else {
            return Ok(None);
        };
        if !state.adopt(found) {
            return Ok(None);
        }
        Ok(state.get(id))
    }

    /// The live sessions of `owner` (of everyone when `None`) in the
    /// repository, oldest first.
    pub(crate) async fn list(&self, state: &State, owner: Option<&str>) -> Result<Vec<SessionId>> {
        let now = state.clock.now();
        let timeout = state.settings().timeout;
        let mut all = Vec::new();
        for session in self.repo.list().await? {
            let Some(s) = stored(&session) else { continue };
            let last_used = state
                .last_used(s.id)
                .map_or(s.last_used, |m| m.max(s.last_used));
            if now >= last_used + timeout {
                state.expire_record(s.id);
                continue;
            }
            if owner.is_none_or(|o| s.username == o) {
                all.push((s.created, s.id));
            }
        }
        all.sort_unstable();
        Ok(all.into_iter().map(|(_, id)| id).collect())
    }

    /// Ends the session everywhere; false when it was already gone.
    pub(crate) async fn delete(&self, state: &State, id: SessionId) -> Result<bool> {
        state.forget(id);
        match self.repo.delete(record_id(id), None).await {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The record of `id`; `None` (and the session forgotten here) when
    /// there is none or it is unreadable.
    async fn read(&self, state: &State, id: SessionId) -> Result<Option<StoredSession>> {
        let found = match self.repo.get(record_id(id)).await {
            Ok(session) => stored(&session).filter(|s| s.id == id),
            Err(Error::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        if found.is_none() {
            state.forget(id);
        }
        Ok(found)
    }
}
