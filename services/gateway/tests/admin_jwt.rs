//! JWT bearer tokens from a configured OIDC issuer: accepted with the right issuer,
//! audience, lifetime and key; refused otherwise, with an auth-failure event.

#![allow(clippy::unwrap_used)]

mod admin_support;

use admin_support::{Gateway, bearer, code, settings};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tonic::Code;
use veil_proto::events::v1::AuthFailureReason;
use veil_proto::events::v1::event::Payload;
use veil_proto::gateway::v1::{GetPrivacyPolicyRequest, GetTenantRequest, ListApiKeysRequest};
use veil_testkit::TestEnv;

const ISSUER: &str = "https://idp.example.test";
const AUDIENCE: &str = "veil-gateway";

struct Issuer {
    key: EncodingKey,
    kid: String,
}

impl Issuer {
    fn new(kid: &str) -> (Self, serde_json::Value) {
        let signing = SigningKey::generate(&mut rand::rngs::OsRng);
        let der = signing.to_pkcs8_der().unwrap();
        let jwk = serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes()),
        });
        (
            Self {
                key: EncodingKey::from_ed_der(der.as_bytes()),
                kid: kid.into(),
            },
            jwk,
        )
    }

    fn sign(&self, claims: &serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn claims(tenant: &str, roles: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "staff-42",
        "iat": now(), "exp": now() + 600,
        "veil_tenant": tenant, "veil_roles": roles,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn jwts_are_accepted_only_when_every_check_passes() -> anyhow::Result<()> {
    let (issuer, jwk) = Issuer::new("k1");
    let (stranger, _) = Issuer::new("k1");
    let (unlisted, _) = Issuer::new("k9");
    let dir = tempfile::tempdir()?;
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, serde_json::json!({ "keys": [jwk] }).to_string())?;
    let env = TestEnv::new().await?;
    let mut config = settings(&env);
    config.service.jwt.issuer = ISSUER.into();
    config.service.jwt.audience = AUDIENCE.into();
    config.service.jwt.jwks_path = jwks.display().to_string();
    let gw = Gateway::start_with(env, config).await?;
    let (tenant, admin_key) = gw.tenant("jwt").await?;
    let mut admin = gw.admin();
    let call = |token: &str| bearer(GetTenantRequest::default(), token);

    // A good token acts as its tenant with its roles; API keys keep working.
    let good = issuer.sign(&claims(&tenant, &["admin", "some_idp_role"]));
    let got = admin.get_tenant(call(&good)).await?.into_inner();
    assert_eq!(got.tenant.unwrap().tenant_id, tenant);
    assert_eq!(code(admin.get_tenant(call(&admin_key)).await), Code::Ok);

    // Roles from the token decide what it may do.
    let officer = issuer.sign(&claims(&tenant, &["privacy_officer"]));
    let policy = bearer(GetPrivacyPolicyRequest::default(), &officer);
    assert_eq!(code(admin.get_privacy_policy(policy).await), Code::Ok);
    let keys = bearer(ListApiKeysRequest::default(), &officer);
    assert_eq!(
        code(admin.list_api_keys(keys).await),
        Code::PermissionDenied
    );

    // Every broken check is refused the same way.
    let mut refused = Vec::new();
    let with = |key: &str, value: serde_json::Value| {
        let mut c = claims(&tenant, &["admin"]);
        c[key] = value;
        c
    };
    refused.push((
        "wrong issuer",
        issuer.sign(&with("iss", "https://evil.test".into())),
    ));
    refused.push(("wrong audience", issuer.sign(&with("aud", "other".into()))));
    refused.push(("expired", issuer.sign(&with("exp", (now() - 3600).into()))));
    refused.push((
        "not yet valid",
        issuer.sign(&with("nbf", (now() + 3600).into())),
    ));
    refused.push(("unknown kid", unlisted.sign(&claims(&tenant, &["admin"]))));
    refused.push(("bad signature", stranger.sign(&claims(&tenant, &["admin"]))));
    refused.push((
        "no tenant",
        issuer.sign(&with("veil_tenant", serde_json::Value::Null)),
    ));
    refused.push((
        "no veil role",
        issuer.sign(&with("veil_roles", serde_json::json!(["x"]))),
    ));
    refused.push((
        "service role",
        issuer.sign(&with("veil_roles", serde_json::json!(["service"]))),
    ));
    // Flip one character in the middle of the signature (the last one may carry only
    // padding bits).
    let mut tampered: Vec<char> = good.chars().collect();
    let at = tampered.len() - 20;
    tampered[at] = if tampered[at] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    refused.push(("tampered", tampered));
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some("k1".into());
    let hs = jsonwebtoken::encode(
        &hs_header,
        &claims(&tenant, &["admin"]),
        &EncodingKey::from_secret(b"guessable"),
    )?;
    refused.push(("symmetric algorithm", hs));
    for (why, token) in &refused {
        assert_eq!(
            code(admin.get_tenant(call(token)).await),
            Code::Unauthenticated,
            "{why}"
        );
    }

    // The refusals are recorded, the expired one as such; the officer's missing role
    // first, under its tenant, with no trace of the token's subject (often an address).
    let failures = gw.events("auth_failed").await?;
    let mut reasons: Vec<i32> = failures
        .iter()
        .filter_map(|e| match &e.payload {
            Some(Payload::GatewayAuthFailed(f)) => Some(f.reason),
            _ => None,
        })
        .collect();
    assert_eq!(
        reasons.remove(0),
        AuthFailureReason::PermissionDenied as i32
    );
    assert_eq!(failures[0].tenant_id, tenant);
    match &failures[0].payload {
        Some(Payload::GatewayAuthFailed(f)) => assert_eq!(f.key_prefix, "jwt"),
        other => panic!("unexpected payload {other:?}"),
    }
    assert_eq!(reasons.len(), refused.len());
    assert_eq!(
        reasons
            .iter()
            .filter(|r| **r == AuthFailureReason::Expired as i32)
            .count(),
        1
    );
    assert!(
        reasons
            .iter()
            .all(|r| *r == AuthFailureReason::Expired as i32
                || *r == AuthFailureReason::InvalidToken as i32)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn rs256_and_es256_keys_work_and_symmetric_keys_are_ignored() -> anyhow::Result<()> {
    // Throwaway keys generated for this test only (openssl genpkey), with their public
    // halves below.
    let rsa = EncodingKey::from_rsa_pem(include_bytes!("admin_support/test_rsa_key.pem"))?;
    let ec = EncodingKey::from_ec_pem(include_bytes!("admin_support/test_ec_key.pem"))?;
    let jwks = serde_json::json!({ "keys": [
        { "kty": "RSA", "kid": "rsa", "alg": "RS256", "e": "AQAB",
          "n": "sSjW_ifAE_BwSRCdkB7M3qim53Et_wJfR2NdejlLhmNEBN9ON1t6k8B94FrTG74KLz8faNvPgvv6bXRDRaWtIjvgW0ki_QZ2mt2KR8eANwWDgbHR7iONnoGVHnLlybGFIBsi1rdHXdCci6S36u90lvCSjWilZlZGZj7CPg4MVtDxcuJoDrkd4inWW9dDTul-5QB81sqKlYcIbEAzaIjLGk428bIe9azWZF_UE5mXz29ON-FrxGw8XISoJG4tb6qAG8kQBtGmyWootmlC6bh7MpirY8F5M6_tCE5X7VEBN08UsHmE4WXoc2nDIBBFQLyxrB23SOFpNUI3_VuYJzjV4Q" },
        { "kty": "EC", "kid": "ec", "crv": "P-256",
          "x": "2cVdO9tjRWRF9cN5dbyIJu9A4JRCHRrDoCWzsNYxAtI",
          "y": "cA0Kr6Dv5DQeYsFHu2HvnyxQUzlJg1pUZY3n0KnCFnk" },
        { "kty": "oct", "kid": "hmac", "k": URL_SAFE_NO_PAD.encode(b"guessable") },
    ]});
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks.to_string())?;
    let env = TestEnv::new().await?;
    let mut config = settings(&env);
    config.service.jwt.issuer = ISSUER.into();
    config.service.jwt.audience = AUDIENCE.into();
    config.service.jwt.jwks_path = path.display().to_string();
    let gw = Gateway::start_with(env, config).await?;
    let (tenant, _) = gw.tenant("jwt-algs").await?;
    let mut admin = gw.admin();
    let sign = |alg: Algorithm, kid: &str, key: &EncodingKey| {
        let mut header = Header::new(alg);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, &claims(&tenant, &["admin"]), key).unwrap()
    };
    for (alg, kid, key, expected) in [
        (Algorithm::RS256, "rsa", &rsa, Code::Ok),
        (Algorithm::ES256, "ec", &ec, Code::Ok),
        // A key of one kind never verifies another kind's signature.
        (Algorithm::ES256, "rsa", &ec, Code::Unauthenticated),
        (
            Algorithm::HS256,
            "hmac",
            &EncodingKey::from_secret(b"guessable"),
            Code::Unauthenticated,
        ),
    ] {
        let token = sign(alg, kid, key);
        let got = code(
            admin
                .get_tenant(bearer(GetTenantRequest::default(), &token))
                .await,
        );
        assert_eq!(got, expected, "{alg:?} with {kid}");
    }
    Ok(())
}

/// Serves `jwks` over plain HTTP/1.0 (one reply per connection) and counts fetches.
async fn serve_jwks(
    jwks: std::sync::Arc<std::sync::Mutex<String>>,
    fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/.well-known/jwks.json", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let body = jwks.lock().unwrap().clone();
            let reply = format!(
                "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(reply.as_bytes()).await;
        }
    });
    Ok(url)
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_are_fetched_from_a_url_and_rotated_without_restart() -> anyhow::Result<()> {
    let (old, old_jwk) = Issuer::new("old");
    let (new, new_jwk) = Issuer::new("new");
    let jwks = std::sync::Arc::new(std::sync::Mutex::new(
        serde_json::json!({ "keys": [old_jwk] }).to_string(),
    ));
    let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let url = serve_jwks(jwks.clone(), fetches.clone()).await?;
    let env = TestEnv::new().await?;
    let mut config = settings(&env);
    config.service.jwt.issuer = ISSUER.into();
    config.service.jwt.audience = AUDIENCE.into();
    config.service.jwt.jwks_url = url;
    config.service.jwt.refresh_secs = 1;
    let gw = Gateway::start_with(env, config).await?;
    assert_eq!(
        fetches.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "fetched at start"
    );
    let (tenant, _) = gw.tenant("jwt-url").await?;
    let mut admin = gw.admin();
    let call = |token: &str| bearer(GetTenantRequest::default(), token);
    let old_token = old.sign(&claims(&tenant, &["admin"]));
    let new_token = new.sign(&claims(&tenant, &["admin"]));
    assert_eq!(code(admin.get_tenant(call(&old_token)).await), Code::Ok);
    assert_eq!(
        code(admin.get_tenant(call(&new_token)).await),
        Code::Unauthenticated
    );

    // The issuer rotates: the new key is picked up on a later refresh, the old one dropped.
    *jwks.lock().unwrap() = serde_json::json!({ "keys": [new_jwk] }).to_string();
    let accepted = veil_testkit::eventually(std::time::Duration::from_secs(15), || {
        let mut admin = gw.admin();
        let request = call(&new_token);
        async move { (code(admin.get_tenant(request).await) == Code::Ok).then_some(()) }
    })
    .await;
    assert!(accepted.is_ok(), "the rotated key is accepted");
    assert_eq!(
        code(admin.get_tenant(call(&old_token)).await),
        Code::Unauthenticated
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_are_fetched_over_https_with_a_configured_ca() -> anyhow::Result<()> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls;
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key)?;
    let server_key = KeyPair::generate()?;
    let server = CertificateParams::new(vec!["localhost".to_string()])?.signed_by(
        &server_key,
        &ca,
        &ca_key,
    )?;
    let dir = tempfile::tempdir()?;
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca.pem())?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![server.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
        )?;
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let (issuer, jwk) = Issuer::new("tls");
    let body = serde_json::json!({ "keys": [jwk] }).to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let Ok(mut tls) = acceptor.accept(socket).await else {
                continue;
            };
            let mut buf = [0u8; 4096];
            let _ = tls.read(&mut buf).await;
            let reply = format!("HTTP/1.0 200 OK\r\n\r\n{body}");
            let _ = tls.write_all(reply.as_bytes()).await;
            let _ = tls.shutdown().await;
        }
    });
    let env = TestEnv::new().await?;
    let mut config = settings(&env);
    config.service.jwt.issuer = ISSUER.into();
    config.service.jwt.audience = AUDIENCE.into();
    config.service.jwt.jwks_url = format!("https://localhost:{port}/jwks.json");
    // Without the CA the server is not trusted and the gateway does not start.
    let error = veil_gateway::build(config.clone()).await.err().unwrap();
    assert!(format!("{error:#}").contains("jwks"), "{error:#}");
    config.service.jwt.jwks_ca_path = ca_path.display().to_string();
    let gw = Gateway::start_with(env, config).await?;
    let (tenant, _) = gw.tenant("jwt-tls").await?;
    let token = issuer.sign(&claims(&tenant, &["admin"]));
    let request = bearer(GetTenantRequest::default(), &token);
    assert_eq!(code(gw.admin().get_tenant(request).await), Code::Ok);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_jwks_source_stops_the_gateway_at_start() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let mut config = settings(&env);
    config.service.jwt.issuer = ISSUER.into();
    config.service.jwt.audience = AUDIENCE.into();
    config.service.jwt.jwks_path = "/nonexistent/jwks.json".into();
    let error = veil_gateway::build(config.clone()).await.err().unwrap();
    assert!(format!("{error:#}").contains("jwks"), "{error:#}");
    config.service.jwt.jwks_path.clear();
    config.service.jwt.jwks_url = "http://127.0.0.1:9/jwks.json".into();
    let error = veil_gateway::build(config.clone()).await.err().unwrap();
    assert!(format!("{error:#}").contains("jwks"), "{error:#}");
    use veil_core::config::Validate;
    config.service.jwt.jwks_path = "/tmp/jwks.json".into();
    assert!(
        config.service.validate().is_err(),
        "a path and a url together"
    );
    Ok(())
}
