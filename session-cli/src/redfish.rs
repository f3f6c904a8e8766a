//! The Redfish parts of sessionctl (cargo feature `redfish`, on by default):
//! the provider and `add redfish`.

use std::sync::Arc;

use clap::Args;
use session_core::{
    Error, FsWorkspace, Secret, SecretKey, SecretStore, Session, SessionAction, SessionType,
    WorkspaceRepository,
};
use session_redfish::client::{PASSWORD_SECRET, RedfishConfig, RedfishProvider};

use crate::{Failure, Global, secrets};

/// The Redfish provider.
pub(crate) fn providers() -> Vec<Arc<dyn SessionAction>> {
    vec![Arc::new(RedfishProvider::new())]
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

    /// Do not verify the service's TLS certificate (logs a warning on use).
    #[arg(long)]
    insecure_skip_verify: bool,

    /// Allow a plain http:// endpoint.
    #[arg(long)]
    allow_insecure_http: bool,

    /// Read the password from this environment variable instead of standard
    /// input (never from a flag).
    #[arg(long, value_name = "VAR")]
    password_env: Option<String>,
}

/// Adds a Redfish session and stores its password; returns what to print.
pub(crate) async fn add(
    global: &Global,
    workspace: FsWorkspace,
    args: AddRedfish,
) -> Result<String, Failure> {
    let mut config = RedfishConfig::new(args.endpoint, args.username)
        .with_insecure_skip_verify(args.insecure_skip_verify)
        .with_allow_insecure_http(args.allow_insecure_http);
    if let Some(path) = &args.ca_file {
        let absolute =
            std::path::absolute(path).map_err(|e| Failure::Usage(format!("--ca-file: {e}")))?;
        config = config.with_ca_certificate_pem(absolute.to_string_lossy().into_owned());
    }
    config.validate()?;
    let session = Session::new(&args.name, SessionType::Redfish)?.with_config(&config)?;
    let password = match &args.password_env {
        Some(var) => match std::env::var(var) {
            Ok(value) if !value.is_empty() => Secret::new(value),
            _ => {
                return Err(Error::invalid_input(
                    "--password-env",
                    format!("the environment variable {var} is unset or empty"),
                )
                .into());
            }
        },
        None => secrets::read_value("password")?,
    };
    // The password first, so the session never exists without it.
    let store: Arc<dyn SecretStore> = secrets::open(global, workspace.path()).await?;
    let id = session.session_id;
    store
        .put(&SecretKey::new(id, PASSWORD_SECRET)?, &password)
        .await?;
    match workspace.insert(session).await {
        Ok(session) => Ok(format!("added {}\n", session.label())),
        Err(error) => {
            let _ = store.delete_session(id).await;
            Err(error.into())
        }
    }
}
