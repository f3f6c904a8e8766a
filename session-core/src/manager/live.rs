//! The manager's side of live connections: holding handles, re-attaching,
//! recording drops and resuming by deadline.

use std::sync::{Arc, Weak};

use futures::FutureExt;
use futures::future::BoxFuture;

use super::cancel::Cancel;
use super::{Inner, SessionEventKind, SessionManager, cancelled};
use crate::redact::Redactor;
use crate::{
    EndReason, Error, LiveHandle, LiveOptions, Operation, Result, Session, SessionAction,
    SessionId, SessionLock, SessionStatus,
};

/// A connection this process holds, and the session revision it last wrote.
pub(super) struct Held {
    pub(super) handle: LiveHandle,
    pub(super) revision: Option<u64>,
    /// The repository's mark that this process holds the connection
    /// ([`WorkspaceRepository::hold_live`](crate::WorkspaceRepository::hold_live)).
    _holder: Option<SessionLock>,
}

/// `last_error.operation` of a connection that ended on its own.
pub(super) const CONNECTION: &str = "connection";

impl Inner {
    /// Whether `session`'s provider keeps a live connection. Asked only for
    /// sessions stored `active` or `disconnected`, so a provider registered
    /// lazily is not built just to list idle sessions.
    pub(super) fn is_live(&self, session: &Session) -> bool {
        matches!(
            session.status(),
            SessionStatus::Active | SessionStatus::Disconnected
        ) && self
            .providers
            .for_session(session)
            .is_ok_and(|p| p.capabilities().live_connection)
    }

    /// What callers of this process asked of `id`'s connection.
    pub(super) fn live_options_for(&self, id: SessionId) -> LiveOptions {
        self.live_options
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
            .unwrap_or_default()
    }

    /// Sets what callers ask of `id`'s connection; `None` forgets it.
    pub(super) fn set_live_options(&self, id: SessionId, options: Option<LiveOptions>) {
        let mut all = self.live_options.lock().unwrap_or_else(|e| e.into_inner());
        match options {
            Some(options) => all.insert(id, options),
            None => all.remove(&id),
        };
    }

    /// After a connection opened: a resume asks for the address it listens
    /// on, so tools pointed at it keep working (a free port chosen by the
    /// provider becomes this port).
    fn remember_address(&self, id: SessionId, handle: &LiveHandle) {
        if let [address] = handle.addresses() {
            let mut options = self.live_options_for(id);
            options.listen = Some(*address);
            self.set_live_options(id, Some(options));
        }
    }

    /// The handle this process holds for `id`, if its connection is up.
    pub(super) fn held(&self, id: SessionId) -> Option<LiveHandle> {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .filter(|h| h.handle.end_reason().is_none())
            .map(|h| h.handle.clone())
    }

    /// The session as this process can vouch for it: a live session stored
    /// `active` whose connection neither this process nor, as far as the
    /// repository can tell, another live process holds may belong to a
    /// process that died, so it is reported `disconnected` (resumable).
    /// Nothing is written: the holder, if alive, still owns the record.
    pub(super) async fn view(&self, session: Session) -> Session {
        if session.status() != SessionStatus::Active
            || !self.is_live(&session)
            || self.held(session.session_id).is_some()
            || self
                .repository
                .is_held_elsewhere(session.session_id)
                .await
                .unwrap_or(false)
        {
            return session;
        }
        let mut reported = session.clone();
        match reported.transition(SessionStatus::Disconnected, self.clock.now()) {
            Ok(()) => reported,
            Err(_) => session,
        }
    }

    /// Keeps `handle` for `id`, marked in the repository as held by this
    /// process, and watches its end.
    pub(super) fn hold(
        self: &Arc<Self>,
        id: SessionId,
        handle: LiveHandle,
        holder: Option<SessionLock>,
    ) {
        self.live.lock().unwrap_or_else(|e| e.into_inner()).insert(
            id,
            Held {
                handle: handle.clone(),
                revision: None,
                _holder: holder,
            },
        );
        // Weak: a connection the provider never ends must not keep the
        // manager alive.
        let weak = Arc::downgrade(self);
        let mut events = handle.events();
        let reporter = Arc::downgrade(self);
        let watched = handle.clone();
        tokio::spawn(async move {
            let ended = watched.ended();
            tokio::pin!(ended);
            loop {
                let event = tokio::select! {
                    _ = &mut ended => return,
                    event = events.recv() => event,
                };
                let event = match event {
                    Ok(event) => event,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                };
                let Some(inner) = reporter.upgrade() else {
                    return;
                };
                tracing::info!(session_id = %id, "{event}");
                if let Ok(session) = inner.repository.get(id).await {
                    inner.publish(&session, SessionEventKind::Connection(event));
                }
            }
        });
        tokio::spawn(async move {
            let reason = handle.ended().await;
            let Some(inner) = weak.upgrade() else { return };
            // `stop` releases the handle before closing it: an end it caused
            // is not a drop.
            let Some(revision) = inner.release(id, &handle) else {
                return;
            };
            inner.connection_ended(id, reason, revision).await;
        });
    }

    /// Forgets the handle of `id`, if any.
    pub(super) fn release_any(&self, id: SessionId) -> Option<LiveHandle> {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
            .map(|h| h.handle)
    }

    /// Takes what this process holds for `id`, to give it back with
    /// [`keep`](Self::keep) if a stop fails.
    pub(super) fn take_held(&self, id: SessionId) -> Option<Held> {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
    }

    /// Gives back what [`take_held`](Self::take_held) took, if its
    /// connection is still up.
    pub(super) fn keep(&self, id: SessionId, held: Held) {
        if held.handle.end_reason().is_none() {
            self.live
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, held);
        }
    }

    /// Remembers the revision this process last wrote for a session whose
    /// connection it holds.
    pub(super) fn note_revision(&self, id: SessionId, revision: u64) {
        if let Some(held) = self
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&id)
        {
            held.revision = Some(revision);
        }
    }

    /// Forgets the handle of `id` if it is `handle`; returns the revision
    /// this process last wrote (`Some(None)` if unknown), `None` when the
    /// handle was no longer the one held.
    fn release(&self, id: SessionId, handle: &LiveHandle) -> Option<Option<u64>> {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if live
            .get(&id)
            .is_some_and(|h| h.handle.same_connection(handle))
        {
            live.remove(&id).map(|h| h.revision)
        } else {
            None
        }
    }

    /// A connection ended without `stop`: a user who closed it (or whose
    /// remote command exited) gets the session stopped; otherwise it is
    /// persisted `disconnected` (or `expired`) with the reason in
    /// `last_error`, and a lost network is resumed under the policy.
    async fn connection_ended(
        self: &Arc<Self>,
        id: SessionId,
        reason: EndReason,
        revision: Option<u64>,
    ) {
        if matches!(reason, EndReason::ClosedByUser | EndReason::Exited(_)) {
            let manager = SessionManager {
                inner: Arc::clone(self),
            };
            if let Err(error) = manager.run(Operation::Stop, id).await {
                tracing::warn!(session_id = %id, category = error.category(), "could not stop a session whose user closed it: {error}");
            }
            return;
        }
        let recorded = self.record_drop(id, &reason, revision).await;
        let stored = match recorded {
            Ok(Some(stored)) => stored,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(session_id = %id, category = error.category(), "could not record a dropped connection: {error}");
                return;
            }
        };
        self.publish(
            &stored,
            SessionEventKind::Disconnected {
                reason: reason.clone(),
            },
        );
        if reason.is_resumable() && !self.resume_policy.deadline.is_zero() {
            tokio::spawn(resume_until_deadline(Arc::downgrade(self), id));
        }
    }

    async fn record_drop(
        &self,
        id: SessionId,
        reason: &EndReason,
        revision: Option<u64>,
    ) -> Result<Option<Session>> {
        let gate = self.gate(id);
        let _held = gate.lock().await;
        let _locked = self.repository.lock_session(id).await?;
        let session = self.repository.get(id).await?;
        // Stopped, or already recorded, meanwhile.
        if session.status() != SessionStatus::Active {
            return Ok(None);
        }
        // Written by someone else since this process connected: another
        // process re-attached (which is what closed this connection), and
        // the record is now its to keep. Recording a drop would make the
        // two take the session from each other in turn.
        if revision.is_some_and(|mine| mine != session.revision()) {
            tracing::debug!(session_id = %id, "connection ended after another holder re-attached");
            return Ok(None);
        }
        let to = if *reason == EndReason::Expired {
            SessionStatus::Expired
        } else {
            SessionStatus::Disconnected
        };
        let error = Error::Unavailable {
            target: session.label(),
            message: format!("the live connection ended: {reason}"),
            source: None,
        };
        let now = self.clock.now();
        let stored = self
            .persist(&session, |current| {
                current.transition(to, now)?;
                current.record_error(CONNECTION, &error, now);
                Ok(())
            })
            .await?;
        Ok(Some(stored))
    }

    /// `start` of a live session: returns it unchanged while this process
    /// holds its connection, re-attaches when it is stored `active` or
    /// `disconnected` without one, else starts a new remote session.
    pub(super) fn start_live<'a>(
        self: &'a Arc<Self>,
        provider: Arc<dyn SessionAction>,
        session: Session,
        depth: usize,
        redactor: &'a Redactor,
        cancel: &'a Cancel,
    ) -> BoxFuture<'a, Result<Session>> {
        async move {
            let now = self.clock.now();
            match session.status() {
                SessionStatus::Active
                    if self.held(session.session_id).is_some() && !session.is_expired_at(now) =>
                {
                    return Ok(session);
                }
                SessionStatus::Active | SessionStatus::Disconnected
                    if !session.is_expired_at(now) =>
                {
                    return self.resume(session, depth, redactor, cancel).await;
                }
                _ => {}
            }
            let session = if session.status().can_become(SessionStatus::Pending) {
                session
            } else {
                // Stored active or disconnected past its expiration: record
                // that, then start anew.
                let mut expired = session;
                expired.transition(SessionStatus::Expired, now)?;
                self.repository.update(expired).await?
            };
            let ctx = self.context_for(&session, depth, redactor, cancel).await?;
            let mut pending = session.clone();
            pending.transition(SessionStatus::Pending, self.clock.now())?;
            let pending = self.repository.update(pending).await?;
            let outcome = cancel
                .run(
                    || cancelled(Operation::Start, &pending),
                    provider.start_live(&ctx, &pending),
                )
                .await;
            self.finish_live(
                Operation::Start,
                pending,
                SessionStatus::Inactive,
                outcome,
                redactor,
            )
            .await
        }
        .boxed()
    }

    /// [`Operation::Resume`]: `disconnected` (or `active` held by no
    /// process) → `pending` → `active` through the provider's `resume`, or
    /// its `start_live` when it cannot resume. A failure leaves it
    /// `disconnected` with the error.
    pub(super) async fn resume(
        self: &Arc<Self>,
        session: Session,
        depth: usize,
        redactor: &Redactor,
        cancel: &Cancel,
    ) -> Result<Session> {
        let provider = self.provider_for(&session)?;
        if !provider.capabilities().live_connection {
            return Err(Error::unsupported(
                provider.session_type().to_string(),
                format!("resume ({} has no live connection)", session.label()),
            ));
        }
        let id = session.session_id;
        if self.held(id).is_none() && self.repository.is_held_elsewhere(id).await? {
            // Re-attaching would take the connection from a live process.
            return Err(crate::repository::held_elsewhere_error(&session.label()));
        }
        let session = match session.status() {
            SessionStatus::Active if self.held(id).is_some() => return Ok(session),
            SessionStatus::Active => {
                // Held by no process of ours: record it as what it is first,
                // since active → pending is no legal transition.
                let mut lost = session;
                lost.transition(SessionStatus::Disconnected, self.clock.now())?;
                self.repository.update(lost).await?
            }
            SessionStatus::Disconnected => session,
            from => {
                return Err(Error::InvalidTransition {
                    session: session.label(),
                    from,
                    to: SessionStatus::Pending,
                });
            }
        };
        let ctx = self.context_for(&session, depth, redactor, cancel).await?;
        let mut pending = session.clone();
        pending.transition(SessionStatus::Pending, self.clock.now())?;
        let pending = self.repository.update(pending).await?;
        let reattach = async {
            match provider.resume(&ctx, &pending).await {
                Err(Error::Unsupported { .. }) => provider.start_live(&ctx, &pending).await,
                other => other,
            }
        };
        let outcome = cancel
            .run(|| cancelled(Operation::Resume, &pending), reattach)
            .await;
        self.finish_live(
            Operation::Resume,
            pending,
            SessionStatus::Disconnected,
            outcome,
            redactor,
        )
        .await
    }

    /// [`Inner::finish`] for a result with a handle: the handle is held
    /// before the event is published, so a subscriber that asks for it on
    /// `Started` / `Resumed` finds it.
    async fn finish_live(
        self: &Arc<Self>,
        operation: Operation,
        sent: Session,
        fallback: SessionStatus,
        outcome: Result<(Session, LiveHandle)>,
        redactor: &Redactor,
    ) -> Result<Session> {
        let id = sent.session_id;
        let outcome = match outcome {
            Ok((session, handle)) => {
                self.remember_address(id, &handle);
                let holder = match self.repository.hold_live(id).await {
                    Ok(holder) => holder,
                    Err(error) => {
                        // The connection works; other processes will only
                        // report it disconnected.
                        tracing::warn!(session_id = %id, category = error.category(), "cannot mark the live connection as held: {error}");
                        None
                    }
                };
                self.hold(id, handle, holder);
                Ok(session)
            }
            Err(error) => Err(error),
        };
        let finished = self
            .finish(
                operation,
                sent,
                fallback,
                outcome,
                SessionStatus::Active,
                redactor,
            )
            .await;
        match &finished {
            Ok(stored) => self.note_revision(id, stored.revision()),
            // Not recorded active: nobody may use a connection the
            // workspace does not list.
            Err(_) => {
                self.release_any(id);
            }
        }
        finished
    }
}

/// Resumes `id` until it is `active`, no longer `disconnected` (stopped by
/// someone), or the policy's deadline has passed since the drop.
async fn resume_until_deadline(weak: Weak<Inner>, id: SessionId) {
    let Some(inner) = weak.upgrade() else { return };
    let policy = inner.resume_policy;
    let clock = Arc::clone(&inner.clock);
    let deadline =
        clock.now() + time::Duration::try_from(policy.deadline).unwrap_or(time::Duration::DAY);
    drop(inner);
    let mut failures = 0u32;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        match inner.repository.get(id).await {
            Ok(session) if session.status() == SessionStatus::Disconnected => {}
            _ => return,
        }
        let manager = SessionManager { inner };
        match manager.run(Operation::Resume, id).await {
            Ok(_) => return,
            // Someone gave up on it (`SessionManager::cancel`).
            Err(Error::Cancelled { .. }) => return,
            Err(error) => {
                failures += 1;
                tracing::warn!(session_id = %id, category = error.category(), failures, "resume failed: {error}");
            }
        }
        let next = clock.now()
            + time::Duration::try_from(policy.backoff(failures)).unwrap_or(time::Duration::MINUTE);
        if next > deadline {
            if let Ok(session) = manager.inner.repository.get(id).await {
                manager.inner.publish(
                    &session,
                    SessionEventKind::ResumeAbandoned { tries: failures },
                );
            }
            return;
        }
        drop(manager);
        clock.sleep_until(next).await;
    }
}
