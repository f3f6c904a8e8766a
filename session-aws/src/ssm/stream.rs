//! Sessions whose data is one byte stream: a shell (`Standard_Stream`,
//! `InteractiveCommands`), a non-interactive command, and standard-stream
//! forwarding (`AWS-StartSSHSession`). The user's side is a duplex stream
//! of [`LiveHandle::streaming`](session_core::LiveHandle::streaming) (a
//! terminal) or [`LiveHandle::byte_stream`](session_core::LiveHandle::byte_stream)
//! (a forwarded port's bytes); this task copies it to and from Output
//! payloads (ssm.md §2.9).

use serde::Serialize;
use session_core::WindowSize;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf};
use tokio::sync::watch;

use super::channel::{ChannelEnd, ChannelSender, DataChannel, Incoming};
use super::message::PayloadType;
use super::payload::FlagValue;

/// Input bytes per Output payload: 1,024, as the plugin reads stdin.
const INPUT_CHUNK: usize = 1024;

/// How a stream session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamEnd {
    /// Why the channel ended.
    pub channel: ChannelEnd,
    /// The remote command's exit status (an ExitCode payload), if one came.
    pub exit_code: Option<i32>,
    /// The agent could not connect to the remote port (Flag
    /// ConnectToPortError, standard-stream forwarding): the stream ended
    /// there, as nothing could ever pass.
    pub port_unreachable: bool,
}

#[derive(Serialize)]
struct SizePayload {
    cols: u32,
    rows: u32,
}

/// Copies `io` (the user's input) into Output payloads and the agent's
/// Output, Error and StdErr payloads into `io`, and sends the terminal size
/// from `sizes` at start and on every change, until the channel ends.
///
/// The user's end of `io` closing (the handle dropped) is not the end of
/// the session: the session ends by `stop`, the remote side, or the
/// network. An ExitCode payload is kept and returned with the end.
///
/// Sending and receiving run side by side: one loop that waited for the
/// window stopped reading the channel, so the agent's acks went unread
/// once its output filled the channel's queue, and a stream echoed both
/// ways at once hung.
pub async fn run_stream(
    mut channel: DataChannel,
    io: DuplexStream,
    sizes: watch::Receiver<Option<WindowSize>>,
) -> StreamEnd {
    let (input, mut output) = tokio::io::split(io);
    let sending = send_input(channel.sender(), input, sizes);
    tokio::pin!(sending);
    let mut sending_done = false;
    let mut exit_code = None;
    let mut port_unreachable = false;
    loop {
        tokio::select! {
            () = &mut sending, if !sending_done => sending_done = true,
            incoming = channel.recv() => match incoming {
                Some(Incoming::Output(bytes) | Incoming::Error(bytes) | Incoming::StdErr(bytes)) => {
                    // A user who went away does not end the session.
                    let _ = output.write_all(&bytes).await;
                }
                Some(Incoming::ExitCode(bytes)) => {
                    exit_code = parse_exit_code(&bytes);
                }
                Some(Incoming::Flag(FlagValue::ConnectToPortError)) => {
                    tracing::warn!("the agent could not connect to the remote port");
                    port_unreachable = true;
                    break;
                }
                Some(Incoming::Flag(flag)) => tracing::debug!(?flag, "flag from the agent"),
                None => break,
            },
        }
    }
    let _ = output.shutdown().await;
    if port_unreachable {
        // The channel is still up: `stop` ends it and the remote session.
        return StreamEnd {
            channel: ChannelEnd::Local,
            exit_code,
            port_unreachable,
        };
    }
    StreamEnd {
        channel: channel.ended().await,
        exit_code,
        port_unreachable,
    }
}

/// The sending half of [`run_stream`]: the terminal size at start and on
/// every change, and the user's input in payloads of [`INPUT_CHUNK`]
/// bytes, until the channel refuses one. The end of the input ends only
/// the reading of it.
async fn send_input(
    channel: ChannelSender,
    mut input: ReadHalf<DuplexStream>,
    mut sizes: watch::Receiver<Option<WindowSize>>,
) {
    let mut buffer = vec![0u8; INPUT_CHUNK];
    let mut reading = true;
    let mut sizing = true;
    let mut pending_size = *sizes.borrow_and_update();
    loop {
        if let Some(size) = pending_size.take()
            && send_size(&channel, size).await.is_err()
        {
            return;
        }
        if !reading && !sizing {
            return;
        }
        tokio::select! {
            read = input.read(&mut buffer), if reading => match read {
                Ok(0) | Err(_) => reading = false,
                Ok(n) => {
                    if channel.send(PayloadType::Output, buffer[..n].to_vec()).await.is_err() {
                        return;
                    }
                }
            },
            changed = sizes.changed(), if sizing => match changed {
                Ok(()) => pending_size = *sizes.borrow_and_update(),
                Err(_) => sizing = false,
            },
        }
    }
}

async fn send_size(channel: &ChannelSender, size: WindowSize) -> session_core::Result<()> {
    let payload = serde_json::to_vec(&SizePayload {
        cols: u32::from(size.cols),
        rows: u32::from(size.rows),
    })
    .unwrap_or_default();
    channel.send(PayloadType::Size, payload).await
}

/// An ExitCode payload: the status as decimal text (trimmed, as the agent
/// trims its strings).
fn parse_exit_code(bytes: &[u8]) -> Option<i32> {
    std::str::from_utf8(bytes).ok().and_then(|text| {
        text.trim_matches(|c: char| c.is_whitespace() || c == '\0')
            .parse()
            .ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_decimal_text() {
        assert_eq!(parse_exit_code(b"3"), Some(3));
        assert_eq!(parse_exit_code(b" 130\n"), Some(130));
        assert_eq!(parse_exit_code(b"-1"), Some(-1));
        assert_eq!(parse_exit_code(b"x"), None);
        assert_eq!(parse_exit_code(&[0xff]), None);
    }

    #[test]
    fn the_size_payload_is_cols_then_rows() {
        let json = serde_json::to_string(&SizePayload { cols: 80, rows: 24 }).unwrap();
        assert_eq!(json, r#"{"cols":80,"rows":24}"#);
    }
}
