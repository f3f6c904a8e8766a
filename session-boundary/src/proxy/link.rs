//! One connection to a worker: TCP, TLS 1.3, the websocket upgrade and the
//! handshake (`boundary.md` §4.1 step 3, §4.3, §4.4).

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

use super::tls;
use crate::handshake::{self, Activation, WorkerClose};

/// The websocket subprotocol of the proxy.
pub(crate) const SUBPROTOCOL: &str = "boundary-tcp-proxy-v1";

/// The websocket to a worker, over TLS.
pub(crate) type WorkerSocket = WebSocketStream<TlsStream<TcpStream>>;

/// Why a connection to the worker failed, in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LinkError {
    /// TCP connect failed.
    #[error("cannot reach the worker at {address}: {reason}")]
    Unreachable { address: String, reason: String },
    /// The worker presented another certificate (a TLS-terminating load
    /// balancer in front of it, or the wrong address).
    #[error(
        "the worker at {0} did not present the session certificate (is a load balancer terminating TLS in front of it?)"
    )]
    WrongCertificate(String),
    /// The worker refused the session's credentials: it does not know the
    /// session, or the session is no longer authorized.
    #[error(
        "the worker at {address} did not accept the session's credentials, or the session is unauthorized ({reason})"
    )]
    Unauthorized { address: String, reason: String },
    /// The upgrade failed in another way.
    #[error("the worker at {address} refused the websocket upgrade: {reason}")]
    Upgrade { address: String, reason: String },
    /// The worker closed instead of answering the handshake.
    #[error("the worker closed the connection: {code} {reason}")]
    Closed {
        code: u16,
        reason: String,
        meaning: WorkerClose,
    },
    /// The answer was not a `HandshakeResult`.
    #[error("{0}")]
    BadAnswer(String),
    /// No answer in time.
    #[error("the worker at {address} did not answer within {after:?}")]
    TimedOut { address: String, after: Duration },
}

/// How to reach the worker of one session.
#[derive(Clone)]
pub(crate) struct WorkerLink {
    pub(crate) address: String,
    pub(crate) server_name: ServerName<'static>,
    pub(crate) config: Arc<rustls::ClientConfig>,
    pub(crate) timeout: Duration,
}

impl WorkerLink {
    /// Opens a connection and sends the handshake; with `cancel`, asks the
    /// worker to cancel the session instead. Returns the open socket and
    /// what the worker's `HandshakeResult` said, or for a cancel the close.
    pub(crate) async fn open(
        &self,
        tofu_token: &str,
        cancel: bool,
    ) -> Result<(WorkerSocket, Activation), LinkError> {
        tokio::time::timeout(self.timeout, self.open_now(tofu_token, cancel))
            .await
            .map_err(|_| LinkError::TimedOut {
                address: self.address.clone(),
                after: self.timeout,
            })?
    }

    async fn open_now(
        &self,
        tofu_token: &str,
        cancel: bool,
    ) -> Result<(WorkerSocket, Activation), LinkError> {
        let address = &self.address;
        let tcp = TcpStream::connect(address)
            .await
            .map_err(|e| LinkError::Unreachable {
                address: address.clone(),
                reason: e.to_string(),
            })?;
        // Small writes of an interactive protocol (ssh, psql) must not
        // wait for Nagle's algorithm.
        let _ = tcp.set_nodelay(true);
        let tls = TlsConnector::from(self.config.clone())
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| self.tls_error(&e))?;
        let mut request = format!("ws://{address}/v1/proxy")
            .into_client_request()
            .map_err(|e| LinkError::Upgrade {
                address: address.clone(),
                reason: e.to_string(),
            })?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
        // Receive any size (newer workers send large messages); a bound
        // keeps a broken worker from exhausting memory.
        let config = WebSocketConfig::default()
            .max_message_size(Some(64 << 20))
            .max_frame_size(Some(64 << 20));
        let (mut socket, response) =
            tokio_tungstenite::client_async_with_config(request, tls, Some(config))
                .await
                .map_err(|e| self.upgrade_error(e))?;
        let echoed = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok());
        if echoed != Some(SUBPROTOCOL) {
            return Err(LinkError::Upgrade {
                address: address.clone(),
                reason: format!(
                    "it answered subprotocol {echoed:?}, not {SUBPROTOCOL:?}: not a Boundary worker, or an incompatible one"
                ),
            });
        }
        socket
            .send(Message::binary(handshake::client_handshake(
                tofu_token, cancel,
            )))
            .await
            .map_err(|e| self.after_upgrade_error(&e))?;
        loop {
            match socket.next().await {
                Some(Ok(Message::Binary(bytes))) => {
                    let activation = handshake::handshake_result(&bytes)
                        .map_err(|e| LinkError::BadAnswer(e.to_string()))?;
                    return Ok((socket, activation));
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((1005, String::new()));
                    return Err(LinkError::Closed {
                        meaning: WorkerClose::from_close(code, &reason),
                        code,
                        reason,
                    });
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Text(text))) => {
                    return Err(LinkError::BadAnswer(format!(
                        "the worker answered the handshake with text ({} bytes), not a HandshakeResult",
                        text.len()
                    )));
                }
                Some(Err(e)) => return Err(self.after_upgrade_error(&e)),
                None => {
                    return Err(LinkError::Unauthorized {
                        address: address.clone(),
                        reason: "it closed the connection before answering the handshake".into(),
                    });
                }
            }
        }
    }

    fn tls_error(&self, e: &std::io::Error) -> LinkError {
        if tls::is_wrong_certificate(e) {
            return LinkError::WrongCertificate(self.address.clone());
        }
        // Go's worker sends internal_error when it cannot find the session
        // (nothing in SNI/ALPN, unknown id) or refuses the certificate.
        LinkError::Unauthorized {
            address: self.address.clone(),
            reason: format!("TLS handshake: {e}"),
        }
    }

    /// After TLS 1.3 completes, a refused client certificate arrives as an
    /// alert or EOF at the first read: that is "unauthorized" too.
    fn upgrade_error(&self, e: tungstenite::Error) -> LinkError {
        match e {
            tungstenite::Error::Http(response) => {
                let status = response.status();
                LinkError::Unauthorized {
                    address: self.address.clone(),
                    reason: format!(
                        "HTTP {status} before the upgrade: the worker does not know this session"
                    ),
                }
            }
            other => self.after_upgrade_error(&other),
        }
    }

    fn after_upgrade_error(&self, e: &tungstenite::Error) -> LinkError {
        let reason = e.to_string();
        let refused = matches!(e, tungstenite::Error::Io(_) | tungstenite::Error::Tls(_))
            || reason.contains("alert")
            || matches!(
                e,
                tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed
            )
            || matches!(e, tungstenite::Error::Protocol(p) if p.to_string().contains("without closing handshake"));
        if refused {
            LinkError::Unauthorized {
                address: self.address.clone(),
                reason,
            }
        } else {
            LinkError::Upgrade {
                address: self.address.clone(),
                reason,
            }
        }
    }
}
