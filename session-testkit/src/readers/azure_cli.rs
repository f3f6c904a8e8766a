//! The Azure CLI's own code as an independent reader of the files
//! `session-azure`'s Azure CLI sink writes: `azure-cli-core` (its
//! `Profile`, with MSAL Python underneath) run by
//! `peers/azure_cli/read_back.py` against a copy of the directory, fully
//! offline (the script's docstring explains each stub).
//!
//! ```no_run
//! # fn main() -> Result<(), String> {
//! use session_testkit::readers::azure_cli::AzureCliReader;
//! let Some(az) = AzureCliReader::find() else { return Ok(()) }; // skipped outside CI
//! let seen = az.read_back(std::path::Path::new("/tmp/azure"), &Default::default())?;
//! assert_eq!(seen.error, None);
//! # Ok(())
//! # }
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::peers::{python_with_module, require_peer};

/// `session-testkit/peers/azure_cli/read_back.py`.
pub fn script_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/azure_cli/read_back.py")
}

/// The lower-case hex SHA-256 of `token`, as [`ReadBack::token_sha256`]
/// gives it (the script never prints a token).
pub fn sha256_hex(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What to ask `az` for.
#[derive(Clone, Debug, Default)]
pub struct ReadBackRequest {
    /// The scope of `az account get-access-token --scope`; default the
    /// cloud's ARM scope, as `az` asks.
    pub scope: Option<String>,
    /// The subscription (id or name); default the default one.
    pub subscription: Option<String>,
    /// The tenant the stub authority serves; default the subscription's.
    pub tenant: Option<String>,
    /// The active `az` cloud; default `AzureCloud`.
    pub cloud: Option<String>,
}

/// What `az` saw, as the script reports it.
#[derive(Clone, Debug, Deserialize)]
pub struct ReadBack {
    /// `az account list`: `id`, `name`, `user`, `isDefault`, `tenantId`.
    pub subscriptions: Vec<serde_json::Value>,
    /// `az account show`: the default subscription's id.
    pub default_subscription: Option<String>,
    /// The SHA-256 of the token `az account get-access-token` returned.
    pub token_sha256: Option<String>,
    /// Its `expires_on` (epoch seconds).
    pub token_expires_on: Option<i64>,
    /// `cache` when MSAL served the token from the cache file.
    pub token_source: Option<String>,
    /// Every HTTP request made to the stub authority, `METHOD /path`.
    pub requests: Vec<String>,
    /// Attempts to reach anything but loopback (must be empty).
    pub blocked_connections: Vec<serde_json::Value>,
    /// Cache keys that differ from the ones MSAL would build.
    pub key_mismatches: Vec<serde_json::Value>,
    /// Why `az` failed, if it did.
    pub error: Option<String>,
}

/// The peers' Python with `azure-cli-core` installed.
#[derive(Clone, Debug)]
pub struct AzureCliReader {
    python: PathBuf,
}

impl AzureCliReader {
    /// Finds the peers' Python with `azure.cli.core`; `None` (skip) when it
    /// is missing outside CI, a panic in CI.
    pub fn find() -> Option<Self> {
        require_peer("azure-cli-core", || python_with_module("azure.cli.core"))
            .map(|python| Self { python })
    }

    /// Runs the reader over `dir` (which is left untouched).
    ///
    /// # Errors
    ///
    /// When the script cannot run, crashes or prints no JSON result.
    pub fn read_back(&self, dir: &Path, request: &ReadBackRequest) -> Result<ReadBack, String> {
        let mut command = Command::new(&self.python);
        command.arg(script_path()).arg("--config-dir").arg(dir);
        for (flag, value) in [
            ("--scope", &request.scope),
            ("--subscription", &request.subscription),
            ("--tenant", &request.tenant),
            ("--cloud", &request.cloud),
        ] {
            if let Some(value) = value {
                command.arg(flag).arg(value);
            }
        }
        let output = command
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.python.display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(format!(
                "read_back.py failed ({}): {}{}",
                output.status,
                stdout.trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        let line = stdout
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .ok_or_else(|| {
                format!(
                    "read_back.py printed no result: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                )
            })?;
        serde_json::from_str(line).map_err(|e| format!("read_back.py printed {line}: {e}"))
    }
}
