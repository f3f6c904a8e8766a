//! `import::leapp` on the workspace versions Leapp's desktop app writes
//! (the leapp-core peer writes only version 5): version 7 with keys in both
//! spellings (Leapp's migrations wrote some without the underscore; the
//! later one wins, as in Leapp), and versions it does not read refused with
//! what to do.

use session_core::Error;
use session_core::import::leapp::{LeappReader, encrypt_for_tests};

const MACHINE: &str = "0123456789abcdef0123456789abcdef";

fn read(json: &str) -> session_core::Result<session_core::import::leapp::LeappWorkspace> {
    let dir = tempfile::tempdir().expect("dir");
    let text = encrypt_for_tests(json, MACHINE, *b"saltsalt");
    std::fs::write(dir.path().join("Leapp-lock.json"), text).expect("write");
    LeappReader::new(dir.path()).machine_id(MACHINE).read()
}

#[test]
fn version_7_with_both_spellings_reads_the_later_one() {
    let ws = read(
        r#"{"_sessions":[{"sessionName":"dev","region":"eu-west-1","sessionId":"s-1","status":2,
            "type":"awsIamUser","profileId":"p-1","mfaDevice":"arn:aws:iam::111122223333:mfa/a",
            "sessionTokenExpiration":"2025-01-01T20:00:00.000Z"}],
            "_profiles":[{"id":"p-1","name":"default"}],
            "_defaultRegion":"us-east-1","defaultRegion":"eu-central-1",
            "idpUrls":[{"id":"i-1","url":"https://old"}],"_idpUrls":[{"id":"i-1","url":"https://new"}],
            "_notifications":[],"ssmRegionBehaviour":"No","_workspaceVersion":7}"#,
    )
    .expect("version 7");
    assert_eq!(ws.version, 7);
    assert_eq!(ws.default_region.as_deref(), Some("eu-central-1"));
    assert_eq!(ws.idp_urls[0].url, "https://new");
    let s = &ws.sessions[0];
    assert_eq!(s.session_type, "awsIamUser");
    assert_eq!(s.status, Some(2));
    assert_eq!(
        s.mfa_device.as_deref(),
        Some("arn:aws:iam::111122223333:mfa/a")
    );
    assert_eq!(
        s.extra["sessionTokenExpiration"],
        "2025-01-01T20:00:00.000Z"
    );
    assert_eq!(ws.profile("p-1").expect("profile").name, "default");
}

#[test]
fn versions_it_does_not_read_are_refused_with_what_to_do() {
    for (version, says) in [
        ("8", "newer than this build reads (5–7)"),
        ("4", "open it in Leapp once to upgrade it"),
        ("null", "version (none) is older"),
    ] {
        let err = read(&format!(
            r#"{{"_sessions":[],"_workspaceVersion":{version}}}"#
        ))
        .expect_err(version);
        assert!(matches!(err, Error::Storage { .. }), "{err:?}");
        assert!(err.to_string().contains(says), "{version}: {err}");
    }
    let err = read(r#"{"_sessions":{},"_workspaceVersion":7}"#).expect_err("bad sessions");
    assert!(err.to_string().contains("\"_sessions\""), "{err}");
    let err = read("not json").expect_err("not JSON");
    assert!(
        err.to_string().contains("decrypted, but not Leapp's JSON"),
        "{err}"
    );
}

/// Leapp's key is derived from the machine id alone: a reader given one
/// keeps it out of `Debug`.
#[test]
fn a_given_machine_id_stays_out_of_debug() {
    let reader = LeappReader::new("/nowhere").machine_id(MACHINE);
    assert!(!format!("{reader:?}").contains(MACHINE), "{reader:?}");
}
