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
//! Writes are made by one background task, in order, so requests never wait
//! for the repository. Logins and deletions are written at once; the idle
//! timer (last use) is written at most every quarter of `SessionTimeout` per
//! session, so after a crash a session may expire up to that much earlier
//! than it would have. With [`FsWorkspace`](session_core::FsWorkspace),
//! a write is one line appended to the workspace's journal (about 0.1 ms,
//! whatever the number of sessions). Two server instances sharing one
//! repository do not yet share logins: each restores the sessions at start
//! only.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use session_core::{
    Error, Result, Session, SessionId as RecordId, SessionStatus, SessionType, WorkspaceRepository,
};
use time::OffsetDateTime;
use tokio::sync::mpsc;

use super::state::{SessionEntry, SessionId, State, TokenKey, hex};

/// The session type of the workspace records (`redfishServerSession`).
pub const SERVER_SESSION_TYPE: &str = "redfishServerSession";

/// A change for the writer task.
#[derive(Debug)]
pub(crate) enum Op {
    /// Write the session (new, or its last use moved).
    Upsert(SessionEntry),
    /// The session ended.
    Remove(SessionId),
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

fn is_record(session: &Session) -> bool {
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

/// The record of `entry`, active until its idle expiry.
fn to_record(entry: &SessionEntry, state: &State) -> Result<Session> {
    let mut session = Session::new(
        record_name(entry.id),
        SessionType::Other(SERVER_SESSION_TYPE.into()),
    )?;
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
/// ones, unreadable ones and those of accounts no longer configured are
/// deleted. Returns the record id of each restored session.
pub(crate) async fn restore(
    repo: &dyn WorkspaceRepository,
    state: &State,
) -> Result<HashMap<SessionId, RecordId>> {
    let now = state.clock.now();
    let timeout = state.settings().timeout;
    let mut ids = HashMap::new();
    for session in repo.list().await? {
        if !is_record(&session) {
            continue;
        }
        let restored = session.config.get::<Record>().ok().and_then(|r| {
            let id = SessionId::parse(&r.id)?;
            let key = parse_digest(&r.token_sha256)?;
            (now < r.last_used + timeout).then_some(())?;
            state
                .restore(
                    id,
                    &r.user_name,
                    r.created_time,
                    r.last_used,
                    r.context,
                    key,
                )
                .then_some(id)
        });
        match restored {
            Some(id) => {
                ids.insert(id, session.session_id);
            }
            None => {
                tracing::info!(record = %session.session_name, "dropping an expired or unusable stored Redfish session");
                match repo.delete(session.session_id, None).await {
                    Ok(_) | Err(Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(ids)
}

/// Applies the changes in order until the server's state is dropped.
pub(crate) async fn write_loop(
    repo: Arc<dyn WorkspaceRepository>,
    state: std::sync::Weak<State>,
    mut rx: mpsc::UnboundedReceiver<Op>,
    mut ids: HashMap<SessionId, RecordId>,
) {
    while let Some(op) = rx.recv().await {
        let Some(state) = state.upgrade() else { return };
        let result = match op {
            Op::Upsert(entry) => upsert(&*repo, &state, &mut ids, &entry).await,
            Op::Remove(id) => match ids.remove(&id) {
                Some(record) => match repo.delete(record, None).await {
                    Ok(_) | Err(Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(e),
                },
                None => Ok(()),
            },
        };
        if let Err(e) = result {
            // The session itself lives on in memory; only a restart loses it.
            tracing::warn!(error = %e, "could not persist a Redfish server session");
        }
    }
}

async fn upsert(
    repo: &dyn WorkspaceRepository,
    state: &State,
    ids: &mut HashMap<SessionId, RecordId>,
    entry: &SessionEntry,
) -> Result<()> {
    if let Some(record) = ids.get(&entry.id) {
        match repo.get(*record).await {
            Ok(mut session) => {
                fill(&mut session, entry, state)?;
                repo.update(session).await?;
                return Ok(());
            }
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let inserted = repo.insert(to_record(entry, state)?).await?;
    ids.insert(entry.id, inserted.session_id);
    Ok(())
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
