//! Injected time, so that expiry and rotation can be tested without sleeping.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;

/// The source of "now" for everything about expiry and rotation.
///
/// Nothing in this crate reads the wall clock except [`SystemClock`]
/// (clippy's `disallowed-methods` enforces it), so a test can drive time with
/// [`ManualClock`].
#[async_trait::async_trait]
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time, in UTC.
    fn now(&self) -> OffsetDateTime;

    /// Completes once [`now`](Clock::now) is at or past `deadline`.
    async fn sleep_until(&self, deadline: OffsetDateTime);
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

/// The longest single sleep of [`SystemClock::sleep_until`]. Tokio sleeps on
/// the monotonic clock, which stops while a laptop is suspended; waking at
/// least this often and re-reading the wall clock means a rotation that fell
/// due during suspend runs within this long of resume.
const MAX_SYSTEM_SLEEP: Duration = Duration::from_secs(15);

#[async_trait::async_trait]
impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place that reads the wall clock
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    async fn sleep_until(&self, deadline: OffsetDateTime) {
        loop {
            let left = deadline - self.now();
            if left <= time::Duration::ZERO {
                return;
            }
            let left = Duration::try_from(left).unwrap_or(MAX_SYSTEM_SLEEP);
            tokio::time::sleep(left.min(MAX_SYSTEM_SLEEP)).await;
        }
    }
}

/// A clock that moves only when told to. For tests and simulations.
///
/// ```
/// use session_core::{Clock, ManualClock};
/// use std::time::Duration;
/// let clock = ManualClock::new(time::macros::datetime!(2030-01-01 0:00 UTC));
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(clock.now(), time::macros::datetime!(2030-01-01 0:01:30 UTC));
/// ```
pub struct ManualClock {
    now: Mutex<OffsetDateTime>,
    tick: watch::Sender<OffsetDateTime>,
    /// The deadline of every task in `sleep_until`, one entry per task.
    deadlines: Mutex<Vec<OffsetDateTime>>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: OffsetDateTime) -> Self {
        let (tick, _) = watch::channel(start);
        Self {
            now: Mutex::new(start),
            tick,
            deadlines: Mutex::new(Vec::new()),
        }
    }

    /// Moves time forward and wakes every sleeper whose deadline has passed.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
        self.tick.send_replace(*now);
    }

    /// Sets the time (forward or backward) and wakes sleepers.
    pub fn set(&self, to: OffsetDateTime) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now = to;
        self.tick.send_replace(to);
    }

    /// How many tasks are waiting in [`Clock::sleep_until`], so a test can
    /// wait until a background task has gone to sleep before advancing.
    pub fn sleepers(&self) -> usize {
        self.tick.receiver_count()
    }

    /// How many tasks are asleep until a time still ahead of
    /// [`now`](Clock::now). Unlike [`sleepers`](Self::sleepers), a task
    /// whose deadline an [`advance`](Self::advance) has passed (it is waking
    /// up) is not counted, so after an advance a test can wait until a
    /// background task has done its work and gone back to sleep, without a
    /// grace period in real time.
    pub fn sleepers_ahead(&self) -> usize {
        let now = self.now();
        self.deadlines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|deadline| **deadline > now)
            .count()
    }
}

/// Keeps one task's deadline in [`ManualClock::sleepers_ahead`] while it
/// sleeps, also when the sleep is cancelled.
struct Asleep<'a> {
    clock: &'a ManualClock,
    deadline: OffsetDateTime,
}

impl<'a> Asleep<'a> {
    fn new(clock: &'a ManualClock, deadline: OffsetDateTime) -> Self {
        clock
            .deadlines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(deadline);
        Self { clock, deadline }
    }
}

impl Drop for Asleep<'_> {
    fn drop(&mut self) {
        let mut deadlines = self
            .clock
            .deadlines
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(i) = deadlines.iter().position(|d| *d == self.deadline) {
            deadlines.swap_remove(i);
        }
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &self.now())
            .finish()
    }
}

#[async_trait::async_trait]
impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn sleep_until(&self, deadline: OffsetDateTime) {
        let _asleep = Asleep::new(self, deadline);
        let mut rx = self.tick.subscribe();
        // `wait_for` checks the current value first, so an advance between
        // `subscribe` and here is not missed.
        let _ = rx.wait_for(|now| *now >= deadline).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn sleepers_ahead_leaves_out_the_ones_an_advance_woke() {
        let clock = Arc::new(ManualClock::new(
            time::macros::datetime!(2030-01-01 0:00 UTC),
        ));
        let deadline = clock.now() + Duration::from_secs(60);
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move {
                clock.sleep_until(deadline).await;
                // Hold on until the test has looked, as a task doing its
                // work after waking would.
                rx.recv().await;
            }
        });
        while clock.sleepers_ahead() == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(clock.sleepers(), 1);
        clock.advance(Duration::from_secs(60));
        assert_eq!(clock.sleepers_ahead(), 0, "its deadline has passed");
        tx.send(()).await.unwrap();
        sleeper.await.unwrap();
        assert_eq!(clock.sleepers(), 0);
        assert_eq!(clock.sleepers_ahead(), 0);
    }
}
