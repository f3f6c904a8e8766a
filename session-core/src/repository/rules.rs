//! The rules every [`WorkspaceRepository`](super::WorkspaceRepository)
//! enforces, as functions, so that a repository outside this crate (a
//! database) enforces exactly the same ones with the same errors.

use crate::{Error, Result, Session, SessionId};

/// The session as stored at `revision` (repositories set 1 on insert and
/// the stored revision + 1 on update).
pub fn at_revision(mut session: Session, revision: u64) -> Session {
    session.set_revision(revision);
    session
}

/// The error for an insert whose id is taken by `existing`.
pub fn already_exists(existing: &Session) -> Error {
    Error::AlreadyExists {
        what: existing.label(),
    }
}

/// May `session` replace `stored`? Checks validity, the revision the
/// caller read, the type, the status transition.
///
/// # Errors
///
/// [`Error::Conflict`], [`Error::InvalidInput`] (invalid, or the type
/// changes), [`Error::InvalidTransition`].
pub fn check_update(stored: &Session, session: &Session) -> Result<()> {
    session.validate()?;
    if stored.revision() != session.revision() {
        return Err(Error::Conflict {
            what: stored.label(),
            expected: session.revision(),
            found: stored.revision(),
        });
    }
    if stored.session_type != session.session_type {
        return Err(Error::invalid_input(
            "sessionType",
            format!(
                "{} is {}; the type of a session cannot change",
                stored.label(),
                stored.session_type
            ),
        ));
    }
    if !stored.status().can_become(session.status()) {
        return Err(Error::InvalidTransition {
            session: stored.label(),
            from: stored.status(),
            to: session.status(),
        });
    }
    Ok(())
}

/// May `stored` be deleted, given the revision the caller read and a
/// session naming it as parent, if any?
///
/// # Errors
///
/// [`Error::Conflict`], or [`Error::InvalidInput`] naming the child.
pub fn check_delete(
    stored: &Session,
    expected: Option<u64>,
    child: Option<&Session>,
) -> Result<()> {
    if let Some(expected) = expected
        && expected != stored.revision()
    {
        return Err(Error::Conflict {
            what: stored.label(),
            expected,
            found: stored.revision(),
        });
    }
    if let Some(child) = child {
        return Err(Error::invalid_input(
            "session",
            format!(
                "{} is the parent of {}; remove or re-parent that first",
                stored.label(),
                child.label()
            ),
        ));
    }
    Ok(())
}

/// The parent of `session` must exist and following parents must not loop
/// back. `parent_of(id)` is `None` when `id` is not stored, else its
/// parent; `stored` is how many sessions are stored (the longest chain).
///
/// # Errors
///
/// [`Error::InvalidInput`] on `parentSessionId`.
pub fn check_parent(
    session: &Session,
    stored: usize,
    mut parent_of: impl FnMut(SessionId) -> Option<Option<SessionId>>,
) -> Result<()> {
    let mut next = session.parent_session_id;
    let mut hops = 0;
    while let Some(parent) = next {
        if parent == session.session_id {
            return Err(Error::invalid_input(
                "parentSessionId",
                format!("{} would be its own ancestor", session.label()),
            ));
        }
        let Some(grandparent) = parent_of(parent) else {
            return Err(Error::invalid_input(
                "parentSessionId",
                format!(
                    "{}: parent session {parent} does not exist",
                    session.label()
                ),
            ));
        };
        next = grandparent;
        hops += 1;
        if hops > stored {
            return Err(Error::invalid_input(
                "parentSessionId",
                format!("{}: the parent chain loops", session.label()),
            ));
        }
    }
    Ok(())
}
