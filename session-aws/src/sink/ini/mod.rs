//! A line-preserving model of the INI files the AWS tools share
//! (`~/.aws/credentials` and `~/.aws/config`).
//!
//! Written by hand on purpose: the INI crates on crates.io write a file back
//! from their own model, so they reformat it, reorder it or drop its
//! comments, and what this crate may write is decided by the quirks of the
//! two readers that matter, botocore (Python's `configparser`) and the Rust
//! SDK's profile parser (reference `aws.md` §3.2). Those rules are spelled
//! out here instead of being left to a general-purpose parser.
//!
//! The model is a list of lines. Each line keeps its exact text and its own
//! ending (LF, CRLF, or none for a last line without a newline), so rendering
//! a document that was not edited gives back the input byte for byte. Lines
//! are classified the way botocore's `RawConfigParser` reads them:
//!
//! - a line that is empty after stripping whitespace is [`LineKind::Blank`];
//! - a line whose first non-blank character is `#` or `;` is a
//!   [`LineKind::Comment`] (there are no inline comments for botocore);
//! - a line indented deeper than the key line before it (blank and comment
//!   lines in between do not count) continues that key's value
//!   ([`LineKind::Continuation`]);
//! - otherwise `[name]` is a [`LineKind::Header`], whose name is everything
//!   between the first `[` and the **last** `]` (trailing text is ignored,
//!   as botocore does), and `key = value` or `key: value` is a
//!   [`LineKind::Key`], split at the first `=` or `:`, key lowercased.
//!
//! Files botocore cannot read and that we could only edit by guessing are
//! refused with the line and column: a UTF-8 byte order mark, a carriage
//! return that does not end a line (Python reads it as a line break), a key
//! or text before the first header, a line that is none of the above.
//! Duplicate sections are left to the caller: it refuses to edit a file in
//! which the section it needs is duplicated, and leaves other duplicates
//! alone.
//!
//! What this module writes follows the writer rules of §3.2: keys in lower
//! case and never indented, `key = value` with no inline comment, values
//! without line breaks, without surrounding whitespace and without
//! whitespace followed by `#` or `;` (the Rust SDK would cut the value
//! there). New lines use the file's line ending, and an edit keeps whether
//! the file ends with a newline.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;

use zeroize::{Zeroize, Zeroizing};

/// A line's terminator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// `\n`.
    Lf,
    /// `\r\n`.
    CrLf,
    /// None: the last line of a file that does not end with a newline.
    Eof,
}

impl Ending {
    fn as_str(self) -> &'static str {
        match self {
            Ending::Lf => "\n",
            Ending::CrLf => "\r\n",
            Ending::Eof => "",
        }
    }
}

/// How botocore reads a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LineKind {
    /// Empty or only whitespace.
    Blank,
    /// First non-blank character `#` or `;`.
    Comment,
    /// `[name]`, with the name as botocore reads it.
    Header(String),
    /// `key = value`, with the key lowercased.
    Key(String),
    /// An indented line that continues the previous key's value.
    Continuation,
}

impl LineKind {
    fn describe(&self) -> String {
        match self {
            LineKind::Blank => "a blank line".into(),
            LineKind::Comment => "a comment".into(),
            LineKind::Header(name) => format!("the section header [{name}]"),
            LineKind::Key(key) => format!("the key {key:?}"),
            LineKind::Continuation => "a continuation of the previous value".into(),
        }
    }
}

/// One line: its text without the ending, the ending, and how it reads.
///
/// The text may hold a secret (another profile's key, or ours), so it is
/// zeroed when the line is dropped.
struct Line {
    text: String,
    ending: Ending,
    kind: LineKind,
}

impl Drop for Line {
    fn drop(&mut self) {
        self.text.zeroize();
    }
}

/// Why a file could not be read into the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ParseError {
    /// 1-based line.
    pub(crate) line: usize,
    /// 1-based column (in characters).
    pub(crate) column: usize,
    /// What is wrong there.
    pub(crate) message: String,
}

/// A key, value, header or comment this module refuses to write. Never
/// holds the value itself (it may be a secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct InvalidValue {
    /// The key (or `section header`, `comment`).
    pub(crate) what: String,
    /// Why.
    pub(crate) reason: &'static str,
}

/// A section: its header line and the lines up to the next header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Section {
    /// The name between the brackets, as botocore reads it.
    pub(crate) name: String,
    /// Index of the header line.
    pub(crate) header: usize,
    /// Index of the next header, or the number of lines.
    pub(crate) end: usize,
}

impl Section {
    /// The 1-based line number of the header.
    pub(crate) fn line_number(&self) -> usize {
        self.header + 1
    }
}

/// A parsed file; see the module documentation.
pub(crate) struct IniDocument {
    lines: Vec<Line>,
}

impl fmt::Debug for IniDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the text: it holds secrets.
        let names: Vec<String> = self.sections().into_iter().map(|s| s.name).collect();
        f.debug_struct("IniDocument")
            .field("lines", &self.lines.len())
            .field("sections", &names)
            .finish()
    }
}

/// Python's `str.isspace`, which `str.strip` and the `\S` of
/// `configparser` use: Unicode white space plus the separators `\x1c`–`\x1f`.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

fn py_strip(text: &str) -> &str {
    text.trim_matches(is_py_space)
}

/// The header name botocore reads from a stripped line: `configparser`'s
/// `\[(?P<header>.+)\]` with `match`, i.e. from the first `[` to the last
/// `]`, at least one character in between.
fn header_name(stripped: &str) -> Option<&str> {
    let inner = stripped.strip_prefix('[')?;
    let close = inner.rfind(']')?;
    (close > 0).then(|| &inner[..close])
}

/// The value of a key line: after the first `=` or `:`, stripped.
fn value_of(text: &str) -> Option<&str> {
    let at = text.find(['=', ':'])?;
    Some(py_strip(&text[at + 1..]))
}

/// `configparser`'s reading state, enough to classify lines.
#[derive(Default)]
struct Reader {
    in_section: bool,
    after_key: bool,
    indent_level: usize,
}

impl Reader {
    /// Classifies one line (without its ending), or says why botocore would
    /// fail on it: `(column, message)`.
    fn classify(&mut self, text: &str) -> Result<LineKind, (usize, String)> {
        let stripped = py_strip(text);
        if stripped.is_empty() {
            return Ok(LineKind::Blank);
        }
        if stripped.starts_with('#') || stripped.starts_with(';') {
            return Ok(LineKind::Comment);
        }
        let indent = text.chars().take_while(|c| is_py_space(*c)).count();
        if self.in_section && self.after_key && indent > self.indent_level {
            return Ok(LineKind::Continuation);
        }
        self.indent_level = indent;
        let column = indent + 1;
        if let Some(name) = header_name(stripped) {
            self.in_section = true;
            self.after_key = false;
            return Ok(LineKind::Header(name.to_owned()));
        }
        if stripped.starts_with('[') {
            return Err((
                column,
                "a line starting with `[` that is not a [section] header (no closing `]`)".into(),
            ));
        }
        if !self.in_section {
            return Err((
                column,
                "a key or other text before the first [section] header".into(),
            ));
        }
        let Some(at) = stripped.find(['=', ':']) else {
            return Err((
                column,
                "neither `key = value`, a [section] header nor a comment (`#` or `;`)".into(),
            ));
        };
        let key = py_strip(&stripped[..at]);
        if key.is_empty() {
            return Err((column, "a `=` or `:` with no key before it".into()));
        }
        self.after_key = true;
        Ok(LineKind::Key(key.to_lowercase()))
    }
}

/// Keys we write: lower case ASCII letters, digits, `_`, `-`, `.`.
pub(crate) fn check_key(key: &str) -> Result<(), InvalidValue> {
    let ok = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(InvalidValue {
            what: key.to_owned(),
            reason: "a key must be lower case letters, digits, `_`, `-` or `.`",
        })
    }
}

/// Values we write, so that botocore and the Rust SDK read back exactly
/// them. The error never contains the value.
pub(crate) fn check_value(key: &str, value: &str) -> Result<(), InvalidValue> {
    let fail = |reason| {
        Err(InvalidValue {
            what: key.to_owned(),
            reason,
        })
    };
    if value.is_empty() {
        return fail("the value is empty");
    }
    if value.contains(['\n', '\r']) {
        return fail("the value contains a line break, which would end it early");
    }
    if value.chars().any(char::is_control) {
        return fail("the value contains a control character");
    }
    if value.starts_with(is_py_space) || value.ends_with(is_py_space) {
        return fail("the value starts or ends with whitespace, which both readers drop");
    }
    let mut previous_blank = false;
    for c in value.chars() {
        if previous_blank && (c == '#' || c == ';') {
            return fail(
                "the value contains whitespace followed by `#` or `;`, where the Rust SDK \
                 would cut it as a comment",
            );
        }
        previous_blank = is_py_space(c);
    }
    Ok(())
}

fn check_header(name: &str) -> Result<(), InvalidValue> {
    let ok = !name.is_empty()
        && !name.contains(['[', ']'])
        && !name.chars().any(char::is_control)
        && py_strip(name) == name;
    if ok {
        Ok(())
    } else {
        Err(InvalidValue {
            what: "section header".into(),
            reason: "a section name must be non-empty, without brackets, control characters \
                     or surrounding whitespace",
        })
    }
}

fn check_comment(text: &str) -> Result<(), InvalidValue> {
    let ok =
        (text.starts_with('#') || text.starts_with(';')) && !text.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(InvalidValue {
            what: "comment".into(),
            reason: "a comment must start with `#` or `;` and hold no control characters",
        })
    }
}

impl IniDocument {
    /// Reads `text` into lines; refuses what botocore cannot read (see the
    /// module documentation).
    pub(crate) fn parse(text: &str) -> Result<Self, ParseError> {
        if text.starts_with('\u{feff}') {
            return Err(ParseError {
                line: 1,
                column: 1,
                message: "the file starts with a UTF-8 byte order mark, which botocore cannot \
                          read; save the file without it"
                    .into(),
            });
        }
        let mut lines = Vec::new();
        let mut reader = Reader::default();
        let mut rest = text;
        while !rest.is_empty() {
            let (text, ending, next) = match rest.find('\n') {
                Some(at) => match rest[..at].strip_suffix('\r') {
                    Some(text) => (text, Ending::CrLf, &rest[at + 1..]),
                    None => (&rest[..at], Ending::Lf, &rest[at + 1..]),
                },
                None => (rest, Ending::Eof, ""),
            };
            rest = next;
            let line = lines.len() + 1;
            if let Some(at) = text.find('\r') {
                return Err(ParseError {
                    line,
                    column: text[..at].chars().count() + 1,
                    message: "a carriage return that does not end the line (botocore reads it \
                              as a line break)"
                        .into(),
                });
            }
            let kind = reader
                .classify(text)
                .map_err(|(column, message)| ParseError {
                    line,
                    column,
                    message,
                })?;
            lines.push(Line {
                text: text.to_owned(),
                ending,
                kind,
            });
        }
        Ok(Self { lines })
    }

    /// The file's bytes: every line's text and ending.
    pub(crate) fn render(&self) -> Zeroizing<String> {
        let len = self
            .lines
            .iter()
            .map(|l| l.text.len() + l.ending.as_str().len())
            .sum();
        let mut out = Zeroizing::new(String::with_capacity(len));
        for line in &self.lines {
            out.push_str(&line.text);
            out.push_str(line.ending.as_str());
        }
        out
    }

    /// The sections, in file order.
    pub(crate) fn sections(&self) -> Vec<Section> {
        let mut out: Vec<Section> = Vec::new();
        for (index, line) in self.lines.iter().enumerate() {
            if let LineKind::Header(name) = &line.kind {
                if let Some(previous) = out.last_mut() {
                    previous.end = index;
                }
                out.push(Section {
                    name: name.clone(),
                    header: index,
                    end: self.lines.len(),
                });
            }
        }
        out
    }

    /// The sections whose header name is exactly `name`.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn find(&self, name: &str) -> Vec<Section> {
        self.sections()
            .into_iter()
            .filter(|s| s.name == name)
            .collect()
    }

    /// The first line after the header of `section`, stripped, if it is a
    /// comment (where ownership markers go).
    pub(crate) fn comment_after_header(&self, section: &Section) -> Option<&str> {
        let index = section.header + 1;
        let line = self.lines.get(index).filter(|_| index < section.end)?;
        (line.kind == LineKind::Comment).then(|| py_strip(&line.text))
    }

    /// The value of the first `key` line of `section` (its first line only).
    pub(crate) fn value(&self, section: &Section, key: &str) -> Option<&str> {
        self.lines[section.header + 1..section.end]
            .iter()
            .find(|l| matches!(&l.kind, LineKind::Key(k) if k == key))
            .and_then(|l| value_of(&l.text))
    }

    /// Whether the key line with value `key` in `section` is followed by a
    /// continuation line (then its value is more than that line).
    pub(crate) fn is_continued(&self, section: &Section, key: &str) -> bool {
        let body = &self.lines[section.header + 1..section.end];
        let Some(at) = body
            .iter()
            .position(|l| matches!(&l.kind, LineKind::Key(k) if k == key))
        else {
            return false;
        };
        body[at + 1..]
            .iter()
            .find(|l| !matches!(l.kind, LineKind::Blank | LineKind::Comment))
            .is_some_and(|l| l.kind == LineKind::Continuation)
    }

    /// The ending new lines get: the first one in the file, LF if none.
    fn line_ending(&self) -> Ending {
        self.lines
            .iter()
            .map(|l| l.ending)
            .find(|e| *e != Ending::Eof)
            .unwrap_or(Ending::Lf)
    }

    /// Whether the file ends with a newline (an empty file counts as yes).
    fn ends_with_newline(&self) -> bool {
        self.lines.last().is_none_or(|l| l.ending != Ending::Eof)
    }

    /// After an edit: every line but the last ends with a newline, and the
    /// last one does exactly when the file did before the edit.
    fn restore_endings(&mut self, ends_with_newline: bool, newline: Ending) {
        let count = self.lines.len();
        for (index, line) in self.lines.iter_mut().enumerate() {
            let last = index + 1 == count;
            if last && !ends_with_newline {
                line.ending = Ending::Eof;
            } else if line.ending == Ending::Eof {
                line.ending = newline;
            }
        }
    }

    /// The lines of the section whose header is at `header`, past the header.
    fn body(&self, header: usize) -> Range<usize> {
        let end = self.lines[header + 1..]
            .iter()
            .position(|l| matches!(l.kind, LineKind::Header(_)))
            .map_or(self.lines.len(), |at| header + 1 + at);
        header + 1..end
    }

    /// The number of comment lines right after the header at `header`.
    fn leading_comments(&self, body: &Range<usize>) -> usize {
        self.lines[body.clone()]
            .iter()
            .take_while(|l| l.kind == LineKind::Comment)
            .count()
    }

    /// The index of the last key or continuation line of `body`.
    fn last_content(&self, body: &Range<usize>) -> Option<usize> {
        body.clone().rev().find(|i| {
            matches!(
                self.lines[*i].kind,
                LineKind::Key(_) | LineKind::Continuation
            )
        })
    }

    /// Sets the keys of the section whose header is at `header`.
    ///
    /// Of the keys in `managed`, those in `values` are set (a line already
    /// there is replaced where it is, a missing one goes after the section's
    /// last key) and the others are removed, with their continuation lines.
    /// Every other line stays as it is.
    pub(crate) fn set_keys(
        &mut self,
        header: usize,
        managed: &[&str],
        values: &[(&str, &str)],
    ) -> Result<(), InvalidValue> {
        for (key, value) in values {
            check_key(key)?;
            check_value(key, value)?;
            debug_assert!(managed.contains(key), "{key} is not in the managed keys");
        }
        let newline = self.line_ending();
        let ends_with_newline = self.ends_with_newline();
        let body = self.body(header);
        let present: HashSet<String> = self.lines[body.clone()]
            .iter()
            .filter_map(|l| match &l.kind {
                LineKind::Key(k) => Some(k.clone()),
                _ => None,
            })
            .collect();
        let insert_at = self
            .last_content(&body)
            .map_or(body.start + self.leading_comments(&body), |i| i + 1);
        let mut missing: Vec<Line> = values
            .iter()
            .filter(|(key, _)| !present.contains(*key))
            .map(|(key, value)| key_line(key, value, newline))
            .collect();

        let old = std::mem::take(&mut self.lines);
        let mut out = Vec::with_capacity(old.len() + missing.len());
        let mut written: HashSet<String> = HashSet::new();
        let mut dropping_continuations = false;
        for (index, line) in old.into_iter().enumerate() {
            if index == insert_at {
                out.append(&mut missing);
            }
            let in_body = body.contains(&index);
            if in_body && dropping_continuations && line.kind == LineKind::Continuation {
                continue;
            }
            dropping_continuations = false;
            if in_body
                && let LineKind::Key(key) = &line.kind
                && managed.contains(&key.as_str())
            {
                dropping_continuations = true;
                if let Some((key, value)) = values.iter().find(|(k, _)| *k == key.as_str())
                    && written.insert((*key).to_owned())
                {
                    let ending = match line.ending {
                        Ending::Eof => newline,
                        ending => ending,
                    };
                    out.push(key_line(key, value, ending));
                }
                continue;
            }
            out.push(line);
        }
        out.append(&mut missing);
        self.lines = out;
        self.restore_endings(ends_with_newline, newline);
        Ok(())
    }

    /// Appends `[header]`, the `comments` and the `values` at the end of the
    /// file. If the file did not end with a newline, the new section is put
    /// on a line of its own and the file still does not end with one.
    pub(crate) fn append_section(
        &mut self,
        header: &str,
        comments: &[&str],
        values: &[(&str, &str)],
    ) -> Result<(), InvalidValue> {
        check_header(header)?;
        for comment in comments {
            check_comment(comment)?;
        }
        for (key, value) in values {
            check_key(key)?;
            check_value(key, value)?;
        }
        let newline = self.line_ending();
        let ends_with_newline = self.ends_with_newline();
        self.lines.push(Line {
            text: format!("[{header}]"),
            ending: newline,
            kind: LineKind::Header(header.to_owned()),
        });
        for comment in comments {
            self.lines.push(Line {
                text: (*comment).to_owned(),
                ending: newline,
                kind: LineKind::Comment,
            });
        }
        for (key, value) in values {
            self.lines.push(key_line(key, value, newline));
        }
        self.restore_endings(ends_with_newline, newline);
        Ok(())
    }

    /// Removes the section whose header is at `header`: the header, the
    /// comment lines right after it (its marker), and everything up to its
    /// last key or continuation line. Blank and comment lines after that
    /// stay: they are the user's, usually about the next section.
    pub(crate) fn remove_section(&mut self, header: usize) {
        let newline = self.line_ending();
        let ends_with_newline = self.ends_with_newline();
        let body = self.body(header);
        let last = self
            .last_content(&body)
            .unwrap_or(header + self.leading_comments(&body));
        self.lines.drain(header..=last);
        self.restore_endings(ends_with_newline, newline);
    }

    /// The round-trip check before a write: renders the document, parses
    /// the result again and requires every line to come back with the same
    /// text, ending and meaning (an edit must not, say, turn a user's
    /// indented line into a continuation of our value). Returns the
    /// re-parsed document for the caller's own checks.
    pub(crate) fn reparse(&self) -> Result<IniDocument, String> {
        let text = self.render();
        let again = IniDocument::parse(&text).map_err(|e| {
            format!(
                "the edited file would not parse at line {}: {}",
                e.line, e.message
            )
        })?;
        if again.lines.len() != self.lines.len() {
            return Err(format!(
                "the edited file would read back as {} lines instead of {}",
                again.lines.len(),
                self.lines.len()
            ));
        }
        for (index, (ours, read)) in self.lines.iter().zip(&again.lines).enumerate() {
            if ours.text != read.text || ours.ending != read.ending {
                return Err(format!("line {} would not read back as written", index + 1));
            }
            if ours.kind != read.kind {
                return Err(format!(
                    "line {} would read as {} instead of {}",
                    index + 1,
                    read.kind.describe(),
                    ours.kind.describe()
                ));
            }
        }
        Ok(again)
    }
}

fn key_line(key: &str, value: &str, ending: Ending) -> Line {
    Line {
        text: format!("{key} = {value}"),
        ending,
        kind: LineKind::Key(key.to_owned()),
    }
}

#[cfg(test)]
mod tests;
