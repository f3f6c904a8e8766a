//! Symbolic links: followed at the path a user named (their file may be a
//! link into a dotfiles repository), never at a name this SDK chose
//! (temporary and lock files), where a link can only have been planted.

use std::io;
use std::path::{Path, PathBuf};

/// How many links [`resolve_symlinks`] follows before giving up, as the
/// kernel's `ELOOP` limit does.
const MAX_LINKS: usize = 40;

/// Follows `path` through symbolic links to the file they name (which may
/// not exist yet), so an atomic rename replaces the target and the link
/// stays a link. A path that is not a link comes back unchanged.
pub fn resolve_symlinks(path: &Path) -> io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = std::fs::read_link(&current)?;
                current = if target.is_absolute() {
                    target
                } else {
                    super::parent_dir(&current).join(target)
                };
            }
            Ok(_) => return Ok(current),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(current),
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "{}: more than {MAX_LINKS} levels of symbolic links",
        path.display()
    )))
}

/// Turns the bare `ELOOP` of an `O_NOFOLLOW` open into an error that says
/// what happened and names the link.
pub(super) fn explain_refused_link(path: &Path, error: io::Error) -> io::Error {
    #[cfg(unix)]
    if error.raw_os_error() == Some(libc::ELOOP) {
        return io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is a symbolic link where a regular file was expected; refusing to follow \
                 it (someone may have planted it). Nothing it points to was changed; remove \
                 the link to continue",
                path.display()
            ),
        );
    }
    let _ = path;
    error
}
