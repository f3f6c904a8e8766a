//! Planning an edit of one file: lock it, read and parse it, change our
//! section in the parsed document, check that the result reads back as
//! intended, and only then write it.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use session_core::private_file::{self, LockError};
use session_core::{Error, Result, SessionId};
use zeroize::{Zeroize, Zeroizing};

use super::names::{FileKind, Owner, marker, owner};
use crate::sink::ini::{IniDocument, InvalidValue, Section};

/// One of the two files, locked (through its sidecar lock file, held until
/// this is dropped) and parsed; edits are planned on the parsed document and
/// written only after [`checked_text`](Self::checked_text) accepted them.
pub(super) struct LockedFile {
    /// The resolved path (the target of any symlink).
    pub(super) path: PathBuf,
    kind: FileKind,
    original: Option<Zeroizing<String>>,
    doc: IniDocument,
    /// Held until this is dropped.
    _lock: File,
}

impl LockedFile {
    pub(super) fn lock_and_read(path: PathBuf, kind: FileKind, timeout: Duration) -> Result<Self> {
        let lock_path = sidecar(&path);
        let lock = private_file::lock_exclusive(&lock_path, timeout).map_err(|e| match e {
            LockError::Io(e) => Error::storage(
                &path,
                format!("cannot take the lock {}", lock_path.display()),
                Some(e),
            ),
            LockError::TimedOut => Error::Timeout {
                target: format!(
                    "waiting for the lock {} (another process is editing {}; retry when it is \
                     done, the lock frees itself when that process exits)",
                    lock_path.display(),
                    path.display()
                ),
                after: timeout,
            },
        })?;
        let original = match std::fs::read(&path) {
            Ok(bytes) => Some(Zeroizing::new(String::from_utf8(bytes).map_err(|e| {
                let mut bytes = e.into_bytes();
                let error = not_utf8(&path, kind, &bytes);
                bytes.zeroize();
                error
            })?)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::storage(&path, "cannot read the file", Some(e))),
        };
        let doc =
            IniDocument::parse(original.as_deref().map_or("", String::as_str)).map_err(|e| {
                Error::Corrupt {
                    path: path.clone(),
                    kind: kind.describe().into(),
                    line: e.line,
                    column: e.column,
                    message: e.message,
                }
            })?;
        Ok(Self {
            path,
            kind,
            original,
            doc,
            _lock: lock,
        })
    }

    /// The sections that are `profile` in this file.
    fn sections_of(&self, profile: &str) -> Vec<Section> {
        self.doc
            .sections()
            .into_iter()
            .filter(|s| self.kind.names_profile(&s.name, profile))
            .collect()
    }

    /// Plans writing our section: replaced in place if ours, appended if
    /// missing, refused if anything else has the name.
    pub(super) fn publish(
        &mut self,
        profile: &str,
        session: SessionId,
        values: &[(&str, &str)],
    ) -> Result<()> {
        let sections = self.sections_of(profile);
        for (index, later) in sections.iter().enumerate() {
            if let Some(first) = sections[..index].iter().find(|s| s.name == later.name) {
                return Err(self.duplicate(first, later));
            }
        }
        let owners: Vec<Owner> = sections
            .iter()
            .map(|s| owner(&self.doc, s, session))
            .collect();
        if let Some((section, owner)) = sections
            .iter()
            .zip(&owners)
            .find(|(_, o)| **o != Owner::ThisSession)
        {
            return Err(self.taken(profile, section, owner, session));
        }
        let header = self.kind.header(profile);
        let edited = match sections.as_slice() {
            [] => self
                .doc
                .append_section(&header, &[&marker(session)], values),
            [ours] => self
                .doc
                .set_keys(ours.header, self.kind.managed_keys(), values),
            [first, second, ..] => return Err(self.duplicate(first, second)),
        };
        edited.map_err(|e| invalid_value(&e, &self.path))
    }

    /// Plans removing every section of `profile` that is ours.
    pub(super) fn withdraw(&mut self, profile: &str, session: SessionId) {
        let ours: Vec<Section> = self
            .sections_of(profile)
            .into_iter()
            .filter(|s| owner(&self.doc, s, session) == Owner::ThisSession)
            .collect();
        // From the last, so earlier indices stay valid.
        for section in ours.iter().rev() {
            self.doc.remove_section(section.header);
        }
    }

    /// The edited text after the round-trip check and `check` on the
    /// re-parsed document, or `None` when it equals the file (nothing to
    /// write).
    pub(super) fn checked_text(
        &self,
        check: impl FnOnce(&IniDocument) -> std::result::Result<(), String>,
    ) -> Result<Option<Zeroizing<String>>> {
        let text = self.doc.render();
        let unchanged = match &self.original {
            Some(original) => original.as_str() == text.as_str(),
            None => text.is_empty(),
        };
        if unchanged {
            return Ok(None);
        }
        self.doc
            .reparse()
            .and_then(|again| check(&again))
            .map_err(|reason| {
                Error::storage(
                    &self.path,
                    format!(
                        "refusing to write the edited {}: {reason}; the file was left untouched \
                     (this is a bug in session-sdk, please report it)",
                        self.kind.describe()
                    ),
                    None,
                )
            })?;
        Ok(Some(text))
    }

    /// Writes `text` (if any) atomically with mode 0600. Returns whether it
    /// wrote.
    pub(super) fn write(&self, text: Option<&Zeroizing<String>>) -> Result<bool> {
        let Some(text) = text else {
            return Ok(false);
        };
        private_file::replace_atomically(&self.path, text.as_bytes(), |_| {})
            .map_err(|e| Error::storage(&self.path, e.step, Some(e.error)))?;
        Ok(true)
    }

    fn duplicate(&self, first: &Section, later: &Section) -> Error {
        let what = if first.name == later.name {
            format!(
                "the section [{}] appears again (first at line {}); botocore cannot read a file \
                 with a duplicate section",
                later.name,
                first.line_number()
            )
        } else {
            format!(
                "the section [{}] names the same profile as [{}] at line {}",
                later.name,
                first.name,
                first.line_number()
            )
        };
        Error::Corrupt {
            path: self.path.clone(),
            kind: self.kind.describe().into(),
            line: later.line_number(),
            column: 1,
            message: format!(
                "{what}, and it is the profile this session needs to edit. Merge the two \
                 sections or remove one"
            ),
        }
    }

    fn taken(&self, profile: &str, section: &Section, owner: &Owner, session: SessionId) -> Error {
        let (whose, fix) = match owner {
            Owner::OtherSession(other) => (
                format!("belongs to another session-sdk session ({other})"),
                "stop that session, or rename the profile in this session's config",
            ),
            _ => (
                format!(
                    "is not managed by this session (the line after its header is not `{}`)",
                    marker(session)
                ),
                "rename the profile in this session's config, or remove that section from the \
                 file",
            ),
        };
        Error::invalid_input(
            "profile",
            format!(
                "profile {profile:?} is taken: {} line {} has a section [{}] that {whose}. \
                 Nothing was written. To resolve: {fix}",
                self.path.display(),
                section.line_number(),
                section.name
            ),
        )
    }
}

/// After a publish: exactly one section of the profile, ours, holding
/// exactly `values` (each on one line) and none of the other managed keys.
pub(super) fn check_published(
    doc: &IniDocument,
    kind: FileKind,
    profile: &str,
    session: SessionId,
    values: &[(&str, &str)],
) -> std::result::Result<(), String> {
    let sections: Vec<Section> = doc
        .sections()
        .into_iter()
        .filter(|s| kind.names_profile(&s.name, profile))
        .collect();
    let [section] = sections.as_slice() else {
        return Err(format!(
            "it would have {} sections for the profile instead of one",
            sections.len()
        ));
    };
    if owner(doc, section, session) != Owner::ThisSession {
        return Err("our section would not start with our marker".into());
    }
    for key in kind.managed_keys() {
        let expected = values.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
        // Compare without printing: the values are secrets.
        if doc.value(section, key) != expected || doc.is_continued(section, key) {
            return Err(format!("{key} would not read back as written"));
        }
    }
    Ok(())
}

/// After a withdraw: no section of the profile is ours.
pub(super) fn check_withdrawn(
    doc: &IniDocument,
    kind: FileKind,
    profile: &str,
    session: SessionId,
) -> std::result::Result<(), String> {
    let left = doc
        .sections()
        .into_iter()
        .filter(|s| kind.names_profile(&s.name, profile))
        .any(|s| owner(doc, &s, session) == Owner::ThisSession);
    if left {
        Err("a section of this session would remain".into())
    } else {
        Ok(())
    }
}

pub(super) fn invalid_value(e: &InvalidValue, path: &Path) -> Error {
    Error::invalid_input(
        e.what.clone(),
        format!("{}; it cannot be written to {}", e.reason, path.display()),
    )
}

fn not_utf8(path: &Path, kind: FileKind, bytes: &[u8]) -> Error {
    let valid = std::str::from_utf8(bytes).map_or_else(|e| e.valid_up_to(), str::len);
    let before = &bytes[..valid];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    Error::Corrupt {
        path: path.to_path_buf(),
        kind: kind.describe().into(),
        line,
        column,
        message: "the file is not UTF-8, which botocore requires".into(),
    }
}

/// `<file>.lock` beside `path`.
pub(super) fn sidecar(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map_or_else(|| OsString::from("credentials"), OsStr::to_os_string);
    name.push(".lock");
    path.with_file_name(name)
}
