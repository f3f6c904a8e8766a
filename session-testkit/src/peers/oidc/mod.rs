//! The oidc-provider test peer: panva's npm package `oidc-provider` (9.x) as
//! a stand-in for **Microsoft Entra ID** on 127.0.0.1 ([`OidcProvider`]),
//! with Entra-shaped routes for one tenant, and helpers that approve or deny
//! a device code the way a user would in a browser
//! ([`approve_device_code`], [`deny_device_code`]).
//!
//! The package comes from the peers' `node_modules` that `./scripts/test`
//! installs from `scripts/peers/package.json`; the server is the launcher
//! script `session-testkit/peers/oidc/launcher.mjs` ([`launcher_path`]),
//! run with `node` from `PATH`. Both are looked up through [`require_peer`]:
//! when either is missing, a test fails in CI and is skipped loudly elsewhere.
//!
//! ```no_run
//! use session_testkit::peers::oidc::{OidcProvider, approve_device_code};
//! use std::time::Duration;
//!
//! # async fn demo() {
//! let Some(entra) = tokio::task::spawn_blocking(|| {
//!     OidcProvider::builder().refresh_token_ttl(Duration::from_secs(2)).start()
//! })
//! .await
//! .unwrap() else {
//!     return; // skipped outside CI; would have panicked in CI
//! };
//! // Point the client under test at the stand-in:
//! let (authority_host, tenant) = (entra.authority_host(), entra.tenant());
//! // ... it POSTs to entra.device_code_url(), shows the user code, polls
//! // entra.token_url(); meanwhile the "user" signs in:
//! # let verification_uri_complete = String::new();
//! approve_device_code(verification_uri_complete.as_str(), "alice@contoso.com")
//!     .await
//!     .unwrap();
//! # let _ = (authority_host, tenant);
//! # }
//! ```
//!
//! Starting is blocking (it waits up to [`DEFAULT_STARTUP_TIMEOUT`]): call it
//! from sync tests, or through `tokio::task::spawn_blocking` from async ones.
//! The approval helpers are async.
//!
//! # What it serves
//!
//! All paths are relative to [`OidcProvider::authority_host`]
//! (`http://127.0.0.1:PORT`); `{tenant}` is [`OidcProvider::tenant`]. As
//! checked by `session-testkit/tests/oidc_provider.rs` with `oidc-provider`
//! 9.13.3:
//!
//! | path | what |
//! |---|---|
//! | `POST /{tenant}/oauth2/v2.0/token` | every grant ([`token_url`](OidcProvider::token_url)) |
//! | `POST /{tenant}/oauth2/v2.0/devicecode` | device authorization ([`device_code_url`](OidcProvider::device_code_url)) |
//! | `GET /{tenant}/device` | the user-code pages ([`verification_uri`](OidcProvider::verification_uri)) |
//! | `/interaction/{uid}` | the sign-in page; **any** login and password are accepted |
//! | `GET /{tenant}/discovery/v2.0/keys` | signing keys ([`jwks_url`](OidcProvider::jwks_url)) |
//! | `GET /.well-known/openid-configuration` | discovery, at the root (not Entra's path) |
//!
//! The issuer is `http://127.0.0.1:PORT/{tenant}/v2.0`. Two clients exist: a
//! confidential one (id and secret; grants `client_credentials` and
//! `refresh_token`) and a public one (no secret; grants device code and
//! `refresh_token`). Every token is for one resource (default
//! [`DEFAULT_RESOURCE`]): access tokens are RS256 JWTs with `aud` = the
//! resource, and the scope `{resource}/.default` is granted (so `scope` in
//! responses is `https://management.azure.com/.default`). Consent is
//! automatic: approving a device code is a sign-in only.
//!
//! | request | answer |
//! |---|---|
//! | client credentials, `scope={resource}/.default` | 200 `access_token`, `expires_in` (client-credentials TTL), `token_type: "Bearer"`, `scope` |
//! | client credentials, wrong secret or unknown client | **401** `{"error":"invalid_client","error_description":"client authentication failed"}` |
//! | client credentials, another resource's `.../.default` | 200, but the token is still for the one resource, and has no `scope` |
//! | device authorization | 200 `device_code`, `user_code` (`XXXX-XXXX`), `verification_uri`, `verification_uri_complete`, `expires_in` (device-code TTL); **no `interval`, no `message`** |
//! | device code, before approval | 400 `authorization_pending` |
//! | device code, after approval | 200 `access_token`, `refresh_token`, `id_token` (`sub` = the login used), `expires_in`, `scope`, `token_type` |
//! | device code, used twice or unknown | 400 `invalid_grant` (a second use also revokes what the first one issued) |
//! | device code, denied by the user | 400 `access_denied` |
//! | device code, past its TTL | 400 `expired_token`; from 15 s after (oidc-provider's clock tolerance) the in-memory store has forgotten it, so `invalid_grant` (from the package source) |
//! | `refresh_token` | 200 new `access_token` and a **new `refresh_token`** (public clients always rotate); the old one is then `invalid_grant` |
//! | `refresh_token`, past its TTL | 400 `invalid_grant` |
//!
//! Error bodies are `{"error","error_description"}` only: no `error_codes`,
//! `trace_id` or `correlation_id`, and token answers have no
//! `ext_expires_in`. The device flow never answers `slow_down`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::http::http_get_status;
use super::process::{self, PeerProcess, StartError, Stdin};
use super::{NODE_MODULES_ENV, Redacted, node_package, require_peer};

mod approval;
mod html;

pub use approval::{ApprovalError, Verification, approve_device_code, deny_device_code};

/// How long [`OidcBuilder::start`] waits for the provider to answer.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The tenant (a made-up directory GUID) unless [`OidcBuilder::tenant`]
/// says otherwise.
pub const DEFAULT_TENANT: &str = "5e5510a0-7e57-4000-8000-00000000a2e1";

/// The confidential client's id unless [`OidcBuilder::confidential_client`]
/// says otherwise.
pub const DEFAULT_CONFIDENTIAL_CLIENT_ID: &str = "c0ffee00-0000-4000-8000-000000000001";

/// The confidential client's secret unless
/// [`OidcBuilder::confidential_client`] says otherwise. A test credential.
pub const DEFAULT_CLIENT_SECRET: &str = "test-secret-not-a-real-one";

/// The public (device-code) client's id unless
/// [`OidcBuilder::public_client`] says otherwise.
pub const DEFAULT_PUBLIC_CLIENT_ID: &str = "c0ffee00-0000-4000-8000-000000000002";

/// The one resource every token is for (Azure Resource Manager) unless
/// [`OidcBuilder::resource`] says otherwise.
pub const DEFAULT_RESOURCE: &str = "https://management.azure.com";

/// The npm package this peer needs.
pub const PACKAGE: &str = "oidc-provider";

/// The readiness probe.
const PROBE_PATH: &str = "/.well-known/openid-configuration";

/// The launcher script, `session-testkit/peers/oidc/launcher.mjs`.
pub fn launcher_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/oidc/launcher.mjs")
}

/// What starting needs: `node`, the folder holding `oidc-provider`, and the
/// launcher.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Peer {
    node: PathBuf,
    node_modules: PathBuf,
    launcher: PathBuf,
}

/// A probe for [`require_peer`]: `node` on `PATH`, the `oidc-provider`
/// package under `$SESSION_PEERS_NODE_MODULES`, and the launcher script.
fn find_peer() -> Result<Peer, String> {
    let package = node_package(PACKAGE)?;
    let node_modules = package
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("${NODE_MODULES_ENV}: {} has no folder", package.display()))?;
    let node = find_on_path("node", std::env::var_os("PATH"))
        .ok_or_else(|| "`node` is not on PATH".to_owned())?;
    let launcher = launcher_path();
    if !launcher.is_file() {
        return Err(format!("the launcher {} is missing", launcher.display()));
    }
    Ok(Peer {
        node,
        node_modules,
        launcher,
    })
}

pub(super) fn find_on_path(program: &str, path: Option<std::ffi::OsString>) -> Option<PathBuf> {
    let name = format!("{program}{}", std::env::consts::EXE_SUFFIX);
    std::env::split_paths(&path?)
        .map(|dir| dir.join(&name))
        .find(|candidate| candidate.is_file())
}

/// Options for starting an [`OidcProvider`]; from [`OidcProvider::builder`].
#[derive(Clone, Debug)]
pub struct OidcBuilder {
    tenant: String,
    confidential_client_id: String,
    client_secret: Redacted,
    public_client_id: String,
    resource: String,
    port: u16,
    device_code_ttl: Duration,
    access_token_ttl: Duration,
    client_credentials_ttl: Duration,
    refresh_token_ttl: Duration,
    startup_timeout: Duration,
}

impl Default for OidcBuilder {
    fn default() -> Self {
        Self {
            tenant: DEFAULT_TENANT.to_owned(),
            confidential_client_id: DEFAULT_CONFIDENTIAL_CLIENT_ID.to_owned(),
            client_secret: Redacted(DEFAULT_CLIENT_SECRET.to_owned()),
            public_client_id: DEFAULT_PUBLIC_CLIENT_ID.to_owned(),
            resource: DEFAULT_RESOURCE.to_owned(),
            port: 0,
            device_code_ttl: Duration::from_secs(600),
            access_token_ttl: Duration::from_secs(3600),
            client_credentials_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(86_400),
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
        }
    }
}

impl OidcBuilder {
    /// The tenant in every path and in the issuer (default
    /// [`DEFAULT_TENANT`]): a GUID or a domain, of ASCII letters, digits,
    /// `.` and `-` ([`start`](Self::start) panics otherwise).
    #[must_use]
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = tenant.into();
        self
    }

    /// The confidential client (default [`DEFAULT_CONFIDENTIAL_CLIENT_ID`]
    /// with [`DEFAULT_CLIENT_SECRET`]), for `client_credentials`.
    #[must_use]
    pub fn confidential_client(mut self, id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.confidential_client_id = id.into();
        self.client_secret = Redacted(secret.into());
        self
    }

    /// The public client's id (default [`DEFAULT_PUBLIC_CLIENT_ID`]), for the
    /// device code and refresh token grants.
    #[must_use]
    pub fn public_client(mut self, id: impl Into<String>) -> Self {
        self.public_client_id = id.into();
        self
    }

    /// The one resource every token is for (default [`DEFAULT_RESOURCE`],
    /// without a trailing slash); clients ask for `{resource}/.default`.
    #[must_use]
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = resource.into();
        self
    }

    /// The port of 127.0.0.1 to listen on (default 0: a free one, which the
    /// launcher reports back).
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// How long a device code lives (default 600 s): its `expires_in`.
    /// Whole seconds, at least 1 ([`start`](Self::start) panics otherwise).
    #[must_use]
    pub fn device_code_ttl(mut self, ttl: Duration) -> Self {
        self.device_code_ttl = ttl;
        self
    }

    /// How long an access token from a device code or a refresh token lives
    /// (default 3600 s). Whole seconds, at least 1.
    #[must_use]
    pub fn access_token_ttl(mut self, ttl: Duration) -> Self {
        self.access_token_ttl = ttl;
        self
    }

    /// How long a client-credentials access token lives (default 3600 s).
    /// Whole seconds, at least 1.
    #[must_use]
    pub fn client_credentials_ttl(mut self, ttl: Duration) -> Self {
        self.client_credentials_ttl = ttl;
        self
    }

    /// How long a refresh token lives (default 86 400 s); a refresh token
    /// past it answers `invalid_grant`. Whole seconds, at least 1.
    #[must_use]
    pub fn refresh_token_ttl(mut self, ttl: Duration) -> Self {
        self.refresh_token_ttl = ttl;
        self
    }

    /// How long to wait for the provider to answer (default
    /// [`DEFAULT_STARTUP_TIMEOUT`]).
    #[must_use]
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Starts `node launcher.mjs CONFIG` and waits until it is ready: it
    /// printed `LISTENING <port>`, and `GET /.well-known/openid-configuration`
    /// answers 200 there.
    ///
    /// Returns `None` when `node` or `oidc-provider` is missing and the test
    /// runs outside CI (see [`require_peer`]); the test should then return
    /// early.
    ///
    /// # Panics
    ///
    /// In CI when `node` or `oidc-provider` is missing; on an invalid tenant
    /// or TTL; and whenever the provider does not come up within the startup
    /// timeout (quoting its log).
    pub fn start(self) -> Option<OidcProvider> {
        let peer = require_peer("oidc-provider (npm) with node", find_peer)?;
        Some(self.start_peer(&peer))
    }

    fn start_peer(&self, peer: &Peer) -> OidcProvider {
        self.check();
        let program = format!("{} {}", peer.node.display(), peer.launcher.display());
        process::start_once("oidc-provider", program, || self.try_start(peer))
    }

    fn check(&self) {
        let tenant = &self.tenant;
        assert!(
            !tenant.is_empty()
                && tenant
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'),
            "tenant {tenant:?} must be non-empty ASCII letters, digits, '.' and '-'"
        );
        for (name, ttl) in self.ttls() {
            assert!(
                ttl.as_secs() >= 1 && ttl.subsec_nanos() == 0,
                "the {name} TTL must be whole seconds, at least 1; it is {ttl:?}"
            );
        }
    }

    fn ttls(&self) -> [(&'static str, Duration); 4] {
        [
            ("DeviceCode", self.device_code_ttl),
            ("AccessToken", self.access_token_ttl),
            ("ClientCredentials", self.client_credentials_ttl),
            ("RefreshToken", self.refresh_token_ttl),
        ]
    }

    /// The launcher's config file (JSON; see the launcher's header).
    fn config(&self, peer: &Peer, dir: &Path) -> serde_json::Value {
        let ttl: serde_json::Map<String, serde_json::Value> = self
            .ttls()
            .into_iter()
            .map(|(name, ttl)| (name.to_owned(), ttl.as_secs().into()))
            .collect();
        serde_json::json!({
            "nodeModules": peer.node_modules,
            "port": self.port,
            "tenant": self.tenant,
            "resource": self.resource,
            "confidentialClient": {
                "id": self.confidential_client_id,
                "secret": self.client_secret.0,
            },
            "publicClient": { "id": self.public_client_id },
            "ttl": ttl,
            "cleanupDir": dir,
        })
    }

    /// Starts the provider.
    fn try_start(&self, peer: &Peer) -> Result<OidcProvider, StartError> {
        let dir = process::temp_dir("oidc-provider-")?;
        let config_path = dir.path().join("config.json");
        std::fs::write(&config_path, self.config(peer, dir.path()).to_string()).map_err(|e| {
            StartError::failed(format!("cannot write {}: {e}", config_path.display()))
        })?;

        let mut cmd = Command::new(&peer.node);
        cmd.arg(&peer.launcher)
            .arg(&config_path)
            .current_dir(dir.path())
            // Its debug output would interleave with LISTENING.
            .env_remove("DEBUG");
        // The launcher exits when its stdin closes.
        let mut process = PeerProcess::spawn(cmd, dir, "oidc-provider.log", Stdin::Held)?;

        // Ready = it printed `LISTENING <port>` (the port it bound, or the
        // one it was given), and the probe answers 200 there.
        let mut port = 0;
        process.wait_until_ready(self.startup_timeout, |log| {
            if port == 0 {
                port = listening_port(log).unwrap_or(0);
            }
            if port == 0 {
                Err("it did not print \"LISTENING <port>\"".to_owned())
            } else if http_get_status(port, PROBE_PATH).is_ok_and(|s| s == 200) {
                Ok(())
            } else {
                Err(format!(
                    "GET {PROBE_PATH} on port {port} did not answer 200"
                ))
            }
        })?;
        Ok(OidcProvider {
            process,
            port,
            tenant: self.tenant.clone(),
            confidential_client_id: self.confidential_client_id.clone(),
            client_secret: self.client_secret.0.clone(),
            public_client_id: self.public_client_id.clone(),
            resource: self.resource.clone(),
        })
    }
}

/// A running `oidc-provider` on 127.0.0.1 that stands in for Entra ID for
/// one tenant; see the [module docs](self) for what it serves. One per test,
/// or one per test binary in a `static` (its state is per device code and
/// token, so tests do not disturb one another).
///
/// Dropping it kills the process (by its own PID, never by name) and reaps
/// it; its temp dir (config, log) goes too. The provider also exits by
/// itself, removing that temp dir, when the test process ends without
/// dropping it: it exits when its stdin, a pipe only the test process holds,
/// closes.
pub struct OidcProvider {
    process: PeerProcess,
    port: u16,
    tenant: String,
    confidential_client_id: String,
    client_secret: String,
    public_client_id: String,
    resource: String,
}

impl fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcProvider")
            .field("pid", &self.process.pid())
            .field("authority_host", &self.authority_host())
            .field("tenant", &self.tenant)
            .field("confidential_client_id", &self.confidential_client_id)
            .field("client_secret", &"<redacted>")
            .field("public_client_id", &self.public_client_id)
            .field("resource", &self.resource)
            .finish()
    }
}

impl OidcProvider {
    /// [`OidcBuilder::start`] with the default options, or `None` when the
    /// peer is missing outside CI.
    ///
    /// # Panics
    ///
    /// As [`OidcBuilder::start`].
    pub fn start() -> Option<Self> {
        Self::builder().start()
    }

    /// Options for a provider (tenant, clients, resource, TTLs, port,
    /// startup timeout).
    pub fn builder() -> OidcBuilder {
        OidcBuilder::default()
    }

    /// The authority host, `http://127.0.0.1:PORT` (no trailing slash): what
    /// replaces `https://login.microsoftonline.com`.
    pub fn authority_host(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The tenant in every path.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The issuer of its tokens: `http://127.0.0.1:PORT/{tenant}/v2.0`.
    pub fn issuer(&self) -> String {
        format!("{}/v2.0", self.tenant_url())
    }

    /// The token endpoint: `http://127.0.0.1:PORT/{tenant}/oauth2/v2.0/token`.
    pub fn token_url(&self) -> String {
        format!("{}/oauth2/v2.0/token", self.tenant_url())
    }

    /// The device authorization endpoint:
    /// `http://127.0.0.1:PORT/{tenant}/oauth2/v2.0/devicecode`.
    pub fn device_code_url(&self) -> String {
        format!("{}/oauth2/v2.0/devicecode", self.tenant_url())
    }

    /// Where a user enters a user code: `http://127.0.0.1:PORT/{tenant}/device`
    /// (the `verification_uri` of device authorization answers).
    pub fn verification_uri(&self) -> String {
        format!("{}/device", self.tenant_url())
    }

    /// The signing keys: `http://127.0.0.1:PORT/{tenant}/discovery/v2.0/keys`.
    pub fn jwks_url(&self) -> String {
        format!("{}/discovery/v2.0/keys", self.tenant_url())
    }

    /// The discovery document, at the root (not Entra's path):
    /// `http://127.0.0.1:PORT/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}{PROBE_PATH}", self.authority_host())
    }

    /// The confidential client's id.
    pub fn confidential_client_id(&self) -> &str {
        &self.confidential_client_id
    }

    /// The confidential client's secret. A test credential; the `Debug`
    /// output of this value leaves it out all the same.
    pub fn client_secret(&self) -> &str {
        &self.client_secret
    }

    /// The public (device-code) client's id.
    pub fn public_client_id(&self) -> &str {
        &self.public_client_id
    }

    /// The resource every token is for, e.g. `https://management.azure.com`.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The Entra-style scope for [`resource`](Self::resource):
    /// `{resource}/.default`.
    pub fn default_scope(&self) -> String {
        format!("{}/.default", self.resource)
    }

    /// The port it listens on (of 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The provider's process id (`node`'s own).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The file that receives its stdout and stderr.
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }

    /// What it has written to stdout and stderr so far (oidc-provider's
    /// development-mode warnings, `LISTENING <port>`, errors).
    pub fn log(&self) -> String {
        self.process.log()
    }

    fn tenant_url(&self) -> String {
        format!("{}/{}", self.authority_host(), self.tenant)
    }
}

/// The port of the launcher's `LISTENING <port>` line.
fn listening_port(log: &str) -> Option<u16> {
    log.lines()
        .find_map(|line| line.trim().strip_prefix("LISTENING "))
        .and_then(|port| port.trim().parse().ok())
        .filter(|&port| port != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_line() {
        assert_eq!(listening_port("warning\nLISTENING 4123\n"), Some(4123));
        assert_eq!(listening_port("LISTENING 0\n"), None);
        assert_eq!(listening_port("LISTENING\n"), None);
        assert_eq!(listening_port(""), None);
    }

    #[test]
    fn node_is_found_on_path() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(find_on_path("node", None), None);
        assert_eq!(find_on_path("node", Some(dir.path().into())), None);
        let node = dir
            .path()
            .join(format!("node{}", std::env::consts::EXE_SUFFIX));
        std::fs::write(&node, "").unwrap();
        let path = std::env::join_paths([Path::new("/nonexistent"), dir.path()]).unwrap();
        assert_eq!(find_on_path("node", Some(path)), Some(node));
    }

    #[test]
    #[should_panic(expected = "must be non-empty ASCII letters")]
    fn tenants_are_checked() {
        OidcBuilder::default().tenant("a/b").check();
    }

    #[test]
    #[should_panic(expected = "the RefreshToken TTL must be whole seconds")]
    fn ttls_are_whole_seconds() {
        OidcBuilder::default()
            .refresh_token_ttl(Duration::from_millis(1500))
            .check();
    }

    #[test]
    fn debug_output_leaves_the_secret_out() {
        let text = format!(
            "{:?}",
            OidcBuilder::default().confidential_client("id", crate::CANARY)
        );
        assert!(!text.contains(crate::CANARY), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }

    #[test]
    fn the_launcher_is_in_the_test_tree() {
        assert!(launcher_path().is_file(), "{}", launcher_path().display());
    }
}
