//! Smoke test of the sushy-emulator peer (`session_testkit::peers::sushy`), with a
//! plain HTTPS client (reqwest) that trusts only the emulator's CA.
//!
//! It pins down what a Redfish client meets there: HTTP Basic on every
//! request, a public service root that links no `SessionService`, and 404 for
//! the `SessionService` and its `Sessions` collection.
//!
//! Needs the peers' venv (`SESSION_PEERS_PYTHON`); without it the tests are
//! skipped loudly, or fail when `CI=true`.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use reqwest::{Certificate, Client, Response, StatusCode, header};
use serde_json::{Value, json};
use session_testkit::peers::sushy::{DEFAULT_USERNAME, FAKE_SYSTEM_UUID, SushyEmulator};

/// One HTTPS emulator (default options) for the read-only tests of this
/// binary. It is never dropped: it exits with the test process, which holds
/// the only write end of its stdin.
fn shared() -> Option<&'static SushyEmulator> {
    static EMULATOR: OnceLock<Option<SushyEmulator>> = OnceLock::new();
    let emulator = EMULATOR.get_or_init(SushyEmulator::start).as_ref();
    if emulator.is_none() {
        eprintln!("SKIPPED: sushy-emulator is missing (see the message above)");
    }
    emulator
}

/// [`shared`], started off the async runtime.
async fn emulator() -> Option<&'static SushyEmulator> {
    tokio::task::spawn_blocking(shared).await.unwrap()
}

/// A client that trusts the emulator's CA and nothing else.
fn client(sushy: &SushyEmulator) -> Client {
    let mut builder = Client::builder().timeout(Duration::from_secs(30));
    if let Some(pem) = sushy.cert_pem() {
        builder = builder
            .tls_built_in_root_certs(false)
            .add_root_certificate(Certificate::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

async fn get(sushy: &SushyEmulator, path: &str, auth: Option<(&str, &str)>) -> Response {
    let mut request = client(sushy).get(sushy.url(path));
    if let Some((user, password)) = auth {
        request = request.basic_auth(user, Some(password));
    }
    request.send().await.unwrap()
}

fn creds(sushy: &SushyEmulator) -> Option<(&str, &str)> {
    Some((sushy.username(), sushy.password()))
}

/// Asserts a 401 with sushy's Basic challenge and a Redfish error body.
async fn assert_basic_challenge(response: Response, what: &str) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(
        challenge.as_deref(),
        Some(r#"Basic realm="Baremetal API""#),
        "{what}"
    );
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["message"].is_string(), "{what}: {body}");
}

#[tokio::test]
async fn systems_answer_200_with_basic_credentials() {
    let Some(sushy) = emulator().await else {
        return;
    };
    assert_eq!(sushy.username(), DEFAULT_USERNAME);
    assert!(sushy.base_url().starts_with("https://127.0.0.1:"));

    let response = get(sushy, "/redfish/v1/Systems", creds(sushy)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let systems: Value = response.json().await.unwrap();
    let members = systems["Members"].as_array().expect("Members");
    assert!(!members.is_empty(), "{systems}");
    assert_eq!(systems["Members@odata.count"], json!(members.len()));
    let system_path = format!("/redfish/v1/Systems/{FAKE_SYSTEM_UUID}");
    assert!(
        members.contains(&json!({ "@odata.id": system_path })),
        "{systems}"
    );

    let response = get(sushy, &system_path, creds(sushy)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let system: Value = response.json().await.unwrap();
    assert_eq!(system["Id"], FAKE_SYSTEM_UUID, "{system}");
}

#[tokio::test]
async fn a_wrong_password_or_user_is_401() {
    let Some(sushy) = emulator().await else {
        return;
    };
    let wrong_password = Some((sushy.username(), "not-the-password"));
    assert_basic_challenge(
        get(sushy, "/redfish/v1/Systems", wrong_password).await,
        "wrong password",
    )
    .await;
    let wrong_user = Some(("nobody", sushy.password()));
    assert_basic_challenge(
        get(sushy, "/redfish/v1/Systems", wrong_user).await,
        "wrong user",
    )
    .await;
}

#[tokio::test]
async fn no_credentials_is_401() {
    let Some(sushy) = emulator().await else {
        return;
    };
    assert_basic_challenge(
        get(sushy, "/redfish/v1/Systems", None).await,
        "no credentials",
    )
    .await;
    // A session token is no credential here.
    let response = client(sushy)
        .get(sushy.url("/redfish/v1/Systems"))
        .header("X-Auth-Token", "some-token")
        .send()
        .await
        .unwrap();
    assert_basic_challenge(response, "X-Auth-Token only").await;
}

#[tokio::test]
async fn the_service_root_is_public_and_links_no_session_service() {
    let Some(sushy) = emulator().await else {
        return;
    };
    for path in ["/redfish/v1/", "/redfish/v1"] {
        let response = get(sushy, path, None).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let root: Value = response.json().await.unwrap();
        assert_eq!(root["@odata.type"], "#ServiceRoot.v1_5_0.ServiceRoot");
        assert_eq!(root["Systems"]["@odata.id"], "/redfish/v1/Systems");
        assert_eq!(root["Managers"]["@odata.id"], "/redfish/v1/Managers");
        let root = root.as_object().unwrap();
        for absent in ["SessionService", "AccountService", "Links"] {
            assert!(!root.contains_key(absent), "{absent} in {root:?}");
        }
    }
    // No version document either.
    assert_eq!(
        get(sushy, "/redfish", None).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn session_service_and_sessions_are_404_even_with_credentials() {
    let Some(sushy) = emulator().await else {
        return;
    };
    for path in [
        "/redfish/v1/SessionService",
        "/redfish/v1/SessionService/Sessions",
    ] {
        let response = get(sushy, path, creds(sushy)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "GET {path}");
        // Authentication comes before routing.
        assert_basic_challenge(get(sushy, path, None).await, path).await;
    }

    // A session login: 401 without Basic, 404 with it.
    let login = json!({ "UserName": sushy.username(), "Password": sushy.password() });
    let url = sushy.url("/redfish/v1/SessionService/Sessions");
    let response = client(sushy).post(&url).json(&login).send().await.unwrap();
    assert_basic_challenge(response, "POST Sessions without Basic").await;
    let (user, password) = (sushy.username(), sushy.password());
    let response = client(sushy)
        .post(&url)
        .basic_auth(user, Some(password))
        .json(&login)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn https_is_verified_against_the_emulator_ca() {
    let Some(sushy) = emulator().await else {
        return;
    };
    assert!(sushy.is_https());
    let pem = sushy.cert_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    assert_eq!(
        std::fs::read_to_string(sushy.cert_path().unwrap()).unwrap(),
        pem
    );
    // Without the CA, the certificate is not trusted.
    let error = Client::new()
        .get(sushy.url("/redfish/v1/"))
        .send()
        .await
        .expect_err("the emulator's certificate must not be publicly trusted");
    assert!(error.is_connect(), "{error:?}");
    // "localhost" is in the certificate too.
    let localhost = format!("https://localhost:{}/redfish/v1/", sushy.port());
    let response = client(sushy).get(localhost).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn plain_http_with_a_chosen_password() {
    let Some(sushy) = tokio::task::spawn_blocking(|| {
        SushyEmulator::builder()
            .https(false)
            .username("operator")
            .password("s3cret: with spaces")
            .start()
    })
    .await
    .unwrap() else {
        return;
    };
    assert!(!sushy.is_https());
    assert_eq!(sushy.cert_pem(), None);
    assert_eq!(
        sushy.base_url(),
        format!("http://127.0.0.1:{}", sushy.port())
    );
    assert_eq!(
        (sushy.username(), sushy.password()),
        ("operator", "s3cret: with spaces")
    );
    let response = get(&sushy, "/redfish/v1/Systems", creds(&sushy)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_basic_challenge(
        get(&sushy, "/redfish/v1/Systems", Some(("operator", "s3cret"))).await,
        "wrong password over HTTP",
    )
    .await;
    // The emulator logs each request.
    assert!(
        sushy.log().contains("GET /redfish/v1/Systems"),
        "{}",
        sushy.log()
    );
}

#[test]
fn dropping_the_emulator_stops_it() {
    let Some(sushy) = SushyEmulator::builder().https(false).start() else {
        return;
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, sushy.port()));
    let pid = sushy.pid();
    let debug = format!("{sushy:?}");
    assert!(!debug.contains(sushy.password()), "{debug}");
    assert!(TcpStream::connect(addr).is_ok());
    drop(sushy);
    assert!(
        TcpStream::connect(addr).is_err(),
        "the emulator still listens after drop"
    );
    #[cfg(target_os = "linux")]
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "process {pid} is still there"
    );
    let _ = pid;
}
