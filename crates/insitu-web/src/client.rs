//! Which address a request comes from, for login throttling: the peer's,
//! unless the peer is a configured reverse proxy (`http.trusted_proxies`),
//! in which case the rightmost address of `X-Forwarded-For` that is not
//! itself a trusted proxy. A header a client sets itself is never believed:
//! only what a trusted proxy appended is read.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::config::Network;
use crate::state::AppState;

/// The client's address, worked out as above.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

pub fn client_address(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trusted: &[Network],
) -> IpAddr {
    let Some(peer) = peer.map(|p| p.ip()) else {
        return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    };
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    // Hops as the proxies appended them, nearest last.
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(ip) {
                    break;
                }
            }
            // Something a trusted proxy would not write: stop at the last
            // address it vouched for.
            Err(_) => break,
        }
    }
    client
}

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(client_address(
            crate::listener::peer(parts),
            &parts.headers,
            &s.listening.trusted_proxies,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: SocketAddr = "10.0.0.5:4000".parse().unwrap();
        let stranger: SocketAddr = "198.51.100.7:4000".parse().unwrap();
        let trusted = [Network::parse("10.0.0.0/24").unwrap()];
        let h = headers(&["203.0.113.9"]);
        assert_eq!(
            client_address(Some(stranger), &h, &trusted),
            stranger.ip(),
            "a client's own header is ignored"
        );
        assert_eq!(client_address(Some(proxy), &h, &[]), proxy.ip());
        assert_eq!(
            client_address(Some(proxy), &h, &trusted).to_string(),
            "203.0.113.9"
        );
        // A client's forged first hop is left of what the proxy appended.
        let h = headers(&["1.2.3.4, 203.0.113.9"]);
        assert_eq!(
            client_address(Some(proxy), &h, &trusted).to_string(),
            "203.0.113.9"
        );
        // Proxies in a chain are skipped; headers may come split.
        let h = headers(&["1.2.3.4", "203.0.113.9, 10.0.0.7"]);
        assert_eq!(
            client_address(Some(proxy), &h, &trusted).to_string(),
            "203.0.113.9"
        );
        let h = headers(&["not-an-address"]);
        assert_eq!(client_address(Some(proxy), &h, &trusted), proxy.ip());
        assert_eq!(
            client_address(Some(proxy), &headers(&[]), &trusted),
            proxy.ip()
        );
    }
}
