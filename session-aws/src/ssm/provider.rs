//! The `awsSsm` session type: [`SsmProvider`], a live [`SessionAction`]
//! over StartSession, the data channel and TerminateSession.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use session_core::{
    ActionContext, Capabilities, EndReason, Error, LiveEnd, LiveEvent, LiveHandle, Result, Session,
    SessionAction, SessionId, SessionStatus, SessionType, bind_listener,
};
use tokio::task::{AbortHandle, JoinHandle};
use uuid::Uuid;

#[cfg(feature = "ssm-kms")]
use super::channel::ChannelKms;
use super::channel::{
    ChannelEnd, ChannelEvent, ChannelOptions, ChannelResume, ChannelSender, DataChannel,
    Established, ResumeBudget, describe,
};
use super::config::{SsmConfig, SsmState};
use super::control::{SsmApi, SsmClientConfig};
use super::handshake::{PortMode, port_mode, terminate_flag_supported};
use super::port;
use super::stream::{StreamEnd, run_stream};
use crate::AwsCredentials;

/// How long `stop` waits for the agent to answer Flag TerminateSession.
const TERMINATE_WAIT: Duration = Duration::from_secs(5);
/// How long `stop` waits for the TerminateSession API (a bound on the
/// client's own time-outs and retries, which a dead network would stretch).
const TERMINATE_API_WAIT: Duration = Duration::from_secs(20);
/// Bytes buffered between the user's stream and the channel task.
const STREAM_BUFFER: usize = 64 * 1024;

type Connections = Arc<Mutex<HashMap<SessionId, Connection>>>;

/// An open data channel of this process.
#[derive(Debug)]
struct Connection {
    /// Tells the connection apart from a later one of the same session.
    serial: u64,
    /// The task that runs the channel and the user's side.
    task: AbortHandle,
    end: Arc<LiveEnd>,
    /// Sends the TerminateSession flag at `stop`.
    terminator: ChannelSender,
    established: Established,
}

/// The `awsSsm` provider: AWS Systems Manager Session Manager sessions,
/// live (see [`LiveHandle`]).
///
/// - **start** (`start_live`): StartSession with the session's
///   [`SsmConfig`], signed with the parent session's issued credentials
///   (any AWS credential session of the workspace) or, without a parent,
///   with the SDK's default provider chain; then the data channel
///   ([`DataChannel::open`]: websocket, OpenDataChannel, the agent's
///   handshake). A `Port` session listens on the caller's address
///   ([`ActionContext::live`]), else on `127.0.0.1` and the
///   `localPortNumber` parameter, else on a free port, and forwards each
///   connection (smux when the agent allows it, else one connection at a time
///   in basic mode); any other session (a
///   shell, a command, standard-stream forwarding) hands back a stream,
///   with the terminal size from [`LiveHandle::resize`]. The session's
///   `state` gets an [`SsmState`]. A start that fails after StartSession
///   terminates the remote session it opened.
/// - **stop**: Flag TerminateSession on the channel (agents that know it),
///   waiting up to 5 s for `channel_closed`, then the TerminateSession API
///   (a session the service no longer knows is fine; bounded by 20 s), then
///   the channel is dropped. It works with the agent gone or frozen, and
///   twice; it fails only when neither the agent nor the API confirmed the
///   end (see [`with_stop_timeouts`](Self::with_stop_timeouts)).
/// - **rotate** (`Capabilities::rotate_resumes`): resumes the data channel
///   this process holds in place now (ResumeSession, a new socket, the same
///   counters; open connections carry on) and returns when it is back. An
///   SSM session has no credentials to replace. It fails with
///   [`Error::NotFound`] when the service no longer knows the session
///   (starting a new one is the caller's choice) and with
///   [`Error::Unavailable`] when another process holds the connection.
/// - **resume in place**: a lost websocket is resumed by the channel itself
///   within the [`ResumeBudget`] ([`with_resume`](Self::with_resume); a
///   session's `resumeDeadlineSeconds`); the handle stays up and reports
///   each try as a [`LiveEvent`]. Only when that fails does the connection
///   end ([`EndReason::NetworkLost`]).
/// - **resume** (the manager's, for a `disconnected` session):
///   [`Error::Unsupported`], so the manager starts a new remote session
///   (the old one is terminated): a data channel cannot be taken over from
///   a process that is gone, since its sequence counters and
///   unacknowledged messages went with it.
///
/// The connection ends with [`EndReason::ClosedByService`] for
/// `channel_closed` (the service's text), [`EndReason::Exited`] when the
/// remote command reported its exit status, [`EndReason::NetworkLost`] for
/// a lost websocket or a message never acknowledged, and
/// [`EndReason::ClosedByUser`] after `stop`.
#[derive(Debug)]
pub struct SsmProvider {
    client: SsmClientConfig,
    channel: ChannelOptions,
    resume: Option<ResumeBudget>,
    connections: Connections,
    serial: std::sync::atomic::AtomicU64,
    terminate_wait: Duration,
    terminate_api_wait: Duration,
}

impl SsmProvider {
    /// A provider with `client`'s endpoint, region and retry settings and
    /// the default channel options.
    pub fn new(client: SsmClientConfig) -> Self {
        Self {
            client,
            channel: ChannelOptions::default(),
            resume: Some(ResumeBudget::default()),
            connections: Arc::new(Mutex::new(HashMap::new())),
            serial: std::sync::atomic::AtomicU64::new(0),
            terminate_wait: TERMINATE_WAIT,
            terminate_api_wait: TERMINATE_API_WAIT,
        }
    }

    /// How long `stop` waits for the agent's `channel_closed` after Flag
    /// TerminateSession (default 5 s) and for the TerminateSession API
    /// (default 20 s).
    pub fn with_stop_timeouts(mut self, flag: Duration, api: Duration) -> Self {
        self.terminate_wait = flag;
        self.terminate_api_wait = api;
        self
    }

    /// A provider configured from the environment
    /// ([`SsmClientConfig::from_env`]).
    ///
    /// # Errors
    ///
    /// Those of [`SsmClientConfig::from_env`] (a malformed endpoint or
    /// region).
    pub fn from_env() -> Result<Self> {
        Ok(Self::new(SsmClientConfig::from_env()?))
    }

    /// Opens data channels with `options` (time-outs, window, version; a
    /// KMS data-key source). Each session's resume (its ResumeSession, the
    /// budget of [`with_resume`](Self::with_resume)) and KMS target are set
    /// by the provider.
    pub fn with_channel_options(mut self, options: ChannelOptions) -> Self {
        self.channel = options;
        self
    }

    /// How lost data channels are resumed in place (default
    /// [`ResumeBudget::default`]: 10 minutes); `None` turns it off, so a
    /// lost websocket ends the connection ([`EndReason::NetworkLost`]).
    /// A session's `resumeDeadlineSeconds` overrides the deadline.
    pub fn with_resume(mut self, budget: Option<ResumeBudget>) -> Self {
        self.resume = budget;
        self
    }

    /// The channel options of one session: its KMS and resume settings.
    fn channel_options(
        &self,
        api: &SsmApi,
        config: &SsmConfig,
        ssm_session_id: &str,
    ) -> ChannelOptions {
        let mut options = self.channel.clone();
        if config.forbid_kms {
            options.allow_kms = false;
        }
        // A data-key source given with the options is kept (an embedding
        // program's own KMS client); the target is always this session's.
        #[cfg(feature = "ssm-kms")]
        {
            let source = match options.kms.take() {
                Some(kms) => kms.source,
                None => Arc::new(api.data_keys()) as Arc<dyn super::kms::DataKeySource>,
            };
            options.kms = Some(ChannelKms {
                source,
                target_id: config.target.clone(),
            });
        }
        let budget = match (config.resume_deadline_seconds, &self.resume) {
            (Some(0), _) => None,
            (Some(seconds), budget) => Some(
                budget
                    .clone()
                    .unwrap_or_default()
                    .with_deadline(Duration::from_secs(seconds)),
            ),
            (None, budget) => budget.clone(),
        };
        // Always this session's ResumeSession (tickets in the options given
        // to the provider would be another session's).
        options.resume = budget
            .map(|budget| ChannelResume::new(Arc::new(api.resume_tickets(ssm_session_id)), budget));
        options
    }

    /// Whether this process holds an open data channel of `id`.
    pub fn is_connected(&self, id: SessionId) -> bool {
        self.connections().contains_key(&id)
    }

    fn connections(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Connection>> {
        self.connections.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The control plane for `session`: its parent's credentials, or the
    /// default chain; its region, else its parent's, else the client's.
    async fn api(&self, ctx: &ActionContext, session: &Session) -> Result<SsmApi> {
        let label = session.label();
        let (credentials, parent_region) = match &ctx.parent {
            Some(parent) => {
                let credentials =
                    AwsCredentials::of_parent(ctx.secrets.as_ref(), parent, &label).await?;
                (Some(credentials), parent.region.clone())
            }
            None => (None, None),
        };
        let region = self
            .client
            .region_for(session.region.as_deref().or(parent_region.as_deref()));
        Ok(self.client.api(&region, credentials.as_ref(), &label).await)
    }

    /// Terminates `ssm_session_id` through the API, bounded in time.
    async fn terminate_remote(
        &self,
        api: &SsmApi,
        ssm_session_id: &str,
        label: &str,
    ) -> Result<()> {
        match tokio::time::timeout(
            self.terminate_api_wait,
            api.terminate_session(ssm_session_id),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout {
                target: format!("TerminateSession of {label}"),
                after: self.terminate_api_wait,
            }),
        }
    }

    /// Starts the user's side of `channel`: a listener or a stream.
    async fn attach(
        &self,
        ctx: &ActionContext,
        session: &Session,
        config: &SsmConfig,
        channel: DataChannel,
        established: &Established,
    ) -> Result<(LiveHandle, Arc<LiveEnd>, JoinHandle<StreamOrPort>)> {
        let mode = established.port.as_ref().map(|properties| {
            port_mode(
                properties,
                &established.agent_version,
                &self.channel.client_version,
            )
        });
        match mode {
            Some(PortMode::Mux | PortMode::Basic) => {
                let fallback =
                    SocketAddr::from((Ipv4Addr::LOCALHOST, config.local_port().unwrap_or(0)));
                let listener = bind_listener(ctx.live.listen_or(fallback))
                    .await
                    .map_err(|e| e.in_session(&session.label()))?;
                let address = listener.local_addr().map_err(|e| {
                    Error::provider_caused_by(
                        SessionType::AwsSsm.to_string(),
                        session.label(),
                        "cannot read the local listen address",
                        e,
                    )
                })?;
                let (handle, end) = LiveHandle::listening([address]);
                let established = established.clone();
                let task = tokio::spawn(async move {
                    // The mode was read from `established` above: `run`
                    // cannot refuse it.
                    let end = port::run(channel, &established, listener)
                        .await
                        .unwrap_or_else(|e| ChannelEnd::GaveUp(e.to_string()));
                    StreamOrPort::Port(end)
                });
                Ok((handle, Arc::new(end), task))
            }
            Some(PortMode::StandardStream) | None => {
                let (user, ours) = tokio::io::duplex(STREAM_BUFFER);
                // A Port session without `type` (AWS-StartSSHSession)
                // carries a remote port's bytes; anything else is a shell
                // or a command on a terminal.
                let (handle, end) = if mode.is_some() {
                    LiveHandle::byte_stream(user)
                } else {
                    LiveHandle::streaming(user)
                };
                let sizes = end.window_size();
                let task = tokio::spawn(async move {
                    StreamOrPort::Stream(run_stream(channel, ours, sizes).await)
                });
                Ok((handle, Arc::new(end), task))
            }
        }
    }

    /// Watches `task` and records its end on `end`; forgets the connection
    /// if it is still the one of `serial`.
    fn watch(&self, id: SessionId, serial: u64, task: JoinHandle<StreamOrPort>, end: Arc<LiveEnd>) {
        let connections = Arc::clone(&self.connections);
        tokio::spawn(async move {
            let reason = match task.await {
                Ok(StreamOrPort::Stream(StreamEnd {
                    port_unreachable: true,
                    ..
                })) => EndReason::ClosedByService(
                    "the agent could not connect to the remote port (ConnectToPortError)".into(),
                ),
                Ok(StreamOrPort::Stream(StreamEnd {
                    exit_code: Some(code),
                    ..
                })) => EndReason::Exited(code),
                Ok(
                    StreamOrPort::Stream(StreamEnd { channel, .. }) | StreamOrPort::Port(channel),
                ) => end_reason(&channel),
                Err(error) if error.is_cancelled() => EndReason::ClosedByUser,
                Err(error) => {
                    EndReason::NetworkLost(format!("the data channel task failed: {error}"))
                }
            };
            let mut connections = connections.lock().unwrap_or_else(|e| e.into_inner());
            if connections.get(&id).is_some_and(|c| c.serial == serial) {
                connections.remove(&id);
            }
            drop(connections);
            end.end(reason);
        });
    }
}

/// Hands the channel's resume reports to the connection's holder (the
/// manager publishes them; `sessionctl connect` prints them).
fn forward_events(
    mut events: tokio::sync::broadcast::Receiver<ChannelEvent>,
    end: Arc<LiveEnd>,
    label: &str,
) {
    let label = label.to_owned();
    tokio::spawn(async move {
        loop {
            let event = match events.recv().await {
                Ok(event) => event,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(session = %label, missed, "resume reports missed");
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            let event = match event {
                ChannelEvent::Reconnecting { reason } => LiveEvent::Reconnecting { reason },
                ChannelEvent::AttemptFailed {
                    attempt,
                    error,
                    retry_in,
                } => LiveEvent::ReconnectFailed {
                    attempt,
                    error,
                    retry_in,
                },
                ChannelEvent::Resumed {
                    attempts, after, ..
                } => LiveEvent::Reconnected { attempts, after },
            };
            end.report(event);
        }
    });
}

/// What a connection task returns.
enum StreamOrPort {
    Stream(StreamEnd),
    Port(ChannelEnd),
}

/// The core's reason for a channel's end.
fn end_reason(end: &ChannelEnd) -> EndReason {
    match end {
        ChannelEnd::Closed(_) | ChannelEnd::Broken(_) | ChannelEnd::Refused(_) => {
            EndReason::ClosedByService(describe(end))
        }
        // A session the service timed out or terminated while it was
        // disconnected: nothing left to resume.
        ChannelEnd::Gone(_) => EndReason::ClosedByService(describe(end)),
        ChannelEnd::Lost(_) | ChannelEnd::GaveUp(_) => EndReason::NetworkLost(describe(end)),
        ChannelEnd::Local => EndReason::ClosedByUser,
    }
}

/// The session's settings, checked.
fn settings(session: &Session) -> Result<SsmConfig> {
    let config: SsmConfig = session.config.get().map_err(|e| {
        Error::invalid_input(
            "config",
            format!("{} has no valid awsSsm settings: {e}", session.label()),
        )
    })?;
    config.validate()?;
    Ok(config)
}

#[async_trait::async_trait]
impl SessionAction for SsmProvider {
    fn session_type(&self) -> SessionType {
        SessionType::AwsSsm
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
            .with_live_connection(true)
            .with_rotate_resumes(self.resume.is_some())
    }

    /// Starts the session; its live handle is dropped, which leaves the
    /// data channel open until `stop` (the manager calls `start_live`).
    async fn start(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        Ok(self.start_live(ctx, session).await?.0)
    }

    async fn stop(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        let label = session.label();
        let connection = self.connections().remove(&session.session_id);
        // Whether the service confirmed the end (`channel_closed`).
        let mut closed = false;
        if let Some(connection) = connection {
            // First, so the `channel_closed` the flag brings is not taken
            // for the service's own end.
            connection.end.end(EndReason::ClosedByUser);
            if terminate_flag_supported(&connection.established.agent_version) {
                let ended = connection.terminator.terminate(self.terminate_wait).await;
                tracing::debug!(session = %label, ?ended, "TerminateSession flag sent");
                closed = matches!(ended, Some(ChannelEnd::Closed(_)));
            }
            connection.task.abort();
        }
        let state: SsmState = session.state.get().unwrap_or_default();
        if !state.ssm_session_id.is_empty() {
            let terminated = match self.api(ctx, session).await {
                Ok(api) => {
                    self.terminate_remote(&api, &state.ssm_session_id, &label)
                        .await
                }
                Err(error) => Err(error),
            };
            match terminated {
                Ok(()) => {}
                // The service already closed it: the API was only a
                // second word.
                Err(error) if closed => {
                    tracing::debug!(session = %label, "TerminateSession after channel_closed failed: {error}");
                }
                Err(error) => return Err(error),
            }
        }
        let mut stopped = session.clone();
        stopped.transition(SessionStatus::Inactive, ctx.clock.now())?;
        Ok(stopped)
    }

    async fn rotate(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        let label = session.label();
        let held = self
            .connections()
            .get(&session.session_id)
            .map(|c| c.terminator.clone());
        let Some(sender) = held else {
            return Err(Error::Unavailable {
                target: label.clone(),
                message: format!(
                    "not connected in this process: rotate resumes the data channel where it is \
                     held; `sessionctl connect {}` connects it here",
                    session.session_name
                ),
                source: None,
            });
        };
        let mut events = sender.events();
        if !sender.reconnect() {
            return Err(Error::unsupported(
                SessionType::AwsSsm.to_string(),
                format!("rotate of {label}: resuming is off for it (resumeDeadlineSeconds 0)"),
            ));
        }
        loop {
            let event = tokio::select! {
                event = events.recv() => event,
                _ = sender.ended() => Err(tokio::sync::broadcast::error::RecvError::Closed),
            };
            match event {
                Ok(ChannelEvent::Resumed { .. }) => break,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    let end = sender.end().unwrap_or(ChannelEnd::Local);
                    return Err(match end {
                        ChannelEnd::Gone(why) => Error::NotFound {
                            what: format!(
                                "{label}: {why}; `sessionctl start {}` starts a new one",
                                session.session_name
                            ),
                        },
                        other => Error::Unavailable {
                            target: label,
                            message: format!(
                                "resuming ended the data channel: {}",
                                describe(&other)
                            ),
                            source: None,
                        },
                    });
                }
            }
        }
        let mut rotated = session.clone();
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
        let api = self.api(ctx, session).await?;
        // A connection this process still holds, or a remote session an
        // earlier process left (its connection is gone): end it, so that a
        // new start does not leave it running until the idle time-out.
        let held = self.connections().remove(&session.session_id);
        if let Some(old) = held {
            old.task.abort();
            old.end.end(EndReason::ClosedByService(
                "replaced by a new session".into(),
            ));
        }
        let previous: SsmState = session.state.get().unwrap_or_default();
        if !previous.ssm_session_id.is_empty()
            && let Err(error) = self
                .terminate_remote(&api, &previous.ssm_session_id, &label)
                .await
        {
            tracing::warn!(session = %label, category = error.category(), "could not terminate the previous SSM session: {error}");
        }

        let ticket = api.start_session(&config).await?;
        let client_id = Uuid::new_v4();
        let opened = DataChannel::open(
            &ticket,
            client_id,
            self.channel_options(&api, &config, &ticket.session_id),
            Arc::clone(&ctx.clock),
            &label,
        )
        .await;
        let attached = match opened {
            Ok((channel, established)) => {
                let terminator = channel.sender();
                let events = channel.events();
                self.attach(ctx, session, &config, channel, &established)
                    .await
                    .map(|attached| {
                        forward_events(events, Arc::clone(&attached.1), &label);
                        (attached, terminator, established)
                    })
            }
            Err(error) => Err(error),
        };
        let ((handle, end, task), terminator, established) = match attached {
            Ok(attached) => attached,
            Err(error) => {
                if let Err(terminate) = self
                    .terminate_remote(&api, &ticket.session_id, &label)
                    .await
                {
                    tracing::warn!(session = %label, category = terminate.category(), "could not terminate the SSM session of a failed start: {terminate}");
                }
                return Err(error);
            }
        };

        let serial = self
            .serial
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let abort = task.abort_handle();
        self.watch(session.session_id, serial, task, Arc::clone(&end));
        let state = SsmState {
            ssm_session_id: ticket.session_id.clone(),
            client_id: Some(client_id.to_string()),
            agent_version: Some(established.agent_version.clone()),
            listen_address: handle.addresses().first().map(ToString::to_string),
        };
        self.connections().insert(
            session.session_id,
            Connection {
                serial,
                task: abort,
                end,
                terminator,
                established,
            },
        );
        let mut active = session.clone();
        active.state.set(&state)?;
        active.transition(SessionStatus::Active, ctx.clock.now())?;
        Ok((active, handle))
    }
}

impl Drop for SsmProvider {
    fn drop(&mut self) {
        let connections = std::mem::take(&mut *self.connections());
        for (_, connection) in connections {
            connection.task.abort();
            connection.end.end(EndReason::ClosedByService(
                "the provider was dropped".into(),
            ));
        }
    }
}
