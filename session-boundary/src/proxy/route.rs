//! One session carried by a proxy: its worker link, TOFU token, activation
//! and connection accounting.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use session_core::{Clock, Error, Result};
use time::OffsetDateTime;
use tokio::sync::watch;

use super::link::{LinkError, WorkerLink, WorkerSocket};
use super::{Inner, ProxyEnd, ProxyOptions, tls};
use crate::handshake::{self, Activation, WorkerClose};
use crate::token::AuthorizationData;

/// A session a [`Proxy`](super::Proxy) carries connections through.
pub struct SessionRoute {
    session_id: String,
    link: WorkerLink,
    /// Kept for the life of the route: the worker binds the session to the
    /// first one it sees.
    tofu_token: String,
    expiration: Option<OffsetDateTime>,
    clock: Arc<dyn Clock>,
    cancel_timeout: Duration,
    /// Held by the connection that activates the session, so the others
    /// wait for its `HandshakeResult` instead of racing it.
    first: tokio::sync::Mutex<()>,
    activated: AtomicBool,
    exhausted: AtomicBool,
    open: watch::Sender<usize>,
}

impl std::fmt::Debug for SessionRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRoute")
            .field("session_id", &self.session_id)
            .field("worker", &self.link.address)
            .field("expiration", &self.expiration)
            .field("activated", &self.is_activated())
            .field("exhausted", &self.is_exhausted())
            .field("open", &self.open_connections())
            .finish_non_exhaustive()
    }
}

/// Counts a connection as open while it lives.
pub(crate) struct OpenConnection<'a>(&'a watch::Sender<usize>);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

impl SessionRoute {
    pub(crate) fn new(data: AuthorizationData, options: &ProxyOptions) -> Result<Self> {
        let address = data
            .worker_addresses
            .first()
            .cloned()
            .ok_or_else(|| Error::invalid_input("authorization token", "lists no worker"))?;
        let link = WorkerLink {
            server_name: tls::server_name(&address)?,
            config: tls::client_config(&data)?,
            address,
            timeout: options.connect_timeout,
        };
        Ok(Self {
            expiration: data.expires_at(),
            session_id: data.session_id,
            link,
            tofu_token: handshake::tofu_token(),
            clock: options.clock.clone(),
            cancel_timeout: options.cancel_timeout,
            first: tokio::sync::Mutex::new(()),
            activated: AtomicBool::new(false),
            exhausted: AtomicBool::new(false),
            open: watch::channel(0).0,
        })
    }

    /// The session's id.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The worker's address.
    pub fn worker_address(&self) -> &str {
        &self.link.address
    }

    /// When the session expires (from the token, else the certificate).
    pub fn expiration(&self) -> Option<OffsetDateTime> {
        self.expiration
    }

    /// Whether a worker has activated the session.
    pub fn is_activated(&self) -> bool {
        self.activated.load(Ordering::Acquire)
    }

    /// Whether the session takes no new connection.
    pub fn is_exhausted(&self) -> bool {
        self.exhausted.load(Ordering::Acquire)
    }

    /// Connections it carries now.
    pub fn open_connections(&self) -> usize {
        *self.open.borrow()
    }

    /// Returns once it carries no connection.
    pub async fn drained(&self) {
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|n| *n == 0).await;
    }

    /// Asks the worker to cancel the session (`boundary.md` §4.6): one more
    /// connection whose handshake carries `SESSION_CANCEL`.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] naming the worker when it does not answer
    /// `session canceled` within the cancel time-out; fall back to the
    /// controller's cancel then.
    pub async fn cancel_via_worker(&self) -> Result<()> {
        let link = WorkerLink {
            timeout: self.cancel_timeout,
            ..self.link.clone()
        };
        let failed = |message: String| Error::Unavailable {
            target: link.address.clone(),
            message: format!(
                "cancel session {} through the worker: {message}",
                self.session_id
            ),
            source: None,
        };
        match link.open(&self.tofu_token, true).await {
            Err(LinkError::Closed {
                meaning: WorkerClose::Canceled,
                ..
            }) => Ok(()),
            Err(e) => Err(failed(e.to_string())),
            Ok(_) => Err(failed("it answered with a HandshakeResult".into())),
        }
    }

    /// Marks it exhausted; true the first time.
    pub(crate) fn mark_exhausted(&self) -> bool {
        !self.exhausted.swap(true, Ordering::AcqRel)
    }

    pub(crate) fn open_connection(&self) -> OpenConnection<'_> {
        self.open.send_modify(|n| *n += 1);
        OpenConnection(&self.open)
    }

    /// Opens a connection to the worker; the first successful one
    /// activates the session (`true` in the result) while later ones wait.
    pub(crate) async fn open_link(&self) -> Result<(WorkerSocket, Activation, bool), LinkError> {
        if !self.is_activated() {
            let _first = self.first.lock().await;
            if !self.is_activated() {
                let (socket, activation) = self.link.open(&self.tofu_token, false).await?;
                self.activated.store(true, Ordering::Release);
                return Ok((socket, activation, true));
            }
        }
        let (socket, activation) = self.link.open(&self.tofu_token, false).await?;
        Ok((socket, activation, false))
    }

    /// At the expiration, marks the route exhausted (the worker ends its
    /// connections then anyway).
    pub(super) fn watch_expiry(self: &Arc<Self>, inner: Weak<Inner>) {
        let Some(expiration) = self.expiration else {
            return;
        };
        let route = Arc::downgrade(self);
        let clock = self.clock.clone();
        tokio::spawn(async move {
            loop {
                let left = expiration - clock.now();
                if left <= time::Duration::ZERO {
                    break;
                }
                // Re-read the clock at least every minute: a suspended
                // laptop's monotonic sleep does not count the suspension.
                let nap = Duration::try_from(left).unwrap_or(Duration::ZERO);
                tokio::time::sleep(nap.min(Duration::from_secs(60))).await;
            }
            if let (Some(route), Some(inner)) = (route.upgrade(), inner.upgrade()) {
                inner.exhausted(&route, ProxyEnd::Expired);
            }
        });
    }
}

/// Whether a failed connection ends the session's use, and how.
pub(crate) fn end_of(error: &LinkError, activated: bool) -> Option<ProxyEnd> {
    match error {
        LinkError::Closed { meaning, .. } => match meaning {
            WorkerClose::Canceled => Some(ProxyEnd::Canceled("canceled through the worker".into())),
            WorkerClose::InUse => Some(ProxyEnd::InUse),
            WorkerClose::NotActivatable => Some(ProxyEnd::Refused(
                "the worker refused to activate the session: it is no longer pending (canceled, expired or used)".into(),
            )),
            WorkerClose::LimitReached => Some(ProxyEnd::ConnectionLimit),
            WorkerClose::Refused(why) => Some(ProxyEnd::Refused(why.clone())),
            _ => None,
        },
        LinkError::Unauthorized { .. } | LinkError::WrongCertificate(_) if !activated => {
            Some(ProxyEnd::Refused(error.to_string()))
        }
        _ => None,
    }
}
