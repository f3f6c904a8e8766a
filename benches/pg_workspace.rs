//! `PgWorkspace` on a real PostgreSQL (the `postgresql` peer that
//! `./scripts/test` installs, started here in a temporary directory):
//!
//! - `updates_8_writers`: 8 writers, each its own connection, each
//!   updating its own session (get + update with the revision check),
//!   beside the same 8 writers sending the bare `UPDATE … WHERE revision`
//!   statement through tokio-postgres (the database's own floor for this
//!   work), and beside `FsWorkspace` with 8 writers (one process);
//! - `fleet_rotation`: 1,000 sessions all due at once, rotated by 4
//!   managers (each its own connection and `RotationScheduler`), beside 1
//!   manager alone: the time until every session is rotated once.
//!
//! Figures: `benches/README.md`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_main};
use session_sdk::postgres::PgWorkspace;
use session_sdk::{
    ActionContext, Capabilities, Clock, FsWorkspace, InMemorySecretStore, Result, RotationPolicy,
    RotationScheduler, Secret, Session, SessionAction, SessionManager, SessionStatus, SessionType,
    SystemClock, WorkspaceRepository,
};
use session_testkit::peers::postgres::{self, PostgresServer};

const WRITERS: usize = 8;
/// Updates per measured iteration, spread over the writers.
const BATCH: usize = 400;
const FLEET: usize = 1_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn bench_type() -> SessionType {
    SessionType::Other("benchRotated".into())
}

/// A provider whose rotation is a new expiry an hour on.
#[derive(Debug)]
struct Renewing;

#[async_trait::async_trait]
impl SessionAction for Renewing {
    fn session_type(&self) -> SessionType {
        bench_type()
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::none().with_rotate(true)
    }
    async fn start(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        self.rotate(ctx, session).await
    }
    async fn stop(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        let mut next = session.clone();
        next.transition(SessionStatus::Inactive, ctx.clock.now())?;
        Ok(next)
    }
    async fn rotate(&self, ctx: &ActionContext, session: &Session) -> Result<Session> {
        let now = ctx.clock.now();
        let mut next = session.clone();
        next.expiration = Some(now + Duration::from_secs(3600));
        next.transition(SessionStatus::Active, now)?;
        Ok(next)
    }
}

/// A session a chained-role user would have: a few settings.
fn session(name: String) -> Session {
    let mut s = Session::new(name, bench_type()).expect("session");
    let config = s.config.as_map_mut();
    config.insert(
        "roleArn".into(),
        "arn:aws:iam::123456789012:role/Bench".into(),
    );
    config.insert("roleSessionName".into(), "session-sdk".into());
    config.insert("region".into(), "eu-west-1".into());
    s
}

struct Db {
    server: PostgresServer,
    password: Secret,
    next: std::sync::atomic::AtomicUsize,
}

impl Db {
    /// A new empty database, and its URL.
    async fn fresh(&self) -> String {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("bench{n}");
        PgWorkspace::connect(&self.server.url(), Some(&self.password))
            .await
            .expect("connect")
            .create_database_for_tests(&name)
            .await
            .expect("create database");
        self.server.url().replace("/postgres", &format!("/{name}"))
    }

    async fn connect(&self, url: &str) -> PgWorkspace {
        PgWorkspace::connect(url, Some(&self.password))
            .await
            .expect("connect")
    }
}

/// Runs `BATCH` updates spread over the writers; each writer updates its
/// own session through `update(session) -> session`.
async fn updates<R, F, Fut>(writers: &[(R, Session)], update: F) -> Duration
where
    R: Clone + Send + 'static,
    F: Fn(R, Session) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Session> + Send,
{
    let started = Instant::now();
    let tasks: Vec<_> = writers
        .iter()
        .cloned()
        .map(|(repo, mut session)| {
            let update = update.clone();
            tokio::spawn(async move {
                for _ in 0..BATCH / WRITERS {
                    session = update(repo.clone(), session).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer");
    }
    started.elapsed()
}

fn flip(mut s: Session) -> Session {
    s.region = Some(
        if s.region.as_deref() == Some("us-east-1") {
            "eu-west-1"
        } else {
            "us-east-1"
        }
        .into(),
    );
    s
}

fn bench_updates(c: &mut Criterion, rt: &tokio::runtime::Runtime, db: &Db) {
    let mut group = c.benchmark_group("updates_8_writers");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Elements(BATCH as u64));

    // PgWorkspace: each writer its own connection, its own session.
    let pg_writers: Vec<(Arc<PgWorkspace>, Session)> = rt.block_on(async {
        let url = db.fresh().await;
        let mut writers = Vec::new();
        for i in 0..WRITERS {
            let ws = db.connect(&url).await;
            let s = ws.insert(session(format!("w{i}"))).await.expect("insert");
            writers.push((Arc::new(ws), s));
        }
        writers
    });
    group.bench_function(BenchmarkId::new("pg_workspace", WRITERS), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    rt.block_on(updates(&pg_writers, |ws: Arc<PgWorkspace>, s| async move {
                        let current = ws.get(s.session_id).await.expect("get");
                        ws.update(flip(current)).await.expect("update")
                    }))
                })
                .sum()
        })
    });

    // The same statements, bare: what the database itself costs.
    let raw_writers: Vec<(Arc<tokio_postgres::Client>, Session)> = rt.block_on(async {
        let url = db.fresh().await;
        let seed = db.connect(&url).await;
        let mut writers = Vec::new();
        for i in 0..WRITERS {
            let s = seed.insert(session(format!("r{i}"))).await.expect("insert");
            let mut config: tokio_postgres::Config = url.parse().expect("url");
            config.password(db.password.expose());
            let (client, connection) = config
                .connect(tokio_postgres::NoTls)
                .await
                .expect("connect");
            tokio::spawn(connection);
            writers.push((Arc::new(client), s));
        }
        writers
    });
    group.bench_function(BenchmarkId::new("baseline_bare_update", WRITERS), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += rt.block_on(updates(&raw_writers, |client: Arc<tokio_postgres::Client>, s| async move {
                    let id = uuid::Uuid::parse_str(&s.session_id.to_string()).expect("uuid");
                    let row = client
                        .query_one("SELECT revision, doc FROM sessions WHERE id = $1", &[&id])
                        .await
                        .expect("select");
                    let revision: i64 = row.get(0);
                    let doc: serde_json::Value = row.get(1);
                    let _: Session = serde_json::from_value(doc).expect("session");
                    let next = serde_json::to_value(flip(s.clone())).expect("json");
                    client
                        .execute(
                            "UPDATE sessions SET doc = $1, revision = revision + 1 WHERE id = $2 AND revision = $3",
                            &[&next, &id, &revision],
                        )
                        .await
                        .expect("update");
                    s
                }));
            }
            total
        })
    });

    // FsWorkspace with the same 8 writers (one process, one file).
    let dir = tempfile::tempdir().expect("dir");
    let fs_writers: Vec<(Arc<FsWorkspace>, Session)> = rt.block_on(async {
        let ws = Arc::new(FsWorkspace::open(dir.path().join("ws.json")).expect("open"));
        let mut writers = Vec::new();
        for i in 0..WRITERS {
            let s = ws.insert(session(format!("f{i}"))).await.expect("insert");
            writers.push((ws.clone(), s));
        }
        writers
    });
    group.bench_function(BenchmarkId::new("fs_workspace", WRITERS), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += rt.block_on(updates(&fs_writers, |ws: Arc<FsWorkspace>, s| async move {
                    let current = ws.get(s.session_id).await.expect("get");
                    ws.update(flip(current)).await.expect("update")
                }));
            }
            total
        })
    });
    group.finish();
}

/// The time `managers` managers take to rotate `FLEET` sessions all due at
/// once.
async fn fleet_round(db: &Db, managers: usize) -> Duration {
    let url = db.fresh().await;
    let seed = db.connect(&url).await;
    let now = SystemClock.now();
    let mut ids = Vec::new();
    for i in 0..FLEET {
        let mut s = session(format!("s{i}"));
        // Issued an hour ago, a minute left: due now.
        s.transition(SessionStatus::Pending, now - Duration::from_secs(3600))
            .expect("t");
        s.transition(SessionStatus::Active, now - Duration::from_secs(3600))
            .expect("t");
        s.expiration = Some(now + Duration::from_secs(60));
        ids.push(seed.insert(s).await.expect("insert").session_id);
    }
    let mut schedulers = Vec::new();
    for _ in 0..managers {
        let ws = db.connect(&url).await;
        let manager = SessionManager::builder()
            .repository(Arc::new(ws))
            .secrets(Arc::new(InMemorySecretStore::new()))
            .provider(Arc::new(Renewing))
            .build()
            .expect("manager");
        schedulers.push(manager);
    }
    let started = Instant::now();
    let handles: Vec<_> = schedulers
        .into_iter()
        .map(|m| {
            RotationScheduler::spawn(
                m,
                RotationPolicy::default().with_rescan(Duration::from_millis(200)),
            )
        })
        .collect();
    loop {
        let sessions = seed.list().await.expect("list");
        let done = sessions
            .iter()
            .filter(|s| {
                s.status() == SessionStatus::Active
                    && s.expiration
                        .is_some_and(|e| e > now + Duration::from_secs(600))
            })
            .count();
        if done == FLEET {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    for handle in handles {
        handle.shutdown().await;
    }
    elapsed
}

fn bench_fleet(c: &mut Criterion, rt: &tokio::runtime::Runtime, db: &Db) {
    let mut group = c.benchmark_group("fleet_rotation");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements(FLEET as u64));
    for managers in [1, 4] {
        group.bench_function(BenchmarkId::new("managers", managers), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| rt.block_on(fleet_round(db, managers)))
                    .sum()
            })
        });
    }
    group.finish();
}

fn bench(c: &mut Criterion) {
    let bin = match postgres::postgres_bin() {
        Ok(bin) => bin,
        Err(e) => {
            println!("pg_workspace: not measured: {e}");
            return;
        }
    };
    let rt = runtime();
    let server = PostgresServer::start(&bin);
    let db = Db {
        password: Secret::new(server.password()),
        server,
        next: std::sync::atomic::AtomicUsize::new(0),
    };
    bench_updates(c, &rt, &db);
    bench_fleet(c, &rt, &db);
}

// criterion_group! generates an undocumented pub fn.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
