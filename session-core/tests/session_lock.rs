//! The per-session lock across managers and processes (issue 11, D5): one
//! provider call per operation per session, whoever asks, and a killed
//! holder frees the lock.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use session_core::{
    ActionContext, Capabilities, FsWorkspace, Result, Session, SessionAction, SessionManager,
    SessionStatus, SessionType, SystemClock, WorkspaceRepository,
};

/// Takes a while for every call, like a real service; counts the calls.
#[derive(Debug, Default)]
struct Slow {
    starts: AtomicUsize,
    stops: AtomicUsize,
    rotates: AtomicUsize,
}

const CALL_TIME: Duration = Duration::from_millis(300);

impl Slow {
    async fn issue(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        tokio::time::sleep(CALL_TIME).await;
        let mut active = session.clone();
        active.expiration = Some(ctx.clock.now() + Duration::from_secs(3600));
        active.transition(SessionStatus::Active, ctx.clock.now())?;
        Ok(active)
    }
}

#[async_trait::async_trait]
impl SessionAction for Slow {
    fn session_type(&self) -> SessionType {
        SessionType::Redfish
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::none().with_rotate(true)
    }
    async fn start(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        self.starts.fetch_add(1, Ordering::SeqCst);
        self.issue(ctx, session).await
    }
    async fn stop(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        self.stops.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(CALL_TIME).await;
        let mut inactive = session.clone();
        inactive.transition(SessionStatus::Inactive, ctx.clock.now())?;
        Ok(inactive)
    }
    async fn rotate(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        self.rotates.fetch_add(1, Ordering::SeqCst);
        self.issue(ctx, session).await
    }
}

/// A manager on its own handle of the workspace file at `path`, as another
/// process would have.
fn manager(path: &Path, provider: &Arc<Slow>) -> SessionManager {
    SessionManager::builder()
        .repository(Arc::new(FsWorkspace::open(path).expect("workspace")))
        .provider(provider.clone())
        .clock(Arc::new(SystemClock))
        .build()
        .expect("manager")
}

/// Three managers sharing one workspace file each start, then rotate,
/// then stop the same session at the same time: one provider call each
/// time, and every caller gets the same result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managers_sharing_a_file_make_one_provider_call_per_operation() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ws.json");
    let provider = Arc::new(Slow::default());
    let managers: Vec<SessionManager> = (0..3).map(|_| manager(&path, &provider)).collect();
    let session = managers[0]
        .add(Session::new("r1", SessionType::Redfish).expect("session"))
        .await
        .expect("add");
    let name = session.session_name.clone();

    let started = futures::future::join_all(managers.iter().map(|m| m.start(&name))).await;
    let started: Vec<Session> = started.into_iter().map(|r| r.expect("start")).collect();
    assert_eq!(provider.starts.load(Ordering::SeqCst), 1, "one login");
    assert!(
        started
            .iter()
            .all(|s| s.expiration == started[0].expiration),
        "every caller gets the one result: {started:#?}"
    );

    let rotated = futures::future::join_all(managers.iter().map(|m| m.rotate(&name))).await;
    for result in rotated {
        assert_eq!(result.expect("rotate").status(), SessionStatus::Active);
    }
    assert_eq!(provider.rotates.load(Ordering::SeqCst), 1, "one rotation");

    let stopped = futures::future::join_all(managers.iter().map(|m| m.stop(&name))).await;
    for result in stopped {
        assert_eq!(result.expect("stop").status(), SessionStatus::Inactive);
    }
    assert_eq!(provider.stops.load(Ordering::SeqCst), 1, "one logout");
}

/// Set in the environment of the child that holds a lock and is killed.
const CHILD_WORKSPACE: &str = "SESSION_LOCK_TEST_WORKSPACE";
const CHILD_SESSION: &str = "SESSION_LOCK_TEST_SESSION";

/// Not a test on its own: the child process of
/// `a_killed_holder_frees_the_session_lock`. It takes the lock, says so
/// by creating `<workspace>.held`, and sleeps until it is killed.
#[tokio::test]
#[ignore = "run as a child process by a_killed_holder_frees_the_session_lock"]
async fn hold_a_session_lock_until_killed() {
    let (Ok(path), Ok(id)) = (std::env::var(CHILD_WORKSPACE), std::env::var(CHILD_SESSION)) else {
        return;
    };
    let workspace = FsWorkspace::open(&path).expect("workspace");
    let _lock = workspace
        .lock_session(id.parse().expect("session id"))
        .await
        .expect("lock");
    std::fs::write(held_marker(Path::new(&path)), b"").expect("marker");
    tokio::time::sleep(Duration::from_secs(120)).await;
}

fn held_marker(workspace: &Path) -> PathBuf {
    workspace.with_extension("held")
}

/// A process killed (SIGKILL) while it holds a session's lock does not
/// block the next holder.
#[tokio::test]
async fn a_killed_holder_frees_the_session_lock() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ws.json");
    let workspace = FsWorkspace::open(&path).expect("workspace");
    let session = workspace
        .insert(Session::new("r1", SessionType::Redfish).expect("session"))
        .await
        .expect("insert");
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "hold_a_session_lock_until_killed",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_WORKSPACE, &path)
        .env(CHILD_SESSION, session.session_id.to_string())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn the holder");
    let marker = held_marker(&path);
    for _ in 0..600 {
        if marker.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(marker.exists(), "the child took the lock");

    let waiting = workspace.lock_session(session.session_id);
    let mut waiting = std::pin::pin!(waiting);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut waiting)
            .await
            .is_err(),
        "the lock is held by the child"
    );
    child.kill().expect("SIGKILL the holder");
    child.wait().expect("reap the holder");
    let lock = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the lock is free once its holder died")
        .expect("lock");
    drop(lock);
}

/// The live-hold mark of `FsWorkspace`: one holder at a time, seen by every
/// other open of the file, gone with its guard.
#[tokio::test]
async fn a_live_hold_is_seen_by_other_opens_and_ends_with_its_guard() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ws.json");
    let first = FsWorkspace::open(&path).unwrap();
    let other = FsWorkspace::open(&path).unwrap();
    let id = session_core::SessionId::new();
    assert!(!other.is_held_elsewhere(id).await.unwrap(), "never held");

    let guard = first
        .hold_live(id)
        .await
        .unwrap()
        .expect("FsWorkspace marks holds");
    assert!(other.is_held_elsewhere(id).await.unwrap());
    let second = other.hold_live(id).await.expect_err("one holder at a time");
    assert!(
        second.to_string().contains("connected in another process"),
        "{second}"
    );
    drop(guard);
    assert!(!other.is_held_elsewhere(id).await.unwrap(), "released");
    let again = other.hold_live(id).await.unwrap();
    assert!(again.is_some());
}
