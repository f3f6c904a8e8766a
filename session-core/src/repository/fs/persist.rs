//! Making a change durable, under the workspace lock: one line appended to
//! the journal, or the whole file written again (the first write, the first
//! write after a migration, and a compaction once the journal has grown).

use std::fs;
use std::io;

use serde_json::value::RawValue;

use super::format::{CachedJson, JournalState, Loaded, render};
use super::journal;
use super::store::{Inner, Stamp};
use crate::{Error, Result, SessionId};

/// A journal is folded into the file once it is larger than this, or than
/// a quarter of the file, whichever is more: the file's rewrite is then paid
/// once per many updates (an amortized cost that does not grow with the
/// number of sessions), and a cold load never reads more than 1.25 times
/// the file.
pub(super) const DEFAULT_COMPACT_AT: u64 = 64 * 1024;

impl Inner {
    /// Persists the sessions `changed` (put, or deleted when no longer in
    /// the set). The caller holds the lock and has refreshed `loaded`.
    pub(super) fn persist(&self, loaded: &mut Loaded, changed: &[SessionId]) -> Result<()> {
        // Their cached text is the old one.
        for id in changed {
            loaded.raw.remove(id);
        }
        let journal_usable =
            self.compact_at.is_some() && loaded.stamp.is_some() && !loaded.migrated;
        if !journal_usable {
            return self.write_whole(loaded);
        }
        // A file its owner made read-only is not changed by way of the
        // journal either.
        let target = crate::private_file::resolve_symlinks(&self.path)
            .map_err(|e| self.io_error("cannot follow the symbolic link", e))?;
        crate::private_file::refuse_read_only(&target)
            .map_err(|e| self.io_error(e.step, e.error))?;
        let mut lines = String::new();
        for &id in changed {
            match loaded.set.position(id) {
                Some(i) => {
                    let text = serde_json::to_string(&loaded.set.sessions()[i])
                        .and_then(RawValue::from_string)
                        .map_err(|e| {
                            self.corrupt_at(0, 0, format!("cannot encode a session: {e}"))
                        })?;
                    lines.push_str(&journal::put_line(&text));
                    loaded.raw.insert(id, CachedJson::Encoded(text));
                }
                None => lines.push_str(&journal::delete_line(id)),
            }
        }
        self.append(loaded, &lines)?;
        let JournalState::Live(position) = loaded.journal else {
            return Ok(());
        };
        let limit = self
            .compact_at
            .unwrap_or(DEFAULT_COMPACT_AT)
            .max(loaded.file_len / 4);
        if position.consumed > limit {
            self.write_whole(loaded)?;
        }
        Ok(())
    }

    /// Appends `lines` to the journal, creating it (for the file's current
    /// generation) if there is none yet.
    fn append(&self, loaded: &mut Loaded, lines: &str) -> Result<()> {
        let journal_error =
            |what: &str, e: io::Error| Error::storage(self.journal_path(), what, Some(e));
        let (mut file, position) = match loaded.journal {
            JournalState::Live(position) => {
                let file = journal::open_for_append(&self.journal_path(), position)
                    .map_err(|e| journal_error("cannot open the workspace journal", e))?
                    .ok_or_else(|| {
                        Error::storage(
                            self.journal_path(),
                            "the workspace journal was replaced although the workspace is locked",
                            None,
                        )
                    })?;
                (file, position)
            }
            JournalState::None | JournalState::Stale(_) | JournalState::Pending(_) => {
                if !matches!(loaded.journal, JournalState::None) {
                    remove_if_there(&self.journal_path())
                        .map_err(|e| journal_error("cannot remove the old workspace journal", e))?;
                }
                journal::create(&self.journal_path(), loaded.generation)
                    .map_err(|e| journal_error("cannot create the workspace journal", e))?
            }
        };
        let position = journal::append(&mut file, position, lines)
            .map_err(|e| journal_error("cannot append to the workspace journal", e))?;
        loaded.journal = JournalState::Live(position);
        Ok(())
    }

    /// Writes the whole file, as the next generation, then removes the
    /// journal it folds in. A crash between the two leaves a journal of an
    /// older generation than the file, which readers ignore.
    pub(super) fn write_whole(&self, loaded: &mut Loaded) -> Result<()> {
        loaded.generation += 1;
        let text = render(loaded)
            .map_err(|e| self.corrupt_at(0, 0, format!("cannot encode a session: {e}")))?;
        self.replace(text.as_bytes())?;
        let meta = fs::metadata(&self.path)
            .map_err(|e| self.io_error("cannot read the new file's metadata", e))?;
        loaded.stamp = Some(Stamp::of(&meta));
        loaded.file_len = text.len() as u64;
        loaded.migrated = false;
        if !matches!(loaded.journal, JournalState::None) {
            if let Err(e) = remove_if_there(&self.journal_path()) {
                // Harmless: it is of an older generation now, and the next
                // writer removes it.
                tracing::warn!(path = %self.journal_path().display(), error = %e, "could not remove the compacted workspace journal");
                if let JournalState::Live(position) = loaded.journal {
                    loaded.journal = JournalState::Stale(position.id);
                }
                return Ok(());
            }
            loaded.journal = JournalState::None;
        }
        Ok(())
    }

    /// Folds a pending journal into the file now; nothing happens when
    /// there is none. The caller holds the lock and has refreshed.
    pub(super) fn compact(&self, loaded: &mut Loaded) -> Result<bool> {
        if matches!(loaded.journal, JournalState::None) && !loaded.migrated {
            return Ok(false);
        }
        self.write_whole(loaded)?;
        Ok(true)
    }
}

fn remove_if_there(path: &std::path::Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
