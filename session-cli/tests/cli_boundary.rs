//! `sessionctl add boundary`, `connect` through the Boundary proxy, and
//! `boundary sessions|targets|cancel|logout`, as a child process against
//! session-testkit's fake controller and fake worker.
#![cfg(all(feature = "boundary", unix))]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::connect::{Connect, echo_through, is_closed};
use common::*;
use session_core::{SessionStatus, SessionType};
use session_testkit::fakes::boundary::cluster::SessionStatus as Remote;
use session_testkit::fakes::boundary::controller::{
    DEV_AUTH_METHOD_ID, DEV_LOGIN_NAME, DEV_PASSWORD, DEV_PROJECT_ID, DEV_TARGET_ID,
};
use session_testkit::fakes::boundary::{FakeBoundary, FakeTarget, WorkerOptions};

/// A fake Boundary on its own runtime (alive as long as this).
struct Boundary {
    fake: FakeBoundary,
    rt: tokio::runtime::Runtime,
}

impl Boundary {
    fn start(session_max_seconds: u32) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let fake = rt.block_on(FakeBoundary::start_with(
            move |b, endpoint| {
                let mut target = FakeTarget::dev(endpoint);
                target.session_max_seconds = session_max_seconds;
                b.target(target)
            },
            WorkerOptions::default(),
        ));
        Self { fake, rt }
    }

    fn url(&self) -> String {
        self.fake.controller.url()
    }

    fn statuses(&self) -> Vec<(String, Remote)> {
        self.fake
            .controller
            .sessions()
            .into_iter()
            .map(|s| (s.id, s.status))
            .collect()
    }
}

fn add(fx: &Fixture, boundary: &Boundary, name: &str, extra: &[&str]) -> Run {
    let mut command = fx.command(
        &[
            &[
                "add",
                "boundary",
                name,
                "--controller",
                &boundary.url(),
                "--auth-method",
                DEV_AUTH_METHOD_ID,
                "--login-name",
                DEV_LOGIN_NAME,
                "--password-env",
                "TEST_BOUNDARY_PASSWORD",
            ][..],
            extra,
        ]
        .concat(),
    );
    command
        .env("TEST_BOUNDARY_PASSWORD", DEV_PASSWORD)
        .env("SESSIONCTL_PASSPHRASE", PASSPHRASE);
    Run::from(command.output().expect("run"))
}

fn status_of(fx: &Fixture, name: &str) -> SessionStatus {
    fx.stored()
        .into_iter()
        .find(|s| s.session_name == name)
        .expect("stored")
        .status()
}

#[test]
fn add_boundary_validates_and_keeps_the_password_out_of_the_workspace() {
    let boundary = Boundary::start(3600);
    let fx = Fixture::new();
    let missing = add(&fx, &boundary, "db", &[]);
    assert!(missing.one_line_error().contains("target"), "{missing:#?}");
    let unscoped = add(&fx, &boundary, "db", &["--target-name", "Generated target"]);
    assert!(unscoped.one_line_error().contains("scope"), "{unscoped:#?}");
    add(
        &fx,
        &boundary,
        "db",
        &[
            "--target-name",
            "Generated target",
            "--scope-id",
            DEV_PROJECT_ID,
        ],
    )
    .ok();
    let stored = fx
        .stored()
        .into_iter()
        .find(|s| s.session_name == "db")
        .unwrap();
    assert_eq!(stored.session_type, SessionType::Boundary);
    assert_eq!(
        stored.config.get_str("targetName"),
        Some("Generated target")
    );
    let workspace = std::fs::read(fx.workspace()).unwrap();
    assert!(!contains(&workspace, DEV_PASSWORD.as_bytes()));
    let names = fx.run_unlocked(&["secret", "list", "db"]);
    assert!(names.ok().contains("boundary-password"), "{names:#?}");
}

/// `connect`, 20 first connections at once (the Boundary CLI loses some to
/// "refusing to activate session"), then Ctrl-C cancels the session.
#[test]
fn connect_carries_twenty_parallel_first_connections_and_ctrl_c_cancels() {
    let boundary = Boundary::start(3600);
    let fx = Fixture::new();
    add(&fx, &boundary, "db", &["--target-id", DEV_TARGET_ID]).ok();
    let mut connect = Connect::spawn(&fx, &["db"]);
    let address = connect.address();
    let threads: Vec<_> = (0..20u8)
        .map(|n| std::thread::spawn(move || echo_through(address, &vec![n; 50_000])))
        .collect();
    for thread in threads {
        thread.join().expect("every connection echoed");
    }
    assert_eq!(status_of(&fx, "db"), SessionStatus::Active);
    let sessions = boundary.statuses();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0].1, Remote::Active);

    // The controller's view, through sessionctl.
    let listed = fx.run_unlocked(&["boundary", "sessions", "db", "--json"]);
    let listed = json(listed.ok());
    assert_eq!(listed[0]["id"], sessions[0].0.as_str());
    assert_eq!(listed[0]["status"], "active");
    let targets = fx.run_unlocked(&["boundary", "targets", "db"]);
    assert!(targets.ok().contains(DEV_TARGET_ID), "{targets:#?}");

    connect.signal(rustix::process::Signal::INT);
    let status = connect.wait();
    assert!(status.success(), "{status:?}: {}", connect.stderr());
    assert_eq!(status_of(&fx, "db"), SessionStatus::Inactive);
    let (_, remote) = boundary.statuses().pop().unwrap();
    assert!(
        matches!(remote, Remote::Canceling | Remote::Terminated),
        "{remote:?}"
    );
    assert!(is_closed(address), "the listener is closed");
    drop(boundary.rt);
}

#[test]
fn a_port_in_use_fails_at_once() {
    let boundary = Boundary::start(3600);
    let fx = Fixture::new();
    add(&fx, &boundary, "db", &["--target-id", DEV_TARGET_ID]).ok();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let started = Instant::now();
    let mut connect = Connect::spawn(&fx, &["db", "--listen-port", &port]);
    let status = connect.wait();
    assert!(!status.success());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        connect.stderr().contains("address in use"),
        "{}",
        connect.stderr()
    );
    assert!(boundary.statuses().is_empty(), "nothing was authorized");
}

/// The controller cancels the session (an admin, `boundary sessions
/// cancel`): the listener closes promptly, and sessionctl says why.
#[test]
fn a_cancel_on_the_controller_closes_the_listener_with_the_reason() {
    let boundary = Boundary::start(3600);
    let fx = Fixture::new();
    add(&fx, &boundary, "db", &["--target-id", DEV_TARGET_ID]).ok();
    let mut connect = Connect::spawn(&fx, &["db"]);
    let address = connect.address();
    echo_through(address, b"before");
    let (id, _) = boundary.statuses().pop().unwrap();
    // Through sessionctl itself, from another process.
    let canceled = fx.run_unlocked(&["boundary", "cancel", "db", &id]);
    assert!(canceled.ok().contains("canceling"), "{canceled:#?}");
    let stderr = connect.stderr_until("canceled");
    let _ = connect.wait();
    assert!(stderr.contains(&id), "{stderr}");
    assert!(is_closed(address), "the listener is closed");
    drop(boundary.rt);
}

/// A target whose sessions last 16 s: `connect`'s rotation scheduler
/// authorizes the next session when a quarter of the first's life is left
/// (at about 12 s); a transfer that runs across that loses nothing, and the
/// local address stays.
#[test]
fn a_rotation_during_a_transfer_loses_nothing() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let boundary = Boundary::start(16);
    let fx = Fixture::new();
    add(&fx, &boundary, "db", &["--target-id", DEV_TARGET_ID]).ok();
    let mut connect = Connect::spawn(&fx, &["db"]);
    let address = connect.address();
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // How many bytes the writer sent in all, once it is done.
    let total = Arc::new(AtomicUsize::new(usize::MAX));
    let reader = {
        let mut stream = stream.try_clone().unwrap();
        let total = Arc::clone(&total);
        std::thread::spawn(move || {
            let mut back = Vec::new();
            let mut buffer = [0u8; 65536];
            while back.len() < total.load(Ordering::SeqCst) {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => back.extend_from_slice(&buffer[..n]),
                }
            }
            back
        })
    };
    // 40 KB every 70 ms until the rotation has happened, and 10 writes
    // more: the connection carries data before, during and after it, and
    // is done well before the first session expires.
    let mut sent = Vec::new();
    let mut after_rotation = 0;
    let started = Instant::now();
    while after_rotation < 10 {
        let chunk: Vec<u8> = (0..40_000u32)
            .map(|i| ((i + sent.len() as u32) % 253) as u8)
            .collect();
        stream.write_all(&chunk).unwrap();
        sent.extend_from_slice(&chunk);
        std::thread::sleep(Duration::from_millis(70));
        if boundary.statuses().len() >= 2 {
            after_rotation += 1;
        }
        assert!(
            started.elapsed() < Duration::from_secs(14),
            "no rotation in time: {}",
            connect.stderr()
        );
    }
    total.store(sent.len(), Ordering::SeqCst);
    let back = reader.join().unwrap();
    assert!(
        back == sent,
        "the transfer is intact ({} of {} bytes)",
        back.len(),
        sent.len()
    );
    // A new connection goes through the same address.
    echo_through(address, b"after the rotation");
    let stderr = connect.stderr();
    assert!(
        stderr.contains("expires at"),
        "warned of the expiry: {stderr}"
    );
    assert!(
        stderr.contains("new connections go to session"),
        "told of the rotation: {stderr}"
    );
    drop(stream);
    connect.signal(rustix::process::Signal::INT);
    let status = connect.wait();
    assert!(status.success(), "{status:?}: {}", connect.stderr());
    drop(boundary.rt);
}

#[test]
fn logout_deletes_the_token_and_the_next_use_logs_in_again() {
    let boundary = Boundary::start(3600);
    let fx = Fixture::new();
    add(&fx, &boundary, "db", &["--target-id", DEV_TARGET_ID]).ok();
    fx.run_unlocked(&["boundary", "targets", "db"]).ok();
    let logins = || {
        boundary
            .fake
            .controller
            .requests()
            .iter()
            .filter(|r| r.path.ends_with(":authenticate"))
            .count()
    };
    assert_eq!(logins(), 1);
    fx.run_unlocked(&["boundary", "targets", "db"]).ok();
    assert_eq!(logins(), 1, "the stored token is reused");
    let out = fx.run_unlocked(&["boundary", "logout", "db"]);
    assert!(out.ok().contains("logged out"), "{out:#?}");
    let deletes = boundary
        .fake
        .controller
        .requests()
        .iter()
        .filter(|r| r.method == "DELETE" && r.path.starts_with("/v1/auth-tokens/"))
        .count();
    assert_eq!(deletes, 1);
    fx.run_unlocked(&["boundary", "targets", "db"]).ok();
    assert_eq!(logins(), 2);
}
