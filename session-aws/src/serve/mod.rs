//! Local credential endpoints: an AWS session's credentials served over
//! HTTP on the loopback interface, the way the AWS SDKs fetch them inside a
//! container (the ECS container-credentials endpoint) or on an instance
//! (IMDSv2).
//!
//! Environment variables (`AWS_ACCESS_KEY_ID`, …) never change once a child
//! has started, so a long-running child outlives the credentials it was
//! given. An SDK pointed at one of these endpoints asks again whenever its
//! copy nears expiry (botocore: when less than 15 minutes are left), and each
//! request asks the [`CredentialSource`] — typically a
//! [`SessionCredentialsProvider`], which rotates the session when it is due.
//! The child therefore keeps working across rotations.
//!
//! # Endpoints
//!
//! | endpoint | enable with | client environment ([`CredentialServerHandle::environment`]) |
//! |---|---|---|
//! | ECS container credentials: `GET` [`ECS_PATH`] with `Authorization: <token>` | [`CredentialServerBuilder::ecs`] | `AWS_CONTAINER_CREDENTIALS_FULL_URI`, `AWS_CONTAINER_AUTHORIZATION_TOKEN` |
//! | IMDSv2: `PUT /latest/api/token`, then `GET /latest/meta-data/iam/security-credentials/[<role>]` with `X-aws-ec2-metadata-token` | [`CredentialServerBuilder::imds`] | `AWS_EC2_METADATA_SERVICE_ENDPOINT`, `AWS_EC2_METADATA_DISABLED=false` |
//! | IMDSv2 region: `GET /latest/meta-data/placement/region` and `/latest/dynamic/instance-identity/document` (`{"region": …}` only) | [`CredentialServerBuilder::imds`] and [`region`](CredentialServerBuilder::region) | as above |
//!
//! Prefer the ECS endpoint: it is authenticated by a token only the child
//! knows. The IMDS endpoint is for tools that only know instance metadata;
//! any local process can get an IMDSv2 token, so it protects nothing beyond
//! the loopback and `Host` checks below. When both are enabled, the SDKs'
//! default chains (botocore, the AWS CLI, the Rust SDK) try the container
//! provider before instance metadata, so a child given both sets of
//! variables uses the ECS endpoint.
//!
//! # Protections
//!
//! - The server listens on a loopback address only ([`CredentialServerBuilder::build`]
//!   refuses any other) and answers only peers whose address is loopback.
//! - Every request must carry a `Host` of `localhost`, a loopback IP literal
//!   (`127.0.0.1`, `[::1]`) and, if it names a port, this server's port;
//!   anything else gets 403. This is the DNS-rebinding guard: a web page
//!   whose own name resolves to 127.0.0.1 sends its own name as `Host`.
//! - The ECS `Authorization` value is compared in constant time; a missing
//!   one gets 401, a wrong one 403, and neither answer repeats what was sent.
//! - IMDSv2 tokens are random, expire after the TTL the client asked for
//!   (measured on the injected [`Clock`]), and at most [`MAX_IMDS_TOKENS`]
//!   are kept. A token `PUT` carrying `X-Forwarded-For` is refused, as real
//!   IMDS does, so a forwarding proxy cannot obtain one. IMDSv1 (a `GET`
//!   without a token) is refused unless [`CredentialServerBuilder::allow_imds_v1`].
//! - Only temporary credentials (with a session token and an expiry) are
//!   served; a source that returns long-term keys gets a 500.
//! - Secrets (keys, session tokens, the authorization token, IMDS tokens)
//!   appear only in the credential responses and the IMDS token response:
//!   never in `Debug` output, logs (requests are logged at `debug` by method,
//!   path and status) or error bodies. A source error is answered with 500
//!   and the error's message, which by [`session_core::Error`]'s contract
//!   holds no secret.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use session_aws::SessionCredentialsProvider;
//! use session_aws::serve::CredentialServer;
//!
//! # async fn demo(manager: session_core::SessionManager) -> session_core::Result<()> {
//! // Rotate when less than 20 minutes are left, so that what the endpoint
//! // hands out always has more than botocore's 15-minute refresh window.
//! let source = SessionCredentialsProvider::new(manager, "dev-admin")
//!     .with_min_ttl(Duration::from_secs(20 * 60));
//! let server = CredentialServer::builder(source).ecs().build()?.start().await?;
//!
//! let status = tokio::process::Command::new("aws")
//!     .args(["sts", "get-caller-identity"])
//!     .env_remove("AWS_ACCESS_KEY_ID")
//!     .env_remove("AWS_SECRET_ACCESS_KEY")
//!     .env_remove("AWS_SESSION_TOKEN")
//!     .env_remove("AWS_PROFILE")
//!     .envs(server.environment())
//!     .status()
//!     .await
//!     .expect("run aws");
//! server.shutdown().await?;
//! # let _ = status;
//! # Ok(())
//! # }
//! ```
//!
//! # Limits
//!
//! Plain HTTP/1.1 only (the SDKs allow plain HTTP for loopback). Of
//! instance metadata, only the IAM credential paths and, when a
//! [`region`](CredentialServerBuilder::region) is given, the region are
//! served. The SDKs for Rust and Java read a region there when none is
//! configured, the Go SDK (v2) when asked (`WithEC2IMDSRegion`); botocore
//! (boto3, the AWS CLI) never does, so give such a child `AWS_REGION` too.
//! On shutdown the listener closes at once;
//! requests already being answered may finish, for up to
//! [`SHUTDOWN_GRACE`] when [`CredentialServerHandle::shutdown`] waits for them.

mod ecs;
mod guard;
mod imds;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, put};
use base64::Engine as _;
use session_core::{Clock, Error, Result, Secret, SystemClock};
use time::OffsetDateTime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{AwsCredentials, SessionCredentialsProvider};

/// The path of the ECS container-credentials endpoint.
pub const ECS_PATH: &str = "/ecs/credentials";

/// The role name the IMDS endpoint lists unless
/// [`CredentialServerBuilder::role_name`] says otherwise.
pub const DEFAULT_ROLE_NAME: &str = "sessionctl";

/// The address the server binds unless [`CredentialServerBuilder::bind`]
/// says otherwise: 127.0.0.1 on a port the system picks.
pub const DEFAULT_BIND: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// The longest IMDSv2 token lifetime a client may ask for, in seconds (six
/// hours, as on EC2).
pub const MAX_IMDS_TOKEN_TTL_SECONDS: u32 = 21_600;

/// How many IMDSv2 tokens are kept at once. botocore asks for a new token
/// each time it refreshes, each valid for six hours; past this many, the
/// token closest to expiry is forgotten (its holder gets 401 and asks for a
/// new one).
pub const MAX_IMDS_TOKENS: usize = 512;

/// The shortest [`CredentialServerBuilder::authorization_token`] accepted,
/// in characters. The generated one is 43 (32 random bytes).
pub const MIN_AUTHORIZATION_TOKEN_LEN: usize = 32;

/// How long [`CredentialServerHandle::shutdown`] waits for requests being
/// answered before it stops waiting.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Random bytes in a generated token (ECS authorization token, IMDSv2
/// token): 256 bits, more than the 30 bytes the reference asks for.
const TOKEN_BYTES: usize = 32;

/// Where the served credentials come from. Each request to a credential
/// path calls [`credentials`](CredentialSource::credentials) once; caching
/// and rotation are the source's business.
#[async_trait::async_trait]
pub trait CredentialSource: Send + Sync {
    /// The credentials to hand out now.
    ///
    /// # Errors
    ///
    /// Whatever prevents getting them. The endpoints answer 500 with the
    /// error's [category](Error::category) and message, so the message must
    /// not hold a secret (the contract of [`session_core::Error`]).
    async fn credentials(&self) -> Result<AwsCredentials>;
}

/// The session's issued credentials, started or rotated as needed
/// ([`SessionCredentialsProvider::credentials`]).
#[async_trait::async_trait]
impl CredentialSource for SessionCredentialsProvider {
    async fn credentials(&self) -> Result<AwsCredentials> {
        SessionCredentialsProvider::credentials(self).await
    }
}

#[async_trait::async_trait]
impl<T: CredentialSource + ?Sized> CredentialSource for Arc<T> {
    async fn credentials(&self) -> Result<AwsCredentials> {
        T::credentials(self).await
    }
}

/// Options for a [`CredentialServer`]; from [`CredentialServer::builder`].
/// Nothing is checked until [`build`](Self::build).
#[must_use = "a builder does nothing until `build`"]
pub struct CredentialServerBuilder {
    source: Arc<dyn CredentialSource>,
    ecs: bool,
    imds: bool,
    allow_imds_v1: bool,
    role_name: String,
    region: Option<String>,
    bind: SocketAddr,
    authorization_token: Option<Secret>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for CredentialServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialServerBuilder")
            .field("ecs", &self.ecs)
            .field("imds", &self.imds)
            .field("allow_imds_v1", &self.allow_imds_v1)
            .field("role_name", &self.role_name)
            .field("region", &self.region)
            .field("bind", &self.bind)
            .field("authorization_token", &self.authorization_token)
            .finish_non_exhaustive()
    }
}

impl CredentialServerBuilder {
    /// Serves the ECS container-credentials endpoint at [`ECS_PATH`].
    pub fn ecs(mut self) -> Self {
        self.ecs = true;
        self
    }

    /// Serves the IMDSv2 credential paths under `/latest/`.
    pub fn imds(mut self) -> Self {
        self.imds = true;
        self
    }

    /// Whether IMDS answers a `GET` that carries no token (IMDSv1). Default
    /// `false`: such a request gets 401. A request with a token that is
    /// unknown or expired gets 401 either way.
    pub fn allow_imds_v1(mut self, allow: bool) -> Self {
        self.allow_imds_v1 = allow;
        self
    }

    /// The role name IMDS lists under `iam/security-credentials/` (default
    /// [`DEFAULT_ROLE_NAME`]). It must be an IAM role name: 1 to 64 of
    /// letters, digits and `+=,.@_-`.
    pub fn role_name(mut self, name: impl Into<String>) -> Self {
        self.role_name = name.into();
        self
    }

    /// The region IMDS reports at `/latest/meta-data/placement/region` and
    /// as the `region` of `/latest/dynamic/instance-identity/document`
    /// (default: none; those paths then answer 404, as for anything not
    /// served). A region name like `eu-west-1`.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// The address to listen on (default [`DEFAULT_BIND`]). It must be a
    /// loopback address; port 0 lets the system pick.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// The token ECS clients must send as `Authorization`. Default: 32
    /// random bytes from the operating system, base64url without padding.
    /// A given token must be at least [`MIN_AUTHORIZATION_TOKEN_LEN`]
    /// visible ASCII characters (no spaces or line breaks, which cannot be
    /// sent unchanged in a header).
    pub fn authorization_token(mut self, token: Secret) -> Self {
        self.authorization_token = Some(token);
        self
    }

    /// The clock IMDSv2 token expiry is measured on (default
    /// [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Checks the options.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming the option when neither endpoint is
    /// enabled (`endpoints`), the bind address is not loopback (`bind`), the
    /// role name is not an IAM role name (`role_name`), the region is not a
    /// region name (`region`) or the authorization
    /// token is too short or has characters a header cannot carry
    /// (`authorization_token`); [`Error::Provider`] when no random token can
    /// be drawn from the operating system.
    pub fn build(self) -> Result<CredentialServer> {
        if !self.ecs && !self.imds {
            return Err(Error::invalid_input(
                "endpoints",
                "enable at least one endpoint: ecs() or imds()",
            ));
        }
        if !self.bind.ip().to_canonical().is_loopback() {
            return Err(Error::invalid_input(
                "bind",
                format!(
                    "{} is not a loopback address; the credential endpoints must only be \
                     reachable from this machine (use 127.0.0.1 or [::1])",
                    self.bind
                ),
            ));
        }
        validate_role_name(&self.role_name)?;
        crate::client::check_region(self.region.as_deref())?;
        let authorization_token = match self.authorization_token {
            Some(token) => {
                validate_authorization_token(&token)?;
                token
            }
            None => random_token("authorization token")?,
        };
        Ok(CredentialServer {
            source: self.source,
            ecs: self.ecs,
            imds: self.imds,
            allow_imds_v1: self.allow_imds_v1,
            role_name: self.role_name,
            region: self.region,
            bind: self.bind,
            authorization_token,
            clock: self.clock,
        })
    }
}

/// A checked server configuration: [`start`](Self::start) it. From
/// [`CredentialServer::builder`].
pub struct CredentialServer {
    source: Arc<dyn CredentialSource>,
    ecs: bool,
    imds: bool,
    allow_imds_v1: bool,
    role_name: String,
    region: Option<String>,
    bind: SocketAddr,
    authorization_token: Secret,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for CredentialServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialServer")
            .field("ecs", &self.ecs)
            .field("imds", &self.imds)
            .field("allow_imds_v1", &self.allow_imds_v1)
            .field("role_name", &self.role_name)
            .field("region", &self.region)
            .field("bind", &self.bind)
            .field("authorization_token", &self.authorization_token)
            .finish_non_exhaustive()
    }
}

impl CredentialServer {
    /// Starts configuring a server that hands out `source`'s credentials.
    /// Enable at least one endpoint ([`ecs`](CredentialServerBuilder::ecs),
    /// [`imds`](CredentialServerBuilder::imds)).
    pub fn builder(source: impl CredentialSource + 'static) -> CredentialServerBuilder {
        CredentialServerBuilder {
            source: Arc::new(source),
            ecs: false,
            imds: false,
            allow_imds_v1: false,
            role_name: DEFAULT_ROLE_NAME.to_owned(),
            region: None,
            bind: DEFAULT_BIND,
            authorization_token: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// The token ECS clients must send as `Authorization`.
    pub fn authorization_token(&self) -> &Secret {
        &self.authorization_token
    }

    /// Binds the address and serves in a background task of the current
    /// Tokio runtime until [`CredentialServerHandle::shutdown`] or until the
    /// handle is dropped.
    ///
    /// # Errors
    ///
    /// [`Error::Provider`] when the address cannot be bound (in use, not an
    /// address of this machine).
    pub async fn start(self) -> Result<CredentialServerHandle> {
        let target = format!("credential server on {}", self.bind);
        let listener = tokio::net::TcpListener::bind(self.bind)
            .await
            .map_err(|e| Error::provider_caused_by("aws-serve", &target, "cannot listen", e))?;
        let local_addr = listener.local_addr().map_err(|e| {
            Error::provider_caused_by("aws-serve", &target, "cannot read the bound address", e)
        })?;
        let shared = Arc::new(Shared {
            source: self.source,
            clock: self.clock,
            local_addr,
            ecs_token: self.ecs.then(|| self.authorization_token.clone()),
            imds: self
                .imds
                .then(|| imds::Imds::new(self.role_name, self.region, self.allow_imds_v1)),
            last_updated: Mutex::new(None),
        });
        let (stop, task) = spawn(listener, router(shared));
        tracing::debug!(%local_addr, ecs = self.ecs, imds = self.imds, "credential server listening");
        Ok(CredentialServerHandle {
            local_addr,
            ecs: self.ecs,
            imds: self.imds,
            authorization_token: self.authorization_token,
            stop: Some(stop),
            task: Some(task),
        })
    }
}

/// A running [`CredentialServer`]. Dropping it stops the server as
/// [`shutdown`](Self::shutdown) does, without waiting.
pub struct CredentialServerHandle {
    local_addr: SocketAddr,
    ecs: bool,
    imds: bool,
    authorization_token: Secret,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl fmt::Debug for CredentialServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialServerHandle")
            .field("local_addr", &self.local_addr)
            .field("ecs", &self.ecs)
            .field("imds", &self.imds)
            .field("authorization_token", &self.authorization_token)
            .finish_non_exhaustive()
    }
}

impl CredentialServerHandle {
    /// The address the server listens on (with the port the system picked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://<ip>:<port>/ecs/credentials`, the value of
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI`; `None` when the ECS endpoint is
    /// not enabled.
    pub fn ecs_full_uri(&self) -> Option<String> {
        self.ecs
            .then(|| format!("http://{}{ECS_PATH}", self.local_addr))
    }

    /// The token ECS clients must send as `Authorization` (the value of
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN`).
    pub fn authorization_token(&self) -> &Secret {
        &self.authorization_token
    }

    /// `http://<ip>:<port>`, the value of `AWS_EC2_METADATA_SERVICE_ENDPOINT`;
    /// `None` when the IMDS endpoint is not enabled.
    pub fn imds_endpoint(&self) -> Option<String> {
        self.imds.then(|| format!("http://{}", self.local_addr))
    }

    /// The environment variables that point a child's AWS SDK here:
    ///
    /// - ECS: `AWS_CONTAINER_CREDENTIALS_FULL_URI` and
    ///   `AWS_CONTAINER_AUTHORIZATION_TOKEN` (the token itself: hand the
    ///   list to the child, do not log it);
    /// - IMDS: `AWS_EC2_METADATA_SERVICE_ENDPOINT` and
    ///   `AWS_EC2_METADATA_DISABLED=false`.
    ///
    /// With both, the SDKs use the ECS endpoint (their default chains try
    /// container credentials before instance metadata). The child must not
    /// also get static keys (`AWS_ACCESS_KEY_ID`, …) or a profile, which come
    /// earlier in those chains.
    pub fn environment(&self) -> Vec<(&'static str, String)> {
        let mut vars = Vec::new();
        if let Some(uri) = self.ecs_full_uri() {
            vars.push(("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri));
            vars.push((
                "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                self.authorization_token.expose().to_owned(),
            ));
        }
        if let Some(endpoint) = self.imds_endpoint() {
            vars.push(("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint));
            vars.push(("AWS_EC2_METADATA_DISABLED", "false".to_owned()));
        }
        vars
    }

    /// Stops the server: the listener closes at once, and this waits up to
    /// [`SHUTDOWN_GRACE`] for requests being answered to finish.
    ///
    /// # Errors
    ///
    /// [`Error::Provider`] when the server task failed.
    pub async fn shutdown(mut self) -> Result<()> {
        // Dropping the sender is the shutdown signal (see `spawn`).
        drop(self.stop.take());
        let Some(mut task) = self.task.take() else {
            return Ok(());
        };
        let target = format!("credential server on {}", self.local_addr);
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(Error::provider_caused_by(
                "aws-serve",
                target,
                "the server failed",
                e,
            )),
            Ok(Err(e)) => Err(Error::provider_caused_by(
                "aws-serve",
                target,
                "the server task ended abnormally",
                e,
            )),
            Err(_) => {
                // The listener is closed already; what is left are requests
                // still waiting on the source. They finish on their own.
                tracing::debug!(local_addr = %self.local_addr, "credential server: stopped waiting for open requests");
                task.abort();
                Ok(())
            }
        }
    }
}

/// Shared by the handlers of one server.
struct Shared {
    source: Arc<dyn CredentialSource>,
    clock: Arc<dyn Clock>,
    local_addr: SocketAddr,
    /// The ECS authorization token, when the ECS endpoint is enabled.
    ecs_token: Option<Secret>,
    imds: Option<imds::Imds>,
    /// The access key id last served and when it was first served: IMDS's
    /// `LastUpdated` (the source does not say when it got its credentials).
    last_updated: Mutex<Option<(String, OffsetDateTime)>>,
}

/// Temporary credentials as both endpoints serve them.
struct Served {
    creds: AwsCredentials,
    token: Secret,
    expiration: OffsetDateTime,
    last_updated: OffsetDateTime,
}

impl Shared {
    /// The source's credentials, provided they are temporary.
    async fn fetch(&self) -> Result<Served> {
        let creds = self.source.credentials().await?;
        let (Some(token), Some(expiration)) = (creds.session_token.clone(), creds.expiration)
        else {
            // Both SDKs require `Token` and `Expiration`; and a child should
            // get keys that expire, not a copy of a long-term key.
            return Err(Error::unsupported(
                "aws-serve",
                "serving credentials without a session token and an expiry \
                 (only temporary credentials are served)",
            ));
        };
        let now = self.clock.now();
        let last_updated = {
            let mut last = self
                .last_updated
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match &*last {
                Some((id, at)) if *id == creds.access_key_id => *at,
                _ => {
                    *last = Some((creds.access_key_id.clone(), now));
                    now
                }
            }
        };
        Ok(Served {
            creds,
            token,
            expiration,
            last_updated,
        })
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` in UTC: the form botocore parses for IMDS
/// (`strptime("%Y-%m-%dT%H:%M:%SZ")`), used for ECS too.
fn aws_timestamp(at: OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    at.to_offset(time::UtcOffset::UTC)
        .format(FORMAT)
        .unwrap_or_else(|_| {
            // Only years outside 0..=9999 fail; no credential expires then.
            String::from("9999-12-31T23:59:59Z")
        })
}

fn router(shared: Arc<Shared>) -> Router {
    let mut router = Router::new();
    if shared.ecs_token.is_some() {
        router = router.route(ECS_PATH, get(ecs::credentials));
    }
    if shared.imds.is_some() {
        router = router
            .route(imds::TOKEN_PATH, put(imds::token))
            .route(imds::ROLES_PATH, get(imds::roles))
            .route(imds::ROLES_PATH.trim_end_matches('/'), get(imds::roles))
            .route(
                &format!("{}{{role}}", imds::ROLES_PATH),
                get(imds::role_credentials),
            )
            .route(imds::REGION_PATH, get(imds::region))
            .route(imds::IDENTITY_DOCUMENT_PATH, get(imds::identity_document));
    }
    router
        .fallback(not_found)
        // A layer added last runs first: the guard sees every request,
        // including unknown paths and wrong methods.
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            guard::guard,
        ))
        .with_state(shared)
}

async fn not_found(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    imds::not_found(&shared, request.uri().path(), request.headers())
}

/// Serves `router` on `listener` in a task; dropping the returned sender
/// (or sending on it) shuts it down gracefully.
fn spawn(
    listener: tokio::net::TcpListener,
    router: Router,
) -> (oneshot::Sender<()>, JoinHandle<std::io::Result<()>>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            // Either a send or the handle's drop: both mean stop.
            let _ = stopped.await;
        })
        .await
    });
    (stop, task)
}

/// IAM role names: 1 to 64 of `[A-Za-z0-9+=,.@_-]`. IMDS puts the name in
/// a path, so anything else (a `/` above all) would make it unreachable.
fn validate_role_name(name: &str) -> Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
    if name.is_empty() || name.len() > 64 || !name.chars().all(allowed) {
        return Err(Error::invalid_input(
            "role_name",
            format!("{name:?} is not an IAM role name (1 to 64 of letters, digits and +=,.@_-)"),
        ));
    }
    Ok(())
}

/// A token an HTTP client can send unchanged as a header value, long
/// enough not to be guessed. The message never quotes it.
fn validate_authorization_token(token: &Secret) -> Result<()> {
    let value = token.expose();
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid_input(
            "authorization_token",
            "only visible ASCII characters are allowed (no spaces, line breaks or \
             control characters)",
        ));
    }
    if value.len() < MIN_AUTHORIZATION_TOKEN_LEN {
        return Err(Error::invalid_input(
            "authorization_token",
            format!(
                "{} characters is too short; use at least {MIN_AUTHORIZATION_TOKEN_LEN} \
                 (or let the server generate one)",
                value.len()
            ),
        ));
    }
    Ok(())
}

/// [`TOKEN_BYTES`] random bytes from the operating system, base64url
/// without padding.
fn random_token(what: &str) -> Result<Secret> {
    let mut bytes = zeroize::Zeroizing::new([0u8; TOKEN_BYTES]);
    getrandom::fill(bytes.as_mut_slice()).map_err(|e| {
        Error::provider(
            "aws-serve",
            what,
            format!("the operating system's random number generator failed: {e}"),
        )
    })?;
    Ok(Secret::new(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_slice()),
    ))
}
