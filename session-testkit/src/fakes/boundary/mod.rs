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

pub mod cert;
pub mod cluster;
pub mod controller;
pub mod worker;

pub use controller::{FakeController, FakeControllerBuilder, FakeTarget};
