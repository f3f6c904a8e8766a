//! Logins shared by two server instances through one repository
//! (`RedfishServerBuilder::share_sessions`): a token issued by one is
//! accepted by the other, a DELETE on one ends the session on both at
//! once, last uses through either keep a session alive on both, and a
//! repository that cannot be reached gets 503 rather than a stale answer.
//! On one `FsWorkspace` file (two handles, as two processes would have),
//! and on a real PostgreSQL with DMTF's `redfish` Python library as the
//! client.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::Value;
use session_core::{
    Clock, Error, FsWorkspace, InMemoryWorkspace, ManualClock, Result, Secret, Session, SessionId,
    SystemClock, WorkspaceRepository,
};
use session_postgres::PgWorkspace;
use session_redfish::server::{RedfishServer, RedfishServerHandle, Role, SERVER_SESSION_TYPE};
use session_testkit::peers::{self, postgres};

use common::{SESSIONS, delete, get, get_json, login, members};

const SERVICE: &str = "/redfish/v1/SessionService";

async fn instance(
    repo: Arc<dyn WorkspaceRepository>,
    clock: &Arc<ManualClock>,
) -> RedfishServerHandle {
    instance_with(repo, clock, true).await
}

async fn instance_with(
    repo: Arc<dyn WorkspaceRepository>,
    clock: &Arc<ManualClock>,
    reader: bool,
) -> RedfishServerHandle {
    let mut b = RedfishServer::builder();
    if reader {
        b = b.account("reader", Secret::new("reader-pw"), Role::ReadOnly);
    }
    b.account("admin", Secret::new("admin-pw"), Role::Administrator)
        .session_timeout(Duration::from_secs(60))
        .clock(clock.clone())
        .insecure_http()
        .share_sessions(repo)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap()
}

async fn status(h: &RedfishServerHandle, c: &Client, path: &str, token: &str) -> StatusCode {
    get(h, c, path, token).await.status()
}

/// The last use stored for the session at `location`, once it equals
/// `want` (polled: the writer is a background task); panics after 5 s.
async fn wait_for_last_use(ws: &FsWorkspace, location: &str, want: time::OffsetDateTime) {
    let id = location.rsplit('/').next().unwrap();
    let want = want
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let mut seen = String::new();
    for _ in 0..500 {
        let found = ws.list().await.unwrap().into_iter().find(|s| {
            s.session_type.as_str() == SERVER_SESSION_TYPE && s.config.get_str("id") == Some(id)
        });
        if let Some(s) = found {
            seen = s.config.get_str("lastUsed").unwrap_or_default().to_owned();
            if seen == want {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the stored last use of {id} never became {want} (last seen: {seen:?})");
}

#[tokio::test]
async fn two_instances_on_one_file_share_logins() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server-sessions.json");
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let ws_a = Arc::new(FsWorkspace::open(&file).unwrap());
    let ws_b = Arc::new(FsWorkspace::open(&file).unwrap());
    let a = instance(ws_a.clone(), &clock).await;
    let b = instance(ws_b.clone(), &clock).await;
    let c = Client::new();

    // Issued by A, accepted by B, and listed and readable on both.
    let admin = login(&a, &c, "admin", "admin-pw").await;
    assert_eq!(status(&b, &c, SERVICE, &admin.token).await, StatusCode::OK);
    let body = get_json(&b, &c, &admin.location, &admin.token).await;
    assert_eq!(body["UserName"], "admin", "{body}");
    // A second later, so the collection's order (by creation) is no tie.
    clock.advance(Duration::from_secs(1));
    let reader = login(&b, &c, "reader", "reader-pw").await;
    for h in [&a, &b] {
        let all = members(&get_json(h, &c, SESSIONS, &admin.token).await);
        assert_eq!(all, vec![admin.location.clone(), reader.location.clone()]);
        let own = members(&get_json(h, &c, SESSIONS, &reader.token).await);
        assert_eq!(own, vec![reader.location.clone()]);
    }

    // A DELETE on B ends the session on A at once (no waiting).
    let res = delete(&b, &c, &admin.location, &admin.token).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        status(&a, &c, SERVICE, &admin.token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(&b, &c, SERVICE, &admin.token).await,
        StatusCode::UNAUTHORIZED
    );
    let gone = get(&a, &c, &admin.location, &reader.token).await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);

    // A session used only through B stays alive on A, whose own memory
    // saw it idle past the timeout: A's expiry must not delete the record
    // B keeps using. Login at t0, used on B at t40, A reaps at t80.
    let kept = login(&a, &c, "admin", "admin-pw").await;
    let t0 = clock.now();
    clock.advance(Duration::from_secs(40));
    assert_eq!(status(&b, &c, SERVICE, &kept.token).await, StatusCode::OK);
    wait_for_last_use(&ws_a, &kept.location, t0 + Duration::from_secs(40)).await;
    clock.advance(Duration::from_secs(40));
    // A login reaps A's memory: `kept` (idle there since t0) and the
    // reader's session (idle everywhere since t0) expire on A.
    let _other = login(&a, &c, "reader", "reader-pw").await;
    assert_eq!(status(&a, &c, SERVICE, &kept.token).await, StatusCode::OK);
    // That use at t80 is written after the expiry A queued first; the
    // record must still be there for it.
    wait_for_last_use(&ws_a, &kept.location, t0 + Duration::from_secs(80)).await;
    assert_eq!(
        status(&b, &c, SERVICE, &reader.token).await,
        StatusCode::UNAUTHORIZED,
        "idle everywhere for 80 s"
    );

    // Idle past the timeout everywhere: refused by both.
    clock.advance(Duration::from_secs(61));
    for h in [&b, &a] {
        assert_eq!(
            status(h, &c, SERVICE, &kept.token).await,
            StatusCode::UNAUTHORIZED
        );
    }
    a.shutdown().await;
    b.shutdown().await;
}

/// An instance started without an account the others have (a rollout
/// half done) leaves that account's sessions alone: not its to delete.
#[tokio::test]
async fn an_instance_lacking_an_account_keeps_its_sessions() {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let repo: Arc<dyn WorkspaceRepository> = Arc::new(InMemoryWorkspace::new());
    let a = instance(repo.clone(), &clock).await;
    let c = Client::new();
    let reader = login(&a, &c, "reader", "reader-pw").await;
    let b = instance_with(repo.clone(), &clock, false).await;
    assert_eq!(status(&a, &c, SERVICE, &reader.token).await, StatusCode::OK);
    assert_eq!(
        status(&b, &c, SERVICE, &reader.token).await,
        StatusCode::UNAUTHORIZED,
        "no such account on B"
    );
    assert_eq!(status(&a, &c, SERVICE, &reader.token).await, StatusCode::OK);
    a.shutdown().await;
    b.shutdown().await;
}

/// A repository that fails every call while `down` is set, with an error
/// text that must never reach a client.
#[derive(Debug)]
struct Flaky {
    inner: InMemoryWorkspace,
    down: AtomicBool,
}

const DB_CANARY: &str = "CANARY-db.internal.example:5432";

impl Flaky {
    fn check(&self) -> Result<()> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::Unavailable {
                target: DB_CANARY.into(),
                message: "connection refused".into(),
                source: None,
            });
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl WorkspaceRepository for Flaky {
    async fn list(&self) -> Result<Vec<Session>> {
        self.check()?;
        self.inner.list().await
    }
    async fn get(&self, id: SessionId) -> Result<Session> {
        self.check()?;
        self.inner.get(id).await
    }
    async fn insert(&self, session: Session) -> Result<Session> {
        self.check()?;
        self.inner.insert(session).await
    }
    async fn update(&self, session: Session) -> Result<Session> {
        self.check()?;
        self.inner.update(session).await
    }
    async fn delete(&self, id: SessionId, expected_revision: Option<u64>) -> Result<Session> {
        self.check()?;
        self.inner.delete(id, expected_revision).await
    }
}

#[tokio::test]
async fn an_unreachable_repository_gets_503_not_a_stale_answer() {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let repo = Arc::new(Flaky {
        inner: InMemoryWorkspace::new(),
        down: AtomicBool::new(false),
    });
    let h = instance(repo.clone(), &clock).await;
    let c = Client::new();
    let admin = login(&h, &c, "admin", "admin-pw").await;
    repo.down.store(true, Ordering::SeqCst);

    let check = |res: reqwest::Response| async move {
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()["retry-after"], "5");
        let body: Value = res.json().await.unwrap();
        let text = body.to_string();
        assert!(
            text.contains("ServiceTemporarilyUnavailable"),
            "Base message: {text}"
        );
        assert!(
            !text.contains("CANARY"),
            "the repository's error leaked: {text}"
        );
    };
    // A token the instance knows is not answered from memory, …
    check(get(&h, &c, SERVICE, &admin.token).await).await;
    check(get(&h, &c, SESSIONS, &admin.token).await).await;
    // … and a login whose record cannot be written hands out no token.
    let res = common::post_login(&h, &c, "admin", "admin-pw").await;
    assert!(res.headers().get("x-auth-token").is_none());
    check(res).await;

    repo.down.store(false, Ordering::SeqCst);
    assert_eq!(status(&h, &c, SERVICE, &admin.token).await, StatusCode::OK);
    let listed = members(&get_json(&h, &c, SESSIONS, &admin.token).await);
    assert_eq!(
        listed,
        vec![admin.location],
        "the failed login left nothing"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn recheck_needs_sharing_and_must_be_shorter_than_the_timeout() {
    let repo: Arc<dyn WorkspaceRepository> = Arc::new(InMemoryWorkspace::new());
    let err = RedfishServer::builder()
        .persist_to(repo.clone())
        .shared_session_recheck(Duration::from_secs(1))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("share_sessions"), "{err}");
    let err = RedfishServer::builder()
        .session_timeout(Duration::from_secs(60))
        .share_sessions(repo)
        .shared_session_recheck(Duration::from_secs(60))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("shorter than"), "{err}");
}

/// DMTF's library logs in on A, then a second client of the same library,
/// given only A's session key, reads and lists on B and logs the session
/// out there; A's client is refused afterwards.
const DMTF_TWO_INSTANCES: &str = r#"
import json, sys, urllib.parse, redfish
a, b, password = sys.argv[1], sys.argv[2], sys.argv[3]
out = {}
on_a = redfish.redfish_client(base_url=a, username="admin", password=password)
on_a.login(auth="session")
key = on_a.get_session_key()
location = urllib.parse.urlparse(on_a.get_session_location()).path
out["location"] = location
on_b = redfish.redfish_client(base_url=b, sessionkey=key)
out["b_service"] = on_b.get("/redfish/v1/SessionService").status
out["b_members"] = [m["@odata.id"] for m in on_b.get("/redfish/v1/SessionService/Sessions").dict["Members"]]
out["b_delete"] = on_b.delete(location).status
out["a_after"] = on_a.get("/redfish/v1/SessionService").status
print(json.dumps(out))
"#;

fn python_redfish() -> Option<PathBuf> {
    peers::require_peer("python module redfish", || {
        peers::python_with_module("redfish")
    })
}

fn run_python(python: &Path, script: &str, args: &[&str]) -> Value {
    let output = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "python failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_postgresql_share_logins_with_the_dmtf_client() {
    let Some(bin) = peers::require_peer("postgresql", postgres::postgres_bin) else {
        return;
    };
    let Some(python) = python_redfish() else {
        return;
    };
    let server = postgres::PostgresServer::start(&bin);
    let password = Secret::new(server.password());
    let admin_db = PgWorkspace::connect(&server.url(), Some(&password))
        .await
        .unwrap();
    admin_db
        .create_database_for_tests("redfish_shared")
        .await
        .unwrap();
    let url = server.url().replace("/postgres", "/redfish_shared");
    let connect = || async {
        let ws = PgWorkspace::connect(&url, Some(&password)).await.unwrap();
        Arc::new(ws) as Arc<dyn WorkspaceRepository>
    };
    // A clock that stands still: nothing idles out while Python runs.
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let a = instance(connect().await, &clock).await;
    let b = instance(connect().await, &clock).await;
    let c = Client::new();

    let mine = login(&b, &c, "reader", "reader-pw").await;
    let (python2, a_url, b_url) = (
        python.clone(),
        a.base_url().to_owned(),
        b.base_url().to_owned(),
    );
    let out = tokio::task::spawn_blocking(move || {
        run_python(&python2, DMTF_TWO_INSTANCES, &[&a_url, &b_url, "admin-pw"])
    })
    .await
    .unwrap();
    assert_eq!(out["b_service"], 200, "{out}");
    let location = out["location"].as_str().unwrap().to_owned();
    let listed: Vec<&str> = out["b_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert!(
        listed.contains(&location.as_str()) && listed.contains(&mine.location.as_str()),
        "B lists the sessions of both instances: {out}"
    );
    assert_eq!(out["b_delete"], 200, "{out}");
    assert_eq!(out["a_after"], 401, "A refuses what B ended: {out}");

    // A restarted (memory gone) still knows B's session, from the database.
    a.shutdown().await;
    let a = instance(connect().await, &clock).await;
    assert_eq!(status(&a, &c, SERVICE, &mine.token).await, StatusCode::OK);
    let res = delete(&a, &c, &mine.location, &mine.token).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        status(&b, &c, SERVICE, &mine.token).await,
        StatusCode::UNAUTHORIZED
    );
    a.shutdown().await;
    b.shutdown().await;
}
