//! Ctrl-C and SIGTERM, for the commands that wait (`connect`, a `start`
//! waiting for a device-code sign-in): they give up or stop cleanly
//! instead of dying with a session half started.

use crate::Failure;

/// SIGINT, SIGTERM and SIGHUP (Ctrl-C only, off Unix), received as one
/// stream. SIGHUP counts as SIGTERM: it is how a closed terminal, or ssh
/// ending its `ProxyCommand`, asks a process to end.
pub(crate) struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Catches the signals from now on: they no longer end the process.
    pub(crate) fn new() -> Result<Self, Failure> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let catch = |kind| {
                signal(kind).map_err(|e| Failure::Other(format!("cannot catch signals: {e}")))
            };
            Ok(Self {
                interrupt: catch(SignalKind::interrupt())?,
                terminate: catch(SignalKind::terminate())?,
                hangup: catch(SignalKind::hangup())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Waits for the next signal.
    pub(crate) async fn recv(&mut self) {
        self.recv_signal().await;
    }

    /// Waits for the next signal and says which.
    pub(crate) async fn recv_signal(&mut self) -> Signal {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => Signal::Interrupt,
            _ = self.terminate.recv() => Signal::Terminate,
            _ = self.hangup.recv() => Signal::Terminate,
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Interrupt
        }
    }
}

/// Which signal [`Signals::recv_signal`] received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM or SIGHUP.
    Terminate,
}
