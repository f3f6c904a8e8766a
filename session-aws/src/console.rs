//! AWS Management Console sign-in URLs from a session's credentials
//! (feature `console`).
//!
//! This is the "custom identity broker" procedure of the IAM User Guide:
//!
//! 1. **Temporary credentials.** Role credentials (`AssumeRole`, SAML, SSO)
//!    are used as they are. An IAM user's long-term key first goes through
//!    `sts:GetFederationToken` ([`ConsoleSignIn::federation_token`]), with an
//!    allow-all inline policy: the federated user then has exactly the IAM
//!    user's permissions (the intersection of both policies), as aws-vault
//!    does. (`GetSessionToken` credentials, what an `awsIamUser` session
//!    holds, cannot sign in to the console.)
//! 2. **A sign-in token**: `GET <federation endpoint>?Action=getSigninToken`
//!    with the credentials as `Session` JSON, and `SessionDuration` (the
//!    console session's length, 900–43 200 s) for role credentials only:
//!    AWS refuses it for `GetFederationToken` credentials, whose console
//!    session lasts as long as the credentials.
//! 3. **The sign-in URL**: `<federation endpoint>?Action=login&Issuer=…&Destination=…&SigninToken=…`.
//!    Opening it in a browser signs in; it works once, within 15 minutes.
//!
//! The URL grants console access: it is returned as a [`Secret`], and
//! neither it, the sign-in token nor the credentials appear in errors or
//! logs. Errors from the federation endpoint give the HTTP status and its
//! likely causes, never the answer's body (a service may quote the request,
//! and with it the credentials).
//!
//! Defaults follow the region's partition ([`Partition`]): the federation
//! endpoint (`https://signin.aws.amazon.com/federation`,
//! `https://signin.amazonaws-us-gov.com/federation`,
//! `https://signin.amazonaws.cn/federation`) and the destination (the
//! console home page of the region).
//!
//! ```no_run
//! # async fn demo(role_credentials: session_aws::AwsCredentials,
//! #               long_term_key: session_aws::AwsCredentials) -> session_core::Result<()> {
//! use std::time::Duration;
//! use session_aws::AwsClientConfig;
//! use session_aws::console::{ConsoleSignIn, CredentialsKind, federated_user_name};
//!
//! let console = ConsoleSignIn::builder()
//!     .region("eu-west-1")
//!     .session_duration(Duration::from_secs(4 * 3600))
//!     .build()?;
//!
//! // A role session's credentials:
//! let url = console
//!     .sign_in_url(&role_credentials, CredentialsKind::Role)
//!     .await?;
//! // Hand `url.expose()` to the browser; never print or log it.
//! # drop(url);
//!
//! // An IAM user's long-term key: GetFederationToken first.
//! let sts = AwsClientConfig::from_env()?;
//! let federated = console
//!     .federation_token(&sts, &long_term_key, &federated_user_name("dev"), 3600)
//!     .await?;
//! let url = console
//!     .sign_in_url(&federated.credentials, CredentialsKind::FederatedUser)
//!     .await?;
//! # drop(url);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use session_core::{Error, Result, Secret, SessionType};
use url::Url;

use crate::client::check_region;
use crate::lifecycle::from_sts;
pub use crate::partition::Partition;
use crate::{AwsClientConfig, AwsCredentials, DEFAULT_REGION, error};

/// The `Issuer` sent when none is set: where AWS sends the user when the
/// console session ends.
pub const DEFAULT_ISSUER: &str = "sessionctl";

/// The console session's length when none is set: one hour, the default
/// length of STS role sessions. Shorter than the maximum because the URL
/// (and the browser session it opens) grants console access that long.
pub const DEFAULT_SESSION_DURATION: Duration = Duration::from_secs(3600);

/// The `SessionDuration` values the federation endpoint accepts, in seconds.
pub const SESSION_DURATION_RANGE: RangeInclusive<u32> = 900..=43_200;

/// The `DurationSeconds` values `GetFederationToken` accepts (root users:
/// at most 3 600, which AWS enforces).
pub const FEDERATION_TOKEN_DURATION_RANGE: RangeInclusive<u32> = 900..=129_600;

/// The inline session policy passed to `GetFederationToken`. Without a
/// policy a federated user has no permissions; with this one it has the
/// IAM user's permissions, since AWS grants the intersection of both.
pub const ALLOW_ALL_POLICY: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

/// The timeout of each request to the federation endpoint when none is set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The provider named in errors.
const PROVIDER: &str = "aws-signin";

/// Where temporary credentials come from, which decides whether
/// `SessionDuration` is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CredentialsKind {
    /// A role session: `AssumeRole` (chained roles), `AssumeRoleWithSAML`
    /// (federated roles), SSO role credentials. `SessionDuration` is sent.
    Role,
    /// A federated user from `GetFederationToken`. `SessionDuration` is not
    /// sent (AWS refuses it); the console session lasts as long as the
    /// credentials, chosen in `GetFederationToken`.
    FederatedUser,
}

impl CredentialsKind {
    /// The kind of the credentials a session of `session_type` holds, if
    /// they can sign in: the role types are [`Role`](Self::Role). An
    /// `awsIamUser` session holds `GetSessionToken` credentials, which
    /// cannot: use its long-term key with
    /// [`ConsoleSignIn::federation_token`] instead. Non-AWS types: `None`.
    pub fn of_session_type(session_type: SessionType) -> Option<Self> {
        match session_type {
            SessionType::AwsIamRoleChained
            | SessionType::AwsIamRoleFederated
            | SessionType::AwsSsoRole => Some(Self::Role),
            _ => None,
        }
    }
}

/// Credentials from `GetFederationToken`, and who they are.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct FederationToken {
    /// The federated user's temporary credentials (`Debug` hides the
    /// secrets).
    pub credentials: AwsCredentials,
    /// `arn:<partition>:sts::<account>:federated-user/<name>`, if STS
    /// returned it.
    pub federated_user_arn: Option<String>,
}

/// Checks a `GetFederationToken` `Name`: 2–32 characters from
/// `[A-Za-z0-9_+=,.@-]`.
///
/// # Errors
///
/// [`Error::InvalidInput`] for the field `federated user name`.
pub fn validate_federated_user_name(name: &str) -> Result<()> {
    let len = name.chars().count();
    if (2..=32).contains(&len) && name.chars().all(federated_name_char) {
        Ok(())
    } else {
        Err(Error::invalid_input(
            "federated user name",
            format!("{name:?} must be 2-32 characters from A-Z a-z 0-9 _ + = , . @ -"),
        ))
    }
}

fn federated_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

/// A valid `GetFederationToken` `Name` derived from any text (a session
/// name): disallowed characters become `-`, cut to 32, padded to 2 with `-`.
///
/// ```
/// use session_aws::console::{federated_user_name, validate_federated_user_name};
/// assert_eq!(federated_user_name("prod admin"), "prod-admin");
/// assert_eq!(federated_user_name("x"), "x-");
/// assert!(validate_federated_user_name(&federated_user_name("é")).is_ok());
/// ```
pub fn federated_user_name(text: &str) -> String {
    let mut name: String = text
        .chars()
        .map(|c| if federated_name_char(c) { c } else { '-' })
        .take(32)
        .collect();
    while name.len() < 2 {
        name.push('-');
    }
    name
}

/// Builds a [`ConsoleSignIn`]; setters never fail, [`build`](Self::build)
/// checks.
#[derive(Clone, Debug, Default)]
pub struct ConsoleSignInBuilder {
    region: Option<String>,
    federation_endpoint: Option<String>,
    destination: Option<String>,
    issuer: Option<String>,
    session_duration: Option<Duration>,
    timeout: Option<Duration>,
}

impl ConsoleSignInBuilder {
    /// The region (default `us-east-1`): it picks the partition, hence the
    /// default federation endpoint and destination, and the STS region of
    /// [`ConsoleSignIn::federation_token`].
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Sends requests to this federation endpoint instead of the
    /// partition's (a test fake, a proxy). An `http(s)://` URL without
    /// query or fragment, e.g. `http://127.0.0.1:8080/federation`.
    pub fn federation_endpoint(mut self, url: impl Into<String>) -> Self {
        self.federation_endpoint = Some(url.into());
        self
    }

    /// The console page to open (default: the region's console home).
    pub fn destination(mut self, url: impl Into<String>) -> Self {
        self.destination = Some(url.into());
        self
    }

    /// The `Issuer`: where AWS sends the user when the console session
    /// ends (default [`DEFAULT_ISSUER`]).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The console session's length for role credentials: whole seconds
    /// within [`SESSION_DURATION_RANGE`] (default
    /// [`DEFAULT_SESSION_DURATION`]). Not used for federated users.
    pub fn session_duration(mut self, duration: Duration) -> Self {
        self.session_duration = Some(duration);
        self
    }

    /// The timeout of each request to the federation endpoint (default
    /// [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming the field: a region that is not a
    /// region name, or of an isolated partition (`*-iso*`, whose sign-in
    /// hosts are not public) unless both the endpoint and the destination
    /// are set; an endpoint or destination that is not an `http(s)://`
    /// URL (or an endpoint with a query, fragment or user info); an empty
    /// issuer or one with control characters; a session duration outside
    /// [`SESSION_DURATION_RANGE`] or not whole seconds; a zero timeout.
    pub fn build(self) -> Result<ConsoleSignIn> {
        let region = self.region.unwrap_or_else(|| DEFAULT_REGION.to_owned());
        check_region(Some(&region))?;
        if region.contains("-iso")
            && (self.federation_endpoint.is_none() || self.destination.is_none())
        {
            return Err(Error::invalid_input(
                "region",
                format!(
                    "{region} is in an isolated partition, whose sign-in and console hosts \
                     are not known here; set both the federation endpoint and the destination"
                ),
            ));
        }
        let partition = Partition::of_region(&region);

        let endpoint_text = self
            .federation_endpoint
            .as_deref()
            .unwrap_or(partition.federation_endpoint());
        let endpoint = http_url("federation endpoint", endpoint_text)?;
        if endpoint.query().is_some()
            || endpoint.fragment().is_some()
            || !endpoint.username().is_empty()
            || endpoint.password().is_some()
        {
            return Err(Error::invalid_input(
                "federation endpoint",
                format!(
                    "{endpoint_text:?} must have no query, fragment or user info \
                     (the parameters are added to it)"
                ),
            ));
        }

        let destination = match self.destination {
            Some(text) => http_url("destination", &text)?,
            None => http_url("destination", &partition.console_home(&region))?,
        };

        let issuer = self.issuer.unwrap_or_else(|| DEFAULT_ISSUER.to_owned());
        if issuer.is_empty() || issuer.chars().any(char::is_control) {
            return Err(Error::invalid_input(
                "issuer",
                "must be non-empty text without control characters",
            ));
        }

        let duration = self.session_duration.unwrap_or(DEFAULT_SESSION_DURATION);
        let session_duration = u32::try_from(duration.as_secs())
            .ok()
            .filter(|s| duration.subsec_nanos() == 0 && SESSION_DURATION_RANGE.contains(s))
            .ok_or_else(|| {
                Error::invalid_input(
                    "session duration",
                    format!(
                        "{duration:?} must be whole seconds from {} to {} (15 min to 12 h)",
                        SESSION_DURATION_RANGE.start(),
                        SESSION_DURATION_RANGE.end()
                    ),
                )
            })?;

        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() {
            return Err(Error::invalid_input("timeout", "must be more than zero"));
        }
        // No redirects: a federation endpoint that redirects is not one,
        // and the sign-in token must not be sent on to another host.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .build()
            .map_err(|e| {
                Error::provider_caused_by(
                    PROVIDER,
                    "console sign-in",
                    "cannot set up the HTTP client",
                    e.without_url(),
                )
            })?;

        Ok(ConsoleSignIn {
            region,
            partition,
            endpoint,
            destination,
            issuer,
            session_duration,
            timeout,
            http,
        })
    }
}

/// `text` as an absolute `http(s)://` URL with a host.
fn http_url(field: &str, text: &str) -> Result<Url> {
    match Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(url),
        _ => Err(Error::invalid_input(
            field,
            format!("{text:?} must be an absolute http:// or https:// URL"),
        )),
    }
}

/// Turns AWS credentials into console sign-in URLs through a federation
/// endpoint. Cheap to clone (the HTTP client is shared).
#[derive(Clone)]
pub struct ConsoleSignIn {
    region: String,
    partition: Partition,
    endpoint: Url,
    destination: Url,
    issuer: String,
    session_duration: u32,
    timeout: Duration,
    http: reqwest::Client,
}

impl fmt::Debug for ConsoleSignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsoleSignIn")
            .field("region", &self.region)
            .field("partition", &self.partition)
            .field("endpoint", &self.endpoint.as_str())
            .field("destination", &self.destination.as_str())
            .field("issuer", &self.issuer)
            .field("session_duration", &self.session_duration)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The federation endpoint's answer to `getSigninToken`.
#[derive(Deserialize)]
struct SigninTokenAnswer {
    #[serde(rename = "SigninToken")]
    signin_token: String,
}

impl ConsoleSignIn {
    /// A builder.
    pub fn builder() -> ConsoleSignInBuilder {
        ConsoleSignInBuilder::default()
    }

    /// The region.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The region's partition.
    pub fn partition(&self) -> Partition {
        self.partition
    }

    /// The federation endpoint requests go to.
    pub fn federation_endpoint(&self) -> &str {
        self.endpoint.as_str()
    }

    /// The console page the sign-in URL opens.
    pub fn destination(&self) -> &str {
        self.destination.as_str()
    }

    /// The `Issuer` sent.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The console session's length for role credentials.
    pub fn session_duration(&self) -> Duration {
        Duration::from_secs(u64::from(self.session_duration))
    }

    /// What errors name as the call's target (no secret in it).
    fn target(&self) -> String {
        format!("console sign-in at {}", self.endpoint)
    }

    /// A console sign-in URL for `credentials`: a sign-in token from the
    /// federation endpoint, then the `login` URL. Call it shortly before
    /// use: the URL works once, within 15 minutes.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidInput`] (`credentials`), before any request, for
    ///   credentials without a session token (a long-term access key: use
    ///   [`federation_token`](Self::federation_token) first) or with an
    ///   empty key id or secret;
    /// - when the endpoint refuses them (HTTP 400, 401):
    ///   [`Error::Unauthenticated`], 403: [`Error::PermissionDenied`], 429:
    ///   [`Error::Throttled`], 5xx: [`Error::Unavailable`], anything else
    ///   (including a redirect, which is not followed, and a 200 without a
    ///   sign-in token) [`Error::Provider`];
    /// - [`Error::Timeout`] and [`Error::Unavailable`] when it cannot be
    ///   reached in time.
    ///
    /// No error shows the credentials, the token, the URL or the answer's
    /// body.
    pub async fn sign_in_url(
        &self,
        credentials: &AwsCredentials,
        kind: CredentialsKind,
    ) -> Result<Secret> {
        let request = self.signin_token_request(credentials, kind)?;
        tracing::debug!(
            endpoint = %self.endpoint,
            ?kind,
            "requesting a console sign-in token"
        );
        let answer = self
            .http
            .get(request.expose())
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = answer.status();
        if !status.is_success() {
            let retry_after = answer
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err(status_error(
                self.target(),
                status.as_u16(),
                kind,
                retry_after,
            ));
        }
        let body = answer.bytes().await.map_err(|e| self.transport_error(e))?;
        // The body holds the token: parsed straight into a Secret, and
        // never quoted when it cannot be.
        let token = serde_json::from_slice::<SigninTokenAnswer>(&body)
            .ok()
            .map(|a| Secret::new(a.signin_token))
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Error::provider(
                    PROVIDER,
                    self.target(),
                    "getSigninToken answered 200 without a SigninToken (the answer is not shown)",
                )
            })?;
        Ok(self.login_url(&token))
    }

    /// The `getSigninToken` request URL (it holds the credentials).
    fn signin_token_request(
        &self,
        credentials: &AwsCredentials,
        kind: CredentialsKind,
    ) -> Result<Secret> {
        let token = credentials
            .session_token
            .as_ref()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Error::invalid_input(
                    "credentials",
                    "these credentials have no session token: a long-term access key cannot \
                     sign in to the console; get a federation token with it first \
                     (GetFederationToken), or use a role session's credentials",
                )
            })?;
        if credentials.access_key_id.is_empty() || credentials.secret_access_key.is_empty() {
            return Err(Error::invalid_input(
                "credentials",
                "the access key id and the secret access key must not be empty",
            ));
        }
        let session = Secret::new(
            serde_json::json!({
                "sessionId": credentials.access_key_id,
                "sessionKey": credentials.secret_access_key.expose(),
                "sessionToken": token.expose(),
            })
            .to_string(),
        );
        let mut url = self.endpoint.clone();
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("Action", "getSigninToken");
            if kind == CredentialsKind::Role {
                query.append_pair("SessionDuration", &self.session_duration.to_string());
            }
            query.append_pair("Session", session.expose());
        }
        Ok(Secret::new(String::from(url)))
    }

    /// The sign-in URL for `token`.
    fn login_url(&self, token: &Secret) -> Secret {
        let mut url = self.endpoint.clone();
        url.query_pairs_mut()
            .append_pair("Action", "login")
            .append_pair("Issuer", &self.issuer)
            .append_pair("Destination", self.destination.as_str())
            .append_pair("SigninToken", token.expose());
        Secret::new(String::from(url))
    }

    /// A transport failure, without the request URL (reqwest puts the
    /// URL, and with it the credentials, in its errors).
    fn transport_error(&self, err: reqwest::Error) -> Error {
        let target = self.target();
        if err.is_timeout() {
            return Error::Timeout {
                target,
                after: self.timeout,
            };
        }
        let message = if err.is_connect() {
            "cannot connect to the federation endpoint"
        } else {
            "the request to the federation endpoint failed"
        };
        Error::Unavailable {
            target,
            message: message.to_owned(),
            source: Some(Arc::new(err.without_url())),
        }
    }

    /// Temporary credentials for the federated user `name` from
    /// `sts:GetFederationToken`, signed with an IAM user's long-term key, in
    /// this sign-in's region (through `sts`'s endpoint, retries and
    /// timeouts), with the [`ALLOW_ALL_POLICY`] session policy. Sign in with
    /// them as [`CredentialsKind::FederatedUser`]; the console session then
    /// lasts `duration_seconds`.
    ///
    /// `name` shows in the federated user's ARN and in CloudTrail; derive
    /// one from a session name with [`federated_user_name`].
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidInput`], before any call: `name` not 2–32
    ///   characters from `[A-Za-z0-9_+=,.@-]`; `duration_seconds` outside
    ///   [`FEDERATION_TOKEN_DURATION_RANGE`]; `long_term` with a session
    ///   token (STS refuses temporary credentials here);
    /// - STS's errors, by category (e.g. [`Error::Unauthenticated`] for an
    ///   unknown or wrong key, [`Error::PermissionDenied`] without
    ///   `sts:GetFederationToken`).
    pub async fn federation_token(
        &self,
        sts: &AwsClientConfig,
        long_term: &AwsCredentials,
        name: &str,
        duration_seconds: u32,
    ) -> Result<FederationToken> {
        validate_federated_user_name(name)?;
        if !FEDERATION_TOKEN_DURATION_RANGE.contains(&duration_seconds) {
            return Err(Error::invalid_input(
                "federation token duration",
                format!(
                    "{duration_seconds} seconds is outside {}-{} (15 min to 36 h)",
                    FEDERATION_TOKEN_DURATION_RANGE.start(),
                    FEDERATION_TOKEN_DURATION_RANGE.end()
                ),
            ));
        }
        if long_term.session_token.is_some() {
            return Err(Error::invalid_input(
                "credentials",
                "GetFederationToken must be signed with an IAM user's long-term access key; \
                 these are temporary credentials (a role session's can sign in directly)",
            ));
        }
        let target = format!("federated user '{name}'");
        let region = sts.region_for(Some(&self.region));
        let output = sts
            .sts(&region, Some(long_term))
            .get_federation_token()
            .name(name)
            .duration_seconds(i32::try_from(duration_seconds).unwrap_or(i32::MAX))
            .policy(ALLOW_ALL_POLICY)
            .send()
            .await
            .map_err(|e| error::from_sdk("GetFederationToken", &target, e))?;
        let credentials = output.credentials().ok_or_else(|| {
            Error::provider(
                "aws-sts",
                &target,
                "GetFederationToken returned no credentials",
            )
        })?;
        Ok(FederationToken {
            credentials: from_sts(credentials)?,
            federated_user_arn: output.federated_user().map(|u| u.arn().to_owned()),
        })
    }
}

/// The error for a refused `getSigninToken` with HTTP `status`. The answer's
/// body is deliberately not read into it: the real endpoint answers with an
/// HTML page, and a proxy or fake could quote the request (the
/// credentials).
fn status_error(
    target: String,
    status: u16,
    kind: CredentialsKind,
    retry_after: Option<Duration>,
) -> Error {
    let causes = match kind {
        CredentialsKind::Role => {
            "the credentials may be expired, revoked or not a role session's (credentials from \
             GetFederationToken sign in as a federated user, without SessionDuration)"
        }
        CredentialsKind::FederatedUser => {
            "the credentials may be expired, revoked or not from GetFederationToken"
        }
    };
    let message = format!(
        "getSigninToken was refused (HTTP {status}): {causes} (the answer is not shown, as it \
         may quote the request)"
    );
    match status {
        400 | 401 => Error::Unauthenticated { target, message },
        403 => Error::PermissionDenied { target, message },
        429 => Error::Throttled {
            target,
            retry_after,
        },
        500..=599 => Error::Unavailable {
            target,
            message: format!("getSigninToken failed (HTTP {status})"),
            source: None,
        },
        300..=399 => Error::provider(
            PROVIDER,
            target,
            format!(
                "getSigninToken answered a redirect (HTTP {status}), which is not followed; \
                 check the federation endpoint"
            ),
        ),
        _ => Error::provider(
            PROVIDER,
            target,
            format!("getSigninToken answered HTTP {status} (the answer is not shown)"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role_creds() -> AwsCredentials {
        AwsCredentials {
            access_key_id: "ASIAEXAMPLEEXAMPLE01".into(),
            secret_access_key: Secret::new("se/cr+et=key"),
            session_token: Some(Secret::new("to/ken+with=specials")),
            expiration: None,
        }
    }

    fn query_of(url: &str) -> Vec<(String, String)> {
        Url::parse(url)
            .expect("URL")
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    #[test]
    fn partitions_by_region() {
        for (region, partition, endpoint, home) in [
            (
                "us-east-1",
                Partition::Aws,
                "https://signin.aws.amazon.com/federation",
                "https://us-east-1.console.aws.amazon.com/console/home?region=us-east-1",
            ),
            (
                "ap-southeast-2",
                Partition::Aws,
                "https://signin.aws.amazon.com/federation",
                "https://ap-southeast-2.console.aws.amazon.com/console/home?region=ap-southeast-2",
            ),
            (
                "us-gov-west-1",
                Partition::AwsUsGov,
                "https://signin.amazonaws-us-gov.com/federation",
                "https://console.amazonaws-us-gov.com/console/home?region=us-gov-west-1",
            ),
            (
                "cn-northwest-1",
                Partition::AwsCn,
                "https://signin.amazonaws.cn/federation",
                "https://console.amazonaws.cn/console/home?region=cn-northwest-1",
            ),
        ] {
            assert_eq!(Partition::of_region(region), partition, "{region}");
            let console = ConsoleSignIn::builder().region(region).build().unwrap();
            assert_eq!(console.partition(), partition);
            assert_eq!(console.federation_endpoint(), endpoint, "{region}");
            assert_eq!(console.destination(), home, "{region}");
        }
        assert_eq!(Partition::AwsUsGov.to_string(), "aws-us-gov");
        assert_eq!(Partition::AwsCn.name(), "aws-cn");
    }

    #[test]
    fn defaults_and_overrides() {
        let console = ConsoleSignIn::builder().build().unwrap();
        assert_eq!(console.region(), "us-east-1");
        assert_eq!(console.issuer(), DEFAULT_ISSUER);
        assert_eq!(console.session_duration(), DEFAULT_SESSION_DURATION);

        let console = ConsoleSignIn::builder()
            .region("eu-west-1")
            .federation_endpoint("http://127.0.0.1:8080/federation")
            .destination("https://eu-west-1.console.aws.amazon.com/s3/home")
            .issuer("https://broker.example.com/")
            .session_duration(Duration::from_secs(43_200))
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        assert_eq!(
            console.federation_endpoint(),
            "http://127.0.0.1:8080/federation"
        );
        assert_eq!(
            console.destination(),
            "https://eu-west-1.console.aws.amazon.com/s3/home"
        );
        assert_eq!(console.session_duration(), Duration::from_secs(43_200));
        // An isolated region works once both hosts are given.
        assert!(
            ConsoleSignIn::builder()
                .region("us-iso-east-1")
                .build()
                .is_err()
        );
        assert!(
            ConsoleSignIn::builder()
                .region("us-iso-east-1")
                .federation_endpoint("https://signin.example/federation")
                .destination("https://console.example/")
                .build()
                .is_ok()
        );
    }

    #[test]
    fn build_refuses_bad_settings() {
        let field_of = |b: ConsoleSignInBuilder| match b.build() {
            Err(Error::InvalidInput { field, .. }) => field,
            other => panic!("expected InvalidInput, got {other:?}"),
        };
        let b = ConsoleSignIn::builder;
        assert_eq!(field_of(b().region("EU West")), "region");
        assert_eq!(
            field_of(b().federation_endpoint("signin.aws")),
            "federation endpoint"
        );
        assert_eq!(
            field_of(b().federation_endpoint("ftp://signin.aws/federation")),
            "federation endpoint"
        );
        assert_eq!(
            field_of(b().federation_endpoint("https://signin.aws/federation?Action=login")),
            "federation endpoint"
        );
        assert_eq!(
            field_of(b().federation_endpoint("https://user:pw@signin.aws/federation")),
            "federation endpoint"
        );
        assert_eq!(field_of(b().destination("/console/home")), "destination");
        assert_eq!(field_of(b().issuer("")), "issuer");
        assert_eq!(field_of(b().issuer("a\nb")), "issuer");
        for bad in [899, 43_201, 0] {
            assert_eq!(
                field_of(b().session_duration(Duration::from_secs(bad))),
                "session duration",
                "{bad}"
            );
        }
        assert_eq!(
            field_of(b().session_duration(Duration::from_millis(3_600_500))),
            "session duration"
        );
        assert_eq!(field_of(b().timeout(Duration::ZERO)), "timeout");
        for good in [900, 43_200] {
            assert!(
                b().session_duration(Duration::from_secs(good))
                    .build()
                    .is_ok()
            );
        }
    }

    #[test]
    fn request_carries_the_session_json_and_duration_for_roles_only() {
        let console = ConsoleSignIn::builder()
            .federation_endpoint("http://127.0.0.1:9/federation")
            .session_duration(Duration::from_secs(7200))
            .build()
            .unwrap();
        let role = console
            .signin_token_request(&role_creds(), CredentialsKind::Role)
            .unwrap();
        let pairs = query_of(role.expose());
        let names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["Action", "SessionDuration", "Session"]);
        assert_eq!(pairs[0].1, "getSigninToken");
        assert_eq!(pairs[1].1, "7200");
        let session: serde_json::Value = serde_json::from_str(&pairs[2].1).unwrap();
        assert_eq!(
            session,
            serde_json::json!({
                "sessionId": "ASIAEXAMPLEEXAMPLE01",
                "sessionKey": "se/cr+et=key",
                "sessionToken": "to/ken+with=specials",
            })
        );
        let federated = console
            .signin_token_request(&role_creds(), CredentialsKind::FederatedUser)
            .unwrap();
        let names: Vec<String> = query_of(federated.expose())
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(names, ["Action", "Session"]);
    }

    #[test]
    fn login_url_has_issuer_destination_and_token() {
        let console = ConsoleSignIn::builder()
            .region("eu-west-1")
            .issuer("my broker")
            .build()
            .unwrap();
        let url = console.login_url(&Secret::new("tok/en+1"));
        assert!(
            url.expose()
                .starts_with("https://signin.aws.amazon.com/federation?Action=login&"),
            "{}",
            url.expose()
        );
        assert_eq!(
            query_of(url.expose()),
            [
                ("Action".to_owned(), "login".to_owned()),
                ("Issuer".to_owned(), "my broker".to_owned()),
                (
                    "Destination".to_owned(),
                    "https://eu-west-1.console.aws.amazon.com/console/home?region=eu-west-1"
                        .to_owned()
                ),
                ("SigninToken".to_owned(), "tok/en+1".to_owned()),
            ]
        );
        assert_eq!(format!("{url:?}"), "Secret(<redacted>)");
    }

    #[test]
    fn credentials_without_a_token_are_refused() {
        let console = ConsoleSignIn::builder().build().unwrap();
        let mut long_term = role_creds();
        long_term.session_token = None;
        let err = console
            .signin_token_request(&long_term, CredentialsKind::Role)
            .unwrap_err();
        assert_eq!(err.category(), "invalid_input");
        assert!(err.to_string().contains("GetFederationToken"), "{err}");
        long_term.session_token = Some(Secret::new(""));
        assert!(
            console
                .signin_token_request(&long_term, CredentialsKind::Role)
                .is_err()
        );
        let mut no_secret = role_creds();
        no_secret.secret_access_key = Secret::new("");
        assert!(
            console
                .signin_token_request(&no_secret, CredentialsKind::Role)
                .is_err()
        );
    }

    #[test]
    fn statuses_map_to_categories() {
        let of = |status| status_error("t".into(), status, CredentialsKind::Role, None);
        assert_eq!(of(400).category(), "unauthenticated");
        assert_eq!(of(401).category(), "unauthenticated");
        assert_eq!(of(403).category(), "permission_denied");
        assert_eq!(of(429).category(), "throttled");
        assert!(of(503).is_retryable());
        assert_eq!(of(302).category(), "provider");
        assert!(of(302).to_string().contains("redirect"));
        assert!(!of(418).is_retryable());
        let federated = status_error("t".into(), 400, CredentialsKind::FederatedUser, None);
        assert!(federated.to_string().contains("GetFederationToken"));
    }

    #[test]
    fn federated_user_names() {
        assert_eq!(federated_user_name("dev"), "dev");
        assert_eq!(federated_user_name("a b/c"), "a-b-c");
        assert_eq!(federated_user_name(""), "--");
        assert_eq!(federated_user_name(&"x".repeat(40)).len(), 32);
        for name in ["ab", "bob@example.com", "a+b=c,d.e_f-g", &"x".repeat(32)] {
            assert!(validate_federated_user_name(name).is_ok(), "{name}");
        }
        for name in ["a", "", "has space", "slash/", &"x".repeat(33), "é1"] {
            assert!(validate_federated_user_name(name).is_err(), "{name}");
        }
    }

    #[test]
    fn kinds_of_session_types() {
        assert_eq!(
            CredentialsKind::of_session_type(SessionType::AwsIamRoleChained),
            Some(CredentialsKind::Role)
        );
        assert_eq!(
            CredentialsKind::of_session_type(SessionType::AwsSsoRole),
            Some(CredentialsKind::Role)
        );
        assert_eq!(
            CredentialsKind::of_session_type(SessionType::AwsIamRoleFederated),
            Some(CredentialsKind::Role)
        );
        assert_eq!(
            CredentialsKind::of_session_type(SessionType::AwsIamUser),
            None
        );
        assert_eq!(CredentialsKind::of_session_type(SessionType::Redfish), None);
    }

    #[tokio::test]
    async fn federation_token_checks_its_inputs_before_calling() {
        // Nothing listens on port 9: a call would be Unavailable, not
        // InvalidInput.
        let sts = AwsClientConfig::builder()
            .endpoint_url("http://127.0.0.1:9")
            .max_attempts(1)
            .build()
            .unwrap();
        let console = ConsoleSignIn::builder().build().unwrap();
        let mut long_term = role_creds();
        long_term.session_token = None;
        let field = |r: Result<FederationToken>| match r {
            Err(Error::InvalidInput { field, .. }) => field,
            other => panic!("expected InvalidInput, got {other:?}"),
        };
        assert_eq!(
            field(console.federation_token(&sts, &long_term, "x", 3600).await),
            "federated user name"
        );
        for bad in [899, 129_601] {
            assert_eq!(
                field(console.federation_token(&sts, &long_term, "dev", bad).await),
                "federation token duration"
            );
        }
        assert_eq!(
            field(
                console
                    .federation_token(&sts, &role_creds(), "dev", 3600)
                    .await
            ),
            "credentials"
        );
        let err = console
            .federation_token(&sts, &long_term, "dev", 129_600)
            .await
            .unwrap_err();
        assert_eq!(err.category(), "unavailable", "{err:?}");
    }
}
