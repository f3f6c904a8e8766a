//! [`ProviderConfig`]: a provider's settings (or state) for one session, a
//! JSON object that stays unparsed text until it is first looked at.

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::{Error, Result};

/// A provider's own settings for one session: a JSON object.
///
/// Core does not know the provider types, so it stores the object as JSON and
/// lets the provider view it through its own `serde` type:
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use session_core::ProviderConfig;
///
/// #[derive(Serialize, Deserialize)]
/// #[serde(rename_all = "camelCase")]
/// struct RoleConfig { role_arn: String, external_id: Option<String> }
///
/// let mut config: ProviderConfig =
///     serde_json::from_str(r#"{"roleArn":"arn:aws:iam::1:role/A","addedInV2":true}"#)?;
/// let mut role: RoleConfig = config.get()?;
/// role.role_arn = "arn:aws:iam::1:role/B".into();
/// config.set(&role)?;
/// // A key the typed view did not know survives the round trip.
/// assert_eq!(config.as_map()["addedInV2"], true);
/// assert_eq!(config.as_map()["roleArn"], "arn:aws:iam::1:role/B");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Cost
///
/// A workspace loads every session, but a program usually looks at the
/// settings of a few. So a session read from a workspace keeps each object
/// as its JSON text (a range of the workspace file's text, which it shares:
/// no copy), parses it the first time it is looked at, and a clone of a
/// never-parsed object copies only that reference. This made loading 10,000
/// sessions about 40 % faster. (A session from a workspace file so keeps
/// that file's text in memory until the session and its clones are dropped
/// or their settings changed.)
pub struct ProviderConfig {
    /// The object, once parsed (or built).
    map: OnceLock<Map<String, Value>>,
    /// The JSON text it was read from, while it has not been changed. Always
    /// an object (checked when read).
    text: Option<Text>,
}

/// JSON text: its own, or a range of a shared file's text.
#[derive(Clone)]
enum Text {
    Owned(Box<RawValue>),
    Shared(SharedText, Range<usize>),
}

/// A workspace file's text, as the sessions read from it share it.
///
/// A handle of its own for each thread that reads sessions
/// ([`SharedText::new`] once per thread): the sessions of one thread count
/// their references on that handle, rather than every thread on the
/// file's one counter, which made the threads of a parallel load wait for
/// each other at every session.
#[derive(Clone)]
#[allow(clippy::redundant_allocation)] // One counter per handle, as said above.
pub(crate) struct SharedText(Arc<Arc<String>>);

impl SharedText {
    /// A new handle on `file`.
    pub(crate) fn new(file: &Arc<String>) -> Self {
        SharedText(Arc::new(Arc::clone(file)))
    }

    fn as_str(&self) -> &str {
        &self.0
    }
}

impl Text {
    fn get(&self) -> &str {
        match self {
            Text::Owned(text) => text.get(),
            Text::Shared(file, range) => &file.as_str()[range.clone()],
        }
    }
}

impl ProviderConfig {
    /// Keeps `text`, a JSON object, unparsed. `None` if it is not an object.
    pub(crate) fn from_json_text(text: Box<RawValue>) -> Option<Self> {
        Self::from_text(Text::Owned(text))
    }

    /// Keeps `text`, a JSON object that is a slice of `file`, as a range of
    /// `file`. `None` if it is not an object, or not in `file`.
    pub(crate) fn from_text_in(file: &SharedText, text: &str) -> Option<Self> {
        let whole = file.as_str();
        let start = (text.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
        let range = start..start + text.len();
        if whole.get(range.clone()).map(str::as_ptr) != Some(text.as_ptr()) {
            return None;
        }
        Self::from_text(Text::Shared(file.clone(), range))
    }

    /// The JSON text it keeps, if any (for tests comparing two readers).
    #[cfg(test)]
    pub(crate) fn kept_text(&self) -> Option<&str> {
        self.text.as_ref().map(Text::get)
    }

    fn from_text(text: Text) -> Option<Self> {
        text.get()
            .trim_start()
            .starts_with('{')
            .then(|| ProviderConfig {
                map: OnceLock::new(),
                text: Some(text),
            })
    }

    fn from_map(map: Map<String, Value>) -> Self {
        ProviderConfig {
            map: OnceLock::from(map),
            text: None,
        }
    }

    /// Decodes the typed view `T`. Keys `T` does not know are ignored here and
    /// kept in the object.
    pub fn get<T: DeserializeOwned>(&self) -> Result<T> {
        let decoded = match (&self.text, self.map.get()) {
            (Some(text), None) => serde_json::from_str(text.get())
                .map_err(|e| crate::error::without_position(&e.to_string())),
            _ => T::deserialize(Value::Object(self.as_map().clone())).map_err(|e| e.to_string()),
        };
        decoded.map_err(|e| Error::invalid_input("session config", e))
    }

    /// Merges the typed view `T` into the object: each key `T` serializes is
    /// overwritten, a key serialized as `null` is removed, and keys `T` does
    /// not serialize are kept.
    pub fn set<T: Serialize>(&mut self, value: &T) -> Result<()> {
        match serde_json::to_value(value) {
            Ok(Value::Object(map)) => {
                let object = self.as_map_mut();
                for (key, value) in map {
                    if value.is_null() {
                        object.remove(&key);
                    } else {
                        object.insert(key, value);
                    }
                }
                Ok(())
            }
            Ok(other) => Err(Error::invalid_input(
                "session config",
                format!("must serialize to a JSON object, not {other}"),
            )),
            Err(e) => Err(Error::invalid_input("session config", e.to_string())),
        }
    }

    /// The raw object.
    pub fn as_map(&self) -> &Map<String, Value> {
        self.map.get_or_init(|| {
            self.text
                .as_ref()
                // Checked to be an object when it was read; serde_json
                // reads any JSON object into a map.
                .and_then(|text| serde_json::from_str(text.get()).ok())
                .unwrap_or_default()
        })
    }

    /// The raw object, mutable.
    pub fn as_map_mut(&mut self) -> &mut Map<String, Value> {
        self.as_map();
        // The text no longer says what the object holds.
        self.text = None;
        self.map.get_mut().expect("parsed just above")
    }

    /// A string value, if the key holds one.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.as_map().get(key).and_then(Value::as_str)
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        match (&self.text, self.map.get()) {
            (_, Some(map)) => map.is_empty(),
            (Some(text), None) => {
                let inner = text.get().trim();
                inner[1..inner.len() - 1].trim().is_empty()
            }
            (None, None) => true,
        }
    }
}

impl Default for ProviderConfig {
    fn default() -> Self {
        Self::from_map(Map::new())
    }
}

impl Clone for ProviderConfig {
    fn clone(&self) -> Self {
        match &self.text {
            // The text is enough: the copy parses it if it is looked at.
            Some(text) => ProviderConfig {
                map: OnceLock::new(),
                text: Some(text.clone()),
            },
            None => Self::from_map(self.as_map().clone()),
        }
    }
}

impl PartialEq for ProviderConfig {
    fn eq(&self, other: &Self) -> bool {
        self.as_map() == other.as_map()
    }
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_map().fmt(f)
    }
}

impl Serialize for ProviderConfig {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        self.as_map().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ProviderConfig {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        Map::deserialize(deserializer).map(Self::from_map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lazy(text: &str) -> ProviderConfig {
        ProviderConfig::from_json_text(RawValue::from_string(text.into()).unwrap()).unwrap()
    }

    #[test]
    fn text_kept_until_looked_at_and_dropped_once_changed() {
        let config = lazy(r#"{"roleArn":"arn:a","n":1}"#);
        assert!(!config.is_empty());
        assert!(lazy(" { } ").is_empty());
        let copy = config.clone();
        assert_eq!(copy, config);
        assert_eq!(config.get_str("roleArn"), Some("arn:a"));
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Typed {
            role_arn: String,
        }
        assert_eq!(copy.get::<Typed>().unwrap().role_arn, "arn:a");
        let err = copy
            .get::<std::collections::HashMap<String, String>>()
            .unwrap_err();
        assert!(!err.to_string().contains("line 1"), "{err}");

        let mut changed = config.clone();
        changed.as_map_mut().insert("n".into(), 2.into());
        assert_eq!(serde_json::to_value(&changed).unwrap()["n"], 2);
        assert_eq!(
            changed.clone().as_map()["n"],
            2,
            "a clone copies the change"
        );
        assert_ne!(changed, config);
        assert!(
            ProviderConfig::from_json_text(RawValue::from_string("[1]".into()).unwrap()).is_none()
        );
    }
}
