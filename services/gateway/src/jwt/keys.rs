//! Where the issuer's public keys come from (a JWKS file or URL) and how they are parsed.
//!
//! The URL fetch is a minimal HTTP/1.0 GET (so the reply is never chunked) over TCP or
//! rustls with the webpki roots or a configured CA: a JWKS is a small public document, and
//! this keeps a full HTTP client out of the gateway.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::rustls;

use super::JwtError;

/// Largest JWKS reply accepted; real ones are a few kilobytes.
const MAX_REPLY: u64 = 1 << 20;
/// Deadline for one fetch (connect, TLS, request and reply).
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The verification keys by `kid` (keys without one are stored under "").
pub(super) struct KeySet {
    pub keys: HashMap<String, (DecodingKey, Algorithm)>,
    pub loaded: Instant,
}

/// Where keys are read from.
pub(super) enum Source {
    File(PathBuf),
    Url {
        uri: http::Uri,
        tls: Option<Arc<rustls::ClientConfig>>,
    },
}

/// The algorithm a JWK is used with; `None` for symmetric or unsupported keys.
fn algorithm_of(jwk: &Jwk) -> Option<Algorithm> {
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            Some(Algorithm::ES256)
        }
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            Some(Algorithm::EdDSA)
        }
        _ => None,
    }
}

impl Source {
    /// A source from the settings: exactly one of `path` and `url` is non-empty.
    pub fn new(path: &str, url: &str, ca_path: &str) -> Result<Self, JwtError> {
        if !path.is_empty() {
            return Ok(Source::File(PathBuf::from(path)));
        }
        let error = |reason: String| JwtError::Jwks {
            origin: url.to_string(),
            reason,
        };
        let uri: http::Uri = url.parse().map_err(|_| error("not a URL".into()))?;
        let tls = match uri.scheme_str() {
            Some("http") => None,
            Some("https") => {
                let mut roots = rustls::RootCertStore::empty();
                if ca_path.is_empty() {
                    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                } else {
                    let pem = std::fs::read(ca_path).map_err(|e| error(e.to_string()))?;
                    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                        roots
                            .add(cert.map_err(|e| error(e.to_string()))?)
                            .map_err(|e| error(e.to_string()))?;
                    }
                }
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| error(e.to_string()))?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                Some(Arc::new(config))
            }
            _ => return Err(error("must be http:// or https://".into())),
        };
        Ok(Source::Url { uri, tls })
    }

    fn name(&self) -> String {
        match self {
            Source::File(path) => path.display().to_string(),
            Source::Url { uri, .. } => uri.to_string(),
        }
    }

    /// Reads and parses the key set.
    pub async fn load(&self) -> Result<KeySet, JwtError> {
        let error = |reason: String| JwtError::Jwks {
            origin: self.name(),
            reason,
        };
        let text = match self {
            Source::File(path) => tokio::fs::read_to_string(path)
                .await
                .map_err(|e| error(e.to_string()))?,
            Source::Url { uri, tls } => tokio::time::timeout(FETCH_TIMEOUT, fetch(uri, tls))
                .await
                .map_err(|_| error("timed out".into()))?
                .map_err(error)?,
        };
        parse(&text).map_err(error)
    }
}

/// Parses a JWKS document, keeping the asymmetric signing keys.
pub(super) fn parse(text: &str) -> Result<KeySet, String> {
    let set: JwkSet = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        // Keys for other algorithms (or encryption) are skipped, not fatal: issuers
        // publish several kinds side by side.
        let Some(algorithm) = algorithm_of(jwk) else {
            continue;
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
        let kid = jwk.common.key_id.clone().unwrap_or_default();
        keys.insert(kid, (key, algorithm));
    }
    if keys.is_empty() {
        return Err("no RS256, ES256 or EdDSA key".into());
    }
    Ok(KeySet {
        keys,
        loaded: Instant::now(),
    })
}

async fn fetch(uri: &http::Uri, tls: &Option<Arc<rustls::ClientConfig>>) -> Result<String, String> {
    let host = uri.host().ok_or("the URL has no host")?.to_string();
    let port = uri
        .port_u16()
        .unwrap_or(if tls.is_some() { 443 } else { 80 });
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nAccept: application/json\r\nUser-Agent: veil-gateway\r\n\r\n"
    );
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| e.to_string())?;
    let reply = match tls {
        None => exchange(tcp, &request).await?,
        Some(config) => {
            let name =
                rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
            let stream = tokio_rustls::TlsConnector::from(config.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| e.to_string())?;
            exchange(stream, &request).await?
        }
    };
    let text = String::from_utf8(reply).map_err(|_| "the reply is not UTF-8".to_string())?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or("the reply has no body")?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        return Err(format!("http status {status}"));
    }
    Ok(body.to_string())
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &str,
) -> Result<Vec<u8>, String> {
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut reply = Vec::new();
    match (&mut stream)
        .take(MAX_REPLY + 1)
        .read_to_end(&mut reply)
        .await
    {
        Ok(_) => {}
        // Many servers close TLS without close_notify; HTTP/1.0 ends at the close anyway.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !reply.is_empty() => {}
        Err(e) => return Err(e.to_string()),
    }
    if reply.len() as u64 > MAX_REPLY {
        return Err("the reply is too large".into());
    }
    Ok(reply)
}
