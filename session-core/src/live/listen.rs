//! Where a live connection listens: the caller's choice ([`LiveOptions`]),
//! and binding it so that a port already taken fails at once.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tokio::net::TcpListener;

use crate::{Error, Result};

/// What the caller asks of a live connection, passed to the provider in
/// [`ActionContext::live`](crate::ActionContext::live).
///
/// Every field is optional: a provider uses its session's own settings, then
/// its defaults, for what is left unset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LiveOptions {
    /// The local address to listen on (a port forward, a proxy). Port 0
    /// picks a free port.
    pub listen: Option<SocketAddr>,
}

impl LiveOptions {
    /// Listens on `address`.
    pub fn with_listen(mut self, address: SocketAddr) -> Self {
        self.listen = Some(address);
        self
    }

    /// Listens on `port` of the loopback address `127.0.0.1`, or of the
    /// address already set.
    pub fn with_listen_port(mut self, port: u16) -> Self {
        let ip = self
            .listen
            .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |a| a.ip());
        self.listen = Some(SocketAddr::new(ip, port));
        self
    }

    /// The listen address to use: the caller's, else `fallback`.
    pub fn listen_or(&self, fallback: SocketAddr) -> SocketAddr {
        self.listen.unwrap_or(fallback)
    }
}

/// Binds a TCP listener on `address` for a live connection, failing at once
/// with an error that names the address when it cannot: a port already in
/// use is [`Error::InvalidInput`] saying "address in use", never a wait
/// (`boundary connect` hangs on that, boundary#4759).
///
/// # Errors
///
/// [`Error::InvalidInput`] (field `listen address`) when the address is in
/// use, not an address of this machine, or a privileged port; any other I/O
/// error is [`Error::Unavailable`] naming the address.
pub async fn bind_listener(address: SocketAddr) -> Result<TcpListener> {
    match TcpListener::bind(address).await {
        Ok(listener) => Ok(listener),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(Error::invalid_input(
            "listen address",
            format!(
                "{address}: address in use (another program listens there); choose another port"
            ),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => Err(Error::invalid_input(
            "listen address",
            format!("{address}: not an address of this machine ({e})"),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(Error::invalid_input(
            "listen address",
            format!("{address}: permission denied (ports below 1024 need privileges)"),
        )),
        Err(e) => Err(Error::Unavailable {
            target: address.to_string(),
            message: format!("cannot listen on {address}"),
            source: Some(std::sync::Arc::new(e)),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_keeps_the_address_and_defaults_to_loopback() {
        let options = LiveOptions::default().with_listen_port(5432);
        assert_eq!(options.listen, Some("127.0.0.1:5432".parse().unwrap()));
        let v6 = LiveOptions::default()
            .with_listen("[::1]:0".parse().unwrap())
            .with_listen_port(7);
        assert_eq!(v6.listen, Some("[::1]:7".parse().unwrap()));
        assert_eq!(
            LiveOptions::default().listen_or("127.0.0.1:9".parse().unwrap()),
            "127.0.0.1:9".parse().unwrap()
        );
    }

    #[tokio::test]
    async fn a_port_in_use_fails_at_once_naming_it() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = taken.local_addr().unwrap();
        let error = bind_listener(address).await.unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, Error::InvalidInput { .. }), "{error:?}");
        assert!(text.contains("address in use"), "{text}");
        assert!(text.contains(&address.to_string()), "{text}");
        drop(taken);
        let listener = bind_listener(address).await.expect("free again");
        assert_eq!(listener.local_addr().unwrap(), address);
    }
}
