//! `sessionctl`: the command line of session-sdk.
//!
//! It lists, shows, starts, stops, rotates and removes the sessions of one
//! workspace file, and keeps their secrets in a secret store.
//!
//! ```text
//! sessionctl [--workspace PATH] list [--json]
//! sessionctl show ID|NAME [--json]
//! sessionctl start|stop|rotate|remove ID|NAME
//! sessionctl connect ID|NAME [--listen-port PORT] [--json] [-- CMD ARGS…]
//! sessionctl secret set ID|NAME SECRET_NAME   < value-on-stdin
//! sessionctl secret list ID|NAME
//! sessionctl secret delete ID|NAME SECRET_NAME
//! sessionctl secret orphans [--remove]
//! ```
//!
//! # Settings
//!
//! | flag | environment | default |
//! |---|---|---|
//! | `--workspace PATH` | `SESSIONCTL_WORKSPACE` | `session_sdk::repository::default_path()` |
//! | `--secret-store file\|keyring` | `SESSIONCTL_SECRET_STORE` | `file` |
//! | `--secrets-file PATH` | `SESSIONCTL_SECRETS_FILE` | `secrets.enc` next to the workspace file |
//! | (none: never a flag) | `SESSIONCTL_PASSPHRASE` | asked on the terminal without echo |
//! | `--log LEVEL` | `SESSIONCTL_LOG` | off |
//!
//! The secret store is opened only by the commands that need it (`start`,
//! `stop`, `rotate`, `remove`, `secret …`), so `list` and `show` never ask for
//! a passphrase.
//!
//! # JSON
//!
//! `list --json` and `show --json` print sessions as described in [`json`].
//!
//! # Errors and exit codes
//!
//! An error prints exactly one line on standard error,
//! `sessionctl: <the error and its causes>`, and exits with 1; a usage error
//! (unknown flag, bad value) exits with 2; Ctrl-C or SIGTERM while a
//! `start`, `rotate` or `connect` still waits (a device-code sign-in, a
//! handshake) gives it up, records the cancel, and exits with 130.
//! `connect` is described in [`connect`]. Secret values never appear in
//! output, errors or logs: errors and log lines are scrubbed of every secret
//! value the process has seen, even one a service echoed back.

#[cfg(feature = "aws")]
mod aws;
#[cfg(feature = "aws")]
mod aws_console;
#[cfg(feature = "aws")]
mod aws_serve;
#[cfg(feature = "azure")]
mod azure;
#[cfg(feature = "boundary")]
mod boundary;
mod connect;
#[cfg(any(feature = "aws", feature = "azure"))]
mod device_prompt;
mod import;
mod interactive;
mod json;
mod output;
#[cfg(feature = "redfish")]
mod redfish;
mod secrets;
mod shell;
mod signals;
#[cfg(feature = "aws-ssm")]
mod ssm;
#[cfg(any(
    feature = "aws",
    feature = "azure",
    feature = "redfish",
    feature = "boundary"
))]
mod use_session;
mod workspace;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use session_sdk::{
    Error, ErrorChain, InMemorySecretStore, Operation, SecretKey, SecretStore, SessionManager,
    SessionType, SystemClock, WorkspaceRepository, WorkspaceRepositoryExt,
};

use crate::secrets::StoreKind;
use crate::workspace::Workspace;

/// The text after `--help` of `list` and `show`: the JSON field names.
macro_rules! json_fields_help {
    () => {
        "JSON output (--json):
  `list --json` prints a JSON array of sessions, `show --json` one session
  object. Each object is the session exactly as the workspace file stores it.
  The field names are stable. Optional fields are left out when they have no
  value; fields written by a newer version are passed through unchanged.

  sessionId        string  the id: a UUID, lower-case and hyphenated
  sessionName      string  the name (not necessarily unique)
  sessionType      string  awsIamUser, awsIamRoleChained, awsIamRoleFederated,
                           awsSsoRole, azure, awsSsm, redfish, boundary, or a
                           custom type
  status           string  inactive, pending, active, rotating, stopping,
                           disconnected or expired
  startDateTime    string  optional: when it last became active (RFC 3339, UTC)
  region           string  optional: AWS region or Azure location
  expiration       string  optional: when the credentials or remote session
                           end (RFC 3339, UTC)
  issuedAt         string  optional: when they were issued (RFC 3339, UTC)
  parentSessionId  string  optional: the session it is derived from (role
                           chaining)
  lastError        object  optional: the last failed operation, with
                           operation, category, message and at (RFC 3339)
  config           object  the provider's settings, as the user chose them
                           (never secrets)
  state            object  optional: what the last start or rotate made
                           available (published profile, Redfish session
                           URI, signed-in account; never secrets)
  revision         number  bumped on every write of the session"
    };
}

/// The end of `sessionctl connect --help`.
const CONNECT_AFTER_HELP: &str = "\
Examples:
  sessionctl connect prod-db --listen-port 5432
  sessionctl connect prod-db -- psql -h {{host}} -p {{port}} -U app
  sessionctl connect prod-db --json | jq -c .

JSON lines (--json), one per event, on standard output:
  {\"event\":\"connected\",\"addresses\":[\"127.0.0.1:5432\"],...}
  {\"event\":\"disconnected\",\"reason\":\"network lost: ...\",...}
  {\"event\":\"resumeFailed\",\"category\":\"unavailable\",\"error\":\"...\",...}
  {\"event\":\"resumed\",\"afterSeconds\":1.2,\"addresses\":[...],...}
  {\"event\":\"ended\",\"error\":\"...\",...}
  {\"event\":\"stopped\",...}
Every line also has session (name), sessionId and at (RFC 3339, UTC).

Exit status: 0 after Ctrl-C or SIGTERM (the session is stopped); the
command's status with -- CMD; 1 when the service ended the session or
reconnecting gave up (one line `sessionctl: <why>` on standard error); 130
when Ctrl-C gave up connecting.";

/// The end of `sessionctl --help`.
const MAIN_AFTER_HELP: &str = "\
Examples:
  sessionctl list
  sessionctl --workspace ./ws.json show prod-admin --json
  printf '%s' \"$TOKEN\" | sessionctl secret set prod-admin token
  sessionctl secret list prod-admin
  sessionctl start prod-admin
  sessionctl connect prod-db -- psql -h {{host}} -p {{port}}

Environment:
  SESSIONCTL_PASSPHRASE  the passphrase of the encrypted secrets file; when it
                         is unset it is asked on the terminal (without echo),
                         and with no terminal the command fails. It is never
                         taken from a flag.
  SESSIONCTL_WORKSPACE, SESSIONCTL_SECRET_STORE, SESSIONCTL_SECRETS_FILE,
  SESSIONCTL_LOG         the same as the flags of those names.

list and show never open the secret store, so they need no passphrase.

Exit status: 0 on success; 1 when the operation failed, with one line
`sessionctl: <error>` on standard error; 2 on a usage error; 130 when Ctrl-C
gave up a start, rotate or connect that was still waiting.";

/// Manage the sessions of a session-sdk workspace.
///
/// Sessions are named by id or by name (a name must then be unique; use the
/// id otherwise). Nothing here prints a secret: secret values go in on
/// standard input and stay in the secret store.
#[derive(Debug, Parser)]
#[command(name = "sessionctl", version, propagate_version = true)]
#[command(after_long_help = MAIN_AFTER_HELP)]
struct Cli {
    /// Settings shared by every command.
    #[command(flatten)]
    global: Global,

    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// Flags accepted by every command.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
struct Global {
    /// The workspace file [default: the OS config dir's sessionctl/workspace.json],
    /// or a PostgreSQL database shared by several machines:
    /// postgres://USER@HOST:PORT/DB, its password in PGPASSWORD (never in
    /// the URL), TLS as with psql (e.g. ?sslmode=verify-full&sslrootcert=CA.pem).
    #[arg(long, global = true, value_name = "PATH|URL", env = WORKSPACE_ENV)]
    workspace: Option<PathBuf>,

    /// Where secrets are kept: an encrypted file or the OS keychain.
    ///
    /// `keyring` needs a sessionctl built with the `keyring` feature. The
    /// file store's passphrase comes from SESSIONCTL_PASSPHRASE or is asked
    /// on the terminal (never from a flag).
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "STORE",
        env = "SESSIONCTL_SECRET_STORE",
        default_value_t = StoreKind::File
    )]
    secret_store: StoreKind,

    /// The encrypted secrets file [default: secrets.enc next to the workspace file].
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "SESSIONCTL_SECRETS_FILE"
    )]
    secrets_file: Option<PathBuf>,

    /// Log to standard error at this level or filter (`info`, `debug`,
    /// `trace`, `session_core=debug`, …) [default: off].
    #[arg(long, global = true, value_name = "LEVEL", env = "SESSIONCTL_LOG")]
    log: Option<String>,

    /// Where started AWS sessions make their credentials available: keys in
    /// a profile of the shared credentials file, a config-file profile whose
    /// credential_process is this sessionctl, or nowhere (use `aws env` /
    /// `aws exec`).
    #[cfg(feature = "aws")]
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "SINK",
        env = "SESSIONCTL_AWS_SINK",
        default_value_t = aws::SinkChoice::CredentialsFile
    )]
    aws_sink: aws::SinkChoice,
}

/// The commands.
#[derive(Debug, Subcommand)]
enum Command {
    /// List the sessions of the workspace as a table (or JSON).
    ///
    /// The table has the columns NAME, TYPE, STATUS, EXPIRES and ID. A
    /// workspace file that does not exist yet has no sessions. Does not open
    /// the secret store.
    #[command(after_long_help = json_fields_help!())]
    List(JsonFlag),

    /// Show one session, one `field: value` line each (or JSON).
    ///
    /// Does not open the secret store.
    #[command(after_long_help = json_fields_help!())]
    Show(ShowArgs),

    /// Start a session: issue its credentials or open its connection.
    ///
    /// Starts its parent first if it has one that is not active, and opens
    /// the secret store. Works for the types whose provider is built into
    /// sessionctl (by default the four AWS credential types, azure and
    /// redfish); others fail with "does not support" and say why. Each
    /// provider reads its settings only when one of its sessions is used,
    /// so a bad AWS setting does not affect a redfish session. AWS sessions publish their
    /// credentials to a profile of the shared credentials file
    /// (AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials) and their
    /// region to the config file (AWS_CONFIG_FILE, else ~/.aws/config); STS is
    /// reached at AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL if set.
    Start(Target),

    /// Stop a session: remove what start made available.
    ///
    /// Stopping an inactive session does nothing.
    Stop(Target),

    /// Open a live session (SSM, Boundary) and hold it until Ctrl-C.
    ///
    /// A live session's connection (a local port forward or proxy) lasts
    /// only as long as a process holds it, so these sessions are used with
    /// `connect`, not `start`. It prints `listening on HOST:PORT` on
    /// standard output, then holds the connection in the foreground: a
    /// dropped connection is resumed (the same local address, retried with
    /// backoff until the resume deadline), credentials of the session and
    /// its parents are rotated before they expire, and every change is told
    /// on standard error. Ctrl-C or SIGTERM stops the session and exits 0;
    /// when the service ends it, or reconnecting gives up, it says why and
    /// exits 1. A session held by a process that died shows as
    /// `disconnected`; `connect` re-attaches to it. Ctrl-C while connecting
    /// gives up the connection attempt and exits 130.
    ///
    /// With `-- CMD ARGS…` it runs the command once connected, with the
    /// local address in SESSIONCTL_CONNECT_ADDRESS (HOST:PORT),
    /// SESSIONCTL_CONNECT_HOST, SESSIONCTL_CONNECT_PORT and the session's
    /// name in SESSIONCTL_CONNECT_SESSION, and `{{host}}`, `{{port}}` and
    /// `{{address}}` replaced in its arguments; the address line then goes
    /// to standard error. The session is stopped when the command exits,
    /// and sessionctl exits with the command's status.
    #[command(after_long_help = CONNECT_AFTER_HELP)]
    Connect(connect::ConnectArgs),

    /// Replace the credentials of an active session before they expire.
    ///
    /// Needs the provider for the session's type and opens the secret store.
    Rotate(Target),

    /// Remove a session and delete its secrets.
    ///
    /// A live session is stopped first. Refused while another session names
    /// it as parent. Needs the secret store (to delete the secrets).
    Remove(Target),

    /// Manage the secrets of a session.
    #[command(subcommand)]
    Secret(SecretCommand),

    /// Add a session (one subcommand per session type).
    #[cfg(any(
        feature = "aws",
        feature = "azure",
        feature = "redfish",
        feature = "boundary"
    ))]
    #[command(subcommand)]
    Add(Box<AddCommand>),
    /// Import sessions from another tool (Leapp).
    #[command(subcommand)]
    Import(import::ImportCommand),

    /// Use the credentials of an AWS session: export them, run a command
    /// with them, or serve them to an AWS SDK as its credential_process.
    #[cfg(feature = "aws")]
    #[command(subcommand)]
    Aws(Box<aws::AwsCommand>),

    /// Use an active Redfish session: read a resource with its token, or
    /// list the service's login sessions.
    #[cfg(feature = "redfish")]
    #[command(subcommand)]
    Redfish(redfish::RedfishCommand),

    /// Use an Azure session's token: export it, or run a command with it.
    #[cfg(feature = "azure")]
    #[command(subcommand)]
    Azure(azure::AzureCommand),

    /// AWS Systems Manager: list Session Manager sessions.
    #[cfg(feature = "aws-ssm")]
    #[command(subcommand)]
    Ssm(ssm::SsmCommand),

    /// HashiCorp Boundary: list sessions and targets, cancel a session,
    /// log out (with the controller and login of a `boundary` session).
    #[cfg(feature = "boundary")]
    #[command(subcommand)]
    Boundary(boundary::BoundaryCommand),
}

/// The `add` commands of every provider built in.
#[cfg(any(
    feature = "aws",
    feature = "azure",
    feature = "redfish",
    feature = "boundary"
))]
#[derive(Debug, Subcommand)]
enum AddCommand {
    /// The AWS session types.
    #[cfg(feature = "aws")]
    #[command(flatten)]
    Aws(aws::AddAws),

    /// Add a Redfish login session (X-Auth-Token) with a BMC or service.
    ///
    /// The password is read from standard input (asked without echo on a
    /// terminal), or from the variable named by --password-env; never from a
    /// flag. TLS is verified; give --ca-file for a private CA.
    #[cfg(feature = "redfish")]
    Redfish(redfish::AddRedfish),

    /// Add an Azure (Entra ID) session: a service principal's client
    /// secret, a user's device-code sign-in (done at start), or an existing
    /// refresh token.
    ///
    /// The client secret or refresh token is read from standard input
    /// (asked without echo on a terminal), or from the variable named by
    /// --secret-env; never from a flag.
    #[cfg(feature = "azure")]
    Azure(azure::AddAzure),

    /// Add an AWS Systems Manager session (a shell or a port forward on a
    /// managed node), used with `sessionctl connect`.
    ///
    /// The identity is --parent (an AWS session of the workspace), else the
    /// SDK's default credential chain.
    #[cfg(feature = "aws-ssm")]
    AwsSsm(ssm::AddSsm),

    /// Add a HashiCorp Boundary session (a target behind a worker), used
    /// with `sessionctl connect`: a local proxy as `boundary connect`.
    ///
    /// The password is read from standard input (asked without echo on a
    /// terminal), or from the variable named by --password-env; never from
    /// a flag.
    #[cfg(feature = "boundary")]
    Boundary(boundary::AddBoundary),
}

/// The `secret` commands.
#[derive(Debug, Subcommand)]
enum SecretCommand {
    /// Store a secret of a session, reading its value from standard input.
    ///
    /// One trailing newline (`\n` or `\r\n`) is removed; an empty value is
    /// refused. When standard input is a terminal the value is asked for
    /// without echo. The value is never taken from a flag or an argument, so
    /// it stays out of shell history and process lists. An existing secret
    /// of that name is replaced.
    Set(SecretNameArgs),

    /// List the names of a session's secrets, one a line (never the values).
    List(Target),

    /// Delete one secret of a session.
    Delete(SecretNameArgs),

    /// List the secrets whose session is not in the workspace, one
    /// `SESSION_ID/NAME` a line (never the values); with --remove, delete
    /// them.
    ///
    /// No command can use such secrets. A sessionctl killed in the middle
    /// of `remove` can leave them (and of `add`, before add wrote the
    /// session first). Needs a secret store that can list its entries
    /// (the encrypted file; not the OS keychain).
    Orphans(OrphansArgs),
}

/// The arguments of `secret orphans`.
#[derive(Debug, Args)]
struct OrphansArgs {
    /// Delete the secrets listed, printing `removed SESSION_ID/NAME` lines.
    #[arg(long)]
    remove: bool,
}

/// `--json`.
#[derive(Debug, Args)]
struct JsonFlag {
    /// Print JSON instead of a table (see the field list below).
    #[arg(long)]
    json: bool,
}

/// The arguments of `show`.
#[derive(Debug, Args)]
struct ShowArgs {
    /// The session's id, or its name if unique.
    #[arg(value_name = "ID|NAME")]
    session: String,

    /// Print the session as a JSON object (see the field list below).
    #[arg(long)]
    json: bool,
}

/// One session.
#[derive(Debug, Args)]
struct Target {
    /// The session's id, or its name if unique.
    #[arg(value_name = "ID|NAME")]
    session: String,
}

/// One secret of one session.
#[derive(Debug, Args)]
struct SecretNameArgs {
    /// The session's id, or its name if unique.
    #[arg(value_name = "ID|NAME")]
    session: String,

    /// The secret's name: 1-64 characters from A-Z a-z 0-9 . _ -
    #[arg(value_name = "SECRET_NAME")]
    name: String,
}

/// The environment variable that names the workspace file, like
/// `--workspace` (the library reads no variable for it).
const WORKSPACE_ENV: &str = "SESSIONCTL_WORKSPACE";

/// Why a command failed, which decides the exit status.
#[derive(Debug)]
enum Failure {
    /// A bad flag or setting: exit status 2.
    Usage(String),
    /// The operation failed: exit status 1.
    Operation(Error),
    /// Something outside the library failed (the runtime, standard output):
    /// exit status 1.
    Other(String),
    /// The operation was given up on Ctrl-C or SIGTERM: exit status 130,
    /// as a shell reports an interrupted command.
    Interrupted(Error),
    /// A command run by `aws exec` ended with this status; sessionctl exits
    /// with it and prints nothing.
    #[cfg_attr(not(feature = "aws"), allow(dead_code))]
    Exit(u8),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Operation(error)
    }
}

impl Failure {
    /// As a library error, for code that must return one (a provider
    /// factory).
    #[cfg_attr(not(feature = "aws"), allow(dead_code))]
    fn into_error(self) -> Error {
        match self {
            Failure::Operation(error) => error,
            other => Error::invalid_input("sessionctl", other.message()),
        }
    }

    /// The exit status.
    fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => 2,
            Failure::Operation(_) | Failure::Other(_) => 1,
            Failure::Interrupted(_) => 130,
            Failure::Exit(code) => *code,
        }
    }

    /// The message, on one line, scrubbed of every secret value this
    /// process has seen ([`secrets::redactor`]).
    fn message(&self) -> String {
        let redactor = secrets::redactor();
        let text = match self {
            Failure::Usage(message) | Failure::Other(message) => redactor.redact(message),
            Failure::Operation(error) | Failure::Interrupted(error) => {
                ErrorChain(&redactor.error(error)).to_string()
            }
            Failure::Exit(_) => String::new(),
        };
        one_line(&text)
    }
}

/// Joins the lines of `text` with spaces so an error is always one line.
fn one_line(text: &str) -> String {
    text.split(['\n', '\r'])
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parses the command line, runs it, and turns a failure into one stderr
/// line and the exit status.
fn main() -> ExitCode {
    // `--help`, `--version` and usage errors exit here (usage errors with 2).
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Exit(code)) => ExitCode::from(code),
        Err(failure) => {
            // If even this write fails there is nowhere left to report it.
            let _ = writeln!(
                std::io::stderr().lock(),
                "sessionctl: {}",
                failure.message()
            );
            ExitCode::from(failure.exit_code())
        }
    }
}

/// Sets up logging and the runtime, then runs the command.
fn run(cli: Cli) -> Result<(), Failure> {
    init_logging(cli.global.log.as_deref())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Other(format!("cannot start the async runtime: {e}")))?;
    let result = runtime.block_on(Box::pin(dispatch(cli)));
    #[cfg(any(feature = "aws", feature = "azure"))]
    device_prompt::waiting::clear();
    result
}

/// Installs the stderr logger if `--log` / `SESSIONCTL_LOG` asks for one.
fn init_logging(spec: Option<&str>) -> Result<(), Failure> {
    let Some(spec) = spec.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(());
    };
    let mut filter = tracing_subscriber::EnvFilter::try_new(spec).map_err(|e| {
        Failure::Usage(format!(
            "invalid log level {spec:?} (--log / SESSIONCTL_LOG): {e}; try info, debug or trace"
        ))
    })?;
    // The AWS SDK logs whole requests at TRACE on this target, including
    // the SSO portal's bearer token (x-amz-sso_bearer_token), which its
    // redaction list misses. Never let it go above DEBUG.
    if spec.to_ascii_lowercase().contains("trace") {
        let cap = "aws_smithy_runtime::client::orchestrator=debug"
            .parse()
            .map_err(|e| Failure::Other(format!("log filter: {e}")))?;
        filter = filter.add_directive(cap);
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| ScrubbedStderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init()
        .map_err(|e| Failure::Usage(format!("cannot set up logging: {e}")))
}

/// Standard error for the logger, with every secret value this process has
/// seen scrubbed from each line ([`secrets::redactor`]): a library may log
/// a service's error text, which may echo a password.
struct ScrubbedStderr;

impl Write for ScrubbedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The formatter writes one whole event per call, so a secret is
        // never split across two writes.
        let text = String::from_utf8_lossy(buf);
        let clean = secrets::redactor().redact(&text);
        std::io::stderr().lock().write_all(clean.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Runs one command, then folds the workspace's journal into the file, so
/// that a person (or a script) reading the file after a command finds
/// every change in it; a long-running command's changes go to the journal
/// meanwhile.
async fn dispatch(cli: Cli) -> Result<(), Failure> {
    let Cli { global, command } = cli;
    let workspace = open_workspace(&global).await?;
    tracing::debug!(workspace = %workspace.label(), "workspace");
    let result = Box::pin(command_output(&global, command, workspace.clone())).await;
    if let Err(e) = workspace.compact().await {
        // The changes are safe in the journal; the next command folds them.
        tracing::warn!(error = %e, "could not fold the workspace journal into the file");
    }
    print(&result?)
}

/// Runs one command and returns what it prints.
async fn command_output(
    global: &Global,
    command: Command,
    workspace: Workspace,
) -> Result<String, Failure> {
    let mut out = String::new();
    match command {
        Command::List(JsonFlag { json }) => {
            let label = workspace.label().to_owned();
            let sessions = viewer(global, workspace)?.list().await?;
            out = if json {
                json::sessions(&sessions)?
            } else {
                output::table(&sessions, &SystemClock, &label)
            };
        }
        Command::Show(ShowArgs { session, json }) => {
            let viewer = viewer(global, workspace)?;
            let session = viewer.find(&session).await?;
            out = if json {
                json::session(&session)?
            } else {
                let all = viewer.list().await?;
                #[cfg_attr(not(feature = "redfish"), allow(unused_mut))]
                let mut text = output::details(&session, &all, &SystemClock);
                #[cfg(feature = "redfish")]
                text.push_str(&redfish::show_notes(&session));
                text
            };
        }
        Command::Start(Target { session }) => {
            operate(global, workspace, Operation::Start, &session, &mut out).await?;
        }
        Command::Stop(Target { session }) => {
            operate(global, workspace, Operation::Stop, &session, &mut out).await?;
        }
        Command::Rotate(Target { session }) => {
            operate(global, workspace, Operation::Rotate, &session, &mut out).await?;
        }
        Command::Connect(args) => connect::run(global, workspace, args).await?,
        Command::Remove(Target { session }) => {
            let session = workspace.find(&session).await?;
            let store = secrets::open(global, workspace.path()).await?;
            // Reading the store first proves it opens (right passphrase)
            // before anything is deleted.
            let count = store.names(session.session_id).await?.len();
            let manager = manager(global, workspace, store)?;
            let removed = manager.remove(&session.session_id.to_string()).await?;
            out = format!(
                "removed {} and its {count} secret{}\n",
                removed.label(),
                if count == 1 { "" } else { "s" }
            );
        }
        Command::Secret(command) => secret(global, workspace, command, &mut out).await?,
        Command::Import(command) => out = import::run(global, workspace, command).await?,
        #[cfg(any(
            feature = "aws",
            feature = "azure",
            feature = "redfish",
            feature = "boundary"
        ))]
        Command::Add(command) => {
            out = match *command {
                #[cfg(feature = "aws")]
                AddCommand::Aws(command) => aws::add(global, workspace, command).await?,
                #[cfg(feature = "redfish")]
                AddCommand::Redfish(args) => redfish::add(global, workspace, args).await?,
                #[cfg(feature = "azure")]
                AddCommand::Azure(args) => azure::add(global, workspace, args).await?,
                #[cfg(feature = "aws-ssm")]
                AddCommand::AwsSsm(args) => ssm::add(workspace, args).await?,
                #[cfg(feature = "boundary")]
                AddCommand::Boundary(args) => boundary::add(global, workspace, args).await?,
            }
        }
        #[cfg(feature = "aws")]
        Command::Aws(command) => out = aws::run(global, workspace, *command).await?,
        #[cfg(feature = "redfish")]
        Command::Redfish(command) => out = redfish::run(global, workspace, command).await?,
        #[cfg(feature = "azure")]
        Command::Azure(command) => out = azure::run(global, workspace, command).await?,
        #[cfg(feature = "aws-ssm")]
        Command::Ssm(command) => out = ssm::run(global, workspace, command).await?,
        #[cfg(feature = "boundary")]
        Command::Boundary(command) => out = boundary::run(global, workspace, command).await?,
    }
    Ok(out)
}

/// `start`, `stop` and `rotate`.
async fn operate(
    global: &Global,
    workspace: Workspace,
    operation: Operation,
    id_or_name: &str,
    out: &mut String,
) -> Result<(), Failure> {
    // Resolve first, so a wrong name fails before any passphrase prompt.
    let session = workspace.find(id_or_name).await?;
    let store = secrets::open(global, workspace.path()).await?;
    let manager = manager(global, workspace, store)?;
    let id = session.session_id;
    if operation == Operation::Start
        && manager
            .provider(&session.session_type)
            .is_ok_and(|p| p.capabilities().live_connection)
    {
        return Err(Error::invalid_input(
            "session",
            format!(
                "{} is a live {} session: its connection lasts only as long as a process holds it, so `start` would leave it dead; use `sessionctl connect {}`",
                session.label(),
                session.session_type,
                session.session_name
            ),
        )
        .into());
    }
    tracing::debug!(session_id = %id, %operation, "running");
    if operation == Operation::Stop {
        // Not cancellable, so signals keep their default effect: Ctrl-C
        // still ends a stop that hangs on an unreachable service.
        let done = manager.run(operation, id).await?;
        *out = output::outcome(&done, &SystemClock);
        return Ok(());
    }
    let running = manager.run(operation, id);
    tokio::pin!(running);
    // Ctrl-C gives up a start or rotate still waiting (a device-code
    // sign-in nobody completes) and records it.
    let mut signals = signals::Signals::new()?;
    let done = tokio::select! {
        done = &mut running => done?,
        () = signals.recv() => {
            manager.cancel(&id.to_string()).await?;
            match running.await {
                Ok(done) => done,
                Err(error) => return Err(Failure::Interrupted(error)),
            }
        }
    };
    *out = output::outcome(&done, &SystemClock);
    Ok(())
}

/// `secret set`, `secret list` and `secret delete`.
async fn secret(
    global: &Global,
    workspace: Workspace,
    command: SecretCommand,
    out: &mut String,
) -> Result<(), Failure> {
    match command {
        SecretCommand::Set(SecretNameArgs { session, name }) => {
            let session = workspace.find(&session).await?;
            let key = SecretKey::new(session.session_id, name)?;
            let store = secrets::open(global, workspace.path()).await?;
            let value = secrets::read_value(key.name())?;
            store.put(&key, &value).await?;
            *out = format!("stored secret {} of {}\n", key.name(), session.label());
        }
        SecretCommand::List(Target { session }) => {
            let session = workspace.find(&session).await?;
            let store = secrets::open(global, workspace.path()).await?;
            for name in store.names(session.session_id).await? {
                out.push_str(&name);
                out.push('\n');
            }
        }
        SecretCommand::Delete(SecretNameArgs { session, name }) => {
            let session = workspace.find(&session).await?;
            let key = SecretKey::new(session.session_id, name)?;
            let store = secrets::open(global, workspace.path()).await?;
            if !store.delete(&key).await? {
                return Err(Error::not_found(format!(
                    "secret {} of {}",
                    key.name(),
                    session.label()
                ))
                .into());
            }
            *out = format!("deleted secret {} of {}\n", key.name(), session.label());
        }
        SecretCommand::Orphans(OrphansArgs { remove }) => {
            let store = secrets::open(global, workspace.path()).await?;
            let known: std::collections::HashSet<_> = workspace
                .list()
                .await?
                .into_iter()
                .map(|s| s.session_id)
                .collect();
            // `add` writes the session before its secrets, so an add in
            // progress elsewhere never looks orphaned here.
            for id in store.sessions().await? {
                if known.contains(&id) {
                    continue;
                }
                let names = store.names(id).await?;
                if remove {
                    store.delete_session(id).await?;
                }
                for name in names {
                    let prefix = if remove { "removed " } else { "" };
                    out.push_str(&format!("{prefix}{id}/{name}\n"));
                }
            }
        }
    }
    Ok(())
}

/// The workspace named by `--workspace` / `SESSIONCTL_WORKSPACE` (a file,
/// or a `postgres://` URL), else the default file. A file is not read
/// until the first command touches it; a database is connected to now.
async fn open_workspace(global: &Global) -> Result<Workspace, Failure> {
    Workspace::open(global.workspace.as_deref(), &|name| {
        std::env::var(name).ok()
    })
    .await
}

/// A manager for `list` and `show`: it needs no secret store (it reads
/// none), only the providers, to tell which sessions are live and report
/// one held by no process as `disconnected`.
fn viewer(global: &Global, workspace: Workspace) -> Result<SessionManager, Failure> {
    manager(global, workspace, Arc::new(InMemorySecretStore::new()))
}

/// The manager over `workspace` and `store`, with every provider of this
/// build registered to be built on first use of its session type: a
/// provider whose settings are wrong (say `AWS_REGION`) fails only its own
/// sessions.
#[cfg_attr(not(feature = "aws"), allow(unused_variables))]
fn manager(
    global: &Global,
    workspace: Workspace,
    store: Arc<dyn SecretStore>,
) -> Result<SessionManager, Failure> {
    let workspace_path = workspace.path().to_path_buf();
    let repository: Arc<dyn WorkspaceRepository> = Arc::new(workspace);
    let builder = SessionManager::builder()
        .repository(repository)
        .secrets(store)
        .clock(Arc::new(SystemClock))
        .missing_provider_hint(missing_provider_hint);
    #[cfg(feature = "aws")]
    let builder = aws::register(builder, global, &workspace_path);
    #[cfg(feature = "aws-ssm")]
    let builder = ssm::register(builder);
    #[cfg(feature = "azure")]
    let builder = azure::register(builder);
    #[cfg(feature = "redfish")]
    let builder = redfish::register(builder);
    #[cfg(feature = "boundary")]
    let builder = boundary::register(builder);
    #[cfg(feature = "test-tunnel")]
    let builder = builder.lazy_providers([test_tunnel_type()], || {
        let tunnel = session_testkit::doubles::LoopbackTunnel::bind(test_tunnel_type())
            .map_err(|e| Error::invalid_input("loopbackTunnel", e.to_string()))?;
        Ok(vec![Arc::new(tunnel) as Arc<dyn session_sdk::SessionAction>])
    });
    Ok(builder.build()?)
}

/// The session type of the test double (feature `test-tunnel`).
#[cfg(feature = "test-tunnel")]
fn test_tunnel_type() -> SessionType {
    SessionType::Other("loopbackTunnel".into())
}

/// What to say when a session's type has no provider in this sessionctl.
fn missing_provider_hint(session_type: &SessionType) -> Option<String> {
    let without = |feature: &str| {
        Some(format!(
            "this sessionctl was built without its `{feature}` feature"
        ))
    };
    match session_type {
        t if t.is_aws_credentials() && !cfg!(feature = "aws") => without("aws"),
        SessionType::AwsSsm if !cfg!(feature = "aws-ssm") => without("aws-ssm"),
        SessionType::Azure if !cfg!(feature = "azure") => without("azure"),
        SessionType::Redfish if !cfg!(feature = "redfish") => without("redfish"),
        SessionType::Boundary if !cfg!(feature = "boundary") => without("boundary"),
        // Types no build has yet.
        other => session_sdk::providers::missing_provider_hint(other),
    }
}

/// Writes `text` to standard output. A closed pipe (`sessionctl list | head`)
/// is not an error.
fn print(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::Other(format!(
            "cannot write to standard output: {e}"
        ))),
    }
}
