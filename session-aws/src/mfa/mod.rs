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
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use session_core::{Error, Result, Secret};
use tokio::sync::OnceCell;

mod command;
mod terminal;

pub use command::{CommandMfaPrompt, PURPOSE_ENV, SERIAL_ENV};
pub use terminal::{TERMINAL_ATTEMPTS, TerminalMfaPrompt};

/// How long a terminal prompt or an MFA command may take by default.
pub const DEFAULT_PROMPT_TIMEOUT: Duration = Duration::from_secs(60);

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
    hint: Option<String>,
}

impl ChainMfaPrompt {
    /// A chain trying `prompts` in this order.
    pub fn new(prompts: Vec<Arc<dyn MfaPrompt>>) -> Self {
        Self {
            prompts,
            hint: None,
        }
    }

    /// What the error says to do when no source is available, in the words
    /// of the program around it (e.g. which environment variable sets the
    /// MFA command). By default it names the library's sources.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
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
        let hint = self.hint.as_deref().unwrap_or(
            "pass a code, configure an MFA command (mfa_process), or run the command in a \
             terminal",
        );
        Err(Error::invalid_input(
            "MFA code",
            format!(
                "{purpose} needs a code for MFA device {serial}, and no MFA source is available \
                 here (no code given, no MFA command configured, no terminal); {hint}"
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

#[cfg(test)]
mod tests {
    use super::*;

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
