//! Integration tests of the Redfish server's transport and configuration:
//! HTTPS only unless plain HTTP is asked for, and the TOML configuration
//! file.

mod common;

use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::json;
use session_redfish::server::{RedfishServerBuilder, RedfishServerConfig};

use common::*;

#[tokio::test]
async fn plain_http_to_the_https_port_is_refused_and_creates_no_session() {
    let (h, c) = start(builder()).await;
    let addr = h.local_addr();

    // A raw HTTP/1.1 login: the server must not answer in HTTP. It either
    // closes the connection or sends a TLS alert record (content type 21).
    let reply = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let body = format!(r#"{{"UserName":"admin","Password":"{ADMIN_PW}"}}"#);
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let request = format!(
            "POST {SESSIONS} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        tcp.write_all(request.as_bytes()).unwrap();
        let mut reply = Vec::new();
        // A reset after the alert is as good as a close.
        let _ = tcp.read_to_end(&mut reply);
        reply
    })
    .await
    .unwrap();
    assert!(!reply.starts_with(b"HTTP/"), "answered in plain HTTP");
    assert!(
        reply.is_empty() || reply[0] == 21,
        "neither a close nor a TLS alert: {:?}",
        &reply[..reply.len().min(16)]
    );

    // The same through an HTTP client: an error, never a session.
    let res = Client::new()
        .post(format!("http://{addr}{SESSIONS}"))
        .json(&json!({"UserName": "admin", "Password": ADMIN_PW}))
        .timeout(Duration::from_secs(15))
        .send()
        .await;
    if let Ok(res) = res {
        assert!(!res.status().is_success(), "{}", res.status());
        assert!(res.headers().get("x-auth-token").is_none());
    }

    assert_eq!(session_count(&h, &c).await, 0);
    // The HTTPS port still works afterwards.
    login(&h, &c, "admin", ADMIN_PW).await;
    assert_eq!(session_count(&h, &c).await, 1);
    h.shutdown().await;
}

#[tokio::test]
async fn only_insecure_http_gives_an_http_listener() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, cert_pem) = cert_files(dir.path());
    for (what, b) in [
        ("default", builder()),
        ("PEM files", builder().tls_pem_files(&cert, &key)),
    ] {
        let server = b.build().unwrap();
        assert!(server.ca_pem().is_some(), "{what}");
        let h = server.start().await.unwrap();
        assert!(h.base_url().starts_with("https://"), "{what}");
        assert!(h.ca_pem().is_some(), "{what}");
        h.shutdown().await;
    }
    // The PEM-file server really serves that certificate.
    let h = builder()
        .tls_pem_files(&cert, &key)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    assert_eq!(h.ca_pem().unwrap(), cert_pem);
    let c = trusting(&cert_pem);
    login(&h, &c, "admin", ADMIN_PW).await;
    h.shutdown().await;

    let server = builder().insecure_http().build().unwrap();
    assert!(server.ca_pem().is_none());
    let h = server.start().await.unwrap();
    assert!(h.base_url().starts_with("http://"));
    assert!(h.ca_pem().is_none());
    login(&h, &Client::new(), "admin", ADMIN_PW).await;
    h.shutdown().await;
}

const CONFIG_ADMIN_VAR: &str = "SESSION_REDFISH_TEST_ADMIN_PW";

#[tokio::test]
async fn config_file_sets_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, cert_pem) = cert_files(dir.path());
    // An editor's trailing newline is not part of the password.
    std::fs::write(dir.path().join("reader.password"), "reader-file-pw\n").unwrap();
    let path = dir.path().join("redfish.toml");
    std::fs::write(
        &path,
        format!(
            r#"
# Relative paths are relative to this file's folder.
bind = "127.0.0.1:0"
sessionTimeout = 900
serviceEnabled = true
maxSessions = 2

[tls]
certFile = "cert.pem"
keyFile = "key.pem"

[[accounts]]
userName = "admin"
role = "Administrator"
passwordEnv = "{CONFIG_ADMIN_VAR}"

[[accounts]]
userName = "reader"
role = "ReadOnly"
passwordFile = "reader.password"
"#
        ),
    )
    .unwrap();
    let config = RedfishServerConfig::from_file(&path).unwrap();
    let builder = config
        .into_builder_with_env(|var| (var == CONFIG_ADMIN_VAR).then(|| ADMIN_PW.to_owned()))
        .unwrap();
    let printed = format!("{builder:?}");
    assert!(!printed.contains(ADMIN_PW) && !printed.contains("reader-file-pw"));
    let h = builder.build().unwrap().start().await.unwrap();
    assert!(h.base_url().starts_with("https://127.0.0.1:"));
    assert_eq!(h.ca_pem().unwrap(), cert_pem);
    let c = trusting(&cert_pem);
    let admin = login(&h, &c, "admin", ADMIN_PW).await;
    login(&h, &c, "reader", "reader-file-pw").await;
    let svc = get_json(&h, &c, "/redfish/v1/SessionService", &admin.token).await;
    assert_eq!(svc["SessionTimeout"], 900);
    assert_eq!(svc["ServiceEnabled"], true);
    let third = post_login(&h, &c, "admin", ADMIN_PW).await;
    assert_eq!(
        third.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "maxSessions = 2"
    );
    h.shutdown().await;

    // The same file through the one-call form, with the variable unset.
    let err = RedfishServerBuilder::from_config_file(&path).unwrap_err();
    assert!(err.to_string().contains(CONFIG_ADMIN_VAR), "{err}");

    // Plain HTTP only when asked for.
    std::fs::write(
        &path,
        "insecureHttp = true\n[[accounts]]\nuserName = \"reader\"\nrole = \"ReadOnly\"\n\
         passwordFile = \"reader.password\"\n",
    )
    .unwrap();
    let server = RedfishServerBuilder::from_config_file(&path)
        .unwrap()
        .build()
        .unwrap();
    assert!(server.ca_pem().is_none());
}

#[test]
fn config_file_errors_name_the_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let file = path.display().to_string();
    let account = |extra: &str| {
        format!(
            "[[accounts]]\nuserName = \"admin\"\nrole = \"Administrator\"\n\
             passwordFile = \"pw\"\n{extra}"
        )
    };
    std::fs::write(dir.path().join("pw"), "file-pw").unwrap();
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "unknown top-level key",
            format!("sesionTimeout = 600\n{}", account("")),
            vec![":1:1", "sesionTimeout", "unknown field"],
        ),
        (
            "unknown account key",
            account("passwd = \"CANARY-typo\"\n"),
            vec![":5:", "passwd", "unknown field"],
        ),
        (
            "bad role",
            account("").replace("Administrator", "Admin"),
            vec![":3:8", "role", "`Admin`", "`Administrator`", "`ReadOnly`"],
        ),
        (
            "timeout out of range",
            format!("sessionTimeout = 10\n{}", account("")),
            vec![":1:18", "sessionTimeout", "30..=86400", "got 10"],
        ),
        (
            "missing environment variable",
            account("").replace(
                "passwordFile = \"pw\"",
                "passwordEnv = \"SESSION_REDFISH_TEST_UNSET_7F3A\"",
            ),
            vec![
                ":4:15",
                "accounts[0].passwordEnv",
                "SESSION_REDFISH_TEST_UNSET_7F3A",
                "not set",
            ],
        ),
        (
            "plaintext password",
            account("").replace("passwordFile = \"pw\"", "password = \"CANARY-plain\""),
            vec![
                ":4:12",
                "accounts[0].password",
                "not accepted",
                "passwordEnv",
            ],
        ),
        (
            "two password sources",
            account("passwordEnv = \"X\"\n"),
            vec![":5:15", "accounts[0].passwordEnv", "not both"],
        ),
        (
            "no password source",
            account("").replace("passwordFile = \"pw\"\n", ""),
            vec!["accounts[0]", "passwordEnv"],
        ),
        (
            "unreadable password file",
            account("").replace("\"pw\"", "\"missing.pw\""),
            vec![":4:16", "accounts[0].passwordFile", "missing.pw"],
        ),
        (
            "TLS and plain HTTP",
            format!(
                "insecureHttp = true\n[tls]\ncertFile = \"c\"\nkeyFile = \"k\"\n{}",
                account("")
            ),
            vec!["tls", "insecureHttp", "exclude"],
        ),
        (
            "bad bind address",
            format!("bind = \"localhost\"\n{}", account("")),
            vec![":1:8", "bind", "IP address and port"],
        ),
        (
            "no accounts",
            "maxSessions = 3\n".to_owned(),
            vec!["accounts", "no [[accounts]]"],
        ),
        (
            "syntax error",
            format!("maxSessions = = 3\n{}", account("")),
            vec![":1:"],
        ),
    ];
    for (what, text, expected) in cases {
        std::fs::write(&path, &text).unwrap();
        let err = RedfishServerBuilder::from_config_file(&path)
            .map(|_| ())
            .expect_err(what)
            .to_string();
        assert!(err.contains(&file), "{what}: no file name in {err}");
        for e in expected {
            assert!(err.contains(e), "{what}: {e:?} not in {err}");
        }
        assert!(!err.contains("CANARY"), "{what}: a value leaked: {err}");
        assert!(
            !err.contains("file-pw"),
            "{what}: the password leaked: {err}"
        );
    }
    let missing = dir.path().join("nope.toml");
    let err = RedfishServerBuilder::from_config_file(&missing).unwrap_err();
    assert!(err.to_string().contains("nope.toml"), "{err}");
}
