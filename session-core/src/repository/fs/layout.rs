//! The sessions of a workspace file laid out exactly as `render` writes it,
//! found without a JSON pass over the whole file.
//!
//! Loading a large file used to read it twice: a first JSON pass (on one
//! thread) to find each session's text, then a parse of each session (on
//! all cores). In the layout `render` writes, each session is one line,
//! and a raw line feed cannot occur inside a JSON string (it must be
//! escaped), so the line feeds alone give the sessions: found with memchr
//! at memory speed. Everything else of the layout is matched literally.
//!
//! This is only a shortcut. The caller parses each line as a whole session
//! (which rejects anything that is not exactly one JSON object), and falls
//! back to the general path for any file this does not recognise or whose
//! lines do not parse: a file written by hand, by an older release, with
//! extra top-level fields, or damaged. The general path then reads it, and
//! reports any damage at its line and column.

/// What a file in `render`'s layout holds besides its extra fields (it has
/// none, or the layout is not recognised).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct RenderedLayout<'a> {
    /// The `version` field.
    pub(super) version: u64,
    /// The `generation` field.
    pub(super) generation: u64,
    /// Each session's text (one line, without its indent and comma), in
    /// file order; slices of the input.
    pub(super) sessions: Vec<&'a str>,
}

/// The indent `render` puts before each session.
const INDENT: &str = "    ";

impl<'a> RenderedLayout<'a> {
    /// The layout of `text`, or `None` when it is not exactly what `render`
    /// writes for a non-empty workspace without extra top-level fields.
    pub(super) fn find(text: &'a str) -> Option<Self> {
        let rest = text.strip_prefix("{\n  \"version\": ")?;
        let (version, rest) = number(rest)?;
        let rest = rest.strip_prefix(",\n  \"generation\": ")?;
        let (generation, rest) = number(rest)?;
        let body = rest
            .strip_prefix(",\n  \"sessions\": [")?
            .strip_suffix("\n  ]\n}\n")?;
        // `body` is "\n    S1,\n    S2…,\n    Sn".
        let body = body.strip_prefix('\n')?;
        let mut sessions = Vec::with_capacity(body.len() / 256 + 1);
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', body.as_bytes()) {
            sessions.push(body[start..end].strip_prefix(INDENT)?.strip_suffix(',')?);
            start = end + 1;
        }
        let last = body[start..].strip_prefix(INDENT)?;
        if last.ends_with(',') {
            return None;
        }
        sessions.push(last);
        Some(Self {
            version,
            generation,
            sessions,
        })
    }
}

/// The decimal number at the start of `text` (as `render` writes a `u64`:
/// no sign, no leading zero but for 0 itself) and what follows it.
fn number(text: &str) -> Option<(u64, &str)> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, rest) = text.split_at(digits);
    if number.is_empty() || (number.len() > 1 && number.starts_with('0')) {
        return None;
    }
    Some((number.parse().ok()?, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = "{\n  \"version\": 3,\n  \"generation\": 12,\n  \"sessions\": [\n    {\"a\":\"x,\\ny\"},\n    {\"b\":2}\n  ]\n}\n";

    #[test]
    fn finds_each_session_line() {
        let found = RenderedLayout::find(TWO).expect("render's layout");
        assert_eq!(found.version, 3);
        assert_eq!(found.generation, 12);
        assert_eq!(found.sessions, vec!["{\"a\":\"x,\\ny\"}", "{\"b\":2}"]);
        // Slices of the input, so their offsets locate them in the file.
        let offset = found.sessions[1].as_ptr() as usize - TWO.as_ptr() as usize;
        assert_eq!(&TWO[offset..offset + 7], "{\"b\":2}");

        let one = "{\n  \"version\": 3,\n  \"generation\": 0,\n  \"sessions\": [\n    {}\n  ]\n}\n";
        assert_eq!(RenderedLayout::find(one).expect("one").sessions, vec!["{}"]);
    }

    #[test]
    fn anything_else_is_left_to_the_general_path() {
        let cases = [
            // No sessions, no generation, extra fields, other spacing.
            "{\n  \"version\": 3,\n  \"generation\": 1,\n  \"sessions\": []\n}\n",
            "{\n  \"version\": 3,\n  \"sessions\": [\n    {}\n  ]\n}\n",
            "{\n  \"version\": 3,\n  \"generation\": 1,\n  \"sessions\": [\n    {}\n  ],\n  \"x\": 1\n}\n",
            "{\"version\": 3, \"generation\": 1, \"sessions\": [{}]}",
            "{\n  \"version\": 3,\n  \"generation\": 1,\n  \"sessions\": [\n    {},\n    {}\n  ]\n}",
            // A comma missing or left over, a line not indented.
            "{\n  \"version\": 3,\n  \"generation\": 1,\n  \"sessions\": [\n    {}\n    {}\n  ]\n}\n",
            "{\n  \"version\": 3,\n  \"generation\": 1,\n  \"sessions\": [\n    {},\n    {},\n  ]\n}\n",
            "{\n  \"version\": 3,\n  \"generation\": 1,\n  \"sessions\": [\n{},\n    {}\n  ]\n}\n",
            // Numbers render never writes.
            "{\n  \"version\": 03,\n  \"generation\": 1,\n  \"sessions\": [\n    {}\n  ]\n}\n",
            "{\n  \"version\": -3,\n  \"generation\": 1,\n  \"sessions\": [\n    {}\n  ]\n}\n",
            "{\n  \"version\": 3,\n  \"generation\": 99999999999999999999,\n  \"sessions\": [\n    {}\n  ]\n}\n",
        ];
        for text in cases {
            assert_eq!(RenderedLayout::find(text), None, "{text:?}");
        }
    }
}
