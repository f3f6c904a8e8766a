//! The shared credentials file sink: `[profile]` sections in
//! `~/.aws/credentials` (and the region in `~/.aws/config`), edited without
//! losing a byte of what the user wrote.
//!
//! # What it writes
//!
//! In the credentials file (`$AWS_SHARED_CREDENTIALS_FILE`, else
//! `~/.aws/credentials`):
//!
//! ```ini
//! [dev-admin]
//! # managed-by: session-sdk session=9b2f…
//! aws_access_key_id = ASIA…
//! aws_secret_access_key = …
//! aws_session_token = …
//! ```
//!
//! and, when the target has a region, in the config file (`$AWS_CONFIG_FILE`,
//! else `~/.aws/config`) `[profile dev-admin]` (`[default]` for the profile
//! `default`) with the same marker line and `region = …`.
//!
//! # Ownership
//!
//! A section is this session's only if the line right after its header is
//! the marker naming **this** session id. Anything else with the profile's
//! name (an unmarked section, one marked for another session, and in the
//! config file also the spellings botocore treats as the same profile, like
//! `[profile "dev"]` or `[profile default]`) makes [`publish`] fail with an
//! error that names the file, the line and how to resolve it, and nothing is
//! written. [`withdraw`] removes only this session's sections.
//!
//! # How a file is edited
//!
//! For each file: resolve symlinks (the rename then replaces the target and
//! the link stays a link), create the directory (0700) if missing, take an
//! exclusive lock on the sidecar `<file>.lock` (never on the data file: the
//! rename swaps its inode), read and parse it into a line-preserving model
//! (the crate's private `sink::ini`), edit, re-parse the result (every line must read back
//! with the same meaning, and our section with exactly our values), then
//! replace the file atomically with mode 0600. A file that cannot be parsed
//! is never rewritten; a file an edit does not change is not written at all.
//! When both files are edited, both are locked (credentials first), both
//! edits are planned and checked, and only then written, so a conflict in
//! either leaves both untouched.
//!
//! Every byte outside our sections stays as it was, line endings included.
//! Our own section is replaced where it is; a new one goes at the end of the
//! file in the file's line-ending style. A file that does not end with a
//! newline still does not after the edit (the new section goes on its own
//! line and the newline moves to before it), so [`withdraw`] gives back the
//! original bytes.
//!
//! [`publish`]: CredentialSink::publish
//! [`withdraw`]: CredentialSink::withdraw

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::Duration;

use session_core::private_file;
use session_core::{Error, Result};

use super::ini;
use super::{CredentialSink, SinkTarget};
use crate::AwsCredentials;

mod edit;
mod names;

use edit::{LockedFile, check_published, check_withdrawn, invalid_value};
use names::{CONFIG_KEYS, CREDENTIAL_KEYS, FileKind};

/// The variable naming the credentials file.
pub const CREDENTIALS_FILE_ENV: &str = "AWS_SHARED_CREDENTIALS_FILE";
/// The variable naming the config file.
pub const CONFIG_FILE_ENV: &str = "AWS_CONFIG_FILE";
/// What the ownership marker line starts with; the session id follows.
pub const MARKER_PREFIX: &str = "# managed-by: session-sdk session=";
/// How long an edit waits for another writer's lock by default.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// Publishes credentials to the shared credentials file (and the region to
/// the config file) that every AWS SDK and the AWS CLI read. See the
/// [module documentation](self) for the file format, the ownership rule and
/// how edits are made safe.
///
/// ```no_run
/// use session_aws::sink::{CredentialSink, SharedCredentialsFile};
/// # fn main() -> session_core::Result<()> {
/// let sink = SharedCredentialsFile::from_env()?;
/// println!("{}", sink.credentials_path().display());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct SharedCredentialsFile {
    credentials: PathBuf,
    config: PathBuf,
    lock_timeout: Duration,
    credential_process: Option<String>,
}

impl SharedCredentialsFile {
    /// The files the AWS tools of this process's environment read:
    /// `AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/credentials`, and
    /// `AWS_CONFIG_FILE` or `~/.aws/config`; a leading `~` is expanded.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when a path needs the home directory and
    /// neither `HOME` nor the platform knows it.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var_os(name))
    }

    /// [`from_env`](Self::from_env) with the variables given instead of read
    /// from the process (`HOME` too; without it the platform's home
    /// directory is used). Empty values count as unset.
    ///
    /// # Errors
    ///
    /// As [`from_env`](Self::from_env).
    pub fn from_env_iter(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let vars: std::collections::HashMap<String, String> = vars.into_iter().collect();
        Self::from_lookup(|name| vars.get(name).map(OsString::from))
    }

    fn from_lookup(get: impl Fn(&str) -> Option<OsString>) -> Result<Self> {
        let var = |name: &str| get(name).filter(|v| !v.is_empty());
        let home = || -> Result<PathBuf> {
            var("HOME")
                .map(PathBuf::from)
                .or_else(|| directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf()))
                .ok_or_else(|| {
                    Error::invalid_input(
                        "HOME",
                        format!(
                            "is not set and the home directory is unknown; set HOME, or set \
                             {CREDENTIALS_FILE_ENV} and {CONFIG_FILE_ENV}"
                        ),
                    )
                })
        };
        let path = |name: &str, default: &str| -> Result<PathBuf> {
            match var(name) {
                Some(value) => expand_tilde(&value, &home),
                None => Ok(home()?.join(".aws").join(default)),
            }
        };
        Ok(Self::with_paths(
            path(CREDENTIALS_FILE_ENV, "credentials")?,
            path(CONFIG_FILE_ENV, "config")?,
        ))
    }

    /// These two files, as given (no `~` expansion).
    pub fn with_paths(credentials: PathBuf, config: PathBuf) -> Self {
        Self {
            credentials,
            config,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            credential_process: None,
        }
    }

    /// How long an edit waits for another writer's lock (default
    /// [`DEFAULT_LOCK_TIMEOUT`]).
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// The credentials file (before symlinks are resolved).
    pub fn credentials_path(&self) -> &Path {
        &self.credentials
    }

    /// The config file (before symlinks are resolved).
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    fn publish_blocking(&self, target: &SinkTarget, credentials: &AwsCredentials) -> Result<()> {
        let id = target.session_id;
        let profile = target.profile.as_str();
        // Keys in the credentials file, unless the profile runs a
        // credential_process instead (then only the config file has it).
        let mut key_values = Vec::new();
        if self.credential_process.is_none() {
            key_values.push((CREDENTIAL_KEYS[0], credentials.access_key_id.as_str()));
            key_values.push((CREDENTIAL_KEYS[1], credentials.secret_access_key.expose()));
            if let Some(token) = &credentials.session_token {
                key_values.push((CREDENTIAL_KEYS[2], token.expose()));
            }
        }
        let command = self
            .credential_process
            .as_deref()
            .map(|prefix| format!("{prefix} {id}"));
        let mut config_values = Vec::new();
        if let Some(region) = target.region.as_deref() {
            config_values.push((CONFIG_KEYS[0], region));
        }
        if let Some(command) = command.as_deref() {
            config_values.push((CONFIG_KEYS[1], command));
        }
        let (credentials_path, config_path) = self.resolve_both()?;
        // Refuse bad values before any file is touched.
        let to_check = key_values
            .iter()
            .map(|v| (v, &credentials_path))
            .chain(config_values.iter().map(|v| (v, &config_path)));
        for ((key, value), path) in to_check {
            ini::check_value(key, value).map_err(|e| invalid_value(&e, path))?;
        }

        // Each file gets our section with its values, or, with no values,
        // loses our old section (a region dropped, or a switch between
        // keys and credential_process).
        let mut planned = Vec::new();
        for (path, kind, values) in [
            (credentials_path, FileKind::Credentials, &key_values),
            (config_path, FileKind::Config, &config_values),
        ] {
            if values.is_empty() && !path.exists() {
                continue;
            }
            if !values.is_empty() {
                create_dir_for(&path)?;
            }
            let mut file = LockedFile::lock_and_read(path, kind, self.lock_timeout)?;
            let text = if values.is_empty() {
                file.withdraw(profile, id);
                file.checked_text(|doc| check_withdrawn(doc, kind, profile, id))?
            } else {
                file.publish(profile, id, values)?;
                file.checked_text(|doc| check_published(doc, kind, profile, id, values))?
            };
            planned.push((file, text));
        }
        for (file, text) in &planned {
            let changed = file.write(text.as_ref())?;
            tracing::info!(
                sink = self.name_of(),
                profile,
                session = %id,
                file = %file.path.display(),
                changed,
                "published credentials"
            );
        }
        Ok(())
    }

    fn name_of(&self) -> &'static str {
        if self.credential_process.is_some() {
            "credential-process"
        } else {
            "credentials-file"
        }
    }

    /// Publishes a profile that runs a command (`credential_process = …` in
    /// the config file) instead of writing keys to the credentials file. The
    /// command is `command_prefix` followed by the session id.
    /// `command_prefix` must be an absolute path plus arguments without shell
    /// syntax: botocore splits it like a shell and runs it without one, the
    /// Rust SDK runs it through `sh -c`; quote paths that contain spaces with
    /// double quotes.
    pub fn with_credential_process(mut self, command_prefix: impl Into<String>) -> Self {
        self.credential_process = Some(command_prefix.into());
        self
    }

    /// The command prefix of [`with_credential_process`](Self::with_credential_process), if set.
    pub fn credential_process(&self) -> Option<&str> {
        self.credential_process.as_deref()
    }

    fn withdraw_blocking(&self, target: &SinkTarget) -> Result<()> {
        let id = target.session_id;
        let profile = target.profile.as_str();
        let (credentials_path, config_path) = self.resolve_both()?;
        // Nothing to remove from a file that is not there; do not create
        // its directory or lock file either.
        let mut opened = Vec::new();
        for (path, kind) in [
            (credentials_path, FileKind::Credentials),
            (config_path, FileKind::Config),
        ] {
            if !path.exists() {
                continue;
            }
            let mut file = LockedFile::lock_and_read(path, kind, self.lock_timeout)?;
            file.withdraw(profile, id);
            let text = file.checked_text(|doc| check_withdrawn(doc, kind, profile, id))?;
            opened.push((file, text));
        }
        for (file, text) in &opened {
            let wrote = file.write(text.as_ref())?;
            tracing::info!(
                sink = "credentials-file",
                profile,
                session = %id,
                file = %file.path.display(),
                changed = wrote,
                "withdrew credentials"
            );
        }
        Ok(())
    }

    /// Both files with symlinks resolved; they must differ.
    fn resolve_both(&self) -> Result<(PathBuf, PathBuf)> {
        let credentials = resolve_symlinks(&self.credentials)?;
        let config = resolve_symlinks(&self.config)?;
        if same_file(&credentials, &config) {
            return Err(Error::invalid_input(
                CONFIG_FILE_ENV,
                format!(
                    "the config file and the credentials file are the same file ({}); point \
                     {CONFIG_FILE_ENV} and {CREDENTIALS_FILE_ENV} at different files",
                    credentials.display()
                ),
            ));
        }
        Ok((credentials, config))
    }
}

#[async_trait::async_trait]
impl CredentialSink for SharedCredentialsFile {
    fn name(&self) -> &'static str {
        self.name_of()
    }

    async fn publish(&self, target: &SinkTarget, credentials: &AwsCredentials) -> Result<()> {
        crate::validate::profile_name(&target.profile)?;
        if target.profile == "DEFAULT" {
            return Err(Error::invalid_input(
                "profile",
                "\"DEFAULT\" is the INI defaults section, whose keys botocore applies to every \
                 profile; choose another name (\"default\" is the default profile)",
            ));
        }
        let sink = self.clone();
        let target = target.clone();
        let credentials = credentials.clone();
        blocking(&self.credentials, move || {
            sink.publish_blocking(&target, &credentials)
        })
        .await
    }

    async fn withdraw(&self, target: &SinkTarget) -> Result<()> {
        let sink = self.clone();
        let target = target.clone();
        blocking(&self.credentials, move || sink.withdraw_blocking(&target)).await
    }
}

/// Runs a file edit on the blocking pool.
async fn blocking(path: &Path, job: impl FnOnce() -> Result<()> + Send + 'static) -> Result<()> {
    tokio::task::spawn_blocking(job)
        .await
        .map_err(|e| Error::storage(path, format!("the file edit did not finish: {e}"), None))?
}

/// `~` and `~/…` (also `~\…` on Windows) under the home directory; other
/// values as they are.
fn expand_tilde(value: &OsStr, home: &dyn Fn() -> Result<PathBuf>) -> Result<PathBuf> {
    let Some(text) = value.to_str() else {
        return Ok(PathBuf::from(value));
    };
    if text == "~" {
        return home();
    }
    let rest = text
        .strip_prefix("~/")
        .or_else(|| text.strip_prefix("~\\").filter(|_| cfg!(windows)));
    match rest {
        Some(rest) => Ok(home()?.join(rest.trim_start_matches(['/', '\\']))),
        None => Ok(PathBuf::from(value)),
    }
}

/// Follows `path` through symlinks to the file they name (which may not
/// exist yet), so the lock is taken on the file that is replaced and the
/// link stays.
fn resolve_symlinks(path: &Path) -> Result<PathBuf> {
    private_file::resolve_symlinks(path)
        .map_err(|e| Error::storage(path, "cannot follow the symbolic link", Some(e)))
}

fn same_file(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(a), Ok(b)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return a.dev() == b.dev() && a.ino() == b.ino();
        }
    }
    false
}

fn create_dir_for(path: &Path) -> Result<()> {
    let dir = private_file::parent_dir(path);
    private_file::create_private_dir(&dir)
        .map_err(|e| Error::storage(&dir, "cannot create the directory", Some(e)))
}

#[cfg(test)]
mod tests;
