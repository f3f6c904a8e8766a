//! Optional persistence of the server's login sessions through a
//! [`WorkspaceRepository`], so that clients keep their sessions across a
//! restart of the server.
//!
//! Each live session is one workspace record of type
//! [`SERVER_SESSION_TYPE`], named `redfish-server-<Id>`, whose config holds
//! the session's `Id`, user name, creation and last-use times, `Context` and
//! the SHA-256 digest of its token. The token itself is never written: a
//! digest of 256 random bits cannot be turned back into the token, and is
//! all the server needs to recognise it after a restart.
//!
//! Each record's id follows from the session's `Id` ([`record_id`]), and the
//! `Id` from the token's digest, so a token or an `Id` leads to its record
//! with one keyed read, in any repository.
//!
//! Writes are made by one background task, in order, so requests never wait
//! for the repository. Logins and deletions are written at once; the idle
//! timer (last use) is written at most every quarter of `SessionTimeout` per
//! session, so after a crash a session may expire up to that much earlier
//! than it would have. With [`FsWorkspace`](session_core::FsWorkspace),
//! a write is one line appended to the workspace's journal (about 0.1 ms,
//! whatever the number of sessions).
//!
//! With shared logins (`RedfishServerBuilder::share_sessions`) the
//! repository is the truth and memory a cache: see `shared`. The writer
//! then never re-creates a record another instance deleted, merges last
//! uses instead of overwriting them, and deletes an expired record only if
//! no other instance has used the session since.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use session_core::{
    Error, Result, Session, SessionId as RecordId, SessionStatus, SessionType, WorkspaceRepository,
};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::sync::mpsc;

use super::state::{SessionEntry, SessionId, State, StoredSession, TokenKey, hex};

/// The session type of the workspace records (`redfishServerSession`).
pub const SERVER_SESSION_TYPE: &str = "redfishServerSession";

/// A change for the writer task.
#[derive(Debug)]
pub(crate) enum Op {
    /// Write the session (new, or its last use moved).
    Upsert(SessionEntry),
    /// The session was ended (DELETE): its record goes.
    Remove(SessionId),
    /// The session's idle time ran out here: its record goes unless
    /// another instance sharing the repository has used it since.
    Expire(SessionId),
}

/// The config of a record (camelCase).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    id: String,
    user_name: String,
    #[serde(with = "time::serde::rfc3339")]
    created_time: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    last_used: OffsetDateTime,
    #[serde(default)]
    context: Option<String>,
    token_sha256: String,
}

fn record_name(id: SessionId) -> String {
    format!("redfish-server-{id}")
}

/// The id of the record of the session with `Id` `id`: a UUID made from a
/// domain-separated hash of the `Id` (as random-looking as a v4 one, and
/// marked v4 so every repository takes it).
pub(crate) fn record_id(id: SessionId) -> RecordId {
    let digest = Sha256::new()
        .chain_update(b"session-redfish server session record\0")
        .chain_update(id.to_string().as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    RecordId::from_uuid(uuid::Builder::from_random_bytes(bytes).into_uuid())
}

pub(crate) fn is_record(session: &Session) -> bool {
    matches!(&session.session_type, SessionType::Other(t) if t == SERVER_SESSION_TYPE)
}

fn parse_digest(text: &str) -> Option<TokenKey> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The session a record holds; `None` when it is not one of ours or
/// cannot be read.
pub(crate) fn stored(session: &Session) -> Option<StoredSession> {
    if !is_record(session) {
        return None;
    }
    let r = session.config.get::<Record>().ok()?;
    Some(StoredSession {
        id: SessionId::parse(&r.id)?,
        key: parse_digest(&r.token_sha256)?,
        username: r.user_name,
        created: r.created_time,
        last_used: r.last_used,
        context: r.context,
    })
}

/// The record of `entry`, active until its idle expiry.
pub(crate) fn to_record(entry: &SessionEntry, state: &State) -> Result<Session> {
    let mut session = Session::new(
        record_name(entry.id),
        SessionType::Other(SERVER_SESSION_TYPE.into()),
    )?;
    session.session_id = record_id(entry.id);
    fill(&mut session, entry, state)?;
    let now = state.clock.now();
    session.transition(SessionStatus::Pending, now)?;
    session.transition(SessionStatus::Active, now)?;
    Ok(session)
}

fn fill(session: &mut Session, entry: &SessionEntry, state: &State) -> Result<()> {
    session.config.set(&Record {
        id: entry.id.to_string(),
        user_name: entry.username.to_string(),
        created_time: entry.created,
        last_used: entry.last_used,
        context: entry.context.as_deref().map(str::to_owned),
        token_sha256: hex(entry.key()),
    })?;
    session.expiration = Some(entry.last_used + state.settings().timeout);
    Ok(())
}

/// Loads the records into `state`: live ones become sessions again; expired
/// ones, unreadable ones and (unless shared) those of accounts no longer
/// configured are deleted. A record written before record ids followed from session ids
/// is moved to its derived id. Returns how many sessions were restored.
pub(crate) async fn restore(repo: &dyn WorkspaceRepository, state: &State) -> Result<usize> {
    let mut count = 0;
    for session in repo.list().await? {
        if !is_record(&session) {
            continue;
        }
        let found = stored(&session);
        // Shared: an account this instance lacks may be another instance's
        // (a configuration in the middle of a rollout); its sessions are
        // not this instance's to delete.
        if state.shared.is_some()
            && found
                .as_ref()
                .is_some_and(|s| state.accounts.get(&s.username).is_none())
        {
            continue;
        }
        match found.filter(|s| state.adopt(s.clone())) {
            Some(s) if session.session_id == record_id(s.id) => count += 1,
            Some(s) => {
                let mut moved = session.clone();
                moved.session_id = record_id(s.id);
                match repo.insert(moved).await {
                    Ok(_) | Err(Error::AlreadyExists { .. }) => {}
                    Err(e) => return Err(e),
                }
                delete_quietly(repo, session.session_id, None).await?;
                count += 1;
            }
            None => {
                tracing::info!(record = %session.session_name, "dropping an expired or unusable stored Redfish session");
                delete_quietly(repo, session.session_id, None).await?;
            }
        }
    }
    Ok(count)
}

/// Deletes a record; one already gone (or, with an expected revision,
/// changed since) is no error.
async fn delete_quietly(
    repo: &dyn WorkspaceRepository,
    id: RecordId,
    revision: Option<u64>,
) -> Result<()> {
    match repo.delete(id, revision).await {
        Ok(_) | Err(Error::NotFound { .. } | Error::Conflict { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Applies the changes in order until the server's state is dropped.
pub(crate) async fn write_loop(
    repo: Arc<dyn WorkspaceRepository>,
    state: std::sync::Weak<State>,
    mut rx: mpsc::UnboundedReceiver<Op>,
) {
    while let Some(op) = rx.recv().await {
        let Some(state) = state.upgrade() else { return };
        let result = match op {
            Op::Upsert(entry) => upsert(&*repo, &state, &entry).await,
            Op::Remove(id) => delete_quietly(&*repo, record_id(id), None).await,
            Op::Expire(id) => expire(&*repo, &state, id).await,
        };
        if let Err(e) = result {
            // The session itself lives on in memory; only a restart loses it.
            tracing::warn!(error = %e, "could not persist a Redfish server session");
        }
    }
}

/// How many times a shared record changed by another instance between our
/// read and our write is read again.
const CONFLICT_RETRIES: usize = 5;

async fn upsert(repo: &dyn WorkspaceRepository, state: &State, entry: &SessionEntry) -> Result<()> {
    let shared = state.shared.is_some();
    let id = record_id(entry.id);
    let mut conflict = None;
    for _ in 0..CONFLICT_RETRIES {
        match repo.get(id).await {
            Ok(mut session) => {
                let mut entry = entry.clone();
                if let Some(s) = stored(&session) {
                    entry.last_used = entry.last_used.max(s.last_used);
                }
                fill(&mut session, &entry, state)?;
                match repo.update(session).await {
                    Ok(_) => return Ok(()),
                    Err(e @ Error::Conflict { .. }) if shared => conflict = Some(e),
                    Err(e) => return Err(e),
                }
            }
            // Shared: another instance ended the session; re-creating the
            // record would bring it back to life.
            Err(Error::NotFound { .. }) if shared => {
                state.forget(entry.id);
                return Ok(());
            }
            Err(Error::NotFound { .. }) => {
                return match repo.insert(to_record(entry, state)?).await {
                    Ok(_) | Err(Error::AlreadyExists { .. }) => Ok(()),
                    Err(e) => Err(e),
                };
            }
            Err(e) => return Err(e),
        }
    }
    Err(conflict.expect("only a conflict repeats the loop"))
}

async fn expire(repo: &dyn WorkspaceRepository, state: &State, id: SessionId) -> Result<()> {
    let record = record_id(id);
    if state.shared.is_none() {
        return delete_quietly(repo, record, None).await;
    }
    let session = match repo.get(record).await {
        Ok(session) => session,
        Err(Error::NotFound { .. }) => return Ok(()),
        Err(e) => return Err(e),
    };
    let timeout = state.settings().timeout;
    if stored(&session).is_some_and(|s| state.clock.now() < s.last_used + timeout) {
        // Used through another instance since: it lives on there.
        return Ok(());
    }
    delete_quietly(repo, record, Some(session.revision())).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_round_trip_through_hex() {
        let key: TokenKey = std::array::from_fn(|i| i as u8 * 7);
        assert_eq!(parse_digest(&hex(&key)), Some(key));
        assert_eq!(parse_digest("00"), None);
        assert_eq!(parse_digest(&"zz".repeat(32)), None);
    }
}
