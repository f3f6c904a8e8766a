//! Several `sessionctl` processes working on one session at once: one
//! provider call per operation across processes (issue 11, D5).

#![cfg(feature = "redfish")]

mod common;

use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::Request;
use axum::http::Method;
use axum::middleware::Next;
use session_core::{Secret, SessionStatus};
use session_redfish::server::{RedfishServer, Role};

use common::*;

const BMC_PASSWORD: &str = "bmc-password-processes-77";
const SESSIONS: &str = "/redfish/v1/SessionService/Sessions";

/// How long the server takes to answer a login.
const LOGIN_DELAY: std::time::Duration = std::time::Duration::from_millis(1500);

/// How many `sessionctl start` run at once.
const PARALLEL: usize = 4;

/// The crate's embedded Redfish server over plain HTTP on 127.0.0.1, its
/// router wrapped to count the logins it accepted and the sessions it
/// deleted. The server stops when this is dropped.
struct CountingBmc {
    /// Runs the server; dropped (and so stopped) with the fixture.
    _rt: tokio::runtime::Runtime,
    addr: SocketAddr,
    logins: Arc<AtomicUsize>,
    logouts: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    fx: Fixture,
}

impl CountingBmc {
    fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let logins = Arc::new(AtomicUsize::new(0));
        let logouts = Arc::new(AtomicUsize::new(0));
        let (counted_in, counted_out) = (logins.clone(), logouts.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let addr = rt.block_on(async move {
            let server = RedfishServer::builder()
                .account("admin", Secret::new(BMC_PASSWORD), Role::Administrator)
                .insecure_http()
                .build()
                .expect("server");
            let router = server.router().layer(axum::middleware::from_fn(
                move |request: Request, next: Next| {
                    let (logins, logouts) = (counted_in.clone(), counted_out.clone());
                    async move {
                        let method = request.method().clone();
                        let path = request.uri().path().to_owned();
                        if method == Method::POST {
                            // Real BMCs take a second or more to log in;
                            // without a delay the processes barely overlap.
                            tokio::time::sleep(LOGIN_DELAY).await;
                        }
                        let response = next.run(request).await;
                        let ok = response.status().is_success();
                        if ok && method == Method::POST && path.starts_with(SESSIONS) {
                            logins.fetch_add(1, Ordering::SeqCst);
                        }
                        if ok && method == Method::DELETE && path.starts_with(SESSIONS) {
                            logouts.fetch_add(1, Ordering::SeqCst);
                        }
                        response
                    }
                },
            ));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("address");
            tokio::spawn(async move {
                let _ = axum::serve(listener, router)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await;
                // Keep the server (and its session state) alive while serving.
                drop(server);
            });
            addr
        });
        Self {
            _rt: rt,
            addr,
            logins,
            logouts,
            stop: Some(stop),
            fx: Fixture::new(),
        }
    }

    /// Sessions the server created and has not deleted.
    fn live(&self) -> usize {
        self.logins.load(Ordering::SeqCst) - self.logouts.load(Ordering::SeqCst)
    }

    /// `add redfish NAME` for `admin` over plain HTTP, password on stdin.
    fn add(&self, name: &str) -> Run {
        let endpoint = format!("http://{}", self.addr);
        let mut command = self.fx.command(&[
            "add",
            "redfish",
            name,
            "--endpoint",
            &endpoint,
            "--username",
            "admin",
            "--allow-insecure-http",
        ]);
        command.env("SESSIONCTL_PASSPHRASE", PASSPHRASE);
        Fixture::run_with_stdin(command, format!("{BMC_PASSWORD}\n").as_bytes())
    }

    /// Starts `sessionctl ARGS…` without waiting for it.
    fn spawn(&self, args: &[&str]) -> Child {
        self.fx
            .command(args)
            .env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sessionctl")
    }
}

impl Drop for CountingBmc {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// `start r1` in several processes at once logs in exactly once; every
/// process succeeds with the same session; `stop` then leaves no session
/// on the server.
#[test]
fn parallel_starts_of_one_session_log_in_once() {
    let bmc = CountingBmc::start();
    bmc.add("r1").ok();

    let children: Vec<Child> = (0..PARALLEL).map(|_| bmc.spawn(&["start", "r1"])).collect();
    let runs: Vec<Run> = children
        .into_iter()
        .map(|child| Run::from(child.wait_with_output().expect("wait for sessionctl")))
        .collect();
    for run in &runs {
        assert!(run.ok().contains("active"), "{run:#?}");
    }
    assert_eq!(
        bmc.logins.load(Ordering::SeqCst),
        1,
        "{PARALLEL} parallel starts must log in once: {runs:#?}"
    );
    let listed = json(
        bmc.fx
            .run_unlocked(&["redfish", "sessions", "r1", "--json"])
            .ok(),
    );
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(1),
        "the server has one session: {listed}"
    );

    bmc.fx.run_unlocked(&["stop", "r1"]).ok();
    assert_eq!(bmc.live(), 0, "stop leaves no session on the server");
    let stored = bmc.fx.stored();
    assert_eq!(stored[0].status(), SessionStatus::Inactive);
}
