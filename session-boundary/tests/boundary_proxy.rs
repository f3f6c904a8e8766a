//! The connect proxy against two workers we did not write as clients: the
//! Rust fake worker of session-testkit (written from the reference, behind
//! the fake controller), and `boundary-go worker`, a stand-in built only on
//! the real worker's stack (Go crypto/tls, nhooyr.io/websocket 1.8.7 with
//! its 32 KiB read limit, protowire). Every scenario runs against both.
//!
//! The Go worker needs the boundary-go peer (`./scripts/test` builds it);
//! its tests skip loudly without it, and fail with `CI=true`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use session_boundary::AuthorizationData;
use session_boundary::api::{ControllerClient, TargetRef};
use session_boundary::proxy::{Proxy, ProxyEnd, ProxyEvent, ProxyOptions};
use session_core::Secret;
use session_testkit::fakes::boundary::cluster::{
    AuthorizedConnection, ClosedReason, Cluster, ClusterError, SessionCredentials,
};
use session_testkit::fakes::boundary::controller::{
    DEV_AUTH_METHOD_ID, DEV_LOGIN_NAME, DEV_PASSWORD, DEV_TARGET_ID,
};
use session_testkit::fakes::boundary::worker::{WorkerEvent, WorkerFaults};
use session_testkit::fakes::boundary::{FakeBoundary, FakeTarget, FakeWorker, WorkerOptions};
use session_testkit::peers::boundary_go::{self, ClientRun, GoWorker};
use session_testkit::peers::require_peer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(15);

/// Which worker carries the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Rust,
    Go,
}

/// A fake Boundary, and for [`Kind::Go`] the Go worker the controller's
/// tokens point to instead of its own.
struct Stack {
    fake: FakeBoundary,
    go: Option<GoWorker>,
    client: ControllerClient,
}

impl Stack {
    /// `None` when the Go peer is missing outside CI.
    async fn start(kind: Kind, connection_limit: i32, session_max_seconds: u32) -> Option<Self> {
        let go = match kind {
            Kind::Rust => None,
            Kind::Go => {
                let binary = require_peer("boundary-go", boundary_go::boundary_go)?;
                Some(GoWorker::start(&binary).await)
            }
        };
        let options = WorkerOptions {
            // An older worker's limit, as the Go worker has it.
            read_limit: Some(32 * 1024),
            ..WorkerOptions::default()
        };
        let fake = FakeBoundary::start_with(
            |builder, endpoint| {
                let mut target = FakeTarget::dev(endpoint);
                target.connection_limit = connection_limit;
                target.session_max_seconds = session_max_seconds;
                builder.target(target)
            },
            options,
        )
        .await;
        if let Some(go) = &go {
            fake.controller.set_worker_address(go.address());
        }
        let login = ControllerClient::new(&fake.controller.url())
            .unwrap()
            .authenticate_password(
                DEV_AUTH_METHOD_ID,
                DEV_LOGIN_NAME,
                &Secret::new(DEV_PASSWORD),
            )
            .await
            .unwrap();
        let client = ControllerClient::new(&fake.controller.url())
            .unwrap()
            .with_token(login.token);
        Some(Self { fake, go, client })
    }

    /// Authorizes a session and hands it to the Go worker if there is one.
    async fn authorize(&mut self) -> AuthorizationData {
        let authorization = self
            .client
            .authorize_session(&TargetRef::id(DEV_TARGET_ID), None)
            .await
            .unwrap();
        let data = AuthorizationData::decode(authorization.authorization_token.expose()).unwrap();
        if let Some(go) = &mut self.go {
            let credentials = self
                .fake
                .controller
                .cluster()
                .lookup_session(&data.session_id)
                .await
                .unwrap();
            go.add_session(&credentials).await;
        }
        data
    }

    async fn proxy(&mut self) -> Proxy {
        let data = self.authorize().await;
        start_proxy(data).await
    }

    async fn go_event(&self, pattern: &str) -> Option<String> {
        let go = self.go.as_ref()?;
        go.wait_for_event(WAIT, |line| line.contains(pattern)).await
    }
}

async fn start_proxy(data: AuthorizationData) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    Proxy::start(listener, data, ProxyOptions::default()).unwrap()
}

/// `n` bytes of a pattern that a shifted or repeated chunk would break.
fn payload(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

/// Writes `data` through the proxy (in one `write_all`) and reads the echo.
async fn echo(proxy: &Proxy, data: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(proxy.local_addr()).await.unwrap();
    echo_on(&mut stream, data).await
}

async fn echo_on(stream: &mut TcpStream, data: &[u8]) -> Vec<u8> {
    let (mut read, mut write) = stream.split();
    let sending = async {
        write.write_all(data).await.unwrap();
    };
    let mut back = vec![0u8; data.len()];
    let receiving = async {
        tokio::time::timeout(WAIT, read.read_exact(&mut back))
            .await
            .expect("the echo in time")
            .expect("the whole echo");
    };
    tokio::join!(sending, receiving);
    back
}

async fn ended(proxy: &Proxy) -> ProxyEnd {
    tokio::time::timeout(WAIT, proxy.ended())
        .await
        .expect("the proxy ends in time")
}

async fn first_connection_carries_100_kb_each_way(kind: Kind) {
    let Some(mut stack) = Stack::start(kind, -1, 3600).await else {
        return;
    };
    let proxy = stack.proxy().await;
    let mut events = proxy.events();
    let data = payload(100_000, 7);
    assert!(
        echo(&proxy, &data).await == data,
        "{kind:?}: the echo differs"
    );
    let activated = tokio::time::timeout(WAIT, events.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(&activated, ProxyEvent::Activated { session_id, connections_left: None } if *session_id == proxy.session_id()),
        "{activated:?}"
    );
    match kind {
        Kind::Rust => {
            let status = stack.fake.controller.session(&proxy.session_id()).unwrap();
            assert_eq!(format!("{:?}", status.status), "Active");
            assert!(
                stack.fake.worker.max_incoming_message() <= 32 * 1024,
                "a message over 32 KiB: {}",
                stack.fake.worker.max_incoming_message()
            );
        }
        Kind::Go => {
            let line = stack.go_event("up 100000 down 100000").await;
            assert!(line.is_some(), "{:?}", stack.go.as_ref().unwrap().events());
        }
    }
    assert_eq!(proxy.end_reason(), None);
    proxy.close(ProxyEnd::Closed);
}

async fn sixty_four_mib_both_ways_at_once(kind: Kind) {
    let Some(mut stack) = Stack::start(kind, -1, 3600).await else {
        return;
    };
    let proxy = stack.proxy().await;
    // Written and read at the same time: more than every socket buffer on
    // the way holds, so a side that stops reading while it writes stalls.
    let data = payload(64 << 20, 11);
    assert!(
        echo(&proxy, &data).await == data,
        "{kind:?}: the echo differs"
    );
    proxy.close(ProxyEnd::Closed);
}

async fn a_40_kb_write_goes_in_messages_an_old_worker_accepts(kind: Kind) {
    let Some(mut stack) = Stack::start(kind, -1, 3600).await else {
        return;
    };
    let proxy = stack.proxy().await;
    let data = payload(40_000, 3);
    let mut stream = TcpStream::connect(proxy.local_addr()).await.unwrap();
    // One write of 40,000 bytes: a proxy that sent it as one message would
    // get close 1009 "read limited at 32769 bytes".
    assert!(echo_on(&mut stream, &data).await == data);
    assert!(echo_on(&mut stream, &data).await == data);
    if kind == Kind::Rust {
        let closed = stack
            .fake
            .worker
            .events()
            .into_iter()
            .find(|e| matches!(e, WorkerEvent::ConnectionEnded { code: 1009, .. }));
        assert_eq!(closed, None);
    }
    proxy.close(ProxyEnd::Closed);
}

async fn connection_limit_one_lets_one_in_and_ends_with_the_reason(kind: Kind) {
    let Some(mut stack) = Stack::start(kind, 1, 3600).await else {
        return;
    };
    let proxy = stack.proxy().await;
    let mut events = proxy.events();
    // Two local connections at once: whichever goes first activates the
    // session, the other waits for that, then the worker refuses it
    // (limit 1).
    let address = proxy.local_addr();
    let try_echo = |seed: u8| async move {
        let mut stream = TcpStream::connect(address).await.unwrap();
        let data = payload(1000, seed);
        stream.write_all(&data).await.unwrap();
        let mut back = vec![0u8; data.len()];
        let read = tokio::time::timeout(WAIT, stream.read_exact(&mut back))
            .await
            .expect("an echo or an end in time");
        match read {
            Ok(_) => {
                assert!(back == data, "the echo differs");
                Some(stream)
            }
            Err(_) => None,
        }
    };
    let (a, b) = tokio::join!(try_echo(1), try_echo(2));
    let first = match (a, b) {
        (Some(open), None) | (None, Some(open)) => open,
        (a, b) => panic!(
            "one connection must get in: {:?} {:?}",
            a.is_some(),
            b.is_some()
        ),
    };
    // The session is marked used up, and a refused connection (if the
    // worker saw it) says why.
    let exhausted = wait_event(&mut events, |e| matches!(e, ProxyEvent::Exhausted { .. })).await;
    assert!(
        matches!(
            &exhausted,
            ProxyEvent::Exhausted {
                reason: ProxyEnd::ConnectionLimit,
                ..
            }
        ),
        "{exhausted:?}"
    );
    while let Ok(event) = events.try_recv() {
        if let ProxyEvent::ConnectionFailed { reason, .. } = event {
            assert!(
                reason.contains("unable to authorize connection"),
                "{reason}"
            );
        }
    }
    // The proxy stays up while the first connection is open…
    assert_eq!(proxy.end_reason(), None);
    drop(first);
    // …and says why it ends: the limit, not an expiry.
    assert_eq!(ended(&proxy).await, ProxyEnd::ConnectionLimit);
    // A third connection is not accepted.
    let third = TcpStream::connect(proxy.local_addr()).await;
    if let Ok(mut third) = third {
        let n = tokio::time::timeout(WAIT, third.read(&mut [0u8; 1]))
            .await
            .unwrap();
        assert!(matches!(n, Ok(0) | Err(_)));
    }
}

async fn a_session_taken_by_another_client_is_in_use(kind: Kind) {
    let Some(mut stack) = Stack::start(kind, -1, 3600).await else {
        return;
    };
    let data = stack.authorize().await;
    let session_id = data.session_id.clone();
    // Another client activates the session first, with its own TOFU token.
    match kind {
        Kind::Rust => stack
            .fake
            .controller
            .cluster()
            .activate(&session_id, "ABCDEFGHIJKLMNOPQRST")
            .await
            .unwrap(),
        Kind::Go => {
            let binary = require_peer("boundary-go", boundary_go::boundary_go).unwrap();
            let credentials = stack
                .fake
                .controller
                .cluster()
                .lookup_session(&session_id)
                .await
                .unwrap();
            let go = stack.go.as_ref().unwrap();
            let outcome = boundary_go::run_client(
                &binary,
                &go.address(),
                &credentials,
                &ClientRun::new("ABCDEFGHIJKLMNOPQRST"),
            )
            .await;
            assert_eq!(outcome.close_code, None, "{:?}", outcome.error);
        }
    }
    let proxy = start_proxy(data).await;
    let mut stream = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let mut buffer = [0u8; 1];
    let n = tokio::time::timeout(WAIT, stream.read(&mut buffer))
        .await
        .unwrap();
    assert!(matches!(n, Ok(0) | Err(_)));
    assert_eq!(ended(&proxy).await, ProxyEnd::InUse);
    assert!(ProxyEnd::InUse.to_string().contains("already in use"));
}

async fn cancel_through_the_worker(kind: Kind) {
    let Some(mut stack) = Stack::start(kind, -1, 3600).await else {
        return;
    };
    let proxy = stack.proxy().await;
    let data = payload(10, 9);
    assert!(echo(&proxy, &data).await == data);
    let route = proxy.current();
    route.cancel_via_worker().await.unwrap();
    match kind {
        Kind::Rust => {
            let session = stack.fake.controller.session(route.session_id()).unwrap();
            let status = format!("{:?}", session.status);
            assert!(status == "Canceling" || status == "Terminated", "{status}");
        }
        Kind::Go => {
            let line = stack
                .go_event(&format!("canceled {}", route.session_id()))
                .await;
            assert!(line.is_some(), "{:?}", stack.go.as_ref().unwrap().events());
        }
    }
    proxy.close(ProxyEnd::Closed);
}

/// The controller's cluster API with the latency of a real controller's
/// database on activation, which opens the window in which a second first
/// connection finds the session still pending ("refusing to activate
/// session", boundary#2362).
struct SlowActivation(Arc<dyn Cluster>);

#[async_trait::async_trait]
impl Cluster for SlowActivation {
    async fn lookup_session(&self, session_id: &str) -> Option<SessionCredentials> {
        self.0.lookup_session(session_id).await
    }
    async fn activate(&self, session_id: &str, tofu_token: &str) -> Result<(), ClusterError> {
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.0.activate(session_id, tofu_token).await
    }
    async fn authorize_connection(
        &self,
        session_id: &str,
        client: SocketAddr,
    ) -> Result<AuthorizedConnection, ClusterError> {
        self.0.authorize_connection(session_id, client).await
    }
    async fn connect_connection(
        &self,
        connection_id: &str,
        endpoint: SocketAddr,
    ) -> Result<(), ClusterError> {
        self.0.connect_connection(connection_id, endpoint).await
    }
    async fn close_connection(
        &self,
        connection_id: &str,
        bytes_up: u64,
        bytes_down: u64,
        reason: ClosedReason,
    ) {
        self.0
            .close_connection(connection_id, bytes_up, bytes_down, reason)
            .await;
    }
    async fn cancel_session(&self, session_id: &str) -> Result<(), ClusterError> {
        self.0.cancel_session(session_id).await
    }
}

async fn twenty_parallel_first_connections_all_succeed(kind: Kind) {
    let Some(mut stack) = Stack::start(kind, -1, 3600).await else {
        return;
    };
    let slow_worker = match kind {
        Kind::Rust => {
            let worker = FakeWorker::start(
                Arc::new(SlowActivation(stack.fake.controller.cluster())),
                WorkerOptions::default(),
            )
            .await;
            stack.fake.controller.set_worker_address(worker.address());
            Some(worker)
        }
        Kind::Go => None,
    };
    let proxy = stack.proxy().await;
    let mut tasks = Vec::new();
    for i in 0..20u8 {
        let proxy = proxy.clone();
        tasks.push(tokio::spawn(async move {
            let data = payload(4096, i);
            echo(&proxy, &data).await == data
        }));
    }
    for task in tasks {
        assert!(task.await.unwrap(), "{kind:?}: a connection's echo differs");
    }
    if let Some(worker) = slow_worker {
        let refused = worker
            .events()
            .into_iter()
            .find(|e| matches!(e, WorkerEvent::HandshakeClosed { .. }));
        assert_eq!(refused, None, "no connection lost the activation race");
        let accepted = worker
            .events()
            .into_iter()
            .filter(|e| matches!(e, WorkerEvent::HandshakeAccepted { .. }))
            .count();
        assert_eq!(accepted, 20);
    }
    proxy.close(ProxyEnd::Closed);
}

async fn wait_event(
    events: &mut tokio::sync::broadcast::Receiver<ProxyEvent>,
    matches: impl Fn(&ProxyEvent) -> bool,
) -> ProxyEvent {
    tokio::time::timeout(WAIT, async {
        loop {
            let event = events.recv().await.unwrap();
            if matches(&event) {
                return event;
            }
        }
    })
    .await
    .expect("the event in time")
}

macro_rules! both_workers {
    ($($name:ident),* $(,)?) => {
        mod rust_worker {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Kind::Rust).await;
                }
            )*
        }
        mod go_worker {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Kind::Go).await;
                }
            )*
        }
    };
}

both_workers!(
    first_connection_carries_100_kb_each_way,
    sixty_four_mib_both_ways_at_once,
    a_40_kb_write_goes_in_messages_an_old_worker_accepts,
    connection_limit_one_lets_one_in_and_ends_with_the_reason,
    a_session_taken_by_another_client_is_in_use,
    cancel_through_the_worker,
    twenty_parallel_first_connections_all_succeed,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_with_another_certificate_is_told_apart() {
    let mut stack = Stack::start(Kind::Rust, -1, 3600).await.unwrap();
    stack.fake.worker.set_faults(WorkerFaults {
        wrong_server_certificate: true,
        ..WorkerFaults::default()
    });
    let proxy = stack.proxy().await;
    let _stream = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let end = ended(&proxy).await;
    let ProxyEnd::Refused(why) = &end else {
        panic!("{end:?}")
    };
    assert!(
        why.contains("did not present the session certificate"),
        "{why}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_the_worker_does_not_know_is_unauthorized() {
    // The Go worker is never told about the session: it fails the TLS
    // handshake (internal_error), as a real worker does.
    let Some(stack) = Stack::start(Kind::Go, -1, 3600).await else {
        return;
    };
    let authorization = stack
        .client
        .authorize_session(&TargetRef::id(DEV_TARGET_ID), None)
        .await
        .unwrap();
    let data = AuthorizationData::decode(authorization.authorization_token.expose()).unwrap();
    let proxy = start_proxy(data).await;
    let _stream = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let end = ended(&proxy).await;
    let ProxyEnd::Refused(why) = &end else {
        panic!("{end:?}")
    };
    assert!(
        why.contains("did not accept the session's credentials"),
        "{why}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_at_its_expiration() {
    let mut stack = Stack::start(Kind::Rust, -1, 2).await.unwrap();
    let proxy = stack.proxy().await;
    let data = payload(100, 5);
    assert!(echo(&proxy, &data).await == data);
    assert!(proxy.current().expiration().is_some());
    assert_eq!(ended(&proxy).await, ProxyEnd::Expired);
}
