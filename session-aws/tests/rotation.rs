//! The rotation scheduler, on an injected clock, rotates AWS sessions before
//! they expire, and the shared credentials file holds the new credentials.
//! Against moto on 127.0.0.1.
//!
//! moto's `GetSessionToken` returns the same fixed keys every time (only the
//! expiry moves), so for the IAM user the test puts stale values into its
//! profile before the rotation (as the previous period's keys would be),
//! then checks that the rotation rewrote the section with exactly the
//! credentials it stored and that the expiry moved strictly later; the
//! chained role, whose `AssumeRole` returns fresh keys, shows the new token
//! itself.
//!
//! moto's authentication stays off here: the role's parent is an IAM user,
//! and moto does not register the credentials `GetSessionToken` returns, so
//! with authentication on the role's `AssumeRole` would be refused
//! (`InvalidClientTokenId`; moto's limit, see `sts_moto.rs`).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{add_chained_role, add_iam_user};
use session_aws::sink::SharedCredentialsFile;
use session_aws::{AwsCredentials, ChainedRoleConfig, ChainedRoleProvider, IamUserProvider};
use session_core::{
    Clock, InMemorySecretStore, InMemoryWorkspace, ManualClock, RotationPolicy, RotationScheduler,
    SessionEventKind, SessionManager, SystemClock, WorkspaceRepository,
};
use session_testkit::peers::moto::MotoServer;

/// The lines of section `[profile]` of an INI file, header included, as
/// they are in the file.
fn section(path: &Path, profile: &str) -> String {
    let text = std::fs::read_to_string(path).expect("read the credentials file");
    let header = format!("[{profile}]");
    let mut out = String::new();
    let mut in_section = false;
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with('[') {
            in_section = line.trim() == header;
        }
        if in_section {
            out.push_str(line);
        }
    }
    assert!(!out.is_empty(), "no {header} in {}", path.display());
    out
}

/// The value of `key` in section `[profile]` of an INI file.
fn profile_value(path: &Path, profile: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut in_section = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == format!("[{profile}]");
        } else if in_section
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == key
        {
            return Some(v.trim().to_owned());
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_rotates_before_expiry_and_the_file_follows() {
    let Some(moto) = MotoServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let credentials_file = dir.path().join("credentials");
    let sink = Arc::new(SharedCredentialsFile::with_paths(
        credentials_file.clone(),
        dir.path().join("config"),
    ));
    let client = common::client(&moto);
    // moto issues expiries from the real time: the manual clock starts there.
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let secrets = Arc::new(InMemorySecretStore::new());
    let repo = Arc::new(InMemoryWorkspace::new());
    let manager = SessionManager::builder()
        .repository(repo.clone())
        .secrets(secrets.clone())
        .clock(clock.clone())
        .provider(Arc::new(IamUserProvider::new(client.clone(), sink.clone())))
        .provider(Arc::new(ChainedRoleProvider::new(client, sink)))
        .build()
        .expect("manager");

    let user = add_iam_user(&manager, secrets.as_ref(), "rot-user", 1800).await;
    let mut role = ChainedRoleConfig::new("arn:aws:iam::123456789012:role/Rotated");
    role.duration_seconds = Some(900);
    let child = add_chained_role(&manager, "rot-role", &user, &role).await;
    manager.start("rot-role").await.expect("start the chain");
    let user_started = repo.get(user.session_id).await.expect("get");
    let child_started = repo.get(child.session_id).await.expect("get");
    let first_token = profile_value(&credentials_file, "rot-role", "aws_session_token")
        .expect("the role's profile has a token");
    assert!(profile_value(&credentials_file, "rot-user", "aws_session_token").is_some());
    // Where it was published is state, not a setting.
    assert_eq!(
        child_started.state.get_str("publishedProfile"),
        Some("rot-role")
    );
    assert!(
        !child_started
            .config
            .as_map()
            .contains_key("publishedProfile")
    );

    let mut events = manager.subscribe();
    let scheduler = RotationScheduler::spawn(
        manager.clone(),
        RotationPolicy::default()
            .with_window(Duration::from_secs(300))
            .with_jitter(Duration::ZERO),
    );
    // The role (900 s) falls due at expiration - 300 s, the user (1800 s) at
    // expiration - 300 s. moto counts expiries from the real time, which moved
    // while the test set up, so times are taken from the actual expiries.
    let window = Duration::from_secs(300);
    let role_due = child_started.expiration.expect("role expiry") - window;
    let user_due = user_started.expiration.expect("user expiry") - window;
    wait_asleep(&clock).await;
    clock.set(role_due - Duration::from_secs(1));
    wait_asleep(&clock).await;
    assert!(
        events.try_recv().is_err(),
        "nothing is due before expiration - window"
    );

    clock.set(role_due + Duration::from_secs(1));
    let rotated = next_rotation(&mut events).await;
    assert_eq!(rotated, child.session_id, "the role rotates first");
    let second_token =
        profile_value(&credentials_file, "rot-role", "aws_session_token").expect("still a token");
    assert_ne!(second_token, first_token, "the file holds the new token");
    let child_now = repo.get(child.session_id).await.expect("get");
    // moto counts expiry from the real time, which barely moved here.
    assert!(child_now.expiration >= child_started.expiration);
    assert!(
        child_now.expiration.expect("expiry") > clock.now(),
        "rotated before it expired"
    );

    // moto's GetSessionToken returns the same keys every time: stale values
    // stand in for the previous period's keys, so that the section changes
    // only if the rotation rewrites it.
    let fresh = section(&credentials_file, "rot-user");
    let token = profile_value(&credentials_file, "rot-user", "aws_session_token").expect("token");
    let stale = fresh.replace(&token, "stale-token-of-the-previous-period");
    assert!(stale != fresh, "the token was replaced");
    let text = std::fs::read_to_string(&credentials_file).expect("read");
    std::fs::write(&credentials_file, text.replace(&fresh, &stale)).expect("write");
    let before = section(&credentials_file, "rot-user");
    assert!(before == stale, "the stale values are in the file");
    // Expiries have a resolution of one second and moto counts them from
    // the real time: let a second pass, so that the rotated expiry is later.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    clock.set(user_due + Duration::from_secs(1));
    // Past the user's due time; the role may rotate again too.
    let mut user_rotated = false;
    for _ in 0..4 {
        if next_rotation(&mut events).await == user.session_id {
            user_rotated = true;
            break;
        }
    }
    assert!(user_rotated, "the IAM user rotated before its expiry");
    let user_now = repo.get(user.session_id).await.expect("get");
    assert!(
        user_now.expiration.expect("expiry") > user_started.expiration.expect("expiry"),
        "the rotation got a later expiry"
    );
    let after = section(&credentials_file, "rot-user");
    // Compared without printing: the section holds credentials.
    assert!(after != before, "the rotation rewrote the user's section");
    let issued = AwsCredentials::load_issued(secrets.as_ref(), user.session_id)
        .await
        .expect("load")
        .expect("issued credentials");
    for (key, value) in [
        ("aws_access_key_id", issued.access_key_id.as_str()),
        ("aws_secret_access_key", issued.secret_access_key.expose()),
        (
            "aws_session_token",
            issued.session_token.as_ref().expect("token").expose(),
        ),
    ] {
        // Compared without printing the values.
        assert!(
            profile_value(&credentials_file, "rot-user", key).as_deref() == Some(value),
            "{key} in the file is the rotation's"
        );
    }
    scheduler.shutdown().await;
}

async fn wait_asleep(clock: &ManualClock) {
    for _ in 0..1000 {
        if clock.sleepers() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the scheduler never slept");
}

async fn next_rotation(
    events: &mut tokio::sync::broadcast::Receiver<session_core::SessionEvent>,
) -> session_core::SessionId {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("a rotation within 10 s of real time")
            .expect("event");
        match event.kind {
            SessionEventKind::Rotated => return event.session_id,
            SessionEventKind::Failed { error, .. } => panic!("rotation failed: {error}"),
            _ => {}
        }
    }
}
