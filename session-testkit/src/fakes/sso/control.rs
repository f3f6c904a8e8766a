//! What a test does to the fake: configure it, act as the user, mint
//! logins for seeding token caches, inject faults, and read its counters.

use std::sync::Arc;
use std::time::Duration;

use session_core::Clock;
use time::OffsetDateTime;

use super::http::ApiError;
use super::state::{Account, Decision, Injected, RefreshStatus};
use super::{IssuedCredentials, MintedLogin, SsoFake};

impl SsoFake {
    // ----- configuration -------------------------------------------------

    /// Reads time from `clock` from now on.
    pub fn set_clock(&self, clock: Arc<dyn Clock>) {
        self.lock().clock = clock;
    }

    /// The fake's current time.
    pub fn now(&self) -> OffsetDateTime {
        self.lock().clock.now()
    }

    /// Assigns an account to the user (replaces the name and email of an
    /// account with the same id). `ListAccounts` lists accounts in the order
    /// they were first added.
    pub fn add_account(&self, account_id: &str, name: &str, email: &str) {
        let mut st = self.lock();
        let account = Account {
            id: account_id.to_owned(),
            name: name.to_owned(),
            email: email.to_owned(),
        };
        match st.accounts.iter_mut().find(|a| a.id == account_id) {
            Some(existing) => *existing = account,
            None => st.accounts.push(account),
        }
    }

    /// Assigns `role_name` in `account_id` to the user, so that
    /// `ListAccountRoles` lists it and `GetRoleCredentials` issues
    /// credentials for it. Adding the same role twice has no effect.
    pub fn add_role(&self, account_id: &str, role_name: &str) {
        let mut st = self.lock();
        let role = (account_id.to_owned(), role_name.to_owned());
        if !st.roles.contains(&role) {
            st.roles.push(role);
        }
    }

    /// The most items a `ListAccounts` / `ListAccountRoles` page holds (at
    /// least 1); a smaller `max_result` from the client wins.
    pub fn set_page_size(&self, items: usize) {
        self.lock().settings.page_size = items.max(1);
    }

    /// How long role credentials are valid (sent as epoch milliseconds).
    pub fn set_credentials_lifetime(&self, lifetime: Duration) {
        self.lock().settings.credentials_lifetime = lifetime;
    }

    /// How long access tokens are valid (`expiresIn`, whole seconds).
    pub fn set_access_token_lifetime(&self, lifetime: Duration) {
        self.lock().settings.access_token_lifetime = lifetime;
    }

    /// How long each refresh token is valid after it was issued.
    pub fn set_refresh_token_lifetime(&self, lifetime: Duration) {
        self.lock().settings.refresh_token_lifetime = lifetime;
    }

    /// How long new device codes are valid (`expiresIn`, whole seconds).
    pub fn set_device_code_lifetime(&self, lifetime: Duration) {
        self.lock().settings.device_code_lifetime = lifetime;
    }

    /// The polling `interval` returned by `StartDeviceAuthorization` (whole
    /// seconds) and enforced on `CreateToken` polls.
    pub fn set_interval(&self, interval: Duration) {
        self.lock().settings.interval = interval;
    }

    /// Whether two device-code polls closer together than the interval make
    /// the second answer `SlowDownException` (on by default).
    pub fn set_enforce_interval(&self, enforce: bool) {
        self.lock().settings.enforce_interval = enforce;
    }

    /// The next `n` device-code `CreateToken` polls (of a live, pending or
    /// approved device code) answer `SlowDownException`.
    pub fn slow_down_next(&self, n: usize) {
        self.lock().forced_slow_downs = n;
    }

    /// How long new client registrations are valid
    /// (`clientSecretExpiresAt`).
    pub fn set_client_secret_lifetime(&self, lifetime: Duration) {
        self.lock().settings.client_secret_lifetime = lifetime;
    }

    /// Approve every new device authorization at once, as if the user did.
    pub fn set_auto_approve(&self, auto: bool) {
        self.lock().settings.auto_approve = auto;
    }

    // ----- driving the user's side ---------------------------------------

    /// The user approves the device authorization with `user_code` (case and
    /// surrounding blanks ignored). True when a pending authorization was
    /// found and is now approved.
    ///
    /// Opening `verificationUriComplete` (`GET /device?user_code=…`) does
    /// the same.
    pub fn approve(&self, user_code: &str) -> bool {
        self.lock().decide(user_code, Decision::Approved)
    }

    /// The user denies the device authorization with `user_code`; its polls
    /// then answer `AccessDeniedException`. True when a pending
    /// authorization was found.
    pub fn deny(&self, user_code: &str) -> bool {
        self.lock().decide(user_code, Decision::Denied)
    }

    /// The user codes of device authorizations that are neither decided nor
    /// expired, oldest first.
    pub fn pending_user_codes(&self) -> Vec<String> {
        let st = self.lock();
        let now = st.clock.now();
        let mut pending: Vec<_> = st
            .devices
            .values()
            .filter(|d| d.decision == Decision::Pending && now < d.expires_at)
            .map(|d| (d.seq, d.user_code.clone()))
            .collect();
        pending.sort();
        pending.into_iter().map(|(_, code)| code).collect()
    }

    /// Makes every device code issued so far expired.
    pub fn expire_device_codes(&self) {
        let mut st = self.lock();
        let now = st.clock.now();
        for device in st.devices.values_mut() {
            device.expires_at = device.expires_at.min(now);
        }
    }

    /// Makes every client registration made so far expired
    /// (`InvalidClientException` from then on).
    pub fn expire_registrations(&self) {
        let mut st = self.lock();
        let now = st.clock.now();
        for client in st.clients.values_mut() {
            client.secret_expires_at = client.secret_expires_at.min(now);
        }
    }

    /// Makes every access token issued so far expired; refresh tokens stay
    /// valid, so a client can refresh.
    pub fn expire_access_tokens(&self) {
        let mut st = self.lock();
        let now = st.clock.now();
        for token in st.access_tokens.values_mut() {
            token.expires_at = token.expires_at.min(now);
        }
    }

    /// Revokes every access and refresh token issued so far, as when the
    /// Identity Center session ends: the portal answers
    /// `UnauthorizedException` and refreshes `InvalidGrantException`.
    pub fn revoke_all(&self) {
        let mut st = self.lock();
        for token in st.access_tokens.values_mut() {
            token.revoked = true;
        }
        for token in st.refresh_tokens.values_mut() {
            if token.status == RefreshStatus::Active {
                token.status = RefreshStatus::Revoked;
            }
        }
    }

    /// Whether `access_token` would be accepted by the portal now.
    pub fn access_token_valid(&self, access_token: &str) -> bool {
        let st = self.lock();
        let now = st.clock.now();
        st.access_tokens
            .get(access_token)
            .is_some_and(|t| !t.revoked && now < t.expires_at)
    }

    /// Whether `refresh_token` would be accepted by `CreateToken` now.
    pub fn refresh_token_valid(&self, refresh_token: &str) -> bool {
        let st = self.lock();
        let now = st.clock.now();
        st.refresh_tokens
            .get(refresh_token)
            .is_some_and(|t| t.status == RefreshStatus::Active && now < t.expires_at)
    }

    /// Registers a client with `scopes` and issues tokens for it directly,
    /// as if a device flow had been approved. Counts neither as a
    /// registration nor as a call.
    pub fn mint_login(&self, scopes: &[&str]) -> MintedLogin {
        let mut st = self.lock();
        let now = st.clock.now();
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        let client = st.new_client(scopes, now);
        let tokens = st.issue_tokens(&client, now);
        MintedLogin {
            client_id: client.id,
            client_secret: client.secret,
            client_secret_expires_at: client.secret_expires_at,
            access_token: tokens.access_token,
            access_token_expires_at: tokens.access_expires_at,
            refresh_token: tokens.refresh_token,
        }
    }

    /// Issues a valid portal access token without any flow (no refresh
    /// token).
    pub fn mint_access_token(&self) -> String {
        self.mint_login(&[]).access_token
    }

    // ----- fault injection -----------------------------------------------

    /// The next `n` portal calls (`GetRoleCredentials`, `ListAccounts`,
    /// `ListAccountRoles`, `Logout`) answer 429 `TooManyRequestsException`.
    /// Replaces any count still pending.
    pub fn throttle_next(&self, n: usize) {
        self.lock().throttle = n;
    }

    /// The next call of any operation (OIDC or portal) answers `status` with
    /// error type `error_type` (e.g. `500`, `"InternalServerException"`).
    /// Calls queue up: each injected failure is used once.
    pub fn fail_next_with(&self, status: u16, error_type: &str) {
        self.inject(None, status, error_type);
    }

    /// Like [`fail_next_with`](Self::fail_next_with), but only for the next
    /// call of `operation` (one of [`OPERATIONS`](super::OPERATIONS)).
    pub fn fail_next_call_of(&self, operation: &str, status: u16, error_type: &str) {
        self.inject(Some(operation.to_owned()), status, error_type);
    }

    fn inject(&self, operation: Option<String>, status: u16, error_type: &str) {
        let error = ApiError::new(status, error_type, "Injected failure");
        self.lock()
            .failures
            .push_back(Injected { operation, error });
    }

    // ----- counters --------------------------------------------------------

    /// How many requests reached `operation` (one of [`OPERATIONS`](super::OPERATIONS)),
    /// successful or not, injected failures included.
    pub fn calls(&self, operation: &str) -> usize {
        self.lock().calls.get(operation).copied().unwrap_or(0)
    }

    /// How many device authorizations were started successfully.
    pub fn device_authorizations(&self) -> usize {
        self.lock().device_authorizations
    }

    /// How many clients were registered successfully through
    /// `RegisterClient`.
    pub fn registrations(&self) -> usize {
        self.lock().registrations
    }

    /// Every set of role credentials issued, oldest first.
    pub fn issued_credentials(&self) -> Vec<IssuedCredentials> {
        self.lock().issued.clone()
    }
}
