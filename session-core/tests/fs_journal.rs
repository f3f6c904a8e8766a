//! `FsWorkspace`'s journal: what is on disk after updates, compaction, and
//! the states a crash or a person can leave behind (a torn last line, a
//! compaction cut short, a file restored from a backup, a damaged line).
//! The multi-process and kill -9 tests are in `fs_workspace.rs`.

use std::path::Path;

use session_core::{Error, FsWorkspace, Session, SessionType, WorkspaceRepository};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn raw(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("read")).expect("the file is whole JSON")
}

fn journal_lines(ws: &FsWorkspace) -> Vec<serde_json::Value> {
    std::fs::read_to_string(ws.journal_path())
        .expect("journal")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

fn names(ws: &FsWorkspace) -> Vec<String> {
    runtime()
        .block_on(ws.list())
        .expect("list")
        .into_iter()
        .map(|s| s.session_name)
        .collect()
}

/// A workspace with sessions "a", "b", "c" written whole, then "b" renamed
/// and "c" removed through the journal.
fn with_pending_journal(path: &Path) -> FsWorkspace {
    let ws = FsWorkspace::open(path).expect("open");
    let rt = runtime();
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        let s = rt
            .block_on(ws.insert(Session::new(name, SessionType::Azure).expect("s")))
            .expect("insert");
        ids.push(s.session_id);
    }
    rt.block_on(ws.compact()).expect("compact");
    let mut b = rt.block_on(ws.get(ids[1])).expect("get");
    b.session_name = "b2".into();
    rt.block_on(ws.update(b)).expect("update");
    rt.block_on(ws.delete(ids[2], None)).expect("delete");
    ws
}

#[test]
fn an_update_appends_one_line_and_compaction_folds_the_journal_in() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("ws.json");
    let ws = with_pending_journal(&path);
    // The file is as compacted: the journal holds the two changes.
    let file = raw(&path);
    assert_eq!(file["version"], 3);
    let generation = file["generation"].as_u64().expect("generation");
    assert_eq!(file["sessions"].as_array().expect("s").len(), 3);
    let lines = journal_lines(&ws);
    assert_eq!(lines.len(), 3, "a header and two records: {lines:?}");
    assert_eq!(lines[0]["generation"], generation);
    assert_eq!(lines[1]["put"]["sessionName"], "b2");
    assert!(lines[2]["delete"].is_string());
    // Another handle (another process) sees both changes.
    assert_eq!(names(&FsWorkspace::open(&path).expect("open")), ["a", "b2"]);

    assert!(runtime().block_on(ws.compact()).expect("compact"));
    assert!(!ws.journal_path().exists(), "the journal is gone");
    let file = raw(&path);
    assert_eq!(file["generation"], generation + 1);
    let in_file: Vec<_> = file["sessions"]
        .as_array()
        .expect("s")
        .iter()
        .map(|s| s["sessionName"].as_str().expect("name").to_owned())
        .collect();
    assert_eq!(in_file, ["a", "b2"]);
    assert!(
        !runtime().block_on(ws.compact()).expect("compact"),
        "nothing left to fold"
    );
}

#[test]
fn writers_compact_once_the_journal_outgrows_its_floor() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("ws.json");
    let ws = FsWorkspace::builder()
        .path(&path)
        .compact_at(Some(2_000))
        .build()
        .expect("open");
    let rt = runtime();
    let mut session = rt
        .block_on(ws.insert(Session::new("s", SessionType::Azure).expect("s")))
        .expect("insert");
    let mut generations = std::collections::BTreeSet::new();
    for i in 0..100 {
        session.session_name = format!("s{i}");
        session = rt.block_on(ws.update(session)).expect("update");
        generations.insert(raw(&path)["generation"].as_u64().expect("g"));
        if ws.journal_path().exists() {
            let size = std::fs::metadata(ws.journal_path()).expect("meta").len();
            assert!(size <= 2_000 + 400, "compacted past the floor: {size}");
        }
    }
    assert!(
        generations.len() >= 5,
        "compactions happened: {generations:?}"
    );
    assert_eq!(names(&FsWorkspace::open(&path).expect("open")), ["s99"]);

    // With the journal off, the file always holds every session.
    let plain = FsWorkspace::builder()
        .path(&path)
        .compact_at(None)
        .build()
        .expect("open");
    session.session_name = "plain".into();
    rt.block_on(plain.update(session)).expect("update");
    assert!(!plain.journal_path().exists());
    assert_eq!(raw(&path)["sessions"][0]["sessionName"], "plain");
}

/// A writer killed in the middle of an append leaves part of a line: it
/// is not a change (the write never returned), readers skip it, and the
/// next writer cuts it off before appending.
#[test]
fn a_torn_last_line_is_skipped_and_cut_off_by_the_next_writer() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("ws.json");
    let ws = with_pending_journal(&path);
    let whole = std::fs::read(ws.journal_path()).expect("journal");
    let mut torn = whole.clone();
    // Longer than the record the next writer appends, so that it does not
    // merely overwrite it.
    torn.extend_from_slice(br#"{"put":{"sessionId":"6f1c","pad":""#);
    torn.extend_from_slice(&[b'x'; 2048]);
    std::fs::write(ws.journal_path(), &torn).expect("write");

    let reader = FsWorkspace::open(&path).expect("open");
    assert_eq!(names(&reader), ["a", "b2"]);
    runtime()
        .block_on(reader.insert(Session::new("d", SessionType::Azure).expect("s")))
        .expect("insert after a torn line");
    let lines = journal_lines(&reader);
    assert_eq!(lines.len(), 4, "the torn part is gone: {lines:?}");
    assert_eq!(lines[3]["put"]["sessionName"], "d");
    assert_eq!(
        names(&FsWorkspace::open(&path).expect("open")),
        ["a", "b2", "d"]
    );
}

/// A compaction writes the file (next generation), then removes the
/// journal; killed between the two, it leaves a journal of an older
/// generation than the file. It is ignored, and the next writer replaces it.
#[test]
fn a_journal_older_than_the_file_is_ignored_and_replaced() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("ws.json");
    let ws = with_pending_journal(&path);
    let journal = std::fs::read(ws.journal_path()).expect("journal");
    assert!(runtime().block_on(ws.compact()).expect("compact"));
    std::fs::write(ws.journal_path(), &journal).expect("put the old journal back");
    // Without the generation, replaying "delete c" and "b2" would do no
    // harm here; make the old journal's replay visible instead: a record
    // that the compacted file must not get back.
    let mut stale = journal.clone();
    stale.extend_from_slice(
        format!(
            "{}\n",
            serde_json::json!({"put": serde_json::to_value(
                Session::new("ghost", SessionType::Azure).expect("s")
            ).expect("json")})
        )
        .as_bytes(),
    );
    std::fs::write(ws.journal_path(), &stale).expect("write");

    let reader = FsWorkspace::open(&path).expect("open");
    assert_eq!(
        names(&reader),
        ["a", "b2"],
        "the older journal is not applied"
    );
    runtime()
        .block_on(reader.insert(Session::new("d", SessionType::Azure).expect("s")))
        .expect("insert");
    let lines = journal_lines(&reader);
    assert_eq!(lines.len(), 2, "a new journal: {lines:?}");
    assert_eq!(lines[0]["generation"], raw(&path)["generation"]);
    assert_eq!(
        names(&FsWorkspace::open(&path).expect("open")),
        ["a", "b2", "d"]
    );
}

/// The file replaced by an older copy (its backup) while a journal of the
/// newer file is there: reported, and nothing is written or guessed.
#[test]
fn a_journal_newer_than_the_file_is_reported_and_nothing_changes() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("ws.json");
    let ws = with_pending_journal(&path);
    std::fs::copy(ws.backup_path(), &path).expect("restore the backup");
    let (file, journal) = (
        std::fs::read(&path).expect("file"),
        std::fs::read(ws.journal_path()).expect("journal"),
    );
    let reader = FsWorkspace::open(&path).expect("open");
    let rt = runtime();
    for attempt in [
        rt.block_on(reader.list()).map(|_| ()),
        rt.block_on(reader.insert(Session::new("d", SessionType::Azure).expect("s")))
            .map(|_| ()),
    ] {
        let err = attempt.expect_err("refused");
        assert!(matches!(err, Error::Storage { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("ws.json.journal") && text.contains("older copy"),
            "{text}"
        );
    }
    assert_eq!(std::fs::read(&path).expect("file"), file);
    assert_eq!(std::fs::read(ws.journal_path()).expect("journal"), journal);
}

#[test]
fn a_damaged_journal_line_is_reported_with_its_line_and_left_untouched() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("ws.json");
    let ws = with_pending_journal(&path);
    let text = std::fs::read_to_string(ws.journal_path()).expect("journal");
    let damaged = text.replacen("\"status\":\"inactive\"", "\"status\":\"sleeping\"", 1);
    assert_ne!(damaged, text);
    std::fs::write(ws.journal_path(), &damaged).expect("write");
    let rt = runtime();
    let reader = FsWorkspace::open(&path).expect("open");
    for attempt in [
        rt.block_on(reader.list()).map(|_| ()),
        rt.block_on(reader.compact()).map(|_| ()),
    ] {
        match attempt {
            Err(Error::Corrupt {
                path: p,
                line,
                message,
                ..
            }) => {
                assert_eq!(p, ws.journal_path());
                assert_eq!(line, 2, "the put record's line");
                assert!(message.contains("sleeping"), "{message}");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
    assert_eq!(
        std::fs::read_to_string(ws.journal_path()).expect("journal"),
        damaged
    );
}

/// A change goes to the journal only once the file exists in the current
/// schema: an older file is rewritten whole by the first write, so that an
/// older build never reads it without seeing a journal it cannot read.
#[test]
fn the_first_write_to_an_older_schema_rewrites_the_file() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("ws.json");
    std::fs::write(&path, r#"{"version": 2, "sessions": []}"#).expect("write");
    let ws = FsWorkspace::open(&path).expect("open");
    runtime()
        .block_on(ws.insert(Session::new("a", SessionType::Azure).expect("s")))
        .expect("insert");
    assert!(!ws.journal_path().exists());
    let file = raw(&path);
    assert_eq!(file["version"], 3);
    assert_eq!(file["sessions"][0]["sessionName"], "a");
}

#[cfg(unix)]
#[test]
fn a_link_planted_at_the_journal_name_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("ws.json");
    let ws = FsWorkspace::open(&path).expect("open");
    let rt = runtime();
    rt.block_on(ws.insert(Session::new("a", SessionType::Azure).expect("s")))
        .expect("insert");
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "someone else's file").expect("write");
    std::os::unix::fs::symlink(&victim, ws.journal_path()).expect("link");
    let err = rt
        .block_on(ws.insert(Session::new("b", SessionType::Azure).expect("s")))
        .expect_err("refused");
    let chain = std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ");
    assert!(chain.contains("symbolic link"), "{chain}");
    assert_eq!(
        std::fs::read_to_string(&victim).expect("read"),
        "someone else's file"
    );
}
