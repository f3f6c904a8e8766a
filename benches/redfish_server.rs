//! The embedded Redfish SessionService server under load.
//!
//! 1. **Resident memory with 100,000 live sessions.** The server runs alone
//!    in a child process (this binary, re-run with
//!    `REDFISH_BENCH_SERVER_CHILD=1`), over HTTPS with a 24 h idle timeout so
//!    nothing expires. This process logs in 100,000 times (64 in flight,
//!    keep-alive) and reads the child's `VmRSS` / `VmHWM` from
//!    `/proc/<pid>/status` before and after. Printed, not a criterion
//!    figure: criterion measures time, not memory. The login rate of every
//!    10,000 logins is printed too, to show it does not fall as the store
//!    grows.
//! 2. **Session creations per second** (criterion, `thrpt` in elem/s = logins
//!    per second): 64 logins in flight through one keep-alive reqwest client
//!    trusting the server's CA, against a server started on 127.0.0.1 in this
//!    process, over HTTPS and, for contrast, plain HTTP. Client and server
//!    share the machine's cores, so this is a floor for the server alone.
//!    Sessions accumulate during the run (tens of thousands), as on a busy
//!    service.
//!
//! Run: `cargo bench --bench redfish_server`. Figures: `benches/README.md`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use session_core::Secret;
use session_redfish::server::{RedfishServer, RedfishServerBuilder, Role, SESSIONS_URI};

const USER: &str = "bench";
const PASSWORD: &str = "bench-Passw0rd";
const IN_FLIGHT: usize = 64;
const LIVE_SESSIONS: usize = 100_000;
const CHILD_ENV: &str = "REDFISH_BENCH_SERVER_CHILD";
const CA_ENV: &str = "REDFISH_BENCH_CA";

fn builder() -> RedfishServerBuilder {
    RedfishServer::builder()
        .account(USER, Secret::new(PASSWORD), Role::Administrator)
        // The schema's maximum: no session expires during a run.
        .session_timeout(Duration::from_secs(86_400))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn client(ca_pem: Option<&str>) -> reqwest::Client {
    let mut b = reqwest::Client::builder().pool_max_idle_per_host(IN_FLIGHT);
    if let Some(ca) = ca_pem {
        b = b
            .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).expect("CA"))
            .tls_built_in_root_certs(false);
    }
    b.build().expect("client")
}

/// `n` logins, `IN_FLIGHT` at a time; panics on any answer but 201.
async fn logins(client: &reqwest::Client, url: &Arc<str>, n: usize) -> Duration {
    let body = format!(r#"{{"UserName":"{USER}","Password":"{PASSWORD}"}}"#);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(IN_FLIGHT);
    for worker in 0..IN_FLIGHT {
        let share = n / IN_FLIGHT + usize::from(worker < n % IN_FLIGHT);
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..share {
                let res = client
                    .post(&*url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .expect("login request");
                assert_eq!(res.status(), reqwest::StatusCode::CREATED);
                // Read the body so the connection goes back to the pool.
                res.bytes().await.expect("login body");
            }
        }));
    }
    for t in tasks {
        t.await.expect("login task");
    }
    start.elapsed()
}

/// The child: an HTTPS server alone in its process, until stdin closes.
fn child_server() {
    let ca_path = std::env::var(CA_ENV).expect("the parent names the CA file");
    runtime().block_on(async {
        let handle = builder()
            .build()
            .expect("server")
            .start()
            .await
            .expect("start");
        std::fs::write(&ca_path, handle.ca_pem().expect("HTTPS")).expect("write CA");
        let mut out = std::io::stdout();
        writeln!(out, "{}", handle.base_url()).expect("stdout");
        out.flush().expect("stdout");
        // EOF on stdin (the parent ended or dropped the pipe) stops us.
        let _ = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)
        })
        .await;
        handle.shutdown().await;
    });
}

/// `VmRSS` and `VmHWM` of `pid`, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

struct ChildServer(Child);

impl Drop for ChildServer {
    fn drop(&mut self) {
        // Closing stdin asks it to stop; kill (this child only) if it hangs.
        drop(self.0.stdin.take());
        for _ in 0..50 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn memory_with_live_sessions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_path = dir.path().join("ca.pem");
    let mut child = ChildServer(
        Command::new(std::env::current_exe().expect("this binary"))
            .env(CHILD_ENV, "1")
            .env(CA_ENV, &ca_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the server child"),
    );
    let pid = child.0.id();
    let mut base_url = String::new();
    BufReader::new(child.0.stdout.take().expect("stdout"))
        .read_line(&mut base_url)
        .expect("the child prints its URL");
    let base_url = base_url.trim().to_owned();
    let ca = std::fs::read_to_string(&ca_path).expect("CA");
    let client = client(Some(&ca));
    let url: Arc<str> = format!("{base_url}{SESSIONS_URI}").into();
    let rt = runtime();

    // Warm-up: connections, TLS sessions and the allocator's first arenas
    // exist before the baseline is read.
    let warm_up = 1_000;
    rt.block_on(logins(&client, &url, warm_up));
    let (before, _) = memory_kib(pid);
    let chunk = 10_000;
    let mut rates = Vec::new();
    let mut total = Duration::ZERO;
    for _ in 0..LIVE_SESSIONS / chunk {
        let took = rt.block_on(logins(&client, &url, chunk));
        total += took;
        rates.push(format!("{:.0}", chunk as f64 / took.as_secs_f64()));
    }
    let (after, peak) = memory_kib(pid);
    let live = rt.block_on(async {
        let res = client
            .get(&*url)
            .basic_auth(USER, Some(PASSWORD))
            .send()
            .await
            .expect("list");
        let body: serde_json::Value = res.json().await.expect("list body");
        body["Members@odata.count"].as_u64().expect("count")
    });
    assert_eq!(
        live,
        (warm_up + LIVE_SESSIONS) as u64,
        "every session alive"
    );
    println!(
        "redfish_server/memory: server process (HTTPS, alone in a child process) \
         VmRSS {:.1} MiB after {warm_up} warm-up logins, {:.1} MiB with {live} live \
         sessions (VmHWM {:.1} MiB); {:.0} bytes per session",
        mib(before),
        mib(after),
        mib(peak),
        (after.saturating_sub(before) * 1024) as f64 / LIVE_SESSIONS as f64,
    );
    println!(
        "redfish_server/memory: filled at {:.0} logins/s over HTTPS ({IN_FLIGHT} in \
         flight, client in another process); per 10,000 logins: {} logins/s",
        LIVE_SESSIONS as f64 / total.as_secs_f64(),
        rates.join(", "),
    );
}

fn machine() {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "redfish_server/machine: {cpus} CPUs ({model}); load average at start: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
}

fn creation_rate(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("redfish_server/session_create");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));
    for https in [true, false] {
        let server = if https {
            builder()
        } else {
            builder().insecure_http()
        };
        let handle = rt.block_on(async {
            server
                .build()
                .expect("server")
                .start()
                .await
                .expect("start")
        });
        let client = client(handle.ca_pem());
        let url: Arc<str> = format!("{}{SESSIONS_URI}", handle.base_url()).into();
        let name = if https {
            "https_keepalive_64_in_flight"
        } else {
            "http_keepalive_64_in_flight"
        };
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let n = usize::try_from(iters).expect("iterations").max(IN_FLIGHT);
                let took = rt.block_on(logins(&client, &url, n));
                // Scale back when `iters` was raised to one per worker.
                took.mul_f64(iters as f64 / n as f64)
            });
        });
        rt.block_on(handle.shutdown());
    }
    group.finish();
}

fn main() {
    if std::env::var_os(CHILD_ENV).is_some() {
        child_server();
        return;
    }
    machine();
    memory_with_live_sessions();
    let mut c = Criterion::default().configure_from_args();
    creation_rate(&mut c);
    c.final_summary();
}
