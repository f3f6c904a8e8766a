//! AWS Systems Manager sessions: `add aws-ssm` and `ssm sessions`
//! (DescribeSessions).

use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use session_sdk::aws::AwsCredentials;
use session_sdk::aws::ssm::{
    SessionListFilter, SessionListState, SsmClientConfig, SsmConfig, SsmProvider, SsmSessionSummary,
};
use session_sdk::{
    Error, Session, SessionAction, SessionManagerBuilder, SessionType, WorkspaceRepository,
    WorkspaceRepositoryExt,
};
use time::format_description::well_known::Rfc3339;

use crate::workspace::Workspace;
use crate::{Failure, Global, use_session};

/// How long the credentials of `--as` must still be valid.
const MIN_TTL: Duration = Duration::from_secs(60);

/// Registers the `awsSsm` provider, built on first use from the
/// environment (`AWS_ENDPOINT_URL_SSM`, `AWS_REGION`…).
pub(crate) fn register(builder: SessionManagerBuilder) -> SessionManagerBuilder {
    builder.lazy_providers([SessionType::AwsSsm], || {
        Ok(vec![
            Arc::new(SsmProvider::from_env()?) as Arc<dyn SessionAction>
        ])
    })
}

/// `add aws-ssm`.
#[derive(Debug, Args)]
pub(crate) struct AddSsm {
    /// The new session's name.
    name: String,

    /// The managed node: i-… (EC2), mi-… (hybrid) or
    /// ecs:CLUSTER_TASK-ID_CONTAINER-RUNTIME-ID.
    #[arg(long)]
    target: String,

    /// The Session Manager document [default: a shell]; e.g.
    /// AWS-StartPortForwardingSession.
    #[arg(long, value_name = "NAME")]
    document: Option<String>,

    /// A document parameter NAME=VALUE (repeatable; a name given twice
    /// gets both values), e.g. portNumber=5432.
    #[arg(long = "parameter", value_name = "NAME=VALUE", value_parser = parse_parameter)]
    parameters: Vec<(String, String)>,

    /// Why the session is opened (1-256 characters), kept in the session
    /// history.
    #[arg(long)]
    reason: Option<String>,

    /// The AWS session (id or name) whose credentials open it [default:
    /// the SDK's default credential chain].
    #[arg(long, value_name = "ID|NAME")]
    parent: Option<String>,

    /// The region [default: the parent's, else AWS_REGION, else us-east-1].
    #[arg(long)]
    region: Option<String>,

    /// Refuse KMS encryption: if the account's Session Manager preferences
    /// ask for it, connecting fails naming this setting instead of calling
    /// KMS.
    #[arg(long)]
    forbid_kms: bool,

    /// How long a lost connection is resumed (ResumeSession) before the
    /// session counts as disconnected, in seconds [default: 600]; 0 turns
    /// resuming off.
    #[arg(long, value_name = "SECONDS")]
    resume_deadline: Option<u64>,
}

fn parse_parameter(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not NAME=VALUE")),
    }
}

/// Runs `add aws-ssm`; returns what to print.
pub(crate) async fn add(workspace: Workspace, args: AddSsm) -> Result<String, Failure> {
    let mut config = SsmConfig::shell(args.target);
    config.document_name = args.document;
    for (name, value) in args.parameters {
        config.parameters.entry(name).or_default().push(value);
    }
    config.reason = args.reason;
    config.forbid_kms = args.forbid_kms;
    config.resume_deadline_seconds = args.resume_deadline;
    config.validate()?;
    let mut session = Session::new(&args.name, SessionType::AwsSsm)?;
    let mut region = args.region;
    if let Some(parent) = &args.parent {
        let parent = workspace.find(parent).await?;
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
        region = region.or_else(|| parent.region.clone());
        session = session.with_parent(parent.session_id);
    }
    if let Some(region) = region {
        // The same rule as the STS client's.
        session_sdk::aws::AwsClientConfig::builder()
            .region(region.clone())
            .build()?;
        session = session.with_region(region);
    }
    let session = workspace.insert(session.with_config(&config)?).await?;
    Ok(format!("added {}\n", session.label()))
}

/// The `ssm` commands.
#[derive(Debug, Subcommand)]
pub(crate) enum SsmCommand {
    /// List Session Manager sessions (DescribeSessions): those running or
    /// disconnected (active), or the ended ones (history).
    ///
    /// Signed with the credentials of --as (an AWS session of the
    /// workspace, started or rotated first if needed), else with the SDK's
    /// default credential chain. SSM is reached at AWS_ENDPOINT_URL_SSM /
    /// AWS_ENDPOINT_URL if set.
    Sessions(SessionsArgs),
}

/// `ssm sessions`.
#[derive(Debug, Args)]
pub(crate) struct SessionsArgs {
    /// Which sessions.
    #[arg(long, value_enum, default_value = "active")]
    state: StateArg,

    /// Only sessions on this managed node.
    #[arg(long)]
    target: Option<String>,

    /// The AWS session (id or name) whose credentials to use.
    #[arg(long = "as", value_name = "ID|NAME")]
    identity: Option<String>,

    /// The region [default: that of --as, else AWS_REGION, else us-east-1].
    #[arg(long)]
    region: Option<String>,

    /// Print a JSON array (sessionId, target, status, documentName, owner,
    /// reason, startDate, endDate) instead of a table.
    #[arg(long)]
    json: bool,
}

/// `--state`.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum StateArg {
    /// Connected or disconnected sessions.
    Active,
    /// Terminated sessions (kept about 30 days).
    History,
}

/// Runs an `ssm` command; returns what to print.
pub(crate) async fn run(
    global: &Global,
    workspace: Workspace,
    command: SsmCommand,
) -> Result<String, Failure> {
    let SsmCommand::Sessions(args) = command;
    let client = SsmClientConfig::from_env()?;
    let (credentials, identity_region, label) = match &args.identity {
        Some(name) => {
            let mut in_use = use_session::resolve(
                global,
                workspace,
                name,
                SessionType::is_aws_credentials,
                "an AWS credential session",
            )
            .await?;
            in_use.ensure_active(MIN_TTL).await?;
            let credentials = AwsCredentials::load_issued(
                in_use.manager.secrets().as_ref(),
                in_use.session.session_id,
            )
            .await?
            .ok_or_else(|| Error::Unauthenticated {
                target: in_use.session.label(),
                message: "no issued credentials; start it".into(),
            })?;
            (
                Some(credentials),
                in_use.session.region.clone(),
                in_use.session.label(),
            )
        }
        None => (None, None, "the default credential chain".to_owned()),
    };
    let region = client.region_for(args.region.as_deref().or(identity_region.as_deref()));
    let api = client.api(&region, credentials.as_ref(), &label).await;
    let filters: Vec<SessionListFilter> = args
        .target
        .iter()
        .map(|t| SessionListFilter::Target(t.clone()))
        .collect();
    let state = match args.state {
        StateArg::Active => SessionListState::Active,
        StateArg::History => SessionListState::History,
    };
    let sessions = api.describe_sessions(state, &filters, None).await?;
    if args.json {
        let mut text = serde_json::to_string_pretty(&sessions)
            .map_err(|e| Failure::Other(format!("cannot write JSON: {e}")))?;
        text.push('\n');
        return Ok(text);
    }
    Ok(table(&sessions))
}

/// The sessions as a table: SESSION, TARGET, STATUS, STARTED, DOCUMENT.
fn table(sessions: &[SsmSessionSummary]) -> String {
    let rows: Vec<Vec<String>> = sessions
        .iter()
        .map(|s| {
            vec![
                s.session_id.clone(),
                s.target.clone().unwrap_or_else(|| "-".into()),
                s.status.clone().unwrap_or_else(|| "-".into()),
                s.start_date
                    .and_then(|d| d.format(&Rfc3339).ok())
                    .unwrap_or_else(|| "-".into()),
                s.document_name.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    crate::output::columns(
        &["SESSION", "TARGET", "STATUS", "STARTED", "DOCUMENT"],
        &rows,
        "no sessions",
    )
}
