//! The Redfish parts of sessionctl (cargo feature `redfish`, on by default):
//! the provider, `add redfish`, and `redfish get|sessions`.

use std::io::Write as _;
use std::sync::{Arc, OnceLock};

use clap::{Args, Subcommand};
use session_sdk::redfish::client::{PASSWORD_SECRET, RedfishConfig, RedfishProvider};
use session_sdk::{
    ActionContext, Capabilities, Error, Session, SessionAction, SessionManagerBuilder, SessionType,
};

use crate::workspace::Workspace;
use crate::{Failure, Global, secrets, use_session};

/// The Redfish provider, behind [`Warned`].
pub(crate) fn register(builder: SessionManagerBuilder) -> SessionManagerBuilder {
    builder.lazy_providers([SessionType::Redfish], || {
        Ok(vec![Arc::new(Warned(provider())) as Arc<dyn SessionAction>])
    })
}

/// The Redfish provider, warning on stderr before each start, stop and
/// rotate of a session with `insecureSkipVerify`. The library's warning is
/// a log line, and sessionctl logs nothing by default: without this, the
/// password would go to any certificate holder without a word.
#[derive(Debug)]
struct Warned(Arc<RedfishProvider>);

#[async_trait::async_trait]
impl SessionAction for Warned {
    fn session_type(&self) -> SessionType {
        self.0.session_type()
    }

    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }

    async fn start(&self, ctx: &ActionContext, session: &Session) -> session_sdk::Result<Session> {
        warn_if_unverified(session);
        self.0.start(ctx, session).await
    }

    async fn stop(&self, ctx: &ActionContext, session: &Session) -> session_sdk::Result<Session> {
        warn_if_unverified(session);
        self.0.stop(ctx, session).await
    }

    async fn rotate(&self, ctx: &ActionContext, session: &Session) -> session_sdk::Result<Session> {
        warn_if_unverified(session);
        self.0.rotate(ctx, session).await
    }
}

/// Whether the session's config turns TLS verification off.
fn unverified(session: &Session) -> bool {
    session
        .config
        .as_map()
        .get("insecureSkipVerify")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false)
}

/// The warning printed on stderr each time an unverified session is used.
fn warn_if_unverified(session: &Session) {
    if unverified(session) {
        let endpoint = session.config.get_str("endpoint").unwrap_or("?");
        // Nowhere left to report a failed write to stderr.
        let _ = writeln!(
            std::io::stderr().lock(),
            "sessionctl: warning: {}: the TLS certificate of {endpoint} is NOT verified \
             (--insecure-skip-verify): the password and token go to whoever answers there; \
             use --ca-file instead",
            session.label()
        );
    }
}

/// The line `show` adds for a Redfish session whose TLS is not verified
/// (empty otherwise).
pub(crate) fn show_notes(session: &Session) -> String {
    if session.session_type == SessionType::Redfish && unverified(session) {
        "TLS verification: OFF (insecureSkipVerify): the service's certificate is not checked\n"
            .to_owned()
    } else {
        String::new()
    }
}

/// The one Redfish provider of this process: the manager's, and the one
/// `redfish get|sessions` make clients with (it caches the HTTP clients).
fn provider() -> Arc<RedfishProvider> {
    static PROVIDER: OnceLock<Arc<RedfishProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(RedfishProvider::new()))
        .clone()
}

/// `add redfish`.
#[derive(Debug, Args)]
pub(crate) struct AddRedfish {
    /// The new session's name.
    name: String,

    /// The service (BMC) URL, for example bmc.example.net with https.
    #[arg(long, value_name = "URL")]
    endpoint: String,

    /// The account to log in as.
    #[arg(long)]
    username: String,

    /// Trust this CA certificate (PEM file) for the service's TLS.
    #[arg(long, value_name = "PATH")]
    ca_file: Option<std::path::PathBuf>,

    /// Do not verify the service's TLS certificate (warns on stderr on every
    /// use, and `show` says so).
    #[arg(long)]
    insecure_skip_verify: bool,

    /// Allow a plain http:// endpoint, on a loopback host only (127.0.0.0/8,
    /// ::1, localhost): the password would otherwise cross the network in
    /// clear.
    #[arg(long)]
    allow_insecure_http: bool,

    /// Refuse HTTP Basic authentication when the service has no
    /// SessionService (by default Basic is used then).
    #[arg(long)]
    no_basic_fallback: bool,

    /// Read the password from this environment variable instead of standard
    /// input (never from a flag).
    #[arg(long, value_name = "VAR")]
    password_env: Option<String>,
}

/// Adds a Redfish session and stores its password; returns what to print.
pub(crate) async fn add(
    global: &Global,
    workspace: Workspace,
    args: AddRedfish,
) -> Result<String, Failure> {
    let mut config = RedfishConfig::new(args.endpoint, args.username)
        .with_insecure_skip_verify(args.insecure_skip_verify)
        .with_allow_insecure_http(args.allow_insecure_http);
    if args.no_basic_fallback {
        config = config.with_basic_auth_fallback(false);
    }
    if let Some(path) = &args.ca_file {
        let absolute =
            std::path::absolute(path).map_err(|e| Failure::Usage(format!("--ca-file: {e}")))?;
        // Checked now, not at the first start, so a typo is caught here.
        std::fs::File::open(&absolute).map_err(|e| {
            Error::invalid_input(
                "--ca-file",
                format!("cannot read {}: {e}", absolute.display()),
            )
        })?;
        config = config.with_ca_file(absolute);
    }
    config.validate()?;
    let session = Session::new(&args.name, SessionType::Redfish)?.with_config(&config)?;
    warn_if_unverified(&session);
    let password =
        secrets::from_env_or_stdin("--password-env", args.password_env.as_deref(), "password")?;
    secrets::add_with_secret(global, &workspace, session, PASSWORD_SECRET, &password).await
}

/// `redfish …`: use an active Redfish session.
#[derive(Debug, Subcommand)]
pub(crate) enum RedfishCommand {
    /// GET a resource with the session's token and print its JSON.
    ///
    /// A session that has ended on the service gives an "unauthenticated"
    /// error: rotate or start it again.
    Get(GetArgs),

    /// List the service's login sessions this account may see (all with
    /// ConfigureUsers, else its own), one a line: current marker, id, user,
    /// created, context, URI.
    Sessions(SessionsArgs),
}

/// `redfish get`.
#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    /// The session's id, or its name if unique.
    #[arg(value_name = "ID|NAME")]
    session: String,

    /// The resource path, e.g. /redfish/v1/Systems.
    #[arg(value_name = "PATH", default_value = "/redfish/v1/")]
    path: String,
}

/// `redfish sessions`.
#[derive(Debug, Args)]
pub(crate) struct SessionsArgs {
    /// The session's id, or its name if unique.
    #[arg(value_name = "ID|NAME")]
    session: String,

    /// Print a JSON array of objects with the fields uri, id, userName,
    /// createdTime, context, current.
    #[arg(long)]
    json: bool,
}

/// Runs a `redfish` command; returns what to print.
pub(crate) async fn run(
    global: &Global,
    workspace: Workspace,
    command: RedfishCommand,
) -> Result<String, Failure> {
    let id_or_name = match &command {
        RedfishCommand::Get(a) => &a.session,
        RedfishCommand::Sessions(a) => &a.session,
    };
    let used = use_session::resolve(
        global,
        workspace,
        id_or_name,
        |t| *t == SessionType::Redfish,
        "redfish",
    )
    .await?;
    used.require_active()?;
    warn_if_unverified(&used.session);
    let client = provider().client(&used.context(), &used.session).await?;
    match command {
        RedfishCommand::Get(args) => {
            let body = client.get(&args.path).await?;
            let mut text = serde_json::to_string_pretty(&body)
                .map_err(|e| Failure::Other(format!("cannot print the answer: {e}")))?;
            text.push('\n');
            Ok(text)
        }
        RedfishCommand::Sessions(args) => {
            let sessions = client.sessions().await?;
            if args.json {
                let list: Vec<serde_json::Value> = sessions
                    .iter()
                    .map(|s| {
                        serde_json::json!({
                            "uri": s.uri,
                            "id": s.id,
                            "userName": s.user_name,
                            "createdTime": s.created_time,
                            "context": s.context,
                            "current": s.is_current,
                        })
                    })
                    .collect();
                let mut text = serde_json::to_string_pretty(&list)
                    .map_err(|e| Failure::Other(format!("cannot print the answer: {e}")))?;
                text.push('\n');
                return Ok(text);
            }
            let mut out = String::new();
            for s in sessions {
                out.push_str(&format!(
                    "{} {}\t{}\t{}\t{}\t{}\n",
                    if s.is_current { "*" } else { " " },
                    s.id,
                    s.user_name.as_deref().unwrap_or("-"),
                    s.created_time.as_deref().unwrap_or("-"),
                    s.context.as_deref().unwrap_or("-"),
                    s.uri,
                ));
            }
            Ok(out)
        }
    }
}
