//! The end of `veil demo`: the erasure the user asked for in the chat, followed through
//! the retention saga to its signed deletion certificate, which is then verified against
//! the audit log (signature, anchoring event and inclusion proof).

use std::time::{Duration, Instant};

use tonic::transport::Channel;
use veil_proto::audit::v1::audit_service_client::AuditServiceClient;
use veil_proto::audit::v1::{GetEntryRequest, get_entry_request};
use veil_proto::common::v1::RequestState;
use veil_proto::retention::v1::retention_service_client::RetentionServiceClient;
use veil_proto::retention::v1::{
    DeletionCertificate, GetDeletionCertificateRequest, GetRequestRequest,
};
use veil_retention::certificate::verify::verify;

use crate::demo::with_bearer;

/// How long the saga and the audit anchoring may take before the demo gives up.
const DEADLINE: Duration = Duration::from_secs(30);
/// Pause between two status reads while waiting.
const POLL: Duration = Duration::from_millis(100);

/// Waits for the request to complete, then prints and verifies its certificate; returns
/// the transcript turns the gateway erased.
pub async fn show(
    gateway: Channel,
    officer: &str,
    auditor: &str,
    request_id: &str,
) -> anyhow::Result<i64> {
    println!();
    println!("── erasure requested in the chat ──");
    let started = Instant::now();
    let mut retention = RetentionServiceClient::new(gateway.clone());
    loop {
        let request = retention
            .get_request(with_bearer(
                GetRequestRequest {
                    request_id: request_id.into(),
                },
                officer,
            )?)
            .await?
            .into_inner()
            .request
            .unwrap_or_default();
        let state = RequestState::try_from(request.state).unwrap_or_default();
        match state {
            RequestState::Completed => break,
            RequestState::InProgress | RequestState::Verified | RequestState::Received => {}
            other => anyhow::bail!("erasure request {request_id} ended {}", other.as_str_name()),
        }
        anyhow::ensure!(
            started.elapsed() < DEADLINE,
            "erasure request {request_id} still {} after {DEADLINE:?}",
            state.as_str_name()
        );
        tokio::time::sleep(POLL).await;
    }
    println!(
        "{:<13} {request_id} completed in {} ms",
        "request",
        started.elapsed().as_millis()
    );
    let certificate = anchored_certificate(&mut retention, officer, request_id).await?;
    let mut erased_turns = 0;
    for erasure in &certificate.erasures {
        let service = veil_proto::common::v1::VeilService::try_from(erasure.service)
            .map_or("unknown", |s| s.as_str_name());
        let mut counts: Vec<String> = erasure
            .counts
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        counts.sort();
        if erasure.service == veil_proto::common::v1::VeilService::Gateway as i32 {
            erased_turns = erasure.counts.get("turns").copied().unwrap_or_default();
        }
        println!("{:<13} {service}: {}", "erased", counts.join(", "));
    }
    let entry = AuditServiceClient::new(gateway)
        .get_entry(with_bearer(
            GetEntryRequest {
                key: Some(get_entry_request::Key::LeafIndex(
                    certificate.audit_leaf_index,
                )),
            },
            auditor,
        )?)
        .await?
        .into_inner()
        .entry
        .ok_or_else(|| anyhow::anyhow!("audit has no entry for the certificate"))?;
    let verified = verify(&certificate, &entry, None, &[])?;
    println!(
        "{:<13} {} signed by key {}, anchored at audit leaf {} of {}: signature, event and inclusion proof verified",
        "certificate",
        certificate.certificate_id,
        certificate.key_id,
        verified.leaf_index,
        verified.tree_size
    );
    Ok(erased_turns)
}

/// The certificate once audit has appended its anchoring event.
async fn anchored_certificate(
    retention: &mut RetentionServiceClient<Channel>,
    officer: &str,
    request_id: &str,
) -> anyhow::Result<DeletionCertificate> {
    let started = Instant::now();
    loop {
        let certificate = retention
            .get_deletion_certificate(with_bearer(
                GetDeletionCertificateRequest {
                    request_id: request_id.into(),
                },
                officer,
            )?)
            .await?
            .into_inner()
            .certificate
            .unwrap_or_default();
        if certificate.anchored {
            return Ok(certificate);
        }
        anyhow::ensure!(
            started.elapsed() < DEADLINE,
            "the certificate of {request_id} is not anchored in the audit log after {DEADLINE:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}
