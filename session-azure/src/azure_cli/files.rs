//! [`AzureCliFiles`]: the Azure CLI's directory, its lock, and reading and
//! atomically writing its JSON files.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};
use session_core::private_file::{self, LockError};
use session_core::{Error, Result};

/// The variable naming the CLI's directory.
pub const AZURE_CONFIG_DIR_ENV: &str = "AZURE_CONFIG_DIR";
/// The subscriptions file.
pub const PROFILE_FILE: &str = "azureProfile.json";
/// The MSAL token cache (Linux, macOS).
pub const TOKEN_CACHE_FILE: &str = "msal_token_cache.json";
/// The lock file the CLI takes around cache writes (`msal-extensions`).
pub const LOCK_FILE: &str = "msal_token_cache.json.lockfile";
/// How long an edit waits for another writer's lock by default.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The Azure CLI's directory, where the sink writes.
///
/// ```no_run
/// use session_azure::azure_cli::AzureCliFiles;
/// # fn main() -> session_core::Result<()> {
/// let files = AzureCliFiles::from_env()?;
/// println!("{}", files.profile_path().display());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AzureCliFiles {
    pub(super) dir: PathBuf,
    lock_timeout: Duration,
}

impl AzureCliFiles {
    /// The directory the CLI of this process's environment uses:
    /// `$AZURE_CONFIG_DIR` (a leading `~` expanded), else `~/.azure`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when the path needs the home directory and it
    /// is unknown.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var_os(name))
    }

    /// [`from_env`](Self::from_env) from the given variables
    /// (`AZURE_CONFIG_DIR`, `HOME`), so tests need not change the process
    /// environment. Empty values count as unset.
    ///
    /// # Errors
    ///
    /// As [`from_env`](Self::from_env).
    pub fn from_env_iter(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let vars: std::collections::HashMap<String, String> = vars.into_iter().collect();
        Self::from_lookup(|name| vars.get(name).map(OsString::from))
    }

    pub(crate) fn from_lookup(lookup: impl Fn(&str) -> Option<OsString>) -> Result<Self> {
        let home = || {
            lookup("HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from)
                .ok_or_else(|| {
                    Error::invalid_input(
                        AZURE_CONFIG_DIR_ENV,
                        "the Azure CLI directory needs HOME (or set AZURE_CONFIG_DIR)",
                    )
                })
        };
        let dir = match lookup(AZURE_CONFIG_DIR_ENV).filter(|d| !d.is_empty()) {
            Some(dir) => {
                let text = dir.to_string_lossy();
                if text == "~" {
                    home()?
                } else if let Some(rest) = text.strip_prefix("~/") {
                    home()?.join(rest)
                } else {
                    PathBuf::from(dir)
                }
            }
            None => home()?.join(".azure"),
        };
        Ok(Self::in_dir(dir))
    }

    /// The files in `dir`.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
        }
    }

    /// How long an edit waits for the lock ([`DEFAULT_LOCK_TIMEOUT`]).
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `azureProfile.json`.
    pub fn profile_path(&self) -> PathBuf {
        self.dir.join(PROFILE_FILE)
    }

    /// `msal_token_cache.json`.
    pub fn token_cache_path(&self) -> PathBuf {
        self.dir.join(TOKEN_CACHE_FILE)
    }

    pub(super) fn lock(&self) -> Result<std::fs::File> {
        let path = self.dir.join(LOCK_FILE);
        private_file::lock_exclusive(&path, self.lock_timeout).map_err(|e| match e {
            LockError::TimedOut => Error::Timeout {
                target: path.display().to_string(),
                after: self.lock_timeout,
            },
            LockError::Io(e) => io_error(&path, "cannot lock", e),
        })
    }
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::Storage {
        path: path.to_path_buf(),
        message: format!("{what}: {e}"),
        source: Some(std::sync::Arc::new(e)),
    }
}

/// One JSON file: its parsed object, whether it had a BOM, its bytes.
pub(super) struct JsonFile {
    /// The path written (a symlink's target).
    pub(super) path: PathBuf,
    original: Option<Vec<u8>>,
    bom: bool,
    pub(super) root: Map<String, Value>,
}

impl JsonFile {
    pub(super) fn read(path: &Path) -> Result<Self> {
        let path = match std::fs::canonicalize(path) {
            Ok(real) => real,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => path.to_path_buf(),
            Err(e) => return Err(io_error(path, "cannot resolve", e)),
        };
        let original = match std::fs::read(&path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_error(&path, "cannot read", e)),
        };
        let (bom, body) = match &original {
            Some(bytes) => match bytes.strip_prefix(BOM) {
                Some(rest) => (true, rest),
                None => (false, bytes.as_slice()),
            },
            None => (false, &[][..]),
        };
        let root = if body.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(map)) => map,
                Ok(_) => return Err(unreadable(&path, "it is not a JSON object")),
                Err(e) => {
                    return Err(Error::Corrupt {
                        path,
                        kind: CORRUPT_KIND.into(),
                        line: e.line(),
                        column: e.column(),
                        message: e.to_string(),
                    });
                }
            }
        };
        Ok(Self {
            path,
            original,
            bom,
            root,
        })
    }

    /// The new bytes, or `None` when the content did not change.
    fn new_bytes(&self, bom_when_new: bool, pretty: bool) -> Result<Option<Vec<u8>>> {
        let value = Value::Object(self.root.clone());
        if let Some(original) = &self.original {
            let body = original.strip_prefix(BOM).unwrap_or(original);
            if serde_json::from_slice::<Value>(body).ok().as_ref() == Some(&value) {
                return Ok(None);
            }
        }
        let text = if pretty {
            serde_json::to_vec_pretty(&value)
        } else {
            serde_json::to_vec(&value)
        }
        .map_err(|e| io_error(&self.path, "cannot serialize", e.into()))?;
        let bom = if self.original.is_some() {
            self.bom
        } else {
            bom_when_new
        };
        let mut bytes = Vec::with_capacity(text.len() + 3);
        if bom {
            bytes.extend_from_slice(BOM);
        }
        bytes.extend_from_slice(&text);
        Ok(Some(bytes))
    }

    pub(super) fn array(&mut self, key: &str) -> Result<&mut Vec<Value>> {
        let path = self.path.clone();
        match self
            .root
            .entry(key)
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            Value::Array(items) => Ok(items),
            _ => Err(unreadable(&path, &format!("\"{key}\" is not an array"))),
        }
    }

    pub(super) fn object(&mut self, key: &str) -> Result<&mut Map<String, Value>> {
        let path = self.path.clone();
        match self
            .root
            .entry(key)
            .or_insert_with(|| Value::Object(Map::new()))
        {
            Value::Object(map) => Ok(map),
            _ => Err(unreadable(&path, &format!("\"{key}\" is not an object"))),
        }
    }
}

/// What [`Error::Corrupt`] calls the files.
const CORRUPT_KIND: &str = "Azure CLI JSON file";

pub(super) fn unreadable(path: &Path, why: &str) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        kind: CORRUPT_KIND.into(),
        line: 0,
        column: 0,
        message: why.to_owned(),
    }
}

/// Writes `first` then `second` (each only if changed); if the second write
/// fails, `first` gets its old bytes back.
pub(super) fn write_both(first: &JsonFile, second: &JsonFile) -> Result<()> {
    let replace = |file: &JsonFile, bytes: &[u8]| {
        if let Some(dir) = file.path.parent() {
            private_file::create_private_dir(dir)
                .map_err(|e| io_error(dir, "cannot create the directory", e))?;
        }
        private_file::replace_atomically(&file.path, bytes, |_| {})
            .map_err(|e| io_error(&file.path, e.step, e.error))
    };
    let is_profile = |f: &JsonFile| f.path.file_name().is_some_and(|n| n == PROFILE_FILE);
    let first_bytes = first.new_bytes(is_profile(first), !is_profile(first))?;
    let second_bytes = second.new_bytes(is_profile(second), !is_profile(second))?;
    if let Some(bytes) = &first_bytes {
        replace(first, bytes)?;
    }
    if let Some(bytes) = &second_bytes
        && let Err(e) = replace(second, bytes)
    {
        if first_bytes.is_some() {
            let undo = match &first.original {
                Some(old) => replace(first, old),
                None => std::fs::remove_file(&first.path)
                    .map_err(|e| io_error(&first.path, "cannot remove", e)),
            };
            if let Err(undo) = undo {
                tracing::error!(file = %first.path.display(), error = %undo, "could not restore the file after a failed edit");
            }
        }
        return Err(e);
    }
    Ok(())
}
