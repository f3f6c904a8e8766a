//! The `boundary` session type: [`BoundaryProvider`], a live
//! [`SessionAction`] over authorize-session and the local proxy.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use session_core::{
    ActionContext, Capabilities, EndReason, Error, LiveEnd, LiveEvent, LiveHandle, Result, Session,
    SessionAction, SessionId, SessionStatus, SessionType, bind_listener,
};
use tokio::task::AbortHandle;

use crate::api::{ControllerClient, SessionAuthorization, SessionState};
use crate::config::{BoundaryConfig, BoundaryState};
use crate::login::{Login, PasswordPrompt};
use crate::proxy::{Proxy, ProxyEnd, ProxyEvent, ProxyOptions, SessionRoute};
use crate::token::AuthorizationData;

/// How often a connected session's status is read from the controller.
const STATUS_POLL: Duration = Duration::from_secs(5);
/// How long `stop` waits for the controller to show the session canceling.
const CANCEL_WAIT: Duration = Duration::from_secs(10);
/// How long before a session's expiration its holder is warned.
const EXPIRY_WARNING: time::Duration = time::Duration::minutes(5);

/// A proxy this process runs.
#[derive(Debug)]
struct Held {
    proxy: Proxy,
    end: Arc<LiveEnd>,
    watcher: AbortHandle,
    /// Sessions replaced by a rotate whose connections are still open.
    draining: Arc<Mutex<Vec<Arc<SessionRoute>>>>,
}

type Connections = Arc<Mutex<HashMap<SessionId, Held>>>;

/// The `boundary` provider: HashiCorp Boundary sessions, live (a local
/// proxy, as `boundary connect`).
///
/// - **start** (`start_live`): logs in (a stored auth token while valid,
///   else the password from the secret store or the [`PasswordPrompt`]),
///   `authorize-session` on the target, decodes the authorization token,
///   and listens on the caller's address ([`ActionContext::live`]), else
///   the settings' `listenAddress`/`listenPort`, else `127.0.0.1` and the
///   token's default port, else a free port. A given port is bound before
///   anything is authorized, so a port in use fails at once. Each local
///   connection is carried through the worker ([`Proxy`]).
/// - While connected, the session's status is read every 5 s; a session
///   canceled or terminated on the controller ends the connection with
///   the controller's termination reason.
/// - **stop**: cancels through the worker (short time-out), then through
///   the controller (also every session a rotate left draining), waits
///   until the controller shows it canceling, and closes the listener.
///   Idempotent; a session the controller no longer knows is fine.
/// - **rotate** (make-before-break, beyond the Boundary CLI): authorizes
///   a new session, routes new connections to it on the same listener,
///   lets open connections finish on the old one and cancels the old one
///   when they have (or at its expiration). So a connection through
///   `sessionctl connect` can outlive a target's maximum session length.
///   Needs the connection held by this process.
#[derive(Debug)]
pub struct BoundaryProvider {
    proxy: ProxyOptions,
    status_poll: Duration,
    cancel_wait: Duration,
    request_timeout: Duration,
    prompt: Option<Arc<dyn PasswordPrompt>>,
    connections: Connections,
}

impl Default for BoundaryProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl BoundaryProvider {
    /// A provider with default time-outs and no password prompt.
    pub fn new() -> Self {
        Self {
            proxy: ProxyOptions::default(),
            status_poll: STATUS_POLL,
            cancel_wait: CANCEL_WAIT,
            request_timeout: Duration::from_secs(30),
            prompt: None,
            connections: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Asks `prompt` for a password when the secret store has none.
    pub fn with_password_prompt(mut self, prompt: Arc<dyn PasswordPrompt>) -> Self {
        self.prompt = Some(prompt);
        self
    }

    /// The proxy's time-outs.
    pub fn with_proxy_options(mut self, options: ProxyOptions) -> Self {
        self.proxy = options;
        self
    }

    /// How often a connected session's status is read (default 5 s).
    pub fn with_status_poll(mut self, every: Duration) -> Self {
        self.status_poll = every;
        self
    }

    /// How long `stop` waits for the controller to show the session
    /// canceling (default 10 s).
    pub fn with_cancel_wait(mut self, wait: Duration) -> Self {
        self.cancel_wait = wait;
        self
    }

    /// Whether this process holds the connection of `id`.
    pub fn is_connected(&self, id: SessionId) -> bool {
        self.connections().contains_key(&id)
    }

    /// The proxy of `id`, when this process holds it.
    pub fn proxy(&self, id: SessionId) -> Option<Proxy> {
        self.connections().get(&id).map(|h| h.proxy.clone())
    }

    /// An authenticated client of the session's controller (logging in if
    /// needed), for the calls the session type does not make itself:
    /// listing targets and sessions, canceling another session.
    ///
    /// # Errors
    ///
    /// Invalid settings, no password, or a failed login.
    pub async fn client(&self, ctx: &ActionContext, session: &Session) -> Result<ControllerClient> {
        let config = settings(session)?;
        let client = self.controller(&config)?;
        self.login(ctx, session, &config, &client).client().await
    }

    /// Logs the session out of its controller: the stored auth token is
    /// deleted there and in the secret store.
    ///
    /// # Errors
    ///
    /// Invalid settings, or the controller's refusal (other than "already
    /// gone").
    pub async fn logout(&self, ctx: &ActionContext, session: &Session) -> Result<()> {
        let config = settings(session)?;
        let client = self.controller(&config)?;
        self.login(ctx, session, &config, &client).logout().await
    }

    fn connections(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Held>> {
        self.connections.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The proxy options, on the context's clock.
    fn proxy_options(&self, ctx: &ActionContext) -> ProxyOptions {
        let mut options = self.proxy.clone();
        options.clock = ctx.clock.clone();
        options
    }

    fn controller(&self, config: &BoundaryConfig) -> Result<ControllerClient> {
        ControllerClient::builder(&config.controller)
            .timeout(self.request_timeout)
            .build()
    }

    fn login<'a>(
        &'a self,
        ctx: &'a ActionContext,
        session: &'a Session,
        config: &'a BoundaryConfig,
        client: &'a ControllerClient,
    ) -> Login<'a> {
        Login {
            ctx,
            session,
            config,
            client,
            prompt: self.prompt.as_ref(),
        }
    }

    /// Authorizes a session on the settings' target and decodes its
    /// token; a token that cannot be used cancels the session it came with.
    async fn authorize(
        &self,
        login: &Login<'_>,
        config: &BoundaryConfig,
        label: &str,
    ) -> Result<(SessionAuthorization, AuthorizationData)> {
        let target = config.target()?;
        let authorization = login
            .run(|c| {
                let target = target.clone();
                let host = config.host_id.clone();
                async move { c.authorize_session(&target, host.as_deref()).await }
            })
            .await
            .map_err(|e| named(e, label))?;
        match AuthorizationData::decode(authorization.authorization_token.expose()) {
            Ok(data) => Ok((authorization, data)),
            Err(e) => {
                if let Err(cancel) = self.cancel_rest(login, &authorization.session_id).await {
                    tracing::warn!(session = %label, error = %cancel, "could not cancel a session whose token is unusable");
                }
                Err(Error::provider(
                    SessionType::Boundary.to_string(),
                    label,
                    format!(
                        "the authorization token of {} is unusable: {e}",
                        authorization.session_id
                    ),
                ))
            }
        }
    }

    /// Cancels `session_id` through the controller; "not found" is done.
    async fn cancel_rest(&self, login: &Login<'_>, session_id: &str) -> Result<()> {
        let cancel = login
            .run(|client| {
                let id = session_id.to_owned();
                async move { client.cancel_session(&id).await.map(|_| ()) }
            })
            .await;
        match cancel {
            Ok(()) | Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Watches a held proxy: its end, and the session's status on the
    /// controller.
    fn watch(
        &self,
        ctx: &ActionContext,
        session: &Session,
        config: &BoundaryConfig,
        proxy: Proxy,
        end: Arc<LiveEnd>,
        id: SessionId,
    ) -> AbortHandle {
        let connections = Arc::clone(&self.connections);
        let poll = self.status_poll;
        let ctx = ctx.clone();
        let session = session.clone();
        let config = config.clone();
        let request_timeout = self.request_timeout;
        let notices = forward_notices(proxy.events(), Arc::clone(&end));
        tokio::spawn(async move {
            let _notices = AbortOnDrop(notices);
            let label = session.label();
            // The session whose coming expiry was announced.
            let mut warned: Option<String> = None;
            let client = ControllerClient::builder(&config.controller)
                .timeout(request_timeout)
                .build();
            let reason = loop {
                tokio::select! {
                    reason = proxy.ended() => break reason,
                    () = tokio::time::sleep(poll) => {}
                }
                let route = proxy.current();
                if let Some(expiration) = route.expiration()
                    && expiration - ctx.clock.now() <= EXPIRY_WARNING
                    && warned.as_deref() != Some(route.session_id())
                {
                    warned = Some(route.session_id().to_owned());
                    let at = expiration
                        .replace_nanosecond(0)
                        .ok()
                        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                        .unwrap_or_else(|| expiration.to_string());
                    end.report(LiveEvent::Notice {
                        message: format!(
                            "session {} expires at {at} (in under {} minutes); rotate to carry new connections past it",
                            route.session_id(),
                            EXPIRY_WARNING.whole_minutes()
                        ),
                    });
                }
                let Ok(client) = &client else { continue };
                let login = Login {
                    ctx: &ctx,
                    session: &session,
                    config: &config,
                    client,
                    prompt: None,
                };
                let current = proxy.session_id();
                let reading = login.run(|c| {
                    let id = current.clone();
                    async move { c.read_session(&id).await }
                });
                // A slow controller does not delay the end's report.
                let read = tokio::select! {
                    read = reading => read,
                    reason = proxy.ended() => break reason,
                };
                match read {
                    // The proxy may have moved to a new session meanwhile.
                    Ok(remote) if remote.status.is_ending() && proxy.session_id() == current => {
                        proxy.close(termination(&remote));
                    }
                    Ok(_) => {}
                    Err(Error::NotFound { .. }) if proxy.session_id() == current => {
                        proxy.close(ProxyEnd::Canceled(format!(
                            "the controller no longer knows session {current}"
                        )));
                    }
                    Err(e) => {
                        tracing::debug!(session = %label, error = %e, "could not read the Boundary session's status");
                    }
                }
            };
            // The listener is closed before the end is reported: whoever
            // waits for the end may rely on the port being free.
            proxy.close_and_wait(reason.clone()).await;
            let mut held = connections.lock().unwrap_or_else(|e| e.into_inner());
            if held.get(&id).is_some_and(|h| Arc::ptr_eq(&h.end, &end)) {
                held.remove(&id);
            }
            drop(held);
            end.end(end_reason(&reason));
        })
        .abort_handle()
    }
}

/// Aborts a task when dropped (the watcher's notice forwarder ends with it).
struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Tells the connection's holder what the proxy does while it stays up
/// (`sessionctl connect` prints these): a rotation, a refused local
/// connection, a session that takes no more, a worker's close reason given
/// verbatim (boundary#6398).
fn forward_notices(
    mut events: tokio::sync::broadcast::Receiver<ProxyEvent>,
    end: Arc<LiveEnd>,
) -> AbortHandle {
    tokio::spawn(async move {
        loop {
            let event = match events.recv().await {
                Ok(event) => event,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            let message = match event {
                ProxyEvent::Replaced {
                    old_session_id,
                    new_session_id,
                } => format!(
                    "new connections go to session {new_session_id}; {old_session_id} keeps its open connections until they end"
                ),
                ProxyEvent::ConnectionFailed { peer, reason, .. } => {
                    format!("a connection from {peer} was not carried: {reason}")
                }
                ProxyEvent::Exhausted { session_id, reason } => {
                    format!("session {session_id} takes no new connection: {reason}")
                }
                ProxyEvent::ConnectionClosed {
                    peer,
                    worker_close: Some((code, reason)),
                    ..
                } => format!("the worker closed the connection from {peer}: {code} {reason}"),
                _ => continue,
            };
            end.report(LiveEvent::Notice { message });
        }
    })
    .abort_handle()
}

/// Why a session the controller shows ending ended, in its words: expiry
/// and a used-up connection limit are told apart from a cancel (the
/// Boundary CLI confuses them, boundary#1817).
fn termination(session: &crate::api::Session) -> ProxyEnd {
    match (&session.status, session.termination_reason.as_str()) {
        (SessionState::Terminated, "timed out") => ProxyEnd::Expired,
        (SessionState::Terminated, "connection limit") => ProxyEnd::ConnectionLimit,
        (SessionState::Terminated, "") => {
            ProxyEnd::Canceled(format!("session {} terminated", session.id))
        }
        (SessionState::Terminated, reason) => {
            ProxyEnd::Canceled(format!("session {} terminated: {reason}", session.id))
        }
        (_, _) => ProxyEnd::Canceled(format!("session {} canceled on the controller", session.id)),
    }
}

/// `error` naming the session (the core's `in_session`, and "not found"
/// too: which target or session was not found matters only with the
/// session that asked).
fn named(error: Error, label: &str) -> Error {
    match error {
        Error::NotFound { what } if !what.starts_with(label) => Error::NotFound {
            what: format!("{label}: {what}"),
        },
        other => other.in_session(label),
    }
}

/// The core's reason for a proxy's end.
fn end_reason(end: &ProxyEnd) -> EndReason {
    match end {
        ProxyEnd::Closed => EndReason::ClosedByUser,
        ProxyEnd::Expired => EndReason::Expired,
        other => EndReason::ClosedByService(other.to_string()),
    }
}

/// The session's settings, checked.
fn settings(session: &Session) -> Result<BoundaryConfig> {
    let config: BoundaryConfig = session.config.get().map_err(|e| {
        Error::invalid_input(
            "config",
            format!("{} has no valid boundary settings: {e}", session.label()),
        )
    })?;
    config.validate()?;
    Ok(config)
}

#[async_trait::async_trait]
impl SessionAction for BoundaryProvider {
    fn session_type(&self) -> SessionType {
        SessionType::Boundary
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
            .with_live_connection(true)
            .with_rotate(true)
    }

    /// Starts the session; its live handle is dropped, which leaves the
    /// proxy listening until `stop` (the manager calls `start_live`).
    async fn start(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        Ok(self.start_live(ctx, session).await?.0)
    }

    async fn stop(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        let label = session.label();
        let state: BoundaryState = session.state.get().unwrap_or_default();
        let held = self.connections().remove(&session.session_id);
        let mut to_cancel: Vec<String> = std::iter::once(state.session_id.clone())
            .chain(state.draining.iter().cloned())
            .filter(|id| !id.is_empty())
            .collect();
        if let Some(held) = held {
            held.end.end(EndReason::ClosedByUser);
            let draining = held
                .draining
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let routes = std::iter::once(held.proxy.current()).chain(draining);
            for route in routes {
                if !route.is_activated() {
                    continue;
                }
                match route.cancel_via_worker().await {
                    Ok(()) => to_cancel.retain(|id| id != route.session_id()),
                    Err(e) => {
                        tracing::info!(session = %label, error = %e, "cancel through the worker failed; canceling through the controller");
                        if !to_cancel.iter().any(|id| id == route.session_id()) {
                            to_cancel.push(route.session_id().to_owned());
                        }
                    }
                }
            }
            held.proxy.close_and_wait(ProxyEnd::Closed).await;
            held.watcher.abort();
        }
        if !to_cancel.is_empty() {
            let config = settings(session)?;
            let client = self.controller(&config)?;
            let login = self.login(ctx, session, &config, &client);
            for id in &to_cancel {
                self.cancel_rest(&login, id)
                    .await
                    .map_err(|e| named(e, &label))?;
            }
            for id in &to_cancel {
                let waited = login
                    .run(|c| {
                        let id = id.clone();
                        let wait = self.cancel_wait;
                        async move {
                            c.wait_for_session(
                                &id,
                                |s| s.was_canceled_or_terminated(),
                                Duration::from_millis(200),
                                wait,
                            )
                            .await
                        }
                    })
                    .await;
                match waited {
                    Ok(_) | Err(Error::NotFound { .. }) => {}
                    Err(e) => return Err(e.in_session(&label)),
                }
            }
        }
        let mut stopped = session.clone();
        stopped.replace_state(&BoundaryState::default())?;
        stopped.expiration = None;
        stopped.transition(SessionStatus::Inactive, ctx.clock.now())?;
        Ok(stopped)
    }

    async fn rotate(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        let label = session.label();
        let held = self
            .connections()
            .get(&session.session_id)
            .map(|h| (h.proxy.clone(), Arc::clone(&h.draining)));
        let Some((proxy, draining)) = held else {
            return Err(Error::Unavailable {
                target: label,
                message: format!(
                    "not connected in this process: rotate authorizes a new session for the \
                     listener that holds it; `sessionctl connect {}` connects it here",
                    session.session_name
                ),
                source: None,
            });
        };
        let config = settings(session)?;
        let client = self.controller(&config)?;
        let login = self.login(ctx, session, &config, &client);
        let (authorization, data) = self.authorize(&login, &config, &label).await?;
        let expiration = data.expires_at();
        let connection_limit = data.connection_limit;
        let worker = data.worker_addresses.first().cloned().unwrap_or_default();
        let old = proxy.replace_session(data)?;
        let old_id = old.session_id().to_owned();
        tracing::info!(session = %label, old = %old_id, new = %authorization.session_id, "rotated: new connections go to the new Boundary session");
        draining
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::clone(&old));
        // The sessions still carrying connections (the drain task below
        // forgets each once canceled), so the list does not grow with
        // every rotation of a long connection.
        let draining_ids: Vec<String> = draining
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|route| route.session_id().to_owned())
            .collect();
        // Cancel the old session once its connections are done, or at its
        // expiration (the worker ends them then).
        {
            let draining = Arc::clone(&draining);
            let ctx = ctx.clone();
            let session = session.clone();
            let config = config.clone();
            let client = client.clone();
            let clock = ctx.clock.clone();
            tokio::spawn(async move {
                let until_expiry = old
                    .expiration()
                    .map(|e| Duration::try_from(e - clock.now()).unwrap_or(Duration::ZERO))
                    .unwrap_or(Duration::MAX);
                tokio::select! {
                    () = old.drained() => {}
                    () = tokio::time::sleep(until_expiry) => {}
                }
                if !old.is_activated() || old.cancel_via_worker().await.is_err() {
                    let login = Login {
                        ctx: &ctx,
                        session: &session,
                        config: &config,
                        client: &client,
                        prompt: None,
                    };
                    let id = old.session_id().to_owned();
                    if let Err(e) = login
                        .run(|c| {
                            let id = id.clone();
                            async move { c.cancel_session(&id).await }
                        })
                        .await
                    {
                        tracing::warn!(session = %session.label(), old = %id, error = %e, "could not cancel the replaced Boundary session");
                    }
                }
                draining
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .retain(|r| !Arc::ptr_eq(r, &old));
            });
        }
        let state = BoundaryState {
            session_id: authorization.session_id.clone(),
            target_id: authorization.target_id.clone(),
            worker_address: worker,
            listen_address: Some(proxy.local_addr()),
            connection_limit,
            expiration,
            draining: draining_ids,
        };
        let mut rotated = session.clone();
        rotated.replace_state(&state)?;
        rotated.expiration = expiration;
        rotated.transition(SessionStatus::Active, ctx.clock.now())?;
        Ok(rotated)
    }

    async fn start_live(
        &self,
        ctx: &ActionContext,
        session: &Session,
    ) -> Result<(Session, LiveHandle)> {
        let label = session.label();
        let config = settings(session)?;
        // A connection this process still holds is replaced.
        let old = self.connections().remove(&session.session_id);
        if let Some(old) = old {
            old.proxy.close(ProxyEnd::Closed);
            old.watcher.abort();
            old.end.end(EndReason::ClosedByService(
                "replaced by a new session".into(),
            ));
        }
        // A port the caller or the settings give is bound first: a port in
        // use fails before anything is authorized (boundary#4759).
        let given = ctx
            .live
            .listen
            .or_else(|| config.listen_port.map(|_| config.listen(0)));
        let early = match given {
            Some(address) => Some(bind_listener(address).await.map_err(|e| named(e, &label))?),
            None => None,
        };
        let client = self.controller(&config)?;
        let login = self.login(ctx, session, &config, &client);
        // A session an earlier process left running is canceled, so a new
        // start does not leave it open until it expires.
        let previous: BoundaryState = session.state.get().unwrap_or_default();
        for id in std::iter::once(&previous.session_id).chain(&previous.draining) {
            if !id.is_empty()
                && let Err(e) = self.cancel_rest(&login, id).await
            {
                tracing::warn!(session = %label, old = %id, error = %e, "could not cancel the previous Boundary session");
            }
        }
        let (authorization, data) = self.authorize(&login, &config, &label).await?;
        let started = async {
            let listener = match early {
                Some(listener) => listener,
                None => bind_listener(config.listen(data.default_client_port))
                    .await
                    .map_err(|e| named(e, &label))?,
            };
            let state = BoundaryState {
                session_id: authorization.session_id.clone(),
                target_id: authorization.target_id.clone(),
                worker_address: data.worker_addresses.first().cloned().unwrap_or_default(),
                listen_address: listener.local_addr().ok(),
                connection_limit: data.connection_limit,
                expiration: data.expires_at(),
                draining: Vec::new(),
            };
            let proxy = Proxy::start(listener, data, self.proxy_options(ctx))?;
            Ok::<_, Error>((proxy, state))
        }
        .await;
        let (proxy, state) = match started {
            Ok(started) => started,
            Err(e) => {
                if let Err(cancel) = self.cancel_rest(&login, &authorization.session_id).await {
                    tracing::warn!(session = %label, error = %cancel, "could not cancel the session of a failed start");
                }
                return Err(e);
            }
        };
        let (handle, end) = LiveHandle::listening([proxy.local_addr()]);
        let end = Arc::new(end);
        let watcher = self.watch(
            ctx,
            session,
            &config,
            proxy.clone(),
            Arc::clone(&end),
            session.session_id,
        );
        self.connections().insert(
            session.session_id,
            Held {
                proxy,
                end,
                watcher,
                draining: Arc::new(Mutex::new(Vec::new())),
            },
        );
        let mut active = session.clone();
        active.expiration = state.expiration;
        active.replace_state(&state)?;
        active.transition(SessionStatus::Active, ctx.clock.now())?;
        Ok((active, handle))
    }
}

impl Drop for BoundaryProvider {
    fn drop(&mut self) {
        let connections = std::mem::take(&mut *self.connections());
        for (_, held) in connections {
            held.proxy.close(ProxyEnd::Closed);
            held.watcher.abort();
            held.end.end(EndReason::ClosedByService(
                "the provider was dropped".into(),
            ));
        }
    }
}
