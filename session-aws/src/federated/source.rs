//! Where SAML assertions come from: the [`SamlAssertionSource`] trait, the
//! file and command sources, and their description in a session's config.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use session_core::{Error, Result, Secret, Session};
use zeroize::Zeroizing;

use super::ASSERTION_FIELD;
use crate::subprocess::{self, Keep, RunError};

/// How long a [`CommandSamlSource`] may run by default.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// How much of a failed command's stderr goes into the error, in
/// characters (the end of it).
const STDERR_LIMIT: usize = 2000;

/// How much of a command's stderr is kept: the end, more than
/// [`STDERR_LIMIT`] characters of any width.
const STDERR_KEPT: usize = 64 * 1024;

/// The most a command may print on stdout: far more than any SAML response.
const OUTPUT_LIMIT: usize = 1024 * 1024;

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
/// [`DEFAULT_COMMAND_TIMEOUT`]) is killed and reaped, and so is one whose
/// caller gives up. More than 1 MiB on standard output is an error.
/// Standard input is closed, so the program cannot prompt on it; one that
/// opens a browser works.
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
        let mut command = tokio::process::Command::new(program);
        command.args(&self.args);
        let finished = subprocess::run(
            command,
            self.timeout,
            Keep::Head(OUTPUT_LIMIT),
            Keep::Tail(STDERR_KEPT),
        )
        .await
        .map_err(|e| match e {
            RunError::Spawn(e) => Error::invalid_input(
                "assertionSource",
                format!("{label}: cannot run the SAML assertion command {program:?}: {e}"),
            ),
            RunError::Io(e) => Error::provider(
                "saml-command",
                &label,
                format!("{program:?}: cannot read its output: {e}"),
            ),
            RunError::TimedOut => Error::Timeout {
                target: format!("{label}: SAML assertion command {program:?} (killed)"),
                after: self.timeout,
            },
        })?;
        let status = finished.status;
        if !status.success() {
            let stderr = String::from_utf8_lossy(&finished.stderr.bytes);
            let stderr = stderr.trim();
            let tail = match stderr.char_indices().rev().nth(STDERR_LIMIT) {
                Some((at, _)) => format!("…{}", &stderr[at..]),
                None => stderr.to_owned(),
            };
            return Err(Error::provider(
                "saml-command",
                &label,
                format!(
                    "{program:?} failed ({status}){}",
                    if tail.is_empty() {
                        " with no error output".to_owned()
                    } else {
                        format!(": {tail}")
                    }
                ),
            ));
        }
        if finished.stdout.truncated {
            return Err(Error::provider(
                "saml-command",
                &label,
                format!(
                    "the output of {program:?} is longer than {OUTPUT_LIMIT} bytes, more than \
                     any SAML assertion"
                ),
            ));
        }
        let stdout = finished.stdout.bytes;
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
pub(super) struct MissingSource;

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
/// ([`FederatedRoleConfig::assertion_source`](super::FederatedRoleConfig::assertion_source)), as JSON
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::federated::SamlAssertion;
    use crate::federated::fixtures::{field_and_text, standard};
    use session_core::SessionType;

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
    async fn command_source_refuses_an_endless_output() {
        let err = CommandSamlSource::new("head", ["-c", "1048577", "/dev/zero"])
            .assertion(&session())
            .await
            .unwrap_err();
        assert_eq!(err.category(), "provider");
        let text = err.to_string();
        assert!(text.contains("longer than 1048576 bytes"), "{text}");
        assert!(text.contains("saml-test"), "{text}");
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
}
