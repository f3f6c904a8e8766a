//! [`FsWorkspace`]: the workspace file under a cross-process lock, replaced
//! atomically with a backup of the previous version.

use std::fmt;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::builder::FsWorkspaceBuilder;
use super::format::{Loaded, Migration};
use crate::private_file::{self, LockError};
use crate::repository::{SessionLock, SessionSet, WorkspaceRepository};
use crate::{Error, Result, Session, SessionId};

/// A [`WorkspaceRepository`] in one JSON file, safe for several processes
/// at once.
///
/// # File format
///
/// ```json
/// {
///   "version": 3,
///   "generation": 12,
///   "sessions": [
///     {"sessionId":"…","sessionName":"dev","sessionType":"awsIamUser","status":"inactive","config":{"profile":"dev"},"revision":3},
///     {"sessionId":"…","sessionName":"bmc","sessionType":"redfish","status":"active","config":{"endpoint":"https://bmc","username":"admin"},"state":{"authMode":"session","sessionUri":"/redfish/v1/SessionService/Sessions/7"},"revision":5},
///     …
///   ]
/// }
/// ```
///
/// One session per line, in insertion order. Each session's `config` holds
/// its settings and `state` (omitted when empty) what its last start made
/// available; see [`Session`]. Keys this version does not know, at the top
/// level or inside a session, are kept and written back.
///
/// # Journal
///
/// A change does not rewrite the file: it appends one line, the changed
/// session (or the id of a removed one), to `<file>.journal`
/// ([`journal_path`](Self::journal_path)) and `fdatasync`s it, so an update
/// costs about the same with 100 sessions as with 100,000. Readers apply
/// the journal on top of the file. Once the journal is larger than 64 KiB
/// and than a quarter of the file ([`FsWorkspaceBuilder::compact_at`]), the
/// writer that made it so folds it in: it writes the file whole (as the
/// next `generation`) and removes the journal. So:
///
/// - The file is the same readable JSON as ever, but while a journal is
///   pending it lacks the latest changes. [`compact`](Self::compact) folds
///   the journal in now (`sessionctl` does so before it exits);
///   `compact_at(None)` turns the journal off.
/// - The journal's first line names the file generation it continues. A
///   journal of an older generation (a compaction killed after writing the
///   file) is ignored and replaced; one of a newer generation (the file was
///   replaced by an older copy) is an error that changes nothing.
/// - A last line without its newline is a write that never returned (its
///   writer was killed): it is skipped, and cut off by the next writer. A
///   damaged line elsewhere is [`Error::Corrupt`] naming the journal and
///   the line.
/// - The first write to a file of an older schema rewrites it whole, so
///   an older build never reads a file whose journal it would not see; and
///   schema 3 is refused by builds that read only 2.
///
/// # Safety of the file
///
/// - **Atomic replace**: each write of the whole file goes to a temporary file in the same
///   directory (mode 0600), which is fsynced, then renamed over the workspace
///   file, then the directory is fsynced. A reader or a crash sees the old
///   file or the new one, never a mix.
/// - **Cross-process lock**: writers take an exclusive advisory lock on
///   `<file>.lock`, re-read the file if another process changed it (and
///   the journal lines appended since), apply their change and write.
///   Readers need no lock; a reader that finds the file replaced while it
///   was reading it three times in a row waits for the lock instead.
/// - **Backup**: before each replace of the whole file, the previous file
///   is kept as `<file>.bak` (a hard link, so it costs no copy); with the
///   journal, that is the file before the last compaction.
/// - **Never reset**: a file that cannot be read or parsed gives
///   [`Error::Corrupt`] or [`Error::Storage`] naming the file (and the line
///   and column), and is left untouched; nothing is written until it is fixed
///   (for example from `<file>.bak`).
/// - **Schema version**: files of an older schema go through the migration
///   steps when loaded (built-in ones, see
///   [`WORKSPACE_SCHEMA_VERSION`](crate::WORKSPACE_SCHEMA_VERSION),
///   or a step given to [`FsWorkspaceBuilder::migration`], which wins) and
///   are written in the current schema on the next write, whose backup
///   keeps the old file's bytes. Loading alone never rewrites the file; a
///   file of a newer schema is refused.
///
/// Cloning is cheap and clones share the in-memory copy.
#[derive(Clone)]
pub struct FsWorkspace {
    pub(super) inner: Arc<Inner>,
}

/// The state shared by the clones of one [`FsWorkspace`].
pub(super) struct Inner {
    pub(super) path: PathBuf,
    pub(super) lock_path: PathBuf,
    pub(super) backup_path: PathBuf,
    pub(super) lock_timeout: Duration,
    /// The journal's compaction floor in bytes; `None`: no journal, every
    /// change rewrites the file.
    pub(super) compact_at: Option<u64>,
    pub(super) migrations: Vec<(u32, Migration)>,
    /// What was last read or written, and the file identity it came from.
    pub(super) state: Mutex<Option<Loaded>>,
}

impl fmt::Debug for FsWorkspace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FsWorkspace")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// Identifies one version of the file cheaply: every write is a new inode
/// with a new mtime, so an unchanged stamp means an unchanged file.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    #[cfg(unix)]
    ino: u64,
    #[cfg(unix)]
    ctime_ns: i64,
}

impl Stamp {
    pub(super) fn of(meta: &fs::Metadata) -> Self {
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

    /// The workspace at [`default_path`](super::default_path), the one
    /// `sessionctl` uses unless told otherwise.
    pub fn open_default() -> Result<Self> {
        FsWorkspaceBuilder::new().build()
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

    /// The journal of changes not yet folded into the file: `<file>.journal`
    /// beside the file (beside the file a symbolic link names, so every path
    /// to the file finds it).
    pub fn journal_path(&self) -> PathBuf {
        self.inner.journal_path()
    }

    /// Folds the journal into the file now, so that the file alone holds
    /// every session (for a person or a tool about to read it); returns
    /// whether there was anything to fold. Writers do this by themselves
    /// once the journal grows past [`FsWorkspaceBuilder::compact_at`].
    pub async fn compact(&self) -> Result<bool> {
        self.blocking(|inner| inner.compact_now()).await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        crate::blocking::run(&self.inner, f, || {
            Error::storage(
                &self.inner.path,
                "the workspace I/O task was cancelled",
                None,
            )
        })
        .await
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
    /// See [`FsWorkspace::journal_path`].
    pub(super) fn journal_path(&self) -> PathBuf {
        let file =
            crate::private_file::resolve_symlinks(&self.path).unwrap_or_else(|_| self.path.clone());
        let mut name = file.file_name().unwrap_or_default().to_owned();
        name.push(".journal");
        file.with_file_name(name)
    }

    fn lock_state(&self) -> MutexGuard<'_, Option<Loaded>> {
        // A panic mid-operation leaves at worst a stale copy, and the stamp
        // check below reloads it from the file.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The in-memory copy, reloaded if the file changed since.
    fn fresh(&self) -> Result<MutexGuard<'_, Option<Loaded>>> {
        let mut state = self.lock_state();
        self.refresh(&mut state, false)?;
        Ok(state)
    }

    fn write<T>(
        &self,
        change: impl FnOnce(&mut SessionSet) -> Result<(T, Vec<SessionId>)>,
    ) -> Result<T> {
        let mut state = self.lock_state();
        let _lock = self.lock_file()?;
        self.refresh(&mut state, true)?;
        let loaded = state.as_mut().expect("refresh always leaves a state");
        // SessionSet checks everything before it mutates, so a refused
        // change leaves memory as it was; no copy of the set is needed.
        let (result, changed) = change(&mut loaded.set)?;
        match self.persist(loaded, &changed) {
            Ok(()) => Ok(result),
            Err(e) => {
                // Memory now holds a change the files may not: forget it so
                // the next operation reloads them.
                *state = None;
                Err(e)
            }
        }
    }

    /// Folds the journal into the file; see [`FsWorkspace::compact`].
    fn compact_now(&self) -> Result<bool> {
        let mut state = self.lock_state();
        let _lock = self.lock_file()?;
        self.refresh(&mut state, true)?;
        let loaded = state.as_mut().expect("refresh always leaves a state");
        self.compact(loaded).inspect_err(|_| *state = None)
    }

    /// Takes the cross-process lock, polling up to `lock_timeout`.
    pub(super) fn lock_file(&self) -> Result<File> {
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

    /// Temp file, fsync, keep the old file as backup, rename, fsync the dir
    /// (a symlinked workspace file stays a link; its target is replaced).
    pub(super) fn replace(&self, bytes: &[u8]) -> Result<()> {
        private_file::replace_atomically(&self.path, bytes, |target| self.keep_backup(target))
            .map_err(|e| self.io_error(e.step, e.error))
    }

    /// Points `<file>.bak` at the current version of `target` (the file,
    /// or the file its link names). Best effort: a failure here loses only
    /// the backup, never the data being written.
    fn keep_backup(&self, target: &Path) {
        if !target.exists() {
            return;
        }
        if let Err(e) = private_file::copy_atomically(target, &self.backup_path) {
            tracing::warn!(path = %self.backup_path.display(), error = %e.error, "could not keep the workspace backup: {}", e.step);
        }
    }

    pub(super) fn io_error(&self, what: &str, e: std::io::Error) -> Error {
        Error::storage(&self.path, what, Some(e))
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
        self.write(move |set| set.delete(id, expected_revision).map(|s| (s, vec![id])))
            .await
    }

    /// An advisory lock on a per-session file; see `session_lock`.
    async fn lock_session(&self, id: SessionId) -> Result<SessionLock> {
        super::session_lock::lock(&self.inner.path, id).await
    }

    async fn hold_live(&self, id: SessionId) -> Result<Option<SessionLock>> {
        super::session_lock::hold_live(&self.inner.path, id)
            .await
            .map(Some)
    }

    async fn is_held_elsewhere(&self, id: SessionId) -> Result<bool> {
        super::session_lock::is_held_elsewhere(&self.inner.path, id).await
    }
}
