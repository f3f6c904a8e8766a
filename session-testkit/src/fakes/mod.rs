//! In-process fakes of cloud HTTP APIs that have no public emulator.
//!
//! Each fake serves the real wire protocol (paths, JSON member names, header
//! and query locations, error shapes and status codes, taken from the
//! official API models) on `127.0.0.1:0`, so the official SDK clients and our
//! own clients can be pointed at it through their endpoint URL. Tests drive
//! and inspect the fake's state directly.
//!
//! - [`aws_federation::FederationFake`]: the AWS federation endpoint
//!   (`getSigninToken` and `login`, the console sign-in URL), with a
//!   pluggable check of the credentials.
//! - [`sso::SsoFake`]: AWS IAM Identity Center, both the SSO-OIDC API
//!   (client registration, device authorization, tokens) and the SSO portal
//!   API (role credentials, accounts, roles, logout).
//! - [`ssm::SsmControlFake`]: the AWS Systems Manager Session Manager
//!   control plane (`StartSession`, `ResumeSession`, `TerminateSession`,
//!   `DescribeSessions`), AWS JSON 1.1.
//! - [`ssm_agent::SsmAgentFake`]: the Session Manager data channel (MGS and
//!   agent, WebSocket + ClientMessage + smux v1), plugged into
//!   [`ssm::SsmControlFake`].
//! - [`boundary`]: a HashiCorp Boundary controller (REST) and worker
//!   (TLS 1.3 + WebSocket proxy), sharing one session table.
//! - [`latency_proxy::LatencyProxy`]: a TCP proxy that adds a fixed delay
//!   each way without limiting bandwidth (a round-trip time in front of a
//!   loopback fake).
//! - [`echo::EchoService`]: a hostile service whose 400 answers echo the
//!   request body (a Redfish login gets its password back), for leak tests.

pub mod aws_federation;
pub mod boundary;
pub mod echo;
pub mod latency_proxy;
pub mod ssm;
pub mod ssm_agent;
pub mod sso;

pub use echo::EchoService;
pub use ssm::SsmControlFake;
pub use ssm_agent::SsmAgentFake;
pub use sso::SsoFake;
