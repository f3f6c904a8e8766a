//! Who may talk to the server: loopback peers naming a loopback `Host`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::Shared;
use super::ecs::json_error;

/// Refuses non-loopback peers and foreign `Host`s with 403, before any
/// handler runs, and logs every request (method, path, status; never
/// headers, which carry the tokens).
pub(super) async fn guard(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    // Set by `into_make_service_with_connect_info`; missing means the
    // router is served some other way, and then nobody is let in.
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    let Some(peer) = peer.filter(|peer| is_loopback_peer(*peer)) else {
        tracing::debug!(%method, path, ?peer, "credential server: refused a non-loopback peer");
        return json_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "only clients on this machine (loopback) may use this endpoint",
        );
    };
    let hosts_ok = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|host| host_allowed(host, shared.local_addr.port()))
        // An absolute-form request target (`GET http://host/...`) names a
        // host too; it must pass the same check.
        && request
            .uri()
            .authority()
            .is_none_or(|a| host_allowed(a.as_str(), shared.local_addr.port()));
    if !hosts_ok {
        tracing::debug!(%method, path, %peer, "credential server: refused a foreign Host");
        return json_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "the Host header must name this endpoint: localhost, 127.0.0.1 or [::1], \
             with this server's port if any",
        );
    }
    let response = next.run(request).await;
    tracing::debug!(%method, path, %peer, status = response.status().as_u16(), "credential server request");
    response
}

/// Whether `peer` is on this machine's loopback interface (an IPv4-mapped
/// IPv6 address counts as its IPv4 address).
pub(super) fn is_loopback_peer(peer: SocketAddr) -> bool {
    peer.ip().to_canonical().is_loopback()
}

/// Whether a `Host` value (or a request target's authority) names this
/// server: `localhost` or a loopback IP literal (IPv6 in brackets), and if
/// a port is given, `port`. A DNS name other than `localhost` is refused
/// even if it resolves to 127.0.0.1: that is how DNS rebinding reaches a
/// local server from a web page.
pub(super) fn host_allowed(value: &str, port: u16) -> bool {
    let (host, given_port) = if let Some(rest) = value.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return false;
        };
        let Ok(ip) = inside.parse::<IpAddr>() else {
            return false;
        };
        if !ip.is_ipv6() {
            return false;
        }
        let given_port = match after {
            "" => None,
            after => match after.strip_prefix(':') {
                Some(p) => Some(p),
                None => return false,
            },
        };
        (inside, given_port)
    } else {
        match value.split_once(':') {
            Some((host, p)) => (host, Some(p)),
            None => (value, None),
        }
    };
    if let Some(given) = given_port {
        // Digits only: `u16::from_str` would also take a leading `+`.
        if given.is_empty()
            || !given.bytes().all(|b| b.is_ascii_digit())
            || given.parse::<u16>() != Ok(port)
        {
            return false;
        }
    }
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}
