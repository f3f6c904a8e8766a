//! What the local peer harnesses ([`moto`](crate::peers::moto),
//! [`sushy`](crate::peers::sushy), [`oidc`](crate::peers::oidc)) share: a free loopback
//! port, the tail of a peer's log, why a start failed, and a status-only
//! HTTP probe.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// Why one attempt to start a peer failed.
pub(crate) enum StartError {
    /// The port was taken between choosing it and the peer binding it: try
    /// another.
    PortTaken { port: u16, tail: String },
    /// Anything else, with the end of the peer's log.
    Failed { reason: String, tail: String },
}

impl StartError {
    /// A failure before the peer wrote a log.
    pub(crate) fn failed(reason: String) -> Self {
        Self::Failed {
            reason,
            tail: "(no log)".to_owned(),
        }
    }
}

/// A port of 127.0.0.1 that was free a moment ago: bind port 0, read the port
/// the kernel chose, and let it go. Someone else may take it before the peer
/// binds it; the harnesses then try another ([`StartError::PortTaken`]).
pub(crate) fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// The last `n` lines of `text`.
pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return "(empty log)".to_owned();
    }
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The status code of a plain-HTTP `GET path` to 127.0.0.1:`port`, read from
/// the status line only (a readiness probe need not wait for the body).
pub(crate) fn http_get_status(port: u16, path: &str) -> io::Result<u16> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = Vec::new();
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    parse_status_line(&head)
}

/// The status code of an HTTP/1 status line.
pub(crate) fn parse_status_line(head: &[u8]) -> io::Result<u16> {
    let text = String::from_utf8_lossy(head);
    let line = text.lines().next().unwrap_or_default();
    let mut parts = line.split(' ');
    match (parts.next(), parts.next().map(str::parse::<u16>)) {
        (Some(version), Some(Ok(status))) if version.starts_with("HTTP/1.") => Ok(status),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not an HTTP/1 status line: {line:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_nonzero() {
        assert_ne!(free_port().unwrap(), 0);
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
        assert_eq!(tail("", 5), "(empty log)");
    }

    #[test]
    fn status_lines_are_parsed() {
        assert_eq!(
            parse_status_line(b"HTTP/1.1 404 NOT FOUND\r\n").unwrap(),
            404
        );
        assert_eq!(parse_status_line(b"HTTP/1.0 200 OK\r\n").unwrap(), 200);
        assert!(parse_status_line(b"\x16\x03\x03").is_err());
        assert!(parse_status_line(b"").is_err());
    }
}
