//! Port sessions: basic mode (one TCP connection bridged to the Output
//! payloads) and mux mode (the Output payloads are an smux v1 byte stream;
//! each stream gets its own TCP connection).
//!
//! Mux mode has two smux servers ([`SmuxServer`]): the `async_smux` crate
//! over an in-memory pipe, or xtaci/smux (the real agent's library) in the
//! Go harness `session-testkit/peers/smux-xtaci`, a child process fed on
//! stdin and read from stdout, which reports streams, dials and the end of
//! its session as lines on stderr. Stderr and stdout are read by separate
//! tasks, so a failed dial's Flag ConnectToPortError and its FIN reach the
//! client in either order (ssm.md fixes none; in the agent too they take
//! separate paths). Either way the client's bytes pass a
//! [`NopScanner`] first, and the server's bytes go back as Output payloads
//! of ≤ 1,024 bytes.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use async_smux::MuxBuilder;
use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

use super::Shared;
use super::codec::{flag, flag_payload, payload};
use super::scenario::{SmuxServer, XtaciKeepalive};
use super::session::Input;

/// Bytes per Output message read from TCP or smux.
const CHUNK: usize = 1024;
/// The in-memory pipe between the data channel and the smux server.
const PIPE: usize = 1 << 20;

#[derive(Clone)]
struct Ctx {
    shared: Arc<Shared>,
    id: String,
    tx: mpsc::UnboundedSender<Input>,
    /// Output payloads read from the target, to the session task.
    data: mpsc::Sender<Vec<u8>>,
    /// `host:port` to dial when the scenario names no target.
    default_target: String,
}

impl Ctx {
    fn target(&self) -> String {
        self.shared
            .scenario()
            .target
            .map_or_else(|| self.default_target.clone(), |a| a.to_string())
    }

    /// Dials the target, or fails as the scenario says (sending Flag
    /// ConnectToPortError).
    async fn dial(&self) -> Option<TcpStream> {
        let result = if self.shared.scenario().fail_dial {
            None
        } else {
            TcpStream::connect(self.target()).await.ok()
        };
        match &result {
            Some(_) => self.shared.stat(&self.id, |s| s.target_connections += 1),
            None => self.dial_failed(),
        }
        result
    }

    /// Counts a failed dial and tells the client (Flag ConnectToPortError).
    fn dial_failed(&self) {
        self.shared.stat(&self.id, |s| s.dial_failures += 1);
        let _ = self.tx.send(Input::App {
            payload_type: payload::FLAG,
            payload: flag_payload(flag::CONNECT_TO_PORT_ERROR),
        });
    }

    /// Records one stderr line of the xtaci harness (see its main.go).
    fn xtaci_event(&self, line: &str) {
        match line.split_once(' ') {
            Some(("stream", id)) => {
                if let Ok(id) = id.parse() {
                    self.shared.stat(&self.id, |s| s.smux_streams.push(id));
                }
            }
            Some(("connected", _)) => self.shared.stat(&self.id, |s| s.target_connections += 1),
            Some(("dial-failed", _)) => self.dial_failed(),
            Some(("session-closed:", why)) => {
                let why = why.to_owned();
                self.shared.stat(&self.id, |s| s.smux_closed = Some(why));
            }
            // E.g. a Go panic: visible in the test's log, not a stat.
            _ => tracing::warn!(session = %self.id, "smux-xtaci: {line}"),
        }
    }
}

/// Forwards what `reader` yields as Output payloads of ≤ 1,024 bytes.
///
/// Through a short bounded queue: the session task takes a payload only
/// when it can send it, so the target is read only as fast as the
/// websocket takes the data, as the agent's port reader waits on its
/// blocking websocket writes. An unbounded queue let the fake read a
/// whole 100 MiB target at once and hold the client's acks behind it.
fn pump<R: AsyncRead + Unpin + Send + 'static>(
    mut reader: R,
    data: mpsc::Sender<Vec<u8>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; CHUNK];
        while let Ok(n) = reader.read(&mut buf).await {
            if n == 0 {
                break;
            }
            if data.send(buf[..n].to_vec()).await.is_err() {
                break;
            }
        }
    })
}

/// A port session's handler.
pub(super) enum Port {
    Basic(Basic),
    Mux(Mux),
}

impl Port {
    pub(super) fn new(
        mux: bool,
        props: &Map<String, Value>,
        shared: Arc<Shared>,
        id: String,
        tx: mpsc::UnboundedSender<Input>,
        data: mpsc::Sender<Vec<u8>>,
    ) -> Self {
        let prop = |k: &str| props.get(k).and_then(Value::as_str).map(str::to_owned);
        let host = prop("host").unwrap_or_else(|| "127.0.0.1".into());
        let port = prop("portNumber").unwrap_or_else(|| "22".into());
        let ctx = Ctx {
            shared,
            id,
            tx,
            data,
            default_target: format!("{host}:{port}"),
        };
        if mux {
            Port::Mux(Mux::start(ctx))
        } else {
            Port::Basic(Basic { ctx, conn: None })
        }
    }

    /// Output bytes from the client.
    pub(super) async fn input(&mut self, bytes: Vec<u8>) {
        match self {
            Port::Basic(b) => b.input(bytes).await,
            Port::Mux(m) => {
                let _ = m.writer.send(bytes);
            }
        }
    }

    /// Flag DisconnectToPort: basic mode closes its connection.
    pub(super) fn disconnect(&mut self) {
        if let Port::Basic(b) = self {
            b.close();
        }
    }
}

/// Basic mode: one TCP connection at a time.
pub(super) struct Basic {
    ctx: Ctx,
    /// The writer task's queue and the reader's task of the connection.
    conn: Option<(mpsc::UnboundedSender<Vec<u8>>, JoinHandle<()>)>,
}

impl Basic {
    async fn input(&mut self, bytes: Vec<u8>) {
        if self.conn.is_none() {
            let Some(tcp) = self.ctx.dial().await else {
                return;
            };
            let (read, write) = tcp.into_split();
            self.conn = Some((write_task(write), pump(read, self.ctx.data.clone())));
        }
        if let Some((writer, _)) = self.conn.as_ref()
            && writer.send(bytes).is_err()
        {
            self.close();
        }
    }

    /// Flag DisconnectToPort: what was queued is written, then the
    /// connection is closed.
    fn close(&mut self) {
        if let Some((_, reader)) = self.conn.take() {
            reader.abort();
        }
    }
}

/// Writes the client's bytes to the target in a task of its own, as the
/// agent writes from its websocket reader while another goroutine reads
/// the target. The session task awaiting the write itself deadlocked with
/// an echo target: the session waited for the target to read, the target
/// waited to write its echo, and the echo waited for the session to send.
fn write_task(mut write: OwnedWriteHalf) -> mpsc::UnboundedSender<Vec<u8>> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if write.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = write.shutdown().await;
    });
    tx
}

impl Drop for Basic {
    fn drop(&mut self) {
        self.close();
    }
}

/// Mux mode: an smux server fed through `writer`.
pub(super) struct Mux {
    writer: mpsc::UnboundedSender<Vec<u8>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Mux {
    fn start(ctx: Ctx) -> Self {
        match ctx.shared.scenario().smux_server {
            SmuxServer::AsyncSmux => Self::async_smux(ctx),
            SmuxServer::Xtaci { program, keepalive } => Self::xtaci(ctx, &program, keepalive),
        }
    }

    /// An `async_smux` server session over an in-memory pipe.
    fn async_smux(ctx: Ctx) -> Self {
        let (ours, theirs) = tokio::io::duplex(PIPE);
        let (connector, mut acceptor, worker) =
            MuxBuilder::server().with_connection(theirs).build();
        let (read, write) = tokio::io::split(ours);
        let (writer, bytes) = mpsc::unbounded_channel::<Vec<u8>>();
        let mut tasks = vec![
            tokio::spawn(async move {
                // The connector is never used (the agent opens no streams),
                // but dropping it would close the session.
                let _connector = connector;
                let _ = worker.await;
            }),
            feed(write, bytes, &ctx),
            pump(read, ctx.data.clone()),
        ];
        tasks.push(tokio::spawn(async move {
            let mut streams = JoinSet::new();
            while let Some(stream) = acceptor.accept().await {
                let id = stream.get_stream_id();
                ctx.shared.stat(&ctx.id, |s| s.smux_streams.push(id));
                streams.spawn(serve_stream(stream, ctx.clone()));
            }
            while streams.join_next().await.is_some() {}
        }));
        Self { writer, tasks }
    }

    /// The xtaci harness as a child process, killed when the Mux is
    /// dropped (its tasks are aborted, the task owning it drops it).
    fn xtaci(ctx: Ctx, program: &Path, keepalive: XtaciKeepalive) -> Self {
        let (writer, bytes) = mpsc::unbounded_channel::<Vec<u8>>();
        let mut command = Command::new(program);
        command
            .arg("-target")
            .arg(ctx.target())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        match keepalive {
            XtaciKeepalive::Defaults => {}
            XtaciKeepalive::Disabled => {
                command.arg("-no-keepalive");
            }
            XtaciKeepalive::Custom { interval, timeout } => {
                // Go's time.ParseDuration reads "<n>ns" exactly.
                command
                    .arg("-keepalive-interval")
                    .arg(format!("{}ns", interval.as_nanos()))
                    .arg("-keepalive-timeout")
                    .arg(format!("{}ns", timeout.as_nanos()));
            }
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                let why = format!("cannot run {}: {e}", program.display());
                ctx.shared.stat(&ctx.id, |s| s.smux_closed = Some(why));
                // The receiver is gone: the client's bytes are dropped.
                return Self {
                    writer,
                    tasks: Vec::new(),
                };
            }
        };
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            unreachable!("all three pipes were requested");
        };
        let tasks = vec![
            feed(stdin, bytes, &ctx),
            pump(stdout, ctx.data.clone()),
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    ctx.xtaci_event(&line);
                }
                // Reaps it; after `session-closed` it has exited (code 3).
                let _ = child.wait().await;
            }),
        ];
        Self { writer, tasks }
    }
}

/// Writes the client's smux bytes into the server, counting its NOPs on
/// the way (the server swallows them).
fn feed<W: AsyncWrite + Unpin + Send + 'static>(
    mut write: W,
    mut bytes: mpsc::UnboundedReceiver<Vec<u8>>,
    ctx: &Ctx,
) -> JoinHandle<()> {
    let (shared, id) = (ctx.shared.clone(), ctx.id.clone());
    tokio::spawn(async move {
        let mut scanner = NopScanner::default();
        while let Some(b) = bytes.recv().await {
            let nops = scanner.nops(&b);
            if nops > 0 {
                shared.stat(&id, |s| s.smux_nops += nops);
            }
            if write.write_all(&b).await.is_err() {
                break;
            }
        }
    })
}

impl Drop for Mux {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Counts NOP frames (cmd 3) in the client's smux byte stream, frame by
/// frame from the 8-byte headers (`ssm.md` §3), across payload bounds: the
/// smux server consumes NOPs without a trace.
#[derive(Default)]
struct NopScanner {
    header: Vec<u8>,
    skip: usize,
}

impl NopScanner {
    fn nops(&mut self, mut bytes: &[u8]) -> u64 {
        let mut found = 0;
        while !bytes.is_empty() {
            if self.skip > 0 {
                let k = self.skip.min(bytes.len());
                self.skip -= k;
                bytes = &bytes[k..];
                continue;
            }
            let k = (8 - self.header.len()).min(bytes.len());
            self.header.extend_from_slice(&bytes[..k]);
            bytes = &bytes[k..];
            if self.header.len() == 8 {
                if self.header[1] == 3 {
                    found += 1;
                }
                self.skip = usize::from(u16::from_le_bytes([self.header[2], self.header[3]]));
                self.header.clear();
            }
        }
        found
    }
}

/// One smux stream: dial the target and copy both ways; on a failed dial,
/// Flag ConnectToPortError (sent by [`Ctx::dial`]) and a FIN.
async fn serve_stream<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, ctx: Ctx) {
    match ctx.dial().await {
        Some(mut tcp) => {
            let _ = tokio::io::copy_bidirectional(&mut stream, &mut tcp).await;
            let _ = stream.shutdown().await;
        }
        None => {
            let _ = stream.shutdown().await;
        }
    }
}
