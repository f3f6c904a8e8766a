//! Crash-safe files readable only by their owner: the primitives behind
//! [`FsWorkspace`](crate::FsWorkspace) and
//! [`EncryptedFileSecretStore`](crate::EncryptedFileSecretStore), public so
//! provider crates that write files other tools read (the AWS credentials
//! and config files, the SSO token cache) get the same guarantees.
//!
//! Written by hand: the pieces are small std calls, but their order (temp
//! file, fsync, rename, directory fsync) and the permission handling are what
//! make a replace crash-safe, and no well-kept crate bundles exactly this
//! with the lock-with-timeout both callers need.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Creates `dir` and its missing parents, with mode 0700 on Unix.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Opens (creating if needed) a file readable and writable only by its
/// owner: 0600 on Unix, also when it already existed with looser bits.
pub fn open_private(path: &Path, truncate: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options
        .read(true)
        .write(true)
        .create(true)
        .truncate(truncate);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;
    // `mode` applies only when the file is created; a file left over by a
    // crashed writer, or made by someone else, may have other permissions.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if file.metadata()?.permissions().mode() & 0o077 != 0 {
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(file)
}

/// Makes a rename in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// The directory `path` is in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Why [`lock_exclusive`] failed.
#[derive(Debug)]
pub enum LockError {
    /// The lock file could not be created, opened or locked.
    Io(io::Error),
    /// Another process held the lock for the whole timeout.
    TimedOut,
}

/// Takes an exclusive advisory lock on `lock_path` (created 0600, with a
/// private parent directory), polling up to `timeout`. The lock is released
/// when the returned file is dropped, also when the process dies.
pub fn lock_exclusive(lock_path: &Path, timeout: Duration) -> Result<File, LockError> {
    create_private_dir(&parent_dir(lock_path)).map_err(LockError::Io)?;
    let file = open_private(lock_path, false).map_err(LockError::Io)?;
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

/// Which step of [`replace_atomically`] failed.
#[derive(Debug)]
pub struct ReplaceError {
    /// What was being done, e.g. `cannot write the temporary file`.
    pub step: &'static str,
    /// The I/O error.
    pub error: io::Error,
}

/// Replaces `path` with `bytes` so that a crash at any moment leaves the old
/// file or the new one: a temporary file in the same directory (mode 0600),
/// fsync, `before_rename` (e.g. keep a backup), rename over `path`, fsync of
/// the directory.
///
/// The caller must hold the lock that serializes writers of `path`: the
/// temporary file has one fixed name, so a file left by a writer killed
/// mid-write is truncated and reused by the next one instead of piling up.
pub fn replace_atomically(
    path: &Path,
    bytes: &[u8],
    before_rename: impl FnOnce(),
) -> Result<(), ReplaceError> {
    let fail = |step, error| ReplaceError { step, error };
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy());
    let tmp = dir.join(format!(".{name}.tmp"));
    let written = open_private(&tmp, true).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(error) = written {
        let _ = fs::remove_file(&tmp);
        return Err(fail("cannot write the temporary file", error));
    }
    before_rename();
    if let Err(error) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(fail("cannot replace the file", error));
    }
    sync_dir(&dir).map_err(|error| fail("cannot sync the directory", error))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replace_leaves_only_the_new_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        // A temporary file left by a killed writer, world-readable.
        let stale = dir.path().join(".f.json.tmp");
        std::fs::write(&stale, "half-written garbage that is longer").unwrap();
        std::fs::set_permissions(&stale, fs::Permissions::from_mode(0o644)).unwrap();
        let mut hooked = false;
        replace_atomically(&path, b"new", || hooked = true).unwrap();
        assert!(hooked);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!stale.exists(), "the leftover was reused and renamed away");
    }

    #[test]
    fn lock_times_out_while_held_and_frees_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("sub/x.lock");
        let held = lock_exclusive(&lock, Duration::from_millis(10)).unwrap();
        assert!(matches!(
            lock_exclusive(&lock, Duration::from_millis(30)),
            Err(LockError::TimedOut)
        ));
        drop(held);
        lock_exclusive(&lock, Duration::from_millis(30)).unwrap();
        assert_eq!(
            std::fs::metadata(&lock).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let sub = dir.path().join("sub");
        assert_eq!(
            std::fs::metadata(sub).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
}
