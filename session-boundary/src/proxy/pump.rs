//! Bytes both ways between a local connection and the worker's websocket
//! (`boundary.md` §4.1 step 5, §4.5).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::link::WorkerSocket;

/// The largest message sent: workers up to 0.13 (nhooyr websocket 1.8.7)
/// close on a message over 32,768 bytes.
pub const MAX_MESSAGE: usize = 32 * 1024;

/// How long the worker has to answer our close (after the local client's
/// end) before the connection is dropped anyway.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// How a proxied connection ended.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct PumpEnd {
    /// Bytes sent to the worker.
    pub(crate) bytes_up: u64,
    /// Bytes received from the worker.
    pub(crate) bytes_down: u64,
    /// The worker's close, unless it was a plain 1000.
    pub(crate) worker_close: Option<(u16, String)>,
}

/// Copies until both directions end: local EOF sends a close 1000 (EOF to
/// the worker); the worker's close ends the local write side.
pub(crate) async fn pump(local: TcpStream, socket: WorkerSocket) -> PumpEnd {
    let (mut local_read, mut local_write) = local.into_split();
    let (mut sink, mut stream) = socket.split();
    let sent = AtomicU64::new(0);
    let up = async {
        let mut buffer = vec![0u8; MAX_MESSAGE];
        loop {
            match local_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sink
                        .send(Message::binary(buffer[..n].to_vec()))
                        .await
                        .is_err()
                    {
                        break;
                    }
                    sent.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        }
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            })))
            .await;
        // The worker answers with its own close, which ends `down`; one
        // that never does is given up after a while.
        tokio::time::sleep(CLOSE_WAIT).await;
    };
    let received = AtomicU64::new(0);
    let down = async {
        let mut close = None;
        while let Some(message) = stream.next().await {
            match message {
                Ok(Message::Binary(bytes)) => {
                    if local_write.write_all(&bytes).await.is_err() {
                        break;
                    }
                    received.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                }
                Ok(Message::Text(text)) => {
                    if local_write.write_all(text.as_bytes()).await.is_err() {
                        break;
                    }
                    received.fetch_add(text.len() as u64, Ordering::Relaxed);
                }
                Ok(Message::Close(frame)) => {
                    if let Some(frame) = frame {
                        let code = u16::from(frame.code);
                        if code != 1000 {
                            close = Some((code, frame.reason.to_string()));
                        }
                    }
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    close = Some((1006, e.to_string()));
                    break;
                }
            }
        }
        let _ = local_write.shutdown().await;
        close
    };
    // The connection is over when the worker's side is: after our close
    // (local EOF) it answers with its own, and after its close nothing
    // more can be sent, so whatever `up` is waiting for is moot.
    let worker_close = tokio::select! {
        close = down => close,
        () = up => Some((1006, format!("the worker did not answer our close within {CLOSE_WAIT:?}"))),
    };
    PumpEnd {
        bytes_up: sent.load(Ordering::Relaxed),
        bytes_down: received.load(Ordering::Relaxed),
        worker_close,
    }
}
