//! [`RedfishConfig`]: what a `redfish` session's `config` holds.

use reqwest::Url;
use serde::{Deserialize, Serialize};
use session_core::{Error, Result};

/// The settings of a `redfish` session, in its `config` (camelCase keys).
///
/// The password is **not** here: it is in the secret store under
/// [`PASSWORD`](super::secret_names::PASSWORD); the issued `X-Auth-Token`
/// goes there too, under [`TOKEN`](super::secret_names::TOKEN).
///
/// ```
/// use session_redfish::client::RedfishConfig;
/// let config = RedfishConfig::new("https://bmc.example:443", "admin");
/// config.validate().unwrap();
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RedfishConfig {
    /// The service's base URL, e.g. `https://bmc.example` (the path is
    /// ignored: Redfish lives under `/redfish/v1/`). `https://` only, unless
    /// [`allow_insecure_http`](Self::allow_insecure_http) is set.
    pub endpoint: String,
    /// The account to log in with.
    pub username: String,
    /// A CA or self-signed certificate to trust, as PEM text or as the path
    /// of a PEM file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate_pem: Option<String>,
    /// Accept any server certificate. Off unless explicitly set to `true`;
    /// every use logs a warning. Prefer
    /// [`ca_certificate_pem`](Self::ca_certificate_pem).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_verify: bool,
    /// Allow an `http://` endpoint (loopback tests, TLS-terminating proxies).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_insecure_http: bool,
    /// Fall back to HTTP Basic when the service has no SessionService (its
    /// root links neither `Links.Sessions` nor `SessionService`, or the
    /// login POST answers 404 or 405). On when absent, as in `sushy`'s
    /// default; set `false` to require session login. Basic sends the
    /// password with every request, so it is only used over HTTPS (or with
    /// [`allow_insecure_http`](Self::allow_insecure_http)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth_fallback: Option<bool>,
    /// How the live session authenticates (written by the provider on start
    /// and rotate, removed on stop). Always serialized (as `null` when
    /// unset), because the session config is merged on write and an omitted
    /// key would keep its old value.
    #[serde(default)]
    pub auth_mode: Option<AuthMode>,
    /// The URI of the live login session (not a secret). Written by the
    /// provider on start and rotate, removed on stop.
    #[serde(default)]
    pub session_uri: Option<String>,
}

/// How a Redfish client authenticates its requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum AuthMode {
    /// A login session: `X-Auth-Token` on each request.
    Session,
    /// HTTP Basic on each request (the service has no SessionService).
    Basic,
}

impl RedfishConfig {
    /// A configuration for `username` at `endpoint`, TLS verified with the
    /// system roots.
    pub fn new(endpoint: impl Into<String>, username: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            username: username.into(),
            ..Self::default()
        }
    }

    /// Sets [`ca_certificate_pem`](Self::ca_certificate_pem).
    pub fn with_ca_certificate_pem(mut self, pem_or_path: impl Into<String>) -> Self {
        self.ca_certificate_pem = Some(pem_or_path.into());
        self
    }

    /// Sets [`insecure_skip_verify`](Self::insecure_skip_verify).
    pub fn with_insecure_skip_verify(mut self, insecure: bool) -> Self {
        self.insecure_skip_verify = insecure;
        self
    }

    /// Sets [`basic_auth_fallback`](Self::basic_auth_fallback).
    pub fn with_basic_auth_fallback(mut self, allow: bool) -> Self {
        self.basic_auth_fallback = Some(allow);
        self
    }

    /// Whether HTTP Basic may be used when there is no SessionService.
    pub fn basic_fallback_allowed(&self) -> bool {
        self.basic_auth_fallback != Some(false)
    }

    /// Sets [`allow_insecure_http`](Self::allow_insecure_http).
    pub fn with_allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Checks the fields; errors name the field (`endpoint`, `username`).
    pub fn validate(&self) -> Result<()> {
        self.base_url()?;
        if self.username.trim().is_empty() {
            return Err(Error::invalid_input("username", "must not be empty"));
        }
        if self.username.chars().any(char::is_control) {
            return Err(Error::invalid_input(
                "username",
                "must not contain control characters",
            ));
        }
        if let Some(uri) = &self.session_uri {
            super::url::same_origin(&self.base_url()?, uri)
                .map_err(|reason| Error::invalid_input("sessionUri", reason))?;
        }
        Ok(())
    }

    /// The endpoint's origin (`scheme://host:port/`), checked.
    pub(crate) fn base_url(&self) -> Result<Url> {
        let url = Url::parse(self.endpoint.trim()).map_err(|e| {
            Error::invalid_input("endpoint", format!("{:?} is not a URL: {e}", self.endpoint))
        })?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_insecure_http => {}
            "http" => {
                return Err(Error::invalid_input(
                    "endpoint",
                    "must be https:// (Redfish logins require HTTPS; set allowInsecureHttp only for loopback tests)",
                ));
            }
            other => {
                return Err(Error::invalid_input(
                    "endpoint",
                    format!("scheme {other:?} is not https"),
                ));
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Error::invalid_input("endpoint", "has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::invalid_input(
                "endpoint",
                "must not contain credentials; use username and the secret store",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Error::invalid_input(
                "endpoint",
                "must not have a query or fragment",
            ));
        }
        let mut base = url;
        base.set_path("/");
        Ok(base)
    }
}
