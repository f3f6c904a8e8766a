//! `session_core::import::leapp` against Leapp's own code: workspaces
//! written by npm `@noovolari/leapp-core` (one session of each of the five
//! types, with an SSO integration, an Azure integration, an IdP URL and the
//! default profile) are read back and compared, field by field, with what
//! leapp-core itself holds after loading them. A workspace encrypted for
//! another machine is refused with a clear error unless that machine's id
//! is given; a damaged file falls back to Leapp's backup; nothing of
//! Leapp's is written.

use serde_json::Value;
use session_core::Error;
use session_core::import::leapp::{LeappReader, LeappSession, LeappWorkspace};
use session_testkit::peers::leapp_core::{LeappCore, snapshot};
use session_testkit::peers::require_peer;

/// Our reading of one of the session's fields, by Leapp's field name.
fn field(s: &LeappSession, key: &str) -> Option<Value> {
    let text = |v: &Option<String>| v.clone().map(Value::from);
    match key {
        "sessionId" => Some(s.session_id.clone().into()),
        "sessionName" => Some(s.session_name.clone().into()),
        "type" => Some(s.session_type.clone().into()),
        "region" => text(&s.region),
        "status" => s.status.map(Value::from),
        "profileId" => text(&s.profile_id),
        "mfaDevice" => text(&s.mfa_device),
        "parentSessionId" => text(&s.parent_session_id),
        "roleSessionName" => text(&s.role_session_name),
        "roleArn" => text(&s.role_arn),
        "idpUrlId" => text(&s.idp_url_id),
        "idpArn" => text(&s.idp_arn),
        "awsSsoConfigurationId" => text(&s.aws_sso_configuration_id),
        "email" => text(&s.email),
        "subscriptionId" => text(&s.subscription_id),
        "tenantId" => text(&s.tenant_id),
        "azureIntegrationId" => text(&s.azure_integration_id),
        other => s.extra.get(other).cloned(),
    }
}

const TYPED_FIELDS: [&str; 13] = [
    "region",
    "profileId",
    "mfaDevice",
    "parentSessionId",
    "roleSessionName",
    "roleArn",
    "idpUrlId",
    "idpArn",
    "awsSsoConfigurationId",
    "email",
    "subscriptionId",
    "tenantId",
    "azureIntegrationId",
];

/// Every field leapp-core has is read the same, and no typed field is read
/// that leapp-core does not have.
fn compare(ours: &LeappWorkspace, leapp: &Value) {
    let theirs = leapp["sessions"].as_array().expect("sessions");
    assert_eq!(ours.sessions.len(), theirs.len());
    let types: Vec<&str> = ours
        .sessions
        .iter()
        .map(|s| s.session_type.as_str())
        .collect();
    for t in [
        "awsIamUser",
        "awsIamRoleChained",
        "awsIamRoleFederated",
        "awsSsoRole",
        "azure",
    ] {
        assert!(types.contains(&t), "no {t} session read: {types:?}");
    }
    for their in theirs {
        let id = their["sessionId"].as_str().expect("id");
        let our = ours
            .session(id)
            .unwrap_or_else(|| panic!("session {id} not read"));
        for (key, value) in their.as_object().expect("object") {
            assert_eq!(field(our, key).as_ref(), Some(value), "{id}: field {key}");
        }
        for key in TYPED_FIELDS {
            if field(our, key).is_some() {
                assert!(their.get(key).is_some(), "{id}: {key} read but not Leapp's");
            }
        }
    }
    let sso = &leapp["aws_sso_integrations"][0];
    let our_sso = ours
        .aws_sso_integration(sso["id"].as_str().expect("id"))
        .expect("SSO integration read");
    assert_eq!(our_sso.alias, sso["alias"]);
    assert_eq!(our_sso.portal_url, sso["portalUrl"]);
    assert_eq!(our_sso.region, sso["region"]);
    let azure = &leapp["azure_integrations"][0];
    let our_azure = ours
        .azure_integration(azure["id"].as_str().expect("id"))
        .expect("Azure integration read");
    assert_eq!(our_azure.alias, azure["alias"]);
    assert_eq!(our_azure.tenant_id, azure["tenantId"]);
    assert_eq!(our_azure.region.as_deref(), azure["region"].as_str());
    for profile in leapp["profiles"].as_array().expect("profiles") {
        let ours = ours
            .profile(profile["id"].as_str().expect("id"))
            .expect("profile");
        assert_eq!(ours.name, profile["name"]);
    }
    for idp in leapp["idp_urls"].as_array().expect("idp urls") {
        let ours = ours
            .idp_url(idp["id"].as_str().expect("id"))
            .expect("idp url");
        assert_eq!(ours.url, idp["url"]);
    }
    assert_eq!(
        ours.default_region.as_deref(),
        leapp["default_region"].as_str()
    );
    assert_eq!(
        ours.default_location.as_deref(),
        leapp["default_location"].as_str()
    );
}

#[test]
fn a_workspace_written_by_leapp_core_on_this_machine_reads_field_by_field() {
    let Some(leapp) = require_peer("leapp-core", LeappCore::locate) else {
        return;
    };
    let home = tempfile::tempdir().expect("tempdir");
    // This machine's id, as node-machine-id reads it: our reading of it
    // must agree, or nothing decrypts.
    let written = leapp
        .write_workspace(home.path())
        .expect("write-workspace.js");
    let dir = home.path().join(".Leapp");
    let before = snapshot(&dir);
    let ours = LeappReader::new(&dir).read().expect("read");
    assert_eq!(ours.version, written.workspace_version);
    compare(&ours, &written.leapp_view);
    assert_eq!(snapshot(&dir), before, "Leapp's files were written");
}

#[test]
fn another_machines_workspace_needs_its_machine_id() {
    let Some(leapp) = require_peer("leapp-core", LeappCore::locate) else {
        return;
    };
    let home = tempfile::tempdir().expect("tempdir");
    let raw = "4c4c4544-0042-3510-8052-b7c04f4e3332";
    let written = leapp
        .write_workspace_with_machine_id(home.path(), raw)
        .expect("write-workspace.js");
    let dir = home.path().join(".Leapp");

    let err = LeappReader::new(&dir)
        .read()
        .expect_err("another machine's key");
    let text = err.to_string();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
    assert!(text.contains("another machine"), "{text}");
    assert!(text.contains("Leapp-lock.json"), "{text}");
    assert!(!text.contains(&written.aes_key), "the key leaked: {text}");

    // Given as Leapp would print it, in capitals with spaces around.
    let ours = LeappReader::new(&dir)
        .machine_id(format!(" {} \n", raw.to_uppercase()))
        .read()
        .expect("read with the other machine's id");
    compare(&ours, &written.leapp_view);
}

#[test]
fn a_damaged_workspace_is_read_from_leapps_backup() {
    let Some(leapp) = require_peer("leapp-core", LeappCore::locate) else {
        return;
    };
    let home = tempfile::tempdir().expect("tempdir");
    let raw = "0123456789abcdef0123456789abcdef";
    let written = leapp
        .write_workspace_with_machine_id(home.path(), raw)
        .expect("write-workspace.js");
    assert!(written.backup.is_some(), "leapp-core wrote its backup");
    let text = std::fs::read_to_string(&written.workspace).expect("read");
    std::fs::write(&written.workspace, &text[..text.len() / 2]).expect("damage");
    let ours = LeappReader::new(home.path().join(".Leapp"))
        .machine_id(raw)
        .read()
        .expect("the backup");
    compare(&ours, &written.leapp_view);

    // Both damaged: one error naming both.
    let backup = written.backup.expect("backup");
    std::fs::write(&backup, "not Leapp's").expect("damage");
    let err = LeappReader::new(home.path().join(".Leapp"))
        .machine_id(raw)
        .read()
        .expect_err("both damaged");
    let text = err.to_string();
    assert!(text.contains("Leapp-lock.backup.bin"), "{text}");
}
