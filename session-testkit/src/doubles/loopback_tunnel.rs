//! A live provider whose "tunnel" is a local listener forwarding to an echo
//! server, for testing live connections without a service.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use session_core::{
    ActionContext, Capabilities, EndReason, Error, LiveEnd, LiveHandle, Result, Session,
    SessionAction, SessionId, SessionStatus, SessionType, bind_listener,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Session settings (`config` keys) that script what the double's "service"
/// does, for tests that cannot reach the provider object (a child process):
/// the first connection of each remote session is lost (resumable) this
/// many milliseconds after it opened.
pub const DROP_AFTER_MS: &str = "dropAfterMs";
/// The remote session expires this many milliseconds after start: the
/// session's `expiration`, and the connection ends with
/// [`EndReason::Expired`] then.
pub const LIFETIME_MS: &str = "lifetimeMs";

type Tunnels = Arc<Mutex<HashMap<SessionId, Tunnel>>>;

/// A tunnel-style [`SessionAction`] on loopback TCP.
///
/// - `start_live` (and `start`) binds a listener on
///   [`ActionContext::live`]'s address (else `127.0.0.1:0`) with
///   [`bind_listener`], forwarding every connection to an echo server of
///   its own, and hands back a [`LiveHandle`] with that address. The "remote session" is a flag per
///   session id that lives until `stop`.
/// - [`drop_connection`](Self::drop_connection) closes the listener and its
///   connections as a network failure would, leaving the remote session
///   resumable; `resume` binds a new listener for it.
/// - `stop` closes everything with [`EndReason::ClosedByUser`] and succeeds
///   when nothing is open (idempotent).
/// - Remote sessions live in the provider object: `resume` of one another
///   object (another process) opened returns [`Error::Unsupported`], so
///   the manager starts a new one.
/// - [`fail_resumes`](Self::fail_resumes) makes the next resumes fail with a
///   retryable [`Error::Unavailable`], to test the resume policy.
/// - The session's config can script the service: [`DROP_AFTER_MS`] and
///   [`LIFETIME_MS`] (timers on [`ActionContext::clock`]).
#[derive(Debug)]
pub struct LoopbackTunnel {
    session_type: SessionType,
    resumable: bool,
    echo: SocketAddr,
    echo_task: JoinHandle<()>,
    tunnels: Tunnels,
    remote: Mutex<HashSet<SessionId>>,
    /// Remote sessions whose scripted drop already happened.
    dropped_once: Mutex<HashSet<SessionId>>,
    resume_failures: AtomicUsize,
    /// Calls of each method.
    pub calls: LiveCalls,
}

/// How often each method of [`LoopbackTunnel`] was called.
#[derive(Debug, Default)]
pub struct LiveCalls {
    /// `start` and `start_live` calls.
    pub start: AtomicUsize,
    /// `resume` calls, failed ones included.
    pub resume: AtomicUsize,
    /// `stop` calls.
    pub stop: AtomicUsize,
}

impl LiveCalls {
    /// `(start, resume, stop)`.
    pub fn get(&self) -> (usize, usize, usize) {
        (
            self.start.load(Ordering::SeqCst),
            self.resume.load(Ordering::SeqCst),
            self.stop.load(Ordering::SeqCst),
        )
    }
}

#[derive(Debug)]
struct Tunnel {
    accept: JoinHandle<()>,
    end: LiveEnd,
    /// The scripted drop or expiry, if any.
    timers: Vec<JoinHandle<()>>,
}

impl Tunnel {
    fn close(self, reason: EndReason) {
        // Aborting the accept task drops the listener and, through its
        // JoinSet, every forwarded connection.
        self.accept.abort();
        for timer in &self.timers {
            timer.abort();
        }
        self.end.end(reason);
    }
}

/// Closes the tunnel of `id` with `reason`, if one is open.
fn close_tunnel(tunnels: &Tunnels, id: SessionId, reason: EndReason) -> bool {
    let tunnel = tunnels
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id);
    match tunnel {
        Some(tunnel) => {
            tunnel.close(reason);
            true
        }
        None => false,
    }
}

/// A config value in milliseconds.
fn millis(session: &Session, key: &str) -> Option<time::Duration> {
    session
        .config
        .as_map()
        .get(key)
        .and_then(Value::as_u64)
        .map(|ms| time::Duration::milliseconds(i64::try_from(ms).unwrap_or(i64::MAX)))
}

impl Drop for LoopbackTunnel {
    fn drop(&mut self) {
        self.echo_task.abort();
        let tunnels = std::mem::take(&mut *self.tunnels());
        for (_, tunnel) in tunnels {
            tunnel.close(EndReason::ClosedByService(
                "the provider was dropped".into(),
            ));
        }
    }
}

impl LoopbackTunnel {
    /// A provider for `session_type` that can resume, with its echo server
    /// listening. Needs a Tokio runtime.
    pub async fn new(session_type: SessionType) -> std::io::Result<Self> {
        Self::bind(session_type)
    }

    /// [`new`](Self::new) for a caller that cannot await (a provider
    /// factory); must be called inside a Tokio runtime.
    pub fn bind(session_type: SessionType) -> std::io::Result<Self> {
        let echo = std::net::TcpListener::bind("127.0.0.1:0")?;
        echo.set_nonblocking(true)?;
        let echo = TcpListener::from_std(echo)?;
        let echo_addr = echo.local_addr()?;
        let echo_task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut stream, _)) = echo.accept().await {
                connections.spawn(async move {
                    let (mut read, mut write) = stream.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                });
            }
        });
        Ok(Self {
            session_type,
            resumable: true,
            echo: echo_addr,
            echo_task,
            tunnels: Arc::new(Mutex::new(HashMap::new())),
            remote: Mutex::new(HashSet::new()),
            dropped_once: Mutex::new(HashSet::new()),
            resume_failures: AtomicUsize::new(0),
            calls: LiveCalls::default(),
        })
    }

    /// Whether `resume` re-attaches (default) or returns
    /// [`Error::Unsupported`], like a service without resume.
    pub fn with_resume(mut self, resumable: bool) -> Self {
        self.resumable = resumable;
        self
    }

    /// Makes the next `count` resumes fail with [`Error::Unavailable`].
    pub fn fail_resumes(&self, count: usize) {
        self.resume_failures.store(count, Ordering::SeqCst);
    }

    /// Closes the connection of `id` as the network would: its handle ends
    /// with `reason`, the remote session stays resumable. Returns whether a
    /// connection was open.
    pub fn drop_connection(&self, id: SessionId, reason: EndReason) -> bool {
        close_tunnel(&self.tunnels, id, reason)
    }

    /// Whether a connection of `id` is open.
    pub fn is_open(&self, id: SessionId) -> bool {
        self.tunnels().contains_key(&id)
    }

    fn tunnels(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Tunnel>> {
        self.tunnels.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn dropped_once(&self) -> std::sync::MutexGuard<'_, HashSet<SessionId>> {
        self.dropped_once.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn remote(&self) -> std::sync::MutexGuard<'_, HashSet<SessionId>> {
        self.remote.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check_pending(&self, session: &Session, what: &str) -> Result<()> {
        if session.status() == SessionStatus::Pending {
            return Ok(());
        }
        Err(Error::provider(
            self.session_type.to_string(),
            session.label(),
            format!("{what} called with status {}", session.status()),
        ))
    }

    /// Binds a listener forwarding to the echo server and returns its handle.
    async fn open(&self, ctx: &ActionContext, session: &Session) -> Result<(Session, LiveHandle)> {
        let listen = ctx.live.listen_or(SocketAddr::from(([127, 0, 0, 1], 0)));
        let listener = bind_listener(listen)
            .await
            .map_err(|e| e.in_session(&session.label()))?;
        let address = listener
            .local_addr()
            .map_err(|e| self.io_error(session, "local address", e))?;
        let echo = self.echo;
        let accept = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(echo).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        let (handle, end) = LiveHandle::listening([address]);
        let timers = self.script(ctx, session);
        let previous = self.tunnels().insert(
            session.session_id,
            Tunnel {
                accept,
                end,
                timers,
            },
        );
        if let Some(previous) = previous {
            previous.close(EndReason::ClosedByService(
                "replaced by a new connection".into(),
            ));
        }
        self.remote().insert(session.session_id);
        Ok((session.clone(), handle))
    }

    /// The timers the session's config asks for (see [`DROP_AFTER_MS`]).
    fn script(&self, ctx: &ActionContext, session: &Session) -> Vec<JoinHandle<()>> {
        let id = session.session_id;
        let mut timers = Vec::new();
        let mut at = |after: time::Duration, reason: EndReason| {
            let tunnels = Arc::clone(&self.tunnels);
            let clock = Arc::clone(&ctx.clock);
            let when = clock.now() + after;
            timers.push(tokio::spawn(async move {
                clock.sleep_until(when).await;
                close_tunnel(&tunnels, id, reason);
            }));
        };
        let first = self
            .dropped_once
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id);
        if let Some(after) = millis(session, DROP_AFTER_MS).filter(|_| first) {
            at(after, EndReason::NetworkLost("scripted drop".into()));
        }
        if let Some(expiration) = session.expiration {
            at(expiration - ctx.clock.now(), EndReason::Expired);
        }
        timers
    }

    fn io_error(&self, session: &Session, what: &str, error: std::io::Error) -> Error {
        Error::provider_caused_by(
            self.session_type.to_string(),
            session.label(),
            format!("loopback tunnel: {what} failed"),
            error,
        )
    }

    fn activated(session: &Session, ctx: &ActionContext) -> Result<Session> {
        let mut active = session.clone();
        active.transition(SessionStatus::Active, ctx.clock.now())?;
        Ok(active)
    }

    /// `session` with the expiration its [`LIFETIME_MS`] gives, from now.
    fn with_lifetime(session: &Session, ctx: &ActionContext) -> Session {
        let mut session = session.clone();
        if let Some(lifetime) = millis(&session, LIFETIME_MS) {
            session.expiration = Some(ctx.clock.now() + lifetime);
        }
        session
    }
}

#[async_trait::async_trait]
impl SessionAction for LoopbackTunnel {
    fn session_type(&self) -> SessionType {
        self.session_type.clone()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none().with_live_connection(true)
    }

    /// Opens the tunnel; its handle is reachable only through the provider
    /// (`start_live` is what the manager calls).
    async fn start(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        Ok(self.start_live(ctx, session).await?.0)
    }

    async fn stop(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        self.calls.stop.fetch_add(1, Ordering::SeqCst);
        if let Some(tunnel) = self.tunnels().remove(&session.session_id) {
            tunnel.close(EndReason::ClosedByUser);
        }
        self.remote().remove(&session.session_id);
        let mut stopped = session.clone();
        stopped.transition(SessionStatus::Inactive, ctx.clock.now())?;
        Ok(stopped)
    }

    async fn rotate(&self, _ctx: &ActionContext, session: &Session) -> Result<Session> {
        Err(Error::unsupported(
            self.session_type.to_string(),
            format!("rotate ({})", session.label()),
        ))
    }

    async fn start_live(
        &self,
        ctx: &ActionContext,
        session: &Session,
    ) -> Result<(Session, LiveHandle)> {
        self.calls.start.fetch_add(1, Ordering::SeqCst);
        self.check_pending(session, "start")?;
        self.dropped_once().remove(&session.session_id);
        let session = Self::with_lifetime(session, ctx);
        let (_, handle) = self.open(ctx, &session).await?;
        Ok((Self::activated(&session, ctx)?, handle))
    }

    async fn resume(
        &self,
        ctx: &ActionContext,
        session: &Session,
    ) -> Result<(Session, LiveHandle)> {
        self.calls.resume.fetch_add(1, Ordering::SeqCst);
        if !self.resumable {
            return Err(Error::unsupported(
                self.session_type.to_string(),
                format!("resume ({})", session.label()),
            ));
        }
        self.check_pending(session, "resume")?;
        let failed = self
            .resume_failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failed {
            return Err(Error::Unavailable {
                target: session.label(),
                message: "loopback tunnel: resume refused (scripted)".into(),
                source: None,
            });
        }
        if !self.remote().contains(&session.session_id) {
            // Its "remote session" lived in another process (or provider
            // object): like a service that no longer knows the session,
            // which the manager answers by starting a new one.
            return Err(Error::unsupported(
                self.session_type.to_string(),
                format!(
                    "resume of {}, which this provider never opened",
                    session.label()
                ),
            ));
        }
        let (_, handle) = self.open(ctx, session).await?;
        Ok((Self::activated(session, ctx)?, handle))
    }
}
