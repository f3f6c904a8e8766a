//! A workspace in one JSON file; see [`FsWorkspace`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{SessionSet, WorkspaceRepository};
use crate::private_file::{self, LockError};
use crate::{Error, Result, Session, SessionId};

/// The environment variable that names the workspace file; it overrides the
/// default location. `sessionctl --workspace` sets the same thing.
pub const WORKSPACE_ENV: &str = "SESSIONCTL_WORKSPACE";

/// The schema version this build reads and writes.
pub const WORKSPACE_SCHEMA_VERSION: u32 = 1;

const KIND: &str = "workspace file";
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);
/// Below this many sessions per extra thread, parsing stays on one thread.
const PARALLEL_PARSE_MIN: usize = 2_000;

/// A migration step: rewrites a top-level document of schema `n` into
/// schema `n + 1`. Errors are reported with the file name.
pub type Migration = fn(&mut Map<String, Value>) -> std::result::Result<(), String>;

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
    migrations: Vec<(u32, Migration)>,
}

impl fmt::Debug for FsWorkspaceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FsWorkspaceBuilder")
            .field("path", &self.path)
            .field("lock_timeout", &self.lock_timeout)
            .field(
                "migrations",
                &self.migrations.iter().map(|m| m.0).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl FsWorkspaceBuilder {
    /// An empty builder: the path comes from [`WORKSPACE_ENV`] or the OS
    /// config directory unless set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads [`WORKSPACE_ENV`] from the process environment.
    pub fn from_env() -> Self {
        Self::from_env_iter(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// Like [`from_env`](Self::from_env) but from the given variables, so
    /// tests need not change the process environment. Reads only
    /// [`WORKSPACE_ENV`]; an empty value counts as unset.
    pub fn from_env_iter(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut builder = Self::new();
        for (key, value) in vars {
            if key == WORKSPACE_ENV && !value.is_empty() {
                builder.path = Some(PathBuf::from(value));
            }
        }
        builder
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
                format!("no home directory to put the workspace in; set {WORKSPACE_ENV}"),
            )
        })
}

/// A [`WorkspaceRepository`] in one JSON file, safe for several processes
/// at once.
///
/// # File format
///
/// ```json
/// {
///   "version": 1,
///   "sessions": [
///     {"sessionId":"…","sessionName":"dev","sessionType":"awsIamUser","status":"inactive","config":{},"revision":3},
///     …
///   ]
/// }
/// ```
///
/// One session per line, in insertion order. Keys this version does not know,
/// at the top level or inside a session, are kept and written back.
///
/// # Safety of the file
///
/// - **Atomic replace**: each write goes to a temporary file in the same
///   directory (mode 0600), which is fsynced, then renamed over the workspace
///   file, then the directory is fsynced. A reader or a crash sees the old
///   file or the new one, never a mix.
/// - **Cross-process lock**: writers take an exclusive advisory lock on
///   `<file>.lock`, re-read the file if another process changed it, apply
///   their change and write. Readers need no lock.
/// - **Backup**: before each replace, the previous file is kept as
///   `<file>.bak` (a hard link, so it costs no copy).
/// - **Never reset**: a file that cannot be read or parsed gives
///   [`Error::Corrupt`] or [`Error::Storage`] naming the file (and the line
///   and column), and is left untouched; nothing is written until it is fixed
///   (for example from `<file>.bak`).
/// - **Schema version**: files of an older schema go through the migration
///   hook ([`FsWorkspaceBuilder::migration`]) when loaded and are written in
///   the current schema on the next write; a file of a newer schema is refused.
///
/// Cloning is cheap and clones share the in-memory copy.
#[derive(Clone)]
pub struct FsWorkspace {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    lock_path: PathBuf,
    backup_path: PathBuf,
    lock_timeout: Duration,
    migrations: Vec<(u32, Migration)>,
    /// What was last read or written, and the file identity it came from.
    state: Mutex<Option<Loaded>>,
}

impl fmt::Debug for FsWorkspace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FsWorkspace")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// The parsed file, plus each session's JSON text so a write re-serializes
/// only the sessions that changed.
struct Loaded {
    stamp: Option<Stamp>,
    set: SessionSet,
    /// JSON text by session id; a missing entry is encoded at the next write.
    raw: HashMap<SessionId, CachedJson>,
    extra: Map<String, Value>,
    /// The text the file had when loaded; `CachedJson::InFile` points into it.
    file: String,
}

/// One session's JSON text: still where it was in the loaded file (no copy),
/// or encoded since.
enum CachedJson {
    InFile(std::ops::Range<usize>),
    Encoded(Box<RawValue>),
}

/// Identifies one version of the file cheaply: every write is a new inode
/// with a new mtime, so an unchanged stamp means an unchanged file.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    #[cfg(unix)]
    ino: u64,
    #[cfg(unix)]
    ctime_ns: i64,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Self {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            ino: meta.ino(),
            #[cfg(unix)]
            ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
        }
    }
}

impl FsWorkspace {
    /// A builder.
    pub fn builder() -> FsWorkspaceBuilder {
        FsWorkspaceBuilder::new()
    }

    /// The workspace at `path`.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self> {
        Self::builder().path(path).build()
    }

    /// The workspace named by [`WORKSPACE_ENV`], else the default path.
    pub fn from_env() -> Result<Self> {
        FsWorkspaceBuilder::from_env().build()
    }

    /// The workspace file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The backup of the previous version of the file.
    pub fn backup_path(&self) -> &Path {
        &self.inner.backup_path
    }

    /// Reads the file now (if it changed) and reports any problem, without
    /// waiting for the first operation.
    pub async fn check(&self) -> Result<usize> {
        self.blocking(|inner| Ok(inner.fresh()?.as_ref().map_or(0, |l| l.set.len())))
            .await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = Arc::clone(&self.inner);
        match tokio::task::spawn_blocking(move || f(&inner)).await {
            Ok(result) => result,
            Err(join) => Err(Error::storage(
                &self.inner.path,
                format!("workspace I/O task failed: {join}"),
                None,
            )),
        }
    }

    /// Runs a change under the cross-process lock and writes the result.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut SessionSet) -> Result<(T, Vec<SessionId>)> + Send + 'static,
    ) -> Result<T> {
        self.blocking(move |inner| inner.write(f)).await
    }
}

impl Inner {
    fn lock_state(&self) -> MutexGuard<'_, Option<Loaded>> {
        // A panic mid-operation leaves at worst a stale copy, and the stamp
        // check below reloads it from the file.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The in-memory copy, reloaded if the file changed since.
    fn fresh(&self) -> Result<MutexGuard<'_, Option<Loaded>>> {
        let mut state = self.lock_state();
        self.refresh(&mut state)?;
        Ok(state)
    }

    fn refresh(&self, state: &mut Option<Loaded>) -> Result<()> {
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let stale = state.as_ref().is_none_or(|l| l.stamp.is_some());
                if stale {
                    *state = Some(Loaded::empty());
                }
                return Ok(());
            }
            Err(e) => return Err(self.io_error("cannot open the workspace file", e)),
        };
        let meta = file
            .metadata()
            .map_err(|e| self.io_error("cannot read the workspace file's metadata", e))?;
        let stamp = Stamp::of(&meta);
        if state.as_ref().is_some_and(|l| l.stamp == Some(stamp)) {
            return Ok(());
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.read_to_end(&mut bytes)
            .map_err(|e| self.io_error("cannot read the workspace file", e))?;
        // Checking UTF-8 once here lets serde_json skip it for every string.
        let text = String::from_utf8(bytes).map_err(|e| {
            let (line, column) = position_of(e.as_bytes(), e.utf8_error().valid_up_to());
            self.corrupt_at(line, column, "not valid UTF-8")
        })?;
        let mut loaded = self.parse(text)?;
        loaded.stamp = Some(stamp);
        *state = Some(loaded);
        Ok(())
    }

    fn parse(&self, text: String) -> Result<Loaded> {
        let bytes = text.as_bytes();
        let top: TopLevel<'_> =
            serde_json::from_str(&text).map_err(|e| self.corrupt_at(e.line(), e.column(), e))?;
        let version = top
            .version
            .ok_or_else(|| self.corrupt_at(1, 1, "the \"version\" field is missing"))?;
        if version > u64::from(WORKSPACE_SCHEMA_VERSION) {
            return Err(Error::storage(
                &self.path,
                format!(
                    "written by a newer version (schema {version}; this build reads up to {WORKSPACE_SCHEMA_VERSION}); upgrade, or use the backup {}",
                    self.backup_path.display()
                ),
                None,
            ));
        }
        if version < u64::from(WORKSPACE_SCHEMA_VERSION) {
            return self.migrate(&text, version as u32);
        }
        let raws = top
            .sessions
            .ok_or_else(|| self.corrupt_at(1, 1, "the \"sessions\" field is missing"))?;
        let sessions = self.parse_sessions(bytes, &raws)?;
        let mut raw = HashMap::with_capacity(raws.len());
        for (session, item) in sessions.iter().zip(&raws) {
            let start = offset_in(bytes, item.get());
            raw.insert(
                session.session_id,
                CachedJson::InFile(start..start + item.get().len()),
            );
        }
        let extra = top.extra;
        let set = SessionSet::from_sessions(sessions)
            .map_err(|id| self.corrupt_at(0, 0, format!("session id {id} appears twice")))?;
        Ok(Loaded {
            stamp: None,
            set,
            raw,
            extra,
            file: text,
        })
    }

    /// Parses and validates each session. Large workspaces are split over
    /// the available cores: sessions parse independently, and parsing is
    /// most of the cost of loading (about 1 µs per session).
    fn parse_sessions(&self, bytes: &[u8], raws: &[&RawValue]) -> Result<Vec<Session>> {
        let parse_one = |item: &&RawValue| -> Result<Session> {
            let session: Session = serde_json::from_str(item.get())
                .map_err(|e| self.corrupt_in(bytes, item.get(), e))?;
            session
                .validate()
                .map_err(|e| self.corrupt_in(bytes, item.get(), e))?;
            Ok(session)
        };
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(raws.len() / PARALLEL_PARSE_MIN + 1);
        if threads <= 1 {
            return raws.iter().map(parse_one).collect();
        }
        let chunk = raws.len().div_ceil(threads);
        let parts: Vec<Result<Vec<Session>>> = std::thread::scope(|scope| {
            let workers: Vec<_> = raws
                .chunks(chunk)
                .skip(1)
                .map(|part| scope.spawn(move || part.iter().map(parse_one).collect()))
                .collect();
            // This thread takes the first chunk itself.
            let mut parts = vec![raws[..chunk].iter().map(parse_one).collect()];
            parts.extend(workers.into_iter().map(|w| {
                w.join().unwrap_or_else(|_| {
                    Err(self.corrupt_at(0, 0, "a session parser thread panicked"))
                })
            }));
            parts
        });
        let mut sessions = Vec::with_capacity(raws.len());
        // The first error in file order wins, as in a sequential parse.
        for part in parts {
            sessions.extend(part?);
        }
        Ok(sessions)
    }

    /// Runs the migration steps from `from` up to the current schema on the
    /// whole document, then parses it. The file itself is rewritten only by
    /// the next write.
    fn migrate(&self, text: &str, from: u32) -> Result<Loaded> {
        let mut doc: Map<String, Value> =
            serde_json::from_str(text).map_err(|e| self.corrupt_at(e.line(), e.column(), e))?;
        for version in from..WORKSPACE_SCHEMA_VERSION {
            let step = self
                .migrations
                .iter()
                .find(|(v, _)| *v == version)
                .map(|(_, step)| *step)
                .ok_or_else(|| {
                    Error::storage(
                        &self.path,
                        format!(
                            "schema {version} is older than this build can migrate (no step from {version} to {})",
                            version + 1
                        ),
                        None,
                    )
                })?;
            step(&mut doc).map_err(|reason| {
                Error::storage(
                    &self.path,
                    format!("migrating from schema {version}: {reason}"),
                    None,
                )
            })?;
        }
        doc.insert("version".into(), Value::from(WORKSPACE_SCHEMA_VERSION));
        let migrated = serde_json::to_string(&doc)
            .map_err(|e| self.corrupt_at(0, 0, format!("after migration: {e}")))?;
        self.parse(migrated)
    }

    fn write<T>(
        &self,
        change: impl FnOnce(&mut SessionSet) -> Result<(T, Vec<SessionId>)>,
    ) -> Result<T> {
        let mut state = self.lock_state();
        let _lock = self.lock_file()?;
        self.refresh(&mut state)?;
        let loaded = state.as_mut().expect("refresh always leaves a state");
        // SessionSet checks everything before it mutates, so a refused
        // change leaves memory as it was; no copy of the set is needed.
        let (result, changed) = change(&mut loaded.set)?;
        for id in &changed {
            loaded.raw.remove(id);
        }
        let written = render(loaded)
            .map_err(|e| self.corrupt_at(0, 0, format!("cannot encode a session: {e}")))
            .and_then(|text| self.replace(text.as_bytes()))
            .and_then(|()| {
                fs::metadata(&self.path)
                    .map_err(|e| self.io_error("cannot read the new file's metadata", e))
            });
        match written {
            Ok(meta) => {
                loaded.stamp = Some(Stamp::of(&meta));
                Ok(result)
            }
            Err(e) => {
                // Memory now holds a change the file does not: forget it so
                // the next operation reloads the file.
                *state = None;
                Err(e)
            }
        }
    }

    /// Takes the cross-process lock, polling up to `lock_timeout`.
    fn lock_file(&self) -> Result<File> {
        private_file::lock_exclusive(&self.lock_path, self.lock_timeout).map_err(|e| match e {
            LockError::Io(e) => self.io_error("cannot lock the workspace", e),
            LockError::TimedOut => Error::storage(
                &self.path,
                format!(
                    "another process has held the lock {} for over {:?}",
                    self.lock_path.display(),
                    self.lock_timeout
                ),
                None,
            ),
        })
    }

    /// Temp file, fsync, keep the old file as backup, rename, fsync the dir.
    fn replace(&self, bytes: &[u8]) -> Result<()> {
        private_file::replace_atomically(&self.path, bytes, || self.keep_backup())
            .map_err(|e| self.io_error(e.step, e.error))
    }

    /// Points `<file>.bak` at the current file. Best effort: a failure here
    /// loses only the backup, never the data being written.
    fn keep_backup(&self) {
        let dir = private_file::parent_dir(&self.path);
        if !self.path.exists() {
            return;
        }
        let staged = dir.join(format!(
            ".{}.bak.tmp",
            self.path
                .file_name()
                .expect("checked by the builder")
                .to_string_lossy(),
        ));
        let _ = fs::remove_file(&staged);
        let linked = fs::hard_link(&self.path, &staged)
            .or_else(|_| fs::copy(&self.path, &staged).map(|_| ()));
        match linked.and_then(|()| fs::rename(&staged, &self.backup_path)) {
            Ok(()) => {}
            Err(e) => {
                let _ = fs::remove_file(&staged);
                tracing::warn!(path = %self.backup_path.display(), error = %e, "could not keep the workspace backup");
            }
        }
    }

    fn io_error(&self, what: &str, e: std::io::Error) -> Error {
        Error::storage(&self.path, what, Some(e))
    }

    fn corrupt_at(&self, line: usize, column: usize, message: impl fmt::Display) -> Error {
        Error::Corrupt {
            path: self.path.clone(),
            kind: KIND.into(),
            line,
            column,
            message: strip_position(&message.to_string()),
        }
    }

    /// An error inside one session's text, positioned in the whole file.
    fn corrupt_in(&self, file: &[u8], item: &str, e: impl ErrorPosition) -> Error {
        let (line0, col0) = position_of(file, offset_in(file, item));
        let (line, column) = match e.position() {
            Some((1, col)) => (line0, col0 + col - 1),
            Some((l, col)) => (line0 + l - 1, col),
            None => (line0, col0),
        };
        self.corrupt_at(line, column, e.message())
    }
}

/// Where `item`, a slice of `file`, starts in it.
fn offset_in(file: &[u8], item: &str) -> usize {
    (item.as_ptr() as usize).saturating_sub(file.as_ptr() as usize)
}

/// The 1-based line and column of byte `offset` of `file`.
fn position_of(file: &[u8], offset: usize) -> (usize, usize) {
    let before = &file[..offset.min(file.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    (line, before.len() - line_start + 1)
}

/// The position and message of an error found inside one session.
trait ErrorPosition {
    fn position(&self) -> Option<(usize, usize)>;
    fn message(&self) -> String;
}

impl ErrorPosition for serde_json::Error {
    fn position(&self) -> Option<(usize, usize)> {
        Some((self.line(), self.column()))
    }
    fn message(&self) -> String {
        self.to_string()
    }
}

impl ErrorPosition for Error {
    fn position(&self) -> Option<(usize, usize)> {
        None
    }
    fn message(&self) -> String {
        self.to_string()
    }
}

/// serde_json appends " at line L column C"; the position is reported in
/// its own fields, so drop the duplicate.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) if message[i..].contains(" column ") => message[..i].to_owned(),
        _ => message.to_owned(),
    }
}

impl Loaded {
    fn empty() -> Self {
        Loaded {
            stamp: None,
            set: SessionSet::default(),
            raw: HashMap::new(),
            extra: Map::new(),
            file: String::new(),
        }
    }
}

/// The whole file: each session's cached JSON text, encoding the ones
/// that have none yet.
fn render(loaded: &mut Loaded) -> serde_json::Result<String> {
    let Loaded {
        set,
        raw,
        extra,
        file,
        ..
    } = loaded;
    for session in set.sessions() {
        if let std::collections::hash_map::Entry::Vacant(slot) = raw.entry(session.session_id) {
            slot.insert(CachedJson::Encoded(RawValue::from_string(
                serde_json::to_string(session)?,
            )?));
        }
    }
    let texts: Vec<&str> = set
        .sessions()
        .iter()
        .map(|s| match &raw[&s.session_id] {
            CachedJson::InFile(range) => &file[range.clone()],
            CachedJson::Encoded(text) => text.get(),
        })
        .collect();
    let size: usize = texts.iter().map(|t| t.len() + 6).sum();
    let mut out = String::with_capacity(size + 64);
    out.push_str("{\n  \"version\": ");
    out.push_str(&WORKSPACE_SCHEMA_VERSION.to_string());
    out.push_str(",\n  \"sessions\": [");
    for (i, text) in texts.iter().enumerate() {
        out.push_str(if i == 0 { "\n    " } else { ",\n    " });
        out.push_str(text);
    }
    out.push_str(if texts.is_empty() { "]" } else { "\n  ]" });
    for (key, value) in extra.iter() {
        out.push_str(",\n  ");
        out.push_str(&serde_json::to_string(key)?);
        out.push_str(": ");
        out.push_str(&serde_json::to_string(value)?);
    }
    out.push_str("\n}\n");
    Ok(out)
}

/// The top level, read without buffering the sessions: each session stays
/// a slice of the input until it is parsed on its own.
struct TopLevel<'a> {
    version: Option<u64>,
    sessions: Option<Vec<&'a RawValue>>,
    extra: Map<String, Value>,
}

impl<'de: 'a, 'a> Deserialize<'de> for TopLevel<'a> {
    fn deserialize<D: de::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        struct TopVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for TopVisitor<'a> {
            type Value = TopLevel<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a workspace object with \"version\" and \"sessions\"")
            }
            fn visit_map<M: MapAccess<'de>>(
                self,
                mut map: M,
            ) -> std::result::Result<Self::Value, M::Error> {
                let mut top = TopLevel {
                    version: None,
                    sessions: None,
                    extra: Map::new(),
                };
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match key.as_ref() {
                        "version" if top.version.is_none() => top.version = Some(map.next_value()?),
                        "sessions" if top.sessions.is_none() => {
                            top.sessions = Some(map.next_value()?)
                        }
                        "version" | "sessions" => {
                            return Err(de::Error::custom(format!("duplicate field \"{key}\"")));
                        }
                        _ => {
                            let value = map.next_value()?;
                            top.extra.insert(key.into_owned(), value);
                        }
                    }
                }
                Ok(top)
            }
        }
        deserializer.deserialize_map(TopVisitor(std::marker::PhantomData))
    }
}

#[async_trait::async_trait]
impl WorkspaceRepository for FsWorkspace {
    async fn list(&self) -> Result<Vec<Session>> {
        self.blocking(|inner| {
            let state = inner.fresh()?;
            Ok(state
                .as_ref()
                .map(|l| l.set.sessions().to_vec())
                .unwrap_or_default())
        })
        .await
    }

    async fn get(&self, id: SessionId) -> Result<Session> {
        self.blocking(move |inner| {
            let state = inner.fresh()?;
            match state.as_ref() {
                Some(loaded) => loaded.set.get(id).cloned(),
                None => Err(Error::not_found(format!("session {id}"))),
            }
        })
        .await
    }

    async fn insert(&self, session: Session) -> Result<Session> {
        self.write(move |set| {
            let id = session.session_id;
            set.insert(session).map(|s| (s, vec![id]))
        })
        .await
    }

    async fn update(&self, session: Session) -> Result<Session> {
        self.write(move |set| {
            let id = session.session_id;
            set.update(session).map(|s| (s, vec![id]))
        })
        .await
    }

    async fn delete(&self, id: SessionId, expected_revision: Option<u64>) -> Result<Session> {
        self.write(move |set| set.delete(id, expected_revision).map(|s| (s, Vec::new())))
            .await
    }
}
