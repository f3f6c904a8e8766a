//! When the manager resumes a dropped live connection.

use std::time::Duration;

/// How the [`SessionManager`](crate::SessionManager) resumes a live session
/// whose connection was lost ([`EndReason::NetworkLost`](crate::EndReason)).
///
/// Tries are bounded by a **deadline, not a count**: the first try is at
/// once, each later one waits twice as long as the one before (from
/// [`first_backoff`](Self::first_backoff) up to
/// [`max_backoff`](Self::max_backoff)), and no try starts after
/// [`deadline`](Self::deadline) has passed since the drop. A fixed number of
/// tries (the SSM plugin's five) gives up after seconds on a network that
/// comes back after a minute; a deadline says how long the user is prepared
/// to wait. Waits use the manager's [`Clock`](crate::Clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResumePolicy {
    /// Wait after the first failed try. Default 1 second.
    pub first_backoff: Duration,
    /// Longest wait between tries. Default 30 seconds.
    pub max_backoff: Duration,
    /// How long after the drop to keep trying. Default 10 minutes; zero
    /// disables resuming (the session stays `disconnected`).
    pub deadline: Duration,
}

impl Default for ResumePolicy {
    fn default() -> Self {
        Self {
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            deadline: Duration::from_secs(600),
        }
    }
}

impl ResumePolicy {
    /// Sets [`first_backoff`](Self::first_backoff).
    pub fn with_first_backoff(mut self, backoff: Duration) -> Self {
        self.first_backoff = backoff;
        self
    }

    /// Sets [`max_backoff`](Self::max_backoff).
    pub fn with_max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }

    /// Sets [`deadline`](Self::deadline).
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The wait after the `failures`-th failed try in a row (1-based).
    pub fn backoff(&self, failures: u32) -> Duration {
        let doubled = self
            .first_backoff
            .saturating_mul(1u32 << failures.saturating_sub(1).min(20));
        doubled.min(self.max_backoff)
    }
}
