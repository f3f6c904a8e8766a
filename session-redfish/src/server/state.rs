//! Accounts, roles and the in-memory session store.
//!
//! The store is sized for many live sessions (100,000 and more): every
//! operation on one session is O(1) or O(log n), and idle expiry walks an
//! index ordered by last use, so a login never scans the whole store.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use session_core::{Clock, Secret};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::sync::{Notify, mpsc};

use super::lockout::{ClientKey, Lockout, LockoutPolicy};
use super::persist::Op;
use super::shared::SharedLogins;

/// A Redfish privilege (standard privilege registry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Privilege {
    /// Log in and read resources.
    Login,
    /// Manage the service (e.g. PATCH `SessionService`, delete any session).
    ConfigureManager,
    /// Manage accounts; sees every session and account.
    ConfigureUsers,
    /// Configure components (systems, chassis).
    ConfigureComponents,
    /// Manage one's own account and sessions.
    ConfigureSelf,
}

impl Privilege {
    /// The privilege's Redfish name (`Login`, `ConfigureManager`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Privilege::Login => "Login",
            Privilege::ConfigureManager => "ConfigureManager",
            Privilege::ConfigureUsers => "ConfigureUsers",
            Privilege::ConfigureComponents => "ConfigureComponents",
            Privilege::ConfigureSelf => "ConfigureSelf",
        }
    }
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
    /// The three standard roles, in the order the `Roles` collection lists
    /// them.
    pub const ALL: [Role; 3] = [Role::Administrator, Role::Operator, Role::ReadOnly];

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

    /// The role's Redfish name (`Administrator`, `Operator`, `ReadOnly`),
    /// which is also its `RoleId`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Administrator => "Administrator",
            Role::Operator => "Operator",
            Role::ReadOnly => "ReadOnly",
        }
    }

    /// The role named `name` (case-sensitive, as `RoleId` values are).
    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// An account the server accepts.
#[derive(Debug, Clone)]
pub(crate) struct Account {
    /// Shared with every session of the account, so a session costs one
    /// pointer for its user name instead of a copy.
    pub(crate) username: Arc<str>,
    pub(crate) password: Secret,
    pub(crate) role: Role,
}

/// The configured accounts, in the order they were added; an account's
/// `Id` in the `Accounts` collection is its position plus one.
#[derive(Debug, Default)]
pub(crate) struct Accounts {
    list: Vec<Account>,
    by_name: HashMap<Arc<str>, usize>,
}

impl Accounts {
    /// Adds an account; one with the same name is replaced in place.
    pub(crate) fn insert(&mut self, username: &str, password: Secret, role: Role) {
        match self.by_name.get(username) {
            Some(&i) => {
                self.list[i].password = password;
                self.list[i].role = role;
            }
            None => {
                let username: Arc<str> = Arc::from(username);
                self.by_name.insert(username.clone(), self.list.len());
                self.list.push(Account {
                    username,
                    password,
                    role,
                });
            }
        }
    }

    pub(crate) fn get(&self, username: &str) -> Option<&Account> {
        self.by_name.get(username).map(|&i| &self.list[i])
    }

    /// The account's `Id` (1-based position).
    pub(crate) fn id_of(&self, username: &str) -> Option<usize> {
        self.by_name.get(username).map(|&i| i + 1)
    }

    /// The account with `Id` `id`.
    pub(crate) fn by_id(&self, id: usize) -> Option<&Account> {
        id.checked_sub(1).and_then(|i| self.list.get(i))
    }

    /// Every account with its `Id`.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &Account)> {
        self.list.iter().enumerate().map(|(i, a)| (i + 1, a))
    }
}

/// A session's `Id`: 64 random bits, shown as 16 lowercase hex digits. A
/// `u64` rather than a `String` keeps the per-session maps small.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct SessionId(u64);

impl SessionId {
    /// Parses the 16-hex-digit form; anything else is no session of ours.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        if s.len() != 16 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        u64::from_str_radix(s, 16).ok().map(SessionId)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// SHA-256 of the token: the only form of the token the store keeps, so a
/// memory dump of the store yields no usable token.
pub(crate) type TokenKey = [u8; 32];

/// One live session.
#[derive(Debug, Clone)]
pub(crate) struct SessionEntry {
    pub(crate) id: SessionId,
    pub(crate) username: Arc<str>,
    pub(crate) created: OffsetDateTime,
    pub(crate) last_used: OffsetDateTime,
    pub(crate) context: Option<Box<str>>,
    key: TokenKey,
    /// When the last use was last sent for persistence.
    persisted_at: OffsetDateTime,
    /// When the entry was last read from, or written to, a shared
    /// repository (see [`State::authenticate_key`]).
    confirmed_at: OffsetDateTime,
}

impl SessionEntry {
    /// The token's SHA-256 digest.
    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }
}

/// A session as a repository keeps it (see `persist`), to be taken into
/// memory by [`State::adopt`].
#[derive(Debug, Clone)]
pub(crate) struct StoredSession {
    pub(crate) id: SessionId,
    pub(crate) username: String,
    pub(crate) created: OffsetDateTime,
    pub(crate) last_used: OffsetDateTime,
    pub(crate) context: Option<String>,
    pub(crate) key: TokenKey,
}

/// What [`State::authenticate_key`] found.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// A live session, now refreshed.
    Found(Principal, SessionId),
    /// No live session in memory.
    Missing,
    /// In memory, but confirmed against the shared repository too long ago
    /// to be trusted without reading it again.
    Stale,
}

/// Who made a request.
#[derive(Debug, Clone)]
pub(crate) struct Principal {
    pub(crate) username: Arc<str>,
    pub(crate) role: Role,
}

/// Mutable settings of the `SessionService`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) timeout: Duration,
    pub(crate) service_enabled: bool,
}

/// The sessions, indexed three ways and kept in step by `insert`,
/// `touch` and `remove`.
#[derive(Debug, Default)]
struct Sessions {
    by_id: HashMap<SessionId, SessionEntry>,
    /// Session id by token digest (the token itself is never stored).
    by_token: HashMap<TokenKey, SessionId>,
    /// `(last_used, id)` in ascending order. Every session has the same idle
    /// timeout, so this is also expiry order, even after the timeout changes:
    /// reaping pops from the front and stops at the first live session.
    by_last_use: BTreeSet<(OffsetDateTime, SessionId)>,
}

impl Sessions {
    fn insert(&mut self, entry: SessionEntry) {
        self.by_token.insert(entry.key, entry.id);
        self.by_last_use.insert((entry.last_used, entry.id));
        self.by_id.insert(entry.id, entry);
    }

    fn remove(&mut self, id: SessionId) -> Option<SessionEntry> {
        let entry = self.by_id.remove(&id)?;
        self.by_token.remove(&entry.key);
        self.by_last_use.remove(&(entry.last_used, id));
        Some(entry)
    }

    /// Removes every session idle for `timeout` or longer: O(k log n) for k
    /// expired sessions, nothing for the live ones. Returns their ids.
    fn reap(&mut self, now: OffsetDateTime, timeout: Duration) -> Vec<SessionId> {
        let mut removed = Vec::new();
        while let Some(&(last_used, id)) = self.by_last_use.first() {
            if now < last_used + timeout {
                break;
            }
            // Pop the index entry itself (not whatever `remove` would find
            // through the map), so the loop ends even if the two disagreed.
            self.by_last_use.pop_first();
            if let Some(entry) = self.by_id.remove(&id) {
                self.by_token.remove(&entry.key);
                removed.push(id);
            }
        }
        removed
    }
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
    pub(crate) accounts: Accounts,
    /// Failed-login counters and locks.
    pub(crate) lockout: Lockout,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) max_sessions: Option<usize>,
    pub(crate) uuid: String,
    settings: Mutex<Settings>,
    sessions: Mutex<Sessions>,
    /// Wakes the reaper when the timeout changes.
    pub(crate) changed: Notify,
    /// The persistence writer's queue, once it runs.
    pub(crate) persist: OnceLock<mpsc::UnboundedSender<Op>>,
    /// The repository shared with other instances, if any.
    pub(crate) shared: Option<SharedLogins>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn token_key(token: &str) -> TokenKey {
    Sha256::digest(token.as_bytes()).into()
}

/// Lowercase hex through a table: one allocation, no formatting machinery.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// The `Id` of the session of the token with digest `key`: 64 bits of a
/// second, domain-separated hash. Deriving it (rather than drawing it) lets
/// an instance sharing a repository find the session of a token another
/// instance issued with one keyed read (`persist::record_id`), while the
/// `Id`, which administrators see, tells nothing about the token.
pub(crate) fn id_of(key: &TokenKey) -> SessionId {
    let digest = Sha256::new()
        .chain_update(b"session-redfish session id\0")
        .chain_update(key)
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    SessionId(u64::from_le_bytes(first))
}

/// A new token (32 random bytes as 64 hex digits: 256 bits, and hex so the
/// protocol validator can run its randomness tests on it) and its digest.
fn new_token() -> (Secret, TokenKey) {
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf).expect("the OS random source is available");
    let token = hex(&buf);
    let key = token_key(&token);
    (Secret::new(token), key)
}

/// A password nobody has, compared against when the user does not exist, so
/// a bad user name costs as long as a bad password.
const DUMMY_PASSWORD: &str = "session-redfish-no-such-user-0000000000";

impl State {
    pub(crate) fn new(
        accounts: Accounts,
        clock: Arc<dyn Clock>,
        settings: Settings,
        max_sessions: Option<usize>,
        lockout: LockoutPolicy,
    ) -> Self {
        Self {
            lockout: Lockout::new(lockout),
            accounts,
            clock,
            max_sessions,
            uuid: uuid::Uuid::new_v4().to_string(),
            settings: Mutex::new(settings),
            sessions: Mutex::new(Sessions::default()),
            changed: Notify::new(),
            persist: OnceLock::new(),
            shared: None,
        }
    }

    /// Shares logins through `repo`, trusting what was read from it for
    /// `recheck` (see [`State::authenticate_key`]).
    pub(crate) fn sharing(
        mut self,
        repo: Arc<dyn session_core::WorkspaceRepository>,
        recheck: Duration,
    ) -> Self {
        self.shared = Some(SharedLogins { repo, recheck });
        self
    }

    /// Queues a change for the persistence writer (no-op without one).
    /// Called with the sessions lock held, so changes queue in the order
    /// they happened.
    fn persist(&self, op: Op) {
        if let Some(tx) = self.persist.get() {
            let _ = tx.send(op);
        }
    }

    fn persist_expired(&self, expired: Vec<SessionId>) {
        for id in expired {
            self.persist(Op::Expire(id));
        }
    }

    /// Takes a session read from the repository into memory: a new entry,
    /// or the one already there with the later of the two last uses. False
    /// (and nothing kept) when its account is no longer configured, when its
    /// idle time is up, or when its id is held by another token.
    pub(crate) fn adopt(&self, stored: StoredSession) -> bool {
        let Some(account) = self.accounts.get(&stored.username) else {
            return false;
        };
        let now = self.clock.now();
        let timeout = self.settings().timeout;
        let mut sessions = lock(&self.sessions);
        let id = stored.id;
        match sessions.by_id.get(&id).map(|e| (e.key, e.last_used)) {
            Some((key, _)) if key != stored.key => false,
            Some((_, last_used)) => {
                let latest = last_used.max(stored.last_used);
                if now >= latest + timeout {
                    sessions.remove(id);
                    self.persist(Op::Expire(id));
                    return false;
                }
                if latest > last_used {
                    sessions.by_last_use.remove(&(last_used, id));
                    sessions.by_last_use.insert((latest, id));
                }
                let entry = sessions.by_id.get_mut(&id).expect("present above");
                entry.last_used = latest;
                entry.persisted_at = entry.persisted_at.max(stored.last_used);
                entry.confirmed_at = now;
                true
            }
            None => {
                if now >= stored.last_used + timeout || sessions.by_token.contains_key(&stored.key)
                {
                    return false;
                }
                sessions.insert(SessionEntry {
                    id,
                    username: account.username.clone(),
                    created: stored.created,
                    last_used: stored.last_used,
                    context: stored.context.map(String::into_boxed_str),
                    key: stored.key,
                    persisted_at: stored.last_used,
                    confirmed_at: now,
                });
                true
            }
        }
    }

    /// Drops a session from memory only (it ended elsewhere, or never was).
    pub(crate) fn forget(&self, id: SessionId) {
        lock(&self.sessions).remove(id);
    }

    /// The last use of the session in memory, if it is there.
    pub(crate) fn last_used(&self, id: SessionId) -> Option<OffsetDateTime> {
        lock(&self.sessions).by_id.get(&id).map(|e| e.last_used)
    }

    /// Queues the deletion of an expired session's record (the writer
    /// checks first that no other instance has used it since).
    pub(crate) fn expire_record(&self, id: SessionId) {
        self.persist(Op::Expire(id));
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

    /// Checks a user name and password from `client` (for login and
    /// Basic), counting failures for the lockout. A locked login fails as
    /// a wrong password does, whatever the password.
    pub(crate) fn check_password(
        &self,
        username: &str,
        password: &str,
        client: ClientKey,
    ) -> Option<Principal> {
        let now = self.clock.now();
        let locked = self.lockout.is_locked(username, client, now);
        let given = Secret::new(password);
        // The comparison runs even when locked, so a lock costs the same
        // time as a wrong password.
        let found = match self.accounts.get(username) {
            Some(account) if account.password == given => Some(Principal {
                username: account.username.clone(),
                role: account.role,
            }),
            Some(_) => None,
            None => {
                let _ = Secret::new(DUMMY_PASSWORD) == given;
                None
            }
        };
        if locked {
            return None;
        }
        match found {
            Some(p) => {
                self.lockout.succeeded(username, client);
                Some(p)
            }
            None => {
                self.lockout.failed(username, client, now);
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
        client: ClientKey,
    ) -> Result<(SessionEntry, Secret), LoginError> {
        let principal = self
            .check_password(username, password, client)
            .filter(|p| p.role.has(Privilege::Login))
            .ok_or(LoginError::BadCredentials)?;
        let settings = self.settings();
        if !settings.service_enabled {
            return Err(LoginError::Disabled);
        }
        // The random draw and the digests happen before taking the lock, so
        // concurrent logins only serialise on the map updates.
        let (mut token, mut key) = new_token();
        let mut id = id_of(&key);
        let now = self.clock.now();
        let mut sessions = lock(&self.sessions);
        let removed = sessions.reap(now, settings.timeout);
        self.persist_expired(removed);
        if self
            .max_sessions
            .is_some_and(|max| sessions.by_id.len() >= max)
        {
            return Err(LoginError::Limit);
        }
        // 64-bit ids: a clash is all but impossible, but must not merge two
        // sessions.
        while sessions.by_id.contains_key(&id) {
            (token, key) = new_token();
            id = id_of(&key);
        }
        let entry = SessionEntry {
            id,
            username: principal.username,
            created: now,
            last_used: now,
            context: context.map(String::into_boxed_str),
            key,
            persisted_at: now,
            confirmed_at: now,
        };
        sessions.insert(entry.clone());
        // With shared logins the caller writes the record itself before
        // answering, so the other instances know the token once the client
        // has it.
        if self.persist.get().is_some() && self.shared.is_none() {
            self.persist(Op::Upsert(entry.clone()));
        }
        Ok((entry, token))
    }

    /// Looks a token up, refreshing its idle timer; `None` when unknown or
    /// expired (an expired session is removed).
    pub(crate) fn authenticate_token(&self, token: &str) -> Option<(Principal, SessionId)> {
        match self.authenticate_key(&token_key(token), None) {
            Lookup::Found(who, id) => Some((who, id)),
            Lookup::Missing | Lookup::Stale => None,
        }
    }

    /// [`authenticate_token`](Self::authenticate_token) by the token's
    /// digest. With `fresh_within`, an entry last confirmed against the
    /// shared repository that long ago or longer is [`Lookup::Stale`] and
    /// left untouched (a zero duration: always).
    pub(crate) fn authenticate_key(
        &self,
        key: &TokenKey,
        fresh_within: Option<Duration>,
    ) -> Lookup {
        let now = self.clock.now();
        let timeout = self.settings().timeout;
        let mut guard = lock(&self.sessions);
        let sessions = &mut *guard;
        let Some(&id) = sessions.by_token.get(key) else {
            return Lookup::Missing;
        };
        let Some(entry) = sessions.by_id.get_mut(&id) else {
            return Lookup::Missing;
        };
        if fresh_within.is_some_and(|fresh| now >= entry.confirmed_at + fresh) {
            return Lookup::Stale;
        }
        if now >= entry.last_used + timeout {
            sessions.remove(id);
            self.persist(Op::Expire(id));
            return Lookup::Missing;
        }
        // Never move a session back in time (a clock set backwards), so the
        // last-use index and the entry cannot disagree.
        if now > entry.last_used {
            sessions.by_last_use.remove(&(entry.last_used, id));
            sessions.by_last_use.insert((now, id));
            entry.last_used = now;
            // The persisted last use may lag by up to a quarter timeout.
            if self.persist.get().is_some() && now - entry.persisted_at >= timeout / 4 {
                entry.persisted_at = now;
                self.persist(Op::Upsert(entry.clone()));
            }
        }
        let username = entry.username.clone();
        drop(guard);
        match self.accounts.get(&username) {
            Some(account) => Lookup::Found(
                Principal {
                    username,
                    role: account.role,
                },
                id,
            ),
            None => Lookup::Missing,
        }
    }

    /// The ids of the live sessions of `owner` (of everyone when `None`),
    /// oldest first; expired ones are reaped first, so none is listed.
    pub(crate) fn list(&self, owner: Option<&str>) -> Vec<SessionId> {
        let now = self.clock.now();
        let timeout = self.settings().timeout;
        let mut sessions = lock(&self.sessions);
        let removed = sessions.reap(now, timeout);
        self.persist_expired(removed);
        let mut all: Vec<(OffsetDateTime, SessionId)> = sessions
            .by_id
            .values()
            .filter(|e| owner.is_none_or(|o| *e.username == *o))
            .map(|e| (e.created, e.id))
            .collect();
        drop(sessions);
        all.sort_unstable();
        all.into_iter().map(|(_, id)| id).collect()
    }

    pub(crate) fn get(&self, id: SessionId) -> Option<SessionEntry> {
        let now = self.clock.now();
        let timeout = self.settings().timeout;
        let mut sessions = lock(&self.sessions);
        let removed = sessions.reap(now, timeout);
        self.persist_expired(removed);
        sessions.by_id.get(&id).cloned()
    }

    pub(crate) fn remove(&self, id: SessionId) -> Option<SessionEntry> {
        let mut sessions = lock(&self.sessions);
        let removed = sessions.remove(id);
        if removed.is_some() {
            self.persist(Op::Remove(id));
        }
        removed
    }

    /// Removes expired sessions; returns the next expiry, if any.
    pub(crate) fn reap(&self) -> Option<OffsetDateTime> {
        let now = self.clock.now();
        let timeout = self.settings().timeout;
        let mut sessions = lock(&self.sessions);
        let removed = sessions.reap(now, timeout);
        self.persist_expired(removed);
        sessions
            .by_last_use
            .first()
            .map(|&(last_used, _)| last_used + timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_core::ManualClock;

    fn state(clock: Arc<ManualClock>) -> State {
        let mut accounts = Accounts::default();
        accounts.insert("admin", Secret::new("pw"), Role::Administrator);
        accounts.insert("reader", Secret::new("pw"), Role::ReadOnly);
        State::new(
            accounts,
            clock,
            Settings {
                timeout: Duration::from_secs(60),
                service_enabled: true,
            },
            None,
            LockoutPolicy::default(),
        )
    }

    fn start() -> OffsetDateTime {
        time::macros::datetime!(2030-01-01 0:00 UTC)
    }

    #[test]
    fn hex_and_ids_round_trip() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        let id = SessionId(0x0123_4567_89ab_cdef);
        assert_eq!(id.to_string(), "0123456789abcdef");
        assert_eq!(SessionId::parse("0123456789abcdef"), Some(id));
        for bad in ["0123456789ABCDEF", "+123456789abcdef", "123", "../x"] {
            assert_eq!(SessionId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn tokens_are_256_bit_hex_and_stored_only_as_digests() {
        let clock = Arc::new(ManualClock::new(start()));
        let s = state(clock);
        let (entry, token) = s.login("admin", "pw", None, ClientKey::Unknown).unwrap();
        assert_eq!(token.expose().len(), 64);
        assert!(token.expose().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(entry.key, <[u8; 32]>::from(Sha256::digest(token.expose())));
        assert!(!format!("{entry:?}").contains(token.expose()));
        let (who, id) = s.authenticate_token(token.expose()).unwrap();
        assert_eq!((&*who.username, id), ("admin", entry.id));
    }

    /// The index stays in step with the map through refreshes, deletes,
    /// expiry and a timeout change.
    #[test]
    fn expiry_index_follows_use() {
        let clock = Arc::new(ManualClock::new(start()));
        let s = state(clock.clone());
        let (a, ta) = s.login("admin", "pw", None, ClientKey::Unknown).unwrap();
        clock.advance(Duration::from_secs(10));
        let (b, _tb) = s.login("reader", "pw", None, ClientKey::Unknown).unwrap();
        // A second later, so the list order (by creation) is not a tie.
        clock.advance(Duration::from_secs(1));
        let (c, _tc) = s.login("reader", "pw", None, ClientKey::Unknown).unwrap();
        assert_eq!(s.list(None), vec![a.id, b.id, c.id]);
        assert_eq!(s.list(Some("reader")), vec![b.id, c.id]);
        assert_eq!(s.reap(), Some(start() + Duration::from_secs(60)));

        // Using `a` at t=51 moves its expiry to t=111; b expires at 70.
        clock.advance(Duration::from_secs(40));
        assert!(s.authenticate_token(ta.expose()).is_some());
        assert_eq!(s.reap(), Some(start() + Duration::from_secs(70)));
        s.remove(c.id);
        clock.advance(Duration::from_secs(20));
        assert_eq!(s.list(None), vec![a.id]);
        assert!(s.get(b.id).is_none());
        assert_eq!(lock(&s.sessions).by_last_use.len(), 1);

        // A shorter timeout applies to the sessions already there.
        s.update_settings(|st| st.timeout = Duration::from_secs(5));
        assert_eq!(s.reap(), None);
        assert!(s.authenticate_token(ta.expose()).is_none());
        let sessions = lock(&s.sessions);
        assert!(sessions.by_id.is_empty() && sessions.by_token.is_empty());
        assert!(sessions.by_last_use.is_empty());
    }

    /// With shared logins, a last use written for a session whose record
    /// is gone (deleted through another instance meanwhile) must not
    /// re-create it; without sharing, the record is (re)written.
    #[tokio::test]
    async fn the_shared_writer_never_brings_a_deleted_session_back() {
        use session_core::{InMemoryWorkspace, WorkspaceRepository};
        for shared in [true, false] {
            let clock = Arc::new(ManualClock::new(start()));
            let repo = Arc::new(InMemoryWorkspace::new());
            let mut s = state(clock);
            if shared {
                s = s.sharing(repo.clone(), Duration::ZERO);
            }
            let s = Arc::new(s);
            let (entry, _token) = s.login("admin", "pw", None, ClientKey::Unknown).unwrap();
            let (tx, rx) = mpsc::unbounded_channel();
            tx.send(Op::Upsert(entry.clone())).unwrap();
            drop(tx);
            super::super::persist::write_loop(repo.clone(), Arc::downgrade(&s), rx).await;
            let records = repo.list().await.unwrap().len();
            if shared {
                assert_eq!(records, 0, "re-created");
                assert!(s.get(entry.id).is_none(), "still in memory");
            } else {
                assert_eq!(records, 1);
                assert!(s.get(entry.id).is_some());
            }
        }
    }
}
