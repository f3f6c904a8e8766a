//! A fake of the AWS Systems Manager Session Manager control plane: the
//! four calls a Session Manager client makes, served by one in-process HTTP
//! server on `127.0.0.1`.
//!
//! Written from the project's SSM reference (`ssm.md` §1 and §5), and
//! checked against botocore's `ssm` service model (API version 2014-11-06)
//! by `tests/ssm_fake_botocore.rs`. The protocol is AWS JSON 1.1: every call
//! is `POST /` with `X-Amz-Target: AmazonSSM.<Operation>` and
//! `Content-Type: application/x-amz-json-1.1`.
//!
//! | Operation | Input | Output | Errors |
//! |---|---|---|---|
//! | `StartSession` | `Target` (required), `DocumentName`, `Parameters`, `Reason` | `SessionId`, `StreamUrl`, `TokenValue` | `TargetNotConnected`, `InvalidDocument` |
//! | `ResumeSession` | `SessionId` | `SessionId`, `StreamUrl`, `TokenValue` (empty: timed out) | `DoesNotExistException` |
//! | `TerminateSession` | `SessionId` | `SessionId` | |
//! | `DescribeSessions` | `State` (required), `Filters` (`key` / `value`, lowercase), `MaxResults`, `NextToken` | `Sessions`, `NextToken` | `InvalidFilterKey`, `InvalidNextToken` |
//!
//! Every operation can also answer `InternalServerError` (500) and, when a
//! test asks for it, `ThrottlingException` (400).
//!
//! **Resume faults** (`ssm.md` §2.11): [`fail_resume`](SsmControlFake::fail_resume)
//! makes the next n `ResumeSession` calls answer throttling or a 500 without
//! issuing a token, [`set_resume_latency`](SsmControlFake::set_resume_latency)
//! delays its answers, and [`forget_session`](SsmControlFake::forget_session)
//! makes it answer `DoesNotExistException` for a session. Every call,
//! failed or not, is in [`call_log`](SsmControlFake::call_log) /
//! [`calls`](SsmControlFake::calls)`("ResumeSession")`. Errors are a JSON body
//! `{"__type": "<Code>", "message": "…"}`; the modelled client errors are
//! 400. Inputs that break the model's constraints that botocore does not
//! check itself (`MaxResults` over 200, `Reason` over 256 characters, a
//! `DocumentName` off its pattern, a missing required member, …) answer 400
//! `ValidationException` in the AWS wording (`1 validation error detected:
//! …`), and a member of the wrong JSON type 400 `SerializationException`.
//!
//! **Signatures.** Each request must carry a SigV4 `Authorization` header of
//! the right shape (`AWS4-HMAC-SHA256 Credential=<key>/<yyyymmdd>/<region>/ssm/aws4_request,
//! SignedHeaders=…, Signature=<64 hex>`); the fake does **not** verify the
//! signature, it only records the access key id and the region of each call
//! (see [`SsmCall`]). No header: 403 `MissingAuthenticationTokenException`;
//! a malformed one: 400 `IncompleteSignatureException`; a credential scoped
//! to another service: 400 `InvalidSignatureException` (`Credential should
//! be scoped to correct service: 'ssm'. `), as AWS answers.
//!
//! **Sessions.** `StartSession` on a known, online target creates a session
//! in `Connecting` with a random one-shot token and the `StreamUrl`
//! `<stream base>/v1/data-channel/<SessionId>?role=publish_subscribe`. The
//! session id is `<owner name>-<17 hex digits>`, the owner name being the
//! last `/` segment of the caller's owner ARN
//! ([`set_owner`](SsmControlFake::set_owner),
//! [`set_owner_for`](SsmControlFake::set_owner_for)). A data-channel fake
//! plugs in with [`set_stream_base`](SsmControlFake::set_stream_base), checks
//! the client's token with [`consume_token`](SsmControlFake::consume_token),
//! reports [`connected`](SsmControlFake::connected) /
//! [`disconnected`](SsmControlFake::disconnected), and learns of
//! `TerminateSession` calls from [`subscribe`](SsmControlFake::subscribe)
//! (to send `channel_closed`). `DescribeSessions` lists `Connecting`,
//! `Connected`, `Disconnected` and `Terminating` sessions under `Active`,
//! `Terminated` and `Failed` ones under `History`, oldest first.
//!
//! **Choices where the reference is silent.** `ResumeSession` issues a new
//! token for any live session (`Connecting`, `Connected` or `Disconnected`:
//! a client may resume before the service has seen its socket drop) and
//! answers `DoesNotExistException` for unknown, `Terminating`, `Terminated`
//! and `Failed` ones. `TerminateSession` answers success for ended and
//! unknown sessions too (the model lists no error for it). The date filters
//! are inclusive (`InvokedAfter`: started at or after; `InvokedBefore`: at or
//! before) and take RFC 3339 values; a filter value that cannot be a date,
//! status or access type answers `ValidationException`, as do more than six
//! filters. A `NextToken` only continues the listing (same `State` and
//! `Filters`) that issued it. Shell sessions (no `DocumentName` given) have
//! no `DocumentName` in `DescribeSessions`; `OutputUrl` is always `{}`.
//!
//! Dates (`StartDate`, `EndDate`) come from a [`Clock`]: the wall clock by
//! default, or one given to [`SsmControlFake::start_with_clock`] or
//! [`SsmControlFake::set_clock`]. On the wire they are epoch seconds as JSON
//! numbers, with milliseconds.
//!
//! ```no_run
//! # async fn demo() {
//! use session_testkit::fakes::SsmControlFake;
//!
//! let fake = SsmControlFake::start().await;
//! fake.add_target("i-0123456789abcdef0");
//! fake.set_stream_base("ws://127.0.0.1:9999");
//! // Point the SSM client at `fake.endpoint()` and call StartSession; then,
//! // in the data-channel fake:
//! let mut events = fake.subscribe();
//! # let (id, token) = (String::new(), String::new());
//! if fake.consume_token(&id, &token) {
//!     fake.connected(&id);
//! }
//! // ... and on TerminateSession, `events` yields
//! // `SessionEvent::Terminating { .. }`: send channel_closed.
//! # let _ = events.try_recv();
//! # }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use session_core::{Clock, SystemClock};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use state::{FakeState, Shared, lock};

mod auth;
mod control;
mod describe;
mod http;
mod operations;
mod state;

/// The operation names that [`SsmControlFake::calls`] counts.
pub const OPERATIONS: [&str; 4] = [
    "StartSession",
    "ResumeSession",
    "TerminateSession",
    "DescribeSessions",
];

/// The `X-Amz-Target` prefix of the SSM API.
pub const TARGET_PREFIX: &str = "AmazonSSM.";

/// The content type of AWS JSON 1.1 requests and answers.
pub const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// The document of a shell session, used when `StartSession` names none.
pub const SHELL_DOCUMENT: &str = "SSM-SessionManagerRunShell";

/// The Session Manager documents the fake knows from the start (see
/// [`SsmControlFake::add_document`] for more).
pub const SESSION_DOCUMENTS: [&str; 6] = [
    SHELL_DOCUMENT,
    "AWS-StartPortForwardingSession",
    "AWS-StartPortForwardingSessionToRemoteHost",
    "AWS-StartSSHSession",
    "AWS-StartInteractiveCommand",
    "AWS-StartNonInteractiveCommand",
];

/// The owner of sessions started with an access key that has no owner of its
/// own (see [`SsmControlFake::set_owner`]).
pub const DEFAULT_OWNER: &str = "arn:aws:sts::111122223333:assumed-role/SessionUser/session-user";

/// A failure [`SsmControlFake::fail_resume`] injects into `ResumeSession`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeFailure {
    /// 400 `{"__type":"ThrottlingException","message":"Rate exceeded"}`.
    Throttling,
    /// 500 `{"__type":"InternalServerError","message":"Internal Server Error"}`.
    InternalError,
}

/// The status of a session (`SessionStatus` in the model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionStatus {
    /// Started; no data channel has connected yet.
    Connecting,
    /// A data channel is open.
    Connected,
    /// The data channel was lost; the session can be resumed.
    Disconnected,
    /// `TerminateSession` was called; the data channel is being closed.
    Terminating,
    /// Ended.
    Terminated,
    /// Ended by an error.
    Failed,
}

impl SessionStatus {
    /// Every status, in the order of a session's life.
    pub const ALL: [SessionStatus; 6] = [
        SessionStatus::Connecting,
        SessionStatus::Connected,
        SessionStatus::Disconnected,
        SessionStatus::Terminating,
        SessionStatus::Terminated,
        SessionStatus::Failed,
    ];

    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Connecting => "Connecting",
            SessionStatus::Connected => "Connected",
            SessionStatus::Disconnected => "Disconnected",
            SessionStatus::Terminating => "Terminating",
            SessionStatus::Terminated => "Terminated",
            SessionStatus::Failed => "Failed",
        }
    }

    /// The status with wire name `name` (case-sensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether `DescribeSessions` lists it under `State: Active` (else
    /// under `History`).
    pub fn is_active(self) -> bool {
        !self.has_ended()
    }

    /// `Terminated` or `Failed`.
    pub fn has_ended(self) -> bool {
        matches!(self, SessionStatus::Terminated | SessionStatus::Failed)
    }
}

impl fmt::Display for SessionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A session as the fake holds it (see [`SsmControlFake::session`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// `SessionId`.
    pub session_id: String,
    /// `Target`.
    pub target: String,
    /// The current status.
    pub status: SessionStatus,
    /// Every status the session went through with when, oldest first
    /// (starts with `Connecting`).
    pub history: Vec<(SessionStatus, OffsetDateTime)>,
    /// `Owner`: the ARN of the identity that started it.
    pub owner: String,
    /// The access key id that signed `StartSession`.
    pub access_key_id: String,
    /// The region of `StartSession`'s credential scope.
    pub region: String,
    /// `DocumentName` as given (`None`: a shell session).
    pub document_name: Option<String>,
    /// `Parameters` as given.
    pub parameters: BTreeMap<String, Vec<String>>,
    /// `Reason` as given.
    pub reason: Option<String>,
    /// `StartDate`.
    pub start_date: OffsetDateTime,
    /// `EndDate`, once `Terminated` or `Failed`.
    pub end_date: Option<OffsetDateTime>,
    /// `AccessType` (`Standard` unless a test set it).
    pub access_type: String,
    /// `Details`, when a test set them.
    pub details: Option<String>,
    /// The token a data channel may still open with (one-shot); `None`
    /// once consumed, or when the session timed out.
    pub token: Option<String>,
    /// Every token issued (`StartSession`, then each `ResumeSession`).
    pub tokens_issued: Vec<String>,
    /// Whether `ResumeSession` answers an empty token (see
    /// [`SsmControlFake::time_out`]).
    pub timed_out: bool,
}

/// One request the fake received (see [`SsmControlFake::call_log`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SsmCall {
    /// The operation from `X-Amz-Target` (without `AmazonSSM.`).
    pub operation: String,
    /// The access key id of the `Authorization` header, when it had one.
    pub access_key_id: Option<String>,
    /// The region of the credential scope, when there was one.
    pub region: Option<String>,
    /// The JSON body (`Null` when it was not JSON).
    pub input: serde_json::Value,
    /// The error code answered (`None`: success).
    pub error: Option<String>,
}

/// What a data-channel fake hears about through
/// [`SsmControlFake::subscribe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// `StartSession` created the session.
    Started {
        /// The new session.
        session_id: String,
    },
    /// `ResumeSession` issued a new token (not sent when it answered an
    /// empty token).
    Resumed {
        /// The session.
        session_id: String,
    },
    /// `TerminateSession` was called on a live session: send
    /// `channel_closed` on its data channel, then close it.
    Terminating {
        /// The session.
        session_id: String,
    },
    /// The session reached `Terminated` or `Failed`.
    Ended {
        /// The session.
        session_id: String,
        /// `Terminated` or `Failed`.
        status: SessionStatus,
    },
}

/// An in-process fake of the SSM Session Manager control plane.
///
/// [`start`](Self::start) binds `127.0.0.1:0`; point a client at
/// [`endpoint`](Self::endpoint) with static credentials and any region. The
/// server stops when the fake is dropped or [`shutdown`](Self::shutdown).
/// See the [module documentation](self) for the protocol and behaviour.
pub struct SsmControlFake {
    endpoint: String,
    addr: SocketAddr,
    state: Shared,
    events: broadcast::Sender<SessionEvent>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for SsmControlFake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SsmControlFake")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Drop for SsmControlFake {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl SsmControlFake {
    /// Starts the fake on `127.0.0.1:0` with the wall clock.
    ///
    /// Must be called within a Tokio runtime; the server runs as a task on it.
    ///
    /// # Panics
    ///
    /// When no local port can be bound.
    pub async fn start() -> Self {
        Self::start_with_clock(Arc::new(SystemClock)).await
    }

    /// Starts the fake on `127.0.0.1:0`, reading time from `clock`.
    ///
    /// # Panics
    ///
    /// When no local port can be bound.
    pub async fn start_with_clock(clock: Arc<dyn Clock>) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("SsmControlFake: cannot bind 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("SsmControlFake: no local address");
        let (events, _) = broadcast::channel(256);
        let stream_base = format!("ws://{addr}");
        let state: Shared = Arc::new(Mutex::new(FakeState::new(
            clock,
            stream_base,
            events.clone(),
        )));
        let app = http::router(state.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!("SsmControlFake server stopped: {e}");
            }
        });
        Self {
            endpoint: format!("http://{addr}"),
            addr,
            state,
            events,
            task: Some(task),
        }
    }

    /// Stops the server and waits until it has stopped accepting
    /// connections.
    pub async fn shutdown(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// The endpoint URL (`http://127.0.0.1:<port>`), for the client's
    /// `endpoint_url`.
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// The socket address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A second handle on the same fake that does not own its server
    /// (dropping it leaves the server running): for the data-channel fake,
    /// whose tasks outlive a borrow of this one.
    pub(crate) fn view(&self) -> Self {
        Self {
            endpoint: self.endpoint.clone(),
            addr: self.addr,
            state: self.state.clone(),
            events: self.events.clone(),
            task: None,
        }
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        lock(&self.state)
    }
}
