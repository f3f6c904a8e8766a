//! The fake Boundary worker checked by a client that is not ours:
//! `boundary-go client` (Go crypto/tls + nhooyr.io/websocket 1.8.7 +
//! protowire) against [`FakeWorker`] on every scenario of tunnel-peers.md
//! §3; and the Go stand-in worker checked from Rust (tokio-rustls +
//! tokio-tungstenite), so its harness is proven too.
//!
//! Needs the boundary-go peer (`./scripts/test` builds it); skipped loudly
//! without it, a failure with `CI=true`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use prost::Message as _;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use session_core::{Clock, ManualClock, SystemClock};
use session_testkit::fakes::boundary::cluster::{ClosedReason, SessionCredentials, SessionStatus};
use session_testkit::fakes::boundary::worker::proto::{ClientHandshake, HandshakeResult};
use session_testkit::fakes::boundary::worker::{
    FakeWorker, MemoryCluster, SubprotocolAnswer, WorkerEvent, WorkerFaults, WorkerOptions,
};
use session_testkit::fakes::boundary::{cert, echo_server};
use session_testkit::peers::boundary_go::{self, ClientOutcome, ClientRun, GoWorker};
use session_testkit::peers::require_peer;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

type RustWs = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>;

const TOFU: &str = "abcdefghijklmnopqrst";
const OTHER_TOFU: &str = "ABCDEFGHIJKLMNOPQRST";
const WAIT: Duration = Duration::from_secs(10);

fn peer() -> Option<PathBuf> {
    require_peer("boundary-go", boundary_go::boundary_go)
}

fn session(id: &str, connection_limit: i32, endpoint: SocketAddr) -> SessionCredentials {
    let now = SystemClock.now();
    let expiration = now + time::Duration::hours(1);
    let identity = cert::issue(id, &["127.0.0.1:9202".to_owned()], now, expiration);
    SessionCredentials {
        session_id: id.to_owned(),
        certificate_der: identity.certificate_der,
        private_key_pkcs8: identity.private_key_pkcs8,
        status: SessionStatus::Pending,
        tofu_token: None,
        expiration,
        connection_limit,
        endpoint: format!("tcp://{endpoint}"),
    }
}

/// A FakeWorker over a MemoryCluster holding one session.
struct Fixture {
    binary: PathBuf,
    cluster: Arc<MemoryCluster>,
    worker: FakeWorker,
    session: SessionCredentials,
}

impl Fixture {
    async fn new(binary: PathBuf, connection_limit: i32, read_limit: Option<usize>) -> Self {
        let options = WorkerOptions {
            read_limit,
            ..WorkerOptions::default()
        };
        let cluster = Arc::new(MemoryCluster::new(options.clock.clone()));
        let session = session("s_1234567890", connection_limit, echo_server().await);
        cluster.add_session(session.clone());
        let worker = FakeWorker::start(cluster.clone(), options).await;
        Self {
            binary,
            cluster,
            worker,
            session,
        }
    }

    async fn run(&self, run: &ClientRun) -> ClientOutcome {
        boundary_go::run_client(&self.binary, &self.worker.address(), &self.session, run).await
    }

    async fn run_tofu(&self, tofu: &str) -> ClientOutcome {
        self.run(&ClientRun::new(tofu)).await
    }

    fn status(&self) -> Option<SessionStatus> {
        self.cluster.status(&self.session.session_id)
    }

    async fn handshake_closed(&self, code: u16) -> WorkerEvent {
        self.worker
            .wait_for_event(
                WAIT,
                |e| matches!(e, WorkerEvent::HandshakeClosed { code: c, .. } if *c == code),
            )
            .await
            .expect("the worker records the close")
    }
}

fn assert_closed(outcome: &ClientOutcome, stage: &str, code: u16, reason: &str) {
    assert_eq!(outcome.stage, stage, "{outcome:?}");
    assert_eq!(outcome.close_code, Some(code), "{outcome:?}");
    assert_eq!(outcome.close_reason.as_deref(), Some(reason), "{outcome:?}");
}

#[tokio::test]
async fn first_connection_by_alpn_echoes_100_kb_each_way() {
    let Some(binary) = peer() else { return };
    let fx = Fixture::new(binary, -1, None).await;
    let run = ClientRun {
        send: 100_000,
        ..ClientRun::new(TOFU)
    };
    let outcome = fx.run(&run).await;
    assert_eq!(outcome.stage, "done", "{outcome:?}");
    assert_eq!(outcome.echoed, 100_000);
    assert_eq!(outcome.alpn.as_deref(), Some("http/1.1"));
    assert_eq!(
        (outcome.connection_limit, outcome.connections_left),
        (-1, -1)
    );
    let want = fx.session.expiration.unix_timestamp();
    let got = time::OffsetDateTime::parse(
        outcome.expiration.as_deref().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(got.unix_timestamp(), want);
    assert_eq!(fx.status(), Some(SessionStatus::Active));
    assert_eq!(
        fx.cluster.tofu_token(&fx.session.session_id).as_deref(),
        Some(TOFU)
    );
    let ended = fx
        .worker
        .wait_for_event(WAIT, |e| matches!(e, WorkerEvent::ConnectionEnded { .. }))
        .await
        .expect("the connection ends");
    let WorkerEvent::ConnectionEnded {
        bytes_up,
        bytes_down,
        ..
    } = ended
    else {
        unreachable!()
    };
    assert_eq!((bytes_up, bytes_down), (100_000, 100_000));
    // Written in 16 KiB messages, the Go client's way.
    assert_eq!(fx.worker.max_incoming_message(), 16 * 1024);
    let connections = fx.cluster.connections();
    assert_eq!(connections.len(), 1);
    assert_eq!(
        (connections[0].bytes_up, connections[0].bytes_down),
        (100_000, 100_000)
    );
    assert!(connections[0].endpoint.is_some());
    // The session id came from ALPN: an IP literal sends no SNI.
    assert!(
        fx.worker.events().contains(&WorkerEvent::TlsAccepted {
            session_id: fx.session.session_id.clone(),
            sni: None,
        }),
        "{:?}",
        fx.worker.events()
    );
}

#[tokio::test]
async fn older_worker_closes_a_40000_byte_message_with_1009() {
    let Some(binary) = peer() else { return };
    let fx = Fixture::new(binary, -1, Some(32 * 1024)).await;
    // Messages of exactly 32 KiB pass.
    let fits = ClientRun {
        send: 70_000,
        write_size: 32 * 1024,
        ..ClientRun::new(TOFU)
    };
    assert_eq!(fx.run(&fits).await.stage, "done");
    let too_big = ClientRun {
        send: 40_000,
        write_size: 40_000,
        ..ClientRun::new(TOFU)
    };
    let outcome = fx.run(&too_big).await;
    assert_closed(&outcome, "data", 1009, "read limited at 32769 bytes");
    assert_eq!(fx.worker.max_incoming_message(), 40_000);
}

#[tokio::test]
async fn same_tofu_again_past_the_connection_limit_is_refused_1011() {
    let Some(binary) = peer() else { return };
    let fx = Fixture::new(binary, 1, None).await;
    let first = fx.run_tofu(TOFU).await;
    assert_eq!(first.stage, "handshake", "{first:?}");
    assert_eq!((first.connection_limit, first.connections_left), (1, 0));
    let second = fx.run_tofu(TOFU).await;
    assert_closed(&second, "handshake", 1011, "unable to authorize connection");
    assert_eq!(fx.cluster.connections().len(), 1);
}

#[tokio::test]
async fn different_tofu_is_refused_1008() {
    let Some(binary) = peer() else { return };
    let fx = Fixture::new(binary, -1, None).await;
    assert_eq!(fx.run_tofu(TOFU).await.stage, "handshake");
    let outcome = fx.run_tofu(OTHER_TOFU).await;
    assert_closed(&outcome, "handshake", 1008, "tofu token not allowed");
    assert_eq!(
        fx.cluster.tofu_token(&fx.session.session_id).as_deref(),
        Some(TOFU)
    );
}

#[tokio::test]
async fn malformed_tofu_is_refused_1003() {
    let Some(binary) = peer() else { return };
    let fx = Fixture::new(binary, -1, None).await;
    let outcome = fx.run_tofu(&TOFU[..19]).await;
    assert_closed(&outcome, "handshake", 1003, "invalid tofu token");
    assert_eq!(fx.status(), Some(SessionStatus::Pending));
    fx.handshake_closed(1003).await;
}

#[tokio::test]
async fn alpn_without_the_session_id_fails_the_tls_handshake() {
    let Some(binary) = peer() else { return };
    let fx = Fixture::new(binary, -1, None).await;
    let run = ClientRun {
        no_alpn_session: true,
        ..ClientRun::new(TOFU)
    };
    let outcome = fx.run(&run).await;
    assert_eq!(outcome.stage, "tls", "{outcome:?}");
    let error = outcome.error.unwrap_or_default();
    assert!(error.contains("internal error"), "{error}");
    let failed = fx
        .worker
        .wait_for_event(WAIT, |e| matches!(e, WorkerEvent::TlsFailed { .. }))
        .await;
    assert!(
        matches!(
            failed,
            Some(WorkerEvent::TlsFailed {
                session_id: None,
                ..
            })
        ),
        "{failed:?}"
    );
    // With SNI naming the session, the same client gets through.
    let by_sni = ClientRun {
        no_alpn_session: true,
        sni: Some(fx.session.session_id.clone()),
        ..ClientRun::new(TOFU)
    };
    assert_eq!(fx.run(&by_sni).await.stage, "handshake");
}

#[tokio::test]
async fn no_client_certificate_is_rejected_after_the_tls_handshake() {
    let Some(binary) = peer() else { return };
    let fx = Fixture::new(binary, -1, None).await;
    let run = ClientRun {
        no_cert: true,
        ..ClientRun::new(TOFU)
    };
    let outcome = fx.run(&run).await;
    // TLS 1.3: the client's handshake completes; the refusal arrives with
    // the first read, during the upgrade.
    assert_eq!(outcome.stage, "upgrade", "{outcome:?}");
    assert!(outcome.error.is_some());
    let failed = fx
        .worker
        .wait_for_event(WAIT, |e| matches!(e, WorkerEvent::TlsFailed { .. }))
        .await;
    assert!(
        matches!(&failed, Some(WorkerEvent::TlsFailed { session_id: Some(id), .. }) if id == "s_1234567890"),
        "{failed:?}"
    );
    assert_eq!(fx.status(), Some(SessionStatus::Pending));
}

#[tokio::test]
async fn session_cancel_closes_1000_and_the_cluster_shows_canceling() {
    let Some(binary) = peer() else { return };
    let fx = Fixture::new(binary, -1, None).await;
    assert_eq!(fx.run_tofu(TOFU).await.stage, "handshake");
    let cancel = ClientRun {
        cancel: true,
        ..ClientRun::new(TOFU)
    };
    let outcome = fx.run(&cancel).await;
    assert_closed(&outcome, "handshake", 1000, "session canceled");
    assert_eq!(fx.status(), Some(SessionStatus::Canceling));
    // A canceled session takes no more connections.
    let after = fx.run_tofu(TOFU).await;
    assert_closed(&after, "handshake", 1011, "unable to authorize connection");
}

#[tokio::test]
async fn fault_knobs_show_up_at_the_go_client() {
    let Some(binary) = peer() else { return };
    let fx = Fixture::new(binary, -1, None).await;

    fx.worker
        .force_next_close(1011, "unable to establish proxy");
    let forced = fx.run_tofu(TOFU).await;
    assert_closed(&forced, "handshake", 1011, "unable to establish proxy");

    fx.worker.set_faults(WorkerFaults {
        not_registered: true,
        ..WorkerFaults::default()
    });
    let unregistered = fx.run_tofu(TOFU).await;
    assert_closed(&unregistered, "handshake", 1011, "worker id is empty");

    fx.worker.set_faults(WorkerFaults {
        http_500: true,
        ..WorkerFaults::default()
    });
    let refused = fx.run_tofu(TOFU).await;
    assert_eq!(refused.stage, "upgrade", "{refused:?}");
    assert!(refused.error.unwrap_or_default().contains("500"));

    fx.worker.set_faults(WorkerFaults {
        subprotocol: SubprotocolAnswer::Missing,
        ..WorkerFaults::default()
    });
    let missing = fx.run_tofu(TOFU).await;
    assert_eq!(missing.stage, "upgrade", "{missing:?}");

    fx.worker.set_faults(WorkerFaults {
        subprotocol: SubprotocolAnswer::Wrong("boundary-tcp-proxy-v2".to_owned()),
        ..WorkerFaults::default()
    });
    let wrong = fx.run_tofu(TOFU).await;
    assert_eq!(wrong.stage, "upgrade", "{wrong:?}");

    fx.worker.set_faults(WorkerFaults {
        wrong_server_certificate: true,
        ..WorkerFaults::default()
    });
    let impostor = fx.run_tofu(TOFU).await;
    assert_eq!(impostor.stage, "tls", "{impostor:?}");
    assert!(
        impostor
            .error
            .unwrap_or_default()
            .contains("not the session certificate")
    );

    // Split and delayed messages still echo intact.
    fx.worker.set_faults(WorkerFaults {
        split_writes: Some(1000),
        write_delay: Some(Duration::from_millis(1)),
        ..WorkerFaults::default()
    });
    let slow = ClientRun {
        send: 20_000,
        ..ClientRun::new(TOFU)
    };
    let outcome = fx.run(&slow).await;
    assert_eq!(outcome.stage, "done", "{outcome:?}");
    assert_eq!(outcome.echoed, 20_000);
}

/// Accepts exactly the session certificate from the server (not WebPKI:
/// the session certificate is a CA used as an end-entity).
#[derive(Debug)]
struct SessionServerVerifier {
    certificate: Vec<u8>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for SessionServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.certificate.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("not the session certificate".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 refused".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Our own minimal client (tokio-rustls + tokio-tungstenite, as
/// boundary.md §4.7 suggests): TLS 1.3 with the session certificate, ALPN
/// `["http/1.1", session id]`, no SNI, then the upgrade with the
/// subprotocol, whose echo it checks.
async fn rust_client(address: &str, session: &SessionCredentials) -> RustWs {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = SessionServerVerifier {
        certificate: session.certificate_der.clone(),
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(
            vec![CertificateDer::from(session.certificate_der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(session.private_key_pkcs8.clone())),
        )
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec(), session.session_id.as_bytes().to_vec()];
    let tcp = TcpStream::connect(address).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(
            ServerName::IpAddress(IpAddr::from(Ipv4Addr::LOCALHOST).into()),
            tcp,
        )
        .await
        .expect("TLS 1.3 with the worker");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));

    let mut request = format!("ws://{address}/v1/proxy")
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("boundary-tcp-proxy-v1"),
    );
    let (ws, response) = tokio_tungstenite::client_async(request, tls)
        .await
        .expect("upgrade");
    assert_eq!(
        response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok()),
        Some("boundary-tcp-proxy-v1")
    );
    ws
}

#[tokio::test]
async fn go_stand_in_worker_accepts_a_rust_client_and_echoes() {
    let Some(binary) = peer() else { return };
    let echo = echo_server().await;
    let session = session("s_0987654321", -1, echo);
    let mut worker = GoWorker::start(&binary).await;
    worker.add_session(&session).await;

    let mut ws = rust_client(&worker.address(), &session).await;
    let hello = ClientHandshake {
        tofu_token: TOFU.to_owned(),
        command: 0,
    };
    ws.send(Message::Binary(hello.encode_to_vec().into()))
        .await
        .unwrap();
    let Some(Ok(Message::Binary(bytes))) = ws.next().await else {
        panic!("no HandshakeResult");
    };
    let result = HandshakeResult::decode(bytes).unwrap();
    assert_eq!((result.connection_limit, result.connections_left), (-1, -1));
    assert_eq!(
        result.expiration.map(|t| t.seconds),
        Some(session.expiration.unix_timestamp())
    );

    ws.send(Message::Binary(b"hello boundary".to_vec().into()))
        .await
        .unwrap();
    let mut echoed = Vec::new();
    while echoed.len() < 14 {
        match ws.next().await {
            Some(Ok(Message::Binary(data))) => echoed.extend_from_slice(&data),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(echoed, b"hello boundary");
    ws.close(None).await.unwrap();
    while let Some(Ok(_)) = ws.next().await {}

    let id = &session.session_id;
    for want in [
        format!("activated {id}"),
        format!("handshake {id} ok left -1"),
        format!("connection {id} up 14 down 14"),
    ] {
        assert_eq!(
            worker.wait_for_event(WAIT, |e| e == want).await.as_deref(),
            Some(want.as_str()),
            "{:?}",
            worker.events()
        );
    }
}

#[tokio::test]
async fn go_stand_in_worker_applies_the_tofu_rules() {
    let Some(binary) = peer() else { return };
    let echo = echo_server().await;
    let session = session("s_1122334455", 1, echo);
    let mut worker = GoWorker::start(&binary).await;
    worker.add_session(&session).await;
    let address = worker.address();
    let run = |tofu: &str| ClientRun::new(tofu);

    let first = boundary_go::run_client(&binary, &address, &session, &run(TOFU)).await;
    assert_eq!(
        (first.stage.as_str(), first.connections_left),
        ("handshake", 0)
    );
    let again = boundary_go::run_client(&binary, &address, &session, &run(TOFU)).await;
    assert_closed(&again, "handshake", 1011, "unable to authorize connection");
    let other = boundary_go::run_client(&binary, &address, &session, &run(OTHER_TOFU)).await;
    assert_closed(&other, "handshake", 1008, "tofu token not allowed");
    let short = boundary_go::run_client(&binary, &address, &session, &run(&TOFU[..19])).await;
    assert_closed(&short, "handshake", 1003, "invalid tofu token");
    let cancel = ClientRun {
        cancel: true,
        ..run(TOFU)
    };
    let canceled = boundary_go::run_client(&binary, &address, &session, &cancel).await;
    assert_closed(&canceled, "handshake", 1000, "session canceled");
    let want = format!("canceled {}", session.session_id);
    assert!(worker.wait_for_event(WAIT, |e| e == want).await.is_some());
}

#[tokio::test]
async fn fake_worker_ends_a_connection_at_the_session_expiration() {
    let clock = Arc::new(ManualClock::new(
        time::macros::datetime!(2030-01-01 0:00 UTC),
    ));
    let now = clock.now();
    let expiration = now + time::Duration::minutes(10);
    let identity = cert::issue("s_5566778899", &[], now, expiration);
    let session = SessionCredentials {
        session_id: "s_5566778899".to_owned(),
        certificate_der: identity.certificate_der,
        private_key_pkcs8: identity.private_key_pkcs8,
        status: SessionStatus::Pending,
        tofu_token: None,
        expiration,
        connection_limit: -1,
        endpoint: format!("tcp://{}", echo_server().await),
    };
    let cluster = Arc::new(MemoryCluster::new(clock.clone()));
    cluster.add_session(session.clone());
    let options = WorkerOptions {
        clock: clock.clone(),
        ..WorkerOptions::default()
    };
    let worker = FakeWorker::start(cluster.clone(), options).await;
    let mut ws = rust_client(&worker.address(), &session).await;
    let hello = ClientHandshake {
        tofu_token: TOFU.to_owned(),
        command: 0,
    };
    ws.send(Message::Binary(hello.encode_to_vec().into()))
        .await
        .unwrap();
    let Some(Ok(Message::Binary(bytes))) = ws.next().await else {
        panic!("no HandshakeResult");
    };
    let result = HandshakeResult::decode(bytes).unwrap();
    assert_eq!(
        result.expiration.map(|t| t.seconds),
        Some(expiration.unix_timestamp())
    );
    // The splice is asleep until the expiration; move past it.
    let asleep = async {
        while clock.sleepers_ahead() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(WAIT, asleep).await.unwrap();
    clock.advance(Duration::from_secs(601));
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => {}
                other => panic!("no close frame: {other:?}"),
            }
        }
    })
    .await
    .unwrap()
    .expect("a close frame with a code");
    assert_eq!(closed.code, CloseCode::Normal);
    assert_eq!(closed.reason.as_str(), "done");
    let ended = worker
        .wait_for_event(WAIT, |e| matches!(e, WorkerEvent::ConnectionEnded { .. }))
        .await;
    assert!(ended.is_some());
    let record = tokio::time::timeout(WAIT, async {
        loop {
            let connections = cluster.connections();
            if let Some(closed) = connections.first().and_then(|c| c.closed_reason) {
                return closed;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(record, ClosedReason::TimedOut);
}
