//! [`CommandMfaPrompt`]: the code from an `mfa_process`-style program.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use session_core::{BoxError, Error, Result, Secret};
use zeroize::Zeroizing;

use super::{DEFAULT_PROMPT_TIMEOUT, MfaPrompt};
use crate::subprocess::{self, Keep, RunError};

/// Environment variable holding the MFA device serial, set for the program
/// of a [`CommandMfaPrompt`].
pub const SERIAL_ENV: &str = "SESSION_SDK_MFA_SERIAL";

/// Environment variable holding what the code is for (e.g. `session 'dev'
/// (…)`), set for the program of a [`CommandMfaPrompt`].
pub const PURPOSE_ENV: &str = "SESSION_SDK_MFA_PURPOSE";

/// How much of a command's stdout and stderr is kept.
const OUTPUT_CAP: usize = 4096;

#[derive(Clone)]
enum Invocation {
    Direct {
        program: OsString,
        args: Vec<OsString>,
    },
    Shell(String),
}

/// Runs an `mfa_process`-style program and reads the code from its stdout.
///
/// - The program runs **without a shell** (unless built with
///   [`shell`](Self::shell)), with stdin closed and with the serial and the
///   purpose in [`SERIAL_ENV`] and [`PURPOSE_ENV`].
/// - Its stdout, trimmed, is the code; it must be 6 digits.
/// - A non-zero exit fails with [`Error::Provider`] including the program's
///   stderr, with anything that looks like a code redacted.
/// - After the timeout ([`DEFAULT_PROMPT_TIMEOUT`]) the program is killed
///   and reaped, and the request fails with [`Error::Timeout`]. Only the
///   program itself is killed: a wrapper script should `exec` the real tool.
/// - Errors and `Debug` name the program, never its arguments or output.
#[derive(Clone)]
pub struct CommandMfaPrompt {
    invocation: Invocation,
    timeout: Duration,
}

impl CommandMfaPrompt {
    /// Runs `program` with `args` (no shell). A `program` without a path
    /// separator is looked up in `PATH`.
    pub fn new<I, A>(program: impl Into<OsString>, args: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<OsString>,
    {
        Self {
            invocation: Invocation::Direct {
                program: program.into(),
                args: args.into_iter().map(Into::into).collect(),
            },
            timeout: DEFAULT_PROMPT_TIMEOUT,
        }
    }

    /// Runs a command line through the platform shell: `sh -c <line>`, or
    /// `cmd /C <line>` on Windows. For configuration values that are a
    /// whole command line, like `mfa_process`.
    pub fn shell(command_line: impl Into<String>) -> Self {
        Self {
            invocation: Invocation::Shell(command_line.into()),
            timeout: DEFAULT_PROMPT_TIMEOUT,
        }
    }

    /// How long the program may run (default [`DEFAULT_PROMPT_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The program's name for messages: never its arguments.
    fn name(&self) -> String {
        match &self.invocation {
            Invocation::Direct { program, .. } => program.to_string_lossy().into_owned(),
            Invocation::Shell(line) => line.split_whitespace().next().unwrap_or("").to_owned(),
        }
    }

    fn command(&self) -> tokio::process::Command {
        match &self.invocation {
            Invocation::Direct { program, args } => {
                let mut command = tokio::process::Command::new(program);
                command.args(args);
                command
            }
            #[cfg(windows)]
            Invocation::Shell(line) => {
                let mut command = tokio::process::Command::new("cmd");
                command.arg("/C").raw_arg(line);
                command
            }
            #[cfg(not(windows))]
            Invocation::Shell(line) => {
                let mut command = tokio::process::Command::new("sh");
                command.arg("-c").arg(line);
                command
            }
        }
    }
}

impl fmt::Debug for CommandMfaPrompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shell = matches!(self.invocation, Invocation::Shell(_));
        f.debug_struct("CommandMfaPrompt")
            .field("program", &self.name())
            .field("shell", &shell)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// `text` with `code` (when it is at least 4 characters) and every
/// standalone run of exactly 6 digits replaced by `<redacted>`.
fn redact_codes(text: &str, code: &str) -> String {
    let text = if code.len() >= 4 {
        text.replace(code, "<redacted>")
    } else {
        text.to_owned()
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(start) = rest.find(|c: char| c.is_ascii_digit()) {
        out.push_str(&rest[..start]);
        let digits = &rest[start..];
        let len = digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        if len == 6 {
            out.push_str("<redacted>");
        } else {
            out.push_str(&digits[..len]);
        }
        rest = &digits[len..];
    }
    out.push_str(rest);
    out
}

fn command_error(serial: &str, message: String, source: Option<io::Error>) -> Error {
    Error::Provider {
        provider: "mfa-command".to_owned(),
        target: format!("MFA device {serial}"),
        message,
        retryable: false,
        source: source.map(|e| Arc::new(e) as BoxError),
    }
}

#[async_trait::async_trait]
impl MfaPrompt for CommandMfaPrompt {
    async fn code(&self, serial: &str, purpose: &str) -> Result<Secret> {
        let name = self.name();
        let mut command = self.command();
        command.env(SERIAL_ENV, serial).env(PURPOSE_ENV, purpose);
        let finished = subprocess::run(
            command,
            self.timeout,
            Keep::Head(OUTPUT_CAP),
            Keep::Head(OUTPUT_CAP),
        )
        .await
        .map_err(|e| match e {
            RunError::Spawn(e) => command_error(
                serial,
                format!("cannot run the MFA command `{name}`: {e}"),
                Some(e),
            ),
            RunError::Io(e) => command_error(
                serial,
                format!("running the MFA command `{name}` failed: {e}"),
                Some(e),
            ),
            RunError::TimedOut => Error::Timeout {
                target: format!("MFA command `{name}` for device {serial}"),
                after: self.timeout,
            },
        })?;
        let status = finished.status;
        let stdout = Zeroizing::new(String::from_utf8_lossy(&finished.stdout.bytes).into_owned());
        let code = stdout.trim();
        if !status.success() {
            let stderr = redact_codes(String::from_utf8_lossy(&finished.stderr.bytes).trim(), code);
            let stderr: Vec<&str> = stderr
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            let detail = if stderr.is_empty() {
                String::from(" (nothing on stderr)")
            } else {
                format!(": {}", stderr.join(" / "))
            };
            return Err(command_error(
                serial,
                format!("the MFA command `{name}` failed ({status}){detail}"),
                None,
            ));
        }
        if crate::validate::token_code(code).is_err() {
            return Err(Error::invalid_input(
                "MFA code",
                format!(
                    "the MFA command `{name}` for device {serial} did not print a 6-digit code \
                     on stdout"
                ),
            ));
        }
        Ok(Secret::new(code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_codes_only() {
        assert_eq!(
            redact_codes("bad code 123456 for 123456789012", "zz"),
            "bad code <redacted> for 123456789012"
        );
        assert_eq!(redact_codes("got 12ab56!", "12ab56"), "got <redacted>!");
        assert_eq!(redact_codes("12345 and 1234567", ""), "12345 and 1234567");
        assert_eq!(redact_codes("é654321é", "1"), "é<redacted>é");
    }
}
