//! The network peer of a call, as far as the gateway's own socket sees it: recorded in
//! authentication-failure events only as a keyed hash (`SubjectKeys::peer_ref`), so
//! audit can group a burst by its source without storing addresses. Behind a load
//! balancer that does not preserve client addresses the peer is the balancer.

use std::net::IpAddr;

use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

/// Where a call came from; `None` when the transport did not say (in-process tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct Peer(Option<IpAddr>);

impl Peer {
    /// The peer of a gRPC request served by tonic.
    pub fn of<T>(request: &tonic::Request<T>) -> Self {
        Self(request.remote_addr().map(|a| a.ip()))
    }

    /// The peer of an HTTP request served by tonic (the proxy's raw requests), read as
    /// [`tonic::Request::remote_addr`] does: plain TCP, else TLS over TCP.
    pub fn of_http(extensions: &http::Extensions) -> Self {
        let tcp = extensions
            .get::<TcpConnectInfo>()
            .and_then(TcpConnectInfo::remote_addr)
            .or_else(|| {
                extensions
                    .get::<TlsConnectInfo<TcpConnectInfo>>()
                    .and_then(|tls| tls.get_ref().remote_addr())
            });
        Self(tcp.map(|a| a.ip()))
    }

    pub fn address(&self) -> Option<IpAddr> {
        self.0
    }
}
