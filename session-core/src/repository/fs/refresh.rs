//! Bringing the in-memory copy up to date with the file and its journal:
//! a changed file is read whole; an unchanged one costs a `stat`, plus
//! reading the journal lines appended since (by this process or another).
//!
//! Readers take no lock, so a compaction can happen between reading the
//! file and reading the journal. The file is stat'ed again afterwards and
//! the read restarts if it changed: a journal is only ever read together
//! with the version of the file it continues.

use std::fs::{self, File};
use std::io::Read;

use super::format::{JournalState, Loaded, position_of};
use super::journal::{self, FileId, Position};
use super::store::{Inner, Stamp};
use crate::{Error, Result};

/// How many times a read without the lock restarts because a writer
/// replaced the file meanwhile; then it waits for the lock (a large file
/// under a fast writer could otherwise be missed forever).
const UNLOCKED_ATTEMPTS: usize = 3;

/// The result of one attempt.
enum Attempt {
    Done,
    /// The file changed while it was being read: read again.
    Raced,
}

/// The journal, compared with the generation of the file in memory.
enum Journal {
    /// Applied (or stale, or incomplete, and recorded as such).
    Taken,
    /// It continues a newer generation than the file in memory.
    Ahead(u64),
}

impl Inner {
    /// Brings `state` up to date; `locked` says whether the caller holds
    /// the workspace lock. On an error the copy is dropped, so the next
    /// operation reads everything again.
    pub(super) fn refresh(&self, state: &mut Option<Loaded>, locked: bool) -> Result<()> {
        let result = self.refresh_inner(state, locked);
        if result.is_err() {
            *state = None;
        }
        result
    }

    fn refresh_inner(&self, state: &mut Option<Loaded>, locked: bool) -> Result<()> {
        // Under the lock only a program that ignores it can race us.
        const LOCKED_ATTEMPTS: usize = 2;
        let mut attempts_left = if locked {
            LOCKED_ATTEMPTS
        } else {
            UNLOCKED_ATTEMPTS
        };
        let mut lock = None;
        loop {
            if let Attempt::Done = self.try_refresh(state)? {
                return Ok(());
            }
            attempts_left -= 1;
            if attempts_left > 0 {
                continue;
            }
            if locked || lock.is_some() {
                return Err(Error::storage(
                    &self.path,
                    "the file changed while it was read, although the workspace was locked (is \
                     a program that ignores the lock writing it?)",
                    None,
                ));
            }
            lock = Some(self.lock_file()?);
            attempts_left = LOCKED_ATTEMPTS;
        }
    }

    fn try_refresh(&self, state: &mut Option<Loaded>) -> Result<Attempt> {
        let stamp = self.stamp_now()?;
        if let Some(loaded) = state.as_mut().filter(|l| l.stamp == stamp) {
            match self.catch_up(loaded)? {
                Journal::Taken => return Ok(Attempt::Done),
                // A journal newer than the file is read with the file again.
                Journal::Ahead(_) => {}
            }
        }
        let mut loaded = self.read_file()?;
        if let Some((mut file, id)) = self.open_journal()?
            && let Journal::Ahead(generation) =
                self.take_journal(&mut loaded, &mut file, id, None)?
        {
            if self.stamp_now()? != loaded.stamp {
                return Ok(Attempt::Raced);
            }
            return Err(self.journal_ahead(generation, loaded.generation));
        }
        // A compaction between reading the file and opening the journal
        // would pair the old file with a new (or no) journal.
        if self.stamp_now()? != loaded.stamp {
            return Ok(Attempt::Raced);
        }
        *state = Some(loaded);
        Ok(Attempt::Done)
    }

    /// The file's stamp now; `None` if there is no file.
    fn stamp_now(&self) -> Result<Option<Stamp>> {
        match fs::metadata(&self.path) {
            Ok(meta) => Ok(Some(Stamp::of(&meta))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io_error("cannot read the workspace file's metadata", e)),
        }
    }

    /// Reads and parses the whole file (no file: an empty workspace). The
    /// open file is one version of it, whatever replaces it meanwhile.
    fn read_file(&self) -> Result<Loaded> {
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::empty()),
            Err(e) => return Err(self.io_error("cannot open the workspace file", e)),
        };
        let meta = file
            .metadata()
            .map_err(|e| self.io_error("cannot read the workspace file's metadata", e))?;
        if meta.len() >= super::format::PARALLEL_PARSE_BYTES {
            // Starts the parser threads (once per process) now, so that they
            // are up on the other cores by the time the text is read and
            // split, rather than queued behind this thread.
            let _ = rayon::current_num_threads();
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.read_to_end(&mut bytes)
            .map_err(|e| self.io_error("cannot read the workspace file", e))?;
        // Checking UTF-8 once here lets serde_json skip it for every string.
        let text = String::from_utf8(bytes).map_err(|e| {
            let (line, column) = position_of(e.as_bytes(), e.utf8_error().valid_up_to());
            self.corrupt_at(line, column, "not valid UTF-8")
        })?;
        let mut loaded = self.parse(text)?;
        loaded.stamp = Some(Stamp::of(&meta));
        Ok(loaded)
    }

    /// With the file unchanged: reads what was appended to the journal
    /// since, or the journal that appeared.
    fn catch_up(&self, loaded: &mut Loaded) -> Result<Journal> {
        let Some((mut file, id)) = self.open_journal()? else {
            return Ok(match loaded.journal {
                // Records in memory that the journal no longer has (it was
                // removed by hand): read everything again.
                JournalState::Live(_) => Journal::Ahead(loaded.generation),
                _ => {
                    loaded.journal = JournalState::None;
                    Journal::Taken
                }
            });
        };
        match loaded.journal {
            JournalState::Live(position) if position.id == id => {
                self.take_journal(loaded, &mut file, id, Some(position))
            }
            JournalState::Stale(stale) if stale == id => Ok(Journal::Taken),
            JournalState::Live(_) => Ok(Journal::Ahead(loaded.generation)),
            JournalState::None | JournalState::Stale(_) | JournalState::Pending(_) => {
                self.take_journal(loaded, &mut file, id, None)
            }
        }
    }

    fn open_journal(&self) -> Result<Option<(File, FileId)>> {
        journal::open(&self.journal_path()).map_err(|e| {
            Error::storage(
                self.journal_path(),
                "cannot open the workspace journal",
                Some(e),
            )
        })
    }

    /// Reads journal `file` after `from` (`None`: whole) and applies it to
    /// `loaded` if it continues `loaded`'s generation.
    fn take_journal(
        &self,
        loaded: &mut Loaded,
        file: &mut File,
        id: FileId,
        from: Option<Position>,
    ) -> Result<Journal> {
        let read = journal::read(file, id, from)
            .map_err(|e| {
                Error::storage(
                    self.journal_path(),
                    "cannot read the workspace journal",
                    Some(e),
                )
            })?
            .map_err(|bad| self.journal_corrupt(bad.line, bad.message))?;
        let (Some(generation), Some(position)) = (read.generation, read.position) else {
            loaded.journal = JournalState::Pending(id);
            return Ok(Journal::Taken);
        };
        if generation < loaded.generation {
            loaded.journal = JournalState::Stale(id);
            return Ok(Journal::Taken);
        }
        if generation > loaded.generation {
            return Ok(Journal::Ahead(generation));
        }
        self.apply_records(loaded, read.records)?;
        loaded.journal = JournalState::Live(position);
        Ok(Journal::Taken)
    }

    /// The error for a journal that continues a newer file than the one
    /// there: the file was replaced by an older copy, or removed.
    fn journal_ahead(&self, journal: u64, file: u64) -> Error {
        Error::storage(
            &self.path,
            format!(
                "the journal {} continues generation {journal} of the workspace file, but the \
                 file is generation {file} (replaced by an older copy, or removed?); nothing was \
                 changed: put the newer file back, or move the journal away to use the file as \
                 it is",
                self.journal_path().display()
            ),
            None,
        )
    }
}
