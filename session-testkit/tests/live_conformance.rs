//! The live sections of the conformance suites, run on the loopback tunnel
//! double directly, boxed and shared, plus bytes through its tunnel.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use session_core::{
    ActionContext, EndReason, InMemorySecretStore, ManualClock, Session, SessionAction, SessionType,
};
use session_testkit::doubles::LoopbackTunnel;
use session_testkit::suites::{ActionFixture, LiveFixture, action_conformance, live_conformance};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn tunnel_type() -> SessionType {
    SessionType::Other("tunnel".into())
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        time::macros::datetime!(2030-01-01 0:00 UTC),
    ))
}

async fn tunnel() -> Arc<LoopbackTunnel> {
    Arc::new(
        LoopbackTunnel::new(tunnel_type())
            .await
            .expect("echo server"),
    )
}

fn action_fixture(tunnel: Arc<LoopbackTunnel>) -> ActionFixture {
    let clock = clock();
    ActionFixture {
        session: Session::new("tunnel", tunnel_type()).expect("session"),
        failing_session: None,
        ctx: ActionContext::new(clock.clone(), Arc::new(InMemorySecretStore::new())),
        clock,
        probe: Arc::new(move |_ctx: ActionContext, session: Session| {
            let open = tunnel.is_open(session.session_id);
            async move { open.then(|| "open".to_owned()) }.boxed()
        }),
        pause_before_rotate: Duration::ZERO,
    }
}

fn live_fixture(tunnel: Arc<LoopbackTunnel>) -> LiveFixture {
    LiveFixture {
        session: Session::new("tunnel", tunnel_type()).expect("session"),
        clock: clock(),
        drop_connection: Arc::new(move |id| {
            tunnel.drop_connection(id, EndReason::NetworkLost("cable pulled".into()))
        }),
    }
}

#[tokio::test]
async fn loopback_tunnel_direct() {
    let tunnel = tunnel().await;
    action_conformance(&*tunnel, &action_fixture(tunnel.clone())).await;
}

#[tokio::test]
async fn loopback_tunnel_boxed() {
    let tunnel = tunnel().await;
    let boxed: Box<dyn SessionAction> = Box::new(tunnel.clone());
    action_conformance(&boxed, &action_fixture(tunnel)).await;
}

#[tokio::test]
async fn loopback_tunnel_without_resume() {
    let tunnel = Arc::new(
        LoopbackTunnel::new(tunnel_type())
            .await
            .expect("echo server")
            .with_resume(false),
    );
    action_conformance(&*tunnel, &action_fixture(tunnel.clone())).await;
    live_conformance(tunnel.clone(), &live_fixture(tunnel.clone())).await;
    // Two starts in action_conformance (start, start_live), the connect of
    // live_conformance, and its resume, which falls back to start_live.
    let (start, resume, _) = tunnel.calls.get();
    assert_eq!(
        start, 4,
        "without resume, the manager re-attaches with start_live"
    );
    assert_eq!(resume, 2, "resume was asked first each time");
}

#[tokio::test]
async fn loopback_tunnel_live_direct() {
    let tunnel = tunnel().await;
    live_conformance(tunnel.clone(), &live_fixture(tunnel)).await;
}

#[tokio::test]
async fn loopback_tunnel_live_boxed() {
    let tunnel = tunnel().await;
    let boxed: Box<dyn SessionAction> = Box::new(tunnel.clone());
    live_conformance(Arc::new(boxed), &live_fixture(tunnel)).await;
}

/// The handle's address really carries bytes, three connections at once.
#[tokio::test]
async fn bytes_go_through_the_tunnel() {
    let tunnel = tunnel().await;
    let fixture = action_fixture(tunnel.clone());
    let pending = {
        let mut s = fixture.session.clone();
        s.transition(
            session_core::SessionStatus::Pending,
            time::macros::datetime!(2030-01-01 0:00 UTC),
        )
        .expect("pending");
        s
    };
    let (_, handle) = tunnel
        .start_live(&fixture.ctx, &pending)
        .await
        .expect("start");
    let address = handle.addresses()[0];
    let mut streams = Vec::new();
    for _ in 0..3 {
        streams.push(
            tokio::net::TcpStream::connect(address)
                .await
                .expect("connect"),
        );
    }
    for (n, stream) in streams.iter_mut().enumerate() {
        let message = format!("hello {n}");
        stream.write_all(message.as_bytes()).await.expect("write");
        let mut back = vec![0; message.len()];
        stream.read_exact(&mut back).await.expect("read");
        assert_eq!(back, message.as_bytes());
    }
    assert!(tunnel.drop_connection(pending.session_id, EndReason::NetworkLost("test".into())));
    assert_eq!(
        handle.end_reason(),
        Some(EndReason::NetworkLost("test".into()))
    );
    let mut closed = [0u8; 1];
    let read = streams[0].read(&mut closed).await;
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "a dropped tunnel closes its connections: {read:?}"
    );
}
