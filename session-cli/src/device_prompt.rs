//! How sessionctl shows a device sign-in (AWS IAM Identity Center, Entra
//! ID): the instruction on standard error, then a waiting line until the
//! sign-in ends.

use session_sdk::Result;
use session_sdk::device_code::{DeviceCodePrompt, DeviceCodePrompter};

/// Prints the prompt's instruction to standard error and shows the
/// [waiting line](waiting) until the provider reports the sign-in ended.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TerminalPrompter;

#[async_trait::async_trait]
impl DeviceCodePrompter for TerminalPrompter {
    async fn prompt(&self, prompt: &DeviceCodePrompt) -> Result<()> {
        eprintln!("{}", prompt.message);
        waiting::show(prompt.expires_in);
        Ok(())
    }

    async fn finished(&self, prompt: &DeviceCodePrompt, approved: bool) {
        waiting::clear();
        if approved {
            eprintln!("Signed in to {}.", prompt.target);
        }
    }
}

/// The line that shows a device sign-in is being waited for. On a terminal
/// it is redrawn every second with a spinner and the time the code has
/// left, until [`waiting::clear`] (called when the sign-in ends, and when the
/// command ends) erases it;
/// elsewhere (a log, a pipe) it is one plain line.
pub(crate) mod waiting {
    use std::io::{IsTerminal, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::thread::JoinHandle;
    use std::time::{Duration, Instant};

    static CURRENT: Mutex<Option<(Arc<AtomicBool>, JoinHandle<()>)>> = Mutex::new(None);

    const FRAMES: [char; 4] = ['|', '/', '-', '\\'];

    /// Starts the indicator for a code valid for `expires_in`.
    pub(crate) fn show(expires_in: Duration) {
        if !std::io::stderr().is_terminal() {
            eprintln!(
                "Waiting for the sign-in to be approved (the code expires in {} s)…",
                expires_in.as_secs()
            );
            return;
        }
        clear();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let started = Instant::now();
        let thread = std::thread::spawn(move || {
            let mut frame = 0;
            while !flag.load(Ordering::Relaxed) {
                let left = expires_in.saturating_sub(started.elapsed()).as_secs();
                let mut err = std::io::stderr().lock();
                let _ = write!(
                    err,
                    "\r\x1b[2K{} Waiting for the sign-in to be approved ({}:{:02} left)",
                    FRAMES[frame % FRAMES.len()],
                    left / 60,
                    left % 60
                );
                let _ = err.flush();
                drop(err);
                frame += 1;
                // Short sleeps, so `clear` never waits long.
                for _ in 0..10 {
                    if flag.load(Ordering::Relaxed) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
        });
        if let Ok(mut current) = CURRENT.lock() {
            *current = Some((stop, thread));
        }
    }

    /// Stops the indicator and erases its line, if one is shown.
    pub(crate) fn clear() {
        let taken = CURRENT.lock().ok().and_then(|mut c| c.take());
        if let Some((stop, thread)) = taken {
            stop.store(true, Ordering::Relaxed);
            let _ = thread.join();
        }
    }
}
