//! `sessionctl connect` as a user runs it: a child process holding a live
//! session of the loopback tunnel double (session type `loopbackTunnel`,
//! built in with the `test-tunnel` feature), with bytes moved through the
//! address it prints, signals, `-- CMD`, a port in use, a drop that is
//! resumed, and the service ending the session.
#![cfg(all(unix, feature = "test-tunnel"))]

mod common;

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use common::connect::{Connect, TIMEOUT, echo_through, is_closed};
use common::{Fixture, json, session};
use serde_json::Value;
use session_core::{SessionStatus, SessionType};

fn tunnel_type() -> SessionType {
    SessionType::Other("loopbackTunnel".into())
}

/// Adds a `loopbackTunnel` session named `name` with `config`.
fn add_tunnel(fx: &Fixture, name: &str, config: Value) {
    let session = session(name, tunnel_type())
        .with_config(&config)
        .expect("config");
    fx.insert(vec![session]);
}

fn status_of(fx: &Fixture, name: &str) -> SessionStatus {
    fx.stored()
        .into_iter()
        .find(|s| s.session_name == name)
        .expect("stored")
        .status()
}

#[test]
fn connect_holds_the_tunnel_until_sigint_and_then_stops_it() {
    let fx = Fixture::new();
    add_tunnel(&fx, "db", serde_json::json!({}));
    let mut connect = Connect::spawn(&fx, &["db"]);
    let address = connect.address();
    assert!(address.ip().is_loopback(), "{address}");
    echo_through(address, b"hello through the tunnel");
    connect.stderr_until("connected db; Ctrl-C stops it");

    // Another process sees it active: a live process holds it.
    assert_eq!(status_of(&fx, "db"), SessionStatus::Active);
    let list = fx.run(&["list"]);
    let row = list
        .ok()
        .lines()
        .find(|l| l.starts_with("db "))
        .expect("row")
        .to_owned();
    assert!(row.contains("active"), "{row}");

    connect.signal(rustix::process::Signal::INT);
    let status = connect.wait();
    assert_eq!(status.code(), Some(0), "{}", connect.stderr());
    assert!(
        connect.stderr().contains("stopped db"),
        "{}",
        connect.stderr()
    );
    assert_eq!(status_of(&fx, "db"), SessionStatus::Inactive);
    assert!(is_closed(address), "the listener is gone");
}

#[test]
fn a_connect_that_died_shows_disconnected_and_a_new_connect_re_attaches() {
    let fx = Fixture::new();
    add_tunnel(&fx, "db", serde_json::json!({}));
    let mut first = Connect::spawn(&fx, &["db"]);
    let address = first.address();
    echo_through(address, b"one");
    first.signal(rustix::process::Signal::KILL);
    let _ = first.wait();

    // Stored active by a process that is gone: reported disconnected.
    assert_eq!(status_of(&fx, "db"), SessionStatus::Active);
    let list = fx.run(&["list"]);
    let row = list
        .ok()
        .lines()
        .find(|l| l.starts_with("db "))
        .expect("row")
        .to_owned();
    assert!(row.contains("disconnected"), "{row}");
    let shown = json(fx.run(&["show", "db", "--json"]).ok());
    assert_eq!(shown["status"], "disconnected");

    let mut second = Connect::spawn(&fx, &["db"]);
    let again = second.address();
    echo_through(again, b"two");
    second.signal(rustix::process::Signal::TERM);
    assert_eq!(second.wait().code(), Some(0), "{}", second.stderr());
    assert_eq!(status_of(&fx, "db"), SessionStatus::Inactive);
}

#[test]
fn connect_runs_a_command_with_the_address_and_exits_with_its_status() {
    let fx = Fixture::new();
    add_tunnel(&fx, "db", serde_json::json!({}));
    // The command records what it was given, waits until the test has used
    // the tunnel, and exits 7.
    let script = r#"printf '%s %s %s %s' "$SESSIONCTL_CONNECT_ADDRESS" "$SESSIONCTL_CONNECT_HOST" "$SESSIONCTL_CONNECT_PORT" "$SESSIONCTL_CONNECT_SESSION" > env.txt
printf '%s' "$1" > arg.txt
while [ ! -f done ]; do sleep 0.05; done
exit 7"#;
    let mut connect = Connect::spawn(
        &fx,
        &[
            "db",
            "--",
            "sh",
            "-c",
            script,
            "sh",
            "--port={{port}} --host={{host}}",
        ],
    );
    let env_file = fx.dir.path().join("env.txt");
    let start = Instant::now();
    while !env_file.exists() || std::fs::read_to_string(&env_file).unwrap().is_empty() {
        assert!(
            start.elapsed() < TIMEOUT,
            "the command never ran: {}",
            connect.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(50));
    let env = std::fs::read_to_string(&env_file).unwrap();
    let fields: Vec<&str> = env.split(' ').collect();
    let address: SocketAddr = fields[0].parse().expect("address");
    assert_eq!(fields[1], address.ip().to_string());
    assert_eq!(fields[2], address.port().to_string());
    assert_eq!(fields[3], "db");
    let arg = std::fs::read_to_string(fx.dir.path().join("arg.txt")).unwrap();
    assert_eq!(
        arg,
        format!("--port={} --host={}", address.port(), address.ip())
    );
    // The address line went to stderr: stdout belongs to the command.
    assert!(
        connect
            .stderr()
            .contains(&format!("listening on {address}")),
        "{}",
        connect.stderr()
    );
    echo_through(address, b"from the command's tunnel");
    std::fs::write(fx.dir.path().join("done"), "").unwrap();

    let status = connect.wait();
    assert_eq!(status.code(), Some(7), "{}", connect.stderr());
    assert_eq!(status_of(&fx, "db"), SessionStatus::Inactive);
    assert!(is_closed(address));
}

#[test]
fn listen_port_is_used_and_a_port_in_use_fails_at_once() {
    let fx = Fixture::new();
    add_tunnel(&fx, "db", serde_json::json!({}));
    add_tunnel(&fx, "cache", serde_json::json!({}));
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").expect("probe");
        probe.local_addr().unwrap().port()
    };
    let mut connect = Connect::spawn(&fx, &["db", "--listen-port", &port.to_string()]);
    assert_eq!(connect.address(), SocketAddr::from(([127, 0, 0, 1], port)));

    let started = Instant::now();
    let refused = fx.run_unlocked(&["connect", "cache", "--listen-port", &port.to_string()]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "failed at once"
    );
    let line = refused.one_line_error();
    assert!(line.contains("address in use"), "{line}");
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    assert_eq!(status_of(&fx, "cache"), SessionStatus::Inactive);

    connect.signal(rustix::process::Signal::INT);
    assert_eq!(connect.wait().code(), Some(0));
}

#[test]
fn start_of_a_live_session_is_refused_and_names_connect() {
    let fx = Fixture::new();
    add_tunnel(&fx, "db", serde_json::json!({}));
    let line = fx
        .run_unlocked(&["start", "db"])
        .one_line_error()
        .to_owned();
    assert!(line.contains("sessionctl connect db"), "{line}");
    assert_eq!(status_of(&fx, "db"), SessionStatus::Inactive);
}

#[test]
fn a_dropped_connection_is_resumed_on_the_same_address_and_told_as_json() {
    let fx = Fixture::new();
    add_tunnel(&fx, "db", serde_json::json!({ "dropAfterMs": 300 }));
    let mut connect = Connect::spawn(&fx, &["db", "--json"]);
    let connected = json(&connect.line());
    assert_eq!(connected["event"], "connected");
    assert_eq!(connected["session"], "db");
    let address: SocketAddr = connected["addresses"][0].as_str().unwrap().parse().unwrap();
    let disconnected = json(&connect.line());
    assert_eq!(disconnected["event"], "disconnected", "{disconnected}");
    assert!(
        disconnected["reason"]
            .as_str()
            .unwrap()
            .contains("network lost"),
        "{disconnected}"
    );
    let resumed = json(&connect.line());
    assert_eq!(resumed["event"], "resumed", "{resumed}");
    assert_eq!(resumed["addresses"][0], address.to_string(), "same address");
    assert!(resumed["afterSeconds"].as_f64().is_some(), "{resumed}");
    echo_through(address, b"after the drop");

    connect.signal(rustix::process::Signal::TERM);
    assert_eq!(connect.wait().code(), Some(0), "{}", connect.stderr());
    let stopped = json(&connect.line());
    assert_eq!(stopped["event"], "stopped", "{stopped}");
    assert_eq!(status_of(&fx, "db"), SessionStatus::Inactive);
}

#[test]
fn a_drop_is_told_on_stderr_in_text_mode() {
    let fx = Fixture::new();
    add_tunnel(&fx, "db", serde_json::json!({ "dropAfterMs": 300 }));
    let mut connect = Connect::spawn(&fx, &["db"]);
    let address = connect.address();
    connect.stderr_until("db: connection lost (network lost: scripted drop); reconnecting");
    let text = connect.stderr_until("db: resumed after ");
    assert!(text.contains(&format!("listening on {address}")), "{text}");
    echo_through(address, b"still there");
    connect.signal(rustix::process::Signal::INT);
    assert_eq!(connect.wait().code(), Some(0));
}

#[test]
fn the_service_ending_the_session_exits_non_zero_and_says_why() {
    let fx = Fixture::new();
    add_tunnel(&fx, "db", serde_json::json!({ "lifetimeMs": 500 }));
    let mut connect = Connect::spawn(&fx, &["db"]);
    let address = connect.address();
    let status = connect.wait();
    assert_eq!(status.code(), Some(1), "{}", connect.stderr());
    let stderr = connect.stderr();
    let last = stderr.lines().last().expect("a last line");
    assert!(last.starts_with("sessionctl: "), "{stderr}");
    assert!(last.contains("expired"), "{stderr}");
    assert_eq!(status_of(&fx, "db"), SessionStatus::Expired);
    assert!(is_closed(address));
}

#[test]
fn a_stop_from_another_process_ends_the_hold() {
    let fx = Fixture::new();
    add_tunnel(&fx, "db", serde_json::json!({}));
    let mut connect = Connect::spawn(&fx, &["db"]);
    let address = connect.address();
    echo_through(address, b"before");
    let stopped = fx.run_unlocked(&["stop", "db"]);
    assert!(stopped.ok().contains("inactive"), "{stopped:#?}");
    let status = connect.wait();
    assert_eq!(status.code(), Some(0), "{}", connect.stderr());
    assert!(
        connect.stderr().contains("db: the session was stopped"),
        "{}",
        connect.stderr()
    );
    assert!(is_closed(address), "the holder let go of the listener");
    assert_eq!(status_of(&fx, "db"), SessionStatus::Inactive);
}

#[test]
fn a_command_that_cannot_run_fails_and_stops_the_session() {
    let fx = Fixture::new();
    add_tunnel(&fx, "db", serde_json::json!({}));
    let out = fx.run_unlocked(&["connect", "db", "--", "/nonexistent/program-xyz"]);
    assert_eq!(out.code, Some(1), "{out:#?}");
    let last = out.stderr.lines().last().expect("a line");
    assert!(
        last.contains("cannot run") && last.contains("program-xyz"),
        "{last}"
    );
    assert_eq!(status_of(&fx, "db"), SessionStatus::Inactive);
}
