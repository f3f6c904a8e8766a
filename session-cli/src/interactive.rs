//! `sessionctl connect` of a session whose live handle is a stream.
//!
//! - To a remote terminal (an SSM shell): the terminal in raw mode while
//!   it runs, its size sent at start and on every change, standard input
//!   and output copied to and from the stream, Ctrl-C forwarded to the
//!   remote side, and the remote command's exit status as sessionctl's own.
//! - A plain byte stream (SSM's `AWS-StartSSHSession`, as ssh's
//!   `ProxyCommand`): standard input and output copied as they are; Ctrl-C,
//!   SIGTERM, SIGHUP (ssh's way of ending its proxy) or the end of standard
//!   input stop the session, and nothing is ever added to the bytes.

use std::io::{Read, Write};

use std::sync::Arc;

use session_sdk::{EndReason, Error, LiveHandle, LiveStream, Session, SessionManager};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{Notify, mpsc};

use crate::Failure;
use crate::signals::{Signal, Signals};

/// The byte a terminal sends for Ctrl-C (ETX); the remote terminal turns
/// it into SIGINT.
const CTRL_C: u8 = 0x03;

/// Holds an interactive session until it ends; returns its exit status.
pub(crate) async fn run(
    manager: &SessionManager,
    session: &Session,
    handle: &LiveHandle,
    stream: LiveStream,
    signals: &mut Signals,
) -> Result<(), Failure> {
    let key = session.session_id.to_string();
    let to_terminal = handle.carries_terminal();
    let terminal = if to_terminal { Terminal::enter() } else { None };
    let mut resized = window_changes();
    if let Some(size) = terminal.as_ref().and_then(Terminal::size) {
        handle.resize(size);
    }
    let (from_remote, to_remote) = tokio::io::split(stream);
    // Input and output are copied by two tasks of their own, beside the
    // signals: while one waits (the remote side slow to take
    // input, standard output slow to take output) the other goes on, and
    // a signal is always seen. One loop that awaited a write to the remote
    // side stopped copying its output: with both directions busy (ssh
    // copying a file both ways) each side waited for the other for good,
    // and SIGHUP went unseen.
    let (ctrl_c, ctrl_c_rx) = mpsc::unbounded_channel::<()>();
    let mut sending = tokio::spawn(send_input(
        to_remote,
        stdin_reader(),
        ctrl_c_rx,
        to_terminal,
    ));
    let draining = Arc::new(Notify::new());
    let mut receiving = tokio::spawn(copy_output(from_remote, Arc::clone(&draining)));
    let mut received = None;
    let ending = loop {
        tokio::select! {
            signal = signals.recv_signal() => match signal {
                // Without a terminal in raw mode, Ctrl-C reaches us as a
                // signal: hand it on as the byte a terminal would send
                // (never into a byte stream, which it would corrupt).
                Signal::Interrupt if to_terminal => {
                    let _ = ctrl_c.send(());
                }
                Signal::Interrupt | Signal::Terminate => break Some(Ending::Stop),
            },
            Some(()) = next(&mut resized) => {
                if let Some(size) = terminal.as_ref().and_then(Terminal::size) {
                    handle.resize(size);
                }
            }
            sent = &mut sending => match sent {
                // A byte stream's client (ssh) is done.
                Ok(InputEnd::Finished) => break Some(Ending::Stop),
                Ok(InputEnd::RemoteGone) | Err(_) => break None,
            },
            output = &mut receiving, if received.is_none() => match output {
                Ok(OutputEnd::StdoutClosed) | Err(_) => break Some(Ending::Stop),
                Ok(end) => received = Some(end),
            },
            reason = handle.ended() => break Some(Ending::Ended(reason)),
        }
    };
    // Whatever the remote side still sent: read on until it is quiet.
    if received.is_none() {
        draining.notify_one();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), &mut receiving).await;
    }
    sending.abort();
    receiving.abort();
    drop(terminal);
    let ending = match ending {
        Some(ending) => ending,
        None => Ending::Ended(handle.ended().await),
    };
    // Idempotent: the manager already stopped a session whose command
    // exited.
    let stopped = manager.stop(&key).await;
    match ending {
        Ending::Stop => {
            stopped?;
            Ok(())
        }
        Ending::Ended(EndReason::Exited(0) | EndReason::ClosedByUser) => {
            stopped?;
            Ok(())
        }
        Ending::Ended(EndReason::Exited(code)) => {
            stopped?;
            Err(Failure::Exit(u8::try_from(code).unwrap_or(1)))
        }
        Ending::Ended(EndReason::ClosedByService(why)) => {
            stopped?;
            eprintln!("sessionctl: {}: {why}", session.session_name);
            // A shell the service ended is done; a byte stream (ssh's
            // proxy) it ended, e.g. for a remote port nobody listens on,
            // failed.
            if to_terminal {
                Ok(())
            } else {
                Err(Failure::Exit(1))
            }
        }
        Ending::Ended(other) => Err(Error::provider(
            session.session_type.to_string(),
            session.label(),
            format!("the connection ended: {other} (an interactive session is not resumed yet)"),
        )
        .into()),
    }
}

/// How copying standard input to the remote side ended.
enum InputEnd {
    /// A byte stream's input ended (a terminal's end of input is not an
    /// end: a shell decides when to end).
    Finished,
    /// The remote side took no more.
    RemoteGone,
}

/// Copies standard input, and a Ctrl-C byte for each `ctrl_c`, to the
/// remote side.
async fn send_input(
    mut to_remote: WriteHalf<LiveStream>,
    mut input: mpsc::Receiver<Vec<u8>>,
    mut ctrl_c: mpsc::UnboundedReceiver<()>,
    to_terminal: bool,
) -> InputEnd {
    let mut input_open = true;
    loop {
        let bytes = tokio::select! {
            chunk = input.recv(), if input_open => match chunk {
                Some(bytes) => bytes,
                None if to_terminal => {
                    input_open = false;
                    continue;
                }
                None => return InputEnd::Finished,
            },
            Some(()) = ctrl_c.recv() => vec![CTRL_C],
            else => std::future::pending().await,
        };
        if to_remote.write_all(&bytes).await.is_err() {
            return InputEnd::RemoteGone;
        }
    }
}

/// How copying the remote side's output ended.
enum OutputEnd {
    /// The remote side's stream ended.
    RemoteEnded,
    /// Standard output is gone: stop.
    StdoutClosed,
    /// Draining, nothing came for a moment.
    Quiet,
}

/// Copies the remote side's output to standard output. Once told through
/// `drain` (the session is ending), returns after 200 ms without output.
async fn copy_output(mut from_remote: ReadHalf<LiveStream>, drain: Arc<Notify>) -> OutputEnd {
    let mut buffer = vec![0u8; 16 * 1024];
    let mut stdout = tokio::io::stdout();
    let mut draining = false;
    loop {
        let read = if draining {
            match tokio::time::timeout(
                std::time::Duration::from_millis(200),
                from_remote.read(&mut buffer),
            )
            .await
            {
                Ok(read) => read,
                Err(_) => {
                    let _ = stdout.flush().await;
                    return OutputEnd::Quiet;
                }
            }
        } else {
            // A read waiting for output that will not come must not hold
            // the end up (it did, for the whole 5 s bound).
            tokio::select! {
                read = from_remote.read(&mut buffer) => read,
                () = drain.notified() => {
                    draining = true;
                    continue;
                }
            }
        };
        match read {
            Ok(0) | Err(_) => {
                let _ = stdout.flush().await;
                return OutputEnd::RemoteEnded;
            }
            Ok(n) => {
                if stdout.write_all(&buffer[..n]).await.is_err() || stdout.flush().await.is_err() {
                    return OutputEnd::StdoutClosed;
                }
            }
        }
    }
}

/// Why the hold ended.
enum Ending {
    /// SIGTERM or SIGHUP, standard output closed, or (a byte stream)
    /// Ctrl-C or the end of standard input: stop.
    Stop,
    /// The connection ended.
    Ended(EndReason),
}

/// Standard input, read on a thread of its own (a blocked read must not
/// keep the runtime from shutting down), in chunks as they come.
fn stdin_reader() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buffer = vec![0u8; 1024];
        loop {
            match stdin.read(&mut buffer) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.blocking_send(buffer[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

#[cfg(unix)]
type WindowChanges = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type WindowChanges = Option<()>;

/// SIGWINCH, where there is one.
fn window_changes() -> WindowChanges {
    #[cfg(unix)]
    {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok()
    }
    #[cfg(not(unix))]
    None
}

async fn next(changes: &mut WindowChanges) -> Option<()> {
    #[cfg(unix)]
    if let Some(signal) = changes {
        return signal.recv().await;
    }
    let _ = changes;
    std::future::pending().await
}

/// Standard input's terminal in raw mode, restored when dropped (on every
/// return path, and on unwinding).
struct Terminal {
    #[cfg(unix)]
    saved: rustix::termios::Termios,
}

impl Terminal {
    /// Raw mode, when standard input is a terminal; `None` otherwise (a
    /// pipe, a file) or when the terminal refuses.
    fn enter() -> Option<Self> {
        #[cfg(unix)]
        {
            use rustix::termios::{OptionalActions, isatty, tcgetattr, tcsetattr};
            let stdin = std::io::stdin();
            if !isatty(&stdin) {
                return None;
            }
            let saved = tcgetattr(&stdin).ok()?;
            let mut raw = saved.clone();
            raw.make_raw();
            tcsetattr(&stdin, OptionalActions::Now, &raw).ok()?;
            Some(Self { saved })
        }
        #[cfg(not(unix))]
        None
    }

    /// The terminal's size, if it tells.
    fn size(&self) -> Option<session_sdk::WindowSize> {
        #[cfg(unix)]
        {
            let size = rustix::termios::tcgetwinsize(std::io::stdin()).ok()?;
            (size.ws_col > 0 && size.ws_row > 0).then_some(session_sdk::WindowSize {
                cols: size.ws_col,
                rows: size.ws_row,
            })
        }
        #[cfg(not(unix))]
        None
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            use rustix::termios::{OptionalActions, tcsetattr};
            let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, &self.saved);
        }
        // A raw terminal left the cursor wherever the remote put it.
        let _ = std::io::stderr().flush();
    }
}
