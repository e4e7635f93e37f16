//! The network peer of a call: recorded in authentication-failure events only as a keyed
//! hash (`SubjectKeys::peer_ref`), so audit can group a burst by its source without
//! storing addresses.
//!
//! The peer is the address the gateway's socket sees, unless that address belongs to a
//! configured trusted proxy (`service.trusted_proxies`, e.g. the cluster's ingress): then
//! `x-forwarded-for` is read from the right, skipping trusted proxies, and the first
//! address that is not one is the client. Without trusted proxies the header is ignored,
//! since any client can write it.

use std::net::IpAddr;

use ipnet::IpNet;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use veil_core::config::ConfigError;

/// The header load balancers append the address they received a call from to.
const FORWARDED_FOR: &str = "x-forwarded-for";

/// Where a call came from; `None` when the transport did not say.
#[derive(Debug, Clone, Copy)]
pub struct Peer(Option<IpAddr>);

impl Peer {
    pub fn address(&self) -> Option<IpAddr> {
        self.0
    }
}

/// Networks whose `x-forwarded-for` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses `service.trusted_proxies`: networks such as `10.0.0.0/8`, or single
    /// addresses.
    pub fn parse(entries: &[String]) -> Result<Self, ConfigError> {
        let networks = entries
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                let entry = entry.trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        ConfigError::invalid(
                            format!("service.trusted_proxies[{i}]"),
                            "must be an IP network such as 10.0.0.0/8, or an IP address",
                        )
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self(networks))
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&address))
    }

    /// The peer of a gRPC request served by tonic.
    pub fn peer_of<T>(&self, request: &tonic::Request<T>) -> Peer {
        let forwarded = request.metadata().get_all(FORWARDED_FOR);
        self.resolve(
            request.remote_addr().map(|a| a.ip()),
            forwarded.iter().filter_map(|v| v.to_str().ok()),
        )
    }

    /// The peer of an HTTP request served by tonic (the proxy's raw requests), its
    /// socket read as [`tonic::Request::remote_addr`] does: plain TCP, else TLS over TCP.
    pub fn peer_of_http<B>(&self, request: &http::Request<B>) -> Peer {
        let extensions = request.extensions();
        let socket = extensions
            .get::<TcpConnectInfo>()
            .and_then(TcpConnectInfo::remote_addr)
            .or_else(|| {
                extensions
                    .get::<TlsConnectInfo<TcpConnectInfo>>()
                    .and_then(|tls| tls.get_ref().remote_addr())
            });
        let forwarded = request.headers().get_all(FORWARDED_FOR);
        self.resolve(
            socket.map(|a| a.ip()),
            forwarded.iter().filter_map(|v| v.to_str().ok()),
        )
    }

    /// The client behind `socket`: `socket` itself unless it is a trusted proxy; then
    /// the rightmost address of the forwarded chain that is not a trusted proxy (the
    /// leftmost when all are). An entry that is not an address ends the walk: what is
    /// left of it cannot be trusted, so the last proxy-vouched address stands.
    fn resolve<'a>(
        &self,
        socket: Option<IpAddr>,
        forwarded: impl DoubleEndedIterator<Item = &'a str>,
    ) -> Peer {
        let Some(mut client) = socket.map(|a| a.to_canonical()) else {
            return Peer(None);
        };
        if !self.trusts(client) {
            return Peer(Some(client));
        }
        // Several headers read as one list, in order.
        let chain: Vec<&str> = forwarded.flat_map(|value| value.split(',')).collect();
        for entry in chain.into_iter().rev() {
            let Ok(address) = entry.trim().parse::<IpAddr>() else {
                break;
            };
            client = address.to_canonical();
            if !self.trusts(client) {
                break;
            }
        }
        Peer(Some(client))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn proxies(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn resolve(trusted: &TrustedProxies, socket: &str, headers: &[&str]) -> String {
        let peer = trusted.resolve(Some(socket.parse().unwrap()), headers.iter().copied());
        peer.address().unwrap().to_string()
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let none = TrustedProxies::default();
        assert_eq!(
            resolve(&none, "203.0.113.9", &["198.51.100.7"]),
            "203.0.113.9"
        );
    }

    /// Resolves each `(socket, x-forwarded-for headers, expected client)` behind `trusted`.
    fn check(trusted: &[&str], cases: &[(&str, &[&str], &str)]) {
        let trusted = proxies(trusted);
        for (socket, headers, expected) in cases {
            assert_eq!(
                resolve(&trusted, socket, headers),
                *expected,
                "{socket} {headers:?}"
            );
        }
    }

    #[test]
    fn a_trusted_proxy_vouches_for_the_address_it_received_from() {
        check(
            &["10.0.0.0/8", "192.0.2.1"],
            &[
                ("10.1.1.1", &["198.51.100.7"], "198.51.100.7"),
                // A client's own entries left of the proxies' are not believed.
                (
                    "10.1.1.1",
                    &["1.2.3.4, 198.51.100.7, 192.0.2.1"],
                    "198.51.100.7",
                ),
                // Two headers are one list.
                (
                    "10.1.1.1",
                    &["1.2.3.4", "198.51.100.7, 10.9.9.9"],
                    "198.51.100.7",
                ),
                // An untrusted socket is the client, whatever it forwards.
                ("203.0.113.9", &["198.51.100.7"], "203.0.113.9"),
            ],
        );
    }

    #[test]
    fn a_chain_of_proxies_only_or_garbage_stops_at_what_was_vouched_for() {
        check(
            &["10.0.0.0/8"],
            &[
                ("10.1.1.1", &["10.2.2.2, 10.3.3.3"], "10.2.2.2"),
                ("10.1.1.1", &["unknown, 10.3.3.3"], "10.3.3.3"),
                ("10.1.1.1", &[], "10.1.1.1"),
                ("::ffff:10.1.1.1", &["2001:db8::1"], "2001:db8::1"),
            ],
        );
    }

    #[test]
    fn bad_entries_name_their_index() {
        let error = TrustedProxies::parse(&["10.0.0.0/8".into(), "ingress".into()]).unwrap_err();
        assert!(
            error.to_string().contains("service.trusted_proxies[1]"),
            "{error}"
        );
    }
}
