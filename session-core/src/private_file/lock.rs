//! The cross-process advisory lock every writer takes before replacing a
//! file.

use std::fs::{self, File};
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

/// Why [`lock_exclusive`] failed.
#[derive(Debug)]
pub enum LockError {
    /// The lock file could not be created, opened or locked (a planted
    /// symbolic link at its path is one such case; the error names it).
    Io(io::Error),
    /// Another process held the lock for the whole timeout.
    TimedOut,
}

/// Takes an exclusive advisory lock on `lock_path` (created 0600, with a
/// private parent directory, never through a symbolic link), polling up to
/// `timeout`. The lock is released when the returned file is dropped, also
/// when the process dies, so a crashed holder never blocks the next one.
pub fn lock_exclusive(lock_path: &Path, timeout: Duration) -> Result<File, LockError> {
    super::create_private_dir(&super::parent_dir(lock_path)).map_err(LockError::Io)?;
    let file = super::open_private(lock_path, false).map_err(LockError::Io)?;
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(fs::TryLockError::WouldBlock) => {}
            Err(fs::TryLockError::Error(e)) => return Err(LockError::Io(e)),
        }
        if started.elapsed() >= timeout {
            return Err(LockError::TimedOut);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Whether another open file holds a lock on `lock_path` (checked with a
/// shared lock taken and dropped at once). A missing file is unlocked. The
/// file is opened read-only and never through a symbolic link.
pub fn is_locked(lock_path: &Path) -> io::Result<bool> {
    let file = match super::open_private_read(lock_path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(false),
        Err(fs::TryLockError::WouldBlock) => Ok(true),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}
