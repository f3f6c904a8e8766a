//! The controller's REST API (`boundary.md` §1): password login, targets,
//! `authorize-session`, and sessions (list with pagination, read, cancel).
//!
//! [`ControllerClient`] is a thin, typed client over `reqwest` (rustls).
//! Errors are the core's categories, each naming the operation and, for a
//! bad request, the fields the controller named; nothing the client sent
//! that is secret (password, bearer token) can appear in one. A 429 or 503
//! with `Retry-After` is retried after the wait the controller asked for,
//! a few times, before it becomes [`session_core::Error::Throttled`].

mod errors;
mod model;
mod sessions;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use session_core::{Error, Result, Secret};
use url::Url;

pub use model::{
    AuthToken, Connection, ScopeInfo, Session, SessionAuthorization, SessionState, StateChange,
    Target,
};
pub use sessions::{ListQuery, SessionListing};

use errors::Failure;
use model::{AuthenticateResponse, ListPage};

/// The controller's default address (`boundary dev`).
pub const DEFAULT_ADDRESS: &str = "http://127.0.0.1:9200";

/// How many times a 429/503 with `Retry-After` is retried.
const THROTTLE_RETRIES: u32 = 3;
/// The longest `Retry-After` waited for; a longer one is returned as
/// [`Error::Throttled`] at once.
const LONGEST_WAIT: Duration = Duration::from_secs(30);

/// A target, by id or by name in a scope.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TargetRef {
    /// `ttcp_…` (or an alias).
    Id(String),
    /// A name, unique within its scope.
    Name {
        /// The target's name.
        name: String,
        /// Its scope.
        scope: ScopeRef,
    },
}

/// A scope, by id or by name.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScopeRef {
    /// `p_…`.
    Id(String),
    /// The scope's name.
    Name(String),
}

impl TargetRef {
    /// The target with this id.
    pub fn id(id: impl Into<String>) -> Self {
        Self::Id(id.into())
    }

    /// The target `name` in the scope with id `scope_id`.
    pub fn name_in_scope_id(name: impl Into<String>, scope_id: impl Into<String>) -> Self {
        Self::Name {
            name: name.into(),
            scope: ScopeRef::Id(scope_id.into()),
        }
    }

    /// The target `name` in the scope named `scope_name`.
    pub fn name_in_scope_named(name: impl Into<String>, scope_name: impl Into<String>) -> Self {
        Self::Name {
            name: name.into(),
            scope: ScopeRef::Name(scope_name.into()),
        }
    }

    /// Checks that the reference names something.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming `target` or `scope` when empty.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Id(id) if id.trim().is_empty() => {
                Err(Error::invalid_input("target", "the target id is empty"))
            }
            Self::Name { name, .. } if name.trim().is_empty() => {
                Err(Error::invalid_input("target", "the target name is empty"))
            }
            Self::Name {
                scope: ScopeRef::Id(s) | ScopeRef::Name(s),
                ..
            } if s.trim().is_empty() => Err(Error::invalid_input(
                "scope",
                "a target given by name needs its scope (id or name)",
            )),
            _ => Ok(()),
        }
    }
}

impl std::fmt::Display for TargetRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Id(id) => f.write_str(id),
            Self::Name {
                name,
                scope: ScopeRef::Id(s) | ScopeRef::Name(s),
            } => write!(f, "{name} in {s}"),
        }
    }
}

/// Options of a [`ControllerClient`].
#[derive(Clone, Debug)]
pub struct ControllerClientBuilder {
    address: String,
    timeout: Duration,
    connect_timeout: Duration,
}

impl ControllerClientBuilder {
    /// Time-out of one request (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Time-out of a TCP/TLS connect (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Checks the address and builds the client.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming `controller address` when it is not an
    /// `http://` or `https://` URL.
    pub fn build(self) -> Result<ControllerClient> {
        let base = controller_base(&self.address)?;
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .build()
            .map_err(|e| {
                Error::provider_caused_by(
                    "boundary",
                    base.as_str(),
                    "cannot build an HTTP client",
                    e,
                )
            })?;
        Ok(ControllerClient {
            http,
            address: base.as_str().trim_end_matches('/').to_owned(),
            base,
            token: None,
        })
    }
}

/// A Boundary controller.
#[derive(Clone, Debug)]
pub struct ControllerClient {
    http: reqwest::Client,
    base: Url,
    address: String,
    token: Option<Secret>,
}

impl ControllerClient {
    /// A client of the controller at `address` (e.g.
    /// `https://boundary.example.com:9200`), with default time-outs.
    ///
    /// # Errors
    ///
    /// As [`ControllerClientBuilder::build`].
    pub fn new(address: &str) -> Result<Self> {
        Self::builder(address).build()
    }

    /// A builder for a client of the controller at `address`.
    pub fn builder(address: &str) -> ControllerClientBuilder {
        ControllerClientBuilder {
            address: address.to_owned(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// The controller's address, normalised (no trailing `/` or `/v1`):
    /// the key of its stored auth tokens.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The same client, sending `token` as its bearer token.
    pub fn with_token(&self, token: Secret) -> Self {
        Self {
            token: Some(token),
            ..self.clone()
        }
    }

    /// Logs in with a password account (`:authenticate`, command `login`,
    /// type `token`).
    ///
    /// # Errors
    ///
    /// [`Error::Unauthenticated`] for a wrong login name or password,
    /// [`Error::NotFound`] for an unknown auth method, or any error of the
    /// call. The password never appears in an error.
    pub async fn authenticate_password(
        &self,
        auth_method_id: &str,
        login_name: &str,
        password: &Secret,
    ) -> Result<AuthToken> {
        non_empty("auth method id", auth_method_id)?;
        non_empty("login name", login_name)?;
        let body = json!({
            "command": "login",
            "type": "token",
            "attributes": {"login_name": login_name, "password": password.expose()},
        });
        let answer: AuthenticateResponse = self
            .call(
                Method::POST,
                &[&format!("auth-methods/{auth_method_id}:authenticate")],
                &[],
                Some(body),
                &format!("log in to {auth_method_id} as {login_name}"),
                &[password],
            )
            .await?;
        Ok(answer.attributes)
    }

    /// Logs out: deletes the auth token `token_id` on the controller. A
    /// token that no longer exists counts as logged out.
    ///
    /// # Errors
    ///
    /// Any error of the call but "not found".
    pub async fn logout(&self, token_id: &str) -> Result<()> {
        match self
            .call::<Value>(
                Method::DELETE,
                &["auth-tokens", token_id],
                &[],
                None,
                &format!("log out ({token_id})"),
                &[],
            )
            .await
        {
            Ok(_) | Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Lists the targets the caller can see in `scope_id` (with
    /// `recursive`, in it and below), every page.
    ///
    /// # Errors
    ///
    /// Any error of the call.
    pub async fn list_targets(&self, scope_id: &str, recursive: bool) -> Result<Vec<Target>> {
        let mut query = vec![("scope_id", scope_id.to_owned())];
        if recursive {
            query.push(("recursive", "true".to_owned()));
        }
        let mut targets = Vec::new();
        self.fetch_pages("targets", &query, None, &mut targets, |t: &Target| &t.id)
            .await?;
        Ok(targets)
    }

    /// Reads the target `id`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], or any error of the call.
    pub async fn read_target(&self, id: &str) -> Result<Target> {
        non_empty("target", id)?;
        self.call(
            Method::GET,
            &["targets", id],
            &[],
            None,
            &format!("read target {id}"),
            &[],
        )
        .await
    }

    /// The target `target` names: read by id, or found by name among the
    /// targets of its scope (the API reads targets by id only; a name is
    /// unique within its project).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when nothing matches, [`Error::InvalidInput`]
    /// naming the matches when a name in an org or global scope is not
    /// unique, or any error of the calls.
    pub async fn find_target(&self, target: &TargetRef) -> Result<Target> {
        target.validate()?;
        let (name, scope) = match target {
            TargetRef::Id(id) => return self.read_target(id).await,
            TargetRef::Name { name, scope } => (name, scope),
        };
        let candidates = match scope {
            ScopeRef::Id(id) => self.list_targets(id, !id.starts_with("p_")).await?,
            ScopeRef::Name(_) => self.list_targets("global", true).await?,
        };
        let mut matches: Vec<Target> = candidates
            .into_iter()
            .filter(|t| t.name == *name)
            .filter(|t| match scope {
                ScopeRef::Id(_) => true,
                ScopeRef::Name(scope_name) => t.scope.name == *scope_name,
            })
            .collect();
        match matches.len() {
            0 => Err(Error::not_found(format!(
                "{}: target {target}",
                self.address
            ))),
            1 => Ok(matches.remove(0)),
            _ => {
                let found: Vec<String> = matches
                    .iter()
                    .map(|t| format!("{} in {}", t.id, t.scope_id))
                    .collect();
                Err(Error::invalid_input(
                    "target",
                    format!(
                        "{} targets are named {name:?} ({}); give the project or the id",
                        matches.len(),
                        found.join(", ")
                    ),
                ))
            }
        }
    }

    /// Authorizes a session on `target` (`:authorize-session`), optionally
    /// on one host of its host sets. The session is then pending until a
    /// worker activates it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an empty reference,
    /// [`Error::NotFound`] for an unknown target, or any error of the call.
    pub async fn authorize_session(
        &self,
        target: &TargetRef,
        host_id: Option<&str>,
    ) -> Result<SessionAuthorization> {
        target.validate()?;
        let mut body = serde_json::Map::new();
        if let Some(host) = host_id.filter(|h| !h.is_empty()) {
            body.insert("host_id".into(), host.into());
        }
        let segment = match target {
            TargetRef::Id(id) => id.clone(),
            TargetRef::Name { name, scope } => {
                body.insert("name".into(), name.clone().into());
                match scope {
                    ScopeRef::Id(id) => body.insert("scope_id".into(), id.clone().into()),
                    ScopeRef::Name(n) => body.insert("scope_name".into(), n.clone().into()),
                };
                name.clone()
            }
        };
        self.call(
            Method::POST,
            &["targets", &format!("{segment}:authorize-session")],
            &[],
            Some(Value::Object(body)),
            &format!("authorize a session on {target}"),
            &[],
        )
        .await
    }

    /// Reads the session `id`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], or any error of the call.
    pub async fn read_session(&self, id: &str) -> Result<Session> {
        non_empty("session id", id)?;
        self.call(
            Method::GET,
            &["sessions", id],
            &[],
            None,
            &format!("read session {id}"),
            &[],
        )
        .await
    }

    /// One call: builds the URL from `segments` under `/v1/`, sends the
    /// bearer token, retries a 429/503 that names its wait (the request was
    /// not processed, so this is safe for every method), and decodes the
    /// answer.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<Value>,
        operation: &str,
        secrets: &[&Secret],
    ) -> Result<T> {
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| Error::invalid_input("controller address", "cannot be a base URL"))?;
            path.pop_if_empty().push("v1");
            for segment in segments {
                for part in segment.split('/') {
                    path.push(part);
                }
            }
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut secrets: Vec<&Secret> = secrets.to_vec();
        if let Some(token) = &self.token {
            secrets.push(token);
        }
        let mut tries = 0;
        loop {
            tries += 1;
            let mut request = self.http.request(method.clone(), url.clone());
            if let Some(token) = &self.token {
                request = request.bearer_auth(token.expose());
            }
            if let Some(body) = &body {
                request = request.json(body);
            }
            let response = request
                .send()
                .await
                .map_err(|e| self.transport_error(operation, &e))?;
            let status = response.status();
            let wait = errors::retry_after(
                response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()),
            );
            let bytes = response
                .bytes()
                .await
                .map_err(|e| self.transport_error(operation, &e))?;
            if status.is_success() {
                let bytes: &[u8] = if bytes.is_empty() { b"{}" } else { &bytes };
                return serde_json::from_slice(bytes).map_err(|e| {
                    Error::provider(
                        "boundary",
                        &self.address,
                        format!(
                            "{operation}: the controller's answer is not what Boundary sends: {e}"
                        ),
                    )
                });
            }
            let throttled = matches!(
                status,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            );
            if let (true, Some(wait)) = (throttled, wait)
                && tries <= THROTTLE_RETRIES
                && wait <= LONGEST_WAIT
            {
                tracing::debug!(%operation, ?wait, "boundary controller throttled; waiting");
                tokio::time::sleep(wait).await;
                continue;
            }
            return Err(
                Failure::from_body(status.as_u16(), &bytes, wait).into_error(
                    &self.address,
                    operation,
                    &secrets,
                ),
            );
        }
    }

    fn transport_error(&self, operation: &str, e: &reqwest::Error) -> Error {
        // reqwest's text names the URL, which carries no secret (tokens go
        // in a header, passwords in the body).
        if e.is_timeout() {
            return Error::Timeout {
                target: format!("{}: {operation}", self.address),
                after: Duration::ZERO,
            };
        }
        Error::Unavailable {
            target: self.address.clone(),
            message: format!("{operation}: cannot reach the controller: {e}"),
            source: None,
        }
    }
}

/// The controller's base URL: `http(s)://host[:port][/prefix]`, without a
/// trailing `/v1` (the Go client strips it too).
fn controller_base(address: &str) -> Result<Url> {
    let bad =
        |why: String| Error::invalid_input("controller address", format!("{address:?}: {why}"));
    let mut url = Url::parse(address.trim()).map_err(|e| bad(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must be an http:// or https:// URL".into()));
    }
    if url.host_str().is_none() {
        return Err(bad("has no host".into()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment".into()));
    }
    let path = url.path().trim_end_matches('/');
    let path = path.strip_suffix("/v1").unwrap_or(path).to_owned();
    url.set_path(&path);
    Ok(url)
}

fn non_empty(field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        Err(Error::invalid_input(field, "is empty"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_is_normalised_and_checked() {
        let base = |a| controller_base(a).map(|u| u.to_string());
        assert_eq!(
            base("http://127.0.0.1:9200").unwrap(),
            "http://127.0.0.1:9200/"
        );
        assert_eq!(base("https://b.example/v1/").unwrap(), "https://b.example/");
        assert_eq!(
            base("https://b.example/boundary/v1").unwrap(),
            "https://b.example/boundary"
        );
        for bad in ["127.0.0.1:9200", "ftp://x", "http://x/?a=b", ""] {
            let e = controller_base(bad).unwrap_err();
            assert!(
                matches!(&e, Error::InvalidInput { field, .. } if field == "controller address"),
                "{bad}: {e:?}"
            );
        }
    }

    #[test]
    fn a_target_reference_must_name_something() {
        assert!(TargetRef::id("ttcp_1234567890").validate().is_ok());
        assert!(TargetRef::id(" ").validate().is_err());
        assert!(TargetRef::name_in_scope_id("db", "").validate().is_err());
        assert!(
            TargetRef::name_in_scope_named("db", "prod")
                .validate()
                .is_ok()
        );
        assert_eq!(
            TargetRef::name_in_scope_named("db", "prod").to_string(),
            "db in prod"
        );
    }
}
