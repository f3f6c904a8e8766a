//! The core of `session-sdk`: one model and one trait over every kind of
//! session an infrastructure engineer juggles.
//!
//! - [`Session`], [`SessionId`], [`SessionType`], [`SessionStatus`]: the
//!   model, with the legal status transitions.
//! - [`SessionAction`]: start, stop and rotate, implemented by each provider
//!   crate (`session-aws`, `session-azure`, `session-redfish`,
//!   `session-boundary`).
//! - [`WorkspaceRepository`]: where sessions are stored, with optimistic
//!   concurrency; [`InMemoryWorkspace`] and [`FsWorkspace`] (one JSON file,
//!   atomic replace, cross-process lock).
//! - [`SecretStore`] and [`Secret`]: where credentials live, never in the
//!   workspace file.
//! - [`SessionManager`]: runs operations with persistence, single-flight and
//!   events, builds providers on first use, and hands out fresh sessions
//!   ([`SessionManager::ensure_active`]); [`RotationScheduler`] rotates
//!   before expiry.
//! - [`LiveHandle`], [`EndReason`], [`ResumePolicy`]: live sessions
//!   (tunnels). A provider with [`Capabilities::live_connection`] returns a
//!   handle from [`SessionAction::start_live`] / [`SessionAction::resume`];
//!   the manager holds it ([`SessionManager::connect`],
//!   [`SessionManager::connect_with`] and its [`LiveOptions`],
//!   [`SessionManager::live`]), marks it held for other processes
//!   ([`WorkspaceRepository::hold_live`]), records a dropped connection as
//!   `disconnected` and resumes it until a deadline, on the same local
//!   address ([`bind_listener`]). `sessionctl connect` is the command line
//!   for it.
//! - [`SessionManager::cancel`]: gives up a start, rotate or resume in
//!   progress, leaving a documented status.
//! - [`device_code`]: the RFC 8628 device sign-in shared by providers.
//! - [`redact`]: scrubbing secret values out of errors (a service may echo
//!   a password back in its error text).
//! - [`Clock`]: injected time ([`ManualClock`] for tests).
//!
//! This crate has no HTTP, TLS or cloud-SDK dependency (its only network
//! use is binding local listeners with Tokio); CI checks that with
//! `cargo tree`.
//!
//! # What start, stop and rotate mean for each session type
//!
//! This is the one copy of this table (the README points here).
//!
//! | type | start | stop | rotate |
//! |---|---|---|---|
//! | `awsIamUser` | `sts:GetSessionToken` signed with the long-term key from the secret store (with MFA serial and code if configured); write the temporary credentials to the sink (credentials-file profile, `credential_process` cache, or environment) | remove exactly the profile section / cache entry start wrote; forget the temporary credentials | a new `GetSessionToken` before `expiration`; replace the sink entry in one atomic write |
//! | `awsIamRoleChained` | start the parent if needed, then `sts:AssumeRole` signed with the parent's temporary credentials (RoleSessionName, ExternalId, MFA, ≤ 1 h when chained); write to the sink | remove the sink entry (the parent is left running) | refresh the parent if it is in its window, then `AssumeRole` again; replace the sink entry |
//! | `awsIamRoleFederated` | get a SAML assertion from the `SamlAssertionSource`, `sts:AssumeRoleWithSAML` (unsigned); write to the sink | remove the sink entry | a new assertion (re-running the IdP only when needed) and `AssumeRoleWithSAML`; replace the sink entry |
//! | `awsSsoRole` | SSO-OIDC device authorization (or the cached / refreshed token), `sso:GetRoleCredentials`; write to the sink | remove the sink entry (the SSO login itself stays, shared with the AWS CLI) | `GetRoleCredentials` again with the cached or refreshed access token; replace the sink entry |
//! | `azure` | Entra ID token: client credentials (app) or device code / refresh token (user); store the tokens; optionally the Azure CLI files | forget the access and refresh tokens and remove sink entries (Entra ID has no per-token revocation) | refresh-token grant (user) or client credentials again (app) before `expires_at − min_ttl` |
//! | `awsSsm` | `ssm:StartSession`, open the data-channel WebSocket and hold it (shell, port forward); `start_live` returns the [`LiveHandle`] | send `TerminateSession` on the channel and call the `TerminateSession` API; close the WebSocket | `Unsupported` for now; to come: transport rotation, `ssm:ResumeSession` and re-open the data channel with the new token, keeping sequence numbers (a fresh session needs stop + start) |
//! | `redfish` | discover `Links.Sessions`, POST `UserName`/`Password`, keep the `X-Auth-Token` (secret store) and the session URI from `Location` | `DELETE` the session URI; 401/404 mean it is already gone | create a new session, switch to its token, then delete the old one (delete first and retry when the BMC's session limit refuses) |
//! | `boundary` | `POST /v1/targets/{id}:authorize-session`, decode the authorization token, open the local `connect` proxy listener; `start_live` returns its [`LiveHandle`] | close the listener and connections and `POST /v1/sessions/{id}:cancel` | not supported for one Boundary session (its certificate and expiry are fixed): returns [`Error::Unsupported`]; stop then start gives a new authorization |
//!
//! `Capabilities` tells which of these a provider supports
//! (`rotate: false` for Boundary, `live_connection: true` for SSM and Boundary,
//! `requires_parent: true` for chained roles).
//!
//! # Status
//!
//! See [`SessionStatus`] for the transition table and how each provider's
//! native states map onto it.
//!
//! # Example
//!
//! ```
//! use session_core::{InMemoryWorkspace, Session, SessionType, WorkspaceRepository};
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let workspace = InMemoryWorkspace::new();
//! let session = Session::new("prod-admin", SessionType::AwsIamRoleChained)?
//!     .with_region("eu-west-1");
//! let stored = workspace.insert(session).await?;
//! assert_eq!(workspace.get(stored.session_id).await?.session_name, "prod-admin");
//! # Ok::<(), session_core::Error>(())
//! # }).unwrap();
//! ```

mod action;
mod blocking;
mod clock;
pub mod device_code;
mod error;
mod id;
pub mod import;
mod live;
mod manager;
// Crash-safe private files for the crates of this workspace (the AWS sink,
// the SSO cache, the secret store); not part of the supported API.
#[doc(hidden)]
pub mod private_file;
mod provider_config;
pub mod redact;
pub mod repository;
mod secret;
pub mod secret_store;
mod session;
mod session_type;
mod status;

pub use action::{ActionContext, Capabilities, Operation, SessionAction};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{BoxError, Error, ErrorChain, Result};
pub use id::SessionId;
pub use live::{
    EndReason, LiveEnd, LiveEvent, LiveHandle, LiveIo, LiveOptions, LiveStream, ResumePolicy,
    WindowSize, bind_listener,
};
pub use manager::{
    DEFAULT_MIN_TTL, EventOrigin, RotationPolicy, RotationScheduler, SchedulerHandle, SessionEvent,
    SessionEventKind, SessionLease, SessionManager, SessionManagerBuilder, SharedEvent,
    SharedEventKind,
};
pub use repository::{
    FsWorkspace, FsWorkspaceBuilder, InMemoryWorkspace, SessionLock, WORKSPACE_SCHEMA_VERSION,
    WorkspaceRepository, WorkspaceRepositoryExt,
};
pub use secret::Secret;
pub use secret_store::{EncryptedFileSecretStore, InMemorySecretStore, SecretKey, SecretStore};
pub use session::{LastError, MAX_SESSION_NAME_CHARS, ProviderConfig, Session};
pub use session_type::SessionType;
pub use status::SessionStatus;
