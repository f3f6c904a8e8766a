//! The shared credentials file sink: `[profile]` sections in
//! `~/.aws/credentials` (and the region in `~/.aws/config`), edited without
//! losing a byte of what the user wrote.
//!
//! # What it writes
//!
//! In the credentials file (`$AWS_SHARED_CREDENTIALS_FILE`, else
//! `~/.aws/credentials`):
//!
//! ```ini
//! [dev-admin]
//! # managed-by: session-sdk session=9b2f…
//! aws_access_key_id = ASIA…
//! aws_secret_access_key = …
//! aws_session_token = …
//! ```
//!
//! and, when the target has a region, in the config file (`$AWS_CONFIG_FILE`,
//! else `~/.aws/config`) `[profile dev-admin]` (`[default]` for the profile
//! `default`) with the same marker line and `region = …`.
//!
//! # Ownership
//!
//! A section is this session's only if the line right after its header is
//! the marker naming **this** session id. Anything else with the profile's
//! name (an unmarked section, one marked for another session, and in the
//! config file also the spellings botocore treats as the same profile, like
//! `[profile "dev"]` or `[profile default]`) makes [`publish`] fail with an
//! error that names the file, the line and how to resolve it, and nothing is
//! written. [`withdraw`] removes only this session's sections.
//!
//! # How a file is edited
//!
//! For each file: resolve symlinks (the rename then replaces the target and
//! the link stays a link), create the directory (0700) if missing, take an
//! exclusive lock on the sidecar `<file>.lock` (never on the data file: the
//! rename swaps its inode), read and parse it into a line-preserving model
//! (the crate's private `sink::ini`), edit, re-parse the result (every line must read back
//! with the same meaning, and our section with exactly our values), then
//! replace the file atomically with mode 0600. A file that cannot be parsed
//! is never rewritten; a file an edit does not change is not written at all.
//! When both files are edited, both are locked (credentials first), both
//! edits are planned and checked, and only then written, so a conflict in
//! either leaves both untouched.
//!
//! Every byte outside our sections stays as it was, line endings included.
//! Our own section is replaced where it is; a new one goes at the end of the
//! file in the file's line-ending style. A file that does not end with a
//! newline still does not after the edit (the new section goes on its own
//! line and the newline moves to before it), so [`withdraw`] gives back the
//! original bytes.
//!
//! [`publish`]: CredentialSink::publish
//! [`withdraw`]: CredentialSink::withdraw

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use session_core::private_file::{self, LockError};
use session_core::{Error, Result, SessionId};
use zeroize::{Zeroize, Zeroizing};

use super::ini::{self, IniDocument, InvalidValue, Section};
use super::{CredentialSink, SinkTarget};
use crate::AwsCredentials;

/// The variable naming the credentials file.
pub const CREDENTIALS_FILE_ENV: &str = "AWS_SHARED_CREDENTIALS_FILE";
/// The variable naming the config file.
pub const CONFIG_FILE_ENV: &str = "AWS_CONFIG_FILE";
/// What the ownership marker line starts with; the session id follows.
pub const MARKER_PREFIX: &str = "# managed-by: session-sdk session=";
/// How long an edit waits for another writer's lock by default.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

const CREDENTIAL_KEYS: [&str; 3] = [
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
];
const CONFIG_KEYS: [&str; 2] = ["region", "credential_process"];

/// Publishes credentials to the shared credentials file (and the region to
/// the config file) that every AWS SDK and the AWS CLI read. See the
/// [module documentation](self) for the file format, the ownership rule and
/// how edits are made safe.
///
/// ```no_run
/// use session_aws::sink::{CredentialSink, SharedCredentialsFile};
/// # fn main() -> session_core::Result<()> {
/// let sink = SharedCredentialsFile::from_env()?;
/// println!("{}", sink.credentials_path().display());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct SharedCredentialsFile {
    credentials: PathBuf,
    config: PathBuf,
    lock_timeout: Duration,
    credential_process: Option<String>,
}

impl SharedCredentialsFile {
    /// The files the AWS tools of this process's environment read:
    /// `AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/credentials`, and
    /// `AWS_CONFIG_FILE` or `~/.aws/config`; a leading `~` is expanded.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when a path needs the home directory and
    /// neither `HOME` nor the platform knows it.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var_os(name))
    }

    /// [`from_env`](Self::from_env) with the variables given instead of read
    /// from the process (`HOME` too; without it the platform's home
    /// directory is used). Empty values count as unset.
    ///
    /// # Errors
    ///
    /// As [`from_env`](Self::from_env).
    pub fn from_env_iter(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let vars: std::collections::HashMap<String, String> = vars.into_iter().collect();
        Self::from_lookup(|name| vars.get(name).map(OsString::from))
    }

    fn from_lookup(get: impl Fn(&str) -> Option<OsString>) -> Result<Self> {
        let var = |name: &str| get(name).filter(|v| !v.is_empty());
        let home = || -> Result<PathBuf> {
            var("HOME")
                .map(PathBuf::from)
                .or_else(|| directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf()))
                .ok_or_else(|| {
                    Error::invalid_input(
                        "HOME",
                        format!(
                            "is not set and the home directory is unknown; set HOME, or set \
                             {CREDENTIALS_FILE_ENV} and {CONFIG_FILE_ENV}"
                        ),
                    )
                })
        };
        let path = |name: &str, default: &str| -> Result<PathBuf> {
            match var(name) {
                Some(value) => expand_tilde(&value, &home),
                None => Ok(home()?.join(".aws").join(default)),
            }
        };
        Ok(Self::with_paths(
            path(CREDENTIALS_FILE_ENV, "credentials")?,
            path(CONFIG_FILE_ENV, "config")?,
        ))
    }

    /// These two files, as given (no `~` expansion).
    pub fn with_paths(credentials: PathBuf, config: PathBuf) -> Self {
        Self {
            credentials,
            config,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            credential_process: None,
        }
    }

    /// How long an edit waits for another writer's lock (default
    /// [`DEFAULT_LOCK_TIMEOUT`]).
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// The credentials file (before symlinks are resolved).
    pub fn credentials_path(&self) -> &Path {
        &self.credentials
    }

    /// The config file (before symlinks are resolved).
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    fn publish_blocking(&self, target: &SinkTarget, credentials: &AwsCredentials) -> Result<()> {
        let id = target.session_id;
        let profile = target.profile.as_str();
        // Keys in the credentials file, unless the profile runs a
        // credential_process instead (then only the config file has it).
        let mut key_values = Vec::new();
        if self.credential_process.is_none() {
            key_values.push((CREDENTIAL_KEYS[0], credentials.access_key_id.as_str()));
            key_values.push((CREDENTIAL_KEYS[1], credentials.secret_access_key.expose()));
            if let Some(token) = &credentials.session_token {
                key_values.push((CREDENTIAL_KEYS[2], token.expose()));
            }
        }
        let command = self
            .credential_process
            .as_deref()
            .map(|prefix| format!("{prefix} {id}"));
        let mut config_values = Vec::new();
        if let Some(region) = target.region.as_deref() {
            config_values.push((CONFIG_KEYS[0], region));
        }
        if let Some(command) = command.as_deref() {
            config_values.push((CONFIG_KEYS[1], command));
        }
        let (credentials_path, config_path) = self.resolve_both()?;
        // Refuse bad values before any file is touched.
        let to_check = key_values
            .iter()
            .map(|v| (v, &credentials_path))
            .chain(config_values.iter().map(|v| (v, &config_path)));
        for ((key, value), path) in to_check {
            ini::check_value(key, value).map_err(|e| invalid_value(&e, path))?;
        }

        // Each file gets our section with its values, or, with no values,
        // loses our old section (a region dropped, or a switch between
        // keys and credential_process).
        let mut planned = Vec::new();
        for (path, kind, values) in [
            (credentials_path, FileKind::Credentials, &key_values),
            (config_path, FileKind::Config, &config_values),
        ] {
            if values.is_empty() && !path.exists() {
                continue;
            }
            if !values.is_empty() {
                create_dir_for(&path)?;
            }
            let mut file = Open::lock_and_read(path, kind, self.lock_timeout)?;
            let text = if values.is_empty() {
                file.withdraw(profile, id);
                file.checked_text(|doc| check_withdrawn(doc, kind, profile, id))?
            } else {
                file.publish(profile, id, values)?;
                file.checked_text(|doc| check_published(doc, kind, profile, id, values))?
            };
            planned.push((file, text));
        }
        for (file, text) in &planned {
            let changed = file.write(text.as_ref())?;
            tracing::info!(
                sink = self.name_of(),
                profile,
                session = %id,
                file = %file.path.display(),
                changed,
                "published credentials"
            );
        }
        Ok(())
    }

    fn name_of(&self) -> &'static str {
        if self.credential_process.is_some() {
            "credential-process"
        } else {
            "credentials-file"
        }
    }

    /// Publishes a profile that runs a command (`credential_process = …` in
    /// the config file) instead of writing keys to the credentials file. The
    /// command is `command_prefix` followed by the session id.
    /// `command_prefix` must be an absolute path plus arguments without shell
    /// syntax: botocore splits it like a shell and runs it without one, the
    /// Rust SDK runs it through `sh -c`; quote paths that contain spaces with
    /// double quotes.
    pub fn with_credential_process(mut self, command_prefix: impl Into<String>) -> Self {
        self.credential_process = Some(command_prefix.into());
        self
    }

    /// The command prefix of [`with_credential_process`](Self::with_credential_process), if set.
    pub fn credential_process(&self) -> Option<&str> {
        self.credential_process.as_deref()
    }

    fn withdraw_blocking(&self, target: &SinkTarget) -> Result<()> {
        let id = target.session_id;
        let profile = target.profile.as_str();
        let (credentials_path, config_path) = self.resolve_both()?;
        // Nothing to remove from a file that is not there; do not create
        // its directory or lock file either.
        let mut opened = Vec::new();
        for (path, kind) in [
            (credentials_path, FileKind::Credentials),
            (config_path, FileKind::Config),
        ] {
            if !path.exists() {
                continue;
            }
            let mut file = Open::lock_and_read(path, kind, self.lock_timeout)?;
            file.withdraw(profile, id);
            let text = file.checked_text(|doc| check_withdrawn(doc, kind, profile, id))?;
            opened.push((file, text));
        }
        for (file, text) in &opened {
            let wrote = file.write(text.as_ref())?;
            tracing::info!(
                sink = "credentials-file",
                profile,
                session = %id,
                file = %file.path.display(),
                changed = wrote,
                "withdrew credentials"
            );
        }
        Ok(())
    }

    /// Both files with symlinks resolved; they must differ.
    fn resolve_both(&self) -> Result<(PathBuf, PathBuf)> {
        let credentials = resolve_symlinks(&self.credentials)?;
        let config = resolve_symlinks(&self.config)?;
        if same_file(&credentials, &config) {
            return Err(Error::invalid_input(
                CONFIG_FILE_ENV,
                format!(
                    "the config file and the credentials file are the same file ({}); point \
                     {CONFIG_FILE_ENV} and {CREDENTIALS_FILE_ENV} at different files",
                    credentials.display()
                ),
            ));
        }
        Ok((credentials, config))
    }
}

#[async_trait::async_trait]
impl CredentialSink for SharedCredentialsFile {
    fn name(&self) -> &'static str {
        self.name_of()
    }

    async fn publish(&self, target: &SinkTarget, credentials: &AwsCredentials) -> Result<()> {
        crate::validate::profile_name(&target.profile)?;
        if target.profile == "DEFAULT" {
            return Err(Error::invalid_input(
                "profile",
                "\"DEFAULT\" is the INI defaults section, whose keys botocore applies to every \
                 profile; choose another name (\"default\" is the default profile)",
            ));
        }
        let sink = self.clone();
        let target = target.clone();
        let credentials = credentials.clone();
        blocking(&self.credentials, move || {
            sink.publish_blocking(&target, &credentials)
        })
        .await
    }

    async fn withdraw(&self, target: &SinkTarget) -> Result<()> {
        let sink = self.clone();
        let target = target.clone();
        blocking(&self.credentials, move || sink.withdraw_blocking(&target)).await
    }
}

/// Runs a file edit on the blocking pool.
async fn blocking(path: &Path, job: impl FnOnce() -> Result<()> + Send + 'static) -> Result<()> {
    tokio::task::spawn_blocking(job)
        .await
        .map_err(|e| Error::storage(path, format!("the file edit did not finish: {e}"), None))?
}

/// Which of the two files, and how it names a profile's section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileKind {
    Credentials,
    Config,
}

impl FileKind {
    fn describe(self) -> &'static str {
        match self {
            FileKind::Credentials => "AWS shared credentials file",
            FileKind::Config => "AWS config file",
        }
    }

    fn managed_keys(self) -> &'static [&'static str] {
        match self {
            FileKind::Credentials => &CREDENTIAL_KEYS,
            FileKind::Config => &CONFIG_KEYS,
        }
    }

    /// The header we write for `profile`.
    fn header(self, profile: &str) -> String {
        match self {
            FileKind::Credentials => profile.to_owned(),
            FileKind::Config if profile == "default" => "default".to_owned(),
            FileKind::Config => format!("profile {profile}"),
        }
    }

    /// Whether a section named `name` is `profile` for botocore or the Rust
    /// SDK: our header, also with whitespace around it, and in the config
    /// file any `profile …` spelling botocore splits (like a shell) into
    /// `profile` and the name, e.g. `profile "dev"` or `profile default`.
    fn names_profile(self, name: &str, profile: &str) -> bool {
        if name.trim() == self.header(profile) {
            return true;
        }
        self == FileKind::Config
            && name.starts_with("profile")
            && shell_words(name).is_some_and(|words| words.len() == 2 && words[1] == profile)
    }
}

/// `shlex.split` (POSIX mode, no comments), enough to read section names the
/// way botocore does. `None` for unbalanced quotes or a trailing `\`.
fn shell_words(text: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('"' | '\\' | '$' | '`') => word.push(c),
                            c => {
                                word.push('\\');
                                word.push(c);
                            }
                        },
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(chars.next()?);
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

/// The marker line of `session`.
fn marker(session: SessionId) -> String {
    format!("{MARKER_PREFIX}{session}")
}

/// Who a section belongs to, from the line right after its header.
#[derive(Debug, PartialEq, Eq)]
enum Owner {
    ThisSession,
    OtherSession(String),
    Unmarked,
}

fn owner(doc: &IniDocument, section: &Section, session: SessionId) -> Owner {
    let Some(comment) = doc.comment_after_header(section) else {
        return Owner::Unmarked;
    };
    let Some(id) = comment
        .strip_prefix(MARKER_PREFIX)
        .map(str::trim)
        .filter(|id| !id.is_empty())
    else {
        return Owner::Unmarked;
    };
    if id.eq_ignore_ascii_case(&session.to_string()) {
        Owner::ThisSession
    } else {
        Owner::OtherSession(id.to_owned())
    }
}

/// One file, locked and read.
struct Open {
    /// The resolved path (the target of any symlink).
    path: PathBuf,
    kind: FileKind,
    original: Option<Zeroizing<String>>,
    doc: IniDocument,
    /// Held until this is dropped.
    _lock: File,
}

impl Open {
    fn lock_and_read(path: PathBuf, kind: FileKind, timeout: Duration) -> Result<Self> {
        let lock_path = sidecar(&path);
        let lock = private_file::lock_exclusive(&lock_path, timeout).map_err(|e| match e {
            LockError::Io(e) => Error::storage(
                &path,
                format!("cannot take the lock {}", lock_path.display()),
                Some(e),
            ),
            LockError::TimedOut => Error::Timeout {
                target: format!(
                    "waiting for the lock {} (another process is editing {}; retry when it is \
                     done, the lock frees itself when that process exits)",
                    lock_path.display(),
                    path.display()
                ),
                after: timeout,
            },
        })?;
        let original = match std::fs::read(&path) {
            Ok(bytes) => Some(Zeroizing::new(String::from_utf8(bytes).map_err(|e| {
                let mut bytes = e.into_bytes();
                let error = not_utf8(&path, kind, &bytes);
                bytes.zeroize();
                error
            })?)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::storage(&path, "cannot read the file", Some(e))),
        };
        let doc =
            IniDocument::parse(original.as_deref().map_or("", String::as_str)).map_err(|e| {
                Error::Corrupt {
                    path: path.clone(),
                    kind: kind.describe().into(),
                    line: e.line,
                    column: e.column,
                    message: e.message,
                }
            })?;
        Ok(Self {
            path,
            kind,
            original,
            doc,
            _lock: lock,
        })
    }

    /// The sections that are `profile` in this file.
    fn sections_of(&self, profile: &str) -> Vec<Section> {
        self.doc
            .sections()
            .into_iter()
            .filter(|s| self.kind.names_profile(&s.name, profile))
            .collect()
    }

    /// Plans writing our section: replaced in place if ours, appended if
    /// missing, refused if anything else has the name.
    fn publish(
        &mut self,
        profile: &str,
        session: SessionId,
        values: &[(&str, &str)],
    ) -> Result<()> {
        let sections = self.sections_of(profile);
        for (index, later) in sections.iter().enumerate() {
            if let Some(first) = sections[..index].iter().find(|s| s.name == later.name) {
                return Err(self.duplicate(first, later));
            }
        }
        let owners: Vec<Owner> = sections
            .iter()
            .map(|s| owner(&self.doc, s, session))
            .collect();
        if let Some((section, owner)) = sections
            .iter()
            .zip(&owners)
            .find(|(_, o)| **o != Owner::ThisSession)
        {
            return Err(self.taken(profile, section, owner, session));
        }
        let header = self.kind.header(profile);
        let edited = match sections.as_slice() {
            [] => self
                .doc
                .append_section(&header, &[&marker(session)], values),
            [ours] => self
                .doc
                .set_keys(ours.header, self.kind.managed_keys(), values),
            [first, second, ..] => return Err(self.duplicate(first, second)),
        };
        edited.map_err(|e| invalid_value(&e, &self.path))
    }

    /// Plans removing every section of `profile` that is ours.
    fn withdraw(&mut self, profile: &str, session: SessionId) {
        let ours: Vec<Section> = self
            .sections_of(profile)
            .into_iter()
            .filter(|s| owner(&self.doc, s, session) == Owner::ThisSession)
            .collect();
        // From the last, so earlier indices stay valid.
        for section in ours.iter().rev() {
            self.doc.remove_section(section.header);
        }
    }

    /// The edited text after the round-trip check and `check` on the
    /// re-parsed document, or `None` when it equals the file (nothing to
    /// write).
    fn checked_text(
        &self,
        check: impl FnOnce(&IniDocument) -> std::result::Result<(), String>,
    ) -> Result<Option<Zeroizing<String>>> {
        let text = self.doc.render();
        let unchanged = match &self.original {
            Some(original) => original.as_str() == text.as_str(),
            None => text.is_empty(),
        };
        if unchanged {
            return Ok(None);
        }
        self.doc
            .reparse()
            .and_then(|again| check(&again))
            .map_err(|reason| {
                Error::storage(
                    &self.path,
                    format!(
                        "refusing to write the edited {}: {reason}; the file was left untouched \
                     (this is a bug in session-sdk, please report it)",
                        self.kind.describe()
                    ),
                    None,
                )
            })?;
        Ok(Some(text))
    }

    /// Writes `text` (if any) atomically with mode 0600. Returns whether it
    /// wrote.
    fn write(&self, text: Option<&Zeroizing<String>>) -> Result<bool> {
        let Some(text) = text else {
            return Ok(false);
        };
        private_file::replace_atomically(&self.path, text.as_bytes(), || {})
            .map_err(|e| Error::storage(&self.path, e.step, Some(e.error)))?;
        Ok(true)
    }

    fn duplicate(&self, first: &Section, later: &Section) -> Error {
        let what = if first.name == later.name {
            format!(
                "the section [{}] appears again (first at line {}); botocore cannot read a file \
                 with a duplicate section",
                later.name,
                first.line_number()
            )
        } else {
            format!(
                "the section [{}] names the same profile as [{}] at line {}",
                later.name,
                first.name,
                first.line_number()
            )
        };
        Error::Corrupt {
            path: self.path.clone(),
            kind: self.kind.describe().into(),
            line: later.line_number(),
            column: 1,
            message: format!(
                "{what}, and it is the profile this session needs to edit. Merge the two \
                 sections or remove one"
            ),
        }
    }

    fn taken(&self, profile: &str, section: &Section, owner: &Owner, session: SessionId) -> Error {
        let (whose, fix) = match owner {
            Owner::OtherSession(other) => (
                format!("belongs to another session-sdk session ({other})"),
                "stop that session, or rename the profile in this session's config",
            ),
            _ => (
                format!(
                    "is not managed by this session (the line after its header is not `{}`)",
                    marker(session)
                ),
                "rename the profile in this session's config, or remove that section from the \
                 file",
            ),
        };
        Error::invalid_input(
            "profile",
            format!(
                "profile {profile:?} is taken: {} line {} has a section [{}] that {whose}. \
                 Nothing was written. To resolve: {fix}",
                self.path.display(),
                section.line_number(),
                section.name
            ),
        )
    }
}

/// After a publish: exactly one section of the profile, ours, holding
/// exactly `values` (each on one line) and none of the other managed keys.
fn check_published(
    doc: &IniDocument,
    kind: FileKind,
    profile: &str,
    session: SessionId,
    values: &[(&str, &str)],
) -> std::result::Result<(), String> {
    let sections: Vec<Section> = doc
        .sections()
        .into_iter()
        .filter(|s| kind.names_profile(&s.name, profile))
        .collect();
    let [section] = sections.as_slice() else {
        return Err(format!(
            "it would have {} sections for the profile instead of one",
            sections.len()
        ));
    };
    if owner(doc, section, session) != Owner::ThisSession {
        return Err("our section would not start with our marker".into());
    }
    for key in kind.managed_keys() {
        let expected = values.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
        // Compare without printing: the values are secrets.
        if doc.value(section, key) != expected || doc.is_continued(section, key) {
            return Err(format!("{key} would not read back as written"));
        }
    }
    Ok(())
}

/// After a withdraw: no section of the profile is ours.
fn check_withdrawn(
    doc: &IniDocument,
    kind: FileKind,
    profile: &str,
    session: SessionId,
) -> std::result::Result<(), String> {
    let left = doc
        .sections()
        .into_iter()
        .filter(|s| kind.names_profile(&s.name, profile))
        .any(|s| owner(doc, &s, session) == Owner::ThisSession);
    if left {
        Err("a section of this session would remain".into())
    } else {
        Ok(())
    }
}

fn invalid_value(e: &InvalidValue, path: &Path) -> Error {
    Error::invalid_input(
        e.what.clone(),
        format!("{}; it cannot be written to {}", e.reason, path.display()),
    )
}

fn not_utf8(path: &Path, kind: FileKind, bytes: &[u8]) -> Error {
    let valid = std::str::from_utf8(bytes).map_or_else(|e| e.valid_up_to(), str::len);
    let before = &bytes[..valid];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    Error::Corrupt {
        path: path.to_path_buf(),
        kind: kind.describe().into(),
        line,
        column,
        message: "the file is not UTF-8, which botocore requires".into(),
    }
}

/// `~` and `~/…` (also `~\…` on Windows) under the home directory; other
/// values as they are.
fn expand_tilde(value: &OsStr, home: &dyn Fn() -> Result<PathBuf>) -> Result<PathBuf> {
    let Some(text) = value.to_str() else {
        return Ok(PathBuf::from(value));
    };
    if text == "~" {
        return home();
    }
    let rest = text
        .strip_prefix("~/")
        .or_else(|| text.strip_prefix("~\\").filter(|_| cfg!(windows)));
    match rest {
        Some(rest) => Ok(home()?.join(rest.trim_start_matches(['/', '\\']))),
        None => Ok(PathBuf::from(value)),
    }
}

/// Follows `path` through symlinks to the file they name (which may not
/// exist yet), so the atomic rename replaces the target and the link stays.
fn resolve_symlinks(path: &Path) -> Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = std::fs::read_link(&current)
                    .map_err(|e| Error::storage(path, "cannot read the symbolic link", Some(e)))?;
                current = if target.is_absolute() {
                    target
                } else {
                    private_file::parent_dir(&current).join(target)
                };
            }
            Ok(_) => return Ok(current),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(current),
            Err(e) => return Err(Error::storage(path, "cannot inspect the file", Some(e))),
        }
    }
    Err(Error::storage(
        path,
        "too many levels of symbolic links",
        None,
    ))
}

fn same_file(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(a), Ok(b)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return a.dev() == b.dev() && a.ino() == b.ino();
        }
    }
    false
}

/// `<file>.lock` beside `path`.
fn sidecar(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map_or_else(|| OsString::from("credentials"), OsStr::to_os_string);
    name.push(".lock");
    path.with_file_name(name)
}

fn create_dir_for(path: &Path) -> Result<()> {
    let dir = private_file::parent_dir(path);
    private_file::create_private_dir(&dir)
        .map_err(|e| Error::storage(&dir, "cannot create the directory", Some(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_core::Secret;

    /// A hand-edited credentials file: comments of both kinds, CRLF and LF
    /// lines, foreign profiles, an inline `#`, a nested (continuation) value.
    const FIXTURE: &str = "# AWS credentials, edited by hand\r\n\
        ; keep this comment\r\n\
        \r\n\
        [default]\r\n\
        aws_access_key_id = AKIADEFAULT000000001\r\n\
        aws_secret_access_key = default/secret+1 # botocore keeps this\r\n\
        \r\n\
        [work]\n\
        aws_access_key_id=AKIAWORK000000000001\n\
        aws_secret_access_key :  work+secret\n\
        # a comment inside a section\n\
        s3 =\n\
        \x20   max_concurrent_requests = 20\n\
        \x20   signature_version = s3v4\n\
        \n\
        ; about the next one\n\
        [prod]\n\
        aws_access_key_id = AKIAPROD000000000001\n\
        aws_secret_access_key = prod-secret\n";

    const CONFIG_FIXTURE: &str = "[default]\nregion = us-east-1\n\n\
        # foreign profile\n\
        [profile work]\n\
        region = us-west-2\n\
        output = json\n";

    struct Env {
        dir: tempfile::TempDir,
        sink: SharedCredentialsFile,
    }

    impl Env {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let sink = SharedCredentialsFile::from_env_iter([(
                "HOME".to_owned(),
                dir.path().to_str().unwrap().to_owned(),
            )])
            .unwrap();
            Self { dir, sink }
        }

        fn with_fixtures() -> Self {
            let env = Self::new();
            std::fs::create_dir_all(env.dir.path().join(".aws")).unwrap();
            std::fs::write(env.credentials(), FIXTURE).unwrap();
            std::fs::write(env.config(), CONFIG_FIXTURE).unwrap();
            env
        }

        fn credentials(&self) -> PathBuf {
            self.dir.path().join(".aws/credentials")
        }

        fn config(&self) -> PathBuf {
            self.dir.path().join(".aws/config")
        }

        fn read(&self, path: PathBuf) -> String {
            std::fs::read_to_string(path).unwrap()
        }
    }

    fn creds(n: u32, token: bool) -> AwsCredentials {
        AwsCredentials {
            access_key_id: format!("ASIATESTKEY{n:08}"),
            secret_access_key: Secret::new(format!("secret/{n}+abc")),
            session_token: token.then(|| Secret::new(format!("token{n}=="))),
            expiration: None,
        }
    }

    fn target(session: SessionId, profile: &str, region: Option<&str>) -> SinkTarget {
        SinkTarget {
            session_id: session,
            profile: profile.to_owned(),
            region: region.map(str::to_owned),
        }
    }

    fn section(nl: &str, header: &str, session: SessionId, keys: &[(&str, &str)]) -> String {
        let mut out = format!("[{header}]{nl}{MARKER_PREFIX}{session}{nl}");
        for (k, v) in keys {
            out.push_str(&format!("{k} = {v}{nl}"));
        }
        out
    }

    fn cred_section(nl: &str, profile: &str, session: SessionId, c: &AwsCredentials) -> String {
        let mut keys = vec![
            ("aws_access_key_id", c.access_key_id.clone()),
            (
                "aws_secret_access_key",
                c.secret_access_key.expose().to_owned(),
            ),
        ];
        if let Some(t) = &c.session_token {
            keys.push(("aws_session_token", t.expose().to_owned()));
        }
        let keys: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (*k, v.as_str())).collect();
        section(nl, profile, session, &keys)
    }

    #[cfg(unix)]
    fn inode(path: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).unwrap().ino()
    }

    #[tokio::test]
    async fn publish_keeps_foreign_bytes_and_withdraw_restores_the_file() {
        let env = Env::with_fixtures();
        let id = SessionId::new();
        let c = creds(1, true);
        let t = target(id, "dev", Some("eu-west-1"));
        env.sink.publish(&t, &c).await.unwrap();

        // Appended in the file's style (its first line ends in CRLF); every
        // byte before it is the fixture's.
        let written = env.read(env.credentials());
        assert_eq!(
            written,
            format!("{FIXTURE}{}", cred_section("\r\n", "dev", id, &c))
        );
        let config = env.read(env.config());
        assert_eq!(
            config,
            format!(
                "{CONFIG_FIXTURE}{}",
                section("\n", "profile dev", id, &[("region", "eu-west-1")])
            )
        );

        env.sink.withdraw(&t).await.unwrap();
        assert_eq!(env.read(env.credentials()), FIXTURE);
        assert_eq!(env.read(env.config()), CONFIG_FIXTURE);

        // Idempotent, and a withdraw with nothing to remove writes nothing.
        #[cfg(unix)]
        let before = (inode(&env.credentials()), inode(&env.config()));
        env.sink.withdraw(&t).await.unwrap();
        #[cfg(unix)]
        assert_eq!(before, (inode(&env.credentials()), inode(&env.config())));
        assert_eq!(env.read(env.credentials()), FIXTURE);
    }

    #[tokio::test]
    async fn rotation_replaces_the_keys_in_place() {
        let env = Env::with_fixtures();
        let id = SessionId::new();
        let t = target(id, "dev", Some("eu-west-1"));
        env.sink.publish(&t, &creds(1, true)).await.unwrap();
        // The user appends a profile after ours: ours is now in the middle.
        let tail = "\r\n# added later\r\n[later]\r\naws_access_key_id = AKIALATER00000000001\r\n";
        let mut text = env.read(env.credentials());
        text.push_str(tail);
        std::fs::write(env.credentials(), &text).unwrap();

        // New keys, no session token this time, another region.
        let rotated = creds(2, false);
        let t2 = target(id, "dev", Some("eu-central-1"));
        env.sink.publish(&t2, &rotated).await.unwrap();
        assert_eq!(
            env.read(env.credentials()),
            format!(
                "{FIXTURE}{}{tail}",
                cred_section("\r\n", "dev", id, &rotated)
            )
        );
        assert_eq!(
            env.read(env.config()),
            format!(
                "{CONFIG_FIXTURE}{}",
                section("\n", "profile dev", id, &[("region", "eu-central-1")])
            )
        );

        // A publish without a region takes our config section away.
        env.sink
            .publish(&target(id, "dev", None), &rotated)
            .await
            .unwrap();
        assert_eq!(env.read(env.config()), CONFIG_FIXTURE);

        env.sink.withdraw(&t2).await.unwrap();
        assert_eq!(env.read(env.credentials()), format!("{FIXTURE}{tail}"));
    }

    #[tokio::test]
    async fn an_unmarked_section_with_the_name_is_a_conflict_and_nothing_is_written() {
        let env = Env::with_fixtures();
        let id = SessionId::new();
        // `[work]` in the credentials file is the user's.
        let err = env
            .sink
            .publish(&target(id, "work", Some("eu-west-1")), &creds(1, true))
            .await
            .unwrap_err();
        let message = err.to_string();
        assert_eq!(err.category(), "invalid_input", "{message}");
        for needle in [
            env.credentials().display().to_string(),
            "line 8".to_owned(),
            "[work]".to_owned(),
            "rename the profile".to_owned(),
            "remove that section".to_owned(),
            "Nothing was written".to_owned(),
        ] {
            assert!(
                message.contains(&needle),
                "{needle:?} missing in: {message}"
            );
        }
        assert!(!message.contains("secret/1"), "{message}");
        assert_eq!(env.read(env.credentials()), FIXTURE);
        assert_eq!(env.read(env.config()), CONFIG_FIXTURE);

        // A conflict only in the config file leaves the credentials file
        // untouched too: `[profile work]` is there, `[work]` is not needed.
        std::fs::write(env.credentials(), "").unwrap();
        let err = env
            .sink
            .publish(&target(id, "work", Some("eu-west-1")), &creds(1, true))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("[profile work]"), "{err}");
        assert!(
            err.to_string()
                .contains(&env.config().display().to_string()),
            "{err}"
        );
        assert_eq!(env.read(env.credentials()), "");
        assert_eq!(env.read(env.config()), CONFIG_FIXTURE);

        // `[default]` in the config file is the user's too.
        let err = env
            .sink
            .publish(&target(id, "default", Some("eu-west-1")), &creds(1, true))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("[default]"), "{err}");
        assert_eq!(env.read(env.credentials()), "");
    }

    #[tokio::test]
    async fn config_spellings_botocore_reads_as_the_same_profile_conflict() {
        for existing in ["[profile \"dev\"]", "[profile  dev]", "[ profile dev ]"] {
            let env = Env::new();
            std::fs::create_dir_all(env.dir.path().join(".aws")).unwrap();
            let config = format!("{existing}\nregion = us-east-1\n");
            std::fs::write(env.config(), &config).unwrap();
            let err = env
                .sink
                .publish(
                    &target(SessionId::new(), "dev", Some("eu-west-1")),
                    &creds(1, false),
                )
                .await
                .unwrap_err();
            assert!(err.to_string().contains("is taken"), "{existing}: {err}");
            assert_eq!(env.read(env.config()), config);
            assert!(!env.credentials().exists(), "{existing}");
        }
        let env = Env::new();
        std::fs::create_dir_all(env.dir.path().join(".aws")).unwrap();
        std::fs::write(env.config(), "[profile default]\nregion = us-east-1\n").unwrap();
        let err = env
            .sink
            .publish(
                &target(SessionId::new(), "default", Some("eu-west-1")),
                &creds(1, false),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("[profile default]"), "{err}");
    }

    #[tokio::test]
    async fn a_section_marked_for_another_session_is_refused_and_left_alone() {
        let env = Env::with_fixtures();
        let (a, b) = (SessionId::new(), SessionId::new());
        env.sink
            .publish(&target(a, "dev", None), &creds(1, true))
            .await
            .unwrap();
        let after_a = env.read(env.credentials());

        let err = env
            .sink
            .publish(&target(b, "dev", None), &creds(2, true))
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(message.contains(&a.to_string()), "{message}");
        assert!(message.contains("another session-sdk session"), "{message}");
        assert_eq!(env.read(env.credentials()), after_a);

        // B's withdraw does not remove A's section.
        env.sink.withdraw(&target(b, "dev", None)).await.unwrap();
        assert_eq!(env.read(env.credentials()), after_a);
        env.sink.withdraw(&target(a, "dev", None)).await.unwrap();
        assert_eq!(env.read(env.credentials()), FIXTURE);
    }

    #[tokio::test]
    async fn a_marker_that_is_not_the_first_line_does_not_make_a_section_ours() {
        let env = Env::new();
        let id = SessionId::new();
        std::fs::create_dir_all(env.dir.path().join(".aws")).unwrap();
        let text =
            format!("[dev]\n\n{MARKER_PREFIX}{id}\naws_access_key_id = AKIAUSER00000000001\n");
        std::fs::write(env.credentials(), &text).unwrap();
        assert!(
            env.sink
                .publish(&target(id, "dev", None), &creds(1, false))
                .await
                .is_err()
        );
        env.sink.withdraw(&target(id, "dev", None)).await.unwrap();
        assert_eq!(env.read(env.credentials()), text);
    }

    #[tokio::test]
    async fn a_duplicate_of_our_section_is_refused_other_duplicates_are_left_alone() {
        let env = Env::new();
        std::fs::create_dir_all(env.dir.path().join(".aws")).unwrap();
        let text = "[dup]\nk = 1\n[other]\nk = 2\n[dup]\nk = 3\n";
        std::fs::write(env.credentials(), text).unwrap();
        let id = SessionId::new();
        let err = env
            .sink
            .publish(&target(id, "dup", None), &creds(1, false))
            .await
            .unwrap_err();
        assert_eq!(err.category(), "corrupt");
        let message = err.to_string();
        assert!(
            message.contains("line 5") && message.contains("line 1"),
            "{message}"
        );
        assert!(message.contains("[dup]"), "{message}");
        assert_eq!(env.read(env.credentials()), text);

        env.sink
            .publish(&target(id, "fine", None), &creds(1, false))
            .await
            .unwrap();
        let c = creds(1, false);
        assert_eq!(
            env.read(env.credentials()),
            format!("{text}{}", cred_section("\n", "fine", id, &c))
        );
    }

    #[tokio::test]
    async fn an_unparseable_file_is_never_rewritten() {
        for (text, line) in [
            (
                "[ok]\naws_access_key_id = AKIAOK0000000000001\nthis is not ini\n",
                3,
            ),
            ("\u{feff}[ok]\nk = v\n", 1),
            ("k = v\n[ok]\n", 1),
        ] {
            let env = Env::new();
            std::fs::create_dir_all(env.dir.path().join(".aws")).unwrap();
            std::fs::write(env.credentials(), text).unwrap();
            let id = SessionId::new();
            let err = env
                .sink
                .publish(&target(id, "dev", None), &creds(1, false))
                .await
                .unwrap_err();
            let message = err.to_string();
            assert_eq!(err.category(), "corrupt", "{message}");
            assert!(
                message.contains(&env.credentials().display().to_string()),
                "{message}"
            );
            assert!(message.contains(&format!("line {line}")), "{message}");
            let err = env
                .sink
                .withdraw(&target(id, "dev", None))
                .await
                .unwrap_err();
            assert_eq!(err.category(), "corrupt");
            assert_eq!(env.read(env.credentials()), text);
        }
        let env = Env::new();
        std::fs::create_dir_all(env.dir.path().join(".aws")).unwrap();
        std::fs::write(env.credentials(), b"[ok]\nk = \xff\n").unwrap();
        let err = env
            .sink
            .publish(&target(SessionId::new(), "dev", None), &creds(1, false))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("line 2, column 5"), "{err}");
        assert_eq!(
            std::fs::read(env.credentials()).unwrap(),
            b"[ok]\nk = \xff\n"
        );
    }

    #[tokio::test]
    async fn values_the_readers_would_misread_are_refused_without_echoing_them() {
        let env = Env::with_fixtures();
        let mut c = creds(1, true);
        c.session_token = Some(Secret::new("tok # en-CANARY"));
        let err = env
            .sink
            .publish(&target(SessionId::new(), "dev", None), &c)
            .await
            .unwrap_err();
        let message = format!("{err} {err:?}");
        assert!(message.contains("aws_session_token"), "{message}");
        assert!(!message.contains("CANARY"), "{message}");
        c.session_token = Some(Secret::new("line\nbreak-CANARY"));
        let err = env
            .sink
            .publish(&target(SessionId::new(), "dev", None), &c)
            .await
            .unwrap_err();
        assert!(!format!("{err} {err:?}").contains("CANARY"));
        assert_eq!(env.read(env.credentials()), FIXTURE);
        assert!(!format!("{:?}", env.sink).contains("secret"));

        // A bad region names the config file, where it would have gone.
        let err = env
            .sink
            .publish(
                &target(SessionId::new(), "dev", Some("eu-west-1 ;x")),
                &creds(1, false),
            )
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("invalid region"), "{message}");
        assert!(
            message.contains(&env.config().display().to_string()),
            "{message}"
        );
        assert_eq!(env.read(env.config()), CONFIG_FIXTURE);

        for bad in ["DEFAULT", "has space", "profile x", ""] {
            let err = env
                .sink
                .publish(&target(SessionId::new(), bad, None), &creds(1, false))
                .await
                .unwrap_err();
            assert_eq!(err.category(), "invalid_input", "{bad:?}");
        }
        assert_eq!(env.read(env.credentials()), FIXTURE);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn files_are_private_and_the_directory_is_created_0700() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let env = Env::new();
        let id = SessionId::new();
        env.sink
            .publish(&target(id, "default", Some("us-east-1")), &creds(1, true))
            .await
            .unwrap();
        assert_eq!(mode(&env.dir.path().join(".aws")), 0o700);
        assert_eq!(mode(&env.credentials()), 0o600);
        assert_eq!(mode(&env.config()), 0o600);
        assert_eq!(
            env.read(env.config()),
            section("\n", "default", id, &[("region", "us-east-1")])
        );

        // A world-readable existing file becomes private on the next write.
        std::fs::set_permissions(env.credentials(), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        env.sink
            .publish(&target(id, "default", Some("us-east-1")), &creds(2, true))
            .await
            .unwrap();
        assert_eq!(mode(&env.credentials()), 0o600);

        env.sink
            .withdraw(&target(id, "default", Some("us-east-1")))
            .await
            .unwrap();
        assert_eq!(env.read(env.credentials()), "");
        assert_eq!(env.read(env.config()), "");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_symlinked_file_stays_a_link_and_its_target_is_updated() {
        let env = Env::new();
        let aws = env.dir.path().join(".aws");
        let dotfiles = env.dir.path().join("dotfiles");
        std::fs::create_dir_all(&aws).unwrap();
        std::fs::create_dir_all(&dotfiles).unwrap();
        std::fs::write(dotfiles.join("credentials"), FIXTURE).unwrap();
        std::fs::write(dotfiles.join("config"), CONFIG_FIXTURE).unwrap();
        // One absolute link, one relative.
        std::os::unix::fs::symlink(dotfiles.join("credentials"), env.credentials()).unwrap();
        std::os::unix::fs::symlink("../dotfiles/config", env.config()).unwrap();

        let id = SessionId::new();
        let c = creds(1, true);
        env.sink
            .publish(&target(id, "dev", Some("eu-west-1")), &c)
            .await
            .unwrap();
        for (link, points_to) in [
            (env.credentials(), dotfiles.join("credentials")),
            (env.config(), PathBuf::from("../dotfiles/config")),
        ] {
            assert!(
                std::fs::symlink_metadata(&link)
                    .unwrap()
                    .file_type()
                    .is_symlink()
            );
            assert_eq!(std::fs::read_link(&link).unwrap(), points_to);
        }
        assert_eq!(
            env.read(dotfiles.join("credentials")),
            format!("{FIXTURE}{}", cred_section("\r\n", "dev", id, &c))
        );
        assert!(
            env.read(dotfiles.join("config"))
                .contains("[profile dev]\n")
        );
        // The lock is beside the target.
        assert!(dotfiles.join("credentials.lock").exists());

        env.sink
            .withdraw(&target(id, "dev", Some("eu-west-1")))
            .await
            .unwrap();
        assert_eq!(env.read(dotfiles.join("credentials")), FIXTURE);
        assert_eq!(env.read(dotfiles.join("config")), CONFIG_FIXTURE);
        assert!(
            std::fs::symlink_metadata(env.credentials())
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[tokio::test]
    async fn a_file_without_a_final_newline_keeps_having_none() {
        let env = Env::new();
        std::fs::create_dir_all(env.dir.path().join(".aws")).unwrap();
        let text = "[a]\naws_access_key_id = AKIAA0000000000000001";
        std::fs::write(env.credentials(), text).unwrap();
        let id = SessionId::new();
        let c = creds(1, false);
        env.sink
            .publish(&target(id, "dev", None), &c)
            .await
            .unwrap();
        let section = cred_section("\n", "dev", id, &c);
        assert_eq!(
            env.read(env.credentials()),
            format!("{text}\n{}", section.trim_end_matches('\n'))
        );
        env.sink.withdraw(&target(id, "dev", None)).await.unwrap();
        assert_eq!(env.read(env.credentials()), text);
    }

    #[tokio::test]
    async fn withdraw_with_no_files_creates_nothing() {
        let env = Env::new();
        env.sink
            .withdraw(&target(SessionId::new(), "dev", Some("eu-west-1")))
            .await
            .unwrap();
        assert!(!env.dir.path().join(".aws").exists());
        // A publish without a region does not create the config file.
        env.sink
            .publish(&target(SessionId::new(), "dev", None), &creds(1, false))
            .await
            .unwrap();
        assert!(env.credentials().exists());
        assert!(!env.config().exists());
    }

    #[tokio::test]
    async fn concurrent_publishers_lose_no_section() {
        let env = Env::with_fixtures();
        let spawn = |prefix: &'static str| {
            // Separate instances, as separate processes would have.
            let sink = SharedCredentialsFile::with_paths(env.credentials(), env.config());
            tokio::spawn(async move {
                for i in 0..20 {
                    let t = target(SessionId::new(), &format!("{prefix}{i}"), Some("eu-west-1"));
                    sink.publish(&t, &creds(i, true)).await.unwrap();
                }
            })
        };
        let (a, b) = (spawn("a"), spawn("b"));
        a.await.unwrap();
        b.await.unwrap();

        let text = env.read(env.credentials());
        assert!(text.starts_with(FIXTURE));
        let doc = IniDocument::parse(&text).unwrap();
        let config = env.read(env.config());
        let config_doc = IniDocument::parse(&config).unwrap();
        for prefix in ["a", "b"] {
            for i in 0..20 {
                let name = format!("{prefix}{i}");
                let found: Vec<Section> = doc
                    .sections()
                    .into_iter()
                    .filter(|s| s.name == name)
                    .collect();
                assert_eq!(found.len(), 1, "{name}");
                assert_eq!(
                    doc.value(&found[0], "aws_access_key_id"),
                    Some(creds(i, true).access_key_id.as_str())
                );
                let header = format!("profile {name}");
                assert_eq!(
                    config_doc
                        .sections()
                        .iter()
                        .filter(|s| s.name == header)
                        .count(),
                    1,
                    "{header}"
                );
            }
        }
        assert_eq!(doc.sections().len(), 3 + 40);
    }

    #[tokio::test]
    async fn a_held_lock_times_out_with_an_actionable_error() {
        let env = Env::with_fixtures();
        let lock = sidecar(&env.credentials());
        let _held = private_file::lock_exclusive(&lock, Duration::from_secs(1)).unwrap();
        let sink = env
            .sink
            .clone()
            .with_lock_timeout(Duration::from_millis(50));
        let err = sink
            .publish(&target(SessionId::new(), "dev", None), &creds(1, true))
            .await
            .unwrap_err();
        assert_eq!(err.category(), "timeout");
        assert!(err.is_retryable());
        assert!(
            err.to_string().contains(&lock.display().to_string()),
            "{err}"
        );
        assert_eq!(env.read(env.credentials()), FIXTURE);
    }

    #[test]
    fn paths_come_from_the_variables_with_tilde_expanded() {
        let vars = |pairs: &[(&str, &str)]| {
            SharedCredentialsFile::from_env_iter(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
            )
            .unwrap()
        };
        let sink = vars(&[("HOME", "/home/u")]);
        assert_eq!(
            sink.credentials_path(),
            Path::new("/home/u/.aws/credentials")
        );
        assert_eq!(sink.config_path(), Path::new("/home/u/.aws/config"));
        let sink = vars(&[
            ("HOME", "/home/u"),
            (CREDENTIALS_FILE_ENV, "~/x/creds"),
            (CONFIG_FILE_ENV, "/etc/aws/config"),
        ]);
        assert_eq!(sink.credentials_path(), Path::new("/home/u/x/creds"));
        assert_eq!(sink.config_path(), Path::new("/etc/aws/config"));
        let sink = vars(&[
            ("HOME", "/home/u"),
            (CREDENTIALS_FILE_ENV, ""),
            (CONFIG_FILE_ENV, "~"),
        ]);
        assert_eq!(
            sink.credentials_path(),
            Path::new("/home/u/.aws/credentials")
        );
        assert_eq!(sink.config_path(), Path::new("/home/u"));
        let sink = vars(&[
            (CREDENTIALS_FILE_ENV, "rel/creds"),
            (CONFIG_FILE_ENV, "~user/c"),
        ]);
        assert_eq!(sink.credentials_path(), Path::new("rel/creds"));
        assert_eq!(sink.config_path(), Path::new("~user/c"));
        // Without HOME the platform's home directory is used.
        if let Some(dirs) = directories::BaseDirs::new() {
            let sink = vars(&[]);
            assert_eq!(
                sink.credentials_path(),
                dirs.home_dir().join(".aws/credentials")
            );
        }
        assert_eq!(
            SharedCredentialsFile::with_paths("a".into(), "b".into()).name(),
            "credentials-file"
        );
    }

    #[tokio::test]
    async fn the_same_file_for_both_is_refused() {
        let env = Env::with_fixtures();
        let sink = SharedCredentialsFile::with_paths(env.credentials(), env.credentials());
        let err = sink
            .publish(
                &target(SessionId::new(), "dev", Some("eu-west-1")),
                &creds(1, true),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains(CONFIG_FILE_ENV), "{err}");
        assert_eq!(env.read(env.credentials()), FIXTURE);
    }

    #[test]
    fn shell_words_split_like_shlex() {
        let split = |s: &str| shell_words(s).map(|w| w.join("|"));
        assert_eq!(split("profile dev").as_deref(), Some("profile|dev"));
        assert_eq!(split("profile  \"d e\"").as_deref(), Some("profile|d e"));
        assert_eq!(split("profile 'x'y").as_deref(), Some("profile|xy"));
        assert_eq!(split("profile \"unbalanced"), None);
        assert_eq!(split("a\\ b").as_deref(), Some("a b"));
        assert!(FileKind::Config.names_profile("profile \"dev\"", "dev"));
        assert!(FileKind::Config.names_profile("profile default", "default"));
        assert!(!FileKind::Config.names_profile("profiledev", "dev"));
        assert!(!FileKind::Credentials.names_profile("profile dev", "dev"));
        assert!(FileKind::Credentials.names_profile(" dev ", "dev"));
    }
}
