use super::*;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::time::Duration;

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn replace_leaves_only_the_new_private_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.json");
    fs::write(&path, "old").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    // Temporary files left by killed writers: this version's random names
    // and the fixed name earlier versions used. Not someone else's file.
    for stale in [".f.json.AbCdEf123456.tmp", ".f.json.tmp"] {
        fs::write(dir.path().join(stale), "half-written secrets").unwrap();
    }
    let other = dir.path().join(".f.json.bak.AbCdEf123456.tmp");
    fs::write(&other, "another file's temporary file").unwrap();
    let mut hooked = None;
    replace_atomically(&path, b"new", |target| hooked = Some(target.to_owned())).unwrap();
    assert_eq!(hooked.as_deref(), Some(path.as_path()));
    assert_eq!(fs::read_to_string(&path).unwrap(), "new");
    assert_eq!(mode(&path), 0o600);
    assert_eq!(
        names_in(dir.path()),
        [".f.json.bak.AbCdEf123456.tmp", "f.json"],
        "the leftovers are gone, another file's temporary file is not"
    );
}

#[test]
fn a_symlinked_file_stays_a_link_and_its_target_is_replaced_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    fs::create_dir(&real).unwrap();
    let target = real.join("t.json");
    fs::write(&target, "old").unwrap();
    let link = dir.path().join("w.json");
    symlink("real/t.json", &link).unwrap();

    let mut hooked = None;
    replace_atomically(&link, b"new", |t| hooked = Some(t.to_owned())).unwrap();

    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link stays a link"
    );
    assert_eq!(fs::read_to_string(&target).unwrap(), "new");
    assert_eq!(hooked.as_deref(), Some(target.as_path()));
    assert_eq!(names_in(&real), ["t.json"]);
    assert_eq!(names_in(dir.path()), ["real", "w.json"]);
}

#[test]
fn a_link_to_a_file_not_yet_there_gets_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("w.json");
    symlink("t.json", &link).unwrap();
    replace_atomically(&link, b"new", |_| {}).unwrap();
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("t.json")).unwrap(),
        "new"
    );
}

#[test]
fn a_link_planted_at_the_old_temporary_name_is_not_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    fs::write(&victim, "someone else's file").unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
    let path = dir.path().join("w.json");
    symlink(&victim, dir.path().join(".w.json.tmp")).unwrap();

    replace_atomically(&path, b"workspace", |_| {}).unwrap();

    assert_eq!(fs::read_to_string(&victim).unwrap(), "someone else's file");
    assert_eq!(mode(&victim), 0o644);
    assert_eq!(fs::read_to_string(&path).unwrap(), "workspace");
}

#[test]
fn a_read_only_file_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.json");
    fs::write(&path, "kept").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
    let mut hooked = false;
    let error = replace_atomically(&path, b"new", |_| hooked = true).unwrap_err();
    assert!(error.step.contains("read-only"), "{}", error.step);
    assert!(
        error.error.to_string().contains("mode 400"),
        "{}",
        error.error
    );
    assert!(!hooked);
    assert_eq!(fs::read_to_string(&path).unwrap(), "kept");
    assert_eq!(mode(&path), 0o400);
    assert_eq!(names_in(dir.path()), ["w.json"]);
}

#[test]
fn a_link_planted_at_the_lock_path_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    fs::write(&victim, "someone else's file").unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
    let lock = dir.path().join("w.json.lock");
    symlink(&victim, &lock).unwrap();

    let Err(LockError::Io(error)) = lock_exclusive(&lock, Duration::from_millis(10)) else {
        panic!("a planted lock link was followed");
    };
    let text = error.to_string();
    assert!(text.contains(&*lock.to_string_lossy()), "{text}");
    assert!(text.contains("symbolic link"), "{text}");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "someone else's file");
    assert_eq!(mode(&victim), 0o644);
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
    assert_eq!(mode(&lock), 0o600);
    assert_eq!(mode(&dir.path().join("sub")), 0o700);
}

#[test]
fn copy_replaces_a_link_at_the_destination_instead_of_following_it() {
    let dir = tempfile::tempdir().unwrap();
    let from = dir.path().join("w.json");
    fs::write(&from, "current").unwrap();
    let victim = dir.path().join("victim");
    fs::write(&victim, "someone else's file").unwrap();
    let to = dir.path().join("w.json.bak");
    symlink(&victim, &to).unwrap();

    copy_atomically(&from, &to).unwrap();

    assert!(!fs::symlink_metadata(&to).unwrap().file_type().is_symlink());
    assert_eq!(fs::read_to_string(&to).unwrap(), "current");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "someone else's file");
    assert_eq!(names_in(dir.path()), ["victim", "w.json", "w.json.bak"]);
}
