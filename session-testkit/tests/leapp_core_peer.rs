//! The leapp-core peer runs: Leapp's own core library benches its workspace
//! (cold load, one update persisted) and writes a workspace in Leapp's
//! encrypted format.

use session_testkit::peers::leapp_core::LeappCore;
use session_testkit::peers::require_peer;

#[test]
fn leapp_core_benches_and_writes_an_encrypted_workspace() {
    let Some(leapp) = require_peer("leapp-core", LeappCore::locate) else {
        return;
    };

    let figures = leapp.bench(100, 3).expect("bench.js");
    assert_eq!((figures.n, figures.rounds), (100, 3), "{figures:?}");
    assert!(figures.cold_load_ms > 0.0, "{figures:?}");
    assert!(figures.update_one_persist_ms > 0.0, "{figures:?}");
    assert!(!figures.version.is_empty(), "{figures:?}");

    // This machine's id (node-machine-id), as Leapp would use it.
    let here = tempfile::tempdir().expect("tempdir");
    let own = leapp
        .write_workspace(here.path())
        .expect("write-workspace.js");
    let text = std::fs::read_to_string(&own.workspace).expect("Leapp-lock.json exists");
    assert!(
        text.starts_with("U2FsdGVk"),
        "not Leapp's encrypted format: {text:.40}"
    );
    assert_eq!(own.aes_key.len(), 64, "{own:?}");

    let home = tempfile::tempdir().expect("tempdir");
    let written = leapp
        .write_workspace_with_machine_id(home.path(), "0123456789abcdef0123456789abcdef")
        .expect("write-workspace.js");
    // node-machine-id's hashed id: lowercase hex SHA-256 of the raw id.
    assert_eq!(
        written.aes_key,
        "3eb1bd439947eb762998e566ccc2e099c791118b2f40579cc4f7da2b5061b7f9"
    );
    let path = home.path().join(".Leapp").join("Leapp-lock.json");
    assert_eq!(written.workspace, path);
    let text = std::fs::read_to_string(&path).expect("Leapp-lock.json exists");
    assert!(
        text.starts_with("U2FsdGVk"),
        "not Leapp's encrypted format: {text:.40}"
    );
    let mut types: Vec<&str> = written
        .sessions
        .iter()
        .map(|s| s.session_type.as_str())
        .collect();
    types.sort_unstable();
    assert_eq!(
        types,
        [
            "awsIamRoleChained",
            "awsIamRoleFederated",
            "awsIamUser",
            "awsSsoRole",
            "azure"
        ],
        "not written: {:?}",
        written.not_written
    );
}
