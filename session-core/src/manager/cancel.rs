//! Cancelling an operation in flight: a flag per flight that the manager
//! checks at the points where stopping leaves a consistent record.

use std::future::Future;

use tokio::sync::watch;

use crate::{Error, Result};

/// The cancel flag of one flight (an operation on one session, shared by
/// every caller that joined it).
#[derive(Debug)]
pub(super) struct Cancel {
    flag: watch::Sender<bool>,
}

impl Default for Cancel {
    fn default() -> Self {
        Self {
            flag: watch::Sender::new(false),
        }
    }
}

impl Cancel {
    /// Asks the flight to stop at its next cancellation point.
    pub(super) fn cancel(&self) {
        self.flag.send_replace(true);
    }

    /// Runs `work` unless cancelled first: a cancel drops `work` at its
    /// current `.await` and returns [`Error::Cancelled`] naming `what`.
    pub(super) async fn run<T>(
        &self,
        what: impl FnOnce() -> String,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let mut flag = self.flag.subscribe();
        tokio::select! {
            biased;
            _ = flag.wait_for(|cancelled| *cancelled) => Err(Error::Cancelled {
                operation: what(),
                reason: "cancelled by the caller".into(),
            }),
            done = work => done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_cancel_drops_the_work_and_names_it() {
        let cancel = Cancel::default();
        let pending = cancel.run(
            || "start of x".into(),
            futures::future::pending::<Result<()>>(),
        );
        let (result, ()) = tokio::join!(pending, async { cancel.cancel() });
        let error = result.unwrap_err();
        assert_eq!(error.category(), "cancelled");
        assert!(error.to_string().contains("start of x"), "{error}");
        // Once cancelled, later points stop at once.
        let again = cancel.run(|| "rotate".into(), async { Ok(1) }).await;
        assert!(again.is_err());
        let fresh = Cancel::default();
        assert_eq!(fresh.run(String::new, async { Ok(2) }).await.unwrap(), 2);
    }
}
