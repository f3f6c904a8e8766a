//! The MGS side: WebSocket upgrades, the OpenDataChannel frame and its
//! token, and handing each accepted socket to its session's task.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::scenario::OpenRecord;
use super::session::{self, Input};
use super::{Shared, lock};

/// The path prefix of a data channel.
const PATH_PREFIX: &str = "/v1/data-channel/";
/// How long the client has to send its OpenDataChannel frame.
const OPEN_TIMEOUT: Duration = Duration::from_secs(15);

static GENERATION: AtomicU64 = AtomicU64::new(1);

pub(super) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(accept(stream, shared.clone()));
    }
}

async fn accept(stream: TcpStream, shared: Arc<Shared>) {
    // As the agent's Go stack: TCP_NODELAY on every socket.
    let _ = stream.set_nodelay(true);
    let mut session_id = None;
    let mut authorization = false;
    #[allow(clippy::result_large_err)] // the signature tungstenite asks for
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        authorization = req.headers().contains_key("authorization");
        match req.uri().path().strip_prefix(PATH_PREFIX) {
            Some(id) if !id.is_empty() && !id.contains('/') => {
                session_id = Some(id.to_owned());
                Ok(resp)
            }
            _ => {
                let mut err = ErrorResponse::new(Some("no such data channel".into()));
                *err.status_mut() = StatusCode::NOT_FOUND;
                Err(err)
            }
        }
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let Some(session_id) = session_id else {
        return;
    };
    let mut record = OpenRecord {
        authorization,
        ..OpenRecord::default()
    };
    match open(&mut ws, &shared, &session_id, &mut record).await {
        Ok(()) => {
            record.accepted = true;
            shared.stat(&session_id, |s| s.opens.push(record));
            attach(ws, &shared, &session_id);
        }
        Err(why) => {
            record.refused = Some(why.clone());
            shared.stat(&session_id, |s| s.opens.push(record));
            let frame = CloseFrame {
                code: CloseCode::Policy,
                reason: why.into(),
            };
            let _ = ws.close(Some(frame)).await;
        }
    }
}

/// Reads and checks the OpenDataChannel frame.
async fn open(
    ws: &mut WebSocketStream<TcpStream>,
    shared: &Shared,
    session_id: &str,
    record: &mut OpenRecord,
) -> Result<(), String> {
    let first = tokio::time::timeout(OPEN_TIMEOUT, ws.next())
        .await
        .map_err(|_| "no OpenDataChannel frame in time".to_owned())?;
    let text = match first {
        Some(Ok(Message::Text(t))) => t,
        Some(Ok(other)) => return Err(format!("first frame is not text: {other:?}")),
        _ => return Err("socket closed before OpenDataChannel".into()),
    };
    let input: Value = serde_json::from_str(text.as_str())
        .map_err(|e| format!("OpenDataChannel is not JSON: {e}"))?;
    let field = |name: &str| input.get(name).and_then(Value::as_str).map(str::to_owned);
    record.client_id = field("ClientId");
    record.client_version = field("ClientVersion");
    record.request_id = field("RequestId");
    let token = field("TokenValue").unwrap_or_default();
    let earlier = shared.stats.borrow().get(session_id).and_then(|s| {
        s.opens
            .iter()
            .rev()
            .find(|o| o.accepted)
            .map(|o| o.client_id.clone())
    });
    if let Some(earlier) = earlier
        && earlier != record.client_id
    {
        return Err(format!(
            "ClientId changed on redial ({earlier:?} → {:?})",
            record.client_id
        ));
    }
    if !shared.control.consume_token(session_id, &token) {
        return Err("TokenValue is not the session's current token".into());
    }
    shared.control.connected(session_id);
    Ok(())
}

/// Gives the socket to the session's task (starting it on the first open)
/// and forwards the socket's frames to it.
fn attach(ws: WebSocketStream<TcpStream>, shared: &Arc<Shared>, session_id: &str) {
    let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
    let (sink, mut stream) = ws.split();
    let tx = {
        let mut sessions = lock(&shared.sessions);
        let live = sessions
            .get(session_id)
            .filter(|tx| !tx.is_closed())
            .cloned();
        match live {
            Some(tx) => tx,
            None => {
                let tx = session::spawn(shared.clone(), session_id.to_owned());
                sessions.insert(session_id.to_owned(), tx.clone());
                tx
            }
        }
    };
    let _ = tx.send(Input::Attach {
        generation,
        sink: Box::new(sink),
    });
    tokio::spawn(async move {
        while let Some(frame) = stream.next().await {
            let input = match frame {
                Ok(Message::Binary(data)) => Input::Frame {
                    generation,
                    data: data.to_vec(),
                },
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
                Ok(_) => Input::NonBinary { generation },
            };
            if tx.send(input).is_err() {
                return;
            }
        }
        let _ = tx.send(Input::Gone { generation });
    });
}
