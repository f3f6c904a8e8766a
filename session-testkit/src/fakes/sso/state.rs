//! The fake's state: settings, accounts and roles, registered clients,
//! device authorizations, tokens and page cursors, counters and injected
//! faults; and issuing tokens.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use session_core::Clock;
use time::OffsetDateTime;

use super::http::{ApiError, Op, Reply};
use super::values::{ALNUM, random_chars, whole_seconds};
use super::{ACCOUNT_ACCESS_SCOPE, IssuedCredentials};

pub(super) type Shared = Arc<Mutex<FakeState>>;

pub(super) fn lock(state: &Shared) -> MutexGuard<'_, FakeState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) page_size: usize,
    pub(super) credentials_lifetime: Duration,
    pub(super) access_token_lifetime: Duration,
    pub(super) refresh_token_lifetime: Duration,
    pub(super) device_code_lifetime: Duration,
    pub(super) interval: Duration,
    pub(super) enforce_interval: bool,
    pub(super) client_secret_lifetime: Duration,
    pub(super) auto_approve: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            page_size: 20,
            credentials_lifetime: Duration::from_secs(3600),
            access_token_lifetime: Duration::from_secs(3600),
            refresh_token_lifetime: Duration::from_secs(8 * 3600),
            device_code_lifetime: Duration::from_secs(600),
            interval: Duration::from_secs(1),
            enforce_interval: true,
            client_secret_lifetime: Duration::from_secs(90 * 24 * 3600),
            auto_approve: false,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Account {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) email: String,
}

#[derive(Debug, Clone)]
pub(super) struct Client {
    pub(super) id: String,
    pub(super) secret: String,
    pub(super) scopes: Vec<String>,
    pub(super) secret_expires_at: OffsetDateTime,
}

impl Client {
    pub(super) fn gets_refresh_tokens(&self) -> bool {
        self.scopes.iter().any(|s| s == ACCOUNT_ACCESS_SCOPE)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decision {
    Pending,
    Approved,
    Denied,
}

#[derive(Debug)]
pub(super) struct Device {
    pub(super) seq: u64,
    pub(super) client_id: String,
    pub(super) user_code: String,
    pub(super) expires_at: OffsetDateTime,
    pub(super) decision: Decision,
    pub(super) last_poll: Option<OffsetDateTime>,
    pub(super) redeemed: bool,
}

#[derive(Debug)]
pub(super) struct AccessTokenRecord {
    pub(super) session: u64,
    pub(super) expires_at: OffsetDateTime,
    pub(super) revoked: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RefreshStatus {
    Active,
    Used,
    Revoked,
}

#[derive(Debug)]
pub(super) struct RefreshTokenRecord {
    pub(super) client_id: String,
    pub(super) session: u64,
    pub(super) expires_at: OffsetDateTime,
    pub(super) status: RefreshStatus,
}

#[derive(Debug)]
pub(super) struct Injected {
    /// The operation it is for; `None`: the next call of any.
    pub(super) operation: Option<String>,
    pub(super) error: ApiError,
}

pub(super) struct Tokens {
    pub(super) access_token: String,
    pub(super) access_expires_at: OffsetDateTime,
    pub(super) refresh_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PageCursor {
    pub(super) listing: String,
    pub(super) offset: usize,
}

pub(super) struct FakeState {
    pub(super) clock: Arc<dyn Clock>,
    pub(super) base_url: String,
    pub(super) settings: Settings,
    pub(super) accounts: Vec<Account>,
    pub(super) roles: Vec<(String, String)>,
    pub(super) clients: HashMap<String, Client>,
    pub(super) devices: HashMap<String, Device>,
    pub(super) access_tokens: HashMap<String, AccessTokenRecord>,
    pub(super) refresh_tokens: HashMap<String, RefreshTokenRecord>,
    pub(super) page_tokens: HashMap<String, PageCursor>,
    pub(super) calls: HashMap<&'static str, usize>,
    pub(super) registrations: usize,
    pub(super) device_authorizations: usize,
    pub(super) throttle: usize,
    pub(super) forced_slow_downs: usize,
    pub(super) failures: VecDeque<Injected>,
    pub(super) issued: Vec<IssuedCredentials>,
    pub(super) seq: u64,
}

impl FakeState {
    pub(super) fn new(clock: Arc<dyn Clock>, base_url: String) -> Self {
        Self {
            clock,
            base_url,
            settings: Settings::default(),
            accounts: Vec::new(),
            roles: Vec::new(),
            clients: HashMap::new(),
            devices: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            page_tokens: HashMap::new(),
            calls: HashMap::new(),
            registrations: 0,
            device_authorizations: 0,
            throttle: 0,
            forced_slow_downs: 0,
            failures: VecDeque::new(),
            issued: Vec::new(),
            seq: 0,
        }
    }

    pub(super) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub(super) fn decide(&mut self, user_code: &str, decision: Decision) -> bool {
        let wanted = user_code.trim().to_ascii_uppercase();
        let now = self.clock.now();
        match self
            .devices
            .values_mut()
            .find(|d| d.user_code == wanted && d.decision == Decision::Pending)
        {
            Some(device) if now < device.expires_at => {
                device.decision = decision;
                true
            }
            _ => false,
        }
    }

    /// The failure to answer instead of running `op`, if one was injected.
    pub(super) fn injected_failure(&mut self, op: Op) -> Option<ApiError> {
        if let Some(pos) = self
            .failures
            .iter()
            .position(|f| f.operation.as_deref().is_none_or(|o| o == op.name()))
        {
            return self.failures.remove(pos).map(|injected| injected.error);
        }
        if op.is_portal() && self.throttle > 0 {
            self.throttle -= 1;
            return Some(ApiError::new(
                429,
                "TooManyRequestsException",
                "Rate exceeded",
            ));
        }
        None
    }

    pub(super) fn new_client(&mut self, scopes: Vec<String>, now: OffsetDateTime) -> Client {
        let client = Client {
            id: random_chars(ALNUM, 22),
            secret: random_chars(ALNUM, 64),
            scopes,
            secret_expires_at: now + self.settings.client_secret_lifetime,
        };
        self.clients.insert(client.id.clone(), client.clone());
        client
    }

    pub(super) fn issue_tokens(&mut self, client: &Client, now: OffsetDateTime) -> Tokens {
        let session = self.next_seq();
        self.issue_tokens_in(client, session, now)
    }

    pub(super) fn issue_tokens_in(
        &mut self,
        client: &Client,
        session: u64,
        now: OffsetDateTime,
    ) -> Tokens {
        let access_token = format!("aoa{}", random_chars(ALNUM, 61));
        let access_expires_at = now + whole_seconds(self.settings.access_token_lifetime);
        self.access_tokens.insert(
            access_token.clone(),
            AccessTokenRecord {
                session,
                expires_at: access_expires_at,
                revoked: false,
            },
        );
        let refresh_token = client.gets_refresh_tokens().then(|| {
            let token = format!("aor{}", random_chars(ALNUM, 93));
            self.refresh_tokens.insert(
                token.clone(),
                RefreshTokenRecord {
                    client_id: client.id.clone(),
                    session,
                    expires_at: now + self.settings.refresh_token_lifetime,
                    status: RefreshStatus::Active,
                },
            );
            token
        });
        Tokens {
            access_token,
            access_expires_at,
            refresh_token,
        }
    }

    pub(super) fn token_reply(&self, tokens: Tokens) -> Reply {
        let mut body = json!({
            "accessToken": tokens.access_token,
            "tokenType": "Bearer",
            "expiresIn": whole_seconds(self.settings.access_token_lifetime).as_secs(),
        });
        if let Some(refresh) = tokens.refresh_token {
            body["refreshToken"] = Value::String(refresh);
        }
        Reply::Json(body)
    }
}
