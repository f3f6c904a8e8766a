//! The session record every provider shares.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

mod compact;

pub use crate::provider_config::ProviderConfig;
use crate::provider_config::SharedText;
use crate::{Error, Result, SessionId, SessionStatus, SessionType};

/// The longest session name accepted, in characters.
pub const MAX_SESSION_NAME_CHARS: usize = 128;

/// One session of any kind, as stored in a workspace.
///
/// The common fields are typed; what only one provider needs lives in two
/// JSON objects the provider reads and writes through its own types:
///
/// - [`config`](Session::config): the **settings** the user chose (role ARN,
///   BMC URL, tenant, …), checked when the session is added and changed only
///   by the user.
/// - [`state`](Session::state): what the last start, rotate or resume made
///   available (the profile credentials were published to, a Redfish login
///   session's URI, the signed-in account, …). The provider replaces it
///   wholesale each time; it is cleared when the session becomes `inactive`
///   (see [`transition`](Session::transition)), so a stopped session carries
///   none of it.
///
/// Keeping them apart means a setting never has to be written as `null` to
/// erase a value a previous start left behind, and `sessionctl show` can
/// tell the user which is which.
///
/// Fields this version does not know (written by a newer version) are kept
/// in `extra` and written back unchanged.
///
/// On disk (and in `sessionctl --json`) the field names are camelCase:
/// `sessionId`, `sessionName`, `sessionType`, `status`, `startDateTime`,
/// `region`, `expiration`, `issuedAt`, `parentSessionId`, `lastError`, `config`,
/// `state` (omitted when empty), `revision`. Times are RFC 3339 in UTC.
///
/// Secrets never live here: they go to a [`SecretStore`](crate::SecretStore)
/// under the session's id.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Session {
    /// The identifier, fixed at creation.
    pub session_id: SessionId,
    /// A human name; not necessarily unique (SSO sessions share account names).
    pub session_name: String,
    /// Which provider handles this session.
    pub session_type: SessionType,
    status: SessionStatus,
    /// When the session last became active; cleared by stop.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub start_date_time: Option<OffsetDateTime>,
    /// AWS region, Azure location, or empty where it does not apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// When the current credentials or remote session end, if known.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub expiration: Option<OffsetDateTime>,
    /// When the current credentials or remote session were issued: set by
    /// the [`SessionManager`](crate::SessionManager) when a start, rotate or
    /// resume brings a new `expiration`, cleared with it. With it, their
    /// lifetime, which caps how early
    /// [`ensure_active`](crate::SessionManager::ensure_active) renews them
    /// (credentials that live 15 minutes cannot be kept 15 minutes from
    /// their end), and when a [`RotationScheduler`](crate::RotationScheduler)
    /// started later rotates them.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub issued_at: Option<OffsetDateTime>,
    /// The session whose credentials this one is derived from (role chaining).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_session_id: Option<SessionId>,
    /// What went wrong the last time an operation failed; cleared on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<LastError>,
    /// The provider's own settings (role ARN, BMC URL, target id, …).
    #[serde(default)]
    pub config: ProviderConfig,
    /// What the last start, rotate or resume made available; empty when
    /// `inactive`. Replace it with [`replace_state`](Session::replace_state).
    #[serde(default, skip_serializing_if = "ProviderConfig::is_empty")]
    pub state: ProviderConfig,
    /// Bumped by the repository on every update; see
    /// [`WorkspaceRepository::update`](crate::WorkspaceRepository::update).
    #[serde(default)]
    revision: u64,
    /// Fields this version does not know, kept for the round trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Session {
    /// A new `inactive` session with a fresh id.
    ///
    /// The name must be 1 to [`MAX_SESSION_NAME_CHARS`] characters, without
    /// control characters or surrounding spaces, and must not look like a
    /// session id (so `sessionctl start NAME` is never ambiguous).
    ///
    /// ```
    /// use session_core::{Session, SessionStatus, SessionType};
    /// let session = Session::new("dev-admin", SessionType::AwsIamUser)?
    ///     .with_region("eu-west-1");
    /// assert_eq!(session.status(), SessionStatus::Inactive);
    /// assert!(Session::new("  ", SessionType::AwsIamUser).is_err());
    /// # Ok::<(), session_core::Error>(())
    /// ```
    pub fn new(name: impl Into<String>, session_type: SessionType) -> Result<Self> {
        let name = name.into();
        validate_name(&name)?;
        Ok(Self::blank(SessionId::new(), name, session_type))
    }

    /// An `inactive` session with nothing set but these.
    fn blank(session_id: SessionId, session_name: String, session_type: SessionType) -> Self {
        Self {
            session_id,
            session_name,
            session_type,
            status: SessionStatus::Inactive,
            start_date_time: None,
            region: None,
            expiration: None,
            issued_at: None,
            parent_session_id: None,
            last_error: None,
            config: ProviderConfig::default(),
            state: ProviderConfig::default(),
            revision: 0,
            extra: Map::new(),
        }
    }

    /// Sets the region.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Sets the parent session.
    pub fn with_parent(mut self, parent: SessionId) -> Self {
        self.parent_session_id = Some(parent);
        self
    }

    /// Sets the provider configuration from a typed value (see
    /// [`ProviderConfig::set`]).
    pub fn with_config<T: Serialize>(mut self, config: &T) -> Result<Self> {
        self.config.set(config)?;
        Ok(self)
    }

    /// Replaces the whole [`state`](Session::state) with the typed value
    /// `T` (keys it serializes as `null` are left out). A provider calls this
    /// once per start, rotate or resume with everything that operation made
    /// available, so nothing from an earlier one lingers.
    ///
    /// ```
    /// use session_core::{Session, SessionType};
    /// let mut session = Session::new("bmc", SessionType::Redfish)?;
    /// session.state.as_map_mut().insert("old".into(), 1.into());
    /// session.replace_state(&serde_json::json!({"sessionUri": "/s/1", "gone": null}))?;
    /// assert_eq!(serde_json::to_value(&session.state)?, serde_json::json!({"sessionUri": "/s/1"}));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn replace_state<T: Serialize>(&mut self, state: &T) -> Result<()> {
        let mut fresh = ProviderConfig::default();
        fresh.set(state)?;
        self.state = fresh;
        Ok(())
    }

    /// The status.
    pub fn status(&self) -> SessionStatus {
        self.status
    }

    /// The revision the repository last stored (0 before the first insert).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Moves to `to` if the transition table of [`SessionStatus`] allows it.
    ///
    /// Becoming `active` sets `start_date_time` (if not set) to `now`;
    /// becoming `inactive` clears `start_date_time`, `expiration` and
    /// [`state`](Session::state): nothing a start made available outlives
    /// the session, whoever stopped it (provider or manager).
    pub fn transition(&mut self, to: SessionStatus, now: OffsetDateTime) -> Result<()> {
        if !self.status.can_become(to) {
            return Err(Error::InvalidTransition {
                session: self.label(),
                from: self.status,
                to,
            });
        }
        match to {
            SessionStatus::Active if self.start_date_time.is_none() => {
                self.start_date_time = Some(now);
            }
            SessionStatus::Inactive => {
                self.start_date_time = None;
                self.expiration = None;
                self.issued_at = None;
                self.state = ProviderConfig::default();
            }
            _ => {}
        }
        self.status = to;
        Ok(())
    }

    /// `session 'name' (id)`: how errors and logs name this session.
    pub fn label(&self) -> String {
        format!("session '{}' ({})", self.session_name, self.session_id)
    }

    /// Whether `expiration` is set and at or before `now`.
    pub fn is_expired_at(&self, now: OffsetDateTime) -> bool {
        self.expiration.is_some_and(|exp| exp <= now)
    }

    /// Records a failed operation in `last_error`.
    pub fn record_error(&mut self, operation: &str, error: &Error, at: OffsetDateTime) {
        self.last_error = Some(LastError {
            operation: operation.to_owned(),
            category: error.category().to_owned(),
            message: error.to_string(),
            at,
        });
    }

    /// Checks the invariants a repository enforces on insert and update.
    pub fn validate(&self) -> Result<()> {
        validate_name(&self.session_name)?;
        if self.parent_session_id == Some(self.session_id) {
            return Err(Error::invalid_input(
                "parentSessionId",
                format!("{} cannot be its own parent", self.label()),
            ));
        }
        Ok(())
    }

    /// Sets the revision. Only repositories call this.
    pub(crate) fn set_revision(&mut self, revision: u64) {
        self.revision = revision;
    }

    /// A session that stands for none: where a parallel load puts a
    /// session that did not parse, before it reports the error. Costs no
    /// allocation.
    pub(crate) fn placeholder() -> Self {
        Self::blank(
            SessionId::from_uuid(uuid::Uuid::nil()),
            String::new(),
            SessionType::AwsIamUser,
        )
    }

    /// Overwrites the status without the transition check. For repositories
    /// and importers that restore a stored record, never for operations.
    #[doc(hidden)]
    pub fn restore_status(&mut self, status: SessionStatus) {
        self.status = status;
    }
}

fn validate_name(name: &str) -> Result<()> {
    let field = "session name";
    if name.trim().is_empty() {
        return Err(Error::invalid_input(field, "must not be empty"));
    }
    if name.trim() != name {
        return Err(Error::invalid_input(
            field,
            format!("{name:?} has leading or trailing spaces"),
        ));
    }
    if name.chars().count() > MAX_SESSION_NAME_CHARS {
        return Err(Error::invalid_input(
            field,
            format!("longer than {MAX_SESSION_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid_input(
            field,
            format!("{name:?} contains control characters"),
        ));
    }
    // `uuid::Uuid::parse_str` rather than `SessionId::from_str`, whose
    // error message would be formatted for every ordinary name.
    if uuid::Uuid::parse_str(name).is_ok() {
        return Err(Error::invalid_input(
            field,
            format!("{name:?} looks like a session id; choose a name that is not a UUID"),
        ));
    }
    Ok(())
}

/// The failure recorded on a session by the last operation that failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LastError {
    /// The operation that failed (`start`, `stop`, `rotate`, `resume`), or
    /// `connection` when a live session's connection ended (the reason is
    /// in `message`).
    pub operation: String,
    /// [`Error::category`] of the failure.
    pub category: String,
    /// The error's message (never contains secrets).
    pub message: String,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Reads a session field by field. Hand-written rather than derived because
/// `#[serde(flatten)]` (for the unknown fields) makes serde buffer every
/// field first, which made loading a 10,000-session workspace 3 to 4 times
/// slower.
impl<'de> Deserialize<'de> for Session {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_map(SessionVisitor { keep: KeepText::No })
    }
}

impl Session {
    /// Reads a session from JSON text, keeping its `config` and `state` as
    /// text until they are looked at (see [`ProviderConfig`]'s "Cost"): for
    /// the repositories, which load many sessions and look at few.
    pub(crate) fn from_json_keeping_text(text: &str) -> serde_json::Result<Session> {
        Self::from_json_keeping(text, KeepText::Owned)
    }

    /// [`from_json_keeping_text`](Self::from_json_keeping_text) for `text`,
    /// a slice of `file`, whose text the session then shares (no copy).
    pub(crate) fn from_json_in(file: &SharedText, text: &str) -> serde_json::Result<Session> {
        // What a workspace writes is read without serde's generic path;
        // anything else (or damaged) is left to it.
        if let Some(session) = compact::parse_in(file, text) {
            return Ok(session);
        }
        Self::from_json_keeping(text, KeepText::In(file))
    }

    fn from_json_keeping(text: &str, keep: KeepText<'_>) -> serde_json::Result<Session> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let session =
            serde::Deserializer::deserialize_map(&mut deserializer, SessionVisitor { keep })?;
        deserializer.end()?;
        Ok(session)
    }
}

/// An optional RFC 3339 time, as a type so `next_value` can read it.
#[derive(Deserialize)]
struct Rfc3339Opt(#[serde(with = "time::serde::rfc3339::option")] Option<OffsetDateTime>);

struct SessionVisitor<'a> {
    keep: KeepText<'a>,
}

/// Whether `config` and `state` are kept as JSON text: only with
/// serde_json's own deserializer, which can hand out the text of a value.
#[derive(Clone, Copy)]
enum KeepText<'a> {
    /// Parsed now: any deserializer.
    No,
    /// A copy of the text.
    Owned,
    /// A range of this file's text, which the input is a slice of.
    In(&'a SharedText),
}

impl SessionVisitor<'_> {
    fn provider_config<'de, M: serde::de::MapAccess<'de>>(
        &self,
        map: &mut M,
    ) -> std::result::Result<ProviderConfig, M::Error> {
        let kept = match self.keep {
            KeepText::No => return map.next_value(),
            KeepText::Owned => ProviderConfig::from_json_text(
                map.next_value::<Box<serde_json::value::RawValue>>()?,
            ),
            KeepText::In(file) => {
                let text = map.next_value::<&'de serde_json::value::RawValue>()?;
                ProviderConfig::from_text_in(file, text.get())
            }
        };
        kept.ok_or_else(|| {
            serde::de::Error::invalid_type(serde::de::Unexpected::Other("a non-object"), &"a map")
        })
    }
}

impl<'de> serde::de::Visitor<'de> for SessionVisitor<'_> {
    type Value = Session;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a session object")
    }

    fn visit_map<M: serde::de::MapAccess<'de>>(
        self,
        mut map: M,
    ) -> std::result::Result<Session, M::Error> {
        use serde::de::Error as _;
        let mut id = None;
        let mut name = None;
        let mut session_type = None;
        let mut status = None;
        let mut start_date_time = None;
        let mut region = None;
        let mut expiration = None;
        let mut issued_at = None;
        let mut parent = None;
        let mut last_error = None;
        let mut config = None;
        let mut state = None;
        let mut revision = None;
        let mut extra = Map::new();
        fn set<T, E: serde::de::Error>(
            slot: &mut Option<T>,
            value: T,
            key: &'static str,
        ) -> std::result::Result<(), E> {
            if slot.replace(value).is_some() {
                return Err(E::duplicate_field(key));
            }
            Ok(())
        }
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "sessionId" => set(&mut id, map.next_value::<SessionId>()?, "sessionId")?,
                "sessionName" => set(&mut name, map.next_value::<String>()?, "sessionName")?,
                "sessionType" => set(
                    &mut session_type,
                    map.next_value::<SessionType>()?,
                    "sessionType",
                )?,
                "status" => set(&mut status, map.next_value::<SessionStatus>()?, "status")?,
                "startDateTime" => set(
                    &mut start_date_time,
                    map.next_value::<Rfc3339Opt>()?.0,
                    "startDateTime",
                )?,
                "region" => set(&mut region, map.next_value::<Option<String>>()?, "region")?,
                "expiration" => set(
                    &mut expiration,
                    map.next_value::<Rfc3339Opt>()?.0,
                    "expiration",
                )?,
                "issuedAt" => set(
                    &mut issued_at,
                    map.next_value::<Rfc3339Opt>()?.0,
                    "issuedAt",
                )?,
                "parentSessionId" => set(
                    &mut parent,
                    map.next_value::<Option<SessionId>>()?,
                    "parentSessionId",
                )?,
                "lastError" => set(
                    &mut last_error,
                    map.next_value::<Option<LastError>>()?,
                    "lastError",
                )?,
                "config" => set(&mut config, self.provider_config(&mut map)?, "config")?,
                "state" => set(&mut state, self.provider_config(&mut map)?, "state")?,
                "revision" => set(&mut revision, map.next_value::<u64>()?, "revision")?,
                _ => {
                    let value = map.next_value::<Value>()?;
                    if extra.insert(key.into_owned(), value).is_some() {
                        return Err(M::Error::custom("duplicate unknown field"));
                    }
                }
            }
        }
        Ok(Session {
            session_id: id.ok_or_else(|| M::Error::missing_field("sessionId"))?,
            session_name: name.ok_or_else(|| M::Error::missing_field("sessionName"))?,
            session_type: session_type.ok_or_else(|| M::Error::missing_field("sessionType"))?,
            status: status.ok_or_else(|| M::Error::missing_field("status"))?,
            start_date_time: start_date_time.flatten(),
            region: region.flatten(),
            expiration: expiration.flatten(),
            issued_at: issued_at.flatten(),
            parent_session_id: parent.flatten(),
            last_error: last_error.flatten(),
            config: config.unwrap_or_default(),
            state: state.unwrap_or_default(),
            revision: revision.unwrap_or_default(),
            extra,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_cleared_on_inactive_and_omitted_when_empty() {
        let at = time::macros::datetime!(2030-01-01 0:00 UTC);
        let mut s = Session::new("st", SessionType::Redfish).unwrap();
        assert!(!serde_json::to_string(&s).unwrap().contains("\"state\""));
        s.transition(SessionStatus::Pending, at).unwrap();
        s.transition(SessionStatus::Active, at).unwrap();
        s.config
            .as_map_mut()
            .insert("endpoint".into(), "https://b".into());
        s.replace_state(&serde_json::json!({"sessionUri": "/s/1"}))
            .unwrap();
        assert!(
            serde_json::to_string(&s)
                .unwrap()
                .contains(r#""state":{"sessionUri":"/s/1"}"#)
        );
        // A second start replaces the state wholesale.
        s.replace_state(&serde_json::json!({"authMode": "basic"}))
            .unwrap();
        assert_eq!(s.state.as_map().len(), 1);
        s.transition(SessionStatus::Stopping, at).unwrap();
        assert!(!s.state.is_empty(), "stop still needs it");
        s.transition(SessionStatus::Inactive, at).unwrap();
        assert!(s.state.is_empty(), "inactive keeps no state");
        assert_eq!(
            s.config.get_str("endpoint"),
            Some("https://b"),
            "settings stay"
        );
    }

    #[test]
    fn json_round_trip_keeps_every_field() {
        let at = time::macros::datetime!(2030-01-01 0:00 UTC);
        let mut s = Session::new("rt", SessionType::AwsSsoRole)
            .unwrap()
            .with_region("eu-west-1")
            .with_parent(SessionId::new());
        s.transition(SessionStatus::Pending, at).unwrap();
        s.transition(SessionStatus::Active, at).unwrap();
        s.expiration = Some(at + time::Duration::HOUR);
        s.record_error("rotate", &Error::not_found("x"), at);
        s.config.as_map_mut().insert("k".into(), 1.into());
        s.state
            .as_map_mut()
            .insert("sessionUri".into(), "/s/1".into());
        s.extra.insert("future".into(), true.into());
        s.set_revision(4);
        let text = serde_json::to_string(&s).unwrap();
        let back: Session = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
    }

    #[test]
    fn missing_and_duplicate_fields_are_errors() {
        let id = SessionId::new();
        let missing = format!(r#"{{"sessionId":"{id}","sessionName":"x","status":"active"}}"#);
        let err = serde_json::from_str::<Session>(&missing)
            .unwrap_err()
            .to_string();
        assert!(err.contains("sessionType"), "{err}");
        let twice = format!(
            r#"{{"sessionId":"{id}","sessionName":"x","sessionName":"y","sessionType":"azure","status":"active"}}"#
        );
        let err = serde_json::from_str::<Session>(&twice)
            .unwrap_err()
            .to_string();
        assert!(err.contains("duplicate"), "{err}");
        let twice = format!(
            r#"{{"sessionId":"{id}","sessionName":"x","sessionType":"azure","status":"active","state":{{}},"state":{{}}}}"#
        );
        let err = serde_json::from_str::<Session>(&twice)
            .unwrap_err()
            .to_string();
        assert!(err.contains("duplicate field `state`"), "{err}");
        let nulls = format!(
            r#"{{"sessionId":"{id}","sessionName":"x","sessionType":"azure","status":"inactive","region":null,"expiration":null}}"#
        );
        let s: Session = serde_json::from_str(&nulls).unwrap();
        assert_eq!((s.region, s.expiration), (None, None));
    }
}
