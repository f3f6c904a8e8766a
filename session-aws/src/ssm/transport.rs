//! The data channel's websocket: opened over rustls to the `StreamUrl`
//! (plain `ws://` only to a loopback host, for local fakes), the
//! OpenDataChannel text frame first, then one binary frame per
//! `ClientMessage` (ssm.md §2.1).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde::Serialize;
use session_core::{Error, Result, Secret};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

/// The OpenDataChannel input: the first (text) frame on a new socket.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct OpenDataChannel<'a> {
    message_schema_version: &'static str,
    request_id: String,
    token_value: &'a str,
    client_id: String,
    client_version: &'a str,
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// An open data-channel websocket.
///
/// Frames are written by a task of their own, so that sending never waits
/// for the peer to read: a task that both reads and writes the socket can
/// deadlock with a peer doing the same, each blocked writing to the other
/// while neither reads. What is queued is bounded by the sender's window
/// and by the acks of what was read.
pub struct DataChannelSocket {
    read: futures::stream::SplitStream<Socket>,
    write: tokio::sync::mpsc::UnboundedSender<Message>,
    /// Acks: written before any queued stream data (see [`write_frames`]).
    urgent: tokio::sync::mpsc::UnboundedSender<Message>,
    writer: tokio::task::JoinHandle<()>,
    /// Why the writer stopped, once it has.
    write_error: Arc<std::sync::Mutex<Option<String>>>,
}

impl Drop for DataChannelSocket {
    fn drop(&mut self) {
        self.writer.abort();
    }
}

impl std::fmt::Debug for DataChannelSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataChannelSocket").finish_non_exhaustive()
    }
}

/// Where and how to open a data channel.
#[derive(Clone, Debug)]
pub struct OpenRequest<'a> {
    /// The `StreamUrl` from StartSession or ResumeSession.
    pub stream_url: &'a str,
    /// The single-use token that came with it.
    pub token: &'a Secret,
    /// This client's id: the same on every reconnect of one session.
    pub client_id: Uuid,
    /// The version reported to the agent (dotted-numeric).
    pub client_version: &'a str,
    /// Time-out for the TCP, TLS and websocket handshakes together.
    pub timeout: Duration,
    /// `label` of the session, for errors.
    pub label: &'a str,
}

impl DataChannelSocket {
    /// Opens the websocket and sends OpenDataChannel.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a URL that is not `wss://` (or `ws://` to
    /// a loopback host); [`Error::Timeout`] when the handshakes take longer
    /// than the request's time-out; [`Error::Unavailable`] when the
    /// connection or upgrade fails.
    pub async fn open(request: &OpenRequest<'_>) -> Result<Self> {
        check_url(request.stream_url)?;
        let connector = Connector::Rustls(tls_config()?);
        let connecting = tokio_tungstenite::connect_async_tls_with_config(
            request.stream_url,
            None,
            // TCP_NODELAY, as Go (the plugin, the agent) sets by default:
            // with Nagle on, a keystroke's frame waited for the ack of the
            // previous one, 40–90 ms of delayed ack per echo on loopback
            // (benches/README.md, ssm_resume run 3).
            true,
            Some(connector),
        );
        let (mut ws, _) = tokio::time::timeout(request.timeout, connecting)
            .await
            .map_err(|_| Error::Timeout {
                target: request.label.to_owned(),
                after: request.timeout,
            })?
            .map_err(|e| Error::Unavailable {
                target: request.label.to_owned(),
                message: format!("cannot open the data channel: {e}"),
                source: None,
            })?;
        let open = OpenDataChannel {
            message_schema_version: "1.0",
            request_id: Uuid::new_v4().to_string(),
            token_value: request.token.expose(),
            client_id: request.client_id.to_string(),
            client_version: request.client_version,
        };
        let text = serde_json::to_string(&open)
            .map_err(|e| Error::invalid_input("OpenDataChannel", e.to_string()))?;
        ws.send(Message::text(text))
            .await
            .map_err(|e| lost(request.label, &e))?;
        let (sink, read) = ws.split();
        let (write, queued) = tokio::sync::mpsc::unbounded_channel::<Message>();
        let (urgent, acks) = tokio::sync::mpsc::unbounded_channel::<Message>();
        let write_error = Arc::new(std::sync::Mutex::new(None));
        let failed = Arc::clone(&write_error);
        let writer = tokio::spawn(async move {
            if let Err(error) = write_frames(sink, acks, queued).await {
                *failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.to_string());
            }
        });
        Ok(Self {
            read,
            write,
            urgent,
            writer,
            write_error,
        })
    }

    /// Queues `message` for the writer task, after what is queued
    /// already, or ahead of all stream data when `urgent`.
    fn queue_on(&self, urgent: bool, message: Message, label: &str) -> Result<()> {
        if let Some(error) = self
            .write_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Err(lost(label, &error));
        }
        let queue = if urgent { &self.urgent } else { &self.write };
        queue
            .send(message)
            .map_err(|_| lost(label, &"the websocket's writer has stopped"))
    }

    fn queue(&self, message: Message, label: &str) -> Result<()> {
        self.queue_on(false, message, label)
    }

    /// Sends one encoded `ClientMessage` as a binary frame (queued for the
    /// writer task: it returns at once).
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the socket is gone.
    pub async fn send(&mut self, message: Vec<u8>, label: &str) -> Result<()> {
        self.queue(Message::binary(message), label)
    }

    /// Sends an encoded acknowledgement ahead of every stream message still
    /// queued.
    ///
    /// The agent keeps a copy of at most 10,000 unacknowledged messages
    /// (and measures its RTO on our acks): an ack waiting behind our own
    /// upload made it stop keeping copies during a two-way transfer, so
    /// a message lost then could never be resent.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the socket is gone.
    pub async fn send_ack(&mut self, message: Vec<u8>, label: &str) -> Result<()> {
        self.queue_on(true, Message::binary(message), label)
    }

    /// The next binary frame; `None` when the socket closed. Text frames
    /// and pings are skipped (pongs are answered by the library).
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when reading fails.
    pub async fn recv(&mut self, label: &str) -> Option<Result<Vec<u8>>> {
        loop {
            match self.read.next().await? {
                Ok(Message::Binary(bytes)) => return Some(Ok(bytes.to_vec())),
                Ok(Message::Close(_)) => return None,
                Ok(_) => continue,
                Err(e) => return Some(Err(lost(label, &e))),
            }
        }
    }

    /// Sends a websocket ping (keepalive).
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the socket is gone.
    pub async fn ping(&mut self, label: &str) -> Result<()> {
        self.queue(Message::Ping(b"keepalive".to_vec().into()), label)
    }

    /// Closes the socket (best effort).
    pub async fn close(mut self) {
        if self.write.send(Message::Close(None)).is_ok() {
            // What was queued goes out first; a peer that never reads
            // cannot hold the close up for long.
            let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.writer).await;
        }
    }
}

/// Frames written per flush at most, so that a long queue still reaches
/// the socket in steady steps.
const WRITE_BATCH: usize = 64;

/// The writer task: acks first, then stream data in order; frames that are
/// already queued go out together, with one flush.
async fn write_frames(
    mut sink: futures::stream::SplitSink<Socket, Message>,
    mut acks: tokio::sync::mpsc::UnboundedReceiver<Message>,
    mut queued: tokio::sync::mpsc::UnboundedReceiver<Message>,
) -> std::result::Result<(), tokio_tungstenite::tungstenite::Error> {
    loop {
        let next = tokio::select! {
            biased;
            Some(ack) = acks.recv() => Some(ack),
            message = queued.recv() => message,
        };
        let Some(mut message) = next else {
            return Ok(());
        };
        let mut batch = 0;
        loop {
            let closing = matches!(message, Message::Close(_));
            sink.feed(message).await?;
            batch += 1;
            if closing {
                return sink.flush().await;
            }
            let more = match acks.try_recv() {
                Ok(ack) => Some(ack),
                Err(_) => queued.try_recv().ok(),
            };
            match more {
                Some(m) if batch < WRITE_BATCH => message = m,
                Some(m) => {
                    sink.flush().await?;
                    batch = 0;
                    message = m;
                }
                None => break,
            }
        }
        sink.flush().await?;
    }
}

fn lost(label: &str, error: &dyn std::fmt::Display) -> Error {
    Error::Unavailable {
        target: label.to_owned(),
        message: format!("the data channel failed: {error}"),
        source: None,
    }
}

/// Accepts `wss://` anywhere and `ws://` only to a loopback host: the token
/// and the session's bytes never cross a network in clear.
fn check_url(url: &str) -> Result<()> {
    let refused = |why: &str| Err(Error::invalid_input("StreamUrl", format!("{url:?}: {why}")));
    let (scheme, rest) = match url.split_once("://") {
        Some(parts) => parts,
        None => return refused("not a URL"),
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match scheme {
        "wss" if !host.is_empty() => Ok(()),
        "ws" => {
            let loopback = host.eq_ignore_ascii_case("localhost")
                || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(())
            } else {
                refused("ws:// (no TLS) is accepted for loopback hosts only")
            }
        }
        _ => refused("the data channel needs wss://"),
    }
}

/// rustls with the ring provider and the Mozilla roots (webpki-roots), the
/// same for every data channel.
fn tls_config() -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::invalid_input("TLS", e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_websockets_only_to_loopback() {
        for ok in [
            "wss://ssmmessages.eu-west-1.amazonaws.com/v1/data-channel/s?role=publish_subscribe",
            "ws://127.0.0.1:8080/v1/data-channel/s",
            "ws://[::1]:8080/x",
            "ws://localhost/x",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ws://192.0.2.10/v1/data-channel/s",
            "ws://ssmmessages.amazonaws.com/x",
            "https://example.com/",
            "no-scheme",
            "wss:///path",
        ] {
            let error = check_url(bad).unwrap_err();
            assert_eq!(error.category(), "invalid_input", "{bad}");
        }
    }

    /// Acks overtake stream data still queued for the writer: the peer
    /// reads nothing until 64 MiB of data and then one ack are queued; the
    /// ack comes after what the kernel's buffers had taken (a few MiB),
    /// long before the end. Written in queue order, it came last.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn acks_overtake_queued_stream_data() {
        const FRAMES: usize = 1024;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/v1/data-channel/s", listener.local_addr().unwrap());
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let peer = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            assert!(matches!(ws.next().await, Some(Ok(Message::Text(_)))));
            wait.await.unwrap();
            let mut order = Vec::new();
            while order.len() <= FRAMES {
                match ws.next().await {
                    Some(Ok(Message::Binary(b))) => order.push(b[0]),
                    Some(Ok(_)) => {}
                    other => panic!("the socket ended early: {other:?}"),
                }
            }
            order
        });
        let token = Secret::new("token");
        let mut socket = DataChannelSocket::open(&OpenRequest {
            stream_url: &url,
            token: &token,
            client_id: Uuid::new_v4(),
            client_version: "1.2.694.0",
            timeout: Duration::from_secs(10),
            label: "test",
        })
        .await
        .unwrap();
        for _ in 0..FRAMES {
            socket.send(vec![0; 64 * 1024], "test").await.unwrap();
        }
        socket.send_ack(vec![1], "test").await.unwrap();
        go.send(()).unwrap();
        let order = tokio::time::timeout(Duration::from_secs(60), peer)
            .await
            .expect("the peer read everything")
            .unwrap();
        let at = order.iter().position(|b| *b == 1).expect("the ack arrived");
        assert!(
            at < FRAMES / 2,
            "the ack came after {at} of {FRAMES} queued data frames"
        );
    }

    #[test]
    fn open_data_channel_is_the_documented_json() {
        let open = OpenDataChannel {
            message_schema_version: "1.0",
            request_id: "r".into(),
            token_value: "t",
            client_id: "c".into(),
            client_version: "1.2.694.0",
        };
        let json: serde_json::Value = serde_json::to_value(&open).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "MessageSchemaVersion": "1.0",
                "RequestId": "r",
                "TokenValue": "t",
                "ClientId": "c",
                "ClientVersion": "1.2.694.0"
            })
        );
    }
}
