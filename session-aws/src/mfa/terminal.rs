//! [`TerminalMfaPrompt`]: the code typed on the controlling terminal.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use session_core::{Error, Result, Secret};
use tokio::sync::oneshot;
use zeroize::Zeroizing;

use super::{DEFAULT_PROMPT_TIMEOUT, MfaPrompt};

/// How many entries [`TerminalMfaPrompt`] reads before giving up on
/// malformed input (the first one and two re-asks).
pub const TERMINAL_ATTEMPTS: u32 = 3;

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
