//! The controller's in-memory tables: auth tokens, sessions with their
//! state history and connections, list tokens, the request log and queued
//! faults. Every status change goes through [`Session::transition`], which
//! only allows the transitions of `boundary.md` §2.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use session_core::Clock;
use time::OffsetDateTime;

use super::super::cert::SessionIdentity;
use super::super::cluster::{ClosedReason, SessionStatus};
use super::{ConnectionRecord, FakeTarget, RequestRecord, SessionSnapshot, StateRecord};

/// An account of a password auth method.
#[derive(Clone)]
pub(crate) struct Account {
    pub(crate) auth_method_id: String,
    pub(crate) login_name: String,
    pub(crate) password: String,
    pub(crate) account_id: String,
    pub(crate) user_id: String,
}

/// What the builder fixed.
pub(crate) struct Config {
    pub(crate) accounts: Vec<Account>,
    pub(crate) targets: Vec<FakeTarget>,
    pub(crate) max_page_size: u32,
    pub(crate) legacy_0_13: bool,
    pub(crate) token_lifetime: time::Duration,
    /// When the controller started: the targets' created time.
    pub(crate) started: OffsetDateTime,
}

/// An issued auth token.
#[derive(Clone)]
pub(crate) struct AuthToken {
    pub(crate) id: String,
    pub(crate) token: String,
    pub(crate) account: Account,
    pub(crate) created: OffsetDateTime,
    pub(crate) last_used: OffsetDateTime,
    pub(crate) expiration: OffsetDateTime,
}

/// A session as the controller holds it.
pub(crate) struct Session {
    pub(crate) id: String,
    pub(crate) target: FakeTarget,
    pub(crate) user_id: String,
    pub(crate) auth_token_id: String,
    pub(crate) host_id: Option<String>,
    pub(crate) endpoint: String,
    pub(crate) created: OffsetDateTime,
    pub(crate) updated: OffsetDateTime,
    pub(crate) expiration: OffsetDateTime,
    pub(crate) version: u32,
    /// Newest first; the current state has no end.
    pub(crate) states: Vec<StateRecord>,
    pub(crate) identity: SessionIdentity,
    pub(crate) tofu_token: Option<String>,
    pub(crate) connection_limit: i32,
    pub(crate) connections: Vec<ConnectionRecord>,
    pub(crate) termination_reason: Option<String>,
    /// Order of creation, and of the last update (list and refresh order).
    pub(crate) created_seq: u64,
    pub(crate) updated_seq: u64,
}

/// Whether §2 allows `from` → `to` (`None`: the session is being created).
pub(crate) fn transition_allowed(from: Option<SessionStatus>, to: SessionStatus) -> bool {
    use SessionStatus::*;
    matches!(
        (from, to),
        (None, Pending)
            | (Some(Pending), Pending | Active | Canceling | Terminated)
            | (Some(Active), Canceling | Terminated)
            | (Some(Canceling), Terminated)
    )
}

/// The JSON name of a status.
pub(crate) fn status_str(status: SessionStatus) -> &'static str {
    match status {
        SessionStatus::Pending => "pending",
        SessionStatus::Active => "active",
        SessionStatus::Canceling => "canceling",
        SessionStatus::Terminated => "terminated",
    }
}

impl Session {
    /// The current status (a session is created `pending`).
    pub(crate) fn status(&self) -> SessionStatus {
        self.states
            .first()
            .map_or(SessionStatus::Pending, |s| s.status)
    }

    /// Moves to `to`, closing the current state and bumping the version.
    /// Panics on a transition §2 does not allow: in a fake, that is a bug
    /// of the fake (or of a test hook's caller), never a client's error.
    pub(crate) fn transition(&mut self, to: SessionStatus, now: OffsetDateTime, seq: u64) {
        let from = self.states.first().map(|s| s.status);
        assert!(
            transition_allowed(from, to),
            "illegal session transition {from:?} -> {to:?} for {}",
            self.id
        );
        if let Some(current) = self.states.first_mut() {
            current.end_time = Some(now);
        }
        self.states.insert(
            0,
            StateRecord {
                status: to,
                start_time: now,
                end_time: None,
            },
        );
        self.version += 1;
        self.touch(now, seq);
    }

    /// Records an update that is not a state change (connections).
    pub(crate) fn touch(&mut self, now: OffsetDateTime, seq: u64) {
        self.updated = now;
        self.updated_seq = seq;
    }

    /// Whether any state in the history is canceling or terminated (cancel
    /// is then a no-op, §1.7).
    pub(crate) fn was_canceled_or_terminated(&self) -> bool {
        self.states.iter().any(|s| {
            matches!(
                s.status,
                SessionStatus::Canceling | SessionStatus::Terminated
            )
        })
    }

    /// Whether the connection limit is used up.
    pub(crate) fn limit_used(&self) -> bool {
        self.connection_limit >= 0 && self.connections.len() >= self.connection_limit as usize
    }

    pub(crate) fn snapshot(&self) -> SessionSnapshot {
        SessionSnapshot {
            id: self.id.clone(),
            target_id: self.target.id.clone(),
            status: self.status(),
            version: self.version,
            tofu_token: self.tofu_token.clone(),
            states: self.states.clone(),
            connections: self.connections.clone(),
            termination_reason: self.termination_reason.clone(),
            expiration: self.expiration,
            connection_limit: self.connection_limit,
            user_id: self.user_id.clone(),
            auth_token_id: self.auth_token_id.clone(),
            endpoint: self.endpoint.clone(),
        }
    }
}

/// Where a list token stands.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum ListPhase {
    /// Paging the first listing: next items are created before `after`.
    Initial { after_created_seq: u64 },
    /// Paging a refresh of items updated in `(since, until]`, newest first;
    /// `before` is the cursor inside that window.
    Refresh { since: u64, until: u64, before: u64 },
    /// A listing or refresh is complete: the next call refreshes from here.
    Complete { since: u64 },
}

/// What a list token is bound to, and where it stands.
#[derive(Clone)]
pub(crate) struct ListCursor {
    /// The query it was issued for (scope, recursive, filter,
    /// include_terminated) and the user: another query gives 400.
    pub(crate) query_key: String,
    pub(crate) user_id: String,
    pub(crate) phase: ListPhase,
    /// The update sequence when the first page was served: the refresh
    /// after a complete listing starts from here.
    pub(crate) started_seq: u64,
}

/// A queued fault (see `FakeController::fail_next`).
pub(crate) struct Fault {
    pub(crate) status: u16,
    pub(crate) body: serde_json::Value,
    pub(crate) retry_after: Option<u64>,
}

pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) worker_address: String,
    pub(crate) tokens: BTreeMap<String, AuthToken>,
    pub(crate) sessions: BTreeMap<String, Session>,
    /// Connection id → session id.
    pub(crate) connection_sessions: HashMap<String, String>,
    pub(crate) seq: u64,
    pub(crate) list_tokens: HashMap<String, ListCursor>,
    pub(crate) requests: Vec<RequestRecord>,
    pub(crate) faults: VecDeque<Fault>,
    /// Sessions whose next cancel finds their version changed since the
    /// client read it (see `FakeController::stale_next_cancel`).
    pub(crate) stale_cancels: HashMap<String, u32>,
}

impl Inner {
    /// The next value of the update sequence.
    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// The background terminator's step (`boundary.md` §2): canceling,
    /// expired and limit-used sessions whose connections are all closed
    /// become terminated with a reason.
    pub(crate) fn sweep(&mut self, now: OffsetDateTime) {
        let mut seq = self.seq;
        for session in self.sessions.values_mut() {
            let status = session.status();
            if status == SessionStatus::Terminated
                || session
                    .connections
                    .iter()
                    .any(|c| c.closed_reason.is_none())
            {
                continue;
            }
            let reason = if status == SessionStatus::Canceling {
                "canceled"
            } else if now >= session.expiration {
                "timed out"
            } else if status == SessionStatus::Active && session.limit_used() {
                "connection limit"
            } else {
                continue;
            };
            seq += 1;
            session.transition(SessionStatus::Terminated, now, seq);
            session.termination_reason = Some(reason.to_owned());
        }
        self.seq = seq;
    }

    /// The auth token with this bearer value, if it is known and not
    /// expired; marks it used.
    pub(crate) fn bearer(&mut self, value: &str, now: OffsetDateTime) -> Option<AuthToken> {
        let token = self
            .tokens
            .values_mut()
            .find(|t| t.token == value && now < t.expiration)?;
        token.last_used = now;
        Some(token.clone())
    }
}

/// The state shared by the HTTP routes, the cluster seam and the test hooks.
pub(crate) struct Shared {
    pub(crate) inner: Mutex<Inner>,
    pub(crate) clock: Arc<dyn Clock>,
}

impl Shared {
    /// Locks the tables. A panic of the transition guard poisons the lock;
    /// the tables are still consistent then (the guard panics before any
    /// change), so later calls go on.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }
}

/// A connection record as the cluster seam creates it.
pub(crate) fn new_connection(id: String, client: SocketAddr) -> ConnectionRecord {
    ConnectionRecord {
        connection_id: id,
        client,
        endpoint: None,
        bytes_up: 0,
        bytes_down: 0,
        closed_reason: None,
    }
}

/// Closes a connection record.
pub(crate) fn close(conn: &mut ConnectionRecord, up: u64, down: u64, reason: ClosedReason) {
    conn.bytes_up = up;
    conn.bytes_down = down;
    conn.closed_reason = Some(reason);
}

#[cfg(test)]
mod tests {
    use super::*;
    use SessionStatus::*;

    #[test]
    fn the_transition_table_is_section_2() {
        let all = [Pending, Active, Canceling, Terminated];
        let allowed: Vec<_> = [
            None,
            Some(Pending),
            Some(Active),
            Some(Canceling),
            Some(Terminated),
        ]
        .into_iter()
        .flat_map(|from| all.map(|to| (from, to)))
        .filter(|(from, to)| transition_allowed(*from, *to))
        .collect();
        assert_eq!(
            allowed,
            vec![
                (None, Pending),
                (Some(Pending), Pending),
                (Some(Pending), Active),
                (Some(Pending), Canceling),
                (Some(Pending), Terminated),
                (Some(Active), Canceling),
                (Some(Active), Terminated),
                (Some(Canceling), Terminated),
            ]
        );
    }
}
