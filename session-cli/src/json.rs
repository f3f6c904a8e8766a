//! The `--json` output of `list` and `show`.
//!
//! `list --json` prints a JSON array of sessions and `show --json` one
//! session object. Each object is the serde serialization of
//! [`session_sdk::Session`], i.e. the session exactly as the workspace file
//! stores it, so scripts and the file read the same. The field names are
//! stable:
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `sessionId` | string | the id: a UUID, lower-case and hyphenated |
//! | `sessionName` | string | the name (not necessarily unique) |
//! | `sessionType` | string | `awsIamUser`, `awsIamRoleChained`, `awsIamRoleFederated`, `awsSsoRole`, `azure`, `awsSsm`, `redfish`, `boundary`, or a custom type |
//! | `status` | string | `inactive`, `pending`, `active`, `rotating`, `stopping`, `disconnected` or `expired` |
//! | `startDateTime` | string, optional | when it last became active (RFC 3339, UTC) |
//! | `region` | string, optional | AWS region or Azure location |
//! | `expiration` | string, optional | when the credentials or remote session end (RFC 3339, UTC) |
//! | `issuedAt` | string, optional | when they were issued (RFC 3339, UTC) |
//! | `parentSessionId` | string, optional | the session it is derived from (role chaining) |
//! | `lastError` | object, optional | the last failed operation: `operation`, `category`, `message`, `at` (RFC 3339) |
//! | `config` | object | the provider's settings, as the user chose them (never secrets) |
//! | `state` | object, optional | what the last start or rotate made available (published profile, Redfish session URI, signed-in account, …; never secrets); absent when the session is not started |
//! | `revision` | number | bumped on every write of the session |
//!
//! Optional fields are left out when they have no value. Fields written by a
//! newer version of the library are passed through unchanged. The same list
//! is printed by `sessionctl list --help` and `sessionctl show --help`.

use session_sdk::{Error, Session};

/// `list --json`: a pretty-printed array, with a final newline.
pub(crate) fn sessions(sessions: &[Session]) -> Result<String, Error> {
    encode(&sessions)
}

/// `show --json`: one pretty-printed object, with a final newline.
pub(crate) fn session(session: &Session) -> Result<String, Error> {
    encode(session)
}

/// Pretty-printed JSON with a final newline.
fn encode<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::invalid_input("JSON output", e.to_string()))?;
    text.push('\n');
    Ok(text)
}
