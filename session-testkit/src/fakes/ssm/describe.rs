//! `DescribeSessions`: `State`, the filters (lowercase `key` / `value`),
//! paging with `MaxResults` / `NextToken`, and the `Session` shape.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::http::{
    ApiError, Body, check_length, optional_str, required_str, serialization, validation,
};
use super::state::{FakeState, PageCursor};
use super::{SessionRecord, SessionStatus};
use crate::fakes::sso::values::{URL_SAFE, random_chars};

/// The filter keys of the model's `SessionFilterKey`.
pub(super) const FILTER_KEYS: [&str; 7] = [
    "InvokedAfter",
    "InvokedBefore",
    "Target",
    "Owner",
    "Status",
    "SessionId",
    "AccessType",
];

/// The most filters one request may carry (the model's `SessionFilterList`).
const MAX_FILTERS: usize = 6;

/// The largest `MaxResults` (the model's range is 1–200).
const MAX_RESULTS: i64 = 200;

/// One parsed filter.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Filter {
    InvokedAfter(OffsetDateTime),
    InvokedBefore(OffsetDateTime),
    Target(String),
    Owner(String),
    Status(SessionStatus),
    SessionId(String),
    AccessType(String),
}

impl Filter {
    fn parse(index: usize, item: &Value) -> Result<Self, ApiError> {
        let Value::Object(item) = item else {
            return Err(serialization("Each filter must be an object"));
        };
        let member = |name: &str| format!("filters.{}.member.{name}", index + 1);
        let key = required_str(item, "key", &member("key"))?;
        if !FILTER_KEYS.contains(&key.as_str()) {
            return Err(ApiError::client(
                "InvalidFilterKey",
                &format!("The filter key {key} is not valid."),
            ));
        }
        let value = required_str(item, "value", &member("value"))?;
        check_length(&value, &member("value"), 1, 400)?;
        let invalid = || {
            ApiError::client(
                "ValidationException",
                &format!("The value '{value}' is not valid for filter key {key}."),
            )
        };
        let date = || OffsetDateTime::parse(&value, &Rfc3339).map_err(|_| invalid());
        Ok(match key.as_str() {
            "InvokedAfter" => Filter::InvokedAfter(date()?),
            "InvokedBefore" => Filter::InvokedBefore(date()?),
            "Target" => Filter::Target(value),
            "Owner" => Filter::Owner(value),
            "Status" => Filter::Status(SessionStatus::from_name(&value).ok_or_else(invalid)?),
            "SessionId" => Filter::SessionId(value),
            _ if matches!(value.as_str(), "Standard" | "JustInTime") => Filter::AccessType(value),
            _ => return Err(invalid()),
        })
    }

    /// Dates compare inclusively: `InvokedAfter` keeps sessions started at
    /// or after the instant, `InvokedBefore` at or before it.
    fn matches(&self, s: &SessionRecord) -> bool {
        match self {
            Filter::InvokedAfter(t) => s.start_date >= *t,
            Filter::InvokedBefore(t) => s.start_date <= *t,
            Filter::Target(v) => s.target == *v,
            Filter::Owner(v) => s.owner == *v,
            Filter::Status(v) => s.status == *v,
            Filter::SessionId(v) => s.session_id == *v,
            Filter::AccessType(v) => s.access_type == *v,
        }
    }
}

/// Epoch seconds with milliseconds, as a JSON number.
pub(super) fn epoch_seconds(t: OffsetDateTime) -> Value {
    let millis = t.unix_timestamp_nanos() / 1_000_000;
    // Exact for any date in the next 285,000 years.
    #[allow(clippy::cast_precision_loss)]
    let seconds = millis as f64 / 1000.0;
    json!(seconds)
}

/// The model's `Session` structure.
pub(super) fn session_json(s: &SessionRecord, max_session_duration: Option<u32>) -> Value {
    let mut out = Map::new();
    out.insert("SessionId".into(), json!(s.session_id));
    out.insert("Target".into(), json!(s.target));
    out.insert("Status".into(), json!(s.status.as_str()));
    out.insert("StartDate".into(), epoch_seconds(s.start_date));
    if let Some(end) = s.end_date {
        out.insert("EndDate".into(), epoch_seconds(end));
    }
    if let Some(doc) = &s.document_name {
        out.insert("DocumentName".into(), json!(doc));
    }
    out.insert("Owner".into(), json!(s.owner));
    if let Some(reason) = &s.reason {
        out.insert("Reason".into(), json!(reason));
    }
    if let Some(details) = &s.details {
        out.insert("Details".into(), json!(details));
    }
    out.insert("OutputUrl".into(), json!({}));
    if let Some(minutes) = max_session_duration {
        out.insert("MaxSessionDuration".into(), json!(minutes.to_string()));
    }
    out.insert("AccessType".into(), json!(s.access_type));
    Value::Object(out)
}

impl FakeState {
    pub(super) fn describe_sessions(&mut self, body: &Body) -> Result<Value, ApiError> {
        let state = required_str(body, "State", "state")?;
        let active = match state.as_str() {
            "Active" => true,
            "History" => false,
            _ => {
                return Err(validation(
                    &format!("'{state}'"),
                    "state",
                    "Member must satisfy enum value set: [Active, History]",
                ));
            }
        };
        let page_size = match body.get("MaxResults") {
            None | Some(Value::Null) => self.page_size,
            Some(Value::Number(n)) => match n.as_i64() {
                Some(n @ 1..=MAX_RESULTS) => usize::try_from(n).unwrap_or(self.page_size),
                _ => {
                    let constraint = if n.as_i64().is_some_and(|n| n > MAX_RESULTS) {
                        format!("Member must have value less than or equal to {MAX_RESULTS}")
                    } else {
                        "Member must have value greater than or equal to 1".to_owned()
                    };
                    return Err(validation(&format!("'{n}'"), "maxResults", &constraint));
                }
            },
            Some(_) => return Err(serialization("MaxResults must be an integer")),
        };
        let filters = match body.get("Filters") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                if items.is_empty() || items.len() > MAX_FILTERS {
                    return Err(validation(
                        "'[…]'",
                        "filters",
                        &format!(
                            "Member must have length between 1 and {MAX_FILTERS}, got {}",
                            items.len()
                        ),
                    ));
                }
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| Filter::parse(i, item))
                    .collect::<Result<Vec<_>, _>>()?
            }
            Some(_) => return Err(serialization("Filters must be a list")),
        };
        let listing = format!("{state}|{:?}", body.get("Filters"));
        let offset = match optional_str(body, "NextToken")? {
            None => 0,
            Some(token) => match self.page_tokens.get(&token) {
                Some(cursor) if cursor.listing == listing => cursor.offset,
                _ => {
                    return Err(ApiError::client(
                        "InvalidNextToken",
                        "The specified token is not valid.",
                    ));
                }
            },
        };
        let matching: Vec<&SessionRecord> = self
            .sessions
            .iter()
            .filter(|s| s.status.is_active() == active)
            .filter(|s| filters.iter().all(|f| f.matches(s)))
            .collect();
        let page_size = self.page_cap.map_or(page_size, |cap| page_size.min(cap));
        let end = offset.saturating_add(page_size).min(matching.len());
        let sessions: Vec<Value> = matching
            .get(offset..end)
            .unwrap_or_default()
            .iter()
            .map(|s| session_json(s, self.max_session_duration))
            .collect();
        let mut out = json!({ "Sessions": sessions });
        if end < matching.len() {
            let token = random_chars(URL_SAFE, 64);
            self.page_tokens.insert(
                token.clone(),
                PageCursor {
                    listing,
                    offset: end,
                },
            );
            out["NextToken"] = Value::String(token);
        }
        Ok(out)
    }
}
