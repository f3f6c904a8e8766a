//! "Make the session fresh, then use it": the one way for code outside the
//! manager (an SDK credentials provider, `sessionctl env`, a token
//! credential) to get an active session with enough lifetime left, and to
//! touch its secrets without racing a start, stop or rotate.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::{ActionContext, Operation, Result, SecretStore, Session, SessionId, SessionStatus};

use super::SessionManager;

/// How long a session's credentials must still be valid when they are
/// handed out, unless the caller asks for another minimum: five minutes,
/// as the AWS SDKs and azure-identity refresh a few minutes before expiry
/// themselves.
pub const DEFAULT_MIN_TTL: Duration = Duration::from_secs(5 * 60);

/// How long before its expiration `session` is renewed for a caller that
/// asks for `min_ttl`: `min_ttl`, but at most three quarters of the
/// lifetime of its credentials when it is known.
pub(crate) fn renewal_window(session: &Session, min_ttl: Duration) -> Duration {
    let lifetime = session
        .issued_at
        .zip(session.expiration)
        .and_then(|(issued, expiration)| Duration::try_from(expiration - issued).ok())
        .filter(|lifetime| !lifetime.is_zero());
    match lifetime {
        Some(lifetime) => min_ttl.min(lifetime * 3 / 4),
        None => min_ttl,
    }
}

impl SessionManager {
    /// The session `id_or_name`, `active` with at least `min_ttl` left:
    ///
    /// - active with more than `min_ttl` left (or no expiry): returned as is;
    /// - active or expired with less left: rotated, or started again when
    ///   its provider cannot rotate;
    /// - any other status: started (parents first).
    ///
    /// Credentials whose whole lifetime is not much longer than `min_ttl`
    /// (a 15-minute role asked for 15 minutes) cannot have that much left
    /// for long: such a session is renewed when less than three quarters
    /// of its lifetime is left (known from [`Session::issued_at`]), not at
    /// every call.
    ///
    /// Each step goes through [`run`](Self::run), so concurrent callers
    /// share one provider call and the workspace records the result.
    ///
    /// # Errors
    ///
    /// Those of the lookup and of the start or rotate.
    pub async fn ensure_active(&self, id_or_name: &str, min_ttl: Duration) -> Result<Session> {
        let session = self.find(id_or_name).await?;
        let id = session.session_id;
        let now = self.clock().now();
        let fresh = |s: &Session| {
            s.status() == SessionStatus::Active
                && s.expiration
                    .is_none_or(|at| at - renewal_window(s, min_ttl) > now)
        };
        if fresh(&session) {
            return Ok(session);
        }
        let operation = match session.status() {
            SessionStatus::Active | SessionStatus::Expired
                if self.provider(&session.session_type)?.capabilities().rotate =>
            {
                Operation::Rotate
            }
            SessionStatus::Active if !session.is_expired_at(now) => {
                // Cannot rotate, and start would return it unchanged while
                // it has not expired: hand it out with what it has left.
                return Ok(session);
            }
            _ => Operation::Start,
        };
        self.run(operation, id).await
    }

    /// Holds the session's gate and its repository
    /// [lock](crate::WorkspaceRepository::lock_session): no start, stop,
    /// rotate or remove of it runs through this manager, or any other
    /// manager sharing the repository, until the returned [`SessionLease`]
    /// is dropped.
    /// For code that reads and writes the session's secrets outside a
    /// provider call (e.g. a token credential storing a rotated refresh
    /// token), so it never races the provider.
    ///
    /// The lease carries the session as stored once the gate was taken.
    /// Never take it inside a provider's start, stop or rotate of the same
    /// session: the manager holds the gate then, so it would wait forever.
    ///
    /// # Errors
    ///
    /// Those of the lookup.
    pub async fn lease(&self, id_or_name: &str) -> Result<SessionLease> {
        let id = self.find(id_or_name).await?.session_id;
        let gate = self.inner.gate(id);
        let held = gate.lock_owned().await;
        let locked = self.inner.repository.lock_session(id).await?;
        // Read again under the gate: an operation may have just finished.
        let session = self.inner.repository.get(id).await?;
        Ok(SessionLease {
            session,
            ctx: self.inner.context(),
            _held: held,
            _locked: locked,
        })
    }
}

/// Exclusive use of one session, from [`SessionManager::lease`].
pub struct SessionLease {
    session: Session,
    ctx: ActionContext,
    _held: tokio::sync::OwnedMutexGuard<()>,
    _locked: crate::SessionLock,
}

impl fmt::Debug for SessionLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLease")
            .field("session", &self.session.label())
            .finish_non_exhaustive()
    }
}

impl SessionLease {
    /// The session, as stored when the lease was taken.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The session's id.
    pub fn id(&self) -> SessionId {
        self.session.session_id
    }

    /// The clock and secret store of the manager.
    pub fn context(&self) -> &ActionContext {
        &self.ctx
    }

    /// The manager's secret store.
    pub fn secrets(&self) -> &Arc<dyn SecretStore> {
        &self.ctx.secrets
    }
}
