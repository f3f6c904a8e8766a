//! Crash-safe files readable only by their owner, safe in a directory other
//! users can write to: the one way every writer of this SDK replaces a file
//! (the workspace, the encrypted secret file, the AWS credentials and config
//! files, the SSO token cache, the Azure CLI files).
//!
//! - [`replace_atomically`] follows a symbolic link at the file's own path
//!   (the link stays a link and its target gets the new content, replaced in
//!   the target's directory), refuses a read-only file, and writes through a
//!   randomly named temporary file created with `O_EXCL` (so never through a
//!   planted link), fsynced and renamed over the target.
//! - [`lock_exclusive`] opens its lock file with `O_NOFOLLOW`: a planted link
//!   is an error naming it, and nothing it points to changes.
//!
//! Written by hand around `tempfile` (which makes the temporary file): the
//! pieces are small std calls, but their order (temp file, fsync, rename,
//! directory fsync), the link and permission rules and the lock-with-timeout
//! are what make a replace safe, and no well-kept crate bundles them.

mod links;
mod lock;
mod replace;

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

pub use links::resolve_symlinks;
pub use lock::{LockError, is_locked, lock_exclusive};
pub use replace::{ReplaceError, copy_atomically, refuse_read_only, replace_atomically};

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

/// Opens an existing file read-only, never through a symbolic link at its
/// own path (an error naming the link instead).
pub fn open_private_read(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options
        .open(path)
        .map_err(|e| links::explain_refused_link(path, e))
}

/// Opens (creating if needed) a file readable and writable only by its
/// owner: 0600 on Unix, also when it already existed with looser bits.
///
/// A symbolic link at `path` is never followed (`O_NOFOLLOW`): the error
/// names the link, and the file it points to is not opened, truncated or
/// chmodded. Anything but a regular file is refused likewise.
pub fn open_private(path: &Path, truncate: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options
        .read(true)
        .write(true)
        .create(true)
        .truncate(truncate);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    let file = options
        .open(path)
        .map_err(|e| links::explain_refused_link(path, e))?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other(format!(
            "{} is not a regular file; refusing to use it",
            path.display()
        )));
    }
    // `mode` applies only when the file is created; a file left over by a
    // crashed writer, or made by someone else, may have other permissions.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
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

#[cfg(all(test, unix))]
mod tests;
