//! Discovering the accounts and roles of an Identity Center sign-in.

use std::future::Future;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use session_core::{Clock, Error, Result, Secret};
use time::OffsetDateTime;

use super::client::{error_code, from_sdk};
use super::login::{SsoLogin, SsoLoginKey};
use super::provider::SsoRoleConfig;

/// Default client-side rate: 5 portal calls per second (as Leapp).
const DEFAULT_CALLS_PER_SECOND: u32 = 5;
/// Retries of one call answered 429 `TooManyRequestsException`.
const DEFAULT_MAX_RETRIES: u32 = 5;
/// First back-off after a 429; doubles each time, up to the cap.
const BASE_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(20);
/// The largest page the portal serves.
const MAX_PAGE_SIZE: i32 = 100;

/// One role the signed-in user may assume: an (account, role) pair to
/// turn into an `awsSsoRole` session.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SsoAssignment {
    /// The 12-digit account id.
    pub account_id: String,
    /// The account's display name, if the portal gave one.
    pub account_name: Option<String>,
    /// The account's root email, if the portal gave one.
    pub email_address: Option<String>,
    /// The permission set (role) name.
    pub role_name: String,
}

impl SsoAssignment {
    /// The config of an `awsSsoRole` session for this pair, signing in as
    /// `key` does.
    pub fn session_config(&self, key: &SsoLoginKey) -> SsoRoleConfig {
        let config = SsoRoleConfig::new(
            &key.start_url,
            &key.region,
            &self.account_id,
            &self.role_name,
        );
        match &key.session_name {
            Some(name) => config.with_session_name(name),
            None => config,
        }
    }

    /// A session name for this pair: `<account name or id>/<role>`.
    pub fn suggested_session_name(&self) -> String {
        format!(
            "{}/{}",
            self.account_name.as_deref().unwrap_or(&self.account_id),
            self.role_name
        )
    }
}

/// The accounts and roles of one Identity Center sign-in.
///
/// [`sync`](Self::sync) lists every account (`ListAccounts`), then the roles
/// of each (`ListAccountRoles`), following `nextToken`, one call at a time
/// and at most [`calls_per_second`](Self::with_calls_per_second) (default 5)
/// so large organisations do not get throttled. A 429
/// `TooManyRequestsException` is retried after an exponential back-off
/// (1 s doubling to 20 s, each with 50–100 % jitter), up to 5 times per
/// call. A 401 renews the sign-in once (as
/// [`SsoRoleProvider`](super::SsoRoleProvider) does). Waiting goes through
/// the [`Clock`] passed in.
#[derive(Debug, Clone)]
pub struct SsoIntegration {
    login: Arc<SsoLogin>,
    key: SsoLoginKey,
    min_interval: Duration,
    max_retries: u32,
    page_size: i32,
}

/// Spaces calls at least `min_interval` apart.
struct Pacer {
    next: Option<OffsetDateTime>,
    min_interval: Duration,
}

impl Pacer {
    async fn wait(&mut self, clock: &dyn Clock) {
        if let Some(next) = self.next
            && next > clock.now()
        {
            clock.sleep_until(next).await;
        }
        self.next = Some(clock.now() + self.min_interval);
    }
}

/// A random factor in `[0.5, 1.0)`: not cryptographic, just spread.
fn jitter() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u8(0);
    let bits = hasher.finish() >> 11; // 53 random bits
    #[allow(clippy::cast_precision_loss)] // exact: 53 bits fit an f64 mantissa
    let unit = bits as f64 / (1u64 << 53) as f64;
    0.5 + unit / 2.0
}

/// The back-off before retry number `attempt` (0-based).
fn backoff(attempt: u32) -> Duration {
    let exponential = BASE_BACKOFF.saturating_mul(2u32.saturating_pow(attempt));
    exponential.min(MAX_BACKOFF).mul_f64(jitter())
}

impl SsoIntegration {
    /// The assignments of the user signed in as `key` through `login`.
    pub fn new(login: Arc<SsoLogin>, key: SsoLoginKey) -> Self {
        Self {
            login,
            key,
            min_interval: Duration::from_secs(1) / DEFAULT_CALLS_PER_SECOND,
            max_retries: DEFAULT_MAX_RETRIES,
            page_size: MAX_PAGE_SIZE,
        }
    }

    /// At most `calls` portal calls per second (at least 1; default 5).
    pub fn with_calls_per_second(mut self, calls: u32) -> Self {
        self.min_interval = Duration::from_secs(1) / calls.max(1);
        self
    }

    /// Retries of a throttled call (default 5).
    pub fn with_max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Items per page asked of the portal (1–100, default 100).
    pub fn with_page_size(mut self, items: i32) -> Self {
        self.page_size = items.clamp(1, MAX_PAGE_SIZE);
        self
    }

    /// The sign-in.
    pub fn key(&self) -> &SsoLoginKey {
        &self.key
    }

    /// Every (account, role) pair the user may sign in to, accounts in the
    /// portal's order and roles in each account's order. Signs in first if
    /// needed (through the login's prompter).
    pub async fn sync(&self, clock: &dyn Clock) -> Result<Vec<SsoAssignment>> {
        self.key.validate()?;
        let portal = self.login.portal(&self.key.region);
        let mut token = self.login.access_token(&self.key, clock).await?;
        let mut pacer = Pacer {
            next: None,
            min_interval: self.min_interval,
        };

        let mut accounts = Vec::new();
        let list_accounts = |t: Secret, next_token: Option<String>| {
            portal
                .list_accounts()
                .access_token(t.expose())
                .max_results(self.page_size)
                .set_next_token(next_token)
                .send()
        };
        self.all_pages(
            clock,
            &mut pacer,
            &mut token,
            "ListAccounts",
            list_accounts,
            |out| {
                for account in out.account_list() {
                    if let Some(id) = account.account_id() {
                        accounts.push((
                            id.to_owned(),
                            account.account_name().map(str::to_owned),
                            account.email_address().map(str::to_owned),
                        ));
                    }
                }
                out.next_token().map(str::to_owned)
            },
        )
        .await?;

        let mut assignments = Vec::new();
        for (account_id, account_name, email_address) in accounts {
            let list_roles = |t: Secret, next_token: Option<String>| {
                portal
                    .list_account_roles()
                    .access_token(t.expose())
                    .account_id(&account_id)
                    .max_results(self.page_size)
                    .set_next_token(next_token)
                    .send()
            };
            self.all_pages(
                clock,
                &mut pacer,
                &mut token,
                "ListAccountRoles",
                list_roles,
                |out| {
                    for role in out.role_list() {
                        if let Some(role_name) = role.role_name() {
                            assignments.push(SsoAssignment {
                                account_id: account_id.clone(),
                                account_name: account_name.clone(),
                                email_address: email_address.clone(),
                                role_name: role_name.to_owned(),
                            });
                        }
                    }
                    out.next_token().map(str::to_owned)
                },
            )
            .await?;
        }
        Ok(assignments)
    }

    /// Every page of a paginated portal call, each through
    /// [`call`](Self::call): `request` asks for the page after a next token,
    /// `take` keeps what the page holds and returns its next token (none or
    /// empty: that was the last page).
    async fn all_pages<T, E, R, Fut>(
        &self,
        clock: &dyn Clock,
        pacer: &mut Pacer,
        token: &mut Secret,
        operation: &str,
        request: impl Fn(Secret, Option<String>) -> Fut,
        mut take: impl FnMut(T) -> Option<String>,
    ) -> Result<()>
    where
        Fut: Future<Output = std::result::Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        let mut next_token: Option<String> = None;
        loop {
            let page = |t: Secret| request(t, next_token.clone());
            let out = self.call(clock, pacer, token, operation, page).await?;
            next_token = take(out).filter(|t| !t.is_empty());
            if next_token.is_none() {
                return Ok(());
            }
        }
    }

    /// One paced portal call, retried after 429s, with one sign-in renewal
    /// on 401.
    async fn call<T, E, R, Fut>(
        &self,
        clock: &dyn Clock,
        pacer: &mut Pacer,
        token: &mut Secret,
        operation: &str,
        request: impl Fn(Secret) -> Fut,
    ) -> Result<T>
    where
        Fut: Future<Output = std::result::Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        let target = self.key.target();
        let mut throttled = 0;
        let mut renewed = false;
        loop {
            pacer.wait(clock).await;
            let err = match request(token.clone()).await {
                Ok(out) => return Ok(out),
                Err(err) => err,
            };
            match error_code(&err).as_deref() {
                Some("TooManyRequestsException") if throttled < self.max_retries => {
                    let delay = backoff(throttled);
                    throttled += 1;
                    tracing::debug!(
                        sign_in = %target,
                        operation,
                        delay_ms = delay.as_millis(),
                        "the SSO portal throttled a call; backing off"
                    );
                    clock.sleep_until(clock.now() + delay).await;
                }
                Some("UnauthorizedException") if !renewed => {
                    renewed = true;
                    *token = self.login.renew_rejected(&self.key, token, clock).await?;
                }
                Some("UnauthorizedException") => {
                    return Err(Error::Unauthenticated {
                        target,
                        message: format!(
                            "{operation}: UnauthorizedException for a freshly renewed SSO \
                             access token too; not retrying again"
                        ),
                    });
                }
                _ => return Err(from_sdk(operation, &target, err)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        for attempt in 0..8 {
            let full = BASE_BACKOFF
                .saturating_mul(2u32.pow(attempt))
                .min(MAX_BACKOFF);
            let delay = backoff(attempt);
            assert!(delay >= full / 2 && delay < full, "{attempt}: {delay:?}");
        }
        assert!(backoff(u32::MAX) < MAX_BACKOFF);
    }
}
