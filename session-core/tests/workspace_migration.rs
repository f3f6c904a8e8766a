//! The schema 1 → 2 migration (settings apart from state) against
//! workspace files of the release before it:
//!
//! - `fixtures/workspace-v1.json`, written by hand in that format, has a
//!   session of every provider with the keys its start wrote into `config`,
//!   plus cases a release run does not easily leave (an expired session, a
//!   type the migration does not know).
//! - `fixtures/workspace-v1-release.json` was written by that release's own
//!   `sessionctl` (commit `baf883c`) starting and stopping sessions against
//!   local peers; `fixtures/README.md` says how.

use std::path::PathBuf;

use serde_json::{Value, json};
use session_core::{
    FsWorkspace, Session, SessionId, SessionStatus, SessionType, WORKSPACE_SCHEMA_VERSION,
    WorkspaceRepository,
};

const FIXTURE: &str = include_str!("fixtures/workspace-v1.json");
const RELEASE: &str = include_str!("fixtures/workspace-v1-release.json");

/// The keys each provider's start (or rotate) wrote into `config` in
/// schema 1, by session type: schema 2 keeps them in `state`.
const STATE_KEYS: [(&str, &str); 8] = [
    ("awsIamUser", "publishedProfile"),
    ("awsIamRoleChained", "publishedProfile"),
    ("awsIamRoleFederated", "publishedProfile"),
    ("awsSsoRole", "publishedProfile"),
    ("azure", "signedInAccount"),
    ("azure", "azureCliPublished"),
    ("redfish", "authMode"),
    ("redfish", "sessionUri"),
];

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

/// A workspace on a copy of a fixture in a temporary directory.
struct FixtureCopy {
    _dir: tempfile::TempDir,
    path: PathBuf,
    ws: FsWorkspace,
    text: &'static str,
}

fn open_copy(text: &'static str) -> FixtureCopy {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("workspace.json");
    std::fs::write(&path, text).expect("write fixture");
    let ws = FsWorkspace::open(&path).expect("open");
    FixtureCopy {
        _dir: dir,
        path,
        ws,
        text,
    }
}

impl FixtureCopy {
    /// The sessions as loaded; loading neither rewrites the file nor makes
    /// a backup.
    fn load(&self, rt: &tokio::runtime::Runtime) -> Vec<Session> {
        let sessions = rt.block_on(self.ws.list()).expect("a schema 1 file loads");
        assert_eq!(
            std::fs::read_to_string(&self.path).expect("read"),
            self.text,
            "loading does not rewrite the file"
        );
        assert!(!self.ws.backup_path().exists(), "nor makes a backup");
        sessions
    }

    /// Updates session `id` with `change`, then checks that the file has
    /// the current schema, that the backup holds the fixture's bytes and
    /// that a fresh workspace (another process) reads the new file as it
    /// is. Returns the file as written.
    fn write_once(
        &self,
        rt: &tokio::runtime::Runtime,
        id: SessionId,
        change: impl FnOnce(&mut Session),
    ) -> Value {
        let mut session = rt.block_on(self.ws.get(id)).expect("get");
        change(&mut session);
        rt.block_on(self.ws.update(session)).expect("update");

        assert_eq!(
            std::fs::read_to_string(self.ws.backup_path()).expect("backup"),
            self.text,
            "the backup holds the schema 1 bytes"
        );
        let written: Value =
            serde_json::from_str(&std::fs::read_to_string(&self.path).expect("read"))
                .expect("json");
        assert_eq!(written["version"], WORKSPACE_SCHEMA_VERSION);

        let again = FsWorkspace::open(&self.path).expect("open");
        let reloaded = rt.block_on(again.list()).expect("list");
        let original = rt.block_on(self.ws.list()).expect("list");
        assert_eq!(reloaded, original);
        written
    }
}

/// Guards a fixture: were it edited into the new layout, the migration
/// tests on it would prove nothing. It is a schema 1 file without any
/// `state`, and for each pair of `wanted` a session of that type has that
/// key (not `null`) in its `config`. Returns the parsed file.
fn assert_schema_1_with(text: &str, wanted: &[(&str, &str)]) -> Value {
    let doc: Value = serde_json::from_str(text).expect("json");
    assert_eq!(doc["version"], 1);
    let configs: Vec<(&str, &Value)> = doc["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| (s["sessionType"].as_str().expect("type"), &s["config"]))
        .collect();
    for (session_type, key) in wanted {
        assert!(
            configs
                .iter()
                .any(|(t, config)| t == session_type && !config[key].is_null()),
            "the fixture has a {session_type} session with {key} in its config"
        );
    }
    assert!(!text.contains("\"state\""), "no session has a state yet");
    doc
}

#[test]
fn the_fixture_is_a_schema_1_file_with_every_providers_state_keys() {
    assert_schema_1_with(FIXTURE, &STATE_KEYS);
}

#[test]
fn a_schema_1_file_loads_with_its_state_keys_moved() {
    let copy = open_copy(FIXTURE);
    let rt = runtime();
    let sessions = copy.load(&rt);
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
}

#[test]
fn the_next_write_is_in_the_new_schema_and_the_backup_keeps_the_old_bytes() {
    let copy = open_copy(FIXTURE);
    let rt = runtime();
    let written = copy.write_once(&rt, id("08"), |bmc| {
        bmc.config
            .as_map_mut()
            .insert("basicAuthFallback".into(), false.into());
    });
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
}

// ---- The file the release itself wrote ----

/// The state keys of `session_type` (none for a type the migration does
/// not know).
fn state_keys_of(session_type: &str) -> Vec<&'static str> {
    STATE_KEYS
        .iter()
        .filter(|(t, _)| *t == session_type)
        .map(|(_, key)| *key)
        .collect()
}

/// The session called `name` in a parsed workspace file.
fn session_named<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["sessionName"] == name)
        .unwrap_or_else(|| panic!("no session {name}"))
}

#[test]
fn the_release_file_is_a_schema_1_file_with_every_providers_state_keys() {
    let doc = assert_schema_1_with(RELEASE, &STATE_KEYS);
    assert_eq!(doc["sessions"].as_array().expect("sessions").len(), 11);
    // What the release left in the cases the migration treats apart.
    let basic = session_named(&doc, "bmc-basic");
    assert_eq!(basic["status"], "active");
    assert_eq!(basic["config"]["authMode"], "basic");
    let stopped = session_named(&doc, "az-stopped");
    assert_eq!(stopped["status"], "inactive");
    assert!(
        stopped["config"]["signedInAccount"].is_object(),
        "the release's stop left the signed-in account behind"
    );
    for name in ["stopped-user", "bmc-off"] {
        assert_eq!(session_named(&doc, name)["status"], "inactive", "{name}");
    }
}

#[test]
fn the_release_file_loads_with_its_state_keys_moved() {
    let copy = open_copy(RELEASE);
    let rt = runtime();
    let sessions = copy.load(&rt);
    let doc: Value = serde_json::from_str(RELEASE).expect("json");
    let raw_sessions = doc["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), raw_sessions.len());

    // Every session: its state keys (not null) move from config to state,
    // an inactive one keeps none, and nothing else changes.
    for raw in raw_sessions {
        let name = raw["sessionName"].as_str().expect("name");
        let loaded = by_name(&sessions, name);
        let mut config = raw["config"].as_object().expect("config").clone();
        let mut state = serde_json::Map::new();
        for key in state_keys_of(raw["sessionType"].as_str().expect("type")) {
            if let Some(value) = config.remove(key).filter(|v| !v.is_null()) {
                state.insert(key.to_owned(), value);
            }
        }
        if raw["status"] == "inactive" {
            state.clear();
        }
        assert_eq!(
            json_of(&loaded.config),
            Value::Object(config.clone()),
            "{name}"
        );
        assert_eq!(json_of(&loaded.state), Value::Object(state), "{name}");
        let mut rest = serde_json::to_value(loaded).expect("json");
        rest.as_object_mut().expect("object").remove("state");
        let mut expected = raw.clone();
        expected["config"] = Value::Object(config);
        assert_eq!(
            rest, expected,
            "{name}: the other fields are as in the file"
        );
    }

    // The same, spelled out per provider.
    let user = by_name(&sessions, "dev-user");
    assert_eq!(json_of(&user.state), json!({"publishedProfile": "dev"}));
    assert_eq!(json_of(&user.config), json!({"profile": "dev"}));
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
        by_name(&sessions, "dev-admin").parent_session_id,
        Some(user.session_id)
    );
    assert_eq!(
        by_name(&sessions, "saml-ops").config.get_str("profile"),
        Some("ops")
    );

    let az = by_name(&sessions, "az-dev");
    let mut keys: Vec<_> = az.state.as_map().keys().collect();
    keys.sort();
    assert_eq!(keys, ["azureCliPublished", "signedInAccount"]);
    assert_eq!(
        az.state.as_map()["signedInAccount"]["username"],
        "carol@contoso.com"
    );
    assert!(
        az.state.as_map()["azureCliPublished"]["dir"]
            .as_str()
            .is_some_and(|dir| dir.ends_with("/az"))
    );
    assert_eq!(az.config.as_map()["azureCli"], true, "settings stay");
    let app = by_name(&sessions, "az-app");
    assert_eq!(app.status(), SessionStatus::Active);
    assert!(
        app.state.is_empty(),
        "a client-secret sign-in names no account"
    );

    let bmc = by_name(&sessions, "bmc-1");
    assert_eq!(bmc.state.get_str("authMode"), Some("session"));
    assert!(
        bmc.state
            .get_str("sessionUri")
            .is_some_and(|uri| uri.contains("/redfish/v1/SessionService/Sessions/")),
        "{:?}",
        bmc.state
    );
    assert_eq!(bmc.config.get_str("username"), Some("admin"));
    assert!(bmc.config.get_str("endpoint").is_some());
    assert!(bmc.config.get_str("caFile").is_some());
    let basic = by_name(&sessions, "bmc-basic");
    assert_eq!(json_of(&basic.state), json!({"authMode": "basic"}));
    assert_eq!(basic.config.as_map().len(), 3, "{:?}", basic.config);

    for name in ["stopped-user", "az-stopped", "bmc-off"] {
        let s = by_name(&sessions, name);
        assert_eq!(s.status(), SessionStatus::Inactive, "{name}");
        assert!(s.state.is_empty(), "{name}: {:?}", s.state);
    }
    let az_stopped = by_name(&sessions, "az-stopped");
    assert!(!az_stopped.config.as_map().contains_key("signedInAccount"));
    assert_eq!(az_stopped.config.as_map()["azureCli"], true);
}

#[test]
fn the_release_file_after_one_write_is_in_the_new_schema_and_the_backup_keeps_its_bytes() {
    let copy = open_copy(RELEASE);
    let rt = runtime();
    let loaded = copy.load(&rt);
    let basic = by_name(&loaded, "bmc-basic").session_id;
    let written = copy.write_once(&rt, basic, |bmc| {
        bmc.config
            .as_map_mut()
            .insert("basicAuthFallback".into(), true.into());
    });

    let sessions = written["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 11);
    // No state key is left in any config, updated or not.
    for s in sessions {
        for key in state_keys_of(s["sessionType"].as_str().expect("type")) {
            assert!(
                s["config"].get(key).is_none(),
                "{}: {key}",
                s["sessionName"]
            );
        }
    }
    let find = |name: &str| session_named(&written, name);
    assert_eq!(
        find("dev-user")["state"],
        json!({"publishedProfile": "dev"})
    );
    assert_eq!(find("bmc-basic")["state"], json!({"authMode": "basic"}));
    assert_eq!(find("bmc-basic")["config"]["basicAuthFallback"], true);
    assert_eq!(find("bmc-1")["state"]["authMode"], "session");
    assert_eq!(
        find("az-dev")["state"]["signedInAccount"]["username"],
        "carol@contoso.com"
    );
    for name in ["stopped-user", "az-stopped", "bmc-off", "az-app"] {
        assert!(
            find(name).get("state").is_none(),
            "{name}: empty state is omitted"
        );
    }
}
