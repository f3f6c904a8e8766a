//! The SSO token manager: cache, refresh, device flow, single-flight.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_sdk_ssooidc::operation::create_token::CreateTokenOutput;
use aws_sdk_ssooidc::operation::start_device_authorization::StartDeviceAuthorizationOutput;
use session_core::{Clock, Error, Result, Secret};
use time::OffsetDateTime;

use super::cache::{SsoRegistration, SsoToken, SsoTokenCache, lock_file, token_cache_id};
use super::client::{Clients, SsoClientConfig, error_code, from_sdk};
use session_core::device_code::{
    DeviceCodePolling, DeviceCodePrompt, DeviceCodePrompter, PollAnswer, poll_device_code,
};

use crate::validate::{sso_region, sso_session_name, start_url};

/// The registration scope that makes `CreateToken` return a refresh token.
/// Without it the user must approve a new sign-in in the browser every time
/// the Identity Center session ends (8 h by default).
pub const ACCOUNT_ACCESS_SCOPE: &str = "sso:account:access";

/// A cached access token is used while it has more than this left
/// (`expiresAt − 15 min > now`), as botocore does.
pub const TOKEN_REFRESH_WINDOW: Duration = Duration::from_secs(15 * 60);

/// A cached client registration is reused for a new sign-in only while it
/// has more than this left: the refresh tokens of that sign-in stop working
/// when the registration expires.
pub const REGISTRATION_REUSE_MARGIN: Duration = Duration::from_secs(24 * 3600);

/// How long a sign-in waits for another process's sign-in of the same
/// cache id (which may be waiting for a browser approval) to finish.
pub const DEFAULT_LOGIN_LOCK_TIMEOUT: Duration = Duration::from_secs(15 * 60);

const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const REFRESH_TOKEN_GRANT: &str = "refresh_token";
/// The device code lifetime assumed when the service gives none.
const DEFAULT_DEVICE_CODE_LIFETIME: Duration = Duration::from_secs(600);
/// The access token lifetime assumed when the service gives none.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// The registration lifetime assumed when the service gives none.
const DEFAULT_REGISTRATION_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// The `clientName` of our registrations.
const DEFAULT_CLIENT_NAME: &str = "session-sdk";

/// What identifies a sign-in: the start URL, the SSO region, the
/// registration scopes and the `sso-session` name.
///
/// The token file (and the sign-in lock) is per
/// [`cache_id`](Self::cache_id): the session name, else the start URL, as
/// in the AWS CLI.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SsoLoginKey {
    /// The AWS access portal URL, e.g. `https://d-123.awsapps.com/start`.
    pub start_url: String,
    /// The region of the Identity Center instance (`sso_region`).
    pub region: String,
    /// Registration scopes (default `["sso:account:access"]`).
    pub scopes: Vec<String>,
    /// The `sso-session` name, shared with the AWS CLI config, if any.
    pub session_name: Option<String>,
}

impl SsoLoginKey {
    /// A sign-in to `start_url` in `region` with the default scopes and no
    /// session name (the legacy, start-URL-keyed cache file).
    pub fn new(start_url: impl Into<String>, region: impl Into<String>) -> Self {
        Self {
            start_url: start_url.into(),
            region: region.into(),
            scopes: vec![ACCOUNT_ACCESS_SCOPE.to_owned()],
            session_name: None,
        }
    }

    /// Sets the `sso-session` name (the cache file is then named after it).
    pub fn with_session_name(mut self, name: impl Into<String>) -> Self {
        self.session_name = Some(name.into());
        self
    }

    /// Replaces the registration scopes.
    pub fn with_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The id the token file is named after.
    pub fn cache_id(&self) -> &str {
        token_cache_id(&self.start_url, self.session_name.as_deref())
    }

    /// Checks the start URL, region and session name.
    pub fn validate(&self) -> Result<()> {
        start_url(&self.start_url)?;
        sso_region(&self.region)?;
        if let Some(name) = &self.session_name {
            sso_session_name(name)?;
        }
        Ok(())
    }

    /// How errors name this sign-in.
    pub(crate) fn target(&self) -> String {
        format!("SSO sign-in to {} ({})", self.start_url, self.region)
    }

    /// Whether a cached token belongs to this sign-in (fields it lacks are
    /// not held against it).
    fn matches(&self, token: &SsoToken) -> bool {
        token
            .start_url
            .as_ref()
            .is_none_or(|u| *u == self.start_url)
            && token.region.as_ref().is_none_or(|r| *r == self.region)
    }
}

/// The token manager of IAM Identity Center sign-ins.
///
/// [`access_token`](Self::access_token) returns a portal access token for a
/// [`SsoLoginKey`], in this order:
///
/// 1. the cached token, while `expiresAt − 15 min > now`;
/// 2. a refresh (`CreateToken` with the `refresh_token` grant) with the
///    cached refresh token and registration, storing the new access token
///    and the rotated refresh token; if the refresh fails for a reason other
///    than a rejected grant or client and the old token has not expired,
///    the old token is served;
/// 3. the device flow: the AWS CLI's or our cached registration while it has
///    more than [`REGISTRATION_REUSE_MARGIN`] left (else `RegisterClient`
///    with the key's scopes; `InvalidClientException` registers again),
///    `StartDeviceAuthorization`, one `CreateToken` poll, then the
///    [`DeviceCodePrompter`], then a poll every `interval` (5 s if absent;
///    `SlowDown` adds 5 s) until approved, denied, or the device code's
///    `expiresIn` deadline.
///
/// Steps 2 and 3 run under a per-cache-id lock: an async mutex shared by
/// every `SsoLogin` of the process, then the lock file
/// [`SsoTokenCache::login_lock_path`] for other processes; the cache is
/// read again once both are held, so concurrent callers wait for one
/// sign-in and use its token. Time is read, and polling sleeps, only
/// through the [`Clock`] passed in.
pub struct SsoLogin {
    config: SsoClientConfig,
    clients: Clients,
    cache: SsoTokenCache,
    prompter: Arc<dyn DeviceCodePrompter>,
    client_name: String,
    login_lock_timeout: Duration,
}

impl fmt::Debug for SsoLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SsoLogin")
            .field("config", &self.config)
            .field("cache", &self.cache)
            .field("prompter", &self.prompter)
            .field("client_name", &self.client_name)
            .finish_non_exhaustive()
    }
}

/// Why a refresh did not produce a token.
enum RefreshError {
    /// The service refused the refresh token or the client (code): a new
    /// sign-in is needed.
    Rejected(String),
    /// Anything else (network, 5xx): a new sign-in would not help.
    Failed(Error),
}

/// Held while a sign-in of one cache id runs: the file lock (other
/// processes), then the in-process mutex. Dropped in that order.
struct LoginGuard {
    _file: std::fs::File,
    _flight: tokio::sync::OwnedMutexGuard<()>,
}

/// The in-process mutex of a sign-in lock file, shared by every `SsoLogin`.
fn flight(lock_path: &Path) -> Arc<tokio::sync::Mutex<()>> {
    type Flights = Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>;
    static FLIGHTS: OnceLock<Flights> = OnceLock::new();
    let mut flights = FLIGHTS
        .get_or_init(Flights::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    flights.entry(lock_path.to_path_buf()).or_default().clone()
}

/// Runs blocking cache I/O on the blocking pool.
async fn blocking<T: Send + 'static>(
    path: PathBuf,
    job: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(job).await.map_err(|e| {
        Error::storage(
            path,
            format!("the SSO cache access did not finish: {e}"),
            None,
        )
    })?
}

fn seconds(n: i32, default: Duration) -> Duration {
    match u64::try_from(n) {
        Ok(n) if n > 0 => Duration::from_secs(n),
        _ => default,
    }
}

impl SsoLogin {
    /// A token manager calling the services as `config` says, caching in
    /// `cache`, and showing device codes through `prompter`.
    pub fn new(
        config: SsoClientConfig,
        cache: SsoTokenCache,
        prompter: Arc<dyn DeviceCodePrompter>,
    ) -> Self {
        Self {
            config,
            clients: Clients::default(),
            cache,
            prompter,
            client_name: DEFAULT_CLIENT_NAME.to_owned(),
            login_lock_timeout: DEFAULT_LOGIN_LOCK_TIMEOUT,
        }
    }

    /// The `clientName` of new registrations (default `session-sdk`).
    pub fn with_client_name(mut self, name: impl Into<String>) -> Self {
        self.client_name = name.into();
        self
    }

    /// How long to wait for another process's sign-in of the same cache id
    /// (default [`DEFAULT_LOGIN_LOCK_TIMEOUT`]).
    pub fn with_login_lock_timeout(mut self, timeout: Duration) -> Self {
        self.login_lock_timeout = timeout;
        self
    }

    /// The token cache.
    pub fn cache(&self) -> &SsoTokenCache {
        &self.cache
    }

    /// The client settings.
    pub fn client_config(&self) -> &SsoClientConfig {
        &self.config
    }

    /// The portal client for `region`.
    pub(crate) fn portal(&self, region: &str) -> aws_sdk_sso::Client {
        self.clients.portal(&self.config, region)
    }

    /// The cached token of `key`, whatever its expiry, if the cache has one
    /// for this start URL and region. For inspection; never signs in.
    pub async fn cached_token(&self, key: &SsoLoginKey) -> Result<Option<SsoToken>> {
        let cache = self.cache.clone();
        let id = key.cache_id().to_owned();
        let path = self.cache.token_path(&id);
        let token = blocking(path, move || cache.load(&id)).await?;
        Ok(token.filter(|t| key.matches(t)))
    }

    /// A portal access token for `key`: cached, refreshed or from a new
    /// sign-in (see the type's documentation).
    pub async fn access_token(&self, key: &SsoLoginKey, clock: &dyn Clock) -> Result<Secret> {
        self.obtain(key, clock, None).await
    }

    /// A new access token after the portal rejected `rejected` (401
    /// `UnauthorizedException`): drops it from the cache (marks it expired,
    /// keeping the refresh token), then refreshes or signs in again. If
    /// another caller already replaced it, that token is returned without
    /// any call.
    pub async fn renew_rejected(
        &self,
        key: &SsoLoginKey,
        rejected: &Secret,
        clock: &dyn Clock,
    ) -> Result<Secret> {
        self.obtain(key, clock, Some(rejected)).await
    }

    /// Signs out: calls the portal's `Logout` with the cached token (a token
    /// the portal no longer knows is fine), then deletes the token file.
    /// The AWS CLI shares the file, so it is signed out too.
    pub async fn logout(&self, key: &SsoLoginKey) -> Result<()> {
        key.validate()?;
        let _guard = self.lock_login(key).await?;
        if let Some(token) = self.cached_token(key).await? {
            let result = self
                .portal(&key.region)
                .logout()
                .access_token(token.access_token.expose())
                .send()
                .await;
            if let Err(err) = result
                && error_code(&err).as_deref() != Some("UnauthorizedException")
            {
                return Err(from_sdk("Logout", &key.target(), err));
            }
        }
        let cache = self.cache.clone();
        let id = key.cache_id().to_owned();
        blocking(self.cache.token_path(&id), move || cache.remove(&id)).await
    }

    async fn obtain(
        &self,
        key: &SsoLoginKey,
        clock: &dyn Clock,
        rejected: Option<&Secret>,
    ) -> Result<Secret> {
        key.validate()?;
        if rejected.is_none()
            && let Some(token) = self.cached_token(key).await?
            && token.valid_for(clock.now(), TOKEN_REFRESH_WINDOW)
        {
            return Ok(token.access_token);
        }

        let _guard = self.lock_login(key).await?;
        let now = clock.now();
        if let Some(rejected) = rejected {
            let cache = self.cache.clone();
            let id = key.cache_id().to_owned();
            let bad = rejected.clone();
            let dropped = blocking(self.cache.token_path(&id), move || {
                cache.expire_if_current(&id, &bad, now)
            })
            .await?;
            if dropped {
                tracing::info!(
                    sign_in = %key.target(),
                    "the portal rejected the cached SSO access token; dropped it"
                );
            }
        }
        let is_rejected = |token: &SsoToken| rejected.is_some_and(|r| token.access_token == *r);

        // Re-read under the lock: another task or process may have signed
        // in while this one waited.
        let cached = self.cached_token(key).await?;
        if let Some(token) = &cached
            && token.valid_for(now, TOKEN_REFRESH_WINDOW)
            && !is_rejected(token)
        {
            return Ok(token.access_token.clone());
        }

        if let Some(token) = &cached
            && token.can_refresh(now)
        {
            match self.refresh(key, token, clock).await {
                Ok(fresh) => {
                    self.store(key, &fresh).await?;
                    tracing::info!(sign_in = %key.target(), "refreshed the SSO access token");
                    return Ok(fresh.access_token);
                }
                Err(RefreshError::Rejected(code)) => {
                    tracing::info!(
                        sign_in = %key.target(),
                        code,
                        "the SSO refresh token was refused; a new sign-in is needed"
                    );
                }
                Err(RefreshError::Failed(error)) => {
                    if token.expires_at > clock.now() && !is_rejected(token) {
                        tracing::warn!(
                            sign_in = %key.target(),
                            error = %error,
                            "refreshing the SSO access token failed; using the cached one \
                             until it expires"
                        );
                        return Ok(token.access_token.clone());
                    }
                    return Err(error);
                }
            }
        }

        let fresh = self.device_flow(key, cached.as_ref(), clock).await?;
        self.store(key, &fresh).await?;
        Ok(fresh.access_token)
    }

    async fn lock_login(&self, key: &SsoLoginKey) -> Result<LoginGuard> {
        let path = self.cache.login_lock_path(key.cache_id());
        let flight = flight(&path).lock_owned().await;
        let timeout = self.login_lock_timeout;
        let lock_path = path.clone();
        let file = blocking(path, move || {
            lock_file(
                &lock_path,
                timeout,
                "SSO sign-in (another sign-in is running)",
            )
        })
        .await?;
        Ok(LoginGuard {
            _file: file,
            _flight: flight,
        })
    }

    async fn store(&self, key: &SsoLoginKey, token: &SsoToken) -> Result<()> {
        let cache = self.cache.clone();
        let id = key.cache_id().to_owned();
        let token = token.clone();
        blocking(self.cache.token_path(&id), move || cache.store(&id, &token)).await
    }

    /// A token file entry for a `CreateToken` result.
    fn token_from(
        key: &SsoLoginKey,
        out: &CreateTokenOutput,
        registration: &SsoRegistration,
        previous_refresh_token: Option<&Secret>,
        now: OffsetDateTime,
    ) -> Result<SsoToken> {
        let access_token = out
            .access_token()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Error::provider(
                    "aws-sso",
                    key.target(),
                    "CreateToken returned no accessToken",
                )
            })?;
        Ok(SsoToken {
            access_token: Secret::new(access_token),
            expires_at: now + seconds(out.expires_in(), DEFAULT_TOKEN_LIFETIME),
            refresh_token: out
                .refresh_token()
                .map(Secret::new)
                .or_else(|| previous_refresh_token.cloned()),
            client_id: Some(registration.client_id.clone()),
            client_secret: Some(registration.client_secret.clone()),
            registration_expires_at: Some(registration.expires_at),
            region: Some(key.region.clone()),
            start_url: Some(key.start_url.clone()),
        })
    }

    async fn refresh(
        &self,
        key: &SsoLoginKey,
        token: &SsoToken,
        clock: &dyn Clock,
    ) -> std::result::Result<SsoToken, RefreshError> {
        let (Some(refresh_token), Some(registration)) =
            (token.refresh_token.as_ref(), token.registration())
        else {
            return Err(RefreshError::Rejected("no refresh token".to_owned()));
        };
        let result = self
            .clients
            .oidc(&self.config, &key.region)
            .create_token()
            .client_id(&registration.client_id)
            .client_secret(registration.client_secret.expose())
            .grant_type(REFRESH_TOKEN_GRANT)
            .refresh_token(refresh_token.expose())
            .send()
            .await;
        match result {
            Ok(out) => Self::token_from(key, &out, &registration, Some(refresh_token), clock.now())
                .map_err(RefreshError::Failed),
            Err(err) => match error_code(&err) {
                Some(code)
                    if matches!(
                        code.as_str(),
                        "InvalidGrantException"
                            | "InvalidClientException"
                            | "UnauthorizedClientException"
                            | "ExpiredTokenException"
                            | "AccessDeniedException"
                    ) =>
                {
                    Err(RefreshError::Rejected(code))
                }
                _ => Err(RefreshError::Failed(from_sdk(
                    "CreateToken",
                    &key.target(),
                    err,
                ))),
            },
        }
    }

    /// A registration to reuse for a new sign-in: the AWS CLI's for exactly
    /// this key, else the one in the token file (if it was registered with a
    /// refresh scope, or no scopes are wanted), while it has more than
    /// [`REGISTRATION_REUSE_MARGIN`] left.
    async fn reusable_registration(
        &self,
        key: &SsoLoginKey,
        cached: Option<&SsoToken>,
        now: OffsetDateTime,
    ) -> Result<Option<SsoRegistration>> {
        let fresh_enough = |r: &SsoRegistration| r.expires_at - REGISTRATION_REUSE_MARGIN > now;
        if key.session_name.is_some() {
            let cache = self.cache.clone();
            let k = key.clone();
            let path = self.cache.dir().to_path_buf();
            let cli = blocking(path, move || {
                let scopes = (!k.scopes.is_empty()).then_some(k.scopes.as_slice());
                cache.load_cli_registration(
                    &k.start_url,
                    &k.region,
                    scopes,
                    k.session_name.as_deref(),
                )
            })
            .await?;
            if let Some(registration) = cli.filter(fresh_enough) {
                return Ok(Some(registration));
            }
        }
        Ok(cached
            .filter(|t| t.refresh_token.is_some() || key.scopes.is_empty())
            .and_then(SsoToken::registration)
            .filter(fresh_enough)
            .map(|r| SsoRegistration {
                scopes: key.scopes.clone(),
                ..r
            }))
    }

    async fn register(
        &self,
        oidc: &aws_sdk_ssooidc::Client,
        key: &SsoLoginKey,
        clock: &dyn Clock,
    ) -> Result<SsoRegistration> {
        let mut request = oidc
            .register_client()
            .client_name(&self.client_name)
            .client_type("public");
        for scope in &key.scopes {
            request = request.scopes(scope);
        }
        let out = request
            .send()
            .await
            .map_err(|e| from_sdk("RegisterClient", &key.target(), e))?;
        let missing = |what: &str| {
            Error::provider(
                "aws-sso",
                key.target(),
                format!("RegisterClient returned no {what}"),
            )
        };
        let client_id = out.client_id().ok_or_else(|| missing("clientId"))?;
        let client_secret = out.client_secret().ok_or_else(|| missing("clientSecret"))?;
        let expires_at = match out.client_secret_expires_at() {
            at if at > 0 => OffsetDateTime::from_unix_timestamp(at)
                .map_err(|_| missing("valid clientSecretExpiresAt"))?,
            _ => clock.now() + DEFAULT_REGISTRATION_LIFETIME,
        };
        tracing::info!(sign_in = %key.target(), "registered a new SSO-OIDC client");
        Ok(SsoRegistration {
            client_id: client_id.to_owned(),
            client_secret: Secret::new(client_secret),
            expires_at,
            scopes: key.scopes.clone(),
        })
    }

    async fn start_authorization(
        oidc: &aws_sdk_ssooidc::Client,
        key: &SsoLoginKey,
        registration: &SsoRegistration,
    ) -> std::result::Result<
        StartDeviceAuthorizationOutput,
        aws_sdk_ssooidc::error::SdkError<
            aws_sdk_ssooidc::operation::start_device_authorization::StartDeviceAuthorizationError,
        >,
    > {
        oidc.start_device_authorization()
            .client_id(&registration.client_id)
            .client_secret(registration.client_secret.expose())
            .start_url(&key.start_url)
            .send()
            .await
    }

    async fn device_flow(
        &self,
        key: &SsoLoginKey,
        cached: Option<&SsoToken>,
        clock: &dyn Clock,
    ) -> Result<SsoToken> {
        let target = key.target();
        let oidc = self.clients.oidc(&self.config, &key.region);
        let reused = self.reusable_registration(key, cached, clock.now()).await?;
        let was_reused = reused.is_some();
        let registration = match reused {
            Some(registration) => registration,
            None => self.register(&oidc, key, clock).await?,
        };
        let (registration, authorization) =
            match Self::start_authorization(&oidc, key, &registration).await {
                Ok(authorization) => (registration, authorization),
                Err(err)
                    if was_reused
                        && error_code(&err).as_deref() == Some("InvalidClientException") =>
                {
                    tracing::info!(
                        sign_in = %target,
                        "the cached SSO-OIDC client registration was refused; registering again"
                    );
                    let registration = self.register(&oidc, key, clock).await?;
                    let authorization = Self::start_authorization(&oidc, key, &registration)
                        .await
                        .map_err(|e| from_sdk("StartDeviceAuthorization", &target, e))?;
                    (registration, authorization)
                }
                Err(err) => return Err(from_sdk("StartDeviceAuthorization", &target, err)),
            };
        self.poll(key, &oidc, &registration, &authorization, clock)
            .await
    }

    async fn poll(
        &self,
        key: &SsoLoginKey,
        oidc: &aws_sdk_ssooidc::Client,
        registration: &SsoRegistration,
        authorization: &StartDeviceAuthorizationOutput,
        clock: &dyn Clock,
    ) -> Result<SsoToken> {
        let target = key.target();
        let missing = |what: &str| {
            Error::provider(
                "aws-sso",
                target.clone(),
                format!("StartDeviceAuthorization returned no {what}"),
            )
        };
        let device_code = authorization
            .device_code()
            .ok_or_else(|| missing("deviceCode"))?;
        let user_code = authorization
            .user_code()
            .ok_or_else(|| missing("userCode"))?;
        let verification_uri = authorization
            .verification_uri()
            .ok_or_else(|| missing("verificationUri"))?;
        let lifetime = seconds(authorization.expires_in(), DEFAULT_DEVICE_CODE_LIFETIME);
        let prompt = DeviceCodePrompt::new(
            key.start_url.clone(),
            user_code,
            verification_uri,
            lifetime,
            clock.now(),
        )
        .with_verification_uri_complete(
            authorization.verification_uri_complete().map(str::to_owned),
        );
        let message = format!(
            "AWS IAM Identity Center sign-in for {start_url} ({region}):\n\
             open {url}\n\
             and confirm that the code is {code}.",
            start_url = key.start_url,
            region = key.region,
            url = prompt.url(),
            code = prompt.user_code,
        );
        let prompt = prompt.with_message(Some(message));
        // The SDK reads an absent `interval` as 0; both mean the default.
        let interval = u64::try_from(authorization.interval())
            .ok()
            .map(Duration::from_secs);
        // One poll before prompting, as the AWS CLI does: an already
        // approved authorization needs no prompt.
        let rules = DeviceCodePolling::new(interval).poll_before_prompt(true);
        let target = target.as_str();
        poll_device_code(
            &rules,
            &prompt,
            &*self.prompter,
            clock,
            target,
            move || async move {
                let result = oidc
                    .create_token()
                    .client_id(&registration.client_id)
                    .client_secret(registration.client_secret.expose())
                    .grant_type(DEVICE_CODE_GRANT)
                    .device_code(device_code)
                    .send()
                    .await;
                match result {
                    Ok(out) => Self::token_from(key, &out, registration, None, clock.now())
                        .map(PollAnswer::Granted),
                    Err(err) => match error_code(&err).as_deref() {
                        Some("AuthorizationPendingException") => Ok(PollAnswer::Pending),
                        Some("SlowDownException") => Ok(PollAnswer::SlowDown),
                        Some("ExpiredTokenException") => Err(Error::Unauthenticated {
                            target: target.to_owned(),
                            message: "the device authorization expired before it was approved \
                                  (ExpiredTokenException); start the sign-in again"
                                .to_owned(),
                        }),
                        Some("AccessDeniedException") => Err(Error::PermissionDenied {
                            target: target.to_owned(),
                            message: "the sign-in request was denied in the browser \
                                  (AccessDeniedException)"
                                .to_owned(),
                        }),
                        _ => Err(from_sdk("CreateToken", target, err)),
                    },
                }
            },
        )
        .await
    }
}
