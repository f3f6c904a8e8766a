//! Unit tests of the handlers and guards, over a real socket with a
//! hand-written HTTP/1.1 client (so that nothing here shares code with the
//! server's stack). The third-party clients are in
//! `tests/serve_botocore.rs`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use session_core::{Error, ManualClock, Result, Secret, SystemClock};
use time::OffsetDateTime;
use time::macros::datetime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::guard::{host_allowed, is_loopback_peer};
use super::imds::TokenTable;
use super::*;

const SECRET: &str = "CANARY-secret-access-key-unit-5d1e";
const SESSION_TOKEN: &str = "CANARY-session-token-unit-9a7c";
const KEY_ID: &str = "ASIAUNITTEST00000001";
const START: OffsetDateTime = datetime!(2030-01-02 01:00:00 UTC);

/// Hands out fixed temporary credentials, or an error, and counts calls.
struct FakeSource {
    calls: AtomicUsize,
    result: std::sync::Mutex<Result<AwsCredentials>>,
}

impl FakeSource {
    fn ok() -> Arc<Self> {
        Self::with(Ok(AwsCredentials {
            access_key_id: KEY_ID.to_owned(),
            secret_access_key: Secret::new(SECRET),
            session_token: Some(Secret::new(SESSION_TOKEN)),
            // Fractional seconds and a non-UTC offset: the served value must
            // still be `YYYY-MM-DDTHH:MM:SSZ` in UTC.
            expiration: Some(datetime!(2030-01-02 05:04:05.678 +02:00)),
        }))
    }

    fn with(result: Result<AwsCredentials>) -> Arc<Self> {
        Arc::new(Self {
            calls: AtomicUsize::new(0),
            result: std::sync::Mutex::new(result),
        })
    }

    fn set(&self, result: Result<AwsCredentials>) {
        *self.result.lock().expect("lock") = result;
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl CredentialSource for FakeSource {
    async fn credentials(&self) -> Result<AwsCredentials> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.result.lock().expect("lock").clone()
    }
}

/// What the server answered.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// Panics if any of the fake's secrets, or `extra`, is in the reply.
    fn assert_no_secret(&self, extra: &[&str]) {
        let all = format!("{:?}{}", self.headers, self.body);
        for secret in [SECRET, SESSION_TOKEN].iter().chain(extra) {
            assert!(!all.contains(secret), "a secret leaked into {all}");
        }
    }
}

/// One request on a new connection, `Host: 127.0.0.1:<port>` unless a
/// `Host` is among `headers` (`None` as its value: no `Host` at all).
async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, Option<&str>)],
) -> Reply {
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in headers {
        if let Some(value) = value {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    if method == "PUT" || method == "POST" {
        request.push_str("Content-Length: 0\r\n");
    }
    request.push_str("\r\n");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let raw = String::from_utf8(raw).expect("UTF-8 reply");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a complete reply");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn token_header(token: &str) -> [(&str, Option<&str>); 1] {
    [("X-aws-ec2-metadata-token", Some(token))]
}

async fn start(builder: CredentialServerBuilder) -> CredentialServerHandle {
    builder
        .build()
        .expect("build")
        .start()
        .await
        .expect("start")
}

async fn imds_token(addr: SocketAddr, ttl: &str) -> String {
    let reply = send(
        addr,
        "PUT",
        "/latest/api/token",
        &[("X-aws-ec2-metadata-token-ttl-seconds", Some(ttl))],
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.header("x-aws-ec2-metadata-token-ttl-seconds"),
        Some(ttl)
    );
    reply.body
}

#[test]
fn build_refuses_what_cannot_work() {
    let source = FakeSource::ok;
    let field = |r: Result<CredentialServer>| match r {
        Err(Error::InvalidInput { field, reason }) => (field, reason),
        other => panic!("expected InvalidInput, got {other:?}"),
    };

    let (f, reason) = field(CredentialServer::builder(source()).build());
    assert_eq!(f, "endpoints");
    assert!(reason.contains("ecs()"), "{reason}");

    for addr in [
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
        "192.0.2.2:8080".parse().expect("addr"),
        "[fd00::2]:0".parse().expect("addr"),
        "[::ffff:10.0.0.1]:0".parse().expect("addr"),
    ] {
        let (f, reason) = field(CredentialServer::builder(source()).ecs().bind(addr).build());
        assert_eq!(f, "bind");
        assert!(reason.contains("not a loopback address"), "{reason}");
    }
    for addr in [
        "127.0.0.1:0",
        "127.0.0.2:0",
        "[::1]:0",
        "[::ffff:127.0.0.1]:0",
    ] {
        CredentialServer::builder(source())
            .imds()
            .bind(addr.parse().expect("addr"))
            .build()
            .expect("a loopback address is accepted");
    }

    for name in ["", "a/b", "with space", "é", &"r".repeat(65), "../x"] {
        let (f, _) = field(
            CredentialServer::builder(source())
                .imds()
                .role_name(name)
                .build(),
        );
        assert_eq!(f, "role_name", "{name:?}");
    }
    for name in ["r", "my-role_1+=,.@", &"r".repeat(64)] {
        CredentialServer::builder(source())
            .imds()
            .role_name(name)
            .build()
            .expect("an IAM role name is accepted");
    }

    for region in ["", "EU-WEST-1", "eu west 1", "eu-west-1\n"] {
        let (f, _) = field(
            CredentialServer::builder(source())
                .imds()
                .region(region)
                .build(),
        );
        assert_eq!(f, "region", "{region:?}");
    }

    let short = "s".repeat(MIN_AUTHORIZATION_TOKEN_LEN - 1);
    let with_newline = format!("{}\r\nX-Injected: 1", "t".repeat(40));
    let with_space = format!("{} {}", "t".repeat(20), "t".repeat(20));
    for token in [short.as_str(), &with_newline, &with_space] {
        let (f, reason) = field(
            CredentialServer::builder(source())
                .ecs()
                .authorization_token(Secret::new(token))
                .build(),
        );
        assert_eq!(f, "authorization_token");
        assert!(
            !reason.contains(token),
            "the message quotes the token: {reason}"
        );
    }
}

#[test]
fn generated_tokens_are_long_random_base64url() {
    let a = CredentialServer::builder(FakeSource::ok())
        .ecs()
        .build()
        .expect("build");
    let b = CredentialServer::builder(FakeSource::ok())
        .ecs()
        .build()
        .expect("build");
    let token = a.authorization_token().expose();
    // 32 bytes, base64url without padding.
    assert_eq!(token.len(), 43, "{}", token.len());
    assert!(
        token
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    );
    assert!(a.authorization_token() != b.authorization_token());
    let given = "g".repeat(MIN_AUTHORIZATION_TOKEN_LEN);
    let c = CredentialServer::builder(FakeSource::ok())
        .ecs()
        .authorization_token(Secret::new(given.clone()))
        .build()
        .expect("build");
    assert_eq!(c.authorization_token().expose(), given);
}

#[tokio::test]
async fn debug_output_hides_the_authorization_token() {
    let token = "CANARY-authorization-token-0123456789abcdef";
    let builder = CredentialServer::builder(FakeSource::ok())
        .ecs()
        .imds()
        .authorization_token(Secret::new(token));
    let printed_builder = format!("{builder:?}");
    let server = builder.build().expect("build");
    let printed_server = format!("{server:?}");
    let handle = server.start().await.expect("start");
    let printed_handle = format!("{handle:?}");
    for printed in [printed_builder, printed_server, printed_handle] {
        assert!(!printed.contains(token), "{printed}");
        assert!(printed.contains("redacted"), "{printed}");
    }
    handle.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn ecs_serves_the_token_holder_only() {
    let source = FakeSource::ok();
    let server = start(CredentialServer::builder(source.clone()).ecs()).await;
    let addr = server.local_addr();
    let token = server.authorization_token().expose().to_owned();
    assert_eq!(
        server.ecs_full_uri().as_deref(),
        Some(format!("http://{addr}/ecs/credentials").as_str())
    );
    assert!(addr.ip().is_loopback());

    let reply = send(addr, "GET", ECS_PATH, &[("Authorization", Some(&token))]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let body = reply.json();
    assert_eq!(
        body,
        serde_json::json!({
            "AccessKeyId": KEY_ID,
            "SecretAccessKey": SECRET,
            "Token": SESSION_TOKEN,
            "Expiration": "2030-01-02T03:04:05Z",
        })
    );
    assert_eq!(source.calls(), 1);

    // Missing: 401. Wrong (a longer value, a prefix, another token, a
    // change in the last character): 403. Never the source, never an echo.
    let missing = send(addr, "GET", ECS_PATH, &[]).await;
    assert_eq!(missing.status, 401, "{missing:?}");
    assert_eq!(missing.json()["code"], "Unauthorized");
    missing.assert_no_secret(&[&token]);
    let mut last_changed = token.clone();
    let last = last_changed.pop().expect("not empty");
    last_changed.push(if last == 'A' { 'B' } else { 'A' });
    for wrong in [
        format!("{token}x"),
        token[..20].to_owned(),
        "CANARY-wrong-token-0123456789abcdef012345".to_owned(),
        last_changed,
        format!("Bearer {token}"),
    ] {
        let reply = send(addr, "GET", ECS_PATH, &[("Authorization", Some(&wrong))]).await;
        assert_eq!(reply.status, 403, "{wrong}: {reply:?}");
        assert_eq!(reply.json()["code"], "Forbidden");
        reply.assert_no_secret(&[&token, &wrong]);
    }
    assert_eq!(
        source.calls(),
        1,
        "refused requests do not reach the source"
    );

    // Only GET on the path.
    let post = send(addr, "POST", ECS_PATH, &[("Authorization", Some(&token))]).await;
    assert_eq!(post.status, 405, "{post:?}");
    let other = send(
        addr,
        "GET",
        "/ecs/other",
        &[("Authorization", Some(&token))],
    )
    .await;
    assert_eq!(other.status, 404, "{other:?}");
    // IMDS is off.
    let imds = send(
        addr,
        "PUT",
        "/latest/api/token",
        &[("X-aws-ec2-metadata-token-ttl-seconds", Some("60"))],
    )
    .await;
    assert_eq!(imds.status, 404, "{imds:?}");
    assert_eq!(server.imds_endpoint(), None);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn source_errors_and_long_term_keys_are_500s_without_secrets() {
    let source = FakeSource::with(Err(Error::Unavailable {
        target: "session 'dev' (1234)".to_owned(),
        message: "connection refused".to_owned(),
        source: None,
    }));
    let server = start(CredentialServer::builder(source.clone()).ecs().imds()).await;
    let addr = server.local_addr();
    let token = server.authorization_token().expose().to_owned();

    let reply = send(addr, "GET", ECS_PATH, &[("Authorization", Some(&token))]).await;
    assert_eq!(reply.status, 500, "{reply:?}");
    let body = reply.json();
    assert_eq!(body["code"], "unavailable");
    assert_eq!(
        body["message"],
        "session 'dev' (1234): service unavailable: connection refused"
    );
    let imds = imds_token(addr, "60").await;
    let reply = send(
        addr,
        "GET",
        "/latest/meta-data/iam/security-credentials/sessionctl",
        &token_header(&imds),
    )
    .await;
    assert_eq!(reply.status, 500, "{reply:?}");
    let body = reply.json();
    assert_eq!(body["Code"], "unavailable");
    assert!(
        body["Message"]
            .as_str()
            .expect("message")
            .contains("connection refused")
    );
    assert!(body.get("AccessKeyId").is_none());

    // Long-term keys (no token, no expiry) are not handed to children.
    source.set(Ok(AwsCredentials {
        access_key_id: "AKIAUNITTEST00000001".to_owned(),
        secret_access_key: Secret::new(SECRET),
        session_token: None,
        expiration: None,
    }));
    let reply = send(addr, "GET", ECS_PATH, &[("Authorization", Some(&token))]).await;
    assert_eq!(reply.status, 500, "{reply:?}");
    assert_eq!(reply.json()["code"], "unsupported");
    reply.assert_no_secret(&[&token]);
    let reply = send(
        addr,
        "GET",
        "/latest/meta-data/iam/security-credentials/sessionctl",
        &token_header(&imds),
    )
    .await;
    assert_eq!(reply.status, 500, "{reply:?}");
    reply.assert_no_secret(&[&token, &imds]);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn imds_v2_token_flow() {
    let clock = Arc::new(ManualClock::new(START));
    let source = FakeSource::ok();
    let server = start(
        CredentialServer::builder(source.clone())
            .imds()
            .role_name("dev-role")
            .clock(clock.clone()),
    )
    .await;
    let addr = server.local_addr();
    assert_eq!(server.ecs_full_uri(), None);
    assert_eq!(server.imds_endpoint(), Some(format!("http://{addr}")));

    // Token requests: the TTL is required and bounded.
    for ttl in [
        None,
        Some(""),
        Some("0"),
        Some("21601"),
        Some("abc"),
        Some("+5"),
        Some("-1"),
    ] {
        let reply = send(
            addr,
            "PUT",
            "/latest/api/token",
            &[("X-aws-ec2-metadata-token-ttl-seconds", ttl)],
        )
        .await;
        assert_eq!(reply.status, 400, "{ttl:?}: {reply:?}");
    }
    let forwarded = send(
        addr,
        "PUT",
        "/latest/api/token",
        &[
            ("X-aws-ec2-metadata-token-ttl-seconds", Some("60")),
            ("X-Forwarded-For", Some("203.0.113.9")),
        ],
    )
    .await;
    assert_eq!(forwarded.status, 403, "{forwarded:?}");
    assert!(!forwarded.body.contains("203.0.113.9"));
    let get_token = send(addr, "GET", "/latest/api/token", &[]).await;
    assert_eq!(get_token.status, 405, "{get_token:?}");

    let long = imds_token(addr, "21600").await;
    let short = imds_token(addr, "60").await;
    assert_ne!(long, short);
    assert!(long.len() >= 43, "{}", long.len());

    // IMDSv1 (no token) and unknown tokens: 401, before anything else.
    for headers in [
        vec![],
        vec![("X-aws-ec2-metadata-token", Some("not-a-token"))],
        vec![("X-aws-ec2-metadata-token", Some(&long[..42]))],
    ] {
        for path in [
            "/latest/meta-data/iam/security-credentials/",
            "/latest/meta-data/iam/security-credentials/dev-role",
            "/latest/meta-data/iam/security-credentials/other",
            "/latest/meta-data/ami-id",
        ] {
            let reply = send(addr, "GET", path, &headers).await;
            assert_eq!(reply.status, 401, "{path} {headers:?}: {reply:?}");
            reply.assert_no_secret(&[&long, &short]);
        }
    }
    assert_eq!(source.calls(), 0);

    for path in [
        "/latest/meta-data/iam/security-credentials/",
        "/latest/meta-data/iam/security-credentials",
    ] {
        let roles = send(addr, "GET", path, &token_header(&short)).await;
        assert_eq!(
            (roles.status, roles.body.as_str()),
            (200, "dev-role"),
            "{path}"
        );
    }
    let creds = send(
        addr,
        "GET",
        "/latest/meta-data/iam/security-credentials/dev-role",
        &token_header(&short),
    )
    .await;
    assert_eq!(creds.status, 200, "{creds:?}");
    assert_eq!(creds.header("cache-control"), Some("no-store"));
    assert_eq!(
        creds.json(),
        serde_json::json!({
            "Code": "Success",
            "LastUpdated": "2030-01-02T01:00:00Z",
            "Type": "AWS-HMAC",
            "AccessKeyId": KEY_ID,
            "SecretAccessKey": SECRET,
            "Token": SESSION_TOKEN,
            "Expiration": "2030-01-02T03:04:05Z",
        })
    );
    // Another role, other metadata: 404 with a valid token.
    for path in [
        "/latest/meta-data/iam/security-credentials/sessionctl",
        "/latest/meta-data/iam/security-credentials/dev-role/x",
        "/latest/meta-data/ami-id",
    ] {
        let reply = send(addr, "GET", path, &token_header(&short)).await;
        assert_eq!(reply.status, 404, "{path}: {reply:?}");
    }

    // LastUpdated stays while the key stays, and moves when it changes.
    clock.advance(Duration::from_secs(30));
    let again = send(
        addr,
        "GET",
        "/latest/meta-data/iam/security-credentials/dev-role",
        &token_header(&short),
    )
    .await;
    assert_eq!(again.json()["LastUpdated"], "2030-01-02T01:00:00Z");
    let mut rotated = FakeSource::ok()
        .result
        .lock()
        .expect("lock")
        .clone()
        .expect("ok");
    rotated.access_key_id = "ASIAUNITTEST00000002".to_owned();
    source.set(Ok(rotated));
    let after = send(
        addr,
        "GET",
        "/latest/meta-data/iam/security-credentials/dev-role",
        &token_header(&short),
    )
    .await;
    assert_eq!(after.json()["AccessKeyId"], "ASIAUNITTEST00000002");
    assert_eq!(after.json()["LastUpdated"], "2030-01-02T01:00:30Z");

    // The 60 s token expires on the injected clock; the 6 h one does not.
    clock.advance(Duration::from_secs(31));
    let expired = send(
        addr,
        "GET",
        "/latest/meta-data/iam/security-credentials/",
        &token_header(&short),
    )
    .await;
    assert_eq!(expired.status, 401, "{expired:?}");
    let still = send(
        addr,
        "GET",
        "/latest/meta-data/iam/security-credentials/",
        &token_header(&long),
    )
    .await;
    assert_eq!(still.status, 200, "{still:?}");
    clock.advance(Duration::from_secs(21_600));
    let gone = send(
        addr,
        "GET",
        "/latest/meta-data/iam/security-credentials/",
        &token_header(&long),
    )
    .await;
    assert_eq!(gone.status, 401, "{gone:?}");
    server.shutdown().await.expect("shutdown");
}

/// The region paths: behind a token as every IMDS path, 404 when no
/// region was given, and the document holds the region and nothing made up.
#[tokio::test]
async fn imds_serves_the_region_only_when_given() {
    for region in [Some("eu-central-2"), None] {
        let mut builder = CredentialServer::builder(FakeSource::ok()).imds();
        if let Some(region) = region {
            builder = builder.region(region);
        }
        let server = start(builder).await;
        let addr = server.local_addr();
        let token = imds_token(addr, "60").await;
        for path in [
            "/latest/meta-data/placement/region",
            "/latest/dynamic/instance-identity/document",
        ] {
            let refused = send(addr, "GET", path, &token_header("not-a-token")).await;
            assert_eq!(refused.status, 401, "{path}: {refused:?}");
            let reply = send(addr, "GET", path, &token_header(&token)).await;
            match region {
                None => assert_eq!(reply.status, 404, "{path}: {reply:?}"),
                Some(region) if path.ends_with("/region") => {
                    assert_eq!((reply.status, reply.body.as_str()), (200, region));
                }
                Some(region) => {
                    assert_eq!(reply.status, 200, "{reply:?}");
                    assert_eq!(reply.json(), serde_json::json!({ "region": region }));
                }
            }
        }
        server.shutdown().await.expect("shutdown");
    }
}

#[tokio::test]
async fn imds_v1_only_when_allowed() {
    let server = start(
        CredentialServer::builder(FakeSource::ok())
            .imds()
            .allow_imds_v1(true),
    )
    .await;
    let addr = server.local_addr();
    let roles = send(
        addr,
        "GET",
        "/latest/meta-data/iam/security-credentials/",
        &[],
    )
    .await;
    assert_eq!(
        (roles.status, roles.body.as_str()),
        (200, DEFAULT_ROLE_NAME)
    );
    let creds = send(
        addr,
        "GET",
        "/latest/meta-data/iam/security-credentials/sessionctl",
        &[],
    )
    .await;
    assert_eq!(creds.status, 200, "{creds:?}");
    assert_eq!(creds.json()["AccessKeyId"], KEY_ID);
    // A token that is sent must still be valid.
    let bad = send(
        addr,
        "GET",
        "/latest/meta-data/iam/security-credentials/",
        &token_header("forged"),
    )
    .await;
    assert_eq!(bad.status, 401, "{bad:?}");
    server.shutdown().await.expect("shutdown");
}

#[test]
fn the_token_table_is_bounded_and_keeps_the_newest() {
    let now = START;
    let mut table = TokenTable::default();
    let token = |i: usize| Secret::new(format!("token-{i}"));
    for i in 0..MAX_IMDS_TOKENS + 10 {
        // The first ones expire last: eviction goes by expiry, not age.
        let ttl = if i < 5 { 21_600 } else { 100 + i as u64 };
        table.insert(token(i), now + Duration::from_secs(ttl), now);
    }
    assert_eq!(table.len(), MAX_IMDS_TOKENS);
    let newest = MAX_IMDS_TOKENS + 9;
    assert!(table.is_valid(&token(newest), now));
    assert!(table.is_valid(&token(0), now), "the longest-lived stays");
    assert!(
        !table.is_valid(&token(5), now),
        "the soonest to expire went"
    );
    // Expired ones are dropped on the next insert.
    let later = now + Duration::from_secs(10_000);
    table.insert(token(9999), later + Duration::from_secs(1), later);
    assert_eq!(table.len(), 6, "the five 6 h tokens and the new one");
    assert!(!table.is_valid(&Secret::new("token-"), now));
}

#[tokio::test]
async fn foreign_hosts_are_refused() {
    let source = FakeSource::ok();
    let server = start(CredentialServer::builder(source.clone()).ecs().imds()).await;
    let addr = server.local_addr();
    let port = addr.port();
    let token = server.authorization_token().expose().to_owned();
    let other_port = port.wrapping_add(1);
    for host in [
        Some("evil.example".to_owned()),
        Some(format!("evil.example:{port}")),
        Some(format!("127.0.0.1.nip.io:{port}")),
        Some(format!("localhost.:{port}")),
        Some(format!("127.0.0.1:{other_port}")),
        Some(format!("169.254.169.254:{port}")),
        Some(String::new()),
        None,
    ] {
        let reply = send(
            addr,
            "GET",
            ECS_PATH,
            &[("Authorization", Some(&token)), ("Host", host.as_deref())],
        )
        .await;
        assert_eq!(reply.status, 403, "{host:?}: {reply:?}");
        reply.assert_no_secret(&[&token]);
        let put = send(
            addr,
            "PUT",
            "/latest/api/token",
            &[
                ("X-aws-ec2-metadata-token-ttl-seconds", Some("60")),
                ("Host", host.as_deref()),
            ],
        )
        .await;
        assert_eq!(put.status, 403, "{host:?}: {put:?}");
    }
    // An absolute-form target naming another host.
    let absolute = send(
        addr,
        "GET",
        &format!("http://evil.example:{port}{ECS_PATH}"),
        &[("Authorization", Some(&token))],
    )
    .await;
    assert_eq!(absolute.status, 403, "{absolute:?}");
    assert_eq!(source.calls(), 0);

    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LocalHost:{port}"),
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
    ] {
        let reply = send(
            addr,
            "GET",
            ECS_PATH,
            &[("Authorization", Some(&token)), ("Host", Some(&host))],
        )
        .await;
        assert_eq!(reply.status, 200, "{host}: {reply:?}");
    }
    server.shutdown().await.expect("shutdown");
}

#[test]
fn host_check_table() {
    for ok in [
        "localhost",
        "localhost:8080",
        "127.0.0.1:8080",
        "127.0.0.2:8080",
        "[::1]",
        "[::1]:8080",
        "[::ffff:127.0.0.1]:8080",
    ] {
        assert!(host_allowed(ok, 8080), "{ok}");
    }
    for refused in [
        "",
        "evil.example",
        "evil.example:8080",
        "localhost:8081",
        "localhost:",
        "localhost:+8080",
        "localhost:08080x",
        "::1",
        "::1:8080",
        "[::1",
        "[::1]8080",
        "[127.0.0.1]:8080",
        "[fd00::2]:8080",
        "192.0.2.2:8080",
        "0.0.0.0:8080",
        "127.0.0.1.nip.io:8080",
        "user@localhost:8080",
    ] {
        assert!(!host_allowed(refused, 8080), "{refused}");
    }
}

#[test]
fn peer_check_table() {
    for ok in [
        "127.0.0.1:1",
        "127.9.9.9:1",
        "[::1]:1",
        "[::ffff:127.0.0.1]:1",
    ] {
        assert!(is_loopback_peer(ok.parse().expect("addr")), "{ok}");
    }
    for refused in [
        "192.0.2.2:1",
        "0.0.0.0:1",
        "[fd00::2]:1",
        "[::ffff:192.0.2.2]:1",
        "[::]:1",
    ] {
        assert!(
            !is_loopback_peer(refused.parse().expect("addr")),
            "{refused}"
        );
    }
}

/// The guard on a served router, with the peer address replaced by a
/// non-loopback one (as a request from another machine would have it).
#[tokio::test]
async fn non_loopback_peers_are_refused() {
    let source = FakeSource::ok();
    let token = Secret::new("t".repeat(43));
    let listener = tokio::net::TcpListener::bind(DEFAULT_BIND)
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shared = Arc::new(Shared {
        source: source.clone(),
        clock: Arc::new(SystemClock),
        local_addr: addr,
        ecs_token: Some(token.clone()),
        imds: Some(imds::Imds::new(
            DEFAULT_ROLE_NAME.to_owned(),
            Some("eu-west-1".to_owned()),
            true,
        )),
        last_updated: std::sync::Mutex::new(None),
    });
    // Layered outside the guard: it runs first and rewrites what the
    // connection reported.
    let spoof = axum::middleware::map_request(|mut request: axum::extract::Request| async move {
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo::<SocketAddr>(
                "192.0.2.77:40000".parse().expect("addr"),
            ));
        request
    });
    let (stop, task) = spawn(listener, router(shared).layer(spoof));
    let reply = send(
        addr,
        "GET",
        ECS_PATH,
        &[("Authorization", Some(token.expose()))],
    )
    .await;
    assert_eq!(reply.status, 403, "{reply:?}");
    assert!(
        reply.json()["message"]
            .as_str()
            .expect("msg")
            .contains("loopback")
    );
    let imds = send(
        addr,
        "GET",
        "/latest/meta-data/iam/security-credentials/sessionctl",
        &[],
    )
    .await;
    assert_eq!(imds.status, 403, "{imds:?}");
    assert_eq!(source.calls(), 0);
    drop(stop);
    task.await.expect("join").expect("serve");
}

#[tokio::test]
async fn environment_names_each_enabled_endpoint() {
    let ecs = start(CredentialServer::builder(FakeSource::ok()).ecs()).await;
    let vars = ecs.environment();
    assert_eq!(
        vars,
        vec![
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                format!("http://{}/ecs/credentials", ecs.local_addr())
            ),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                ecs.authorization_token().expose().to_owned()
            ),
        ]
    );
    let imds = start(CredentialServer::builder(FakeSource::ok()).imds()).await;
    assert_eq!(
        imds.environment(),
        vec![
            (
                "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                format!("http://{}", imds.local_addr())
            ),
            ("AWS_EC2_METADATA_DISABLED", "false".to_owned()),
        ]
    );
    let both = start(CredentialServer::builder(FakeSource::ok()).ecs().imds()).await;
    let names: Vec<_> = both.environment().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN",
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            "AWS_EC2_METADATA_DISABLED"
        ]
    );
}

#[tokio::test]
async fn ipv6_loopback_works_with_bracketed_urls() {
    // Skipped where the system has no IPv6 loopback: not this module's
    // concern, and binding would fail before any of our code runs.
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("SKIPPED: no IPv6 loopback on this machine");
        return;
    }
    let server = start(
        CredentialServer::builder(FakeSource::ok())
            .ecs()
            .bind("[::1]:0".parse().expect("addr")),
    )
    .await;
    let addr = server.local_addr();
    assert_eq!(
        server.ecs_full_uri(),
        Some(format!("http://[::1]:{}/ecs/credentials", addr.port()))
    );
    let token = server.authorization_token().expose().to_owned();
    let reply = send(addr, "GET", ECS_PATH, &[("Authorization", Some(&token))]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn shutdown_and_drop_close_the_listener() {
    let server = start(CredentialServer::builder(FakeSource::ok()).ecs()).await;
    let addr = server.local_addr();
    // An idle keep-alive connection must not hold the shutdown up.
    let idle = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tokio::time::timeout(Duration::from_secs(3), server.shutdown())
        .await
        .expect("shutdown does not wait for idle connections")
        .expect("shutdown");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still listening"
    );
    drop(idle);

    let server = start(CredentialServer::builder(FakeSource::ok()).imds()).await;
    let addr = server.local_addr();
    drop(server);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still listening after drop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn timestamps_are_utc_seconds() {
    assert_eq!(
        aws_timestamp(datetime!(2030-06-07 01:02:03.999 -05:00)),
        "2030-06-07T06:02:03Z"
    );
}

/// Every request is logged (at `debug`), and no log line, at any level and
/// from any crate in this process, holds a credential or a token: the
/// authorization token, a wrong one that was sent, an IMDS token, the keys.
#[tokio::test]
async fn logs_hold_no_secret() {
    let logs = session_testkit::capture_logs();
    let source = FakeSource::ok();
    let server = start(CredentialServer::builder(source.clone()).ecs().imds()).await;
    let addr = server.local_addr();
    let token = server.authorization_token().expose().to_owned();
    let wrong = "CANARY-wrong-authorization-token-logs-0123";
    for authorization in [Some(token.as_str()), Some(wrong), None] {
        send(addr, "GET", ECS_PATH, &[("Authorization", authorization)]).await;
    }
    send(
        addr,
        "GET",
        ECS_PATH,
        &[
            ("Authorization", Some(&token)),
            ("Host", Some("rebind.example")),
        ],
    )
    .await;
    let imds = imds_token(addr, "60").await;
    let forged = "CANARY-forged-imds-token-logs";
    for imds_token in [imds.as_str(), forged] {
        send(
            addr,
            "GET",
            "/latest/meta-data/iam/security-credentials/sessionctl",
            &token_header(imds_token),
        )
        .await;
    }
    source.set(Err(Error::not_found("session 'gone'")));
    send(addr, "GET", ECS_PATH, &[("Authorization", Some(&token))]).await;
    server.shutdown().await.expect("shutdown");

    let text = logs.text();
    assert!(
        text.contains("credential server request") && text.contains(ECS_PATH),
        "requests are logged"
    );
    for secret in [SECRET, SESSION_TOKEN, &token, wrong, &imds, forged] {
        assert!(!text.contains(secret), "a secret is in the logs");
    }
}
