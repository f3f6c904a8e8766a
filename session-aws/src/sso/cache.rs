//! The AWS CLI's SSO token cache: `<home>/.aws/sso/cache/<sha1_hex(id)>.json`.
//!
//! One file per sign-in, named after the SHA-1 of the `sso-session` name
//! (or, for legacy profiles, of the start URL), holding the access token,
//! its expiry, and (for `sso-session` sign-ins) the refresh token and the
//! client registration that can refresh it. The AWS CLI, botocore and the
//! Rust SDK read **and write back** the same file, so every change here is a
//! read-modify-write under a sidecar lock (`<file>.lock`), written to a
//! temporary file (mode 0600) and renamed over the original; keys this
//! crate does not know are kept.
//!
//! The AWS CLI also caches its client registration in a file of its own
//! (`sha1_hex(J).json`, see [`registration_cache_key`]); this module reads
//! it so a sign-in can reuse the CLI's registration, and never writes it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};
use session_core::private_file::{self, LockError};
use session_core::{Error, Result, Secret};
use sha1::{Digest, Sha1};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroizing;

/// How long a cache update waits for another writer's lock.
pub const DEFAULT_CACHE_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// The cache directory under a home folder: `.aws/sso/cache`.
const CACHE_SUBDIR: [&str; 3] = [".aws", "sso", "cache"];

/// A cached SSO access token, as the AWS CLI stores it.
///
/// The secret parts are [`Secret`]s, so `Debug` never shows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsoToken {
    /// The portal bearer token (`accessToken`).
    pub access_token: Secret,
    /// When the access token expires (`expiresAt`).
    pub expires_at: OffsetDateTime,
    /// The refresh token (`refreshToken`), for registrations with the
    /// `sso:account:access` scope.
    pub refresh_token: Option<Secret>,
    /// The registered client that can refresh the token (`clientId`).
    pub client_id: Option<String>,
    /// That client's secret (`clientSecret`).
    pub client_secret: Option<Secret>,
    /// When that client's registration expires (`registrationExpiresAt`).
    pub registration_expires_at: Option<OffsetDateTime>,
    /// The SSO region (`region`).
    pub region: Option<String>,
    /// The start URL (`startUrl`).
    pub start_url: Option<String>,
}

impl SsoToken {
    /// Whether the access token is still good for `window` after `now`
    /// (`expiresAt − window > now`).
    pub fn valid_for(&self, now: OffsetDateTime, window: Duration) -> bool {
        self.expires_at - window > now
    }

    /// The client registration stored with the token, when all of
    /// `clientId`, `clientSecret` and `registrationExpiresAt` are present.
    /// Its scopes are not recorded in the token file (empty here).
    pub(crate) fn registration(&self) -> Option<SsoRegistration> {
        Some(SsoRegistration {
            client_id: self.client_id.clone()?,
            client_secret: self.client_secret.clone()?,
            expires_at: self.registration_expires_at?,
            scopes: Vec::new(),
        })
    }

    /// Whether the token can be refreshed at `now`: a refresh token and a
    /// registration that has not expired.
    pub fn can_refresh(&self, now: OffsetDateTime) -> bool {
        self.refresh_token.is_some() && self.registration().is_some_and(|r| r.expires_at > now)
    }

    /// Decodes a token file's JSON object; `None` when `accessToken` or
    /// `expiresAt` is missing or unreadable.
    fn from_json(map: &Map<String, Value>) -> Option<Self> {
        let text = |key: &str| map.get(key).and_then(Value::as_str).map(str::to_owned);
        let access_token = text("accessToken").filter(|t| !t.is_empty())?;
        let expires_at = map.get("expiresAt").and_then(timestamp_value)?;
        Some(Self {
            access_token: Secret::new(access_token),
            expires_at,
            refresh_token: text("refreshToken").map(Secret::new),
            client_id: text("clientId"),
            client_secret: text("clientSecret").map(Secret::new),
            registration_expires_at: map.get("registrationExpiresAt").and_then(timestamp_value),
            region: text("region"),
            start_url: text("startUrl"),
        })
    }

    /// Writes the token's fields into `map`, removing the optional ones it
    /// does not have, and keeping every other key.
    fn write_json(&self, map: &mut Map<String, Value>) {
        let mut put = |key: &str, value: Option<String>| match value {
            Some(v) => {
                map.insert(key.to_owned(), Value::String(v));
            }
            None => {
                map.remove(key);
            }
        };
        put("accessToken", Some(self.access_token.expose().to_owned()));
        put("expiresAt", Some(format_timestamp(self.expires_at)));
        put(
            "refreshToken",
            self.refresh_token.as_ref().map(|t| t.expose().to_owned()),
        );
        put("clientId", self.client_id.clone());
        put(
            "clientSecret",
            self.client_secret.as_ref().map(|s| s.expose().to_owned()),
        );
        put(
            "registrationExpiresAt",
            self.registration_expires_at.map(format_timestamp),
        );
        put("region", self.region.clone());
        put("startUrl", self.start_url.clone());
    }
}

/// An SSO-OIDC client registration (`RegisterClient`'s result).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SsoRegistration {
    /// `clientId`.
    pub(crate) client_id: String,
    /// `clientSecret`.
    pub(crate) client_secret: Secret,
    /// When the client secret expires (`clientSecretExpiresAt`).
    pub(crate) expires_at: OffsetDateTime,
    /// The scopes it was registered with, when known.
    pub(crate) scopes: Vec<String>,
}

/// `lowercase_hex(sha1(utf8(text)))`.
pub(crate) fn sha1_hex(text: &str) -> String {
    let digest = Sha1::digest(text.as_bytes());
    let mut out = String::with_capacity(40);
    for byte in digest {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The id a sign-in's token file is named after: the `sso-session` name
/// when there is one, else the start URL (legacy profiles).
pub(crate) fn token_cache_id<'a>(start_url: &'a str, session_name: Option<&'a str>) -> &'a str {
    session_name.unwrap_or(start_url)
}

/// The text `J` whose SHA-1 names the AWS CLI's registration file: Python's
/// `json.dumps({"tool": "botocore", "startUrl": …, "region": …, "scopes": …,
/// "session_name": …}, sort_keys=True)` (sorted keys, `", "` and `": "`
/// separators, non-ASCII escaped as `\uXXXX`).
pub(crate) fn registration_cache_key(
    start_url: &str,
    region: &str,
    scopes: Option<&[String]>,
    session_name: Option<&str>,
) -> String {
    let scopes = match scopes {
        Some(scopes) => {
            let items: Vec<String> = scopes.iter().map(|s| python_json_string(s)).collect();
            format!("[{}]", items.join(", "))
        }
        None => "null".to_owned(),
    };
    let session_name = session_name.map_or_else(|| "null".to_owned(), python_json_string);
    format!(
        "{{\"region\": {}, \"scopes\": {scopes}, \"session_name\": {session_name}, \
         \"startUrl\": {}, \"tool\": \"botocore\"}}",
        python_json_string(region),
        python_json_string(start_url),
    )
}

/// A JSON string as Python's `json.dumps` (with `ensure_ascii`) writes it.
fn python_json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// Formats a time the way the token file carries it:
/// `YYYY-MM-DDTHH:MM:SSZ` (UTC, whole seconds), which the Rust SDK's strict
/// RFC 3339 parser, botocore and the AWS CLI all read. Public only for
/// this crate's tests.
#[doc(hidden)]
pub fn format_timestamp(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// Parses a token file time: RFC 3339 with or without fractions and with
/// any offset, a legacy `…UTC` suffix (old AWS CLI), a space instead of the
/// `T`, or no zone at all (read as UTC).
pub(crate) fn parse_timestamp(text: &str) -> Option<OffsetDateTime> {
    let mut text = text.trim().to_owned();
    if let Some(stripped) = text.strip_suffix("UTC") {
        text = format!("{}Z", stripped.trim_end());
    }
    if text.len() > 10 && text.as_bytes()[10] == b' ' {
        text.replace_range(10..11, "T");
    }
    if let Ok(at) = OffsetDateTime::parse(&text, &Rfc3339) {
        return Some(at);
    }
    // No zone: the time part has no `Z` and no `+`/`-` offset.
    let time_part = text.get(11..)?;
    if !time_part.contains(['Z', 'z', '+', '-']) {
        return OffsetDateTime::parse(&format!("{text}Z"), &Rfc3339).ok();
    }
    None
}

/// A time member: a string in any form [`parse_timestamp`] reads, or a
/// number of seconds since the epoch.
fn timestamp_value(value: &Value) -> Option<OffsetDateTime> {
    match value {
        Value::String(text) => parse_timestamp(text),
        Value::Number(n) => OffsetDateTime::from_unix_timestamp(n.as_i64()?).ok(),
        _ => None,
    }
}

/// The SSO token cache of one home folder.
///
/// Every method does blocking file I/O (and may wait up to the lock timeout
/// for another writer); call them from a blocking context
/// (`tokio::task::spawn_blocking`) in async code, as
/// [`SsoLogin`](super::SsoLogin) does.
#[derive(Clone, Debug)]
pub struct SsoTokenCache {
    dir: PathBuf,
    lock_timeout: Duration,
}

impl SsoTokenCache {
    /// The cache of `home`: `<home>/.aws/sso/cache`.
    pub fn for_home(home: impl AsRef<Path>) -> Self {
        let mut dir = home.as_ref().to_path_buf();
        dir.extend(CACHE_SUBDIR);
        Self::in_dir(dir)
    }

    /// The current user's cache, where the AWS CLI keeps it (there is no
    /// environment override; the home folder is `HOME`, or the profile
    /// folder on Windows).
    pub fn for_current_user() -> Result<Self> {
        let dirs = directories::BaseDirs::new().ok_or_else(|| {
            Error::invalid_input("HOME", "cannot determine the home folder for the SSO cache")
        })?;
        Ok(Self::for_home(dirs.home_dir()))
    }

    /// A cache in `dir` itself (no `.aws/sso/cache` appended).
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            lock_timeout: DEFAULT_CACHE_LOCK_TIMEOUT,
        }
    }

    /// How long an update waits for another writer (default
    /// [`DEFAULT_CACHE_LOCK_TIMEOUT`]).
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The token file of sign-in `id` (see [`SsoLoginKey::cache_id`](super::SsoLoginKey::cache_id)).
    pub fn token_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{}.json", sha1_hex(id)))
    }

    /// The lock file that serializes sign-ins (device flows and refreshes)
    /// of `id` across processes; distinct from the lock of the token file
    /// itself, which is held only while the file is rewritten.
    pub fn login_lock_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{}.login.lock", sha1_hex(id)))
    }

    /// The AWS CLI's registration file for this sign-in (named after the
    /// SHA-1 of its registration key). Public only for this crate's tests.
    #[doc(hidden)]
    pub fn registration_path(
        &self,
        start_url: &str,
        region: &str,
        scopes: Option<&[String]>,
        session_name: Option<&str>,
    ) -> PathBuf {
        let key = registration_cache_key(start_url, region, scopes, session_name);
        self.dir.join(format!("{}.json", sha1_hex(&key)))
    }

    /// The cached token of `id`, if there is a readable one. A file that is
    /// not JSON or lacks `accessToken`/`expiresAt` counts as no token (it is
    /// replaced by the next [`store`](Self::store)).
    pub fn load(&self, id: &str) -> Result<Option<SsoToken>> {
        let path = self.token_path(id);
        Ok(read_object(&path)?.as_ref().and_then(SsoToken::from_json))
    }

    /// Writes `token` as the token of `id`: under the file's lock, keeping
    /// the keys of the existing file that `SsoToken` does not cover.
    pub fn store(&self, id: &str, token: &SsoToken) -> Result<()> {
        self.update(id, |_| Some(token.clone())).map(|_| ())
    }

    /// Marks the token of `id` expired (`expiresAt` = `now`) if it is still
    /// `access_token`, keeping its refresh token and registration so the
    /// next sign-in refreshes. For a token the portal rejected. True when
    /// the file was changed.
    pub(crate) fn expire_if_current(
        &self,
        id: &str,
        access_token: &Secret,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let mut changed = false;
        self.update(id, |current| {
            let mut token = current?;
            if token.access_token != *access_token || token.expires_at <= now {
                return None;
            }
            token.expires_at = now;
            changed = true;
            Some(token)
        })?;
        Ok(changed)
    }

    /// Deletes the token file of `id` (idempotent), under its lock.
    pub(crate) fn remove(&self, id: &str) -> Result<()> {
        let path = resolve(&self.token_path(id));
        let _lock = self.lock(&path)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::storage(
                &path,
                "cannot delete the SSO token file",
                Some(e),
            )),
        }
    }

    /// The AWS CLI's cached registration for this sign-in, if its file
    /// exists and holds `clientId`, `clientSecret` and `expiresAt`.
    pub(crate) fn load_cli_registration(
        &self,
        start_url: &str,
        region: &str,
        scopes: Option<&[String]>,
        session_name: Option<&str>,
    ) -> Result<Option<SsoRegistration>> {
        let path = self.registration_path(start_url, region, scopes, session_name);
        let Some(map) = read_object(&path)? else {
            return Ok(None);
        };
        let text = |key: &str| map.get(key).and_then(Value::as_str).map(str::to_owned);
        let (Some(client_id), Some(client_secret), Some(expires_at)) = (
            text("clientId"),
            text("clientSecret"),
            map.get("expiresAt").and_then(timestamp_value),
        ) else {
            return Ok(None);
        };
        let scopes = map
            .get("scopes")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some(SsoRegistration {
            client_id,
            client_secret: Secret::new(client_secret),
            expires_at,
            scopes,
        }))
    }

    /// Read-modify-write of the token of `id` under the file's lock: `f`
    /// gets the current token and returns the one to write, or `None` to
    /// leave the file as it is.
    fn update(
        &self,
        id: &str,
        f: impl FnOnce(Option<SsoToken>) -> Option<SsoToken>,
    ) -> Result<bool> {
        let path = resolve(&self.token_path(id));
        private_file::create_private_dir(&self.dir).map_err(|e| {
            Error::storage(&self.dir, "cannot create the SSO cache directory", Some(e))
        })?;
        let _lock = self.lock(&path)?;
        let mut map = read_object(&path)?.unwrap_or_default();
        let Some(token) = f(SsoToken::from_json(&map)) else {
            return Ok(false);
        };
        token.write_json(&mut map);
        let bytes =
            Zeroizing::new(serde_json::to_vec_pretty(&Value::Object(map)).map_err(|e| {
                Error::storage(&path, format!("cannot encode the SSO token: {e}"), None)
            })?);
        private_file::replace_atomically(&path, &bytes, |_| {}).map_err(|e| {
            Error::storage(&path, format!("{} (SSO token file)", e.step), Some(e.error))
        })?;
        Ok(true)
    }

    fn lock(&self, path: &Path) -> Result<fs::File> {
        let lock_path = PathBuf::from(format!("{}.lock", path.display()));
        lock_file(&lock_path, self.lock_timeout, "SSO token file")
    }
}

/// Takes the exclusive lock at `lock_path` (blocking), with an actionable
/// error on timeout.
pub(crate) fn lock_file(lock_path: &Path, timeout: Duration, what: &str) -> Result<fs::File> {
    private_file::lock_exclusive(lock_path, timeout).map_err(|e| match e {
        LockError::Io(e) => Error::storage(lock_path, format!("cannot lock the {what}"), Some(e)),
        LockError::TimedOut => Error::storage(
            lock_path,
            format!(
                "another process held the lock of the {what} for {}s; if none is running, \
                 delete this lock file",
                timeout.as_secs()
            ),
            None,
        ),
    })
}

/// Follows a symlinked file so the rename replaces its target, not the link.
fn resolve(path: &Path) -> PathBuf {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
        }
        _ => path.to_path_buf(),
    }
}

/// The JSON object in `path`; `None` when the file does not exist or is
/// not a JSON object.
fn read_object(path: &Path) -> Result<Option<Map<String, Value>>> {
    let bytes = match fs::read(path) {
        Ok(bytes) => Zeroizing::new(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::storage(
                path,
                "cannot read the SSO cache file",
                Some(e),
            ));
        }
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        _ => {
            tracing::warn!(
                path = %path.display(),
                "the SSO cache file is not a JSON object; ignoring it"
            );
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const START_URL: &str = "https://d-123.awsapps.com/start";

    #[test]
    fn token_file_names_match_the_aws_cli() {
        assert_eq!(
            sha1_hex(token_cache_id(START_URL, Some("my-sso"))),
            "0ad374308c5a4e22f723adf10145eafad7c4031c"
        );
        assert_eq!(
            sha1_hex(token_cache_id(START_URL, None)),
            "2b829a45f04c9828cb45b7d092d8e4aa30818393"
        );
        let cache = SsoTokenCache::for_home("/home/u");
        assert_eq!(
            cache.token_path("my-sso"),
            Path::new("/home/u/.aws/sso/cache/0ad374308c5a4e22f723adf10145eafad7c4031c.json")
        );
    }

    #[test]
    fn registration_file_names_match_the_aws_cli() {
        let scopes = vec!["sso:account:access".to_owned()];
        let key = registration_cache_key(START_URL, "us-east-1", Some(&scopes), Some("my-sso"));
        assert_eq!(
            key,
            "{\"region\": \"us-east-1\", \"scopes\": [\"sso:account:access\"], \
             \"session_name\": \"my-sso\", \"startUrl\": \"https://d-123.awsapps.com/start\", \
             \"tool\": \"botocore\"}"
        );
        assert_eq!(sha1_hex(&key), "41703fba9789c2c8f9b7faa73b70bebb72c62cc9");
        let key = registration_cache_key(START_URL, "us-east-1", None, Some("my-sso"));
        assert_eq!(sha1_hex(&key), "4a61d5c0d0268ea975225ec49ec41d69c98d0633");
    }

    #[test]
    fn registration_key_escapes_like_python() {
        // Checked with Python's json.dumps(..., sort_keys=True) and hashlib.
        let key = registration_cache_key(
            "https://d-123.awsapps.com/start?q=\"é😀\\",
            "us-east-1",
            None,
            Some("naïve\n\u{1}/"),
        );
        assert_eq!(
            key,
            "{\"region\": \"us-east-1\", \"scopes\": null, \"session_name\": \
             \"na\\u00efve\\n\\u0001/\", \"startUrl\": \
             \"https://d-123.awsapps.com/start?q=\\\"\\u00e9\\ud83d\\ude00\\\\\", \
             \"tool\": \"botocore\"}"
        );
        assert_eq!(sha1_hex(&key), "2ab0b62baf910f832ab04e30705a02385a8dbe94");
    }

    #[test]
    fn timestamps_are_written_plain_and_read_leniently() {
        let at = datetime!(2030-01-02 03:04:05.678 UTC);
        assert_eq!(format_timestamp(at), "2030-01-02T03:04:05Z");
        assert_eq!(
            format_timestamp(datetime!(2030-01-02 05:04:05 +02:00)),
            "2030-01-02T03:04:05Z"
        );
        let want = datetime!(2030-01-02 03:04:05 UTC);
        for text in [
            "2030-01-02T03:04:05Z",
            "2030-01-02T03:04:05.000Z",
            "2030-01-02T03:04:05+00:00",
            "2030-01-02T05:04:05+02:00",
            "2030-01-02T03:04:05UTC",
            "2030-01-02T03:04:05 UTC",
            "2030-01-02 03:04:05Z",
            "2030-01-02T03:04:05",
        ] {
            assert_eq!(parse_timestamp(text), Some(want), "{text}");
        }
        assert_eq!(
            parse_timestamp("2030-01-02T03:04:05.123456Z"),
            Some(datetime!(2030-01-02 03:04:05.123456 UTC))
        );
        for bad in ["", "tomorrow", "2030-01-02", "2030-13-02T03:04:05Z"] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    fn token() -> SsoToken {
        SsoToken {
            access_token: Secret::new("aoa-access"),
            expires_at: datetime!(2030-01-01 01:00 UTC),
            refresh_token: Some(Secret::new("aor-refresh")),
            client_id: Some("client".into()),
            client_secret: Some(Secret::new("client-secret")),
            registration_expires_at: Some(datetime!(2030-03-01 0:00 UTC)),
            region: Some("us-east-1".into()),
            start_url: Some(START_URL.into()),
        }
    }

    #[cfg(unix)]
    #[test]
    fn store_keeps_foreign_keys_is_private_and_round_trips() {
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::tempdir().unwrap();
        let cache = SsoTokenCache::for_home(home.path());
        let path = cache.token_path("my-sso");
        fs::create_dir_all(cache.dir()).unwrap();
        fs::write(
            &path,
            r#"{"accessToken":"old","expiresAt":"2020-01-01T00:00:00UTC","receivedAt":"x"}"#,
        )
        .unwrap();
        let old = cache.load("my-sso").unwrap().unwrap();
        assert_eq!(old.expires_at, datetime!(2020-01-01 0:00 UTC));
        assert_eq!(old.refresh_token, None);

        cache.store("my-sso", &token()).unwrap();
        assert_eq!(cache.load("my-sso").unwrap(), Some(token()));
        let json: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(json["receivedAt"], "x", "unknown keys are kept");
        assert_eq!(json["expiresAt"], "2030-01-01T01:00:00Z");
        assert_eq!(json["registrationExpiresAt"], "2030-03-01T00:00:00Z");
        assert_eq!(json["refreshToken"], "aor-refresh");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);

        // A token without the optional parts drops them from the file.
        let mut bare = token();
        bare.refresh_token = None;
        bare.client_secret = None;
        cache.store("my-sso", &bare).unwrap();
        let json: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert!(json.get("refreshToken").is_none());
        assert!(json.get("clientSecret").is_none());
    }

    #[cfg(unix)]
    #[test]
    fn a_fresh_cache_directory_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::tempdir().unwrap();
        let cache = SsoTokenCache::for_home(home.path());
        cache.store(START_URL, &token()).unwrap();
        let mode = fs::metadata(cache.dir()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(
            cache
                .token_path(START_URL)
                .ends_with("2b829a45f04c9828cb45b7d092d8e4aa30818393.json")
        );
    }

    #[test]
    fn unreadable_files_are_no_token_and_get_replaced() {
        let home = tempfile::tempdir().unwrap();
        let cache = SsoTokenCache::for_home(home.path());
        assert_eq!(cache.load("my-sso").unwrap(), None);
        fs::create_dir_all(cache.dir()).unwrap();
        fs::write(cache.token_path("my-sso"), "{not json").unwrap();
        assert_eq!(cache.load("my-sso").unwrap(), None);
        fs::write(cache.token_path("my-sso"), r#"{"accessToken":"x"}"#).unwrap();
        assert_eq!(cache.load("my-sso").unwrap(), None, "no expiresAt");
        cache.store("my-sso", &token()).unwrap();
        assert_eq!(cache.load("my-sso").unwrap(), Some(token()));
    }

    #[test]
    fn expire_if_current_only_touches_that_token() {
        let home = tempfile::tempdir().unwrap();
        let cache = SsoTokenCache::for_home(home.path());
        let now = datetime!(2030-01-01 0:00 UTC);
        assert!(
            !cache
                .expire_if_current("my-sso", &Secret::new("x"), now)
                .unwrap()
        );
        cache.store("my-sso", &token()).unwrap();
        assert!(
            !cache
                .expire_if_current("my-sso", &Secret::new("other"), now)
                .unwrap()
        );
        assert!(
            cache
                .expire_if_current("my-sso", &Secret::new("aoa-access"), now)
                .unwrap()
        );
        let expired = cache.load("my-sso").unwrap().unwrap();
        assert_eq!(expired.expires_at, now);
        assert!(
            expired.can_refresh(now),
            "refresh token and registration kept"
        );
        cache.remove("my-sso").unwrap();
        cache.remove("my-sso").unwrap();
        assert_eq!(cache.load("my-sso").unwrap(), None);
    }

    #[test]
    fn reads_the_cli_registration_file() {
        let home = tempfile::tempdir().unwrap();
        let cache = SsoTokenCache::for_home(home.path());
        let scopes = vec!["sso:account:access".to_owned()];
        assert_eq!(
            cache
                .load_cli_registration(START_URL, "us-east-1", Some(&scopes), Some("my-sso"))
                .unwrap(),
            None
        );
        let path = cache.registration_path(START_URL, "us-east-1", Some(&scopes), Some("my-sso"));
        assert!(path.ends_with("41703fba9789c2c8f9b7faa73b70bebb72c62cc9.json"));
        fs::create_dir_all(cache.dir()).unwrap();
        fs::write(
            &path,
            r#"{"clientId":"cid","clientSecret":"cs","expiresAt":"2030-04-01T00:00:00Z","scopes":["sso:account:access"]}"#,
        )
        .unwrap();
        let reg = cache
            .load_cli_registration(START_URL, "us-east-1", Some(&scopes), Some("my-sso"))
            .unwrap()
            .unwrap();
        assert_eq!(reg.client_id, "cid");
        assert_eq!(reg.client_secret.expose(), "cs");
        assert_eq!(reg.expires_at, datetime!(2030-04-01 0:00 UTC));
        assert_eq!(reg.scopes, scopes);
    }
}
