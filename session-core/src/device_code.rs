//! Device-code sign-in (OAuth 2.0 Device Authorization Grant, RFC 8628),
//! without the transport: what to show the user, who shows it, and the
//! polling rules on the injected clock.
//!
//! A provider asks its service for a device code, builds a
//! [`DeviceCodePrompt`], and hands [`poll_device_code`] one closure that
//! makes a single token request and classifies the answer as a
//! [`PollAnswer`]. The loop does the rest the same way for every provider:
//!
//! - it waits the service's `interval` between requests (5 s when the
//!   service names none, RFC 8628 § 3.2) and 5 s more after each
//!   `slow_down` (§ 3.5);
//! - it gives up with [`Error::Unauthenticated`] when the next request would
//!   come when the code has expired, without a last useless wait;
//! - it tolerates a few consecutive retryable errors (network, 5xx);
//! - it shows the prompt once, and tells the prompter when the flow ended
//!   ([`DeviceCodePrompter::finished`]), approved or not, so a spinner or a
//!   dialog can be taken down.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::{Clock, Error, Result};

/// The poll interval when the service names none (RFC 8628 § 3.2).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// What each `slow_down` answer adds to the interval (RFC 8628 § 3.5).
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// Consecutive retryable errors (network, 5xx) tolerated while polling.
pub const MAX_TRANSIENT_POLL_ERRORS: u32 = 3;

/// What the user must do to approve a device sign-in.
///
/// The user code is short-lived and useless without the device code (which
/// is never part of the prompt), so it may be shown; implementations should
/// still write it to stderr or a UI, never to stdout, which may be a
/// `credential_process` pipe.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceCodePrompt {
    /// What is being signed in to, e.g. the AWS start URL or the Entra
    /// tenant, for a UI's title.
    pub target: String,
    /// The code the user confirms or enters (`user_code`).
    pub user_code: String,
    /// Where the code is entered (`verification_uri`).
    pub verification_uri: String,
    /// A link that carries the code, when the service gives one.
    pub verification_uri_complete: Option<String>,
    /// A ready-made instruction in one paragraph: the service's own
    /// `message` when it sends one, else built from the URI and code.
    pub message: String,
    /// How long the code is valid, as the service said (`expires_in`).
    pub expires_in: Duration,
    /// When the code expires, on the injected clock.
    pub expires_at: OffsetDateTime,
}

impl DeviceCodePrompt {
    /// A prompt for `target`; `expires_at` is `now + expires_in`.
    pub fn new(
        target: impl Into<String>,
        user_code: impl Into<String>,
        verification_uri: impl Into<String>,
        expires_in: Duration,
        now: OffsetDateTime,
    ) -> Self {
        let user_code = user_code.into();
        let verification_uri = verification_uri.into();
        let message =
            format!("To sign in, open {verification_uri} and enter the code {user_code}.");
        Self {
            target: target.into(),
            user_code,
            verification_uri,
            verification_uri_complete: None,
            message,
            expires_in,
            expires_at: now + expires_in,
        }
    }

    /// Sets the link that carries the code.
    pub fn with_verification_uri_complete(mut self, uri: Option<String>) -> Self {
        self.verification_uri_complete = uri.filter(|u| !u.trim().is_empty());
        self
    }

    /// Replaces the instruction, e.g. with the service's own `message`;
    /// an empty one keeps the built one.
    pub fn with_message(mut self, message: Option<String>) -> Self {
        if let Some(message) = message.filter(|m| !m.trim().is_empty()) {
            self.message = message;
        }
        self
    }

    /// The page to open: the one carrying the code when there is one.
    pub fn url(&self) -> &str {
        self.verification_uri_complete
            .as_deref()
            .unwrap_or(&self.verification_uri)
    }
}

/// Shows a device sign-in to the user (terminal, GUI, browser opener).
///
/// [`poll_device_code`] calls [`prompt`](Self::prompt) at most once per
/// sign-in, and [`finished`](Self::finished) exactly once after a prompt was
/// shown. A sign-in served from a cache or by a refresh shows nothing.
#[async_trait::async_trait]
pub trait DeviceCodePrompter: Send + Sync + fmt::Debug {
    /// Shows `prompt`. An error abandons the sign-in (e.g. no one is there
    /// to approve it).
    async fn prompt(&self, prompt: &DeviceCodePrompt) -> Result<()>;

    /// The sign-in ended: `approved` is true when a token was obtained.
    /// The default does nothing; a spinner or dialog is taken down here.
    async fn finished(&self, prompt: &DeviceCodePrompt, approved: bool) {
        let _ = (prompt, approved);
    }
}

/// Writes the prompt's instruction to **stderr** (never stdout).
#[derive(Debug, Default, Clone, Copy)]
pub struct StderrPrompter;

#[async_trait::async_trait]
impl DeviceCodePrompter for StderrPrompter {
    async fn prompt(&self, prompt: &DeviceCodePrompt) -> Result<()> {
        eprintln!("{}\nWaiting for approval…", prompt.message);
        Ok(())
    }

    async fn finished(&self, prompt: &DeviceCodePrompt, approved: bool) {
        if approved {
            eprintln!("Signed in to {}.", prompt.target);
        }
    }
}

/// Refuses every interactive sign-in, for callers that must fail fast (a
/// `credential_process`, a daemon) instead of waiting for an approval no one
/// sees. Cached and refreshable sign-ins still work.
#[derive(Debug, Default, Clone, Copy)]
pub struct NonInteractivePrompter;

#[async_trait::async_trait]
impl DeviceCodePrompter for NonInteractivePrompter {
    async fn prompt(&self, prompt: &DeviceCodePrompt) -> Result<()> {
        Err(Error::Unauthenticated {
            target: format!("sign-in to {}", prompt.target),
            message: "the stored sign-in is missing or expired and cannot be refreshed; \
                      an interactive sign-in is needed (start the session from a terminal)"
                .to_owned(),
        })
    }
}

/// A prompter made of a closure that shows the prompt; `finished` does
/// nothing. For callers that only print.
pub struct FnPrompter(Arc<dyn Fn(&DeviceCodePrompt) + Send + Sync>);

impl FnPrompter {
    /// Shows prompts with `show`.
    pub fn new(show: impl Fn(&DeviceCodePrompt) + Send + Sync + 'static) -> Self {
        Self(Arc::new(show))
    }
}

impl fmt::Debug for FnPrompter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnPrompter(..)")
    }
}

#[async_trait::async_trait]
impl DeviceCodePrompter for FnPrompter {
    async fn prompt(&self, prompt: &DeviceCodePrompt) -> Result<()> {
        (self.0)(prompt);
        Ok(())
    }
}

/// How one token request of a device sign-in was answered, as classified by
/// the provider. Errors other than these (declined, expired code, bad
/// client) are returned as `Err` by the poll closure and end the sign-in,
/// unless they are retryable.
#[derive(Debug)]
pub enum PollAnswer<T> {
    /// Approved: the token.
    Granted(T),
    /// `authorization_pending`: not approved yet.
    Pending,
    /// `slow_down`: poll less often.
    SlowDown,
}

/// The polling rules of one device sign-in.
#[derive(Clone, Debug)]
pub struct DeviceCodePolling {
    interval: Duration,
    poll_before_prompt: bool,
}

impl DeviceCodePolling {
    /// Polls every `interval` as the service named it; `None` or zero means
    /// [`DEFAULT_POLL_INTERVAL`].
    pub fn new(interval: Option<Duration>) -> Self {
        Self {
            interval: interval
                .filter(|i| !i.is_zero())
                .unwrap_or(DEFAULT_POLL_INTERVAL),
            poll_before_prompt: false,
        }
    }

    /// Makes one request before showing the prompt, as the AWS CLI does: an
    /// authorization that is already approved needs no prompt. Off by
    /// default (prompt, wait one interval, then poll).
    pub fn poll_before_prompt(mut self, first: bool) -> Self {
        self.poll_before_prompt = first;
        self
    }

    /// The interval before any `slow_down`.
    pub fn interval(&self) -> Duration {
        self.interval
    }
}

/// Runs a device sign-in: shows `prompt` through `prompter` and calls
/// `poll_once` until it grants a token, fails, or the code expires (see the
/// [module docs](self) for the rules). `what` names the sign-in in errors
/// and logs, e.g. the session label.
pub async fn poll_device_code<T, F, Fut>(
    rules: &DeviceCodePolling,
    prompt: &DeviceCodePrompt,
    prompter: &dyn DeviceCodePrompter,
    clock: &dyn Clock,
    what: &str,
    mut poll_once: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<PollAnswer<T>>>,
{
    let mut interval = rules.interval;
    let mut prompted = false;
    if !rules.poll_before_prompt {
        prompter.prompt(prompt).await?;
        prompted = true;
    }
    let mut transient = 0;
    let mut wait = !rules.poll_before_prompt;
    let outcome = loop {
        if wait {
            let next = clock.now() + interval;
            if next >= prompt.expires_at {
                break Err(Error::Unauthenticated {
                    target: what.to_owned(),
                    message: format!(
                        "the device sign-in (code {}) was not approved within {}s and the code \
                         expired; start the sign-in again",
                        prompt.user_code,
                        prompt.expires_in.as_secs()
                    ),
                });
            }
            clock.sleep_until(next).await;
        }
        wait = true;
        match poll_once().await {
            Ok(PollAnswer::Granted(token)) => break Ok(token),
            Ok(PollAnswer::Pending) => transient = 0,
            Ok(PollAnswer::SlowDown) => {
                transient = 0;
                interval += SLOW_DOWN_STEP;
                tracing::debug!(sign_in = %what, interval_secs = interval.as_secs(), "slow_down: polling less often");
            }
            Err(error) if error.is_retryable() && transient < MAX_TRANSIENT_POLL_ERRORS => {
                transient += 1;
                tracing::warn!(sign_in = %what, error = %error, "a device sign-in poll failed; retrying");
            }
            Err(error) => break Err(error),
        }
        if !prompted {
            // A refused prompt abandons the sign-in; nothing was shown, so
            // there is nothing to finish.
            prompter.prompt(prompt).await?;
            prompted = true;
        }
    };
    if prompted {
        prompter.finished(prompt, outcome.is_ok()).await;
    }
    outcome
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::ManualClock;

    #[derive(Debug, Default)]
    struct Recorder {
        prompts: AtomicUsize,
        finished: Mutex<Vec<bool>>,
    }

    #[async_trait::async_trait]
    impl DeviceCodePrompter for Recorder {
        async fn prompt(&self, _: &DeviceCodePrompt) -> Result<()> {
            self.prompts.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        async fn finished(&self, _: &DeviceCodePrompt, approved: bool) {
            self.finished.lock().unwrap().push(approved);
        }
    }

    fn start() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
    }

    /// Runs a sign-in whose polls answer `script` in order, with a manual
    /// clock moved to each sleep's deadline; returns the outcome and the
    /// seconds (since start) at which each poll was made.
    async fn run(
        rules: DeviceCodePolling,
        expires_in: u64,
        script: Vec<Result<PollAnswer<&'static str>>>,
        prompter: &Recorder,
    ) -> (Result<&'static str>, Vec<i64>) {
        let clock = Arc::new(ManualClock::new(start()));
        let prompt = DeviceCodePrompt::new(
            "tenant",
            "ABCD-EFGH",
            "https://login.example/device",
            Duration::from_secs(expires_in),
            clock.now(),
        );
        let advance = {
            let clock = clock.clone();
            tokio::spawn(async move {
                loop {
                    if clock.sleepers() > 0 {
                        clock.advance(Duration::from_secs(1));
                    }
                    tokio::task::yield_now().await;
                }
            })
        };
        let times = Mutex::new(Vec::new());
        let script = Mutex::new(script.into_iter());
        let outcome = poll_device_code(&rules, &prompt, prompter, &*clock, "test", || {
            times
                .lock()
                .unwrap()
                .push((clock.now() - start()).whole_seconds());
            let next = script
                .lock()
                .unwrap()
                .next()
                .expect("polled past the script");
            async move { next }
        })
        .await;
        advance.abort();
        (outcome, times.into_inner().unwrap())
    }

    #[tokio::test]
    async fn waits_the_interval_and_slows_down_by_five_seconds() {
        let prompter = Recorder::default();
        let (outcome, times) = run(
            DeviceCodePolling::new(Some(Duration::from_secs(2))),
            900,
            vec![
                Ok(PollAnswer::Pending),
                Ok(PollAnswer::SlowDown),
                Ok(PollAnswer::Pending),
                Ok(PollAnswer::Granted("token")),
            ],
            &prompter,
        )
        .await;
        assert_eq!(outcome.unwrap(), "token");
        // Prompt first, then 2 s, 2 s, then 7 s after the slow_down.
        assert_eq!(times, vec![2, 4, 11, 18]);
        assert_eq!(prompter.prompts.load(Ordering::SeqCst), 1);
        assert_eq!(*prompter.finished.lock().unwrap(), vec![true]);
    }

    #[tokio::test]
    async fn poll_before_prompt_skips_the_prompt_when_already_approved() {
        let prompter = Recorder::default();
        let rules = DeviceCodePolling::new(None).poll_before_prompt(true);
        let (outcome, times) = run(rules, 600, vec![Ok(PollAnswer::Granted("t"))], &prompter).await;
        assert_eq!(outcome.unwrap(), "t");
        assert_eq!(times, vec![0]);
        assert_eq!(prompter.prompts.load(Ordering::SeqCst), 0);
        assert!(prompter.finished.lock().unwrap().is_empty());

        let prompter = Recorder::default();
        let rules = DeviceCodePolling::new(None).poll_before_prompt(true);
        let (outcome, times) = run(
            rules,
            600,
            vec![Ok(PollAnswer::Pending), Ok(PollAnswer::Granted("t"))],
            &prompter,
        )
        .await;
        assert_eq!(outcome.unwrap(), "t");
        assert_eq!(times, vec![0, 5], "the default interval is 5 s");
        assert_eq!(prompter.prompts.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn expiry_ends_the_sign_in_without_a_last_useless_wait() {
        let prompter = Recorder::default();
        let rules = DeviceCodePolling::new(Some(Duration::from_secs(4)));
        let (outcome, times) = run(
            rules,
            10,
            vec![Ok(PollAnswer::Pending), Ok(PollAnswer::Pending)],
            &prompter,
        )
        .await;
        let error = outcome.unwrap_err();
        assert_eq!(error.category(), "unauthenticated");
        assert!(error.to_string().contains("ABCD-EFGH"), "{error}");
        assert!(error.to_string().contains("within 10s"), "{error}");
        assert_eq!(times, vec![4, 8]);
        assert_eq!(*prompter.finished.lock().unwrap(), vec![false]);
    }

    #[tokio::test]
    async fn retryable_errors_are_tolerated_three_times_in_a_row() {
        let unavailable = || {
            Err(Error::Unavailable {
                target: "idp".into(),
                message: "503".into(),
                source: None,
            })
        };
        let prompter = Recorder::default();
        let (outcome, _) = run(
            DeviceCodePolling::new(Some(Duration::from_secs(1))),
            600,
            vec![
                unavailable(),
                unavailable(),
                unavailable(),
                Ok(PollAnswer::Pending),
                unavailable(),
                Ok(PollAnswer::Granted("t")),
            ],
            &prompter,
        )
        .await;
        assert_eq!(outcome.unwrap(), "t");

        let prompter = Recorder::default();
        let (outcome, times) = run(
            DeviceCodePolling::new(Some(Duration::from_secs(1))),
            600,
            vec![unavailable(), unavailable(), unavailable(), unavailable()],
            &prompter,
        )
        .await;
        assert_eq!(outcome.unwrap_err().category(), "unavailable");
        assert_eq!(times.len(), 4);
    }

    #[tokio::test]
    async fn a_refusal_ends_at_once_and_a_failing_prompt_abandons() {
        let prompter = Recorder::default();
        let (outcome, times) = run(
            DeviceCodePolling::new(None),
            600,
            vec![Err(Error::PermissionDenied {
                target: "idp".into(),
                message: "declined".into(),
            })],
            &prompter,
        )
        .await;
        assert_eq!(outcome.unwrap_err().category(), "permission_denied");
        assert_eq!(times.len(), 1);
        assert_eq!(*prompter.finished.lock().unwrap(), vec![false]);

        let clock = ManualClock::new(start());
        let prompt =
            DeviceCodePrompt::new("t", "C", "https://x", Duration::from_secs(60), clock.now());
        let polled = AtomicUsize::new(0);
        let outcome: Result<()> = poll_device_code(
            &DeviceCodePolling::new(None),
            &prompt,
            &NonInteractivePrompter,
            &clock,
            "test",
            || {
                polled.fetch_add(1, Ordering::SeqCst);
                async { Ok(PollAnswer::Pending) }
            },
        )
        .await;
        assert_eq!(outcome.unwrap_err().category(), "unauthenticated");
        assert_eq!(
            polled.load(Ordering::SeqCst),
            0,
            "no poll after a refused prompt"
        );
    }

    #[test]
    fn prompt_builders() {
        let prompt = DeviceCodePrompt::new(
            "t",
            "CODE",
            "https://x/device",
            Duration::from_secs(60),
            start(),
        )
        .with_verification_uri_complete(Some("https://x/device?code=CODE".into()))
        .with_message(Some("  ".into()));
        assert_eq!(prompt.url(), "https://x/device?code=CODE");
        assert_eq!(
            prompt.message,
            "To sign in, open https://x/device and enter the code CODE."
        );
        assert_eq!(prompt.expires_at, start() + Duration::from_secs(60));
        let prompt = prompt.with_message(Some("Go to x".into()));
        assert_eq!(prompt.message, "Go to x");
    }
}
