//! The journal beside the workspace file (`<file>.journal`): the changes
//! made since the file was last written whole, so that an update costs one
//! appended line and one `fdatasync`, whatever the number of sessions.
//!
//! Written by hand: it is a few lines of JSON appended to a file; what makes
//! it safe is the order of the steps and the rules below, which no crate
//! would know.
//!
//! # Format
//!
//! JSON lines. The first names the generation of the workspace file the
//! records apply to; each later line is one change, the whole session as
//! the file would hold it, or the id of a removed session:
//!
//! ```text
//! {"journal":1,"generation":7}
//! {"put":{"sessionId":"…","sessionName":"dev",…,"revision":4}}
//! {"delete":"…"}
//! ```
//!
//! # Rules
//!
//! - A record counts once its line ends with `\n`. A last line without one
//!   is a write still in progress, or one a killed writer left: readers skip
//!   it, and the next writer (under the workspace lock) truncates it away.
//! - Records are whole values, so applying the journal again over a file
//!   that already folded it in gives the same sessions; the generation
//!   makes that case plain anyway: compaction writes the file with the next
//!   generation *before* it removes the journal, and a journal of an older
//!   generation than the file is ignored (and removed by the next writer).
//! - A journal of a *newer* generation than the file means the file was
//!   replaced by an older copy (a restored backup): that is reported, not
//!   guessed at, and nothing is changed.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::SessionId;

/// The journal format this build writes and reads.
const FORMAT: u64 = 1;

/// The first line of a journal.
#[derive(Serialize, Deserialize)]
struct Header {
    journal: u64,
    generation: u64,
}

/// One change, as read back.
#[derive(Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub(super) enum Record {
    /// The session, as the workspace file would hold it.
    Put(Box<RawValue>),
    /// A removed session.
    Delete(SessionId),
}

/// Which journal file has been read, and how far.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Position {
    /// The file's identity: a new journal (after a compaction) is a new file.
    pub(super) id: FileId,
    /// The generation its header names.
    pub(super) generation: u64,
    /// Bytes read, up to the end of the last complete line.
    pub(super) consumed: u64,
    /// Complete lines read (the header included), to number lines in errors.
    pub(super) lines: usize,
}

/// A file's identity on its file system.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct FileId {
    #[cfg(unix)]
    dev: u64,
    #[cfg(unix)]
    ino: u64,
    #[cfg(not(unix))]
    created: Option<std::time::SystemTime>,
}

impl FileId {
    pub(super) fn of(meta: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            FileId {
                dev: meta.dev(),
                ino: meta.ino(),
            }
        }
        #[cfg(not(unix))]
        {
            FileId {
                created: meta.created().ok(),
            }
        }
    }
}

/// A problem in the journal's text, by line (1-based).
pub(super) struct BadLine {
    pub(super) line: usize,
    pub(super) message: String,
}

/// What reading the journal found.
pub(super) struct ReadOut {
    /// The generation the header names; `None` when not even the header
    /// line is complete yet.
    pub(super) generation: Option<u64>,
    /// The complete records after what was already consumed, in order.
    pub(super) records: Vec<(usize, Record)>,
    /// Where reading stopped: after the last complete line (what follows is
    /// a write in progress, or torn).
    pub(super) position: Option<Position>,
}

/// Opens the journal to read it, never through a planted link; `None` when
/// there is none.
pub(super) fn open(path: &Path) -> io::Result<Option<(File, FileId)>> {
    match crate::private_file::open_private_read(path) {
        Ok(file) => {
            let id = FileId::of(&file.metadata()?);
            Ok(Some((file, id)))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads the complete lines of `file` after `from` (`None`: from the start,
/// header included).
pub(super) fn read(
    file: &mut File,
    id: FileId,
    from: Option<Position>,
) -> io::Result<std::result::Result<ReadOut, BadLine>> {
    let start = from.map_or(0, |p| p.consumed);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let text = match std::str::from_utf8(&bytes[..complete]) {
        Ok(text) => text,
        Err(e) => {
            let line = from.map_or(0, |p| p.lines)
                + 1
                + bytes[..e.valid_up_to()]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count();
            return Ok(Err(BadLine {
                line,
                message: "not valid UTF-8".into(),
            }));
        }
    };
    let mut lines_read = from.map_or(0, |p| p.lines);
    let mut generation = from.map(|p| p.generation);
    let mut records = Vec::new();
    for line in text.split_terminator('\n') {
        lines_read += 1;
        if generation.is_none() {
            match serde_json::from_str::<Header>(line) {
                Ok(header) if header.journal == FORMAT => generation = Some(header.generation),
                Ok(header) => {
                    return Ok(Err(BadLine {
                        line: lines_read,
                        message: format!(
                            "journal format {} is not one this build reads ({FORMAT}); upgrade to read it",
                            header.journal
                        ),
                    }));
                }
                Err(e) => {
                    return Ok(Err(BadLine {
                        line: lines_read,
                        message: format!("not a journal header: {e}"),
                    }));
                }
            }
            continue;
        }
        match serde_json::from_str::<Record>(line) {
            Ok(record) => records.push((lines_read, record)),
            Err(e) => {
                return Ok(Err(BadLine {
                    line: lines_read,
                    message: crate::error::without_position(&e.to_string()),
                }));
            }
        }
    }
    let position = generation.map(|generation| Position {
        id,
        generation,
        consumed: start + complete as u64,
        lines: lines_read,
    });
    Ok(Ok(ReadOut {
        generation,
        records,
        position,
    }))
}

/// The line of a `put` record for a session whose JSON is `session`.
pub(super) fn put_line(session: &RawValue) -> String {
    let mut line = String::with_capacity(session.get().len() + 10);
    line.push_str("{\"put\":");
    line.push_str(session.get());
    line.push_str("}\n");
    line
}

/// The line of a `delete` record.
pub(super) fn delete_line(id: SessionId) -> String {
    format!("{{\"delete\":\"{id}\"}}\n")
}

/// Creates a new journal for workspace generation `generation`, with its
/// header, mode 0600, refusing any file or link already at `path`; makes
/// its name durable. The caller holds the workspace lock and has removed
/// any older journal.
pub(super) fn create(path: &Path, generation: u64) -> io::Result<(File, Position)> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    let mut file = options.open(path)?;
    let mut header = serde_json::to_string(&Header {
        journal: FORMAT,
        generation,
    })
    .map_err(io::Error::other)?;
    header.push('\n');
    file.write_all(header.as_bytes())?;
    file.sync_data()?;
    crate::private_file::sync_dir(&crate::private_file::parent_dir(path))?;
    let id = FileId::of(&file.metadata()?);
    Ok((
        file,
        Position {
            id,
            generation,
            consumed: header.len() as u64,
            lines: 1,
        },
    ))
}

/// Opens the existing journal to append to it, cutting off a torn tail
/// after `position` first (what a killed writer left half-written).
pub(super) fn open_for_append(path: &Path, position: Position) -> io::Result<Option<File>> {
    let mut options = OpenOptions::new();
    options.read(true).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    let file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if FileId::of(&meta) != position.id {
        return Ok(None);
    }
    if meta.len() != position.consumed {
        file.set_len(position.consumed)?;
    }
    Ok(Some(file))
}

/// Appends `lines` at `position` and makes them durable; returns the new
/// position. On failure the journal is cut back to `position`, best effort,
/// so that no half record stays behind a record that follows.
pub(super) fn append(file: &mut File, position: Position, lines: &str) -> io::Result<Position> {
    let written = file
        .seek(SeekFrom::Start(position.consumed))
        .and_then(|_| file.write_all(lines.as_bytes()))
        .and_then(|()| file.sync_data());
    if let Err(e) = written {
        let _ = file.set_len(position.consumed);
        return Err(e);
    }
    Ok(Position {
        consumed: position.consumed + lines.len() as u64,
        lines: position.lines + lines.matches('\n').count(),
        ..position
    })
}
