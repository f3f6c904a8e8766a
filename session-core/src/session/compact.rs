//! A session read straight from the compact JSON a workspace writes for it.
//!
//! Loading a workspace is mostly parsing its sessions, and serde_json's
//! generic path (each key read as a string, then matched; each value through
//! a visitor) costs about 1 µs per session on a slow VM, 9 ms at 10,000
//! sessions. A workspace writes every session the same way
//! (`serde_json::to_string` of [`Session`]: no whitespace, the fields in
//! declaration order, the optional ones left out when empty). This reader
//! matches that text literally and takes each value as it stands, which
//! roughly halves the cost. No crate reads one known layout of JSON faster
//! than a general parser does, hence this hand-written module.
//!
//! It is only a shortcut, and never decides anything: for any text it does
//! not recognise (whitespace, another order, a string with an escape, a
//! `lastError` or a field this version does not know, anything damaged) it
//! answers `None`, and the caller parses the text with serde_json, which
//! then accepts it or reports what is wrong. When it answers, the session
//! equals what serde_json reads from the same text; the tests check this
//! against serde_json on generated and on damaged text.
//!
//! The nested values (`config`, `state`) are still checked and delimited
//! by serde_json, as the general path does.

use serde::Deserialize;
use serde::de::value::{BorrowedStrDeserializer, Error as ValueError};
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Session;
use crate::provider_config::SharedText;
use crate::{ProviderConfig, SessionId, SessionStatus, SessionType};

/// `text`, one session's JSON and a slice of `file`, read as its
/// `config` and `state` are kept: as ranges of `file`. `None` when the text
/// is not exactly as `serde_json::to_string` writes a session without
/// escaped strings, `lastError` or unknown fields.
pub(crate) fn parse_in(file: &SharedText, text: &str) -> Option<Session> {
    let mut at = Cursor { text, pos: 0 };
    at.literal("{\"sessionId\":")?;
    let session_id: SessionId = from_str(at.string()?)?;
    at.literal(",\"sessionName\":")?;
    let session_name = at.string()?.to_owned();
    at.literal(",\"sessionType\":")?;
    let session_type: SessionType = from_str(at.string()?)?;
    at.literal(",\"status\":")?;
    let status: SessionStatus = from_str(at.string()?)?;
    let start_date_time = match at.key("startDateTime") {
        true => Some(at.time()?),
        false => None,
    };
    let region = match at.key("region") {
        true => Some(at.string()?.to_owned()),
        false => None,
    };
    let expiration = match at.key("expiration") {
        true => Some(at.time()?),
        false => None,
    };
    let issued_at = match at.key("issuedAt") {
        true => Some(at.time()?),
        false => None,
    };
    let parent_session_id = match at.key("parentSessionId") {
        true => Some(from_str(at.string()?)?),
        false => None,
    };
    // Rare (a failure is on record), and a nested object: serde_json's.
    if at.key("lastError") {
        return None;
    }
    let config = match at.key("config") {
        true => ProviderConfig::from_text_in(file, at.raw_value()?)?,
        false => ProviderConfig::default(),
    };
    let state = match at.key("state") {
        true => ProviderConfig::from_text_in(file, at.raw_value()?)?,
        false => ProviderConfig::default(),
    };
    at.literal(",\"revision\":")?;
    let revision = at.unsigned()?;
    at.literal("}")?;
    if at.pos != text.len() {
        return None;
    }
    Some(Session {
        session_id,
        session_name,
        session_type,
        status,
        start_date_time,
        region,
        expiration,
        issued_at,
        parent_session_id,
        last_error: None,
        config,
        state,
        revision,
        extra: serde_json::Map::new(),
    })
}

/// A value of a type whose serde form is a string, read as serde reads it.
fn from_str<'a, T: Deserialize<'a>>(text: &'a str) -> Option<T> {
    T::deserialize(BorrowedStrDeserializer::<ValueError>::new(text)).ok()
}

/// Where the first `"`, `\\` or control character of `bytes` is (its
/// length if there is none): the end of a string without escapes.
///
/// Eight bytes at a time, with the usual bit tricks: for each byte `b` of
/// a word, `(b - 1) & !b` has its top bit set when `b` is 0 (applied to the
/// word XOR a repeated `"` or `\\`) and `(b - 0x20) & !b` when `b` is
/// below 0x20. A borrow can also flag a byte above a match, never below
/// one, so the lowest flag is a match.
fn plain_until(bytes: &[u8]) -> usize {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const TOPS: u64 = ONES << 7;
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for word in words.by_ref() {
        let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        let quote = word ^ (ONES * u64::from(b'"'));
        let backslash = word ^ (ONES * u64::from(b'\\'));
        let flags = (quote.wrapping_sub(ONES) & !quote
            | backslash.wrapping_sub(ONES) & !backslash
            | word.wrapping_sub(ONES * 0x20) & !word)
            & TOPS;
        if flags != 0 {
            return at + flags.trailing_zeros() as usize / 8;
        }
        at += 8;
    }
    at + words
        .remainder()
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .unwrap_or(words.remainder().len())
}

/// A time as `time` writes one in UTC (`2030-01-31T23:59:59Z`, with 1 to 9
/// digits of fraction when there is one), read directly: `time`'s RFC 3339
/// parser is general (any offset, leap seconds), and was a tenth of the
/// cost of reading a session. `None` for any other form, which `time`
/// then reads.
fn utc_time(text: &str) -> Option<OffsetDateTime> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    if b[13] != b':' || b[16] != b':' || *b.last()? != b'Z' {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let nanos = match &b[19..b.len() - 1] {
        [] => 0,
        [b'.', fraction @ ..] if (1..=9).contains(&fraction.len()) => {
            digits(20..b.len() - 1)? * 10u32.pow(9 - fraction.len() as u32)
        }
        _ => return None,
    };
    let month = time::Month::try_from(u8::try_from(digits(5..7)?).ok()?).ok()?;
    let date =
        time::Date::from_calendar_date(digits(0..4)? as i32, month, digits(8..10)? as u8).ok()?;
    // A leap second (60) is left to `time`.
    let at = time::Time::from_hms_nano(
        digits(11..13)? as u8,
        digits(14..16)? as u8,
        digits(17..19)? as u8,
        nanos,
    )
    .ok()?;
    Some(time::PrimitiveDateTime::new(date, at).assume_utc())
}

/// A position in one session's text.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    /// Steps over `expected`, which must come next.
    fn literal(&mut self, expected: &str) -> Option<()> {
        self.rest().starts_with(expected).then(|| {
            self.pos += expected.len();
        })
    }

    /// Steps over `,"name":` if it comes next.
    fn key(&mut self, name: &str) -> bool {
        let rest = self.rest().as_bytes();
        let found = rest.len() > name.len() + 4
            && rest.starts_with(b",\"")
            && rest[2..].starts_with(name.as_bytes())
            && rest[2 + name.len()..].starts_with(b"\":");
        if found {
            self.pos += name.len() + 4;
        }
        found
    }

    /// A string without escapes: its text between the quotes. `None` for
    /// an escape (serde_json unescapes it) and for a raw control
    /// character (which JSON does not allow).
    fn string(&mut self) -> Option<&'a str> {
        let rest = self.rest().as_bytes().strip_prefix(b"\"")?;
        let end = plain_until(rest);
        if rest.get(end) != Some(&b'"') {
            return None;
        }
        let value = &self.text[self.pos + 1..self.pos + 1 + end];
        self.pos += end + 2;
        Some(value)
    }

    /// An RFC 3339 time in a string, read as `time::serde::rfc3339` does.
    fn time(&mut self) -> Option<OffsetDateTime> {
        let text = self.string()?;
        utc_time(text).or_else(|| OffsetDateTime::parse(text, &Rfc3339).ok())
    }

    /// A whole JSON value, checked and delimited by serde_json: its text.
    fn raw_value(&mut self) -> Option<&'a str> {
        let rest = self.rest();
        let mut values = serde_json::Deserializer::from_str(rest).into_iter::<&RawValue>();
        let value = values.next()?.ok()?.get();
        // Leading whitespace is not what a workspace writes.
        if value.as_ptr() != rest.as_ptr() {
            return None;
        }
        self.pos += value.len();
        Some(value)
    }

    /// A `u64` as JSON writes it: digits, no leading zero but for 0 itself,
    /// no fraction or exponent (serde_json would read those as a float,
    /// which a `u64` field refuses).
    fn unsigned(&mut self) -> Option<u64> {
        let rest = self.rest().as_bytes();
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || (digits > 1 && rest[0] == b'0') {
            return None;
        }
        let mut value: u64 = 0;
        for &digit in &rest[..digits] {
            value = value
                .checked_mul(10)?
                .checked_add(u64::from(digit - b'0'))?;
        }
        self.pos += digits;
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{Value, json};
    use time::{Duration, UtcOffset};

    use super::*;
    use crate::session::{KeepText, LastError};

    /// xorshift64*: reproducible cases without a dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn chance(&mut self, percent: usize) -> bool {
            self.below(100) < percent
        }
        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[self.below(items.len())]
        }
    }

    /// Pieces of text: plain ones, and ones JSON escapes or that are not
    /// ASCII.
    const PLAIN: &[&str] = &["a", "dev", "-", "_", "9", "é", "日本", "🦀", "/", " x"];
    const SPECIAL: &[&str] = &["\"", "\\", "\n", "\t", "\u{1}", "\u{7f}", "\u{2028}"];

    fn text(rng: &mut Rng, special: bool) -> String {
        let mut out = String::from("s");
        for _ in 0..rng.below(12) {
            let pool = if special && rng.chance(20) {
                SPECIAL
            } else {
                PLAIN
            };
            let piece: &&str = rng.pick(pool);
            out.push_str(piece);
        }
        out.push('z');
        out
    }

    fn time(rng: &mut Rng, special: bool) -> OffsetDateTime {
        let mut at =
            OffsetDateTime::UNIX_EPOCH + Duration::seconds(rng.below(4_000_000_000) as i64);
        if rng.chance(50) {
            at += Duration::nanoseconds(rng.below(1_000_000_000) as i64);
        }
        if special && rng.chance(20) {
            at = at.to_offset(UtcOffset::from_hms(2, 30, 0).expect("offset"));
        }
        at
    }

    fn value(rng: &mut Rng, special: bool, depth: usize) -> Value {
        match rng.below(if depth > 2 { 4 } else { 6 }) {
            0 => Value::Null,
            1 => json!(rng.chance(50)),
            2 => json!(rng.next() as i64 >> rng.below(60)),
            3 => json!(text(rng, special)),
            4 => Value::Array(
                (0..rng.below(3))
                    .map(|_| value(rng, special, depth + 1))
                    .collect(),
            ),
            _ => object(rng, special, depth + 1),
        }
    }

    fn object(rng: &mut Rng, special: bool, depth: usize) -> Value {
        Value::Object(
            (0..rng.below(4))
                .map(|_| (text(rng, special), value(rng, special, depth)))
                .collect(),
        )
    }

    /// A session with every field chosen at random; `special` adds what the
    /// shortcut leaves to serde_json (escapes, offsets, `lastError`,
    /// unknown fields).
    fn session(rng: &mut Rng, special: bool) -> Session {
        let types = [
            SessionType::AwsIamUser,
            SessionType::AwsSsoRole,
            SessionType::Boundary,
            SessionType::Other("myKind".into()),
        ];
        let statuses = [
            SessionStatus::Inactive,
            SessionStatus::Active,
            SessionStatus::Rotating,
            SessionStatus::Expired,
        ];
        let mut s = Session::placeholder();
        s.session_id = SessionId::new();
        s.session_name = text(rng, special);
        s.session_type = rng.pick(&types).clone();
        s.status = *rng.pick(&statuses);
        s.start_date_time = rng.chance(60).then(|| time(rng, special));
        s.region = rng.chance(60).then(|| text(rng, special));
        s.expiration = rng.chance(60).then(|| time(rng, special));
        s.issued_at = rng.chance(40).then(|| time(rng, special));
        s.parent_session_id = rng.chance(30).then(SessionId::new);
        if special && rng.chance(20) {
            s.last_error = Some(LastError {
                operation: "rotate".into(),
                category: "network".into(),
                message: text(rng, special),
                at: time(rng, special),
            });
        }
        if rng.chance(80) {
            s.config.set(&object(rng, special, 0)).expect("config");
        }
        if rng.chance(40) {
            s.state.set(&object(rng, special, 0)).expect("state");
        }
        s.revision = match rng.below(3) {
            0 => 0,
            1 => rng.below(1000) as u64,
            _ => rng.next(),
        };
        if special && rng.chance(10) {
            s.extra
                .insert("fromANewerVersion".into(), value(rng, special, 0));
        }
        s
    }

    /// serde_json's reading of `text`, kept as the file load keeps it.
    fn by_serde(file: &Arc<String>) -> serde_json::Result<Session> {
        Session::from_json_keeping(file, KeepText::In(&SharedText::new(file)))
    }

    fn by_shortcut(file: &Arc<String>) -> Option<Session> {
        parse_in(&SharedText::new(file), file)
    }

    fn assert_same(fast: &Session, serde: &Session, text: &str) {
        assert_eq!(fast, serde, "{text}");
        // `==` on times compares instants; the offsets must agree too.
        for (a, b) in [
            (fast.start_date_time, serde.start_date_time),
            (fast.expiration, serde.expiration),
            (fast.issued_at, serde.issued_at),
        ] {
            assert_eq!(a.map(|t| t.offset()), b.map(|t| t.offset()), "{text}");
        }
        assert_eq!(fast.config.kept_text(), serde.config.kept_text());
        assert_eq!(fast.state.kept_text(), serde.state.kept_text());
    }

    #[test]
    fn reads_what_a_workspace_writes_as_serde_json_does() {
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        let mut taken = 0;
        for case in 0..3_000 {
            let special = case % 2 == 1;
            let original = session(&mut rng, special);
            let file = Arc::new(serde_json::to_string(&original).expect("json"));
            let serde = by_serde(&file).expect("serde_json reads it");
            match by_shortcut(&file) {
                Some(fast) => {
                    taken += 1;
                    assert_same(&fast, &serde, &file);
                }
                // Whatever has no escape, offset, `lastError` or unknown
                // field is read by the shortcut.
                None => assert!(special, "left to serde_json: {file}"),
            }
        }
        assert!(taken > 1_500 + 300, "the shortcut took {taken} of 3,000");
    }

    /// Damaged text: the shortcut answers only where serde_json accepts the
    /// text, and then with the same session.
    #[test]
    fn damaged_text_is_never_read_differently() {
        const INSERTS: &[&str] = &[
            "\"", "\\", ",", "{", "}", ":", " ", "0", "9", "a", "\n", "-", ".", "Z", "e", "[", "]",
            "null", "\"x\":1,", "\u{1}", "é",
        ];
        let mut rng = Rng(0x0bad_f00d_0000_0002);
        let (mut damaged, mut accepted) = (0, 0);
        for case in 0..600 {
            let original = serde_json::to_string(&session(&mut rng, case % 3 == 0)).expect("json");
            for _ in 0..25 {
                let mut chars: Vec<char> = original.chars().collect();
                for _ in 0..1 + rng.below(2) {
                    let at = rng.below(chars.len() + 1);
                    match rng.below(4) {
                        0 if at < chars.len() => {
                            let end = (at + 1 + rng.below(8)).min(chars.len());
                            chars.drain(at..end);
                        }
                        1 if at < chars.len() => {
                            chars[at] = rng.pick(INSERTS).chars().next().expect("char");
                        }
                        2 => chars.truncate(at),
                        _ => {
                            let insert = *rng.pick(INSERTS);
                            chars.splice(at..at, insert.chars());
                        }
                    }
                }
                let file = Arc::new(chars.into_iter().collect::<String>());
                let serde = by_serde(&file);
                if serde.is_err() {
                    damaged += 1;
                }
                if let Some(fast) = by_shortcut(&file) {
                    accepted += 1;
                    let serde = serde
                        .unwrap_or_else(|e| panic!("read {file} that serde_json refuses: {e}"));
                    assert_same(&fast, &serde, &file);
                }
            }
        }
        // The damage mostly breaks the text, and some still reads the same.
        assert!(damaged > 5_000, "{damaged} of 15,000 damaged");
        assert!(accepted > 500, "{accepted} of 15,000 read by the shortcut");
    }

    #[test]
    fn plain_until_finds_the_first_quote_backslash_or_control() {
        let mut rng = Rng(3);
        let alphabet = [
            b'a', b'"', b'\\', 0x1f, 0x20, 0x7f, 0x80, 0xff, b'!', b'#', b']', 0x00,
        ];
        for _ in 0..20_000 {
            let len = rng.below(40);
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    if rng.chance(90) {
                        b'x'
                    } else {
                        *rng.pick(&alphabet)
                    }
                })
                .collect();
            let expected = bytes
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .unwrap_or(len);
            assert_eq!(plain_until(&bytes), expected, "{bytes:?}");
        }
    }

    #[test]
    fn utc_times_read_as_time_reads_them() {
        let mut rng = Rng(4);
        let mut cases: Vec<String> = [
            "2030-01-31T23:59:59Z",
            "2030-01-31T23:59:59.5Z",
            "2030-01-31T23:59:59.123456789Z",
            "2030-01-31T23:59:59.1234567890Z",
            "2030-01-31T23:59:59.Z",
            "2016-12-31T23:59:60Z",
            "2030-02-29T00:00:00Z",
            "2028-02-29T00:00:00Z",
            "2030-13-01T00:00:00Z",
            "2030-00-01T00:00:00Z",
            "2030-01-00T00:00:00Z",
            "2030-01-01T24:00:00Z",
            "2030-01-01T00:60:00Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "2030-01-01t00:00:00z",
            "2030-01-01T00:00:00+00:00",
            "2030-01-01T00:00:00-01:00",
            "2030-01-01 00:00:00Z",
            "2030-1-01T00:00:00Z",
            "+2030-01-01T00:00:00Z",
            "2030-01-01T00:00:0aZ",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for _ in 0..2_000 {
            let at = time(&mut rng, true);
            let mut written = at.format(&Rfc3339).expect("format");
            if rng.chance(30) {
                let i = rng.below(written.len());
                let by = rng.pick(&["0", "9", "Z", ".", ":", "-", "T"]);
                written.replace_range(i..i + 1, by);
            }
            cases.push(written);
        }
        let mut read = 0;
        for case in &cases {
            let by_time = OffsetDateTime::parse(case, &Rfc3339).ok();
            if let Some(fast) = utc_time(case) {
                read += 1;
                assert_eq!(Some(fast), by_time, "{case}");
                assert_eq!(fast.offset(), UtcOffset::UTC, "{case}");
            }
        }
        assert!(read > 1_000, "{read} read directly");
    }
}
