//! The AWS parts of sessionctl (cargo feature `aws`, on by default): the
//! providers, and `add aws-iam-user` / `add aws-role-chained`.

use std::sync::Arc;

use clap::{Args, Subcommand};
use session_aws::sink::{CredentialSink, SharedCredentialsFile};
use session_aws::{
    AwsClientConfig, AwsCredentials, ChainedRoleConfig, ChainedRoleProvider, CommonAwsConfig,
    IamUserConfig, IamUserProvider, validate,
};
use session_core::{
    Error, FsWorkspace, Secret, SecretStore, Session, SessionAction, SessionType,
    WorkspaceRepository, WorkspaceRepositoryExt,
};

use crate::{Failure, Global, secrets};

/// The AWS providers, configured from the environment: `AWS_ENDPOINT_URL_STS`
/// / `AWS_ENDPOINT_URL` and `AWS_REGION`, and the credentials and config
/// files named by `AWS_SHARED_CREDENTIALS_FILE` / `AWS_CONFIG_FILE`.
pub(crate) fn providers() -> Result<Vec<Arc<dyn SessionAction>>, Failure> {
    let client = AwsClientConfig::from_env()?;
    let sink: Arc<dyn CredentialSink> = Arc::new(SharedCredentialsFile::from_env()?);
    Ok(vec![
        Arc::new(IamUserProvider::new(client.clone(), sink.clone())),
        Arc::new(ChainedRoleProvider::new(client, sink)),
    ])
}

/// The `add` commands for AWS session types.
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
        published_profile: None,
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
    workspace: FsWorkspace,
    command: AddAws,
) -> Result<String, Failure> {
    let session = match command {
        AddAws::AwsIamUser(args) => add_iam_user(global, &workspace, args).await?,
        AddAws::AwsRoleChained(args) => add_chained(&workspace, args).await?,
    };
    Ok(format!("added {}\n", session.label()))
}

async fn add_iam_user(
    global: &Global,
    workspace: &FsWorkspace,
    args: AddIamUser,
) -> Result<Session, Failure> {
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
    let secret = match &args.secret_access_key_env {
        Some(var) => match std::env::var(var) {
            Ok(value) if !value.is_empty() => Secret::new(value),
            _ => {
                return Err(Error::invalid_input(
                    "--secret-access-key-env",
                    format!("the environment variable {var} is unset or empty"),
                )
                .into());
            }
        },
        None => secrets::read_value("secret access key")?,
    };
    // Store the key before the session exists, so a session is never
    // without its key; take it back out if adding the session fails.
    let store: Arc<dyn SecretStore> = secrets::open(global, workspace.path()).await?;
    AwsCredentials::store_long_term(
        store.as_ref(),
        session.session_id,
        &args.access_key_id,
        &secret,
    )
    .await?;
    let id = session.session_id;
    match workspace.insert(session).await {
        Ok(session) => Ok(session),
        Err(error) => {
            let _ = store.delete_session(id).await;
            Err(error.into())
        }
    }
}

async fn add_chained(workspace: &FsWorkspace, args: AddChainedRole) -> Result<Session, Failure> {
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
