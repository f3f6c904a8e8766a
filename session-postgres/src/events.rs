//! Events shared between the processes using one database: a manager's
//! event is a `NOTIFY` on one channel, and each process `LISTEN`s on a
//! connection of its own, which is opened again if it drops (events sent
//! meanwhile are lost: delivery is at most once, as the trait says).

use std::time::Duration;

use session_core::{Error, Result, SharedEvent};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_postgres::{AsyncMessage, Client, Config, Notification};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::{cannot_connect, db_error};

/// The notification channel.
const CHANNEL: &str = "session_sdk_events";
/// Shared events waiting for slow receivers before they miss some.
const CAPACITY: usize = 1_024;
/// The longest pause between two tries to listen again.
const MAX_RETRY: Duration = Duration::from_secs(30);

/// Sends `event` to every process listening on the database.
pub(crate) async fn notify(client: &Client, label: &str, event: &SharedEvent) -> Result<()> {
    let payload = serde_json::to_string(event)
        .map_err(|e| Error::invalid_input("shared event", e.to_string()))?;
    client
        .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
        .await
        .map_err(|e| db_error(label, "cannot share an event", &e))?;
    Ok(())
}

/// What a workspace (and its clones) holds while it follows shared
/// events: dropping it ends the listening connection.
pub(crate) struct Following {
    sender: broadcast::Sender<SharedEvent>,
    _stop: oneshot::Sender<()>,
}

impl Following {
    /// A receiver of every event shared from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<SharedEvent> {
        self.sender.subscribe()
    }
}

/// Starts listening. Fails if the first connection cannot be made.
pub(crate) async fn listen(
    config: Config,
    tls: MakeRustlsConnect,
    label: String,
) -> Result<Following> {
    let (sender, _) = broadcast::channel(CAPACITY);
    let first = open(&config, &tls, &label).await?;
    let (stop, stopped) = oneshot::channel();
    tokio::spawn(forward(config, tls, label, sender.clone(), first, stopped));
    Ok(Following {
        sender,
        _stop: stop,
    })
}

/// A listening connection: the client (kept so the connection stays open)
/// and its notifications.
type Listening = (Client, mpsc::UnboundedReceiver<Notification>);

async fn open(config: &Config, tls: &MakeRustlsConnect, label: &str) -> Result<Listening> {
    let (client, mut connection) = config
        .connect(tls.clone())
        .await
        .map_err(|e| cannot_connect(label, " to follow its events", &e))?;
    let (notifications, received) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        // Polling the connection's messages also drives the connection.
        while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if notifications.send(n).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "the workspace event connection ended");
                    break;
                }
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(|e| db_error(label, "cannot listen for shared events", &e))?;
    Ok((client, received))
}

/// Hands each notification on as a [`SharedEvent`]; listens again when
/// the connection drops; ends when the workspace is dropped (`stopped`).
async fn forward(
    config: Config,
    tls: MakeRustlsConnect,
    label: String,
    sender: broadcast::Sender<SharedEvent>,
    mut listening: Listening,
    mut stopped: oneshot::Receiver<()>,
) {
    loop {
        loop {
            let notification = tokio::select! {
                _ = &mut stopped => return,
                received = listening.1.recv() => match received {
                    Some(notification) => notification,
                    None => break,
                },
            };
            match serde_json::from_str::<SharedEvent>(notification.payload()) {
                Ok(event) => {
                    let _ = sender.send(event);
                }
                Err(e) => tracing::debug!(error = %e, "a notification that is not a shared event"),
            }
        }
        tracing::warn!(database = %label, "the connection that follows shared events dropped; listening again (events sent meanwhile are missed)");
        let mut pause = Duration::from_secs(1);
        listening = loop {
            tokio::select! {
                _ = &mut stopped => return,
                () = tokio::time::sleep(pause) => {}
            }
            match open(&config, &tls, &label).await {
                Ok(listening) => break listening,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for shared events yet");
                    pause = (pause * 2).min(MAX_RETRY);
                }
            }
        };
    }
}
