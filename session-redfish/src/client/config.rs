//! [`RedfishConfig`]: what a `redfish` session's `config` holds;
//! [`RedfishState`]: what its `state` holds.

use std::path::PathBuf;

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
#[serde(
    rename_all = "camelCase",
    from = "compat::StoredConfig",
    into = "compat::StoredConfig"
)]
#[non_exhaustive]
pub struct RedfishConfig {
    /// The service's base URL, e.g. `https://bmc.example` (the path is
    /// ignored: Redfish lives under `/redfish/v1/`). `https://` only, unless
    /// [`allow_insecure_http`](Self::allow_insecure_http) is set.
    pub endpoint: String,
    /// The account to log in with.
    pub username: String,
    /// The path of a PEM file with a CA or self-signed certificate to trust
    /// (key `caFile`; `sessionctl add redfish --ca-file`). Read when the
    /// session's HTTP client is built; [`validate`](Self::validate) checks
    /// that it is a file.
    pub ca_file: Option<PathBuf>,
    /// A CA or self-signed certificate to trust, as PEM text (key `caPem`).
    ///
    /// Configs written before `caFile` and `caPem` existed kept either in
    /// one key, `caCertificatePem`; it is still read (PEM text goes here, a
    /// path to [`ca_file`](Self::ca_file)) and removed when the config is
    /// written back.
    pub ca_pem: Option<String>,
    /// Accept any server certificate. Off unless explicitly set to `true`;
    /// every use logs a warning. Prefer [`ca_file`](Self::ca_file) or
    /// [`ca_pem`](Self::ca_pem).
    pub insecure_skip_verify: bool,
    /// Allow an `http://` endpoint, on a loopback host only (127.0.0.0/8,
    /// `::1`, `localhost`: tests, a local TLS-terminating proxy);
    /// [`validate`](Self::validate) refuses any other host, since the
    /// password and token would cross the network in clear.
    pub allow_insecure_http: bool,
    /// Fall back to HTTP Basic when the service has no SessionService (its
    /// root links neither `Links.Sessions` nor `SessionService`, or the
    /// login POST answers 404 or 405). On when absent, as in `sushy`'s
    /// default; set `false` to require session login. Basic sends the
    /// password with every request, so it is only used over HTTPS (or with
    /// [`allow_insecure_http`](Self::allow_insecure_http)).
    pub basic_auth_fallback: Option<bool>,
}

/// What start and rotate of a `redfish` session record in its
/// [`state`](session_core::Session::state) (camelCase keys; cleared when
/// the session becomes `inactive`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RedfishState {
    /// How the live session authenticates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_mode: Option<AuthMode>,
    /// The URI of the live login session (not a secret), which stop and
    /// rotate delete; absent in Basic mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_uri: Option<String>,
}

mod compat;

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

    /// Sets [`ca_file`](Self::ca_file): trust the certificates of this PEM
    /// file.
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Sets [`ca_pem`](Self::ca_pem): trust these PEM certificates.
    pub fn with_ca_pem(mut self, pem: impl Into<String>) -> Self {
        self.ca_pem = Some(pem.into());
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

    /// Checks the fields; errors name the field (`endpoint`, `username`,
    /// `caFile`, `caPem`). A `caFile` must be an existing file (its content
    /// is read when the HTTP client is built).
    pub fn validate(&self) -> Result<()> {
        self.base_url()?;
        match (&self.ca_file, &self.ca_pem) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid_input(
                    "caFile",
                    "give caFile (a path) or caPem (PEM text), not both",
                ));
            }
            (Some(path), None) => {
                if let Err(e) = std::fs::metadata(path).and_then(|m| {
                    if m.is_file() {
                        Ok(())
                    } else {
                        Err(std::io::Error::other("not a file"))
                    }
                }) {
                    return Err(Error::invalid_input(
                        "caFile",
                        format!("cannot use {}: {e}", path.display()),
                    ));
                }
            }
            (None, Some(pem)) if !pem.contains("-----BEGIN") => {
                return Err(Error::invalid_input(
                    "caPem",
                    "is not PEM text (no -----BEGIN line); give a path as caFile",
                ));
            }
            _ => {}
        }
        if self.username.trim().is_empty() {
            return Err(Error::invalid_input("username", "must not be empty"));
        }
        if self.username.chars().any(char::is_control) {
            return Err(Error::invalid_input(
                "username",
                "must not contain control characters",
            ));
        }
        // The recorded session URI is state, not a setting: stop, rotate
        // and `client` check it is on the endpoint's origin when they use it.
        Ok(())
    }

    /// The endpoint's origin (`scheme://host:port/`), checked.
    pub(crate) fn base_url(&self) -> Result<Url> {
        let url = Url::parse(self.endpoint.trim()).map_err(|e| {
            Error::invalid_input("endpoint", format!("{:?} is not a URL: {e}", self.endpoint))
        })?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_insecure_http => {
                // Plain HTTP sends the password and token in clear: only
                // where they never leave the machine.
                if !is_loopback(&url) {
                    return Err(Error::invalid_input(
                        "endpoint",
                        format!(
                            "http:// to {} is refused: allowInsecureHttp is for loopback hosts \
                             only (127.0.0.0/8, ::1, localhost), because the password and \
                             token would cross the network in clear; use https://",
                            url.host_str().unwrap_or_default()
                        ),
                    ));
                }
            }
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

/// Whether the URL's host is loopback: 127.0.0.0/8, `::1` or `localhost`
/// (any case; no subdomains, so `localhost.example` is not).
fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    // `host_str` keeps the brackets of an IPv6 literal.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => bare.eq_ignore_ascii_case("localhost"),
    }
}
