//! Running a helper program (an MFA command, a SAML assertion command):
//! stdin closed, stdout and stderr captured up to a cap, a time-out, and the
//! program never left behind: it is killed and reaped when it times out,
//! when reading its output fails, and when the caller gives up on it (the
//! future is dropped).
//!
//! Only the program itself is killed, not processes it started: a wrapper
//! script should `exec` the real tool.

use std::io;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use zeroize::Zeroizing;

/// How much is read from a pipe at once.
const CHUNK: usize = 4096;

/// Which part of an output stream is kept when it is longer than the cap.
/// The rest is still read (and dropped), so the program never blocks on a
/// full pipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Keep {
    /// The first `n` bytes.
    Head(usize),
    /// The last `n` bytes.
    Tail(usize),
}

/// What was kept of one output stream.
pub(crate) struct Captured {
    /// The bytes kept (zeroed when dropped: they may hold a code or a token).
    pub(crate) bytes: Zeroizing<Vec<u8>>,
    /// Whether the stream was longer than the cap.
    pub(crate) truncated: bool,
}

/// A program that ran to its end.
pub(crate) struct Finished {
    /// How it ended.
    pub(crate) status: ExitStatus,
    /// Its standard output.
    pub(crate) stdout: Captured,
    /// Its standard error.
    pub(crate) stderr: Captured,
}

/// Why [`run`] has no [`Finished`] program.
#[derive(Debug)]
pub(crate) enum RunError {
    /// The program could not be started.
    Spawn(io::Error),
    /// Reading its output or waiting for it failed; it was killed and reaped.
    Io(io::Error),
    /// It was still running after the time-out; it was killed and reaped.
    TimedOut,
}

/// Runs `command` with stdin closed, keeping `stdout` and `stderr` of its
/// output, for at most `timeout`.
pub(crate) async fn run(
    mut command: Command,
    timeout: Duration,
    stdout: Keep,
    stderr: Keep,
) -> Result<Finished, RunError> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = RunningChild(Some(command.spawn().map_err(RunError::Spawn)?));
    match tokio::time::timeout(timeout, child.wait_with_output(stdout, stderr)).await {
        Ok(Ok(finished)) => Ok(finished),
        Ok(Err(e)) => {
            child.kill_and_reap().await;
            Err(RunError::Io(e))
        }
        Err(_elapsed) => {
            child.kill_and_reap().await;
            Err(RunError::TimedOut)
        }
    }
}

/// A child until it is reaped. Dropped before that (the caller's future
/// was dropped), it kills the child and reaps it in the background.
struct RunningChild(Option<Child>);

impl RunningChild {
    /// Reads both outputs to their end and waits for the exit, which reaps
    /// the child.
    async fn wait_with_output(&mut self, stdout: Keep, stderr: Keep) -> io::Result<Finished> {
        let Some(child) = self.0.as_mut() else {
            return Err(io::Error::other("the program was already reaped"));
        };
        let out = child.stdout.take();
        let err = child.stderr.take();
        let (status, stdout, stderr) = tokio::try_join!(
            child.wait(),
            read_capped(out, stdout),
            read_capped(err, stderr)
        )?;
        self.0 = None;
        Ok(Finished {
            status,
            stdout,
            stderr,
        })
    }

    /// SIGKILL (TerminateProcess on Windows), then wait for the exit.
    async fn kill_and_reap(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill().await;
        }
    }
}

impl Drop for RunningChild {
    fn drop(&mut self) {
        let Some(mut child) = self.0.take() else {
            return;
        };
        let _ = child.start_kill();
        // Without a runtime, `kill_on_drop` and tokio's own reaping of
        // orphans remain.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = child.wait().await;
            });
        }
    }
}

/// Reads `reader` to its end, keeping what `keep` says.
async fn read_capped(reader: Option<impl AsyncRead + Unpin>, keep: Keep) -> io::Result<Captured> {
    let cap = match keep {
        Keep::Head(cap) | Keep::Tail(cap) => cap,
    };
    // Room for everything ever held, so the buffer never moves (a move
    // would leave a copy that is not zeroed).
    let mut kept = Zeroizing::new(Vec::with_capacity(cap.saturating_add(CHUNK)));
    let mut truncated = false;
    if let Some(mut reader) = reader {
        let mut chunk = Zeroizing::new([0u8; CHUNK]);
        loop {
            let n = reader.read(&mut chunk[..]).await?;
            if n == 0 {
                break;
            }
            match keep {
                Keep::Head(cap) => {
                    let room = cap.saturating_sub(kept.len());
                    truncated |= n > room;
                    kept.extend_from_slice(&chunk[..n.min(room)]);
                }
                Keep::Tail(cap) => {
                    kept.extend_from_slice(&chunk[..n]);
                    if kept.len() > cap {
                        truncated = true;
                        let excess = kept.len() - cap;
                        kept.drain(..excess);
                    }
                }
            }
        }
    }
    Ok(Captured {
        bytes: kept,
        truncated,
    })
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.arg("-c").arg(script);
        command
    }

    const LONG: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn the_exit_status_and_both_streams_are_reported() {
        let done = run(
            sh("printf out; printf err >&2; exit 3"),
            LONG,
            Keep::Head(100),
            Keep::Tail(100),
        )
        .await
        .expect("ran");
        assert_eq!(done.status.code(), Some(3));
        assert_eq!(done.stdout.bytes.as_slice(), b"out");
        assert_eq!(done.stderr.bytes.as_slice(), b"err");
        assert!(!done.stdout.truncated && !done.stderr.truncated);

        let done = run(sh("exit 0"), LONG, Keep::Head(1), Keep::Head(1))
            .await
            .expect("ran");
        assert!(done.status.success());
        assert!(done.stdout.bytes.is_empty());
    }

    #[tokio::test]
    async fn output_beyond_the_cap_is_read_and_dropped() {
        // 120 000 bytes on each stream, more than a pipe holds: the program
        // only finishes if both are read to the end.
        let script = "i=0; while [ $i -lt 20000 ]; do printf '%05d\\n' $i; \
                      printf '%05d\\n' $i >&2; i=$((i+1)); done";
        let done = run(sh(script), LONG, Keep::Head(12), Keep::Tail(12))
            .await
            .expect("finished");
        assert!(done.status.success());
        assert_eq!(done.stdout.bytes.as_slice(), b"00000\n00001\n");
        assert!(done.stdout.truncated);
        assert_eq!(done.stderr.bytes.as_slice(), b"19998\n19999\n");
        assert!(done.stderr.truncated);
    }

    #[tokio::test]
    async fn a_missing_program_is_a_spawn_error() {
        let command = Command::new("/nonexistent/session-aws-no-such-program");
        match run(command, LONG, Keep::Head(1), Keep::Head(1)).await {
            Err(RunError::Spawn(e)) => assert_eq!(e.kind(), io::ErrorKind::NotFound),
            Err(other) => panic!("expected a spawn error, got {other:?}"),
            Ok(_) => panic!("expected a spawn error, got a finished program"),
        }
    }

    /// The state letter of process `pid` (`S`, `R`, `Z`…), `None` once it
    /// is gone (reaped).
    #[cfg(target_os = "linux")]
    fn state(pid: u32) -> Option<char> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(") ")?.1.chars().next()
    }

    /// A program that writes its pid to a file, then sleeps (the same
    /// process, through `exec`).
    #[cfg(target_os = "linux")]
    fn sleeper(dir: &tempfile::TempDir) -> (Command, std::path::PathBuf) {
        let pid_file = dir.path().join("pid");
        let script = format!("echo $$ > '{}'; exec sleep 30", pid_file.display());
        (sh(&script), pid_file)
    }

    #[cfg(target_os = "linux")]
    async fn pid_from(file: &std::path::Path) -> u32 {
        for _ in 0..100 {
            if let Ok(text) = std::fs::read_to_string(file)
                && let Ok(pid) = text.trim().parse()
            {
                return pid;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the program did not write its pid");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_time_out_kills_and_reaps_the_program() {
        let dir = tempfile::tempdir().unwrap();
        let (command, pid_file) = sleeper(&dir);
        let started = std::time::Instant::now();
        let result = run(
            command,
            Duration::from_millis(500),
            Keep::Head(10),
            Keep::Head(10),
        )
        .await;
        assert!(
            matches!(result, Err(RunError::TimedOut)),
            "{:?}",
            result.err()
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        let pid = pid_from(&pid_file).await;
        assert_eq!(state(pid), None, "killed and reaped before run returned");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn dropping_the_run_kills_and_reaps_the_program() {
        let dir = tempfile::tempdir().unwrap();
        let (command, pid_file) = sleeper(&dir);
        let call = run(command, LONG, Keep::Head(10), Keep::Head(10));
        // The caller gives up: the run's future is dropped.
        let gave_up = tokio::time::timeout(Duration::from_millis(500), call).await;
        assert!(gave_up.is_err(), "still running when dropped");
        let pid = pid_from(&pid_file).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while state(pid).is_some() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(state(pid), None, "killed and reaped after the drop");
    }
}
