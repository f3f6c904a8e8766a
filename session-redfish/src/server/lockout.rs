//! Brute-force protection of logins (session POST and HTTP Basic).
//!
//! Failures are counted per *(user name, client address)* and per *client
//! address*:
//!
//! - `AccountLockoutThreshold` failures of one user name from one address
//!   lock that user name **for that address** for `AccountLockoutDuration`.
//!   Someone guessing from elsewhere cannot lock the real user out: a lock
//!   never spans addresses, and it always ends.
//! - the client threshold of failures from one address, whatever the user
//!   names, locks the address for every account (a spray of user names, or
//!   one address trying many accounts).
//! - a count is forgotten `AccountLockoutCounterResetAfter` after its last
//!   failure; a success clears the count of its (user name, address).
//!
//! User names are counted whether or not the account exists, and a locked
//! login gets the same 401 as a wrong password, so the answers never tell
//! whether an account exists or is locked. Attempts while locked are not
//! counted, so a lock cannot be extended by hammering it.
//!
//! IPv6 clients are counted by /64 prefix: one host usually owns a whole
//! /64, and could otherwise take a fresh address per attempt.
//!
//! Written by hand: the usual rate-limit crates (e.g. `governor`) limit
//! request rates, not failures with a lock and a counter reset, and the
//! lock must follow the server's injected [`Clock`](session_core::Clock).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::{
    DEFAULT_ACCOUNT_LOCKOUT_COUNTER_RESET_AFTER, DEFAULT_ACCOUNT_LOCKOUT_DURATION,
    DEFAULT_ACCOUNT_LOCKOUT_THRESHOLD, DEFAULT_CLIENT_LOCKOUT_THRESHOLD,
};

/// The most counters kept. Past it, stale counters are dropped; if every
/// one is live (an attack from very many addresses), new (user name,
/// address) pairs are not tracked, while the per-address counters already
/// there keep working.
const MAX_COUNTERS: usize = 100_000;

/// The lockout settings (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LockoutPolicy {
    /// `AccountLockoutThreshold`; 0 disables the per-account lock.
    pub(crate) account_threshold: u32,
    /// Failures from one address before it is locked; 0 disables.
    pub(crate) client_threshold: u32,
    /// `AccountLockoutDuration`.
    pub(crate) duration: Duration,
    /// `AccountLockoutCounterResetAfter`.
    pub(crate) reset_after: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            account_threshold: DEFAULT_ACCOUNT_LOCKOUT_THRESHOLD,
            client_threshold: DEFAULT_CLIENT_LOCKOUT_THRESHOLD,
            duration: DEFAULT_ACCOUNT_LOCKOUT_DURATION,
            reset_after: DEFAULT_ACCOUNT_LOCKOUT_COUNTER_RESET_AFTER,
        }
    }
}

impl LockoutPolicy {
    /// Checks the durations; the error names the builder setting.
    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
        let whole = |d: Duration| d.subsec_nanos() == 0 && d >= Duration::from_secs(1);
        if !whole(self.duration) {
            return Err((
                "account_lockout_duration",
                format!(
                    "must be whole seconds, at least 1 (a lock must end), got {:?}",
                    self.duration
                ),
            ));
        }
        if !whole(self.reset_after) || self.reset_after > self.duration {
            return Err((
                "account_lockout_counter_reset_after",
                format!(
                    "must be whole seconds, at least 1 and at most the lockout duration \
                     ({:?}), got {:?}",
                    self.duration, self.reset_after
                ),
            ));
        }
        Ok(())
    }
}

/// A client address as a lock key: IPv4 (IPv4-mapped IPv6 included), an
/// IPv6 /64, or unknown (a router embedded without `ConnectInfo`: all such
/// clients share one key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ClientKey {
    V4([u8; 4]),
    V6Prefix([u8; 8]),
    Unknown,
}

impl ClientKey {
    pub(crate) fn of(addr: Option<IpAddr>) -> Self {
        match addr.map(|a| a.to_canonical()) {
            Some(IpAddr::V4(v4)) => ClientKey::V4(v4.octets()),
            Some(IpAddr::V6(v6)) => {
                let mut prefix = [0u8; 8];
                prefix.copy_from_slice(&v6.octets()[..8]);
                ClientKey::V6Prefix(prefix)
            }
            None => ClientKey::Unknown,
        }
    }
}

/// What a counter counts. User names are kept as digests: fixed-size keys,
/// whatever length a client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Account([u8; 32], ClientKey),
    Client(ClientKey),
}

fn account_key(username: &str, client: ClientKey) -> Key {
    Key::Account(Sha256::digest(username.as_bytes()).into(), client)
}

#[derive(Debug, Clone, Copy)]
struct Counter {
    failures: u32,
    last_failure: OffsetDateTime,
    locked_until: Option<OffsetDateTime>,
}

impl Counter {
    fn locked(&self, now: OffsetDateTime) -> bool {
        self.locked_until.is_some_and(|until| now < until)
    }

    /// Neither locked nor holding failures that still count.
    fn stale(&self, now: OffsetDateTime, reset_after: Duration) -> bool {
        !self.locked(now) && now >= self.last_failure + reset_after
    }
}

/// The failure counters.
#[derive(Debug)]
pub(crate) struct Lockout {
    pub(crate) policy: LockoutPolicy,
    counters: Mutex<HashMap<Key, Counter>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Lockout {
    pub(crate) fn new(policy: LockoutPolicy) -> Self {
        Self {
            policy,
            counters: Mutex::default(),
        }
    }

    /// Whether `username` may not log in from `client` now.
    pub(crate) fn is_locked(&self, username: &str, client: ClientKey, now: OffsetDateTime) -> bool {
        let counters = lock(&self.counters);
        [account_key(username, client), Key::Client(client)]
            .iter()
            .any(|k| counters.get(k).is_some_and(|c| c.locked(now)))
    }

    /// Counts a failed login of `username` from `client`.
    pub(crate) fn failed(&self, username: &str, client: ClientKey, now: OffsetDateTime) {
        let policy = self.policy;
        let mut counters = lock(&self.counters);
        for (key, threshold) in [
            (account_key(username, client), policy.account_threshold),
            (Key::Client(client), policy.client_threshold),
        ] {
            if threshold == 0 {
                continue;
            }
            if !counters.contains_key(&key) && counters.len() >= MAX_COUNTERS {
                counters.retain(|_, c| !c.stale(now, policy.reset_after));
                if counters.len() >= MAX_COUNTERS {
                    tracing::warn!("login failure counters full; a new client is not tracked");
                    continue;
                }
            }
            let counter = counters.entry(key).or_insert(Counter {
                failures: 0,
                last_failure: now,
                locked_until: None,
            });
            if counter.locked(now) {
                continue;
            }
            if now >= counter.last_failure + policy.reset_after {
                counter.failures = 0;
            }
            counter.failures += 1;
            counter.last_failure = now;
            if counter.failures >= threshold {
                counter.failures = 0;
                counter.locked_until = Some(now + policy.duration);
                tracing::warn!(
                    per_address = matches!(key, Key::Client(_)),
                    "login locked after {threshold} failures"
                );
            }
        }
    }

    /// Clears the count of `username` from `client` after a good login
    /// (not the address's count: one known password must not let an
    /// address keep guessing others).
    pub(crate) fn succeeded(&self, username: &str, client: ClientKey) {
        let key = account_key(username, client);
        let mut counters = lock(&self.counters);
        if counters.get(&key).is_some_and(|c| c.failures > 0) {
            counters.remove(&key);
        }
    }
}
