//! What a test (or a data-channel fake) does to the control plane:
//! configure it, move sessions through their life, inject faults, and read
//! the call log.

use std::sync::Arc;
use std::time::Duration;

use session_core::Clock;
use time::OffsetDateTime;
use tokio::sync::broadcast;

use super::http::ApiError;
use super::state::Injected;
use super::{ResumeFailure, SessionEvent, SessionRecord, SessionStatus, SsmCall, SsmControlFake};

impl SsmControlFake {
    // ----- configuration -------------------------------------------------

    /// Reads time from `clock` from now on.
    pub fn set_clock(&self, clock: Arc<dyn Clock>) {
        self.lock().clock = clock;
    }

    /// The fake's current time.
    pub fn now(&self) -> OffsetDateTime {
        self.lock().clock.now()
    }

    /// Adds an online target: `StartSession` on it succeeds.
    pub fn add_target(&self, target: &str) {
        self.set_target_online(target, true);
    }

    /// Adds an offline target: `StartSession` on it answers
    /// `TargetNotConnected`, as for an unknown target.
    pub fn add_offline_target(&self, target: &str) {
        self.set_target_online(target, false);
    }

    /// Adds `target` if needed and marks it online or offline.
    pub fn set_target_online(&self, target: &str, online: bool) {
        self.lock().targets.insert(target.to_owned(), online);
    }

    /// Makes `StartSession` accept the document `name` (besides
    /// [`SESSION_DOCUMENTS`](super::SESSION_DOCUMENTS)); an ARN is matched by
    /// its part after the last `/`.
    pub fn add_document(&self, name: &str) {
        self.lock().documents.insert(name.to_owned());
    }

    /// The owner ARN of sessions started with any access key that has no
    /// owner of its own (default [`DEFAULT_OWNER`](super::DEFAULT_OWNER)).
    /// The session id starts with its last `/` segment.
    pub fn set_owner(&self, owner_arn: &str) {
        self.lock().default_owner = owner_arn.to_owned();
    }

    /// The owner ARN of sessions started with `access_key_id`.
    pub fn set_owner_for(&self, access_key_id: &str, owner_arn: &str) {
        self.lock()
            .owners
            .insert(access_key_id.to_owned(), owner_arn.to_owned());
    }

    /// The base of every `StreamUrl` answered from now on, e.g.
    /// `ws://127.0.0.1:<port of the data-channel fake>`; the URL is
    /// `<base>/v1/data-channel/<SessionId>?role=publish_subscribe`.
    ///
    /// Until a data-channel fake sets it, the base is `ws://` and this
    /// control plane's own address, which refuses WebSocket upgrades.
    pub fn set_stream_base(&self, base: &str) {
        self.lock().stream_base = base.trim_end_matches('/').to_owned();
    }

    /// The current stream base (see [`set_stream_base`](Self::set_stream_base)).
    pub fn stream_base(&self) -> String {
        self.lock().stream_base.clone()
    }

    /// The `StreamUrl` of `session_id` with the current stream base.
    pub fn stream_url(&self, session_id: &str) -> String {
        self.lock().stream_url(session_id)
    }

    /// The most sessions a `DescribeSessions` page holds when the request
    /// has no `MaxResults` (at least 1; default 20).
    pub fn set_page_size(&self, sessions: usize) {
        self.lock().page_size = sessions.max(1);
    }

    /// The most sessions a `DescribeSessions` page holds even when
    /// `MaxResults` asks for more (AWS may answer a page shorter than
    /// `MaxResults` with a `NextToken`); `None` (the default) caps nothing.
    pub fn set_page_cap(&self, sessions: Option<usize>) {
        self.lock().page_cap = sessions.map(|n| n.max(1));
    }

    /// `MaxSessionDuration` (minutes, sent as a string) in every `Session`
    /// that `DescribeSessions` answers; `None` (the default) leaves it out.
    pub fn set_max_session_duration(&self, minutes: Option<u32>) {
        self.lock().max_session_duration = minutes;
    }

    /// When on, `TerminateSession` leaves sessions in `Terminating` until
    /// [`finish_terminating`](Self::finish_terminating); off (the default),
    /// they reach `Terminated` within the call.
    pub fn set_hold_terminating(&self, hold: bool) {
        self.lock().hold_terminating = hold;
    }

    // ----- sessions --------------------------------------------------------

    /// Events about sessions: started, resumed, terminating (send
    /// `channel_closed`), ended. Only events after the call are received.
    pub fn subscribe(&self) -> broadcast::Receiver<SessionEvent> {
        self.events.subscribe()
    }

    /// A copy of the session, if it exists.
    pub fn session(&self, session_id: &str) -> Option<SessionRecord> {
        self.lock().session(session_id).cloned()
    }

    /// Every session, oldest first.
    pub fn sessions(&self) -> Vec<SessionRecord> {
        self.lock().sessions.clone()
    }

    /// The data channel offers `token` for `session_id`: true when it is the
    /// session's current unused token (it is then used up), false for any
    /// other token, a used one, or a session that has ended or is
    /// terminating.
    pub fn consume_token(&self, session_id: &str, token: &str) -> bool {
        let mut st = self.lock();
        let Some(session) = st.session_mut(session_id) else {
            return false;
        };
        let usable = session.status.is_active() && session.status != SessionStatus::Terminating;
        if usable && !token.is_empty() && session.token.as_deref() == Some(token) {
            session.token = None;
            true
        } else {
            false
        }
    }

    /// A data channel opened: `Connecting` or `Disconnected` → `Connected`.
    /// False (and no change) from any other status or for an unknown session.
    pub fn connected(&self, session_id: &str) -> bool {
        self.transition(
            session_id,
            &[SessionStatus::Connecting, SessionStatus::Disconnected],
            SessionStatus::Connected,
        )
    }

    /// The data channel was lost: `Connected` → `Disconnected` (resumable).
    /// False (and no change) from any other status or for an unknown session.
    pub fn disconnected(&self, session_id: &str) -> bool {
        self.transition(
            session_id,
            &[SessionStatus::Connected],
            SessionStatus::Disconnected,
        )
    }

    /// `Terminating` → `Terminated` (when terminations are held, see
    /// [`set_hold_terminating`](Self::set_hold_terminating)).
    pub fn finish_terminating(&self, session_id: &str) -> bool {
        self.transition(
            session_id,
            &[SessionStatus::Terminating],
            SessionStatus::Terminated,
        )
    }

    /// Forces the session into `status`, whatever it was (a scenario's
    /// shortcut; `Terminated` and `Failed` set `EndDate`). False for an
    /// unknown session.
    pub fn set_status(&self, session_id: &str, status: SessionStatus) -> bool {
        self.lock().set_status(session_id, status)
    }

    /// The session has timed out: `ResumeSession` answers an empty
    /// `TokenValue` from now on, and its unused token is no longer accepted.
    /// False for an unknown session.
    pub fn time_out(&self, session_id: &str) -> bool {
        let mut st = self.lock();
        let Some(session) = st.session_mut(session_id) else {
            return false;
        };
        session.timed_out = true;
        session.token = None;
        true
    }

    /// `Details` of the session, as `DescribeSessions` shows them.
    pub fn set_details(&self, session_id: &str, details: &str) -> bool {
        let mut st = self.lock();
        st.session_mut(session_id)
            .map(|s| s.details = Some(details.to_owned()))
            .is_some()
    }

    /// `AccessType` of the session (`Standard` or `JustInTime`).
    pub fn set_access_type(&self, session_id: &str, access_type: &str) -> bool {
        let mut st = self.lock();
        st.session_mut(session_id)
            .map(|s| s.access_type = access_type.to_owned())
            .is_some()
    }

    fn transition(&self, session_id: &str, from: &[SessionStatus], to: SessionStatus) -> bool {
        let mut st = self.lock();
        match st.session(session_id) {
            Some(s) if from.contains(&s.status) => st.set_status(session_id, to),
            _ => false,
        }
    }

    // ----- fault injection -------------------------------------------------

    /// The next call of `operation` (one of [`OPERATIONS`](super::OPERATIONS))
    /// answers 500 `InternalServerError`. Injected failures queue up; each is
    /// used once.
    pub fn fail_next_call_of(&self, operation: &str) {
        self.inject(operation, ApiError::internal());
    }

    /// The next call of `operation` answers 400 `ThrottlingException` (which
    /// SDKs retry).
    pub fn throttle_next_call_of(&self, operation: &str) {
        self.inject(operation, ApiError::throttling());
    }

    /// The next call of `operation` answers `status` with `__type`
    /// `error_type`.
    pub fn fail_next_call_with(&self, operation: &str, status: u16, error_type: &str) {
        self.inject(
            operation,
            ApiError::new(status, error_type, "Injected failure"),
        );
    }

    /// The next `n` `ResumeSession` calls answer `failure` without issuing
    /// a token: 400 `ThrottlingException` ("Rate exceeded") or 500
    /// `InternalServerError`. They queue up with the other injected
    /// failures and are recorded in the call log like any call.
    pub fn fail_resume(&self, n: u32, failure: ResumeFailure) {
        for _ in 0..n {
            let error = match failure {
                ResumeFailure::Throttling => ApiError::throttling(),
                ResumeFailure::InternalError => ApiError::internal(),
            };
            self.inject("ResumeSession", error);
        }
    }

    /// `ResumeSession` answers only after `latency` (zero: at once). The
    /// fake's state is not locked while it waits.
    pub fn set_resume_latency(&self, latency: Duration) {
        self.lock().resume_latency = latency;
    }

    /// From now on `ResumeSession` answers `DoesNotExistException` for
    /// `session_id` (as if the service had lost it), whatever its status.
    pub fn forget_session(&self, session_id: &str) {
        self.lock().forgotten.insert(session_id.to_owned());
    }

    fn inject(&self, operation: &str, error: ApiError) {
        self.lock().failures.push_back(Injected {
            operation: operation.to_owned(),
            error,
        });
    }

    // ----- the call log ------------------------------------------------------

    /// How many requests named `operation` in `X-Amz-Target`, successful or
    /// not (refused signatures and injected failures included).
    pub fn calls(&self, operation: &str) -> usize {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.operation == operation)
            .count()
    }

    /// Every request of `operation`, oldest first.
    pub fn calls_of(&self, operation: &str) -> Vec<SsmCall> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.operation == operation)
            .cloned()
            .collect()
    }

    /// Every request to a known operation, oldest first.
    pub fn call_log(&self) -> Vec<SsmCall> {
        self.lock().calls.clone()
    }
}
