//! Independent Redfish clients against this crate's server over HTTPS:
//! DMTF's `redfish` Python library and OpenStack's `sushy` (pinned in
//! `scripts/peers/requirements.txt`, installed by `./scripts/test`). Each
//! logs in with a session, lists and reads, logs out; an idle session then
//! gets 401 (the DMTF library) or is re-established (sushy re-logs in).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use session_core::Secret;
use session_redfish::server::{RedfishServer, RedfishServerHandle, Role};
use session_testkit::peers;

const PASSWORD: &str = "py-client-password-1";

/// The peers' Python, if it can import `module` (in CI a missing one fails).
fn python_with(module: &str) -> Option<PathBuf> {
    peers::require_peer(&format!("python module {module}"), || {
        let python = peers::peers_python().ok_or("SESSION_PEERS_PYTHON is not set")?;
        let ok = Command::new(&python)
            .args(["-c", &format!("import {module}")])
            .status()
            .map_err(|e| e.to_string())?
            .success();
        if ok {
            Ok(python)
        } else {
            Err(format!("{} cannot import {module}", python.display()))
        }
    })
}

async fn server(idle: Duration) -> (RedfishServerHandle, tempfile::TempDir, PathBuf) {
    let handle = RedfishServer::builder()
        .account("admin", Secret::new(PASSWORD), Role::Administrator)
        .test_session_timeout(idle)
        .build()
        .expect("server")
        .start()
        .await
        .expect("start");
    let dir = tempfile::tempdir().expect("dir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, handle.ca_pem().expect("a TLS server has a CA")).expect("write CA");
    (handle, dir, ca)
}

/// Runs `script` with a clean environment; returns its last stdout line as JSON.
async fn run(python: PathBuf, script: &'static str, url: String, ca: &Path) -> Value {
    let ca = ca.to_path_buf();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .args(["-c", script, &url, PASSWORD, ca.to_str().expect("utf-8")])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("REQUESTS_CA_BUNDLE", &ca)
            .output()
            .expect("run python")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "python failed: {}\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\n{stderr}"))
}

const DMTF_SCRIPT: &str = r#"
import json, sys, time, redfish
url, password, ca = sys.argv[1], sys.argv[2], sys.argv[3]
out = {}
c = redfish.redfish_client(base_url=url, username="admin", password=password, cafile=ca)
c.login(auth="session")
out["login_url"] = c.login_url
out["location"] = c.get_session_location()
out["systems"] = c.get("/redfish/v1/Systems").status
sessions = c.get(c.login_url)
out["sessions_status"] = sessions.status
out["members"] = len(sessions.dict.get("Members", []))
me = c.get(c.get_session_location())
out["me_user"] = me.dict.get("UserName")
c.logout()
after = redfish.redfish_client(base_url=url, username="admin", password="wrong", cafile=ca)
try:
    after.login(auth="session")
    out["bad_login"] = "accepted"
except Exception as e:
    out["bad_login"] = type(e).__name__
c2 = redfish.redfish_client(base_url=url, username="admin", password=password, cafile=ca)
c2.login(auth="session")
time.sleep(4)
out["after_idle"] = c2.get("/redfish/v1/Systems").status
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dmtf_redfish_library_logs_in_lists_reads_and_logs_out() {
    let Some(python) = python_with("redfish") else {
        return;
    };
    let (handle, _dir, ca) = server(Duration::from_secs(3)).await;
    let url = handle.base_url().trim_end_matches('/').to_owned();
    let url = url.trim_end_matches("/redfish/v1").to_owned();
    let seen = run(python, DMTF_SCRIPT, url, &ca).await;
    assert_eq!(
        seen["login_url"], "/redfish/v1/SessionService/Sessions",
        "{seen}"
    );
    assert!(
        seen["location"]
            .as_str()
            .is_some_and(|l| l.contains("/redfish/v1/SessionService/Sessions/")),
        "{seen}"
    );
    assert_eq!(seen["systems"], 200, "{seen}");
    assert_eq!(seen["sessions_status"], 200, "{seen}");
    assert!(seen["members"].as_u64().is_some_and(|n| n >= 1), "{seen}");
    assert_eq!(seen["me_user"], "admin", "{seen}");
    assert_ne!(
        seen["bad_login"], "accepted",
        "a wrong password is refused: {seen}"
    );
    assert_eq!(seen["after_idle"], 401, "an idle session expired: {seen}");
    handle.shutdown().await;
}

const SUSHY_SCRIPT: &str = r#"
import json, sys, time, sushy
url, password, ca = sys.argv[1], sys.argv[2], sys.argv[3]
out = {}
auth = sushy.auth.SessionAuth(username="admin", password=password)
s = sushy.Sushy(url + "/redfish/v1", verify=ca, auth=auth)
out["sessions_path"] = s.get_sessions_path()
out["timeout"] = s.get_session_service().session_timeout
out["systems"] = len(s.get_system_collection().members_identities)
first = auth.get_session_key()
time.sleep(4)
out["systems_after_idle"] = len(s.get_system_collection().members_identities)
out["new_token_after_idle"] = auth.get_session_key() != first
auth.close()
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sushy_logs_in_reads_and_re_logs_in_after_expiry() {
    let Some(python) = python_with("sushy") else {
        return;
    };
    let (handle, _dir, ca) = server(Duration::from_secs(3)).await;
    let url = handle.base_url().trim_end_matches('/').to_owned();
    let url = url.trim_end_matches("/redfish/v1").to_owned();
    let seen = run(python, SUSHY_SCRIPT, url, &ca).await;
    assert_eq!(
        seen["sessions_path"], "/redfish/v1/SessionService/Sessions",
        "{seen}"
    );
    assert_eq!(seen["timeout"], 3, "{seen}");
    assert!(seen["systems"].is_u64(), "{seen}");
    assert_eq!(seen["systems_after_idle"], seen["systems"], "{seen}");
    assert_eq!(
        seen["new_token_after_idle"], true,
        "sushy re-logged in: {seen}"
    );
    handle.shutdown().await;
}
