//! A fleet: several managers in separate processes share one workspace on
//! PostgreSQL, each running a `RotationScheduler` over every session. Each
//! session must be rotated once per due time, not once per manager, and
//! the fleet must survive a manager killed with SIGKILL.
//!
//! The managers are this test binary re-run as children (`fleet_child`);
//! each prints `rotated <session id> <unix ms> <manager>` per rotation it
//! makes, and the parent checks the merged record.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use session_core::{
    ActionContext, Capabilities, Clock, InMemorySecretStore, Result, RotationPolicy,
    RotationScheduler, Secret, Session, SessionAction, SessionManager, SessionStatus, SessionType,
    SystemClock, WorkspaceRepository,
};
use session_postgres::PgWorkspace;
use session_testkit::peers::postgres::{self, PostgresServer};
use session_testkit::peers::require_peer;

const URL: &str = "FLEET_URL";
const PASSWORD: &str = "FLEET_PASSWORD";
const NAME: &str = "FLEET_MANAGER";
const RUN_FOR: &str = "FLEET_RUN_MS";
const HANG_SESSION: &str = "FLEET_HANG_SESSION";

/// Credentials live this long: the scheduler rotates each session when a
/// quarter is left, so every 12 s.
const LIFETIME: Duration = Duration::from_secs(16);
/// The sessions' first expirations are spread over one rotation period,
/// as a fleet's would be, rather than all due at one instant.
const SPREAD: Duration = Duration::from_secs(12);
const SESSIONS: usize = 1_000;
const MANAGERS: usize = 4;
/// When one manager is killed.
const KILL_AT: Duration = Duration::from_secs(14);

fn counted() -> SessionType {
    SessionType::Other("fleetCounted".into())
}

/// A provider whose credentials are a new expiry; it says on stdout whom
/// it rotated.
#[derive(Debug)]
struct Counted {
    manager: String,
    /// Its rotations, for a test that reads them in this process.
    rotations: Arc<AtomicUsize>,
    /// Never returns from a rotation (after saying it began): a manager
    /// that dies mid-rotation.
    hangs: bool,
}

impl Counted {
    fn new(manager: impl Into<String>) -> Self {
        Self {
            manager: manager.into(),
            rotations: Arc::default(),
            hangs: false,
        }
    }
}

#[async_trait::async_trait]
impl SessionAction for Counted {
    fn session_type(&self) -> SessionType {
        counted()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none().with_rotate(true)
    }

    async fn start(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        // The manager renews an expired session by starting it again: that
        // is a renewal too.
        println!(
            "rotated {} {} {}-start",
            session.session_id,
            ctx.clock.now().unix_timestamp_nanos() / 1_000_000,
            self.manager
        );
        let mut next = session.clone();
        next.expiration = Some(ctx.clock.now() + LIFETIME);
        next.transition(SessionStatus::Active, ctx.clock.now())?;
        Ok(next)
    }

    async fn stop(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        let mut next = session.clone();
        next.transition(SessionStatus::Inactive, ctx.clock.now())?;
        Ok(next)
    }

    async fn rotate(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        let now = ctx.clock.now();
        println!(
            "rotated {} {} {}",
            session.session_id,
            now.unix_timestamp_nanos() / 1_000_000,
            self.manager
        );
        self.rotations.fetch_add(1, Ordering::SeqCst);
        if self.hangs {
            std::future::pending::<()>().await;
        }
        let mut next = session.clone();
        next.expiration = Some(now + LIFETIME);
        next.transition(SessionStatus::Active, now)?;
        Ok(next)
    }
}

/// A child process's manager over the workspace its parent named
/// (`FLEET_URL`, `FLEET_PASSWORD`), with `provider`.
async fn child_manager(provider: Counted) -> SessionManager {
    let url = std::env::var(URL).expect("started by a test of this file");
    let password = Secret::new(std::env::var(PASSWORD).expect("password"));
    let workspace = PgWorkspace::connect(&url, Some(&password))
        .await
        .expect("connect");
    SessionManager::builder()
        .repository(Arc::new(workspace))
        .secrets(Arc::new(InMemorySecretStore::new()))
        .clock(Arc::new(SystemClock))
        .provider(Arc::new(provider))
        .build()
        .expect("manager")
}

#[test]
#[ignore = "a manager of the fleet test, started by it"]
fn fleet_child() {
    let manager = std::env::var(NAME).expect("started by the fleet test");
    let run_for = Duration::from_millis(std::env::var(RUN_FOR).expect("run").parse().unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let sessions = child_manager(Counted::new(manager)).await;
        let scheduler = RotationScheduler::spawn(
            sessions,
            RotationPolicy::default().with_rescan(Duration::from_millis(500)),
        );
        tokio::time::sleep(run_for).await;
        scheduler.shutdown().await;
    });
}

fn spawn_manager(server: &PostgresServer, url: &str, name: &str, run_for: Duration) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "fleet_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(URL, url)
        .env(PASSWORD, server.password())
        .env(NAME, name)
        .env(RUN_FOR, run_for.as_millis().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn a manager")
}

/// `(session, unix ms, manager)` of each rotation a manager printed.
/// Reads `child`'s record on a thread of its own, from now on: every
/// child's pipe must be drained at once, or a child blocks writing its
/// record while it holds a session lock the others wait for (a deadlock of
/// the test, found with 1,000 sessions).
fn rotations(child: &mut Child) -> std::thread::JoinHandle<Vec<(String, i128, String)>> {
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        BufReader::new(out)
            .lines()
            .map_while(std::result::Result::ok)
            .filter_map(|line| {
                // The first line follows libtest's "test fleet_child ... "
                // (which ends only when the test does).
                let at = line.find("rotated ")?;
                let mut parts = line[at + "rotated ".len()..].split(' ');
                Some((
                    parts.next()?.to_owned(),
                    parts.next()?.parse().ok()?,
                    parts.next()?.to_owned(),
                ))
            })
            .collect()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_managers_rotate_each_session_once_per_due_time_and_survive_a_kill() {
    let Some(bin) = require_peer("postgresql", postgres::postgres_bin) else {
        return;
    };
    let server = PostgresServer::start(&bin);
    let admin = PgWorkspace::connect(&server.url(), Some(&Secret::new(server.password())))
        .await
        .unwrap();
    admin.create_database_for_tests("fleet").await.unwrap();
    let url = server.url().replace("/postgres", "/fleet");
    let workspace = PgWorkspace::connect(&url, Some(&Secret::new(server.password())))
        .await
        .unwrap();
    let now = SystemClock.now();
    let mut ids = Vec::new();
    for i in 0..SESSIONS {
        let mut session = Session::new(format!("shared-{i}"), counted()).unwrap();
        session.transition(SessionStatus::Pending, now).unwrap();
        session.transition(SessionStatus::Active, now).unwrap();
        session.expiration = Some(now + LIFETIME + SPREAD * i as u32 / SESSIONS as u32);
        ids.push(
            workspace
                .insert(session)
                .await
                .unwrap()
                .session_id
                .to_string(),
        );
    }
    let run_for = Duration::from_secs(48);
    let started = Instant::now();
    let start_ms = SystemClock.now().unix_timestamp_nanos() / 1_000_000;
    let mut managers: Vec<Child> = (0..MANAGERS)
        .map(|i| spawn_manager(&server, &url, &format!("m{i}"), run_for))
        .collect();
    let readers: Vec<_> = managers.iter_mut().map(rotations).collect();
    // One manager dies mid-run, as a crashed machine would.
    tokio::time::sleep(KILL_AT).await;
    let unix_ms = || SystemClock.now().unix_timestamp_nanos() / 1_000_000;
    let kill_ms = unix_ms();
    managers[0].kill().expect("SIGKILL");
    let killed_ms = unix_ms();
    let mut record = Vec::new();
    for (child, reader) in managers.iter_mut().zip(readers) {
        record.extend(reader.join().expect("reader"));
        let _ = child.wait();
    }
    let elapsed = started.elapsed();
    let mut by_session: HashMap<&str, Vec<(i128, &str)>> = HashMap::new();
    for (id, at, manager) in &record {
        by_session.entry(id).or_default().push((*at, manager));
    }
    // Each due time rotated once: two rotations of one session are at
    // least most of a rotation period apart (12 s; a double rotation of one
    // due time by two managers would be milliseconds apart). One exception:
    // the rotation the killed manager had in flight when it died (it
    // rotates one session at a time). Its result never reached the
    // workspace, its lock went with its connection, and another manager
    // must then rotate that session again, after the kill.
    let mut taken_over = Vec::new();
    for (id, times) in &mut by_session {
        times.sort();
        for pair in times.windows(2) {
            let (first, second) = (pair[0], pair[1]);
            if second.0 - first.0 >= 8_000 {
                continue;
            }
            // (Before the kill returned; after it was sent.)
            let abandoned =
                first.1.starts_with("m0") && first.0 <= killed_ms && second.0 >= kill_ms;
            assert!(
                abandoned,
                "{id} rotated twice for one due time: {:?} ms after the start (kill at {} ms)",
                pair.iter()
                    .map(|(at, m)| (at - start_ms, m.to_string()))
                    .collect::<Vec<_>>(),
                kill_ms - start_ms
            );
            taken_over.push(id.to_string());
        }
    }
    assert!(
        taken_over.len() <= 1,
        "the killed manager had one rotation in flight, but these were rotated again: {taken_over:?}"
    );
    // Every session kept being renewed, after the kill too. The record of
    // the killed manager can miss its last lines, so the total comes from
    // the revisions (a renewal writes two: `rotating`, then `active`), and
    // the rotations after the kill from the survivors' record: in 48 s, the
    // first renewal 12 to 21 s after the start and then one every 12 s, at
    // least 3 in all, and 2 after the kill at 14 s.
    for id in &ids {
        let stored = workspace.get(id.parse().unwrap()).await.unwrap();
        let renewals = (stored.revision() - 1) / 2;
        let after_kill = by_session.get(id.as_str()).map_or(0, |t| {
            t.iter()
                .filter(|(at, _)| at - start_ms > KILL_AT.as_millis() as i128 + 500)
                .count()
        });
        assert!(
            renewals >= 3 && after_kill >= 2 && stored.status() == SessionStatus::Active,
            "{id}: {renewals} renewals, {after_kill} after the kill, now {} ({:?} ms after the start)",
            stored.status(),
            by_session.get(id.as_str()).map(|t| t
                .iter()
                .map(|(at, m)| (at - start_ms, m.to_string()))
                .collect::<Vec<_>>()),
        );
    }
    let by_manager = |m: &str| {
        record
            .iter()
            .filter(|r| r.2 == m || r.2 == format!("{m}-start"))
            .count()
    };
    assert!(
        (1..MANAGERS).all(|i| by_manager(&format!("m{i}")) > 0),
        "every surviving manager took part: {:?}",
        (0..MANAGERS)
            .map(|i| by_manager(&format!("m{i}")))
            .collect::<Vec<_>>()
    );
    eprintln!(
        "fleet: {} rotations of {SESSIONS} sessions by {MANAGERS} managers in {elapsed:?} (per manager: {:?}; taken over from the killed one: {})",
        record.len(),
        (0..MANAGERS)
            .map(|i| by_manager(&format!("m{i}")))
            .collect::<Vec<_>>(),
        taken_over.len()
    );
}

#[test]
#[ignore = "a manager killed mid-rotation, started by a_manager_killed_mid_rotation_leaves_it_to_another"]
fn hanging_rotator_child() {
    let id = std::env::var(HANG_SESSION).expect("started by the takeover test");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let sessions = child_manager(Counted {
            hangs: true,
            ..Counted::new("doomed")
        })
        .await;
        let _ = sessions.rotate(&id).await;
        unreachable!("the rotation never returns");
    });
}

/// A manager killed while its provider call is under way leaves the
/// session `rotating`, and its lock with its connection: another manager's
/// scheduler, which waited on that lock, rotates it once the holder is
/// gone, and only then. (The fleet test can hit this at its kill, by
/// chance; this makes it certain.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_killed_mid_rotation_leaves_it_to_another() {
    let Some(bin) = require_peer("postgresql", postgres::postgres_bin) else {
        return;
    };
    let server = PostgresServer::start(&bin);
    let password = Secret::new(server.password());
    let workspace = Arc::new(
        PgWorkspace::connect(&server.url(), Some(&password))
            .await
            .unwrap(),
    );
    let now = SystemClock.now();
    let mut session = Session::new("abandoned", counted()).unwrap();
    session.transition(SessionStatus::Pending, now).unwrap();
    session.transition(SessionStatus::Active, now).unwrap();
    // Due in a quarter of its lifetime: not due for the scheduler below
    // unless it is left `rotating`.
    session.expiration = Some(now + LIFETIME);
    let session = workspace.insert(session).await.unwrap();
    let id = session.session_id;

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "hanging_rotator_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(URL, server.url())
        .env(PASSWORD, server.password())
        .env(HANG_SESSION, id.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the doomed manager");
    let began = rotations(&mut child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while workspace.get(id).await.unwrap().status() != SessionStatus::Rotating {
        assert!(Instant::now() < deadline, "the child began its rotation");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let provider = Arc::new(Counted::new("survivor"));
    let rotations_here = Arc::clone(&provider.rotations);
    let survivor = SessionManager::builder()
        .repository(Arc::clone(&workspace) as Arc<dyn WorkspaceRepository>)
        .secrets(Arc::new(InMemorySecretStore::new()))
        .clock(Arc::new(SystemClock))
        .provider(provider)
        .build()
        .unwrap();
    let scheduler = RotationScheduler::spawn(
        survivor,
        RotationPolicy::default().with_rescan(Duration::from_millis(200)),
    );
    // It sees the session `rotating` and waits for the holder's lock.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        rotations_here.load(Ordering::SeqCst),
        0,
        "not while the holder lives"
    );
    assert_eq!(
        workspace.get(id).await.unwrap().status(),
        SessionStatus::Rotating
    );

    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert_eq!(began.join().unwrap().len(), 1, "the child's one rotation");
    let deadline = Instant::now() + Duration::from_secs(30);
    let renewed = loop {
        let now = workspace.get(id).await.unwrap();
        if now.status() == SessionStatus::Active {
            break now;
        }
        assert!(Instant::now() < deadline, "taken over: {}", now.status());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    scheduler.shutdown().await;
    assert_eq!(
        rotations_here.load(Ordering::SeqCst),
        1,
        "rotated once, by the survivor"
    );
    assert!(renewed.expiration > session.expiration, "new credentials");
    assert_eq!(
        renewed.revision(),
        session.revision() + 3,
        "`rotating` by the dead one, then `rotating` and `active` by the survivor"
    );
}
