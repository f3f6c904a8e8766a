//! `FsWorkspace` against real processes and a real file system.
//!
//! The multi-process tests re-run this test binary as a child with
//! `FS_CHILD_ROLE` set; the `child_entry` test does the child's work and is a
//! no-op otherwise.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use session_core::{
    Error, FsWorkspace, Session, SessionType, WORKSPACE_SCHEMA_VERSION, WorkspaceRepository,
};

const ROLE: &str = "FS_CHILD_ROLE";
const PATH: &str = "FS_CHILD_PATH";
const TAG: &str = "FS_CHILD_TAG";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// The child side, run only by a parent test (`--ignored --exact`); it is
/// not a test of its own, so a plain run lists it as ignored.
#[test]
#[ignore = "the child process of the multi-process tests, started by them"]
fn child_entry() {
    let role = std::env::var(ROLE).expect("started by a parent test, which sets the role");
    let path = PathBuf::from(std::env::var(PATH).expect("path"));
    let tag = std::env::var(TAG).expect("tag");
    let ws = FsWorkspace::open(&path).expect("open");
    runtime().block_on(async {
        match role.as_str() {
            "add50" => {
                for i in 0..50 {
                    let s = Session::new(format!("{tag}-{i}"), SessionType::AwsIamUser).expect("s");
                    ws.insert(s).await.expect("insert");
                }
            }
            "churn" => {
                // Insert, saying which writes returned. Every third
                // session is large, so a write takes long enough to be
                // killed in the middle; a small compaction floor makes
                // compactions frequent, so kills land in appends, in
                // compactions and between the two.
                let ws = FsWorkspace::builder()
                    .path(&path)
                    .compact_at(Some(8 * 1024))
                    .build()
                    .expect("open");
                let pad = "x".repeat(64 * 1024);
                // Bounded, so that a child whose parent test was killed
                // (and so never kills it) cannot fill the disk.
                for i in 0..3_000 {
                    let mut s =
                        Session::new(format!("{tag}-{i}"), SessionType::Redfish).expect("s");
                    if i % 3 == 0 {
                        s.config
                            .as_map_mut()
                            .insert("pad".into(), pad.clone().into());
                    }
                    ws.insert(s).await.expect("insert");
                    use std::io::Write;
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "{i}")
                        .and_then(|()| out.flush())
                        .expect("ack");
                }
            }
            other => panic!("unknown role {other}"),
        }
    });
}

fn child_command(role: &str, path: &Path, tag: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("exe"));
    command
        .args([
            "--ignored",
            "--exact",
            "child_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .env(PATH, path)
        .env(TAG, tag);
    command
}

fn spawn_child(role: &str, path: &Path, tag: &str) -> std::process::Child {
    child_command(role, path, tag)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child")
}

/// Parses the file the way any reader would, independently of FsWorkspace.
fn read_raw(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).expect("read");
    serde_json::from_slice(&bytes).expect("the file is always valid JSON")
}

#[test]
fn eight_processes_add_fifty_each() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("ws.json");
    let children: Vec<_> = (0..8)
        .map(|i| spawn_child("add50", &path, &format!("p{i}")))
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let ws = FsWorkspace::open(&path).expect("open");
    let rt = runtime();
    assert_eq!(rt.block_on(ws.list()).expect("list").len(), 400);
    // The file alone, once the journal is folded in, as any reader sees it.
    rt.block_on(ws.compact()).expect("compact");
    let raw = read_raw(&path);
    assert_eq!(raw["version"], WORKSPACE_SCHEMA_VERSION);
    let sessions = raw["sessions"].as_array().expect("array");
    assert_eq!(sessions.len(), 400, "no write was lost");
    let mut names: Vec<_> = sessions
        .iter()
        .map(|s| s["sessionName"].as_str().expect("name"))
        .collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 400, "every session is there once");
    assert_eq!(rt.block_on(ws.list()).expect("list").len(), 400);
}

/// Kills the child if the test fails before it does.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sigkill_mid_write_loses_no_acknowledged_write() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("ws.json");
    let mut last_count = 0usize;
    for round in 0..30u64 {
        let mut child = KillOnDrop(
            child_command("churn", &path, &format!("r{round}"))
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn"),
        );
        let (acks_tx, acks) = std::sync::mpsc::channel::<u64>();
        let stdout = child.0.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The test harness prints lines of its own.
                if let Ok(i) = line.trim().parse() {
                    let _ = acks_tx.send(i);
                }
            }
        });
        // Wait until this child has written (an event, not a guess at how
        // long a start takes under load), then kill it at varying points of
        // its next write cycles.
        let first = acks
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("round {round}: the child wrote nothing in 60 s"));
        std::thread::sleep(Duration::from_millis((round * 7) % 20));
        drop(child);
        reader.join().expect("reader");
        let acked = acks.try_iter().fold(first, u64::max);

        // The file itself is whole JSON at every moment.
        read_raw(&path);
        let ws = FsWorkspace::open(&path).expect("open");
        let rt = runtime();
        let names: std::collections::HashSet<String> = rt
            .block_on(ws.list())
            .expect("a new reader reads the workspace after the kill")
            .into_iter()
            .map(|s| s.session_name)
            .collect();
        for i in 0..=acked {
            assert!(
                names.contains(&format!("r{round}-{i}")),
                "round {round}: write {i} returned before the kill, and is lost"
            );
        }
        assert!(
            names.len() > last_count,
            "round {round}: sessions went from {last_count} to {}",
            names.len()
        );
        last_count = names.len();
        // A later process can write to it.
        rt.block_on(
            ws.insert(Session::new(format!("after-{round}"), SessionType::Azure).expect("s")),
        )
        .expect("a write after the kill");
        last_count += 1;
    }
    let temporaries: Vec<_> = std::fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(
        temporaries.len() <= 2,
        "killed writers' temporary files do not pile up: {temporaries:?}"
    );
}

/// Readers take no lock: while another process appends and compacts, a
/// reader (a new handle each time, and one long-lived handle) always reads
/// a whole workspace, never one that goes back in time.
#[test]
fn readers_see_a_whole_workspace_while_another_process_writes() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("ws.json");
    let _child = KillOnDrop(
        child_command("churn", &path, "w")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn"),
    );
    let rt = runtime();
    let kept = FsWorkspace::open(&path).expect("open");
    let (mut fresh_last, mut kept_last, mut reads) = (0, 0, 0);
    let until = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < until || fresh_last < 10 {
        let fresh = rt
            .block_on(FsWorkspace::open(&path).expect("open").list())
            .expect("a new reader reads the workspace");
        let seen = rt
            .block_on(kept.list())
            .expect("a kept reader reads the workspace");
        assert!(
            fresh.len() >= fresh_last && seen.len() >= kept_last,
            "a read went back in time"
        );
        for (i, session) in fresh.iter().enumerate() {
            assert_eq!(
                session.session_name,
                format!("w-{i}"),
                "in order, none missing"
            );
        }
        (fresh_last, kept_last, reads) = (fresh.len(), seen.len(), reads + 1);
        assert!(
            std::time::Instant::now() < until + Duration::from_secs(60),
            "the child wrote fewer than 10 sessions in a minute"
        );
    }
    assert!(reads > 10, "{reads} reads");
}

#[test]
fn corrupt_file_is_reported_with_position_and_left_untouched() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("ws.json");
    let ws = FsWorkspace::open(&path).expect("open");
    let rt = runtime();
    rt.block_on(ws.insert(Session::new("good", SessionType::Azure).expect("s")))
        .expect("insert");
    // Break the second line's session: a status nobody knows.
    let text = std::fs::read_to_string(&path).expect("read");
    let broken = text.replace("\"status\":\"inactive\"", "\"status\":\"sleeping\"");
    assert_ne!(broken, text);
    std::fs::write(&path, &broken).expect("write");

    for attempt in [
        rt.block_on(ws.list()).map(|_| ()),
        rt.block_on(ws.insert(Session::new("new", SessionType::Azure).expect("s")))
            .map(|_| ()),
    ] {
        match attempt {
            Err(Error::Corrupt {
                path: p,
                line,
                column,
                message,
                ..
            }) => {
                assert_eq!(p, path);
                assert_eq!(line, 5, "the session's line");
                assert!(column > 1, "a column inside the line");
                assert!(message.contains("sleeping"), "{message}");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        broken,
        "the file was not touched"
    );

    // Invalid UTF-8 on line 2.
    let mut bad = b"{\"version\": 1,\n  \"sessions\": [\"".to_vec();
    bad.extend_from_slice(&[0xff, 0xfe]);
    bad.extend_from_slice(b"\"]}");
    std::fs::write(&path, &bad).expect("write");
    match rt.block_on(ws.list()) {
        Err(Error::Corrupt {
            line,
            column,
            message,
            ..
        }) => {
            assert_eq!((line, column), (2, 17), "{message}");
            assert!(message.contains("UTF-8"), "{message}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(&path).expect("read"),
        bad,
        "the file was not touched"
    );

    // The same session twice: the second one's line, no `line 0`.
    let id = session_core::SessionId::new();
    let item = |name: &str| {
        format!(
            r#"{{"sessionId":"{id}","sessionName":"{name}","sessionType":"azure","status":"inactive"}}"#
        )
    };
    let twice = format!(
        "{{\"version\": 1, \"sessions\": [\n{},\n{}\n]}}",
        item("a"),
        item("b")
    );
    std::fs::write(&path, &twice).expect("write");
    match rt.block_on(ws.list()) {
        Err(err @ Error::Corrupt { line, column, .. }) => {
            assert_eq!((line, column), (3, 1), "{err}");
            assert!(!err.to_string().contains("line 0"), "{err}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }

    // Not JSON at all, and an empty file.
    for garbage in ["{\"version\": 1, \"sessions\": [", ""] {
        std::fs::write(&path, garbage).expect("write");
        let err = rt.block_on(ws.list()).expect_err("garbage is refused");
        let text = err.to_string();
        assert!(
            text.contains(&path.display().to_string()) && text.contains("line"),
            "{text}"
        );
        assert_eq!(std::fs::read_to_string(&path).expect("read"), garbage);
    }
}

#[test]
fn newer_schema_is_refused_and_older_is_migrated() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("ws.json");
    let rt = runtime();
    let newer = format!(
        r#"{{"version": {}, "sessions": []}}"#,
        WORKSPACE_SCHEMA_VERSION + 1
    );
    let newer = newer.as_str();
    std::fs::write(&path, newer).expect("write");
    let newer_ws = FsWorkspace::open(&path).expect("open");
    let err = rt.block_on(newer_ws.list()).expect_err("newer");
    assert!(err.to_string().contains("newer"), "{err}");
    assert!(
        !err.to_string().contains(".bak"),
        "no backup to point at: {err}"
    );
    assert_eq!(std::fs::read_to_string(&path).expect("read"), newer);
    std::fs::write(newer_ws.backup_path(), newer).expect("write");
    let err = rt.block_on(newer_ws.list()).expect_err("newer");
    assert!(
        err.to_string()
            .contains(&*newer_ws.backup_path().to_string_lossy()),
        "the backup that exists is named: {err}"
    );
    std::fs::remove_file(newer_ws.backup_path()).expect("rm");

    // Schema 0 kept sessions under "items"; a migration step renames it.
    let id = session_core::SessionId::new();
    let old = format!(
        r#"{{"version": 0, "items": [{{"sessionId":"{id}","sessionName":"old","sessionType":"azure","status":"inactive"}}], "keepMe": 7}}"#
    );
    std::fs::write(&path, &old).expect("write");
    let unmigrated = FsWorkspace::open(&path).expect("open");
    let err = rt
        .block_on(unmigrated.list())
        .expect_err("no step registered");
    assert!(err.to_string().contains("schema 0"), "{err}");
    let ws = FsWorkspace::builder()
        .path(&path)
        .migration(0, |doc| {
            let items = doc.remove("items").ok_or("no items")?;
            doc.insert("sessions".into(), items);
            Ok(())
        })
        .build()
        .expect("build");
    let sessions = rt.block_on(ws.list()).expect("migrated");
    assert_eq!(sessions.len(), 1);
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        old,
        "reading does not rewrite"
    );
    rt.block_on(ws.insert(Session::new("new", SessionType::Azure).expect("s")))
        .expect("insert");
    let raw = read_raw(&path);
    assert_eq!(
        raw["version"], WORKSPACE_SCHEMA_VERSION,
        "written in the current schema (step 0 registered, 1 built in)"
    );
    assert_eq!(raw["keepMe"], 7, "unknown top-level keys survive");
    assert_eq!(raw["sessions"].as_array().expect("a").len(), 2);
}

#[cfg(unix)]
#[test]
fn files_are_private_and_the_previous_version_is_kept() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("sub/ws.json");
    let ws = FsWorkspace::open(&path).expect("open");
    let rt = runtime();
    let first = rt
        .block_on(ws.insert(Session::new("one", SessionType::Azure).expect("s")))
        .expect("insert");
    let after_first = std::fs::read(&path).expect("read");
    rt.block_on(ws.insert(Session::new("two", SessionType::Azure).expect("s")))
        .expect("insert");
    let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&ws.journal_path()), 0o600, "journal");
    // The backup is made when the file is written whole again.
    assert!(rt.block_on(ws.compact()).expect("compact"));
    assert_eq!(mode(&path), 0o600, "workspace file");
    assert_eq!(
        mode(&path.with_file_name("ws.json.lock")),
        0o600,
        "lock file"
    );
    assert_eq!(
        mode(path.parent().expect("dir")),
        0o700,
        "created directory"
    );
    assert_eq!(
        std::fs::read(ws.backup_path()).expect("backup"),
        after_first,
        "the backup is the previous version"
    );
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().expect("dir"))
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "no temporary files left: {leftovers:?}"
    );
    assert_eq!(
        rt.block_on(ws.get(first.session_id))
            .expect("get")
            .session_name,
        "one"
    );
}

#[test]
fn path_is_the_given_one_or_the_config_dir() {
    let ws = FsWorkspace::open("/tmp/x/ws.json").expect("open");
    assert_eq!(ws.path(), Path::new("/tmp/x/ws.json"));
    let ws = FsWorkspace::open_default().expect("default");
    assert!(
        ws.path().ends_with("sessionctl/workspace.json"),
        "{}",
        ws.path().display()
    );
    let err = FsWorkspace::open("").expect_err("empty path");
    assert!(matches!(err, Error::InvalidInput { .. }));
}

/// D1: a workspace file that is a symbolic link (into a dotfiles
/// repository, say) stays a link; its target gets every update.
#[cfg(unix)]
#[test]
fn a_symlinked_workspace_file_stays_a_link_and_its_target_is_updated() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir(dir.path().join("real")).expect("mkdir");
    let target = dir.path().join("real/t.json");
    let link = dir.path().join("w.json");
    std::os::unix::fs::symlink("real/t.json", &link).expect("link");
    let ws = FsWorkspace::open(&link).expect("open");
    let rt = runtime();
    for name in ["one", "two"] {
        rt.block_on(ws.insert(Session::new(name, SessionType::Azure).expect("s")))
            .expect("insert");
        assert!(
            std::fs::symlink_metadata(&link)
                .expect("meta")
                .file_type()
                .is_symlink(),
            "after adding {name}, the workspace file is still a link"
        );
    }
    let through_target = FsWorkspace::open(&target).expect("open");
    assert_eq!(
        rt.block_on(through_target.list()).expect("list").len(),
        2,
        "the link's target holds both sessions"
    );
}

/// D2: links planted at the names this SDK chooses (the temporary file and
/// the lock file) are never written through.
#[cfg(unix)]
#[test]
fn links_planted_at_the_temporary_and_lock_names_change_nothing() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let dir = tempfile::tempdir().expect("dir");
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "someone else's file").expect("write");
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let untouched = || {
        assert_eq!(
            std::fs::read_to_string(&victim).expect("read"),
            "someone else's file"
        );
        let mode = std::fs::metadata(&victim)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
    };
    let path = dir.path().join("w.json");
    let rt = runtime();

    // The temporary name earlier versions used: the write goes elsewhere.
    symlink(&victim, dir.path().join(".w.json.tmp")).expect("link");
    let ws = FsWorkspace::open(&path).expect("open");
    rt.block_on(ws.insert(Session::new("one", SessionType::Azure).expect("s")))
        .expect("insert");
    untouched();

    // The lock file: an error naming the link.
    let lock = dir.path().join("w.json.lock");
    std::fs::remove_file(&lock).expect("rm lock");
    symlink(&victim, &lock).expect("link");
    let before = std::fs::read(&path).expect("read");
    let err = rt
        .block_on(ws.insert(Session::new("two", SessionType::Azure).expect("s")))
        .expect_err("a planted lock link is refused");
    let chain = std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ");
    assert!(
        chain.contains(&*lock.to_string_lossy()) && chain.contains("symbolic link"),
        "{chain}"
    );
    untouched();
    assert_eq!(std::fs::read(&path).expect("read"), before);
}

/// D3: a workspace its owner made read-only is refused, not swapped for a
/// writable copy.
#[cfg(unix)]
#[test]
fn a_read_only_workspace_file_is_refused_and_left_unchanged() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("w.json");
    let ws = FsWorkspace::open(&path).expect("open");
    let rt = runtime();
    rt.block_on(ws.insert(Session::new("one", SessionType::Azure).expect("s")))
        .expect("insert");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).expect("chmod");
    let before = std::fs::read(&path).expect("read");
    let err = rt
        .block_on(ws.insert(Session::new("two", SessionType::Azure).expect("s")))
        .expect_err("read-only");
    assert!(matches!(err, Error::Storage { .. }), "{err:?}");
    assert!(err.to_string().contains("read-only"), "{err}");
    assert_eq!(std::fs::read(&path).expect("read"), before);
    let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o400);
    assert_eq!(rt.block_on(ws.list()).expect("still readable").len(), 1);
}
