//! `sessionctl aws console`: a sign-in URL of the AWS Management Console
//! for an AWS session, opened in the browser or printed.

use std::time::Duration;

use clap::Args;
use session_sdk::aws::console::{ConsoleSignIn, CredentialsKind, federated_user_name};
use session_sdk::aws::{AwsClientConfig, AwsCredentials, SessionCredentialsProvider};
use session_sdk::{Error, Secret, SessionType};

use crate::workspace::Workspace;
use crate::{Failure, Global, use_session};

/// `aws console`.
#[derive(Debug, Args)]
pub(crate) struct ConsoleArgs {
    /// The session's id, or its name if unique.
    #[arg(value_name = "ID|NAME")]
    session: String,

    /// Print the URL instead of opening it. It signs anyone who opens it
    /// in (once, within 15 minutes): do not paste it anywhere.
    #[arg(long)]
    print: bool,

    /// How long the console session lasts, in seconds. Role sessions: 900
    /// to 43200 (default 3600; AWS allows at most 3600 for a chained
    /// role). IAM users: the lifetime of the federation token, 900 to
    /// 129600 (default 3600).
    #[arg(long, value_name = "SECONDS")]
    duration: Option<u32>,

    /// The console page to land on (default: the console home of the
    /// session's region).
    #[arg(long, value_name = "URL")]
    destination: Option<String>,

    /// The federation endpoint (default: the one of the region's
    /// partition, e.g. <https://signin.aws.amazon.com/federation>).
    #[arg(long, value_name = "URL")]
    federation_endpoint: Option<String>,
}

/// The default federation token lifetime for IAM users, as for roles.
const DEFAULT_FEDERATION_SECONDS: u32 = 3600;

/// Runs `aws console`.
pub(crate) async fn console(
    global: &Global,
    workspace: Workspace,
    args: ConsoleArgs,
) -> Result<String, Failure> {
    let used = use_session::resolve(
        global,
        workspace,
        &args.session,
        SessionType::is_aws_credentials,
        "an AWS credential session",
    )
    .await?;
    let session = used.session.clone();
    let sts = AwsClientConfig::from_env()?;
    let mut builder = ConsoleSignIn::builder().region(sts.region_for(session.region.as_deref()));
    if let Some(url) = &args.federation_endpoint {
        builder = builder.federation_endpoint(url);
    }
    if let Some(url) = &args.destination {
        builder = builder.destination(url);
    }
    let kind = CredentialsKind::of_session_type(session.session_type.clone());
    if let (Some(seconds), Some(_)) = (args.duration, kind) {
        builder = builder.session_duration(Duration::from_secs(u64::from(seconds)));
    }
    let console = builder.build()?;

    let url = match kind {
        Some(kind) => {
            let creds =
                SessionCredentialsProvider::new(used.manager, session.session_id.to_string())
                    .credentials()
                    .await?;
            console
                .sign_in_url(&creds, kind)
                .await
                .map_err(|e| e.in_session(&session.label()))?
        }
        None if session.session_type == SessionType::AwsIamUser => {
            // GetSessionToken credentials cannot sign in: the long-term key
            // gets a federation token instead.
            let long_term =
                AwsCredentials::load_long_term(used.manager.secrets().as_ref(), session.session_id)
                    .await?
                    .ok_or_else(|| {
                        Error::invalid_input(
                            "access key",
                            format!(
                                "{} has no long-term access key in the secret store",
                                session.label()
                            ),
                        )
                    })?;
            let federated = console
                .federation_token(
                    &sts,
                    &long_term,
                    &federated_user_name(&session.session_name),
                    args.duration.unwrap_or(DEFAULT_FEDERATION_SECONDS),
                )
                .await?;
            console
                .sign_in_url(&federated.credentials, CredentialsKind::FederatedUser)
                .await
                .map_err(|e| e.in_session(&session.label()))?
        }
        None => {
            return Err(Error::invalid_input(
                "session",
                format!(
                    "{} is a {} session, which cannot sign in to the console",
                    session.label(),
                    session.session_type
                ),
            )
            .into());
        }
    };
    if args.print {
        return Ok(format!("{}\n", url.expose()));
    }
    open_in_browser(&url)?;
    Ok(format!(
        "opened the AWS console for {} in the browser\n",
        session.label()
    ))
}

/// Opens `url` with `$BROWSER` (the first of its `:`-separated commands,
/// given the URL as its argument) when set, else the system's handler.
fn open_in_browser(url: &Secret) -> Result<(), Failure> {
    let browser = std::env::var("BROWSER").unwrap_or_default();
    match browser.split(':').find(|b| !b.trim().is_empty()) {
        Some(command) => {
            let status = std::process::Command::new(command.trim())
                .arg(url.expose())
                .status()
                .map_err(|e| Failure::Other(format!("cannot run $BROWSER {command:?}: {e}")))?;
            if !status.success() {
                return Err(Failure::Other(format!(
                    "$BROWSER {command:?} failed ({status}); use --print to get the URL"
                )));
            }
            Ok(())
        }
        // The error of `open` names the program it tried, never the URL.
        None => open::that_detached(url.expose()).map_err(|e| {
            Failure::Other(format!(
                "cannot open a browser ({}); use --print to get the URL",
                e.kind()
            ))
        }),
    }
}
