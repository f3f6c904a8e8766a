//! What the manager tells embedding tools.

use time::OffsetDateTime;

use crate::{EndReason, Error, LiveEvent, Operation, SessionId, SessionStatus};

/// Something that happened to a session, published by the
/// [`SessionManager`](crate::SessionManager) after it was persisted.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SessionEvent {
    /// The session.
    pub session_id: SessionId,
    /// Its name at the time.
    pub session_name: String,
    /// Its status after the event.
    pub status: SessionStatus,
    /// When the manager published it (from the manager's clock).
    pub at: OffsetDateTime,
    /// What happened.
    pub kind: SessionEventKind,
    /// Which manager it happened in: this one, or another process's that
    /// shares the repository (see [`SharedEvent`](crate::SharedEvent)).
    pub origin: EventOrigin,
}

/// Where a [`SessionEvent`] happened.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventOrigin {
    /// In this manager.
    Here,
    /// In another manager sharing the repository, which shared it.
    Elsewhere {
        /// That manager's id ([`SharedEvent::publisher`](crate::SharedEvent::publisher)).
        publisher: String,
    },
}

/// The kinds of [`SessionEvent`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum SessionEventKind {
    /// The session became active.
    Started,
    /// The session became inactive.
    Stopped,
    /// The session's credentials were replaced.
    Rotated,
    /// A live session's connection ended on its own (not through `stop`);
    /// the session is now `disconnected` (or `expired`) with the reason in
    /// its `last_error`.
    Disconnected {
        /// Why the connection ended.
        reason: EndReason,
    },
    /// A `disconnected` live session is `active` again.
    Resumed,
    /// A live session's connection, still held and `active`, reports on
    /// resuming its transport in place (reconnecting, a failed try,
    /// reconnected): every try and its outcome.
    Connection(LiveEvent),
    /// The manager stopped resuming a dropped live session: the
    /// [`ResumePolicy`](crate::ResumePolicy) deadline passed. It stays
    /// `disconnected`; `start` tries again.
    ResumeAbandoned {
        /// How many tries failed.
        tries: u32,
    },
    /// An operation failed; the session is back in a consistent status and
    /// the error is also in its `last_error`.
    Failed {
        /// The operation that failed.
        operation: Operation,
        /// Why (never contains secrets).
        error: Error,
    },
}
