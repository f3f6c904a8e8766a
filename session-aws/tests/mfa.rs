//! MFA code prompts: sharing one prompt per device, the external command,
//! the chain of sources, and the terminal prompt (injected streams, missing
//! terminals, and a real pseudo-terminal driven through Python's `pty`).
//!
//! Time: tests of code that waits only on tokio (the shared prompt, the
//! chain, failing fast) run on tokio's paused clock (`start_paused`), which
//! moves only when every task waits: their timings are exact and do not
//! depend on the machine's load. Tests with a real subprocess or the
//! terminal prompt's reader thread run outside tokio's clock, so they use
//! real time with generous bounds and wait on events (a channel, a file the
//! program wrote) for ordering.

/// Every test sits in this module so that `cargo test mfa` selects them all.
mod mfa {
    use std::io::{self, Write};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, mpsc};
    use std::time::Duration;

    use tokio::time::Instant;

    use session_aws::mfa::{
        ChainMfaPrompt, CommandMfaPrompt, MfaPrompt, NoMfaPrompt, SharedMfaPrompt, StaticMfaCode,
        TERMINAL_ATTEMPTS, TerminalMfaPrompt,
    };
    use session_core::{Error, Result, Secret};

    const SERIAL: &str = "arn:aws:iam::123456789012:mfa/alice";
    const OTHER_SERIAL: &str = "arn:aws:iam::123456789012:mfa/bob";

    /// A prompt that counts its calls, takes `delay` (tokio time, so paused
    /// in the tests that pause the clock), and answers a new code on each
    /// call (`100001`, `100002`, …), or fails if told to.
    #[derive(Debug)]
    struct Counting {
        calls: AtomicUsize,
        delay: Duration,
        available: AtomicBool,
        fail: bool,
    }

    impl Counting {
        fn new(delay: Duration) -> Arc<Self> {
            Arc::new(Self {
                calls: AtomicUsize::new(0),
                delay,
                available: AtomicBool::new(true),
                fail: false,
            })
        }

        fn failing() -> Arc<Self> {
            Arc::new(Self {
                calls: AtomicUsize::new(0),
                delay: Duration::from_millis(50),
                available: AtomicBool::new(true),
                fail: true,
            })
        }

        fn unavailable() -> Arc<Self> {
            let prompt = Self::new(Duration::ZERO);
            prompt.available.store(false, Ordering::SeqCst);
            prompt
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    #[async_trait::async_trait]
    impl MfaPrompt for Counting {
        async fn code(&self, serial: &str, _purpose: &str) -> Result<Secret> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(self.delay).await;
            if self.fail {
                return Err(Error::provider("test", serial, "the device refused"));
            }
            Ok(Secret::new(format!("{}", 100_000 + n)))
        }

        fn is_available(&self) -> bool {
            self.available.load(Ordering::SeqCst)
        }
    }

    /// Lets every other task run until it waits. On the paused clock of a
    /// current-thread runtime, tokio advances time only when no task can
    /// run, so when this 1 ms sleep ends every spawned task has reached its
    /// first wait, while longer delays (the prompts') are still pending.
    /// There is no event for "this request joined the shared prompt"; this
    /// is the deterministic way to wait for it, and the callers check the
    /// state it leads to.
    async fn settle() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    fn codes(results: Vec<Result<Secret>>) -> Vec<String> {
        results
            .into_iter()
            .map(|r| r.expect("a code").expose().to_owned())
            .collect()
    }

    // ---------------------------------------------------------------------------
    // SharedMfaPrompt
    // ---------------------------------------------------------------------------

    // Paused clock: all ten requests have joined before the prompt's 100 ms
    // can pass, whatever the load. (This used ten threads and relied on all of
    // them arriving within 100 ms of real time. The paused clock needs the
    // current-thread runtime; sharing goes through a std mutex and a
    // OnceCell, which do not depend on the runtime's threads.)
    #[tokio::test(start_paused = true)]
    async fn ten_concurrent_requests_for_one_serial_share_one_prompt() {
        let inner = Counting::new(Duration::from_millis(100));
        let shared = SharedMfaPrompt::new(inner.clone());
        let results = futures::future::join_all((0..10).map(|i| {
            let shared = shared.clone();
            tokio::spawn(async move { shared.code(SERIAL, &format!("request {i}")).await })
        }))
        .await;
        let results = results.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(codes(results), vec!["100001"; 10]);
        assert_eq!(inner.calls(), 1, "one prompt for ten concurrent requests");
    }

    #[tokio::test(start_paused = true)]
    async fn different_serials_prompt_independently() {
        let inner = Counting::new(Duration::from_millis(300));
        let shared = SharedMfaPrompt::new(inner.clone());
        let started = Instant::now();
        let (a, b) = tokio::join!(
            futures::future::join_all((0..5).map(|_| shared.code(SERIAL, "a"))),
            futures::future::join_all((0..5).map(|_| shared.code(OTHER_SERIAL, "b"))),
        );
        let elapsed = started.elapsed();
        let (a, b) = (codes(a), codes(b));
        assert_eq!(inner.calls(), 2, "one prompt per serial");
        assert!(a.iter().all(|c| *c == a[0]), "{a:?}");
        assert!(b.iter().all(|c| *c == b[0]), "{b:?}");
        assert_ne!(a[0], b[0], "each serial got its own code");
        // Paused clock: only the two 300 ms prompts move it, so this is
        // 300 ms when they overlap and 600 ms when one waits for the other.
        assert!(
            elapsed >= Duration::from_millis(300) && elapsed < Duration::from_millis(600),
            "the two prompts ran concurrently, not one after the other: {elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_after_completion_prompts_again() {
        let inner = Counting::new(Duration::from_millis(20));
        let shared = SharedMfaPrompt::new(inner.clone());
        let first = shared.code(SERIAL, "first").await.unwrap();
        let second = shared.code(SERIAL, "second").await.unwrap();
        assert_eq!(inner.calls(), 2, "a spent code is never served again");
        assert_ne!(first, second);
        assert!(
            !format!("{shared:?}").contains(SERIAL),
            "no round left in flight: {shared:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_reaches_every_waiter_and_is_not_cached() {
        let inner = Counting::failing();
        let shared = SharedMfaPrompt::new(inner.clone());
        let results = futures::future::join_all((0..4).map(|_| shared.code(SERIAL, "p"))).await;
        assert_eq!(inner.calls(), 1);
        for result in results {
            assert_eq!(result.unwrap_err().category(), "provider");
        }
        assert!(shared.code(SERIAL, "p").await.is_err());
        assert_eq!(inner.calls(), 2, "the next request asks again");
    }

    // Paused clock: the steps are ordered by `settle` and checked, instead of
    // real sleeps that had to fit inside the prompt's 200 ms.
    #[tokio::test(start_paused = true)]
    async fn a_waiter_takes_over_when_the_first_request_is_cancelled() {
        let inner = Counting::new(Duration::from_millis(200));
        let shared = SharedMfaPrompt::new(inner.clone());
        let first = tokio::spawn({
            let shared = shared.clone();
            async move { shared.code(SERIAL, "first").await }
        });
        settle().await;
        assert_eq!(inner.calls(), 1, "the first request is prompting");
        let second = tokio::spawn({
            let shared = shared.clone();
            async move { shared.code(SERIAL, "second").await }
        });
        settle().await;
        assert_eq!(inner.calls(), 1, "the second request waits on that prompt");
        assert!(!second.is_finished());
        first.abort();
        let code = tokio::time::timeout(Duration::from_secs(5), second)
            .await
            .expect("the waiter does not hang")
            .unwrap()
            .unwrap();
        assert_eq!(code.expose(), "100002", "the waiter prompted anew");
        assert_eq!(inner.calls(), 2);
    }

    // ---------------------------------------------------------------------------
    // CommandMfaPrompt
    // ---------------------------------------------------------------------------

    #[cfg(unix)]
    fn sh(script: &str) -> CommandMfaPrompt {
        CommandMfaPrompt::new("sh", ["-c", script])
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn command_prints_the_code() {
        let code = sh("printf '  123456\\n'").code(SERIAL, "p").await.unwrap();
        assert_eq!(code.expose(), "123456");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn command_gets_the_serial_and_purpose_in_its_environment() {
        let script = r#"
        [ "$SESSION_SDK_MFA_SERIAL" = "arn:aws:iam::123456789012:mfa/alice" ] || { echo "serial: $SESSION_SDK_MFA_SERIAL" >&2; exit 1; }
        [ "$SESSION_SDK_MFA_PURPOSE" = "session 'dev' (x)" ] || { echo "purpose: $SESSION_SDK_MFA_PURPOSE" >&2; exit 1; }
        echo 246810
    "#;
        let code = sh(script).code(SERIAL, "session 'dev' (x)").await;
        assert_eq!(code.unwrap().expose(), "246810");

        // The same through the platform shell.
        let code = CommandMfaPrompt::shell(r#"test -n "$SESSION_SDK_MFA_SERIAL" && echo 135791"#)
            .code(SERIAL, "p")
            .await;
        assert_eq!(code.unwrap().expose(), "135791");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn command_output_that_is_not_six_digits_is_refused() {
        for output in ["98765", "9876543", "98a765", "987654 456789", ""] {
            let err = sh(&format!("echo '{output}'"))
                .code(SERIAL, "p")
                .await
                .unwrap_err();
            assert_eq!(err.category(), "invalid_input", "{output:?}: {err}");
            let text = err.to_string();
            assert!(text.contains(SERIAL), "{text}");
            if !output.is_empty() {
                assert!(!text.contains(output), "the output is not echoed: {text}");
            }
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn command_failure_reports_stderr_but_never_the_code() {
        let err = sh(
            "echo 987654; echo 'device locked: 987654 rejected' >&2; echo 'try later' >&2; exit 3",
        )
        .code(SERIAL, "p")
        .await
        .unwrap_err();
        let text = err.to_string();
        assert_eq!(err.category(), "provider", "{text}");
        assert!(text.contains("device locked"), "{text}");
        assert!(text.contains("try later"), "{text}");
        assert!(text.contains('3'), "the exit status: {text}");
        assert!(text.contains(SERIAL), "{text}");
        assert!(!text.contains("987654"), "the code is redacted: {text}");
    }

    // A real subprocess, so real time (tokio's paused clock would fire the
    // timeout before `sh` even ran). The timeout leaves `sh` ample time to
    // write its pid first, even on a loaded machine; the pid file is the
    // event that it ran. The bounds: not before the timeout, and far less
    // than the program's 300 s (it was killed, not waited for).
    #[cfg(unix)]
    #[tokio::test]
    async fn command_that_runs_too_long_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let script = format!("echo $$ > '{}'; exec sleep 300", pid_file.display());
        let timeout = Duration::from_secs(2);
        let started = std::time::Instant::now();
        let err = sh(&script)
            .with_timeout(timeout)
            .code(SERIAL, "p")
            .await
            .unwrap_err();
        let elapsed = started.elapsed();
        assert!(elapsed >= timeout, "waited for the timeout: {elapsed:?}");
        assert!(
            elapsed < Duration::from_secs(60),
            "killed, not waited for: {elapsed:?}"
        );
        assert_eq!(err.category(), "timeout", "{err}");
        assert!(err.to_string().contains(SERIAL), "{err}");

        let pid = std::fs::read_to_string(&pid_file).unwrap_or_else(|e| {
            panic!("the program did not write its pid within {timeout:?} ({e})")
        });
        let pid = pid.trim();
        assert!(!pid.is_empty());
        // `kill -0` succeeds while the process exists (a zombie included).
        let alive = std::process::Command::new("kill")
            .args(["-0", pid])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(!alive, "process {pid} is gone");
    }

    #[tokio::test]
    async fn command_that_cannot_start_names_the_program() {
        let err = CommandMfaPrompt::new("/nonexistent/mfa-helper", ["--secret-arg"])
            .code(SERIAL, "p")
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/nonexistent/mfa-helper"), "{text}");
        assert!(text.contains(SERIAL), "{text}");
        assert!(
            !text.contains("--secret-arg"),
            "arguments are not shown: {text}"
        );
    }

    // ---------------------------------------------------------------------------
    // ChainMfaPrompt
    // ---------------------------------------------------------------------------

    #[tokio::test]
    async fn chain_uses_the_first_available_source() {
        let off = Counting::unavailable();
        let second = Counting::new(Duration::ZERO);
        let third = Counting::new(Duration::ZERO);
        let chain = ChainMfaPrompt::new(vec![off.clone(), second.clone(), third.clone()]);
        assert!(chain.is_available());
        chain.code(SERIAL, "p").await.unwrap();
        assert_eq!((off.calls(), second.calls(), third.calls()), (0, 1, 0));

        second.available.store(false, Ordering::SeqCst);
        chain.code(SERIAL, "p").await.unwrap();
        assert_eq!((off.calls(), second.calls(), third.calls()), (0, 1, 1));
    }

    #[tokio::test]
    async fn chain_does_not_fall_through_on_a_failure() {
        let failing = Counting::failing();
        let next = Counting::new(Duration::ZERO);
        let chain = ChainMfaPrompt::new(vec![failing.clone(), next.clone()]);
        let err = chain.code(SERIAL, "p").await.unwrap_err();
        assert_eq!(err.category(), "provider");
        assert_eq!((failing.calls(), next.calls()), (1, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn chain_explicit_code_then_command_then_missing_terminal_then_error() {
        let explicit = StaticMfaCode::single_use(Secret::new("111111")).unwrap();
        let command = Counting::new(Duration::ZERO);
        let terminal = TerminalMfaPrompt::with_paths("/nonexistent/tty", "/nonexistent/tty");
        let chain = ChainMfaPrompt::default()
            .then(Arc::new(explicit))
            .then(command.clone())
            .then(Arc::new(terminal))
            .then(Arc::new(NoMfaPrompt));

        assert_eq!(chain.code(SERIAL, "p").await.unwrap().expose(), "111111");
        assert_eq!(chain.code(SERIAL, "p").await.unwrap().expose(), "100001");
        command.available.store(false, Ordering::SeqCst);

        // Paused clock: any wait for a prompt (its timeout, a retry delay)
        // would move it; failing at once leaves it where it was.
        let started = Instant::now();
        let err = chain.code(SERIAL, "session 'dev'").await.unwrap_err();
        assert_eq!(started.elapsed(), Duration::ZERO, "failed at once");
        assert!(!chain.is_available());
        let text = err.to_string();
        assert_eq!(err.category(), "invalid_input", "{text}");
        assert!(text.contains(SERIAL), "{text}");
        assert!(text.contains("session 'dev'"), "{text}");
        assert!(text.contains("MFA command"), "{text}");
    }

    // ---------------------------------------------------------------------------
    // TerminalMfaPrompt with injected streams or paths
    // ---------------------------------------------------------------------------

    /// Collects what the prompt writes.
    #[derive(Clone, Default)]
    struct Screen(Arc<Mutex<Vec<u8>>>);

    impl Screen {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    impl Write for Screen {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn typed(input: &'static str, screen: &Screen) -> TerminalMfaPrompt {
        let screen = screen.clone();
        TerminalMfaPrompt::with_streams(move || Ok((io::Cursor::new(input), screen.clone())))
    }

    // Paused clock, as in the chain test above: failing fast means no wait.
    #[tokio::test(start_paused = true)]
    async fn terminal_without_a_terminal_fails_fast_naming_the_serial() {
        let prompt = TerminalMfaPrompt::with_paths("/nonexistent/tty", "/nonexistent/tty");
        assert!(!prompt.is_available());
        let started = Instant::now();
        let err = prompt.code(SERIAL, "session 'dev'").await.unwrap_err();
        let elapsed = started.elapsed();
        let text = err.to_string();
        assert_eq!(elapsed, Duration::ZERO, "failed at once");
        assert_eq!(err.category(), "invalid_input", "{text}");
        assert!(text.contains(SERIAL), "{text}");
        assert!(text.contains("no terminal"), "{text}");
        assert!(text.contains("MFA command"), "suggests a command: {text}");

        let opener_fails =
            TerminalMfaPrompt::with_streams(|| -> io::Result<(io::Empty, io::Sink)> {
                Err(io::Error::new(io::ErrorKind::NotFound, "no device"))
            });
        let err = opener_fails.code(SERIAL, "p").await.unwrap_err();
        assert_eq!(err.category(), "invalid_input", "{err}");
        assert!(err.to_string().contains(SERIAL), "{err}");
    }

    #[tokio::test]
    async fn terminal_reads_a_code_and_writes_the_prompt_to_the_terminal() {
        let screen = Screen::default();
        let code = typed(" 424242 \n", &screen)
            .code(SERIAL, "session 'dev'")
            .await
            .unwrap();
        assert_eq!(code.expose(), "424242");
        let shown = screen.text();
        assert_eq!(shown, format!("MFA code for {SERIAL} (session 'dev'): "));
    }

    #[tokio::test]
    async fn terminal_reasks_on_malformed_entries() {
        let screen = Screen::default();
        let code = typed("12ab56\n\n654321\n", &screen)
            .code(SERIAL, "p")
            .await
            .unwrap();
        assert_eq!(code.expose(), "654321");
        let shown = screen.text();
        assert_eq!(shown.matches("MFA code for").count(), 3, "{shown}");
        assert!(shown.contains("not a 6-digit code"), "{shown}");
        assert!(!shown.contains("12ab56"), "{shown}");
    }

    #[tokio::test]
    async fn terminal_gives_up_after_three_malformed_entries() {
        assert_eq!(TERMINAL_ATTEMPTS, 3);
        let screen = Screen::default();
        let err = typed("1\n22\n333\n444444\n", &screen)
            .code(SERIAL, "p")
            .await
            .unwrap_err();
        assert_eq!(err.category(), "invalid_input", "{err}");
        assert!(err.to_string().contains(SERIAL), "{err}");
        assert_eq!(screen.text().matches("MFA code for").count(), 3);
    }

    /// A terminal input (a pipe) that tells the test each newline it
    /// delivered, so a test waits for "that line was read" instead of
    /// sleeping.
    struct Keyboard {
        input: io::PipeReader,
        newlines: mpsc::Sender<()>,
    }

    impl io::Read for Keyboard {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.input.read(buf)?;
            if buf[..n].contains(&b'\n') {
                let _ = self.newlines.send(());
            }
            Ok(n)
        }
    }

    /// Waits, in real time and off the runtime's thread, for the next
    /// newline a [`Keyboard`] delivered.
    async fn newline_read(newlines: mpsc::Receiver<()>) -> mpsc::Receiver<()> {
        tokio::task::spawn_blocking(move || {
            newlines
                .recv_timeout(Duration::from_secs(10))
                .expect("the line was read within 10 s");
            newlines
        })
        .await
        .unwrap()
    }

    // Real time: the prompt reads on its own OS thread, which tokio's paused
    // clock does not wait for (it would time out every prompt before the
    // thread ran). So the bounds are generous, and the order of events comes
    // from the screen and from the keyboard's newline events, not sleeps.
    #[tokio::test]
    async fn terminal_times_out_and_never_uses_a_late_answer() {
        let (reader, mut keyboard) = io::pipe().unwrap();
        let (newline_tx, newlines) = mpsc::channel();
        let screen = Screen::default();
        let timeout = Duration::from_secs(1);
        let prompt = {
            let screen = screen.clone();
            TerminalMfaPrompt::with_streams(move || {
                let input = Keyboard {
                    input: reader.try_clone()?,
                    newlines: newline_tx.clone(),
                };
                Ok((input, screen.clone()))
            })
            .with_timeout(timeout)
        };

        let started = std::time::Instant::now();
        let err = prompt.code(SERIAL, "p").await.unwrap_err();
        let elapsed = started.elapsed();
        assert_eq!(err.category(), "timeout", "{err}");
        assert!(err.to_string().contains(SERIAL), "{err}");
        assert!(
            elapsed >= timeout && elapsed < Duration::from_secs(30),
            "{elapsed:?}"
        );
        let shown = screen.text();
        assert!(
            shown.starts_with("MFA code for") && shown.ends_with("giving up.\n"),
            "the prompt, then the note: {shown:?}"
        );

        // The reader of the timed-out prompt still waits for a line: a second
        // reader on the same terminal would split the input, so this fails now.
        let err = prompt.code(SERIAL, "p").await.unwrap_err();
        assert_eq!(err.category(), "unavailable", "{err}");

        // A late answer to the timed-out prompt: its reader takes it (byte by
        // byte, so only this line) and the prompt must throw it away.
        keyboard.write_all(b"999999\n").unwrap();
        let _newlines = newline_read(newlines).await;
        keyboard.write_all(b"222333\n").unwrap();
        // Between reading its newline and handing the line over, the old
        // reader still holds the terminal (there is no event for the hand-over
        // outside the prompt), and a request then is refused as unavailable:
        // retry on exactly that, for a bounded time. A longer timeout for the
        // new prompt (a clone shares the old reader) keeps load from failing it.
        let patient = prompt.clone().with_timeout(Duration::from_secs(30));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let code = loop {
            match patient.code(SERIAL, "p").await {
                Err(e) if e.category() == "unavailable" && std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                other => break other.unwrap(),
            }
        };
        assert_eq!(code.expose(), "222333", "the late answer was thrown away");
    }

    #[tokio::test]
    async fn debug_output_never_shows_codes_or_arguments() {
        let canary = "739104";
        let shared =
            SharedMfaPrompt::new(Arc::new(StaticMfaCode::new(Secret::new(canary)).unwrap()));
        assert_eq!(shared.code(SERIAL, "p").await.unwrap().expose(), canary);
        let single = StaticMfaCode::single_use(Secret::new(canary)).unwrap();
        let command = CommandMfaPrompt::new("helper", ["--password", "hunter2"]);
        let chain = ChainMfaPrompt::new(vec![
            Arc::new(single.clone()),
            Arc::new(command.clone()),
            Arc::new(TerminalMfaPrompt::new()),
        ]);
        for printed in [
            format!("{shared:?}"),
            format!("{single:?}"),
            format!("{command:?}"),
            format!("{chain:#?}"),
        ] {
            assert!(!printed.contains(canary), "{printed}");
            assert!(!printed.contains("hunter2"), "{printed}");
        }
        assert!(format!("{command:?}").contains("helper"));
    }

    // ---------------------------------------------------------------------------
    // TerminalMfaPrompt on a real pseudo-terminal (Linux, Python's `pty`)
    // ---------------------------------------------------------------------------

    #[cfg(target_os = "linux")]
    mod pty {
        use std::path::PathBuf;
        use std::process::Command;
        use std::time::{Duration, Instant};

        use session_aws::mfa::{MfaPrompt, TerminalMfaPrompt};
        use session_testkit::peers::{peers_python, require_peer};

        const PTY_SERIAL: &str = "arn:aws:iam::123456789012:mfa/pty";

        /// Runs this test binary's `pty_child` test, as a session leader under a
        /// new pseudo-terminal (mode `prompt`/`timeout`) or without any
        /// controlling terminal (mode `notty`). The child's stdout and stderr go
        /// to a pipe, so the pty shows only what was written to the terminal.
        /// Answers each prompt with the next entry of `MFA_PTY_INPUTS` once the
        /// terminal's echo is off. Prints a JSON report.
        const DRIVER: &str = r#"
import json, os, pty, select, subprocess, sys, termios, time
exe, mode = sys.argv[1], os.environ["MFA_PTY_CHILD_MODE"]
inputs = json.loads(os.environ.get("MFA_PTY_INPUTS", "[]"))
argv = [exe, "--ignored", "--exact", "mfa::pty::pty_child", "--nocapture", "--test-threads=1"]
report = {"tty": "", "echo_off": [], "hung": False}
started = time.monotonic()
if mode == "notty":
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                       start_new_session=True, timeout=60)
    report.update(stdout=(p.stdout + p.stderr).decode(errors="replace"), status=p.returncode,
                  seconds=time.monotonic() - started)
    print(json.dumps(report))
    sys.exit(0)
r, w = os.pipe()
pid, master = pty.fork()
if pid == 0:
    os.dup2(w, 1); os.dup2(w, 2); os.close(r); os.close(w)
    os.execv(exe, argv)
os.close(w)
deadline = started + 30
tty = b""
def pump(until):
    global tty
    while not until():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([master], [], [], min(left, 0.05))
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                return False
            if not chunk:
                return False
            tty += chunk
    return True
def echo_off():
    try:
        return not (termios.tcgetattr(master)[3] & termios.ECHO)
    except termios.error:
        return False
for i, line in enumerate(inputs):
    if not pump(lambda: tty.count(b"MFA code for") > i):
        break
    report["echo_off"].append(pump(echo_off))
    os.write(master, line.encode() + b"\r")
pump(lambda: False)
while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    if time.monotonic() > deadline:
        report["hung"] = True
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        status = -1
        break
    time.sleep(0.05)
out = b""
while True:
    chunk = os.read(r, 65536)
    if not chunk:
        break
    out += chunk
report.update(tty=tty.decode(errors="replace"), stdout=out.decode(errors="replace"),
              status=status, seconds=time.monotonic() - started)
print(json.dumps(report))
"#;

        fn python() -> Option<PathBuf> {
            require_peer("python3 with pty and termios", || {
                let python = peers_python().unwrap_or_else(|| PathBuf::from("python3"));
                let ok = Command::new(&python)
                    .args(["-c", "import pty, termios, json, select"])
                    .status()
                    .map_err(|e| format!("cannot run {}: {e}", python.display()))?
                    .success();
                if ok {
                    Ok(python)
                } else {
                    Err(format!("{} lacks pty or termios", python.display()))
                }
            })
        }

        struct Report {
            tty: String,
            stdout: String,
            echo_off: Vec<bool>,
            hung: bool,
            seconds: f64,
        }

        fn drive(python: &PathBuf, mode: &str, inputs: &str, timeout_ms: u64) -> Report {
            let output = Command::new(python)
                .arg("-c")
                .arg(DRIVER)
                .arg(std::env::current_exe().unwrap())
                .env("MFA_PTY_CHILD_MODE", mode)
                .env("MFA_PTY_INPUTS", inputs)
                .env("MFA_PTY_TIMEOUT_MS", timeout_ms.to_string())
                .output()
                .unwrap();
            let report: serde_json::Value =
                serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
                    panic!(
                        "driver failed ({e}): {}\n{}",
                        String::from_utf8_lossy(&output.stdout),
                        String::from_utf8_lossy(&output.stderr)
                    )
                });
            Report {
                tty: report["tty"].as_str().unwrap().to_owned(),
                stdout: report["stdout"].as_str().unwrap().to_owned(),
                echo_off: report["echo_off"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_bool().unwrap())
                    .collect(),
                hung: report["hung"].as_bool().unwrap(),
                seconds: report["seconds"].as_f64().unwrap(),
            }
        }

        /// The program the driver runs under the pty: asks for a code on the
        /// controlling terminal and prints what happened to stdout (a pipe).
        #[tokio::test]
        #[ignore = "helper: run under a pseudo-terminal by the other pty tests"]
        async fn pty_child() {
            if std::env::var_os("MFA_PTY_CHILD_MODE").is_none() {
                return; // run by hand (e.g. `--include-ignored`): do not prompt on a real terminal
            }
            let timeout_ms: u64 = std::env::var("MFA_PTY_TIMEOUT_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(10_000);
            let stty = || {
                let tty = std::fs::File::open("/dev/tty").ok()?;
                let out = Command::new("stty").arg("-g").stdin(tty).output().ok()?;
                Some(String::from_utf8_lossy(&out.stdout).into_owned())
            };
            let before = stty();
            let prompt = TerminalMfaPrompt::new().with_timeout(Duration::from_millis(timeout_ms));
            let started = Instant::now();
            let result = prompt.code(PTY_SERIAL, "pty test").await;
            let elapsed = started.elapsed();
            match result {
                Ok(code) => println!("RESULT ok {}", code.expose()),
                Err(e) => println!("RESULT err {} {e}", e.category()),
            }
            println!("ELAPSED_MS {}", elapsed.as_millis());
            println!("STTY_RESTORED {}", before == stty());
        }

        #[test]
        fn terminal_prompt_on_a_pty_hides_the_entry_and_reasks() {
            let Some(python) = python() else { return };
            let report = drive(&python, "prompt", r#"["12ab56", "654321"]"#, 20_000);
            assert!(!report.hung, "the child finished");
            let prompt = format!("MFA code for {PTY_SERIAL} (pty test): ");
            assert_eq!(
                report.tty.matches(&prompt).count(),
                2,
                "tty: {:?}",
                report.tty
            );
            assert!(
                report.tty.contains("not a 6-digit code"),
                "{:?}",
                report.tty
            );
            assert_eq!(report.echo_off, [true, true], "echo is off while reading");
            assert!(
                !report.tty.contains("654321"),
                "not echoed: {:?}",
                report.tty
            );
            assert!(
                !report.tty.contains("12ab56"),
                "not echoed: {:?}",
                report.tty
            );
            assert!(
                report.stdout.contains("RESULT ok 654321"),
                "{}",
                report.stdout
            );
            assert!(
                !report.stdout.contains("MFA code for"),
                "nothing on stdout: {}",
                report.stdout
            );
            assert!(
                report.stdout.contains("STTY_RESTORED true"),
                "{}",
                report.stdout
            );
        }

        #[test]
        fn terminal_timeout_on_a_pty_restores_the_terminal_and_exits() {
            let Some(python) = python() else { return };
            let report = drive(&python, "timeout", "[]", 700);
            assert!(
                !report.hung,
                "the program exits after the timeout: {}",
                report.stdout
            );
            assert!(report.seconds < 20.0, "{}", report.seconds);
            assert!(report.tty.contains("MFA code for"), "{:?}", report.tty);
            assert!(report.tty.contains("giving up"), "{:?}", report.tty);
            assert!(
                report.stdout.contains("RESULT err timeout"),
                "{}",
                report.stdout
            );
            assert!(report.stdout.contains(PTY_SERIAL), "{}", report.stdout);
            assert!(
                report.stdout.contains("STTY_RESTORED true"),
                "echo and line mode are back: {}",
                report.stdout
            );
        }

        #[test]
        fn no_controlling_terminal_fails_fast() {
            let Some(python) = python() else { return };
            let report = drive(&python, "notty", "[]", 20_000);
            assert!(
                report.stdout.contains("RESULT err invalid_input"),
                "{}",
                report.stdout
            );
            assert!(report.stdout.contains(PTY_SERIAL), "{}", report.stdout);
            assert!(report.stdout.contains("/dev/tty"), "{}", report.stdout);
            let elapsed_ms: u64 = report
                .stdout
                .split("ELAPSED_MS ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|ms| ms.parse().ok())
                .unwrap_or_else(|| panic!("{}", report.stdout));
            // Measured in the child, a separate process, in real time: the
            // bound is generous for a loaded machine and still far below the
            // 20 s prompt timeout it would wait for if it tried a terminal.
            assert!(elapsed_ms < 5_000, "failed at once: {elapsed_ms} ms");
        }
    }
}
