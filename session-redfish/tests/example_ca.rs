//! The `redfish_server` example writes its CA certificate where nobody else
//! can plant or read anything, and removes it when stopped by SIGTERM or
//! Ctrl-C (SIGINT). Runs the example binary that `cargo test` builds next
//! to the test binaries (`target/<profile>/examples/redfish_server`).

#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `target/<profile>/examples/redfish_server`, next to `deps/<this test>`.
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = profile_dir.join("examples").join("redfish_server");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo test -p session-redfish` (which builds the examples) \
         or `cargo build -p session-redfish --example redfish_server` first",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the example with `TMPDIR` = `tmp` on `port`; returns it and the
/// CA path it printed, once it is serving.
fn run_example(tmp: &Path, port: u16) -> (Child, PathBuf) {
    let mut child = Command::new(example_binary())
        .env("TMPDIR", tmp)
        .env("REDFISH_BIND", format!("127.0.0.1:{port}"))
        .env_remove("REDFISH_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut ca = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(path) = line.strip_prefix("CA certificate:") {
            ca = Some(PathBuf::from(path.trim()));
        }
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    (child, ca.expect("the example printed its CA path"))
}

/// Sends `signal` with kill(1) (no unsafe code here) and waits at most 10 s.
fn stop_with(child: &mut Child, signal: &str) {
    let status = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the example ignored SIG{signal}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn check(signal: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    // A file someone else owns, and a symlink to it at the path the example
    // used to write to.
    let victim = tmp.path().join("victim.txt");
    std::fs::write(&victim, "untouched").unwrap();
    let planted = tmp.path().join(format!("session-redfish-ca-{port}.pem"));
    std::os::unix::fs::symlink(&victim, &planted).unwrap();

    let (mut child, ca) = run_example(tmp.path(), port);
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "untouched",
        "the example wrote through the planted symlink"
    );
    assert_ne!(ca, planted, "the CA path is predictable");
    assert!(
        std::fs::read_to_string(&ca)
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    let dir = ca.parent().unwrap();
    let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the CA's folder is private");

    stop_with(&mut child, signal);
    assert!(!ca.exists(), "SIG{signal} left {} behind", ca.display());
    assert!(!dir.exists(), "SIG{signal} left {} behind", dir.display());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
}

#[test]
fn ca_file_is_private_and_removed_on_sigterm() {
    check("TERM");
}

#[test]
fn ca_file_is_private_and_removed_on_ctrl_c() {
    check("INT");
}
