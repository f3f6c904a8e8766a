//! Redfish login+logout pairs per second: this project's client
//! (`RedfishProvider` start + stop) against DMTF's Python `redfish` library
//! (python-redfish-library), in the same run, against the same in-process
//! `session_redfish` server over HTTPS (its generated CA trusted by both).
//! Goal: ours ≥ 5× the Python library.
//!
//! The server runs on its own tokio runtime (one worker thread) for the whole
//! bench; our client runs on a separate current-thread runtime on the bench
//! thread and the Python side in a subprocess, so on a 2-core machine the
//! client in turn gets one core and the server the other.
//!
//! What one pair is, per side (from reading each side's code):
//!
//! - **ours, one provider** (`session_redfish_start_stop`): `start` sends
//!   `GET /redfish/v1/` (discovery of `Links.Sessions`), `POST …/Sessions`
//!   (login) and `GET /redfish/v1/SessionService` (with the new token, for
//!   the expiry), and stores the token in the (in-memory) secret store;
//!   `stop` reads the token and sends `DELETE <session URI>`, then deletes
//!   the token. 4 requests. The provider keeps one reqwest client per TLS
//!   setting, so all of them go over one kept-alive TLS connection: no new
//!   connection per pair. This is how a long-lived program (one
//!   `SessionManager`) uses it.
//! - **ours, new provider per pair** (`session_redfish_start_stop_new_provider`):
//!   the same 4 requests with a `RedfishProvider` made for the pair, so the
//!   HTTP client is built (CA parsed, rustls config) and 1 new TCP + full TLS
//!   1.3 handshake is made per pair: how a one-shot CLI process pays it, and
//!   the like-for-like counterpart of the Python "fresh" variant.
//! - **Python, fresh client** (the library's documented flow):
//!   `redfish_client(...)` makes a `requests.Session` and sends
//!   `GET /redfish/v1/`; `login(auth="session")` sends `POST …/Sessions`;
//!   `logout()` sends `DELETE <Location>` and closes the `requests.Session`.
//!   3 requests on 1 new connection (full TLS handshake; urllib3 builds an
//!   `SSLContext` and loads the CA file per connection; no resumption).
//! - **Python, reused client**: one client made once (untimed), then
//!   `login()` + `logout()` per pair: `POST` + `DELETE`, 2 requests; as
//!   `logout()` closes the pool, each pair opens 1 new connection.
//! - **Python, kept-alive client**: the like-for-like counterpart of ours
//!   with one provider: one client made once (untimed), then the library's
//!   own `post()` (login) and `delete()` (logout with the session's token)
//!   per pair, without `login()`/`logout()`, so its one connection stays
//!   open: 2 requests, no new connection per pair.
//!
//! The script counts its requests and connections per pair (wrapping
//! `requests.Session.send` and urllib3's `_new_conn` for a few untimed pairs)
//! and prints them; ours are from the code above.
//!
//! Figures: criterion's estimates for ours, then [`ROUNDS`] interleaved rounds
//! of [`PAIRS`] pairs per variant, each timed over wall time after [`WARMUP`]
//! untimed pairs (the Python interpreter's start-up and imports excluded);
//! the summary line gives each variant's median round and the ratios. Each
//! round also counts stalls, pairs slower than 20 ms: a new connection to
//! this server can wait ~40 ms for its first answer (the server does not set
//! `TCP_NODELAY`; its TLS 1.3 session tickets, sent right after the
//! handshake, are still unacknowledged when the first response is written,
//! so Nagle holds the response until the client's delayed ACK).
//!
//! Python: `$SESSION_PEERS_PYTHON`, else `.cache/peers/venv/bin/python`
//! (`./scripts/test` installs it). Without it, or without the `redfish`
//! module, the bench says the Python side was not measured and measures ours
//! only.
//!
//! Run: `SESSION_PEERS_PYTHON=$PWD/.cache/peers/venv/bin/python cargo bench --bench redfish_client`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_main};
use serde_json::Value;
use session_core::{
    ActionContext, Clock, InMemorySecretStore, Secret, SecretKey, Session, SessionAction,
    SessionStatus, SessionType, SystemClock,
};
use session_redfish::client::{PASSWORD_SECRET, RedfishConfig, RedfishProvider};
use session_redfish::server::{RedfishServer, RedfishServerHandle, Role};

/// Timed pairs per round and variant.
const PAIRS: usize = 200;
/// Untimed pairs before each timed run.
const WARMUP: usize = 20;
/// Interleaved rounds (ours, then Python), for the summary's medians.
const ROUNDS: usize = 3;
/// Pairs per variant when the bench runs as a test (no `--bench` argument,
/// e.g. `cargo test --benches`): one short round, to check that it works.
const TEST_PAIRS: usize = 5;
/// A pair slower than this counts as a stall.
const STALL: Duration = Duration::from_millis(20);

const USER: &str = "admin";
const PASSWORD: &str = "bench-admin-password-7f3a";
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/benches/redfish_python_login.py"
);
/// The peers' Python that `./scripts/test` installs, relative to the
/// repository (as the tests find it), when `SESSION_PEERS_PYTHON` is unset.
const DEFAULT_PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.cache/peers/venv/bin/python");

/// How our side gets its provider.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// One provider for the whole run (its HTTP client and connection kept).
    Shared,
    /// A new provider per pair (a new HTTP client and TLS connection).
    NewProvider,
}

/// One timed run: pairs per second, the median pair, how many stalled.
struct Timed {
    rate: f64,
    median_ms: f64,
    stalls: usize,
}

/// Our side: the shared provider, the context and a `pending` session.
struct Ours {
    rt: tokio::runtime::Runtime,
    provider: RedfishProvider,
    ctx: ActionContext,
    pending: Session,
}

impl Ours {
    fn new(handle: &RedfishServerHandle, ca_pem: &str) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("client runtime");
        let ctx = ActionContext::new(Arc::new(SystemClock), Arc::new(InMemorySecretStore::new()));
        let config = RedfishConfig::new(handle.base_url(), USER).with_ca_pem(ca_pem);
        let mut pending = Session::new("bench-bmc", SessionType::Redfish)
            .expect("session")
            .with_config(&config)
            .expect("config");
        rt.block_on(ctx.secrets.put(
            &SecretKey::new(pending.session_id, PASSWORD_SECRET).expect("key"),
            &Secret::new(PASSWORD),
        ))
        .expect("password");
        pending
            .transition(SessionStatus::Pending, SystemClock.now())
            .expect("pending");
        Self {
            rt,
            provider: RedfishProvider::new(),
            ctx,
            pending,
        }
    }

    /// One login+logout: start, then stop.
    async fn pair(&self, variant: Variant) {
        let fresh;
        let provider = match variant {
            Variant::Shared => &self.provider,
            Variant::NewProvider => {
                fresh = RedfishProvider::new();
                &fresh
            }
        };
        let mut active = provider
            .start(&self.ctx, &self.pending)
            .await
            .expect("start");
        active
            .transition(SessionStatus::Stopping, self.ctx.clock.now())
            .expect("stopping");
        let stopped = provider.stop(&self.ctx, &active).await.expect("stop");
        debug_assert_eq!(stopped.status(), SessionStatus::Inactive);
    }

    /// `pairs` pairs after `WARMUP` (at most `pairs`) untimed ones.
    fn timed(&self, variant: Variant, pairs: usize) -> Timed {
        self.rt.block_on(async {
            for _ in 0..WARMUP.min(pairs) {
                self.pair(variant).await;
            }
            let mut each = Vec::with_capacity(pairs);
            let started = Instant::now();
            for _ in 0..pairs {
                let before = Instant::now();
                self.pair(variant).await;
                each.push(before.elapsed());
            }
            let rate = pairs as f64 / started.elapsed().as_secs_f64();
            let stalls = each.iter().filter(|d| **d > STALL).count();
            each.sort();
            Timed {
                rate,
                median_ms: each[each.len() / 2].as_secs_f64() * 1000.0,
                stalls,
            }
        })
    }
}

/// The peers' Python if it can import `redfish`, else why not.
fn python() -> Result<PathBuf, String> {
    let python = match std::env::var_os("SESSION_PEERS_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_PYTHON),
    };
    if !python.is_file() {
        return Err(format!(
            "{} does not exist (set SESSION_PEERS_PYTHON or run ./scripts/test)",
            python.display()
        ));
    }
    let out = Command::new(&python)
        .args(["-c", "import redfish"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} cannot import redfish: {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        ));
    }
    Ok(python)
}

/// One run of the Python script: its JSON report, or why it failed.
fn run_python(python: &Path, base_url: &str, ca: &Path, pairs: usize) -> Result<Value, String> {
    let out = Command::new(python)
        .arg(SCRIPT)
        .arg(base_url)
        .arg(USER)
        .arg(ca)
        .arg(pairs.to_string())
        .arg(WARMUP.min(pairs).to_string())
        // No proxies or other settings from the caller's environment.
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("REQUESTS_CA_BUNDLE", ca)
        .env("REDFISH_BENCH_PASSWORD", PASSWORD)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "the script failed ({}): {}\n{}",
            out.status,
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).map_err(|e| format!("not JSON ({e}): {stdout}"))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn bench(c: &mut Criterion) {
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("server runtime");
    let handle = server_rt
        .block_on(async {
            RedfishServer::builder()
                .account(USER, Secret::new(PASSWORD), Role::Administrator)
                .build()?
                .start()
                .await
        })
        .expect("server");
    let ca_pem = handle.ca_pem().expect("HTTPS server has a CA").to_owned();
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &ca_pem).expect("write CA");

    let ours = Ours::new(&handle, &ca_pem);
    ours.rt.block_on(ours.pair(Variant::Shared));

    let mut group = c.benchmark_group("redfish_login_logout");
    for (name, variant, samples) in [
        ("session_redfish_start_stop", Variant::Shared, 30),
        (
            "session_redfish_start_stop_new_provider",
            Variant::NewProvider,
            10,
        ),
    ] {
        group
            .sample_size(samples)
            .measurement_time(Duration::from_secs(10));
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                ours.rt.block_on(async {
                    let started = Instant::now();
                    for _ in 0..iterations {
                        ours.pair(variant).await;
                    }
                    started.elapsed()
                })
            })
        });
    }
    group.finish();

    // `cargo bench` passes --bench; without it criterion runs each bench once
    // as a test, and the rounds here are shortened.
    let (pairs, rounds) = if std::env::args().any(|a| a == "--bench") {
        (PAIRS, ROUNDS)
    } else {
        (TEST_PAIRS, 1)
    };
    let python = python();
    if let Err(why) = &python {
        eprintln!("redfish_client bench: the Python side was NOT measured: {why}");
    }
    let mut shared_rounds = Vec::with_capacity(rounds);
    let mut new_rounds = Vec::with_capacity(rounds);
    let mut fresh_rounds = Vec::with_capacity(rounds);
    let mut reuse_rounds = Vec::with_capacity(rounds);
    let mut kept_rounds = Vec::with_capacity(rounds);
    let mut report = Value::Null;
    for round in 1..=rounds {
        let shared = ours.timed(Variant::Shared, pairs);
        let new = ours.timed(Variant::NewProvider, pairs);
        println!(
            "round {round}: session-redfish, one provider: {:.0} pairs/s (median pair {:.2} ms, {} stalls); \
             new provider per pair: {:.0} pairs/s (median pair {:.2} ms, {} of {pairs} pairs stalled > 20 ms)",
            shared.rate, shared.median_ms, shared.stalls, new.rate, new.median_ms, new.stalls
        );
        shared_rounds.push(shared.rate);
        new_rounds.push(new.rate);
        let Ok(python) = &python else { continue };
        match run_python(python, handle.base_url(), &ca, pairs) {
            Ok(seen) => {
                let rate = |v: &str| seen[v]["pairs_per_second"].as_f64().unwrap_or(f64::NAN);
                let median = |v: &str| seen[v]["median_ms"].as_f64().unwrap_or(f64::NAN);
                println!(
                    "round {round}: python redfish, fresh client: {:.0} pairs/s (median pair {:.2} ms, {} stalls); \
                     reused client: {:.0} pairs/s (median pair {:.2} ms, {} stalls); \
                     kept-alive client: {:.0} pairs/s (median pair {:.2} ms, {} stalls)",
                    rate("fresh"),
                    median("fresh"),
                    seen["fresh"]["stalls"],
                    rate("reuse"),
                    median("reuse"),
                    seen["reuse"]["stalls"],
                    rate("keepalive"),
                    median("keepalive"),
                    seen["keepalive"]["stalls"],
                );
                fresh_rounds.push(rate("fresh"));
                reuse_rounds.push(rate("reuse"));
                kept_rounds.push(rate("keepalive"));
                report = seen;
            }
            Err(why) => {
                eprintln!("redfish_client bench: the Python side was NOT measured: {why}");
                fresh_rounds.clear();
                break;
            }
        }
    }

    let shared = median(shared_rounds);
    let new = median(new_rounds);
    println!(
        "session-redfish, one provider: {shared:.0} pairs/s ({:.2} ms/pair; 4 requests, no new connection per pair)",
        1000.0 / shared
    );
    println!(
        "session-redfish, new provider per pair: {new:.0} pairs/s ({:.2} ms/pair; 4 requests, 1 new TLS connection per pair)",
        1000.0 / new
    );
    if fresh_rounds.len() == rounds {
        let fresh = median(fresh_rounds);
        let reuse = median(reuse_rounds);
        let kept = median(kept_rounds);
        for (key, name, rate) in [
            ("fresh", "fresh client", fresh),
            ("reuse", "reused client", reuse),
            ("keepalive", "kept-alive client", kept),
        ] {
            println!(
                "python {} (requests {}, urllib3 {}, Python {}), {name}: {rate:.0} pairs/s \
                 ({:.2} ms/pair; {} requests, {} new TLS connections per pair)",
                report["library"],
                report["requests"],
                report["urllib3"],
                report["python"],
                1000.0 / rate,
                report[key]["requests_per_pair"],
                report[key]["connections_per_pair"],
            );
        }
        let best_python = fresh.max(reuse);
        println!(
            "SUMMARY redfish login+logout pairs/s (median of {rounds} rounds x {pairs} pairs): \
             ours (one provider) {shared:.0}; python fresh client {fresh:.0}; python reused client {reuse:.0}; \
             python kept-alive client {kept:.0}; \
             ours / best new-connection python = {:.2}x (goal >= 5x: {}); \
             like for like: both kept alive {:.2}x, both a new connection per pair {:.2}x",
            shared / best_python,
            if shared / best_python >= 5.0 {
                "met"
            } else {
                "MISSED"
            },
            shared / kept,
            new / fresh,
        );
    } else {
        println!(
            "SUMMARY redfish login+logout pairs/s: ours (one provider) {shared:.0}; \
             ours with a new provider per pair {new:.0}; python: NOT measured (see above)"
        );
    }
    server_rt.block_on(handle.shutdown());
}

// criterion_group! generates an undocumented pub fn.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
