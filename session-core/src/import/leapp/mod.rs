//! Reading the workspace of the Leapp desktop app and CLI
//! (`~/.Leapp/Leapp-lock.json`), to import its sessions. Nothing here
//! writes Leapp's files.
//!
//! Leapp encrypts its workspace with a passphrase derived from the
//! machine's id ([`machine_key`]), so a workspace decrypts only on the
//! machine that wrote it, unless the other machine's raw id is given
//! ([`LeappReader::machine_id`]). The reader tries Leapp's backup
//! (`Leapp-lock.backup.bin`) when the main file cannot be read, as Leapp
//! does, and reads workspace versions 5 to 7 (the leapp-core release on
//! npm writes 5, the desktop app 7).
//!
//! [`plan`] then maps its sessions onto ours with each provider's
//! [`LeappMapper`] (`session_aws`, `session_azure`): every session keeps
//! Leapp's id, so a second import adds nothing, and a session that cannot
//! be mapped is reported with the reason.
//!
//! ```no_run
//! use session_core::import::leapp::LeappReader;
//! let workspace = LeappReader::from_home_dir()?.read()?;
//! for session in &workspace.sessions {
//!     println!("{} ({})", session.session_name, session.session_type);
//! }
//! # Ok::<(), session_core::Error>(())
//! ```

mod crypto;
#[cfg(feature = "keyring")]
mod keychain;
mod machine_id;
mod model;
mod plan;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crypto::machine_key;
#[cfg(feature = "keyring")]
pub use keychain::leapp_keychain_secret;
pub use model::{
    LeappAzureIntegration, LeappIdpUrl, LeappProfile, LeappSession, LeappSsoIntegration,
    LeappWorkspace,
};
pub use plan::{
    IMPORTED_FROM, ImportPlan, KeychainSecret, LeappMapper, Mapped, Outcome, PlanItem, plan,
    session_id_for,
};

use crate::{Error, Result, Secret};
use crypto::DecryptError;
use model::TopLevel;

/// The workspace versions this reader understands.
pub const LEAPP_WORKSPACE_VERSIONS: std::ops::RangeInclusive<u32> = 5..=7;

/// The workspace file in Leapp's folder.
const WORKSPACE_FILE: &str = "Leapp-lock.json";
/// Leapp's backup of it, rewritten after every successful load.
const BACKUP_FILE: &str = "Leapp-lock.backup.bin";
const KIND: &str = "Leapp workspace";

/// Reads a Leapp workspace from a `.Leapp` folder.
#[derive(Debug, Clone)]
pub struct LeappReader {
    dir: PathBuf,
    /// Another machine's id. Leapp's key is derived from it alone, so it is
    /// kept as a secret (out of `Debug`).
    raw_machine_id: Option<Secret>,
}

impl LeappReader {
    /// The workspace in `dir` (a `.Leapp` folder).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            raw_machine_id: None,
        }
    }

    /// The workspace in `~/.Leapp`, where Leapp keeps it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when there is no home folder.
    pub fn from_home_dir() -> Result<Self> {
        let home = directories::BaseDirs::new()
            .ok_or_else(|| Error::invalid_input("leapp folder", "no home folder to look in"))?;
        Ok(Self::new(home.home_dir().join(".Leapp")))
    }

    /// Decrypts with the key of another machine, given its raw id (the
    /// contents of its `/etc/machine-id`, its `IOPlatformUUID` or its
    /// `MachineGuid`): for a workspace copied from that machine.
    pub fn machine_id(mut self, raw: impl Into<String>) -> Self {
        self.raw_machine_id = Some(Secret::new(raw.into()));
        self
    }

    /// The `.Leapp` folder read.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads, decrypts and parses the workspace: the main file, or if that
    /// cannot be read, Leapp's backup of it.
    ///
    /// # Errors
    ///
    /// - [`Error::NotFound`] when neither file exists.
    /// - [`Error::Corrupt`] when neither decrypts and parses, naming both
    ///   files and why (a workspace from another machine says to give its
    ///   machine id).
    /// - [`Error::Storage`] for a version this reader does not read, or a
    ///   file it cannot open.
    pub fn read(&self) -> Result<LeappWorkspace> {
        let key = self.key()?;
        let main = self.dir.join(WORKSPACE_FILE);
        let first = match self.read_file(&main, &key) {
            Ok(ws) => return Ok(ws),
            // Leapp rewrites its file in place, without a lock: a read can
            // catch it half written. Once more after a moment.
            Err(Error::Corrupt { .. }) => {
                std::thread::sleep(Duration::from_millis(200));
                match self.read_file(&main, &key) {
                    Ok(ws) => return Ok(ws),
                    Err(e) => e,
                }
            }
            Err(e) => e,
        };
        let backup = self.dir.join(BACKUP_FILE);
        match self.read_file(&backup, &key) {
            Ok(ws) => {
                tracing::warn!(file = %main.display(), error = %first, "reading Leapp's backup instead");
                Ok(ws)
            }
            Err(_) if matches!(first, Error::Storage { .. }) => Err(first),
            Err(Error::NotFound { .. }) => Err(first),
            Err(second) => match first {
                Error::NotFound { .. } => Err(second),
                first => Err(Error::Corrupt {
                    path: main,
                    kind: KIND.into(),
                    line: 0,
                    column: 0,
                    message: format!(
                        "{}; its backup {} neither: {}",
                        reason(&first),
                        backup.display(),
                        reason(&second)
                    ),
                }),
            },
        }
    }

    /// The passphrase: from the given machine id, or this machine's.
    fn key(&self) -> Result<Secret> {
        let raw = match &self.raw_machine_id {
            Some(raw) if raw.expose().trim().is_empty() => {
                return Err(Error::invalid_input("machine id", "must not be empty"));
            }
            Some(raw) => machine_id::normalize(raw.expose()),
            None => machine_id::raw_machine_id().ok_or_else(|| {
                Error::invalid_input(
                    "machine id",
                    "cannot read this machine's id, which Leapp's key is made from; give it",
                )
            })?,
        };
        Ok(Secret::new(machine_key(&raw)))
    }

    fn read_file(&self, path: &Path, key: &Secret) -> Result<LeappWorkspace> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::not_found(format!("{KIND} {}", path.display())));
            }
            Err(e) => {
                return Err(Error::storage(path, "cannot read it", Some(e)));
            }
        };
        let corrupt = |message: String| Error::Corrupt {
            path: path.to_owned(),
            kind: KIND.into(),
            line: 0,
            column: 0,
            message,
        };
        let plain = crypto::decrypt(&text, key.expose()).map_err(|e| {
            corrupt(match e {
                DecryptError::NotEncrypted => {
                    "not encrypted as Leapp encrypts it (no OpenSSL salted base64)".into()
                }
                DecryptError::WrongKey => {
                    let whose = if self.raw_machine_id.is_some() {
                        "the given machine id"
                    } else {
                        "this machine"
                    };
                    format!(
                        "cannot be decrypted with the key of {whose}: it was written on \
                         another machine (give that machine's id) or is damaged"
                    )
                }
            })
        })?;
        let top: TopLevel = serde_json::from_str(&plain)
            .map_err(|e| corrupt(format!("decrypted, but not Leapp's JSON: {e}")))?;
        let version: Option<u32> = top.field("workspaceVersion").map_err(corrupt)?;
        let version = match version {
            Some(v) if LEAPP_WORKSPACE_VERSIONS.contains(&v) => v,
            Some(v) if v > *LEAPP_WORKSPACE_VERSIONS.end() => {
                return Err(Error::storage(
                    path,
                    format!(
                        "workspace version {v} is newer than this build reads ({}–{}); \
                         a newer session-sdk may read it",
                        LEAPP_WORKSPACE_VERSIONS.start(),
                        LEAPP_WORKSPACE_VERSIONS.end()
                    ),
                    None,
                ));
            }
            other => {
                return Err(Error::storage(
                    path,
                    format!(
                        "workspace version {} is older than this build reads ({}–{}); \
                         open it in Leapp once to upgrade it",
                        other.map_or("(none)".into(), |v| v.to_string()),
                        LEAPP_WORKSPACE_VERSIONS.start(),
                        LEAPP_WORKSPACE_VERSIONS.end()
                    ),
                    None,
                ));
            }
        };
        Ok(LeappWorkspace {
            version,
            sessions: top.field("sessions").map_err(corrupt)?,
            aws_sso_integrations: top.field("awsSsoIntegrations").map_err(corrupt)?,
            azure_integrations: top.field("azureIntegrations").map_err(corrupt)?,
            profiles: top.field("profiles").map_err(corrupt)?,
            idp_urls: top.field("idpUrls").map_err(corrupt)?,
            default_region: top.field("defaultRegion").map_err(corrupt)?,
            default_location: top.field("defaultLocation").map_err(corrupt)?,
        })
    }
}

/// What was wrong with a file, without its path.
fn reason(e: &Error) -> String {
    match e {
        Error::Corrupt { message, .. } | Error::Storage { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// Encrypts a workspace's JSON as Leapp does, for tests and fixtures (this
/// crate never writes Leapp's files): a fixed salt makes it reproducible.
#[doc(hidden)]
pub fn encrypt_for_tests(plain: &str, raw_machine_id: &str, salt: [u8; 8]) -> String {
    crypto::encrypt_with_salt(plain, &machine_key(raw_machine_id), salt)
}
