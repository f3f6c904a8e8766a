//! The AWS parts of sessionctl (cargo feature `aws`, on by default): the
//! providers, `add aws-*`, and `aws env` / `exec` / `credential-process`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use session_sdk::aws::federated::AssertionSourceConfig;
use session_sdk::aws::mfa::{
    ChainMfaPrompt, CommandMfaPrompt, MfaPrompt, SharedMfaPrompt, TerminalMfaPrompt,
};
use session_sdk::aws::sink::{CredentialSink, NoSink, SharedCredentialsFile};
use session_sdk::aws::sso::{
    SsoClientConfig, SsoIntegration, SsoLogin, SsoLoginKey, SsoTokenCache,
};
use session_sdk::aws::{
    AwsClientConfig, AwsCredentials, ChainedRoleConfig, CommonAwsConfig, CredentialProviders,
    FederatedRoleConfig, IamUserConfig, SessionCredentialsProvider, SsoRoleConfig, secret_names,
    validate,
};
use session_sdk::{
    Error, Secret, Session, SessionAction, SessionManagerBuilder, SessionType, WorkspaceRepository,
    WorkspaceRepositoryExt,
};

use crate::workspace::Workspace;
use crate::{Failure, Global, secrets, shell, use_session};

/// A shell command line that prints an MFA code (like aws-vault's
/// `mfa_process`); tried before the terminal prompt.
const MFA_COMMAND_ENV: &str = "SESSIONCTL_MFA_COMMAND";

/// What `credential-process` keeps valid: botocore refreshes on every call
/// once less than 15 minutes are left, so serve at least that much.
const CREDENTIAL_PROCESS_MIN_TTL: Duration = Duration::from_secs(15 * 60);

/// `aws exec`: it removes, as aws-vault does, anything that could make the
/// child use other credentials.
pub(crate) const EXEC: shell::Exec = shell::Exec {
    name: "aws exec",
    marker: "SESSIONCTL_AWS_SESSION",
    cleared: &[
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_CREDENTIAL_FILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_PROFILE",
        "AWS_SDK_LOAD_CONFIG",
    ],
};

/// `--aws-sink`: where started AWS sessions publish their credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SinkChoice {
    /// Keys in a profile of the shared credentials file; region in the
    /// config file.
    CredentialsFile,
    /// A config-file profile whose `credential_process` runs this sessionctl
    /// (`aws credential-process`); no keys in any file.
    CredentialProcess,
    /// Nowhere; use `aws env` or `aws exec`.
    None,
}

/// Registers the AWS providers, built on first use of an AWS session type
/// (see [`providers`]).
pub(crate) fn register(
    builder: SessionManagerBuilder,
    global: &Global,
    workspace: &Path,
) -> SessionManagerBuilder {
    let sink = global.aws_sink;
    // Worked out now (it needs the flags), reported only when an AWS
    // provider is built.
    let command = match sink {
        SinkChoice::CredentialProcess => {
            Some(credential_process_command(global, workspace).map_err(Failure::into_error))
        }
        _ => None,
    };
    builder.lazy_providers(CredentialProviders::SESSION_TYPES, move || {
        providers(sink, command.clone())
    })
}

/// The AWS providers, configured from the environment: `AWS_ENDPOINT_URL_STS`
/// / `AWS_ENDPOINT_URL` and `AWS_REGION`, and the credentials and config
/// files named by `AWS_SHARED_CREDENTIALS_FILE` / `AWS_CONFIG_FILE`.
fn providers(
    sink: SinkChoice,
    credential_process: Option<session_sdk::Result<String>>,
) -> session_sdk::Result<Vec<Arc<dyn SessionAction>>> {
    let client = AwsClientConfig::from_env()?;
    let sink: Arc<dyn CredentialSink> = match (sink, credential_process) {
        (SinkChoice::CredentialProcess, Some(command)) => {
            Arc::new(SharedCredentialsFile::from_env()?.with_credential_process(command?))
        }
        (SinkChoice::None, _) => Arc::new(NoSink),
        _ => Arc::new(SharedCredentialsFile::from_env()?),
    };
    // One MFA prompt per device for the whole process: the command of
    // SESSIONCTL_MFA_COMMAND if set, else the terminal (which fails at once
    // when there is none, e.g. under credential_process).
    let mut prompts: Vec<Arc<dyn MfaPrompt>> = Vec::new();
    if let Ok(line) = std::env::var(MFA_COMMAND_ENV)
        && !line.trim().is_empty()
    {
        prompts.push(Arc::new(CommandMfaPrompt::shell(line)));
    }
    prompts.push(Arc::new(TerminalMfaPrompt::new()));
    let chain = ChainMfaPrompt::new(prompts).with_hint(format!(
        "set {MFA_COMMAND_ENV} to a command that prints the code, or run sessionctl in a terminal"
    ));
    let mfa: Arc<dyn MfaPrompt> = Arc::new(SharedMfaPrompt::new(Arc::new(chain)));
    Ok(CredentialProviders {
        client,
        sso: SsoClientConfig::from_env()?,
        sink,
        mfa: Some(mfa),
        device_prompter: Arc::new(crate::device_prompt::TerminalPrompter),
        home: home_dir()?,
    }
    .build())
}

/// The user's home folder (the SSO token cache lives under it).
fn home_dir() -> session_sdk::Result<std::path::PathBuf> {
    directories::BaseDirs::new()
        .map(|dirs| dirs.home_dir().to_path_buf())
        .ok_or_else(|| Error::invalid_input("HOME", "cannot determine the home folder"))
}

/// The `add` commands for AWS session types.
// The variant names are the subcommand names (`add aws-iam-user`, …).
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Subcommand)]
pub(crate) enum AddAws {
    /// Add an IAM user session: a long-term access key from which start
    /// gets temporary credentials (sts:GetSessionToken).
    ///
    /// The secret access key is read from standard input (one trailing
    /// newline removed; asked without echo on a terminal), or from the
    /// environment variable named by --secret-access-key-env. It is never
    /// taken from a flag.
    AwsIamUser(AddIamUser),

    /// Add a chained role session: a role assumed (sts:AssumeRole) with the
    /// credentials of a parent AWS session, which start starts first.
    AwsRoleChained(AddChainedRole),

    /// Add a SAML-federated role session (sts:AssumeRoleWithSAML).
    ///
    /// The SAML assertion (the base64 SAMLResponse, or its XML) comes from a
    /// file or from a command that prints it, e.g. a helper that signs in to
    /// the identity provider. start and rotate read it anew.
    AwsRoleFederated(AddFederatedRole),

    /// Add an IAM Identity Center (SSO) role session.
    ///
    /// start signs in with the device flow when there is no valid login
    /// (the code and URL are shown on standard error), sharing the login
    /// with the AWS CLI through ~/.aws/sso/cache, then gets the role's
    /// credentials (sso:GetRoleCredentials).
    AwsSsoRole(AddSsoRole),
}

/// `add aws-role-federated`.
#[derive(Debug, Args)]
pub(crate) struct AddFederatedRole {
    /// The new session's name.
    name: String,

    /// The role to assume (arn:aws:iam::ACCOUNT:role/NAME).
    #[arg(long, value_name = "ARN")]
    role_arn: String,

    /// The SAML provider (arn:aws:iam::ACCOUNT:saml-provider/NAME).
    #[arg(long, value_name = "ARN")]
    principal_arn: String,

    /// Lifetime, 900-43200 s [default: the assertion's SessionDuration, else 3600].
    #[arg(long, value_name = "SECONDS")]
    duration_seconds: Option<u32>,

    /// Read the assertion from this file.
    #[arg(long, value_name = "PATH", conflicts_with = "assertion_command")]
    assertion_file: Option<std::path::PathBuf>,

    /// Run this program (no shell) and read the assertion from its output.
    #[arg(
        long,
        value_name = "PROGRAM",
        required_unless_present = "assertion_file"
    )]
    assertion_command: Option<String>,

    /// An argument of --assertion-command (repeatable).
    #[arg(
        long = "assertion-arg",
        value_name = "ARG",
        requires = "assertion_command",
        allow_hyphen_values = true
    )]
    assertion_args: Vec<String>,

    #[command(flatten)]
    common: AwsCommon,
}

/// `add aws-sso-role`.
#[derive(Debug, Args)]
pub(crate) struct AddSsoRole {
    /// The new session's name.
    name: String,

    /// The AWS access portal URL (https://d-….awsapps.com/start).
    #[arg(long, value_name = "URL")]
    start_url: String,

    /// The region of IAM Identity Center.
    #[arg(long, value_name = "REGION")]
    sso_region: String,

    /// The account (12 digits).
    #[arg(long, value_name = "ID")]
    account_id: String,

    /// The permission set's role name.
    #[arg(long, value_name = "NAME")]
    role_name: String,

    /// The sso-session name shared with AWS CLI profiles (recommended).
    #[arg(long, value_name = "NAME")]
    sso_session: Option<String>,

    #[command(flatten)]
    common: AwsCommon,
}

/// Settings every AWS session has.
#[derive(Debug, Args)]
struct AwsCommon {
    /// The AWS region (also written to the config file's profile).
    #[arg(long)]
    region: Option<String>,

    /// The profile to publish the credentials to [default: the session name].
    #[arg(long)]
    profile: Option<String>,
}

/// `add aws-iam-user`.
#[derive(Debug, Args)]
pub(crate) struct AddIamUser {
    /// The new session's name.
    name: String,

    /// The access key id (AKIA…).
    #[arg(long, value_name = "AKIA…")]
    access_key_id: String,

    /// Read the secret access key from this environment variable instead of
    /// standard input.
    #[arg(long, value_name = "VAR")]
    secret_access_key_env: Option<String>,

    /// The MFA device (serial or arn:aws:iam::ACCOUNT:mfa/NAME).
    #[arg(long)]
    mfa_serial: Option<String>,

    /// Lifetime of the temporary credentials, 900-129600 s [default: 12 h].
    #[arg(long, value_name = "SECONDS")]
    duration_seconds: Option<u32>,

    #[command(flatten)]
    common: AwsCommon,
}

/// `add aws-role-chained`.
#[derive(Debug, Args)]
pub(crate) struct AddChainedRole {
    /// The new session's name.
    name: String,

    /// The parent session (id or name): any AWS credential session.
    #[arg(long, value_name = "ID|NAME")]
    parent: String,

    /// The role to assume (arn:aws:iam::ACCOUNT:role/NAME).
    #[arg(long, value_name = "ARN")]
    role_arn: String,

    /// The RoleSessionName [default: the session name, made valid].
    #[arg(long)]
    role_session_name: Option<String>,

    /// The external id the role's trust policy requires.
    #[arg(long)]
    external_id: Option<String>,

    /// An MFA device to pass to AssumeRole.
    #[arg(long)]
    mfa_serial: Option<String>,

    /// Lifetime, 900-3600 s (chaining caps it at 1 h) [default: 3600].
    #[arg(long, value_name = "SECONDS")]
    duration_seconds: Option<u32>,

    /// A session tag KEY=VALUE (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    tags: Vec<(String, String)>,

    /// A tag key that passes on to roles assumed from this one (repeatable).
    #[arg(long = "transitive-tag-key", value_name = "KEY")]
    transitive_tag_keys: Vec<String>,

    /// The SourceIdentity to set.
    #[arg(long)]
    source_identity: Option<String>,

    #[command(flatten)]
    common: AwsCommon,
}

fn parse_tag(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

fn common_config(common: &AwsCommon) -> Result<CommonAwsConfig, Failure> {
    if let Some(profile) = &common.profile {
        validate::profile_name(profile)?;
    }
    Ok(CommonAwsConfig {
        profile: common.profile.clone(),
    })
}

fn new_session(
    name: &str,
    session_type: SessionType,
    common: &AwsCommon,
) -> Result<Session, Failure> {
    let mut session = Session::new(name, session_type)?;
    if let Some(region) = &common.region {
        // The same rule the STS client applies.
        AwsClientConfig::builder().region(region.clone()).build()?;
        session = session.with_region(region.clone());
    }
    Ok(session.with_config(&common_config(common)?)?)
}

/// Runs an `add` command; returns what to print.
pub(crate) async fn add(
    global: &Global,
    workspace: Workspace,
    command: AddAws,
) -> Result<String, Failure> {
    let session = match command {
        AddAws::AwsIamUser(args) => return add_iam_user(global, &workspace, args).await,
        AddAws::AwsRoleChained(args) => add_chained(&workspace, args).await?,
        AddAws::AwsRoleFederated(args) => add_federated(&workspace, args).await?,
        AddAws::AwsSsoRole(args) => add_sso(&workspace, args).await?,
    };
    Ok(format!("added {}\n", session.label()))
}

async fn add_iam_user(
    global: &Global,
    workspace: &Workspace,
    args: AddIamUser,
) -> Result<String, Failure> {
    validate::access_key_id(&args.access_key_id)?;
    let mut config = IamUserConfig::default();
    if let Some(serial) = args.mfa_serial {
        config = config.with_mfa_serial(serial);
    }
    if let Some(seconds) = args.duration_seconds {
        config = config.with_duration_seconds(seconds);
    }
    config.validate()?;
    let session =
        new_session(&args.name, SessionType::AwsIamUser, &args.common)?.with_config(&config)?;
    let secret = secrets::from_env_or_stdin(
        "--secret-access-key-env",
        args.secret_access_key_env.as_deref(),
        "secret access key",
    )?;
    let access_key_id = Secret::new(args.access_key_id);
    secrets::add_with_secrets(
        global,
        workspace,
        session,
        &[
            (secret_names::LONG_TERM_SECRET_ACCESS_KEY, &secret),
            (secret_names::LONG_TERM_ACCESS_KEY_ID, &access_key_id),
        ],
    )
    .await
}

async fn add_federated(workspace: &Workspace, args: AddFederatedRole) -> Result<Session, Failure> {
    let source = match (&args.assertion_file, &args.assertion_command) {
        (Some(path), _) => AssertionSourceConfig::file(
            std::path::absolute(path)
                .map_err(|e| Failure::Usage(format!("--assertion-file: {e}")))?,
        ),
        (None, Some(program)) => {
            AssertionSourceConfig::command(program.clone(), args.assertion_args.clone())
        }
        (None, None) => {
            return Err(Failure::Usage(
                "give --assertion-file or --assertion-command".into(),
            ));
        }
    };
    let mut config =
        FederatedRoleConfig::new(args.role_arn, args.principal_arn).with_assertion_source(source);
    if let Some(seconds) = args.duration_seconds {
        config = config.with_duration_seconds(seconds);
    }
    config.validate()?;
    let session = new_session(&args.name, SessionType::AwsIamRoleFederated, &args.common)?
        .with_config(&config)?;
    Ok(workspace.insert(session).await?)
}

async fn add_sso(workspace: &Workspace, args: AddSsoRole) -> Result<Session, Failure> {
    let mut config = SsoRoleConfig::new(
        args.start_url,
        args.sso_region,
        args.account_id,
        args.role_name,
    );
    if let Some(name) = args.sso_session {
        config = config.with_session_name(name);
    }
    config.validate()?;
    let session =
        new_session(&args.name, SessionType::AwsSsoRole, &args.common)?.with_config(&config)?;
    Ok(workspace.insert(session).await?)
}

async fn add_chained(workspace: &Workspace, args: AddChainedRole) -> Result<Session, Failure> {
    let parent = workspace.find(&args.parent).await?;
    if !parent.session_type.is_aws_credentials() {
        return Err(Error::invalid_input(
            "--parent",
            format!(
                "{} is a {} session, not AWS credentials",
                parent.label(),
                parent.session_type
            ),
        )
        .into());
    }
    let mut config = ChainedRoleConfig::new(args.role_arn);
    config.role_session_name = args.role_session_name;
    config.external_id = args.external_id;
    config.mfa_serial = args.mfa_serial;
    config.duration_seconds = args.duration_seconds;
    config.tags = args.tags.into_iter().collect();
    config.transitive_tag_keys = args.transitive_tag_keys;
    config.source_identity = args.source_identity;
    config.validate()?;
    let session = new_session(&args.name, SessionType::AwsIamRoleChained, &args.common)?
        .with_parent(parent.session_id)
        .with_config(&config)?;
    Ok(workspace.insert(session).await?)
}

/// The `credential_process` line for this sessionctl, workspace and secret
/// store; the sink appends the session id. Absolute paths in double quotes:
/// botocore splits the line like a shell and runs it without one, the Rust
/// SDK runs it with `sh -c`, and both accept this form.
fn credential_process_command(global: &Global, workspace: &Path) -> Result<String, Failure> {
    let quote = |path: &Path| -> Result<String, Failure> {
        let absolute = std::path::absolute(path)
            .map_err(|e| Failure::Other(format!("cannot make {} absolute: {e}", path.display())))?;
        let text = absolute
            .to_str()
            .ok_or_else(|| Failure::Usage(format!("{} is not valid UTF-8", absolute.display())))?;
        if text.contains(['"', '\\', '$', '`', '\n']) {
            return Err(Failure::Usage(format!(
                "{text:?} contains characters a credential_process line cannot quote portably"
            )));
        }
        Ok(format!("\"{text}\""))
    };
    let exe = std::env::current_exe()
        .map_err(|e| Failure::Other(format!("cannot find the sessionctl executable: {e}")))?;
    let mut command = format!("{} --workspace {}", quote(&exe)?, quote(workspace)?);
    match global.secret_store {
        secrets::StoreKind::File => {
            command.push_str(" --secret-store file --secrets-file ");
            command.push_str(&quote(&secrets::secrets_file(global, workspace))?);
        }
        secrets::StoreKind::Keyring => command.push_str(" --secret-store keyring"),
    }
    command.push_str(" --aws-sink credential-process aws credential-process");
    Ok(command)
}

/// `sessionctl aws …`.
#[derive(Debug, Subcommand)]
pub(crate) enum AwsCommand {
    /// Print `export` lines for the session's credentials, for
    /// `eval "$(sessionctl aws env NAME)"`.
    ///
    /// Starts the session if it is not active and rotates it if it has less
    /// than 5 minutes left. Refuses to print to a terminal (the keys would
    /// stay in its scrollback) unless --to-terminal is given. Sets
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
    /// AWS_CREDENTIAL_EXPIRATION and, if the session has a region, AWS_REGION
    /// and AWS_DEFAULT_REGION. These never refresh: prefer `aws exec` or a
    /// profile for long-running programs.
    Env(shell::EnvArgs),

    /// Run a command with the session's credentials in its environment.
    ///
    /// Removes the AWS_* variables that could select other credentials
    /// (AWS_PROFILE, AWS_DEFAULT_PROFILE, AWS_SECURITY_TOKEN, …), sets the
    /// ones `aws env` prints plus SESSIONCTL_AWS_SESSION, and exits with the
    /// command's status. Refuses to run inside another `aws exec`.
    Exec(shell::ExecArgs),

    /// Print the session's credentials as credential_process JSON (Version
    /// 1) for an AWS SDK; what a `--aws-sink credential-process` profile runs.
    ///
    /// Serves the stored credentials while they have more than 15 minutes
    /// left, else rotates (or starts) the session first, holding a lock so
    /// concurrent callers cause one STS call. Never prompts: errors are one
    /// line on standard error. With the encrypted secrets file, the calling
    /// program's environment must carry SESSIONCTL_PASSPHRASE.
    CredentialProcess(SessionArg),

    /// Add an `awsSsoRole` session for every account and role an IAM
    /// Identity Center login can use, skipping pairs that already have one.
    ///
    /// Signs in with the device flow if needed (shared with the AWS CLI),
    /// then lists accounts and roles at most 5 calls a second, backing off
    /// when throttled. New sessions are named `<account name>/<role>`.
    SsoSync(SsoSyncArgs),

    /// Replace an awsIamUser session's long-term access key with a new one.
    ///
    /// Checks IAM's two-key limit first (a user who already has two keys is
    /// told which one to delete, and nothing changes), creates the new key,
    /// keeps it in the secret store at once, proves it works with
    /// GetCallerIdentity (retrying for up to 30 s: IAM is eventually
    /// consistent), stores it in place of the old one, then deletes the old
    /// key (or, with --deactivate, makes it inactive). Any failure before
    /// the new key is stored deletes it again and leaves the old key in
    /// place; a run that died half-way is finished by the next. An active
    /// session is rotated afterwards, so its credentials come from the new
    /// key. IAM calls are signed with the stored key, or, when the session
    /// has an MFA device, with its MFA-backed session credentials. Honours
    /// AWS_ENDPOINT_URL_IAM / AWS_ENDPOINT_URL.
    RotateKey(RotateKeyArgs),

    /// Serve the session's credentials on 127.0.0.1, for programs that run
    /// longer than the credentials last: their AWS SDK asks the endpoint
    /// again before expiry and gets fresh ones.
    ///
    /// --ecs (the default) is the container credentials endpoint: the
    /// command gets AWS_CONTAINER_CREDENTIALS_FULL_URI and a random
    /// AWS_CONTAINER_AUTHORIZATION_TOKEN, and requests without that token
    /// are refused. --imds is an IMDSv2-compatible endpoint
    /// (AWS_EC2_METADATA_SERVICE_ENDPOINT) for tools that only read
    /// instance metadata; it has no secret of its own, so any local process
    /// may read it while it runs (prefer --ecs). Requests from other hosts,
    /// or naming another Host (DNS rebinding), are refused. The session is
    /// started or rotated as needed, so that what is served has at least
    /// --refresh-before seconds left. Runs COMMAND and stops with it, or
    /// with --env-file serves until interrupted.
    Serve(crate::aws_serve::ServeArgs),

    /// Sign in to the AWS Management Console with the session: opens the
    /// federation sign-in URL in the browser ($BROWSER, else the system's),
    /// or prints it with --print.
    ///
    /// Role sessions (chained, federated, SSO) sign in with their
    /// credentials; an IAM user's long-term key first gets a federation
    /// token (sts:GetFederationToken, with the user's own permissions).
    Console(crate::aws_console::ConsoleArgs),
}

/// `aws rotate-key`.
#[derive(Debug, Args)]
pub(crate) struct RotateKeyArgs {
    /// The awsIamUser session's id, or its name if unique.
    #[arg(value_name = "ID|NAME")]
    session: String,

    /// Make the old key inactive instead of deleting it (delete it later:
    /// IAM allows two keys, so the next rotation needs it gone).
    #[arg(long)]
    deactivate: bool,
}

/// `aws sso-sync`.
#[derive(Debug, Args)]
pub(crate) struct SsoSyncArgs {
    /// The AWS access portal URL.
    #[arg(long, value_name = "URL")]
    start_url: String,

    /// The region of IAM Identity Center.
    #[arg(long, value_name = "REGION")]
    sso_region: String,

    /// The sso-session name shared with AWS CLI profiles.
    #[arg(long, value_name = "NAME")]
    sso_session: Option<String>,

    /// The region of the new sessions.
    #[arg(long)]
    region: Option<String>,

    /// List what would be added without adding it.
    #[arg(long)]
    dry_run: bool,
}

/// One AWS session.
#[derive(Debug, Args)]
pub(crate) struct SessionArg {
    /// The session's id, or its name if unique.
    #[arg(value_name = "ID|NAME")]
    session: String,
}

/// Runs an `aws` command; returns what to print.
pub(crate) async fn run(
    global: &Global,
    workspace: Workspace,
    command: AwsCommand,
) -> Result<String, Failure> {
    match command {
        AwsCommand::Env(args) => {
            shell::refuse_terminal(args.to_terminal, "sessionctl aws env NAME")?;
            let (session, creds) = credentials(global, workspace, &args.session, None).await?;
            Ok(shell::exports(&variables(&session, &creds)?))
        }
        AwsCommand::Exec(args) => {
            EXEC.refuse_nesting()?;
            let (session, creds) = credentials(global, workspace, &args.session, None).await?;
            EXEC.run(
                &args.command,
                &session.session_name,
                variables(&session, &creds)?,
            )
        }
        AwsCommand::SsoSync(args) => sso_sync(workspace, args).await,
        AwsCommand::RotateKey(args) => rotate_key(global, workspace, args).await,
        AwsCommand::Serve(args) => crate::aws_serve::serve(global, workspace, args).await,
        AwsCommand::Console(args) => crate::aws_console::console(global, workspace, args).await,
        AwsCommand::CredentialProcess(SessionArg { session }) => {
            let lock_dir = workspace.path().with_file_name(".sessionctl-locks");
            let (_, creds) =
                credentials(global, workspace, &session, Some(lock_dir.as_path())).await?;
            credential_process_json(&creds)
        }
    }
}

/// The session's credentials, started or rotated as needed. With
/// `lock_dir`, holds a per-session lock there so concurrent processes make
/// one STS call (the later ones find fresh credentials after the lock).
async fn credentials(
    global: &Global,
    workspace: Workspace,
    id_or_name: &str,
    lock_dir: Option<&Path>,
) -> Result<(Session, AwsCredentials), Failure> {
    let used = use_session::resolve(
        global,
        workspace,
        id_or_name,
        SessionType::is_aws_credentials,
        "an AWS credential session",
    )
    .await?;
    let session = used.session;
    let provider = SessionCredentialsProvider::new(used.manager, session.session_id.to_string());
    let _lock = match lock_dir {
        Some(dir) => {
            let path = dir.join(format!("{}.lock", session.session_id));
            Some(
                tokio::task::spawn_blocking(move || {
                    session_sdk::private_file::lock_exclusive(&path, Duration::from_secs(120))
                })
                .await
                .map_err(|e| Failure::Other(format!("lock task failed: {e}")))?
                .map_err(|e| {
                    Failure::Other(format!(
                        "cannot take the credential_process lock of {}: {e:?}",
                        session.label()
                    ))
                })?,
            )
        }
        None => None,
    };
    let provider = match lock_dir {
        Some(_) => provider.with_min_ttl(CREDENTIAL_PROCESS_MIN_TTL),
        None => provider,
    };
    let creds = provider.credentials().await?;
    Ok((session, creds))
}

/// The variables that hand `creds` to AWS tools.
fn variables(
    session: &Session,
    creds: &AwsCredentials,
) -> Result<Vec<(&'static str, String)>, Failure> {
    let mut vars = vec![
        ("AWS_ACCESS_KEY_ID", creds.access_key_id.clone()),
        (
            "AWS_SECRET_ACCESS_KEY",
            creds.secret_access_key.expose().to_owned(),
        ),
    ];
    if let Some(token) = &creds.session_token {
        vars.push(("AWS_SESSION_TOKEN", token.expose().to_owned()));
    }
    if let Some(at) = creds.expiration {
        vars.push(("AWS_CREDENTIAL_EXPIRATION", rfc3339_seconds(at)?));
    }
    if let Some(region) = &session.region {
        vars.push(("AWS_REGION", region.clone()));
        vars.push(("AWS_DEFAULT_REGION", region.clone()));
    }
    Ok(vars)
}

/// `YYYY-MM-DDTHH:MM:SSZ`, the form every SDK parses.
fn rfc3339_seconds(at: time::OffsetDateTime) -> Result<String, Failure> {
    let at = at
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .map_err(|e| Failure::Other(e.to_string()))?;
    at.format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| Failure::Other(e.to_string()))
}

/// The Version 1 JSON of a credential_process.
fn credential_process_json(creds: &AwsCredentials) -> Result<String, Failure> {
    let mut object = serde_json::Map::new();
    object.insert("Version".into(), 1.into());
    object.insert("AccessKeyId".into(), creds.access_key_id.clone().into());
    object.insert(
        "SecretAccessKey".into(),
        creds.secret_access_key.expose().into(),
    );
    if let Some(token) = &creds.session_token {
        object.insert("SessionToken".into(), token.expose().into());
    }
    if let Some(at) = creds.expiration {
        object.insert("Expiration".into(), rfc3339_seconds(at)?.into());
    }
    let mut text = serde_json::to_string(&object).map_err(|e| Failure::Other(e.to_string()))?;
    text.push('\n');
    Ok(text)
}

/// `aws sso-sync`: adds a session per (account, role) not yet in the workspace.
async fn sso_sync(workspace: Workspace, args: SsoSyncArgs) -> Result<String, Failure> {
    let mut key = SsoLoginKey::new(&args.start_url, &args.sso_region);
    if let Some(name) = &args.sso_session {
        key = key.with_session_name(name);
    }
    let home = home_dir()?;
    let login = Arc::new(SsoLogin::new(
        SsoClientConfig::from_env()?,
        SsoTokenCache::for_home(home),
        Arc::new(crate::device_prompt::TerminalPrompter),
    ));
    let assignments = SsoIntegration::new(login, key.clone())
        .sync(&session_sdk::SystemClock)
        .await?;
    let existing: Vec<(String, String, String)> = workspace
        .list()
        .await?
        .into_iter()
        .filter(|s| s.session_type == SessionType::AwsSsoRole)
        .filter_map(|s| {
            let config: SsoRoleConfig = s.config.get().ok()?;
            Some((config.start_url, config.account_id, config.role_name))
        })
        .collect();
    let mut out = String::new();
    let (mut added, mut kept) = (0, 0);
    for assignment in assignments {
        let config = assignment.session_config(&key);
        let pair = (
            config.start_url.clone(),
            config.account_id.clone(),
            config.role_name.clone(),
        );
        if existing.contains(&pair) {
            kept += 1;
            continue;
        }
        let name = assignment.suggested_session_name();
        if args.dry_run {
            out.push_str(&format!("would add {name}\n"));
            added += 1;
            continue;
        }
        let mut session = Session::new(&name, SessionType::AwsSsoRole)?;
        if let Some(region) = &args.region {
            session = session.with_region(region.clone());
        }
        let session = workspace.insert(session.with_config(&config)?).await?;
        out.push_str(&format!("added {}\n", session.label()));
        added += 1;
    }
    out.push_str(&format!(
        "{added} {}, {kept} already present\n",
        if args.dry_run { "to add" } else { "added" }
    ));
    Ok(out)
}

/// `aws rotate-key`: see [`AwsCommand::RotateKey`].
async fn rotate_key(
    global: &Global,
    workspace: Workspace,
    args: RotateKeyArgs,
) -> Result<String, Failure> {
    use session_sdk::aws::access_keys::{AccessKeyRotation, OldKey, OldKeyOutcome};

    let used = use_session::resolve(
        global,
        workspace,
        &args.session,
        |t| *t == SessionType::AwsIamUser,
        "an awsIamUser session",
    )
    .await?;
    let session = used.session;
    let config: IamUserConfig = session.config.get()?;
    // A user whose policy requires MFA can only call IAM with MFA-backed
    // session credentials (GetSessionToken with the device's code).
    let signer = match config.mfa_serial {
        Some(_) => Some(
            SessionCredentialsProvider::new(used.manager.clone(), session.session_id.to_string())
                .credentials()
                .await?,
        ),
        None => None,
    };
    let rotation = AccessKeyRotation::builder_from_env_iter(std::env::vars())?
        .old_key(if args.deactivate {
            OldKey::Deactivate
        } else {
            OldKey::Delete
        })
        .build()?;
    let report = rotation
        .rotate(used.manager.secrets().as_ref(), &session, signer.as_ref())
        .await?;
    let mut out = format!(
        "{} the access key of {}: {} replaced by {}\n",
        if report.resumed_pending {
            "finished an interrupted rotation of"
        } else {
            "rotated"
        },
        session.label(),
        report.old_access_key_id,
        report.new_access_key_id
    );
    match &report.old_key {
        OldKeyOutcome::Deleted => {
            out.push_str(&format!("deleted {}\n", report.old_access_key_id));
        }
        OldKeyOutcome::Deactivated => out.push_str(&format!(
            "made {} inactive; delete it with: aws iam delete-access-key --access-key-id {}\n",
            report.old_access_key_id, report.old_access_key_id
        )),
        OldKeyOutcome::StillActive { reason } => {
            // The new key is stored and works: not a failure, but the user
            // must know that the old one still opens the account.
            eprintln!(
                "warning: the old key {} is still active ({reason}); delete it with: \
                 aws iam delete-access-key --access-key-id {}",
                report.old_access_key_id, report.old_access_key_id
            );
        }
        other => out.push_str(&format!(
            "old key {}: {other:?}\n",
            report.old_access_key_id
        )),
    }
    // Credentials issued from the old key may stop working with it: an
    // active session gets new ones from the new key now.
    let current = used.manager.find(&session.session_id.to_string()).await?;
    if current.status() == session_sdk::SessionStatus::Active {
        used.manager.rotate(&session.session_id.to_string()).await?;
        out.push_str(&format!("rotated {} onto the new key\n", session.label()));
    }
    Ok(out)
}
