//! The server's optional session persistence through a workspace repository
//! (`RedfishServerBuilder::persist_to`): sessions survive a restart, the
//! token is never written, ended and expired sessions are dropped, and the
//! last use is carried over.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Client, StatusCode};
use session_core::{Clock, FsWorkspace, ManualClock, Secret, SystemClock, WorkspaceRepository};
use session_redfish::server::{RedfishServer, RedfishServerHandle, Role, SERVER_SESSION_TYPE};

use common::{Login, SESSIONS, delete, get, get_json, login};

async fn server(
    file: &Path,
    clock: &Arc<ManualClock>,
    with_reader: bool,
) -> (RedfishServerHandle, Client, Arc<FsWorkspace>) {
    let workspace = Arc::new(FsWorkspace::open(file).unwrap());
    let mut b = RedfishServer::builder()
        .account("admin", Secret::new("admin-pw"), Role::Administrator)
        .session_timeout(Duration::from_secs(60))
        .clock(clock.clone())
        .insecure_http()
        .persist_to(workspace.clone());
    if with_reader {
        b = b.account("reader", Secret::new("reader-pw"), Role::ReadOnly);
    }
    let h = b.build().unwrap().start().await.unwrap();
    (h, Client::new(), workspace)
}

async fn status(h: &RedfishServerHandle, c: &Client, token: &str) -> StatusCode {
    get(h, c, "/redfish/v1/SessionService", token)
        .await
        .status()
}

/// Waits until the repository holds `n` server-session records.
async fn records(ws: &FsWorkspace, n: usize) -> Vec<session_core::Session> {
    for _ in 0..500 {
        let list: Vec<_> = ws
            .list()
            .await
            .unwrap()
            .into_iter()
            .filter(|s| s.session_type.as_str() == SERVER_SESSION_TYPE)
            .collect();
        if list.len() == n {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the repository never held {n} records");
}

/// Everything the server stored: the workspace file and its journal (the
/// changes not yet folded into the file).
fn stored_text(file: &std::path::Path) -> String {
    let mut journal = file.as_os_str().to_owned();
    journal.push(".journal");
    let mut text = std::fs::read_to_string(file).unwrap();
    text.push_str(&std::fs::read_to_string(journal).unwrap_or_default());
    text
}

#[tokio::test]
async fn sessions_survive_a_restart_without_their_tokens_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server-sessions.json");
    let clock = Arc::new(ManualClock::new(SystemClock.now()));

    let (h, c, ws) = server(&file, &clock, true).await;
    let kept = login(&h, &c, "admin", "admin-pw").await.token;
    let Login {
        token: deleted,
        location: deleted_uri,
    } = login(&h, &c, "admin", "admin-pw").await;
    let reader = login(&h, &c, "reader", "reader-pw").await.token;
    records(&ws, 3).await;
    let res = delete(&h, &c, &deleted_uri, &kept).await;
    assert!(res.status().is_success());
    let stored = records(&ws, 2).await;
    let text = stored_text(&file);
    for token in [&kept, &deleted, &reader] {
        assert!(!text.contains(token.as_str()), "a token was written");
    }
    assert!(text.contains("tokenSha256"), "{text}");
    assert!(stored.iter().all(|s| s.expiration.is_some()));

    // 20 s later (over a quarter of the timeout) the admin session is used:
    // its new last use is written.
    clock.advance(Duration::from_secs(20));
    assert_eq!(status(&h, &c, &kept).await, StatusCode::OK);
    let want = clock.now();
    let mut last_used_written = false;
    for _ in 0..500 {
        let text = stored_text(&file);
        let time = want
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        if text.contains(&time) {
            last_used_written = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(last_used_written, "the last use was persisted");
    h.shutdown().await;
    drop(ws);

    // A restart 50 s later (70 s after login, 50 s after the last use):
    // the admin session lives on, the reader's (idle 70 s) has expired, the
    // deleted one stays deleted. The reader account is gone too.
    clock.advance(Duration::from_secs(50));
    let (h, c, ws) = server(&file, &clock, false).await;
    assert_eq!(status(&h, &c, &kept).await, StatusCode::OK, "restored");
    assert_eq!(status(&h, &c, &deleted).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(&h, &c, &reader).await, StatusCode::UNAUTHORIZED);
    let left = records(&ws, 1).await;
    assert_eq!(left[0].session_name.len(), "redfish-server-".len() + 16);
    let list = get_json(&h, &c, SESSIONS, &kept).await;
    assert_eq!(list["Members@odata.count"], 1, "{list}");
    h.shutdown().await;
    drop(ws);

    // Idle past the timeout while the server is down: dropped on restore.
    clock.advance(Duration::from_secs(61));
    let (h, c, ws) = server(&file, &clock, false).await;
    assert_eq!(status(&h, &c, &kept).await, StatusCode::UNAUTHORIZED);
    records(&ws, 0).await;
    h.shutdown().await;
}

#[tokio::test]
async fn without_persistence_a_restart_forgets_sessions() {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let build = || {
        RedfishServer::builder()
            .account("admin", Secret::new("admin-pw"), Role::Administrator)
            .clock(clock.clone())
            .insecure_http()
            .build()
            .unwrap()
    };
    let server = build();
    assert_eq!(server.restore_sessions().await.unwrap(), 0);
    let h = server.start().await.unwrap();
    let c = Client::new();
    let token = login(&h, &c, "admin", "admin-pw").await.token;
    h.shutdown().await;
    let h = build().start().await.unwrap();
    assert_eq!(status(&h, &c, &token).await, StatusCode::UNAUTHORIZED);
    h.shutdown().await;
}

/// A record written before record ids followed from session ids (a random
/// `Id` and record id, as every release before shared logins wrote them)
/// is restored and moved to its derived record id, once.
#[tokio::test]
async fn records_from_before_derived_ids_are_restored_and_moved() {
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server-sessions.json");
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let token = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let digest: String = sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let now = clock
        .now()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let old_id = session_core::SessionId::new();
    {
        let ws = FsWorkspace::open(&file).unwrap();
        let mut old = session_core::Session::new(
            "redfish-server-0123456789abcdef",
            session_core::SessionType::Other(SERVER_SESSION_TYPE.into()),
        )
        .unwrap();
        old.session_id = old_id;
        old.config
            .set(&serde_json::json!({
                "id": "0123456789abcdef",
                "userName": "admin",
                "createdTime": now,
                "lastUsed": now,
                "tokenSha256": digest,
            }))
            .unwrap();
        ws.insert(old).await.unwrap();
    }

    let (h, c, ws) = server(&file, &clock, false).await;
    assert_eq!(status(&h, &c, token).await, StatusCode::OK, "restored");
    let moved = records(&ws, 1).await;
    assert_ne!(moved[0].session_id, old_id, "moved to its derived id");
    assert_eq!(moved[0].config.get_str("id"), Some("0123456789abcdef"));
    let res = delete(&h, &c, &format!("{SESSIONS}/0123456789abcdef"), token).await;
    assert_eq!(res.status(), StatusCode::OK);
    records(&ws, 0).await;
    h.shutdown().await;
}
