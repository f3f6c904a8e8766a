//! `sessionctl import`: bring sessions over from other tools.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use session_sdk::WorkspaceRepository;
use session_sdk::import::leapp::{self, LeappMapper, LeappReader, Outcome};

use crate::Failure;
use crate::workspace::Workspace;

/// Where to import from.
#[derive(Debug, Subcommand)]
pub(crate) enum ImportCommand {
    /// Import the sessions of the Leapp desktop app (its encrypted
    /// workspace in ~/.Leapp).
    ///
    /// Each of Leapp's sessions becomes an inactive session here with
    /// Leapp's id, name, region, named profile and parent; a second import
    /// adds nothing. IAM users, chained, federated and SSO roles need this
    /// build's `aws` feature, Azure sessions its `azure` feature. What Leapp
    /// kept outside its workspace is listed as left to do (an IAM user's
    /// access key, a federated role's SAML sign-in); sessions that cannot
    /// be mapped are listed with the reason. Leapp's files are only read.
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

pub(crate) async fn run(workspace: Workspace, command: ImportCommand) -> Result<String, Failure> {
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
    if !args.dry_run {
        plan.apply(&workspace).await?;
    }
    Ok(report(&plan, args.dry_run))
}

/// One line per Leapp session, its to-dos indented below, then a summary.
fn report(plan: &leapp::ImportPlan, dry_run: bool) -> String {
    let mut out = String::new();
    let (mut added, mut already, mut skipped) = (0, 0, 0);
    for item in &plan.items {
        let what = format!("{} ({})", item.leapp_name, item.leapp_type);
        match &item.outcome {
            Outcome::Add { session, to_do } => {
                added += 1;
                let verb = if dry_run { "would add" } else { "added" };
                let _ = writeln!(
                    out,
                    "{verb:<13} {what} as {} {}",
                    session.session_type, session.session_id
                );
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
