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
    let ImportCommand::Leapp(args) = command;
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
    let verb = if dry_run { "would be added" } else { "added" };
    let _ = writeln!(
        out,
        "{added} {verb}, {already} already here, {skipped} not imported{}",
        if dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        }
    );
    out
}
