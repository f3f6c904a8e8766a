//! Events shared between the managers of several processes (several
//! machines) that use one repository: each manager hands the repository
//! what it publishes, and re-publishes what the others shared, marked
//! [`EventOrigin::Elsewhere`]. The repository carries them
//! ([`WorkspaceRepository::share_event`](crate::WorkspaceRepository::share_event);
//! `PgWorkspace` with LISTEN/NOTIFY).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::events::{EventOrigin, SessionEvent, SessionEventKind};
use crate::{Error, Operation, SessionId, SessionStatus};

/// The longest error message shared; longer ones are cut (a database's
/// notification has a size limit, and a message is for people).
const MESSAGE_LIMIT: usize = 1_000;

/// A [`SessionEvent`] as one manager shares it with the others, in JSON.
///
/// Only what every process can act on is shared: a session started,
/// stopped, rotated, resumed, or an operation that failed. A live
/// connection's own reports stay with the process that holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SharedEvent {
    /// The manager that published it (an opaque id, unique per manager).
    pub publisher: String,
    /// The session.
    pub session_id: SessionId,
    /// Its name at the time.
    pub session_name: String,
    /// Its status after the event.
    pub status: SessionStatus,
    /// When the publisher published it (its clock).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What happened.
    pub kind: SharedEventKind,
}

/// The kinds of [`SharedEvent`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
#[non_exhaustive]
pub enum SharedEventKind {
    /// [`SessionEventKind::Started`].
    Started,
    /// [`SessionEventKind::Stopped`].
    Stopped,
    /// [`SessionEventKind::Rotated`].
    Rotated,
    /// [`SessionEventKind::Resumed`].
    Resumed,
    /// [`SessionEventKind::Failed`].
    #[serde(rename_all = "camelCase")]
    Failed {
        /// `start`, `stop`, `rotate` or `resume`.
        operation: String,
        /// The error's [category](Error::category).
        category: String,
        /// The error's message (at most 1,000 characters).
        message: String,
        /// Whether the error was retryable.
        retryable: bool,
    },
}

impl SharedEvent {
    /// What `publisher` shares of `event`; `None` for the kinds that are
    /// not shared, and for events that came from elsewhere themselves.
    pub fn from_event(event: &SessionEvent, publisher: &str) -> Option<Self> {
        if event.origin != EventOrigin::Here {
            return None;
        }
        let kind = match &event.kind {
            SessionEventKind::Started => SharedEventKind::Started,
            SessionEventKind::Stopped => SharedEventKind::Stopped,
            SessionEventKind::Rotated => SharedEventKind::Rotated,
            SessionEventKind::Resumed => SharedEventKind::Resumed,
            SessionEventKind::Failed { operation, error } => {
                let mut message = error.to_string();
                if let Some((cut, _)) = message.char_indices().nth(MESSAGE_LIMIT) {
                    message.truncate(cut);
                    message.push('…');
                }
                SharedEventKind::Failed {
                    operation: operation.as_str().to_owned(),
                    category: error.category().to_owned(),
                    message,
                    retryable: error.is_retryable(),
                }
            }
            _ => return None,
        };
        Some(SharedEvent {
            publisher: publisher.to_owned(),
            session_id: event.session_id,
            session_name: event.session_name.clone(),
            status: event.status,
            at: event.at,
            kind,
        })
    }

    /// The event to publish here: its origin is the publisher; a failure's
    /// error is an [`Error::Elsewhere`]. `None` for an operation name this
    /// build does not know.
    pub fn into_event(self) -> Option<SessionEvent> {
        let kind = match self.kind {
            SharedEventKind::Started => SessionEventKind::Started,
            SharedEventKind::Stopped => SessionEventKind::Stopped,
            SharedEventKind::Rotated => SessionEventKind::Rotated,
            SharedEventKind::Resumed => SessionEventKind::Resumed,
            SharedEventKind::Failed {
                operation,
                category,
                message,
                retryable,
            } => SessionEventKind::Failed {
                operation: [
                    Operation::Start,
                    Operation::Stop,
                    Operation::Rotate,
                    Operation::Resume,
                ]
                .into_iter()
                .find(|o| o.as_str() == operation)?,
                error: Error::Elsewhere {
                    category: crate::error::category_named(&category).unwrap_or("provider"),
                    message,
                    retryable,
                },
            },
        };
        Some(SessionEvent {
            session_id: self.session_id,
            session_name: self.session_name,
            status: self.status,
            at: self.at,
            kind,
            origin: EventOrigin::Elsewhere {
                publisher: self.publisher,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: SessionEventKind) -> SessionEvent {
        SessionEvent {
            session_id: SessionId::new(),
            session_name: "dev".into(),
            status: SessionStatus::Active,
            at: time::macros::datetime!(2030-01-01 0:00 UTC),
            kind,
            origin: EventOrigin::Here,
        }
    }

    #[test]
    fn a_failure_round_trips_through_json_as_an_error_from_elsewhere() {
        let failed = event(SessionEventKind::Failed {
            operation: Operation::Rotate,
            error: Error::Unavailable {
                target: "sts".into(),
                message: "x".repeat(3_000),
                source: None,
            },
        });
        let shared = SharedEvent::from_event(&failed, "m1").expect("shared");
        let text = serde_json::to_string(&shared).expect("json");
        assert!(
            text.len() < 2_000,
            "cut to fit a notification: {}",
            text.len()
        );
        let back: SharedEvent = serde_json::from_str(&text).expect("parse");
        let received = back.into_event().expect("known");
        assert_eq!(
            received.origin,
            EventOrigin::Elsewhere {
                publisher: "m1".into()
            }
        );
        match received.kind {
            SessionEventKind::Failed { operation, error } => {
                assert_eq!(operation, Operation::Rotate);
                assert_eq!(error.category(), "unavailable");
                assert!(error.is_retryable());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_what_happened_here_and_others_can_act_on_is_shared() {
        assert!(SharedEvent::from_event(&event(SessionEventKind::Started), "m").is_some());
        let disconnected = event(SessionEventKind::ResumeAbandoned { tries: 3 });
        assert!(SharedEvent::from_event(&disconnected, "m").is_none());
        let mut echoed = event(SessionEventKind::Stopped);
        echoed.origin = EventOrigin::Elsewhere {
            publisher: "m2".into(),
        };
        assert!(
            SharedEvent::from_event(&echoed, "m").is_none(),
            "never shared again"
        );
    }
}
