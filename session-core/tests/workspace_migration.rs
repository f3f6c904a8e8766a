//! The schema 1 → 2 migration (settings apart from state) against a
//! workspace file in the format of the release before it:
//! `fixtures/workspace-v1.json` has a session of every provider with the
//! keys its start wrote into `config`.

use std::path::Path;

use serde_json::{Value, json};
use session_core::{
    FsWorkspace, Session, SessionId, SessionStatus, SessionType, WORKSPACE_SCHEMA_VERSION,
    WorkspaceRepository,
};

const FIXTURE: &str = include_str!("fixtures/workspace-v1.json");

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn id(last: &str) -> SessionId {
    format!("0b6f3f4e-6a52-4d57-9c2c-5b0c1b1e0a{last}")
        .parse()
        .expect("id")
}

fn by_name<'a>(sessions: &'a [Session], name: &str) -> &'a Session {
    sessions
        .iter()
        .find(|s| s.session_name == name)
        .unwrap_or_else(|| panic!("no session {name}"))
}

fn json_of(map: &session_core::ProviderConfig) -> Value {
    serde_json::to_value(map).expect("json")
}

fn copy_fixture(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("workspace.json");
    std::fs::write(&path, FIXTURE).expect("write fixture");
    path
}

#[test]
fn the_fixture_is_a_schema_1_file_with_every_providers_state_keys() {
    // Guards the fixture itself: were it edited into the new layout, the
    // migration test below would prove nothing.
    let doc: Value = serde_json::from_str(FIXTURE).expect("json");
    assert_eq!(doc["version"], 1);
    let configs: Vec<(&str, &Value)> = doc["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| (s["sessionType"].as_str().expect("type"), &s["config"]))
        .collect();
    for (session_type, key) in [
        ("awsIamUser", "publishedProfile"),
        ("awsIamRoleChained", "publishedProfile"),
        ("awsIamRoleFederated", "publishedProfile"),
        ("awsSsoRole", "publishedProfile"),
        ("azure", "signedInAccount"),
        ("azure", "azureCliPublished"),
        ("redfish", "authMode"),
        ("redfish", "sessionUri"),
    ] {
        assert!(
            configs
                .iter()
                .any(|(t, config)| *t == session_type && !config[key].is_null()),
            "the fixture has a {session_type} session with {key} in its config"
        );
    }
    assert!(!FIXTURE.contains("\"state\""), "no session has a state yet");
}

#[test]
fn a_schema_1_file_loads_with_its_state_keys_moved() {
    let dir = tempfile::tempdir().expect("dir");
    let path = copy_fixture(dir.path());
    let ws = FsWorkspace::open(&path).expect("open");
    let rt = runtime();
    let sessions = rt.block_on(ws.list()).expect("a schema 1 file loads");
    assert_eq!(sessions.len(), 11);

    // AWS credential types: the published profile is state, the chosen
    // profile stays a setting.
    let user = by_name(&sessions, "dev-user");
    assert_eq!(json_of(&user.state), json!({"publishedProfile": "dev"}));
    assert_eq!(
        json_of(&user.config),
        json!({"mfaSerial": "arn:aws:iam::123456789012:mfa/dev", "profile": "dev"})
    );
    for (name, profile) in [
        ("dev-admin", "dev-admin"),
        ("saml-ops", "ops"),
        ("sso-read", "sso-read"),
    ] {
        let s = by_name(&sessions, name);
        assert_eq!(
            json_of(&s.state),
            json!({"publishedProfile": profile}),
            "{name}"
        );
        assert!(
            !s.config.as_map().contains_key("publishedProfile"),
            "{name}"
        );
    }
    assert_eq!(
        by_name(&sessions, "sso-read").status(),
        SessionStatus::Expired,
        "an expired session keeps its state: stop still has to withdraw the profile"
    );
    assert_eq!(
        by_name(&sessions, "dev-admin").parent_session_id,
        Some(id("01"))
    );

    // Azure: the signed-in account and the Azure CLI record are state.
    let az = by_name(&sessions, "az-dev");
    let mut keys: Vec<_> = az.state.as_map().keys().collect();
    keys.sort();
    assert_eq!(keys, ["azureCliPublished", "signedInAccount"]);
    assert_eq!(
        az.state.as_map()["signedInAccount"]["username"],
        "dev@contoso.example"
    );
    assert_eq!(
        az.state.as_map()["azureCliPublished"]["dir"],
        "/home/dev/.azure"
    );
    assert_eq!(az.config.as_map()["azureCli"], true, "settings stay");
    assert_eq!(az.config.as_map().len(), 5, "{:?}", az.config);

    // Redfish: how the live session authenticates, and where it is.
    let bmc = by_name(&sessions, "bmc-1");
    assert_eq!(
        json_of(&bmc.state),
        json!({"authMode": "session", "sessionUri": "/redfish/v1/SessionService/Sessions/42"})
    );
    assert_eq!(
        json_of(&bmc.config),
        json!({"endpoint": "https://bmc-1.example", "username": "admin"})
    );
    let basic = by_name(&sessions, "bmc-basic");
    assert_eq!(json_of(&basic.state), json!({"authMode": "basic"}));
    assert_eq!(basic.config.as_map()["insecureSkipVerify"], true);

    // Inactive sessions have no state; what the old stop left behind goes.
    for name in ["stopped-user", "az-stopped", "bmc-off"] {
        let s = by_name(&sessions, name);
        assert!(s.state.is_empty(), "{name}: {:?}", s.state);
    }
    let az_stopped = by_name(&sessions, "az-stopped");
    assert!(!az_stopped.config.as_map().contains_key("signedInAccount"));
    assert_eq!(
        az_stopped.config.get_str("tenantId"),
        Some("contoso.onmicrosoft.com")
    );
    assert!(
        az_stopped.last_error.is_some(),
        "other fields are untouched"
    );

    // A type the migration does not know keeps its config as it was.
    let custom = by_name(&sessions, "custom");
    assert_eq!(custom.session_type, SessionType::Other("myKind".into()));
    assert!(custom.state.is_empty());
    assert_eq!(custom.config.as_map().len(), 2);

    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        FIXTURE,
        "loading does not rewrite the file"
    );
    assert!(!ws.backup_path().exists(), "nor makes a backup");
}

#[test]
fn the_next_write_is_in_the_new_schema_and_the_backup_keeps_the_old_bytes() {
    let dir = tempfile::tempdir().expect("dir");
    let path = copy_fixture(dir.path());
    let ws = FsWorkspace::open(&path).expect("open");
    let rt = runtime();
    let mut bmc = rt.block_on(ws.get(id("08"))).expect("get");
    bmc.config
        .as_map_mut()
        .insert("basicAuthFallback".into(), false.into());
    rt.block_on(ws.update(bmc)).expect("update");

    assert_eq!(
        std::fs::read_to_string(ws.backup_path()).expect("backup"),
        FIXTURE,
        "the backup holds the schema 1 bytes"
    );
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    assert_eq!(written["version"], WORKSPACE_SCHEMA_VERSION);
    let sessions = written["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 11);
    let find = |last: &str| {
        let id = id(last).to_string();
        sessions
            .iter()
            .find(|s| s["sessionId"] == id.as_str())
            .expect("session")
    };
    // Sessions that were not updated are written migrated too.
    assert_eq!(find("01")["state"], json!({"publishedProfile": "dev"}));
    assert!(find("01")["config"].get("publishedProfile").is_none());
    assert_eq!(
        find("06")["state"]["signedInAccount"]["username"],
        "dev@contoso.example"
    );
    assert!(find("07").get("state").is_none(), "empty state is omitted");
    assert_eq!(find("08")["state"]["authMode"], "session");
    assert_eq!(find("08")["config"]["basicAuthFallback"], false);

    // The new file loads as it is, in a fresh workspace (another process).
    let again = FsWorkspace::open(&path).expect("open");
    let reloaded = rt.block_on(again.list()).expect("list");
    let original = rt.block_on(ws.list()).expect("list");
    assert_eq!(reloaded, original);
}
