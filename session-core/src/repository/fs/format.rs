//! The workspace file on disk: its schema, parsing (errors carry the line
//! and column in the whole file), migrations and serialization.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::journal::{FileId, Position, Record};
use super::layout::RenderedLayout;
use super::store::{Inner, Stamp};
use crate::provider_config::SharedText;
use crate::repository::{IdMap, SessionSet};
use crate::{Error, Result, Session, SessionId};

/// The schema version this build reads and writes.
///
/// - 1: the first release.
/// - 2: each session's `state` (what start made available) is apart from
///   its `config` (the user's settings). A schema 1 file is migrated when
///   loaded by a built-in step that moves the keys providers wrote at start
///   (`publishedProfile` of the AWS credential types, `signedInAccount` and
///   `azureCliPublished` of `azure`, `authMode` and `sessionUri` of
///   `redfish`) from `config` to `state`.
/// - 3: the file may have a journal beside it (`<file>.journal`, see
///   [`FsWorkspace`](crate::FsWorkspace)) holding changes made since it
///   was written whole, and names its `generation` so a journal knows which
///   version of the file it continues. A build that reads only schema 2
///   would ignore the journal, so it is refused instead. The step from 2 to
///   3 changes nothing in the sessions.
pub const WORKSPACE_SCHEMA_VERSION: u32 = 3;

/// The keys schema 1 kept in a session's `config` although a start or
/// rotate wrote them, by session type: schema 2 keeps them in `state`.
const STATE_KEYS_V1: &[(&str, &[&str])] = &[
    ("awsIamUser", &["publishedProfile"]),
    ("awsIamRoleChained", &["publishedProfile"]),
    ("awsIamRoleFederated", &["publishedProfile"]),
    ("awsSsoRole", &["publishedProfile"]),
    ("azure", &["signedInAccount", "azureCliPublished"]),
    ("redfish", &["authMode", "sessionUri"]),
];

/// The built-in step from schema 1 to 2: moves each key of
/// [`STATE_KEYS_V1`] from a session's `config` to its `state`.
///
/// An `inactive` session's keys are dropped instead: schema 2 keeps no
/// state for an inactive session, and what schema 1 left there after a stop
/// (the Azure signed-in account, which its stop did not erase) describes a
/// sign-in that is over; the next start records it afresh. A key holding
/// `null` is dropped too. Sessions of other types, and every other key, are
/// left as they are.
pub(super) fn split_state_from_config(
    doc: &mut Map<String, Value>,
) -> std::result::Result<(), String> {
    let Some(sessions) = doc.get_mut("sessions").and_then(Value::as_array_mut) else {
        return Err("the \"sessions\" field is missing or not a list".into());
    };
    for session in sessions.iter_mut().filter_map(Value::as_object_mut) {
        let session_type = session.get("sessionType").and_then(Value::as_str);
        let inactive = session.get("status").and_then(Value::as_str) == Some("inactive");
        let Some((_, keys)) = STATE_KEYS_V1.iter().find(|(t, _)| Some(*t) == session_type) else {
            continue;
        };
        let Some(config) = session.get_mut("config").and_then(Value::as_object_mut) else {
            continue;
        };
        let mut state = Map::new();
        for key in *keys {
            match config.remove(*key) {
                None | Some(Value::Null) => {}
                Some(value) => {
                    state.insert((*key).to_owned(), value);
                }
            }
        }
        if inactive {
            continue;
        }
        if !state.is_empty() {
            session.insert("state".into(), Value::Object(state));
        }
    }
    Ok(())
}

const KIND: &str = "workspace file";
const JOURNAL_KIND: &str = "workspace journal";
/// Below this many sessions per extra thread, parsing stays on one thread.
const PARALLEL_PARSE_MIN: usize = 2_000;
/// A file this large may hold that many sessions (about 400 bytes each):
/// reading it starts the parser threads.
pub(super) const PARALLEL_PARSE_BYTES: u64 = 400 * PARALLEL_PARSE_MIN as u64;

/// A migration step: rewrites a top-level document of schema `n` into
/// schema `n + 1`. Errors are reported with the file name.
pub type Migration = fn(&mut Map<String, Value>) -> std::result::Result<(), String>;

/// The parsed file, plus each session's JSON text so a write re-serializes
/// only the sessions that changed.
pub(super) struct Loaded {
    pub(super) stamp: Option<Stamp>,
    /// The file's `generation`: how many times it has been written whole
    /// (0 before the first write, and for files older than schema 3).
    pub(super) generation: u64,
    /// The journal read on top of the file.
    pub(super) journal: JournalState,
    /// The file is of an older schema, migrated in memory: the next write
    /// rewrites it whole, so that no older build reads it without a
    /// journal it cannot see.
    pub(super) migrated: bool,
    /// The file's size, which sets when the journal is compacted.
    pub(super) file_len: u64,
    pub(super) set: SessionSet,
    /// JSON text by session id; a missing entry is encoded at the next write.
    pub(super) raw: IdMap<CachedJson>,
    extra: Map<String, Value>,
    /// The text the file had when loaded; `CachedJson::InFile` points into it.
    file: Arc<String>,
}

/// The journal beside the file, as far as it has been read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum JournalState {
    /// There is none.
    None,
    /// Read up to this position and applied.
    Live(Position),
    /// One of an older generation than the file, already folded into it
    /// (a compaction was cut short before removing it): ignored, and removed
    /// by the next writer.
    Stale(FileId),
    /// One whose header line is not complete: being created right now, or
    /// left so by a killed writer (then removed by the next writer).
    Pending(FileId),
}

/// One session's JSON text: still where it was in the loaded file (no copy),
/// or encoded since.
pub(super) enum CachedJson {
    InFile(std::ops::Range<usize>),
    Encoded(Box<RawValue>),
}

impl Loaded {
    pub(super) fn empty() -> Self {
        Loaded {
            stamp: None,
            generation: 0,
            journal: JournalState::None,
            migrated: false,
            file_len: 0,
            set: SessionSet::default(),
            raw: IdMap::default(),
            extra: Map::new(),
            file: Arc::default(),
        }
    }
}

impl Inner {
    pub(super) fn parse(&self, text: String) -> Result<Loaded> {
        self.parse_as(text, false)
    }

    /// [`parse`](Self::parse); `as_current` reads the sessions of an older
    /// schema as if they were current, without migrating (to find where an
    /// error is in the file as the user has it).
    fn parse_as(&self, text: String, as_current: bool) -> Result<Loaded> {
        // Shared with the sessions, whose settings stay ranges of it.
        let file = Arc::new(text);
        let text: &str = &file;
        if !as_current
            && let Some(layout) = RenderedLayout::find(text)
            && layout.version == u64::from(WORKSPACE_SCHEMA_VERSION)
            && let Ok(sessions) = self.parse_sessions(&file, &layout.sessions)
        {
            return self.loaded(
                &file,
                layout.generation,
                &layout.sessions,
                sessions,
                Map::new(),
            );
        }
        // Not render's layout, or not whole sessions after all (written by
        // hand or by an older release, or damaged): the general path reads
        // the file as JSON, and reports any damage where it is.
        let top: TopLevel<'_> =
            serde_json::from_str(text).map_err(|e| self.corrupt_at(e.line(), e.column(), e))?;
        let version = top
            .version
            .ok_or_else(|| self.corrupt_at(1, 1, "the \"version\" field is missing"))?;
        if version > u64::from(WORKSPACE_SCHEMA_VERSION) {
            return Err(Error::storage(
                &self.path,
                format!(
                    "written by a newer version of session-sdk (schema {version}; this build \
                     reads up to {WORKSPACE_SCHEMA_VERSION}); upgrade to read it{}",
                    self.backup_hint()
                ),
                None,
            ));
        }
        if version < u64::from(WORKSPACE_SCHEMA_VERSION) && !as_current {
            return self.migrate(text, version as u32);
        }
        let raws: Vec<&str> = top
            .sessions
            .ok_or_else(|| self.corrupt_at(1, 1, "the \"sessions\" field is missing"))?
            .into_iter()
            .map(RawValue::get)
            .collect();
        let sessions = self.parse_sessions(&file, &raws)?;
        self.loaded(
            &file,
            top.generation.unwrap_or(0),
            &raws,
            sessions,
            top.extra,
        )
    }

    /// What was loaded from `file`: `sessions`, parsed from `raws` (their
    /// texts, slices of `file`, in the same order), indexed by id.
    fn loaded(
        &self,
        file: &Arc<String>,
        generation: u64,
        raws: &[&str],
        sessions: Vec<Session>,
        extra: Map<String, Value>,
    ) -> Result<Loaded> {
        let bytes = file.as_bytes();
        let ids: Vec<SessionId> = sessions.iter().map(|s| s.session_id).collect();
        let texts = || {
            let mut raw = IdMap::with_capacity_and_hasher(raws.len(), Default::default());
            for (id, item) in ids.iter().zip(raws) {
                let start = offset_in(bytes, item);
                raw.insert(*id, CachedJson::InFile(start..start + item.len()));
            }
            raw
        };
        // Two maps of every session: built side by side when that is worth
        // waking a second thread for.
        let (set, raw) = if sessions.len() >= PARALLEL_PARSE_MIN {
            rayon::join(|| SessionSet::from_sessions(sessions), texts)
        } else {
            (SessionSet::from_sessions(sessions), texts())
        };
        let set = set.map_err(|id| {
            // Point at the second session with the id.
            let (line, column) = raws
                .iter()
                .zip(&ids)
                .filter(|(_, seen)| **seen == id)
                .nth(1)
                .map_or((0, 0), |(item, _)| {
                    position_of(bytes, offset_in(bytes, item))
                });
            self.corrupt_at(line, column, format!("session id {id} appears twice"))
        })?;
        Ok(Loaded {
            stamp: None,
            generation,
            journal: JournalState::None,
            migrated: false,
            file_len: file.len() as u64,
            set,
            raw,
            extra,
            file: Arc::clone(file),
        })
    }

    /// Parses and validates each session. Large workspaces are split over
    /// the available cores: sessions parse independently, and parsing is
    /// most of the cost of loading (about 0.5 µs per session).
    fn parse_sessions(&self, file: &Arc<String>, raws: &[&str]) -> Result<Vec<Session>> {
        let bytes = file.as_bytes();
        let parse_one = |shared: &SharedText, item: &&str| -> Result<Session> {
            let session =
                Session::from_json_in(shared, item).map_err(|e| self.corrupt_in(bytes, item, e))?;
            session
                .validate()
                .map_err(|e| self.corrupt_in(bytes, item, e))?;
            Ok(session)
        };
        let in_order = || {
            let shared = SharedText::new(file);
            raws.iter().map(|item| parse_one(&shared, item)).collect()
        };
        let threads = rayon::current_num_threads().min(raws.len() / PARALLEL_PARSE_MIN + 1);
        if threads <= 1 {
            return in_order();
        }
        // On the global rayon pool, whose threads outlive one load (and are
        // started when a large file is opened, see `refresh`): a thread
        // spawned for the load starts late, as the scheduler first queues
        // it on the busy core, by 2 to 4 ms at 10,000 sessions on 2 cores.
        // Each part of the work has its own handle on the text, and writes
        // its sessions straight into their place in the result (rather than
        // into lists of its own that are then copied into it on this
        // thread, a tenth of the load). A session that does not parse
        // leaves a placeholder and a mark.
        use rayon::prelude::*;
        let failed = std::sync::atomic::AtomicBool::new(false);
        let mut sessions = Vec::new();
        raws.par_iter()
            .with_min_len(raws.len().div_ceil(threads * 4))
            .map_init(
                || SharedText::new(file),
                |shared, item| {
                    parse_one(shared, item).unwrap_or_else(|_| {
                        failed.store(true, std::sync::atomic::Ordering::Relaxed);
                        Session::placeholder()
                    })
                },
            )
            .collect_into_vec(&mut sessions);
        if failed.into_inner() {
            // The error a reader should see is the first in the file.
            return in_order();
        }
        Ok(sessions)
    }

    /// Runs the migration steps from `from` up to the current schema on the
    /// whole document, then parses it. The file itself is rewritten only by
    /// the next write.
    fn migrate(&self, text: &str, from: u32) -> Result<Loaded> {
        let mut doc: Map<String, Value> =
            serde_json::from_str(text).map_err(|e| self.corrupt_at(e.line(), e.column(), e))?;
        for version in from..WORKSPACE_SCHEMA_VERSION {
            // A step registered on the builder wins over the built-in one.
            let builtin: Option<Migration> = match version {
                1 => Some(split_state_from_config),
                2 => Some(|_| Ok(())),
                _ => None,
            };
            let step = self
                .migrations
                .iter()
                .find(|(v, _)| *v == version)
                .map(|(_, step)| *step)
                .or(builtin)
                .ok_or_else(|| {
                    Error::storage(
                        &self.path,
                        format!(
                            "schema {version} is older than this build can migrate (no step from {version} to {})",
                            version + 1
                        ),
                        None,
                    )
                })?;
            step(&mut doc).map_err(|reason| {
                Error::storage(
                    &self.path,
                    format!("migrating from schema {version}: {reason}"),
                    None,
                )
            })?;
        }
        doc.insert("version".into(), Value::from(WORKSPACE_SCHEMA_VERSION));
        let migrated = serde_json::to_string(&doc)
            .map_err(|e| self.corrupt_at(0, 0, format!("after migration: {e}")))?;
        let mut loaded = self
            .parse(migrated)
            .map_err(|e| self.locate_in_original(text, e))?;
        loaded.migrated = true;
        Ok(loaded)
    }

    /// An error found in the migrated text has its line and column there,
    /// not in the file the user has. When the original sessions show the
    /// same kind of fault (a bad session, a repeated id), that error, with
    /// its position in the file, is reported instead.
    fn locate_in_original(&self, original: &str, migrated: Error) -> Error {
        // A schema that kept its sessions elsewhere has nothing to compare.
        let has_sessions =
            serde_json::from_str::<TopLevel<'_>>(original).is_ok_and(|top| top.sessions.is_some());
        if !has_sessions {
            return migrated;
        }
        match self.parse_as(original.to_owned(), true) {
            Err(in_file @ Error::Corrupt { .. }) => in_file,
            _ => migrated,
        }
    }

    /// Applies journal records (with their line numbers) on top of
    /// `loaded`. Each session is parsed and validated as the file's are;
    /// the rules were checked when the change was made.
    pub(super) fn apply_records(
        &self,
        loaded: &mut Loaded,
        records: Vec<(usize, Record)>,
    ) -> Result<()> {
        for (line, record) in records {
            match record {
                Record::Put(text) => {
                    let session = Session::from_json_keeping_text(text.get())
                        .map_err(|e| self.journal_corrupt(line, e))?;
                    session
                        .validate()
                        .map_err(|e| self.journal_corrupt(line, e))?;
                    let id = session.session_id;
                    loaded.set.put_unchecked(session);
                    loaded.raw.insert(id, CachedJson::Encoded(text));
                }
                Record::Delete(id) => {
                    loaded.set.remove_unchecked(id);
                    loaded.raw.remove(&id);
                }
            }
        }
        Ok(())
    }

    /// An error on `line` of the journal.
    pub(super) fn journal_corrupt(&self, line: usize, message: impl fmt::Display) -> Error {
        Error::Corrupt {
            path: self.journal_path(),
            kind: JOURNAL_KIND.into(),
            line,
            column: 0,
            message: crate::error::without_position(&message.to_string()),
        }
    }

    /// `; the previous version of the file is in X`, when there is one.
    /// It may be of the newer schema too; it is named only if it exists.
    fn backup_hint(&self) -> String {
        if self.backup_path.is_file() {
            format!(
                "; the previous version of the file is in {}",
                self.backup_path.display()
            )
        } else {
            String::new()
        }
    }

    pub(super) fn corrupt_at(
        &self,
        line: usize,
        column: usize,
        message: impl fmt::Display,
    ) -> Error {
        Error::Corrupt {
            path: self.path.clone(),
            kind: KIND.into(),
            line,
            column,
            message: crate::error::without_position(&message.to_string()),
        }
    }

    /// An error inside one session's text, positioned in the whole file.
    fn corrupt_in(&self, file: &[u8], item: &str, e: impl ErrorPosition) -> Error {
        let (line0, col0) = position_of(file, offset_in(file, item));
        let (line, column) = match e.position() {
            Some((1, col)) => (line0, col0 + col - 1),
            Some((l, col)) => (line0 + l - 1, col),
            None => (line0, col0),
        };
        self.corrupt_at(line, column, e.message())
    }
}

/// Where `item`, a slice of `file`, starts in it.
fn offset_in(file: &[u8], item: &str) -> usize {
    (item.as_ptr() as usize).saturating_sub(file.as_ptr() as usize)
}

/// The 1-based line and column of byte `offset` of `file`.
pub(super) fn position_of(file: &[u8], offset: usize) -> (usize, usize) {
    let before = &file[..offset.min(file.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    (line, before.len() - line_start + 1)
}

/// The position and message of an error found inside one session.
trait ErrorPosition {
    fn position(&self) -> Option<(usize, usize)>;
    fn message(&self) -> String;
}

impl ErrorPosition for serde_json::Error {
    fn position(&self) -> Option<(usize, usize)> {
        Some((self.line(), self.column()))
    }
    fn message(&self) -> String {
        self.to_string()
    }
}

impl ErrorPosition for Error {
    fn position(&self) -> Option<(usize, usize)> {
        None
    }
    fn message(&self) -> String {
        self.to_string()
    }
}

/// The whole file: each session's cached JSON text, encoding the ones
/// that have none yet.
pub(super) fn render(loaded: &mut Loaded) -> serde_json::Result<String> {
    let Loaded {
        set,
        raw,
        extra,
        file,
        generation: loaded_generation,
        ..
    } = loaded;
    for session in set.sessions() {
        if let std::collections::hash_map::Entry::Vacant(slot) = raw.entry(session.session_id) {
            slot.insert(CachedJson::Encoded(RawValue::from_string(
                serde_json::to_string(session)?,
            )?));
        }
    }
    let texts: Vec<&str> = set
        .sessions()
        .iter()
        .map(|s| match &raw[&s.session_id] {
            CachedJson::InFile(range) => &file[range.clone()],
            CachedJson::Encoded(text) => text.get(),
        })
        .collect();
    let size: usize = texts.iter().map(|t| t.len() + 6).sum();
    let mut out = String::with_capacity(size + 64);
    out.push_str("{\n  \"version\": ");
    out.push_str(&WORKSPACE_SCHEMA_VERSION.to_string());
    out.push_str(",\n  \"generation\": ");
    out.push_str(&loaded_generation.to_string());
    out.push_str(",\n  \"sessions\": [");
    for (i, text) in texts.iter().enumerate() {
        out.push_str(if i == 0 { "\n    " } else { ",\n    " });
        out.push_str(text);
    }
    out.push_str(if texts.is_empty() { "]" } else { "\n  ]" });
    for (key, value) in extra.iter() {
        out.push_str(",\n  ");
        out.push_str(&serde_json::to_string(key)?);
        out.push_str(": ");
        out.push_str(&serde_json::to_string(value)?);
    }
    out.push_str("\n}\n");
    Ok(out)
}

/// The top level, read without buffering the sessions: each session stays
/// a slice of the input until it is parsed on its own.
struct TopLevel<'a> {
    version: Option<u64>,
    generation: Option<u64>,
    sessions: Option<Vec<&'a RawValue>>,
    extra: Map<String, Value>,
}

impl<'de: 'a, 'a> Deserialize<'de> for TopLevel<'a> {
    fn deserialize<D: de::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        struct TopVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for TopVisitor<'a> {
            type Value = TopLevel<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a workspace object with \"version\" and \"sessions\"")
            }
            fn visit_map<M: MapAccess<'de>>(
                self,
                mut map: M,
            ) -> std::result::Result<Self::Value, M::Error> {
                let mut top = TopLevel {
                    version: None,
                    generation: None,
                    sessions: None,
                    extra: Map::new(),
                };
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match key.as_ref() {
                        "version" if top.version.is_none() => top.version = Some(map.next_value()?),
                        "sessions" if top.sessions.is_none() => {
                            top.sessions = Some(map.next_value()?)
                        }
                        "generation" if top.generation.is_none() => {
                            top.generation = Some(map.next_value()?)
                        }
                        "version" | "sessions" | "generation" => {
                            return Err(de::Error::custom(format!("duplicate field \"{key}\"")));
                        }
                        _ => {
                            let value = map.next_value()?;
                            top.extra.insert(key.into_owned(), value);
                        }
                    }
                }
                Ok(top)
            }
        }
        deserializer.deserialize_map(TopVisitor(std::marker::PhantomData))
    }
}
