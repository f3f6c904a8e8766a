//! The human-readable output: the `list` table, the `show` lines and the
//! result line of `start`, `stop` and `rotate`.
//!
//! Times are read only through a [`Clock`] (the CLI passes
//! [`session_sdk::SystemClock`]), never from the wall clock directly.

use std::fmt::Write as _;

use session_sdk::{Clock, Session};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The column headers of `list`.
const HEADERS: [&str; 5] = ["NAME", "TYPE", "STATUS", "EXPIRES", "ID"];

/// The `list` table, columns padded with spaces to the widest cell. With no
/// sessions, one line saying so.
pub(crate) fn table(sessions: &[Session], clock: &dyn Clock, workspace: &str) -> String {
    if sessions.is_empty() {
        return format!("no sessions in {workspace}\n");
    }
    let now = clock.now();
    let rows: Vec<[String; 5]> = sessions
        .iter()
        .map(|s| {
            [
                s.session_name.clone(),
                s.session_type.to_string(),
                s.status().to_string(),
                s.expiration
                    .map_or_else(|| "-".to_owned(), |exp| relative(exp, now)),
                s.session_id.to_string(),
            ]
        })
        .collect();
    let mut widths = HEADERS.map(width);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    let mut out = String::new();
    push_row(&mut out, &HEADERS.map(str::to_owned), &widths);
    for row in &rows {
        push_row(&mut out, row, &widths);
    }
    out
}

/// Display width of a cell: characters, not bytes.
fn width(cell: impl AsRef<str>) -> usize {
    cell.as_ref().chars().count()
}

/// Appends one table row, each cell but the last padded to its column
/// width plus two spaces.
fn push_row(out: &mut String, row: &[String; 5], widths: &[usize; 5]) {
    let last = row.len() - 1;
    for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
        out.push_str(&printable(cell));
        if i < last {
            out.push_str(&" ".repeat(w - width(cell) + 2));
        }
    }
    out.push('\n');
}

/// The `show` output: one `field: value` line per field, with the JSON field
/// names: `config` (the settings) and `state` (what the last start made
/// available, `-` when none) on lines of their own. `lastError` appears only
/// when there is one. `all` is used to name
/// the parent session.
pub(crate) fn details(session: &Session, all: &[Session], clock: &dyn Clock) -> String {
    let now = clock.now();
    let mut lines: Vec<(String, String)> = vec![
        ("sessionId".into(), session.session_id.to_string()),
        ("sessionName".into(), session.session_name.clone()),
        ("sessionType".into(), session.session_type.to_string()),
        ("status".into(), session.status().to_string()),
        (
            "startDateTime".into(),
            session
                .start_date_time
                .map_or_else(|| "-".into(), timestamp),
        ),
        (
            "region".into(),
            session.region.clone().unwrap_or_else(|| "-".into()),
        ),
        (
            "expiration".into(),
            session.expiration.map_or_else(
                || "-".into(),
                |exp| format!("{} ({})", timestamp(exp), relative(exp, now)),
            ),
        ),
        (
            "parentSessionId".into(),
            session.parent_session_id.map_or_else(
                || "-".into(),
                |parent| match all.iter().find(|s| s.session_id == parent) {
                    Some(p) => format!("{parent} ({})", p.session_name),
                    None => format!("{parent} (not in the workspace)"),
                },
            ),
        ),
    ];
    if let Some(error) = &session.last_error {
        lines.push((
            "lastError".into(),
            format!(
                "{} failed at {} [{}]: {}",
                error.operation,
                timestamp(error.at),
                error.category,
                error.message
            ),
        ));
    }
    // Settings and state apart, so the user sees what they chose and what
    // the last start made of it.
    lines.push((
        "config".into(),
        serde_json::to_string(&session.config).unwrap_or_else(|_| "?".into()),
    ));
    lines.push((
        "state".into(),
        if session.state.is_empty() {
            "-".into()
        } else {
            serde_json::to_string(&session.state).unwrap_or_else(|_| "?".into())
        },
    ));
    lines.push(("revision".into(), session.revision().to_string()));
    for (key, value) in &session.extra {
        lines.push((key.clone(), value.to_string()));
    }
    let key_width = lines.iter().map(|(k, _)| width(k)).max().unwrap_or(0) + 1;
    let mut out = String::new();
    for (key, value) in lines {
        let label = format!("{key}:");
        let _ = writeln!(out, "{label:<key_width$} {}", printable(&value));
    }
    out
}

/// The line printed after `start`, `stop` or `rotate` succeeded.
pub(crate) fn outcome(session: &Session, clock: &dyn Clock) -> String {
    match session.expiration {
        Some(exp) => format!(
            "{}: {}, expires {} ({})\n",
            session.label(),
            session.status(),
            timestamp(exp),
            relative(exp, clock.now())
        ),
        None => format!("{}: {}\n", session.label(), session.status()),
    }
}

/// RFC 3339, UTC.
fn timestamp(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

/// `in 1h05m` or `expired 3m ago`.
fn relative(at: OffsetDateTime, now: OffsetDateTime) -> String {
    let seconds = (at - now).whole_seconds();
    if seconds > 0 {
        format!("in {}", span(seconds.unsigned_abs()))
    } else {
        format!("expired {} ago", span(seconds.unsigned_abs()))
    }
}

/// A short duration: `42s`, `5m`, `1h05m`, `3d04h`.
fn span(seconds: u64) -> String {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    match seconds {
        s if s < MINUTE => format!("{s}s"),
        s if s < HOUR => format!("{}m", s / MINUTE),
        s if s < DAY => format!("{}h{:02}m", s / HOUR, s % HOUR / MINUTE),
        s => format!("{}d{:02}h", s / DAY, s % DAY / HOUR),
    }
}

/// Replaces control characters (which could move the cursor or fake lines)
/// with `?`.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Rows under `headers`, each column padded with spaces to its widest cell
/// (trailing spaces trimmed); `empty` on a line of its own when there are
/// no rows. For the listings of services (`ssm sessions`, `boundary …`).
#[cfg(any(feature = "aws-ssm", feature = "boundary"))]
pub(crate) fn columns(headers: &[&str], rows: &[Vec<String>], empty: &str) -> String {
    if rows.is_empty() {
        return format!("{empty}\n");
    }
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let headers: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    let mut out = String::new();
    for row in std::iter::once(&headers).chain(rows) {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_short() {
        assert_eq!(span(0), "0s");
        assert_eq!(span(59), "59s");
        assert_eq!(span(60), "1m");
        assert_eq!(span(3_900), "1h05m");
        assert_eq!(span(2 * 86_400 + 3_600 * 4), "2d04h");
    }

    #[test]
    fn relative_says_which_side() {
        let now = time::macros::datetime!(2030-01-01 12:00 UTC);
        assert_eq!(
            relative(time::macros::datetime!(2030-01-01 13:05 UTC), now),
            "in 1h05m"
        );
        assert_eq!(
            relative(time::macros::datetime!(2030-01-01 11:57 UTC), now),
            "expired 3m ago"
        );
    }
}
