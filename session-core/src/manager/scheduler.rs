//! Rotates active sessions before their credentials expire.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use super::SessionManager;
use crate::{Error, Session, SessionId, SessionStatus};

/// When the [`RotationScheduler`] rotates.
///
/// A session with an `expiration` is rotated at
/// `expiration − window − jitter`, where the jitter is a fixed pseudo-random
/// share of [`jitter`](Self::jitter) derived from the session id and
/// expiration, so many sessions issued together do not all rotate at once.
/// If the credentials live no longer than the window, rotation happens when
/// a quarter of their lifetime is left instead, so short-lived credentials do
/// not rotate in a loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RotationPolicy {
    /// How long before expiry to rotate. Default
    /// [`DEFAULT_MIN_TTL`](crate::DEFAULT_MIN_TTL) (5 minutes), the lifetime
    /// [`SessionManager::ensure_active`](crate::SessionManager::ensure_active)
    /// callers get by default, so a scheduled session is never rotated by them too.
    pub window: Duration,
    /// Up to how much earlier still, per session. Default 60 seconds.
    pub jitter: Duration,
    /// After a failed rotation, how long to wait before trying again.
    /// Each further failure in a row doubles the wait, up to 64 times this.
    /// Default 60 seconds.
    pub retry_after: Duration,
    /// How often to re-read the workspace for changes made by other
    /// processes. Default 60 seconds.
    pub rescan: Duration,
}

impl Default for RotationPolicy {
    fn default() -> Self {
        Self {
            window: crate::DEFAULT_MIN_TTL,
            jitter: Duration::from_secs(60),
            retry_after: Duration::from_secs(60),
            rescan: Duration::from_secs(60),
        }
    }
}

impl RotationPolicy {
    /// Sets [`window`](Self::window).
    pub fn with_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Sets [`jitter`](Self::jitter).
    pub fn with_jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets [`retry_after`](Self::retry_after).
    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// Sets [`rescan`](Self::rescan).
    pub fn with_rescan(mut self, rescan: Duration) -> Self {
        self.rescan = rescan;
        self
    }

    /// When `session` is due for rotation, or `None` if it has no expiration
    /// or is not `active` / `expired`. `issued_at` is when the caller saw its
    /// current credentials issued, if it did.
    ///
    /// Their lifetime runs from the later of that and the session's own
    /// [`issued_at`](Session::issued_at) (either is an upper bound on the true
    /// time; one set by another path may be older), else from its start.
    pub fn due_at(
        &self,
        session: &Session,
        issued_at: Option<OffsetDateTime>,
    ) -> Option<OffsetDateTime> {
        if !matches!(
            session.status(),
            SessionStatus::Active | SessionStatus::Expired
        ) {
            return None;
        }
        let expiration = session.expiration?;
        let lead = self.window + self.jitter_for(session.session_id, expiration);
        let lead = time::Duration::try_from(lead).unwrap_or(time::Duration::MAX);
        let issued = match (issued_at, session.issued_at) {
            (Some(seen), Some(stored)) => Some(seen.max(stored)),
            (seen, stored) => seen.or(stored),
        };
        match issued.or(session.start_date_time) {
            Some(issued) if expiration - issued <= lead && expiration > issued => {
                Some(expiration - (expiration - issued) / 4)
            }
            _ => Some(expiration - lead),
        }
    }

    fn jitter_for(&self, id: SessionId, expiration: OffsetDateTime) -> Duration {
        let max = self.jitter.as_millis() as u64;
        if max == 0 {
            return Duration::ZERO;
        }
        // DefaultHasher::new() has fixed keys, so this is deterministic.
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        id.hash(&mut hasher);
        expiration.unix_timestamp().hash(&mut hasher);
        Duration::from_millis(hasher.finish() % max)
    }
}

/// A background task that rotates each session when it falls due under a
/// [`RotationPolicy`].
///
/// It waits on the manager's [`Clock`](crate::Clock), so with a
/// [`ManualClock`](crate::ManualClock) a test moves time instead of
/// sleeping. It wakes when a session is started or rotated, when the next
/// rotation is due, and every [`rescan`](RotationPolicy::rescan) to see
/// changes made by other processes. Sessions whose provider cannot rotate
/// are left alone, and so are `disconnected` ones: the manager resumes a
/// dropped live connection itself, under its
/// [`ResumePolicy`](crate::ResumePolicy), from the moment of the drop
/// (see [`SessionManager`](crate::SessionManager#live-sessions)).
///
/// ```no_run
/// # async fn demo(manager: session_core::SessionManager) {
/// use session_core::{RotationPolicy, RotationScheduler};
/// let scheduler = RotationScheduler::spawn(manager, RotationPolicy::default());
/// // … later:
/// scheduler.shutdown().await;
/// # }
/// ```
#[derive(Debug)]
pub struct RotationScheduler;

impl RotationScheduler {
    /// Starts the task on the current Tokio runtime.
    pub fn spawn(manager: SessionManager, policy: RotationPolicy) -> SchedulerHandle {
        Self::start(manager, policy, None)
    }

    /// Like [`spawn`](Self::spawn), for the listed sessions only (e.g. a
    /// live session and its parents while a command holds it): the others
    /// are left to whoever else rotates them.
    pub fn spawn_for(
        manager: SessionManager,
        policy: RotationPolicy,
        sessions: impl IntoIterator<Item = SessionId>,
    ) -> SchedulerHandle {
        Self::start(manager, policy, Some(sessions.into_iter().collect()))
    }

    fn start(
        manager: SessionManager,
        policy: RotationPolicy,
        only: Option<HashSet<SessionId>>,
    ) -> SchedulerHandle {
        let (stop, stopped) = watch::channel(false);
        let events = manager.subscribe();
        let task = tokio::spawn(run(manager, policy, only, events, stopped));
        SchedulerHandle { stop, task }
    }
}

/// Controls a running [`RotationScheduler`]. Dropping it without calling
/// [`shutdown`](Self::shutdown) also stops the task, at its next wake-up.
#[derive(Debug)]
pub struct SchedulerHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl SchedulerHandle {
    /// Stops the task and waits for it to end. A rotation already handed to
    /// the manager completes and is persisted; no new one starts.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Whether the task has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

async fn run(
    manager: SessionManager,
    policy: RotationPolicy,
    only: Option<HashSet<SessionId>>,
    mut events: broadcast::Receiver<super::SessionEvent>,
    mut stopped: watch::Receiver<bool>,
) {
    let clock = manager.clock().clone();
    // When each session's current credentials were issued, as far as this
    // task knows, and their expiration: the time of its own rotation, or
    // when it first saw an expiration another writer set (another manager
    // sharing the repository renewed it; seen at most a rescan late, which
    // only delays the next rotation a little). Without it, a manager would
    // plan from an older issue time and rotate what another had just
    // rotated. Other changes (settings) keep the expiration, and the plan.
    // And when a rotation last failed and how many times in a row.
    let mut issued: HashMap<SessionId, (OffsetDateTime, Option<OffsetDateTime>)> = HashMap::new();
    let mut failed: HashMap<SessionId, (OffsetDateTime, u32)> = HashMap::new();
    let rescan = time::Duration::try_from(policy.rescan).unwrap_or(time::Duration::MINUTE);
    let retry_after =
        time::Duration::try_from(policy.retry_after).unwrap_or(time::Duration::MINUTE);
    loop {
        if *stopped.borrow() {
            return;
        }
        let now = clock.now();
        let mut next_wake = now + rescan;
        let sessions = match manager.list().await {
            Ok(mut sessions) => {
                if let Some(only) = &only {
                    sessions.retain(|s| only.contains(&s.session_id));
                }
                sessions
            }
            Err(error) => {
                tracing::warn!(
                    category = error.category(),
                    "rotation scheduler cannot list sessions: {error}"
                );
                Vec::new()
            }
        };
        let live: Vec<SessionId> = sessions.iter().map(|s| s.session_id).collect();
        issued.retain(|id, _| live.contains(id));
        failed.retain(|id, _| live.contains(id));
        // Each scan starts at a random place in the list: managers of
        // several processes sharing the repository then mostly rotate
        // different sessions, instead of all queueing for the same session
        // lock in the same order (which made 4 managers slower than 1).
        let start = match sessions.len() {
            0 => 0,
            len => (uuid::Uuid::new_v4().as_u128() % len as u128) as usize,
        };
        let (tail, head) = sessions.split_at(start);
        for session in head.iter().chain(tail) {
            // Only sessions with a rotation time ask for their provider, so
            // a provider built on first use is not built (or, when its
            // settings are wrong, retried) for every idle session per scan.
            let issued_at = match issued.get(&session.session_id).copied() {
                Some((at, expiration)) if expiration == session.expiration => Some(at),
                Some(_) => {
                    issued.insert(session.session_id, (now, session.expiration));
                    Some(now)
                }
                None => {
                    // First sight: its recorded issue time, else its own
                    // start time (due_at reads both).
                    if let Some(started) = session.start_date_time {
                        issued.insert(session.session_id, (started, session.expiration));
                    }
                    None
                }
            };
            // A session left `rotating` is either being rotated by another
            // holder (the rotate below then waits for its lock and finds it
            // renewed) or was abandoned by one that died (its lock went
            // with it, and the rotate below finishes the job).
            let planned = if session.status() == SessionStatus::Rotating {
                Some(now)
            } else {
                policy.due_at(session, issued_at)
            };
            let Some(mut due) = planned else {
                continue;
            };
            let rotatable = match manager.provider(&session.session_type) {
                Ok(provider) => provider.capabilities().rotate,
                // No provider for the type: nothing this process can rotate.
                Err(Error::Unsupported { .. }) => false,
                Err(error) => {
                    // A provider built on first use whose settings are wrong.
                    tracing::warn!(
                        session_id = %session.session_id,
                        category = error.category(),
                        "rotation scheduler cannot build the provider: {error}"
                    );
                    false
                }
            };
            if !rotatable {
                continue;
            }
            if let Some((at, times)) = failed.get(&session.session_id) {
                let backoff = 1i32 << (times.saturating_sub(1).min(6));
                due = due.max(*at + retry_after * backoff);
            }
            if due > now {
                next_wake = next_wake.min(due);
                continue;
            }
            let id = session.session_id;
            // From this scan's view: another manager sharing the
            // repository may have rotated it since (it is then skipped).
            let rotation = manager.rotate_unless_renewed(session.clone());
            tokio::pin!(rotation);
            let outcome = tokio::select! {
                outcome = &mut rotation => outcome,
                _ = stopped.changed() => {
                    // Shutting down: this rotation completes and is
                    // persisted (dropped here, it would be left `rotating`
                    // when the runtime ends, its new credentials lost).
                    let _ = rotation.await;
                    return;
                }
            };
            match outcome {
                Ok(rotated) => {
                    let at = clock.now();
                    issued.insert(id, (at, rotated.expiration));
                    let before = failed.remove(&id).map_or(0, |f| f.1);
                    // A provider that hands back credentials already due
                    // would otherwise be rotated again at once, forever.
                    if policy
                        .due_at(&rotated, Some(at))
                        .is_some_and(|due| due <= at)
                    {
                        tracing::warn!(session_id = %id, "rotation returned credentials that are already due; retrying later");
                        failed.insert(id, (at, before + 1));
                    }
                }
                Err(error) => {
                    tracing::warn!(session_id = %id, category = error.category(), "scheduled rotation failed: {error}");
                    let times = failed.get(&id).map_or(0, |f| f.1) + 1;
                    failed.insert(id, (clock.now(), times));
                }
            }
            // Rotating took time and changed the session: plan again.
            next_wake = clock.now();
        }
        if next_wake <= clock.now() {
            continue;
        }
        // Wakes early for this manager's own events (a start or a stop
        // changes the plan); other processes' events (a fleet's hundreds of
        // rotations a minute) would make every manager list every session
        // each time, so their changes are seen at the next rescan.
        loop {
            tokio::select! {
                _ = clock.sleep_until(next_wake) => break,
                event = events.recv() => match event {
                    Err(broadcast::error::RecvError::Closed) => return,
                    Ok(event) if event.origin != super::EventOrigin::Here => continue,
                    _ => break,
                },
                _ = stopped.changed() => return,
            }
        }
    }
}
