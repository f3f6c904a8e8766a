//! Runs start, stop and rotate with persistence, single-flight and events.

mod cancel;
mod events;
mod fresh;
mod live;
mod providers;
mod scheduler;
mod shared;

pub use events::{EventOrigin, SessionEvent, SessionEventKind};
pub use fresh::{DEFAULT_MIN_TTL, SessionLease};
use providers::{MissingProviderHint, ProviderFactory};
pub use scheduler::{RotationPolicy, RotationScheduler, SchedulerHandle};
pub use shared::{SharedEvent, SharedEventKind};

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use tokio::sync::broadcast;
use tracing::Instrument;

use self::cancel::Cancel;
use self::providers::Providers;
use crate::redact::Redactor;
use crate::{
    ActionContext, Clock, Error, InMemorySecretStore, LiveHandle, LiveOptions, Operation, Result,
    ResumePolicy, SecretStore, Session, SessionAction, SessionId, SessionStatus, SessionType,
    SystemClock, WorkspaceRepository, WorkspaceRepositoryExt,
};

/// How many events a slow subscriber may fall behind before it misses some
/// (it then gets `RecvError::Lagged` and should re-list the workspace).
const EVENT_CAPACITY: usize = 256;

/// How often the final write of an operation is retried when another writer
/// changed the session meanwhile (each retry re-reads it first).
const CONFLICT_RETRIES: usize = 5;

/// The deepest parent chain the manager follows when starting parents.
const MAX_PARENT_DEPTH: usize = 16;

type OpFuture = Shared<BoxFuture<'static, Result<Session>>>;

/// Runs operations on the sessions of one workspace.
///
/// For each operation the manager:
/// 1. finds the session by id or name;
/// 2. persists the transitional status (`pending`, `rotating`, `stopping`)
///    before calling the provider, so other processes see it;
/// 3. calls the provider registered for the session's type;
/// 4. persists the result, or on failure returns the session to a consistent
///    status (see the table on [`SessionStatus`]) with the error recorded in
///    [`Session::last_error`];
/// 5. publishes a [`SessionEvent`].
///
/// Operations are **single-flight per session**: concurrent calls of the same
/// operation on one session share one provider call and its result, and
/// different operations on one session run one after another. Across
/// managers (processes) sharing a repository, the session's
/// [lock](WorkspaceRepository::lock_session) serializes them; a caller that
/// waited re-reads the session and returns it without a provider call when
/// the operation's result is already there (started and valid, stopped, or
/// started or rotated after it asked to rotate). An operation
/// runs on its own task, so it completes and persists its result even if
/// every caller stops waiting.
///
/// `start` of an `active` session and `stop` of an `inactive` one return the
/// session unchanged without calling the provider. Starting a session with a
/// parent starts the parent first if it is not `active`.
///
/// # Live sessions
///
/// For a provider with [`Capabilities::live_connection`](crate::Capabilities::live_connection)
/// the manager calls [`SessionAction::start_live`] and keeps the returned
/// [`LiveHandle`] for as long as the connection is up; get it with
/// [`live`](Self::live) or [`connect`](Self::connect). It only trusts what it
/// holds:
/// - [`list`](Self::list) and [`find`](Self::find) report a live session
///   stored `active` whose handle this process does not hold as
///   `disconnected` (nothing is written: another process may hold it);
/// - `start` of such a session, or of a `disconnected` one, re-attaches
///   ([`SessionAction::resume`], or `start_live` when the provider cannot
///   resume) instead of returning it unchanged;
/// - a connection that ends on its own is persisted as `disconnected`
///   (`expired` when the remote session ran out) with the reason in
///   [`Session::last_error`] (operation `connection`), a
///   [`SessionEventKind::Disconnected`] event is published, and a lost
///   network ([`EndReason::is_resumable`](crate::EndReason::is_resumable)) is
///   resumed under the [`ResumePolicy`]: backoff on the manager's clock,
///   bounded by a deadline, [`SessionEventKind::ResumeAbandoned`] when it
///   passes. A connection the user closed stops the session.
/// - `stop` forgets the handle before asking the provider to close it.
///
/// The [`RotationScheduler`] leaves `disconnected` sessions to this resume
/// loop; [`Operation::Resume`] runs one try by hand.
///
/// Cloning is cheap; clones share everything.
#[derive(Clone)]
pub struct SessionManager {
    inner: Arc<Inner>,
}

struct Inner {
    repository: Arc<dyn WorkspaceRepository>,
    secrets: Arc<dyn SecretStore>,
    clock: Arc<dyn Clock>,
    providers: Providers,
    events: broadcast::Sender<SessionEvent>,
    inflight: Mutex<HashMap<(SessionId, Operation), Flight>>,
    gates: Mutex<HashMap<SessionId, Arc<tokio::sync::Mutex<()>>>>,
    next_flight: std::sync::atomic::AtomicU64,
    /// The handles of the live sessions this process holds.
    live: Mutex<HashMap<SessionId, live::Held>>,
    /// What callers asked of each live session's connection, reused when
    /// it is resumed.
    live_options: Mutex<HashMap<SessionId, LiveOptions>>,
    resume_policy: ResumePolicy,
    /// This manager's id in the events it shares.
    id: String,
    /// Hands the events to share, in order, to the repository; made with
    /// its task on the first one.
    sharer: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<SharedEvent>>,
    /// Whether other processes' shared events are followed (see
    /// [`SessionManager::follow_shared_events`]).
    following: tokio::sync::OnceCell<bool>,
}

/// An operation in flight on one session.
struct Flight {
    number: u64,
    future: OpFuture,
    cancel: Arc<Cancel>,
}

impl fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionManager")
            .field("repository", &self.inner.repository)
            .field("secrets", &self.inner.secrets)
            .field("providers", &self.inner.providers)
            .finish_non_exhaustive()
    }
}

/// Builds a [`SessionManager`].
#[derive(Default)]
pub struct SessionManagerBuilder {
    repository: Option<Arc<dyn WorkspaceRepository>>,
    secrets: Option<Arc<dyn SecretStore>>,
    clock: Option<Arc<dyn Clock>>,
    providers: Vec<Registration>,
    hint: Option<MissingProviderHint>,
    resume_policy: ResumePolicy,
}

/// A provider as registered with the builder.
enum Registration {
    Ready(Arc<dyn SessionAction>),
    Lazy(Vec<SessionType>, ProviderFactory),
}

impl fmt::Debug for SessionManagerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionManagerBuilder")
            .field("repository", &self.repository)
            .field("secrets", &self.secrets)
            .field("providers", &self.providers.len())
            .finish_non_exhaustive()
    }
}

impl SessionManagerBuilder {
    /// Where sessions are stored (required).
    pub fn repository(mut self, repository: Arc<dyn WorkspaceRepository>) -> Self {
        self.repository = Some(repository);
        self
    }

    /// Where secrets are kept. Defaults to an [`InMemorySecretStore`], which
    /// forgets everything when the process ends.
    pub fn secrets(mut self, secrets: Arc<dyn SecretStore>) -> Self {
        self.secrets = Some(secrets);
        self
    }

    /// The clock for expiry decisions. Defaults to [`SystemClock`].
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// How dropped live connections are resumed. Defaults to
    /// [`ResumePolicy::default`].
    pub fn resume_policy(mut self, policy: ResumePolicy) -> Self {
        self.resume_policy = policy;
        self
    }

    /// Registers the provider for its [`SessionAction::session_type`].
    pub fn provider(mut self, provider: Arc<dyn SessionAction>) -> Self {
        self.providers.push(Registration::Ready(provider));
        self
    }

    /// Registers a factory that builds the providers of `session_types`
    /// the first time one of those types is used (not at all if none is).
    ///
    /// A factory that fails (a malformed environment, a missing file) fails
    /// only the operations on its own session types, and runs again at the
    /// next use; sessions of other types are unaffected. Every provider it
    /// returns must be of one of `session_types`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use session_core::{Error, InMemoryWorkspace, SessionManager, SessionType};
    /// let manager = SessionManager::builder()
    ///     .repository(Arc::new(InMemoryWorkspace::new()))
    ///     .lazy_providers([SessionType::Redfish], || {
    ///         Err(Error::invalid_input("REDFISH_CA", "not a PEM file"))
    ///     })
    ///     .build()?;
    /// # Ok::<(), Error>(())
    /// ```
    pub fn lazy_providers(
        mut self,
        session_types: impl IntoIterator<Item = SessionType>,
        factory: impl Fn() -> Result<Vec<Arc<dyn SessionAction>>> + Send + Sync + 'static,
    ) -> Self {
        self.providers.push(Registration::Lazy(
            session_types.into_iter().collect(),
            Arc::new(factory),
        ));
        self
    }

    /// What to tell the user when a session's type has no provider, e.g.
    /// which cargo feature would add it. Without one the error only says
    /// that none is registered.
    pub fn missing_provider_hint(
        mut self,
        hint: impl Fn(&SessionType) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.hint = Some(Arc::new(hint));
        self
    }

    /// Checks the settings: a repository is required and each session type
    /// may have one provider only.
    pub fn build(self) -> Result<SessionManager> {
        let repository = self.repository.ok_or_else(|| {
            Error::invalid_input(
                "repository",
                "a SessionManager needs a workspace repository",
            )
        })?;
        let mut providers = Providers::default();
        for registration in self.providers {
            match registration {
                Registration::Ready(provider) => providers.add(provider)?,
                Registration::Lazy(types, factory) => providers.add_lazy(types, factory)?,
            }
        }
        if let Some(hint) = self.hint {
            providers.set_hint(hint);
        }
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        Ok(SessionManager {
            inner: Arc::new(Inner {
                repository,
                secrets: self
                    .secrets
                    .unwrap_or_else(|| Arc::new(InMemorySecretStore::new())),
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
                providers,
                events,
                inflight: Mutex::new(HashMap::new()),
                gates: Mutex::new(HashMap::new()),
                next_flight: std::sync::atomic::AtomicU64::new(0),
                live: Mutex::new(HashMap::new()),
                live_options: Mutex::new(HashMap::new()),
                resume_policy: self.resume_policy,
                id: format!(
                    "{}-{}",
                    std::process::id(),
                    &uuid::Uuid::new_v4().simple().to_string()[..12]
                ),
                sharer: std::sync::OnceLock::new(),
                following: tokio::sync::OnceCell::new(),
            }),
        })
    }
}

impl SessionManager {
    /// A builder.
    pub fn builder() -> SessionManagerBuilder {
        SessionManagerBuilder::default()
    }

    /// The repository.
    pub fn repository(&self) -> &Arc<dyn WorkspaceRepository> {
        &self.inner.repository
    }

    /// The secret store.
    pub fn secrets(&self) -> &Arc<dyn SecretStore> {
        &self.inner.secrets
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The provider registered for `session_type`, built now if it was
    /// registered with [`lazy_providers`](SessionManagerBuilder::lazy_providers).
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when none is registered (with the
    /// [hint](SessionManagerBuilder::missing_provider_hint) if there is
    /// one); the factory's error when building it fails.
    pub fn provider(&self, session_type: &SessionType) -> Result<Arc<dyn SessionAction>> {
        self.inner.providers.get(session_type)
    }

    /// Receives every event from now on: this manager's, and, when the
    /// repository carries events between processes (`PgWorkspace` does),
    /// those other processes' managers share, marked
    /// [`EventOrigin::Elsewhere`]. The first call starts following them in
    /// the background; [`follow_shared_events`](Self::follow_shared_events)
    /// returns once they are followed.
    pub fn subscribe(&self) -> broadcast::Receiver<SessionEvent> {
        let receiver = self.inner.events.subscribe();
        if self.inner.repository.shares_events()
            && self.inner.following.get().is_none()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let manager = self.clone();
            runtime.spawn(async move {
                if let Err(e) = manager.follow_shared_events().await {
                    tracing::warn!(error = %e, "cannot follow the events other processes share");
                }
            });
        }
        receiver
    }

    /// Re-publishes, from now on, the events the managers of other
    /// processes share through the repository (started, stopped, rotated,
    /// resumed, failed; see [`SharedEvent`]), marked
    /// [`EventOrigin::Elsewhere`]; returns whether the repository carries
    /// any. Calling it again does nothing more.
    ///
    /// # Errors
    ///
    /// The repository's, when it cannot start listening (then a later call
    /// tries again).
    pub async fn follow_shared_events(&self) -> Result<bool> {
        let inner = &self.inner;
        inner
            .following
            .get_or_try_init(|| async {
                let Some(mut shared) = inner.repository.shared_events().await? else {
                    return Ok(false);
                };
                // Weak: the manager may be dropped while this waits (the
                // task then ends at the next event or when the repository
                // closes the channel).
                let weak = Arc::downgrade(&self.inner);
                tokio::spawn(async move {
                    loop {
                        let event = match shared.recv().await {
                            Ok(event) => event,
                            Err(broadcast::error::RecvError::Lagged(missed)) => {
                                tracing::warn!(missed, "missed events shared by other processes");
                                continue;
                            }
                            Err(broadcast::error::RecvError::Closed) => break,
                        };
                        let Some(inner) = weak.upgrade() else { break };
                        if event.publisher == inner.id {
                            continue;
                        }
                        if let Some(event) = event.into_event() {
                            let _ = inner.events.send(event);
                        }
                    }
                });
                Ok(true)
            })
            .await
            .copied()
    }

    /// All sessions, live ones as this process sees them (see
    /// [Live sessions](Self#live-sessions)).
    pub async fn list(&self) -> Result<Vec<Session>> {
        let sessions = self.inner.repository.list().await?;
        let mut viewed = Vec::with_capacity(sessions.len());
        for session in sessions {
            viewed.push(self.inner.view(session).await);
        }
        Ok(viewed)
    }

    /// A session by id or name, a live one as this process sees it.
    pub async fn find(&self, id_or_name: &str) -> Result<Session> {
        let session = self.inner.repository.find(id_or_name).await?;
        Ok(self.inner.view(session).await)
    }

    /// The handle of a live session whose connection this process holds
    /// and is up; `None` otherwise.
    pub fn live(&self, id: SessionId) -> Option<LiveHandle> {
        self.inner.held(id)
    }

    /// Starts (or re-attaches) a live session by id or name and returns it
    /// with its handle.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the session's provider has no live
    /// connection; those of [`start`](Self::start).
    pub async fn connect(&self, id_or_name: &str) -> Result<(Session, LiveHandle)> {
        self.connect_with(id_or_name, LiveOptions::default()).await
    }

    /// [`connect`](Self::connect) with what the caller asks of the
    /// connection, e.g. its local port. The options stay with the session
    /// in this manager: a resume of the dropped connection asks for the
    /// same address (the port the connection got, when it asked for any).
    ///
    /// # Errors
    ///
    /// Those of [`connect`](Self::connect); a listen address in use is
    /// [`Error::InvalidInput`] naming it (see [`bind_listener`](crate::bind_listener)).
    pub async fn connect_with(
        &self,
        id_or_name: &str,
        options: LiveOptions,
    ) -> Result<(Session, LiveHandle)> {
        let found = self.inner.repository.find(id_or_name).await?;
        let provider = self.inner.provider_for(&found)?;
        if !provider.capabilities().live_connection {
            return Err(Error::unsupported(
                provider.session_type().to_string(),
                format!("connect ({} has no live connection)", found.label()),
            ));
        }
        self.inner.set_live_options(found.session_id, Some(options));
        let session = self.run(Operation::Start, found.session_id).await?;
        let handle = self
            .live(session.session_id)
            .ok_or_else(|| Error::Unavailable {
                target: session.label(),
                message: "the live connection ended as soon as it was opened".into(),
                source: None,
            })?;
        Ok((session, handle))
    }

    /// Re-attaches a `disconnected` live session by id or name (one try;
    /// the manager retries dropped connections on its own, see
    /// [`ResumePolicy`]).
    pub async fn resume(&self, id_or_name: &str) -> Result<Session> {
        let id = self.inner.repository.find(id_or_name).await?.session_id;
        self.run(Operation::Resume, id).await
    }

    /// Cancels the `start`, `rotate` or `resume` of a session (by id or
    /// name) that this manager is running, for every caller waiting on it;
    /// returns whether one was running. Use it to give up a device-code
    /// sign-in or a handshake that takes too long.
    ///
    /// The operation stops at its next cancellation point: while it waits
    /// for another operation on the session (nothing changes), or while its
    /// provider works (the provider's future is dropped). Its callers get
    /// [`Error::Cancelled`], and the session is left as a failure of that
    /// operation leaves it, with the error in [`Session::last_error`]:
    ///
    /// | cancelled | session left |
    /// |---|---|
    /// | `start` | `inactive` (a parent it started stays `active`) |
    /// | `rotate` | as it was (`active` with the old credentials, `expired` if they ran out) |
    /// | `resume` | `disconnected` (the manager's own resume loop gives up on it) |
    ///
    /// `stop` is never cancelled: it always runs to the end, so nothing it
    /// removes is left half removed. Dropping the future of
    /// [`run`](Self::run) and the like does not cancel: the operation runs
    /// on its own task and completes.
    pub async fn cancel(&self, id_or_name: &str) -> Result<bool> {
        let id = self.inner.repository.find(id_or_name).await?.session_id;
        let inflight = self
            .inner
            .inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut any = false;
        for operation in [Operation::Start, Operation::Rotate, Operation::Resume] {
            if let Some(flight) = inflight.get(&(id, operation)) {
                flight.cancel.cancel();
                any = true;
            }
        }
        Ok(any)
    }

    /// Adds a new session (status must be `inactive`).
    pub async fn add(&self, session: Session) -> Result<Session> {
        if session.status() != SessionStatus::Inactive {
            return Err(Error::invalid_input(
                "status",
                format!(
                    "{} is {}; new sessions are added inactive",
                    session.label(),
                    session.status()
                ),
            ));
        }
        self.inner.repository.insert(session).await
    }

    /// Starts a session by id or name; see the [type docs](Self).
    pub async fn start(&self, id_or_name: &str) -> Result<Session> {
        let id = self.inner.repository.find(id_or_name).await?.session_id;
        self.run(Operation::Start, id).await
    }

    /// Stops a session by id or name. Idempotent.
    pub async fn stop(&self, id_or_name: &str) -> Result<Session> {
        let id = self.inner.repository.find(id_or_name).await?.session_id;
        self.run(Operation::Stop, id).await
    }

    /// Rotates the credentials of a session by id or name.
    pub async fn rotate(&self, id_or_name: &str) -> Result<Session> {
        let id = self.inner.repository.find(id_or_name).await?.session_id;
        self.run(Operation::Rotate, id).await
    }

    /// Runs `operation` on the session with this id.
    pub async fn run(&self, operation: Operation, id: SessionId) -> Result<Session> {
        self.flight(operation, id, None).await
    }

    /// Rotates `seen` unless it was renewed (rotated or started) since it
    /// was read: the rotation a caller decided on from its own, possibly
    /// old, view. With several managers sharing a repository, each
    /// scheduler sees the others' rotations only when it reads the
    /// repository again; this makes the due time they all saw one rotation,
    /// not one per manager. Returns the renewed session when it skips.
    pub async fn rotate_unless_renewed(&self, seen: Session) -> Result<Session> {
        let id = seen.session_id;
        self.flight(Operation::Rotate, id, Some(seen)).await
    }

    /// Stops a session if it is live, deletes its secrets and removes it.
    /// Refused while another session names it as parent.
    pub async fn remove(&self, id_or_name: &str) -> Result<Session> {
        let session = self.inner.repository.find(id_or_name).await?;
        let id = session.session_id;
        if let Some(child) = self
            .inner
            .repository
            .list()
            .await?
            .into_iter()
            .find(|s| s.parent_session_id == Some(id))
        {
            return Err(Error::invalid_input(
                "session",
                format!(
                    "{} is the parent of {}; remove that first",
                    session.label(),
                    child.label()
                ),
            ));
        }
        if session.status().is_live() {
            self.run(Operation::Stop, id).await?;
        }
        let gate = self.inner.gate(id);
        let _held = gate.lock().await;
        let _locked = self.inner.repository.lock_session(id).await?;
        // Another caller may have started it between the stop and the gate.
        let current = self.inner.repository.get(id).await?;
        if current.status().is_live() {
            return Err(Error::InvalidTransition {
                session: current.label(),
                from: current.status(),
                to: SessionStatus::Inactive,
            });
        }
        let removed = self
            .inner
            .repository
            .delete(id, Some(current.revision()))
            .await?;
        self.inner.secrets.delete_session(id).await?;
        self.inner.forget_gate(id);
        Ok(removed)
    }

    /// Joins the flight of `operation` on `id`, or starts one; `seen` is
    /// the caller's view of the session, if it decided from one.
    fn flight(&self, operation: Operation, id: SessionId, seen: Option<Session>) -> OpFuture {
        let mut inflight = self
            .inner
            .inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(running) = inflight.get(&(id, operation)) {
            tracing::debug!(session_id = %id, %operation, "joining an operation in flight");
            return running.future.clone();
        }
        let flight = self
            .inner
            .next_flight
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let inner = Arc::clone(&self.inner);
        let cancel = Arc::new(Cancel::default());
        let task_cancel = Arc::clone(&cancel);
        let task = tokio::spawn(async move {
            let result = Inner::execute(&inner, operation, id, 0, &task_cancel, seen).await;
            let mut inflight = inner.inflight.lock().unwrap_or_else(|e| e.into_inner());
            if inflight
                .get(&(id, operation))
                .is_some_and(|f| f.number == flight)
            {
                inflight.remove(&(id, operation));
            }
            result
        });
        let shared = async move {
            task.await.unwrap_or_else(|join| {
                Err(Error::Cancelled {
                    operation: format!("{operation} of session {id}"),
                    reason: join.to_string(),
                })
            })
        }
        .boxed()
        .shared();
        inflight.insert(
            (id, operation),
            Flight {
                number: flight,
                future: shared.clone(),
                cancel,
            },
        );
        shared
    }
}

impl Inner {
    fn gate(&self, id: SessionId) -> Arc<tokio::sync::Mutex<()>> {
        let mut gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(gates.entry(id).or_default())
    }

    fn forget_gate(&self, id: SessionId) {
        self.gates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    fn provider_for(&self, session: &Session) -> Result<Arc<dyn SessionAction>> {
        self.providers.for_session(session)
    }

    fn context(&self) -> ActionContext {
        ActionContext::new(Arc::clone(&self.clock), Arc::clone(&self.secrets))
    }

    /// The context for a provider call: its secret store tells `redactor`
    /// every value the provider reads or writes.
    fn watched_context(&self, redactor: &Redactor) -> ActionContext {
        ActionContext::new(
            Arc::clone(&self.clock),
            redactor.watch(Arc::clone(&self.secrets)),
        )
    }

    /// `error` without any secret value the operation used or the session
    /// has in the store: what may be returned, recorded or published.
    async fn scrub(&self, id: SessionId, redactor: &Redactor, error: Error) -> Error {
        redactor.add_session(&*self.secrets, id).await;
        redactor.error(&error)
    }

    fn execute<'a>(
        inner: &'a Arc<Inner>,
        operation: Operation,
        id: SessionId,
        depth: usize,
        cancel: &'a Cancel,
        seen: Option<Session>,
    ) -> BoxFuture<'a, Result<Session>> {
        async move {
            // Read before waiting (unless the caller decided from its own
            // read), to tell below whether another holder of the session
            // finished an operation meanwhile.
            let seen = match seen {
                Some(seen) => seen,
                None => inner.repository.get(id).await?,
            };
            let what = || format!("{operation} of {}", seen.label());
            let gate = inner.gate(id);
            // A cancel while waiting leaves everything as it was.
            let _held = cancel.run(what, async { Ok(gate.lock().await) }).await?;
            // Other managers (other processes) sharing the repository wait
            // here too: one provider call per operation across them all.
            let _locked = cancel.run(what, inner.repository.lock_session(id)).await?;
            let session = inner.repository.get(id).await?;
            let span = tracing::debug_span!("session", %operation, session_id = %id, name = %session.session_name);
            // Every secret value the operation touches, to scrub from its
            // error (a service may echo a password back).
            let redactor = Redactor::new();
            let result = match operation {
                Operation::Start => {
                    inner
                        .start(session, depth, &redactor, cancel)
                        .instrument(span)
                        .await
                }
                Operation::Stop => inner.stop(session, &redactor).instrument(span).await,
                Operation::Rotate if inner.renewed_meanwhile(&seen, &session) => {
                    tracing::debug!(session_id = %id, "rotated or started by another holder while waiting");
                    Ok(session)
                }
                Operation::Rotate => {
                    inner
                        .rotate(session, &redactor, cancel)
                        .instrument(span)
                        .await
                }
                Operation::Resume => {
                    inner
                        .resume(session, depth, &redactor, cancel)
                        .instrument(span)
                        .await
                }
            };
            match result {
                Ok(session) => Ok(session),
                Err(error) => {
                    tracing::debug!(session_id = %id, %operation, category = error.category(), "operation failed");
                    Err(inner.scrub(id, &redactor, error).await)
                }
            }
        }
        .boxed()
    }

    /// Whether `now` (read under the session lock) is the result of a
    /// start or rotate that succeeded after `seen` was read: active, valid,
    /// with no error recorded. A rotate asked for before then is answered
    /// by it, so parallel rotations make one provider call.
    fn renewed_meanwhile(&self, seen: &Session, now: &Session) -> bool {
        now.revision() != seen.revision()
            && now.status() == SessionStatus::Active
            && now.last_error.is_none()
            && !now.is_expired_at(self.clock.now())
    }

    async fn start(
        self: &Arc<Self>,
        session: Session,
        depth: usize,
        redactor: &Redactor,
        cancel: &Cancel,
    ) -> Result<Session> {
        // Built once: a lazy factory that fails runs once per call.
        let provider = self.provider_for(&session);
        if let Ok(live) = &provider
            && live.capabilities().live_connection
        {
            return self
                .start_live(Arc::clone(live), session, depth, redactor, cancel)
                .await;
        }
        let now = self.clock.now();
        let session = if session.status() == SessionStatus::Active {
            if !session.is_expired_at(now) {
                return Ok(session);
            }
            // Stored active, but its credentials ran out (nobody rotated
            // them, e.g. no process was running): record that, then start.
            let mut expired = session;
            expired.transition(SessionStatus::Expired, now)?;
            self.repository.update(expired).await?
        } else {
            session
        };
        let provider = provider?;
        let ctx = self.context_for(&session, depth, redactor, cancel).await?;
        let now = self.clock.now();
        let mut pending = session.clone();
        pending.transition(SessionStatus::Pending, now)?;
        let pending = self.repository.update(pending).await?;
        let outcome = cancel
            .run(
                || cancelled(Operation::Start, &pending),
                provider.start(&ctx, &pending),
            )
            .await;
        self.finish(
            Operation::Start,
            pending,
            SessionStatus::Inactive,
            outcome,
            SessionStatus::Active,
            redactor,
        )
        .await
    }

    /// The context for an operation on `session`: with its parent, started
    /// first if it is not active or has expired.
    async fn context_for(
        self: &Arc<Self>,
        session: &Session,
        depth: usize,
        redactor: &Redactor,
        cancel: &Cancel,
    ) -> Result<ActionContext> {
        let ctx = self
            .watched_context(redactor)
            .with_live(self.live_options_for(session.session_id));
        let Some(parent_id) = session.parent_session_id else {
            return Ok(ctx);
        };
        if depth >= MAX_PARENT_DEPTH {
            return Err(Error::invalid_input(
                "parentSessionId",
                format!(
                    "{}: the parent chain is deeper than {MAX_PARENT_DEPTH}",
                    session.label()
                ),
            ));
        }
        let parent = self.repository.get(parent_id).await?;
        let parent = if parent.status() == SessionStatus::Active
            && !parent.is_expired_at(self.clock.now())
        {
            parent
        } else {
            // Not through `flight`: the parent's own gate serializes it, and
            // a parent chain cannot loop (the repository refuses it).
            Inner::execute(self, Operation::Start, parent_id, depth + 1, cancel, None).await?
        };
        Ok(ctx.with_parent(parent))
    }

    async fn stop(self: &Arc<Self>, session: Session, redactor: &Redactor) -> Result<Session> {
        if session.status() == SessionStatus::Inactive {
            return Ok(session);
        }
        let provider = self.provider_for(&session)?;
        let before = session.status();
        let mut stopping = session.clone();
        stopping.transition(SessionStatus::Stopping, self.clock.now())?;
        let stopping = self.repository.update(stopping).await?;
        // Forgotten before the provider closes it, so the end it causes is
        // not taken for a drop.
        let released = self.take_held(session.session_id);
        let mut ctx = self.watched_context(redactor);
        // The parent as stored, not started: a provider that needs its
        // identity to stop (a remote session to terminate) uses the
        // credentials it still has, and stopping never signs anyone in.
        if let Some(parent_id) = session.parent_session_id
            && let Ok(parent) = self.repository.get(parent_id).await
        {
            ctx = ctx.with_parent(parent);
        }
        let outcome = provider.stop(&ctx, &stopping).await;
        if outcome.is_err()
            && let Some(held) = released
        {
            // Still open after all: keep it, and its watcher finds it again.
            self.keep(session.session_id, held);
        }
        // A failed stop leaves whatever was live; a session caught in another
        // transitional status is marked expired so the next start or stop
        // runs from a known state.
        let fallback = match before {
            SessionStatus::Active | SessionStatus::Disconnected | SessionStatus::Expired => before,
            _ => SessionStatus::Expired,
        };
        let stopped = self
            .finish(
                Operation::Stop,
                stopping,
                fallback,
                outcome,
                SessionStatus::Inactive,
                redactor,
            )
            .await;
        if stopped.is_ok() {
            self.set_live_options(session.session_id, None);
        }
        stopped
    }

    async fn rotate(
        self: &Arc<Self>,
        session: Session,
        redactor: &Redactor,
        cancel: &Cancel,
    ) -> Result<Session> {
        let provider = self.provider_for(&session)?;
        let capabilities = provider.capabilities();
        if !capabilities.rotate && !capabilities.rotate_resumes {
            return Err(Error::unsupported(
                provider.session_type().to_string(),
                format!("rotate ({}); stop and start it instead", session.label()),
            ));
        }
        let before = session.status();
        if !before.can_become(SessionStatus::Rotating) {
            return Err(Error::InvalidTransition {
                session: session.label(),
                from: before,
                to: SessionStatus::Rotating,
            });
        }
        let ctx = self.context_for(&session, 0, redactor, cancel).await?;
        let mut rotating = session.clone();
        rotating.transition(SessionStatus::Rotating, self.clock.now())?;
        let rotating = self.repository.update(rotating).await?;
        let outcome = cancel
            .run(
                || cancelled(Operation::Rotate, &rotating),
                provider.rotate(&ctx, &rotating),
            )
            .await;
        let signed_out = provider.capabilities().rotate_unauthenticated_ends_session
            && matches!(outcome, Err(Error::Unauthenticated { .. }));
        let fallback = if signed_out {
            // The provider has already removed what start made available.
            SessionStatus::Inactive
        } else if before == SessionStatus::Active && rotating.is_expired_at(self.clock.now()) {
            SessionStatus::Expired
        } else {
            before
        };
        self.finish(
            Operation::Rotate,
            rotating,
            fallback,
            outcome,
            SessionStatus::Active,
            redactor,
        )
        .await
    }

    /// Persists the provider's result, or the fallback status with the
    /// error, scrubbed of secrets first (see [`Inner::scrub`]).
    async fn finish(
        &self,
        operation: Operation,
        sent: Session,
        fallback: SessionStatus,
        outcome: Result<Session>,
        expected: SessionStatus,
        redactor: &Redactor,
    ) -> Result<Session> {
        let outcome =
            outcome.and_then(|returned| check_returned(operation, &sent, returned, expected));
        let now = self.clock.now();
        match outcome {
            Ok(returned) => {
                let stored = self
                    .persist(&sent, |current| {
                        current.transition(returned.status(), now)?;
                        current.start_date_time =
                            returned.start_date_time.or(current.start_date_time);
                        if returned.status() == SessionStatus::Inactive {
                            current.start_date_time = None;
                        }
                        // New credentials (or a new remote session) were
                        // issued by this operation when it brought a new
                        // expiration; the time is an upper bound.
                        if returned.expiration.is_none() {
                            current.issued_at = None;
                        } else if returned.expiration != current.expiration {
                            current.issued_at = Some(now);
                        }
                        current.expiration = returned.expiration;
                        current.config = returned.config.clone();
                        current.state = returned.state.clone();
                        current.region = returned.region.clone();
                        current.last_error = None;
                        Ok(())
                    })
                    .await?;
                let kind = match operation {
                    Operation::Start => SessionEventKind::Started,
                    Operation::Stop => SessionEventKind::Stopped,
                    Operation::Rotate => SessionEventKind::Rotated,
                    Operation::Resume => SessionEventKind::Resumed,
                };
                self.note_revision(stored.session_id, stored.revision());
                self.publish(&stored, kind);
                Ok(stored)
            }
            Err(error) => {
                let error = self.scrub(sent.session_id, redactor, error).await;
                // A rotation that ended the session (see
                // `Capabilities::rotate_unauthenticated_ends_session`) goes
                // rotating → stopping → inactive: two writes, because every
                // stored change must be a legal transition.
                let mut base = sent.clone();
                if fallback == SessionStatus::Inactive && sent.status() == SessionStatus::Rotating {
                    match self
                        .persist(&sent, |current| {
                            if current.status() == SessionStatus::Rotating {
                                current.transition(SessionStatus::Stopping, now)?;
                            }
                            Ok(())
                        })
                        .await
                    {
                        Ok(stopping) => base = stopping,
                        Err(e) => tracing::warn!(
                            session_id = %sent.session_id,
                            category = e.category(),
                            "could not end a session whose rotation was refused"
                        ),
                    }
                }
                let recorded = self
                    .persist(&base, |current| {
                        if fallback == SessionStatus::Inactive {
                            current.expiration = None;
                            current.start_date_time = None;
                        }
                        current.transition(fallback, now)?;
                        current.record_error(operation.as_str(), &error, now);
                        Ok(())
                    })
                    .await;
                match recorded {
                    Ok(stored) => self.publish(
                        &stored,
                        SessionEventKind::Failed {
                            operation,
                            error: error.clone(),
                        },
                    ),
                    Err(e) => tracing::warn!(
                        session_id = %sent.session_id,
                        category = e.category(),
                        "could not record a failed {operation}"
                    ),
                }
                Err(error)
            }
        }
    }

    /// Applies `change` to the stored session and writes it, re-reading and
    /// re-applying if another writer got in between.
    async fn persist(
        &self,
        sent: &Session,
        change: impl Fn(&mut Session) -> Result<()>,
    ) -> Result<Session> {
        let mut current = sent.clone();
        for _ in 0..CONFLICT_RETRIES {
            let mut next = current.clone();
            change(&mut next)?;
            match self.repository.update(next).await {
                Err(Error::Conflict { .. }) => {
                    current = self.repository.get(sent.session_id).await?;
                }
                other => return other,
            }
        }
        let found = current.revision();
        Err(Error::Conflict {
            what: sent.label(),
            expected: sent.revision(),
            found,
        })
    }

    fn publish(&self, session: &Session, kind: SessionEventKind) {
        let event = SessionEvent {
            session_id: session.session_id,
            session_name: session.session_name.clone(),
            status: session.status(),
            at: self.clock.now(),
            kind,
            origin: EventOrigin::Here,
        };
        self.share(&event);
        // No subscriber is not an error.
        let _ = self.events.send(event);
    }

    /// Hands `event` to the repository for the other processes, when it
    /// carries events and the event is one that is shared.
    fn share(&self, event: &SessionEvent) {
        if !self.repository.shares_events() {
            return;
        }
        let Some(shared) = SharedEvent::from_event(event, &self.id) else {
            return;
        };
        let sender = self.sharer.get_or_init(|| {
            let (sender, mut queue) = tokio::sync::mpsc::unbounded_channel::<SharedEvent>();
            let repository = Arc::clone(&self.repository);
            // Events are published by operations, inside the runtime.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    while let Some(event) = queue.recv().await {
                        if let Err(e) = repository.share_event(event).await {
                            tracing::warn!(error = %e, "could not share an event with other processes");
                        }
                    }
                });
            }
            sender
        });
        let _ = sender.send(shared);
    }
}

/// What [`Error::Cancelled`] names for `operation` of `session`.
fn cancelled(operation: Operation, session: &Session) -> String {
    format!("{operation} of {}", session.label())
}

/// Holds the provider to the contract of [`SessionAction`].
fn check_returned(
    operation: Operation,
    sent: &Session,
    returned: Session,
    expected: SessionStatus,
) -> Result<Session> {
    let broken = |what: String| {
        Err(Error::provider(
            sent.session_type.to_string(),
            sent.label(),
            format!("provider broke the SessionAction contract in {operation}: {what}"),
        ))
    };
    if returned.session_id != sent.session_id || returned.session_type != sent.session_type {
        return broken("it returned a different session".into());
    }
    if returned.status() != expected {
        return broken(format!(
            "it returned status {} instead of {expected}",
            returned.status()
        ));
    }
    Ok(returned)
}
