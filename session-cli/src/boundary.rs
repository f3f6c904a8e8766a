//! HashiCorp Boundary (cargo feature `boundary`, on by default): the
//! provider, `add boundary`, and `boundary sessions|targets|cancel|logout`.
//! `sessionctl connect NAME` opens the local proxy.

use std::io::IsTerminal;
use std::sync::{Arc, OnceLock};

use clap::{Args, Subcommand};
use session_sdk::boundary::api::{ListQuery, Session as RemoteSession};
use session_sdk::boundary::{BoundaryConfig, BoundaryProvider, PasswordPrompt, secret_names};
use session_sdk::{Error, Secret, Session, SessionAction, SessionManagerBuilder, SessionType};
use time::format_description::well_known::Rfc3339;

use crate::workspace::Workspace;
use crate::{Failure, Global, secrets, use_session};

/// Registers the `boundary` provider.
pub(crate) fn register(builder: SessionManagerBuilder) -> SessionManagerBuilder {
    builder.lazy_providers([SessionType::Boundary], || {
        Ok(vec![provider() as Arc<dyn SessionAction>])
    })
}

/// The one Boundary provider of this process: the manager's, and the one
/// the `boundary` commands log in with.
fn provider() -> Arc<BoundaryProvider> {
    static PROVIDER: OnceLock<Arc<BoundaryProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            Arc::new(BoundaryProvider::new().with_password_prompt(Arc::new(TerminalPrompt)))
        })
        .clone()
}

/// Asks for the password on the terminal when the secret store has none
/// (never when standard input is not a terminal).
#[derive(Debug)]
struct TerminalPrompt;

#[async_trait::async_trait]
impl PasswordPrompt for TerminalPrompt {
    async fn password(
        &self,
        label: &str,
        controller: &str,
        login_name: &str,
    ) -> session_sdk::Result<Option<Secret>> {
        if !std::io::stdin().is_terminal() {
            return Ok(None);
        }
        let prompt = format!("Password of {login_name} at {controller} ({label}): ");
        let read = tokio::task::spawn_blocking(move || rpassword::prompt_password(prompt))
            .await
            .map_err(|e| Error::invalid_input("password", e.to_string()))?
            .map_err(|e| {
                Error::invalid_input("password", format!("cannot read it from the terminal: {e}"))
            })?;
        Ok((!read.is_empty()).then(|| Secret::new(read)))
    }
}

/// `add boundary`.
#[derive(Debug, Args)]
pub(crate) struct AddBoundary {
    /// The new session's name.
    name: String,

    /// The controller's address: its https:// (or http://) URL with the
    /// port, as given to the Boundary CLI's BOUNDARY_ADDR.
    #[arg(long, value_name = "URL")]
    controller: String,

    /// The password auth method, e.g. ampw_1234567890.
    #[arg(long, value_name = "ID")]
    auth_method: String,

    /// The account's login name.
    #[arg(long)]
    login_name: String,

    /// The target by id (ttcp_…); or --target-name with --scope-id or
    /// --scope-name.
    #[arg(long, value_name = "ID", conflicts_with = "target_name")]
    target_id: Option<String>,

    /// The target by name.
    #[arg(long, value_name = "NAME")]
    target_name: Option<String>,

    /// The target's project by id (with --target-name).
    #[arg(long, value_name = "ID", conflicts_with = "scope_name")]
    scope_id: Option<String>,

    /// The target's project by name (with --target-name).
    #[arg(long, value_name = "NAME")]
    scope_name: Option<String>,

    /// One host of the target's host sets.
    #[arg(long, value_name = "ID")]
    host_id: Option<String>,

    /// The local port `connect` listens on [default: the target's default
    /// client port, else a free port].
    #[arg(long, value_name = "PORT")]
    listen_port: Option<u16>,

    /// Read the password from this environment variable instead of
    /// standard input (never from a flag).
    #[arg(long, value_name = "VAR")]
    password_env: Option<String>,
}

/// Adds a Boundary session and stores its password; returns what to print.
pub(crate) async fn add(
    global: &Global,
    workspace: Workspace,
    args: AddBoundary,
) -> Result<String, Failure> {
    let mut config = BoundaryConfig::new(args.controller, args.auth_method, args.login_name);
    config.target_id = args.target_id;
    config.target_name = args.target_name;
    config.scope_id = args.scope_id;
    config.scope_name = args.scope_name;
    config.host_id = args.host_id;
    config.listen_port = args.listen_port;
    config.validate()?;
    let session = Session::new(&args.name, SessionType::Boundary)?.with_config(&config)?;
    let password =
        secrets::from_env_or_stdin("--password-env", args.password_env.as_deref(), "password")?;
    secrets::add_with_secret(
        global,
        &workspace,
        session,
        secret_names::PASSWORD,
        &password,
    )
    .await
}

/// `boundary …`: the controller of a `boundary` session.
#[derive(Debug, Subcommand)]
pub(crate) enum BoundaryCommand {
    /// List the Boundary sessions this account can see (every page):
    /// pending, active and canceling ones, with --all terminated ones too.
    Sessions(SessionsArgs),

    /// List the targets this account can see.
    Targets(TargetsArgs),

    /// Cancel a Boundary session (s_…) by its id: its connections are
    /// closed by the worker.
    Cancel(CancelArgs),

    /// Log out: delete the stored auth token on the controller and in the
    /// secret store. The next use logs in again.
    Logout(SessionArg),
}

/// The `boundary` session whose controller and login to use.
#[derive(Debug, Args)]
pub(crate) struct SessionArg {
    /// A `boundary` session of the workspace (id or name).
    #[arg(value_name = "ID|NAME")]
    session: String,
}

/// `boundary sessions`.
#[derive(Debug, Args)]
pub(crate) struct SessionsArgs {
    #[command(flatten)]
    of: SessionArg,

    /// Terminated sessions too.
    #[arg(long)]
    all: bool,

    /// Only sessions of this scope (a project, or any scope and below)
    /// [default: global, recursively].
    #[arg(long, value_name = "ID")]
    scope: Option<String>,

    /// A go-bexpr filter, e.g. '"/item/status" == "active"'.
    #[arg(long)]
    filter: Option<String>,

    /// Print a JSON array (id, targetId, status, created, expiration,
    /// terminationReason, connections) instead of a table.
    #[arg(long)]
    json: bool,
}

/// `boundary targets`.
#[derive(Debug, Args)]
pub(crate) struct TargetsArgs {
    #[command(flatten)]
    of: SessionArg,

    /// Only targets of this scope and below [default: global].
    #[arg(long, value_name = "ID", default_value = "global")]
    scope: String,

    /// Print a JSON array (id, name, scopeId, type) instead of a table.
    #[arg(long)]
    json: bool,
}

/// `boundary cancel`.
#[derive(Debug, Args)]
pub(crate) struct CancelArgs {
    #[command(flatten)]
    of: SessionArg,

    /// The Boundary session to cancel (s_…).
    #[arg(value_name = "SESSION_ID")]
    session_id: String,
}

/// Runs a `boundary` command; returns what to print.
pub(crate) async fn run(
    global: &Global,
    workspace: Workspace,
    command: BoundaryCommand,
) -> Result<String, Failure> {
    let of = match &command {
        BoundaryCommand::Sessions(a) => &a.of,
        BoundaryCommand::Targets(a) => &a.of,
        BoundaryCommand::Cancel(a) => &a.of,
        BoundaryCommand::Logout(a) => a,
    };
    let used = use_session::resolve(
        global,
        workspace,
        &of.session,
        |t| *t == SessionType::Boundary,
        "a boundary session",
    )
    .await?;
    let ctx = used.context();
    let provider = provider();
    if let BoundaryCommand::Logout(_) = &command {
        provider.logout(&ctx, &used.session).await?;
        return Ok(format!("logged out {}\n", used.session.label()));
    }
    let client = provider.client(&ctx, &used.session).await?;
    match command {
        BoundaryCommand::Sessions(args) => {
            let mut query = match args.scope {
                Some(scope) => ListQuery::under(scope),
                None => ListQuery::default(),
            };
            if args.all {
                query = query.with_terminated();
            }
            if let Some(filter) = args.filter {
                query = query.with_filter(filter);
            }
            let listing = client.list_sessions(&query).await?;
            if args.json {
                return json(
                    &listing
                        .sessions()
                        .iter()
                        .map(session_json)
                        .collect::<Vec<_>>(),
                );
            }
            Ok(sessions_table(listing.sessions()))
        }
        BoundaryCommand::Targets(args) => {
            let targets = client.list_targets(&args.scope, true).await?;
            if args.json {
                let rows: Vec<serde_json::Value> = targets
                    .iter()
                    .map(|t| {
                        serde_json::json!({
                            "id": t.id, "name": t.name, "scopeId": t.scope_id, "type": t.kind,
                        })
                    })
                    .collect();
                return json(&rows);
            }
            let rows: Vec<Vec<String>> = targets
                .iter()
                .map(|t| {
                    vec![
                        t.id.clone(),
                        t.name.clone(),
                        t.scope_id.clone(),
                        t.kind.clone(),
                    ]
                })
                .collect();
            Ok(crate::output::columns(
                &["TARGET", "NAME", "SCOPE", "TYPE"],
                &rows,
                "no targets",
            ))
        }
        BoundaryCommand::Cancel(args) => {
            let session = client.cancel_session(&args.session_id).await?;
            Ok(format!("{}: {}\n", session.id, session.status))
        }
        BoundaryCommand::Logout(_) => unreachable!("handled above"),
    }
}

fn json(value: &impl serde::Serialize) -> Result<String, Failure> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::Other(format!("cannot write JSON: {e}")))?;
    text.push('\n');
    Ok(text)
}

fn time(t: Option<time::OffsetDateTime>) -> Option<String> {
    t.and_then(|t| t.format(&Rfc3339).ok())
}

fn session_json(s: &RemoteSession) -> serde_json::Value {
    serde_json::json!({
        "id": s.id,
        "targetId": s.target_id,
        "status": s.status.as_str(),
        "created": time(s.created_time),
        "expiration": time(s.expiration_time),
        "terminationReason": (!s.termination_reason.is_empty()).then_some(&s.termination_reason),
        "connections": s.connections.len(),
    })
}

fn sessions_table(sessions: &[RemoteSession]) -> String {
    let rows: Vec<Vec<String>> = sessions
        .iter()
        .map(|s| {
            let status = if s.termination_reason.is_empty() {
                s.status.to_string()
            } else {
                format!("{} ({})", s.status, s.termination_reason)
            };
            vec![
                s.id.clone(),
                s.target_id.clone(),
                status,
                time(s.expiration_time).unwrap_or_else(|| "-".into()),
                s.connections.len().to_string(),
            ]
        })
        .collect();
    crate::output::columns(
        &["SESSION", "TARGET", "STATUS", "EXPIRES", "CONNECTIONS"],
        &rows,
        "no sessions",
    )
}
