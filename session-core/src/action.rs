//! The one trait every kind of session implements.

use std::fmt;
use std::sync::Arc;

use crate::{Clock, Error, LiveHandle, LiveOptions, Result, SecretStore, Session, SessionType};

/// Start, stop and rotate one kind of session.
///
/// A provider is one long-lived object per session type (holding its HTTP
/// client, SDK config, live tunnels…), registered with the
/// [`SessionManager`](crate::SessionManager). The manager does the
/// bookkeeping (status changes, persistence, single-flight, events); the
/// provider talks to the service.
///
/// # Contract
///
/// | method | called with status | returns status | must |
/// |---|---|---|---|
/// | [`start`](SessionAction::start) | `pending` | `active` | issue credentials / open the session, make them available (sink, handle), set `expiration` if the service gives one |
/// | [`stop`](SessionAction::stop) | `stopping` | `inactive` | remove everything start and rotate made available (sink entries, stored temporary secrets, remote session, live connection); succeed if it is already gone (**idempotent**) |
/// | [`rotate`](SessionAction::rotate) | `rotating` | `active` | issue new credentials and make them available **before** revoking the old ones, so there is no moment with none valid; return [`Error::Unsupported`](crate::Error::Unsupported) if [`Capabilities::rotate`] is false |
///
/// - Use [`Session::transition`] to set the returned status; never change the
///   session's id, type, name or parent.
/// - Errors name the session ([`Session::label`]) and never contain secrets.
/// - Read the time only from [`ActionContext::clock`].
/// - Keep secrets in [`ActionContext::secrets`] under the session's id
///   ([`SecretKey`](crate::SecretKey)), never in the session's `config`.
///
/// # Live connections
///
/// Tunnel-style providers (SSM data channel, Boundary `connect`) keep a
/// connection open after start. Such a provider sets
/// [`Capabilities::live_connection`] and implements
/// [`start_live`](SessionAction::start_live) (called *instead of* `start`)
/// and, if the service can re-attach to a session, [`resume`](SessionAction::resume).
/// Both return the session `active` together with a [`LiveHandle`]: the local
/// listen addresses or a duplex stream, and a way to watch the connection end
/// with an [`EndReason`](crate::EndReason). The provider keeps the matching
/// [`LiveEnd`](crate::LiveEnd) and ends it when the connection goes away —
/// with [`EndReason::ClosedByUser`](crate::EndReason::ClosedByUser) in `stop`,
/// with the service's reason or a lost network otherwise.
///
/// The [`SessionManager`](crate::SessionManager) holds the handles of the
/// live sessions of this process ([`SessionManager::live`](crate::SessionManager::live)),
/// persists a dropped connection as `disconnected` with the reason in
/// `last_error`, publishes
/// [`SessionEventKind::Disconnected`](crate::SessionEventKind::Disconnected)
/// and resumes it under its [`ResumePolicy`](crate::ResumePolicy). A live
/// session stored `active` or `disconnected` whose handle this process does
/// not hold (another process, or one that died) is reported `disconnected`,
/// and `start` re-attaches to it: `resume`, or `start_live` when the
/// provider returns [`Error::Unsupported`].
///
/// A provider that listens locally binds [`ActionContext::live`]'s
/// address when one is set (else its session's setting, else a free
/// loopback port) with [`bind_listener`](crate::bind_listener), so a port in
/// use fails at once with "address in use". When the manager resumes a
/// dropped connection it asks for the address the old one listened on, so
/// the user's tools keep working.
///
/// Credential providers implement neither: both default to
/// [`Error::Unsupported`].
///
/// # Cancellation
///
/// [`SessionManager::cancel`](crate::SessionManager::cancel) drops the
/// future of a `start`, `start_live`, `rotate` or `resume` in progress (a
/// device-code sign-in waiting for the user, a handshake). A provider must
/// leave nothing local behind when its future is dropped at an `.await`
/// (hold listeners and tasks in values whose `Drop` closes them); the
/// manager then records the operation as failed with
/// [`Error::Cancelled`](crate::Error::Cancelled). `stop` is never cancelled.
///
/// # What start, stop and rotate mean per session type
///
/// See the table in the [crate documentation](crate#what-start-stop-and-rotate-mean-for-each-session-type).
///
/// # Dyn use
///
/// The trait uses `async-trait` so that `Box<dyn SessionAction>` and
/// `Arc<dyn SessionAction>` work (native `async fn` in traits is not
/// dyn-compatible on Rust 1.95). A compile-time check in this module breaks
/// the build if it stops being dyn-compatible, `Send` or `Sync`.
///
/// *Migration notes*: none yet (0.1 is the first shape).
#[async_trait::async_trait]
pub trait SessionAction: Send + Sync + fmt::Debug {
    /// The session type this provider handles.
    fn session_type(&self) -> SessionType;

    /// What this provider supports.
    fn capabilities(&self) -> Capabilities;

    /// Starts `session` (status `pending`) and returns it `active`.
    async fn start(&self, ctx: &ActionContext, session: &Session) -> Result<Session>;

    /// Stops `session` (status `stopping`) and returns it `inactive`. Idempotent.
    async fn stop(&self, ctx: &ActionContext, session: &Session) -> Result<Session>;

    /// Replaces the credentials of `session` (status `rotating`) and returns it `active`.
    async fn rotate(&self, ctx: &ActionContext, session: &Session) -> Result<Session>;

    /// Starts `session` (status `pending`) and returns it `active` with the
    /// handle of its live connection. Called instead of
    /// [`start`](Self::start) when [`Capabilities::live_connection`] is set.
    ///
    /// The default returns [`Error::Unsupported`].
    async fn start_live(
        &self,
        ctx: &ActionContext,
        session: &Session,
    ) -> Result<(Session, LiveHandle)> {
        let _ = ctx;
        Err(Error::unsupported(
            self.session_type().to_string(),
            format!("a live connection ({})", session.label()),
        ))
    }

    /// Re-attaches to the remote session of `session` (status `pending`,
    /// previously `disconnected`: its connection was lost, or it is held by
    /// no process) and returns it `active` with a new handle.
    ///
    /// Return [`Error::Unsupported`] (the default) when the service cannot
    /// resume; the manager then calls [`start_live`](Self::start_live) for a
    /// new remote session.
    async fn resume(
        &self,
        ctx: &ActionContext,
        session: &Session,
    ) -> Result<(Session, LiveHandle)> {
        let _ = ctx;
        Err(Error::unsupported(
            self.session_type().to_string(),
            format!("resume ({})", session.label()),
        ))
    }
}

/// What a provider supports, so callers and the conformance suite can adapt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// `rotate` replaces credentials; if false it returns `Unsupported`.
    pub rotate: bool,
    /// `start` leaves a live connection in this process that `stop` closes.
    pub live_connection: bool,
    /// Sessions need a parent session (role chaining).
    pub requires_parent: bool,
    /// A `rotate` that fails with [`Error::Unauthenticated`](crate::Error::Unauthenticated)
    /// means the sign-in behind the session is gone (e.g. an expired or
    /// revoked refresh token) and the provider has already removed what
    /// `start` made available. The `SessionManager` then records the error
    /// and leaves the session `inactive` (through `stopping`), instead of
    /// `active` until it expires.
    pub rotate_unauthenticated_ends_session: bool,
    /// `rotate` of a live session resumes its connection in place (a new
    /// transport for the same remote session, e.g. SSM's ResumeSession)
    /// rather than replacing credentials. It fails with
    /// [`Error::NotFound`](crate::Error::NotFound) when the service no longer
    /// knows the remote session: restarting it as a new one is the
    /// caller's choice (`start`), never done by `rotate`.
    pub rotate_resumes: bool,
}

impl Capabilities {
    /// No capabilities; set the fields you support.
    pub fn none() -> Self {
        Self::default()
    }

    /// Sets [`Capabilities::rotate`].
    pub fn with_rotate(mut self, rotate: bool) -> Self {
        self.rotate = rotate;
        self
    }

    /// Sets [`Capabilities::live_connection`].
    pub fn with_live_connection(mut self, live: bool) -> Self {
        self.live_connection = live;
        self
    }

    /// Sets [`Capabilities::requires_parent`].
    pub fn with_requires_parent(mut self, requires: bool) -> Self {
        self.requires_parent = requires;
        self
    }

    /// Sets [`Capabilities::rotate_resumes`].
    pub fn with_rotate_resumes(mut self, resumes: bool) -> Self {
        self.rotate_resumes = resumes;
        self
    }

    /// Sets [`Capabilities::rotate_unauthenticated_ends_session`].
    pub fn with_rotate_unauthenticated_ends_session(mut self, ends: bool) -> Self {
        self.rotate_unauthenticated_ends_session = ends;
        self
    }
}

/// What a provider gets besides the session: the clock, the secret store,
/// and the parent session when there is one.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ActionContext {
    /// The only source of "now" for expiry decisions.
    pub clock: Arc<dyn Clock>,
    /// Where the provider keeps long-lived and issued secrets, keyed by session id.
    pub secrets: Arc<dyn SecretStore>,
    /// The parent session, for chained sessions: already `active` for
    /// start, rotate and resume; as stored (in any status, not started)
    /// for stop.
    pub parent: Option<Session>,
    /// What the caller asked of a live connection (e.g. the local port);
    /// read by [`SessionAction::start_live`] and [`SessionAction::resume`].
    pub live: LiveOptions,
}

impl ActionContext {
    /// A context with no parent.
    pub fn new(clock: Arc<dyn Clock>, secrets: Arc<dyn SecretStore>) -> Self {
        Self {
            clock,
            secrets,
            parent: None,
            live: LiveOptions::default(),
        }
    }

    /// Sets the parent session.
    pub fn with_parent(mut self, parent: Session) -> Self {
        self.parent = Some(parent);
        self
    }

    /// Sets what the caller asks of a live connection.
    pub fn with_live(mut self, live: LiveOptions) -> Self {
        self.live = live;
        self
    }
}

/// The operations, for events, errors and `last_error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// [`SessionAction::start`].
    Start,
    /// [`SessionAction::stop`].
    Stop,
    /// [`SessionAction::rotate`].
    Rotate,
    /// [`SessionAction::resume`] of a `disconnected` live session (or
    /// [`SessionAction::start_live`] when the provider cannot resume).
    Resume,
}

impl Operation {
    /// `start`, `stop`, `rotate` or `resume`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Start => "start",
            Operation::Stop => "stop",
            Operation::Rotate => "rotate",
            Operation::Resume => "resume",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Forwards every method of `SessionAction` through a smart pointer. Writing
/// it once for both wrappers means a new trait method cannot be forgotten in
/// one of them.
macro_rules! forward_session_action {
    ($($wrapper:ident),*) => {$(
        #[async_trait::async_trait]
        impl<T: SessionAction + ?Sized> SessionAction for $wrapper<T> {
            fn session_type(&self) -> SessionType {
                (**self).session_type()
            }
            fn capabilities(&self) -> Capabilities {
                (**self).capabilities()
            }
            async fn start(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
                (**self).start(ctx, session).await
            }
            async fn stop(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
                (**self).stop(ctx, session).await
            }
            async fn rotate(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
                (**self).rotate(ctx, session).await
            }
            async fn start_live(
                &self,
                ctx: &ActionContext,
                session: &Session,
            ) -> Result<(Session, LiveHandle)> {
                (**self).start_live(ctx, session).await
            }
            async fn resume(
                &self,
                ctx: &ActionContext,
                session: &Session,
            ) -> Result<(Session, LiveHandle)> {
                (**self).resume(ctx, session).await
            }
        }
    )*};
}

forward_session_action!(Box, Arc);

// Breaks the build if `SessionAction` stops being dyn-compatible, `Send` or `Sync`.
const _: () = {
    const fn assert_send_sync<T: ?Sized + Send + Sync>() {}
    assert_send_sync::<dyn SessionAction>();
    assert_send_sync::<Box<dyn SessionAction>>();
    assert_send_sync::<Arc<dyn SessionAction>>();
};
