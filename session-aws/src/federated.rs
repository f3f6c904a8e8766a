//! `awsIamRoleFederated`: a role assumed with a SAML assertion
//! (`sts:AssumeRoleWithSAML`, unsigned).
//!
//! The assertion (the base64 `SAMLResponse` an identity provider POSTs to
//! `https://signin.aws.amazon.com/saml`) comes from a [`SamlAssertionSource`]:
//! the embedding application supplies a browser-backed one; this module ships
//! [`FileSamlSource`] and [`CommandSamlSource`]. The assertion is a bearer
//! credential: it is kept in a [`Secret`] and never logged, printed or quoted
//! in an error.
//!
//! ```
//! use session_aws::federated::{AssertionSourceConfig, FederatedRoleConfig};
//! let config = FederatedRoleConfig::new(
//!     "arn:aws:iam::111122223333:role/Federated",
//!     "arn:aws:iam::111122223333:saml-provider/MyIdP",
//! )
//! .with_duration_seconds(7200)
//! .with_assertion_source(AssertionSourceConfig::command("saml-login", ["--idp", "corp"]));
//! config.validate()?;
//! assert_eq!(
//!     serde_json::to_value(&config).unwrap()["assertionSource"]["type"],
//!     "command"
//! );
//! # Ok::<(), session_core::Error>(())
//! ```

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use serde::{Deserialize, Serialize};
use session_core::{ActionContext, Capabilities, Error, Result, Secret, Session, SessionType};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroizing;

use crate::publish::from_sts;
use crate::sink::{CredentialSink, NoSink};
use crate::{AwsClientConfig, AwsCredentials, error, validate};

/// The SAML attribute names AWS reads.
pub mod attributes {
    /// `roleArn,providerArn` pairs (either order), one per value.
    pub const ROLE: &str = "https://aws.amazon.com/SAML/Attributes/Role";
    /// The `RoleSessionName` of the assumed role (required).
    pub const ROLE_SESSION_NAME: &str = "https://aws.amazon.com/SAML/Attributes/RoleSessionName";
    /// The session lifetime in seconds, 900–43200 (optional).
    pub const SESSION_DURATION: &str = "https://aws.amazon.com/SAML/Attributes/SessionDuration";
}

/// `AssumeRoleWithSAML` accepts 900 s up to the role's maximum (at most 12 h).
const DURATION: (u32, u32) = (900, 43_200);

/// The lifetime when neither the config nor the assertion sets one.
const DEFAULT_DURATION: u32 = 3600;

/// How long a [`CommandSamlSource`] may run by default.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// How much of a failed command's stderr goes into the error.
const STDERR_LIMIT: usize = 2000;

const SAML_ASSERTION_NS: &[u8] = b"urn:oasis:names:tc:SAML:2.0:assertion";
const SAML_PROTOCOL_NS: &[u8] = b"urn:oasis:names:tc:SAML:2.0:protocol";

/// The field name of errors about the assertion's content.
const ASSERTION_FIELD: &str = "SAML assertion";

// ---------------------------------------------------------------------------
// Sources
// ---------------------------------------------------------------------------

/// Where SAML assertions come from: an IdP sign-in in a browser or webview
/// (supplied by the embedding application), a file, a helper program.
///
/// Called on every `start` and `rotate`; each call should return a fresh
/// assertion (IdPs make them valid for a few minutes only).
#[async_trait::async_trait]
pub trait SamlAssertionSource: Send + Sync + fmt::Debug {
    /// The base64 `SAMLResponse` for `session`. It is a bearer credential:
    /// never log or print it. Errors name the session
    /// ([`Session::label`]).
    async fn assertion(&self, session: &Session) -> Result<Secret>;
}

/// Turns what a file or program produced into the base64 `SAMLResponse`:
/// raw XML (starting with `<`) is base64-encoded; base64 loses its
/// whitespace (line wrapping) and, if it was copied from a form body, its
/// percent-encoding.
fn normalize_assertion(text: &str, label: &str, what: &str) -> Result<Secret> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::invalid_input(
            ASSERTION_FIELD,
            format!("{label}: {what} is empty"),
        ));
    }
    if text.starts_with('<') {
        return Ok(Secret::new(BASE64.encode(text.as_bytes())));
    }
    let compact: Zeroizing<String> =
        Zeroizing::new(text.chars().filter(|c| !c.is_ascii_whitespace()).collect());
    if compact.contains('%') {
        return Ok(Secret::new(percent_decode(&compact)));
    }
    Ok(Secret::new(compact.as_str()))
}

/// Decodes `%XX` escapes; anything else is kept as it is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = bytes.get(i + 1..i + 3)
            && let Ok(hex) = std::str::from_utf8(hex)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads the assertion from a file: base64 (as POSTed by the IdP, possibly
/// line-wrapped or percent-encoded) or the raw `samlp:Response` XML, which it
/// base64-encodes. Surrounding whitespace is ignored.
///
/// Useful with tools that save the `SAMLResponse` (browser extensions,
/// `saml2aws`-style helpers) and in tests. The file holds a bearer
/// credential: keep it private and short-lived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSamlSource {
    path: PathBuf,
}

impl FileSamlSource {
    /// A source reading `path` on every call.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The file read.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

#[async_trait::async_trait]
impl SamlAssertionSource for FileSamlSource {
    async fn assertion(&self, session: &Session) -> Result<Secret> {
        let label = session.label();
        let bytes = Zeroizing::new(tokio::fs::read(&self.path).await.map_err(|e| {
            Error::storage(
                &self.path,
                format!("{label}: cannot read the SAML assertion file"),
                Some(e),
            )
        })?);
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            Error::invalid_input(
                ASSERTION_FIELD,
                format!(
                    "{label}: {} is not UTF-8 text (expected base64 or SAML XML)",
                    self.path.display()
                ),
            )
        })?;
        normalize_assertion(text, &label, &format!("{}", self.path.display()))
    }
}

/// Runs a helper program (directly, no shell) and takes its standard output
/// as the assertion (base64 or raw XML, as [`FileSamlSource`] accepts).
///
/// A non-zero exit is an error that shows the end of the program's standard
/// error; a program still running after the timeout (default
/// [`DEFAULT_COMMAND_TIMEOUT`]) is killed. Standard input is closed, so the
/// program cannot prompt on it; one that opens a browser works.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandSamlSource {
    program: String,
    args: Vec<String>,
    timeout: Duration,
}

impl CommandSamlSource {
    /// A source running `program` (looked up in `PATH` unless it contains a
    /// `/`) with `args`.
    pub fn new(
        program: impl Into<String>,
        args: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            timeout: DEFAULT_COMMAND_TIMEOUT,
        }
    }

    /// How long the program may run before it is killed.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The program run.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// Its arguments.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// Its timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

#[async_trait::async_trait]
impl SamlAssertionSource for CommandSamlSource {
    async fn assertion(&self, session: &Session) -> Result<Secret> {
        let label = session.label();
        let program = &self.program;
        let child = tokio::process::Command::new(program)
            .args(&self.args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                Error::invalid_input(
                    "assertionSource",
                    format!("{label}: cannot run the SAML assertion command {program:?}: {e}"),
                )
            })?;
        // On timeout the future, and with it the child, is dropped:
        // `kill_on_drop` kills it.
        let output = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| Error::Timeout {
                target: format!("{label}: SAML assertion command {program:?} (killed)"),
                after: self.timeout,
            })?
            .map_err(|e| {
                Error::provider(
                    "saml-command",
                    &label,
                    format!("{program:?}: cannot read its output: {e}"),
                )
            })?;
        let stdout = Zeroizing::new(output.stdout);
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let stderr = stderr.trim();
            let tail = match stderr.char_indices().rev().nth(STDERR_LIMIT) {
                Some((at, _)) => format!("…{}", &stderr[at..]),
                None => stderr.to_owned(),
            };
            return Err(Error::provider(
                "saml-command",
                &label,
                format!(
                    "{program:?} failed ({}){}",
                    output.status,
                    if tail.is_empty() {
                        " with no error output".to_owned()
                    } else {
                        format!(": {tail}")
                    }
                ),
            ));
        }
        let text = std::str::from_utf8(&stdout).map_err(|_| {
            Error::invalid_input(
                ASSERTION_FIELD,
                format!(
                    "{label}: the output of {program:?} is not UTF-8 text (expected base64 or SAML XML)"
                ),
            )
        })?;
        normalize_assertion(text, &label, &format!("the output of {program:?}"))
    }
}

/// The source of providers built without one: every call fails, saying how
/// to configure one.
#[derive(Debug)]
struct MissingSource;

#[async_trait::async_trait]
impl SamlAssertionSource for MissingSource {
    async fn assertion(&self, session: &Session) -> Result<Secret> {
        Err(Error::invalid_input(
            "assertionSource",
            format!(
                "{}: no SAML assertion source: set assertionSource in the session's config, \
                 or give the provider one",
                session.label()
            ),
        ))
    }
}

/// A [`SamlAssertionSource`] named in a session's config
/// ([`FederatedRoleConfig::assertion_source`]), as JSON
/// `{"type":"file","path":…}` or
/// `{"type":"command","program":…,"args":[…],"timeoutSeconds":…}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
#[non_exhaustive]
pub enum AssertionSourceConfig {
    /// A [`FileSamlSource`].
    File {
        /// The file holding the assertion.
        path: PathBuf,
    },
    /// A [`CommandSamlSource`].
    Command {
        /// The program (no shell).
        program: String,
        /// Its arguments.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        args: Vec<String>,
        /// Default 120.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_seconds: Option<u64>,
    },
}

impl AssertionSourceConfig {
    /// A file source.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self::File { path: path.into() }
    }

    /// A command source with the default timeout.
    pub fn command(
        program: impl Into<String>,
        args: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self::Command {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            timeout_seconds: None,
        }
    }

    /// Checks the fields.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::File { path } if path.as_os_str().is_empty() => Err(Error::invalid_input(
                "assertionSource.path",
                "must not be empty",
            )),
            Self::Command { program, .. } if program.trim().is_empty() => Err(
                Error::invalid_input("assertionSource.program", "must not be empty"),
            ),
            Self::Command {
                timeout_seconds: Some(0),
                ..
            } => Err(Error::invalid_input(
                "assertionSource.timeoutSeconds",
                "must be at least 1",
            )),
            _ => Ok(()),
        }
    }

    /// The source this describes.
    pub fn build(&self) -> Arc<dyn SamlAssertionSource> {
        match self {
            Self::File { path } => Arc::new(FileSamlSource::new(path.clone())),
            Self::Command {
                program,
                args,
                timeout_seconds,
            } => {
                let mut source = CommandSamlSource::new(program.clone(), args.iter().cloned());
                if let Some(seconds) = timeout_seconds {
                    source = source.with_timeout(Duration::from_secs(*seconds));
                }
                Arc::new(source)
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The assertion
// ---------------------------------------------------------------------------

/// One `roleArn,providerArn` pair of the assertion's `Role` attribute.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SamlRole {
    /// The role, `arn:aws:iam::<account>:role/<name>`.
    pub role_arn: String,
    /// The SAML provider, `arn:aws:iam::<account>:saml-provider/<name>`.
    pub principal_arn: String,
}

impl fmt::Display for SamlRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (via {})", self.role_arn, self.principal_arn)
    }
}

/// What AWS reads from a SAML response, parsed locally to pick and check the
/// role before calling STS. No signature is checked here (STS does that).
///
/// The struct holds no part of the assertion that grants access: only the
/// roles, session name and times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SamlAssertion {
    roles: Vec<SamlRole>,
    malformed_roles: Vec<String>,
    role_session_name: String,
    session_duration: Option<u32>,
    not_on_or_after: Option<OffsetDateTime>,
    session_not_on_or_after: Option<OffsetDateTime>,
}

fn bad(reason: impl Into<String>) -> Error {
    Error::invalid_input(ASSERTION_FIELD, reason)
}

/// Whether an element is in the SAML namespace `ns`, or in none (lenient
/// for hand-written assertions).
fn in_ns(resolved: &ResolveResult<'_>, ns: &[u8]) -> bool {
    match resolved {
        ResolveResult::Bound(Namespace(bound)) => *bound == ns,
        ResolveResult::Unbound => true,
        ResolveResult::Unknown(_) => false,
    }
}

/// The elements whose position matters, in the SAML assertion namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
    Assertion,
    AttributeStatement,
    Attribute,
    AttributeValue,
    Other,
}

/// Collects attribute values while walking the document.
#[derive(Default)]
struct Walk {
    /// The open elements.
    stack: Vec<Tag>,
    root_seen: bool,
    assertions: usize,
    encrypted: bool,
    /// `(Name, values)` of each `Attribute` under an `AttributeStatement`.
    attributes: Vec<(String, Vec<String>)>,
    /// The text of the open `AttributeValue`.
    value: Option<String>,
    not_on_or_after: Option<OffsetDateTime>,
    session_not_on_or_after: Option<OffsetDateTime>,
}

impl Walk {
    fn inside(&self, tag: Tag) -> bool {
        self.stack.contains(&tag)
    }

    fn parent(&self) -> Option<Tag> {
        self.stack.last().copied()
    }

    /// Handles a start (or empty) element; returns its tag.
    fn open(
        &mut self,
        resolved: &ResolveResult<'_>,
        element: &BytesStart<'_>,
        decoder: quick_xml::encoding::Decoder,
    ) -> Result<Tag> {
        let local = element.local_name();
        let local = local.as_ref();
        if !self.root_seen {
            self.root_seen = true;
            if local != b"Response" || !in_ns(resolved, SAML_PROTOCOL_NS) {
                return Err(bad(
                    "the document is not a SAML 2.0 response (its root element is not samlp:Response)",
                ));
            }
        }
        let saml = in_ns(resolved, SAML_ASSERTION_NS);
        let tag = match local {
            b"Assertion" if saml => {
                self.assertions += 1;
                Tag::Assertion
            }
            b"EncryptedAssertion" => {
                self.encrypted = true;
                Tag::Other
            }
            b"AttributeStatement" if saml && self.parent() == Some(Tag::Assertion) => {
                Tag::AttributeStatement
            }
            b"Attribute" if saml && self.parent() == Some(Tag::AttributeStatement) => {
                let name = attribute(element, b"Name", decoder)?.unwrap_or_default();
                self.attributes.push((name, Vec::new()));
                Tag::Attribute
            }
            b"AttributeValue" if saml && self.parent() == Some(Tag::Attribute) => {
                self.value = Some(String::new());
                Tag::AttributeValue
            }
            b"SubjectConfirmationData" | b"Conditions" if saml && self.inside(Tag::Assertion) => {
                if let Some(at) = time_attribute(element, b"NotOnOrAfter", decoder)? {
                    self.not_on_or_after = Some(earliest(self.not_on_or_after, at));
                }
                Tag::Other
            }
            b"AuthnStatement" if saml && self.inside(Tag::Assertion) => {
                if let Some(at) = time_attribute(element, b"SessionNotOnOrAfter", decoder)? {
                    self.session_not_on_or_after = Some(earliest(self.session_not_on_or_after, at));
                }
                Tag::Other
            }
            _ => Tag::Other,
        };
        Ok(tag)
    }

    fn close(&mut self, tag: Tag) {
        if tag == Tag::AttributeValue
            && let (Some(value), Some((_, values))) =
                (self.value.take(), self.attributes.last_mut())
        {
            values.push(value);
        }
    }

    fn text(&mut self, text: &str) {
        if let Some(value) = &mut self.value {
            value.push_str(text);
        }
    }
}

fn earliest(current: Option<OffsetDateTime>, new: OffsetDateTime) -> OffsetDateTime {
    current.map_or(new, |c| c.min(new))
}

/// The unescaped value of the attribute `name` (by local name).
fn attribute(
    element: &BytesStart<'_>,
    name: &[u8],
    decoder: quick_xml::encoding::Decoder,
) -> Result<Option<String>> {
    for attr in element.attributes() {
        let attr = attr.map_err(|e| bad(format!("malformed XML attribute: {e}")))?;
        if attr.key.local_name().as_ref() == name {
            let value = attr.decode_and_unescape_value(decoder).map_err(|_| {
                bad(format!(
                    "the {} attribute has an invalid value",
                    String::from_utf8_lossy(name)
                ))
            })?;
            return Ok(Some(value.into_owned()));
        }
    }
    Ok(None)
}

fn time_attribute(
    element: &BytesStart<'_>,
    name: &[u8],
    decoder: quick_xml::encoding::Decoder,
) -> Result<Option<OffsetDateTime>> {
    let Some(text) = attribute(element, name, decoder)? else {
        return Ok(None);
    };
    OffsetDateTime::parse(text.trim(), &Rfc3339)
        .map(Some)
        .map_err(|_| {
            bad(format!(
                "{} of {} is not an RFC 3339 time",
                String::from_utf8_lossy(name),
                String::from_utf8_lossy(element.local_name().as_ref())
            ))
        })
}

/// Why a `Role` value is not a `roleArn,providerArn` pair (without quoting it).
fn parse_role(value: &str) -> std::result::Result<SamlRole, &'static str> {
    let parts: Vec<&str> = value.split(',').map(str::trim).collect();
    let [a, b] = parts.as_slice() else {
        return Err("needs exactly one role ARN and one SAML provider ARN, separated by a comma");
    };
    let (role, provider) = if a.contains(":role/") {
        (*a, *b)
    } else {
        (*b, *a)
    };
    if validate::role_arn("roleArn", role).is_err() {
        return Err("has no valid IAM role ARN (arn:aws:iam::<account>:role/<name>)");
    }
    if validate::saml_provider_arn("principalArn", provider).is_err() {
        return Err("has no valid SAML provider ARN (arn:aws:iam::<account>:saml-provider/<name>)");
    }
    Ok(SamlRole {
        role_arn: role.to_owned(),
        principal_arn: provider.to_owned(),
    })
}

impl SamlAssertion {
    /// Parses the base64 `SAMLResponse` (whitespace inside the base64 is
    /// ignored).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] (field `SAML assertion`) saying what is wrong:
    /// not base64, not XML, not a SAML 2.0 response, encrypted, no `Role`
    /// or `RoleSessionName` attribute, no valid role pair, a bad
    /// `SessionDuration` or time. Errors never quote the assertion.
    pub fn parse(b64: &Secret) -> Result<Self> {
        let compact: Zeroizing<Vec<u8>> = Zeroizing::new(
            b64.expose()
                .bytes()
                .filter(|b| !b.is_ascii_whitespace())
                .collect(),
        );
        if compact.is_empty() {
            return Err(bad("it is empty"));
        }
        let decoded = Zeroizing::new(
            BASE64
                .decode(compact.as_slice())
                .map_err(|_| bad("it is not base64 (expected the base64 SAMLResponse)"))?,
        );
        let xml = std::str::from_utf8(&decoded)
            .map_err(|_| bad("the decoded assertion is not UTF-8 text"))?;
        let walk = Self::walk(xml)?;
        Self::from_walk(walk)
    }

    fn walk(xml: &str) -> Result<Walk> {
        let mut reader = quick_xml::NsReader::from_str(xml);
        let decoder = reader.decoder();
        let mut walk = Walk::default();
        loop {
            let position = reader.buffer_position();
            let (resolved, event) = reader.read_resolved_event().map_err(|e| {
                let what = match e {
                    quick_xml::Error::Syntax(e) => e.to_string(),
                    quick_xml::Error::IllFormed(e) => e.to_string(),
                    _ => "unreadable".to_owned(),
                };
                bad(format!(
                    "the decoded assertion is not well-formed XML near byte {position}: {what}"
                ))
            })?;
            match event {
                Event::Start(element) => {
                    let tag = walk.open(&resolved, &element, decoder)?;
                    walk.stack.push(tag);
                }
                Event::Empty(element) => {
                    let tag = walk.open(&resolved, &element, decoder)?;
                    walk.close(tag);
                }
                Event::End(_) => {
                    if let Some(tag) = walk.stack.pop() {
                        walk.close(tag);
                    }
                }
                Event::Text(text) => {
                    let text = text
                        .xml10_content()
                        .map_err(|_| bad("the decoded assertion has undecodable text"))?;
                    walk.text(&text);
                }
                Event::CData(data) => {
                    let text = data
                        .decode()
                        .map_err(|_| bad("the decoded assertion has undecodable text"))?;
                    walk.text(&text);
                }
                Event::GeneralRef(reference) => {
                    let text: Cow<'_, str> = match reference.resolve_char_ref() {
                        Ok(Some(c)) => Cow::Owned(c.to_string()),
                        Ok(None) => {
                            let name = reference
                                .decode()
                                .map_err(|_| bad("the decoded assertion has an invalid entity"))?;
                            Cow::Borrowed(quick_xml::escape::resolve_xml_entity(&name).ok_or_else(
                                || bad("the decoded assertion uses an undefined XML entity"),
                            )?)
                        }
                        Err(_) => {
                            return Err(bad(
                                "the decoded assertion has an invalid character reference",
                            ));
                        }
                    };
                    walk.text(&text);
                }
                Event::DocType(_) => {
                    return Err(bad(
                        "the decoded assertion has a DOCTYPE, which SAML forbids",
                    ));
                }
                Event::Eof => break,
                Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
            }
        }
        if !walk.root_seen {
            return Err(bad(
                "the decoded assertion is not XML (expected a samlp:Response)",
            ));
        }
        if walk.assertions == 0 {
            return Err(bad(if walk.encrypted {
                "the assertion is encrypted (EncryptedAssertion), so its roles cannot be read \
                 locally; ask the IdP administrator for an unencrypted assertion"
            } else {
                "the SAML response holds no saml:Assertion (did the IdP sign-in fail?)"
            }));
        }
        Ok(walk)
    }

    fn from_walk(walk: Walk) -> Result<Self> {
        let values = |name: &str| -> Vec<&String> {
            walk.attributes
                .iter()
                .filter(|(n, _)| n == name)
                .flat_map(|(_, values)| values)
                .collect()
        };
        let role_values = values(attributes::ROLE);
        if role_values.is_empty() {
            return Err(bad(format!(
                "it has no {} attribute: the IdP grants no AWS role",
                attributes::ROLE
            )));
        }
        let mut roles: Vec<SamlRole> = Vec::new();
        let mut malformed = Vec::new();
        for (index, value) in role_values.iter().enumerate() {
            match parse_role(value) {
                Ok(role) => {
                    if !roles.contains(&role) {
                        roles.push(role);
                    }
                }
                Err(why) => malformed.push(format!("Role value {}: {why}", index + 1)),
            }
        }
        if roles.is_empty() {
            return Err(bad(format!(
                "no valid roleArn,providerArn pair in the Role attribute: {}",
                malformed.join("; ")
            )));
        }
        let role_session_name = values(attributes::ROLE_SESSION_NAME)
            .first()
            .map(|v| v.trim().to_owned())
            .ok_or_else(|| {
                bad(format!(
                    "it has no {} attribute, which AWS requires",
                    attributes::ROLE_SESSION_NAME
                ))
            })?;
        if validate::role_session_name(&role_session_name).is_err() {
            return Err(bad(
                "its RoleSessionName attribute must be 2-64 characters from A-Z a-z 0-9 _ + = , . @ -",
            ));
        }
        let session_duration = match values(attributes::SESSION_DURATION).first() {
            None => None,
            Some(text) => {
                let seconds = text
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|s| (DURATION.0..=DURATION.1).contains(s))
                    .ok_or_else(|| {
                        bad(format!(
                            "its SessionDuration attribute must be a number of seconds in {}-{}",
                            DURATION.0, DURATION.1
                        ))
                    })?;
                Some(seconds)
            }
        };
        Ok(Self {
            roles,
            malformed_roles: malformed,
            role_session_name,
            session_duration,
            not_on_or_after: walk.not_on_or_after,
            session_not_on_or_after: walk.session_not_on_or_after,
        })
    }

    /// The valid `roleArn,providerArn` pairs of the `Role` attribute, in
    /// order, without duplicates.
    pub fn roles(&self) -> &[SamlRole] {
        &self.roles
    }

    /// Why each malformed `Role` value was skipped, e.g. `Role value 2:
    /// needs exactly one role ARN and one SAML provider ARN…`.
    pub fn malformed_roles(&self) -> &[String] {
        &self.malformed_roles
    }

    /// Whether the assertion grants `role_arn` through `principal_arn`.
    pub fn grants(&self, role_arn: &str, principal_arn: &str) -> bool {
        self.roles
            .iter()
            .any(|r| r.role_arn == role_arn && r.principal_arn == principal_arn)
    }

    /// The `RoleSessionName` attribute (validated).
    pub fn role_session_name(&self) -> &str {
        &self.role_session_name
    }

    /// The `SessionDuration` attribute in seconds (900–43200), if present.
    pub fn session_duration(&self) -> Option<u32> {
        self.session_duration
    }

    /// Until when the assertion may be presented: the earliest `NotOnOrAfter`
    /// of `SubjectConfirmationData` and `Conditions` (typically minutes after
    /// the sign-in).
    pub fn not_on_or_after(&self) -> Option<OffsetDateTime> {
        self.not_on_or_after
    }

    /// The `SessionNotOnOrAfter` of the `AuthnStatement`: the IdP session's
    /// end, which also ends the AWS session.
    pub fn session_not_on_or_after(&self) -> Option<OffsetDateTime> {
        self.session_not_on_or_after
    }
}

// ---------------------------------------------------------------------------
// Config and provider
// ---------------------------------------------------------------------------

/// The settings of an `awsIamRoleFederated` session, in its `config`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FederatedRoleConfig {
    /// The role to assume; the assertion must grant it.
    pub role_arn: String,
    /// The IAM SAML provider (`PrincipalArn`) paired with the role in the
    /// assertion.
    pub principal_arn: String,
    /// 900–43200 s (at most the role's maximum). Unset: the assertion's
    /// `SessionDuration`, else 3600. Either way the session ends no later
    /// than the assertion's `SessionNotOnOrAfter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u32>,
    /// Where assertions come from for this session; unset: the provider's
    /// source ([`FederatedRoleProvider::with_source`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assertion_source: Option<AssertionSourceConfig>,
}

impl FederatedRoleConfig {
    /// A config assuming `role_arn` through the SAML provider `principal_arn`.
    pub fn new(role_arn: impl Into<String>, principal_arn: impl Into<String>) -> Self {
        Self {
            role_arn: role_arn.into(),
            principal_arn: principal_arn.into(),
            ..Self::default()
        }
    }

    /// Sets [`duration_seconds`](Self::duration_seconds).
    pub fn with_duration_seconds(mut self, seconds: u32) -> Self {
        self.duration_seconds = Some(seconds);
        self
    }

    /// Sets [`assertion_source`](Self::assertion_source).
    pub fn with_assertion_source(mut self, source: AssertionSourceConfig) -> Self {
        self.assertion_source = Some(source);
        self
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        validate::role_arn("roleArn", &self.role_arn)?;
        validate::saml_provider_arn("principalArn", &self.principal_arn)?;
        if let Some(seconds) = self.duration_seconds {
            validate::duration_seconds("durationSeconds", seconds, DURATION.0, DURATION.1)?;
        }
        if let Some(source) = &self.assertion_source {
            source.validate()?;
        }
        Ok(())
    }
}

/// The `DurationSeconds` to ask for: the config's, else the assertion's
/// `SessionDuration`, else 3600; no later than `SessionNotOnOrAfter` (but at
/// least the 900 s STS accepts: STS itself ends the session there).
fn duration_for(
    config: &FederatedRoleConfig,
    assertion: &SamlAssertion,
    now: OffsetDateTime,
    label: &str,
) -> Result<u32> {
    let mut seconds = config
        .duration_seconds
        .or(assertion.session_duration())
        .unwrap_or(DEFAULT_DURATION);
    if let Some(end) = assertion.session_not_on_or_after() {
        let left = (end - now).whole_seconds();
        if left <= 0 {
            return Err(Error::Unauthenticated {
                target: label.to_owned(),
                message: format!(
                    "the IdP session ended at {} (SessionNotOnOrAfter); sign in again",
                    end.format(&Rfc3339).unwrap_or_else(|_| end.to_string())
                ),
            });
        }
        let left = u32::try_from(left).unwrap_or(u32::MAX);
        seconds = seconds.min(left.max(DURATION.0));
    }
    Ok(seconds)
}

/// The provider of `awsIamRoleFederated` sessions.
///
/// - **start**: gets an assertion from the session's `assertionSource` (else
///   the provider's source), checks that it grants the configured
///   `roleArn`/`principalArn` pair (else an input error listing the roles it
///   grants), then calls `AssumeRoleWithSAML` (unsigned) for the config's
///   duration, the assertion's `SessionDuration` or 3600 s, capped by
///   `SessionNotOnOrAfter`; the credentials are stored and published to the
///   sink.
/// - **rotate**: the same with a fresh assertion (an IdP round-trip, so a
///   browser source may show a sign-in); the sink entry is replaced in one
///   write.
/// - **stop**: withdraws the sink entry and forgets the credentials (STS
///   credentials cannot be revoked; they stay valid until they expire).
#[derive(Debug, Clone)]
pub struct FederatedRoleProvider {
    client: AwsClientConfig,
    sink: Arc<dyn CredentialSink>,
    source: Arc<dyn SamlAssertionSource>,
}

impl FederatedRoleProvider {
    /// A provider that publishes to `sink`. Sessions without an
    /// `assertionSource` fail until [`with_source`](Self::with_source) is
    /// called.
    pub fn new(client: AwsClientConfig, sink: Arc<dyn CredentialSink>) -> Self {
        Self {
            client,
            sink,
            source: Arc::new(MissingSource),
        }
    }

    /// A provider that publishes nowhere (secret store only).
    pub fn without_sink(client: AwsClientConfig) -> Self {
        Self::new(client, Arc::new(NoSink))
    }

    /// The source for sessions whose config names none (typically the
    /// application's browser sign-in).
    pub fn with_source(mut self, source: Arc<dyn SamlAssertionSource>) -> Self {
        self.source = source;
        self
    }

    async fn issue(&self, ctx: &ActionContext, session: &Session) -> Result<AwsCredentials> {
        let label = session.label();
        let config: FederatedRoleConfig = session.config.get().map_err(|e| e.in_session(&label))?;
        config.validate().map_err(|e| e.in_session(&label))?;
        let source = match &config.assertion_source {
            Some(source) => source.build(),
            None => self.source.clone(),
        };
        let b64 = source.assertion(session).await?;
        let assertion = SamlAssertion::parse(&b64).map_err(|e| e.in_session(&label))?;
        if !assertion.grants(&config.role_arn, &config.principal_arn) {
            let granted: Vec<String> = assertion.roles().iter().map(ToString::to_string).collect();
            let mut reason = format!(
                "{label}: the SAML assertion does not grant {} via {}; it grants: {}",
                config.role_arn,
                config.principal_arn,
                granted.join(", ")
            );
            if !assertion.malformed_roles().is_empty() {
                reason.push_str(&format!(
                    " (skipped: {})",
                    assertion.malformed_roles().join("; ")
                ));
            }
            return Err(Error::invalid_input("roleArn", reason));
        }
        let seconds = duration_for(&config, &assertion, ctx.clock.now(), &label)?;
        let region = self.client.region_for(session.region.as_deref());
        let output = self
            .client
            .sts(&region, None)
            .assume_role_with_saml()
            .role_arn(&config.role_arn)
            .principal_arn(&config.principal_arn)
            .saml_assertion(b64.expose().to_owned())
            .duration_seconds(seconds as i32)
            .send()
            .await
            .map_err(|e| error::from_sdk("AssumeRoleWithSAML", &label, e))?;
        let creds = output.credentials().ok_or_else(|| {
            Error::provider(
                "aws-sts",
                &label,
                "AssumeRoleWithSAML returned no credentials",
            )
        })?;
        from_sts(creds)
    }
}

crate::publish::credential_session_action!(
    FederatedRoleProvider,
    SessionType::AwsIamRoleFederated,
    Capabilities::none().with_rotate(true)
);

#[cfg(test)]
mod tests {
    use super::*;
    use session_core::SessionAction;

    const ROLE: &str = "arn:aws:iam::111122223333:role/Federated";
    const IDP: &str = "arn:aws:iam::111122223333:saml-provider/MyIdP";

    /// The §7.3 assertion with `attributes` in its `AttributeStatement`.
    fn response(attributes: &str) -> String {
        format!(
            r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r" Version="2.0" IssueInstant="2026-01-01T00:00:00Z">
<saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">http://localhost:3000/</saml:Issuer>
<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a" Version="2.0" IssueInstant="2026-01-01T00:00:00Z">
<saml:Issuer>http://localhost:3000/</saml:Issuer><saml:Subject><saml:NameID>alice@example.com</saml:NameID></saml:Subject>
<saml:AttributeStatement>
{attributes}
</saml:AttributeStatement></saml:Assertion></samlp:Response>"#
        )
    }

    fn attr(name: &str, values: &[&str]) -> String {
        let values: String = values
            .iter()
            .map(|v| format!("<saml:AttributeValue>{v}</saml:AttributeValue>"))
            .collect();
        format!(r#"<saml:Attribute Name="{name}">{values}</saml:Attribute>"#)
    }

    fn standard() -> String {
        response(&format!(
            "{}{}{}",
            attr(attributes::ROLE, &[&format!("{ROLE},{IDP}")]),
            attr(attributes::ROLE_SESSION_NAME, &["alice@example.com"]),
            attr(attributes::SESSION_DURATION, &["1800"]),
        ))
    }

    fn b64(xml: &str) -> Secret {
        Secret::new(BASE64.encode(xml))
    }

    fn field_and_text(err: Error) -> (String, String) {
        let text = err.to_string();
        match err {
            Error::InvalidInput { field, .. } => (field, text),
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }

    #[test]
    fn parses_the_moto_assertion() {
        let parsed = SamlAssertion::parse(&b64(&standard())).expect("parse");
        assert_eq!(
            parsed.roles(),
            [SamlRole {
                role_arn: ROLE.into(),
                principal_arn: IDP.into()
            }]
        );
        assert!(parsed.grants(ROLE, IDP));
        assert!(!parsed.grants(ROLE, "arn:aws:iam::111122223333:saml-provider/Other"));
        assert_eq!(parsed.role_session_name(), "alice@example.com");
        assert_eq!(parsed.session_duration(), Some(1800));
        assert_eq!(parsed.not_on_or_after(), None);
        assert_eq!(parsed.session_not_on_or_after(), None);
        assert!(parsed.malformed_roles().is_empty());
        // Line-wrapped base64 is accepted.
        let encoded = BASE64.encode(standard());
        let wrapped: Vec<String> = encoded
            .as_bytes()
            .chunks(76)
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        let again = SamlAssertion::parse(&Secret::new(wrapped.join("\r\n"))).expect("wrapped");
        assert_eq!(again, parsed);
    }

    #[test]
    fn both_pair_orders_and_several_roles() {
        let other = "arn:aws:iam::444455556666:role/path/ReadOnly";
        let other_idp = "arn:aws:iam::444455556666:saml-provider/Corp";
        let xml = response(&format!(
            "{}{}",
            attr(
                attributes::ROLE,
                &[
                    &format!("{IDP},{ROLE}"),
                    &format!(" {other} , {other_idp} "),
                    &format!("{ROLE},{IDP}"),
                ]
            ),
            attr(attributes::ROLE_SESSION_NAME, &["alice"]),
        ));
        let parsed = SamlAssertion::parse(&b64(&xml)).expect("parse");
        assert_eq!(parsed.roles().len(), 2, "duplicates collapse");
        assert!(parsed.grants(ROLE, IDP));
        assert!(parsed.grants(other, other_idp));
        assert_eq!(parsed.session_duration(), None);
    }

    #[test]
    fn malformed_role_values_are_reported() {
        let secret_looking = "arn:aws:iam::111122223333:role/OnlyRole";
        // One malformed value next to a good one: kept aside, reported.
        let xml = response(&format!(
            "{}{}",
            attr(
                attributes::ROLE,
                &[secret_looking, &format!("{ROLE},{IDP}")]
            ),
            attr(attributes::ROLE_SESSION_NAME, &["alice"]),
        ));
        let parsed = SamlAssertion::parse(&b64(&xml)).expect("parse");
        assert_eq!(parsed.roles().len(), 1);
        assert_eq!(parsed.malformed_roles().len(), 1);
        assert!(
            parsed.malformed_roles()[0].starts_with("Role value 1:"),
            "{:?}",
            parsed.malformed_roles()
        );
        // Only malformed values: an error that does not quote them.
        for bad in [
            secret_looking.to_owned(),
            format!("{ROLE},arn:aws:iam::111122223333:user/NotAnIdP"),
            format!("arn:aws:iam::1:role/X,{IDP}"),
            format!("{ROLE},{IDP},{IDP}"),
        ] {
            let xml = response(&format!(
                "{}{}",
                attr(attributes::ROLE, &[&bad]),
                attr(attributes::ROLE_SESSION_NAME, &["alice"]),
            ));
            let (field, text) = field_and_text(SamlAssertion::parse(&b64(&xml)).unwrap_err());
            assert_eq!(field, ASSERTION_FIELD);
            assert!(text.contains("Role value 1"), "{text}");
            for part in ["111122223333", "OnlyRole", "role/X"] {
                assert!(!text.contains(part), "the value is not quoted: {text}");
            }
        }
    }

    #[test]
    fn missing_attributes_are_errors() {
        let no_name = response(&format!(
            "{}{}",
            attr(attributes::ROLE, &[&format!("{ROLE},{IDP}")]),
            attr(attributes::SESSION_DURATION, &["1800"]),
        ));
        let (_, text) = field_and_text(SamlAssertion::parse(&b64(&no_name)).unwrap_err());
        assert!(text.contains("RoleSessionName"), "{text}");
        let no_role = response(&attr(attributes::ROLE_SESSION_NAME, &["alice"]));
        let (_, text) = field_and_text(SamlAssertion::parse(&b64(&no_role)).unwrap_err());
        assert!(
            text.contains("no https://aws.amazon.com/SAML/Attributes/Role"),
            "{text}"
        );
        let bad_name = response(&format!(
            "{}{}",
            attr(attributes::ROLE, &[&format!("{ROLE},{IDP}")]),
            attr(attributes::ROLE_SESSION_NAME, &["has space"]),
        ));
        let (_, text) = field_and_text(SamlAssertion::parse(&b64(&bad_name)).unwrap_err());
        assert!(
            text.contains("RoleSessionName") && !text.contains("has space"),
            "{text}"
        );
        for duration in ["60", "99999", "soon"] {
            let xml = response(&format!(
                "{}{}{}",
                attr(attributes::ROLE, &[&format!("{ROLE},{IDP}")]),
                attr(attributes::ROLE_SESSION_NAME, &["alice"]),
                attr(attributes::SESSION_DURATION, &[duration]),
            ));
            let (_, text) = field_and_text(SamlAssertion::parse(&b64(&xml)).unwrap_err());
            assert!(text.contains("SessionDuration"), "{text}");
        }
    }

    #[test]
    fn garbage_is_refused_without_being_quoted() {
        let cases = [
            Secret::new("not base64 at all!"),
            Secret::new(""),
            b64("just some words"),
            b64(
                "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\"><a></b></samlp:Response>",
            ),
            b64("<html><body>login failed</body></html>"),
            b64("<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\"/>"),
            b64(
                "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\"><saml:EncryptedAssertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\"/></samlp:Response>",
            ),
            Secret::new(BASE64.encode([0xff, 0xfe, 0x00])),
        ];
        let mut texts = Vec::new();
        for case in cases {
            let (field, text) = field_and_text(SamlAssertion::parse(&case).unwrap_err());
            assert_eq!(field, ASSERTION_FIELD);
            for leak in ["base64 at all", "some words", "login failed"] {
                assert!(!text.contains(leak), "quotes the input: {text}");
            }
            texts.push(text);
        }
        assert!(texts[0].contains("not base64"), "{}", texts[0]);
        assert!(texts[2].contains("not XML"), "{}", texts[2]);
        assert!(texts[3].contains("well-formed"), "{}", texts[3]);
        assert!(texts[4].contains("samlp:Response"), "{}", texts[4]);
        assert!(texts[5].contains("no saml:Assertion"), "{}", texts[5]);
        assert!(texts[6].contains("encrypted"), "{}", texts[6]);
        assert!(texts[7].contains("UTF-8"), "{}", texts[7]);
    }

    #[test]
    fn times_namespaces_and_entities() {
        // Another prefix, default namespaces, an escaped value, CDATA, and
        // attributes of the wrong namespace or place ignored.
        let xml = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<Response xmlns="urn:oasis:names:tc:SAML:2.0:protocol">
<a:Assertion xmlns:a="urn:oasis:names:tc:SAML:2.0:assertion">
<a:Subject><a:SubjectConfirmation><a:SubjectConfirmationData NotOnOrAfter="2026-01-01T00:05:00Z"/></a:SubjectConfirmation></a:Subject>
<a:Conditions NotBefore="2026-01-01T00:00:00Z" NotOnOrAfter="2026-01-01T00:04:00.500Z"/>
<a:AuthnStatement SessionNotOnOrAfter="2026-01-01T08:00:00Z"/>
<a:AttributeStatement>
<a:Attribute Name="{role}"><a:AttributeValue xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">{ROLE}&#44;<![CDATA[{IDP}]]></a:AttributeValue></a:Attribute>
<a:Attribute Name="{name}"><a:AttributeValue>o&apos;brien</a:AttributeValue></a:Attribute>
<x:Attribute xmlns:x="urn:other" Name="{duration}"><x:AttributeValue>60</x:AttributeValue></x:Attribute>
</a:AttributeStatement>
</a:Assertion></Response>"#,
            role = attributes::ROLE,
            name = attributes::ROLE_SESSION_NAME,
            duration = attributes::SESSION_DURATION,
        );
        // The entity resolves to `'`, which a RoleSessionName cannot hold.
        let err = SamlAssertion::parse(&b64(&xml)).unwrap_err().to_string();
        assert!(err.contains("RoleSessionName"), "{err}");
        let xml = xml.replace("o&apos;brien", "o&#x40;brien");
        let parsed = SamlAssertion::parse(&b64(&xml)).expect("parse");
        assert!(parsed.grants(ROLE, IDP));
        assert_eq!(parsed.role_session_name(), "o@brien");
        assert_eq!(parsed.session_duration(), None, "wrong namespace ignored");
        assert_eq!(
            parsed.not_on_or_after(),
            Some(time::macros::datetime!(2026-01-01 00:04:00.5 UTC)),
            "the earliest of Conditions and SubjectConfirmationData"
        );
        assert_eq!(
            parsed.session_not_on_or_after(),
            Some(time::macros::datetime!(2026-01-01 08:00:00 UTC))
        );
        let bad_time = xml.replace("2026-01-01T08:00:00Z", "tomorrow");
        let err = SamlAssertion::parse(&b64(&bad_time))
            .unwrap_err()
            .to_string();
        assert!(err.contains("SessionNotOnOrAfter"), "{err}");
    }

    #[test]
    fn duration_follows_config_assertion_and_session_end() {
        let now = time::macros::datetime!(2026-01-01 00:00:00 UTC);
        let config = FederatedRoleConfig::new(ROLE, IDP);
        let mut assertion = SamlAssertion::parse(&b64(&standard())).expect("parse");
        assert_eq!(duration_for(&config, &assertion, now, "s").unwrap(), 1800);
        let long = config.clone().with_duration_seconds(7200);
        assert_eq!(duration_for(&long, &assertion, now, "s").unwrap(), 7200);
        assertion.session_duration = None;
        assert_eq!(duration_for(&config, &assertion, now, "s").unwrap(), 3600);
        assertion.session_not_on_or_after = Some(now + time::Duration::minutes(20));
        assert_eq!(duration_for(&long, &assertion, now, "s").unwrap(), 1200);
        assertion.session_not_on_or_after = Some(now + time::Duration::minutes(5));
        assert_eq!(
            duration_for(&long, &assertion, now, "s").unwrap(),
            900,
            "never below what STS accepts"
        );
        assertion.session_not_on_or_after = Some(now);
        let err = duration_for(&long, &assertion, now, "session 'x'").unwrap_err();
        assert_eq!(err.category(), "unauthenticated");
        assert!(err.to_string().contains("session 'x'"), "{err}");
    }

    #[test]
    fn config_round_trips_and_validates() {
        let config = FederatedRoleConfig::new(ROLE, IDP)
            .with_duration_seconds(900)
            .with_assertion_source(AssertionSourceConfig::file("/run/saml.b64"));
        config.validate().expect("valid");
        let json = serde_json::to_value(&config).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "roleArn": ROLE,
                "principalArn": IDP,
                "durationSeconds": 900,
                "assertionSource": {"type": "file", "path": "/run/saml.b64"}
            })
        );
        let command: FederatedRoleConfig = serde_json::from_value(serde_json::json!({
            "roleArn": ROLE,
            "principalArn": IDP,
            "assertionSource": {"type": "command", "program": "saml-helper", "args": ["-q"], "timeoutSeconds": 30},
            "profile": "kept-by-the-common-config"
        }))
        .unwrap();
        assert_eq!(
            command.assertion_source,
            Some(AssertionSourceConfig::Command {
                program: "saml-helper".into(),
                args: vec!["-q".into()],
                timeout_seconds: Some(30)
            })
        );
        let source = format!("{:?}", command.assertion_source.unwrap().build());
        assert!(source.contains("30s"), "{source}");

        let swapped = FederatedRoleConfig::new(IDP, ROLE);
        let (field, _) = field_and_text(swapped.validate().unwrap_err());
        assert_eq!(field, "roleArn");
        let bad_idp = FederatedRoleConfig::new(ROLE, "arn:aws:iam::111122223333:role/X");
        assert_eq!(
            field_and_text(bad_idp.validate().unwrap_err()).0,
            "principalArn"
        );
        for seconds in [899, 43_201] {
            let config = FederatedRoleConfig::new(ROLE, IDP).with_duration_seconds(seconds);
            assert_eq!(
                field_and_text(config.validate().unwrap_err()).0,
                "durationSeconds"
            );
        }
        let no_program = FederatedRoleConfig::new(ROLE, IDP)
            .with_assertion_source(AssertionSourceConfig::command("", Vec::<String>::new()));
        assert!(no_program.validate().is_err());
        assert!(
            serde_json::from_value::<FederatedRoleConfig>(serde_json::json!({
                "roleArn": ROLE, "principalArn": IDP, "assertionSource": {"type": "browser"}
            }))
            .is_err()
        );
    }

    fn session() -> Session {
        Session::new("saml-test", SessionType::AwsIamRoleFederated).expect("session")
    }

    impl CommandSamlSource {
        /// A `'static` future, for `tokio::spawn`.
        async fn assertion_owned(self, session: Session) -> Result<Secret> {
            self.assertion(&session).await
        }
    }

    #[tokio::test]
    async fn file_source_accepts_xml_and_base64() {
        let dir = tempfile::tempdir().unwrap();
        let xml_file = dir.path().join("response.xml");
        std::fs::write(&xml_file, format!("\n  {}\n\n", standard())).unwrap();
        let from_xml = FileSamlSource::new(&xml_file)
            .assertion(&session())
            .await
            .expect("xml file");
        assert_eq!(from_xml.expose(), BASE64.encode(standard()));
        SamlAssertion::parse(&from_xml).expect("parses");

        let b64_file = dir.path().join("response.b64");
        std::fs::write(&b64_file, format!("{}\n", BASE64.encode(standard()))).unwrap();
        let from_b64 = FileSamlSource::new(&b64_file)
            .assertion(&session())
            .await
            .expect("base64 file");
        assert_eq!(from_b64.expose(), from_xml.expose());

        // Percent-encoded, as copied from a form body.
        let encoded = BASE64
            .encode(standard())
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        std::fs::write(&b64_file, encoded).unwrap();
        let from_form = FileSamlSource::new(&b64_file)
            .assertion(&session())
            .await
            .expect("form-encoded file");
        assert_eq!(from_form.expose(), from_xml.expose());

        std::fs::write(&b64_file, " \n").unwrap();
        let err = FileSamlSource::new(&b64_file)
            .assertion(&session())
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("saml-test") && err.to_string().contains("empty"),
            "{err}"
        );
        let err = FileSamlSource::new(dir.path().join("missing"))
            .assertion(&session())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Storage { .. }), "{err:?}");
        assert!(err.to_string().contains("saml-test"), "{err}");
    }

    #[tokio::test]
    async fn command_source_runs_without_a_shell() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("response.xml");
        std::fs::write(&file, standard()).unwrap();
        let got = CommandSamlSource::new("cat", [file.to_str().unwrap()])
            .assertion(&session())
            .await
            .expect("cat");
        assert_eq!(got.expose(), BASE64.encode(standard()));

        // Non-zero exit: the error shows stderr and names the session.
        let missing = dir.path().join("no-such-file");
        let err = CommandSamlSource::new("cat", [missing.to_str().unwrap()])
            .assertion(&session())
            .await
            .unwrap_err();
        let text = err.to_string();
        assert_eq!(err.category(), "provider");
        assert!(text.contains("saml-test"), "{text}");
        assert!(text.contains("No such file"), "stderr is shown: {text}");
        assert!(text.contains("exit status: 1"), "{text}");

        // Not a program.
        let err = CommandSamlSource::new(dir.path().join("nothing").to_str().unwrap(), [""; 0])
            .assertion(&session())
            .await
            .unwrap_err();
        assert_eq!(field_and_text(err).0, "assertionSource");

        // Empty output.
        let err = CommandSamlSource::new("true", [""; 0])
            .assertion(&session())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
    }

    #[tokio::test]
    async fn command_source_times_out_and_kills() {
        // A unique argument to find the process in /proc.
        let marker = format!("1{}.{}", std::process::id() % 100_000, 7);
        let running = {
            let marker = marker.clone();
            move || -> bool {
                if !cfg!(target_os = "linux") {
                    return true;
                }
                let wanted = format!("sleep\0{marker}\0").into_bytes();
                std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
                    let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                    let stat =
                        std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
                    let zombie = stat
                        .rsplit_once(") ")
                        .is_some_and(|(_, rest)| rest.starts_with('Z'));
                    cmdline == wanted && !zombie
                })
            }
        };
        let started = std::time::Instant::now();
        let call = tokio::spawn(
            CommandSamlSource::new("sleep", [marker.clone()])
                .with_timeout(Duration::from_millis(1000))
                .assertion_owned(session()),
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(running(), "the command runs");
        let err = call.await.unwrap().unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
        assert!(err.is_retryable());
        let text = err.to_string();
        assert!(
            text.contains("saml-test") && text.contains("sleep"),
            "{text}"
        );
        if cfg!(target_os = "linux") {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while running() && std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(!running(), "the timed-out command was killed");
        }
    }

    #[tokio::test]
    async fn ungranted_role_and_missing_source_fail_before_any_call() {
        use session_core::{InMemorySecretStore, SessionStatus, SystemClock};
        // Nothing listens here: reaching STS would be `Unavailable`.
        let client = AwsClientConfig::builder()
            .endpoint_url("http://127.0.0.1:9")
            .max_attempts(1)
            .build()
            .unwrap();
        let ctx = ActionContext::new(Arc::new(SystemClock), Arc::new(InMemorySecretStore::new()));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("response.xml");
        std::fs::write(&file, standard()).unwrap();
        let pending = |config: &FederatedRoleConfig| {
            let mut s = Session::new("saml-bad", SessionType::AwsIamRoleFederated)
                .unwrap()
                .with_config(config)
                .unwrap();
            s.transition(
                SessionStatus::Pending,
                session_core::Clock::now(&SystemClock),
            )
            .unwrap();
            s
        };
        let other = FederatedRoleConfig::new("arn:aws:iam::111122223333:role/Admin", IDP);
        let provider = FederatedRoleProvider::without_sink(client)
            .with_source(Arc::new(FileSamlSource::new(&file)));
        let (field, text) =
            field_and_text(provider.start(&ctx, &pending(&other)).await.unwrap_err());
        assert_eq!(field, "roleArn");
        assert!(text.contains("saml-bad"), "{text}");
        assert!(
            text.contains(&format!("it grants: {ROLE} (via {IDP})")),
            "{text}"
        );

        let provider = FederatedRoleProvider::without_sink(AwsClientConfig::default());
        let (field, text) = field_and_text(
            provider
                .start(&ctx, &pending(&FederatedRoleConfig::new(ROLE, IDP)))
                .await
                .unwrap_err(),
        );
        assert_eq!(field, "assertionSource");
        assert!(text.contains("saml-bad"), "{text}");
    }
}
