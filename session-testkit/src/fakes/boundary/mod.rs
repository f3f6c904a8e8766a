//! A fake HashiCorp Boundary: controller REST API and worker proxy.
//!
//! Written from `boundary.md` (§1, §2, §4, §6) and Boundary's official
//! OpenAPI document (v0.13.1), never from `session-boundary`'s code, so that
//! the client is checked against an independent reading of the protocol.
//!
//! - [`cert`]: session certificates as the controller issues them.
//! - [`cluster`]: what a worker asks its controller (the seam between the
//!   two fakes, as Boundary's cluster API is between the real ones).
//! - [`controller`]: the controller's REST API and session table.
//! - [`worker`]: the worker's TLS 1.3 + WebSocket proxy.
//! - [`FakeBoundary`]: the two together, with an echo server as target.

pub mod cert;
pub mod cluster;
pub mod controller;
pub mod worker;

pub use controller::{FakeController, FakeControllerBuilder, FakeTarget};
pub use worker::{FakeWorker, MemoryCluster, WorkerOptions};

use std::net::{Ipv4Addr, SocketAddr};

use tokio::net::TcpListener;

/// A whole fake Boundary on loopback: a controller, a worker that asks it
/// (through [`FakeController::cluster`]) and whose address the controller
/// puts in its tokens, and an echo server as the targets' endpoint.
pub struct FakeBoundary {
    /// The controller.
    pub controller: FakeController,
    /// The worker.
    pub worker: FakeWorker,
    /// The echo server playing the target.
    pub endpoint: SocketAddr,
}

impl FakeBoundary {
    /// The `boundary dev` shape: auth method `ampw_1234567890` with
    /// `admin` / `password`, target `ttcp_1234567890` in `p_1234567890`
    /// (unlimited connections, 8 h sessions) reaching an echo server.
    pub async fn start() -> Self {
        Self::start_with(
            |builder, endpoint| builder.target(FakeTarget::dev(endpoint)),
            WorkerOptions::default(),
        )
        .await
    }

    /// A fake Boundary whose controller `configure` sets up (its targets
    /// get the echo server's address, e.g. `FakeTarget::dev(endpoint)`),
    /// and whose worker runs with `worker_options` (whose clock the
    /// controller shares).
    pub async fn start_with(
        configure: impl FnOnce(FakeControllerBuilder, SocketAddr) -> FakeControllerBuilder,
        worker_options: WorkerOptions,
    ) -> Self {
        let endpoint = echo_server().await;
        let builder = FakeController::builder().clock(worker_options.clock.clone());
        let controller = configure(builder, endpoint).start().await;
        let worker = FakeWorker::start(controller.cluster(), worker_options).await;
        controller.set_worker_address(worker.address());
        Self {
            controller,
            worker,
            endpoint,
        }
    }
}

/// A loopback TCP echo server (the target of a fake session); it runs until
/// the runtime ends.
pub async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind the echo server");
    let address = listener.local_addr().expect("the echo server's address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = stream.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    address
}
