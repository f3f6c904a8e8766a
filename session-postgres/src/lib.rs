//! A shared session workspace on PostgreSQL for `session-sdk`: several
//! processes on several machines use one set of sessions at once.
//!
//! [`PgWorkspace`] implements [`WorkspaceRepository`]:
//!
//! - sessions are rows (`id`, insertion `position`, `parent`, `revision`,
//!   the session as `jsonb`); the revision is the optimistic-concurrency
//!   check of every update and delete (`… WHERE id = $1 AND revision = $2`),
//!   so no transaction is held across a round trip;
//! - the rules are the core's ([`session_core::repository::rules`]), so
//!   errors read as with the file workspace; the parent link is also a
//!   foreign key, so a parent cannot vanish under a concurrent insert;
//! - [`lock_session`](WorkspaceRepository::lock_session) is a PostgreSQL
//!   advisory lock held on a connection of its own, which the server
//!   releases when the holder's connection dies (a crashed process never
//!   blocks the others);
//! - the schema is versioned (`session_sdk_schema`) and migrated at
//!   connect, under an advisory lock, by the first process that needs it.
//!
//! Secrets never go into the database: see [Secrets in a fleet](#secrets-in-a-fleet).
//!
//! Several managers, each with a `RotationScheduler` over the same
//! workspace, rotate a shared session once per due time: the session lock
//! is the lease (held by one manager at a time, released by the server
//! when its holder dies), and the scheduler skips a session renewed
//! elsewhere since it looked. `sessionctl --workspace postgres://…` uses
//! this crate.
//!
//! - events: what a [`SessionManager`](session_core::SessionManager)
//!   publishes (started, stopped, rotated, resumed, failed) is `NOTIFY`ed
//!   on the database, and every manager on it re-publishes the others'
//!   events to its subscribers, marked `EventOrigin::Elsewhere`
//!   (`LISTEN` on a connection of its own; at most once: an event sent
//!   while that connection is down is missed).
//!
//! - the embedded Redfish server's login sessions: several server
//!   instances on one database (`session_redfish::server::
//!   RedfishServerBuilder::share_sessions`) accept each other's tokens, and
//!   a DELETE on one ends the session on all of them.
//!
//! - TLS to the server as libpq sets it up, from the URL: `sslmode`
//!   (`disable`, `allow`, `prefer`, `require`, `verify-ca`, `verify-full`),
//!   `sslrootcert` (a PEM file, or `system`), `sslcert` and `sslkey` (a
//!   client certificate); see [TLS](#tls).
//!
//! # When to use which repository
//!
//! | | `FsWorkspace` (session-core) | [`PgWorkspace`] |
//! |---|---|---|
//! | who | one person or tool, on one machine (processes on it share the file under a lock) | a team or a fleet: managers on several machines |
//! | needs | nothing | a PostgreSQL server they all reach |
//! | an update | one journal line + `fdatasync` (≈ 0.1 ms, any size) | one `UPDATE … WHERE revision = $n` round trip |
//! | session locks | lock files | advisory locks, released by the server when a holder dies |
//! | events of other processes | no | yes (NOTIFY / LISTEN) |
//! | a person reads it | a JSON file | `SELECT doc FROM sessions ORDER BY position` |
//!
//! # TLS
//!
//! A workspace on another machine should be reached with
//! `sslmode=verify-full` and the server's CA:
//! `postgres://fleet@db.example:5432/sessions?sslmode=verify-full&sslrootcert=/etc/ssl/db-ca.pem`.
//! The parameters mean what they mean to libpq (and `psql`):
//!
//! | `sslmode` | encrypted | server certificate checked |
//! |---|---|---|
//! | `disable` | no | — |
//! | `allow`, `prefer` (the default) | if the server offers it | no (the chain, if a root certificate is given) |
//! | `require` | yes | no (the chain, if a root certificate is given) |
//! | `verify-ca` | yes | the chain up to the root certificate |
//! | `verify-full` | yes | the chain, and the host name in the URL |
//!
//! The root certificate is `sslrootcert` (a PEM file; `system` for the
//! system's trusted roots, with `verify-full` only), else
//! `~/.postgresql/root.crt` when it exists. `verify-ca` and `verify-full`
//! without one are refused before any connection. A client certificate is
//! `sslcert` + `sslkey` (PEM files). Every connection of a workspace (the
//! main one, those holding session locks, the one following events) is
//! made the same way, and SCRAM logins over TLS bind the channel when the
//! server offers it. Not supported: `sslcrl`, `sslpassword` (an encrypted
//! client key).
//!
//! # Secrets in a fleet
//!
//! Rows hold what the file workspace holds (settings, status, expiry), never
//! a credential. Each manager keeps secrets in a
//! [`SecretStore`](session_core::SecretStore) of its own, keyed by session
//! id, so a fleet chooses how they travel:
//!
//! - **one encrypted file on shared storage**
//!   (`EncryptedFileSecretStore`, the same passphrase on every machine, from
//!   the environment or a secrets manager): every manager reads what any
//!   rotation wrote; the file's lock is a file lock, so the storage must
//!   honour `flock` (NFSv4 does, some network file systems do not);
//! - **a keychain per machine** (`KeyringSecretStore`): each machine enters
//!   the long-term secrets once; a session rotated on one machine has its new
//!   temporary credentials only there, so give such sessions to one
//!   machine (or use the shared file).
//!
//! Not supported yet: secrets in the database (encrypted with a key the
//! database never sees), and a secret store on a cloud secrets manager.

mod events;
mod schema;
mod tls;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use serde_json::Value;
use session_core::repository::rules;
use session_core::{
    Error, Result, Secret, Session, SessionId, SessionLock, SharedEvent, WorkspaceRepository,
};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config};
use tokio_postgres_rustls::MakeRustlsConnect;
use uuid::Uuid;

/// The advisory-lock namespace of session locks (mixed into each key).
const SESSION_LOCK_SPACE: u64 = 0x5e55_1011_0000_0001;
/// The advisory-lock namespace of live-connection marks.
const LIVE_SPACE: u64 = 0x5e55_1011_0000_0002;

/// A [`WorkspaceRepository`] in a PostgreSQL database; see the
/// [crate docs](crate).
#[derive(Clone)]
pub struct PgWorkspace {
    client: Arc<Client>,
    config: Config,
    /// How every connection is made: TLS as the URL asks (see [TLS](#tls)).
    tls: MakeRustlsConnect,
    /// Connections that held an advisory lock and released it, kept for
    /// the next lock (a new connection costs a SCRAM login).
    idle: Arc<std::sync::Mutex<Vec<Client>>>,
    /// `postgres://user@host:port/db`, never the password.
    label: String,
    /// The connection that follows shared events, once asked for.
    following: Arc<tokio::sync::OnceCell<events::Following>>,
}

impl fmt::Debug for PgWorkspace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgWorkspace")
            .field("database", &self.label)
            .finish_non_exhaustive()
    }
}

impl PgWorkspace {
    /// Connects to the database at `url` (`postgres://user@host:port/db`;
    /// key-value strings work too) with `password` (kept out of the URL,
    /// e.g. from the environment), and brings its schema up to date.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming `database URL` for a malformed URL,
    /// [`Error::Unavailable`] when the server cannot be reached or refuses
    /// the login, [`Error::Storage`] when the schema cannot be migrated
    /// (e.g. it is newer than this build).
    pub async fn connect(url: &str, password: Option<&Secret>) -> Result<Self> {
        let invalid = |e: &dyn fmt::Display| {
            Error::invalid_input("database URL", format!("{}: {e}", redacted_url(url)))
        };
        let (tls, rest) = tls::Settings::split(url).map_err(|e| invalid(&e))?;
        let mut config = Config::from_str(&rest).map_err(|e| invalid(&e))?;
        config.ssl_mode(tls.ssl_mode());
        if let Some(password) = password {
            config.password(password.expose());
        }
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let tls = tls.connector(home.as_deref()).map_err(|e| invalid(&e))?;
        let label = label_of(&config);
        let mut client = connect(&config, &tls, &label).await?;
        schema::migrate(&mut client, &label).await?;
        Ok(Self {
            client: Arc::new(client),
            config,
            tls,
            idle: Arc::new(std::sync::Mutex::new(Vec::new())),
            label,
            following: Arc::new(tokio::sync::OnceCell::new()),
        })
    }

    /// Creates the database `name` on the same server (a test helper: each
    /// test gets an empty workspace).
    ///
    /// # Errors
    ///
    /// The server's refusal.
    #[doc(hidden)]
    pub async fn create_database_for_tests(&self, name: &str) -> Result<()> {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        self.client
            .batch_execute(&format!("CREATE DATABASE {quoted}"))
            .await
            .map_err(|e| self.error("create a database", &e))
    }

    /// Records schema `version` as the database's (a test helper: a
    /// database written by a newer build).
    ///
    /// # Errors
    ///
    /// The server's refusal.
    #[doc(hidden)]
    pub async fn set_schema_version_for_tests(&self, version: i32) -> Result<()> {
        self.client
            .execute("UPDATE session_sdk_schema SET version = $1", &[&version])
            .await
            .map(|_| ())
            .map_err(|e| self.error("set the schema version", &e))
    }

    /// The database, as `postgres://user@host:port/db` (no password).
    pub fn label(&self) -> &str {
        &self.label
    }

    fn error(&self, what: &str, e: &tokio_postgres::Error) -> Error {
        db_error(&self.label, what, e)
    }

    async fn stored(&self, id: SessionId) -> Result<Option<Session>> {
        let row = self
            .client
            .query_opt("SELECT doc FROM sessions WHERE id = $1", &[&uuid(id)])
            .await
            .map_err(|e| self.error("read a session", &e))?;
        row.map(|row| self.session_of(row.get(0))).transpose()
    }

    fn session_of(&self, doc: Value) -> Result<Session> {
        serde_json::from_value(doc).map_err(|e| {
            Error::storage(
                PathBuf::from(&self.label),
                format!("a stored session is not valid: {e}"),
                None,
            )
        })
    }

    fn doc_of(&self, session: &Session) -> Result<Value> {
        serde_json::to_value(session).map_err(|e| {
            Error::storage(
                PathBuf::from(&self.label),
                format!("cannot encode {}: {e}", session.label()),
                None,
            )
        })
    }

    /// The parent chain of `session` checked against the stored parents.
    async fn check_parent(&self, session: &Session) -> Result<()> {
        let Some(first) = session.parent_session_id else {
            return Ok(());
        };
        // The ancestors of the first parent, in one round trip.
        let rows = self
            .client
            .query(
                "WITH RECURSIVE chain(id, parent, depth) AS (
                     SELECT id, parent, 1 FROM sessions WHERE id = $1
                     UNION ALL
                     SELECT s.id, s.parent, c.depth + 1 FROM sessions s
                       JOIN chain c ON s.id = c.parent WHERE c.depth < 10000
                 ) SELECT id, parent FROM chain",
                &[&uuid(first)],
            )
            .await
            .map_err(|e| self.error("read the parent chain", &e))?;
        let parents: std::collections::HashMap<SessionId, Option<SessionId>> = rows
            .iter()
            .map(|row| {
                let id: Uuid = row.get(0);
                let parent: Option<Uuid> = row.get(1);
                (SessionId::from_uuid(id), parent.map(SessionId::from_uuid))
            })
            .collect();
        rules::check_parent(session, parents.len(), |id| parents.get(&id).copied())
    }

    /// A connection of its own holding the advisory lock `key` until
    /// dropped; `wait` false only tries.
    async fn advisory(&self, key: i64, wait: bool) -> Result<Option<SessionLock>> {
        let reused = self
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .filter(|c| !c.is_closed());
        let client = match reused {
            Some(client) => client,
            None => connect(&self.config, &self.tls, &self.label).await?,
        };
        let locked = if wait {
            client
                .execute("SELECT pg_advisory_lock($1)", &[&key])
                .await
                .map(|_| true)
        } else {
            client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .await
                .map(|row| row.get::<_, bool>(0))
        }
        .map_err(|e| self.error("take an advisory lock", &e))?;
        if !locked {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(client);
            return Ok(None);
        }
        Ok(Some(SessionLock::new(AdvisoryLock {
            client: Some(client),
            key,
            idle: Arc::clone(&self.idle),
        })))
    }
}

/// An advisory lock held on a connection of its own. Dropped, it unlocks
/// and returns the connection for the next lock; when it cannot (no
/// runtime), the connection is closed, which the server takes as the
/// unlock too. A process that dies loses its connections, and so its
/// locks.
struct AdvisoryLock {
    client: Option<Client>,
    key: i64,
    idle: Arc<std::sync::Mutex<Vec<Client>>>,
}

impl Drop for AdvisoryLock {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let key = self.key;
        let idle = Arc::clone(&self.idle);
        runtime.spawn(async move {
            let unlocked = client
                .query_one("SELECT pg_advisory_unlock($1)", &[&key])
                .await
                .is_ok_and(|row| row.get::<_, bool>(0));
            // Kept only when the unlock is certain; otherwise dropping the
            // connection ends the lock.
            if unlocked {
                idle.lock().unwrap_or_else(|e| e.into_inner()).push(client);
            }
        });
    }
}

#[async_trait::async_trait]
impl WorkspaceRepository for PgWorkspace {
    async fn list(&self) -> Result<Vec<Session>> {
        self.client
            .query("SELECT doc FROM sessions ORDER BY position", &[])
            .await
            .map_err(|e| self.error("list sessions", &e))?
            .into_iter()
            .map(|row| self.session_of(row.get(0)))
            .collect()
    }

    async fn get(&self, id: SessionId) -> Result<Session> {
        self.stored(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("session {id}")))
    }

    async fn insert(&self, session: Session) -> Result<Session> {
        session.validate()?;
        if let Some(existing) = self.stored(session.session_id).await? {
            return Err(rules::already_exists(&existing));
        }
        self.check_parent(&session).await?;
        let session = rules::at_revision(session, 1);
        let inserted = self
            .client
            .execute(
                "INSERT INTO sessions (id, parent, revision, doc) VALUES ($1, $2, 1, $3)
                 ON CONFLICT (id) DO NOTHING",
                &[
                    &uuid(session.session_id),
                    &session.parent_session_id.map(uuid),
                    &self.doc_of(&session)?,
                ],
            )
            .await;
        match inserted {
            Ok(1) => Ok(session),
            // Inserted by someone else meanwhile.
            Ok(_) => match self.stored(session.session_id).await? {
                Some(existing) => Err(rules::already_exists(&existing)),
                None => Err(Error::Conflict {
                    what: session.label(),
                    expected: 0,
                    found: 1,
                }),
            },
            Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => {
                // The parent was deleted meanwhile: the rule says why.
                self.check_parent(&session).await?;
                Err(self.error("insert a session", &e))
            }
            Err(e) => Err(self.error("insert a session", &e)),
        }
    }

    async fn update(&self, session: Session) -> Result<Session> {
        session.validate()?;
        let stored = self
            .stored(session.session_id)
            .await?
            .ok_or_else(|| Error::not_found(session.label()))?;
        rules::check_update(&stored, &session)?;
        if session.parent_session_id != stored.parent_session_id {
            self.check_parent(&session).await?;
        }
        let next = rules::at_revision(session, stored.revision() + 1);
        let revision = i64::try_from(stored.revision()).unwrap_or(i64::MAX);
        let updated = self
            .client
            .execute(
                "UPDATE sessions SET parent = $2, revision = revision + 1, doc = $3
                 WHERE id = $1 AND revision = $4",
                &[
                    &uuid(next.session_id),
                    &next.parent_session_id.map(uuid),
                    &self.doc_of(&next)?,
                    &revision,
                ],
            )
            .await
            .map_err(|e| self.error("update a session", &e))?;
        if updated == 1 {
            return Ok(next);
        }
        // Someone wrote (or deleted) it between our read and our write.
        match self.stored(next.session_id).await? {
            Some(now) => Err(Error::Conflict {
                what: now.label(),
                expected: stored.revision(),
                found: now.revision(),
            }),
            None => Err(Error::not_found(next.label())),
        }
    }

    async fn delete(&self, id: SessionId, expected_revision: Option<u64>) -> Result<Session> {
        let stored = self
            .stored(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("session {id}")))?;
        let child = self
            .client
            .query_opt(
                "SELECT doc FROM sessions WHERE parent = $1 LIMIT 1",
                &[&uuid(id)],
            )
            .await
            .map_err(|e| self.error("read a child session", &e))?
            .map(|row| self.session_of(row.get(0)))
            .transpose()?;
        rules::check_delete(&stored, expected_revision, child.as_ref())?;
        let revision = i64::try_from(stored.revision()).unwrap_or(i64::MAX);
        let deleted = self
            .client
            .execute(
                "DELETE FROM sessions WHERE id = $1 AND revision = $2",
                &[&uuid(id), &revision],
            )
            .await;
        match deleted {
            Ok(1) => Ok(stored),
            Ok(_) => match self.stored(id).await? {
                Some(now) => Err(Error::Conflict {
                    what: now.label(),
                    expected: stored.revision(),
                    found: now.revision(),
                }),
                None => Err(Error::not_found(format!("session {id}"))),
            },
            Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => {
                Err(Error::invalid_input(
                    "session",
                    format!(
                        "{} became the parent of another session meanwhile",
                        stored.label()
                    ),
                ))
            }
            Err(e) => Err(self.error("delete a session", &e)),
        }
    }

    async fn lock_session(&self, id: SessionId) -> Result<SessionLock> {
        self.advisory(lock_key(SESSION_LOCK_SPACE, id), true)
            .await?
            .ok_or_else(|| {
                Error::storage(
                    PathBuf::from(&self.label),
                    "the session lock was not granted",
                    None,
                )
            })
    }

    async fn hold_live(&self, id: SessionId) -> Result<Option<SessionLock>> {
        match self.advisory(lock_key(LIVE_SPACE, id), false).await? {
            Some(mark) => Ok(Some(mark)),
            None => Err(Error::invalid_input(
                "session",
                format!(
                    "session {id} is connected in another process; use it there, or stop it first"
                ),
            )),
        }
    }

    async fn is_held_elsewhere(&self, id: SessionId) -> Result<bool> {
        let key = lock_key(LIVE_SPACE, id);
        let row = self
            .client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'
                   AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                   AND ((classid::bigint << 32) | objid::bigint) = $1)",
                &[&key],
            )
            .await
            .map_err(|e| self.error("read the live marks", &e))?;
        Ok(row.get(0))
    }

    /// `NOTIFY` on the database: every process that follows its events
    /// (see [`shared_events`](Self::shared_events)) receives it.
    fn shares_events(&self) -> bool {
        true
    }

    async fn share_event(&self, event: SharedEvent) -> Result<()> {
        events::notify(&self.client, &self.label, &event).await
    }

    /// `LISTEN` on a connection of its own, opened by the first call (and
    /// again if it drops) and shared by the clones of this workspace;
    /// closed when the last clone is dropped.
    async fn shared_events(&self) -> Result<Option<tokio::sync::broadcast::Receiver<SharedEvent>>> {
        let following = self
            .following
            .get_or_try_init(|| {
                events::listen(self.config.clone(), self.tls.clone(), self.label.clone())
            })
            .await?;
        Ok(Some(following.subscribe()))
    }
}

/// The error when a connection cannot be made; `why` says what it was
/// for (after the sentence's verb, e.g. ` to follow its events`).
fn cannot_connect(label: &str, why: &str, e: &tokio_postgres::Error) -> Error {
    Error::Unavailable {
        target: label.to_owned(),
        message: format!(
            "cannot connect to the workspace database{why}: {}",
            db_message(e)
        ),
        source: None,
    }
}

/// A connection, its driver task spawned.
async fn connect(config: &Config, tls: &MakeRustlsConnect, label: &str) -> Result<Client> {
    let (client, connection) = config
        .connect(tls.clone())
        .await
        .map_err(|e| cannot_connect(label, "", &e))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "workspace database connection ended");
        }
    });
    Ok(client)
}

fn db_error(label: &str, what: &str, e: &tokio_postgres::Error) -> Error {
    if e.is_closed() || e.as_db_error().is_none() {
        return Error::Unavailable {
            target: label.to_owned(),
            message: format!("{what}: {}", db_message(e)),
            source: None,
        };
    }
    Error::storage(
        PathBuf::from(label),
        format!("{what}: {}", db_message(e)),
        None,
    )
}

/// The server's message (which never contains the password), else the
/// client's with its causes (a TLS handshake's says what was wrong with the
/// certificate; neither holds the password).
fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut message = e.to_string();
            let mut cause = std::error::Error::source(e);
            while let Some(inner) = cause {
                message.push_str(&format!(": {inner}"));
                cause = inner.source();
            }
            if message.contains("TLS handshake") {
                message.push_str(
                    " (see sslmode and sslrootcert in the URL: verify-full checks the host name \
                     in the URL against the certificate)",
                );
            }
            message
        }
    }
}

fn uuid(id: SessionId) -> Uuid {
    *id.as_uuid()
}

/// A 64-bit advisory-lock key for `id` in `space`.
fn lock_key(space: u64, id: SessionId) -> i64 {
    let bytes = id.as_uuid().into_bytes();
    let (high, low) = bytes.split_at(8);
    let high = u64::from_be_bytes(high.try_into().expect("8 bytes"));
    let low = u64::from_be_bytes(low.try_into().expect("8 bytes"));
    i64::from_ne_bytes((high ^ low.rotate_left(17) ^ space).to_ne_bytes())
}

/// `postgres://user@host:port/db` of a configuration.
fn label_of(config: &Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        config.get_user().unwrap_or(""),
        config.get_dbname().unwrap_or("")
    )
}

/// `url` with any password replaced, for an error message (a URL's
/// `user:password@`, or a key-value string's `password=…`).
fn redacted_url(url: &str) -> String {
    /// The parameters whose value is a secret.
    fn secret(key: &str) -> bool {
        let key = key.trim().to_ascii_lowercase();
        key == "password" || key == "sslpassword"
    }
    if !url.contains("://") {
        return url
            .split(' ')
            .map(|part| match part.split_once('=') {
                Some((key, _)) if secret(key) => format!("{key}=***"),
                _ => part.to_owned(),
            })
            .collect::<Vec<_>>()
            .join(" ");
    }
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut redacted = match (base.find("://"), base.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &base[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &base[..scheme + 3], &base[at..]),
                None => base.to_owned(),
            }
        }
        _ => base.to_owned(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if secret(key) => format!("{key}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        redacted.push('?');
        redacted.push_str(&pairs.join("&"));
    }
    redacted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_cut_from_urls_in_messages() {
        assert_eq!(
            redacted_url("postgres://me:s3cret@db:5432/ws"),
            "postgres://me:***@db:5432/ws"
        );
        assert_eq!(
            redacted_url("host=db password=s3cret port=x"),
            "host=db password=*** port=x"
        );
        assert_eq!(redacted_url("postgres://me@db/ws"), "postgres://me@db/ws");
        // As query parameters, and a client key's passphrase.
        assert_eq!(
            redacted_url("postgres://me@db/ws?sslmode=require&password=s3cret&sslpassword=k3y"),
            "postgres://me@db/ws?sslmode=require&password=***&sslpassword=***"
        );
        assert_eq!(
            redacted_url("postgres://me:s3cret@db/ws?application_name=a"),
            "postgres://me:***@db/ws?application_name=a"
        );
        assert_eq!(
            redacted_url("host=db sslpassword=k3y user=me"),
            "host=db sslpassword=*** user=me"
        );
    }

    #[test]
    fn lock_keys_differ_by_space_and_session() {
        let a = SessionId::new();
        let b = SessionId::new();
        assert_ne!(lock_key(SESSION_LOCK_SPACE, a), lock_key(LIVE_SPACE, a));
        assert_ne!(
            lock_key(SESSION_LOCK_SPACE, a),
            lock_key(SESSION_LOCK_SPACE, b)
        );
        assert_eq!(lock_key(LIVE_SPACE, a), lock_key(LIVE_SPACE, a));
    }
}
