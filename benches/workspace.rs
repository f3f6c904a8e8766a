//! `FsWorkspace` at 100, 1,000 and 10,000 sessions: cold load, list, and
//! update-one-and-persist (fsync included), and update-one-and-persist at
//! 100,000; and Leapp's own core (npm `@noovolari/leapp-core`, the
//! `leapp_core` peer that `./scripts/test` installs) loading and updating
//! the same numbers of sessions, in the same run. Figures: `benches/README.md`.

use std::path::Path;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_main};
use session_sdk::{FsWorkspace, Session, SessionStatus, SessionType, WorkspaceRepository};

const SIZES: [usize; 3] = [100, 1_000, 10_000];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A workspace file with `n` realistic sessions, written directly in the
/// documented format (inserting one by one would fsync `n` times).
fn fixture(dir: &Path, n: usize) -> std::path::PathBuf {
    let path = dir.join(format!("ws-{n}.json"));
    let at = time::macros::datetime!(2030-01-01 0:00 UTC);
    let sessions: Vec<Session> = (0..n)
        .map(|i| {
            let mut s = Session::new(format!("session-{i}"), SessionType::AwsIamRoleChained)
                .expect("session")
                .with_region("eu-west-1");
            let config = s.config.as_map_mut();
            config.insert(
                "roleArn".into(),
                format!("arn:aws:iam::123456789012:role/Role{i}").into(),
            );
            config.insert("roleSessionName".into(), "session-sdk".into());
            config.insert("profile".into(), format!("p{i}").into());
            s.transition(SessionStatus::Pending, at).expect("t");
            s.transition(SessionStatus::Active, at).expect("t");
            s.expiration = Some(at + Duration::from_secs(3600));
            s
        })
        .collect();
    // The current schema, so loading measures parsing, not a migration.
    // Each session as the workspace encodes it (not through a
    // `serde_json::Value`, whose keys would come out sorted).
    let doc = format!(
        "{{\"version\":{},\"sessions\":{}}}",
        session_sdk::WORKSPACE_SCHEMA_VERSION,
        serde_json::to_string(&sessions).expect("json")
    );
    std::fs::write(&path, doc).expect("write");
    // Then as the workspace itself writes it (one session per line): a
    // change, folded into the file. This is the file a user has after any
    // change, and the layout loading is tuned for.
    runtime().block_on(async {
        let ws = FsWorkspace::open(&path).expect("open");
        let first = ws.list().await.expect("list")[0].session_id;
        let mut session = ws.get(first).await.expect("get");
        session.region = Some("us-east-1".into());
        ws.update(session).await.expect("update");
        assert!(ws.compact().await.expect("compact"), "folded");
    });
    path
}

/// Appends `line` to a file and `fdatasync`s it: the I/O floor of any
/// durable update that writes only the change.
fn append_fdatasync(file: &mut std::fs::File, line: &[u8]) {
    use std::io::Write;
    file.write_all(line).expect("append");
    file.sync_data().expect("fdatasync");
}

/// Temp file, write, fsync, rename, fsync the directory: the minimum any
/// crash-safe replace of the whole file costs.
fn atomic_write(dir: &Path, bytes: &[u8]) {
    use std::io::Write;
    let tmp = dir.join("f.tmp");
    let mut file = std::fs::File::create(&tmp).expect("create");
    file.write_all(bytes).expect("write");
    file.sync_all().expect("fsync");
    drop(file);
    std::fs::rename(&tmp, dir.join("f")).expect("rename");
    std::fs::File::open(dir)
        .expect("dir")
        .sync_all()
        .expect("fsync dir");
}

/// Leapp's own core on the same machine, in the same run: its cold load
/// (read, decrypt, check, re-save, as Leapp does on start) and one update
/// persisted, each a median over `rounds` (a 10,000-session round takes
/// seconds). Printed beside criterion's lines.
fn leapp_core_figures() {
    use session_testkit::peers::leapp_core::LeappCore;
    let peer = match LeappCore::locate() {
        Ok(peer) => peer,
        Err(e) => {
            println!("leapp_core: not measured: {e}");
            return;
        }
    };
    for (n, rounds) in [(100, 10), (1_000, 10), (10_000, 5)] {
        match peer.bench(n, rounds) {
            Ok(f) => println!(
                "leapp_core/{n}: cold_load {:.1} ms, update_one_persist {:.1} ms (median of {} rounds, leapp-core {})",
                f.cold_load_ms, f.update_one_persist_ms, f.rounds, f.version
            ),
            Err(e) => println!("leapp_core/{n}: failed: {e}"),
        }
    }
}

fn bench(c: &mut Criterion) {
    leapp_core_figures();
    let dir = tempfile::tempdir().expect("dir");
    let rt = runtime();
    let mut group = c.benchmark_group("fs_workspace");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));
    for n in SIZES {
        let path = fixture(dir.path(), n);

        group.bench_with_input(BenchmarkId::new("cold_load", n), &path, |b, path| {
            // Dropping 10,000 sessions is not loading them: keep the drop
            // out of the measurement.
            b.iter_with_large_drop(|| {
                let ws = FsWorkspace::open(path).expect("open");
                assert_eq!(rt.block_on(ws.check()).expect("load"), n);
                ws
            })
        });

        // Baselines in the same run: what any JSON reader pays to parse this
        // file, and the I/O floor of any atomic replace of it.
        let bytes = std::fs::read(&path).expect("read");
        group.bench_with_input(
            BenchmarkId::new("baseline_serde_value_parse", n),
            &bytes,
            |b, bytes| {
                b.iter_with_large_drop(|| {
                    serde_json::from_slice::<serde_json::Value>(bytes).expect("parse")
                })
            },
        );
        let floor_dir = dir.path().join(format!("floor-{n}"));
        std::fs::create_dir_all(&floor_dir).expect("dir");
        group.bench_with_input(
            BenchmarkId::new("baseline_write_fsync_rename", n),
            &bytes,
            |b, bytes| b.iter(|| atomic_write(&floor_dir, bytes)),
        );

        let ws = FsWorkspace::open(&path).expect("open");
        rt.block_on(ws.check()).expect("warm");
        group.bench_with_input(BenchmarkId::new("list", n), &ws, |b, ws| {
            b.iter_with_large_drop(|| rt.block_on(ws.list()).expect("list"))
        });

        update_one_persist(&mut group, &rt, &ws, n);
        // Kept small: it grows by one line per iteration, compacted never.
        let log_path = floor_dir.join("append.log");
        let mut log = std::fs::File::create(&log_path).expect("log");
        let line = serde_json::to_vec(&rt.block_on(ws.list()).expect("list")[0]).expect("json");
        group.bench_function(BenchmarkId::new("baseline_append_fdatasync", n), |b| {
            b.iter(|| append_fdatasync(&mut log, &line))
        });
    }
    // 100,000 sessions: only the update, to show it does not grow with N.
    let n = 100_000;
    let path = fixture(dir.path(), n);
    let ws = FsWorkspace::open(&path).expect("open");
    rt.block_on(ws.check()).expect("warm");
    update_one_persist(&mut group, &rt, &ws, n);
    group.finish();
}

/// `get` + `update` of the middle session, with its persistence: one
/// journal line, and the compactions due every so many updates.
fn update_one_persist(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &tokio::runtime::Runtime,
    ws: &FsWorkspace,
    n: usize,
) {
    let target = rt.block_on(ws.list()).expect("list")[n / 2].session_id;
    let mut flip = false;
    group.bench_with_input(BenchmarkId::new("update_one_persist", n), ws, |b, ws| {
        b.iter(|| {
            let mut s = rt.block_on(ws.get(target)).expect("get");
            flip = !flip;
            s.region = Some(if flip { "us-east-1" } else { "eu-west-1" }.into());
            rt.block_on(ws.update(s)).expect("update");
        })
    });
}

// criterion_group! generates an undocumented pub fn.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
