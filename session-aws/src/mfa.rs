//! Where MFA codes come from.
//!
//! A provider asks an [`MfaPrompt`] for a fresh code whenever an STS call
//! needs one. The prompts here follow the MFA rules of the AWS reference:
//!
//! - **A code is single-use.** Nothing here replays a code: a request that
//!   arrives after a prompt completed gets a new prompt, and a code typed
//!   for a prompt that timed out is thrown away.
//! - **Codes are checked** to be 6 digits before anyone sends them.
//! - **No terminal means failing fast.** Under `credential_process` stdout is
//!   captured and the caller would hang on an invisible prompt, so
//!   [`TerminalMfaPrompt`] prompts only on the controlling terminal
//!   (`/dev/tty`, `CONIN$`/`CONOUT$` on Windows), never on stdout, and fails
//!   at once when there is none.
//! - **Prompts time out** ([`DEFAULT_PROMPT_TIMEOUT`]).
//! - **One prompt per device**: [`SharedMfaPrompt`] lets concurrent requests
//!   for the same serial share one prompt.
//!
//! The sources, in the order a tool should try them, composed with
//! [`ChainMfaPrompt`]:
//!
//! 1. an explicit code ([`StaticMfaCode::single_use`]);
//! 2. an `mfa_process`-style command ([`CommandMfaPrompt`]);
//! 3. the terminal ([`TerminalMfaPrompt`]);
//! 4. an error naming the device and what to configure.
//!
//! ```no_run
//! use std::sync::Arc;
//! use session_aws::mfa::{
//!     ChainMfaPrompt, CommandMfaPrompt, MfaPrompt, SharedMfaPrompt, TerminalMfaPrompt,
//! };
//!
//! let chain = ChainMfaPrompt::new(vec![
//!     Arc::new(CommandMfaPrompt::new("ykman", ["oath", "accounts", "code", "-s", "aws"]))
//!         as Arc<dyn MfaPrompt>,
//!     Arc::new(TerminalMfaPrompt::new()),
//! ]);
//! let mfa: Arc<dyn MfaPrompt> = Arc::new(SharedMfaPrompt::new(Arc::new(chain)));
//! # let _ = mfa;
//! ```

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use session_core::{BoxError, Error, Result, Secret};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{OnceCell, oneshot};
use zeroize::Zeroizing;

/// How long a terminal prompt or an MFA command may take by default.
pub const DEFAULT_PROMPT_TIMEOUT: Duration = Duration::from_secs(60);

/// How many entries [`TerminalMfaPrompt`] reads before giving up on
/// malformed input (the first one and two re-asks).
pub const TERMINAL_ATTEMPTS: u32 = 3;

/// Environment variable holding the MFA device serial, set for the program
/// of a [`CommandMfaPrompt`].
pub const SERIAL_ENV: &str = "SESSION_SDK_MFA_SERIAL";

/// Environment variable holding what the code is for (e.g. `session 'dev'
/// (…)`), set for the program of a [`CommandMfaPrompt`].
pub const PURPOSE_ENV: &str = "SESSION_SDK_MFA_PURPOSE";

/// Supplies a one-time code for an MFA device.
#[async_trait::async_trait]
pub trait MfaPrompt: Send + Sync + fmt::Debug {
    /// A fresh 6-digit code for device `serial`, requested for `purpose`
    /// (e.g. `session 'dev' (…)`). Each code is used once.
    async fn code(&self, serial: &str, purpose: &str) -> Result<Secret>;

    /// Whether this source can supply a code here at all: `false` when,
    /// e.g., there is no terminal or a single-use code was spent.
    /// [`ChainMfaPrompt`] skips sources that are not available, and only
    /// those. It is cheap and does not wait for anything. The default is
    /// `true`.
    fn is_available(&self) -> bool {
        true
    }
}

/// Fails at once, naming the device: for non-interactive use where no MFA is
/// expected. It is never [available](MfaPrompt::is_available).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoMfaPrompt;

#[async_trait::async_trait]
impl MfaPrompt for NoMfaPrompt {
    async fn code(&self, serial: &str, purpose: &str) -> Result<Secret> {
        Err(Error::invalid_input(
            "MFA code",
            format!(
                "{purpose} needs a code for MFA device {serial}, and no MFA prompt is configured"
            ),
        ))
    }

    fn is_available(&self) -> bool {
        false
    }
}

/// A code given up front (for scripts that obtained one, and tests).
///
/// [`new`](Self::new) answers the same code every time; use
/// [`single_use`](Self::single_use) for a code a user passed in (e.g.
/// `--mfa-code`), since a code is accepted only once.
#[derive(Clone)]
pub struct StaticMfaCode {
    code: Secret,
    /// `Some` for a single-use code: whether it was handed out (shared by clones).
    spent: Option<Arc<AtomicBool>>,
}

impl StaticMfaCode {
    /// A prompt that always answers `code`, which must be 6 digits.
    pub fn new(code: Secret) -> Result<Self> {
        crate::validate::token_code(code.expose())?;
        Ok(Self { code, spent: None })
    }

    /// A prompt that answers `code` (6 digits) once. Afterwards it is not
    /// [available](MfaPrompt::is_available), so a [`ChainMfaPrompt`] moves
    /// on to its next source, and asking it directly fails.
    pub fn single_use(code: Secret) -> Result<Self> {
        crate::validate::token_code(code.expose())?;
        Ok(Self {
            code,
            spent: Some(Arc::new(AtomicBool::new(false))),
        })
    }
}

impl fmt::Debug for StaticMfaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.spent {
            None => f.write_str("StaticMfaCode(<redacted>)"),
            Some(spent) => write!(
                f,
                "StaticMfaCode(<redacted>, single use, spent: {})",
                spent.load(Ordering::Acquire)
            ),
        }
    }
}

#[async_trait::async_trait]
impl MfaPrompt for StaticMfaCode {
    async fn code(&self, serial: &str, purpose: &str) -> Result<Secret> {
        if let Some(spent) = &self.spent
            && spent.swap(true, Ordering::AcqRel)
        {
            return Err(Error::invalid_input(
                "MFA code",
                format!(
                    "the code given for MFA device {serial} was already used and a code is \
                     accepted only once; {purpose} needs a new one"
                ),
            ));
        }
        Ok(self.code.clone())
    }

    fn is_available(&self) -> bool {
        self.spent
            .as_ref()
            .is_none_or(|spent| !spent.load(Ordering::Acquire))
    }
}

// ---------------------------------------------------------------------------
// Chain
// ---------------------------------------------------------------------------

/// Tries sources in order: the first one that is
/// [available](MfaPrompt::is_available) answers, and its result (code or
/// error) is final. A source that fails is not followed by the next one: a
/// timed-out terminal or a failing command is reported, not papered over.
///
/// When no source is available it fails with
/// [`Error::InvalidInput`] naming the device and what to configure.
#[derive(Debug, Clone, Default)]
pub struct ChainMfaPrompt {
    prompts: Vec<Arc<dyn MfaPrompt>>,
}

impl ChainMfaPrompt {
    /// A chain trying `prompts` in this order.
    pub fn new(prompts: Vec<Arc<dyn MfaPrompt>>) -> Self {
        Self { prompts }
    }

    /// Appends a source, tried after the ones already there.
    pub fn then(mut self, prompt: Arc<dyn MfaPrompt>) -> Self {
        self.prompts.push(prompt);
        self
    }
}

#[async_trait::async_trait]
impl MfaPrompt for ChainMfaPrompt {
    async fn code(&self, serial: &str, purpose: &str) -> Result<Secret> {
        for prompt in &self.prompts {
            if prompt.is_available() {
                return prompt.code(serial, purpose).await;
            }
        }
        Err(Error::invalid_input(
            "MFA code",
            format!(
                "{purpose} needs a code for MFA device {serial}, and no MFA source is available \
                 here (no code given, no MFA command configured, no terminal); pass a code, \
                 configure an MFA command (mfa_process), or run the command in a terminal"
            ),
        ))
    }

    fn is_available(&self) -> bool {
        self.prompts.iter().any(|p| p.is_available())
    }
}

// ---------------------------------------------------------------------------
// Shared (single flight per serial)
// ---------------------------------------------------------------------------

type Flight = OnceCell<Result<Secret>>;

/// One prompt per device at a time, shared by everyone who asks meanwhile.
///
/// - Concurrent requests for the **same serial** share one call of the
///   wrapped prompt and all get its code (or its error). The prompt shows
///   the purpose of the request that started it.
/// - Requests for **different serials** run independently.
/// - A code is **never served again** once its round is over: the first
///   request after that starts a new prompt.
/// - If the request running the prompt is cancelled, a waiting one takes
///   over and prompts anew.
///
/// Clones share the rounds in flight.
#[derive(Clone)]
pub struct SharedMfaPrompt {
    inner: Arc<dyn MfaPrompt>,
    flights: Arc<Mutex<HashMap<String, Arc<Flight>>>>,
}

impl SharedMfaPrompt {
    /// Shares `inner` between concurrent requests per serial.
    pub fn new(inner: Arc<dyn MfaPrompt>) -> Self {
        Self {
            inner,
            flights: Arc::default(),
        }
    }

    /// The wrapped prompt.
    pub fn inner(&self) -> &Arc<dyn MfaPrompt> {
        &self.inner
    }

    fn flights(&self) -> MutexGuard<'_, HashMap<String, Arc<Flight>>> {
        self.flights
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl fmt::Debug for SharedMfaPrompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let in_flight: Vec<String> = self.flights().keys().cloned().collect();
        f.debug_struct("SharedMfaPrompt")
            .field("inner", &self.inner)
            .field("in_flight", &in_flight)
            .finish()
    }
}

#[async_trait::async_trait]
impl MfaPrompt for SharedMfaPrompt {
    async fn code(&self, serial: &str, purpose: &str) -> Result<Secret> {
        let flight = {
            let mut flights = self.flights();
            match flights.get(serial) {
                // Join only a round that has no answer yet: a finished
                // round's code must not be handed out again.
                Some(flight) if !flight.initialized() => Arc::clone(flight),
                _ => {
                    let flight = Arc::new(Flight::new());
                    flights.insert(serial.to_owned(), Arc::clone(&flight));
                    flight
                }
            }
        };
        let result = flight
            .get_or_init(|| self.inner.code(serial, purpose))
            .await
            .clone();
        let mut flights = self.flights();
        if flights
            .get(serial)
            .is_some_and(|current| Arc::ptr_eq(current, &flight))
        {
            flights.remove(serial);
        }
        result
    }

    fn is_available(&self) -> bool {
        self.inner.is_available()
    }
}

// ---------------------------------------------------------------------------
// Command
// ---------------------------------------------------------------------------

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

/// Reads `reader` to its end, keeping at most `cap` bytes (the rest is read
/// and dropped so the writer never blocks on a full pipe).
async fn read_capped(
    reader: Option<impl AsyncRead + Unpin>,
    cap: usize,
) -> io::Result<Zeroizing<Vec<u8>>> {
    let mut kept = Zeroizing::new(Vec::new());
    let Some(mut reader) = reader else {
        return Ok(kept);
    };
    let mut chunk = Zeroizing::new([0u8; 1024]);
    loop {
        let n = reader.read(&mut chunk[..]).await?;
        if n == 0 {
            return Ok(kept);
        }
        let room = cap.saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..n.min(room)]);
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
        let mut child = self
            .command()
            .env(SERIAL_ENV, serial)
            .env(PURPOSE_ENV, purpose)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                command_error(
                    serial,
                    format!("cannot run the MFA command `{name}`: {e}"),
                    Some(e),
                )
            })?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let run = tokio::time::timeout(self.timeout, async {
            tokio::try_join!(
                child.wait(),
                read_capped(stdout, OUTPUT_CAP),
                read_capped(stderr, OUTPUT_CAP)
            )
        })
        .await;
        let (status, stdout, stderr) = match run {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => {
                // The pipes failed: do not leave the program running.
                let _ = child.kill().await;
                return Err(command_error(
                    serial,
                    format!("running the MFA command `{name}` failed: {e}"),
                    Some(e),
                ));
            }
            Err(_elapsed) => {
                // SIGKILL (TerminateProcess on Windows) and reap it.
                let _ = child.kill().await;
                return Err(Error::Timeout {
                    target: format!("MFA command `{name}` for device {serial}"),
                    after: self.timeout,
                });
            }
        };
        let stdout = Zeroizing::new(String::from_utf8_lossy(&stdout).into_owned());
        let code = stdout.trim();
        if !status.success() {
            let stderr = redact_codes(String::from_utf8_lossy(&stderr).trim(), code);
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

// ---------------------------------------------------------------------------
// Terminal
// ---------------------------------------------------------------------------

#[cfg(windows)]
const DEFAULT_TERMINAL_INPUT: &str = "CONIN$";
#[cfg(windows)]
const DEFAULT_TERMINAL_OUTPUT: &str = "CONOUT$";
#[cfg(not(windows))]
const DEFAULT_TERMINAL_INPUT: &str = "/dev/tty";
#[cfg(not(windows))]
const DEFAULT_TERMINAL_OUTPUT: &str = "/dev/tty";

type StreamOpener =
    dyn Fn() -> io::Result<(Box<dyn Read + Send>, Box<dyn Write + Send>)> + Send + Sync;

#[derive(Clone)]
enum Terminal {
    Paths { input: PathBuf, output: PathBuf },
    Streams(Arc<StreamOpener>),
}

/// A `Read` or `Write` behind a mutex, so one opened stream can serve several
/// entries while rpassword takes its input and output by value.
struct Shared<T>(Arc<Mutex<T>>);

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, T> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<R: Read> Read for Shared<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.lock().read(buf)
    }
}

impl<W: Write> Write for Shared<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.lock().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.lock().flush()
    }
}

/// What the reader thread reads from.
enum TerminalIo {
    /// Opened by rpassword (which turns echo off on a real terminal).
    Paths { input: String, output: String },
    Streams {
        reader: Shared<Box<dyn Read + Send>>,
        writer: Shared<Box<dyn Write + Send>>,
    },
}

impl TerminalIo {
    fn config(&self) -> rpassword::Config {
        let builder = rpassword::ConfigBuilder::new().password_feedback_hide();
        match self {
            TerminalIo::Paths { input, output } => builder
                .input_file_path(input.as_str())
                .output_file_path(output.as_str()),
            TerminalIo::Streams { reader, writer } => builder
                .input_reader(reader.clone())
                .output_writer(writer.clone()),
        }
        .build()
    }
}

/// The outcome of one terminal read, sent back by the reader thread.
type ReadOutcome = Result<Secret>;

/// Asks on the controlling terminal: `/dev/tty` on Unix, `CONIN$` and
/// `CONOUT$` on Windows. Never stdin or stdout.
///
/// - Writes `MFA code for <serial> (<purpose>): ` to the terminal and reads
///   the answer **without echo** (via `rpassword`).
/// - Accepts 6 digits (blanks around them are ignored); re-asks on anything
///   else, [`TERMINAL_ATTEMPTS`] entries in all.
/// - When no terminal can be opened it fails **at once** with
///   [`Error::InvalidInput`] naming the device and suggesting an MFA
///   command or an explicit code; it is then not
///   [available](MfaPrompt::is_available).
/// - Times out ([`DEFAULT_PROMPT_TIMEOUT`]) with [`Error::Timeout`]; the
///   terminal's settings are restored (Unix, via `stty`) and a note is
///   written to it.
/// - Prompts through one value are asked one after the other.
///
/// The blocking terminal I/O runs on a dedicated thread, not
/// `spawn_blocking`: a read of a terminal cannot be interrupted, and a
/// reader stuck in the blocking pool after a timeout would make the tokio
/// runtime wait for it on shutdown, i.e. hang the program until someone
/// presses Enter. After a timeout that thread keeps waiting for a line;
/// until it gets one, further requests fail at once with
/// [`Error::Unavailable`] (two readers on one terminal would split the
/// input), and whatever it reads is thrown away.
#[derive(Clone)]
pub struct TerminalMfaPrompt {
    terminal: Terminal,
    timeout: Duration,
    /// Serialises prompts; holds the reader of a prompt that timed out.
    pending: Arc<tokio::sync::Mutex<Option<oneshot::Receiver<ReadOutcome>>>>,
}

impl Default for TerminalMfaPrompt {
    fn default() -> Self {
        Self::new()
    }
}

impl TerminalMfaPrompt {
    /// Prompts on the controlling terminal.
    pub fn new() -> Self {
        Self::with_paths(DEFAULT_TERMINAL_INPUT, DEFAULT_TERMINAL_OUTPUT)
    }

    /// Prompts on the terminal devices at `input` and `output` (e.g. a
    /// pseudo-terminal), opened for each prompt. Echo is turned off when
    /// `input` is a terminal. Paths must be UTF-8.
    pub fn with_paths(input: impl Into<PathBuf>, output: impl Into<PathBuf>) -> Self {
        Self::from_terminal(Terminal::Paths {
            input: input.into(),
            output: output.into(),
        })
    }

    /// Prompts through streams that `open` returns for each prompt (for
    /// tests and embedding). The streams are used as they are: echo is not
    /// turned off. An error from `open` counts as "no terminal".
    pub fn with_streams<F, R, W>(open: F) -> Self
    where
        F: Fn() -> io::Result<(R, W)> + Send + Sync + 'static,
        R: Read + Send + 'static,
        W: Write + Send + 'static,
    {
        Self::from_terminal(Terminal::Streams(Arc::new(move || {
            let (reader, writer) = open()?;
            Ok((
                Box::new(reader) as Box<dyn Read + Send>,
                Box::new(writer) as Box<dyn Write + Send>,
            ))
        })))
    }

    fn from_terminal(terminal: Terminal) -> Self {
        Self {
            terminal,
            timeout: DEFAULT_PROMPT_TIMEOUT,
            pending: Arc::default(),
        }
    }

    /// How long to wait for the user (default [`DEFAULT_PROMPT_TIMEOUT`]),
    /// for all attempts together.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Opens the terminal, or says why it cannot be.
    fn open(&self) -> std::result::Result<TerminalIo, String> {
        match &self.terminal {
            Terminal::Paths { input, output } => {
                let utf8 = |p: &PathBuf| {
                    p.to_str()
                        .map(str::to_owned)
                        .ok_or_else(|| format!("{}: not a UTF-8 path", p.display()))
                };
                let (input_str, output_str) = (utf8(input)?, utf8(output)?);
                std::fs::OpenOptions::new()
                    .read(true)
                    .open(input)
                    .map_err(|e| format!("{}: {e}", input.display()))?;
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(output)
                    .map_err(|e| format!("{}: {e}", output.display()))?;
                Ok(TerminalIo::Paths {
                    input: input_str,
                    output: output_str,
                })
            }
            Terminal::Streams(open) => {
                let (reader, writer) = open().map_err(|e| format!("cannot open it: {e}"))?;
                Ok(TerminalIo::Streams {
                    reader: Shared(Arc::new(Mutex::new(reader))),
                    writer: Shared(Arc::new(Mutex::new(writer))),
                })
            }
        }
    }

    /// Writes a line to the terminal, best effort.
    fn note(io: &TerminalIo, text: &str) {
        match io {
            TerminalIo::Paths { output, .. } => {
                if let Ok(mut file) = std::fs::OpenOptions::new().write(true).open(output) {
                    let _ = file.write_all(text.as_bytes());
                }
            }
            TerminalIo::Streams { writer, .. } => {
                if let Ok(mut writer) = writer.0.try_lock() {
                    let _ = writer.write_all(text.as_bytes());
                    let _ = writer.flush();
                }
            }
        }
    }
}

impl fmt::Debug for TerminalMfaPrompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("TerminalMfaPrompt");
        match &self.terminal {
            Terminal::Paths { input, output } => s.field("input", input).field("output", output),
            Terminal::Streams(_) => s.field("terminal", &"<streams>"),
        };
        s.field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

/// Reads up to [`TERMINAL_ATTEMPTS`] entries until one is 6 digits.
fn read_code_blocking(io: &TerminalIo, prompt: &str, serial: &str) -> ReadOutcome {
    for attempt in 1..=TERMINAL_ATTEMPTS {
        let text = if attempt == 1 {
            prompt.to_owned()
        } else {
            format!("That is not a 6-digit code (try {attempt} of {TERMINAL_ATTEMPTS}). {prompt}")
        };
        let entered = match rpassword::prompt_password_with_config(text, io.config()) {
            Ok(entered) => Zeroizing::new(entered),
            Err(e) => return Err(read_error(e, serial)),
        };
        let code = entered.trim();
        if crate::validate::token_code(code).is_ok() {
            return Ok(Secret::new(code));
        }
    }
    Err(Error::invalid_input(
        "MFA code",
        format!("no 6-digit code was entered for MFA device {serial} in {TERMINAL_ATTEMPTS} tries"),
    ))
}

fn read_error(e: io::Error, serial: &str) -> Error {
    let operation = format!("MFA prompt for device {serial}");
    match e.kind() {
        io::ErrorKind::UnexpectedEof => Error::Cancelled {
            operation,
            reason: "the terminal input ended (Ctrl-D)".to_owned(),
        },
        io::ErrorKind::Interrupted => Error::Cancelled {
            operation,
            reason: "interrupted (Ctrl-C)".to_owned(),
        },
        _ => Error::Unavailable {
            target: operation,
            message: format!("reading the terminal failed: {e}"),
            source: Some(Arc::new(e)),
        },
    }
}

/// The terminal's settings before a prompt, put back if the prompt ends
/// without the reader doing so itself (timeout, cancellation). Unix only.
struct TtyModeGuard {
    #[cfg(unix)]
    saved: Option<(PathBuf, String)>,
}

impl TtyModeGuard {
    /// Saves the settings of `io`'s input when it is a terminal.
    async fn save(io: &TerminalIo) -> Self {
        #[cfg(unix)]
        {
            let saved = match io {
                TerminalIo::Paths { input, .. } => stty::save(input.as_ref())
                    .await
                    .map(|mode| (PathBuf::from(input), mode)),
                TerminalIo::Streams { .. } => None,
            };
            Self { saved }
        }
        #[cfg(not(unix))]
        {
            let _ = io;
            Self {}
        }
    }

    /// The reader restored the settings itself.
    fn disarm(&mut self) {
        #[cfg(unix)]
        {
            self.saved = None;
        }
    }

    /// Puts the settings back now.
    async fn restore(&mut self) {
        #[cfg(unix)]
        if let Some((tty, mode)) = self.saved.take() {
            stty::restore(&tty, &mode).await;
        }
    }
}

impl Drop for TtyModeGuard {
    fn drop(&mut self) {
        // Cancelled while waiting: restore in the background.
        #[cfg(unix)]
        if let Some((tty, mode)) = self.saved.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move { stty::restore(&tty, &mode).await });
        }
    }
}

/// Saving and restoring terminal settings with `stty -g` (POSIX), since
/// `unsafe` (and so `termios` calls) is forbidden here.
#[cfg(unix)]
mod stty {
    use std::path::Path;
    use std::process::Stdio;
    use std::time::Duration;

    const STTY_TIMEOUT: Duration = Duration::from_secs(2);

    fn on(tty: &Path) -> Option<tokio::process::Command> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(tty)
            .ok()?;
        let mut command = tokio::process::Command::new("stty");
        command
            .stdin(Stdio::from(file))
            .stderr(Stdio::null())
            .kill_on_drop(true);
        Some(command)
    }

    pub(super) async fn save(tty: &Path) -> Option<String> {
        let mut command = on(tty)?;
        command.arg("-g").stdout(Stdio::piped());
        let output = tokio::time::timeout(STTY_TIMEOUT, command.output())
            .await
            .ok()?
            .ok()?;
        let mode = String::from_utf8(output.stdout).ok()?.trim().to_owned();
        (output.status.success() && !mode.is_empty()).then_some(mode)
    }

    pub(super) async fn restore(tty: &Path, mode: &str) {
        if let Some(mut command) = on(tty) {
            command.arg(mode).stdout(Stdio::null());
            let _ = tokio::time::timeout(STTY_TIMEOUT, command.status()).await;
        }
    }
}

fn no_terminal(serial: &str, purpose: &str, why: &str) -> Error {
    Error::invalid_input(
        "MFA code",
        format!(
            "{purpose} needs a code for MFA device {serial}, and there is no terminal to ask on \
             ({why}); configure an MFA command (mfa_process) or pass the code explicitly"
        ),
    )
}

#[async_trait::async_trait]
impl MfaPrompt for TerminalMfaPrompt {
    async fn code(&self, serial: &str, purpose: &str) -> Result<Secret> {
        // Fail fast, before queueing behind another prompt.
        let io = self
            .open()
            .map_err(|why| no_terminal(serial, purpose, &why))?;
        let mut pending = self.pending.lock().await;
        if let Some(stale) = pending.as_mut() {
            match stale.try_recv() {
                Err(oneshot::error::TryRecvError::Empty) => {
                    return Err(Error::Unavailable {
                        target: format!("MFA prompt for device {serial}"),
                        message: "the terminal is still read by an earlier MFA prompt that timed \
                                  out; press Enter on the terminal and try again"
                            .to_owned(),
                        source: None,
                    });
                }
                // An answer to a prompt that timed out is never used.
                _ => *pending = None,
            }
        }
        let mut mode = TtyModeGuard::save(&io).await;
        let io = Arc::new(io);
        let (tx, rx) = oneshot::channel();
        let prompt = format!("MFA code for {serial} ({purpose}): ");
        let thread_io = Arc::clone(&io);
        let thread_serial = serial.to_owned();
        std::thread::Builder::new()
            .name("mfa-terminal".to_owned())
            .spawn(move || {
                let _ = tx.send(read_code_blocking(&thread_io, &prompt, &thread_serial));
            })
            .map_err(|e| Error::Unavailable {
                target: format!("MFA prompt for device {serial}"),
                message: format!("cannot start the terminal reader: {e}"),
                source: Some(Arc::new(e)),
            })?;
        // Parked here first, so that it stays visible if this request is
        // cancelled while the thread reads.
        let reader = pending.insert(rx);
        match tokio::time::timeout(self.timeout, reader).await {
            Ok(outcome) => {
                *pending = None;
                mode.disarm();
                outcome.unwrap_or_else(|_| {
                    Err(Error::Unavailable {
                        target: format!("MFA prompt for device {serial}"),
                        message: "the terminal reader stopped without an answer".to_owned(),
                        source: None,
                    })
                })
            }
            Err(_elapsed) => {
                mode.restore().await;
                Self::note(
                    &io,
                    &format!(
                        "\nNo MFA code entered within {:?}; giving up.\n",
                        self.timeout
                    ),
                );
                Err(Error::Timeout {
                    target: format!("MFA prompt for device {serial} on the terminal"),
                    after: self.timeout,
                })
            }
        }
    }

    fn is_available(&self) -> bool {
        match &self.terminal {
            Terminal::Paths { .. } => self.open().is_ok(),
            Terminal::Streams(_) => true,
        }
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

    #[tokio::test]
    async fn single_use_code_is_spent_after_one_answer() {
        let code = StaticMfaCode::single_use(Secret::new("123456")).unwrap();
        assert!(code.is_available());
        assert_eq!(
            code.code("SERIAL-1", "test").await.unwrap().expose(),
            "123456"
        );
        assert!(!code.is_available());
        let err = code.code("SERIAL-1", "test").await.unwrap_err();
        assert_eq!(err.category(), "invalid_input");
        assert!(err.to_string().contains("SERIAL-1"), "{err}");
        assert!(!err.to_string().contains("123456"), "{err}");
        assert!(format!("{code:?}").contains("spent: true"));

        let repeating = StaticMfaCode::new(Secret::new("123456")).unwrap();
        for _ in 0..2 {
            assert_eq!(repeating.code("S", "t").await.unwrap().expose(), "123456");
        }
        assert!(StaticMfaCode::single_use(Secret::new("12345")).is_err());
    }
}
