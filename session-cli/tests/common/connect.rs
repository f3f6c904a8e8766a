//! `sessionctl connect` as a child process: its output read line by line,
//! its standard error collected, signals, and bytes through the address it
//! prints.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Fixture, PASSPHRASE};

/// How long any one step may take.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(20);

/// A running `sessionctl connect`, its output read line by line.
pub(crate) struct Connect {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Connect {
    pub(crate) fn spawn(fx: &Fixture, args: &[&str]) -> Self {
        Self::spawn_with(fx, args, &[], false)
    }

    /// [`spawn`](Self::spawn) with `env` added and, if `stdin`, a pipe to
    /// write its standard input ([`write_stdin`](Self::write_stdin)).
    pub(crate) fn spawn_with(
        fx: &Fixture,
        args: &[&str],
        env: &[(&str, String)],
        stdin: bool,
    ) -> Self {
        let mut command = fx.command(&[&["connect"], args].concat());
        for (name, value) in env {
            command.env(name, value);
        }
        if stdin {
            command.stdin(Stdio::piped());
        }
        command
            .env("SESSIONCTL_PASSPHRASE", PASSPHRASE)
            .current_dir(fx.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn sessionctl connect");
        let stdin = child.stdin.take();
        let (lines, stdout) = channel();
        let out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    return;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let err = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut reader = BufReader::new(err);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        Connect {
            child,
            stdin,
            stdout,
            stderr,
        }
    }

    /// The next line on stdout.
    #[track_caller]
    pub(crate) fn line(&mut self) -> String {
        match self.stdout.recv_timeout(TIMEOUT) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                panic!("no line within {TIMEOUT:?}: {}", self.stderr())
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.wait();
                panic!("stdout closed ({status:?}): {}", self.stderr())
            }
        }
    }

    /// The address of `listening on ADDRESS`.
    #[track_caller]
    pub(crate) fn address(&mut self) -> SocketAddr {
        let line = self.line();
        line.strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("not an address line: {line:?}"))
            .parse()
            .expect("an address")
    }

    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stderr contains `text`.
    #[track_caller]
    pub(crate) fn stderr_until(&self, text: &str) -> String {
        let start = Instant::now();
        loop {
            let now = self.stderr();
            if now.contains(text) {
                return now;
            }
            assert!(start.elapsed() < TIMEOUT, "no {text:?} on stderr: {now}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("pid");
        rustix::process::kill_process(pid, signal).expect("kill");
    }

    /// Writes `bytes` to its standard input (spawned with `stdin`).
    pub(crate) fn write_stdin(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("spawned with a stdin pipe");
        stdin.write_all(bytes).expect("write stdin");
        stdin.flush().expect("flush stdin");
    }

    /// Closes its standard input.
    pub(crate) fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the exit, with a time limit.
    #[track_caller]
    pub(crate) fn wait(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Let the reader threads drain.
                std::thread::sleep(Duration::from_millis(50));
                return status;
            }
            if start.elapsed() > TIMEOUT {
                let _ = self.child.kill();
                panic!("sessionctl connect did not exit: {}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Connect {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `bytes` through `address` and expects them echoed.
#[track_caller]
pub(crate) fn echo_through(address: SocketAddr, bytes: &[u8]) {
    let mut stream = TcpStream::connect_timeout(&address, TIMEOUT).expect("connect to the tunnel");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    stream.write_all(bytes).expect("write");
    let mut back = vec![0; bytes.len()];
    stream.read_exact(&mut back).expect("echoed");
    assert_eq!(back, bytes);
}

#[track_caller]
pub(crate) fn is_closed(address: SocketAddr) -> bool {
    TcpStream::connect_timeout(&address, Duration::from_secs(2)).is_err()
}
