//! `sessionctl connect`: opens (or re-attaches) a live session and holds it
//! in the foreground until Ctrl-C, SIGTERM, the end of a command run with
//! `-- CMD`, or the service ending it.
//!
//! While it holds the connection, the manager resumes a dropped one under
//! its resume policy, and a rotation scheduler for the session and its
//! parents keeps their credentials fresh. What happens is told on standard
//! error, or as JSON lines on standard output with `--json`.

use std::process::ExitStatus;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{Value, json};
use session_sdk::{
    Clock, EndReason, Error, LiveEvent, LiveOptions, Operation, RotationPolicy, RotationScheduler,
    Session, SessionEventKind, SessionId, SessionManager, SessionStatus, SystemClock,
    WorkspaceRepositoryExt,
};
use time::format_description::well_known::Rfc3339;
use tokio::process::{Child, Command};
use tokio::sync::broadcast::error::RecvError;

use crate::workspace::Workspace;
use crate::{Failure, Global, secrets, signals::Signals};

/// The variables `connect -- CMD` sets in the command's environment.
pub(crate) const ENV_SESSION: &str = "SESSIONCTL_CONNECT_SESSION";
/// `HOST:PORT` of the first local address (`[::1]:PORT` for IPv6).
pub(crate) const ENV_ADDRESS: &str = "SESSIONCTL_CONNECT_ADDRESS";
/// The host of the first local address, without brackets.
pub(crate) const ENV_HOST: &str = "SESSIONCTL_CONNECT_HOST";
/// The port of the first local address.
pub(crate) const ENV_PORT: &str = "SESSIONCTL_CONNECT_PORT";

/// How often the workspace is read to notice a stop by another process.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// How long a command is given to exit after SIGTERM before it is killed.
const COMMAND_GRACE: Duration = Duration::from_secs(10);

/// The arguments of `connect`.
#[derive(Debug, Args)]
pub(crate) struct ConnectArgs {
    /// The live session (id or name).
    session: String,

    /// Listen on this local port of 127.0.0.1 (default: the session's own
    /// setting, else a free port). A port in use fails at once.
    #[arg(long, value_name = "PORT")]
    listen_port: Option<u16>,

    /// Print one JSON object per line on standard output for each event
    /// (connected, disconnected, resumed, ended, stopped), for scripts.
    #[arg(long)]
    json: bool,

    /// Run this command once connected, then stop the session when it exits
    /// and exit with its status. `{{host}}`, `{{port}}` and `{{address}}` in
    /// its arguments are replaced by the local address.
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
}

/// How the hold ended.
enum Ending {
    /// Ctrl-C or SIGTERM.
    Signal,
    /// The command of `-- CMD` exited.
    Command(ExitStatus),
    /// The service ended the session, or the connection was lost for good.
    Ended(Error),
    /// Stopped: by another process, or the connection was closed by the user.
    StoppedElsewhere,
}

/// Runs `connect`.
pub(crate) async fn run(
    global: &Global,
    workspace: Workspace,
    args: ConnectArgs,
) -> Result<(), Failure> {
    // Resolve first, so a wrong name fails before any passphrase prompt.
    let found = workspace.find(&args.session).await?;
    let store = secrets::open(global, workspace.path()).await?;
    let manager = crate::manager(global, workspace, store)?;
    let provider = manager.provider(&found.session_type)?;
    if !provider.capabilities().live_connection {
        return Err(Error::invalid_input(
            "session",
            format!(
                "{} is a {} session, which has no live connection; use `sessionctl start {}`",
                found.label(),
                found.session_type,
                found.session_name
            ),
        )
        .into());
    }
    let id = found.session_id;
    let key = id.to_string();
    let mut signals = Signals::new()?;
    let mut events = manager.subscribe();
    let mut options = LiveOptions::default();
    if let Some(port) = args.listen_port {
        options = options.with_listen_port(port);
    }
    let out = Printer {
        json: args.json,
        name: found.session_name.clone(),
        session_type: found.session_type.to_string(),
        id,
        command: !args.command.is_empty(),
    };

    let connecting = manager.connect_with(&key, options);
    tokio::pin!(connecting);
    let (session, handle) = tokio::select! {
        connected = &mut connecting => connected?,
        () = signals.recv() => {
            // Give up the handshake or sign-in; the manager records it.
            manager.cancel(&key).await?;
            return match connecting.await {
                Err(error) => Err(Failure::Interrupted(error)),
                // It connected just before the cancel landed: undo it.
                Ok(_) => {
                    manager.stop(&key).await?;
                    Err(Failure::Interrupted(Error::Cancelled {
                        operation: format!("connect of {}", found.label()),
                        reason: "interrupted; the session was stopped".into(),
                    }))
                }
            };
        }
    };
    if let Some(stream) = handle.take_stream() {
        if !args.command.is_empty() {
            manager.stop(&key).await?;
            let what = if handle.carries_terminal() {
                "an interactive session (a shell)"
            } else {
                "a stream on standard input and output (e.g. for ssh's ProxyCommand)"
            };
            return Err(Error::invalid_input(
                "command",
                format!(
                    "{} is {what}, with no local address for a command; the session was \
                     stopped",
                    session.label()
                ),
            )
            .into());
        }
        // Standard output carries the remote side's output: no JSON events.
        return crate::interactive::run(&manager, &session, &handle, stream, &mut signals).await;
    }
    let addresses = handle.addresses().to_vec();
    let Some(&first) = addresses.first() else {
        manager.stop(&key).await?;
        return Err(Error::provider(
            session.session_type.to_string(),
            session.label(),
            "the connection gave no local address (the session was stopped)",
        )
        .into());
    };
    out.connected(&addresses)?;

    let scheduler = RotationScheduler::spawn_for(
        manager.clone(),
        RotationPolicy::default(),
        chain(&manager, &session).await,
    );
    let mut child = match args.command.split_first() {
        Some((program, rest)) => match spawn(program, rest, &session, first) {
            Ok(child) => Some(child),
            Err(failure) => {
                // Nothing will use the connection: do not leave it open.
                scheduler.shutdown().await;
                manager.stop(&key).await?;
                return Err(failure);
            }
        },
        None => None,
    };

    let ending = hold(&manager, id, &mut signals, &mut events, &mut child, &out).await;
    scheduler.shutdown().await;
    let command_status = match (child, &ending) {
        (_, Ending::Command(status)) => Some(*status),
        (Some(child), _) => Some(terminate(child).await),
        (None, _) => None,
    };
    match ending {
        Ending::Signal | Ending::Command(_) => {
            let stopped = stop(&manager, &key, &mut signals).await?;
            out.stopped(&stopped)?;
        }
        Ending::StoppedElsewhere => out.note("the session was stopped")?,
        Ending::Ended(error) => {
            out.ended(&error)?;
            return Err(error.into());
        }
    }
    match command_status {
        Some(status) => exit_with(status),
        None => Ok(()),
    }
}

/// Stops the session; another Ctrl-C or SIGTERM meanwhile gives up
/// waiting (a stop that hangs on an unreachable service), leaving the
/// session `stopping` for the next `stop` to finish.
async fn stop(
    manager: &SessionManager,
    key: &str,
    signals: &mut Signals,
) -> Result<Session, Failure> {
    tokio::select! {
        stopped = manager.stop(key) => Ok(stopped?),
        () = signals.recv() => Err(Failure::Interrupted(Error::Cancelled {
            operation: format!("stop of {key}"),
            reason: "interrupted again while stopping; `sessionctl stop` finishes it".into(),
        })),
    }
}

/// Waits for the reason to let go, telling what happens on the way.
async fn hold(
    manager: &SessionManager,
    id: SessionId,
    signals: &mut Signals,
    events: &mut tokio::sync::broadcast::Receiver<session_sdk::SessionEvent>,
    child: &mut Option<Child>,
    out: &Printer,
) -> Ending {
    let mut watch = tokio::time::interval(WATCH_EVERY);
    let mut lost_at: Option<Instant> = None;
    loop {
        tokio::select! {
            () = signals.recv() => return Ending::Signal,
            status = wait(child) => {
                return match status {
                    Ok(status) => Ending::Command(status),
                    Err(e) => Ending::Ended(Error::provider("sessionctl", "connect", format!("cannot wait for the command: {e}"))),
                };
            }
            event = events.recv() => {
                let event = match event {
                    Ok(event) if event.session_id == id => event,
                    Ok(_) | Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return Ending::StoppedElsewhere,
                };
                match event.kind {
                    SessionEventKind::Disconnected { reason } if reason.is_resumable() => {
                        lost_at = Some(Instant::now());
                        let _ = out.disconnected(&reason);
                    }
                    SessionEventKind::Disconnected { reason } => {
                        let why = match reason {
                            EndReason::Expired => format!(
                                "the remote session expired; `sessionctl connect {}` starts a new one",
                                out.name
                            ),
                            EndReason::ClosedByService(why) => {
                                format!("the service closed the session: {why}")
                            }
                            other => format!("the connection ended: {other}"),
                        };
                        return Ending::Ended(Error::provider(out.session_type.clone(), out.name.clone(), why));
                    }
                    SessionEventKind::Resumed => {
                        let after = lost_at.take().map(|at| at.elapsed());
                        let addresses = manager.live(id).map(|h| h.addresses().to_vec()).unwrap_or_default();
                        let _ = out.resumed(after, &addresses);
                    }
                    SessionEventKind::Connection(event) => {
                        let _ = out.connection(&event);
                    }
                    SessionEventKind::Failed { operation: Operation::Resume, error } => {
                        let _ = out.resume_failed(&error);
                    }
                    SessionEventKind::ResumeAbandoned { tries } => {
                        return Ending::Ended(Error::Unavailable {
                            target: out.name.clone(),
                            message: format!(
                                "gave up reconnecting after {tries} tries (the resume deadline passed); `sessionctl connect {}` tries again",
                                out.name
                            ),
                            source: None,
                        });
                    }
                    SessionEventKind::Stopped => return Ending::StoppedElsewhere,
                    _ => {}
                }
            }
            _ = watch.tick() => {
                // Another process stopped it: its stop could not close a
                // connection this process holds, so let go here.
                if let Ok(stored) = manager.repository().get(id).await
                    && stored.status() == SessionStatus::Inactive
                {
                    return Ending::StoppedElsewhere;
                }
            }
        }
    }
}

/// The session and its parents, for the rotation scheduler.
async fn chain(manager: &SessionManager, session: &Session) -> Vec<SessionId> {
    let mut ids = vec![session.session_id];
    let mut next = session.parent_session_id;
    while let Some(parent) = next {
        if ids.contains(&parent) {
            break;
        }
        ids.push(parent);
        next = match manager.repository().get(parent).await {
            Ok(parent) => parent.parent_session_id,
            Err(_) => None,
        };
    }
    ids
}

/// Starts `program` with the local address in its environment and in its
/// arguments.
fn spawn(
    program: &str,
    args: &[String],
    session: &Session,
    address: std::net::SocketAddr,
) -> Result<Child, Failure> {
    let host = address.ip().to_string();
    let port = address.port().to_string();
    let address_text = address.to_string();
    let substitute = |arg: &String| {
        arg.replace("{{host}}", &host)
            .replace("{{port}}", &port)
            .replace("{{address}}", &address_text)
    };
    Command::new(program)
        .args(args.iter().map(substitute))
        .env(ENV_SESSION, &session.session_name)
        .env(ENV_ADDRESS, &address_text)
        .env(ENV_HOST, &host)
        .env(ENV_PORT, &port)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Failure::Other(format!("cannot run {program:?}: {e}")))
}

/// Waits for the command, or forever when there is none.
async fn wait(child: &mut Option<Child>) -> std::io::Result<ExitStatus> {
    match child {
        Some(child) => child.wait().await,
        None => std::future::pending().await,
    }
}

/// Asks the command to end (SIGTERM), and kills it after a grace period.
async fn terminate(mut child: Child) -> ExitStatus {
    if let Ok(Some(status)) = child.try_wait() {
        return status;
    }
    #[cfg(unix)]
    if let Some(pid) = child
        .id()
        .and_then(|pid| i32::try_from(pid).ok())
        .and_then(rustix::process::Pid::from_raw)
    {
        // The child is not reaped yet (try_wait found it running), so the
        // pid is still ours; a failure means it just exited.
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    match tokio::time::timeout(COMMAND_GRACE, child.wait()).await {
        Ok(Ok(status)) => status,
        _ => {
            let _ = child.kill().await;
            child.wait().await.unwrap_or_default()
        }
    }
}

/// Exits with the command's status: its code, or 128 + the signal that
/// ended it, as a shell reports it.
fn exit_with(status: ExitStatus) -> Result<(), Failure> {
    if let Some(code) = status.code() {
        return match code {
            0 => Ok(()),
            code => Err(Failure::Exit(u8::try_from(code).unwrap_or(1))),
        };
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return Err(Failure::Exit(u8::try_from(128 + signal).unwrap_or(u8::MAX)));
        }
    }
    Err(Failure::Exit(1))
}

/// Tells what happens: lines on standard error, or JSON lines on standard
/// output with `--json`.
struct Printer {
    json: bool,
    name: String,
    session_type: String,
    id: SessionId,
    /// A command runs and owns standard output: the address goes to stderr.
    command: bool,
}

impl Printer {
    fn connected(&self, addresses: &[std::net::SocketAddr]) -> Result<(), Failure> {
        if self.json {
            return self.event("connected", json!({ "addresses": strings(addresses) }));
        }
        let mut text = String::new();
        for address in addresses {
            text.push_str(&format!("listening on {address}\n"));
        }
        if self.command {
            eprint_lines(&text);
        } else {
            crate::print(&text)?;
        }
        let how = if self.command {
            "it stops when the command exits"
        } else {
            "Ctrl-C stops it"
        };
        eprint_lines(&format!("connected {}; {how}", self.name));
        Ok(())
    }

    fn disconnected(&self, reason: &EndReason) -> Result<(), Failure> {
        if self.json {
            return self.event("disconnected", json!({ "reason": reason.to_string() }));
        }
        eprint_lines(&format!(
            "{}: connection lost ({reason}); reconnecting…",
            self.name
        ));
        Ok(())
    }

    /// The provider resumes the connection in place (an SSM data
    /// channel): each try and its outcome; or it has something to say
    /// about a connection that stays up (a notice).
    fn connection(&self, event: &LiveEvent) -> Result<(), Failure> {
        if self.json {
            return match event {
                LiveEvent::Reconnecting { reason } => {
                    self.event("reconnecting", json!({ "reason": reason }))
                }
                LiveEvent::ReconnectFailed {
                    attempt,
                    error,
                    retry_in,
                } => self.event(
                    "reconnectFailed",
                    json!({ "attempt": attempt, "error": error, "retryInSeconds": retry_in.as_secs_f64() }),
                ),
                LiveEvent::Reconnected { attempts, after } => self.event(
                    "reconnected",
                    json!({ "attempts": attempts, "afterSeconds": after.as_secs_f64() }),
                ),
                LiveEvent::Notice { message } => {
                    self.event("notice", json!({ "message": message }))
                }
                _ => Ok(()),
            };
        }
        eprint_lines(&format!("{}: {event}", self.name));
        Ok(())
    }

    fn resumed(
        &self,
        after: Option<Duration>,
        addresses: &[std::net::SocketAddr],
    ) -> Result<(), Failure> {
        if self.json {
            return self.event(
                "resumed",
                json!({
                    "afterSeconds": after.map(|d| d.as_secs_f64()),
                    "addresses": strings(addresses),
                }),
            );
        }
        let after = after.map_or_else(String::new, |d| format!(" after {:.1} s", d.as_secs_f64()));
        let listening: Vec<String> = strings(addresses);
        eprint_lines(&format!(
            "{}: resumed{after}; listening on {}",
            self.name,
            listening.join(", ")
        ));
        Ok(())
    }

    fn resume_failed(&self, error: &Error) -> Result<(), Failure> {
        let message = crate::one_line(&secrets::redactor().error(error).to_string());
        if self.json {
            return self.event(
                "resumeFailed",
                json!({ "category": error.category(), "error": message }),
            );
        }
        eprint_lines(&format!(
            "{}: reconnecting failed ({message}); trying again",
            self.name
        ));
        Ok(())
    }

    fn ended(&self, error: &Error) -> Result<(), Failure> {
        if self.json {
            let message = crate::one_line(&secrets::redactor().error(error).to_string());
            return self.event("ended", json!({ "error": message }));
        }
        // The one error line main prints says why.
        Ok(())
    }

    fn stopped(&self, session: &Session) -> Result<(), Failure> {
        if self.json {
            return self.event("stopped", json!({ "status": session.status().as_str() }));
        }
        eprint_lines(&format!("stopped {}", self.name));
        Ok(())
    }

    fn note(&self, text: &str) -> Result<(), Failure> {
        if self.json {
            return self.event("stopped", json!({ "note": text }));
        }
        eprint_lines(&format!("{}: {text}", self.name));
        Ok(())
    }

    fn event(&self, event: &str, mut fields: Value) -> Result<(), Failure> {
        let at = SystemClock.now().format(&Rfc3339).unwrap_or_default();
        if let Some(map) = fields.as_object_mut() {
            map.insert("event".into(), event.into());
            map.insert("session".into(), self.name.clone().into());
            map.insert("sessionId".into(), self.id.to_string().into());
            map.insert("at".into(), at.into());
        }
        crate::print(&format!("{fields}\n"))
    }
}

fn strings(addresses: &[std::net::SocketAddr]) -> Vec<String> {
    addresses.iter().map(ToString::to_string).collect()
}

/// Writes `text` on standard error as `sessionctl: ` lines.
fn eprint_lines(text: &str) {
    use std::io::Write;
    let mut stderr = std::io::stderr().lock();
    for line in text.lines() {
        let _ = writeln!(stderr, "sessionctl: {line}");
    }
}
