//! [`EchoService`]: a hostile HTTP service whose error answers echo the
//! request body, as some BMCs and proxies do, for checking that a secret
//! sent to a service never comes back out through an error.
//!
//! - `GET /redfish/v1/` (and `/redfish/v1`) answers a Redfish service root
//!   whose `Links.Sessions` is `/redfish/v1/SessionService/Sessions`, so a
//!   Redfish client goes on to log in there.
//! - Every other request answers `400 Bad Request` with a Redfish-style
//!   error body whose `error.message` and `@Message.ExtendedInfo[0].Message`
//!   quote the request body verbatim: a login POST gets its own password
//!   back.
//!
//! ```no_run
//! # async fn demo() {
//! use session_testkit::fakes::EchoService;
//! let echo = EchoService::start().await;
//! // Point a client at echo.base_url(); after the call:
//! assert!(echo.bodies().iter().any(|b| b.contains("Password")));
//! # }
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::task::JoinHandle;

/// The Sessions collection the service root links to.
pub const ECHO_SESSIONS_URI: &str = "/redfish/v1/SessionService/Sessions";

/// The running echo service; it stops when dropped.
#[derive(Debug)]
pub struct EchoService {
    addr: SocketAddr,
    bodies: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl EchoService {
    /// Starts the service on `127.0.0.1:0`, as a task of the current Tokio
    /// runtime.
    ///
    /// # Panics
    ///
    /// When no local port can be bound.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("EchoService: cannot bind 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("EchoService: no local address");
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let seen = bodies.clone();
        let app = Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| {
            let seen = seen.clone();
            async move { answer(&seen, &method, &uri, &body) }
        });
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!("EchoService stopped: {e}");
            }
        });
        Self { addr, bodies, task }
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request body received so far (lossy UTF-8), in order; empty
    /// bodies are left out.
    pub fn bodies(&self) -> Vec<String> {
        self.bodies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for EchoService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(seen: &Mutex<Vec<String>>, method: &Method, uri: &Uri, body: &[u8]) -> Response {
    let path = uri.path().trim_end_matches('/');
    if method == Method::GET && path == "/redfish/v1" {
        let root = json!({
            "@odata.id": "/redfish/v1/",
            "Id": "RootService",
            "Name": "Echo Service",
            "RedfishVersion": "1.15.0",
            "Links": {"Sessions": {"@odata.id": ECHO_SESSIONS_URI}},
        });
        return axum::Json(root).into_response();
    }
    let text = String::from_utf8_lossy(body).into_owned();
    if !text.is_empty() {
        seen.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(text.clone());
    }
    let quoted = format!("cannot process {method} {path}: {text}");
    let error = json!({
        "error": {
            "code": "Base.1.15.GeneralError",
            "message": quoted,
            "@Message.ExtendedInfo": [{
                "MessageId": "Base.1.15.MalformedJSON",
                "Message": quoted,
            }],
        }
    });
    (StatusCode::BAD_REQUEST, axum::Json(error)).into_response()
}
