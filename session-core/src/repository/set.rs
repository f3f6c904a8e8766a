//! The rules every repository enforces, on an in-memory list of sessions.
//! `InMemoryWorkspace` and `FsWorkspace` both keep one of these, so the rules
//! are written once.

/// Maps keyed by session id, with a fast hash.
pub(crate) type IdMap<V> = std::collections::HashMap<SessionId, V, foldhash::fast::RandomState>;

use super::rules;
use crate::{Error, Result, Session, SessionId};

/// Sessions in insertion order, indexed by id.
#[derive(Debug, Default, Clone)]
pub(crate) struct SessionSet {
    sessions: Vec<Session>,
    index: IdMap<usize>,
}

impl SessionSet {
    /// Builds the set from stored sessions, refusing duplicate ids.
    pub(crate) fn from_sessions(sessions: Vec<Session>) -> std::result::Result<Self, SessionId> {
        let mut index = IdMap::with_capacity_and_hasher(sessions.len(), Default::default());
        for (i, session) in sessions.iter().enumerate() {
            if index.insert(session.session_id, i).is_some() {
                return Err(session.session_id);
            }
        }
        Ok(Self { sessions, index })
    }

    pub(crate) fn sessions(&self) -> &[Session] {
        &self.sessions
    }

    pub(crate) fn len(&self) -> usize {
        self.sessions.len()
    }

    pub(crate) fn position(&self, id: SessionId) -> Option<usize> {
        self.index.get(&id).copied()
    }

    pub(crate) fn get(&self, id: SessionId) -> Result<&Session> {
        self.position(id)
            .map(|i| &self.sessions[i])
            .ok_or_else(|| Error::not_found(format!("session {id}")))
    }

    pub(crate) fn insert(&mut self, mut session: Session) -> Result<Session> {
        session.validate()?;
        if let Some(existing) = self.position(session.session_id) {
            return Err(rules::already_exists(&self.sessions[existing]));
        }
        self.check_parent(&session)?;
        session.set_revision(1);
        self.index.insert(session.session_id, self.sessions.len());
        self.sessions.push(session.clone());
        Ok(session)
    }

    pub(crate) fn update(&mut self, session: Session) -> Result<Session> {
        session.validate()?;
        let i = self
            .position(session.session_id)
            .ok_or_else(|| Error::not_found(session.label()))?;
        let stored = &self.sessions[i];
        rules::check_update(stored, &session)?;
        if session.parent_session_id != stored.parent_session_id {
            self.check_parent(&session)?;
        }
        let session = rules::at_revision(session, stored.revision() + 1);
        self.sessions[i] = session.clone();
        Ok(session)
    }

    pub(crate) fn delete(&mut self, id: SessionId, expected: Option<u64>) -> Result<Session> {
        let i = self
            .position(id)
            .ok_or_else(|| Error::not_found(format!("session {id}")))?;
        let stored = &self.sessions[i];
        let child = self
            .sessions
            .iter()
            .find(|s| s.parent_session_id == Some(id));
        rules::check_delete(stored, expected, child)?;
        let removed = stored.clone();
        self.remove_unchecked(id);
        Ok(removed)
    }

    /// Stores `session` as it is, replacing the one with its id in place or
    /// adding it at the end, without the rules: for changes that passed
    /// them when they were made (a journal being read back).
    pub(crate) fn put_unchecked(&mut self, session: Session) {
        match self.position(session.session_id) {
            Some(i) => self.sessions[i] = session,
            None => {
                self.index.insert(session.session_id, self.sessions.len());
                self.sessions.push(session);
            }
        }
    }

    /// Removes session `id` if it is there, without the rules (see
    /// [`put_unchecked`](Self::put_unchecked)).
    pub(crate) fn remove_unchecked(&mut self, id: SessionId) {
        if let Some(i) = self.position(id) {
            self.sessions.remove(i);
            self.index.remove(&id);
            for slot in self.index.values_mut() {
                if *slot > i {
                    *slot -= 1;
                }
            }
        }
    }

    /// The parent must exist and following parents must not loop back.
    fn check_parent(&self, session: &Session) -> Result<()> {
        rules::check_parent(session, self.sessions.len(), |id| {
            self.position(id)
                .map(|i| self.sessions[i].parent_session_id)
        })
    }
}
