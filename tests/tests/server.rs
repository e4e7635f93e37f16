//! The shared gRPC server of every service: TLS and mutual TLS with certificates made by
//! the test, Prometheus metrics without personal data, and NOT_SERVING before shutdown.

use std::io::{Read, Write};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::pb::health_check_response::ServingStatus;
use veil_core::config::{Settings, TlsSettings};
use veil_testkit::{TestEnv, eventually, probe, spawn};

const SERVICE: &str = "veil.consent.v1.ConsentService";

struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
}

/// A CA, a server certificate for localhost and a client certificate, written to files.
fn make_pki() -> anyhow::Result<Pki> {
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
    let client_key = KeyPair::generate()?;
    let client = CertificateParams::new(vec!["gateway.veil.internal".to_string()])?.signed_by(
        &client_key,
        &ca,
        &ca_key,
    )?;
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("ca.pem"), ca.pem())?;
    std::fs::write(dir.path().join("server.pem"), server.pem())?;
    std::fs::write(dir.path().join("server.key"), server_key.serialize_pem())?;
    Ok(Pki {
        dir,
        ca_pem: ca.pem(),
        client_cert_pem: client.pem(),
        client_key_pem: client_key.serialize_pem(),
    })
}

fn tls_settings(pki: &Pki, mutual: bool) -> TlsSettings {
    TlsSettings {
        cert_path: pki.dir.path().join("server.pem"),
        key_path: pki.dir.path().join("server.key"),
        client_ca_path: mutual.then(|| pki.dir.path().join("ca.pem")),
    }
}

async fn tls_channel(addr: std::net::SocketAddr, tls: ClientTlsConfig) -> anyhow::Result<Channel> {
    Ok(
        Channel::from_shared(format!("https://localhost:{}", addr.port()))?
            .tls_config(tls)?
            .connect()
            .await?,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_over_tls_and_mutual_tls() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let pki = make_pki()?;

    // Server TLS: a client trusting the CA gets through; plaintext does not.
    let mut settings: Settings = env.settings("consent");
    settings.server.tls = Some(tls_settings(&pki, false));
    let running = spawn(veil_consent::build(settings).await?);
    let trusting = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost");
    let channel = tls_channel(running.grpc_addr, trusting.clone()).await?;
    assert_eq!(
        probe::health(channel, SERVICE).await?,
        ServingStatus::Serving
    );
    let plaintext = probe::connect(&running.url(), Duration::from_secs(2)).await?;
    assert!(probe::health(plaintext, SERVICE).await.is_err());
    running.stop().await?;

    // Mutual TLS: without a client certificate the handshake fails; with one it works.
    let mut settings: Settings = env.settings("consent");
    settings.server.tls = Some(tls_settings(&pki, true));
    let running = spawn(veil_consent::build(settings).await?);
    let anonymous = tls_channel(running.grpc_addr, trusting.clone()).await;
    let refused = match anonymous {
        Err(_) => true,
        Ok(channel) => probe::health(channel, SERVICE).await.is_err(),
    };
    assert!(refused, "a client without certificate must be refused");
    let with_identity = trusting.identity(Identity::from_pem(
        &pki.client_cert_pem,
        &pki.client_key_pem,
    ));
    let channel = tls_channel(running.grpc_addr, with_identity).await?;
    assert_eq!(
        probe::health(channel, SERVICE).await?,
        ServingStatus::Serving
    );
    running.stop().await
}

fn http_get(addr: std::net::SocketAddr, path: &str) -> anyhow::Result<String> {
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut body = String::new();
    stream.read_to_string(&mut body)?;
    Ok(body)
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_calls_per_method_and_code() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let running = spawn(veil_consent::build(env.settings("consent")).await?);
    let channel = probe::connect(&running.url(), Duration::from_secs(5)).await?;
    // One call without a token: counted as Unauthenticated under its method path.
    let mut client =
        veil_proto::consent::v1::consent_service_client::ConsentServiceClient::new(channel);
    let status = client
        .check_consent(veil_proto::consent::v1::CheckConsentRequest::default())
        .await
        .expect_err("no token");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    let addr = running.metrics_addr;
    let text = tokio::task::spawn_blocking(move || http_get(addr, "/metrics")).await??;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("veil_rpc_calls_total{")
                && l.contains("method=\"/veil.consent.v1.ConsentService/CheckConsent\"")
        })
        .unwrap_or_else(|| panic!("no call counter in {text}"));
    assert!(line.contains("code=\"Unauthenticated\""), "{line}");
    assert!(line.ends_with(" 1"), "{line}");
    assert!(text.contains("veil_outbox_backlog{"), "{text}");
    running.stop().await
}

/// A path that names no method is the caller's choice: counted as `unknown`, never as a
/// label of its own (callers could otherwise grow the metrics without bound).
#[tokio::test(flavor = "multi_thread")]
async fn unknown_methods_share_one_label() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let running = spawn(veil_consent::build(env.settings("consent")).await?);
    let channel = probe::connect(&running.url(), Duration::from_secs(5)).await?;
    let mut grpc = tonic::client::Grpc::new(channel);
    for name in ["NoSuchMethod-7f3a", "alice@example.com"] {
        grpc.ready().await?;
        let path = format!("/veil.consent.v1.ConsentService/{name}");
        let status = grpc
            .unary(
                tonic::Request::new(()),
                http::uri::PathAndQuery::try_from(path)?,
                tonic_prost::ProstCodec::<(), ()>::default(),
            )
            .await
            .expect_err("no such method");
        // Refused before routing (no token) or by it: either way, not a method.
        assert!(
            matches!(
                status.code(),
                tonic::Code::Unauthenticated | tonic::Code::Unimplemented
            ),
            "{status:?}"
        );
    }
    let addr = running.metrics_addr;
    let text = tokio::task::spawn_blocking(move || http_get(addr, "/metrics")).await??;
    assert!(
        !text.contains("NoSuchMethod") && !text.contains("alice"),
        "{text}"
    );
    let line = text
        .lines()
        .find(|l| l.starts_with("veil_rpc_calls_total{") && l.contains("method=\"unknown\""))
        .unwrap_or_else(|| panic!("no unknown-method counter in {text}"));
    assert!(line.ends_with(" 2"), "{line}");
    running.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_reports_not_serving_before_closing() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let mut settings: Settings = env.settings("consent");
    // Long enough for the probe below to observe the grace period.
    settings.server.shutdown_grace_secs = 3;
    let running = spawn(veil_consent::build(settings).await?);
    let channel = probe::connect(&running.url(), Duration::from_secs(5)).await?;
    assert_eq!(
        probe::health(channel.clone(), "").await?,
        ServingStatus::Serving
    );
    let stopped = tokio::spawn(running.stop());
    let status = eventually(Duration::from_secs(3), || {
        let channel = channel.clone();
        async move {
            probe::health(channel, "")
                .await
                .ok()
                .filter(|s| *s == ServingStatus::NotServing)
        }
    })
    .await?;
    assert_eq!(status, ServingStatus::NotServing);
    stopped.await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_calls_internal_services_over_mutual_tls() -> anyhow::Result<()> {
    use veil_core::client::ClientTlsSettings;
    use veil_e2e::{TestStack, bearer, create_tenant, stack_settings};
    use veil_proto::gateway::v1::privacy_gateway_service_client::PrivacyGatewayServiceClient;
    use veil_proto::gateway::v1::{MessageContext, MessageRole, ProcessMessageRequest};

    let env = TestEnv::new().await?;
    let pki = make_pki()?;
    std::fs::write(pki.dir.path().join("client.pem"), &pki.client_cert_pem)?;
    std::fs::write(pki.dir.path().join("client.key"), &pki.client_key_pem)?;
    let mut settings = stack_settings(&env);
    settings.consent.server.tls = Some(tls_settings(&pki, true));
    settings.gateway.internal_tls = Some(ClientTlsSettings {
        ca_path: pki.dir.path().join("ca.pem"),
        cert_path: Some(pki.dir.path().join("client.pem")),
        key_path: Some(pki.dir.path().join("client.key")),
        domain_name: Some("localhost".into()),
    });
    let stack = TestStack::start(settings).await?;
    let gateway = stack.channel("gateway").await?;
    let tenant = create_tenant(gateway.clone(), "mtls").await?;
    let response = PrivacyGatewayServiceClient::new(gateway)
        .process_message(bearer(
            ProcessMessageRequest {
                context: Some(MessageContext {
                    conversation_id: "conv-1".into(),
                    subject_id: "customer-1".into(),
                    role: MessageRole::User as i32,
                    purposes: vec!["support".into()],
                    ..Default::default()
                }),
                text: "hello".into(),
            },
            &tenant.bot_key,
        ))
        .await;
    // The purpose does not exist: consent answered NOT_FOUND over mTLS, which proves the
    // call went through the TLS handshake with the client certificate.
    let status = response.expect_err("unknown purpose");
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    stack.stop().await
}
