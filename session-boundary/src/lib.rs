//! HashiCorp Boundary sessions for `session-sdk`: the `boundary` session
//! type, a client of the controller's REST API, and the local proxy of
//! `boundary connect`.
//!
//! # The `boundary` session type
//!
//! [`BoundaryProvider`] implements [`session_core::SessionAction`] for a
//! target behind Boundary, as a live session (a connection that outlives
//! the call that opened it; use it through
//! [`SessionManager::connect`](session_core::SessionManager::connect) or
//! `sessionctl connect`):
//!
//! - **settings** ([`BoundaryConfig`]): the controller, a password auth
//!   method and login name, the target (id, or name and project), an
//!   optional host, the local listen address. The password lives in the
//!   secret store ([`secret_names::PASSWORD`]), or is asked for through a
//!   [`PasswordPrompt`].
//! - **start**: a login (the stored auth token while it lasts, keyed by
//!   controller and auth method; a 401 logs in again once),
//!   `authorize-session`, the authorization token decoded and checked
//!   ([`AuthorizationData`]), and a local listener, bound before anything
//!   is authorized when its port is given. Each local connection is carried
//!   through the worker ([`proxy::Proxy`]).
//! - **while connected**: the session's status is read every 5 s; a session
//!   canceled or terminated on the controller ends the connection with the
//!   controller's reason. Rotations, refused connections, a used-up
//!   session, the worker's close reasons and a coming expiry are reported
//!   as [`session_core::LiveEvent::Notice`].
//! - **stop**: cancel through the worker (3 s), then through the
//!   controller, then wait until the controller shows it canceling.
//! - **rotate** (make-before-break): a new session on the same listener;
//!   open connections finish on the old one, which is then canceled.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use session_boundary::{BoundaryConfig, BoundaryProvider, secret_names};
//! use session_core::{
//!     InMemorySecretStore, InMemoryWorkspace, Secret, SecretKey, SecretStore, Session,
//!     SessionManager, SessionType,
//! };
//! # async fn demo() -> session_core::Result<()> {
//! let secrets = Arc::new(InMemorySecretStore::new());
//! let manager = SessionManager::builder()
//!     .repository(Arc::new(InMemoryWorkspace::new()))
//!     .secrets(secrets.clone())
//!     .provider(Arc::new(BoundaryProvider::new()))
//!     .build()?;
//! let config = BoundaryConfig::new("https://boundary.example.com:9200", "ampw_1234567890", "dba")
//!     .with_target_name("postgres", "p_1234567890");
//! let session = manager
//!     .add(Session::new("db", SessionType::Boundary)?.with_config(&config)?)
//!     .await?;
//! let key = SecretKey::new(session.session_id, secret_names::PASSWORD)?;
//! secrets.put(&key, &Secret::new("…")).await?;
//! let (_session, handle) = manager.connect("db").await?;
//! println!("psql -h 127.0.0.1 -p {}", handle.addresses()[0].port());
//! let why = handle.ended().await; // canceled, expired, limit, or stopped
//! println!("ended: {why}");
//! # Ok(())
//! # }
//! ```
//!
//! `cargo run --example boundary_connect --features boundary` (from the
//! workspace root) runs a complete session against the fakes of
//! `session-testkit`.
//!
//! # Building blocks
//!
//! - [`api`]: [`api::ControllerClient`], the controller's REST API
//!   (password login and logout, targets, authorize-session, sessions with
//!   pagination and refresh, cancel with the version check), errors mapped
//!   onto the core's categories with the controller's field names.
//! - [`proxy`]: the local proxy on its own, for a caller that authorizes
//!   sessions itself.
//! - [`token`] and [`handshake`]: the authorization token and the
//!   worker handshake, checked against the golden vectors of the protocol
//!   reference.
//!
//! Not supported: brokered credentials (returned by `authorize-session` but
//! not injected), OIDC and LDAP auth methods, and canceling through the
//! worker a session whose proxy runs in another process (`stop` from there
//! cancels through the controller).

pub mod api;
mod config;
pub mod handshake;
mod login;
mod provider;
pub mod proxy;
pub mod secret_names;
pub mod token;

pub use config::{BoundaryConfig, BoundaryState};
pub use login::PasswordPrompt;
pub use provider::BoundaryProvider;
pub use token::{AuthorizationData, SessionKey, TokenError};
