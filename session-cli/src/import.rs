//! `sessionctl import`: bring sessions over from other tools.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use session_sdk::import::leapp::{self, LeappMapper, LeappReader, Outcome};
use session_sdk::{SessionId, WorkspaceRepository};

use crate::workspace::Workspace;
use crate::{Failure, Global};

/// Where to import from.
#[derive(Debug, Subcommand)]
pub(crate) enum ImportCommand {
    /// Import the sessions of the Leapp desktop app (its encrypted
    /// workspace in ~/.Leapp).
    ///
    /// Each of Leapp's sessions becomes an inactive session here with
    /// Leapp's id, name, region, named profile and parent; a second import
    /// adds nothing. IAM users, chained, federated and SSO roles need this
    /// build's `aws` feature, Azure sessions its `azure` feature. An IAM
    /// user's access key is copied from Leapp's OS keychain into the secret
    /// store (feature `keyring`; else, or when it is not there, it is
    /// listed as left to do, as is a federated role's SAML sign-in);
    /// sessions that cannot be mapped are listed with the reason. Leapp's
    /// files and keychain items are only read.
    Leapp(LeappArgs),
    /// Import the profiles of the AWS shared config and credentials files
    /// (what aws-vault and granted use).
    ///
    /// Profiles with role_arn and source_profile become chained roles under
    /// their source's session (role_session_name, external_id, mfa_serial,
    /// duration_seconds kept), sso_session or sso_start_url profiles SSO
    /// roles, profiles with long-term keys IAM users (mfa_serial kept, the
    /// keys copied into the secret store). credential_process,
    /// credential_source, web identity and temporary-key profiles are left
    /// alone and reported. Each session publishes to its own profile
    /// NAME-sessionctl, so the user's profiles stay as they are; a second
    /// import adds nothing. The files (AWS_CONFIG_FILE and
    /// AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/config and
    /// ~/.aws/credentials) are only read.
    #[cfg(feature = "aws")]
    AwsConfig(AwsConfigArgs),
}

/// `import aws-config`.
#[cfg(feature = "aws")]
#[derive(Debug, Args)]
pub(crate) struct AwsConfigArgs {
    /// Import only this profile (and those it assumes roles from); may be
    /// repeated. Default: every profile.
    #[arg(long = "profile", value_name = "PROFILE")]
    profiles: Vec<String>,
    /// Print what would be imported; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// The config file (default AWS_CONFIG_FILE, else ~/.aws/config).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The credentials file (default AWS_SHARED_CREDENTIALS_FILE, else
    /// ~/.aws/credentials).
    #[arg(long, value_name = "FILE")]
    credentials: Option<PathBuf>,
}

/// `import leapp`.
#[derive(Debug, Args)]
pub(crate) struct LeappArgs {
    /// Print what would be imported; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Leapp's folder (default ~/.Leapp).
    #[arg(long, value_name = "DIR")]
    from: Option<PathBuf>,
    /// The raw machine id of the machine that wrote the workspace (its
    /// /etc/machine-id, IOPlatformUUID or MachineGuid), for a workspace
    /// copied from another machine: Leapp's key is made from it.
    #[arg(long, value_name = "ID")]
    machine_id: Option<String>,
}

/// The mappers of the providers built in (one push per feature: a
/// `vec![]` cannot leave out what is not built).
#[allow(clippy::vec_init_then_push)]
fn mappers() -> Vec<&'static dyn LeappMapper> {
    #[allow(unused_mut)]
    let mut mappers: Vec<&'static dyn LeappMapper> = Vec::new();
    #[cfg(feature = "aws")]
    mappers.push(&session_sdk::aws::LeappAwsMapper);
    #[cfg(feature = "azure")]
    mappers.push(&session_sdk::azure::LeappAzureMapper);
    mappers
}

pub(crate) async fn run(
    global: &Global,
    workspace: Workspace,
    command: ImportCommand,
) -> Result<String, Failure> {
    let args = match command {
        ImportCommand::Leapp(args) => args,
        #[cfg(feature = "aws")]
        ImportCommand::AwsConfig(args) => return aws_config(global, workspace, args).await,
    };
    let mut reader = match args.from {
        Some(dir) => LeappReader::new(dir),
        None => LeappReader::from_home_dir()?,
    };
    if let Some(id) = args.machine_id {
        reader = reader.machine_id(id);
    }
    let leapp_ws = tokio::task::spawn_blocking(move || reader.read())
        .await
        .map_err(|e| Failure::Other(format!("reading the Leapp workspace: {e}")))??;
    let existing = workspace.list().await?;
    let plan = leapp::plan(&leapp_ws, &existing, &mappers());
    if args.dry_run {
        return Ok(report(&plan, &Copied::DryRun));
    }
    plan.apply(&workspace).await?;
    let needs_secrets = plan
        .items
        .iter()
        .any(|i| matches!(&i.outcome, Outcome::Add { secrets, .. } if !secrets.is_empty()));
    let copied = if needs_secrets {
        copy_secrets(global, &workspace, &plan).await?
    } else {
        Copied::Nothing
    };
    Ok(report(&plan, &copied))
}

/// What became of the secrets Leapp keeps in its keychain.
enum Copied {
    /// A dry run reads no keychain.
    DryRun,
    /// No session had any.
    Nothing,
    /// Per session, the names not found, and why not when the keychain
    /// could not be read.
    #[cfg_attr(not(feature = "keyring"), allow(dead_code))]
    Read {
        missing: HashMap<SessionId, Vec<String>>,
        why: Option<String>,
    },
    /// This build reads no keychain.
    #[cfg_attr(feature = "keyring", allow(dead_code))]
    NoKeychain,
}

#[cfg(feature = "keyring")]
async fn copy_secrets(
    global: &Global,
    workspace: &Workspace,
    plan: &leapp::ImportPlan,
) -> Result<Copied, Failure> {
    let store = crate::secrets::open(global, workspace.path()).await?;
    // A keychain that cannot be read (no Secret Service on a server, a
    // locked keyring) leaves the secrets to enter by hand, and says why.
    let why = std::cell::RefCell::new(None);
    let missing = plan
        .copy_secrets(&*store, |account| {
            match leapp::leapp_keychain_secret(account) {
                Ok(value) => Ok(value),
                Err(e) => {
                    why.borrow_mut().get_or_insert_with(|| e.to_string());
                    Ok(None)
                }
            }
        })
        .await?;
    Ok(Copied::Read {
        missing: missing.into_iter().collect(),
        why: why.into_inner(),
    })
}

#[cfg(not(feature = "keyring"))]
async fn copy_secrets(_: &Global, _: &Workspace, _: &leapp::ImportPlan) -> Result<Copied, Failure> {
    Ok(Copied::NoKeychain)
}

/// The last line of an import's report.
fn summary(added: usize, already: usize, skipped: usize, dry_run: bool) -> String {
    if dry_run {
        format!(
            "{added} would be added, {already} already here, {skipped} not imported \
             (dry run: nothing changed)\n"
        )
    } else {
        format!("{added} added, {already} already here, {skipped} not imported\n")
    }
}

/// What became of a session's keychain secrets, in one line.
fn secrets_line(name: &str, id: SessionId, names: Vec<String>, copied: &Copied) -> String {
    let (missing, why) = match copied {
        Copied::DryRun => {
            return format!("would copy from Leapp's keychain: {}", names.join(", "));
        }
        Copied::Read { missing, why } => (
            missing.get(&id).cloned().unwrap_or_default(),
            why.as_deref()
                .map_or("not in Leapp's keychain".to_owned(), str::to_owned),
        ),
        Copied::NoKeychain | Copied::Nothing => (
            names.clone(),
            "this build reads no keychain (feature keyring)".to_owned(),
        ),
    };
    if missing.is_empty() {
        return format!("copied from Leapp's keychain: {}", names.join(", "));
    }
    let commands: Vec<String> = missing
        .iter()
        .map(|secret| format!("`sessionctl secret set '{name}' {secret}`"))
        .collect();
    format!(
        "to do: enter {} ({why}): {}",
        missing.join(", "),
        commands.join(" and ")
    )
}

/// One line per Leapp session, its to-dos indented below, then a summary.
fn report(plan: &leapp::ImportPlan, copied: &Copied) -> String {
    let dry_run = matches!(copied, Copied::DryRun);
    let mut out = String::new();
    let (mut added, mut already, mut skipped) = (0, 0, 0);
    for item in &plan.items {
        let what = format!("{} ({})", item.leapp_name, item.leapp_type);
        match &item.outcome {
            Outcome::Add {
                session,
                to_do,
                secrets,
            } => {
                added += 1;
                let verb = if dry_run { "would add" } else { "added" };
                let _ = writeln!(
                    out,
                    "{verb:<13} {what} as {} {}",
                    session.session_type, session.session_id
                );
                let names: Vec<String> = secrets.iter().map(|s| s.name.clone()).collect();
                if !names.is_empty() {
                    let line =
                        secrets_line(&session.session_name, session.session_id, names, copied);
                    let _ = writeln!(out, "{:<13}   {line}", "");
                }
                for step in to_do {
                    let _ = writeln!(out, "{:<13}   to do: {step}", "");
                }
            }
            Outcome::AlreadyImported(id) => {
                already += 1;
                let _ = writeln!(out, "{:<13} {what} as {id}", "already here");
            }
            Outcome::NotMapped(reason) => {
                skipped += 1;
                let _ = writeln!(out, "{:<13} {what}: {reason}", "not imported");
            }
            _ => {}
        }
    }
    out.push_str(&summary(added, already, skipped, dry_run));
    out
}

/// The file `flag` names, else the one the variable names, else `~/.aws/NAME`.
#[cfg(feature = "aws")]
fn aws_file(flag: Option<PathBuf>, var: &str, name: &str) -> Result<PathBuf, Failure> {
    if let Some(path) = flag.or_else(|| std::env::var_os(var).map(PathBuf::from)) {
        return Ok(path);
    }
    let home = directories::BaseDirs::new()
        .ok_or_else(|| Failure::Usage(format!("no home folder to find ~/.aws/{name} in")))?;
    Ok(home.home_dir().join(".aws").join(name))
}

/// A file's text; an absent file reads as empty.
#[cfg(feature = "aws")]
fn read_or_empty(path: &std::path::Path) -> Result<Option<String>, Failure> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(session_sdk::Error::storage(path, "cannot read it", Some(e)).into()),
    }
}

#[cfg(feature = "aws")]
async fn aws_config(
    global: &Global,
    workspace: Workspace,
    args: AwsConfigArgs,
) -> Result<String, Failure> {
    use session_sdk::aws::config_import::{AwsConfigImport, ProfileOutcome};
    let config_path = aws_file(args.config, "AWS_CONFIG_FILE", "config")?;
    let credentials_path = aws_file(
        args.credentials,
        "AWS_SHARED_CREDENTIALS_FILE",
        "credentials",
    )?;
    let config = read_or_empty(&config_path)?;
    let credentials = read_or_empty(&credentials_path)?;
    if config.is_none() && credentials.is_none() {
        return Err(session_sdk::Error::not_found(format!(
            "AWS config file {} and credentials file {}",
            config_path.display(),
            credentials_path.display()
        ))
        .into());
    }
    let existing = workspace.list().await?;
    let plan = AwsConfigImport::plan(
        config.as_deref().unwrap_or_default(),
        credentials.as_deref().unwrap_or_default(),
        &args.profiles,
        &existing,
    )
    .map_err(|e| {
        Failure::Operation(session_sdk::Error::invalid_input(
            format!("{} / {}", config_path.display(), credentials_path.display()),
            e.to_string(),
        ))
    })?;
    if !args.dry_run {
        let store = if plan.has_secrets() {
            Some(crate::secrets::open(global, workspace.path()).await?)
        } else {
            None
        };
        let none = session_sdk::InMemorySecretStore::new();
        let store: &dyn session_sdk::SecretStore = match &store {
            Some(store) => &**store,
            None => &none,
        };
        plan.apply(&workspace, store).await?;
    }
    let mut out = String::new();
    let (mut added, mut already, mut skipped) = (0, 0, 0);
    for item in &plan.items {
        match &item.outcome {
            ProfileOutcome::Add {
                session,
                secrets,
                to_do,
            } => {
                added += 1;
                let verb = if args.dry_run { "would add" } else { "added" };
                let _ = writeln!(
                    out,
                    "{verb:<13} {} as {} {}",
                    item.profile, session.session_type, session.session_id
                );
                if !secrets.is_empty() {
                    let names: Vec<&str> = secrets.iter().map(|(n, _)| n.as_str()).collect();
                    let verb = if args.dry_run { "would copy" } else { "copied" };
                    let _ = writeln!(
                        out,
                        "{:<13}   {verb} from the credentials file: {}",
                        "",
                        names.join(", ")
                    );
                }
                for step in to_do {
                    let _ = writeln!(out, "{:<13}   to do: {step}", "");
                }
            }
            ProfileOutcome::AlreadyImported(id) => {
                already += 1;
                let _ = writeln!(out, "{:<13} {} as {id}", "already here", item.profile);
            }
            ProfileOutcome::NotImported(why) => {
                skipped += 1;
                let _ = writeln!(out, "{:<13} {}: {why}", "not imported", item.profile);
            }
            _ => {}
        }
    }
    out.push_str(&summary(added, already, skipped, args.dry_run));
    Ok(out)
}
