//! A small in-process provider that issues tokens, for exercising the
//! manager, the scheduler and the conformance harness without a service.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use session_core::{
    ActionContext, Capabilities, Error, Result, Secret, SecretKey, Session, SessionAction,
    SessionStatus, SessionType,
};
use tokio::sync::Semaphore;

/// The secret name under which [`TokenProvider`] keeps the issued token.
pub const TOKEN_SECRET: &str = "token";

/// Per-session settings of [`TokenProvider`], in the session's `config`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenConfig {
    /// Make `start` fail with [`Error::Unauthenticated`].
    #[serde(default)]
    pub fail_start: bool,
    /// Make `rotate` fail with a retryable [`Error::Unavailable`].
    #[serde(default)]
    pub fail_rotate: bool,
}

/// Issues a token per session, stores it in the secret store under
/// [`TOKEN_SECRET`], with an expiry `lifetime` after the context clock's now.
///
/// - `start` issues a token; `rotate` issues a new one and replaces the old
///   in one write (no moment without a valid token); `stop` deletes it and
///   succeeds when there is nothing to delete.
/// - Tokens are `<prefix><n>`; give a canary prefix to check leaks.
/// - Counts calls, and can hold `start`, `rotate` or `stop` until released,
///   to test single-flight and the order of operations.
pub struct TokenProvider {
    session_type: SessionType,
    lifetime: Duration,
    prefix: String,
    rotate: bool,
    issued: AtomicUsize,
    /// Calls of `start`, `stop`, `rotate`.
    pub calls: CallCounts,
    hold: Option<Arc<Semaphore>>,
    hold_rotate: Option<Arc<Semaphore>>,
    hold_stop: Option<Arc<Semaphore>>,
}

/// How often each method was called.
#[derive(Debug, Default)]
pub struct CallCounts {
    /// `start` calls.
    pub start: AtomicUsize,
    /// `stop` calls.
    pub stop: AtomicUsize,
    /// `rotate` calls.
    pub rotate: AtomicUsize,
}

impl CallCounts {
    /// `(start, stop, rotate)`.
    pub fn get(&self) -> (usize, usize, usize) {
        (
            self.start.load(Ordering::SeqCst),
            self.stop.load(Ordering::SeqCst),
            self.rotate.load(Ordering::SeqCst),
        )
    }
}

impl std::fmt::Debug for TokenProvider {
    // Hand-written: the token prefix is part of every secret it issues.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenProvider")
            .field("session_type", &self.session_type)
            .field("lifetime", &self.lifetime)
            .field("calls", &self.calls)
            .finish_non_exhaustive()
    }
}

impl TokenProvider {
    /// A provider for `session_type` whose tokens live `lifetime`.
    pub fn new(session_type: SessionType, lifetime: Duration) -> Self {
        Self {
            session_type,
            lifetime,
            prefix: "token-".into(),
            rotate: true,
            issued: AtomicUsize::new(0),
            calls: CallCounts::default(),
            hold: None,
            hold_rotate: None,
            hold_stop: None,
        }
    }

    /// Tokens start with `prefix` (use a canary to check for leaks).
    pub fn with_token_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Declares rotation unsupported.
    pub fn without_rotate(mut self) -> Self {
        self.rotate = false;
        self
    }

    /// Makes `start` wait for a permit of `gate` (one per call).
    pub fn with_start_gate(mut self, gate: Arc<Semaphore>) -> Self {
        self.hold = Some(gate);
        self
    }

    /// Makes `rotate` wait for a permit of `gate` (one per call).
    pub fn with_rotate_gate(mut self, gate: Arc<Semaphore>) -> Self {
        self.hold_rotate = Some(gate);
        self
    }

    /// Makes `stop` wait for a permit of `gate` (one per call).
    pub fn with_stop_gate(mut self, gate: Arc<Semaphore>) -> Self {
        self.hold_stop = Some(gate);
        self
    }

    /// Waits for one permit of `gate`, if there is one.
    async fn pass(gate: Option<&Arc<Semaphore>>, operation: &str) -> Result<()> {
        if let Some(gate) = gate {
            gate.acquire()
                .await
                .map_err(|_| Error::Cancelled {
                    operation: operation.into(),
                    reason: "the test gate was closed".into(),
                })?
                .forget();
        }
        Ok(())
    }

    fn key(session: &Session) -> Result<SecretKey> {
        SecretKey::new(session.session_id, TOKEN_SECRET)
    }

    async fn issue(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        // Like a chained role: a child is issued from its parent, which the
        // manager must hand over, active, with every start and rotate.
        if let Some(parent_id) = session.parent_session_id {
            match &ctx.parent {
                Some(parent)
                    if parent.session_id == parent_id
                        && parent.status() == SessionStatus::Active => {}
                _ => {
                    return Err(Error::invalid_input(
                        "parentSessionId",
                        format!("{}: the context has no active parent", session.label()),
                    ));
                }
            }
        }
        let n = self.issued.fetch_add(1, Ordering::SeqCst);
        let token = Secret::new(format!("{}{n}", self.prefix));
        ctx.secrets.put(&Self::key(session)?, &token).await?;
        tracing::trace!(session = %session.label(), "issued a token");
        let mut issued = session.clone();
        issued.expiration = Some(ctx.clock.now() + self.lifetime);
        issued.transition(SessionStatus::Active, ctx.clock.now())?;
        Ok(issued)
    }
}

#[async_trait::async_trait]
impl SessionAction for TokenProvider {
    fn session_type(&self) -> SessionType {
        self.session_type.clone()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none().with_rotate(self.rotate)
    }

    async fn start(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        self.calls.start.fetch_add(1, Ordering::SeqCst);
        Self::pass(self.hold.as_ref(), "start").await?;
        let config: TokenConfig = session.config.get()?;
        if config.fail_start {
            return Err(Error::Unauthenticated {
                target: session.label(),
                message: "the test provider was told to refuse".into(),
            });
        }
        self.issue(ctx, session).await
    }

    async fn stop(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        self.calls.stop.fetch_add(1, Ordering::SeqCst);
        Self::pass(self.hold_stop.as_ref(), "stop").await?;
        ctx.secrets.delete(&Self::key(session)?).await?;
        let mut stopped = session.clone();
        stopped.transition(SessionStatus::Inactive, ctx.clock.now())?;
        Ok(stopped)
    }

    async fn rotate(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        self.calls.rotate.fetch_add(1, Ordering::SeqCst);
        if !self.rotate {
            return Err(Error::unsupported(self.session_type.to_string(), "rotate"));
        }
        Self::pass(self.hold_rotate.as_ref(), "rotate").await?;
        let config: TokenConfig = session.config.get()?;
        if config.fail_rotate {
            return Err(Error::Unavailable {
                target: session.label(),
                message: "the test provider was told to fail rotation".into(),
                source: None,
            });
        }
        self.issue(ctx, session).await
    }
}
