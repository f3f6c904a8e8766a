//! A workspace file large enough to be parsed in parallel: the sessions
//! come back whole and in file order, and a damaged or repeated session is
//! reported as a one-thread read would report it (the first in the file,
//! at its line). Each test runs on the layout the workspace writes (read
//! by splitting at line feeds) and on a hand-written one (read by a JSON
//! pass first).

use std::path::Path;

use session_core::{Error, FsWorkspace, Session, SessionType, WorkspaceRepository};

/// Sessions enough (over 2 MB) for the parallel read.
const N: usize = 6_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// The sessions' JSON texts, padded so that the file is large.
fn sessions() -> Vec<String> {
    (0..N)
        .map(|i| {
            let mut s = Session::new(format!("s{i}"), SessionType::AwsIamRoleChained)
                .expect("session")
                .with_region("eu-west-1");
            s.config.as_map_mut().insert(
                "roleArn".into(),
                format!("arn:aws:iam::123456789012:role/{}", "R".repeat(300)).into(),
            );
            serde_json::to_string(&s).expect("json")
        })
        .collect()
}

/// How a test file is laid out.
#[derive(Clone, Copy, Debug)]
enum Layout {
    /// Exactly as the workspace writes it (indented, one session per line).
    Written,
    /// One session per line, but not indented as the workspace indents.
    ByHand,
}

const LAYOUTS: [Layout; 2] = [Layout::Written, Layout::ByHand];

/// Writes a schema-3 file with one session per line: session `i` is on
/// line `i + 5`.
fn write(path: &Path, texts: &[String], layout: Layout) {
    let body = match layout {
        Layout::Written => format!(
            "{{\n  \"version\": 3,\n  \"generation\": 1,\n  \"sessions\": [\n    {}\n  ]\n}}\n",
            texts.join(",\n    ")
        ),
        Layout::ByHand => format!(
            "{{\n\"version\": 3,\n\"generation\": 1,\n\"sessions\": [\n{}\n]\n}}\n",
            texts.join(",\n")
        ),
    };
    assert!(body.len() > 2 << 20, "large enough to be read in parallel");
    std::fs::write(path, body).expect("write");
}

fn load(path: &Path) -> session_core::Result<Vec<Session>> {
    runtime().block_on(async {
        let ws = FsWorkspace::open(path).expect("open");
        ws.list().await
    })
}

fn corrupt_line(result: session_core::Result<Vec<Session>>) -> (usize, String) {
    match result {
        Err(Error::Corrupt { line, message, .. }) => (line, message),
        other => panic!("expected Corrupt, got {:?}", other.map(|v| v.len())),
    }
}

#[test]
fn a_large_file_loads_whole_and_in_order() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("ws.json");
    let want: Vec<String> = (0..N).map(|i| format!("s{i}")).collect();
    for layout in LAYOUTS {
        write(&path, &sessions(), layout);
        let loaded = load(&path).expect("load");
        let names: Vec<String> = loaded.iter().map(|s| s.session_name.clone()).collect();
        assert_eq!(names, want, "{layout:?}");
        assert!(loaded.iter().all(|s| s.config.get_str("roleArn").is_some()));
    }
}

/// The workspace's own layout, once written, reads back the same; and a
/// file in that layout with one session spread over several lines by hand
/// still loads (the line split does not apply, the JSON pass does).
#[test]
fn the_written_layout_reads_back_and_tolerates_hand_edits() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("ws.json");
    write(&path, &sessions(), Layout::ByHand);
    let before = load(&path).expect("load");
    runtime().block_on(async {
        let ws = FsWorkspace::open(&path).expect("open");
        let mut first = ws.get(before[0].session_id).await.expect("get");
        first.region = Some("us-east-1".into());
        ws.update(first).await.expect("update");
        assert!(ws.compact().await.expect("compact"));
    });
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(
        text.starts_with("{\n  \"version\": 3,\n  \"generation\": ") && text.contains("\n    {\""),
        "the workspace writes one indented session per line"
    );
    let after = load(&path).expect("reload");
    assert_eq!(after.len(), N);
    assert_eq!(after[0].region.as_deref(), Some("us-east-1"));
    for (a, b) in before.iter().zip(&after).skip(1) {
        assert_eq!(
            serde_json::to_value(a).unwrap(),
            serde_json::to_value(b).unwrap()
        );
    }
    // One session pretty-printed by hand, in the middle of the file.
    let mut texts = sessions();
    let pretty: serde_json::Value = serde_json::from_str(&texts[100]).unwrap();
    texts[100] = serde_json::to_string_pretty(&pretty).unwrap();
    write(&path, &texts, Layout::Written);
    let loaded = load(&path).expect("load a hand-edited file");
    assert_eq!(loaded.len(), N);
    assert_eq!(loaded[100].session_name, "s100");
}

/// Two damaged sessions, far apart: the first one is reported, at its
/// line, however the threads were scheduled. Repeated a few times, since
/// the schedule differs from run to run.
#[test]
fn the_first_damaged_session_is_the_one_reported() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("ws.json");
    let mut texts = sessions();
    for i in [3_000, 5_900] {
        texts[i] = texts[i].replace(r#""status":"inactive""#, r#""status":"bogus""#);
    }
    for layout in LAYOUTS {
        write(&path, &texts, layout);
        for _ in 0..5 {
            let (line, message) = corrupt_line(load(&path));
            assert_eq!(line, 3_000 + 5, "{layout:?}: {message}");
            assert!(message.contains("bogus"), "{message}");
        }
    }
}

#[test]
fn a_repeated_id_is_reported_at_its_second_place() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("ws.json");
    let mut texts = sessions();
    texts[4_500] = texts[2_500].replace(r#""sessionName":"s2500""#, r#""sessionName":"again""#);
    for layout in LAYOUTS {
        write(&path, &texts, layout);
        let (line, message) = corrupt_line(load(&path));
        assert_eq!(line, 4_500 + 5, "{layout:?}: {message}");
        assert!(message.contains("appears twice"), "{message}");
    }
}
