//! The fake's state: settings, targets and documents, sessions and their
//! transitions, page cursors, the call log and injected faults.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use session_core::Clock;
use tokio::sync::broadcast;

use super::http::ApiError;
use super::{
    DEFAULT_OWNER, SESSION_DOCUMENTS, SessionEvent, SessionRecord, SessionStatus, SsmCall,
};
use crate::fakes::sso::values::{ALNUM, HEX, random_chars};

pub(super) type Shared = Arc<Mutex<FakeState>>;

pub(super) fn lock(state: &Shared) -> MutexGuard<'_, FakeState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// A failure to answer instead of running the next call of `operation`.
#[derive(Debug)]
pub(super) struct Injected {
    pub(super) operation: String,
    pub(super) error: ApiError,
}

/// Where a `DescribeSessions` `NextToken` continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PageCursor {
    /// The request it belongs to: `State` and the filters, canonical.
    pub(super) listing: String,
    pub(super) offset: usize,
}

pub(super) struct FakeState {
    pub(super) clock: Arc<dyn Clock>,
    pub(super) events: broadcast::Sender<SessionEvent>,
    pub(super) stream_base: String,
    /// Target id → online.
    pub(super) targets: HashMap<String, bool>,
    pub(super) documents: HashSet<String>,
    pub(super) default_owner: String,
    pub(super) owners: HashMap<String, String>,
    pub(super) page_size: usize,
    /// The most sessions a page holds whatever `MaxResults` asks.
    pub(super) page_cap: Option<usize>,
    pub(super) max_session_duration: Option<u32>,
    pub(super) hold_terminating: bool,
    /// Sessions in the order they were started.
    pub(super) sessions: Vec<SessionRecord>,
    pub(super) page_tokens: HashMap<String, PageCursor>,
    pub(super) calls: Vec<SsmCall>,
    pub(super) failures: VecDeque<Injected>,
    /// How long `ResumeSession` waits before it answers.
    pub(super) resume_latency: Duration,
    /// Sessions `ResumeSession` answers `DoesNotExistException` for.
    pub(super) forgotten: HashSet<String>,
}

impl FakeState {
    pub(super) fn new(
        clock: Arc<dyn Clock>,
        stream_base: String,
        events: broadcast::Sender<SessionEvent>,
    ) -> Self {
        Self {
            clock,
            events,
            stream_base,
            targets: HashMap::new(),
            documents: SESSION_DOCUMENTS.iter().map(|d| (*d).to_owned()).collect(),
            default_owner: DEFAULT_OWNER.to_owned(),
            owners: HashMap::new(),
            page_size: 20,
            page_cap: None,
            max_session_duration: None,
            hold_terminating: false,
            sessions: Vec::new(),
            page_tokens: HashMap::new(),
            calls: Vec::new(),
            failures: VecDeque::new(),
            resume_latency: Duration::ZERO,
            forgotten: HashSet::new(),
        }
    }

    /// Sends `event` to whoever subscribed (nobody listening is fine).
    pub(super) fn notify(&self, event: SessionEvent) {
        let _ = self.events.send(event);
    }

    /// The failure to answer instead of running `operation`, if one was
    /// injected.
    pub(super) fn injected_failure(&mut self, operation: &str) -> Option<ApiError> {
        let pos = self
            .failures
            .iter()
            .position(|f| f.operation == operation)?;
        self.failures.remove(pos).map(|injected| injected.error)
    }

    pub(super) fn owner_of(&self, access_key_id: &str) -> String {
        self.owners
            .get(access_key_id)
            .cloned()
            .unwrap_or_else(|| self.default_owner.clone())
    }

    pub(super) fn stream_url(&self, session_id: &str) -> String {
        format!(
            "{}/v1/data-channel/{session_id}?role=publish_subscribe",
            self.stream_base.trim_end_matches('/')
        )
    }

    pub(super) fn session(&self, session_id: &str) -> Option<&SessionRecord> {
        self.sessions.iter().find(|s| s.session_id == session_id)
    }

    pub(super) fn session_mut(&mut self, session_id: &str) -> Option<&mut SessionRecord> {
        self.sessions
            .iter_mut()
            .find(|s| s.session_id == session_id)
    }

    /// Issues a new one-shot token for the session (the previous unused
    /// one is no longer accepted).
    pub(super) fn issue_token(&mut self, session_id: &str) -> Option<String> {
        let token = random_chars(ALNUM, 128);
        let session = self.session_mut(session_id)?;
        session.token = Some(token.clone());
        session.tokens_issued.push(token.clone());
        Some(token)
    }

    /// Moves the session to `status` (recording it in its history, setting
    /// `EndDate` when it ends, and telling subscribers). False when there is
    /// no such session.
    pub(super) fn set_status(&mut self, session_id: &str, status: SessionStatus) -> bool {
        let now = self.clock.now();
        let Some(session) = self.session_mut(session_id) else {
            return false;
        };
        if session.status == status {
            return true;
        }
        session.status = status;
        session.history.push((status, now));
        if status.has_ended() {
            session.end_date.get_or_insert(now);
            session.token = None;
            let session_id = session.session_id.clone();
            self.notify(SessionEvent::Ended { session_id, status });
        }
        true
    }

    /// Creates a session in `Connecting` and returns its id.
    pub(super) fn new_session(&mut self, mut record: SessionRecord) -> String {
        let name = record
            .owner
            .rsplit(['/', ':'])
            .next()
            .filter(|n| !n.is_empty())
            .unwrap_or("session");
        let session_id = format!("{name}-{}", random_chars(HEX, 17));
        record.session_id.clone_from(&session_id);
        self.sessions.push(record);
        session_id
    }

    pub(super) fn record_call(&mut self, call: SsmCall) {
        self.calls.push(call);
    }

    /// A fresh record for `StartSession`, before it has an id.
    pub(super) fn blank_session(
        &self,
        target: String,
        access_key_id: &str,
        region: &str,
    ) -> SessionRecord {
        let now = self.clock.now();
        SessionRecord {
            session_id: String::new(),
            target,
            status: SessionStatus::Connecting,
            history: vec![(SessionStatus::Connecting, now)],
            owner: self.owner_of(access_key_id),
            access_key_id: access_key_id.to_owned(),
            region: region.to_owned(),
            document_name: None,
            parameters: BTreeMap::new(),
            reason: None,
            start_date: now,
            end_date: None,
            access_type: "Standard".to_owned(),
            details: None,
            token: None,
            tokens_issued: Vec::new(),
            timed_out: false,
        }
    }
}
