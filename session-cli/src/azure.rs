//! The Azure parts of sessionctl (cargo feature `azure`, on by default): the
//! provider, `add azure`, and `azure env|exec`.

use std::sync::Arc;

use clap::{Args, Subcommand, ValueEnum};
use session_sdk::azure::{
    ACCESS_TOKEN, AZURE_CLI_CLIENT_ID, AzureConfig, AzureProvider, CLIENT_SECRET, CredentialKind,
    REFRESH_TOKEN,
};
use session_sdk::{
    DEFAULT_MIN_TTL, Session, SessionAction, SessionManagerBuilder, SessionType,
    WorkspaceRepository,
};

use crate::workspace::Workspace;
use crate::{Failure, Global, secrets, shell, use_session};

/// `azure exec`: it removes the variables through which the Azure SDKs and
/// az would pick another identity.
const EXEC: shell::Exec = shell::Exec {
    name: "azure exec",
    marker: "SESSIONCTL_AZURE_SESSION",
    cleared: &[
        "AZURE_CLIENT_SECRET",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_CLIENT_CERTIFICATE_PASSWORD",
        "AZURE_FEDERATED_TOKEN_FILE",
        "AZURE_USERNAME",
        "AZURE_PASSWORD",
    ],
};

/// Registers the Azure provider, built on first use of an `azure` session;
/// device sign-ins are shown by the
/// [`TerminalPrompter`](crate::device_prompt::TerminalPrompter).
pub(crate) fn register(builder: SessionManagerBuilder) -> SessionManagerBuilder {
    builder.lazy_providers([SessionType::Azure], || {
        let provider = AzureProvider::builder()
            .device_prompter(Arc::new(crate::device_prompt::TerminalPrompter))
            .build()?;
        Ok(vec![Arc::new(provider) as Arc<dyn SessionAction>])
    })
}

/// How an `azure` session signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Kind {
    /// A service principal's client secret (read from stdin or --secret-env).
    ClientSecret,
    /// A user, with the device code flow at start (no secret needed).
    DeviceCode,
    /// An existing refresh token (read from stdin or --secret-env).
    RefreshToken,
}

/// `add azure`.
#[derive(Debug, Args)]
pub(crate) struct AddAzure {
    /// The new session's name.
    name: String,

    /// The directory: a tenant GUID or domain.
    #[arg(long, value_name = "TENANT")]
    tenant_id: String,

    /// The application (client) id; with --azure-cli, default the Azure
    /// CLI's own (04b07795-8ddb-461a-bbee-02f9e1bf7b46).
    #[arg(long, value_name = "ID", required_unless_present = "azure_cli")]
    client_id: Option<String>,

    /// How the session signs in.
    #[arg(long, value_enum, default_value = "device-code")]
    kind: Kind,

    /// The subscription (exported as AZURE_SUBSCRIPTION_ID).
    #[arg(long, value_name = "ID")]
    subscription_id: Option<String>,

    /// The Azure location, e.g. westeurope (the session's region).
    #[arg(long)]
    region: Option<String>,

    /// The Entra ID authority host (sovereign clouds); default the public
    /// cloud.
    #[arg(long, value_name = "URL")]
    authority_host: Option<String>,

    /// The scope of the session's token; default
    /// `https://management.azure.com/.default` (with --azure-cli,
    /// `https://management.core.windows.net//.default`, the scope `az`
    /// asks for).
    #[arg(long)]
    scope: Option<String>,

    /// Allow an http:// authority host on a loopback address (test servers).
    #[arg(long)]
    insecure_loopback_authority: bool,

    /// Read the client secret or refresh token from this environment
    /// variable instead of standard input (never from a flag).
    #[arg(long, value_name = "VAR")]
    secret_env: Option<String>,

    /// Make the session visible to the Azure CLI: start writes the
    /// subscription into azureProfile.json (as the default) and the access
    /// token into its MSAL token cache ($AZURE_CONFIG_DIR, else ~/.azure),
    /// rotate renews the token there, stop removes both and restores the
    /// previous default. User sign-ins only (device code, refresh token),
    /// with the Azure CLI's client id; needs --subscription-id. The
    /// refresh token is never written there.
    #[arg(long)]
    azure_cli: bool,

    /// The `az cloud` name of the authority, for an authority other than
    /// the public, US Government and China clouds (with --azure-cli).
    #[arg(long, value_name = "NAME", requires = "azure_cli")]
    azure_cli_cloud: Option<String>,
}

/// Adds an Azure session (and its secret); returns what to print.
pub(crate) async fn add(
    global: &Global,
    workspace: Workspace,
    args: AddAzure,
) -> Result<String, Failure> {
    let kind = match args.kind {
        Kind::ClientSecret => CredentialKind::ClientSecret,
        Kind::DeviceCode => CredentialKind::DeviceCode,
        Kind::RefreshToken => CredentialKind::RefreshToken,
    };
    let client_id = args
        .client_id
        .unwrap_or_else(|| AZURE_CLI_CLIENT_ID.to_owned());
    let mut config = AzureConfig::new(args.tenant_id, client_id)
        .with_credential(kind)
        .with_insecure_loopback_authority(args.insecure_loopback_authority)
        .with_azure_cli(args.azure_cli);
    config.subscription_id = args.subscription_id;
    config.authority_host = args.authority_host;
    config.scope = args.scope;
    config.azure_cli_cloud = args.azure_cli_cloud;
    config.validate()?;
    let mut session = Session::new(&args.name, SessionType::Azure)?.with_config(&config)?;
    if let Some(region) = args.region {
        session = session.with_region(region);
    }
    let secret_name = match kind {
        CredentialKind::ClientSecret => Some(CLIENT_SECRET),
        CredentialKind::RefreshToken => Some(REFRESH_TOKEN),
        _ => None,
    };
    let Some(secret_name) = secret_name else {
        let session = workspace.insert(session).await?;
        return Ok(format!("added {}\n", session.label()));
    };
    let secret =
        secrets::from_env_or_stdin("--secret-env", args.secret_env.as_deref(), secret_name)?;
    secrets::add_with_secret(global, &workspace, session, secret_name, &secret).await
}

/// `azure …`: use an Azure session's token.
#[derive(Debug, Subcommand)]
pub(crate) enum AzureCommand {
    /// Print `export` lines for the session, for
    /// `eval "$(sessionctl azure env NAME)"`.
    ///
    /// Starts the session if it is not active and rotates it if it has less
    /// than 5 minutes left. Sets AZURE_TENANT_ID, AZURE_CLIENT_ID,
    /// AZURE_SUBSCRIPTION_ID (if set), AZURE_AUTHORITY_HOST (if set),
    /// AZURE_ACCESS_TOKEN (a bearer token for the session's scope, e.g. for
    /// `curl -H "Authorization: Bearer $AZURE_ACCESS_TOKEN"`),
    /// AZURE_ACCESS_TOKEN_EXPIRES_ON (RFC 3339), and ARM_TENANT_ID,
    /// ARM_CLIENT_ID, ARM_SUBSCRIPTION_ID for Terraform. Never the client
    /// secret or refresh token. Refuses to print to a terminal unless
    /// --to-terminal is given.
    Env(shell::EnvArgs),

    /// Run a command with the variables `azure env` prints.
    ///
    /// Removes the AZURE_* variables that select another identity
    /// (AZURE_CLIENT_SECRET, AZURE_USERNAME, …), sets SESSIONCTL_AZURE_SESSION,
    /// and exits with the command's status. Refuses to run inside another
    /// `azure exec`.
    Exec(shell::ExecArgs),
}

/// Runs an `azure` command; returns what to print.
pub(crate) async fn run(
    global: &Global,
    workspace: Workspace,
    command: AzureCommand,
) -> Result<String, Failure> {
    match command {
        AzureCommand::Env(args) => {
            shell::refuse_terminal(args.to_terminal, "sessionctl azure env NAME")?;
            let (vars, _) = variables(global, workspace, &args.session).await?;
            Ok(shell::exports(&vars))
        }
        AzureCommand::Exec(args) => {
            EXEC.refuse_nesting()?;
            let (vars, name) = variables(global, workspace, &args.session).await?;
            EXEC.run(&args.command, &name, vars)
        }
    }
}

/// The session's variables and name, started or rotated first as needed.
async fn variables(
    global: &Global,
    workspace: Workspace,
    id_or_name: &str,
) -> Result<(Vec<(&'static str, String)>, String), Failure> {
    let mut used = use_session::resolve(
        global,
        workspace,
        id_or_name,
        |t| *t == SessionType::Azure,
        "an azure session",
    )
    .await?;
    used.ensure_active(DEFAULT_MIN_TTL).await?;
    let token = used.secret(ACCESS_TOKEN).await?;
    let session = used.session;
    let config: AzureConfig = session.config.get()?;
    let mut vars = vec![
        ("AZURE_TENANT_ID", config.tenant_id.clone()),
        ("AZURE_CLIENT_ID", config.client_id.clone()),
        ("ARM_TENANT_ID", config.tenant_id.clone()),
        ("ARM_CLIENT_ID", config.client_id.clone()),
    ];
    if let Some(sub) = &config.subscription_id {
        vars.push(("AZURE_SUBSCRIPTION_ID", sub.clone()));
        vars.push(("ARM_SUBSCRIPTION_ID", sub.clone()));
    }
    if let Some(host) = &config.authority_host {
        vars.push(("AZURE_AUTHORITY_HOST", host.clone()));
    }
    vars.push(("AZURE_ACCESS_TOKEN", token.expose().to_owned()));
    if let Some(at) = session.expiration {
        let at = at
            .to_offset(time::UtcOffset::UTC)
            .replace_nanosecond(0)
            .map_err(|e| Failure::Other(e.to_string()))?;
        let text = at
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| Failure::Other(e.to_string()))?;
        vars.push(("AZURE_ACCESS_TOKEN_EXPIRES_ON", text));
    }
    Ok((vars, session.session_name))
}
