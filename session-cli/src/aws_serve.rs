//! `sessionctl aws serve`: the session's credentials on a loopback
//! endpoint (ECS container credentials, IMDSv2), for programs that keep
//! running past the credentials' expiry: their SDK asks again and gets
//! fresh ones, where `aws exec`'s variables would go stale.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use session_sdk::SessionType;
use session_sdk::aws::SessionCredentialsProvider;
use session_sdk::aws::serve::{CredentialServer, CredentialServerHandle};

use crate::signals::Signals;
use crate::workspace::Workspace;
use crate::{Failure, Global, shell, use_session};

/// `aws serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The session's id, or its name if unique.
    #[arg(value_name = "ID|NAME")]
    session: String,

    /// Serve the ECS container credentials endpoint (the default when
    /// neither --ecs nor --imds is given).
    #[arg(long)]
    ecs: bool,

    /// Serve an IMDSv2-compatible endpoint, for tools that only read
    /// instance metadata (AWS_EC2_METADATA_SERVICE_ENDPOINT). It also
    /// reports the session's region, if it has one, where the Rust and Java
    /// SDKs look for it (placement/region, instance-identity/document).
    #[arg(long)]
    imds: bool,

    /// Also answer IMDSv1 requests (no token). Off by default: any process
    /// that can make this machine send a GET to the endpoint (a server-side
    /// request forgery) could read the credentials.
    #[arg(long, requires = "imds")]
    imds_v1: bool,

    /// The loopback port to listen on (default: a free one).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    port: u16,

    /// Hand out credentials with at least this many seconds left, rotating
    /// the session first when they have less (the AWS SDKs refresh 15
    /// minutes before expiry); credentials whose whole lifetime is not much
    /// longer are renewed at three quarters of it instead.
    #[arg(long, value_name = "SECONDS", default_value_t = 900)]
    refresh_before: u64,

    /// Without --exec: write the variables that point a shell at the
    /// endpoint to FILE (mode 0600, replaced atomically; it holds the ECS
    /// authorization token) and serve until interrupted; FILE is removed
    /// at the end. Use it with `. FILE`.
    #[arg(long, value_name = "FILE", conflicts_with = "command")]
    env_file: Option<PathBuf>,

    /// Run the command after `--` (aws-vault's spelling; the `--` alone
    /// is enough).
    #[arg(long, requires = "command")]
    exec: bool,

    /// Run this command with the variables set, and stop serving when it
    /// exits (with its status).
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// Besides what `aws exec` removes: the variables of the container and
/// instance-metadata chains, and web identity, so that the child reaches
/// this endpoint and not another source its SDK would try first.
const ALSO_CLEARED: &[&str] = &[
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
];

/// Runs `aws serve`.
pub(crate) async fn serve(
    global: &Global,
    workspace: Workspace,
    args: ServeArgs,
) -> Result<String, Failure> {
    // clap has checked that --exec comes with a command.
    debug_assert!(!args.exec || !args.command.is_empty());
    if args.command.is_empty() && args.env_file.is_none() {
        return Err(Failure::Usage(
            "aws serve needs -- COMMAND to run, or --env-file FILE to write the variables to"
                .into(),
        ));
    }
    if !args.command.is_empty() {
        crate::aws::EXEC.refuse_nesting()?;
    }
    let used = use_session::resolve(
        global,
        workspace,
        &args.session,
        SessionType::is_aws_credentials,
        "an AWS credential session",
    )
    .await?;
    let session = used.session;
    let source = SessionCredentialsProvider::new(used.manager, session.session_id.to_string())
        .with_min_ttl(Duration::from_secs(args.refresh_before));
    // Fail now, not at the child's first request: a session that cannot
    // start (no key, a refused MFA code) is reported here, once.
    source.credentials().await?;

    let mut builder = CredentialServer::builder(source)
        .bind(std::net::SocketAddr::from(([127, 0, 0, 1], args.port)))
        .role_name(role_name(&session.session_name));
    if args.ecs || !args.imds {
        builder = builder.ecs();
    }
    if args.imds {
        builder = builder.imds().allow_imds_v1(args.imds_v1);
        if let Some(region) = &session.region {
            builder = builder.region(region.clone());
        }
    }
    let server = builder.build()?.start().await?;
    let mut vars = server.environment();
    if let Some(region) = &session.region {
        vars.push(("AWS_REGION", region.clone()));
        vars.push(("AWS_DEFAULT_REGION", region.clone()));
    }
    vars.push((crate::aws::EXEC.marker, session.session_name.clone()));
    tracing::info!(session = %session.label(), address = %server.local_addr(), "serving credentials");

    let result = match &args.env_file {
        Some(path) => serve_until_interrupted(&server, path, &vars).await,
        None => run_child(&args.command, &vars).await,
    };
    server.shutdown().await?;
    result
}

/// IMDS lists one role name and puts it in a URL path: the session's name
/// (its first 64 characters, IAM's limit) with anything but
/// `[A-Za-z0-9+=,.@_-]` made `-`.
fn role_name(session_name: &str) -> String {
    // IAM role names are at most 64 characters.
    let name: String = session_name
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@_-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() {
        "sessionctl".to_owned()
    } else {
        name
    }
}

/// Runs the command with `vars` while the server answers on this same
/// runtime; its exit status becomes ours.
async fn run_child(command: &[String], vars: &[(&'static str, String)]) -> Result<String, Failure> {
    let mut child = tokio::process::Command::new(&command[0]);
    child.args(&command[1..]);
    for name in crate::aws::EXEC.cleared.iter().chain(ALSO_CLEARED) {
        child.env_remove(name);
    }
    for (name, value) in vars {
        child.env(name, value);
    }
    // Ctrl-C reaches the child through the terminal; SIGTERM or SIGHUP sent
    // to this process is passed on to it. Either way this process keeps
    // serving until the child is gone (it may still ask while it ends).
    let mut signals = Signals::new()?;
    let mut child = child
        .spawn()
        .map_err(|e| Failure::Other(format!("cannot run {:?}: {e}", command[0])))?;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            signal = signals.recv_signal() => {
                #[cfg(unix)]
                if signal == crate::signals::Signal::Terminate
                    && let Some(pid) = child
                        .id()
                        .and_then(|pid| i32::try_from(pid).ok())
                        .and_then(rustix::process::Pid::from_raw)
                {
                    // Not reaped yet, so the pid is still the child's; a
                    // failure means it has just exited.
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
                }
                #[cfg(not(unix))]
                let _ = signal;
            }
        }
    }
    .map_err(|e| Failure::Other(format!("waiting for {:?}: {e}", command[0])))?;
    shell::exit_with(&command[0], status)
}

/// Writes the variables to `path` and serves until a signal; removes the
/// file again.
async fn serve_until_interrupted(
    server: &CredentialServerHandle,
    path: &Path,
    vars: &[(&'static str, String)],
) -> Result<String, Failure> {
    let mut signals = Signals::new()?;
    write_env_file(path, vars)?;
    eprintln!(
        "serving credentials on {}; variables in {} (. {0} in a shell); Ctrl-C to stop",
        server.local_addr(),
        path.display()
    );
    signals.recv().await;
    std::fs::remove_file(path)
        .map_err(|e| Failure::Other(format!("cannot remove {}: {e}", path.display())))?;
    Ok(String::new())
}

/// `export` lines in a private file, replaced atomically under a lock.
fn write_env_file(path: &Path, vars: &[(&'static str, String)]) -> Result<(), Failure> {
    let text = shell::exports(vars);
    let lock = path.with_file_name(format!(
        ".{}.lock",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let _guard = session_sdk::private_file::lock_exclusive(&lock, Duration::from_secs(10))
        .map_err(|e| Failure::Other(format!("cannot lock {}: {e:?}", path.display())))?;
    session_sdk::private_file::replace_atomically(path, text.as_bytes(), |_| {})
        .map_err(|e| Failure::Other(format!("{}: {}: {}", path.display(), e.step, e.error)))
}

#[cfg(test)]
mod tests {
    use super::role_name;

    #[test]
    fn role_names_fit_in_a_url_path() {
        assert_eq!(role_name("dev/admin role"), "dev-admin-role");
        assert_eq!(role_name("a+b=c,d.e@f_g-h"), "a+b=c,d.e@f_g-h");
        assert_eq!(role_name(""), "sessionctl");
        assert_eq!(role_name(&"x".repeat(70)).len(), 64);
    }
}
