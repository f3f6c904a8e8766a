//! Replacing a file so that a crash at any moment leaves the old version or
//! the new one, through a temporary file no one else can have prepared.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use super::{parent_dir, resolve_symlinks, sync_dir};

/// Random characters in a temporary file's name: enough that another user
/// of a shared directory cannot plant the name in advance.
const RANDOM_CHARS: usize = 12;

/// Which step of [`replace_atomically`] or [`copy_atomically`] failed.
#[derive(Debug)]
pub struct ReplaceError {
    /// What was being done, e.g. `cannot write the temporary file`; written
    /// to follow the path in a message.
    pub step: &'static str,
    /// The I/O error.
    pub error: io::Error,
}

fn fail(step: &'static str) -> impl FnOnce(io::Error) -> ReplaceError {
    move |error| ReplaceError { step, error }
}

/// Replaces `path` with `bytes` so that a crash at any moment leaves the old
/// file or the new one:
///
/// 1. a symbolic link at `path` is followed to the file it names: the link
///    stays, its target is replaced (in the target's directory);
/// 2. a file its owner cannot write is refused (nothing is written): a user
///    who made it read-only meant it;
/// 3. the bytes go to a new temporary file beside the target, with a random
///    name, created with `O_EXCL` and mode 0600 (so a link planted under a
///    predictable name is never written through), and are fsynced;
/// 4. `before_rename` runs with the target's path (e.g. to keep a backup);
/// 5. the temporary file is renamed over the target, the directory fsynced,
///    and temporary files left by writers killed mid-write are removed.
///
/// The caller must hold the lock that serializes writers of `path` (step 5
/// removes the other writers' temporary files).
pub fn replace_atomically(
    path: &Path,
    bytes: &[u8],
    before_rename: impl FnOnce(&Path),
) -> Result<(), ReplaceError> {
    let target = resolve_symlinks(path).map_err(fail("cannot follow the symbolic link"))?;
    refuse_read_only(&target)?;
    let dir = parent_dir(&target);
    let name = file_name(&target);
    let prefix = temp_prefix(&name);
    let mut staged = temp_builder(&prefix)
        .tempfile_in(&dir)
        .map_err(fail("cannot create the temporary file"))?;
    staged
        .write_all(bytes)
        .and_then(|()| staged.as_file().sync_all())
        .map_err(fail("cannot write the temporary file"))?;
    before_rename(&target);
    // On failure the temporary file is removed when the error is dropped.
    staged
        .persist(&target)
        .map_err(|e| fail("cannot replace the file")(e.error))?;
    sync_dir(&dir).map_err(fail("cannot sync the directory"))?;
    remove_stale_temps(&dir, &name);
    Ok(())
}

/// Makes `to` a copy of `from`, atomically: a hard link when the file system
/// allows it (no bytes copied), else a copy, staged under a random name as
/// in [`replace_atomically`] and renamed over `to` (a link at `to` is
/// replaced, not followed). Used for backups.
pub fn copy_atomically(from: &Path, to: &Path) -> Result<(), ReplaceError> {
    let dir = parent_dir(to);
    let name = file_name(to);
    let prefix = temp_prefix(&name);
    let builder = temp_builder(&prefix);
    let staged = builder
        .make_in(&dir, |staged| fs::hard_link(from, staged))
        .map(tempfile::NamedTempFile::into_temp_path)
        .or_else(|_| {
            let mut staged = builder.tempfile_in(&dir)?;
            io::copy(&mut fs::File::open(from)?, &mut staged)?;
            staged.as_file().sync_all()?;
            Ok(staged.into_temp_path())
        })
        .map_err(fail("cannot stage the copy"))?;
    staged
        .persist(to)
        .map_err(|e| fail("cannot replace the copy")(e.error))?;
    remove_stale_temps(&dir, &name);
    Ok(())
}

fn file_name(path: &Path) -> OsString {
    path.file_name()
        .map_or_else(|| OsString::from("file"), ToOwned::to_owned)
}

/// `.NAME.`: the start of the temporary files of the file `NAME`.
fn temp_prefix(name: &OsStr) -> OsString {
    let mut prefix = OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    prefix
}

/// Temporary files `.NAME.<random>.tmp`, mode 0600.
fn temp_builder(prefix: &OsStr) -> tempfile::Builder<'_, 'static> {
    let mut builder = tempfile::Builder::new();
    builder
        .prefix(prefix)
        .suffix(TEMP_SUFFIX)
        .rand_bytes(RANDOM_CHARS);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o600));
    }
    builder
}

const TEMP_SUFFIX: &str = ".tmp";

/// Removes the temporary files of `name` that writers killed mid-write left
/// in `dir` (they may hold secrets: the AWS credentials file is plain
/// text), and the one fixed-name temporary file earlier versions used.
/// Best effort: a leftover costs disk, not correctness. Only names of the
/// exact form [`temp_builder`] makes are touched, so another file's
/// temporary files (say of `NAME.bak`) are not.
fn remove_stale_temps(dir: &Path, name: &OsStr) {
    let prefix = temp_prefix(name);
    let (prefix, name) = (prefix.to_string_lossy(), name.to_string_lossy());
    let legacy = format!(".{name}{TEMP_SUFFIX}");
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        let ours = file_name
            .strip_prefix(prefix.as_ref())
            .and_then(|rest| rest.strip_suffix(TEMP_SUFFIX))
            .is_some_and(|random| {
                random.len() == RANDOM_CHARS && random.chars().all(|c| c.is_ascii_alphanumeric())
            });
        if ours || file_name == legacy {
            // Unlinking a name never touches what a link there points to.
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Refuses to replace a file its owner cannot write.
/// Refuses a file its owner cannot write (nothing missing is refused):
/// a user who made it read-only meant it. Also for writers that change a
/// file by way of another one (the workspace's journal).
pub fn refuse_read_only(target: &Path) -> Result<(), ReplaceError> {
    let meta = match fs::metadata(target) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(fail("cannot inspect the file")(e)),
    };
    #[cfg(unix)]
    let (read_only, mode) = {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        (mode & 0o200 == 0, format!("mode {:o}", mode & 0o7777))
    };
    #[cfg(not(unix))]
    let (read_only, mode) = (meta.permissions().readonly(), "read-only".to_owned());
    if !read_only {
        return Ok(());
    }
    Err(ReplaceError {
        step: "the file is read-only, so nothing was written (make it writable, e.g. `chmod u+w`, \
               to allow changes)",
        error: io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} is read-only ({mode})", target.display()),
        ),
    })
}
