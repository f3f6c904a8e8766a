//! Where a live connection listens, through the manager and the loopback
//! tunnel double on real sockets: the caller's port, a port in use failing
//! at once with a clear error, and a resumed connection listening where the
//! dropped one did.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use session_core::{
    EndReason, InMemoryWorkspace, LiveOptions, ResumePolicy, Session, SessionEventKind,
    SessionManager, SessionStatus, SessionType, WorkspaceRepositoryExt,
};
use session_testkit::doubles::LoopbackTunnel;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn tunnel_type() -> SessionType {
    SessionType::Other("tunnel".into())
}

struct World {
    tunnel: Arc<LoopbackTunnel>,
    repository: Arc<InMemoryWorkspace>,
    manager: SessionManager,
}

async fn world() -> World {
    let tunnel = Arc::new(LoopbackTunnel::new(tunnel_type()).await.expect("echo"));
    let repository = Arc::new(InMemoryWorkspace::new());
    let manager = SessionManager::builder()
        .repository(repository.clone())
        .provider(tunnel.clone())
        .resume_policy(ResumePolicy::default().with_first_backoff(Duration::from_millis(10)))
        .build()
        .expect("manager");
    World {
        tunnel,
        repository,
        manager,
    }
}

async fn add(world: &World, name: &str) {
    let session = Session::new(name, tunnel_type()).expect("session");
    world.manager.add(session).await.expect("add");
}

/// A port that was free a moment ago.
async fn free_port() -> u16 {
    let probe = TcpListener::bind("127.0.0.1:0").await.expect("probe");
    probe.local_addr().expect("address").port()
}

async fn echo_through(address: SocketAddr, bytes: &[u8]) {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    let mut back = vec![0; bytes.len()];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut back))
        .await
        .expect("echo in time")
        .expect("read");
    assert_eq!(back, bytes);
}

#[tokio::test]
async fn the_callers_port_is_used() {
    let world = world().await;
    add(&world, "db").await;
    let port = free_port().await;
    let (_, handle) = world
        .manager
        .connect_with("db", LiveOptions::default().with_listen_port(port))
        .await
        .expect("connect");
    assert_eq!(
        handle.addresses(),
        [SocketAddr::from(([127, 0, 0, 1], port))]
    );
    echo_through(handle.addresses()[0], b"ping").await;
}

#[tokio::test]
async fn a_port_in_use_fails_at_once_and_leaves_the_session_inactive() {
    let world = world().await;
    add(&world, "db").await;
    let taken = TcpListener::bind("127.0.0.1:0").await.expect("taken");
    let address = taken.local_addr().expect("address");
    let error = tokio::time::timeout(
        Duration::from_secs(5),
        world
            .manager
            .connect_with("db", LiveOptions::default().with_listen(address)),
    )
    .await
    .expect("fails at once, never waits")
    .expect_err("the port is taken");
    let text = error.to_string();
    assert_eq!(error.category(), "invalid_input", "{text}");
    assert!(text.contains("address in use"), "{text}");
    assert!(text.contains(&address.to_string()), "{text}");
    assert!(text.contains("db"), "names the session: {text}");
    let stored = world.repository.find("db").await.expect("stored");
    assert_eq!(stored.status(), SessionStatus::Inactive);
    assert!(stored.last_error.is_some());
}

#[tokio::test]
async fn a_resumed_connection_listens_where_the_dropped_one_did() {
    let world = world().await;
    add(&world, "db").await;
    // No port asked for: the provider picks one, and the resume asks for it.
    let (session, first) = world.manager.connect("db").await.expect("connect");
    let address = first.addresses()[0];
    let mut events = world.manager.subscribe();
    assert!(
        world
            .tunnel
            .drop_connection(session.session_id, EndReason::NetworkLost("wifi".into()))
    );
    let resumed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let SessionEventKind::Resumed = events.recv().await.expect("event").kind {
                break;
            }
        }
    })
    .await;
    assert!(
        resumed.is_ok(),
        "the manager resumed the dropped connection"
    );
    let second = world.manager.live(session.session_id).expect("held again");
    assert!(!second.same_connection(&first));
    assert_eq!(second.addresses(), [address], "same address after resume");
    echo_through(address, b"still here").await;
    // A stop forgets the address: the next connect picks a port again.
    world.manager.stop("db").await.expect("stop");
    assert_eq!(world.tunnel.calls.get().1, 1, "one resume");
}

/// Two managers on one workspace file, as two processes: the one that does
/// not hold the connection sees it `active` while the other holds it, may
/// not take it, and re-attaches once the holder is gone.
#[tokio::test]
async fn another_holder_is_seen_through_the_workspace_file_and_not_robbed() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("ws.json");
    let tunnel = Arc::new(LoopbackTunnel::new(tunnel_type()).await.expect("echo"));
    let manager = || {
        SessionManager::builder()
            .repository(Arc::new(
                session_core::FsWorkspace::open(&path).expect("workspace"),
            ))
            .provider(tunnel.clone())
            .build()
            .expect("manager")
    };
    let holder = manager();
    let other = manager();
    let id = holder
        .add(Session::new("db", tunnel_type()).expect("session"))
        .await
        .expect("add")
        .session_id;
    let (_, handle) = holder.connect("db").await.expect("connect");

    let seen = other.find("db").await.expect("find");
    assert_eq!(
        seen.status(),
        SessionStatus::Active,
        "held by a live holder"
    );
    let refused = other
        .connect("db")
        .await
        .expect_err("not taken from its holder");
    assert!(
        refused.to_string().contains("connected in another process"),
        "{refused}"
    );
    assert!(
        handle.end_reason().is_none(),
        "the holder's connection is untouched"
    );
    echo_through(handle.addresses()[0], b"mine").await;

    // The holder goes away (as a process that dies: nothing is stopped).
    drop(holder);
    let seen = other.find("db").await.expect("find");
    assert_eq!(seen.status(), SessionStatus::Disconnected);
    let (session, again) = other.connect("db").await.expect("re-attach");
    assert_eq!(session.session_id, id);
    echo_through(again.addresses()[0], b"theirs now").await;
    other.stop("db").await.expect("stop");
}
