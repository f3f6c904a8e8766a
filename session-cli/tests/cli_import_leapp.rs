//! `sessionctl import leapp` on workspaces written by Leapp's own core
//! library (npm `@noovolari/leapp-core`, the `leapp-core` peer): a dry run
//! changes nothing, the import maps every session type field by field
//! (names, regions, named profile, MFA device, parent, role and provider
//! ARNs, SSO account and role from Leapp's pseudo-ARN and the
//! integration's start URL, Azure tenant and subscription), a second import
//! adds nothing, a workspace of another machine is refused until its
//! machine id is given, and Leapp's files are never written.
#![cfg(all(feature = "aws", feature = "azure"))]

mod common;

use std::path::Path;

use serde_json::Value;
use session_core::SessionType;
use session_testkit::peers::leapp_core::{LeappCore, LeappWorkspace, snapshot};
use session_testkit::peers::require_peer;

use common::*;

const MACHINE: &str = "9f1c2e4a7b6d4e0f8a1b2c3d4e5f6a7b";

/// A fixture and a Leapp workspace written by leapp-core for [`MACHINE`]
/// under it, with Leapp's folder as a string; `None` without the peer.
fn setup() -> Option<(Fixture, LeappWorkspace, String)> {
    let leapp = require_peer("leapp-core", LeappCore::locate)?;
    let fx = Fixture::new();
    let home = fx.dir.path().join("leapp-home");
    let w = leapp
        .write_workspace_with_machine_id(&home, MACHINE)
        .expect("write-workspace.js");
    assert!(w.not_written.is_empty(), "{:?}", w.not_written);
    let dir = home.join(".Leapp").to_string_lossy().into_owned();
    Some((fx, w, dir))
}

/// Leapp's view of the session of `type`.
fn theirs<'a>(w: &'a LeappWorkspace, leapp_type: &str) -> &'a Value {
    w.leapp_view["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["type"] == leapp_type)
        .unwrap_or_else(|| panic!("leapp-core wrote no {leapp_type}"))
}

#[test]
fn leapp_sessions_are_imported_field_by_field_once() {
    let Some((fx, w, dir)) = setup() else { return };
    let before = snapshot(Path::new(&dir));
    // Unlocked: copying keys from the keychain opens the secret store.
    let import = || fx.run_unlocked(&["import", "leapp", "--from", &dir, "--machine-id", MACHINE]);

    let dry = fx.run(&[
        "import",
        "leapp",
        "--from",
        &dir,
        "--machine-id",
        MACHINE,
        "--dry-run",
    ]);
    let out = dry.ok();
    assert_eq!(out.matches("would add").count(), 5, "{out}");
    assert!(
        out.contains("5 would be added, 0 already here, 0 not imported"),
        "{out}"
    );
    assert!(
        out.contains("would copy from Leapp's keychain: aws-access-key-id, aws-secret-access-key"),
        "{out}"
    );
    assert!(fx.stored().is_empty(), "a dry run added sessions");

    let out = import().ok().to_owned();
    assert!(
        out.contains("5 added, 0 already here, 0 not imported"),
        "{out}"
    );
    // No keychain here (no Secret Service, or a build without `keyring`):
    // the keys are left to enter, with the commands.
    assert!(
        out.contains("to do: enter aws-access-key-id, aws-secret-access-key ("),
        "{out}"
    );
    assert!(
        out.contains("`sessionctl secret set 'peer-iam-user' aws-access-key-id`"),
        "{out}"
    );
    assert!(
        out.contains("https://idp.example.com/app/aws/sso/saml"),
        "{out}"
    );
    let ours = fx.stored();
    assert_eq!(ours.len(), 5);
    let by_type = |t: SessionType| {
        ours.iter()
            .find(|s| s.session_type == t)
            .unwrap_or_else(|| panic!("no {t} imported"))
    };
    let profile = w.leapp_view["profiles"][0]["name"].as_str().expect("name");
    let config = |s: &session_core::Session, key: &str| s.config.get_str(key).map(str::to_owned);

    for (ours, theirs) in [
        (by_type(SessionType::AwsIamUser), theirs(&w, "awsIamUser")),
        (
            by_type(SessionType::AwsIamRoleChained),
            theirs(&w, "awsIamRoleChained"),
        ),
        (
            by_type(SessionType::AwsIamRoleFederated),
            theirs(&w, "awsIamRoleFederated"),
        ),
        (by_type(SessionType::AwsSsoRole), theirs(&w, "awsSsoRole")),
        (by_type(SessionType::Azure), theirs(&w, "azure")),
    ] {
        assert_eq!(ours.session_id.to_string(), theirs["sessionId"], "id");
        assert_eq!(ours.session_name, theirs["sessionName"]);
        assert_eq!(ours.region.as_deref(), theirs["region"].as_str());
        assert_eq!(ours.status().to_string(), "inactive");
        assert_eq!(ours.extra["importedFrom"]["sessionId"], theirs["sessionId"]);
        if ours.session_type != SessionType::Azure {
            assert_eq!(config(ours, "profile").as_deref(), Some(profile));
        }
    }
    let user = by_type(SessionType::AwsIamUser);
    assert_eq!(
        config(user, "mfaSerial").as_deref(),
        theirs(&w, "awsIamUser")["mfaDevice"].as_str()
    );
    let chained = by_type(SessionType::AwsIamRoleChained);
    let leapp_chained = theirs(&w, "awsIamRoleChained");
    assert_eq!(chained.parent_session_id, Some(user.session_id));
    assert_eq!(
        config(chained, "roleArn").as_deref(),
        leapp_chained["roleArn"].as_str()
    );
    assert_eq!(
        config(chained, "roleSessionName").as_deref(),
        leapp_chained["roleSessionName"].as_str()
    );
    let federated = by_type(SessionType::AwsIamRoleFederated);
    let leapp_federated = theirs(&w, "awsIamRoleFederated");
    assert_eq!(
        config(federated, "roleArn").as_deref(),
        leapp_federated["roleArn"].as_str()
    );
    assert_eq!(
        config(federated, "principalArn").as_deref(),
        leapp_federated["idpArn"].as_str()
    );
    let sso = by_type(SessionType::AwsSsoRole);
    let integration = &w.leapp_view["aws_sso_integrations"][0];
    assert_eq!(
        config(sso, "startUrl").as_deref(),
        integration["portalUrl"].as_str()
    );
    assert_eq!(
        config(sso, "ssoRegion").as_deref(),
        integration["region"].as_str()
    );
    // Leapp's arn:aws:iam::123456789012/AdministratorAccess.
    assert_eq!(config(sso, "accountId").as_deref(), Some("123456789012"));
    assert_eq!(
        config(sso, "roleName").as_deref(),
        Some("AdministratorAccess")
    );
    let azure = by_type(SessionType::Azure);
    let leapp_azure = theirs(&w, "azure");
    assert_eq!(
        config(azure, "tenantId").as_deref(),
        leapp_azure["tenantId"].as_str()
    );
    assert_eq!(
        config(azure, "subscriptionId").as_deref(),
        leapp_azure["subscriptionId"].as_str()
    );

    let again = import().ok().to_owned();
    assert!(
        again.contains("0 added, 5 already here, 0 not imported"),
        "{again}"
    );
    assert_eq!(fx.stored().len(), 5);
    assert_eq!(
        snapshot(Path::new(&dir)),
        before,
        "Leapp's files were written"
    );
}

#[test]
fn another_machines_workspace_is_refused_without_its_id() {
    let Some((fx, w, dir)) = setup() else { return };
    let run = fx.run(&["import", "leapp", "--from", &dir]);
    let message = run.error_with(1);
    assert!(message.contains("another machine"), "{message}");
    assert!(message.contains("give that machine's id"), "{message}");
    assert!(!message.contains(&w.aes_key), "{message}");
    assert!(fx.stored().is_empty());
    let wrong = fx.run(&["import", "leapp", "--from", &dir, "--machine-id", "not-it"]);
    assert!(
        wrong.error_with(1).contains("the given machine id"),
        "{}",
        wrong.stderr
    );
}

/// The IAM user's access key is copied from where Leapp's keytar keeps it
/// on Linux: Secret Service items with the attributes `service` = `Leapp`
/// and `account` = `<session id>-iam-user-aws-session-access-key-id` (and
/// `…-secret-access-key`), stored here with libsecret's `secret-tool` as
/// keytar stores them. Needs a Secret Service: `./scripts/test` runs it
/// inside a private D-Bus session with GNOME Keyring.
#[test]
#[ignore = "needs a Secret Service; run by ./scripts/test in a private D-Bus session"]
#[cfg(all(target_os = "linux", feature = "keyring"))]
fn leapp_keychain_keys_are_copied_from_the_secret_service() {
    let Some((fx, w, dir)) = setup() else { return };
    let user = theirs(&w, "awsIamUser")["sessionId"]
        .as_str()
        .expect("id")
        .to_owned();
    let keys = [
        ("iam-user-aws-session-access-key-id", "AKIAIOSFODNN7EXAMPLE"),
        (
            "iam-user-aws-session-secret-access-key",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
    ];
    for (suffix, value) in keys {
        let account = format!("{user}-{suffix}");
        let mut store = std::process::Command::new("secret-tool")
            .args(["store", "--label", &format!("Leapp/{account}")])
            .args(["service", "Leapp", "account", &account])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("secret-tool");
        use std::io::Write;
        store
            .stdin
            .take()
            .expect("stdin")
            .write_all(value.as_bytes())
            .expect("write");
        assert!(store.wait().expect("wait").success(), "secret-tool store");
    }
    let out = fx
        .run_unlocked(&["import", "leapp", "--from", &dir, "--machine-id", MACHINE])
        .ok()
        .to_owned();
    assert!(
        out.contains("copied from Leapp's keychain: aws-access-key-id, aws-secret-access-key"),
        "{out}"
    );
    for (_, value) in keys {
        assert!(!out.contains(value), "a key was printed: {out}");
    }
    let id = session_core::SessionId::from_uuid(user.parse().expect("uuid"));
    let store = fx.store();
    for (name, value) in [
        ("aws-access-key-id", keys[0].1),
        ("aws-secret-access-key", keys[1].1),
    ] {
        let key = session_core::SecretKey::new(id, name).expect("key");
        let got = block_on(session_core::SecretStore::get(&store, &key))
            .expect("read")
            .expect("copied");
        assert_eq!(got.expose(), value);
    }
}
