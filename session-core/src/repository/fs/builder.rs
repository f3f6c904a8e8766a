//! [`FsWorkspaceBuilder`]: where the workspace file is, and how it is
//! opened.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::format::Migration;
use super::store::{FsWorkspace, Inner};
use crate::{Error, Result};

const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds an [`FsWorkspace`].
///
/// ```
/// use session_core::FsWorkspace;
/// let dir = tempfile::tempdir()?;
/// let workspace = FsWorkspace::builder()
///     .path(dir.path().join("workspace.json"))
///     .build()?;
/// assert!(workspace.path().ends_with("workspace.json"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct FsWorkspaceBuilder {
    path: Option<PathBuf>,
    lock_timeout: Option<Duration>,
    compact_at: Option<Option<u64>>,
    migrations: Vec<(u32, Migration)>,
}

impl fmt::Debug for FsWorkspaceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FsWorkspaceBuilder")
            .field("path", &self.path)
            .field("lock_timeout", &self.lock_timeout)
            .field("compact_at", &self.compact_at)
            .field(
                "migrations",
                &self.migrations.iter().map(|m| m.0).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl FsWorkspaceBuilder {
    /// An empty builder: the path is [`default_path`] unless set. (The
    /// library reads no environment variable for it; `sessionctl` has
    /// `--workspace` / `SESSIONCTL_WORKSPACE`.)
    pub fn new() -> Self {
        Self::default()
    }

    /// The workspace file.
    pub fn path(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// How long a writer waits for another process's lock (default 30 s)
    /// before failing with [`Error::Storage`].
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = Some(timeout);
        self
    }

    /// When writers fold the journal into the file: once it is larger than
    /// `bytes` or than a quarter of the file, whichever is more (default
    /// 64 KiB). `None` turns the journal off: every change rewrites the
    /// whole file, which then always holds every session, at a cost that
    /// grows with their number. See [`FsWorkspace`]'s "Journal".
    pub fn compact_at(mut self, bytes: Option<u64>) -> Self {
        self.compact_at = Some(bytes);
        self
    }

    /// Registers the step that migrates schema `from` to `from + 1`.
    /// Steps run in order when an older file is loaded.
    pub fn migration(mut self, from: u32, step: Migration) -> Self {
        self.migrations.retain(|(v, _)| *v != from);
        self.migrations.push((from, step));
        self
    }

    /// Checks the settings. Does not touch the file system: the file is read
    /// on first use and created on first write.
    pub fn build(self) -> Result<FsWorkspace> {
        let path = match self.path {
            Some(path) => path,
            None => default_path()?,
        };
        if path.as_os_str().is_empty() {
            return Err(Error::invalid_input("workspace path", "must not be empty"));
        }
        let file_name = path
            .file_name()
            .ok_or_else(|| {
                Error::invalid_input(
                    "workspace path",
                    format!("{} does not name a file", path.display()),
                )
            })?
            .to_owned();
        let sibling = |suffix: &str| {
            let mut name = file_name.clone();
            name.push(suffix);
            path.with_file_name(name)
        };
        Ok(FsWorkspace {
            inner: Arc::new(Inner {
                lock_path: sibling(".lock"),
                compact_at: self
                    .compact_at
                    .unwrap_or(Some(super::persist::DEFAULT_COMPACT_AT)),
                backup_path: sibling(".bak"),
                path,
                lock_timeout: self.lock_timeout.unwrap_or(DEFAULT_LOCK_TIMEOUT),
                migrations: self.migrations,
                state: Mutex::new(None),
            }),
        })
    }
}

/// The default workspace file: `<config dir>/sessionctl/workspace.json`
/// (`~/.config/sessionctl/workspace.json` on Linux,
/// `~/Library/Application Support/sessionctl/workspace.json` on macOS).
pub fn default_path() -> Result<PathBuf> {
    directories::ProjectDirs::from("", "", "sessionctl")
        .map(|dirs| dirs.config_dir().join("workspace.json"))
        .ok_or_else(|| {
            Error::invalid_input(
                "workspace path",
                "no home directory to put the workspace in; give its path",
            )
        })
}
