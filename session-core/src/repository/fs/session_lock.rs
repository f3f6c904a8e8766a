//! The per-session lock of [`FsWorkspace`](super::FsWorkspace): an
//! exclusive advisory lock (`flock`) on `<workspace file>.locks/<id>.lock`.
//!
//! A file per session, not the workspace's own `.lock`: that one is held
//! only for the instant of a write, while a session's lock is held across
//! a provider call that can take minutes (a device-code sign-in), and other
//! sessions must not wait for it. The operating system releases the lock
//! when the holding process dies, so a killed `sessionctl` never blocks
//! the others. Lock files are left in place: deleting one while another
//! process waits on it would let two processes hold "the" lock at once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::private_file::{self, LockError};
use crate::repository::SessionLock;
use crate::{Error, Result, SessionId};

/// How long to wait for another holder. Long, because the holder may be
/// waiting for a person to finish a device-code sign-in (those codes live
/// 15 minutes); a holder that dies frees the lock at once.
const WAIT: Duration = Duration::from_secs(20 * 60);

/// `<workspace file>.locks/<id>.lock`.
fn lock_path(workspace: &Path, id: SessionId) -> PathBuf {
    locks_dir(workspace).join(format!("{id}.lock"))
}

/// `<workspace file>.locks/<id>.live`: locked exclusively by the process
/// that holds the session's live connection, for as long as it holds it.
fn live_path(workspace: &Path, id: SessionId) -> PathBuf {
    locks_dir(workspace).join(format!("{id}.live"))
}

fn locks_dir(workspace: &Path) -> PathBuf {
    let mut dir = workspace.as_os_str().to_owned();
    dir.push(".locks");
    PathBuf::from(dir)
}

/// Marks session `id`'s live connection held by this process: an
/// exclusive lock on its `.live` file, released with the guard or when the
/// process dies (so a killed holder never looks alive).
pub(super) async fn hold_live(workspace: &Path, id: SessionId) -> Result<SessionLock> {
    let path = live_path(workspace, id);
    let shown = path.clone();
    let taken =
        tokio::task::spawn_blocking(move || private_file::lock_exclusive(&path, Duration::ZERO))
            .await
            .map_err(|e| Error::storage(&shown, format!("the live-hold task failed: {e}"), None))?;
    match taken {
        Ok(file) => Ok(SessionLock::new(file)),
        Err(LockError::Io(e)) => Err(Error::storage(
            &shown,
            format!("cannot mark session {id} as held"),
            Some(e),
        )),
        Err(LockError::TimedOut) => Err(crate::repository::held_elsewhere_error(&format!(
            "session {id}"
        ))),
    }
}

/// Whether another process holds session `id`'s live connection: its
/// `.live` file is locked. A missing file means nobody ever held it here.
pub(super) async fn is_held_elsewhere(workspace: &Path, id: SessionId) -> Result<bool> {
    let path = live_path(workspace, id);
    let shown = path.clone();
    tokio::task::spawn_blocking(move || private_file::is_locked(&path))
        .await
        .map_err(|e| Error::storage(&shown, format!("the live-hold task failed: {e}"), None))?
        .map_err(|e| {
            Error::storage(
                &shown,
                format!("cannot tell whether session {id} is held"),
                Some(e),
            )
        })
}
/// Takes the lock of session `id` of the workspace at `workspace`, waiting
/// on the blocking pool.
pub(super) async fn lock(workspace: &Path, id: SessionId) -> Result<SessionLock> {
    let path = lock_path(workspace, id);
    let shown = path.clone();
    let taken = tokio::task::spawn_blocking(move || private_file::lock_exclusive(&path, WAIT))
        .await
        .map_err(|e| Error::storage(&shown, format!("the session lock task failed: {e}"), None))?;
    match taken {
        Ok(file) => Ok(SessionLock::new(file)),
        Err(LockError::Io(e)) => Err(Error::storage(
            &shown,
            format!("cannot lock session {id}"),
            Some(e),
        )),
        Err(LockError::TimedOut) => Err(Error::storage(
            &shown,
            format!("another process has held the lock of session {id} for over {WAIT:?}"),
            None,
        )),
    }
}
