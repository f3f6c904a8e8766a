//! Accounts, roles and the in-memory session store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use session_core::{Clock, Secret};
use sha1::{Digest, Sha1};
use time::OffsetDateTime;
use tokio::sync::Notify;

/// A Redfish privilege (standard privilege registry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Privilege {
    /// Log in and read resources.
    Login,
    /// Manage the service (e.g. PATCH `SessionService`, delete any session).
    ConfigureManager,
    /// Manage accounts; sees every session.
    ConfigureUsers,
    /// Configure components (systems, chassis).
    ConfigureComponents,
    /// Manage one's own account and sessions.
    ConfigureSelf,
}

/// A standard Redfish role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// All five privileges.
    Administrator,
    /// `Login`, `ConfigureComponents`, `ConfigureSelf`.
    Operator,
    /// `Login`, `ConfigureSelf`.
    ReadOnly,
}

impl Role {
    /// The privileges this role grants.
    pub fn privileges(self) -> &'static [Privilege] {
        use Privilege::*;
        match self {
            Role::Administrator => &[
                Login,
                ConfigureManager,
                ConfigureUsers,
                ConfigureComponents,
                ConfigureSelf,
            ],
            Role::Operator => &[Login, ConfigureComponents, ConfigureSelf],
            Role::ReadOnly => &[Login, ConfigureSelf],
        }
    }

    /// Whether the role grants `privilege`.
    pub fn has(self, privilege: Privilege) -> bool {
        self.privileges().contains(&privilege)
    }

    /// The role's Redfish name (`Administrator`, `Operator`, `ReadOnly`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Administrator => "Administrator",
            Role::Operator => "Operator",
            Role::ReadOnly => "ReadOnly",
        }
    }
}

/// An account the server accepts.
#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub(crate) password: Secret,
    pub(crate) role: Role,
}

/// One live session.
#[derive(Debug, Clone)]
pub(crate) struct SessionEntry {
    pub(crate) id: String,
    pub(crate) username: String,
    pub(crate) created: OffsetDateTime,
    pub(crate) last_used: OffsetDateTime,
    pub(crate) context: Option<String>,
    key: [u8; 20],
}

/// Who made a request.
#[derive(Debug, Clone)]
pub(crate) struct Principal {
    pub(crate) username: String,
    pub(crate) role: Role,
}

/// Mutable settings of the `SessionService`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) timeout: Duration,
    pub(crate) service_enabled: bool,
}

#[derive(Debug, Default)]
struct Sessions {
    by_id: HashMap<String, SessionEntry>,
    /// Session id by a digest of its token (a lookup key, so the token
    /// itself is never a map key).
    by_token: HashMap<[u8; 20], String>,
}

/// Why a login failed.
#[derive(Debug)]
pub(crate) enum LoginError {
    BadCredentials,
    Disabled,
    Limit,
}

/// The shared state behind the router.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) accounts: HashMap<String, Account>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) max_sessions: Option<usize>,
    pub(crate) uuid: String,
    settings: Mutex<Settings>,
    sessions: Mutex<Sessions>,
    /// Wakes the reaper when the timeout changes.
    pub(crate) changed: Notify,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn token_key(token: &str) -> [u8; 20] {
    Sha1::digest(token.as_bytes()).into()
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS random source is available");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A password nobody has, compared against when the user does not exist, so
/// a bad user name costs as long as a bad password.
const DUMMY_PASSWORD: &str = "session-redfish-no-such-user-0000000000";

impl State {
    pub(crate) fn new(
        accounts: HashMap<String, Account>,
        clock: Arc<dyn Clock>,
        settings: Settings,
        max_sessions: Option<usize>,
    ) -> Self {
        Self {
            accounts,
            clock,
            max_sessions,
            uuid: uuid::Uuid::new_v4().to_string(),
            settings: Mutex::new(settings),
            sessions: Mutex::new(Sessions::default()),
            changed: Notify::new(),
        }
    }

    pub(crate) fn settings(&self) -> Settings {
        *lock(&self.settings)
    }

    pub(crate) fn update_settings(&self, f: impl FnOnce(&mut Settings)) -> Settings {
        let new = {
            let mut s = lock(&self.settings);
            f(&mut s);
            *s
        };
        self.changed.notify_one();
        new
    }

    /// Checks a user name and password (for login and Basic).
    pub(crate) fn check_password(&self, username: &str, password: &str) -> Option<Principal> {
        let given = Secret::new(password);
        match self.accounts.get(username) {
            Some(account) if account.password == given => Some(Principal {
                username: username.to_owned(),
                role: account.role,
            }),
            Some(_) => None,
            None => {
                let _ = Secret::new(DUMMY_PASSWORD) == given;
                None
            }
        }
    }

    /// Creates a session; returns it with its token.
    pub(crate) fn login(
        &self,
        username: &str,
        password: &str,
        context: Option<String>,
    ) -> Result<(SessionEntry, Secret), LoginError> {
        let principal = self
            .check_password(username, password)
            .filter(|p| p.role.has(Privilege::Login))
            .ok_or(LoginError::BadCredentials)?;
        let settings = self.settings();
        if !settings.service_enabled {
            return Err(LoginError::Disabled);
        }
        let now = self.clock.now();
        let mut sessions = lock(&self.sessions);
        Self::reap_locked(&mut sessions, now, settings.timeout);
        if self
            .max_sessions
            .is_some_and(|max| sessions.by_id.len() >= max)
        {
            return Err(LoginError::Limit);
        }
        let token = Secret::new(random_hex(32));
        let key = token_key(token.expose());
        let id = loop {
            let id = random_hex(8);
            if !sessions.by_id.contains_key(&id) {
                break id;
            }
        };
        let entry = SessionEntry {
            id: id.clone(),
            username: principal.username,
            created: now,
            last_used: now,
            context,
            key,
        };
        sessions.by_token.insert(key, id.clone());
        sessions.by_id.insert(id, entry.clone());
        Ok((entry, token))
    }

    /// Looks a token up, refreshing its idle timer; `None` when unknown or
    /// expired (an expired session is removed).
    pub(crate) fn authenticate_token(&self, token: &str) -> Option<(Principal, String)> {
        let now = self.clock.now();
        let timeout = self.settings().timeout;
        let key = token_key(token);
        let mut sessions = lock(&self.sessions);
        let id = sessions.by_token.get(&key)?.clone();
        let entry = sessions.by_id.get_mut(&id)?;
        if expired(entry, now, timeout) {
            Self::remove_locked(&mut sessions, &id);
            return None;
        }
        entry.last_used = now;
        let username = entry.username.clone();
        drop(sessions);
        let role = self.accounts.get(&username)?.role;
        Some((Principal { username, role }, id))
    }

    /// Every live session (expired ones are reaped first).
    pub(crate) fn list(&self) -> Vec<SessionEntry> {
        let now = self.clock.now();
        let timeout = self.settings().timeout;
        let mut sessions = lock(&self.sessions);
        Self::reap_locked(&mut sessions, now, timeout);
        let mut all: Vec<_> = sessions.by_id.values().cloned().collect();
        all.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        all
    }

    pub(crate) fn get(&self, id: &str) -> Option<SessionEntry> {
        let now = self.clock.now();
        let timeout = self.settings().timeout;
        let mut sessions = lock(&self.sessions);
        Self::reap_locked(&mut sessions, now, timeout);
        sessions.by_id.get(id).cloned()
    }

    pub(crate) fn remove(&self, id: &str) -> Option<SessionEntry> {
        Self::remove_locked(&mut lock(&self.sessions), id)
    }

    /// Removes expired sessions; returns the next expiry, if any.
    pub(crate) fn reap(&self) -> Option<OffsetDateTime> {
        let now = self.clock.now();
        let timeout = self.settings().timeout;
        let mut sessions = lock(&self.sessions);
        Self::reap_locked(&mut sessions, now, timeout);
        sessions.by_id.values().map(|e| e.last_used + timeout).min()
    }

    fn reap_locked(sessions: &mut Sessions, now: OffsetDateTime, timeout: Duration) {
        let dead: Vec<String> = sessions
            .by_id
            .values()
            .filter(|e| expired(e, now, timeout))
            .map(|e| e.id.clone())
            .collect();
        for id in dead {
            Self::remove_locked(sessions, &id);
        }
    }

    fn remove_locked(sessions: &mut Sessions, id: &str) -> Option<SessionEntry> {
        let entry = sessions.by_id.remove(id)?;
        sessions.by_token.remove(&entry.key);
        Some(entry)
    }
}

fn expired(entry: &SessionEntry, now: OffsetDateTime, timeout: Duration) -> bool {
    now >= entry.last_used + timeout
}
