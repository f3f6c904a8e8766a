//! `FsWorkspace` against real processes and a real file system.
//!
//! The multi-process tests re-run this test binary as a child with
//! `FS_CHILD_ROLE` set; the `child_entry` test does the child's work and is a
//! no-op otherwise.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use session_core::{Error, FsWorkspace, Session, SessionType, WorkspaceRepository};

const ROLE: &str = "FS_CHILD_ROLE";
const PATH: &str = "FS_CHILD_PATH";
const TAG: &str = "FS_CHILD_TAG";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// The child side. Does nothing unless started by a parent test.
#[test]
fn child_entry() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
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
                // Insert forever, each time with a large config so a write
                // takes long enough to be killed in the middle.
                let pad = "x".repeat(64 * 1024);
                for i in 0.. {
                    let mut s =
                        Session::new(format!("{tag}-{i}"), SessionType::Redfish).expect("s");
                    s.config
                        .as_map_mut()
                        .insert("pad".into(), pad.clone().into());
                    ws.insert(s).await.expect("insert");
                }
            }
            other => panic!("unknown role {other}"),
        }
    });
}

fn spawn_child(role: &str, path: &Path, tag: &str) -> std::process::Child {
    Command::new(std::env::current_exe().expect("exe"))
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(PATH, path)
        .env(TAG, tag)
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
    let raw = read_raw(&path);
    assert_eq!(raw["version"], 1);
    let sessions = raw["sessions"].as_array().expect("array");
    assert_eq!(sessions.len(), 400, "no write was lost");
    let mut names: Vec<_> = sessions
        .iter()
        .map(|s| s["sessionName"].as_str().expect("name"))
        .collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 400, "every session is there once");
    let ws = FsWorkspace::open(&path).expect("open");
    assert_eq!(runtime().block_on(ws.list()).expect("list").len(), 400);
}

#[test]
fn sigkill_mid_write_leaves_old_or_new_file() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("ws.json");
    let mut last_count = 0usize;
    let mut observed_growth = 0;
    for round in 0..30u64 {
        let mut child = spawn_child("churn", &path, &format!("r{round}"));
        // Kill at varying points of the write cycle.
        std::thread::sleep(Duration::from_millis(20 + (round * 7) % 60));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        if !path.exists() {
            continue;
        }
        let raw = read_raw(&path);
        let count = raw["sessions"].as_array().expect("sessions").len();
        assert!(
            count >= last_count,
            "round {round}: sessions went from {last_count} to {count}"
        );
        if count > last_count {
            observed_growth += 1;
        }
        last_count = count;
        // A later process still reads it and can write to it.
        let ws = FsWorkspace::open(&path).expect("open");
        assert_eq!(
            runtime()
                .block_on(ws.list())
                .expect("list after kill")
                .len(),
            count
        );
    }
    assert!(
        observed_growth > 5,
        "the children wrote between kills ({observed_growth} rounds grew)"
    );
    assert!(last_count > 0);
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
                assert_eq!(line, 4, "the session's line");
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
    let newer = r#"{"version": 2, "sessions": []}"#;
    std::fs::write(&path, newer).expect("write");
    let err = rt
        .block_on(FsWorkspace::open(&path).expect("open").list())
        .expect_err("newer");
    assert!(err.to_string().contains("newer"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), newer);

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
    assert_eq!(raw["version"], 1, "written in the current schema");
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
