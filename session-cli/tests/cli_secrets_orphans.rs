//! `kill -9` during `add` never leaves a secret no command can reach, and
//! `secret orphans` finds and removes secrets whose session is gone
//! (issue 11, D4).

#![cfg(feature = "redfish")]

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use session_core::{Secret, SecretKey, SecretStore, SessionId};
use session_redfish::client::PASSWORD_SECRET;

use common::*;

/// Killed adds per way of choosing the moment.
const ROUNDS: u32 = 12;

/// Starts `add redfish NAME` with its password on stdin.
fn spawn_add(fx: &Fixture, name: &str) -> Child {
    let mut child = fx
        .command(&[
            "add",
            "redfish",
            name,
            "--endpoint",
            "http://127.0.0.1:9",
            "--username",
            "admin",
            "--allow-insecure-http",
        ])
        .env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sessionctl add");
    let mut stdin = child.stdin.take().expect("stdin");
    // Killed early, the child may never read it.
    let _ = stdin.write_all(format!("password-of-{name}\n").as_bytes());
    child
}

/// What identifies one version of a file (each write replaces it).
fn version(path: &std::path::Path) -> Option<(u64, std::time::SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

fn kill(mut child: Child) {
    // The child may have finished already; then there is nothing to kill.
    let _ = child.kill();
    child.wait().expect("reap sessionctl");
}

/// The sessions that have secrets in the store but are not in the workspace.
fn orphans(fx: &Fixture) -> Vec<SessionId> {
    let listed: HashSet<SessionId> = fx.stored().iter().map(|s| s.session_id).collect();
    let store = fx.store();
    block_on(store.sessions())
        .expect("the file store lists its sessions")
        .into_iter()
        .filter(|id| !listed.contains(id))
        .collect()
}

/// `add` killed at many moments, including right after each write of the
/// secrets file: every stored secret belongs to a listed session.
#[test]
fn killed_adds_leave_no_unreachable_secret() {
    let fx = Fixture::new();
    let timer = Instant::now();
    let mut first = spawn_add(&fx, "complete");
    assert!(
        first.wait().expect("wait").success(),
        "an add that is not killed works"
    );
    let full = timer.elapsed();

    // Right after the secrets file changed: the moment between the two
    // writes of an add, if the secret is written first.
    for round in 0..ROUNDS {
        let before = version(&fx.secrets());
        let child = spawn_add(&fx, &format!("at-write-{round}"));
        let deadline = Instant::now() + full * 3;
        while version(&fx.secrets()) == before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(200));
        }
        kill(child);
    }
    // Spread over the time a whole add takes.
    for round in 0..ROUNDS {
        let child = spawn_add(&fx, &format!("swept-{round}"));
        std::thread::sleep(full * round / ROUNDS);
        kill(child);
    }

    let found = orphans(&fx);
    assert!(
        found.is_empty(),
        "{} secret sets have no session: {found:?}",
        found.len()
    );
    assert_eq!(fx.run_unlocked(&["secret", "orphans"]).ok(), "");
    let added = fx.stored().len();
    assert!(
        (2..=2 * ROUNDS as usize).contains(&added),
        "some adds were interrupted, some got through: {added} sessions"
    );
}

/// `secret orphans` lists the secrets of a session that is gone, `--remove`
/// deletes exactly those.
#[test]
fn secret_orphans_lists_and_removes_secrets_without_a_session() {
    let fx = Fixture::new();
    let mut kept = spawn_add(&fx, "kept");
    assert!(kept.wait().expect("wait").success());
    let gone = SessionId::new();
    let store = fx.store();
    for name in ["password", "token"] {
        let key = SecretKey::new(gone, name).expect("key");
        block_on(store.put(&key, &Secret::new("left-behind"))).expect("put");
    }

    let listed = fx.run_unlocked(&["secret", "orphans"]);
    assert_eq!(listed.ok(), format!("{gone}/password\n{gone}/token\n"));
    let removed = fx.run_unlocked(&["secret", "orphans", "--remove"]);
    assert_eq!(
        removed.ok(),
        format!("removed {gone}/password\nremoved {gone}/token\n")
    );
    assert_eq!(fx.run_unlocked(&["secret", "orphans"]).ok(), "");
    assert!(orphans(&fx).is_empty());
    assert_eq!(
        fx.run_unlocked(&["secret", "list", "kept"]).ok(),
        format!("{PASSWORD_SECRET}\n"),
        "a listed session keeps its secrets"
    );
}
