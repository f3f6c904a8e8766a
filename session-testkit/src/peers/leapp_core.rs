//! The leapp-core peer: Leapp's own core library (npm
//! `@noovolari/leapp-core`, workspace version 5), installed by
//! `./scripts/test` from `scripts/peers/leapp-core/` into
//! `$SESSION_PEERS_DIR/leapp-core` and exported as
//! `$SESSION_PEERS_LEAPP_CORE` (its `node_modules`).
//!
//! The node scripts in `session-testkit/peers/leapp-core/` wire leapp-core's
//! services over a temporary HOME (never the real `~/.Leapp`) with a Node
//! `INativeService` (in-memory keytar, machine id override):
//!
//! - [`LeappCore::bench`]: `bench.js N --rounds R`, Leapp's workspace speed
//!   measured by leapp-core itself (a cold load, and one session updated and
//!   persisted), for benches that compare it with ours in the same run;
//! - [`LeappCore::write_workspace`]: `write-workspace.js DIR`, a small
//!   workspace written by leapp-core with one session of each type, for
//!   import tests.
//!
//! ```no_run
//! use session_testkit::peers::leapp_core::LeappCore;
//! use session_testkit::peers::require_peer;
//!
//! let Some(leapp) = require_peer("leapp-core", LeappCore::locate) else {
//!     return; // skipped outside CI; would have panicked in CI
//! };
//! let figures = leapp.bench(1000, 5).expect("leapp-core bench");
//! println!("{} sessions: cold load {} ms", figures.n, figures.cold_load_ms);
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use super::oidc::find_on_path;
use super::path_from;

/// Environment variable holding the `node_modules` folder of the
/// leapp-core peer.
pub const LEAPP_CORE_ENV: &str = "SESSION_PEERS_LEAPP_CORE";

/// The npm package of Leapp's core library.
pub const PACKAGE: &str = "@noovolari/leapp-core";

/// The folder of the node scripts, `session-testkit/peers/leapp-core`.
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/leapp-core")
}

/// The installed leapp-core peer and the `node` that runs its scripts; from
/// [`LeappCore::locate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeappCore {
    node: PathBuf,
    node_modules: PathBuf,
    scripts: PathBuf,
}

/// What `bench.js` measured (medians over `rounds`, in milliseconds).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LeappBenchFigures {
    /// Role chained sessions in the workspace (plus their one IAM user
    /// parent).
    pub n: usize,
    /// Leapp's start: a fresh repository reading, decrypting, checking and
    /// (as Leapp does) re-saving the workspace and its backup.
    pub cold_load_ms: f64,
    /// One session's region changed through leapp-core's role chained
    /// session service, which persists the whole workspace file.
    pub update_one_persist_ms: f64,
    /// Rounds the medians are over.
    pub rounds: usize,
    /// The leapp-core version that ran.
    #[serde(rename = "leapp_core_version")]
    pub version: String,
}

/// One session `write-workspace.js` wrote.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LeappSessionInfo {
    /// Leapp's session type, e.g. `awsIamRoleChained`.
    #[serde(rename = "type")]
    pub session_type: String,
    /// The session's uuid.
    #[serde(rename = "sessionId")]
    pub session_id: String,
    /// The session's name.
    #[serde(rename = "sessionName")]
    pub session_name: String,
}

/// A session type `write-workspace.js` could not write, and why.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LeappNotWritten {
    /// Leapp's session type.
    #[serde(rename = "type")]
    pub session_type: String,
    /// leapp-core's error.
    pub reason: String,
}

/// An item leapp-core stored in the (in-memory) keychain while writing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LeappKeychainItem {
    /// keytar service (`Leapp`).
    pub service: String,
    /// keytar account, e.g. `<sessionId>-iam-user-aws-session-access-key-id`.
    pub account: String,
    /// The stored value (example keys only).
    pub password: String,
}

/// What `write-workspace.js` wrote.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LeappWorkspace {
    /// The leapp-core version that wrote it.
    #[serde(rename = "leapp_core_version")]
    pub version: String,
    /// The raw machine id the key was derived from.
    pub raw_machine_id: String,
    /// The AES passphrase: lowercase hex SHA-256 of `raw_machine_id`.
    pub aes_key: String,
    /// `DIR/.Leapp/Leapp-lock.json`.
    pub workspace: PathBuf,
    /// `DIR/.Leapp/Leapp-lock.backup.bin`, written by leapp-core's reload.
    pub backup: Option<PathBuf>,
    /// The workspace version leapp-core wrote (5 for 0.1.143).
    pub workspace_version: u32,
    /// The sessions, as a fresh leapp-core load read them back.
    pub sessions: Vec<LeappSessionInfo>,
    /// Types that could not be written.
    pub not_written: Vec<LeappNotWritten>,
    /// The keychain items written alongside (IAM user keys).
    pub keychain: Vec<LeappKeychainItem>,
    /// What leapp-core holds after loading the file again: `sessions`,
    /// `aws_sso_integrations`, `azure_integrations`, `profiles`, `idp_urls`
    /// (arrays of its objects' fields), `default_region`,
    /// `default_location`.
    #[serde(default)]
    pub leapp_view: serde_json::Value,
}

impl LeappCore {
    /// Finds the peer: `node` on `PATH`, `@noovolari/leapp-core` under
    /// `$SESSION_PEERS_LEAPP_CORE`, and the scripts. A probe for
    /// [`require_peer`](super::require_peer), which fails the test in CI
    /// and skips it loudly elsewhere.
    ///
    /// # Errors
    ///
    /// Why the peer is not available, naming the variable and
    /// `./scripts/test`.
    pub fn locate() -> Result<Self, String> {
        Self::locate_from(std::env::var_os(LEAPP_CORE_ENV), std::env::var_os("PATH"))
    }

    fn locate_from(value: Option<OsString>, path: Option<OsString>) -> Result<Self, String> {
        let hint = "./scripts/test installs it from scripts/peers/leapp-core/";
        let node_modules = path_from(LEAPP_CORE_ENV, value).map_err(|e| format!("{e}; {hint}"))?;
        if !node_modules.join(PACKAGE).join("package.json").is_file() {
            return Err(format!(
                "${LEAPP_CORE_ENV} = {} has no {PACKAGE}; {hint}",
                node_modules.display()
            ));
        }
        let node = find_on_path("node", path).ok_or_else(|| "`node` is not on PATH".to_owned())?;
        let scripts = scripts_dir();
        if !scripts.join("leapp.js").is_file() {
            return Err(format!("{} has no leapp.js", scripts.display()));
        }
        Ok(Self {
            node,
            node_modules,
            scripts,
        })
    }

    /// The `node_modules` folder leapp-core is in.
    pub fn node_modules(&self) -> &Path {
        &self.node_modules
    }

    /// Runs `bench.js n --rounds rounds` in a temporary HOME: a workspace
    /// of `n` IAM role chained sessions (all chained to one IAM user,
    /// eu-west-1) written by leapp-core, then leapp-core's cold load and
    /// one-session update + persist, medians over `rounds`.
    ///
    /// # Errors
    ///
    /// When node fails or prints no figures (with its stderr).
    pub fn bench(&self, n: usize, rounds: usize) -> Result<LeappBenchFigures, String> {
        let out = self.run(
            "bench.js",
            &[
                n.to_string().into(),
                "--rounds".into(),
                rounds.to_string().into(),
            ],
        )?;
        serde_json::from_str(out.trim()).map_err(|e| format!("bench.js printed {out:?}: {e}"))
    }

    /// Runs `write-workspace.js dir`: leapp-core writes
    /// `dir/.Leapp/Leapp-lock.json` with one session of each type it
    /// supports, encrypted with this machine's id (node-machine-id).
    ///
    /// # Errors
    ///
    /// When node fails or prints no result (with its stderr).
    pub fn write_workspace(&self, dir: &Path) -> Result<LeappWorkspace, String> {
        self.write_workspace_inner(dir, None)
    }

    /// [`write_workspace`](Self::write_workspace) with the key derived from
    /// `raw_machine_id` instead of this machine's id.
    ///
    /// # Errors
    ///
    /// When node fails or prints no result (with its stderr).
    pub fn write_workspace_with_machine_id(
        &self,
        dir: &Path,
        raw_machine_id: &str,
    ) -> Result<LeappWorkspace, String> {
        self.write_workspace_inner(dir, Some(raw_machine_id))
    }

    fn write_workspace_inner(
        &self,
        dir: &Path,
        raw_machine_id: Option<&str>,
    ) -> Result<LeappWorkspace, String> {
        let mut args: Vec<OsString> = vec![dir.into()];
        if let Some(raw) = raw_machine_id {
            args.extend(["--machine-id".into(), raw.into()]);
        }
        let out = self.run("write-workspace.js", &args)?;
        serde_json::from_str(out.trim())
            .map_err(|e| format!("write-workspace.js printed {out:?}: {e}"))
    }

    /// `node SCRIPT ARGS` with `$SESSION_PEERS_LEAPP_CORE` set; its stdout.
    fn run(&self, script: &str, args: &[OsString]) -> Result<String, String> {
        let output = Command::new(&self.node)
            .arg(self.scripts.join(script))
            .args(args)
            .env(LEAPP_CORE_ENV, &self.node_modules)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.node.display()))?;
        if !output.status.success() {
            return Err(format!(
                "node {script} failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        String::from_utf8(output.stdout).map_err(|e| format!("{script} printed non-UTF-8: {e}"))
    }
}

/// Every file of `dir` (Leapp's `.Leapp` folder) with its bytes, sorted by
/// name: compare two snapshots to show that an importer wrote nothing.
///
/// # Panics
///
/// When the folder or a file in it cannot be read.
pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("Leapp's folder")
        .map(|e| {
            let e = e.expect("an entry of Leapp's folder");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("a file of Leapp's folder"),
            )
        })
        .collect();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_peer_names_the_variable_and_scripts_test() {
        let err = LeappCore::locate_from(None, None).unwrap_err();
        assert!(
            err.contains(LEAPP_CORE_ENV) && err.contains("./scripts/test"),
            "{err}"
        );

        let dir = tempfile::tempdir().expect("tempdir");
        let err = LeappCore::locate_from(Some(dir.path().into()), None).unwrap_err();
        assert!(
            err.contains(PACKAGE) && err.contains("./scripts/test"),
            "{err}"
        );
    }
}
