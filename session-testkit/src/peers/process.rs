//! One local peer process, as the launchers ([`moto`](crate::peers::moto),
//! [`sushy`](crate::peers::sushy), [`oidc`](crate::peers::oidc)) run it:
//!
//! * [`start_on_free_port`]: a free port of 127.0.0.1 per attempt, and
//!   another attempt when someone took the port before the peer bound it;
//!   [`start_once`] for a peer that picks its own port;
//! * [`PeerProcess::spawn`]: the peer's temp dir, and its stdout and stderr
//!   in a log file there;
//! * [`PeerProcess::wait_until_ready`]: polling until the peer is ready, it
//!   exits, or the time-out, failing with the tail of its log;
//! * kill-on-drop: dropping a [`PeerProcess`] kills the process (by its own
//!   PID, never by name), reaps it, then removes its temp dir.

use std::fmt::Display;
use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How many ports [`start_on_free_port`] tries when the free port it picked
/// was taken by someone else before the peer could bind it.
pub(crate) const PORT_ATTEMPTS: usize = 5;

/// How many lines of a peer's log a start failure quotes.
pub(crate) const LOG_TAIL_LINES: usize = 40;

/// How often [`PeerProcess::wait_until_ready`] looks at the peer.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Why one attempt to start a peer failed.
#[derive(Debug)]
pub(crate) enum StartError {
    /// The port was taken between choosing it and the peer binding it: try
    /// another.
    PortTaken { tail: String },
    /// Anything else, with the end of the peer's log.
    Failed { reason: String, tail: String },
}

impl StartError {
    /// A failure before the peer wrote a log.
    pub(crate) fn failed(reason: String) -> Self {
        Self::Failed {
            reason,
            tail: "(no log)".to_owned(),
        }
    }
}

/// Starts a peer on a free port of 127.0.0.1: picks one and runs
/// `attempt(port)`; when the attempt reports the port taken, says so on
/// stderr and tries another port, [`PORT_ATTEMPTS`] times at most. `name`
/// and `program` (e.g. `moto_server` and its path) name the peer in the
/// messages.
///
/// # Panics
///
/// When no attempt succeeds, quoting the end of the peer's log.
pub(crate) fn start_on_free_port<T>(
    name: &str,
    program: impl Display,
    mut attempt: impl FnMut(u16) -> Result<T, StartError>,
) -> T {
    let mut attempts = 1;
    loop {
        let port = free_port().unwrap_or_else(|e| {
            fail(
                name,
                &program,
                StartError::failed(format!("cannot find a free port: {e}")),
            )
        });
        match attempt(port) {
            Ok(peer) => return peer,
            Err(StartError::PortTaken { tail }) if attempts < PORT_ATTEMPTS => {
                eprintln!(
                    "{name}: port {port} was taken before it could bind it \
                     (attempt {attempts} of {PORT_ATTEMPTS}); trying another port. \
                     Its log:\n{tail}"
                );
                attempts += 1;
            }
            Err(StartError::PortTaken { tail }) => panic!(
                "{name} ({program}) could not bind a free port in {PORT_ATTEMPTS} attempts; \
                 the last was {port}. The end of its log:\n{tail}"
            ),
            Err(failed) => fail(name, &program, failed),
        }
    }
}

/// Starts a peer that picks its own port (or was given one): runs
/// `attempt` once.
///
/// # Panics
///
/// When the attempt fails, quoting the end of the peer's log.
pub(crate) fn start_once<T>(
    name: &str,
    program: impl Display,
    attempt: impl FnOnce() -> Result<T, StartError>,
) -> T {
    attempt().unwrap_or_else(|e| fail(name, program, e))
}

fn fail(name: &str, program: impl Display, error: StartError) -> ! {
    let (reason, tail) = match error {
        StartError::PortTaken { tail } => ("its port was taken".to_owned(), tail),
        StartError::Failed { reason, tail } => (reason, tail),
    };
    panic!("{name} ({program}) did not start: {reason}. The end of its log:\n{tail}")
}

/// A port of 127.0.0.1 that was free a moment ago: bind port 0, read the port
/// the kernel chose, and let it go. Someone else may take it before the peer
/// binds it; [`start_on_free_port`] then tries another.
pub(crate) fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// The last `n` lines of `text`.
pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return "(empty log)".to_owned();
    }
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A new temp dir for one peer process (its log, config and state), named
/// `prefix…`.
pub(crate) fn temp_dir(prefix: &str) -> Result<TempDir, StartError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| StartError::failed(format!("cannot create a temp dir: {e}")))
}

/// What the peer's stdin is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stdin {
    /// Nothing.
    Null,
    /// A pipe only this process holds, closed on drop: a peer that exits at
    /// EOF then ends with the test process even when it is never dropped.
    Held,
}

/// A running peer process with its temp dir and log; see the
/// [module docs](self).
#[derive(Debug)]
pub(crate) struct PeerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    log_path: PathBuf,
    // After `child` and `stdin`: removed once the process is gone.
    dir: TempDir,
}

impl PeerProcess {
    /// Spawns `command` with its stdout and stderr going to a new file
    /// `log_name` in `dir`, which the process then owns.
    pub(crate) fn spawn(
        mut command: Command,
        dir: TempDir,
        log_name: &str,
        stdin: Stdin,
    ) -> Result<Self, StartError> {
        let log_path = dir.path().join(log_name);
        let log = File::create(&log_path).map_err(|e| {
            StartError::failed(format!("cannot create {}: {e}", log_path.display()))
        })?;
        let log_err = log
            .try_clone()
            .map_err(|e| StartError::failed(format!("cannot clone the log handle: {e}")))?;
        command.stdout(log).stderr(log_err).stdin(match stdin {
            Stdin::Null => Stdio::null(),
            Stdin::Held => Stdio::piped(),
        });
        let mut child = command.spawn().map_err(|e| {
            StartError::failed(format!(
                "cannot run {}: {e}",
                Path::new(command.get_program()).display()
            ))
        })?;
        let stdin = child.stdin.take();
        // From here on, dropping the value kills and reaps the process.
        Ok(Self {
            child,
            stdin,
            log_path,
            dir,
        })
    }

    /// Polls until `probe(log)` says the peer is ready (`Ok`), the process
    /// exits, or `timeout` has passed. `probe` gets what the peer has logged
    /// so far; its `Err` says what is still missing, and is the reason given
    /// when time runs out (followed by `within {timeout}`).
    ///
    /// An exit whose log says the address is in use is
    /// [`StartError::PortTaken`].
    pub(crate) fn wait_until_ready(
        &mut self,
        timeout: Duration,
        mut probe: impl FnMut(&str) -> Result<(), String>,
    ) -> Result<(), StartError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    let log = self.log();
                    let tail = tail(&log, LOG_TAIL_LINES);
                    return Err(
                        if log.contains("Address already in use") || log.contains("is in use") {
                            StartError::PortTaken { tail }
                        } else {
                            StartError::Failed {
                                reason: format!("it exited ({status}) before it was ready"),
                                tail,
                            }
                        },
                    );
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(StartError::Failed {
                        reason: format!("cannot check on it: {e}"),
                        tail: self.log_tail(),
                    });
                }
            }
            let missing = match probe(&self.log()) {
                Ok(()) => return Ok(()),
                Err(missing) => missing,
            };
            if Instant::now() >= deadline {
                return Err(StartError::Failed {
                    reason: format!("{missing} within {timeout:?}"),
                    tail: self.log_tail(),
                });
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The temp dir the process owns.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The file that receives the process's stdout and stderr.
    pub(crate) fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// What the process has written to stdout and stderr so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The last [`LOG_TAIL_LINES`] lines of [`log`](Self::log).
    pub(crate) fn log_tail(&self) -> String {
        tail(&self.log(), LOG_TAIL_LINES)
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        // Closing a held stdin alone would end a peer that watches it; kill
        // it anyway. `Child::kill` signals the PID we spawned; it cannot have
        // been reused since the process is not reaped until `wait` below.
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fake peer programs (shell scripts) for the failure paths of the
/// launchers' tests.
#[cfg(all(test, unix))]
pub(crate) mod fake_program {
    use std::os::unix::fs::PermissionsExt;
    use std::panic::AssertUnwindSafe;
    use std::path::Path;
    use std::sync::{Mutex, MutexGuard};
    use std::time::{Duration, Instant};

    /// Held while writing and running a fake: a fork by another test while
    /// one is open for writing would make its exec fail (ETXTBSY) under
    /// `cargo test`, whose tests share a process.
    static SPAWN: Mutex<()> = Mutex::new(());

    /// Writes an executable `/bin/sh` script with `body` as `file_name` in a
    /// new temp dir, and runs `test` with that dir and the script's path,
    /// holding the lock that writing and running a fake needs.
    pub(crate) fn with(file_name: &str, body: &str, test: impl FnOnce(&Path, &Path)) {
        let _guard = lock();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        test(dir.path(), &path);
    }

    /// Runs `start`, which must panic (`what` says why) within 10 s, and
    /// returns the panic message.
    pub(crate) fn failed_start_message<T>(what: &str, start: impl FnOnce() -> T) -> String {
        let started = Instant::now();
        let panic = match std::panic::catch_unwind(AssertUnwindSafe(start)) {
            Ok(_) => panic!("{what}"),
            Err(panic) => panic,
        };
        assert!(started.elapsed() < Duration::from_secs(10));
        panic.downcast_ref::<String>().cloned().unwrap_or_default()
    }

    fn lock() -> MutexGuard<'static, ()> {
        SPAWN.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_nonzero() {
        assert_ne!(free_port().unwrap(), 0);
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
        assert_eq!(tail("", 5), "(empty log)");
    }
}
