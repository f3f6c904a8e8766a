//! The Redfish requests both [`RedfishProvider`](super::RedfishProvider) and
//! [`RedfishClient`](super::RedfishClient) make: building the HTTP client,
//! discovering the Sessions collection, logging in and out, and checking
//! HTTP Basic credentials.

use std::time::Duration;

use base64::Engine;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, LOCATION};
use reqwest::{Client, StatusCode, Url};
use serde_json::{Value, json};
use session_core::{Error, Result, Secret};

use super::error::{RequestFailure, from_status, from_transport};
use super::{DEFAULT_SESSIONS_URI, REQUEST_TIMEOUT, RedfishConfig, url};

pub(crate) const X_AUTH_TOKEN: HeaderName = HeaderName::from_static("x-auth-token");

/// The service root path.
pub(crate) const SERVICE_ROOT: &str = "/redfish/v1/";
/// The SessionService path (the standard one; services may not have it).
pub(crate) const SESSION_SERVICE: &str = "/redfish/v1/SessionService";

/// A session the service just created.
pub(crate) struct Login {
    pub(crate) token: Secret,
    pub(crate) uri: Url,
    pub(crate) body: Value,
}

/// What the service root says about authentication.
pub(crate) struct Discovery {
    /// The Sessions collection, or `None` when the service root advertises
    /// neither `Links.Sessions` nor a `SessionService` (no session login:
    /// HTTP Basic is the only way in).
    pub(crate) sessions: Option<Url>,
    /// The service root (`Null` when it needed authentication).
    pub(crate) root: Value,
}

/// `X-Auth-Token: …`, marked sensitive so it never appears in `Debug`.
pub(crate) fn token_header(token: &Secret) -> Result<HeaderValue> {
    let mut value = HeaderValue::from_str(token.expose()).map_err(|_| {
        Error::provider(
            "redfish",
            "stored token",
            "the X-Auth-Token is not a valid header value",
        )
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// `Authorization: Basic …`, marked sensitive.
pub(crate) fn basic_header(username: &str, password: &Secret) -> Result<HeaderValue> {
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(format!("{username}:{}", password.expose()));
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
        .map_err(|_| Error::invalid_input("username", "cannot be sent in an HTTP Basic header"))?;
    value.set_sensitive(true);
    Ok(value)
}

/// The HTTP client for `config`: no redirects (a redirect could carry the
/// token or password elsewhere), `OData-Version: 4.0`, TLS verified with the
/// configured CA, insecure only when asked.
pub(crate) fn build_http(config: &RedfishConfig, label: &str) -> Result<Client> {
    let mut headers = HeaderMap::new();
    headers.insert("OData-Version", HeaderValue::from_static("4.0"));
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    let mut builder = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .timeout(REQUEST_TIMEOUT)
        // BMCs drop idle connections early; do not keep them for long.
        .pool_idle_timeout(Duration::from_secs(30))
        .user_agent(concat!("session-redfish/", env!("CARGO_PKG_VERSION")));
    let ca = match (&config.ca_file, &config.ca_pem) {
        (Some(path), _) => Some((
            "caFile",
            std::fs::read(path).map_err(|e| {
                Error::invalid_input(
                    "caFile",
                    format!("{label}: cannot read {}: {e}", path.display()),
                )
            })?,
        )),
        (None, Some(pem)) => Some(("caPem", pem.clone().into_bytes())),
        (None, None) => None,
    };
    if let Some((key, pem)) = ca {
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            Error::invalid_input(
                key,
                format!("{label}: not a PEM certificate: {}", e.without_url()),
            )
        })?;
        if certs.is_empty() {
            return Err(Error::invalid_input(
                key,
                format!("{label}: no certificate in the PEM text"),
            ));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if config.insecure_skip_verify {
        builder = builder.danger_accept_invalid_certs(true);
    }
    builder.build().map_err(|e| {
        Error::invalid_input(
            "endpoint",
            format!("{label}: cannot build the HTTP client: {}", e.without_url()),
        )
    })
}

/// Reads the service root (unauthenticated, as the spec allows) and finds
/// the Sessions collection: `Links.Sessions`, else the standard URI when the
/// root links a `SessionService` or needs authentication itself.
pub(crate) async fn discover(http: &Client, base: &Url, label: &str) -> Result<Discovery> {
    let root = base
        .join(SERVICE_ROOT)
        .map_err(|e| Error::invalid_input("endpoint", format!("{label}: {e}")))?;
    let default = || {
        base.join(DEFAULT_SESSIONS_URI)
            .map_err(|e| Error::invalid_input("endpoint", format!("{label}: {e}")))
    };
    let res = http
        .get(root)
        .send()
        .await
        .map_err(|e| from_transport(label, "GET service root", e))?;
    let status = res.status();
    if status == StatusCode::UNAUTHORIZED {
        tracing::warn!(session = %label, "the service root needs authentication; using the default Sessions URI");
        return Ok(Discovery {
            sessions: Some(default()?),
            root: Value::Null,
        });
    }
    let headers = res.headers().clone();
    let body = res
        .bytes()
        .await
        .map_err(|e| from_transport(label, "GET service root", e))?;
    if !status.is_success() {
        return Err(from_status(label, "GET service root", status, &headers, &body).error);
    }
    let root: Value = serde_json::from_slice(&body).map_err(|e| {
        Error::provider(
            "redfish",
            label,
            format!("the service root is not JSON: {e}"),
        )
    })?;
    let sessions = match root["Links"]["Sessions"]["@odata.id"].as_str() {
        Some(uri) => Some(url::same_origin(base, uri).map_err(|reason| {
            Error::provider("redfish", label, format!("Links.Sessions: {reason}"))
        })?),
        None if root.get("SessionService").is_some() => Some(default()?),
        None => None,
    };
    Ok(Discovery { sessions, root })
}

/// Logs in: `POST {UserName, Password, Context}` to the Sessions collection.
pub(crate) async fn login(
    http: &Client,
    base: &Url,
    sessions: &Url,
    username: &str,
    password: &Secret,
    context: &str,
    label: &str,
) -> std::result::Result<Login, RequestFailure> {
    let body = json!({
        "UserName": username,
        "Password": password.expose(),
        "Context": context,
    });
    let res = http
        .post(sessions.clone())
        .json(&body)
        .send()
        .await
        .map_err(|e| from_transport(label, "login", e))?;
    drop(body);
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res
        .bytes()
        .await
        .map_err(|e| from_transport(label, "login", e))?;
    if !status.is_success() {
        let mut failure = from_status(label, "login", status, &headers, &bytes);
        if status == StatusCode::UNAUTHORIZED
            && let Error::Unauthenticated { message, .. } = &mut failure.error
        {
            // What a user needs to read first: their credentials were refused.
            *message = format!(
                "unauthorized: the service refused user name {username:?} with this password ({message})"
            );
        }
        return Err(failure);
    }
    if status != StatusCode::CREATED {
        tracing::debug!(session = %label, status = status.as_u16(), "login answered without 201 Created");
    }
    let token = headers
        .get(&X_AUTH_TOKEN)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(Secret::new)
        .ok_or_else(|| {
            Error::provider(
                "redfish",
                label,
                format!(
                    "login: HTTP {} without an X-Auth-Token header",
                    status.as_u16()
                ),
            )
        })?;
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let location = headers
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| body["@odata.id"].as_str().map(str::to_owned));
    let uri = match location {
        Some(location) => url::same_origin(base, &location).map_err(|reason| {
            Error::provider(
                "redfish",
                label,
                format!("login: session Location {reason}"),
            )
        }),
        None => Err(Error::provider(
            "redfish",
            label,
            "login: neither a Location header nor an @odata.id names the session",
        )),
    };
    Ok(Login {
        token,
        uri: uri?,
        body,
    })
}

/// `DELETE uri` with `token`; 2xx, 401 and 404 are success (the session is
/// gone either way).
pub(crate) async fn logout(http: &Client, uri: &Url, token: &Secret, label: &str) -> Result<()> {
    let res = http
        .delete(uri.clone())
        .header(X_AUTH_TOKEN, token_header(token)?)
        .send()
        .await
        .map_err(|e| from_transport(label, "logout", e))?;
    let status = res.status();
    if status.is_success() || status == StatusCode::UNAUTHORIZED || status == StatusCode::NOT_FOUND
    {
        return Ok(());
    }
    let headers = res.headers().clone();
    let body = res.bytes().await.unwrap_or_default();
    Err(from_status(label, "logout", status, &headers, &body).error)
}

/// Logs in with a session; `None` after checking HTTP Basic credentials
/// instead, when the service has no SessionService or refuses the login
/// POST with 404/405 (and the configuration allows the fallback).
pub(crate) async fn login_or_basic(
    http: &Client,
    base: &Url,
    config: &RedfishConfig,
    discovery: &Discovery,
    password: &Secret,
    context: &str,
    label: &str,
) -> std::result::Result<Option<Login>, RequestFailure> {
    let basic = || async {
        if !config.basic_fallback_allowed() {
            return Err(RequestFailure::from(Error::unsupported(
                "redfish",
                format!(
                    "session login at {label}: the service has no SessionService and basicAuthFallback is false"
                ),
            )));
        }
        tracing::info!(service = %label, "no SessionService: using HTTP Basic authentication");
        verify_basic(
            http,
            base,
            &discovery.root,
            &config.username,
            password,
            label,
        )
        .await?;
        Ok(None)
    };
    let Some(sessions) = &discovery.sessions else {
        return basic().await;
    };
    match login(
        http,
        base,
        sessions,
        &config.username,
        password,
        context,
        label,
    )
    .await
    {
        Ok(login) => Ok(Some(login)),
        Err(f)
            if matches!(
                f.status,
                Some(StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED)
            ) && config.basic_fallback_allowed() =>
        {
            basic().await
        }
        Err(f) => Err(f),
    }
}

/// Checks HTTP Basic credentials on a service without a SessionService:
/// `GET` of the first collection the root links (`Systems`, `Managers`,
/// `Chassis`), else of the root itself. A service that protects none of
/// them accepts any password; nothing more can be checked then.
pub(crate) async fn verify_basic(
    http: &Client,
    base: &Url,
    root: &Value,
    username: &str,
    password: &Secret,
    label: &str,
) -> Result<()> {
    let target = ["Systems", "Managers", "Chassis"]
        .iter()
        .find_map(|k| root[*k]["@odata.id"].as_str())
        .unwrap_or(SERVICE_ROOT);
    let target = url::same_origin(base, target)
        .map_err(|reason| Error::provider("redfish", label, format!("service root: {reason}")))?;
    let res = http
        .get(target)
        .header(AUTHORIZATION, basic_header(username, password)?)
        .send()
        .await
        .map_err(|e| from_transport(label, "Basic authentication check", e))?;
    let status = res.status();
    if status.is_success() {
        return Ok(());
    }
    let headers = res.headers().clone();
    let body = res.bytes().await.unwrap_or_default();
    let mut failure = from_status(label, "Basic authentication check", status, &headers, &body);
    if let Error::Unauthenticated { message, .. } = &mut failure.error {
        *message = format!(
            "unauthorized: the service refused user name {username:?} with this password ({message})"
        );
    }
    Err(failure.error)
}

/// `SessionTimeout` (and an enabled `AbsoluteSessionTimeout`) of the
/// SessionService, read with `auth`. `None` when it cannot be read.
pub(crate) async fn session_timeouts(
    http: &Client,
    base: &Url,
    auth: (HeaderName, HeaderValue),
) -> Option<(Duration, Option<Duration>)> {
    let service = base.join(SESSION_SERVICE).ok()?;
    let res = http.get(service).header(auth.0, auth.1).send().await.ok()?;
    if !res.status().is_success() {
        return None;
    }
    let service: Value = res.json().await.ok()?;
    let idle = Duration::from_secs(service["SessionTimeout"].as_u64()?);
    let absolute = (service["AbsoluteSessionTimeoutEnabled"].as_bool() == Some(true))
        .then(|| service["AbsoluteSessionTimeout"].as_u64())
        .flatten()
        .map(Duration::from_secs);
    Some((idle, absolute))
}
