//! Where a request comes from: the TCP peer, or, when that peer is a proxy
//! the operator named in `TRUSTED_PROXIES`, the client it forwarded for.
//! Forwarding headers from anyone else are ignored: anyone can write them.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use http::request::Parts;
use ipnet::IpNet;

/// The client's address (see the module's documentation for which one).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return Ok(ClientIp(None));
        };
        let peer = peer.ip().to_canonical();
        let client = match parts.extensions.get::<TrustedProxies>() {
            Some(proxies) if proxies.contains(peer) => {
                let forwarded = parts
                    .headers
                    .get_all("x-forwarded-for")
                    .iter()
                    .filter_map(|value| value.to_str().ok());
                proxies.client_behind(peer, forwarded)
            }
            _ => peer,
        };
        Ok(ClientIp(Some(client)))
    }
}

/// The proxies whose `X-Forwarded-For` is believed: addresses and CIDR
/// ranges, none by default. The router puts them in every request's
/// extensions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Arc<[IpNet]>);

impl TrustedProxies {
    /// Whether `ip` is one of the proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client a trusted `peer` forwarded for: the right-most address of
    /// `X-Forwarded-For` (all its headers, in order) that is not itself a
    /// trusted proxy. Entries to its left were written by the client and
    /// prove nothing. An entry that is not an address means the chain
    /// cannot be followed, and the peer itself is the answer.
    pub fn client_behind<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl Iterator<Item = &'a str>,
    ) -> IpAddr {
        let entries: Vec<&str> = forwarded_for.flat_map(|value| value.split(',')).collect();
        let mut client = peer;
        for entry in entries.iter().rev() {
            let Some(ip) = parse_forwarded(entry.trim()) else {
                return peer;
            };
            client = ip;
            if !self.contains(ip) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port.
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|addr| addr.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

impl FromStr for TrustedProxies {
    type Err = String;

    /// "10.0.0.1, 192.168.0.0/16, ::1": comma-separated addresses and CIDR
    /// ranges; empty for none.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!(
                            "{entry:?} is neither an IP address nor a CIDR range \
                             (such as 10.0.0.1 or 10.0.0.0/8)"
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|nets| TrustedProxies(nets.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn addresses_and_ranges_are_parsed() {
        let proxies: TrustedProxies = " 127.0.0.1, 10.0.0.0/8 ,::1".parse().unwrap();
        assert!(proxies.contains(ip("127.0.0.1")));
        assert!(proxies.contains(ip("10.20.30.40")));
        assert!(proxies.contains(ip("::ffff:10.0.0.1")));
        assert!(proxies.contains(ip("::1")));
        assert!(!proxies.contains(ip("127.0.0.2")));
        assert_eq!("".parse::<TrustedProxies>(), Ok(TrustedProxies::default()));
        let err = "10.0.0.1, proxy.local"
            .parse::<TrustedProxies>()
            .unwrap_err();
        assert!(err.contains("proxy.local"), "{err}");
    }

    #[test]
    fn the_right_most_untrusted_entry_is_the_client() {
        let proxies: TrustedProxies = "127.0.0.1, 10.0.0.0/8".parse().unwrap();
        let peer = ip("127.0.0.1");
        let client = |headers: &[&str]| proxies.client_behind(peer, headers.iter().copied());
        assert_eq!(client(&[]), peer);
        assert_eq!(client(&["203.0.113.7"]), ip("203.0.113.7"));
        // The client wrote the left entry itself; the proxies appended the rest.
        assert_eq!(
            client(&["198.51.100.1, 203.0.113.7, 10.1.1.1"]),
            ip("203.0.113.7")
        );
        assert_eq!(
            client(&["198.51.100.1", "203.0.113.7:4711"]),
            ip("203.0.113.7")
        );
        assert_eq!(client(&["10.1.1.1, 10.2.2.2"]), ip("10.1.1.1"));
        assert_eq!(client(&["203.0.113.7, garbage"]), peer);
    }
}
