//! One client connection: TLS, upgrade, the handshake rules of
//! `boundary.md` §4.4, and the splice to the endpoint.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::LazyConfigAcceptor;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Bytes, Message};

use super::proto::{ClientHandshake, HandshakeResult, SESSION_CANCEL, Timestamp};
use super::{PROXY_PATH, SUBPROTOCOL, Shared, SubprotocolAnswer, WorkerEvent, tls};
use crate::fakes::boundary::cert;
use crate::fakes::boundary::cluster::{ClosedReason, SessionCredentials, SessionStatus};

/// How long the worker waits for the client's `ClientHandshake`.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest chunk read from the endpoint per outgoing message.
const CHUNK: usize = 32 * 1024;

/// The session a ClientHello names: SNI if it starts with `s_`, else the
/// first ALPN entry that does.
fn session_from_hello<'a>(
    sni: Option<&str>,
    alpn: Option<impl Iterator<Item = &'a [u8]>>,
) -> Option<String> {
    if let Some(name) = sni.filter(|n| n.starts_with("s_")) {
        return Some(name.to_owned());
    }
    alpn?
        .filter_map(|p| std::str::from_utf8(p).ok())
        .find(|p| p.starts_with("s_"))
        .map(str::to_owned)
}

pub(super) async fn handle(shared: Arc<Shared>, mut tcp: TcpStream, client: SocketAddr) {
    shared.record(WorkerEvent::Accepted { client });
    let acceptor = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), &mut tcp);
    let start = match acceptor.await {
        Ok(start) => start,
        Err(e) => {
            shared.record(WorkerEvent::TlsFailed {
                session_id: None,
                reason: e.to_string(),
            });
            return;
        }
    };
    let hello = start.client_hello();
    let sni = hello.server_name().map(str::to_owned);
    let session_id = session_from_hello(hello.server_name(), hello.alpn());
    let session = match &session_id {
        Some(id) => shared.cluster.lookup_session(id).await,
        None => None,
    };
    let Some(session) = session else {
        // As Go's GetConfigForClient failing: an internal_error alert.
        drop(start);
        let _ = tcp.write_all(&tls::INTERNAL_ERROR_ALERT).await;
        shared.record(WorkerEvent::TlsFailed {
            session_id,
            reason: "unknown session".to_owned(),
        });
        return;
    };
    let id = session.session_id.clone();
    let faults = shared.faults();
    let config = if faults.wrong_server_certificate {
        let other = cert::issue(&id, &[], shared.clock.now(), session.expiration);
        tls::server_config(
            &session.certificate_der,
            &other.certificate_der,
            &other.private_key_pkcs8,
        )
    } else {
        tls::server_config(
            &session.certificate_der,
            &session.certificate_der,
            &session.private_key_pkcs8,
        )
    };
    let config = match config {
        Ok(config) => config,
        Err(e) => {
            shared.record(WorkerEvent::TlsFailed {
                session_id: Some(id),
                reason: format!("session credentials unusable: {e}"),
            });
            return;
        }
    };
    let tls = match start.into_stream(config).await {
        Ok(tls) => tls,
        Err(e) => {
            shared.record(WorkerEvent::TlsFailed {
                session_id: Some(id),
                reason: e.to_string(),
            });
            return;
        }
    };

    shared.record(WorkerEvent::TlsAccepted {
        session_id: id.clone(),
        sni,
    });

    // The upgrade: path, subprotocol, and HTTP 500 when the session is no
    // longer known (or the knob says so).
    let known = shared.cluster.lookup_session(&id).await.is_some();
    let mut refused: Option<u16> = None;
    // tungstenite's callback signature fixes the large error type.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, mut response: Response| {
        let status = if request.uri().path() != PROXY_PATH {
            Some(StatusCode::NOT_FOUND)
        } else if faults.http_500 || !known {
            Some(StatusCode::INTERNAL_SERVER_ERROR)
        } else if !offers_subprotocol(request) {
            Some(StatusCode::BAD_REQUEST)
        } else {
            None
        };
        if let Some(status) = status {
            refused = Some(status.as_u16());
            let mut error = ErrorResponse::new(Some(status.to_string()));
            *error.status_mut() = status;
            return Err(error);
        }
        let answer = match &faults.subprotocol {
            SubprotocolAnswer::Echo => Some(SUBPROTOCOL.to_owned()),
            SubprotocolAnswer::Missing => None,
            SubprotocolAnswer::Wrong(other) => Some(other.clone()),
        };
        if let Some(value) = answer.and_then(|a| HeaderValue::from_str(&a).ok()) {
            response
                .headers_mut()
                .insert(header::SEC_WEBSOCKET_PROTOCOL, value);
        }
        Ok(response)
    };
    let ws_config = WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None);
    let ws = tokio_tungstenite::accept_hdr_async_with_config(tls, callback, Some(ws_config)).await;
    let mut ws = match ws {
        Ok(ws) => ws,
        Err(_) => {
            shared.record(WorkerEvent::UpgradeFailed {
                session_id: id,
                status: refused,
            });
            return;
        }
    };
    handshake(&shared, &mut ws, session, client).await;
}

fn offers_subprotocol(request: &Request) -> bool {
    request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == SUBPROTOCOL)
}

/// Sends a close frame and waits (briefly) for the client's answer, so the
/// frame is delivered before the connection drops.
async fn close<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    code: u16,
    reason: &str,
) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.to_owned().into(),
    };
    let _ = ws.close(Some(frame)).await;
    let drain = async { while let Some(Ok(_)) = ws.next().await {} };
    let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
}

/// Closes the handshake with `code`/`reason` and records it.
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Shared,
    ws: &mut WebSocketStream<S>,
    session_id: &str,
    code: u16,
    reason: &str,
) {
    shared.record(WorkerEvent::HandshakeClosed {
        session_id: session_id.to_owned(),
        code,
        reason: reason.to_owned(),
    });
    close(ws, code, reason).await;
}

/// Constant-time equality of two TOFU tokens.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Shared,
    ws: &mut WebSocketStream<S>,
    session: SessionCredentials,
    client: SocketAddr,
) {
    let id = session.session_id.as_str();
    let first = match tokio::time::timeout(HANDSHAKE_TIMEOUT, ws.next()).await {
        Ok(Some(Ok(Message::Binary(bytes)))) => bytes,
        Ok(Some(Ok(Message::Text(text)))) => Bytes::from(text.as_str().as_bytes().to_vec()),
        _ => {
            shared.record(WorkerEvent::HandshakeClosed {
                session_id: id.to_owned(),
                code: 0,
                reason: "client left before its handshake".to_owned(),
            });
            return;
        }
    };
    shared.saw_message(first.len());
    if let Some((code, reason)) = shared.take_forced_close() {
        return refuse(shared, ws, id, code, &reason).await;
    }
    // Rule 1.
    let Ok(hello) = ClientHandshake::decode(first) else {
        return refuse(shared, ws, id, 1008, "invalid handshake received").await;
    };
    // Rule 2.
    if hello.tofu_token.len() != 20 {
        return refuse(shared, ws, id, 1003, "invalid tofu token").await;
    }
    // Rule 3: the session certificate is the credential; the token's value
    // is not compared.
    if hello.command == SESSION_CANCEL {
        return match shared.cluster.cancel_session(id).await {
            Ok(()) => refuse(shared, ws, id, 1000, "session canceled").await,
            Err(_) => refuse(shared, ws, id, 1011, "unable to cancel session").await,
        };
    }
    // Rules 4, 5, 5b, on the controller's current view.
    let current = shared.cluster.lookup_session(id).await;
    let (status, registered_token) = current
        .map(|s| (s.status, s.tofu_token))
        .unwrap_or((session.status, session.tofu_token.clone()));
    match registered_token {
        Some(token) if !same_token(&token, &hello.tofu_token) => {
            return refuse(shared, ws, id, 1008, "tofu token not allowed").await;
        }
        Some(_) => {}
        None if status != SessionStatus::Pending => {
            return refuse(shared, ws, id, 1011, "refusing to activate session").await;
        }
        None => {
            if shared
                .cluster
                .activate(id, &hello.tofu_token)
                .await
                .is_err()
            {
                return refuse(shared, ws, id, 1011, "unable to activate session").await;
            }
        }
    }
    // Rule 6.
    if shared.faults().not_registered || !shared.cluster.worker_registered() {
        return refuse(shared, ws, id, 1011, "worker id is empty").await;
    }
    // Rule 7.
    let Ok(authorized) = shared.cluster.authorize_connection(id, client).await else {
        return refuse(shared, ws, id, 1011, "unable to authorize connection").await;
    };
    // Rule 8.
    let result = HandshakeResult {
        expiration: Some(Timestamp::from_time(authorized.expiration)),
        connection_limit: authorized.connection_limit,
        connections_left: authorized.connections_left,
    };
    if let Some(delay) = shared.faults().write_delay {
        tokio::time::sleep(delay).await;
    }
    let connection_id = authorized.connection_id.clone();
    let end = |code: u16, reason: &str| WorkerEvent::ConnectionEnded {
        session_id: id.to_owned(),
        connection_id: connection_id.clone(),
        bytes_up: 0,
        bytes_down: 0,
        code,
        reason: reason.to_owned(),
    };
    if ws
        .send(Message::Binary(result.encode_to_vec().into()))
        .await
        .is_err()
    {
        shared.record(end(1002, "unable to send handshake result"));
        close(ws, 1002, "unable to send handshake result").await;
        return close_connection(shared, &connection_id, 0, 0, ClosedReason::NetworkError).await;
    }
    shared.record(WorkerEvent::HandshakeAccepted {
        session_id: id.to_owned(),
        connection_id: connection_id.clone(),
        connections_left: authorized.connections_left,
    });
    // Rules 9, 9b, 10.
    let Some(host_port) = session.endpoint.strip_prefix("tcp://") else {
        shared.record(end(1002, "unable to parse endpoint"));
        close(ws, 1002, "unable to parse endpoint").await;
        return close_connection(shared, &connection_id, 0, 0, ClosedReason::SystemError).await;
    };
    let tcp = match TcpStream::connect(host_port).await {
        Ok(tcp) => {
            let _ = tcp.set_nodelay(true);
            tcp
        }
        Err(_) => {
            shared.record(end(3000, "unable to setup proxying"));
            close(ws, 3000, "unable to setup proxying").await;
            return close_connection(shared, &connection_id, 0, 0, ClosedReason::NetworkError)
                .await;
        }
    };
    let endpoint = tcp.peer_addr().unwrap_or(client);
    if shared
        .cluster
        .connect_connection(&connection_id, endpoint)
        .await
        .is_err()
    {
        shared.record(end(1011, "unable to establish proxy"));
        close(ws, 1011, "unable to establish proxy").await;
        return close_connection(shared, &connection_id, 0, 0, ClosedReason::SystemError).await;
    }
    let spliced = splice(shared, ws, tcp, authorized.expiration).await;
    shared.record(WorkerEvent::ConnectionEnded {
        session_id: id.to_owned(),
        connection_id: connection_id.clone(),
        bytes_up: spliced.up,
        bytes_down: spliced.down,
        code: spliced.code,
        reason: spliced.reason,
    });
    close_connection(
        shared,
        &connection_id,
        spliced.up,
        spliced.down,
        spliced.closed,
    )
    .await;
}

async fn close_connection(
    shared: &Shared,
    connection_id: &str,
    up: u64,
    down: u64,
    reason: ClosedReason,
) {
    shared
        .cluster
        .close_connection(connection_id, up, down, reason)
        .await;
}

/// How a splice ended.
struct Spliced {
    up: u64,
    down: u64,
    code: u16,
    reason: String,
    closed: ClosedReason,
}

/// Pumps binary messages ↔ TCP bytes until either side ends or the session
/// expires.
async fn splice<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Shared,
    ws: &mut WebSocketStream<S>,
    tcp: TcpStream,
    expiration: time::OffsetDateTime,
) -> Spliced {
    // Both directions at once, as the real worker's two copy loops: a side
    // that stopped reading while it waited to write would stall against an
    // endpoint that does the same (an echo server, for one).
    let (tcp_read, tcp_write) = tcp.into_split();
    let (sink, stream) = ws.split();
    let sink = tokio::sync::Mutex::new(sink);
    let up = AtomicU64::new(0);
    let down = AtomicU64::new(0);
    let deadline = shared.clock.sleep_until(expiration);
    let (code, reason, closed) = tokio::select! {
        () = deadline => {
            send_close(&sink, 1000, "done").await;
            (1000, "done".to_owned(), ClosedReason::TimedOut)
        }
        ended = client_to_endpoint(shared, stream, tcp_write, &sink, &up) => ended,
        ended = endpoint_to_client(shared, tcp_read, &sink, &down) => ended,
    };
    // The client's close is answered (or ours is on its way); give the
    // frames a moment to leave before the connection is dropped.
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        sink.lock().await.flush().await
    })
    .await;
    Spliced {
        up: up.load(Ordering::Relaxed),
        down: down.load(Ordering::Relaxed),
        code,
        reason,
        closed,
    }
}

type WsSink<'a, S> = futures::stream::SplitSink<&'a mut WebSocketStream<S>, Message>;
type WsStream<'a, S> = futures::stream::SplitStream<&'a mut WebSocketStream<S>>;

async fn send_close<S: AsyncRead + AsyncWrite + Unpin>(
    sink: &tokio::sync::Mutex<WsSink<'_, S>>,
    code: u16,
    reason: &str,
) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.to_owned().into(),
    };
    let _ = sink.lock().await.send(Message::Close(Some(frame))).await;
}

/// Client messages to the endpoint, until the client closes, a message
/// exceeds the read limit, or either side fails.
async fn client_to_endpoint<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Shared,
    mut stream: WsStream<'_, S>,
    mut tcp_write: tokio::net::tcp::OwnedWriteHalf,
    sink: &tokio::sync::Mutex<WsSink<'_, S>>,
    up: &AtomicU64,
) -> (u16, String, ClosedReason) {
    loop {
        match stream.next().await {
            Some(Ok(Message::Binary(data))) => {
                shared.saw_message(data.len());
                if let Some(limit) = shared.read_limit.filter(|l| data.len() > *l) {
                    let reason = format!("read limited at {} bytes", limit + 1);
                    send_close(sink, 1009, &reason).await;
                    return (1009, reason, ClosedReason::SystemError);
                }
                if tcp_write.write_all(&data).await.is_err() {
                    send_close(sink, 1000, "done").await;
                    return (1000, "done".to_owned(), ClosedReason::NetworkError);
                }
                up.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
            Some(Ok(Message::Close(frame))) => {
                let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                let _ = tcp_write.shutdown().await;
                return (0, reason, ClosedReason::ClosedByEndUser);
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return (0, String::new(), ClosedReason::NetworkError),
        }
    }
}

/// Endpoint bytes to the client, until the endpoint ends or the client's
/// side fails; applies the split/delay fault knobs.
async fn endpoint_to_client<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Shared,
    mut tcp_read: tokio::net::tcp::OwnedReadHalf,
    sink: &tokio::sync::Mutex<WsSink<'_, S>>,
    down: &AtomicU64,
) -> (u16, String, ClosedReason) {
    let mut buffer = vec![0u8; CHUNK];
    loop {
        match tcp_read.read(&mut buffer).await {
            Ok(0) | Err(_) => {
                send_close(sink, 1000, "done").await;
                return (1000, "done".to_owned(), ClosedReason::ClosedByEndUser);
            }
            Ok(n) => {
                let faults = shared.faults();
                let piece = faults.split_writes.unwrap_or(n).max(1);
                for chunk in buffer[..n].chunks(piece) {
                    if let Some(delay) = faults.write_delay {
                        tokio::time::sleep(delay).await;
                    }
                    let sent = sink
                        .lock()
                        .await
                        .send(Message::Binary(chunk.to_vec().into()))
                        .await;
                    if sent.is_err() {
                        return (0, String::new(), ClosedReason::NetworkError);
                    }
                    down.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_comes_from_sni_then_alpn() {
        let alpn: [&[u8]; 2] = [b"http/1.1", b"s_123"];
        assert_eq!(
            session_from_hello(Some("s_sni"), Some(alpn.into_iter())),
            Some("s_sni".to_owned())
        );
        assert_eq!(
            session_from_hello(Some("worker.example"), Some(alpn.into_iter())),
            Some("s_123".to_owned())
        );
        let only_http: [&[u8]; 1] = [b"http/1.1"];
        assert_eq!(session_from_hello(None, Some(only_http.into_iter())), None);
        assert_eq!(
            session_from_hello(None, None::<std::vec::IntoIter<&[u8]>>),
            None
        );
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "abcd"));
    }
}
